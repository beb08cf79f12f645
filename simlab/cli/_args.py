"""The parser pieces commands share: a subcommand described by its module's docstring, and
the flags several commands take with one meaning (one name, one help text)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ._common import csv_list


def command(sub: Any, doc: str, run: Callable[[argparse.Namespace], int]
            ) -> argparse.ArgumentParser:
    """The subcommand a command module's docstring describes: its first line
    ``"``simlab NAME``: HELP"`` names it and gives the one-line help, the paragraphs after
    it are the ``--help`` description (argparse refills them); ``run`` runs it.

    >>> p = argparse.ArgumentParser(prog="simlab")
    >>> c = command(p.add_subparsers(), '''``simlab hello``: say hello
    ...
    ... Print a greeting. Exit 0.
    ... ''', lambda args: 0)
    >>> c.prog, c.description, p.parse_args(["hello"]).run(None)
    ('simlab hello', 'Print a greeting. Exit 0.', 0)
    """
    head, _, body = doc.strip().partition("\n")
    name, sep, help_ = head.partition(": ")
    if not (sep and name.startswith("``simlab ") and name.endswith("``")):
        raise ValueError(f"a command's docstring starts '``simlab NAME``: help', got {head!r}")
    p = sub.add_parser(name[len("``simlab "):-2], help=help_, description=body.strip())
    p.set_defaults(run=run)
    return p


def new_recording(p: argparse.ArgumentParser) -> None:
    """``--out DIR``: the new recording a command writes.

    >>> p = argparse.ArgumentParser(); new_recording(p)
    >>> p.parse_args(["--out", "rec"]).out
    'rec'
    """
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")


def channels(p: argparse.ArgumentParser) -> None:
    """``--channels CH,CH``: the channels of the instruments (default books and trades).

    >>> p = argparse.ArgumentParser(); channels(p)
    >>> p.parse_args([]).channels, p.parse_args(["--channels", "books5"]).channels
    (['books', 'trades'], ['books5'])
    """
    p.add_argument("--channels", type=csv_list, default=["books", "trades"], metavar="CH,CH",
                   help="channels, comma-separated (default books,trades)")


def no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar (there is one on a terminal otherwise).

    >>> p = argparse.ArgumentParser(); no_progress(p)
    >>> p.parse_args(["--no-progress"]).no_progress
    True
    """
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def json_flag(p: argparse.ArgumentParser, what: str = "the summary") -> None:
    """``--json``: print ``what`` as JSON instead of text.

    >>> p = argparse.ArgumentParser(); json_flag(p, "the metrics")
    >>> p.parse_args(["--json"]).json, p._actions[-1].help
    (True, 'print the metrics as JSON')
    """
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def book_stream(p: argparse.ArgumentParser, dirs_help: str) -> None:
    """The recording(s) ``DIR ...`` (``dirs_help`` says in which order they are read) and
    the book stream in them: ``--inst`` (required) and ``--channel`` (default books).

    >>> p = argparse.ArgumentParser(); book_stream(p, "recording(s)")
    >>> a = p.parse_args(["r1", "r2", "--inst", "BTC-USDT"])
    >>> a.dirs, a.inst, a.channel
    (['r1', 'r2'], 'BTC-USDT', 'books')
    """
    p.add_argument("dirs", nargs="+", metavar="DIR", help=dirs_help)
    p.add_argument("--inst", required=True, help="instrument, e.g. BTC-USDT")
    p.add_argument("--channel", default="books", help="book channel (default books)")


def ct_val(p: argparse.ArgumentParser) -> None:
    """``--ct-val``: a contract value given instead of the recording's metadata.

    >>> p = argparse.ArgumentParser(); ct_val(p)
    >>> p.parse_args(["--ct-val", "0.01"]).ct_val
    0.01
    """
    p.add_argument("--ct-val", type=float, help="contract value override (base units)")


__all__ = ["book_stream", "channels", "command", "ct_val", "json_flag", "new_recording",
           "no_progress"]
