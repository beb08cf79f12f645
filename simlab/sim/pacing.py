"""Pacing a replay at k x real time: when each event is due on a monotonic clock."""

from __future__ import annotations

import math


def check_speed(speed: float | None) -> float | None:
    """``speed`` (x real time) as a float when it is a number > 0; None stays None (unpaced).

    >>> check_speed(10), check_speed(None)
    (10.0, None)
    """
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not (
            math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be a number > 0 (x real time) or None, got {speed!r}")
    return float(speed)


class Pacer:
    """When to process the next event of a replay at ``speed`` x real time.

    The first event after :meth:`reset` is due at once and anchors the clock: an event
    received ``d`` ns after the anchor is due ``d / 1e9 / speed`` seconds after it. A new
    speed re-anchors at the replay time reached so far, so it applies from now on. ``speed``
    None: unpaced (every event is due at once).

    >>> p = Pacer(10.0)
    >>> p.delay(0, now=100.0), p.delay(5_000_000_000, now=100.0)  # 5 s of feed at 10x
    (0.0, 0.5)
    >>> p.set_speed(50.0, now=100.25)  # halfway there: 2.5 s of feed left, at 50x
    >>> round(p.delay(5_000_000_000, now=100.25), 9)
    0.05
    """

    def __init__(self, speed: float | None = None) -> None:
        self.speed = check_speed(speed)
        self._anchor: tuple[int, float] | None = None

    def reset(self) -> None:
        """Forget the clock: the next event is due at once (resume, restart)."""
        self._anchor = None

    def delay(self, recv_ns: int, now: float) -> float:
        """Seconds from ``now`` (monotonic) until the event received at ``recv_ns`` is due
        (<= 0: due)."""
        if self.speed is None:
            return 0.0
        if self._anchor is None:
            self._anchor = (recv_ns, now)
            return 0.0
        r0, t0 = self._anchor
        return t0 + (recv_ns - r0) / 1e9 / self.speed - now

    def set_speed(self, speed: float | None, now: float) -> None:
        """Change the speed from ``now`` on, keeping the replay time reached so far."""
        speed = check_speed(speed)
        if self._anchor is not None and self.speed is not None and speed is not None:
            r0, t0 = self._anchor
            self._anchor = (r0 + round((now - t0) * self.speed * 1e9), now)
        elif speed is None:
            self._anchor = None
        self.speed = speed
