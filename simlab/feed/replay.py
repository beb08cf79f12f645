"""The replay engine: a recording (or several, one after the other) as a feed source.

:class:`ReplaySource` reads the raw frames of a recording in the exact arrival order they
were recorded in and decodes them with :class:`~simlab.feed.decode.FrameDecoder`, the same
decoder the live source uses, so the events are the ones the live run saw. Options:

- ``insts`` / ``channels``: which streams (default all book and trade streams);
- ``start`` / ``end``: a time range of local receive time; replay starts from the latest
  snapshot at or before ``start`` of each book stream and emits events from ``start`` on
  (books are rebuilt silently from the snapshot up to it);
- ``speed``: None replays as fast as possible, ``k`` paces events at k x real time;
- several recordings: replayed in the order given, each from empty books (``rec`` in the
  events says which).

For the cost pipeline there is also a columnar path that never builds per-event objects:
:func:`simlab.feed.tables.book_messages` reads the normalised ``levels`` table and rebuilds
books in compiled code; its results are tested to equal this engine's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import PurePath
from typing import Any

import pyarrow.compute as pc
from pyarrow.fs import FileSystem

from simlab.store.reader import Recording
from simlab.store.schema import LEVELS, TRADES
from simlab.store.verify import stale_ranges

from .decode import FrameDecoder
from .events import Event
from .source import fmt_ns, to_ns


class ReplayError(ValueError):
    """A replay was asked for something the recording cannot give (unknown instrument,
    a time range outside the recording...)."""


def open_recordings(paths: Any) -> list[Recording]:
    """Open one or several recordings: local paths, URIs (``s3://bucket/rec``, ``file:///abs``;
    see :class:`~simlab.store.reader.Recording`), ``(pyarrow filesystem, path)`` pairs or
    :class:`Recording` objects, or a list of them.

    >>> open_recordings([])
    Traceback (most recent call last):
    ...
    simlab.feed.replay.ReplayError: recordings: expected at least one recording directory
    """
    if isinstance(paths, (str, PurePath, Recording)) or _fs_pair(paths):
        paths = [paths]
    recs = [p if isinstance(p, Recording) else Recording(p[1], filesystem=p[0])
            if _fs_pair(p) else Recording(p) for p in paths]
    if not recs:
        raise ReplayError("recordings: expected at least one recording directory")
    return recs


def _fs_pair(p: Any) -> bool:
    return isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], FileSystem)


def streams(rec: Recording, kind: str | None = None) -> dict[tuple[str, str], int]:
    """(channel, instrument) -> messages, from the manifest; ``kind`` "book" or "trade"
    keeps only streams with rows in ``levels`` / ``trades``.

    >>> streams(Recording("rec"), "book")                     # doctest: +SKIP
    {('books', 'BTC-USDT'): 98, ...}
    """
    datasets = {"book": {LEVELS}, "trade": {TRADES}, None: {LEVELS, TRADES}}[kind]
    have = {(f.get("channel"), f.get("inst")) for f in rec.manifest["files"]
            if f["dataset"] in datasets}
    out = {}
    for ch, entry in rec.manifest.get("channels", {}).items():
        for inst, n in entry.get("instruments", {}).items():
            if (ch, inst) in have:
                out[(ch, inst)] = n
    return out


def check_selection(recs: list[Recording], channels: Iterable[str] | None,
                    insts: Iterable[str] | None) -> None:
    """Raise :class:`ReplayError` naming any instrument or channel no recording has."""
    have = set()
    for r in recs:
        have |= set(streams(r))
    names = {"instrument": ({i for _, i in have}, insts), "channel": ({c for c, _ in have},
                                                                      channels)}
    for what, (known, asked) in names.items():
        if asked is None:
            continue
        missing = sorted(set(asked) - known)
        if missing:
            where = recs[0].path if len(recs) == 1 else f"{len(recs)} recordings"
            raise ReplayError(f"unknown {what} {', '.join(map(repr, missing))} in {where}; "
                              f"it has: {', '.join(sorted(known)) or 'none'}")


def time_span(recs: list[Recording]) -> tuple[int, int]:
    """First and last receive time (ns) over the recordings."""
    firsts = [r.manifest.get("first_recv_ns") for r in recs]
    lasts = [r.manifest.get("last_recv_ns") for r in recs]
    firsts = [f for f in firsts if f is not None]
    lasts = [x for x in lasts if x is not None]
    if not firsts:
        raise ReplayError("the recording holds no frames")
    return min(firsts), max(lasts)


def check_range(recs: list[Recording], start: int | None, end: int | None) -> None:
    """Raise :class:`ReplayError` when ``start``/``end`` do not overlap the recordings."""
    if start is not None and end is not None and end < start:
        raise ReplayError(f"end ({fmt_ns(end)}) is before start ({fmt_ns(start)})")
    lo, hi = time_span(recs)
    if (start is not None and start > hi) or (end is not None and end < lo):
        raise ReplayError(f"time range {fmt_ns(start)} .. {fmt_ns(end)} is outside the "
                          f"recording, which spans {fmt_ns(lo)} .. {fmt_ns(hi)}")


def seek_arrival(rec: Recording, start: int | None, channels: Iterable[str] | None = None,
                 insts: Iterable[str] | None = None) -> int:
    """The arrival to start decoding from so that every selected book stream is rebuilt at
    ``start``: the earliest of the streams' latest snapshots at or before ``start`` (0 when
    a stream has none before it).

    >>> seek_arrival(Recording("rec"), None)                  # doctest: +SKIP
    0
    """
    if start is None:
        return 0
    t = rec.table(LEVELS, channels if channels is None else list(channels),
                  insts if insts is None else list(insts),
                  columns=["recv_ns", "snapshot"])
    if t.num_rows == 0:
        return 0
    begin = None
    for (ch, inst) in {(c, i) for c, i in zip(t["channel"].to_pylist(), t["inst"].to_pylist(),
                                               strict=True)}:
        mask = pc.and_(pc.and_(pc.equal(t["channel"], ch), pc.equal(t["inst"], inst)),
                       pc.and_(t["snapshot"], pc.less_equal(t["recv_ns"], start)))
        snaps = t.filter(mask)["arrival"]
        a = pc.max(snaps).as_py() if len(snaps) else 0
        begin = a if begin is None else min(begin, a)
    return begin or 0


class ReplaySource:
    """Replay recordings as a feed :class:`~simlab.feed.source.Source`.

    >>> src = ReplaySource("rec", insts=["BTC-USDT"])           # doctest: +SKIP
    >>> sum(1 for ev in src if ev.kind == "book")                 # doctest: +SKIP
    98
    """

    def __init__(self, recordings: Any, *, insts: Iterable[str] | None = None,
                 channels: Iterable[str] | None = None, start: Any = None, end: Any = None,
                 speed: float | None = None, verify_checksum: bool = True) -> None:
        self.recordings = open_recordings(recordings)
        self.insts = None if insts is None else [insts] if isinstance(insts, str) else list(insts)
        self.channels = (None if channels is None else [channels] if isinstance(channels, str)
                         else list(channels))
        check_selection(self.recordings, self.channels, self.insts)
        self.start, self.end = to_ns(start, "start"), to_ns(end, "end")
        check_range(self.recordings, self.start, self.end)
        if speed is not None and not speed > 0:
            raise ReplayError(f"speed must be > 0 (x real time) or None, got {speed!r}")
        self.speed = speed
        self.verify_checksum = verify_checksum
        self.instruments: dict[str, dict[str, Any]] = {}
        for r in self.recordings:
            for k, v in r.manifest.get("instruments", {}).items():
                self.instruments.setdefault(k, v)
        self.decoders: list[FrameDecoder] = []
        self._clock: tuple[int, int, float] | None = None

    def __repr__(self) -> str:
        return (f"ReplaySource({[str(r.path) for r in self.recordings]}, insts={self.insts}, "
                f"start={fmt_ns(self.start)}, end={fmt_ns(self.end)}, speed={self.speed})")

    def _decoded(self) -> Iterator[tuple[int, int, Event]]:
        """(recording, recv_ns, event); pacing is applied by the iterators."""
        start, end = self.start, self.end
        self.decoders = []
        for i, rec in enumerate(self.recordings):
            dec = FrameDecoder(channels=self.channels, insts=self.insts,
                               wire_format=rec.wire_format, verify_checksum=self.verify_checksum,
                               rec=i, stale=stale_ranges(rec.manifest))
            self.decoders.append(dec)
            frames = rec.iter_raw(self.channels, self.insts,
                                  from_arrival=seek_arrival(rec, start, self.channels,
                                                            self.insts))
            for f in frames:
                if end is not None and f.recv_ns > end:
                    break
                evs = dec.decode(f)
                if start is not None and f.recv_ns < start:
                    continue  # rebuilding the books up to the start
                for ev in evs:
                    yield i, f.recv_ns, ev

    def _wait(self, i: int, r: int) -> float:
        """Seconds to wait before an event received at ``r`` in recording ``i``; the clock
        restarts with each recording (they may be days apart)."""
        if self._clock is None or self._clock[0] != i:
            self._clock = (i, r, time.monotonic())
        _, first, t0 = self._clock
        return t0 + (r - first) / 1e9 / self.speed - time.monotonic()

    def __iter__(self) -> Iterator[Event]:
        self._clock = None
        for i, r, ev in self._decoded():
            if self.speed is not None:
                wait = self._wait(i, r)
                if wait > 0:
                    time.sleep(wait)
            yield ev

    async def __aiter__(self) -> AsyncIterator[Event]:
        self._clock = None
        n = 0
        for i, r, ev in self._decoded():
            if self.speed is not None:
                wait = self._wait(i, r)
                if wait > 0:
                    await asyncio.sleep(wait)
            else:
                n += 1
                if n % 256 == 0:
                    await asyncio.sleep(0)  # let other tasks (a widget) run
            yield ev
