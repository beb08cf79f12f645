"""The performance monitor: stage latencies, feed latency, message rates, resource use.

A :class:`Monitor` collects, in constant memory:

- **stage latencies** (ns): one :class:`~simlab.monitor.histogram.LatencyHistogram` per
  stage name (``parse``, ``apply``, ``walk``, ``maker_taker``, ``costs``, ``total`` in the cost
  pipeline; ``parse``, ``check``, ``store``, ``write`` in the recorder ...);
- **feed latency** per instrument: receive time minus exchange time (network plus the
  venue's own delay plus any clock offset between the two machines);
- **message counts and rates** per stream, in feed time (the rate the feed sent at) and as a
  per-second series;
- **resource use** over time (:class:`~simlab.monitor.resources.ResourceSampler`: CPU,
  RSS, threads), sampled from a thread while the monitor is started.

Values are buffered in plain lists and binned in numpy batches (every ``flush_every``
values, and before anything is read), so recording one value costs a list append. Nothing
here imports pandas until a DataFrame is asked for (the recorder keeps pandas out of its
process), and nothing imports the rest of simlab: events are read by their attributes
(``kind``, ``channel``, ``inst``, ``recv_ns``, ``ts_ms``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np

from .histogram import PERCENTILES, LatencyHistogram
from .resources import ResourceSampler
from .stats import percentile_name

_NS_PER_MS = 1_000_000
_PCOLS = [percentile_name(q) for q in PERCENTILES]


class Monitor:
    """Collect per-stage latencies, feed latency, message rates and resource use.

    ``resources``: sample CPU/RSS/threads every ``interval`` seconds while started
    (:meth:`start`/:meth:`stop`, or ``with monitor:``). ``flush_every``: values buffered
    before they are binned.

    >>> m = Monitor(resources=False)
    >>> for ns in (1_500, 2_000, 2_500, 40_000):
    ...     m.add("apply", ns)
    >>> s = m.summary()["stages"]["apply"]
    >>> s["count"], s["max_us"]
    (4, 40.0)
    >>> m.latency_frame()[["stage", "count", "p50_us"]]     # doctest: +NORMALIZE_WHITESPACE
       stage  count  p50_us
    0  apply      4     2.0
    """

    def __init__(self, *, resources: bool = True, interval: float = 1.0,
                 flush_every: int = 4096) -> None:
        if not (isinstance(flush_every, int) and flush_every >= 1):
            raise ValueError(f"flush_every must be an int >= 1, got {flush_every!r}")
        self.flush_every = flush_every
        self.stages: dict[str, LatencyHistogram] = {}
        self.feed: dict[str, LatencyHistogram] = {}
        self.messages: Counter = Counter()  # (kind, channel, inst) -> n
        self.notices: Counter = Counter()  # notice kind -> n
        self._span: dict[tuple[str, str], list[int]] = {}  # stream -> [first, last] recv_ns
        self._series: defaultdict = defaultdict(Counter)  # channel -> {second: n}
        self._stage_buf: dict[str, list[int]] = {}
        # (channel, inst) -> (receive times, exchange times, kind), binned every flush_every
        self._ev_bufs: dict[tuple[str, str], tuple[list[int], list[int], str]] = {}
        self._ev_pending = 0
        self._pending = 0
        self.resources = ResourceSampler(interval) if resources else None
        self.wall_start: float | None = None
        self.wall_end: float | None = None
        self.events = 0
        # the summary this monitor was restored from (from_summary): its resources and wall
        # time stand in for the sampler's
        self._summary: dict[str, Any] | None = None

    # -- recording ----------------------------------------------------------------------------
    def add(self, stage: str, ns: int) -> None:
        """Record one latency (ns) of ``stage``."""
        buf = self._stage_buf.get(stage)
        if buf is None:
            buf = self._stage_buf[stage] = []
            self.stages.setdefault(stage, LatencyHistogram())
        buf.append(ns)
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()

    def add_many(self, stage: str, values: Iterable[int]) -> None:
        """Record many latencies (ns) of one stage."""
        self.flush()
        self.stages.setdefault(stage, LatencyHistogram()).add_many(values)

    def add_rows(self, names: Sequence[str], rows: Sequence[Sequence[int]]) -> None:
        """Record many ticks at once: ``rows[i][j]`` is the ns of stage ``names[j]`` at tick
        ``i``; a negative value means the stage did not run at that tick.

        >>> m = Monitor(resources=False)
        >>> m.add_rows(("walk", "models"), [(900, 1_200), (1_100, -1)])
        >>> m.stages["walk"].count, m.stages["models"].count
        (2, 1)
        """
        if not len(rows):
            return
        k = len(names)
        if any(len(r) != k for r in (rows[0], rows[-1])):
            raise ValueError(f"rows must be {k} values each (one per stage in {list(names)}),"
                             f" got {len(rows[0])}")
        try:  # twice as fast as np.asarray on a list of tuples
            a = np.fromiter(chain.from_iterable(rows), np.int64, len(rows) * k).reshape(-1, k)
        except ValueError:
            raise ValueError(f"rows must be {k} integers each (one per stage in "
                             f"{list(names)})") from None
        for j, name in enumerate(names):
            col = a[:, j]
            col = col[col >= 0]
            if col.size:
                self.stages.setdefault(name, LatencyHistogram()).add_many(col)

    def observe(self, ev: Any) -> None:
        """Count one feed event (a book tick, trade or notice of :mod:`simlab.feed.events`)
        and, when it has both times, its feed latency."""
        if ev.kind == "notice":
            self.notices[ev.what] += 1
            self.events += 1
            return
        key = (ev.channel, ev.inst)
        b = self._ev_bufs.get(key)
        if b is None:
            b = self._ev_bufs[key] = ([], [], ev.kind)
        b[0].append(ev.recv_ns)
        b[1].append(ev.ts_ms)
        self._ev_pending += 1
        if self._ev_pending >= self.flush_every:
            self._flush_events()

    def observe_rows(self, kind: str, channel: str, inst: str, rows: Sequence[Sequence[Any]],
                     recv_at: int, ts_at: int) -> None:
        """Count many messages of one stream from rows that hold their receive time (ns) at
        index ``recv_at`` and exchange time (ms) at ``ts_at`` (the cost pipeline's priced
        ticks: no per-event call on the hot path)."""
        if len(rows):
            n = len(rows)
            self._flush_events()
            self.events += n
            self._add_stream(kind, channel, inst,
                             np.fromiter((r[recv_at] for r in rows), np.int64, n),
                             np.fromiter((r[ts_at] for r in rows), np.int64, n))

    def observe_message(self, kind: str, channel: str, inst: str, recv_ns: int,
                        ts_ms: int | None) -> None:
        """Count one message of a stream (for code that has no feed events, e.g. the
        recorder); ``ts_ms`` None when the message carries no exchange time."""
        b = self._ev_bufs.get((channel, inst))
        if b is None:
            b = self._ev_bufs[(channel, inst)] = ([], [], kind)
        b[0].append(recv_ns)
        b[1].append(-1 if ts_ms is None else ts_ms)
        self._ev_pending += 1
        if self._ev_pending >= self.flush_every:
            self._flush_events()

    def observe_arrays(self, kind: str, channel: str, inst: str, recv_ns: np.ndarray,
                       ts_ms: np.ndarray) -> None:
        """Count many messages of one stream at once (a columnar replay); ``ts_ms`` < 0
        where a message carries no exchange time.

        >>> m = Monitor(resources=False)
        >>> m.observe_arrays("book", "books", "X", np.array([2_000_000, 3_000_000]),
        ...                  np.array([1, 2]))
        >>> m.feed["X"].max, m.summary()["streams"]["books:X"]["messages"]
        (1000000, 2)
        """
        self._flush_events()
        r = np.asarray(recv_ns, np.int64)
        self.events += len(r)
        self._add_stream(kind, channel, inst, r, np.asarray(ts_ms, np.int64))

    def flush(self) -> None:
        """Bin everything buffered (done automatically; reading does it too)."""
        for name, buf in self._stage_buf.items():
            if buf:
                self.stages[name].add_many(buf)
                buf.clear()
        self._pending = 0
        self._flush_events()

    def _flush_events(self) -> None:
        if not self._ev_pending:
            return
        self._ev_pending = 0
        for (channel, inst), (recv, ts, kind) in self._ev_bufs.items():
            if recv:
                n = len(recv)
                self.events += n
                self._add_stream(kind, channel, inst, np.fromiter(recv, np.int64, n),
                                 np.fromiter(ts, np.int64, n))
                recv.clear()
                ts.clear()

    def _add_stream(self, kind: str, channel: str, inst: str, r: np.ndarray,
                    t: np.ndarray) -> None:
        if not len(r):
            return
        if self.wall_start is None:
            self.wall_start = time.time()
        self.wall_end = time.time()
        self.messages[(kind, channel, inst)] += len(r)
        span = self._span.get((channel, inst))
        lo, hi = int(r.min()), int(r.max())
        self._span[(channel, inst)] = [lo, hi] if span is None else [min(span[0], lo),
                                                                      max(span[1], hi)]
        have = t >= 0
        if have.any():
            self.feed.setdefault(inst, LatencyHistogram()).add_many(
                r[have] - t[have] * _NS_PER_MS)
        sec, n = np.unique(r // 1_000_000_000, return_counts=True)
        series = self._series[channel]
        for s_, n_ in zip(sec.tolist(), n.tolist(), strict=True):
            series[s_] += n_

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Monitor:
        """Start the clock (on the first call only: a restart after :meth:`stop` continues
        the same run) and the resource sampler."""
        if self.wall_start is None:
            self.wall_start = time.time()
        if self.resources is not None:
            self.resources.start()
        return self

    def stop(self) -> Monitor:
        """Stop the resource sampler and bin what is buffered."""
        if self.resources is not None:
            self.resources.stop()
        self.flush()
        self.wall_end = time.time()
        return self

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- reading ------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Everything as a JSON-able dict (what a recording's manifest keeps): stage
        latencies in us, feed latency in ms, message counts and rates, resource use, and the
        histograms themselves (sparse) so :meth:`from_summary` can restore them."""
        self.flush()
        stored = self._summary
        if stored is not None:  # restored by from_summary: the run's own figures
            wall = float(stored.get("wall_s") or 0.0)
        else:
            wall = ((self.wall_end or time.time()) - self.wall_start
                    if self.wall_start is not None else 0.0)
        return {
            "stages": {k: h.summary(1e3, "_us") for k, h in self.stages.items()},
            "feed_latency": {k: h.summary(1e6, "_ms") for k, h in self.feed.items()},
            "streams": self._streams(),
            "notices": dict(self.notices),
            "events": self.events,
            "wall_s": wall,
            "events_per_wall_s": self.events / wall if wall > 0 else None,
            "resources": self._resource_summary(),
            "histograms": {"stages": {k: h.to_dict() for k, h in self.stages.items()},
                           "feed": {k: h.to_dict() for k, h in self.feed.items()}},
        }

    def _streams(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (kind, channel, inst), n in sorted(self.messages.items()):
            lo, hi = self._span.get((channel, inst), (0, 0))
            span = (hi - lo) / 1e9
            out[f"{channel}:{inst}"] = {"kind": kind, "messages": n, "span_s": span,
                                        "rate_per_s": n / span if span > 0 else None}
        return out

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> Monitor:
        """A read-only monitor with the histograms and counts of a :meth:`summary` (e.g.
        read from a recording's manifest), to tabulate or plot them.

        >>> m = Monitor(resources=False); m.add("write", 80_000)
        >>> Monitor.from_summary(m.summary()).stages["write"].max
        80000
        """
        if not isinstance(summary, dict) or "histograms" not in summary:
            raise ValueError("expected a Monitor.summary() dict (with 'histograms')")
        m = cls(resources=False)
        h = summary["histograms"]
        m.stages = {k: LatencyHistogram.from_dict(d) for k, d in h.get("stages", {}).items()}
        m.feed = {k: LatencyHistogram.from_dict(d) for k, d in h.get("feed", {}).items()}
        m.notices = Counter(summary.get("notices") or {})
        m.events = int(summary.get("events") or 0)
        for key, s in (summary.get("streams") or {}).items():
            channel, _, inst = key.partition(":")
            m.messages[(s.get("kind", "?"), channel, inst)] = int(s["messages"])
            m._span[(channel, inst)] = [0, round(float(s.get("span_s") or 0) * 1e9)]
        m._summary = summary  # resources are kept as their summary only
        return m

    def latency_frame(self) -> Any:
        """Stage latencies as a DataFrame: stage, count, mean, p50, p90, p99, p99.9 and max,
        in microseconds."""
        import pandas as pd

        self.flush()
        rows = [{"stage": k, **h.summary(1e3, "_us")} for k, h in self.stages.items()]
        cols = ["stage", "count", "mean_us", *[f"{p}_us" for p in _PCOLS], "max_us"]
        return _round(pd.DataFrame(rows, columns=cols))

    def feed_frame(self) -> Any:
        """Feed latency (receive minus exchange time) per instrument, in milliseconds; a
        ``negative`` count says how many came out below zero (the clocks disagree)."""
        import pandas as pd

        self.flush()
        rows = [{"inst": k, **h.summary(1e6, "_ms")} for k, h in self.feed.items()]
        cols = ["inst", "count", "mean_ms", *[f"{p}_ms" for p in _PCOLS], "min_ms", "max_ms",
                "negative"]
        return _round(pd.DataFrame(rows, columns=cols))

    def rates_frame(self) -> Any:
        """Messages per stream: count, the span of receive times and the rate over it."""
        import pandas as pd

        self.flush()
        rows = [{"stream": k, **v} for k, v in self._streams().items()]
        return pd.DataFrame(rows, columns=["stream", "kind", "messages", "span_s",
                                           "rate_per_s"])

    def rate_series(self) -> Any:
        """Messages per second of receive time, one column per channel (a DataFrame indexed
        by UTC time; seconds without a message are 0)."""
        import pandas as pd

        self.flush()
        if not self._series:
            return pd.DataFrame()
        lo = min(min(s) for s in self._series.values())
        hi = max(max(s) for s in self._series.values())
        idx = np.arange(lo, hi + 1)
        data = {ch: np.array([s.get(int(t), 0) for t in idx], np.int64)
                for ch, s in sorted(self._series.items())}
        return pd.DataFrame(data, index=pd.to_datetime(idx, unit="s", utc=True))

    def resources_frame(self) -> Any:
        """The resource samples over time (see :meth:`ResourceSampler.frame`)."""
        if self.resources is None:
            raise ValueError("this monitor samples no resources (Monitor(resources=False))")
        return self.resources.frame()

    def frame(self) -> Any:
        """One tidy table of everything: ``group`` (stage, feed_latency, stream, resource),
        ``name``, ``count``, ``mean``, the percentiles, ``max`` and ``unit``."""
        import pandas as pd

        self.flush()
        rows: list[dict[str, Any]] = []
        for k, h in self.stages.items():
            rows.append({"group": "stage", "name": k, **_plain(h.summary(1e3)), "unit": "us"})
        for k, h in self.feed.items():
            rows.append({"group": "feed_latency", "name": k, **_plain(h.summary(1e6)),
                         "unit": "ms"})
        for k, v in self._streams().items():
            rows.append({"group": "stream", "name": k, "count": v["messages"],
                         "mean": v["rate_per_s"], "unit": "msg/s"})
        res = self._resource_summary()
        if res and res.get("samples"):
            rows.append({"group": "resource", "name": "cpu", "count": res["samples"],
                         "mean": res["cpu_pct_mean"], "max": res["cpu_pct_max"], "unit": "%"})
            rows.append({"group": "resource", "name": "rss", "count": res["samples"],
                         "mean": res["rss_mb_last"], "max": res["rss_mb_peak"], "unit": "MB"})
            rows.append({"group": "resource", "name": "threads", "count": res["samples"],
                         "max": res["threads_max"], "unit": "threads"})
        cols = ["group", "name", "count", "mean", *_PCOLS, "max", "unit"]
        return _round(pd.DataFrame(rows, columns=cols))

    def _resource_summary(self) -> dict[str, Any] | None:
        if self.resources is not None:
            return self.resources.summary()
        return (self._summary or {}).get("resources")

    def format(self, title: str | None = "performance") -> str:
        """A plain-text report (what ``--stats`` prints)."""
        from simlab.monitor.report import format_monitor

        return format_monitor(self, title)

    def __repr__(self) -> str:
        self.flush()
        return (f"Monitor({len(self.stages)} stages, {self.events:,} events, "
                f"{len(self.feed)} instruments)")


def _plain(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if k not in ("negative", "min")}


def _round(df: Any) -> Any:
    num = df.select_dtypes("float").columns
    df[num] = df[num].round(3)
    return df


def merge(monitors: Iterable[Monitor]) -> Monitor:
    """One monitor with the histograms and counts of several (e.g. from sweep workers).

    >>> a, b = Monitor(resources=False), Monitor(resources=False)
    >>> a.add("walk", 1_000); b.add("walk", 3_000)
    >>> merge([a, b]).stages["walk"].count
    2
    """
    out = Monitor(resources=False)
    for m in monitors:
        m.flush()
        for k, h in m.stages.items():
            out.stages.setdefault(k, LatencyHistogram()).merge(h)
        for k, h in m.feed.items():
            out.feed.setdefault(k, LatencyHistogram()).merge(h)
        out.messages.update(m.messages)
        out.notices.update(m.notices)
        out.events += m.events
        for key, (lo, hi) in m._span.items():
            s = out._span.get(key)
            out._span[key] = [lo, hi] if s is None else [min(s[0], lo), max(s[1], hi)]
        for ch, ser in m._series.items():
            out._series[ch].update(ser)
    return out
