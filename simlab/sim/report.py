"""The report folder of a cost run: summary files and PNG charts.

:func:`write_report` turns a :class:`~simlab.sim.pipeline.CostResult` into a folder a
researcher can open without Python: ``summary.json`` and ``summary.md``, and charts of the
book's depth, the costs over time, the pipeline's latency and, given Almgren-Chriss
parameters, the execution schedule and the efficient frontier.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, never pyplot:
no global figure registry, so reports can be written from threads or inside a notebook
without disturbing its figures. Each chart has a public helper that draws on Axes the
caller owns, so a notebook can reuse it:

>>> from matplotlib.figure import Figure
>>> ax = Figure().add_subplot()
>>> ax = plot_depth(ax, ([99.0, 98.0], [1.0, 2.0], [101.0], [0.5]))
>>> [line.get_label() for line in ax.get_lines()][:2]
['bids (3 over 2 levels)', 'asks (0.5 over 1 level)']

Units follow simlab's: prices and costs in quote currency, costs in bps of ``mid *
filled_base`` (positive = a cost), book sizes in the book's units (base for spot, contracts
for swaps), Almgren-Chriss in base units, quote currency and seconds.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simlab.extras import require
from simlab.jsonsafe import json_safe, to_json
from simlab.models.impact import ACParams, frontier, trajectory
from simlab.monitor.stats import percentiles

from .pipeline import STAGES, CostResult
from .summary import complete_mask

if TYPE_CHECKING:  # matplotlib is optional (simlab[notebook]): imported when a chart is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "COST_LINES",
    "DPI",
    "plot_ac_frontier",
    "plot_ac_schedule",
    "plot_batch_latency",
    "plot_costs",
    "plot_depth",
    "plot_latency",
    "summary_to_json",
    "summary_to_markdown",
    "write_report",
]

#: Resolution of the written PNGs.
DPI = 110
#: Cost columns drawn over time: (column, label, colour).
COST_LINES = (("slippage_bps", "slippage", "tab:blue"), ("fee_bps", "fees", "tab:orange"),
              ("impact_bps", "impact", "tab:purple"), ("net_bps", "net", "black"))
_BID, _ASK = "tab:green", "tab:red"


# -- the folder ---------------------------------------------------------------------------


def write_report(result: CostResult, out_dir: str | Path, *, depth: Any = None,
                 ac: ACParams | None = None, ac_X: float | None = None,
                 summary: Mapping[str, Any] | None = None,
                 title: str | None = None) -> dict[str, Path]:
    """Write the report of ``result`` into ``out_dir`` (created; same-named files are
    overwritten) and return ``{file name: path}`` of what was written:

    - ``summary.json`` / ``summary.md``: ``summary``, or ``result.summary()`` (NaN as null);
    - ``cost_over_time.png``: slippage, fees, impact and net (bps) and the mid, per tick;
    - ``latency.png``: per-tick latency histograms by stage, or for a columnar run
      (empty ``result.latency``) the batch timings per tick; skipped when neither exists;
    - ``depth.png`` when ``depth`` = ``(bid_px, bid_sz, ask_px, ask_sz)`` best first is given
      (e.g. ``L2Book.top(20)``);
    - ``ac_schedule.png`` and ``ac_frontier.png`` when both ``ac`` (Almgren-Chriss
      parameters, time in seconds) and ``ac_X`` (the order size, base units) are given.

    ``title`` heads every chart and the Markdown (default: the order, e.g.
    ``BTC-USDT buy 100 quote market``).

    >>> files = write_report(result, "report", depth=book.top(20),   # doctest: +SKIP
    ...                      ac=result.impact, ac_X=0.5)
    >>> sorted(files)                                                 # doctest: +SKIP
    ['ac_frontier.png', 'ac_schedule.png', 'cost_over_time.png', 'depth.png', 'latency.png',
     'summary.json', 'summary.md']
    """
    if not isinstance(result, CostResult):
        raise TypeError(f"result must be a CostResult, got {type(result).__name__}")
    if (ac is None) != (ac_X is None):
        raise ValueError("ac and ac_X go together: give both (the Almgren-Chriss parameters "
                         f"and the order size in base units) or neither, got ac={ac!r}, "
                         f"ac_X={ac_X!r}")
    if ac is not None:
        _check_ac(ac, ac_X)
    if summary is None:
        summary = result.summary()
    elif not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a dict, got {type(summary).__name__}")
    title = _order_title(result) if title is None else str(title)
    base, quote, size_unit = _units(result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        files[name] = out / name
        files[name].write_text(text, encoding="utf-8")

    put("summary.json", summary_to_json(summary))
    put("summary.md", summary_to_markdown(summary, title=title))

    if depth is not None:
        fig = _figure((8, 4.5), title)
        plot_depth(fig.add_subplot(), depth, size_unit=size_unit, price_unit=quote)
        files["depth.png"] = _save(fig, out / "depth.png")

    fig = _figure((10, 6.5), title)
    ax_cost = fig.add_subplot(2, 1, 1)
    plot_costs(ax_cost, fig.add_subplot(2, 1, 2, sharex=ax_cost), result.table, quote=quote)
    files["cost_over_time.png"] = _save(fig, out / "cost_over_time.png")

    if len(result.latency):
        fig = _figure((8, 4.5), title)
        plot_latency(fig.add_subplot(), result.latency)
        files["latency.png"] = _save(fig, out / "latency.png")
    elif result.batch_latency:
        fig = _figure((8, 4.5), title)
        plot_batch_latency(fig.add_subplot(), result.batch_latency)
        files["latency.png"] = _save(fig, out / "latency.png")

    if ac is not None:
        fig = _figure((8, 4.5), title)
        plot_ac_schedule(fig.add_subplot(), ac, ac_X, size_unit=base)
        files["ac_schedule.png"] = _save(fig, out / "ac_schedule.png")
        fig = _figure((8, 4.5), title)
        plot_ac_frontier(fig.add_subplot(), ac, ac_X, quote=quote)
        files["ac_frontier.png"] = _save(fig, out / "ac_frontier.png")
    return files


# -- summary files ------------------------------------------------------------------------


def summary_to_json(summary: Mapping[str, Any]) -> str:
    """The summary as indented JSON: NaN and infinities become ``null`` (JSON has neither),
    numpy numbers and arrays become plain numbers and lists, dataclasses dicts.

    >>> print(summary_to_json({"net_bps": {"mean": 1.5, "p99": float("nan")}, "n": np.int64(3)}))
    {
      "net_bps": {
        "mean": 1.5,
        "p99": null
      },
      "n": 3
    }
    <BLANKLINE>
    """
    return to_json(summary)


def summary_to_markdown(summary: Mapping[str, Any], title: str | None = None) -> str:
    """The summary as Markdown: a dict whose values are all numbers (``{"mean": ..,
    "p50": ..}``) becomes a row of a table, its dotted path the metric name; rows with the
    same keys share a table; other values are listed in a ``value`` table.

    >>> print(summary_to_markdown({"ticks": 2, "costs": {
    ...     "net_bps": {"mean": 1.25, "p50": 1.0}, "fee_bps": {"mean": 5, "p50": None}}}))
    | metric | value |
    |---|---|
    | ticks | 2 |
    <BLANKLINE>
    | metric | mean | p50 |
    |---|---|---|
    | costs.net_bps | 1.25 | 1 |
    | costs.fee_bps | 5 | NaN |
    <BLANKLINE>
    """
    values: list[tuple[str, Any]] = []
    rows: list[tuple[str, dict[str, Any]]] = []
    _collect(json_safe(summary), "", values, rows)
    parts = [f"# {title}\n"] if title else []
    warning = (summary.get("fills") or {}).get("warning")
    if warning:
        # the first thing a reader sees: what the cost statistics leave out
        parts.append(f"**Unfilled orders:** {warning}.\n")
    if values:
        parts.append(_md_table(["metric", "value"], [[k, _fmt(v)] for k, v in values]))
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
    for name, row in rows:
        groups.setdefault(tuple(row), []).append((name, row))
    for keys, group in groups.items():
        parts.append(_md_table(["metric", *keys],
                               [[name, *(_fmt(row[k]) for k in keys)] for name, row in group]))
    return "\n".join(parts)


# -- charts -------------------------------------------------------------------------------


def plot_depth(ax: Axes, depth: Any, *, size_unit: str = "book units",
               price_unit: str = "quote") -> Axes:
    """Cumulative depth: size resting at each price or better, bids (green) and asks (red)
    as step lines from the best price outwards, the mid dashed. ``depth`` is
    ``(bid_px, bid_sz, ask_px, ask_sz)``, best first (``L2Book.top(n)``).

    >>> from matplotlib.figure import Figure
    >>> ax = plot_depth(Figure().add_subplot(), ([9.0], [1.0], [11.0, 12.0], [2.0, 3.0]))
    >>> ax.get_lines()[1].get_ydata().tolist()  # asks: 2, then 2 + 3
    [2.0, 5.0]
    """
    bid_px, bid_sz, ask_px, ask_sz = _depth_arrays(depth)
    for px, sz, colour, name in ((bid_px, bid_sz, _BID, "bids"), (ask_px, ask_sz, _ASK, "asks")):
        cum = np.cumsum(sz)
        n = len(px)
        label = f"{name} ({_g(cum[-1]) if n else 0} over {n} level{'s' if n != 1 else ''})"
        # "post": between level i and the next one outwards, levels 0..i are available
        ax.step(px, cum, where="post", color=colour, lw=1.5, label=label)
        if n:
            ax.fill_between(px, cum, step="post", color=colour, alpha=0.15)
    if len(bid_px) and len(ask_px):
        mid = (bid_px[0] + ask_px[0]) / 2
        ax.axvline(mid, color="gray", ls="--", lw=1, label=f"mid {_g(mid)}")
    ax.set(xlabel=f"price ({price_unit})", ylabel=f"cumulative size ({size_unit})",
           title=f"order book depth, top {max(len(bid_px), len(ask_px))} levels")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center")
    return ax


def plot_costs(ax_cost: Axes, ax_mid: Axes, table: pd.DataFrame, *, quote: str = "quote",
               max_points: int = 200_000) -> tuple[Axes, Axes]:
    """Costs per tick (``slippage_bps``, ``fee_bps``, ``impact_bps``, ``net_bps``, legend
    with their means) on ``ax_cost`` and the mid on ``ax_mid``, against ``recv_ns`` as UTC
    receive time. Beyond ``max_points`` ticks every k-th tick is drawn (the means use all).
    With a ``complete`` column, the means are of the complete ticks and the ticks where the
    book could not fill the order are marked (red, at the bottom) and counted in the title.

    >>> t = pd.DataFrame({"recv_ns": [0, 10**9], "mid": [100.0, 101.0], "slippage_bps": [1.0, 2],
    ...                   "fee_bps": [5.0, 5], "impact_bps": [0.0, 0], "net_bps": [6.0, 7]})
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); a, b = fig.add_subplot(211), fig.add_subplot(212)
    >>> a, b = plot_costs(a, b, t)
    >>> a.get_legend_handles_labels()[1][-1]
    'net (mean 6.5 bps)'
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame, got {type(table).__name__}")
    need = ["recv_ns", "mid", *(c for c, _, _ in COST_LINES)]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing} (expected the cost result's)")
    if not (isinstance(max_points, int) and max_points >= 2):
        raise ValueError(f"max_points must be an integer >= 2, got {max_points!r}")
    step = max(1, math.ceil(len(table) / max_points))
    # recv_ns is UTC nanoseconds: naive datetime64 is UTC, and matplotlib plots it natively
    t = pd.to_datetime(table["recv_ns"].to_numpy("int64")[::step], unit="ns").to_numpy()
    done = (complete_mask(table) if "complete" in table.columns
            else np.ones(len(table), bool))
    n_bad = int((~done).sum())
    for col, name, colour in COST_LINES:
        y = table[col].to_numpy(float)
        ax_cost.plot(t, y[::step], lw=1.4 if col == "net_bps" else 0.9, color=colour,
                     label=f"{name} (mean {_g(_nanmean(y[done]), 3)} bps"
                           f"{', complete ticks' if n_bad else ''})")
    ax_cost.axhline(0, color="gray", lw=0.5)
    thinned = f", every {step}th tick drawn" if step > 1 else ""
    unfilled = ""
    if n_bad:
        bad = ~done[::step]
        ax_cost.plot(t[bad], np.zeros(int(bad.sum())), "|", color="red", ms=8,
                     transform=ax_cost.get_xaxis_transform(),
                     label=f"book could not fill the order ({n_bad} ticks)")
        unfilled = f", {n_bad} not fillable"
    ax_cost.set(ylabel="bps of mid × filled",
                title=f"cost per tick ({len(table)} ticks{unfilled}{thinned})")
    # outside the axes: a legend over thousands of ticks would hide some
    ax_cost.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax_mid.plot(t, table["mid"].to_numpy(float)[::step], lw=0.9, color="tab:blue")
    ax_mid.set(xlabel="receive time (UTC)", ylabel=f"mid ({quote})", title="mid price")
    ax_mid.ticklabel_format(axis="y", useOffset=False, style="plain")
    if len(table) == 0:
        ax_cost.text(0.5, 0.5, "no ticks priced", transform=ax_cost.transAxes, ha="center")
    else:
        mdates = require("matplotlib.dates", feature=_CHARTS)

        loc = mdates.AutoDateLocator()
        ax_mid.xaxis.set_major_locator(loc)
        ax_mid.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax_cost.tick_params(labelbottom=False)
    return ax_cost, ax_mid


def plot_latency(ax: Axes, latency: pd.DataFrame, *, bins: int = 60) -> Axes:
    """Histograms of the per-tick latency of each stage (``decode_ns``, ``walk_ns``,
    ``models_ns``, ``total_ns``) in microseconds on a log x axis; the legend gives each
    stage's p50 and p99. Zeros (below the clock's resolution) are drawn at the smallest bin.

    >>> lat = pd.DataFrame({"walk_ns": [1000, 2000, 3000], "total_ns": [5000, 6000, 9000]})
    >>> from matplotlib.figure import Figure
    >>> [line.get_label() for line in plot_latency(Figure().add_subplot(), lat).patches][1]
    'total: p50 6 µs, p99 8.94 µs'
    """
    if not isinstance(latency, pd.DataFrame):
        raise TypeError(f"latency must be a DataFrame, got {type(latency).__name__}")
    cols = [f"{s}_ns" for s in STAGES if f"{s}_ns" in latency.columns]
    if not cols:
        raise ValueError(f"latency has none of the stage columns {[f'{s}_ns' for s in STAGES]}")
    us = {c: latency[c].to_numpy(float) / 1e3 for c in cols}
    us = {c: v[np.isfinite(v)] for c, v in us.items()}
    pos = np.concatenate([v[v > 0] for v in us.values()])
    if not len(pos):
        raise ValueError("latency has no positive finite value to draw")
    lo, hi = pos.min(), pos.max()
    if hi <= lo * 1.01:
        lo, hi = lo / 1.5, hi * 1.5
    edges = np.geomspace(lo, hi, bins + 1)
    colours = dict(zip(STAGES, ("tab:blue", "tab:orange", "tab:purple", "black"), strict=True))
    for c in cols:
        v = us[c]
        if not len(v):
            continue
        p50, p99 = percentiles(v, (50, 99))
        stage = c.removesuffix("_ns")
        ax.hist(np.clip(v, lo, hi), bins=edges, histtype="step", lw=1.4 if stage == "total"
                else 1.0, color=colours[stage],
                label=f"{stage}: p50 {_g(p50, 3)} µs, p99 {_g(p99, 3)} µs")
    ax.set_xscale("log")
    n = len(latency)
    ax.set(xlabel="latency per tick (µs, log scale)", ylabel="ticks",
           title=f"per-tick latency by stage ({n} ticks)")
    ax.legend(fontsize="small")
    return ax


def plot_batch_latency(ax: Axes, batch_latency: Mapping[str, float]) -> Axes:
    """A columnar run's stage timings: one bar per ``*_ns_per_tick`` entry (a batch's time
    over its ticks, so a mean, not a distribution), ``ticks_per_s`` in the title.

    >>> b = {"read_ns_per_tick": 50.0, "walk_ns_per_tick": 30.0, "total_ns_per_tick": 80.0,
    ...      "ticks_per_s": 12.5e6}
    >>> from matplotlib.figure import Figure
    >>> ax = plot_batch_latency(Figure().add_subplot(), b)
    >>> [float(p.get_height()) for p in ax.patches], ax.get_title()
    ([50.0, 30.0, 80.0], 'columnar run: ns per tick by stage (12.5M ticks/s)')
    """
    if not isinstance(batch_latency, Mapping):
        raise TypeError(f"batch_latency must be a dict, got {type(batch_latency).__name__}")
    stages = {k.removesuffix("_ns_per_tick"): float(v) for k, v in batch_latency.items()
              if k.endswith("_ns_per_tick")}
    if not stages:
        raise ValueError("batch_latency has no '<stage>_ns_per_tick' entry, got keys "
                         f"{sorted(batch_latency)}")
    names = list(stages)
    bars = ax.bar(names, [stages[k] for k in names],
                  color=["black" if k == "total" else "tab:blue" for k in names])
    ax.bar_label(bars, labels=[_g(v, 3) for v in stages.values()])
    rate = batch_latency.get("ticks_per_s")
    rate_s = f" ({_si(rate)} ticks/s)" if isinstance(rate, numbers.Real) and math.isfinite(
        rate) else ""
    ax.set(xlabel="stage", ylabel="ns per tick",
           title=f"columnar run: ns per tick by stage{rate_s}")
    return ax


def plot_ac_schedule(ax: Axes, ac: ACParams, X: float, *, size_unit: str = "base units",
                     time_unit: str = "s") -> Axes:
    """Almgren-Chriss holdings ``x_k`` against ``t_k = k tau`` for ``ac.lam``, and for
    ``lam = 0`` (the straight line) for reference.

    >>> p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, lam=0.5, T=4, N=4)
    >>> from matplotlib.figure import Figure
    >>> ax = plot_ac_schedule(Figure().add_subplot(), p, 8.0)
    >>> ax.get_lines()[1].get_ydata().tolist()  # the reference line
    [8.0, 6.0, 4.0, 2.0, 0.0]
    """
    _check_ac(ac, X)
    t = np.arange(ac.N + 1) * ac.tau
    x = trajectory(ac, X)
    ax.plot(t, x, "o-", ms=3, color="tab:blue", lw=1.5, label=f"optimal, λ = {_g(ac.lam)}")
    ax.plot(t, trajectory(replace(ac, lam=0.0), X), "--", color="gray", lw=1,
            label="λ = 0 (risk neutral, straight line)")
    ax.axhline(0, color="gray", lw=0.5)
    half = ""
    if ac.lam > 0 and ac.sigma > 0:
        half = f", half-life 1/κ = {_g(ac.half_life, 3)} {time_unit}"
    ax.set(xlabel=f"time ({time_unit})", ylabel=f"holdings x_k ({size_unit})",
           title=f"Almgren-Chriss schedule: X = {_g(X)} over T = {_g(ac.T)} {time_unit}, "
                 f"N = {ac.N}{half}")
    ax.legend()
    return ax


def plot_ac_frontier(ax: Axes, ac: ACParams, X: float, *, quote: str = "quote",
                     lambdas: Sequence[float] | None = None) -> Axes:
    """The efficient frontier: expected shortfall ``E`` against its standard deviation
    ``sqrt(V)`` (both quote) over ``lambdas`` (default: 49 log-spaced values over six decades
    around ``ac.lam``, or around ``eta_tilde / (sigma T)^2``, where ``kappa T = 1``, when
    ``ac.lam <= 0``); ``ac.lam`` and ``lam = 0`` are marked.

    >>> p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, lam=0.5, T=4, N=4)
    >>> from matplotlib.figure import Figure
    >>> ax = plot_ac_frontier(Figure().add_subplot(), p, 8.0, lambdas=[0.1, 1.0])
    >>> ax.get_lines()[0].get_xdata().size  # 0.1, 1.0, and 0 and 0.5 added
    4
    """
    _check_ac(ac, X)
    if lambdas is None:
        ref = ac.lam
        if not ref > 0:
            ref = ac.eta_tilde / (ac.sigma * ac.T) ** 2 if ac.sigma > 0 else 1.0
        lambdas = np.geomspace(ref * 1e-3, ref * 1e3, 49)
    f = frontier(ac, X, [*np.ravel(np.asarray(lambdas, float)), ac.lam])
    ax.plot(f.SD, f.E, ".-", ms=3, lw=1, color="tab:blue", label="frontier (λ grid)")
    me = f[f.lam == ac.lam].iloc[0]
    zero = f[f.lam == 0.0].iloc[0]
    ax.plot([zero.SD], [zero.E], "s", color="gray", label=f"λ = 0: E {_g(zero.E, 4)}, "
            f"SD {_g(zero.SD, 4)}")
    if ac.lam != 0:
        ax.plot([me.SD], [me.E], "o", ms=8, color="tab:red",
                label=f"λ = {_g(ac.lam)}: E {_g(me.E, 4)}, SD {_g(me.SD, 4)}")
    ax.set(xlabel=f"standard deviation of shortfall √V ({quote})",
           ylabel=f"expected shortfall E ({quote})",
           title=f"Almgren-Chriss efficient frontier, X = {_g(X)}, "
                 f"λ from {_g(f.lam[f.lam > 0].min() if (f.lam > 0).any() else 0)} to "
                 f"{_g(f.lam.max())} per {quote}")
    ax.legend(fontsize="small")
    return ax


# -- helpers ------------------------------------------------------------------------------


_CHARTS = "the report's charts"


def _figure(size: tuple[float, float], title: str) -> Figure:
    fig = require("matplotlib.figure", feature=_CHARTS).Figure(figsize=size, layout="tight")
    require("matplotlib.backends.backend_agg", feature=_CHARTS).FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    # no Software/date metadata: equal runs give equal bytes
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    fig.clear()
    return path


def _collect(d: Mapping[str, Any], prefix: str, values: list, rows: list) -> None:
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and all(
                x is None or (isinstance(x, int | float) and not isinstance(x, bool))
                for x in v.values()):
            rows.append((name, v))
        elif isinstance(v, Mapping) and v:
            _collect(v, f"{name}.", values, rows)
        else:
            values.append((name, v))


def _fmt(v: Any) -> str:
    if v is None:
        return "NaN"  # json_safe made NaN None; a real None in a numbers row reads the same
    if isinstance(v, bool | str):
        s = str(v)
    elif isinstance(v, int):
        s = str(v)  # ns timestamps and counts: every digit
    elif isinstance(v, float):
        s = _g(v, 6)
    else:
        s = json.dumps(v)
        s = s if len(s) <= 200 else s[:197] + "..."
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _g(v: float, digits: int = 6) -> str:
    return f"{v:.{digits}g}"


def _si(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _nanmean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else math.nan


def _depth_arrays(depth: Any) -> tuple[np.ndarray, ...]:
    try:
        parts = tuple(depth)
    except TypeError:
        parts = ()
    if len(parts) != 4:
        raise ValueError("depth must be (bid_px, bid_sz, ask_px, ask_sz) arrays best first "
                         f"(e.g. L2Book.top(n)), got {type(depth).__name__}")
    names = ("bid_px", "bid_sz", "ask_px", "ask_sz")
    arrs = []
    for name, a in zip(names, parts, strict=True):
        try:
            arr = np.asarray(a, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"depth.{name} must be an array of numbers, got {a!r}") from None
        if arr.ndim != 1 or not np.all(np.isfinite(arr)):
            raise ValueError(f"depth.{name} must be a 1-D array of finite numbers, got {a!r}")
        arrs.append(arr)
    for px, sz, side in ((0, 1, "bid"), (2, 3, "ask")):
        if len(arrs[px]) != len(arrs[sz]):
            raise ValueError(f"depth: {side}_px and {side}_sz must have the same length, got "
                             f"{len(arrs[px])} and {len(arrs[sz])}")
    return tuple(arrs)


def _check_ac(ac: Any, X: Any) -> None:
    if not isinstance(ac, ACParams):
        raise TypeError(f"ac must be ACParams, got {type(ac).__name__}")
    if isinstance(X, bool) or not isinstance(X, numbers.Real) or not math.isfinite(X) or X == 0:
        raise ValueError(f"ac_X must be a finite nonzero order size in base units, got {X!r}")


def _order_title(result: CostResult) -> str:
    o = result.order
    return f"{o.inst} {o.side} {_g(o.quantity)} {o.unit} {o.order_type}"


def _units(result: CostResult) -> tuple[str, str, str]:
    """(base, quote, book size unit) labels from the instrument id, e.g. BTC-USDT-SWAP."""
    parts = result.instrument.inst.split("-")
    base = parts[0] if parts[0] else "base units"
    quote = parts[1] if len(parts) > 1 and parts[1] else "quote"
    size = base if result.instrument.inst_type == "SPOT" else "contracts"
    return base, quote, size
