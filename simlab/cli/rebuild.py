"""``simlab rebuild``."""

from __future__ import annotations

import argparse

from ._common import EXIT_OK


def add(sub) -> None:
    p = sub.add_parser("rebuild", help="re-derive levels/ and trades/ from raw/",
                       description="Delete and re-derive the normalised tables from raw/.")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from simlab.store import rebuild

    rows = rebuild(args.dir)
    print(f"rebuilt {args.dir}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    return EXIT_OK
