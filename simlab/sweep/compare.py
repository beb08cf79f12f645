"""Read a sweep's results: pivot, rank, plot, and compare two sweeps.

Everything here works on the results table of :mod:`simlab.sweep` (a DataFrame, e.g.
``pandas.read_parquet("results/")``): one row per cell with ``cell``, ``status``,
``recording``, ``inst``, the parameters as ``p_*`` columns and the metrics
(``net_bps_mean``, ``net_bps_p10`` ... ``maker_prob_mean``). Only cells with status
``ok`` are used, except by :func:`compare`, which reports every cell of both sweeps.

A cell is *incomplete* when the book could not fill its order at some tick
(``complete_share`` < 1): its costs are those of the ticks it could fill, so
:func:`rank` leaves it out unless asked (and says which cells it left out), and
:func:`heatmap` marks it.
A parameter may be named with or without its ``p_`` prefix (``"notional"`` is
``p_notional``).

Plots draw on a matplotlib Axes the caller owns, or on a new
:class:`~matplotlib.figure.Figure` (never pyplot, so no global state), and return it:

>>> ax = heatmap(_example(), x="notional", y="side")
>>> ax.figure.savefig("heatmap.png")                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simlab.extras import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["compare", "heatmap", "incomplete", "lines", "params", "pivot", "plot_compare",
           "rank", "varying"]

#: Columns that identify a cell besides its ``p_*`` parameters.
IDENTITY = ("recording", "inst")
#: Metrics :func:`rank` shows after the one ranked by, when present.
RANK_METRICS = ("net_bps_mean", "net_bps_p50", "net_bps_p90", "slippage_bps_mean",
                "fee_bps_mean", "impact_bps_mean", "maker_prob_mean", "complete_share",
                "incomplete_ticks", "filled_share_mean", "ticks")


class SweepResultsError(ValueError):
    """A results table (or a request on it) that cannot be used: an unknown column, no
    cells with status ok, parameters that do not single out one cell where one is needed."""


def params(results: pd.DataFrame) -> list[str]:
    """The cell-identifying columns present: ``recording``, ``inst`` and every ``p_*``.

    >>> params(_example())
    ['recording', 'inst', 'p_notional', 'p_side']
    """
    _check_frame(results, "results")
    return ([c for c in IDENTITY if c in results.columns]
            + [c for c in results.columns if isinstance(c, str) and c.startswith("p_")])


def varying(results: pd.DataFrame) -> list[str]:
    """The cell-identifying columns (see :func:`params`) that take more than one value
    among the ok cells.

    >>> varying(_example())
    ['p_notional', 'p_side']
    """
    ok = _ok(results)
    return [c for c in params(results) if ok[c].nunique(dropna=False) > 1]


def pivot(results: pd.DataFrame, index: str | Sequence[str], columns: str | Sequence[str],
          values: str = "net_bps_mean", agg: str | Callable = "mean", *,
          value: str | None = None) -> pd.DataFrame:
    """``values`` of the ok cells as a table: ``index`` down, ``columns`` across, cells that
    fall together combined with ``agg`` (a pandas aggregation name or function). The
    names are pandas' (``DataFrame.pivot(index=, columns=, values=)``); ``value`` is an
    older alias of ``values``.

    >>> pivot(_example(), index="notional", columns="side")  # doctest: +NORMALIZE_WHITESPACE
    p_side       buy  sell
    p_notional
    1000.0       1.5   2.0
    10000.0      3.0   4.5
    >>> pivot(_example(), index="side", columns="notional", values="net_bps_p90").shape
    (2, 2)
    """
    if value is not None:
        if values not in ("net_bps_mean", value):
            raise SweepResultsError(f"give values= or its alias value=, not both "
                                    f"({values!r}, {value!r})")
        values = value
    ok = _ok(results)
    idx = [_col(ok, c, "index") for c in _names(index, "index")]
    cols = [_col(ok, c, "columns") for c in _names(columns, "columns")]
    val = _metric(ok, values, "values")
    try:
        return pd.pivot_table(ok, index=idx[0] if len(idx) == 1 else idx,
                              columns=cols[0] if len(cols) == 1 else cols, values=val,
                              aggfunc=agg, dropna=False, observed=True)
    except (AttributeError, TypeError, ValueError) as e:
        raise SweepResultsError(f"agg {agg!r} could not combine {val} ({e})") from None


def incomplete(results: pd.DataFrame) -> pd.DataFrame:
    """The ok cells where the book could not fill the order at some tick
    (``complete_share`` < 1), with their identifying columns and fill metrics; empty when
    the table has no ``complete_share``.

    >>> incomplete(_example())[["cell", "complete_share"]]
      cell  complete_share
    3   c4            0.25
    """
    ok = _ok(results)
    if "complete_share" not in ok.columns:
        return ok.iloc[:0]
    bad = ok[ok["complete_share"].astype(float) < 1.0]
    cols = ([c for c in ("cell",) if c in ok.columns] + params(results)
            + [m for m in ("complete_share", "incomplete_ticks", "filled_share_mean", "ticks")
               if m in ok.columns])
    return bad[cols]


def rank(results: pd.DataFrame, by: str = "net_bps_mean", ascending: bool = True,
         top: int | None = None, *, include_incomplete: bool = False) -> pd.DataFrame:
    """The ok cells best first (lowest ``by`` unless ``ascending=False``; ties in cell
    order, missing values last), numbered from 1, with the cell id, the parameters that
    vary, ``by`` and the main metrics; the first ``top`` only when given.

    Cells where the book could not fill the order at every tick (see :func:`incomplete`)
    are left out unless ``include_incomplete``: a warning names them, and so does the
    result's ``attrs["left_out"]`` (their cell ids).

    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     r = rank(_example(), top=2)
    >>> r[["cell", "p_notional", "p_side", "net_bps_mean", "complete_share"]]
    ... # doctest: +NORMALIZE_WHITESPACE
         cell  p_notional p_side  net_bps_mean  complete_share
    rank
    1      c1      1000.0    buy           1.5             1.0
    2      c2      1000.0   sell           2.0             1.0
    >>> r.attrs["left_out"], "c4" in str(said[0].message)
    (['c4'], True)
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise SweepResultsError(f"top must be an integer >= 1 or None, got {top!r}")
    ok = _ok(results)
    by = _metric(ok, by, "by")
    bad = incomplete(results)
    left_out: list[Any] = []
    if len(bad) and not include_incomplete:
        ok = ok.drop(index=bad.index)
        left_out = (bad["cell"] if "cell" in bad.columns else pd.Series(bad.index)).tolist()
        shown_ids = ", ".join(map(str, left_out[:10])) + (" ..." if len(left_out) > 10 else "")
        warnings.warn(f"rank: left out {len(left_out)} cell(s) where the book could not fill "
                      f"the order at every tick (their costs cover only the ticks it could; "
                      f"include_incomplete=True ranks them): {shown_ids}", stacklevel=2)
    order = ok.sort_values([by, "cell"] if "cell" in ok.columns else by,
                           ascending=[ascending, True] if "cell" in ok.columns else ascending,
                           na_position="last", kind="stable")
    shown = ([c for c in ("cell",) if c in ok.columns] + varying(results) + [by]
             + [m for m in RANK_METRICS if m in ok.columns and m != by])
    out = order[shown].head(top) if top is not None else order[shown]
    out = out.reset_index(drop=True)
    out.index = pd.RangeIndex(1, len(out) + 1, name="rank")
    out.attrs["left_out"] = left_out
    return out


def heatmap(results: pd.DataFrame, x: str, y: str, value: str = "net_bps_mean",
            ax: Axes | None = None, *, agg: str | Callable = "mean", fmt: str = "{:.3g}",
            cmap: str = "viridis") -> Axes:
    """``value`` over two parameters as an annotated heatmap (``x`` across, ``y`` up;
    cells that fall together combined with ``agg``, missing ones left blank). A cell where
    the book could not fill the order at every tick is marked ``*`` with its least
    ``complete_share`` (``"no fill"`` when it never could), and the title says so.

    >>> ax = heatmap(_example(), x="notional", y="side")
    >>> [t.get_text() for t in ax.texts]
    ['1.5', '3', '2', '4.5*\\nfilled 25%']
    """
    table = pivot(results, index=y, columns=x, values=value, agg=agg)
    data = table.to_numpy(dtype=float)
    share = None
    if "complete_share" in results.columns:
        share = (pivot(results, index=y, columns=x, values="complete_share", agg="min")
                 .reindex(index=table.index, columns=table.columns).to_numpy(dtype=float))
    ax = _axes(ax)
    im = ax.imshow(np.ma.masked_invalid(data), origin="lower", aspect="auto", cmap=cmap)
    ax.figure.colorbar(im, ax=ax, label=_metric(results, value, "value"))
    ax.set_xticks(range(data.shape[1]), [_label(v) for v in table.columns])
    ax.set_yticks(range(data.shape[0]), [_label(v) for v in table.index])
    ax.set_xlabel(_axis_name(table.columns))
    ax.set_ylabel(_axis_name(table.index))
    finite = data[np.isfinite(data)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    marked = 0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            s = math.nan if share is None else share[i, j]
            short = np.isfinite(s) and s < 1.0
            marked += bool(short)
            if np.isfinite(data[i, j]):
                text = fmt.format(data[i, j])
                if short:
                    text += f"*\nfilled {s:.0%}"
                # viridis is dark below the middle of its range: light text there
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if data[i, j] < mid else "black")
            elif short:
                ax.text(j, i, "no fill" if s == 0 else f"*\nfilled {s:.0%}", ha="center",
                        va="center", fontsize=8, color="red")
    if marked:
        ax.set_title(f"* {marked} cell(s): the book could not fill the order at every tick "
                     "(costs of the filled ticks; share of ticks filled)", fontsize=8)
    return ax


def lines(results: pd.DataFrame, x: str, value: str = "net_bps",
          band: tuple[str, str] | None = ("p10", "p90"), hue: str | None = None,
          ax: Axes | None = None, *, center: str = "mean") -> Axes:
    """``value`` against parameter ``x``: the ``{value}_{center}`` line (``mean`` or
    ``p50``) with a band from ``{value}_{band[0]}`` to ``{value}_{band[1]}``, one line per
    value of ``hue``. Each (hue, x) must be one ok cell: filter the results or add a hue
    when other parameters vary.

    >>> ax = lines(_example(), x="notional", hue="side")
    >>> [(ln.get_label(), [float(y) for y in ln.get_ydata()]) for ln in ax.get_lines()]
    [('p_side=buy', [1.5, 3.0]), ('p_side=sell', [2.0, 4.5])]
    """
    ok = _ok(results)
    xc = _col(ok, x, "x")
    hc = None if hue is None else _col(ok, hue, "hue")
    if center not in ("mean", "p50"):
        raise SweepResultsError(f"center must be 'mean' or 'p50', got {center!r}")
    line = _metric(ok, f"{value}_{center}", "value")
    if band is not None:
        if len(band) != 2:
            raise SweepResultsError(f"band must be a pair like ('p10', 'p90') or None, "
                                    f"got {band!r}")
        lo, hi = (_metric(ok, f"{value}_{b}", "band") for b in band)
    keys = [xc] if hc is None else [hc, xc]
    dup = ok.duplicated(keys, keep=False)
    if dup.any():
        others = [c for c in varying(results) if c not in keys]
        raise SweepResultsError(
            f"{int(dup.sum())} ok cells share their {' and '.join(keys)} with another "
            f"(varying too: {', '.join(others) or 'nothing'}); filter the results or pass hue=")
    ax = _axes(ax)
    numeric = pd.api.types.is_numeric_dtype(ok[xc])
    xs = sorted(ok[xc].unique(), key=_sort_key)
    groups = [(None, ok)] if hc is None else list(ok.groupby(hc, sort=True, dropna=False))
    for key, g in groups:
        g = g.assign(_x=g[xc].map(lambda v: v if numeric else xs.index(v))).sort_values("_x")
        label = line if hc is None else f"{hc}={_label(key)}"
        (ln,) = ax.plot(g["_x"], g[line].astype(float), marker="o", label=label)
        if band is not None:
            ax.fill_between(g["_x"], g[lo].astype(float), g[hi].astype(float),
                            color=ln.get_color(), alpha=0.2, linewidth=0,
                            label=f"{label} {band[0]}-{band[1]}")
    if not numeric:
        ax.set_xticks(range(len(xs)), [_label(v) for v in xs])
    ax.set_xlabel(xc)
    ax.set_ylabel(line if band is None else f"{line} ({band[0]}-{band[1]} band)")
    ax.legend(fontsize=8)
    return ax


def compare(a: pd.DataFrame, b: pd.DataFrame, on: str | Sequence[str] | None = None,
            value: str = "net_bps_mean", labels: tuple[str, str] = ("a", "b")
            ) -> pd.DataFrame:
    """Two sweeps side by side (e.g. before / after retraining a model): one row per
    cell of either, matched on ``on`` (default: the cell-identifying columns both have,
    see :func:`params`, except those constant in each sweep but different between them,
    the thing compared, like ``p_model``), with ``value`` of each (NaN for a cell that
    failed, like the last one here), ``diff`` (b - a), ``ratio`` (b / a) and ``present``
    (``both``, or the label of the only sweep that has the cell). ``labels`` names the two
    value columns.

    >>> a = _example()
    >>> b = a.assign(net_bps_mean=a["net_bps_mean"] - 0.5).iloc[1:]
    >>> compare(a, b, on=["notional", "side"])
       p_notional p_side    a    b  diff     ratio present
    0      1000.0    buy  1.5  NaN   NaN       NaN       a
    1      1000.0   sell  2.0  1.5  -0.5  0.750000    both
    2     10000.0    buy  3.0  2.5  -0.5  0.833333    both
    3     10000.0   sell  4.5  4.0  -0.5  0.888889    both
    4     50000.0    buy  NaN  NaN   NaN       NaN    both
    """
    la, lb = labels
    if la == lb or {la, lb} & {"diff", "ratio", "present"}:
        raise SweepResultsError(f"labels must be two different names other than diff, ratio, "
                                f"present; got {labels!r}")
    _check_frame(a, la)
    _check_frame(b, lb)
    ignored: list[str] = []
    if on is None:
        keys = [c for c in params(a) if c in set(params(b))]
        ignored = [c for c in keys if a[c].nunique(dropna=False) == 1
                   and b[c].nunique(dropna=False) == 1 and not _same(a[c].iloc[0], b[c].iloc[0])]
        keys = [c for c in keys if c not in ignored]
        if not keys:
            raise SweepResultsError(f"{la} and {lb} share no parameter column to match cells "
                                    f"on ({la}: {params(a)}, {lb}: {params(b)}); pass on=")
    else:
        names = _names(on, "on")
        keys = [_col(a, c, "on", la) for c in names]
        if keys != [_col(b, c, "on", lb) for c in names]:
            raise SweepResultsError(f"on {names} resolves to different columns in {la} and {lb}")
    sides = []
    for df, label in ((a, la), (b, lb)):
        col = _metric(df, value, "value", label)
        dup = df.duplicated(keys, keep=False)
        if dup.any():
            extra = [c for c in params(df) if c not in keys
                     and df.loc[dup, c].nunique(dropna=False) > 1]
            raise SweepResultsError(
                f"{label}: {int(dup.sum())} cells share their {', '.join(keys)}; add the "
                f"columns that tell them apart to on= ({', '.join(extra) or 'none vary'})")
        v = df[col].astype(float)
        if "status" in df.columns:
            v = v.where(df["status"] == "ok")
        sides.append(df[keys].assign(**{label: v}))
    out = sides[0].merge(sides[1], on=keys, how="outer", indicator="present", sort=True)
    out["diff"] = out[lb] - out[la]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out[lb] / out[la]
    out["present"] = out["present"].map({"both": "both", "left_only": la, "right_only": lb})
    out = out[[*keys, la, lb, "diff", "ratio", "present"]].reset_index(drop=True)
    out.attrs.update(on=keys, value=value, labels=(la, lb), ignored=ignored)
    return out


def plot_compare(comparison: pd.DataFrame, kind: str = "scatter", ax: Axes | None = None
                 ) -> Axes:
    """A :func:`compare` table drawn: ``scatter`` (one sweep against the other, with the
    line where they are equal) or ``bar`` (the difference per cell that both have).

    >>> a = _example()
    >>> cmp = compare(a, a.assign(net_bps_mean=a["net_bps_mean"] * 2))
    >>> len(plot_compare(cmp, "bar").patches)
    4
    """
    if kind not in ("scatter", "bar"):
        raise SweepResultsError(f"kind must be 'scatter' or 'bar', got {kind!r}")
    _check_frame(comparison, "comparison")
    la, lb = comparison.attrs.get("labels", ("a", "b"))
    need = [la, lb, "diff", "present"]
    missing = [c for c in need if c not in comparison.columns]
    if missing:
        raise SweepResultsError(f"comparison lacks {missing}; pass the table compare() returns")
    value = comparison.attrs.get("value", "value")
    both = comparison[comparison["present"] == "both"].dropna(subset=[la, lb])
    if both.empty:
        raise SweepResultsError("no cell has a value in both sweeps; nothing to plot")
    ax = _axes(ax)
    if kind == "scatter":
        ax.scatter(both[la], both[lb], s=18)
        lo = float(min(both[la].min(), both[lb].min()))
        hi = float(max(both[la].max(), both[lb].max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, linestyle="--", label="equal")
        ax.set_xlabel(f"{value} ({la})")
        ax.set_ylabel(f"{value} ({lb})")
        ax.legend(fontsize=8)
    else:
        keys = comparison.attrs.get("on") or [c for c in comparison.columns
                                               if c not in (la, lb, "diff", "ratio", "present")]
        # label the bars by what tells them apart, not by the constant columns too
        keys = [k for k in keys if both[k].nunique(dropna=False) > 1] or keys
        names = [", ".join(f"{_label(r[k])}" for k in keys) for _, r in both.iterrows()]
        colours = np.where(both["diff"] > 0, "tab:red", "tab:green")
        ax.bar(range(len(both)), both["diff"], color=colours)
        ax.set_xticks(range(len(both)), names, rotation=45, ha="right", fontsize=7)
        ax.axhline(0, color="grey", linewidth=1)
        ax.set_ylabel(f"{value}: {lb} - {la}")
        ax.set_xlabel(", ".join(keys))
    return ax


# -- helpers -------------------------------------------------------------------------------


def _check_frame(df: Any, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame of sweep results, got "
                        f"{type(df).__name__}")


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    _check_frame(results, "results")
    if "status" not in results.columns:
        return results
    return results[results["status"] == "ok"]


def _names(v: str | Sequence[str], what: str) -> list[str]:
    names = [v] if isinstance(v, str) else list(v)
    if not names or not all(isinstance(n, str) for n in names):
        raise SweepResultsError(f"{what} must be a column name or a list of them, got {v!r}")
    return names


def _col(df: pd.DataFrame, name: str, what: str, side: str = "results") -> str:
    """``name`` or ``p_{name}``, whichever the table has."""
    if not isinstance(name, str):
        raise SweepResultsError(f"{what} must be a column name, got {name!r}")
    for c in (name, f"p_{name}"):
        if c in df.columns:
            return c
    raise SweepResultsError(f"unknown column {name!r} for {what}: {side} has parameters "
                            f"{params(df) or 'none'}")


def _metric(df: pd.DataFrame, name: str, what: str, side: str = "results") -> str:
    if not isinstance(name, str) or name not in df.columns:
        metrics = [c for c in df.columns if isinstance(c, str) and c not in params(df)
                   and c not in ("cell", "status", "error", "simlab_version")
                   and pd.api.types.is_numeric_dtype(df[c])]
        raise SweepResultsError(f"unknown column {name!r} for {what}: {side} has metrics "
                                f"{metrics or 'none'}")
    return name


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    figure = require("matplotlib.figure", feature="sweep plots").Figure
    return figure(figsize=(6.4, 4.2), layout="constrained").add_subplot()


def _same(u: Any, v: Any) -> bool:
    return (pd.isna(u) and pd.isna(v)) if pd.isna(u) or pd.isna(v) else bool(u == v)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (1, str(v)) if pd.isna(v) else (0, v)


def _label(v: Any) -> str:
    if isinstance(v, tuple):
        return "/".join(_label(x) for x in v)
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _axis_name(index: pd.Index) -> str:
    return "/".join(str(n) for n in index.names)


def _example() -> pd.DataFrame:
    """Four ok cells (the book could fill the last one's order at a quarter of its ticks)
    and one failed one, for the examples."""
    return pd.DataFrame({
        "cell": ["c1", "c2", "c3", "c4", "c5"],
        "status": ["ok", "ok", "ok", "ok", "error"],
        "error": [None, None, None, None, "ValueError: boom"],
        "recording": "data/sample", "inst": "BTC-USDT",
        "p_notional": [1000.0, 1000.0, 10000.0, 10000.0, 50000.0],
        "p_side": ["buy", "sell", "buy", "sell", "buy"],
        "net_bps_mean": [1.5, 2.0, 3.0, 4.5, np.nan],
        "net_bps_p10": [0.5, 1.0, 2.0, 3.5, np.nan],
        "net_bps_p90": [2.5, 3.0, 4.0, 5.5, np.nan],
        "maker_prob_mean": [0.4, 0.3, 0.2, 0.1, np.nan],
        "complete_share": [1.0, 1.0, 1.0, 0.25, np.nan],
    })
