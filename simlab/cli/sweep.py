"""``simlab sweep``."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, csv_list


def add(sub) -> None:
    p = sub.add_parser("sweep", help="run a parameter sweep over recordings (resumable)",
                       description="Price every cell of a grid (or random) spec of order, fee "
                       "and impact parameters over recording(s) DIR, on a process pool, in "
                       "process or on a Dask cluster. Each finished cell is written at once to "
                       "OUT/cells/ (one Parquet dataset); a re-run skips the cells already "
                       "done and retries failed ones. Exit 1 if a cell failed.")
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
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _sweep_spec(args: argparse.Namespace):
    import yaml

    from simlab.feed.replay import streams
    from simlab.store import Recording
    from simlab.sweep import SpecError, SweepSpec

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
    from simlab.sweep import run_sweep

    try:
        spec = _sweep_spec(args)
        res = run_sweep(spec, args.out, args.executor, workers=args.workers,
                        progress=False if args.no_progress or args.quiet else None,
                        keep_ticks=args.ticks)
    except ValueError as e:
        print(f"simlab sweep: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"simlab sweep: interrupted; finished cells are kept in {args.out}/cells, "
              "run the same command again to do the rest", file=sys.stderr)
        return 130
    summary = _sweep_summary(spec, res, args.top, args.include_incomplete)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=1, default=str) + "\n")
    else:
        print(_format_sweep(summary))
    return EXIT_PROBLEMS if summary["failed_cells"] else EXIT_OK


def _sweep_summary(spec, res, top: int, include_incomplete: bool = False) -> dict:
    """Counts, the best and worst cells by mean net cost (cells the book could not fill
    at every tick left out unless ``include_incomplete``, and listed), and the failed
    cells."""
    import math
    import warnings

    from simlab.sweep.compare import incomplete, rank

    t = res.table
    shown = [c for c in ("recording", "inst") if t[c].nunique() > 1]
    shown += [f"p_{k}" for k in spec.varying()]
    metrics = ["net_bps_mean", "net_bps_p50", "net_bps_p90", "maker_prob_mean",
               "complete_share", "incomplete_ticks", "ticks"]
    every = t[t["status"] == "ok"]
    ok = every.iloc[:0]
    if len(every):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the summary lists the cells rank leaves out
            ranked = rank(every, "net_bps_mean", include_incomplete=include_incomplete)
        ok = every.set_index("cell", drop=False).loc[ranked["cell"].tolist()]

    def rows(df, cols) -> list[dict]:
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in r.items()} for r in df[cols].to_dict("records")]

    short = incomplete(t)
    bad = t[t["status"] != "ok"]
    cols = ["cell", *shown, *metrics]
    return {"out": str(res.out), "cells": len(spec.cells()), "ran": res.ran,
            "skipped": res.skipped, "failed": res.failed, "missing": res.missing,
            "ok": len(every), "ranked": len(ok), "columns": shown,
            "best": rows(ok.head(top), cols), "worst": rows(ok.tail(top).iloc[::-1], cols),
            "include_incomplete": include_incomplete,
            "incomplete_cells": rows(short, ["cell", *shown, "complete_share",
                                             "incomplete_ticks", "ticks"]),
            "failed_cells": [{"cell": r["cell"], "recording": r["recording"],
                              "inst": r["inst"], "error": r["error"]}
                             for r in bad.to_dict("records")],
            # trained models used beyond what they can stand behind (sweep/run.py)
            "model_warnings": [{"cell": r["cell"], "inst": r["inst"],
                                "warning": r["model_warning"]}
                               for r in t.to_dict("records")
                               if isinstance(r.get("model_warning"), str)]}


def _format_sweep(s: dict) -> str:
    import pandas as pd

    lines = [f"sweep: {s['cells']} cells: {s['ran']} ran ({s['failed']} failed), "
             f"{s['skipped']} already done, {s['missing']} not run"]
    for title, key in (("lowest mean net cost", "best"), ("highest mean net cost", "worst")):
        if s[key]:
            df = pd.DataFrame(s[key])
            fmt = {c: (lambda v: f"{v:.10g}") if c.startswith("p_") else (lambda v: f"{v:.4g}")
                   for c in df.columns if df[c].dtype.kind == "f"}
            text = df.rename(columns=lambda c: c.removeprefix("p_")).to_string(
                index=False, formatters={c.removeprefix("p_"): f for c, f in fmt.items()})
            lines += [f"{title}:", text]
    short = s.get("incomplete_cells") or []
    if short:
        how = ("ranked above, costs of the ticks it could fill" if s.get("include_incomplete")
               else "left out of the ranking; --include-incomplete ranks them")
        lines.append(f"the book could not fill the order at every tick in {len(short)} "
                     f"cell(s) ({how}):")
        for r in short[:10]:
            par = " ".join(f"{c.removeprefix('p_')}={r[c]}" for c in s["columns"])
            share = r["complete_share"]
            lines.append(f"  {r['cell']} {par}: whole order filled at "
                         f"{share:.1%} of {r['ticks']} ticks" if share == share else
                         f"  {r['cell']} {par}")
        if len(short) > 10:
            lines.append(f"  ... and {len(short) - 10} more")
    warned = s.get("model_warnings") or []
    if warned:
        lines.append(f"model warnings in {len(warned)} cell(s) (column model_warning):")
        lines += [f"  {w['cell']} {w['inst']}: {w['warning']}" for w in warned[:10]]
        if len(warned) > 10:
            lines.append(f"  ... and {len(warned) - 10} more")
    if s["failed_cells"]:
        lines.append(f"failed cells ({len(s['failed_cells'])}; a re-run retries them):")
        lines += [f"  {f['cell']} {f['inst']} {f['recording']}: {f['error']}"
                  for f in s["failed_cells"][:10]]
    out = s["out"]
    lines.append(f"results: {out}/cells (Parquet dataset, one row per cell; "
                 f"simlab.sweep.load_results({out!r})), spec: {out}/spec.yaml")
    return "\n".join(lines)
