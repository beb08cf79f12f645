"""``simlab import``."""

from __future__ import annotations

import argparse
import sys

from ._common import EXIT_OK


def add(sub) -> None:
    from simlab.store.importers import IMPORTERS

    p = sub.add_parser("import", help="import existing data into a new recording",
                       description="Import SRC (format FORMAT) into a new recording DIR.")
    p.add_argument("format", choices=sorted(IMPORTERS), metavar="FORMAT",
                   help=f"one of: {', '.join(sorted(IMPORTERS))}")
    p.add_argument("src", metavar="SRC",
                   help="input file (plain, .gz, .zip, .tar(.gz), .zst or .tar.zst; detected "
                        "from its content)")
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")
    p.add_argument("--instruments", metavar="FILE",
                   help="REST capture of /api/v5/public/instruments (okx-capture only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from simlab.store import import_file

    result = import_file(args.format, args.src, args.out, instruments=args.instruments,
                         progress=False if args.no_progress else None)
    print(result.summary())
    for w in result.warnings():
        print(f"simlab import: warning: {w}", file=sys.stderr)
    return EXIT_OK
