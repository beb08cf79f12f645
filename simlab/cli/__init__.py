"""The ``simlab`` command line.

    simlab import okx-capture OKX.ws.1.0 --out rec [--instruments OKX.0]
    simlab verify rec [--json] [--quick]
    simlab rebuild rec
    simlab serve [--port 0] [--rest-port 0] [--speed K|max] [--checksum off] [--snapshot off]
                 [--instruments A,B] [--recording DIR] [--fault SPEC] [--fault SPEC ...]
    simlab record --inst BTC-USDT,ETH-USDT-SWAP --channels books,trades --out DIR
                  [--duration 8h] [--rotate 5m] [--allow-partial] [--outage-after 90s]
                  [--ws-url URL] [--rest-url URL] [--stats]
    simlab replay DIR [DIR ...] --inst BTC-USDT --side buy --notional 100 [--fee-tier VIP1]
                  [--order-type limit] [--start T] [--end T] [--time-basis exchange|recv]
                  [--impact-horizon 60s] [--json] [--out F.parquet] [--mode events] [--stats]
    simlab demo [--out DIR] [--duration 30s]
    simlab train maker-taker DIR [DIR ...] --inst BTC-USDT --quantity 0.01 [--fill-horizon 5s]
                 [--side both] [--queue conservative] [--allow-weak] --out model.json
    simlab train slippage DIR [DIR ...] --inst BTC-USDT [--side buy] --out model.json
    simlab synth --out DIR [--duration 10m] [--inst BTC-USDT,...] [--channels books,trades]
                 [--seed 0] [--imbalance-flow BETA] [--checksum on|off]
    simlab sweep DIR [DIR ...] --grid grid.yaml [--inst X] [--executor local|inline|dask://H:P]
                 [--workers N] [--out results] [--ticks] [--json]

Every command takes ``--log-level`` (or ``-q``); lists are comma-separated and durations
take units (500ms, 60s, 5m, 8h).

Exit status: 0 success; 1 the job was not done as asked: verification found problems,
``record`` was refused a subscription or stopped by a write error, ``replay`` could fill
the order at no tick, ``train`` made a model no better than the base rate, ``sweep`` had a
failed cell; 2 unusable input (message on stderr, no traceback); 141 stdout closed by its
reader.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from simlab import core

from . import demo, importer, rebuild, record, replay, serve, sweep, synth, train, verify
from ._common import EXIT_OK, EXIT_PIPE, EXIT_PROBLEMS, EXIT_USAGE, order_inst_type

__all__ = ["EXIT_OK", "EXIT_PIPE", "EXIT_PROBLEMS", "EXIT_USAGE", "build_parser", "main",
           "order_inst_type"]


LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand; ``--log-level`` (and ``-q``) is accepted
    before or after the command.

    >>> build_parser().parse_args(["verify", "rec", "--json"]).json
    True
    >>> build_parser().parse_args(["verify", "rec", "--log-level", "info"]).log_level
    'info'
    """
    p = argparse.ArgumentParser(prog="simlab", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=core.version_line())
    _logging_flags(p)
    sub = p.add_subparsers(dest="command")
    importer.add(sub)
    verify.add(sub)
    rebuild.add(sub)
    serve.add(sub)
    record.add(sub)
    replay.add(sub)
    demo.add(sub)
    train.add(sub)
    synth.add(sub)
    sweep.add(sub)
    _each_command(p, _logging_flags)
    p.set_defaults(log_level="warning", quiet=False)
    return p


def _each_command(p: argparse.ArgumentParser, fn) -> None:
    # every subcommand, nested ones too (train maker-taker)
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for cmd in a.choices.values():
                fn(cmd)
                _each_command(cmd, fn)


def _logging_flags(p: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a subcommand's unset flag from overwriting the one given before it;
    # build_parser sets the real defaults once.
    g = p.add_argument_group("logging")
    g.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower, default=argparse.SUPPRESS,
                   help="terminal log level (default warning)")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="log errors only (= --log-level error)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A closed stdout (``simlab verify rec | head``) ends the command quietly with status 141,
    as a shell reports a pipe's writer killed by SIGPIPE.

    >>> main(["verify", "/nonexistent"])  # doctest: +SKIP
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    level = "error" if args.quiet else args.log_level
    logging.basicConfig(level=getattr(logging, level.upper()),
                        format="simlab: %(levelname)s: %(message)s")
    from simlab.extras import MissingExtra
    from simlab.store import RecordingError, SourceError

    try:
        return args.run(args)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except (RecordingError, SourceError, OSError, MissingExtra) as e:
        # a missing extra names itself ("... pip install 'simlab[ml]'"), whichever command
        print(f"simlab {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that flush from
    # printing "Exception ignored ... BrokenPipeError" (the recipe in the signal docs).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
