"""The live recorder's queue from the asyncio loop to the writer thread, bounded by frames
and payload bytes, and the account of what it had to drop.

When the disk cannot keep up and the queue is full, frames are dropped, never silently:
:class:`Drops` keeps each run of drops (an *episode*, :class:`DropEpisode`: arrival range,
frames and bytes per stream, time span) and maps the client's arrival numbers to the
recording's, which stay 0..n-1.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from simlab.okx.frames import RawFrame
from simlab.store.manifest import ns_to_iso


class WriterQueue:
    """Frames (bounded by count and payload bytes) and control items (never refused) for
    the writer thread, in order.

    >>> q = WriterQueue(max_frames=1, max_bytes=100)
    >>> f = RawFrame(0, 10**18, 0, "books", "X", b"{}")
    >>> q.put_frame(f), q.put_frame(f), q.put(("rotate",)), len(q.take())
    (True, False, None, 2)
    """

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames, self.max_bytes = max_frames, max_bytes
        self.items: deque = deque()
        self.frames = 0
        self.bytes = 0
        self.cond = threading.Condition(threading.Lock())
        self.peak_frames = 0

    def put_frame(self, f: RawFrame) -> bool:
        """Queue a frame; False (not queued) when the queue is full."""
        n = len(f.payload)
        with self.cond:
            if self.frames >= self.max_frames or self.bytes + n > self.max_bytes:
                return False
            self.items.append(f)
            self.frames += 1
            self.bytes += n
            if self.frames > self.peak_frames:
                self.peak_frames = self.frames
            if len(self.items) == 1:
                self.cond.notify()
        return True

    def put(self, item: Any) -> None:
        """Queue a control item (an event dict or a tuple), whatever the bounds."""
        with self.cond:
            self.items.append(item)
            if len(self.items) == 1:
                self.cond.notify()

    def take(self, timeout: float = 1.0) -> list:
        """Everything queued (waiting up to ``timeout`` for something)."""
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            items = list(self.items)
            self.items.clear()
            self.frames = 0
            self.bytes = 0
        return items


class DropEpisode:
    """One run of frames dropped because the queue was full.

    >>> ep = DropEpisode(RawFrame(7, 10**18, 0, "books", "X", b"{}"), 5, 30, 900)
    >>> ep.add(RawFrame(8, 10**18 + 10**6, 0, "trades", "X", b"{}"))
    >>> d = ep.as_dict()
    >>> d["arrival"], d["frames"], d["client_arrivals"], d["per_stream"]
    (5, 2, [7, 8], {'books:X': 1, 'trades:X': 1})
    """

    def __init__(self, f: RawFrame, writer_arrival: int, queued: int, queued_bytes: int):
        self.first = self.last = f.arrival
        self.writer_arrival = writer_arrival
        self.first_recv_ns = self.last_recv_ns = f.recv_ns
        self.frames = 0
        self.bytes = 0
        self.per_stream: Counter = Counter()
        self.queued, self.queued_bytes = queued, queued_bytes
        self.add(f)

    def add(self, f: RawFrame) -> None:
        """Count one more dropped frame."""
        self.last = f.arrival
        self.last_recv_ns = f.recv_ns
        self.frames += 1
        self.bytes += len(f.payload)
        self.per_stream[f"{f.channel}:{f.inst}"] += 1

    def as_dict(self) -> dict[str, Any]:
        """The episode as the manifest's ``queue_overflow`` break."""
        return {"arrival": self.writer_arrival, "frames": self.frames, "bytes": self.bytes,
                "client_arrivals": [self.first, self.last],
                "first_recv_ns": self.first_recv_ns, "last_recv_ns": self.last_recv_ns,
                "time": ns_to_iso(self.first_recv_ns), "until": ns_to_iso(self.last_recv_ns),
                "span_s": round((self.last_recv_ns - self.first_recv_ns) / 1e9, 3),
                "per_stream": dict(sorted(self.per_stream.items())),
                "detail": f"writer queue full ({self.queued} frames, {self.queued_bytes} "
                          "bytes): frames dropped", "repair": None}


class Drops:
    """The episodes of dropped frames, and the recording's arrival of a client arrival.

    >>> d = Drops()
    >>> d.drop(RawFrame(3, 10**18, 0, "books", "X", b"{}"), 3, 1, 2)
    True
    >>> d.drop(RawFrame(4, 10**18, 0, "books", "X", b"{}"), 3, 1, 2)
    False
    >>> d.end()["frames"], d.map(2), d.map(4), d.map(5)
    (2, 2, None, 3)
    """

    def __init__(self) -> None:
        self.episode: DropEpisode | None = None
        self._runs: deque = deque(maxlen=4096)  # (first, last, dropped before first)

    def drop(self, f: RawFrame, written: int, queued: int, queued_bytes: int) -> bool:
        """Count a dropped frame (``written``: the recording's next arrival); True if it
        starts an episode."""
        ep = self.episode
        if ep is None:
            self.episode = DropEpisode(f, written, queued, queued_bytes)
            return True
        ep.add(f)
        return False

    def end(self) -> dict[str, Any] | None:
        """End the current episode, if any; returns it (:meth:`DropEpisode.as_dict`)."""
        ep = self.episode
        if ep is None:
            return None
        self.episode = None
        runs = self._runs
        before = runs[-1][2] + runs[-1][1] - runs[-1][0] + 1 if runs else 0
        runs.append((ep.first, ep.last, before))
        return ep.as_dict()

    def map(self, a: Any) -> int | None:
        """The recording's arrival of the client's arrival ``a`` (None if dropped)."""
        if not isinstance(a, int):
            return a
        ep = self.episode
        if ep is not None and ep.first <= a <= ep.last:
            return None
        runs = self._runs
        if not runs:
            return a
        for first, last, before in reversed(runs):
            if first <= a:
                if a <= last:
                    return None
                return a - before - (last - first + 1)
        first, _, before = runs[0]
        return a - before
