"""Splicing a REST order-book snapshot into a buffered stream of incremental updates.

OKX's documented bootstrap (used when no snapshot arrives on the WebSocket): subscribe,
buffer the updates, fetch ``GET /api/v5/market/books``, then discard buffered updates until
one with ``prevSeqId <= snapshot.seqId < seqId`` and apply from there; if none matches,
fetch again. Updates carry absolute sizes, so applying the first update after the
snapshot's seqId on top of it gives the book at that update's seqId even when the snapshot
lies between the update's prevSeqId and seqId.

When the REST response carries no ``seqId`` (OKX's docs are unsure it does) the splice falls
back to exchange time: the first buffered update with ``ts`` after the snapshot's. That
splice cannot be verified by sequence, only by a non-zero checksum.

:class:`FrameSync` replays a client's output (``RawFrame`` objects, REST snapshot frames
included) through a :class:`~simlab.okx.sync.BookSync` the same way the live client did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .frames import RawFrame
from .messages import OkxParseError, is_book
from .parse import parse_frame
from .rest import REST_CONN, parse_rest_book
from .sequence import Seq
from .sync import BookSync

SPLICE, WAIT, STALE = "splice", "wait", "stale"


class Splice(NamedTuple):
    """Where a REST snapshot meets the buffer: ``outcome`` is ``splice`` (apply the
    snapshot, then updates from ``index`` on), ``wait`` (the snapshot is at or after every
    buffered update: wait for the next one) or ``stale`` (the snapshot is older than the
    buffer: fetch again); ``detail`` says why."""

    outcome: str
    index: int = -1
    detail: str = ""


def splices(snap_seq: int | None, snap_ts: int, prev: int | None, seq: int | None,
            ts: int) -> bool:
    """True when update ``(prev, seq, ts)`` is the first one to apply on a REST snapshot
    taken at ``snap_seq`` (or, without a seqId, at exchange time ``snap_ts``).

    >>> splices(100, 0, 95, 110, 5), splices(100, 0, 100, 110, 5), splices(100, 0, 110, 120, 5)
    (True, True, False)
    >>> splices(None, 1000, 7, 9, 1100), splices(None, 1000, 7, 9, 1000)
    (True, False)
    """
    if snap_seq is None or prev is None or seq is None:
        return ts > snap_ts
    return prev <= snap_seq < seq


def find_splice(snap_seq: int | None, snap_ts: int,
                updates: Sequence[tuple[int | None, int | None, int]],
                base_ts: int | None = None) -> Splice:
    """Where a REST snapshot (``snap_seq``, ``snap_ts``) splices into buffered updates given
    as ``(prevSeqId, seqId, ts)`` in arrival order. ``base_ts`` is the exchange time of the
    last message before the buffer (the gap), used to reject an old snapshot without seqId.

    >>> ups = [(10, 15, 1), (15, 15, 2), (15, 22, 3), (22, 30, 4)]
    >>> find_splice(15, 0, ups), find_splice(18, 0, ups).index, find_splice(30, 0, ups).outcome
    (Splice(outcome='splice', index=2, detail=''), 2, 'wait')
    >>> find_splice(8, 0, ups).outcome
    'stale'
    >>> find_splice(None, 2, ups).index
    2
    """
    start = 0
    for i, (p, s, _) in enumerate(updates):
        if p is not None and s is not None and s < p:
            start = i + 1  # a maintenance reset: seqIds before it do not compare with after
    if snap_seq is None or any(p is None or s is None for p, s, _ in updates[start:]):
        if base_ts is not None and snap_ts < base_ts:
            return Splice(STALE, detail=f"REST snapshot ts {snap_ts} is older than the last "
                                        f"message before the buffer (ts {base_ts})")
        for i in range(start, len(updates)):
            if updates[i][2] > snap_ts:
                return Splice(SPLICE, i, "by ts: the snapshot has no seqId")
        return Splice(WAIT, detail=f"no buffered update after ts {snap_ts}")
    for i in range(start, len(updates)):
        p, s, _ = updates[i]
        if p == s:
            continue  # heartbeat: changes nothing
        if p <= snap_seq < s:
            return Splice(SPLICE, i)
        if p > snap_seq:
            return Splice(STALE, detail=f"REST seqId {snap_seq} is older than the buffered "
                                        f"update with prevSeqId {p}")
    return Splice(WAIT, detail=f"no buffered update after seqId {snap_seq}")


def start_chain_at(sync: BookSync, prev_seq_id: int | None) -> None:
    """After a REST snapshot was applied to ``sync``, let the chain continue from the update
    whose ``prevSeqId`` is ``prev_seq_id`` (at or before the snapshot's seqId).

    >>> from simlab.okx.messages import BookMsg
    >>> class B:  # a minimal book
    ...     def apply_snapshot(self, b, a): pass
    ...     def apply_update(self, b, a): pass
    ...     def clear(self): pass
    ...     def checksum(self): return 0
    ...     def is_crossed(self): return False
    >>> s = BookSync(B())
    >>> _ = s.apply(BookMsg("books", "X", "snapshot", [], [], 1, 100, -1))
    >>> start_chain_at(s, 95)
    >>> s.apply(BookMsg("books", "X", "update", [["1", "1"]], [], 2, 110, 95)).value
    'update'
    """
    sync.last_seq = prev_seq_id
    sync.last_prev = None


class FrameSync:
    """Replays a client's output for one incremental book stream, REST snapshots included:
    after a REST frame (``conn == REST_CONN``) the next update is accepted when it
    :func:`splices` onto it, as the live client did. Other frames go to ``sync`` as usual.

    >>> from simlab.okx.messages import BookMsg
    >>> class B:
    ...     def apply_snapshot(self, b, a): pass
    ...     def apply_update(self, b, a): pass
    ...     def clear(self): pass
    ...     def checksum(self): return 0
    ...     def is_crossed(self): return False
    >>> fs = FrameSync(BookSync(B()))
    >>> rest = (b'{"code":"0","msg":"","data":[{"asks":[],"bids":[["1","2","0","1"]],'
    ...         b'"ts":"5","seqId":100}]}')
    >>> fs.apply(RawFrame(0, 0, REST_CONN, "books", "X", rest)).value
    'snapshot'
    >>> up = (b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],'
    ...       b'"bids":[["1","3","0","1"]],"ts":"6","checksum":0,"prevSeqId":97,"seqId":104}]}')
    >>> fs.apply(RawFrame(1, 0, 0, "books", "X", up)).value, fs.sync.stats.gaps
    ('update', 0)
    """

    def __init__(self, sync: BookSync) -> None:
        self.sync = sync
        self._rest: tuple[int | None, int] | None = None

    def apply(self, frame: RawFrame) -> Seq | None:
        """Apply one frame of this stream; None for frames that are not book messages."""
        if frame.conn == REST_CONN:
            msg = parse_rest_book(frame.payload, frame.channel, frame.inst)
            self._rest = (msg.seq_id, msg.ts)
            return self.sync.apply(msg, frame.arrival)
        try:
            msg = parse_frame(frame.payload)
        except OkxParseError:
            return None
        if not is_book(msg):
            return None
        if self._rest is not None and msg.action != "snapshot":
            snap_seq, snap_ts = self._rest
            if msg.prev_seq_id != msg.seq_id or msg.seq_id is None:
                self._rest = None
                if self.sync.valid and splices(snap_seq, snap_ts, msg.prev_seq_id, msg.seq_id,
                                               msg.ts):
                    start_chain_at(self.sync, msg.prev_seq_id)
        elif msg.action == "snapshot":
            self._rest = None
        return self.sync.apply(msg, frame.arrival)
