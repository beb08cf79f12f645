"""The emulator's clocks: what it reads the time from, and how it stamps exchange time.

Two things are kept apart. The *reader clock* (:class:`Clock`) is where the server reads
wall and monotonic time; the system clock by default, a :class:`ManualClock` in tests so
that time-dependent behaviour can be checked without sleeping. The *exchange clock* is what
the ``ts`` fields of the frames carry: wall time (``"wall"``, the default for a market
served at speed 1; the frames' ``ts`` trail the reader's wall clock by the simulated
network latency), or a simulated clock (``"sim"``) that starts at a chosen instant and runs
at ``speed`` times real time.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Protocol

#: Exchange-clock modes of :class:`~simlab.emulator.server.Emulator`.
CLOCK_MODES = ("wall", "sim")


class Clock(Protocol):
    """Where the emulator reads the time: ``time_ns()`` (wall, ns since the epoch) and
    ``monotonic()`` (seconds, for intervals)."""

    def time_ns(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks.

    >>> c = SystemClock()
    >>> c.time_ns() > 1_700_000_000 * 10**9 and c.monotonic() > 0
    True
    """

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told: wall and monotonic time advance together.

    >>> c = ManualClock(wall_ns=1_000_000_000)
    >>> c.advance(2.5); (c.time_ns(), c.monotonic())
    (3500000000, 2.5)
    """

    def __init__(self, wall_ns: int | None = None, monotonic: float = 0.0) -> None:
        self._wall0 = time.time_ns() if wall_ns is None else int(wall_ns)
        self._mono = float(monotonic)
        self._mono0 = self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        self._mono += seconds

    def time_ns(self) -> int:
        return self._wall0 + round((self._mono - self._mono0) * 1e9)

    def monotonic(self) -> float:
        return self._mono


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_start(text: str) -> int:
    """An ISO-8601 instant (UTC unless it names an offset) as ms since the epoch.

    >>> parse_start("2026-01-01T00:00Z"), parse_start("2026-01-01")
    (1767225600000, 1767225600000)
    >>> parse_start("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: --start: expected an ISO-8601 time such as 2026-01-01T00:00Z, got 'yesterday'
    """
    s = text.strip()
    if not _ISO.match(s):
        raise ValueError(f"--start: expected an ISO-8601 time such as 2026-01-01T00:00Z, "
                         f"got {text!r}")
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    except ValueError:
        raise ValueError(f"--start: expected an ISO-8601 time such as 2026-01-01T00:00Z, "
                         f"got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)

