"""The monitor as text (``--stats``) and as figures (latency histograms, resource use)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .histogram import PERCENTILES
from .stats import percentile_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .monitor import Monitor


def _f(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    w = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(  # noqa: E731
        c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
    return [line(header), "  ".join("-" * x for x in w), *map(line, rows)]


def format_monitor(m: Monitor, title: str | None = "performance") -> str:
    """Stage latencies (us), feed latency (ms), message rates and resource use as aligned
    plain-text tables.

    >>> from simlab.monitor import Monitor
    >>> m = Monitor(resources=False); m.add("walk", 1_000)
    >>> print(format_monitor(m, None).splitlines()[0])
    stage latency (us)  count  mean  p50  p90  p99  p99.9  max
    """
    s = m.summary()
    out: list[str] = [title] if title else []
    pc = [percentile_name(q) for q in PERCENTILES]
    if s["stages"]:
        rows = [[k, _f(v["count"]), *(_f(v[f"{c}_us"]) for c in ["mean", *pc, "max"])]
                for k, v in s["stages"].items()]
        out += _table(["stage latency (us)", "count", "mean", *pc, "max"], rows)
    if s["feed_latency"]:
        out.append("")
        rows = [[k, _f(v["count"]), *(_f(v[f"{c}_ms"]) for c in ["mean", *pc, "max"]),
                 _f(v["negative"])] for k, v in s["feed_latency"].items()]
        out += _table(["feed latency (ms)", "count", "mean", *pc, "max", "< 0"], rows)
    if s["streams"]:
        out.append("")
        rows = [[k, _f(v["messages"]), _f(v["span_s"]), _f(v["rate_per_s"])]
                for k, v in s["streams"].items()]
        out += _table(["stream", "messages", "span s", "msg/s"], rows)
    if s["notices"]:
        out.append("notices: " + ", ".join(f"{k} {n}" for k, n in sorted(s["notices"].items())))
    r = s["resources"]
    if r and r.get("samples"):
        out.append("")
        out.append(f"process: CPU {_f(r['cpu_pct_mean'])} % mean, {_f(r['cpu_pct_max'])} % max "
                   f"({_f(r['cpu_s'], 2)} s); RSS {_f(r['rss_mb_last'])} MB, peak "
                   f"{_f(r['rss_mb_peak'])} MB; threads {r['threads_max']}; "
                   f"{r['samples']} samples over {_f(r['span_s'])} s")
    if s["events"] and s["events_per_wall_s"]:
        out.append(f"processed {s['events']:,} events in {s['wall_s']:.2f} s wall "
                   f"({s['events_per_wall_s']:,.0f}/s)")
    return "\n".join(out)


def plot_latency(m: Monitor, ax: Axes | None = None, *, stages: list[str] | None = None,
                 feed: bool = False) -> Axes:
    """The latency histograms of ``stages`` (default all; ``feed=True``: the per-instrument
    feed latencies instead) as step lines on a log time axis, with p50 and p99 marked.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> from simlab.monitor import Monitor
    >>> m = Monitor(resources=False); m.add_many("walk", [900, 1_000, 5_000])
    >>> plot_latency(m).get_xscale()
    'log'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    m.flush()
    hists = m.feed if feed else m.stages
    names = stages if stages is not None else list(hists)
    unknown = [n for n in names if n not in hists]
    if unknown:
        raise ValueError(f"no {'instrument' if feed else 'stage'} {unknown} in this monitor; "
                         f"it has {list(hists)}")
    scale, unit = (1e6, "ms") if feed else (1e3, "us")
    for name in names:
        h = hists[name]
        if not h.count:
            continue
        low, high, cnt = h.nonzero()
        lo, hi = np.maximum(low, 1) / scale, np.maximum(high, 2) / scale
        dens = cnt / h.count / np.log10(hi / lo)  # share per decade: comparable across bins
        line, = ax.plot(np.c_[lo, hi].ravel(), np.repeat(dens, 2),
                        label=f"{name} (n={h.count:,})", lw=1.2)
        p50, p99 = h.percentile(50) / scale, h.percentile(99) / scale
        ax.axvline(p50, color=line.get_color(), ls="--", lw=0.8)
        ax.axvline(p99, color=line.get_color(), ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"latency ({unit}); dashed p50, dotted p99")
    ax.set_ylabel("share per decade")
    ax.set_title("feed latency per instrument" if feed else "stage latency")
    if names:
        ax.legend(fontsize=8)
    return ax


def plot_resources(m: Monitor, axes: Any = None) -> Any:
    """CPU %, RSS (MB) and threads over the run, from the resource samples: three axes
    sharing the time axis (created when ``axes`` is None); returns them."""
    import matplotlib.pyplot as plt

    df = m.resources_frame()
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    for ax, col, label in zip(axes, ("cpu_pct", "rss_mb", "threads"),
                              ("CPU (%)", "RSS (MB)", "threads"), strict=True):
        ax.plot(df["elapsed_s"], df[col], marker=".", lw=1)
        ax.set_ylabel(label)
    axes[-1].set_xlabel("seconds since start")
    axes[0].set_title(f"resource use ({len(df)} samples)")
    return axes


def plot_rates(m: Monitor, ax: Axes | None = None) -> Axes:
    """Messages per second of feed time, per channel."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    s = m.rate_series()
    for col in s.columns:
        ax.plot(s.index, s[col], lw=1, label=col)
    ax.set_ylabel("messages / s")
    ax.set_title("message rate (receive time)")
    if len(s.columns):
        ax.legend(fontsize=8)
    return ax
