"""Book integrity: the one place that decides whether a book message may be applied.

* :class:`BookSync` applies one stream's :class:`~simlab.okx.messages.BookMsg` objects to a
  book in arrival order, enforcing the sequence rules (:mod:`simlab.okx.sequence`) and the
  checksum (:mod:`simlab.okx.checksum`), and counting everything it sees. The book is any
  object with ``apply_snapshot``, ``apply_update``, ``clear``, ``checksum`` and
  ``is_crossed`` (e.g. :class:`simlab.book.L2Book`: the wire layer does not import it).
  After a gap, a failed checksum or a rejected message the book is invalid: later updates
  are counted as ``no_snapshot`` and not applied until the next snapshot. ``events`` records
  each break once; the consumer drains it.
* The REST splice rule (OKX's documented bootstrap, used when no snapshot arrives on the
  WebSocket): buffer the updates, fetch ``GET /api/v5/market/books``, discard buffered
  updates until one with ``prevSeqId <= snapshot.seqId < seqId`` and apply from there; if
  none matches, fetch again (:func:`find_splice`, :func:`splices`). Updates carry absolute
  sizes, so applying the first update after the snapshot's seqId on top of it gives the
  book at that update's seqId even when the snapshot lies between the update's prevSeqId
  and seqId. When the REST response carries no ``seqId`` the splice falls back to exchange
  time: the first buffered update with ``ts`` after the snapshot's (verifiable only by a
  non-zero checksum).
* :class:`BookIntegrity` keeps one :class:`BookSync` per (channel, instrument), splices REST
  snapshots (frames with ``conn == REST_CONN``) the way the live client does, skips the
  "stale" updates a live client kept while it resynced (arrival ranges from a recording's
  ``synced``/``resync_done`` events), and returns an :class:`Outcome` per message. The live
  client, the recording writer, the replay decoder and ``simlab verify`` all use it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol

from .messages import FULL_BOOK_CHANNELS, BookMsg
from .sequence import Seq, classify

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

    >>> s = BookSync(NoBook())
    >>> _ = s.apply(BookMsg("books", "X", "snapshot", [], [], 1, 100, -1))
    >>> start_chain_at(s, 95)
    >>> s.apply(BookMsg("books", "X", "update", [["1", "1"]], [], 2, 110, 95)).value
    'update'
    """
    sync.last_seq = prev_seq_id
    sync.last_prev = None


class SyncableBook(Protocol):
    def apply_snapshot(self, bids: Any, asks: Any) -> None: ...
    def apply_update(self, bids: Any, asks: Any) -> None: ...
    def clear(self) -> None: ...
    def checksum(self) -> int: ...
    def is_crossed(self) -> bool: ...


@dataclass
class BookStats:
    """Counts for one (channel, instrument) book stream."""

    messages: int = 0
    snapshots: int = 0
    updates: int = 0
    heartbeats: int = 0
    resets: int = 0
    duplicates: int = 0
    unsequenced: int = 0
    gaps: int = 0
    no_snapshot: int = 0
    rejected: int = 0
    checksum_verified: int = 0
    checksum_failed: int = 0
    checksum_absent: int = 0
    crossed: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncEvent:
    """A break in integrity: ``kind`` is ``gap``, ``checksum_failed``, ``no_snapshot`` or
    ``rejected``. ``expected_prev`` is the seqId the chain expected as prevSeqId."""

    kind: str
    channel: str
    inst_id: str
    ts: int
    seq_id: int | None = None
    prev_seq_id: int | None = None
    expected_prev: int | None = None
    detail: str = ""
    arrival: int | None = None


@dataclass
class BookSync:
    """Sequence- and checksum-checked application of one instrument's book messages.

    >>> from simlab.book import L2Book
    >>> from simlab.okx.messages import BookMsg
    >>> s = BookSync(L2Book("X"))
    >>> s.apply(BookMsg("books", "X", "snapshot", [["1", "1"]], [["2", "1"]], 0, 10, -1, 0)).value
    'snapshot'
    >>> s.apply(BookMsg("books", "X", "update", [], [], 1, 15, 12, 0)).value
    'gap'
    >>> s.valid, s.stats.gaps
    (False, 1)
    """

    book: SyncableBook
    verify_checksum: bool = True
    stats: BookStats = field(default_factory=BookStats)
    events: list[SyncEvent] = field(default_factory=list)
    valid: bool = False
    last_seq: int | None = None
    last_prev: int | None = None
    #: outcome of the last message's checksum check: "ok", "failed", "absent" or None
    last_checksum: str | None = None
    _invalid_reported: bool = field(default=False, repr=False)

    def apply(self, msg: BookMsg, arrival: int | None = None) -> Seq:
        # Runs once per book message on the hot path: each field is read once (on the C
        # scanner's messages `bids`/`asks` build a view per access).
        st = self.stats
        st.messages += 1
        ts = msg.ts
        if st.first_ts is None:
            st.first_ts = ts
        st.last_ts = ts
        self.last_checksum = None
        bids, asks = msg.bids, msg.asks
        seq, prev = msg.seq_id, msg.prev_seq_id
        kind = classify(self.valid, self.last_seq, self.last_prev, msg.action == "snapshot",
                        prev, seq, not bids and not asks)
        if kind is Seq.GAP:
            st.gaps += 1
            self._invalidate("gap", msg, arrival, expected_prev=self.last_seq)
            return kind
        if kind is Seq.NO_SNAPSHOT:
            st.no_snapshot += 1
            # One event per run of unusable updates, and none when a gap or a failed
            # checksum already explains it: a long outage must not grow the event list.
            if not self._invalid_reported:
                self._invalid_reported = True
                self.events.append(SyncEvent("no_snapshot", msg.channel, msg.inst_id, ts,
                                             seq, prev, arrival=arrival))
            return kind
        if kind is Seq.DUPLICATE:
            st.duplicates += 1
            return kind
        book = self.book
        try:
            if kind is Seq.SNAPSHOT:
                book.apply_snapshot(bids, asks)
            elif bids or asks:
                book.apply_update(bids, asks)
        except ValueError as e:
            st.rejected += 1
            self._invalidate("rejected", msg, arrival, detail=str(e))
            return kind
        if kind is Seq.UPDATE:
            st.updates += 1
        elif kind is Seq.SNAPSHOT:
            st.snapshots += 1
            self.valid = True
            self._invalid_reported = False
        else:
            st.updates += 1
            if kind is Seq.HEARTBEAT:
                st.heartbeats += 1
            elif kind is Seq.RESET:
                st.resets += 1
            elif kind is Seq.UNSEQUENCED:
                st.unsequenced += 1
        # books5 / bbo-tbt carry no checksum and no chain: each push stands alone.
        self.last_seq = seq
        self.last_prev = None if msg.channel in FULL_BOOK_CHANNELS else prev
        if self.verify_checksum:
            expected = msg.checksum
            if not expected:
                st.checksum_absent += 1
                self.last_checksum = "absent"
            else:
                got = book.checksum()
                if got == expected:
                    st.checksum_verified += 1
                    self.last_checksum = "ok"
                else:
                    st.checksum_failed += 1
                    self.last_checksum = "failed"
                    self._invalidate("checksum_failed", msg, arrival,
                                     detail=f"expected {expected}, book gives {got}")
                    return kind
        if book.is_crossed():
            st.crossed += 1
        return kind

    def invalidate(self) -> None:
        """Forget the book (a break found elsewhere, e.g. by the consumer of a live client):
        updates are ``no_snapshot`` until the next snapshot; no event is recorded."""
        self.valid = False
        self._invalid_reported = True
        self.last_seq = self.last_prev = None
        self.book.clear()

    def _invalidate(self, why: str, msg: BookMsg, arrival: int | None,
                    expected_prev: int | None = None, detail: str = "") -> None:
        self.invalidate()
        self.events.append(SyncEvent(why, msg.channel, msg.inst_id, msg.ts, msg.seq_id,
                                     msg.prev_seq_id, expected_prev, detail, arrival))


class NoBook:
    """A book that keeps nothing: a :class:`BookSync` on it (``verify_checksum=False``)
    follows the sequence chain alone, e.g. for the live client's dedup and resync decisions.

    >>> s = BookSync(NoBook(), verify_checksum=False)
    >>> s.apply(BookMsg("books", "X", "snapshot", [], [], 1, 10, -1, 0)).value, s.valid
    ('snapshot', True)
    """

    __slots__ = ()

    def apply_snapshot(self, bids: Any, asks: Any) -> None:
        pass

    def apply_update(self, bids: Any, asks: Any) -> None:
        pass

    def clear(self) -> None:
        pass

    def checksum(self) -> int:
        return 0

    def is_crossed(self) -> bool:
        return False


class Outcome(NamedTuple):
    """What :meth:`BookIntegrity.apply` made of one book message.

    ``seq``: its :class:`~simlab.okx.sequence.Seq` class (None when it was skipped as
    ``stale``); ``valid``: the stream has a valid book after it; ``checksum``: ``ok``,
    ``failed``, ``absent`` or None (not checked); ``events``: the breaks it caused, as dicts
    (:func:`event_dict`); ``book``: the stream's book (query it now: the next message
    changes it); ``stale``: it lies in a stale range and was not applied.
    """

    seq: Seq | None
    valid: bool
    checksum: str | None
    events: tuple[dict[str, Any], ...]
    book: Any
    stale: bool = False


def event_dict(e: SyncEvent) -> dict[str, Any]:
    """A :class:`SyncEvent` as the dict integrity reports carry (``inst`` for ``inst_id``).

    >>> event_dict(SyncEvent("gap", "books", "X", 5, 9, 7, 8))["expected_prev"]
    8
    """
    return {"kind": e.kind, "channel": e.channel, "inst": e.inst_id, "ts": e.ts,
            "seq_id": e.seq_id, "prev_seq_id": e.prev_seq_id, "expected_prev": e.expected_prev,
            "detail": e.detail, "arrival": e.arrival}


class BookIntegrity:
    """One :class:`BookSync` per (channel, instrument), REST splices and stale ranges.

    ``book_factory(inst_id)`` makes each stream's book (e.g. :class:`simlab.book.L2Book`).
    ``stale``: arrival ranges ``(first, last)`` of updates a live client kept while it
    resynced; such an update, when its book is invalid, is counted ``stale`` and skipped.
    :meth:`apply` reports a run of updates without a snapshot once, at its first message.

    >>> from simlab.book import L2Book
    >>> c = BookIntegrity(L2Book)
    >>> o = c.apply(BookMsg("books", "X", "update", [], [], 1, 5, 4, 0), 0)
    >>> o.seq.value, o.valid, [e["kind"] for e in o.events]
    ('no_snapshot', False, ['no_snapshot'])
    >>> c.apply(BookMsg("books", "X", "update", [], [], 2, 6, 5, 0), 1).events
    ()
    """

    def __init__(self, book_factory: Callable[[str], Any], verify_checksum: bool = True,
                 stale: Sequence[tuple[int, int]] | None = None) -> None:
        self.book_factory = book_factory
        self.verify_checksum = verify_checksum
        self.syncs: dict[tuple[str, str], BookSync] = {}
        self.stale_counts: Counter = Counter()
        self._rest: dict[tuple[str, str], tuple[int | None, int]] = {}
        self._stale_first: list[int] = []
        self._stale_last: list[int] = []
        for first, last in sorted(stale or []):
            self.add_stale(first, last)

    def add_stale(self, first: int, last: int) -> None:
        """Count updates with arrivals ``first..last`` as stale (see the class doc)."""
        i = bisect.bisect_right(self._stale_first, first)
        self._stale_first.insert(i, first)
        self._stale_last.insert(i, last)

    def is_stale(self, arrival: int | None) -> bool:
        """True when ``arrival`` lies in one of the stale ranges."""
        if arrival is None or not self._stale_first:
            return False
        i = bisect.bisect_right(self._stale_first, arrival) - 1
        return i >= 0 and arrival <= self._stale_last[i]

    def stream(self, channel: str, inst_id: str) -> BookSync:
        """The :class:`BookSync` of a stream, made on first use."""
        key = (channel, inst_id)
        s = self.syncs.get(key)
        if s is None:
            s = self.syncs[key] = BookSync(self.book_factory(inst_id), self.verify_checksum)
        return s

    def apply(self, msg: Any, arrival: int | None = None, *, rest: bool = False) -> Outcome:
        """Apply one book message; ``rest``: it is a REST snapshot (the next update that
        splices onto it continues the chain, as in the live client)."""
        key = (msg.channel, msg.inst_id)
        s = self.syncs.get(key)
        if s is None:
            s = self.stream(*key)
        snapshot = msg.action == "snapshot" or msg.prev_seq_id == -1
        if not snapshot and not s.valid and self.is_stale(arrival):
            self.stale_counts[key] += 1
            return Outcome(None, False, None, (), s.book, True)
        if rest:
            self._rest[key] = (msg.seq_id, msg.ts)
        elif snapshot:
            self._rest.pop(key, None)
        elif key in self._rest and (msg.prev_seq_id != msg.seq_id or msg.seq_id is None):
            snap_seq, snap_ts = self._rest.pop(key)
            if s.valid and splices(snap_seq, snap_ts, msg.prev_seq_id, msg.seq_id, msg.ts):
                start_chain_at(s, msg.prev_seq_id)
        kind = s.apply(msg, arrival)
        events: tuple[dict[str, Any], ...] = ()
        if s.events:
            events = tuple(event_dict(e) for e in s.events)
            s.events.clear()
        return Outcome(kind, s.valid, s.last_checksum, events, s.book)

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{channel: {inst: BookStats.as_dict() + stale}}``, sorted."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (ch, inst), s in sorted(self.syncs.items()):
            out.setdefault(ch, {})[inst] = {**s.stats.as_dict(),
                                            "stale": self.stale_counts[(ch, inst)]}
        return out
