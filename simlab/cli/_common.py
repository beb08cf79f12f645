"""What every command shares: exit codes and argument types."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 141  # stdout closed by the reader, as a shell reports SIGPIPE (128 + 13)


def csv_list(text: str) -> list[str]:
    """A comma-separated list, the one list syntax of every flag (``--inst A,B``).

    >>> csv_list("BTC-USDT, ETH-USDT")
    ['BTC-USDT', 'ETH-USDT']
    """
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def _parse_duration(text: str) -> float:
    from simlab.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def duration(text: str) -> float:
    """A positive duration with a unit (``500ms``, ``60s``, ``5m``, ``8h``, ``1h30m``) or bare
    seconds, for argparse.

    >>> duration("5m")
    300.0
    """
    v = _parse_duration(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be > 0")
    return v


def duration_or_zero(text: str) -> float:
    """A duration that may be 0 (e.g. "no interval"); the syntax has no sign, so it is never
    negative.

    >>> duration_or_zero("0"), duration_or_zero("2s")
    (0.0, 2.0)
    """
    return _parse_duration(text)


def order_inst_type(inst: str) -> str:
    from simlab.okx.rest import inst_type

    return inst_type(inst)


def to_json(obj: Any) -> str:
    """A summary as indented JSON (:func:`simlab.jsonsafe.to_json`: NaN -> null).

    >>> print(to_json({"p99": float("nan")}), end="")
    {
      "p99": null
    }
    """
    from simlab.jsonsafe import to_json as dumps

    return dumps(obj)
