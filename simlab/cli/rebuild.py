"""``simlab rebuild``: re-derive levels/ and trades/ from raw/

Delete and re-derive the normalised tables from raw/.
"""

from __future__ import annotations

import argparse

from ._args import command
from ._common import EXIT_OK


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("dir", metavar="DIR")


def run(args: argparse.Namespace) -> int:
    from simlab.store import rebuild

    rows = rebuild(args.dir)
    print(f"rebuilt {args.dir}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    return EXIT_OK
