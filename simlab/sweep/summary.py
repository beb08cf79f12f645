"""What a sweep run comes to, for people: the counts, the best and worst cells (ranked by
:func:`simlab.sweep.compare.rank`, not a second ranking), the cells the book could not fill,
model warnings and failed cells, as a dict (:func:`summarize`, ``simlab sweep --json``) and
as text (:func:`format_summary`).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

from .compare import incomplete, rank

if TYPE_CHECKING:
    from .run import SweepResult
    from .spec import SweepSpec

__all__ = ["format_summary", "summarize"]


def summarize(spec: SweepSpec, res: SweepResult, top: int = 5,
              include_incomplete: bool = False) -> dict[str, Any]:
    """What ``simlab sweep`` reports of a run: counts, the best and worst ``top`` cells by
    mean net cost as :func:`~simlab.sweep.compare.rank` orders them (cells the book could
    not fill at every tick left out unless ``include_incomplete``, and listed), the cells
    with model warnings and the failed cells; JSON-ready.

    >>> s = summarize(spec, run_sweep(spec, "out", "inline"))           # doctest: +SKIP
    >>> s["best"][0]["net_bps_mean"]                                    # doctest: +SKIP
    """
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


def format_summary(s: dict[str, Any]) -> str:
    """:func:`summarize`'s dict as the text ``simlab sweep`` prints.

    >>> print(format_summary(summarize(spec, result)))                 # doctest: +SKIP
    """
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
