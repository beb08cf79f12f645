"""Summaries of a cost run: means and percentiles of each cost, and of the latency."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Per-tick columns summarised, with their display names.
SUMMARY_COLUMNS = {
    "slippage_bps": "slippage (bps)", "fee_bps": "fees (bps)", "impact_bps": "impact (bps)",
    "net_bps": "net cost (bps)", "slippage_quote": "slippage (quote)",
    "fee_quote": "fees (quote)", "impact_quote": "impact (quote)", "net_quote": "net cost (quote)",
    "maker_prob": "maker probability", "spread_bps": "spread (bps)",
}
PERCENTILES = (50, 90, 99)


def describe(x: Any) -> dict[str, float]:
    """Count, mean, std, min, p50, p90, p99 and max of the finite values of ``x``.

    >>> describe([1.0, 2.0, 3.0, float("nan")])["p50"]
    2.0
    """
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not len(a):
        return {"count": 0, "mean": math.nan, "std": math.nan, "min": math.nan,
                **{f"p{p}": math.nan for p in PERCENTILES}, "max": math.nan}
    pct = np.percentile(a, PERCENTILES)
    return {"count": len(a), "mean": float(a.mean()),
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "min": float(a.min()),
            **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pct, strict=True)},
            "max": float(a.max())}


def latency_summary(lat: pd.DataFrame) -> dict[str, dict[str, float]]:
    """p50/p90/p99/max of each latency stage, in microseconds.

    >>> latency_summary(pd.DataFrame({"total_ns": [1000, 2000, 3000]}))["total"]["p50_us"]
    2.0
    """
    out = {}
    for col in lat.columns:
        a = lat[col].to_numpy(dtype=np.float64) / 1e3
        if not len(a):
            continue
        p = np.percentile(a, (50, 90, 99))
        out[col.removesuffix("_ns")] = {"p50_us": float(p[0]), "p90_us": float(p[1]),
                                        "p99_us": float(p[2]), "max_us": float(a.max()),
                                        "mean_us": float(a.mean())}
    return out


def summarize_result(result: Any) -> dict[str, Any]:
    """The summary of a :class:`~simlab.sim.pipeline.CostResult` as a JSON-ready dict."""
    t = result.table
    out: dict[str, Any] = {
        "order": result.order.as_dict(),
        "instrument": {"inst": result.instrument.inst, "inst_type": result.instrument.inst_type,
                       "ct_val": result.instrument.ct_val},
        "mode": result.mode,
        "ticks": len(t),
        "counts": {k: v for k, v in result.counts.items() if k != "streams"},
        "incomplete_fills": int((~t["complete"]).sum()) if len(t) else 0,
        "time": {"first_recv_ns": int(t["recv_ns"].iloc[0]) if len(t) else None,
                 "last_recv_ns": int(t["recv_ns"].iloc[-1]) if len(t) else None},
        "costs": {k: describe(t[k]) for k in SUMMARY_COLUMNS if k in t},
    }
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
    costs = s.get("costs", {})
    if costs:
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
