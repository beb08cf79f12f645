"""``simlab demo``: the offline end-to-end demo

Start the local emulator, record it through the live client, replay the recording through
the cost pipeline and write a report folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._args import command
from ._common import duration


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--duration", "--seconds", dest="seconds", type=duration, default=30.0,
                   metavar="DURATION", help="recording length, e.g. 30s (default 30s)")


def run(args: argparse.Namespace) -> int:
    from simlab.demo import run_demo

    return run_demo(Path(args.out), seconds=args.seconds)
