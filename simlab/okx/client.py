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

It is two parts. :class:`~simlab.okx.handler.FeedHandler` (handler.py, resync.py) makes
every decision and does no I/O; :class:`OkxClient` here drives it: it opens the
connections through the transport (:mod:`simlab.okx.transport`, at most
``connects_per_s``), reads them with back-pressure, calls the handler's ``tick`` every
``tick`` s, fetches REST snapshots, and performs the actions the handler queues
(:mod:`simlab.okx.actions`).

:meth:`OkxClient.stream` yields :class:`~simlab.okx.frames.RawFrame` objects (the same type
a recording's reader yields) interleaved with :class:`ClientEvent` status events. See
``docs/live-client.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from time import perf_counter_ns
from typing import Any

from .actions import Abort, ClientEvent, Close, Fetch, Open, Send, Unsubscribed
from .clock import Clock
from .config import OKX_WS_URL, RESYNC_MODES, ClientConfig
from .connection import Arg, RateLimiter
from .decoded import Decoded
from .frames import RawFrame
from .handler import (
    EVENT_CHANNEL,
    MALFORMED_CHANNEL,
    MAX_NOISY_EVENTS,
    NO_INST,
    FeedHandler,
    named_arg,
)
from .integrity import BookSync
from .rest import REST_CONN, REST_DEPTH, RestClient, RestError
from .state import AWAIT, LIVE, REST
from .transport import CONNECT_ERRORS, SEND_ERRORS, Closed, WsTransport

__all__ = ["AWAIT", "EVENT_CHANNEL", "LIVE", "MALFORMED_CHANNEL", "MAX_NOISY_EVENTS",
           "NO_INST", "OKX_WS_URL", "REST", "RESYNC_MODES", "ClientConfig", "ClientEvent",
           "FeedHandler", "OkxClient", "named_arg"]

log = logging.getLogger("simlab.okx.client")


class OkxClient:
    """Live OKX v5 public-feed client (asyncio, ``websockets``).

    ``subscriptions``: ``(channel, instId)`` pairs. ``book_factory(inst_id)`` makes the book
    each depth stream is kept in (e.g. :class:`simlab.book.L2Book`; the wire layer does not
    import the book layer). ``config`` or keyword overrides of :class:`ClientConfig` fields.
    ``clock``: what every decision reads (:mod:`simlab.okx.clock`); ``transport``: the
    WebSocket I/O (default :class:`~simlab.okx.transport.WsTransport`).

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
        #: The decisions (no I/O); the client performs its actions.
        self.handler = h = FeedHandler(subscriptions, book_factory=book_factory,
                                       config=config, clock=clock, **overrides)
        self.cfg = cfg = h.cfg
        self.clock = h.clock
        self.args = h.args
        #: Counters (``stats()``) and the refused subscriptions (``refused`` events, as
        #: dicts with channel, inst, code, msg, conn and recv_ns): the handler's own.
        self.counts: dict[str, int] = h.counts
        self.refused: list[dict[str, Any]] = h.refused
        self._io = transport or WsTransport(cfg.close_timeout, cfg.open_timeout, cfg.ws_options)
        self._ready = h.ready
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._unsub_done = asyncio.Event()
        self._ws: dict[int, Any] = {}  # connection id -> the transport's connection
        self._readers: dict[int, asyncio.Task] = {}
        self._fetches: dict[Arg, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._limiter = RateLimiter(cfg.connects_per_s, 1.0, clock=h.clock.now)
        self._rest = RestClient(cfg.rest_url, timeout=cfg.rest_timeout, headers=cfg.rest_headers,
                                rate=cfg.rest_rate, concurrency=cfg.rest_concurrency)
        self._started = self._finished = self._streaming = False

    # -- public API -----------------------------------------------------------------------
    @property
    def connections(self) -> list[list[Arg]]:
        """The subscriptions of each connection slot (the plan), e.g. 35 depth channels give
        two lists of 30 and 5."""
        return [list(s.args) for s in self.handler.slots]

    def sync(self, channel: str, inst_id: str) -> BookSync:
        """The :class:`BookSync` of one depth stream (its ``book``, ``stats``, ``valid``)."""
        return self.handler.sync(channel, inst_id)

    def book(self, channel: str, inst_id: str) -> Any:
        """The book the client keeps for ``(channel, inst_id)`` (REST bootstraps included)."""
        return self.sync(channel, inst_id).book

    @property
    def backlog(self) -> int:
        """Items waiting to be taken from :meth:`stream` (readers pause at ``max_ready``)."""
        return len(self._ready)

    def mode(self, channel: str, inst_id: str) -> str:
        """``live``, ``await`` (waiting for an in-band snapshot) or ``rest`` (bootstrapping)."""
        return self.handler.streams[(channel, inst_id)].mode

    def stats(self) -> dict[str, Any]:
        """Client counters and each depth stream's :class:`~simlab.okx.integrity.BookStats`."""
        return self.handler.stats()

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
        self.handler.start()
        self._run()
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
        h = self.handler
        ready = self._ready
        low = self.cfg.max_ready // 2
        apply = h.books.apply
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
                        events = h.outcome_events(item, o)
                        if h.actions:
                            self._run()
                        yield item if decoded else item.frame()
                        for ev in events:
                            yield ev
                        continue
                yield item if decoded else item.frame()
            if self._finished:
                return
            self._wake.clear()
            await self._wake.wait()

    async def close(self) -> None:
        """Unsubscribe (waiting up to ``close_timeout`` for the acks), close every
        connection, stop the REST bootstraps, release held updates, emit ``closed``; the
        stream then ends once drained. Idempotent."""
        h = self.handler
        if h.closing:
            while not self._finished:
                await asyncio.sleep(0.01)
            return
        h.begin_close()
        self._space.set()
        await self._send_all([a for a in h.drain() if type(a) is Send])
        if h.unsubscribing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unsub_done.wait(), self.cfg.close_timeout)
        await asyncio.gather(*(self._close_ws(cid) for cid in h.close_all()),
                             return_exceptions=True)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._rest.close()
        h.finish()
        h.drain()  # the connections are closed: nothing is left to do
        self._finished = True
        self._wake.set()

    # -- performing the handler's actions -------------------------------------------------
    def _run(self) -> None:
        """Perform the actions the handler queued; the consumer sees what it passed on."""
        sends = []
        for a in self.handler.drain():
            t = type(a)
            if t is Send:
                sends.append(a)
            elif t is Open:
                self._spawn(self._connect(a.slot, a.current), f"okx-slot-{a.slot}")
            elif t is Close:
                self._spawn(self._close_ws(a.conn), f"okx-close-{a.conn}")
            elif t is Abort:
                ws = self._ws.get(a.conn)
                if ws is not None:
                    self._io.abort(ws)
            elif t is Fetch:
                old = self._fetches.get(a.key)
                if old is not None and not old.done():
                    old.cancel()  # superseded: its answer would be ignored
                self._fetches[a.key] = self._spawn(self._fetch(a), f"okx-rest-{a.key[1]}")
            elif t is Unsubscribed:
                self._unsub_done.set()
        if sends:
            # in one task, in order: an unsubscribe goes out before its subscribe
            self._spawn(self._send_all(sends), "okx-send")
        self._wake.set()

    def _after(self) -> None:
        if self.handler.actions:
            self._run()
        elif self._ready:
            self._wake.set()

    async def _send_all(self, sends: list[Send]) -> None:
        failed: set[int] = set()  # going away: its reader reports the close
        for a in sends:
            ws = self._ws.get(a.conn)
            if ws is None or a.conn in failed:
                continue
            try:
                await self._io.send(ws, a.text)
            except SEND_ERRORS:
                failed.add(a.conn)

    async def _connect(self, slot: int, current: bool) -> None:
        h = self.handler
        try:
            await self._limiter.acquire()
            if h.closing:
                raise ConnectionError("client is closing")
            ws = await self._io.open(self.cfg.ws_url)
        except CONNECT_ERRORS as e:
            h.open_failed(slot, current, f"{type(e).__name__}: {e}")
            self._after()
            return
        cid = h.opened(slot, current)
        self._ws[cid] = ws
        self._readers[cid] = self._spawn(self._read(cid, ws), f"okx-conn-{cid}")
        self._after()

    async def _close_ws(self, cid: int) -> None:
        ws, reader = self._ws.get(cid), self._readers.get(cid)
        if ws is None:
            return  # its reader has ended: closed already
        await self._io.close(ws)
        if reader is not None and not reader.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(reader), self.cfg.close_timeout)

    async def _read(self, cid: int, ws: Any) -> None:
        h, io, ready = self.handler, self._io, self._ready
        frame, time_ns = h.frame, self.clock.time_ns
        wake, space, max_ready = self._wake, self._space, self.cfg.max_ready
        code, reason = None, ""
        try:
            while True:
                payload = await io.recv(ws)
                frame(cid, payload, time_ns())
                if h.actions:
                    self._run()
                elif ready:
                    wake.set()
                if len(ready) >= max_ready and not h.closing:
                    # Back-pressure: stop reading (TCP pushes back) until the consumer
                    # catches up; the keepalive does not count this time.
                    space.clear()
                    h.blocked(cid, True)
                    await space.wait()
                    h.blocked(cid, False)
        except Closed as e:
            code, reason = e.code, e.reason
        except asyncio.CancelledError:
            code, reason = 1000, "cancelled"
            raise
        finally:
            io.abort(ws)
            self._ws.pop(cid, None)
            self._readers.pop(cid, None)
            h.closed(cid, code, reason)
            self._after()

    async def _fetch(self, a: Fetch) -> None:
        channel, inst = a.key
        try:
            result: Any = await self._rest.books(inst, channel, REST_DEPTH[channel])
        except RestError as e:
            result = e
        self.handler.fetched(a.key, a.ticket, result)
        self._after()

    async def _housekeeping(self) -> None:
        h, now = self.handler, self.clock.now
        while True:
            await asyncio.sleep(self.cfg.tick)
            h.tick(now())
            self._after()

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
            self.handler.event("error", detail=f"internal task {t.get_name()} failed: "
                                               f"{type(e).__name__}: {e}")
            self._wake.set()
