"""The replay engine: a recording (or several, one after the other) as a feed source.

:class:`ReplaySource` reads the raw frames of a recording in the exact arrival order they
were recorded in and decodes them with :class:`~simlab.feed.decode.FrameDecoder`, the same
decoder the live source uses, so the events are the ones the live run saw. Options:

- ``insts`` / ``channels``: which streams (default all book and trade streams);
- ``start`` / ``end``: a time range, inclusive, on the clock ``time_basis`` names:
  ``"exchange"`` (the default: the ``ts`` the exchange stamped on each message, what
  ``simlab verify`` prints) or ``"recv"`` (local receive time); replay starts from the
  latest snapshot at or before ``start`` of each book stream and emits events from
  ``start`` on (books are rebuilt silently from the snapshot up to it);
- ``speed``: None replays as fast as possible, ``k`` paces events at k x real time;
- several recordings: replayed in the order given, each from empty books (``rec`` in the
  events says which).

For the cost pipeline there is also a columnar path that never builds per-event objects:
:func:`simlab.feed.tables.book_messages` reads the normalised ``levels`` table and rebuilds
books in compiled code; its results are tested to equal this engine's.
"""

from __future__ import annotations

import asyncio
import heapq
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import PurePath
from typing import Any

import numpy as np
import pyarrow.compute as pc
from pyarrow.fs import FileSystem

from simlab.okx.frames import RawFrame
from simlab.okx.messages import is_book
from simlab.okx.normalize import MALFORMED_CHANNEL, normalize_raw
from simlab.store.reader import Recording
from simlab.store.schema import LEVELS, RAW, TRADES
from simlab.store.verify import stale_ranges

from .decode import FrameDecoder
from .events import Event
from .source import fmt_ns, to_ns


class ReplayError(ValueError):
    """A replay was asked for something the recording cannot give (unknown instrument,
    a time range outside the recording...)."""


#: The clocks a time range can be given on: the exchange's message time (``ts``) or the
#: local receive time.
TIME_BASES = ("exchange", "recv")
#: How each clock is named wherever a time is printed.
CLOCKS = {"exchange": "exchange time", "recv": "receive time"}


def check_time_basis(time_basis: Any) -> str:
    """``time_basis`` when it is one of :data:`TIME_BASES`, else :class:`ReplayError`.

    >>> check_time_basis("recv")
    'recv'
    >>> check_time_basis("local")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simlab.feed.replay.ReplayError: time_basis must be 'exchange' (...) or 'recv' (...), got 'local'
    """
    if time_basis not in TIME_BASES:
        raise ReplayError("time_basis must be 'exchange' (the exchange's message time, what "
                          "simlab verify prints) or 'recv' (local receive time), got "
                          f"{time_basis!r}")
    return time_basis


def fmt_time(ns: int | None, time_basis: str) -> str:
    """A time in ns as ISO 8601 UTC with its clock named.

    >>> fmt_time(1652459225503749100, "exchange")
    '2022-05-13T16:27:05.503749Z (exchange time)'
    """
    return f"{fmt_ns(ns)} ({CLOCKS[check_time_basis(time_basis)]})"


def in_window(ts_ms: Any, start: int | None, end: int | None) -> np.ndarray:
    """Which exchange times ``ts_ms`` (ms) lie in ``[start, end]`` (ns, either None).

    >>> in_window([999, 1000, 2000, 2001], 10**9, 2 * 10**9).tolist()
    [False, True, True, False]
    """
    t = np.asarray(ts_ms, dtype=np.int64) * 1_000_000
    keep = np.ones(t.shape, dtype=bool)
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t <= end
    return keep


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


def time_span(recs: list[Recording], time_basis: str = "recv",
              channels: Iterable[str] | None = None,
              insts: Iterable[str] | None = None) -> tuple[int, int]:
    """First and last time (ns) over the recordings: receive time from the manifests, or
    exchange time (``time_basis="exchange"``) of the selected streams' book and trade
    messages."""
    if check_time_basis(time_basis) == "exchange":
        firsts, lasts = [], []
        for r in recs:
            for t in _stream_tables(r, ["ts_ms"], channels, insts):
                if t.num_rows:
                    lo_hi = pc.min_max(t["ts_ms"]).as_py()
                    firsts.append(lo_hi["min"] * 1_000_000)
                    lasts.append(lo_hi["max"] * 1_000_000)
    else:
        firsts = [f for r in recs if (f := r.manifest.get("first_recv_ns")) is not None]
        lasts = [x for r in recs if (x := r.manifest.get("last_recv_ns")) is not None]
    if not firsts:
        raise ReplayError("the recording holds no frames" if time_basis == "recv" else
                          "the recording holds no book or trade messages")
    return min(firsts), max(lasts)


def check_range(recs: list[Recording], start: int | None, end: int | None,
                time_basis: str = "recv", channels: Iterable[str] | None = None,
                insts: Iterable[str] | None = None) -> None:
    """Raise :class:`ReplayError` when ``start``/``end`` (on the clock ``time_basis``) do
    not overlap the recordings; the message names the clock."""
    if start is not None and end is not None and end < start:
        raise ReplayError(f"end ({fmt_time(end, time_basis)}) is before start "
                          f"({fmt_time(start, time_basis)})")
    lo, hi = time_span(recs, time_basis, channels, insts)
    if (start is not None and start > hi) or (end is not None and end < lo):
        clock = CLOCKS[time_basis]
        other = "recv" if time_basis == "exchange" else "exchange"
        raise ReplayError(f"time range {fmt_ns(start)} .. {fmt_ns(end)} ({clock}) is outside "
                          f"the recording, which spans {fmt_ns(lo)} .. {fmt_ns(hi)} ({clock}; "
                          f"time_basis {other!r} / --time-basis {other} filters on "
                          f"{CLOCKS[other]})")


def seek_arrival(rec: Recording, start: int | None, channels: Iterable[str] | None = None,
                 insts: Iterable[str] | None = None, time_basis: str = "recv") -> int:
    """The arrival to start decoding from so that every selected book stream is rebuilt at
    ``start`` (on the clock ``time_basis``): the earliest of the streams' latest snapshots
    at or before ``start`` (0 when a stream has none before it).

    >>> seek_arrival(Recording("rec"), None)                  # doctest: +SKIP
    0
    """
    if start is None:
        return 0
    exchange = check_time_basis(time_basis) == "exchange"
    chs, ins = _held(rec, channels, insts)
    t = rec.table(LEVELS, channel=chs, inst=ins,
                  columns=["ts_ms" if exchange else "recv_ns", "snapshot"])
    # exchange time is in ms: the last ms at or before start
    return (_seek(t, "ts_ms", start // 1_000_000) if exchange
            else _seek(t, "recv_ns", start))


def _seek(t: Any, column: str, at: int) -> int:
    """:func:`seek_arrival` of a ``levels`` table (arrival, channel, inst, snapshot and the
    clock ``column``): the earliest of its streams' latest snapshots at or before ``at``."""
    if t.num_rows == 0:
        return 0
    keys = ["channel", "inst"]
    snaps = t.filter(pc.and_(t["snapshot"], pc.less_equal(t[column], at)))
    latest = snaps.group_by(keys).aggregate([("arrival", "max")])
    if latest.num_rows < t.group_by(keys).aggregate([]).num_rows:
        return 0  # a stream with no snapshot that early is rebuilt from its first message
    return pc.min(latest["arrival_max"]).as_py() or 0


def stop_recv(rec: Recording, end: int | None, channels: Iterable[str] | None = None,
              insts: Iterable[str] | None = None) -> int | None:
    """The last receive time (ns) of a selected book or trade message stamped at or before
    ``end`` (exchange time, ns): a replay by exchange time reads no frame after it. None
    when ``end`` is None; -1 when no message is that early.

    >>> stop_recv(Recording("rec"), None)                     # doctest: +SKIP
    """
    if end is None:
        return None
    return _stop(rec, _stream_tables(rec, ["recv_ns", "ts_ms"], channels, insts), end,
                 channels, insts)


def _stop(rec: Recording, tables: Iterable[Any], end: int, channels: Iterable[str] | None,
          insts: Iterable[str] | None) -> int:
    """:func:`stop_recv` of the selected streams' ``tables`` (recv_ns and ts_ms columns)."""
    last = -1
    for t in tables:
        if t.num_rows:
            keep = t.filter(pc.less_equal(t["ts_ms"], end // 1_000_000))["recv_ns"]
            if len(keep):
                last = max(last, pc.max(keep).as_py())
    for _, recv, ts in refused_pushes(rec, channels, insts).values():
        keep = recv[ts <= end // 1_000_000]  # a refused push is a message of its stream too
        if len(keep):
            last = max(last, int(keep.max()))
    return last


def recv_window(rec: Recording, start: int | None, end: int | None, channel: str,
                inst: str) -> tuple[int, int] | None:
    """The receive-time range (ns, inclusive) holding every message of one book stream
    stamped in ``[start, end]`` (exchange time, ns): a columnar run by exchange time reads
    only that much of the stream. None when no message is stamped in the range.

    >>> recv_window(Recording("rec"), None, None, "books", "BTC-USDT")   # doctest: +SKIP
    (1652459225503749100, 1652459235103749100)
    """
    t = rec.stream_table(LEVELS, channel=channel, inst=inst, columns=["recv_ns", "ts_ms"])
    recv = t["recv_ns"].to_numpy()[in_window(t["ts_ms"].to_numpy(), start, end)]
    for _, r, ts in refused_pushes(rec, [channel], [inst]).values():
        recv = np.concatenate([recv, r[in_window(ts, start, end)]])
    if not len(recv):
        return None
    return int(recv.min()), int(recv.max())


def selected_frames(rec: Recording, channels: Iterable[str] | None = None,
                    insts: Iterable[str] | None = None,
                    from_arrival: int = 0) -> Iterator[RawFrame]:
    """The raw frames a replay of the selected streams decodes, in arrival order: the
    streams' own, and every frame the recording keeps as malformed (``_malformed``), which
    may be a push of a selected stream that its book must refuse (as verify and live do;
    the decoder drops those of other streams).

    >>> next(selected_frames(Recording("rec"), ["books5"], ["BTC-USDT"])).arrival  # doctest: +SKIP
    0
    """
    chs, ins = _held(rec, channels, insts)
    own = rec.iter_raw(channel=chs, inst=ins, from_arrival=from_arrival)
    if (chs is None and ins is None) or not has_malformed(rec):
        return own  # unfiltered, the malformed partition is read with the rest
    bad = rec.iter_raw(channel=MALFORMED_CHANNEL, from_arrival=from_arrival)
    return heapq.merge(own, bad, key=lambda f: f.arrival)


def _held(rec: Recording, channels: Iterable[str] | None, insts: Iterable[str] | None
          ) -> tuple[list[str] | None, list[str] | None]:
    """The selection as one recording's reader is asked it: only the names it holds (the
    reader refuses others; of several recordings, each may hold only part of a selection
    :func:`check_selection` accepted)."""
    held_chs, held_insts = rec.streams()
    return (None if channels is None else [c for c in channels if c in held_chs],
            None if insts is None else [i for i in insts if i in held_insts])


def has_malformed(rec: Recording) -> bool:
    """True when the recording keeps raw frames in the malformed partition (asked of the
    manifest: a filter naming a partition the recording lacks is an error).

    >>> has_malformed(Recording("rec"))                       # doctest: +SKIP
    False
    """
    return any(f["dataset"] == RAW and f.get("channel") == MALFORMED_CHANNEL
               for f in rec.manifest["files"])


#: Each open recording's refused book pushes, of every stream (see :func:`refused_pushes`):
#: its malformed partition is read and decoded once, however many helpers of a run ask.
_REFUSED: weakref.WeakKeyDictionary[Recording, dict[tuple[str, str], tuple[np.ndarray, ...]]] = (
    weakref.WeakKeyDictionary())


def refused_pushes(rec: Recording, channels: Iterable[str] | None = None,
                   insts: Iterable[str] | None = None
                   ) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The book pushes of the selected streams that the recording keeps as malformed (their
    levels are bad, so they have no ``levels`` rows), per (channel, instrument): arrays of
    arrival, receive time (ns) and exchange time (ms), in arrival order (read-only: shared by
    every call on the same :class:`Recording`). The event replay decodes each (its book is
    refused: a tick with no book); the columnar path needs them to count the same ticks.

    >>> refused_pushes(Recording("rec"), ["books5"], ["BTC-USDT"])  # doctest: +SKIP
    {('books5', 'BTC-USDT'): (array([3]), array([1000000000003000000]), array([1652459225004]))}
    """
    if not has_malformed(rec):
        return {}
    every = _REFUSED.get(rec)
    if every is None:
        every = _REFUSED[rec] = _refused_pushes(rec)
    chs = None if channels is None else set(channels)
    ins = None if insts is None else set(insts)
    return {k: v for k, v in every.items()
            if (chs is None or k[0] in chs) and (ins is None or k[1] in ins)}


def _refused_pushes(rec: Recording) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    found: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for f in rec.iter_raw(channel=MALFORMED_CHANNEL):
        # as FrameDecoder decodes a stored malformed frame, so the two agree on which count
        msg = normalize_raw(f.payload, f.conn, MALFORMED_CHANNEL, None, rec.wire_format).msg
        if msg is None or not is_book(msg):
            continue
        ts = msg.ts if isinstance(msg.ts, int) else -1  # none sent: before any range
        found.setdefault((msg.channel, msg.inst_id), []).append((f.arrival, f.recv_ns, ts))
    out = {}
    for k, v in found.items():
        cols = tuple(np.array(c, dtype=np.int64) for c in zip(*v, strict=True))
        for c in cols:
            c.flags.writeable = False
        out[k] = cols
    return out


def _stream_tables(rec: Recording, columns: list[str], channels: Iterable[str] | None,
                   insts: Iterable[str] | None, levels_also: tuple[str, ...] = ()
                   ) -> Iterator[Any]:
    """``columns`` of the selected streams' ``levels`` (with ``levels_also``) and ``trades``
    rows, levels first, one table per dataset that has any of them (a dataset is asked only
    for streams it holds)."""
    chs = None if channels is None else set(channels)
    ins = None if insts is None else set(insts)
    for kind, ds, also in (("book", LEVELS, levels_also), ("trade", TRADES, ())):
        have = [(c, i) for c, i in streams(rec, kind)
                if (chs is None or c in chs) and (ins is None or i in ins)]
        if have:
            yield rec.table(ds, channel=sorted({c for c, _ in have}),
                            inst=sorted({i for _, i in have}), columns=[*columns, *also])


def _exchange_bounds(rec: Recording, start: int | None, end: int | None,
                     channels: list[str] | None, insts: list[str] | None
                     ) -> tuple[int, int | None]:
    """``(seek_arrival(rec, start, ..., "exchange"), stop_recv(rec, end, ...))`` with one
    read of the selected streams' ``levels`` rows (the recording's largest table), not one
    for each."""
    if start is None or end is None:
        return (seek_arrival(rec, start, channels, insts, "exchange"),
                stop_recv(rec, end, channels, insts))
    tables = list(_stream_tables(rec, ["recv_ns", "ts_ms"], channels, insts, ("snapshot",)))
    levels = [t for t in tables if "snapshot" in t.column_names]
    seek = _seek(levels[0], "ts_ms", start // 1_000_000) if levels else 0
    return seek, _stop(rec, tables, end, channels, insts)


class ReplaySource:
    """Replay recordings as a feed :class:`~simlab.feed.source.Source`.

    ``time_basis``: the clock of ``start``/``end``, ``"exchange"`` (default) or ``"recv"``;
    by exchange time a book tick or trade is emitted when its ``ts_ms`` lies in the range
    (a notice once the range has begun).

    >>> src = ReplaySource("rec", insts=["BTC-USDT"])           # doctest: +SKIP
    >>> sum(1 for ev in src if ev.kind == "book")                 # doctest: +SKIP
    98
    """

    def __init__(self, recordings: Any, *, insts: Iterable[str] | None = None,
                 channels: Iterable[str] | None = None, start: Any = None, end: Any = None,
                 speed: float | None = None, verify_checksum: bool = True,
                 time_basis: str = "exchange") -> None:
        self.recordings = open_recordings(recordings)
        self.insts = None if insts is None else [insts] if isinstance(insts, str) else list(insts)
        self.channels = (None if channels is None else [channels] if isinstance(channels, str)
                         else list(channels))
        check_selection(self.recordings, self.channels, self.insts)
        self.time_basis = check_time_basis(time_basis)
        self.start, self.end = to_ns(start, "start"), to_ns(end, "end")
        time_span(self.recordings)  # an empty recording fails here, on any clock
        if self.start is not None or self.end is not None:
            check_range(self.recordings, self.start, self.end, self.time_basis,
                        self.channels, self.insts)
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
                f"start={fmt_ns(self.start)}, end={fmt_ns(self.end)} "
                f"({CLOCKS[self.time_basis]}), speed={self.speed})")

    def _decoder(self, i: int, rec: Recording) -> FrameDecoder:
        dec = FrameDecoder(channels=self.channels, insts=self.insts,
                           wire_format=rec.wire_format, verify_checksum=self.verify_checksum,
                           rec=i, stale=stale_ranges(rec.manifest))
        self.decoders.append(dec)
        return dec

    def _decoded(self) -> Iterator[tuple[int, int, Event]]:
        """(recording, recv_ns, event); pacing is applied by the iterators."""
        if self.time_basis == "exchange" and (self.start is not None or self.end is not None):
            yield from self._decoded_exchange()
            return
        start, end = self.start, self.end
        self.decoders = []
        for i, rec in enumerate(self.recordings):
            dec = self._decoder(i, rec)
            frames = selected_frames(rec, self.channels, self.insts,
                                     seek_arrival(rec, start, self.channels, self.insts))
            for f in frames:
                if end is not None and f.recv_ns > end:
                    break
                evs = dec.decode(f)
                if start is not None and f.recv_ns < start:
                    continue  # rebuilding the books up to the start
                for ev in evs:
                    yield i, f.recv_ns, ev

    def _decoded_exchange(self) -> Iterator[tuple[int, int, Event]]:
        """:meth:`_decoded` by exchange time: every frame from the seek point is decoded (the
        books must follow), a book tick or trade is kept when its ``ts_ms`` is in the range,
        a notice once the range has begun."""
        start, end = self.start, self.end
        lo = -1 if start is None else start
        hi = None if end is None else end
        self.decoders = []
        for i, rec in enumerate(self.recordings):
            dec = self._decoder(i, rec)
            seek, stop = _exchange_bounds(rec, start, end, self.channels, self.insts)
            frames = selected_frames(rec, self.channels, self.insts, seek)
            begun = False
            for f in frames:
                if stop is not None and f.recv_ns > stop:
                    break
                for ev in dec.decode(f):
                    ts = getattr(ev, "ts_ms", None)
                    if ts is None:
                        if begun:
                            yield i, f.recv_ns, ev
                        continue
                    t = ts * 1_000_000
                    if t < lo or (hi is not None and t > hi):
                        continue
                    begun = True
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
