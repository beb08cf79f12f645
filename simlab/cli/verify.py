"""``simlab verify``: replay a recording and check every book

Rebuild every book from raw/ and report counts, checksums and gaps; read every listed file
in full. Exit 1 on problems.
"""

from __future__ import annotations

import argparse
import json

from ._args import command
from ._common import EXIT_OK, EXIT_PROBLEMS


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--quick", action="store_true",
                   help="check the levels/ and trades/ files by their footers only (row "
                        "counts), without reading their contents; raw/ is still replayed")


def run(args: argparse.Namespace) -> int:
    from simlab.store import format_report, verify

    report = verify(args.dir, progress=bool(args.progress), quick=args.quick)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_report(report))
    return EXIT_OK if report.ok else EXIT_PROBLEMS
