"""Run the benchmark suite and print one table.

    python -m benchmarks [--runs 3] [--record] [--only book,replay,pipeline,record,...]

The whole suite takes about 8 minutes on a 2-core machine with the default 3 runs; the
peers (cryptofeed, ccxt, nautilus_trader, hftbacktest) run when the bench extra is
installed (pip install -e .[bench]) and are reported as "not installed" otherwise.

Rates are medians over --runs runs (after a warm-up run); "spread" is fastest/slowest run.
--record appends the table, the date, the machine and the command to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys

from . import (
    bench_book,
    bench_emulator,
    bench_monitor,
    bench_peers,
    bench_pipeline,
    bench_record,
    bench_replay,
    bench_sweep,
    bench_train,
)
from ._common import REPO, machine, table, today

GROUPS = {"book": bench_book, "replay": bench_replay, "pipeline": bench_pipeline,
          "record": bench_record,
          "emulator": bench_emulator, "monitor": bench_monitor,
          "peers": bench_peers,
          "train": bench_train, "sweep": bench_sweep}
COLS = [("what", "what is timed"), ("data", "data"), ("rate_s", "median /s"),
        ("spread_s", "max/min"), ("note", "note")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per row (median reported)")
    ap.add_argument("--record", action="store_true", help="append results to RESULTS.md")
    ap.add_argument("--only", metavar="A,B", help=f"run these groups only ({','.join(GROUPS)})")
    args = ap.parse_args(argv)
    only = args.only.split(",") if args.only else list(GROUPS)
    bad = [g for g in only if g not in GROUPS]
    if bad:
        ap.error(f"--only: unknown group(s) {bad}; expected some of {list(GROUPS)}")
    rows = [r for g in only for r in GROUPS[g].run(args.runs)]
    for r in rows:
        r["rate_s"] = f"{r['rate']:,.0f}" if isinstance(r["rate"], float) else r["rate"]
        r["spread_s"] = f"{r['spread']:.2f}" if isinstance(r["spread"], float) else r["spread"]
    out = table(rows, COLS)
    head = f"simlab benchmarks, {today()}, {machine()}"
    print(head)
    print(out)
    if args.record:
        cmd = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as f:
            f.write(f"\n## {today()}\n\nMachine: {machine()}\n\nCommand: `{cmd.strip()}`\n\n")
            f.write("```\n" + out + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
