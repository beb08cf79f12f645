"""``simlab import``: import existing data into a new recording

Import SRC (format FORMAT) into a new recording DIR.
"""

from __future__ import annotations

import argparse
import sys

from ._args import command, new_recording, no_progress
from ._common import EXIT_OK


def add(sub) -> None:
    from simlab.store.importers import IMPORTERS

    p = command(sub, __doc__, run)
    p.add_argument("format", choices=sorted(IMPORTERS), metavar="FORMAT",
                   help=f"one of: {', '.join(sorted(IMPORTERS))}")
    p.add_argument("src", metavar="SRC",
                   help="input file (plain, .gz, .zip, .tar(.gz), .zst or .tar.zst; detected "
                        "from its content)")
    new_recording(p)
    p.add_argument("--instruments", metavar="FILE",
                   help="REST capture of /api/v5/public/instruments (okx-capture only)")
    no_progress(p)


def run(args: argparse.Namespace) -> int:
    from simlab.store import import_file

    result = import_file(args.format, args.src, args.out, instruments=args.instruments,
                         progress=False if args.no_progress else None)
    print(result.summary())
    for w in result.warnings():
        print(f"simlab import: warning: {w}", file=sys.stderr)
    return EXIT_OK
