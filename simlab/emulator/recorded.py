"""Serve a simlab recording: its raw frames, in arrival order, at their recorded times.

:class:`RecordedFeed` has the interface the server expects of a feed (the same as
:class:`~simlab.emulator.publisher.Publisher`): simulated time is the recording's receive
time (ms), so ``speed=k`` replays at k times the recorded pace and ``speed=None`` as fast as
the clients read. A client subscribed when a frame comes up receives that frame's exact
bytes. A client subscribing to an incremental book channel later gets a snapshot
synthesized from the book rebuilt so far (with the stream's last seqId when the recording
has seqIds, and a checksum when its frames carry non-zero checksums), then the recorded
updates. Frames of one ``(channel, instId)`` are taken from the first connection of the
recording that carried it (a recorder with two connections stores most frames twice); a
REST snapshot the recorder bootstrapped from is not pushed, it sets the stream's book.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab.book import L2Book
from simlab.okx import OkxParseError, is_book, parse_frame
from simlab.okx.encode import encode_book
from simlab.okx.rest import REST_CONN, parse_rest_book
from simlab.store import RawFrame, Recording

from .publisher import FULL, INCREMENTAL, TRADES, Push
from .source import Instrument

log = logging.getLogger(__name__)


class _RecBook:
    """The book of one recorded incremental stream, rebuilt frame by frame."""

    __slots__ = ("book", "checksums", "has_checksum", "last_seq", "last_ts", "valid")

    def __init__(self, inst: str) -> None:
        self.book = L2Book(inst)
        self.valid = False
        self.last_seq: int | None = None
        self.last_ts = 0
        self.has_checksum = False  # frames carry the field
        self.checksums = False  # ... with non-zero values


def _guess_instrument(inst_id: str) -> Instrument:
    parts = inst_id.split("-")
    if parts[-1] == "SWAP":
        kind = "SWAP"
    elif len(parts) == 3 and parts[-1].isdigit():
        kind = "FUTURES"
    else:
        kind = "SPOT"
    base, quote = [*parts, "", ""][:2]
    return Instrument(inst_id, kind, base if kind == "SPOT" else "",
                      quote if kind == "SPOT" else "", "", "", "",
                      uly="" if kind == "SPOT" else f"{base}-{quote}")


class RecordedFeed:
    """Replay of a :class:`simlab.store.Recording` (or its directory).

    >>> feed = RecordedFeed("rec")                   # doctest: +SKIP
    >>> feed.activate("books", "BTC-USDT")           # doctest: +SKIP
    >>> [p.kind for p in feed.advance(feed.start_ms + 1000)][:2]  # doctest: +SKIP
    ['snapshot', 'update']
    """

    def __init__(self, recording: Recording | str | Path) -> None:
        self.recording = recording if isinstance(recording, Recording) else Recording(recording)
        man = self.recording.manifest
        first = man.get("first_recv_ns")
        if first is None:
            first = next(iter(self.recording.iter_raw()), RawFrame(0, 0, 0, "", "", b"")).recv_ns
        self.start_ms = int(first) // 1_000_000
        self.now_ms = self.start_ms
        self._it: Iterator[RawFrame] = iter(self.recording.iter_raw())
        self._next: RawFrame | None = next(self._it, None)
        # Streams, instruments and channels present in the recording.
        self._keys: set[tuple[str, str]] = set()
        self._channels: set[str] = set()
        insts: list[str] = []
        for f in man.get("files", []):
            if f.get("dataset") != "raw":
                continue
            ch, inst = f.get("channel"), f.get("inst")
            if not ch or ch.startswith("_") or not inst or inst.startswith("_"):
                continue
            self._keys.add((ch, inst))
            self._channels.add(ch)
            if inst not in insts:
                insts.append(inst)
        meta = man.get("instruments") or {}
        self._instruments: list[Any] = [meta[i] if i in meta else _guess_instrument(i)
                                        for i in insts]
        self._inst_ids = set(insts)
        self._conn: dict[tuple[str, str], int] = {}
        self._books: dict[tuple[str, str], _RecBook] = {}
        self._active: set[tuple[str, str]] = set()
        self._hold_until: int | None = None
        self._held: list[Push] = []
        self.frames = 0
        self.malformed = 0

    # -- the feed interface -------------------------------------------------------------------
    def instruments(self) -> list[Any]:
        return list(self._instruments)

    def has_instrument(self, inst_id: str) -> bool:
        return inst_id in self._inst_ids

    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(self._channels))

    def activate(self, channel: str, inst_id: str) -> None:
        self._active.add((channel, inst_id))

    def snapshot(self, channel: str, inst_id: str) -> Push | None:
        """A snapshot synthesized from the book so far (None before the recorded one)."""
        self.activate(channel, inst_id)
        if channel not in INCREMENTAL:
            return None
        rb = self._books.get((channel, inst_id))
        if rb is None or not rb.valid:
            return None
        depth = INCREMENTAL[channel][0]
        bids, asks = (_wire(rb.book.levels(s, depth)) for s in ("bid", "ask"))
        cs: int | None = None
        if rb.has_checksum:
            cs = rb.book.checksum() if rb.checksums else 0
        prev = -1 if rb.last_seq is not None else None
        frame = encode_book(channel, inst_id, "snapshot", bids, asks, rb.last_ts,
                            seq_id=rb.last_seq, prev_seq_id=prev, checksum=cs)
        return Push(rb.last_ts, channel, inst_id, "snapshot", frame, rb.last_seq, prev, cs)

    def rest_book(self, inst_id: str, sz: int) -> tuple[list, list, int, int | None]:
        for ch in ("books", "books-l2-tbt", "books50-l2-tbt"):
            rb = self._books.get((ch, inst_id))
            if rb is not None and rb.valid:
                bids, asks = (_wire(rb.book.levels(s, sz)) for s in ("bid", "ask"))
                return bids, asks, rb.last_ts, rb.last_seq
        return [], [], self.now_ms, None

    def reset(self, inst_id: str) -> int:
        raise ValueError("a recording cannot be reset: its seqIds are what was recorded")

    def stall(self, until_ms: int) -> None:
        """Hold every push until ``until_ms`` (recorded frames cannot be merged)."""
        self._hold_until = until_ms

    def advance(self, until_ms: int) -> list[Push]:
        out: list[Push] = []
        if self._hold_until is not None and until_ms >= self._hold_until:
            self._hold_until = None
            out.extend(self._held)
            self._held.clear()
        target = self._held if self._hold_until is not None else out
        while self._next is not None and self._next.recv_ns // 1_000_000 <= until_ms:
            f = self._next
            self._next = next(self._it, None)
            push = self._frame(f)
            if push is not None and (push.channel, push.inst_id) in self._active:
                target.append(push)
        self.now_ms = max(self.now_ms, until_ms)
        return out

    @property
    def done(self) -> bool:
        """True once every recorded frame was played."""
        return self._next is None and not self._held

    # -- frames -------------------------------------------------------------------------------
    def _frame(self, f: RawFrame) -> Push | None:
        key = (f.channel, f.inst)
        if key not in self._keys:
            return None  # control events and malformed frames are not replayed
        if f.conn == REST_CONN:
            # A REST snapshot the recorder bootstrapped from: it was an HTTP answer, not a
            # push, so it is not replayed; it sets the book late subscribers get.
            try:
                msg = parse_rest_book(bytes(f.payload), f.channel, f.inst)
            except OkxParseError:
                self.malformed += 1
                return None
            self._book(msg, f.recv_ns // 1_000_000, b"")
            return None
        if self._conn.setdefault(key, f.conn) != f.conn:
            return None
        self.frames += 1
        ts = f.recv_ns // 1_000_000
        payload = bytes(f.payload)
        if f.channel in INCREMENTAL or f.channel in FULL:
            try:
                msg = parse_frame(payload)
            except OkxParseError as e:
                self.malformed += 1
                log.warning("recorded frame %d of %s/%s does not parse (%s): replayed as is",
                            f.arrival, f.channel, f.inst, e.reason)
                return Push(ts, f.channel, f.inst, "other", payload)
            if is_book(msg):
                return self._book(msg, ts, payload)
            return Push(ts, f.channel, f.inst, "other", payload)
        return Push(ts, f.channel, f.inst, "trade" if f.channel == TRADES else "other", payload)

    def _book(self, msg: Any, ts: int, payload: bytes) -> Push:
        if msg.channel in FULL:
            return Push(ts, msg.channel, msg.inst_id, "full", payload, msg.seq_id)
        key = (msg.channel, msg.inst_id)
        rb = self._books.get(key)
        if rb is None:
            rb = self._books[key] = _RecBook(msg.inst_id)
        try:
            if msg.action == "snapshot":
                rb.book.apply_snapshot(msg.bids, msg.asks)
                rb.valid = True
            elif rb.valid and (msg.bids or msg.asks):
                rb.book.apply_update(msg.bids, msg.asks)
        except ValueError as e:
            rb.valid = False
            log.warning("recorded %s %s book rejected an update (%s)", msg.channel,
                        msg.inst_id, e)
        if msg.checksum is not None:
            rb.has_checksum = True
            rb.checksums = rb.checksums or msg.checksum != 0
        rb.last_seq = msg.seq_id
        rb.last_ts = msg.ts
        if msg.action == "snapshot":
            kind = "snapshot"
        elif msg.prev_seq_id is not None and msg.seq_id is not None:
            kind = ("heartbeat" if msg.seq_id == msg.prev_seq_id and not (msg.bids or msg.asks)
                    else "reset" if msg.seq_id < msg.prev_seq_id else "update")
        else:
            kind = "update"
        return Push(ts, msg.channel, msg.inst_id, kind, payload, msg.seq_id, msg.prev_seq_id,
                    msg.checksum)


def _wire(levels: list[tuple[str, str, int]]) -> list[list[str]]:
    return [[p, s, "0", str(c)] for p, s, c in levels]
