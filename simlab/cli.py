"""The ``simlab`` command line.

    simlab import okx-capture OKX.ws.1.0 --out rec [--instruments OKX.0]
    simlab verify rec [--json]
    simlab rebuild rec

Exit status: 0 success, 1 verification found problems, 2 unusable input (message on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    >>> build_parser().parse_args(["verify", "rec", "--json"]).json
    True
    """
    p = argparse.ArgumentParser(prog="simlab", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"simlab {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    sub = p.add_subparsers(dest="command")
    _add_import(sub)
    _add_verify(sub)
    _add_rebuild(sub)
    return p


def _add_import(sub) -> None:
    from .store.importers import IMPORTERS

    p = sub.add_parser("import", help="import existing data into a new recording",
                       description="Import SRC (format FORMAT) into a new recording DIR.")
    p.add_argument("format", choices=sorted(IMPORTERS), metavar="FORMAT",
                   help=f"one of: {', '.join(sorted(IMPORTERS))}")
    p.add_argument("src", metavar="SRC", help="input file (plain, .gz, .zip or .tar.gz)")
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")
    p.add_argument("--instruments", metavar="FILE",
                   help="REST capture of /api/v5/public/instruments (okx-capture only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_import)


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="replay a recording and check every book",
                       description="Rebuild every book from raw/ and report counts, "
                                   "checksums and gaps. Exit 1 on problems.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(run=_run_verify)


def _add_rebuild(sub) -> None:
    p = sub.add_parser("rebuild", help="re-derive levels/ and trades/ from raw/",
                       description="Delete and re-derive the normalised tables from raw/.")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(run=_run_rebuild)


def _run_import(args: argparse.Namespace) -> int:
    from .store import import_file

    result = import_file(args.format, args.src, args.out, instruments=args.instruments,
                         progress=False if args.no_progress else None)
    print(result.summary())
    return EXIT_OK


def _run_verify(args: argparse.Namespace) -> int:
    from .store import format_report, verify

    report = verify(args.dir, progress=bool(args.progress))
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_report(report))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _run_rebuild(args: argparse.Namespace) -> int:
    from .store import rebuild

    rows = rebuild(args.dir)
    print(f"rebuilt {args.dir}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    >>> main(["verify", "/nonexistent"])  # doctest: +SKIP
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="simlab: %(levelname)s: %(message)s")
    from .store import RecordingError, SourceError

    try:
        return args.run(args)
    except (RecordingError, SourceError, OSError) as e:
        print(f"simlab {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
