"""Keep one instrument's book in sync with an OKX depth channel.

:class:`BookSync` applies :class:`~simlab.okx.messages.BookMsg` objects to a book in the order
they arrived, enforcing the sequence rules (:mod:`simlab.okx.sequence`) and the checksum
(:mod:`simlab.okx.checksum`), and counting everything it sees. The book is any object with
``apply_snapshot``, ``apply_update``, ``clear``, ``checksum`` and ``is_crossed`` (e.g.
:class:`simlab.book.L2Book`), so the wire layer does not depend on the book module.

After a gap or a failed checksum the book is invalid: later updates are counted as
``no_snapshot`` and not applied until the next snapshot (the live client resyncs then).
``events`` records each break once (the gap, the failed checksum, or the first update that
arrived with no book to apply to); the consumer drains it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .messages import FULL_BOOK_CHANNELS, BookMsg
from .sequence import Seq, classify


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

    def _invalidate(self, why: str, msg: BookMsg, arrival: int | None,
                    expected_prev: int | None = None, detail: str = "") -> None:
        self.valid = False
        self._invalid_reported = True
        self.last_seq = self.last_prev = None
        self.book.clear()
        self.events.append(SyncEvent(why, msg.channel, msg.inst_id, msg.ts, msg.seq_id,
                                     msg.prev_seq_id, expected_prev, detail, arrival))
