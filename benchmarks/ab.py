"""Before/after of a hot path: one module as of an earlier commit against the working tree,
in one process, alternating runs (so both see the same machine), medians.

    python -m benchmarks.ab [--before 653bd85] [--rounds 7]

- ``per event``: ``simlab.sim.pipeline`` (the per-event cost pipeline, the live code path)
  over 50,000 real BTC-USDT book messages (bench_pipeline's data): ticks/s and the per-tick
  total latency p50.
- ``columnar``: ``simlab.feed.tables`` (the columnar reader) under the current pipeline over
  300,000 messages: ticks/s of the whole columnar run.

The earlier module is read with ``git show <commit>:<path>`` and imported under another
name (its relative imports made absolute), so the rest of the package is today's.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from ._common import REPO, machine, table, today


def old_module(commit: str, path: str, package: str) -> ModuleType:
    """``path`` (e.g. simlab/sim/pipeline.py) as of ``commit``, importable on its own."""
    src = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    src = src.replace("\nfrom .", f"\nfrom {package}.")
    tmp = Path(tempfile.mkdtemp(prefix="simlab-ab-")) / f"old_{Path(path).stem}.py"
    tmp.write_text(src)
    spec = importlib.util.spec_from_file_location(tmp.stem, tmp)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def per_event(commit: str, rounds: int) -> list[dict]:
    from simlab.feed.replay import ReplaySource
    from simlab.sim import pipeline as new

    from .bench_pipeline import AC, ORDER, make_recording

    old = old_module(commit, "simlab/sim/pipeline.py", "simlab.sim")
    rec = Path(tempfile.mkdtemp(prefix="simlab-ab-")) / "rec"
    n = make_recording(rec, 50_000)
    meta = {"BTC-USDT": {"instType": "SPOT"}}
    pipes = {"before": old.CostPipeline(ORDER, impact=AC, metadata=meta),
             "after": new.CostPipeline(ORDER, impact=AC, metadata=meta)}
    rate: dict[str, list[float]] = {k: [] for k in pipes}
    p50: dict[str, list[float]] = {k: [] for k in pipes}
    for i in range(rounds + 1):
        for k in ("before", "after") if i % 2 else ("after", "before"):
            t = time.perf_counter()
            r = pipes[k].run(ReplaySource(rec, insts=["BTC-USDT"], channels=["books"]))
            dt = time.perf_counter() - t
            if i:
                rate[k].append(len(r.table) / dt)
                p50[k].append(float(np.percentile(r.latency["total_ns"], 50)) / 1e3)
    return [{"what": f"cost pipeline per event ({k})", "data": f"BTC-USDT books, {n:,} msgs",
             "rate": f"{statistics.median(rate[k]):,.0f}",
             "note": f"ticks/s; total p50 {statistics.median(p50[k]):.1f} us"} for k in pipes]


def columnar(commit: str, rounds: int) -> list[dict]:
    from simlab.feed import tables
    from simlab.sim import pipeline as pl

    from .bench_pipeline import AC, ORDER, make_recording

    old = old_module(commit, "simlab/feed/tables.py", "simlab.feed")
    rec = Path(tempfile.mkdtemp(prefix="simlab-ab-")) / "rec"
    n = make_recording(rec)
    p = pl.CostPipeline(ORDER, impact=AC, metadata={"BTC-USDT": {"instType": "SPOT"}})
    fns = {"before": old.book_messages, "after": tables.book_messages}
    rate: dict[str, list[float]] = {k: [] for k in fns}
    try:
        for i in range(rounds + 1):
            for k in ("before", "after") if i % 2 else ("after", "before"):
                pl.book_messages = fns[k]
                t = time.perf_counter()
                r = p.run_recording(rec)
                if i:
                    rate[k].append(len(r.table) / (time.perf_counter() - t))
    finally:
        pl.book_messages = tables.book_messages
    return [{"what": f"cost pipeline columnar ({k})", "data": f"BTC-USDT books, {n:,} msgs",
             "rate": f"{statistics.median(rate[k]):,.0f}", "note": "ticks/s"} for k in fns]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="653bd85", help="the earlier commit (default 653bd85)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    args = ap.parse_args(argv)
    rows = per_event(args.before, args.rounds) + columnar(args.before, args.rounds)
    print(f"simlab before ({args.before}) / after (working tree), {today()}, {machine()}")
    print(table(rows, [("what", "what"), ("data", "data"), ("rate", "median /s"),
                       ("note", "note")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
