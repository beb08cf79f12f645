"""The live feed handler's state records: one per connection, connection slot and stream.
Plain data, no I/O: the handler (:mod:`simlab.okx.handler`) decides on them; the client
(:mod:`simlab.okx.client`) keeps the sockets and tasks that go with them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .connection import Arg, RequestBudget
from .integrity import BookSync
from .rest import RestBook

LIVE, AWAIT, REST = "live", "await", "rest"


class Recent:
    """A set that remembers only its last ``n`` members (bounded dedup memory).

    >>> r = Recent(2); r.add(1); r.add(2); r.add(3); (1 in r, 3 in r)
    (False, True)
    """

    __slots__ = ("order", "set")

    def __init__(self, n: int) -> None:
        self.set: set = set()
        self.order: deque = deque(maxlen=n)

    def add(self, key: Any) -> None:
        """Remember ``key``, forgetting the oldest member when full."""
        if key in self.set:
            return
        if len(self.order) == self.order.maxlen:
            self.set.discard(self.order[0])
        self.order.append(key)
        self.set.add(key)

    def __contains__(self, key: Any) -> bool:
        return key in self.set


@dataclass(slots=True)
class Held:
    """A book message kept back (a resync holds it, or another connection sent it ahead
    of the chain), with what passing it on later needs."""

    msg: Any
    payload: bytes
    recv_ns: int
    conn: int
    parse_ns: int = 0


@dataclass(eq=False)
class Conn:
    """One connection as the handler sees it: timings, requests, what it has joined."""

    id: int
    slot: int
    budget: RequestBudget
    opened: float
    last_rx: float
    last_data: float | None = None
    first_data: float | None = None
    ping_sent: float | None = None
    blocked: bool = False  # the client stopped reading it (back-pressure)
    closing: bool = False  # we are closing it (shutdown, switchover): not a failure
    dead: bool = False  # no pong: being aborted
    closed: bool = False
    dups: int = 0
    requests: dict[str, tuple[str, list[Arg]]] = field(default_factory=dict)
    acked: set[Arg] = field(default_factory=set)
    pending: dict[Arg, deque] = field(default_factory=dict)
    joined: set[Arg] = field(default_factory=set)
    silent_since: float | None = None


@dataclass(eq=False)
class Switch:
    """A 64008 switchover in progress: the old connection, the new one once open."""

    old: Conn
    t0: float
    new: Conn | None = None
    attempt: int = 0
    opening: bool = False  # the client is opening the new connection
    open_at: float | None = None  # a failed attempt waits for its backoff until then


@dataclass(eq=False)
class Slot:
    """A planned connection: its subscriptions and the connection carrying them now."""

    index: int
    args: list[Arg]
    current: Conn | None = None
    attempt: int = 0
    down_since: float | None = None
    down_conn: int | None = None
    opening: bool = False  # the client is opening its connection
    open_at: float | None = None  # a reconnect waits for its backoff until then
    switch: Switch | None = None


@dataclass(eq=False)
class Stream:
    """One ``(channel, instId)`` subscription: its book, dedup memory and resync state."""

    key: Arg
    slot: int
    kind: str  # incremental | full | trades | other
    #: the stream's book, applied when a frame is yielded (the client's BookIntegrity)
    sync: BookSync | None
    #: the chain as received (sequence only, no book): dedup and resync decisions
    chain: BookSync | None
    seen: Recent
    seen_seq: Recent
    mode: str = LIVE
    held: deque = field(default_factory=deque)
    deadline: float | None = None
    why: str = "subscribe"
    how: str = ""
    t0: float = 0.0
    base_ts: int | None = None
    #: REST bootstrap: ``fetch`` (a request out), ``splice`` (a snapshot waits for an
    #: update to splice onto until ``rest_at``), ``pause`` (fetch again at ``rest_at``)
    rest_phase: str | None = None
    rest_at: float = 0.0
    rest_attempt: int = 0
    rest_ticket: int = 0
    rest_snap: RestBook | None = None
    resyncs: int = 0
    refused: dict[str, Any] | None = None
    #: The last seqId (books) or tradeId (trades) passed on: what a resumed stream must
    #: continue from for a disconnect to be proven lossless.
    last_seq: int | None = None
    last_trade: int | None = None
    #: Set by an unplanned disconnect until the first message on the next connection says
    #: whether anything was lost (``resumed`` event); ``lossless`` keeps that verdict.
    resume: dict[str, Any] | None = None
    lossless: bool | None = None
    #: After a switchover, until the new connection passes on a message of its own: its
    #: repeats of what the old one passed on are the expected overlap, not reported.
    overlap: bool = False
    #: Arrival of the last book frame passed on, and of the first one passed on after a
    #: break that was found when yielding (it reached no book: stale, like the held ones).
    last_arrival: int | None = None
    stale_first: int | None = None

    def remember(self, msg: Any) -> None:
        """Keep a book message in the dedup memory (its key, and its seqId for a snapshot's
        repeat on another connection)."""
        self.seen.add(book_key(msg))
        self.seen_seq.add(msg.seq_id)

    @property
    def channel(self) -> str:
        return self.key[0]

    @property
    def inst(self) -> str:
        return self.key[1]


def book_key(msg: Any) -> tuple:
    """What identifies a book message for dedup.

    >>> from types import SimpleNamespace as M
    >>> book_key(M(prev_seq_id=4, seq_id=5, ts=1)), book_key(M(prev_seq_id=5, seq_id=5, ts=1))
    ((4, 5), (5, 5, 1))
    """
    prev, seq = msg.prev_seq_id, msg.seq_id
    # A heartbeat repeats the seqId of the update before it (and of earlier heartbeats).
    return (prev, seq, msg.ts) if prev == seq else (prev, seq)
