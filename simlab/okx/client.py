"""The live OKX v5 public-feed client: many instruments and channels over several
WebSocket connections, kept in sync, yielding exactly what a recording should hold.

:class:`OkxClient` subscribes in batched requests within OKX's limits (64 KB per request,
at most 30 depth channels per connection, 3 new connections per second, 480 requests per
hour per connection), keeps each connection alive with ``ping``, reconnects with
exponential backoff and jitter, and keeps one :class:`~simlab.okx.integrity.BookSync` per
(channel, instrument) stream. A gap or a failed checksum resyncs that one stream
(unsubscribe + subscribe, or a REST bootstrap) without disturbing the others; a stream
without an in-band snapshot is bootstrapped from REST; a 64008 notice opens a second
connection and switches over without losing or duplicating a message.

:meth:`OkxClient.stream` yields :class:`~simlab.okx.frames.RawFrame` objects (the same type
a recording's reader yields) interleaved with :class:`ClientEvent` status events. See
``docs/live-client.md``.

Each stream is in one of three modes: ``live`` (its book is valid, or it needs none),
``await`` (waiting for an in-band snapshot after a subscribe) or ``rest`` (a REST bootstrap
runs). Outside ``live``, its updates are held back (bounded) and released in the order
that rebuilds the book: stale updates, then the snapshot, then the updates after it.

Across connections (a 64008 switchover, a reconnect) a book message is passed on once: a
message already passed on (by prevSeqId/seqId) is a duplicate; one from a connection other
than the stream's current one is passed on only when it continues the chain, else held
until it does or is found to be a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from time import perf_counter_ns
from typing import Any

from .clock import Clock, SystemClock
from .connection import (
    MAX_DEPTH_PER_CONN,
    MAX_REQUEST_BYTES,
    Arg,
    RateLimiter,
    RequestBudget,
    backoff_delay,
    batch_requests,
    normalize_args,
    plan_connections,
)
from .decoded import Decoded
from .frames import RawFrame
from .integrity import (
    SPLICE,
    STALE,
    WAIT,
    BookIntegrity,
    BookSync,
    NoBook,
    Outcome,
    find_splice,
    start_chain_at,
)
from .messages import (
    FULL_BOOK_CHANNELS,
    INCREMENTAL_BOOK_CHANNELS,
    TRADE_CHANNELS,
    EventMsg,
    OkxParseError,
    TradeMsg,
    is_book,
)
from .parse import parse_frame
from .rest import OKX_REST_URL, REST_CONN, REST_DEPTH, RestBook, RestClient, RestError
from .sequence import Seq, classify
from .transport import CONNECT_ERRORS, SEND_ERRORS, Closed, WsTransport

log = logging.getLogger("simlab.okx.client")

OKX_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
#: RawFrame channel/inst for frames of no stream (as in a recording's raw partitions).
EVENT_CHANNEL, MALFORMED_CHANNEL, NO_INST = "_event", "_malformed", "_none"
LIVE, AWAIT, REST = "live", "await", "rest"
RESYNC_MODES = ("auto", "resubscribe", "rest")
#: At most this many events of one noisy kind (duplicate, malformed) are emitted; the rest
#: are only counted (``OkxClient.stats()`` and the final ``closed`` event).
MAX_NOISY_EVENTS = 1000


@dataclass
class ClientConfig:
    """Everything tunable. Defaults follow OKX's documented limits; tests shorten the times.

    ``resync``: ``auto`` (unsubscribe + subscribe while in-band snapshots come, REST once a
    snapshot failed to come), ``resubscribe`` or ``rest``. ``keep_stale``: pass on updates
    that a snapshot made stale (received before it; they change nothing) rather than drop
    them. ``silence_s``: report a connection that carried no data for this long.
    ``refusal_wait``: after a subscribe error that does not name its argument, how long the
    request's other arguments may take to be acked before they count as refused.

    >>> ClientConfig(ping_interval=5).pong_timeout
    10.0
    """

    ws_url: str = OKX_WS_URL
    rest_url: str = OKX_REST_URL
    max_depth_per_conn: int = MAX_DEPTH_PER_CONN
    max_request_bytes: int = MAX_REQUEST_BYTES
    connects_per_s: int = 3
    requests_per_hour: int = 480
    ping_interval: float = 20.0
    pong_timeout: float = 10.0
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    backoff_reset_s: float = 30.0
    snapshot_timeout: float = 5.0
    resync: str = "auto"
    rest_timeout: float = 10.0
    rest_rate: float = 10.0
    rest_concurrency: int = 4
    rest_headers: dict[str, str] = field(default_factory=dict)
    rest_retry_base: float = 0.5
    rest_retry_max: float = 10.0
    splice_wait: float = 5.0
    switch_timeout: float = 30.0
    silence_s: float = 30.0
    refusal_wait: float = 5.0
    verify_checksum: bool = True
    keep_stale: bool = True
    yield_pongs: bool = True
    max_buffered: int = 20_000
    max_pending: int = 20_000
    max_ready: int = 20_000
    dedup_window: int = 4096
    tick: float = 0.05
    ws_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resync not in RESYNC_MODES:
            raise ValueError(f"resync must be one of {RESYNC_MODES}, got {self.resync!r}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool) and v <= 0:
                raise ValueError(f"{f.name} must be > 0, got {v!r}")
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"ws_url must start with ws:// or wss://, got {self.ws_url!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url must start with http:// or https://, got "
                             f"{self.rest_url!r}")


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A status event of the client, in stream order with the frames.

    ``kind`` (see ``docs/live-client.md``): connect, connect_failed, disconnect, reconnect,
    subscribed, unsubscribed, error, refused, resumed, notice, switchover, ping_timeout,
    silence, malformed, duplicate, gap, checksum_failed, rejected, seq_reset, resync_started,
    snapshot_timeout, bootstrap, rest_error, bootstrap_retry, buffer_overflow, resync_done, closed.
    ``recv_ns`` is when it happened (ns since the epoch); ``conn`` the connection (None for
    the client); ``data`` the specifics (seq ids, durations, counts...).

    >>> ClientEvent("gap", 5, 0, "books", "BTC-USDT", "", {"seq_id": 9, "arrival": 3}).as_dict()
    {'kind': 'gap', 'recv_ns': 5, 'conn': 0, 'channel': 'books', 'inst': 'BTC-USDT', \
'seq_id': 9, 'arrival': 3}
    """

    kind: str
    recv_ns: int
    conn: int | None = None
    channel: str | None = None
    inst: str | None = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict for ``RecordingWriter.add_event`` (its ``arrival``, when
        present, is the arrival of the frame the event is about)."""
        d: dict[str, Any] = {"kind": self.kind, "recv_ns": self.recv_ns}
        for k in ("conn", "channel", "inst"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.detail:
            d["detail"] = self.detail
        d.update(self.data)
        return d


class _Recent:
    """A set that remembers only its last ``n`` members (bounded dedup memory)."""

    __slots__ = ("order", "set")

    def __init__(self, n: int) -> None:
        self.set: set = set()
        self.order: deque = deque(maxlen=n)

    def add(self, key: Any) -> None:
        if key in self.set:
            return
        if len(self.order) == self.order.maxlen:
            self.set.discard(self.order[0])
        self.order.append(key)
        self.set.add(key)

    def __contains__(self, key: Any) -> bool:
        return key in self.set


@dataclass(slots=True)
class _Held:
    msg: Any
    payload: bytes
    recv_ns: int
    conn: int
    parse_ns: int = 0


@dataclass(eq=False)
class _Conn:
    id: int
    slot: int
    ws: Any  # the transport's connection
    url: str
    budget: RequestBudget
    opened: float
    last_rx: float
    last_data: float | None = None
    first_data: float | None = None
    ping_sent: float | None = None
    blocked: bool = False
    closing: bool = False  # we are closing it (shutdown, switchover): not a failure
    dead: bool = False  # no pong: being aborted
    closed: bool = False
    dups: int = 0
    requests: dict[str, tuple[str, list[Arg]]] = field(default_factory=dict)
    acked: set[Arg] = field(default_factory=set)
    pending: dict[Arg, deque] = field(default_factory=dict)
    joined: set[Arg] = field(default_factory=set)
    silent_since: float | None = None
    task: asyncio.Task | None = None


@dataclass(eq=False)
class _Slot:
    index: int
    args: list[Arg]
    current: _Conn | None = None
    attempt: int = 0
    switching: bool = False
    down_since: float | None = None
    down_conn: int | None = None
    need: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


@dataclass(eq=False)
class _Stream:
    key: Arg
    slot: int
    kind: str  # incremental | full | trades | other
    #: the stream's book, applied when a frame is yielded (the client's BookIntegrity)
    sync: BookSync | None
    #: the chain as received (sequence only, no book): dedup and resync decisions
    chain: BookSync | None
    seen: _Recent
    seen_seq: _Recent
    mode: str = LIVE
    held: deque = field(default_factory=deque)
    deadline: float | None = None
    why: str = "subscribe"
    how: str = ""
    t0: float = 0.0
    base_ts: int | None = None
    rest_snap: RestBook | None = None
    rest_task: asyncio.Task | None = None
    splice_ev: asyncio.Event = field(default_factory=asyncio.Event)
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

    @property
    def channel(self) -> str:
        return self.key[0]

    @property
    def inst(self) -> str:
        return self.key[1]


_NAMED_ARG = re.compile(r"channel:\s*([^,\s]+)\s*,\s*instId:\s*([^\s,]+)")


def named_arg(text: Any) -> Arg | None:
    """The ``(channel, instId)`` an OKX subscribe error names in its text, if any (OKX's
    errors carry no ``arg``; 60018 says ``channel:books,instId:BTC-USTD``). An error about
    an unsubscribe names nothing to refuse.

    >>> named_arg("Wrong URL or channel:books,instId:BTC-USTD doesn't exist. Please use ...")
    ('books', 'BTC-USTD')
    >>> print(named_arg("Unsubscribe failed, wrong URL or channel:books,instId:X ..."))
    None
    """
    if not isinstance(text, str) or "unsubscribe" in text.lower():
        return None
    m = _NAMED_ARG.search(text)
    return (m.group(1), m.group(2)) if m else None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _book_key(msg: Any) -> tuple:
    prev, seq = msg.prev_seq_id, msg.seq_id
    # A heartbeat repeats the seqId of the update before it (and of earlier heartbeats).
    return (prev, seq, msg.ts) if prev == seq else (prev, seq)


def _empty(msg: Any) -> bool:
    return not len(msg.bids) and not len(msg.asks)


class OkxClient:
    """Live OKX v5 public-feed client (asyncio, ``websockets``).

    ``subscriptions``: ``(channel, instId)`` pairs. ``book_factory(inst_id)`` makes the book
    each depth stream is kept in (e.g. :class:`simlab.book.L2Book`; the wire layer does not
    import the book layer). ``config`` or keyword overrides of :class:`ClientConfig` fields.

    >>> async def record(writer):                                          # doctest: +SKIP
    ...     from simlab.book import L2Book
    ...     async with OkxClient([("books", "BTC-USDT"), ("trades", "BTC-USDT")],
    ...                          book_factory=L2Book) as client:
    ...         async for item in client.stream():
    ...             if isinstance(item, RawFrame):
    ...                 writer.add(item.payload, item.recv_ns, item.conn)
    ...             else:
    ...                 writer.add_event(item.as_dict())
    """

    def __init__(self, subscriptions: Iterable[Arg | dict], *,
                 book_factory: Callable[[str], Any], config: ClientConfig | None = None,
                 clock: Clock | None = None, transport: Any = None,
                 **overrides: Any) -> None:
        cfg = config or ClientConfig()
        self.clock = clock = clock or SystemClock()
        self._now, self._time_ns = clock.now, clock.time_ns
        unknown = set(overrides) - {f.name for f in fields(ClientConfig)}
        if unknown:
            raise ValueError(f"unknown OkxClient option(s) {sorted(unknown)}; expected "
                             "ClientConfig fields")
        if overrides:
            cfg = ClientConfig(**{**asdict(cfg), **overrides})
        self.cfg = cfg
        self._io = transport or WsTransport(cfg.close_timeout, cfg.open_timeout, cfg.ws_options)
        self._books = BookIntegrity(book_factory, cfg.verify_checksum)
        self.args = normalize_args(subscriptions)
        if not self.args:
            raise ValueError("subscriptions: expected at least one (channel, instId) pair")
        self._slots = [_Slot(i, a) for i, a in enumerate(
            plan_connections(self.args, cfg.max_depth_per_conn))]
        self._streams: dict[Arg, _Stream] = {}
        for slot in self._slots:
            for ch, inst in slot.args:
                self._streams[(ch, inst)] = self._new_stream((ch, inst), slot.index)
        self._ready: deque = deque()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._arrival = 0
        self._next_conn = 0
        self._next_id = 0
        self._conns: dict[int, _Conn] = {}
        self._tasks: set[asyncio.Task] = set()
        self._limiter = RateLimiter(cfg.connects_per_s, 1.0, clock=self._now)
        self._rest = RestClient(cfg.rest_url, timeout=cfg.rest_timeout, headers=cfg.rest_headers,
                                rate=cfg.rest_rate, concurrency=cfg.rest_concurrency)
        self._inband: bool | None = None  # does the server send snapshots on subscribe?
        self._parse_ns = 0  # of the frame being handled
        self._started = self._closing = self._finished = self._streaming = False
        self._unsub_wait: set[Arg] = set()
        self._unsub_done = asyncio.Event()
        #: Subscriptions the server refused (``refused`` events), as dicts with channel,
        #: inst, code, msg, conn and recv_ns.
        self.refused: list[dict[str, Any]] = []
        # Subscribe errors that named no argument: (conn, args, code, msg, deadline).
        self._unnamed_errors: list[tuple[_Conn, list[Arg], Any, Any, float]] = []
        self.counts: dict[str, int] = dict.fromkeys(
            ("frames", "events", "duplicates", "non_owner_dropped", "pending_dropped",
             "malformed", "reconnects", "switchovers", "resyncs_resubscribe", "resyncs_rest",
             "rest_requests", "stale", "requests", "internal_errors"), 0)

    def _new_stream(self, key: Arg, slot: int) -> _Stream:
        ch, inst = key
        n = self.cfg.dedup_window
        sync = chain = None
        if ch in INCREMENTAL_BOOK_CHANNELS:
            kind, mode = "incremental", AWAIT
            chain = BookSync(NoBook(), verify_checksum=False)
        elif ch in FULL_BOOK_CHANNELS:
            kind, mode = "full", LIVE
        elif ch in TRADE_CHANNELS:
            kind, mode = "trades", LIVE
        else:
            kind, mode = "other", LIVE
        if chain is not None or kind == "full":
            sync = self._books.stream(ch, inst)
        return _Stream(key, slot, kind, sync, chain, _Recent(n), _Recent(n), mode=mode)

    # -- public API -----------------------------------------------------------------------
    @property
    def connections(self) -> list[list[Arg]]:
        """The subscriptions of each connection slot (the plan), e.g. 35 depth channels give
        two lists of 30 and 5."""
        return [list(s.args) for s in self._slots]

    def sync(self, channel: str, inst_id: str) -> BookSync:
        """The :class:`BookSync` of one depth stream (its ``book``, ``stats``, ``valid``)."""
        st = self._streams.get((channel, inst_id))
        if st is None or st.sync is None:
            raise KeyError(f"({channel!r}, {inst_id!r}) is not a subscribed depth stream")
        return st.sync

    def book(self, channel: str, inst_id: str) -> Any:
        """The book the client keeps for ``(channel, inst_id)`` (REST bootstraps included)."""
        return self.sync(channel, inst_id).book

    @property
    def backlog(self) -> int:
        """Items waiting to be taken from :meth:`stream` (readers pause at ``max_ready``)."""
        return len(self._ready)

    def mode(self, channel: str, inst_id: str) -> str:
        """``live``, ``await`` (waiting for an in-band snapshot) or ``rest`` (bootstrapping)."""
        return self._streams[(channel, inst_id)].mode

    def stats(self) -> dict[str, Any]:
        """Client counters and each depth stream's :class:`~simlab.okx.integrity.BookStats`."""
        return {**self.counts, "connections": len([c for c in self._conns.values()
                                                   if not c.closed]),
                "streams": {f"{k[0]}:{k[1]}": {"mode": s.mode, "resyncs": s.resyncs,
                                               **(s.sync.stats.as_dict() if s.sync else {})}
                            for k, s in self._streams.items()}}

    async def __aenter__(self) -> OkxClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the connections (at most ``connects_per_s`` a second) and subscribe."""
        if self._started:
            return
        self._started = True
        for slot in self._slots:
            slot.need.set()
            slot.task = self._spawn(self._slot_loop(slot), f"okx-slot-{slot.index}")
        self._spawn(self._housekeeping(), "okx-housekeeping")

    async def stream(self, *, decoded: bool = False
                     ) -> AsyncIterator[RawFrame | ClientEvent]:
        """Frames and events in order, until :meth:`close` has finished (then the rest).

        Each book frame of a subscribed stream is applied to its book here, in stream order,
        as it is yielded (so the book is the one the frame makes while the consumer handles
        it); a break found doing so (gap, failed checksum, rejected levels) follows the frame
        as its event and resyncs the stream. ``decoded``: yield
        :class:`~simlab.okx.decoded.Decoded` frames (the message parsed once, the book
        outcome) instead of plain :class:`RawFrame` objects."""
        if self._streaming:
            raise RuntimeError("OkxClient.stream() can be iterated only once")
        self._streaming = True
        await self.start()
        ready = self._ready
        low = self.cfg.max_ready // 2
        apply = self._books.apply
        while True:
            while ready:
                item = ready.popleft()
                if not self._space.is_set() and len(ready) <= low:
                    self._space.set()
                if type(item) is not Decoded:
                    yield item
                    continue
                if item._book:
                    t0 = perf_counter_ns()
                    o = item.outcome = apply(item.msg, item.arrival, rest=item.conn == REST_CONN)
                    item.decode_ns = item.parse_ns + perf_counter_ns() - t0
                    if o.events:
                        events = self._outcome_events(item, o)
                        yield item if decoded else item.frame()
                        for ev in events:
                            yield ev
                        continue
                yield item if decoded else item.frame()
            if self._finished:
                return
            self._wake.clear()
            await self._wake.wait()

    def _outcome_events(self, item: Decoded, o: Outcome) -> list[ClientEvent]:
        """The client events of the breaks a yielded frame's book showed; a break the
        receiving side did not see already resyncs the stream."""
        st = self._streams[(item.channel, item.inst)]
        conn = None if item.conn == REST_CONN or item._released else item.conn
        out = []
        for e in o.events:
            if e["kind"] == "no_snapshot":
                continue  # explained by the resync that is holding or releasing them
            out.append(self._new_event(e["kind"], conn, e["channel"], e["inst"], e["detail"],
                                       seq_id=e["seq_id"], prev_seq_id=e["prev_seq_id"],
                                       expected_prev=e["expected_prev"], ts=e["ts"],
                                       arrival=e["arrival"]))
            if st.kind == "incremental" and not item._released and not item._handled:
                self._on_break(st, e["kind"], e["ts"])
        return out

    def _on_break(self, st: _Stream, why: str, ts: int | None) -> None:
        """A break found at yield time: the updates of the stream passed on since reach no
        book (counted stale with the held ones when the resync is done); resync."""
        st.chain.invalidate()
        if st.mode != LIVE or self._closing:
            return
        key = st.key
        first = next((x.arrival for x in self._ready if type(x) is Decoded and x._book
                      and (x.channel, x.inst) == key), None)
        self._start_resync(st, why, ts)
        if first is not None and st.mode != LIVE:
            st.stale_first = first

    async def close(self) -> None:
        """Unsubscribe (waiting up to ``close_timeout`` for the acks), close every
        connection, stop the REST bootstraps, release held updates, emit ``closed``; the
        stream then ends once drained. Idempotent."""
        if self._closing:
            while not self._finished:
                await asyncio.sleep(0.01)
            return
        self._closing = True
        self._space.set()
        for slot in self._slots:
            c = slot.current
            if c is not None and not c.closed:
                args = [a for a in slot.args if a in c.acked]
                self._unsub_wait.update(args)
                with contextlib.suppress(*SEND_ERRORS):
                    await self._send_requests(c, "unsubscribe", args, budget=False)
        if self._unsub_wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unsub_done.wait(), self.cfg.close_timeout)
        for c in list(self._conns.values()):
            c.closing = True
        await asyncio.gather(*(self._close_ws(c) for c in list(self._conns.values())),
                             return_exceptions=True)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._rest.close()
        for st in self._streams.values():
            if st.resume is not None:
                self._resumed(st, None, False, st.resume.get("first")
                              or "no message after the reconnect: cannot tell what was missed")
            if st.held:
                self._release(st)
            for c in self._conns.values():
                q = c.pending.pop(st.key, None)
                if q:
                    self.counts["pending_dropped"] += len(q)
        self._event("closed", detail="client closed", **{k: v for k, v in self.counts.items()})
        self._finished = True
        self._wake.set()

    # -- output ---------------------------------------------------------------------------
    def _emit(self, recv_ns: int, conn: int, channel: str, inst: str, payload: bytes,
              msg: Any = None) -> int:
        a = self._arrival
        self._arrival += 1
        d = Decoded(a, recv_ns, conn, channel, inst, payload, msg)
        d.parse_ns = self._parse_ns
        self._ready.append(d)
        self.counts["frames"] += 1
        self._wake.set()
        return a

    def _emit_book(self, st: _Stream, recv_ns: int, conn: int, payload: bytes, msg: Any,
                   parse_ns: int, released: bool = False, handled: bool = False) -> Decoded:
        """Pass on a book frame of ``st``: its book is applied when it is yielded."""
        a = self._arrival
        self._arrival += 1
        d = Decoded(a, recv_ns, conn, st.channel, st.inst, payload, msg)
        d.parse_ns = parse_ns
        d._book = True
        if released:
            d._released = True
        if handled:
            d._handled = True
        st.last_arrival = a
        self._ready.append(d)
        self.counts["frames"] += 1
        self._wake.set()
        return d

    def _new_event(self, kind: str, conn: int | None = None, channel: str | None = None,
                   inst: str | None = None, detail: str = "", **data: Any) -> ClientEvent:
        data = {k: v for k, v in data.items() if v is not None}
        ev = ClientEvent(kind, self._time_ns(), conn, channel, inst, detail, data)
        self.counts["events"] += 1
        level = logging.INFO if kind not in ("duplicate", "subscribed", "unsubscribed") \
            else logging.DEBUG
        log.log(level, "%s conn=%s %s %s %s %s", kind, conn, channel or "", inst or "", detail,
                data or "")
        return ev

    def _event(self, kind: str, conn: int | None = None, channel: str | None = None,
               inst: str | None = None, detail: str = "", **data: Any) -> None:
        self._ready.append(self._new_event(kind, conn, channel, inst, detail, **data))
        self._wake.set()

    # -- tasks ------------------------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            e = t.exception()
            log.error("task %s failed: %r", t.get_name(), e, exc_info=e)
            self._event("error", detail=f"internal task {t.get_name()} failed: "
                                        f"{type(e).__name__}: {e}")

    # -- connections ----------------------------------------------------------------------
    def _request_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    async def _send_requests(self, c: _Conn, op: str, args: list[Arg], budget: bool = True
                             ) -> bool:
        if not args:
            return True
        reqs = batch_requests(op, args, self._request_id, self.cfg.max_request_bytes)
        if budget and not c.budget.take(len(reqs)):
            return False
        for rid, frame, chunk in reqs:
            c.requests[rid] = (op, chunk)
            if len(c.requests) > 200:  # only to name the args of an error: keep the last few
                del c.requests[next(iter(c.requests))]
            self.counts["requests"] += 1
            await self._io.send(c.ws, frame.decode())
        return True

    async def _open(self, slot: _Slot, current: bool) -> _Conn:
        cfg = self.cfg
        await self._limiter.acquire()
        if self._closing:
            raise ConnectionError("client is closing")
        ws = await self._io.open(cfg.ws_url)
        now = self._now()
        c = _Conn(self._next_conn, slot.index, ws, cfg.ws_url,
                  RequestBudget(cfg.requests_per_hour, 3600.0, clock=self._now), now, now)
        self._next_conn += 1
        self._conns[c.id] = c
        if current:
            slot.current = c
        self._event("connect", c.id, detail=cfg.ws_url, slot=slot.index, args=len(slot.args),
                    attempt=slot.attempt, switchover=not current)
        c.task = self._spawn(self._read(c), f"okx-conn-{c.id}")
        with contextlib.suppress(*SEND_ERRORS):  # the reader reports a close
            await self._send_requests(c, "subscribe", slot.args)
        return c

    async def _close_ws(self, c: _Conn) -> None:
        c.closing = True
        await self._io.close(c.ws)
        if c.task is not None and not c.task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(c.task), self.cfg.close_timeout)

    async def _slot_loop(self, slot: _Slot) -> None:
        cfg = self.cfg
        while not self._closing:
            await slot.need.wait()
            slot.need.clear()
            if self._closing:
                return
            if slot.current is not None or slot.switching:
                continue
            if not slot.args:
                return  # every subscription of this slot was refused
            if slot.attempt:
                await asyncio.sleep(backoff_delay(slot.attempt - 1, cfg.backoff_base,
                                                  cfg.backoff_max))
            try:
                await self._open(slot, current=True)
            except CONNECT_ERRORS as e:
                if self._closing:
                    return
                slot.attempt += 1
                self._event("connect_failed", slot=slot.index, attempt=slot.attempt,
                            detail=f"{type(e).__name__}: {e}", url=cfg.ws_url)
                slot.need.set()

    async def _read(self, c: _Conn) -> None:
        ws, io = c.ws, self._io
        code, reason = None, ""
        try:
            while True:
                payload = await io.recv(ws)
                recv_ns = self._time_ns()
                arrival = self._arrival
                try:
                    self._on_frame(c, payload, recv_ns)
                except Exception as e:  # a bug here must not silently kill the connection
                    self.counts["internal_errors"] += 1
                    log.exception("conn %d: frame handling failed", c.id)
                    if self.counts["internal_errors"] <= MAX_NOISY_EVENTS:
                        self._event("error", c.id, bytes=len(payload),
                                    detail=f"internal: {type(e).__name__}: {str(e)[:200]}")
                    if self._arrival == arrival:  # not passed on: keep it, never lose it
                        self._malformed(c, payload, recv_ns, f"internal: {type(e).__name__}")
                if len(self._ready) >= self.cfg.max_ready and not self._closing:
                    # Back-pressure: stop reading (TCP pushes back) until the consumer
                    # catches up; the keepalive does not count this time.
                    self._space.clear()
                    c.blocked = True
                    await self._space.wait()
                    c.blocked = False
                    c.last_rx = self._now()
                    c.ping_sent = None
        except Closed as e:
            code, reason = e.code, e.reason
        except asyncio.CancelledError:
            code, reason = 1000, "cancelled"
            raise
        finally:
            io.abort(ws)
            self._on_closed(c, code, reason)

    def _on_closed(self, c: _Conn, code: int | None, reason: str) -> None:
        if c.closed:
            return
        c.closed = True
        now = self._now()
        slot = self._slots[c.slot]
        since = now - (c.last_data or c.opened)
        expected = c.closing or self._closing
        # None for a planned close; [] for a connection that was carrying no stream (a
        # switchover's new one, or one whose streams an earlier disconnect already cut).
        streams = None if expected else []
        if streams is not None and slot.current is c:
            # What arrives next on each stream says whether anything was lost meanwhile.
            for key in slot.args:
                st = self._streams[key]
                if st.resume is None:
                    st.resume = {"conn": c.id}
                    st.lossless = None
                    streams.append(list(key))
        self._event("disconnect", c.id, detail=f"code {code}: {reason}", code=code,
                    expected=expected, since_data_s=round(since, 3),
                    lived_s=round(now - c.opened, 3), streams=streams)
        for q in c.pending.values():
            self.counts["pending_dropped"] += len(q)
        c.pending.clear()
        self._conns.pop(c.id, None)
        if self._closing or slot.current is not c:
            return
        slot.current = None
        slot.down_since = c.last_data or c.opened
        slot.down_conn = c.id
        for key in slot.args:
            st = self._streams[key]
            if st.mode != LIVE:
                # What was held came from the dead connection: the new one starts afresh.
                self._release(st)
                st.deadline = None
                st.rest_snap = None
                st.splice_ev.set()
        if slot.switching:
            return  # the switchover makes its new connection current
        if now - c.opened >= self.cfg.backoff_reset_s:
            slot.attempt = 0
        slot.attempt += 1
        slot.need.set()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.tick)
            self._tick(self._now())

    def _tick(self, now: float) -> None:
        """The timed decisions, every ``tick`` s: ping, pong timeout, silence, refusals
        that named no argument, snapshot timeout."""
        cfg = self.cfg
        for c in list(self._conns.values()):
            if c.closed or c.closing or c.dead or c.blocked:
                continue
            if c.ping_sent is not None:
                if now - c.ping_sent > cfg.pong_timeout:
                    self._event("ping_timeout", c.id, detail=f"no pong within "
                                f"{cfg.pong_timeout:g} s: connection presumed dead")
                    c.dead = True
                    self._io.abort(c.ws)
            elif now - c.last_rx >= cfg.ping_interval:
                c.ping_sent = now
                self._spawn(self._ping(c), f"okx-ping-{c.id}")
            last = c.last_data or c.opened
            if c.silent_since is None and now - last >= cfg.silence_s:
                c.silent_since = last
        if self._unnamed_errors:
            self._check_unnamed_errors(now)
        for st in self._streams.values():
            if st.mode == AWAIT and st.deadline is not None and now > st.deadline:
                st.deadline = None
                self._inband = False
                self._event("snapshot_timeout", self._owner_id(st), st.channel, st.inst,
                            detail=f"no snapshot within {cfg.snapshot_timeout:g} s of the "
                                   "subscribe ack: bootstrapping from REST")
                self._to_rest(st)

    async def _ping(self, c: _Conn) -> None:
        with contextlib.suppress(*SEND_ERRORS):
            await self._io.send(c.ws, "ping")

    def _owner_id(self, st: _Stream) -> int | None:
        c = self._slots[st.slot].current
        return None if c is None else c.id

    # -- frames -----------------------------------------------------------------------------
    def _on_frame(self, c: _Conn, payload: bytes, recv_ns: int) -> None:
        now = self._now()
        c.last_rx = now
        if payload == b"pong":
            c.ping_sent = None
            if self.cfg.yield_pongs:
                self._emit(recv_ns, c.id, EVENT_CHANNEL, NO_INST, payload)
            return
        t0 = perf_counter_ns()
        try:
            msg = parse_frame(payload)  # total: OkxParseError is its only failure
        except OkxParseError as e:
            self._malformed(c, payload, recv_ns, e.reason)
            return
        self._parse_ns = perf_counter_ns() - t0
        if type(msg) is EventMsg:
            self._emit(recv_ns, c.id, EVENT_CHANNEL, NO_INST, payload, msg)
            self._on_control(c, msg)
            return
        self._data_seen(c, now)
        if is_book(msg):
            self._on_book(c, msg, payload, recv_ns)
        elif type(msg) is TradeMsg:
            self._on_trades(c, msg, payload, recv_ns)
        else:
            self._on_other(c, msg, payload, recv_ns)

    def _malformed(self, c: _Conn, payload: bytes, recv_ns: int, reason: str) -> None:
        # Passed on (a recorder stores it in the malformed partition), counted, reported.
        self.counts["malformed"] += 1
        self._emit(recv_ns, c.id, MALFORMED_CHANNEL, NO_INST, payload)
        if self.counts["malformed"] <= MAX_NOISY_EVENTS:
            self._event("malformed", c.id, detail=reason, bytes=len(payload))

    def _data_seen(self, c: _Conn, now: float) -> None:
        if c.silent_since is not None:
            self._event("silence", c.id, detail="no data on the connection",
                        silent_s=round(now - c.silent_since, 3))
            c.silent_since = None
        c.last_data = now
        if c.first_data is None:
            c.first_data = now
            slot = self._slots[c.slot]
            if slot.current is c and slot.down_since is not None:
                self.counts["reconnects"] += 1
                self._event("reconnect", c.id, detail="data flows again",
                            previous_conn=slot.down_conn,
                            missing_s=round(now - slot.down_since, 3))
                slot.down_since = None

    def _on_control(self, c: _Conn, msg: EventMsg) -> None:
        ev = msg.event
        key = (msg.channel, msg.inst_id) if msg.arg else None
        st = self._streams.get(key) if key else None
        if ev == "subscribe" and st is not None:
            c.acked.add(st.key)
            if self._slots[st.slot].current is c and st.mode == AWAIT:
                st.t0 = st.t0 or self._now()
                if self._inband is False:
                    self._to_rest(st)  # this server sends no snapshots: do not wait for one
                else:
                    st.deadline = self._now() + self.cfg.snapshot_timeout
            if st.kind in ("trades", "other"):
                c.joined.add(st.key)
            self._event("subscribed", c.id, st.channel, st.inst)
        elif ev == "unsubscribe" and st is not None:
            c.acked.discard(st.key)
            self._event("unsubscribed", c.id, st.channel, st.inst)
            if self._closing and st.key in self._unsub_wait:
                self._unsub_wait.discard(st.key)
                if not self._unsub_wait:
                    self._unsub_done.set()
        elif ev == "error":
            req = c.requests.get(str(msg.id)) if msg.id is not None else None
            extra: dict[str, Any] = {"code": msg.code}
            if req is not None:
                extra["op"], extra["args"] = req[0], [list(a) for a in req[1][:5]]
                extra["n_args"] = len(req[1])
            self._event("error", c.id, detail=str(msg.msg), **extra)
            if req is not None and req[0] == "subscribe":
                self._subscribe_error(c, req[1], msg)
            elif req is None:
                key = named_arg(msg.msg)
                if key in self._streams:
                    self._refuse(c, key, msg.code, msg.msg)
        elif ev == "notice":
            self._event("notice", c.id, detail=str(msg.msg), code=msg.code)
            slot = self._slots[c.slot]
            if msg.code == "64008" and slot.current is c and not slot.switching \
                    and not self._closing:
                slot.switching = True
                self._spawn(self._switchover(slot, c), f"okx-switchover-{slot.index}")

    # -- refusals ---------------------------------------------------------------------------
    def _subscribe_error(self, c: _Conn, args: list[Arg], msg: EventMsg) -> None:
        """An error answering one of our subscribe requests: refuse the argument it names,
        the request's only argument, or (when it names none of several) those of the
        request still not acked ``refusal_wait`` s later."""
        key = named_arg(msg.msg)
        if key in args:
            self._refuse(c, key, msg.code, msg.msg)
        elif len(args) == 1:
            self._refuse(c, args[0], msg.code, msg.msg)
        else:
            self._unnamed_errors.append((c, list(args), msg.code, msg.msg,
                                         self._now() + self.cfg.refusal_wait))

    def _refuse(self, c: _Conn, key: Arg, code: Any, text: Any) -> None:
        """The server refused ``key``: say so (``refused`` event, :attr:`refused`) and stop
        asking for it, here and on every later connection."""
        st = self._streams.get(key)
        if st is None or st.refused is not None:
            return
        now_ns = self._time_ns()
        code = None if code is None else str(code)
        text = None if text is None else str(text)
        st.refused = {"channel": st.channel, "inst": st.inst, "code": code, "msg": text,
                      "conn": c.id, "recv_ns": now_ns}
        self.refused.append(st.refused)
        st.resume = None
        slot = self._slots[st.slot]
        if key in slot.args:
            slot.args.remove(key)
        c.acked.discard(key)
        if st.rest_task is not None:
            st.rest_task.cancel()
            st.rest_task = None
        st.deadline = None
        self._event("refused", c.id, st.channel, st.inst,
                    detail=f"subscription refused: {code} {text}", code=code, msg=text)
        if not slot.args and slot.current is not None and not self._closing:
            # nothing left to receive on it; OKX would close it in 30 s anyway
            cur = slot.current
            self._spawn(self._close_ws(cur), f"okx-close-{cur.id}")

    def _check_unnamed_errors(self, now: float) -> None:
        keep = []
        for c, args, code, text, deadline in self._unnamed_errors:
            if now < deadline:
                keep.append((c, args, code, text, deadline))
            elif not c.closed:
                for key in args:
                    if key not in c.acked:
                        self._refuse(c, key, code, text)
        self._unnamed_errors = keep

    # -- resume after a disconnect --------------------------------------------------------------
    def _resumed(self, st: _Stream, c: _Conn | None, lossless: bool, detail: str,
                 **data: Any) -> None:
        r = st.resume
        st.resume = None
        st.lossless = lossless
        self._event("resumed", None if c is None else c.id, st.channel, st.inst, detail=detail,
                    previous_conn=r["conn"] if r else None, lossless=lossless, **data)
        if st.kind not in ("incremental", "full"):
            return
        for t in self._streams.values():
            if t.kind != "trades" or t.inst != st.inst or t.resume is None \
                    or t.resume["conn"] != (r or {}).get("conn"):
                continue
            if lossless:
                # The book did not change while the connection was down: no trade can
                # have happened (a trade takes liquidity off the book).
                self._resumed(t, c, True, f"the {st.channel} book of {st.inst} did not "
                              "change while disconnected: no trade happened",
                              proof=f"{st.channel} book", last_trade_id=t.last_trade)
            elif "first" in t.resume:
                self._resumed(t, c, False, t.resume["first"], last_trade_id=t.last_trade)

    def _resume_book(self, st: _Stream, c: _Conn, msg: Any) -> None:
        last = st.last_seq
        if msg.action == "snapshot" or st.kind == "full":
            ok = last is not None and msg.seq_id == last
            what = f"first push seqId {msg.seq_id}, last before seqId {last}"
        else:
            ok = last is not None and msg.prev_seq_id == last
            what = (f"first update prevSeqId {msg.prev_seq_id}, last before seqId {last}")
        if last is None:
            why = ": no message before the disconnect, cannot tell what was missed"
        else:
            why = ": unchanged, nothing missed" if ok else ": updates in between were not " \
                                                           "received"
        self._resumed(st, c, ok, what + why, last_seq_id=last, seq_id=msg.seq_id)

    def _resume_trades(self, st: _Stream, c: _Conn, msg: TradeMsg) -> None:
        first = msg.trades[0] if msg.trades else None
        tid = _int(first.trade_id) if first is not None else None
        last = st.last_trade
        n = first.count if first is not None else None
        if tid is not None and last is not None and isinstance(n, int) and n > 0 \
                and tid - n == last:
            self._resumed(st, c, True, f"tradeId {tid} ({n} fills) continues {last}",
                          proof="tradeId", last_trade_id=last, trade_id=tid)
            return
        book = next((b for b in self._streams.values() if b.inst == st.inst
                     and b.kind in ("incremental", "full") and b.slot == st.slot), None)
        why = (f"first tradeId {tid} ({n} fills) after last tradeId {last}: trades in "
               "between may be missing")
        if book is not None and book.resume is not None:
            st.resume["first"] = why  # the book's verdict decides (see _resumed)
            return
        if book is not None and book.lossless:
            self._resumed(st, c, True, f"the {book.channel} book of {st.inst} did not change "
                          "while disconnected: no trade happened", proof=f"{book.channel} book",
                          last_trade_id=last, trade_id=tid)
            return
        self._resumed(st, c, False, why, last_trade_id=last, trade_id=tid)

    def _dup(self, st: _Stream, c: _Conn, msg: Any, what: str) -> None:
        c.dups += 1
        self.counts["duplicates"] += 1
        c.joined.add(st.key)
        # A switchover's overlap (and the old connection's last in-flight messages after
        # it) is expected to repeat messages: counted (switchover event), not reported.
        if not self._slots[st.slot].switching and not c.closing and not st.overlap \
                and self.counts["duplicates"] <= MAX_NOISY_EVENTS:
            self._event("duplicate", c.id, st.channel, st.inst, detail=what,
                        seq_id=getattr(msg, "seq_id", None),
                        prev_seq_id=getattr(msg, "prev_seq_id", None))

    def _on_trades(self, c: _Conn, msg: TradeMsg, payload: bytes, recv_ns: int) -> None:
        st = self._streams.get((msg.channel, msg.inst_id))
        if st is None:
            self._emit(recv_ns, c.id, msg.channel, msg.inst_id or NO_INST, payload, msg)
            return
        ids = [t.trade_id for t in msg.trades]
        if ids and all(i in st.seen for i in ids):
            self._dup(st, c, msg, f"trades {ids[0]}..{ids[-1]} already passed on")
            return
        for i in ids:
            st.seen.add(i)
        c.joined.add(st.key)
        self._own(st, c.id)
        if st.resume is not None and "first" not in st.resume \
                and self._slots[st.slot].current is c:
            self._resume_trades(st, c, msg)
        if msg.trades:
            st.last_trade = _int(msg.trades[-1].trade_id)
        self._emit(recv_ns, c.id, st.channel, st.inst, payload, msg)

    def _on_other(self, c: _Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        inst = msg.inst_id if isinstance(msg.inst_id, str) and msg.inst_id else NO_INST
        st = self._streams.get((msg.channel, inst))
        if st is not None:
            h = hash(payload)
            if h in st.seen:
                self._dup(st, c, msg, "identical frame already passed on")
                return
            st.seen.add(h)
            c.joined.add(st.key)
            self._own(st, c.id)
            if st.resume is not None and self._slots[st.slot].current is c:
                self._resumed(st, c, False, "no sequence to tell what was missed")
        self._emit(recv_ns, c.id, msg.channel, inst, payload, msg)

    def _on_book(self, c: _Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        st = self._streams.get((msg.channel, msg.inst_id))
        if st is None or st.sync is None:
            self._emit(recv_ns, c.id, msg.channel, msg.inst_id, payload, msg)
            return
        owner = self._slots[st.slot].current is c
        if owner:
            if st.resume is not None and st.resume["conn"] != c.id:
                self._resume_book(st, c, msg)
            st.last_seq = msg.seq_id
        if st.kind == "full":
            k = (msg.seq_id, msg.ts)
            if k in st.seen:
                self._dup(st, c, msg, "full-book push already passed on")
                return
            st.seen.add(k)
            c.joined.add(st.key)
            self._own(st, c.id)
            self._emit_book(st, recv_ns, c.id, payload, msg, self._parse_ns)
            return
        snapshot = msg.action == "snapshot"
        if st.mode != LIVE:
            if not owner:
                self.counts["non_owner_dropped"] += 1
                return
            if snapshot:
                self._inband_snapshot(st, c, msg, payload, recv_ns)
            else:
                self._hold(st, c, msg, payload, recv_ns)
            return
        if snapshot:
            if msg.seq_id in st.seen_seq:
                self._dup(st, c, msg, "snapshot of a seqId already passed on")
                return
            if owner:
                self._accept(st, c.id, msg, payload, recv_ns)
                self._drain_pending(st)
            else:
                self._pend(st, c, msg, payload, recv_ns)
            return
        if _book_key(msg) in st.seen:
            self._dup(st, c, msg, "update already passed on")
            return
        if owner or self._chains(st, msg):
            if not owner:
                c.joined.add(st.key)
            self._accept(st, c.id, msg, payload, recv_ns)
            self._drain_pending(st)
        else:
            self._pend(st, c, msg, payload, recv_ns)

    def _chains(self, st: _Stream, msg: Any) -> bool:
        s = st.chain
        kind = classify(s.valid, s.last_seq, s.last_prev, False, msg.prev_seq_id, msg.seq_id,
                        _empty(msg))
        return kind in (Seq.UPDATE, Seq.HEARTBEAT, Seq.RESET)

    def _own(self, st: _Stream, conn: int) -> None:
        """A message of its own from the stream's current connection ends a switchover's
        overlap (the old one, still read until closed, may run ahead of the new one)."""
        if st.overlap:
            cur = self._slots[st.slot].current
            if cur is not None and cur.id == conn:
                st.overlap = False

    def _accept(self, st: _Stream, conn: int, msg: Any, payload: bytes, recv_ns: int,
                parse_ns: int | None = None) -> None:
        chain = st.chain
        kind = chain.apply(msg, self._arrival)
        gap = bool(chain.events)
        a = self._emit_book(st, recv_ns, conn, payload, msg,
                            self._parse_ns if parse_ns is None else parse_ns, handled=gap).arrival
        st.last_seq = msg.seq_id
        self._own(st, conn)
        st.seen.add(_book_key(msg))
        st.seen_seq.add(msg.seq_id)
        if kind is Seq.RESET:
            self._event("seq_reset", conn, st.channel, st.inst,
                        detail="maintenance reset: seqId went down, chain continues",
                        seq_id=msg.seq_id, prev_seq_id=msg.prev_seq_id, ts=msg.ts, arrival=a)
        if gap:
            # the gap event itself follows the frame when it is yielded (its book says so)
            events, chain.events = chain.events, []
            if any(e.kind == "gap" for e in events):
                self._start_resync(st, "gap", msg.ts)

    def _pend(self, st: _Stream, c: _Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        q = c.pending.get(st.key)
        if q is None:
            q = c.pending[st.key] = deque()
        if len(q) >= self.cfg.max_pending:
            q.popleft()
            self.counts["pending_dropped"] += 1
        q.append(_Held(msg, payload, recv_ns, c.id, self._parse_ns))

    def _drain_pending(self, st: _Stream) -> None:
        """Messages other connections sent ahead of the chain: pass on those that now
        continue it, drop those now known to be duplicates."""
        progress = True
        while progress and st.mode == LIVE:
            progress = False
            for c in list(self._conns.values()):
                q = c.pending.get(st.key)
                while q:
                    h = q[0]
                    m = h.msg
                    if (m.seq_id in st.seen_seq if m.action == "snapshot"
                            else _book_key(m) in st.seen):
                        q.popleft()
                        self._dup(st, c, m, "already passed on by another connection")
                        progress = True
                    elif m.action != "snapshot" and self._chains(st, m):
                        q.popleft()
                        c.joined.add(st.key)
                        self._accept(st, c.id, m, h.payload, h.recv_ns, h.parse_ns)
                        progress = True
                    else:
                        break

    # -- resync -----------------------------------------------------------------------------
    def _resync_how(self, st: _Stream) -> str:
        mode = self.cfg.resync
        if mode == "rest" or (mode == "auto" and self._inband is False):
            return "rest"
        c = self._slots[st.slot].current
        if c is None or c.closed or c.budget.left() < 2:
            return "rest"
        return "resubscribe"

    def _start_resync(self, st: _Stream, why: str, ts: int | None) -> None:
        if st.mode != LIVE or self._closing:
            return
        st.why, st.t0, st.base_ts = why, self._now(), ts
        st.resyncs += 1
        how = self._resync_how(st)
        self._event("resync_started", self._owner_id(st), st.channel, st.inst,
                    detail=f"{why}: resync by {how}", how=how, why=why)
        if how == "rest":
            self._to_rest(st)
            return
        st.how = "resubscribe"
        st.mode = AWAIT
        st.deadline = None  # set at the subscribe ack
        self.counts["resyncs_resubscribe"] += 1
        c = self._slots[st.slot].current
        self._spawn(self._resubscribe(c, st), f"okx-resub-{st.inst}")

    async def _resubscribe(self, c: _Conn, st: _Stream) -> None:
        try:
            # OKX acks a repeated subscribe without a new snapshot: unsubscribe first.
            await self._send_requests(c, "unsubscribe", [st.key])
            await self._send_requests(c, "subscribe", [st.key])
        except SEND_ERRORS:
            pass  # the reconnect resubscribes everything

    def _to_rest(self, st: _Stream) -> None:
        st.mode = REST
        st.how = "rest"
        st.deadline = None
        st.rest_snap = None
        self.counts["resyncs_rest"] += 1
        if st.rest_task is None or st.rest_task.done():
            st.rest_task = self._spawn(self._bootstrap(st), f"okx-rest-{st.inst}")

    def _hold(self, st: _Stream, c: _Conn, msg: Any, payload: bytes, recv_ns: int) -> None:
        if _book_key(msg) in st.seen:
            self._dup(st, c, msg, "update already held")
            return
        if len(st.held) >= self.cfg.max_buffered:
            self._event("buffer_overflow", c.id, st.channel, st.inst,
                        detail=f"{len(st.held)} updates held while resyncing by {st.how} "
                               f"(max_buffered={self.cfg.max_buffered}): released unapplied, "
                               "resync goes on", held=len(st.held))
            self._release(st)
            if st.mode == REST:
                st.rest_snap = None
                st.splice_ev.set()
        st.seen.add(_book_key(msg))
        st.seen_seq.add(msg.seq_id)
        st.held.append(_Held(msg, payload, recv_ns, c.id, self._parse_ns))
        if st.mode == REST and st.rest_snap is not None:
            self._try_splice(st)

    def _release(self, st: _Stream, n: int | None = None) -> tuple[int, int] | None:
        """Pass on the first ``n`` held updates (all by default) unapplied-able: they reach
        the book while it has none (counted no_snapshot). Returns their arrival range."""
        held = st.held
        n = len(held) if n is None else n
        first = last = None
        chain = st.chain
        for _ in range(n):
            h = held.popleft()
            if not self.cfg.keep_stale:
                self.counts["stale"] += 1
                continue
            chain.apply(h.msg, self._arrival)
            last = self._emit_book(st, h.recv_ns, h.conn, h.payload, h.msg, h.parse_ns,
                                   released=True).arrival
            first = last if first is None else first
        chain.events.clear()  # explained by the resync releasing them
        return None if first is None else (first, last)

    def _stale(self, st: _Stream, released: tuple[int, int] | None) -> list[int] | None:
        """The ``stale_arrivals`` of a resync that is done: the updates it released, from
        the first one passed on after a break found at yield time (they reached no book)."""
        first, st.stale_first = st.stale_first, None
        if first is None:
            return None if released is None else list(released)
        return [first, st.last_arrival if released is None else released[1]]

    def _inband_snapshot(self, st: _Stream, c: _Conn, msg: Any, payload: bytes,
                         recv_ns: int) -> None:
        self._inband = True
        stale = self._stale(st, self._release(st))
        first = st.why == "subscribe"
        how = "snapshot" if first else st.how or "resubscribe"
        st.mode = LIVE
        st.deadline = None
        st.rest_snap = None
        if st.rest_task is not None:
            st.rest_task.cancel()
            st.rest_task = None
        st.chain.apply(msg, self._arrival)
        a = self._emit_book(st, recv_ns, c.id, payload, msg, self._parse_ns).arrival
        st.seen_seq.add(msg.seq_id)
        st.seen.add(_book_key(msg))
        self._event("synced" if first else "resync_done", c.id, st.channel, st.inst,
                    detail=f"in-band snapshot ({st.why})", how=how, why=st.why,
                    seq_id=msg.seq_id, arrival=a,
                    stale_arrivals=stale,
                    duration_s=round(self._now() - st.t0, 3) if st.t0 else None)
        st.why = "resync"
        self._drain_pending(st)

    async def _bootstrap(self, st: _Stream) -> None:
        cfg = self.cfg
        attempt = 0
        if not st.t0:
            st.t0 = self._now()
        while st.mode == REST and not self._closing:
            if st.rest_snap is None:
                try:
                    self.counts["rest_requests"] += 1
                    rb = await self._rest.books(st.inst, st.channel, REST_DEPTH[st.channel])
                except RestError as e:
                    attempt += 1
                    delay = backoff_delay(attempt - 1, cfg.rest_retry_base, cfg.rest_retry_max)
                    self._event("rest_error", None, st.channel, st.inst, detail=str(e),
                                status=e.status, code=e.code, attempt=attempt,
                                retry_in_s=round(delay, 3))
                    await asyncio.sleep(delay)
                    continue
                if st.mode != REST:
                    return
                attempt += 1
                self._event("bootstrap", None, st.channel, st.inst,
                            detail="REST order-book snapshot received", seq_id=rb.seq_id,
                            ts=rb.ts, bids=len(rb.msg.bids), asks=len(rb.msg.asks),
                            attempt=attempt, held=len(st.held))
                st.splice_ev.clear()
                st.rest_snap = rb
                self._try_splice(st)
                if st.mode != REST:
                    return
            try:
                await asyncio.wait_for(st.splice_ev.wait(), cfg.splice_wait)
            except TimeoutError:
                if st.mode == REST and st.rest_snap is not None:
                    self._event("bootstrap_retry", None, st.channel, st.inst,
                                detail=f"no update spliced onto REST seqId "
                                       f"{st.rest_snap.seq_id} within {cfg.splice_wait:g} s: "
                                       "fetching again")
                    st.rest_snap = None
            st.splice_ev.clear()
            if st.mode == REST and st.rest_snap is None and attempt:
                await asyncio.sleep(min(cfg.rest_retry_base, cfg.splice_wait))

    def _try_splice(self, st: _Stream) -> None:
        rb = st.rest_snap
        held = st.held
        res = find_splice(rb.seq_id, rb.ts, [(h.msg.prev_seq_id, h.msg.seq_id, h.msg.ts)
                                             for h in held], st.base_ts)
        if res.outcome == WAIT:
            return
        if res.outcome == STALE:
            self._event("bootstrap_retry", None, st.channel, st.inst, detail=res.detail,
                        seq_id=rb.seq_id)
            st.rest_snap = None
            st.splice_ev.set()
            return
        assert res.outcome == SPLICE
        stale = self._stale(st, self._release(st, res.index))
        first = held[0]
        st.chain.apply(rb.msg, self._arrival)
        start_chain_at(st.chain, first.msg.prev_seq_id)
        a = self._emit_book(st, rb.recv_ns, REST_CONN, rb.body, rb.msg, 0).arrival
        st.mode = LIVE
        st.rest_snap = None
        self._event("synced" if st.why == "subscribe" else "resync_done", None, st.channel,
                    st.inst, detail=f"REST snapshot spliced ({st.why})"
                           + (f"; {res.detail}" if res.detail else ""),
                    how="rest", why=st.why, seq_id=rb.seq_id, rest_ts=rb.ts, arrival=a,
                    splice_prev_seq_id=first.msg.prev_seq_id, splice_seq_id=first.msg.seq_id,
                    stale_arrivals=stale, applied=len(held),
                    duration_s=round(self._now() - st.t0, 3))
        st.why = "resync"
        st.splice_ev.set()
        while held and st.mode == LIVE:
            h = held.popleft()
            self._accept(st, h.conn, h.msg, h.payload, h.recv_ns, h.parse_ns)
        self._drain_pending(st)

    # -- 64008 switchover ---------------------------------------------------------------------
    def _all_joined(self, slot: _Slot, c: _Conn) -> bool:
        return all(k in c.joined or self._streams[k].mode != LIVE for k in slot.args)

    async def _switchover(self, slot: _Slot, old: _Conn) -> None:
        cfg = self.cfg
        t0 = self._now()
        try:
            new = None
            attempt = 0
            while new is None and not self._closing:
                try:
                    new = await self._open(slot, current=False)
                except CONNECT_ERRORS as e:
                    if self._closing:
                        return
                    attempt += 1
                    self._event("connect_failed", slot=slot.index, attempt=attempt,
                                detail=f"switchover: {type(e).__name__}: {e}", url=cfg.ws_url)
                    await asyncio.sleep(backoff_delay(attempt - 1, cfg.backoff_base,
                                                      cfg.backoff_max))
                    continue
                while (self._now() - t0 < cfg.switch_timeout and not old.closed
                       and not new.closed and not self._all_joined(slot, new)):
                    await asyncio.sleep(cfg.tick)
                if new.closed:
                    new = None
            if new is None or self._closing:
                return
            self._switch(slot, old, new, t0)
        finally:
            slot.switching = False
            if slot.current is None and not self._closing:
                slot.need.set()
        await self._close_ws(old)

    def _switch(self, slot: _Slot, old: _Conn, new: _Conn, t0: float) -> None:
        joined = sum(k in new.joined for k in slot.args)
        slot.current = new
        slot.down_since = None
        self.counts["switchovers"] += 1
        for key in slot.args:
            st = self._streams[key]
            st.overlap = True
            q = old.pending.pop(key, None)
            if q:
                self.counts["pending_dropped"] += len(q)
            if st.mode != LIVE:
                # Its resync ran on the old connection: start it again on the new one.
                self._release(st)
                if st.rest_task is not None:
                    st.rest_task.cancel()
                    st.rest_task = None
                st.mode = LIVE
                st.why = "switchover"
                self._start_resync(st, "switchover", st.base_ts)
                continue
            if st.kind != "incremental":
                continue
            self._drain_pending(st)
            q = new.pending.get(key)
            while q and st.mode == LIVE:
                # Not continuing the chain even now: the new connection's own view wins (its
                # snapshot resets the book; an update is a gap and resyncs the stream).
                h = q.popleft()
                if h.msg.action != "snapshot" and _book_key(h.msg) in st.seen:
                    self._dup(st, new, h.msg, "already passed on by the old connection")
                else:
                    self._accept(st, new.id, h.msg, h.payload, h.recv_ns, h.parse_ns)
                self._drain_pending(st)
        self._event("switchover", new.id, detail="64008: switched to the new connection",
                    old_conn=old.id, joined=joined, streams=len(slot.args),
                    overlap_s=round(self._now() - t0, 3),
                    duplicates_dropped=old.dups + new.dups)
        old.closing = True
