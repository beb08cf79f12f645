"""What the performance monitor costs, and the per-stage latencies it reports.

Data: the pipeline benchmark's recording (the real capture's BTC-USDT ``books`` frames
repeated; see :mod:`benchmarks.bench_pipeline`), cut to ``MIN_TICKS`` messages.

- ``monitor off / on``: ``CostPipeline.run(ReplaySource(...))`` (the live code path: parse,
  check, apply, price one tick at a time) with ``monitor=False`` and with the default monitor
  (stage histograms + feed latency + message counts). The runs alternate off/on (at least 7
  rounds, whatever ``--runs``) so both see the same machine, and are timed in CPU seconds
  of this process (time.process_time), which other processes on a shared machine disturb
  less than wall time; the overhead is the ratio of the medians.
- ``hand-over alone``: what the monitor adds to a tick, timed by itself (binning the
  per-tick stage timings and receive/exchange times): the stable figure when the ratio
  above is within the machine's noise.
- ``Monitor.add`` / ``Monitor.observe``: the cost of one value, binning included.
- The stage percentiles are those of the monitor of the last "on" run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from simlab.feed.events import BookTick
from simlab.feed.replay import ReplaySource
from simlab.monitor import Monitor
from simlab.sim.pipeline import MONITOR_STAGES, CostPipeline

from ._common import CAPTURE
from .bench_pipeline import AC, ORDER, make_recording

MIN_TICKS = 30_000


def per_value(n: int = 200_000) -> tuple[float, float]:
    """ns per ``Monitor.add`` and per ``Monitor.observe`` (binning included)."""
    m = Monitor(resources=False)
    t = time.perf_counter_ns()
    for i in range(n):
        m.add("x", i)
    m.flush()
    add = (time.perf_counter_ns() - t) / n
    ev = BookTick(0, 1_652_459_225_000_000_000, 1_652_459_224_990, "books", "BTC-USDT", None,
                  True, False)
    t = time.perf_counter_ns()
    for _ in range(n):
        m.observe(ev)
    m.flush()
    return add, (time.perf_counter_ns() - t) / n


def run(runs: int = 5) -> list[dict]:
    if not CAPTURE.exists():
        return [{"what": "monitor overhead", "data": f"{CAPTURE} absent: skipped", "n": "-",
                 "rate": "-", "spread": "-", "note": ""}]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec"
        n = make_recording(rec, MIN_TICKS)
        data = f"BTC-USDT books ({n:,} msgs)"
        meta = {"BTC-USDT": {"instType": "SPOT"}}
        pipes = {False: CostPipeline(ORDER, impact=AC, metadata=meta, monitor=False),
                 True: CostPipeline(ORDER, impact=AC, metadata=meta)}
        rates: dict[bool, list[float]] = {False: [], True: []}
        last = None
        for i in range(max(runs, 7) + 1):
            for on in (False, True) if i % 2 else (True, False):
                t0 = time.process_time()
                r = pipes[on].run(ReplaySource(rec, insts=["BTC-USDT"], channels=["books"]))
                if i:  # the first round warms up
                    rates[on].append(len(r.table) / (time.process_time() - t0))
                if on:
                    last = r
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        for flag, what in ((False, "monitor off"), (True, "monitor on (default)")):
            v = rates[flag]
            rows.append({"what": f"cost pipeline, per event, {what}", "data": data,
                         "n": len(last.table), "rate": statistics.median(v),
                         "spread": max(v) / min(v),
                         "note": f"overhead {100 * (off / on - 1):+.1f} % (median off/on)"
                         if flag else "ticks per CPU second"})
        # what the monitor adds per tick, timed alone (stable where the ratio above is
        # within the machine's noise): the hand-over of the per-tick timings and times
        p = pipes[True]
        hand = []
        for _ in range(5):
            m = Monitor(resources=False)
            t0 = time.process_time()
            m.add_rows(MONITOR_STAGES, p._lat)
            m.observe_rows("book", "books", "BTC-USDT", p._rows, 2, 3)
            m.flush()
            hand.append((time.process_time() - t0) / len(p._lat) * 1e9)
        per_tick = statistics.median(hand)
        share = per_tick / (1e9 / off)
        rows.append({"what": "monitor hand-over alone, per tick", "data": data,
                     "n": len(p._lat), "rate": 1e9 / per_tick, "spread": "-",
                     "note": f"{per_tick:.0f} ns a tick = {100 * share:.1f} % of a tick's "
                             "CPU time with the monitor off"})
        s = last.monitor.summary()["stages"]
        note = ", ".join(f"{k} {v['p50_us']:.1f}/{v['p99_us']:.1f}" for k, v in s.items()
                         if v["count"])
        rows.append({"what": "monitor: stage latency p50/p99 us (per event run)", "data": data,
                     "n": s["total"]["count"], "rate": "-", "spread": "-", "note": note})
    add, obs = per_value()
    rows.append({"what": "Monitor.add / Monitor.observe, one value", "data": "200,000 values",
                 "n": 200_000, "rate": 1e9 / add, "spread": "-",
                 "note": f"{add:.0f} ns / {obs:.0f} ns a value, binning included"})
    return rows


if __name__ == "__main__":
    for row in run(3):
        print(row)
