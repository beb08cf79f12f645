"""Durations with units, one parser for the CLI, YAML grids and Python.

Every duration simlab reads (``--duration 8h``, ``--horizon 60s``, a grid's ``T: 5m``) goes
through :func:`parse_duration`, so ``60s``, ``5m``, ``500ms`` and ``1h30m`` mean the same
everywhere. A bare number is seconds.
"""

from __future__ import annotations

import math
import re

_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)?")


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """Seconds in ``text``: ``90``, ``30s``, ``500ms``, ``5m``, ``8h``, ``1h30m``, ``0.5s``.

    ``name`` is what the error calls the value (the flag or key the user wrote).

    >>> parse_duration("8h"), parse_duration("1h30m"), parse_duration("0.5")
    (28800.0, 5400.0, 0.5)
    >>> parse_duration("250ms")
    0.25
    >>> parse_duration(60)
    60.0
    >>> parse_duration("soon", name="--horizon")
    Traceback (most recent call last):
    ValueError: --horizon 'soon': expected a number with an optional unit ms, s, m, h or d \
(e.g. 500ms, 30s, 5m, 8h, 1h30m)
    """
    if isinstance(text, bool):
        raise ValueError(f"{name} {text!r}: expected a duration such as 30s, 5m or 8h")
    if isinstance(text, int | float):
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(f"{name} {text!r}: expected a finite duration")
        return v
    s = str(text).strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2) or "s"]
        pos = m.end()
        if m.group(2) is None and pos != len(s):
            pos = -1  # a bare number must stand alone ("5 m" or "5x" is not a duration)
            break
    if not s or pos != len(s):
        raise ValueError(f"{name} {text!r}: expected a number with an optional unit ms, s, m, "
                         "h or d (e.g. 500ms, 30s, 5m, 8h, 1h30m)")
    return total
