"""Received frames -> feed events: the one decoder that live and replay share.

:class:`FrameDecoder` takes :class:`~simlab.okx.frames.RawFrame` objects in arrival order
from a recording's raw table (or any frames) and keeps one book per (channel, instrument)
through :class:`~simlab.okx.integrity.BookIntegrity`, the integrity owner the live client,
the recorder and ``simlab verify`` use (sequence chain, checksum when the feed sends one,
REST-snapshot splicing). The live client yields each frame already decoded and applied
(:class:`~simlab.okx.decoded.Decoded`); :meth:`FrameDecoder.decoded` turns those into the
same events without a second parse or book application, so live and replay give the same
events, and so the same pipeline results.

Bad frames never raise: a frame that cannot be parsed becomes a ``malformed`` notice. A
frame a recording stores as malformed (``_malformed``) that does parse, a book push whose
levels the book refuses or a trade whose numbers are bad, is decoded as what it is, as the
live decoder saw it on its own stream: the book is refused (``rejected``, then invalid), the
trade is a ``malformed`` notice. So replay agrees with ``simlab verify`` and with live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from time import perf_counter_ns
from typing import Any

from simlab.book import L2Book
from simlab.okx.frames import RawFrame
from simlab.okx.integrity import BookIntegrity, Outcome
from simlab.okx.messages import OkxParseError, TradeMsg, is_book
from simlab.okx.normalize import WIRE_WS, normalize_raw, parse_stored, trade_rows
from simlab.okx.rest import REST_CONN

from .events import BookTick, Event, Notice, TradeTick

#: Partition names of frames that belong to no stream (see the recording format).
_MALFORMED, NO_INST = "_malformed", "_none"
_NOT_A_STREAM = ("_event", _MALFORMED)


class FrameDecoder:
    """Decode frames into :mod:`simlab.feed.events`.

    ``channels``/``insts``: decode only these streams (None: all); frames of other streams
    are skipped before parsing. ``verify_checksum``: check the book checksum when the feed
    sends one (a failure invalidates the book until the next snapshot, as live).

    >>> d = FrameDecoder()
    >>> snap = (b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{'
    ...         b'"asks":[["101","2","0","1"]],"bids":[["99","1","0","1"]],"ts":"5",'
    ...         b'"checksum":0,"prevSeqId":-1,"seqId":1}]}')
    >>> [(e.kind, e.valid, e.book.mid) for e in d.decode(RawFrame(0, 10, 0, "books", "X", snap))]
    [('book', True, 100.0)]
    """

    def __init__(self, *, channels: Iterable[str] | None = None,
                 insts: Iterable[str] | None = None, wire_format: str = WIRE_WS,
                 verify_checksum: bool = True, rec: int = 0,
                 stale: list[tuple[int, int]] | None = None) -> None:
        self.channels = None if channels is None else frozenset(channels)
        self.insts = None if insts is None else frozenset(insts)
        self.wire_format = wire_format
        self.rec = rec
        self.checker = BookIntegrity(L2Book, verify_checksum, stale=stale)
        self.counts: Counter = Counter()
        #: the live client's books, seen through :meth:`decoded`
        self._books: dict[tuple[str, str], Any] = {}

    def wants(self, channel: str, inst: str) -> bool:
        """True when frames of this stream are decoded."""
        return ((self.channels is None or channel in self.channels)
                and (self.insts is None or inst in self.insts))

    def _may_be_wanted(self, channel: str | None, inst: str | None) -> bool:
        """False when a malformed frame names a stream outside the selection; one that
        names no channel or instrument may be anyone's, so it is reported."""
        for name, selected in ((channel, self.channels), (inst, self.insts)):
            if selected is not None and isinstance(name, str) and name and (
                    name not in selected):
                return False
        return True

    def book(self, channel: str, inst: str) -> Any:
        """The current book of a stream (None before its first message)."""
        s = self.checker.syncs.get((channel, inst))
        return self._books.get((channel, inst)) if s is None else s.book

    def decode(self, f: RawFrame) -> list[Event]:
        """The events of one frame (often one; none for control frames and other streams)."""
        channel, inst = f.channel, f.inst
        if channel in _NOT_A_STREAM:
            return self._stored_malformed(f) if channel == _MALFORMED else []
        if not self.wants(channel, inst):
            return []
        t0 = perf_counter_ns()
        try:
            msg = parse_stored(f.payload, f.conn, channel, inst, self.wire_format)
        except OkxParseError as e:  # parse_stored's only failure on bad input
            self.counts["malformed"] += 1
            return [Notice("malformed", f.arrival, f.recv_ns, channel, inst, e.reason[:200],
                           rec=self.rec)]
        if is_book(msg):
            return self._book(f, msg, t0, perf_counter_ns())
        if isinstance(msg, TradeMsg):
            return self._trades(f, msg)
        self.counts["other"] += 1
        return []

    def _stored_malformed(self, f: RawFrame) -> list[Event]:
        # What verify does with it (normalize_raw keeps the message of a book push whose
        # levels are bad, and the checker refuses it), so the books agree.
        t0 = perf_counter_ns()
        n = normalize_raw(f.payload, f.conn, _MALFORMED, NO_INST, self.wire_format)
        msg = n.msg
        if msg is not None and is_book(msg) and self.wants(msg.channel, msg.inst_id):
            return self._book(f, msg, t0, perf_counter_ns())
        if not self._may_be_wanted(n.channel, n.inst_id):
            return []  # another stream's, skipped as its well-formed frames are
        self.counts["malformed"] += 1
        return [Notice("malformed", f.arrival, f.recv_ns, n.channel, n.inst_id,
                       (n.error or "unparseable frame")[:200], rec=self.rec)]

    def _book(self, f: RawFrame, msg: Any, t0: int, tp: int) -> list[Event]:
        o = self.checker.apply(msg, f.arrival, rest=f.conn == REST_CONN)
        return self.book_events(f, msg, o, perf_counter_ns() - t0, tp - t0)

    def book_events(self, f: RawFrame, msg: Any, o: Outcome, decode_ns: int = 0,
                    parse_ns: int = 0) -> list[Event]:
        """The events of a book message already applied with outcome ``o``: its integrity
        notices, then the tick."""
        self.counts["book"] += 1
        tick = BookTick(f.arrival, f.recv_ns, msg.ts, msg.channel, msg.inst_id, o.book,
                        o.valid, msg.action == "snapshot", decode_ns, self.rec, parse_ns)
        if not o.events:
            return [tick]
        out: list[Event] = [Notice(p["kind"], f.arrival, f.recv_ns, p["channel"], p["inst"],
                                   p.get("detail") or "", p, self.rec) for p in o.events]
        out.append(tick)
        return out

    def decoded(self, f: Any) -> list[Event]:
        """The events of a frame the live client yielded decoded
        (:class:`~simlab.okx.decoded.Decoded`: its ``msg`` and book ``outcome``), as
        :meth:`decode` gives them, without parsing or applying it again."""
        o, msg = f.outcome, f.msg
        if msg is None or f.channel in _NOT_A_STREAM:
            return self.decode(f)  # pongs, control and malformed frames: no book to apply
        if not self.wants(f.channel, f.inst):
            return []
        if o is not None:
            self._books[(f.channel, f.inst)] = o.book
            if o.events and o.events[0]["arrival"] != f.arrival:
                # numbered again by a recorder: say where it is in the recording
                o = o._replace(events=tuple({**p, "arrival": f.arrival} for p in o.events))
            return self.book_events(f, msg, o, f.decode_ns, f.parse_ns)
        if isinstance(msg, TradeMsg):
            return self._trades(f, msg)
        if is_book(msg):
            return self.decode(f)  # a stream the client keeps no book for
        self.counts["other"] += 1
        return []

    def _trades(self, f: RawFrame, msg: TradeMsg) -> list[Event]:
        try:
            rows = trade_rows(msg)
        except OkxParseError as e:
            self.counts["malformed"] += 1
            return [Notice("malformed", f.arrival, f.recv_ns, msg.channel, msg.inst_id,
                           str(e)[:200], rec=self.rec)]
        self.counts["trade"] += len(rows["trade_id"])
        ch, inst, a, r, rec = msg.channel, msg.inst_id or f.inst, f.arrival, f.recv_ns, self.rec
        return [TradeTick(a, r, ts, ch, inst, tid, side, px, sz, rec)
                for ts, tid, side, px, sz in zip(rows["ts_ms"], rows["trade_id"], rows["side"],
                                                 rows["price"], rows["size"], strict=True)]
