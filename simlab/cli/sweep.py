"""``simlab sweep``: run a parameter sweep over recordings (resumable)

Price every cell of a grid (or random) spec of order, fee and impact parameters over
recording(s) DIR, on a process pool, in process or on a Dask cluster. Each finished cell
is written at once to OUT/cells/ (one Parquet dataset); a re-run skips the cells already
done and retries failed ones. Exit 1 if a cell failed.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._args import command, json_flag, no_progress
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, csv_list


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("dirs", nargs="*", metavar="DIR",
                   help="recording(s) (path or URI); default: the grid file's recordings")
    p.add_argument("--grid", required=True, metavar="FILE",
                   help="YAML spec: grid / random / fixed parameters (examples/sweep_grid.yaml)")
    p.add_argument("--inst", action="append", type=csv_list, metavar="ID,ID",
                   help="instrument(s); default: the grid file's insts, else every book "
                   "instrument of the recordings")
    p.add_argument("--executor", default="local", metavar="KIND",
                   help="local (process pool, default), inline (this process) or "
                   "dask://HOST:PORT (a Dask scheduler)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local: worker processes (default: the CPU count)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="output folder (default results)")
    p.add_argument("--ticks", action="store_true",
                   help="also keep each cell's per-tick table (OUT/ticks/)")
    p.add_argument("--top", type=int, default=5, metavar="K",
                   help="best and worst K cells to print (default 5)")
    p.add_argument("--include-incomplete", action="store_true",
                   help="also rank the cells where the book could not fill the order at "
                   "every tick (their costs cover the ticks it could); default: listed "
                   "apart, not ranked")
    json_flag(p)
    no_progress(p)


def _sweep_spec(args: argparse.Namespace):
    from simlab.extras import require
    from simlab.feed.replay import streams
    from simlab.store import Recording
    from simlab.sweep import SpecError, SweepSpec

    yaml = require("yaml", feature="simlab sweep")
    try:
        with open(args.grid) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise SpecError(f"{args.grid}: not valid YAML: {e}") from None
    doc = {} if doc is None else doc
    dirs = args.dirs or None
    insts = [i for group in args.inst for i in group] if args.inst else None
    if insts is None and isinstance(doc, dict) and not doc.get("insts"):
        recs = dirs or doc.get("recordings") or []
        recs = [recs] if isinstance(recs, str) else recs
        found = {}
        for r in recs:
            for _, inst in streams(Recording(r), "book"):
                found.setdefault(inst, None)
        insts = list(found) or None
    try:
        spec = SweepSpec.from_dict(doc, recordings=dirs, insts=insts)
    except SpecError as e:
        raise SpecError(f"{args.grid}: {e}") from None
    for r in spec.recordings:
        Recording(r)  # a missing recording is a usage error, not 100 failed cells
    return spec


def run(args: argparse.Namespace) -> int:
    from simlab.extras import MissingExtra
    from simlab.sweep import run_sweep

    try:
        spec = _sweep_spec(args)
        res = run_sweep(spec, args.out, args.executor, workers=args.workers,
                        progress=False if args.no_progress or args.quiet else None,
                        keep_ticks=args.ticks)
    except (ValueError, MissingExtra) as e:  # a missing extra names it: pip install ...
        print(f"simlab sweep: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"simlab sweep: interrupted; finished cells are kept in {args.out}/cells, "
              "run the same command again to do the rest", file=sys.stderr)
        return 130
    from simlab.sweep.summary import format_summary, summarize

    summary = summarize(spec, res, args.top, args.include_incomplete)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=1, default=str) + "\n")
    else:
        print(format_summary(summary))
    return EXIT_PROBLEMS if summary["failed_cells"] else EXIT_OK
