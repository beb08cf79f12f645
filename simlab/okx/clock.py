"""The clock the live client's decisions read (timeouts, backoff resets, durations, event
times): injected, so its handler logic is tested with a fake clock and no sleeps."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """``now()``: monotonic seconds (timeouts, durations); ``time_ns()``: wall time in ns
    since the epoch (event and frame times)."""

    def now(self) -> float: ...
    def time_ns(self) -> int: ...


class SystemClock:
    """The real clocks: :func:`time.monotonic` and :func:`time.time_ns`.

    >>> c = SystemClock(); c.now() > 0 and c.time_ns() > 1.7e18
    True
    """

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()


class FakeClock:
    """A clock tests move by hand: ``advance(s)`` moves both readings.

    >>> c = FakeClock(); c.advance(1.5); c.now(), c.time_ns() - FakeClock().time_ns()
    (101.5, 1500000000)
    """

    def __init__(self, now: float = 100.0, wall_ns: int = 1_767_225_600_000_000_000) -> None:
        self.t = now
        self.wall_ns = wall_ns

    def now(self) -> float:
        return self.t

    def time_ns(self) -> int:
        return self.wall_ns

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.wall_ns += round(seconds * 1e9)
