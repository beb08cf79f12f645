"""Summaries of a cost run: means and percentiles of each cost, and of the latency.

Where the visible book could not fill the order (a tick whose ``complete`` is False), the
costs are those of the part that was filled: averaging them with full fills would report a
cost for an order that was never priced. So the statistics cover the complete ticks only
(unless asked: ``include_incomplete=True``), and the summary says so and reports the
incomplete ticks apart (how many, and what share of the order the book could fill).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simlab.monitor.stats import DEFAULT_PERCENTILES, percentile_summary

#: Per-tick columns summarised, with their display names.
SUMMARY_COLUMNS = {
    "slippage_bps": "slippage (bps)", "fee_bps": "fees (bps)", "impact_bps": "impact (bps)",
    "net_bps": "net cost (bps)", "slippage_quote": "slippage (quote)",
    "fee_quote": "fees (quote)", "impact_quote": "impact (quote)", "net_quote": "net cost (quote)",
    "maker_prob": "maker probability", "spread_bps": "spread (bps)",
}
PERCENTILES = DEFAULT_PERCENTILES
#: What the cost statistics cover, by ``include_incomplete``.
COVERS = {False: "complete", True: "all"}


def describe(x: Any) -> dict[str, float]:
    """Count, mean, std, min, p50, p90, p99 and max of the finite values of ``x``.

    >>> describe([1.0, 2.0, 3.0, float("nan")])["p50"]
    2.0
    """
    return percentile_summary(x, PERCENTILES)


def latency_summary(lat: pd.DataFrame) -> dict[str, dict[str, float]]:
    """p50/p90/p99/max of each latency stage, in microseconds.

    >>> latency_summary(pd.DataFrame({"total_ns": [1000, 2000, 3000]}))["total"]["p50_us"]
    2.0
    """
    return {col.removesuffix("_ns"): percentile_summary(
                lat[col].to_numpy(dtype=np.float64), PERCENTILES, stats=("p", "max", "mean"),
                only_finite=False, scale=1e3, suffix="_us")
            for col in lat.columns if len(lat[col])}


def complete_mask(table: pd.DataFrame) -> np.ndarray:
    """Per tick of a cost table, whether the visible book filled the whole order (its
    ``complete`` column, as a bool array).

    >>> complete_mask(pd.DataFrame({"complete": [True, False]})).tolist()
    [True, False]
    """
    return table["complete"].to_numpy(dtype=bool) if len(table) else np.zeros(0, bool)


def covered(table: pd.DataFrame, include_incomplete: bool = False) -> pd.DataFrame:
    """The ticks the cost statistics cover: those where the book filled the whole order,
    or every tick with ``include_incomplete`` (an incomplete one priced for the part filled).

    >>> len(covered(pd.DataFrame({"complete": [True, False]})))
    1
    """
    return table if include_incomplete else table[complete_mask(table)]


def fill_summary(table: pd.DataFrame, include_incomplete: bool = False) -> dict[str, Any]:
    """How often the book filled the order, and what the cost statistics cover: ``ticks``,
    ``complete`` and ``incomplete`` counts, ``incomplete_pct``, the ``filled_share``
    (filled / requested) over all ticks and over the incomplete ones, ``covers``
    (``"complete"``: the statistics are of the complete ticks; ``"all"``) and
    ``covered_ticks``; ``warning`` when some or all ticks could not be filled.

    >>> t = pd.DataFrame({"complete": [True, True, False, False],
    ...                   "filled_share": [1.0, 1.0, 0.25, 0.5]})
    >>> f = fill_summary(t)
    >>> f["incomplete"], f["covered_ticks"], f["incomplete_filled_share"]["p50"]
    (2, 2, 0.375)
    >>> print(f["warning"].replace("; ", ";\\n"))
    2 of 4 ticks (50.0 %) the book could not fill the order: filled share p50 0.375;
    statistics below cover the 2 complete ticks
    """
    n = len(table)
    done = complete_mask(table)
    share = (table["filled_share"].to_numpy(dtype=np.float64) if "filled_share" in table
             else np.full(n, np.nan))
    nc = int(done.sum())
    ni = n - nc
    part = describe(share[~done])
    out: dict[str, Any] = {
        "ticks": n, "complete": nc, "incomplete": ni,
        "incomplete_pct": 100.0 * ni / n if n else math.nan,
        "filled_share": describe(share), "incomplete_filled_share": part,
        "covers": COVERS[include_incomplete], "covered_ticks": n if include_incomplete else nc,
    }
    if ni:
        head = (f"{ni:,} of {n:,} ticks ({out['incomplete_pct']:.1f} %) the book could not "
                f"fill the order: filled share p50 {_share(part['p50'])}")
        if nc == 0 and not include_incomplete:
            out["warning"] = (f"the book could not fill the order at any of the {n:,} ticks "
                              f"(filled share p50 {_share(part['p50'])}, max "
                              f"{_share(part['max'])}): no cost statistic is available; "
                              "price a smaller order, or ask for the costs of the part "
                              "filled (--include-incomplete, include_incomplete=True)")
        elif include_incomplete:
            out["warning"] = (f"{head}; statistics below cover all {n:,} ticks, the "
                              f"incomplete ones priced for the part filled only")
        else:
            out["warning"] = f"{head}; statistics below cover the {nc:,} complete ticks"
    return out


def _share(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.3g}"


def time_summary(table: pd.DataFrame) -> dict[str, Any]:
    """First and last priced tick on both clocks: exchange time (``ts_ms``, what the exchange
    stamped, what ``simlab verify`` prints) and local receive time (``recv_ns``); ISO strings
    name their clock.

    >>> time_summary(pd.DataFrame({"ts_ms": [1000], "recv_ns": [1_005_000_000]}))["exchange"]
    {'first': '1970-01-01T00:00:01.000000Z', 'last': '1970-01-01T00:00:01.000000Z'}
    """
    from simlab.feed.source import fmt_ns

    if not len(table):
        return {"first_recv_ns": None, "last_recv_ns": None, "first_ts_ms": None,
                "last_ts_ms": None, "exchange": None, "receive": None}
    ts = table["ts_ms"].to_numpy()
    recv = table["recv_ns"].to_numpy()
    return {"first_recv_ns": int(recv[0]), "last_recv_ns": int(recv[-1]),
            "first_ts_ms": int(ts[0]), "last_ts_ms": int(ts[-1]),
            "exchange": {"first": fmt_ns(int(ts[0]) * 10**6), "last": fmt_ns(int(ts[-1]) * 10**6)},
            "receive": {"first": fmt_ns(int(recv[0])), "last": fmt_ns(int(recv[-1]))}}


def summarize_result(result: Any, include_incomplete: bool = False) -> dict[str, Any]:
    """The summary of a :class:`~simlab.sim.pipeline.CostResult` as a JSON-ready dict: the
    cost statistics cover the complete ticks only unless ``include_incomplete`` (see
    :func:`fill_summary`, under ``"fills"``); ``costs_incomplete`` are those of the
    incomplete ticks (the part filled), apart.

    >>> summarize_result(r)["fills"]["incomplete"]                    # doctest: +SKIP
    312
    """
    t = result.table
    fills = fill_summary(t, include_incomplete)
    costs = covered(t, include_incomplete)
    out: dict[str, Any] = {
        "order": result.order.as_dict(),
        "instrument": {"inst": result.instrument.inst, "inst_type": result.instrument.inst_type,
                       "ct_val": result.instrument.ct_val},
        "mode": result.mode,
        "ticks": len(t),
        "counts": {k: v for k, v in result.counts.items() if k != "streams"},
        "incomplete_fills": fills["incomplete"],
        "fills": fills,
        "time": time_summary(t),
        "costs_cover": fills["covers"],
        "costs": {k: describe(costs[k]) for k in SUMMARY_COLUMNS if k in t},
    }
    if fills["incomplete"] and not include_incomplete:
        part = t[~complete_mask(t)]
        out["costs_incomplete"] = {k: describe(part[k]) for k in SUMMARY_COLUMNS if k in t}
    if result.impact is not None:
        p = result.impact
        out["impact_params"] = {"sigma": p.sigma, "eta": p.eta, "gamma": p.gamma,
                                "epsilon": p.epsilon, "lam": p.lam, "T": p.T, "N": p.N}
    if len(result.latency):
        out["latency_us"] = latency_summary(result.latency)
    if result.batch_latency is not None:
        out["batch_latency"] = dict(result.batch_latency)
    if "streams" in result.counts:
        out["streams"] = result.counts["streams"]
    return out


def format_summary(s: dict[str, Any]) -> str:
    """A terminal table of a summary.

    >>> print(format_summary({"ticks": 0, "costs": {}, "order": {}}).splitlines()[0])
    order: {}
    """
    lines = [f"order: {s.get('order')}"]
    if "instrument" in s:
        lines.append(f"instrument: {s['instrument']}  ticks priced: {s['ticks']}  "
                     f"incomplete fills: {s.get('incomplete_fills', 0)}  mode: {s.get('mode')}")
    tm = s.get("time") or {}
    if tm.get("exchange"):
        lines.append(f"ticks from {tm['exchange']['first']} to {tm['exchange']['last']} "
                     f"(exchange time); received {tm['receive']['first']} to "
                     f"{tm['receive']['last']} (receive time)")
    fills = s.get("fills") or {}
    costs = s.get("costs", {})
    if fills.get("warning"):
        loud = fills["covered_ticks"] == 0 and fills["ticks"] > 0
        lines.append(("WARNING: " if loud else "") + fills["warning"])
    elif fills.get("ticks"):
        lines.append(f"the book filled the order at all {fills['ticks']:,} ticks")
    if costs and fills.get("ticks") and fills.get("covered_ticks") == 0:
        lines.append("no cost statistic is available (no tick where the order was filled)")
    elif costs:
        lines.append(f"{'':22}{'mean':>12}{'p50':>12}{'p90':>12}{'p99':>12}")
        for k, d in costs.items():
            name = SUMMARY_COLUMNS.get(k, k)
            lines.append(f"{name:22}" + "".join(f"{_fmt(d[c]):>12}" for c in
                                                ("mean", "p50", "p90", "p99")))
    lat = s.get("latency_us")
    if lat:
        lines.append("latency per tick (us):  " + "   ".join(
            f"{k} p50 {v['p50_us']:.1f} p99 {v['p99_us']:.1f}" for k, v in lat.items()))
    b = s.get("batch_latency")
    if b:
        lines.append("columnar run, ns per tick:  " + "  ".join(
            f"{k.removesuffix('_ns_per_tick')} {v:,.0f}" for k, v in b.items()
            if k.endswith("_ns_per_tick")) + f"  ({b.get('ticks_per_s', 0):,.0f} ticks/s)")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.1f}"
