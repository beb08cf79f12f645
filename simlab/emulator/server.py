"""The local OKX exchange: public v5 WebSocket (``/ws/v5/public``) and REST, over any market.

:class:`Emulator` serves a :class:`~simlab.emulator.source.MarketSource` (through a
:class:`~simlab.emulator.publisher.Publisher`) or a recording (through a
:class:`~simlab.emulator.recorded.RecordedFeed`) on loopback, in simulated time that runs at
``speed`` times real time, as fast as the clients read (``speed=None``), or only when told
(:meth:`Emulator.advance`). It speaks the protocol of ``docs/okx-v5-public-feed.md``:
subscribe/unsubscribe acks with ``id`` and ``connId``, OKX's error events, ``ping``/``pong``,
the idle close, and it can break the feed on purpose (:mod:`simlab.emulator.faults`).

Run it in an event loop (``async with Emulator(...) as emu``) or in a background thread
(:meth:`Emulator.start_in_thread`, what the pytest fixture does); every public method can
be called from any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import socket
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from simlab.okx.connection import EXCLUSIVE as _OKX_EXCLUSIVE
from simlab.okx.connection import MAX_REQUEST_BYTES as MAX_REQUEST
from simlab.okx.encode import encode_event

from .clock import CLOCK_MODES, Clock, SystemClock
from .faults import (
    CONNECTION_FAULTS,
    REST_FAULTS,
    ConnectionFaults,
    Fault,
    FaultSpec,
    with_at,
)
from .publisher import FULL, INCREMENTAL, Publisher, Push, _tight
from .rest import RestApi
from .source import MarketSource

log = logging.getLogger(__name__)

WS_PATH = "/ws/v5/public"
#: OKX: all args of one request together at most MAX_REQUEST (64 KB); a bigger frame is
#: refused with this reason.
TOO_BIG = f"Max frame length of {MAX_REQUEST} has been exceeded."
NOTICE_MSG = "The connection will soon be closed for a service upgrade. Please reconnect."
#: Channels that cannot be subscribed together for one instrument (OKX, since 2024-07-17):
#: simlab.okx's rule, both ways round.
EXCLUSIVE: dict[str, tuple[str, ...]] = {}
for _a, _others in _OKX_EXCLUSIVE.items():
    for _b in _others:
        EXCLUSIVE[_a] = (*EXCLUSIVE.get(_a, ()), _b)
        EXCLUSIVE[_b] = (*EXCLUSIVE.get(_b, ()), _a)
TBT = ("books-l2-tbt", "books50-l2-tbt")
TBT_ACCESS = ("open", "login", "deny")
#: Max-speed mode: simulated ms per step, and the queue length that pauses the clock.
MAX_STEP_MS = 200
HIGH_WATER, LOW_WATER = 2000, 500
#: A connection whose queue grows beyond either bound is closed as OKX closes a slow
#: consumer (4005); so is one whose socket takes nothing for SEND_TIMEOUT seconds.
MAX_QUEUE = 100_000
MAX_QUEUE_BYTES = 16 * 1024 * 1024
SEND_TIMEOUT = 10.0
#: Seconds the close handshake may take before the server aborts the connection.
CLOSE_TIMEOUT = 2.0
SLOW_CODE, SLOW_REASON = 4005, "Buffer is full, cannot write data"
#: What a queued frame costs beyond its bytes (the Push tuple and its fields), so that
#: max_queue_bytes bounds the memory the queue holds.
_ITEM = 128
#: At most this much (frames, bytes) is written to a connection's socket at once.
_BATCH, _BATCH_BYTES = 512, 256 * 1024
#: A bad request is quoted in the error up to this many characters.
EXCERPT = 100
MAX_ID = 32  # OKX: a request id is at most 32 characters


async def _send_text(ws: ServerConnection, frames: list[bytes]) -> None:
    """Send UTF-8 frames as text messages, in one write to the socket when possible."""
    ctx = getattr(ws, "send_context", None)
    protocol = getattr(ws, "protocol", None)
    if ctx is None or protocol is None or len(frames) == 1:
        for f in frames:
            await ws.send(f, text=True)
        return
    # websockets' own send() does this for one message (send_context: state check on entry,
    # an internal of websockets 14-17, hence the version bound in pyproject.toml;
    # write and drain on exit); here for many, joined into one write (not one per frame).
    async with ctx():
        for f in frames:
            protocol.send_text(f)
        # In the OPEN state the protocol only queues frames (no end-of-stream marker).
        ws.transport.write(b"".join(protocol.data_to_send()))


def _err(code: str, msg: str, conn_id: str, id_: str | None = None) -> bytes:
    # Key order as received from OKX in 2026: (id,) event, msg, code, connId.
    d: dict[str, Any] = {}
    if id_ is not None:
        d["id"] = id_
    d.update(event="error", msg=msg, code=code, connId=conn_id)
    return orjson.dumps(d)


def excerpt(text: str, n: int = EXCERPT) -> str:
    """At most ``n`` characters of what a client sent, for an error message: a bad request
    is answered with a short quote, never echoed whole (it may be 256 KB).

    >>> excerpt("x" * 500)[-20:], len(excerpt("x" * 500))
    ('xxxxx... (500 chars)', 115)
    >>> excerpt("short")
    'short'
    """
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} chars)"


def check_host(host: str, public: bool = False) -> None:
    """Refuse to bind anything but loopback unless ``public``: the emulator has no
    authentication, and an empty host binds every interface.

    >>> check_host("127.0.0.1"), check_host("::1"), check_host("localhost")
    (None, None, None)
    >>> try:
    ...     check_host("")
    ... except ValueError as e:
    ...     print(str(e)[:29])
    host '' binds every interface
    """
    if host == "localhost":
        return
    try:
        loopback = bool(host) and ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and public:
        log.warning("serving on %r (public): no authentication, anyone who can reach it can "
                    "connect", host)
    elif not loopback:
        what = "binds every interface" if host in ("", "0.0.0.0", "::") else "is not loopback"
        raise ValueError(f"host {host!r} {what}: the emulator serves loopback only "
                         "(127.0.0.1, ::1, localhost) unless public=True (simlab serve --public)")


def _wrong_channel(op: str, channel: Any, inst: Any) -> str:
    verb = "Subscribe" if op == "subscribe" else "Unsubscribe"
    channel, inst = excerpt(str(channel), 64), excerpt(str(inst), 64)
    return (f"{verb} failed, wrong URL or channel:{channel},instId:{inst} doesn't exist. "
            "Please use the correct URL, channel and parameters referring to API document.")


@dataclass(frozen=True, slots=True)
class ClosedConnection:
    """How a connection ended (:attr:`Emulator.closed`, the last 1,000).

    ``code``: the close code the server sent (None if the client closed first);
    ``aborted``: the server cut the TCP connection (the close handshake did not drain,
    or a ``drop`` fault); ``peak_bytes``: the most its outgoing queue ever held.
    """

    number: int
    conn_id: str
    code: int | None
    reason: str
    aborted: bool
    peak_bytes: int


class Connection:
    """One client connection: its subscriptions, its bounded outgoing queue and its faults.

    The queue holds at most :attr:`Emulator.max_queue` frames and
    :attr:`Emulator.max_queue_bytes` bytes; beyond either, or when the socket has taken
    nothing for :attr:`Emulator.send_timeout` seconds, the client is a slow consumer:
    the queue is dropped, nothing more is queued, and the connection is closed with 4005
    as OKX does (:meth:`close`: if the close handshake does not complete within
    :attr:`Emulator.close_timeout`, the transport is aborted).
    """

    def __init__(self, emu: Emulator, ws: ServerConnection, number: int, conn_id: str) -> None:
        self.emu, self.ws, self.number, self.conn_id = emu, ws, number, conn_id
        self.subs: set[tuple[str, str]] = set()
        self.queue: deque = deque()
        self.queued_bytes = 0
        self.peak_bytes = 0
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.faults = ConnectionFaults()
        self.logged_in = False
        self.sent = 0  # data pushes sent
        self.last_activity = emu.clock.monotonic()
        self.sending_since = 0.0  # when the writer began waiting on the socket (0: it isn't)
        self.hold_until = 0.0
        self.closing = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.aborted = False
        self._close_task: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"Connection(#{self.number}, connId={self.conn_id}, subs={len(self.subs)})"

    def enqueue(self, item: Push | bytes) -> None:
        if self.closing:
            return  # a closing connection is sent nothing more: its queue must not grow
        if type(item) is bytes:
            # A frame of the server's own (ack, error, pong): held at its size, as the
            # publisher holds its pushes, so that the byte bound sees what the queue holds.
            item = _tight(item)
            n = len(item)
        else:
            n = len(item.frame)
        q = self.queue
        q.append(item)
        b = self.queued_bytes + n + _ITEM
        self.queued_bytes = b
        if b > self.peak_bytes:
            self.peak_bytes = b
        if len(q) == 1:
            self.wakeup.set()
        if len(q) > HIGH_WATER:
            self.drained.clear()
        emu = self.emu
        if b > emu.max_queue_bytes or len(q) > emu.max_queue:
            self.slow(f"{len(q)} frames, {b} bytes queued (limits {emu.max_queue} frames, "
                      f"{emu.max_queue_bytes} bytes)")

    def slow(self, why: str) -> None:
        """Close a client that does not keep up with 4005 (OKX's slow-consumer close)."""
        if self.closing:
            return
        log.warning("%r is a slow consumer (%s): closing it with %d", self, why, SLOW_CODE)
        self.emu.slow_closes += 1
        self.close_code, self.close_reason = SLOW_CODE, SLOW_REASON
        self._shed()
        self._close_task = asyncio.get_running_loop().create_task(
            self.close(SLOW_CODE, SLOW_REASON))

    async def writer(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._write()

    async def _write(self) -> None:
        ws, q, faults, clock = self.ws, self.queue, self.faults, self.emu.clock
        batch: list[bytes] = []
        while True:
            if not q:
                self.drained.set()
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if self.hold_until:
                delay = self.hold_until - clock.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.hold_until = 0.0
            # Send what is queued in one write: far cheaper than a send() per frame.
            drop = False
            pushes = size = 0
            while q and len(batch) < _BATCH and size < _BATCH_BYTES:
                item = q.popleft()
                if type(item) is bytes:
                    batch.append(item)
                    size += len(item) + _ITEM
                    continue
                size += len(item.frame) + _ITEM
                if faults.armed:
                    frames, drop = faults.process(item)
                    batch.extend(frames)
                    pushes += len(frames)
                    if drop:
                        break
                else:
                    batch.append(item.frame)
                    pushes += 1
            self.queued_bytes = max(0, self.queued_bytes - size) if q else 0
            if len(q) < LOW_WATER:
                self.drained.set()
            if batch:
                # The watchdog closes a client whose socket takes nothing for send_timeout.
                self.sending_since = clock.monotonic()
                await _send_text(ws, batch)
                self.sending_since = 0.0
                batch.clear()
            if pushes:
                self.sent += pushes
                self.last_activity = clock.monotonic()
            if drop:
                log.info("fault: dropping %r after %d pushes", self, self.sent)
                self.abort()
                return

    def _shed(self) -> None:
        """Stop queueing for this connection and free what it holds."""
        self.closing = True
        self.queue.clear()
        self.queued_bytes = 0
        self.drained.set()  # a full-speed clock may be waiting for this reader
        self.emu._forget_subs(self)

    def abort(self, reset: bool = False) -> None:
        """Cut the TCP connection without a close frame (the client sees 1006).

        ``reset``: also discard what the kernel still holds for the client (a TCP reset,
        SO_LINGER 0), so a client that never reads holds no memory on the server at all.
        """
        self._shed()
        self.aborted = True
        transport = self.ws.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    async def close(self, code: int, reason: str) -> None:
        """The close handshake with ``code``, or an abort if it does not complete within
        :attr:`Emulator.close_timeout` (a client that never reads never takes the close
        frame, which waits behind everything already written to its socket)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._shed()
        timeout = self.emu.close_timeout
        try:
            await asyncio.wait_for(self.ws.close(code, reason), timeout)
        except TimeoutError:
            log.warning("%r did not complete the close handshake (%d) in %gs: aborting the "
                        "connection", self, code, timeout)
            self.abort(reset=True)
        except Exception as e:  # the connection failed while closing: it is closed
            log.debug("%r: error while closing: %r", self, e)


class Emulator:
    """A local OKX exchange (public WebSocket + REST) over a market or a recording.

    ``market``: any :class:`MarketSource` (default: the Cont-Stoikov-Talreja market if
    available, else :class:`~simlab.emulator.testing.RandomMarket`); or ``recording``: a
    recording directory or :class:`simlab.store.Recording` to replay. ``speed``: simulated
    seconds per real second, ``None`` for as fast as the clients read. ``checksum`` and
    ``snapshot`` pick the protocol generation (False, False: OKX after mid-2026).
    ``tbt_access``: ``"open"`` serves the ``*-l2-tbt`` channels without login (default),
    ``"login"`` requires a ``login`` request first (any credentials), ``"deny"`` answers
    OKX's errors (60011 before login, 64003 after). ``idle_timeout``: seconds without a push
    or a client frame before the server closes the connection (OKX: 30).
    ``heartbeat_s``: simulated seconds without change before the empty update (OKX: 60).
    ``notice_delay``: default seconds between the 64008 notice and the close.
    ``paused``: start with the clock stopped (:meth:`resume`, :meth:`advance`);
    ``start_on_subscribe``: start it at the first subscription (a served recording always
    does). ``faults``: FaultSpecs.

    The exchange clock (what the frames' ``ts`` say): ``clock_mode="wall"`` stamps wall
    time, the frames leaving ``latency_ms`` after their ``ts`` (a simulated network
    latency, so a client measures ``recv - ts`` of about ``latency_ms``); it needs
    ``speed=1`` and is the default then (unless ``paused``). ``"sim"`` (the default at any
    other speed, or paused) runs a
    simulated clock from ``start_ms`` (default: the market's own start). A served recording
    keeps the ``ts`` it recorded. ``clock``: where wall and monotonic time are read
    (:class:`~simlab.emulator.clock.SystemClock`; tests inject a
    :class:`~simlab.emulator.clock.ManualClock`).

    Slow consumers: each connection's queue is bounded by ``max_queue`` frames and
    ``max_queue_bytes`` bytes; a connection beyond either, or whose socket takes nothing
    for ``send_timeout`` seconds, is closed with 4005, and aborted if the close handshake
    does not complete in ``close_timeout`` seconds (:class:`Connection`).
    ``host`` must be a loopback address unless ``public=True`` (then every client that can
    reach the machine can connect).

    >>> import asyncio
    >>> from simlab.emulator.testing import RandomMarket
    >>> async def main():
    ...     async with Emulator(RandomMarket(seed=1), port=0, rest_port=0) as emu:
    ...         return emu.ws_url.startswith("ws://127.0.0.1:")
    >>> asyncio.run(main())
    True
    """

    def __init__(self, market: MarketSource | None = None, *, recording: Any = None,
                 host: str = "127.0.0.1", port: int = 0, rest_port: int | None = 0,
                 speed: float | None = 1.0, checksum: bool = True, snapshot: bool = True,
                 tbt_access: str = "open", idle_timeout: float = 30.0,
                 heartbeat_s: float = 60.0, notice_delay: float = 60.0,
                 rest_seq_id: bool = True, seed: int = 0, faults: Iterable[FaultSpec] = (),
                 paused: bool = False, start_on_subscribe: bool = False, deflate: bool = False,
                 max_queue: int = MAX_QUEUE, max_queue_bytes: int = MAX_QUEUE_BYTES,
                 send_timeout: float = SEND_TIMEOUT, close_timeout: float = CLOSE_TIMEOUT,
                 public: bool = False, clock_mode: str | None = None, latency_ms: float = 0.0,
                 start_ms: int | None = None, clock: Clock | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 (or None for as fast as possible), got {speed}")
        check_host(host, public)
        for name, v in (("max_queue", max_queue), ("max_queue_bytes", max_queue_bytes),
                        ("send_timeout", send_timeout), ("close_timeout", close_timeout)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if clock_mode is None:
            # A paused clock is driven by advance(): simulated, and reproducible byte for byte.
            clock_mode = "wall" if speed == 1 and recording is None and not paused else "sim"
        if clock_mode not in CLOCK_MODES:
            raise ValueError(f"clock_mode must be one of {CLOCK_MODES}, got {clock_mode!r}")
        if clock_mode == "wall":
            if recording is not None:
                raise ValueError("a recording is served with the ts it recorded: "
                                 "clock_mode='wall' needs a market")
            if speed != 1:
                raise ValueError(f"clock_mode='wall' runs at speed 1, got speed {speed}; "
                                 "use clock_mode='sim' to run faster or slower")
            if start_ms is not None:
                raise ValueError("start_ms sets a simulated clock: use clock_mode='sim'")
        elif latency_ms:
            raise ValueError("latency_ms delays frames behind the wall clock: it needs "
                             "clock_mode='wall'")
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        if start_ms is not None and recording is not None:
            raise ValueError("a recording is served with the ts it recorded: no start_ms")
        if tbt_access not in TBT_ACCESS:
            raise ValueError(f"tbt_access must be one of {TBT_ACCESS}, got {tbt_access!r}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, got {idle_timeout}")
        if market is not None and recording is not None:
            raise ValueError("give a market or a recording, not both")
        self.host, self.port, self.rest_port = host, port, rest_port
        self.speed = speed
        self.checksum, self.snapshot = checksum, snapshot
        self.tbt_access = tbt_access
        self.idle_timeout = idle_timeout
        self.notice_delay = notice_delay
        self.seed = seed
        self.deflate = deflate
        self.max_queue, self.max_queue_bytes = max_queue, max_queue_bytes
        self.send_timeout, self.close_timeout = send_timeout, close_timeout
        self.clock: Clock = clock or SystemClock()
        self.clock_mode, self.latency_ms = clock_mode, float(latency_ms)
        self._schedule = [FaultSpec(**f) if isinstance(f, dict) else f for f in faults]
        if recording is not None:
            from .recorded import RecordedFeed

            self.feed: Any = RecordedFeed(recording)
        else:
            if market is None:
                market = default_market(seed)
            self.feed = Publisher(market, checksum=checksum, seed=seed,
                                  heartbeat_ms=int(heartbeat_s * 1000))
        if start_ms is not None:
            self.feed.ts_offset_ms = int(start_ms) - self.feed.start_ms
        self.rest = RestApi(self.feed.instruments, self._rest_book, seq_id=rest_seq_id)
        self.connections: list[Connection] = []
        #: How the last connections ended, oldest first.
        self.closed: deque[ClosedConnection] = deque(maxlen=1000)
        #: Connections closed as slow consumers (4005).
        self.slow_closes = 0
        self.connected = 0
        self._subs: dict[tuple[str, str], list[Connection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._paused = paused
        # A recording's clock starts when someone listens (its first frames are the point).
        self._start_on_subscribe = start_on_subscribe or (recording is not None and not paused)
        self._resumed: asyncio.Event | None = None  # created in start(), on the loop
        self._readers: asyncio.Event | None = None  # set when someone subscribes
        self._sim_base = self.feed.now_ms
        self._wall_base = 0.0
        self._stall_wall_until = 0.0
        self._conn_faults: list[FaultSpec] = []
        self._thread: threading.Thread | None = None
        self.ws_url = self.rest_url = ""
        self.pushes = 0
        #: The exception that stopped the simulated clock (the market raised), else None.
        self.clock_error: BaseException | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> Emulator:
        """Bind the sockets and start the clock; fills :attr:`ws_url` and :attr:`rest_url`."""
        self._loop = asyncio.get_running_loop()
        self._resumed = asyncio.Event()
        self._readers = asyncio.Event()
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_path,
            max_size=4 * MAX_REQUEST, ping_interval=None, max_queue=None,
            compression="deflate" if self.deflate else None)
        port = self._server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{_url_host(self.host)}:{port}{WS_PATH}"
        if self.rest_port is not None:
            self._runner = web.AppRunner(self.rest.app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.rest_port)
            await site.start()
            rport = self._runner.addresses[0][1]
            self.rest_url = f"http://{_url_host(self.host)}:{rport}"
        self._resume_base()
        if not self._paused and not self._start_on_subscribe:
            self._resumed.set()
        for spec in self._schedule:
            self._apply_schedule(spec)
        self._tasks.append(asyncio.create_task(self._clock()))
        return self

    async def stop(self) -> None:
        """Close every connection and the servers."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled (Ctrl-C)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> Emulator:
        """Start in a background thread with its own event loop; returns once serving.

        Stop with :meth:`stop_thread`. Public methods stay callable from any thread.
        """
        started = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # report bind errors to the caller
                started.set_exception(e)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="okx-emulator", daemon=True)
        self._thread.start()
        started.result(timeout)
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop an emulator started with :meth:`start_in_thread` and join its thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def _call(self, fn, *args: Any) -> Any:
        """Run ``fn(*args)`` on the emulator's loop (from any thread) and return its result."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulator is not running; call start() first")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn(*args)

        async def wrapper() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(30)

    # -- clock --------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        """Simulated time the feed has reached."""
        return self.feed.now_ms

    def _sim_target(self) -> int:
        return int(self._sim_base + (self.clock.monotonic() - self._wall_base) * self.speed
                   * 1000)

    async def _clock(self) -> None:
        try:
            await self._run_clock()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # A market that raises must not leave a server that silently stops pushing:
            # say so loudly, keep the error, and close the connections (1011) so that
            # clients see a failure rather than a quiet market.
            self.clock_error = e
            log.exception("the market failed at simulated time %d ms; the feed stopped",
                          self.feed.now_ms)
            for c in list(self.connections):
                await c.close(1011, f"emulator market error: {type(e).__name__}")

    async def _run_clock(self) -> None:
        tick = 0.010 / self.speed if self.speed else 0.0
        tick = max(tick, 0.001)
        while True:
            await self._resumed.wait()
            now = self.clock.monotonic()
            if now < self._stall_wall_until:
                await asyncio.sleep(self._stall_wall_until - now)
                self._resume_base()
                continue
            if self.speed is None:
                # As fast as the clients read: wait for a reader, and for slow readers.
                if not self._subs_count:
                    self._readers.clear()
                    await self._readers.wait()
                    continue
                for c in list(self.connections):
                    if not c.drained.is_set():
                        await c.drained.wait()
                target = self.feed.now_ms + MAX_STEP_MS
                self._dispatch(self.feed.advance(target))
                await asyncio.sleep(0)
            else:
                self._dispatch(self.feed.advance(self._sim_target()))
                await asyncio.sleep(tick)

    def _resume_base(self) -> None:
        self._sim_base = self.feed.now_ms
        self._wall_base = self.clock.monotonic()
        if self.clock_mode == "wall":
            # Simulated time restarts here: the frames' ts continue from the wall clock,
            # less the latency (the time a frame spends on its way to the client).
            wall_ms = self.clock.time_ns() // 1_000_000
            self.feed.ts_offset_ms = wall_ms - round(self.latency_ms) - self.feed.now_ms

    @property
    def _subs_count(self) -> int:
        return sum(len(c.subs) for c in self.connections)

    def _dispatch(self, pushes: list[Push]) -> None:
        subs = self._subs
        for p in pushes:
            conns = subs.get((p[1], p[2]))  # (channel, inst_id)
            if conns:
                for c in conns:
                    c.enqueue(p)
        self.pushes += len(pushes)

    def pause(self) -> None:
        """Stop the simulated clock (pushes stop; :meth:`advance` still works)."""
        self._call(self._pause)

    def _pause(self) -> None:
        if self._resumed.is_set():
            self._sim_base = self.feed.now_ms
            self._resumed.clear()
        self._paused = True

    def resume(self) -> None:
        """Restart the simulated clock from where it stopped."""
        self._call(self._resume)

    def _resume(self) -> None:
        self._paused = False
        self._start_on_subscribe = False
        if not self._resumed.is_set():
            self._resume_base()
            self._resumed.set()

    def advance(self, ms: int) -> int:
        """Move simulated time forward by ``ms`` now and push what is due; returns the number
        of pushes (for tests with a paused clock)."""
        def go() -> int:
            pushes = self.feed.advance(self.feed.now_ms + int(ms))
            self._dispatch(pushes)
            self._sim_base = self.feed.now_ms
            self._wall_base = self.clock.monotonic()
            return len(pushes)

        return self._call(go)

    # -- faults -------------------------------------------------------------------------------
    def inject(self, kind: Fault | str | FaultSpec, **options: Any) -> None:
        """Inject a fault now: ``emu.inject(Fault.GAP, inst="BTC-USDT")``.

        Options are :class:`FaultSpec` fields; see :mod:`simlab.emulator.faults`.
        """
        spec = kind if isinstance(kind, FaultSpec) else FaultSpec(Fault(kind), **options)
        self._call(self._inject, with_at(spec, None))

    def _apply_schedule(self, spec: FaultSpec) -> None:
        if spec.at is not None:
            self._loop.call_later(spec.at, self._inject, with_at(spec, None))
        elif spec.kind in CONNECTION_FAULTS:
            self._conn_faults.append(spec)  # armed on each (or the given) new connection
        else:
            self._inject(spec)

    def _inject(self, spec: FaultSpec) -> None:
        log.info("fault: %s", spec)
        kind = spec.kind
        if kind in REST_FAULTS:
            self.rest.arm(spec)
        elif kind is Fault.RESET:
            insts = [spec.inst] if spec.inst else [i.inst_id if hasattr(i, "inst_id")
                                                   else i["instId"]
                                                   for i in self.feed.instruments()]
            for inst in insts:
                self.feed.reset(inst)
        elif kind is Fault.STALL:
            if self.speed is None:
                self._stall_wall_until = self.clock.monotonic() + spec.duration
            else:
                self.feed.stall(self.feed.now_ms + int(spec.duration * self.speed * 1000))
        else:
            for c in self.connections:
                if spec.conn is None or spec.conn == c.number:
                    self._arm(c, spec)

    def _arm(self, c: Connection, spec: FaultSpec) -> None:
        if spec.kind is Fault.NOTICE:
            c.enqueue(orjson.dumps({"event": "notice", "code": "64008", "msg": NOTICE_MSG,
                                    "connId": c.conn_id}))
            delay = self.notice_delay if spec.delay is None else spec.delay
            self._loop.call_later(delay, lambda: asyncio.ensure_future(
                c.close(1001, "service upgrade")))
        elif spec.kind is Fault.BURST:
            c.hold_until = self.clock.monotonic() + spec.duration
        else:
            c.faults.arm(spec)

    # -- REST ---------------------------------------------------------------------------------
    def _rest_book(self, inst: str, sz: int) -> tuple:
        if not self.feed.has_instrument(inst):
            raise KeyError(inst)
        return self.feed.rest_book(inst, sz)

    # -- WebSocket ----------------------------------------------------------------------------
    def _check_path(self, connection: ServerConnection, request: Any) -> Response | None:
        if request.path.split("?")[0] != WS_PATH:
            return connection.respond(404, "Not Found\n")
        return None

    def _conn_id(self, number: int) -> str:
        return f"{zlib.crc32(f'{self.seed}:{number}'.encode()):08x}"

    async def _handle(self, ws: ServerConnection) -> None:
        number = self.connected
        self.connected += 1
        c = Connection(self, ws, number, self._conn_id(number))
        self.connections.append(c)
        for spec in self._conn_faults:
            if spec.conn is None or spec.conn == number:
                self._arm(c, spec)
        writer = asyncio.create_task(c.writer())
        watchdog = asyncio.create_task(self._watchdog(c))
        try:
            async for message in ws:
                c.last_activity = self.clock.monotonic()
                if isinstance(message, bytes):
                    message = message.decode("utf-8", "replace")
                if len(message) > MAX_REQUEST // 4 and len(message.encode()) > MAX_REQUEST:
                    await c.close(1009, TOO_BIG)
                    break
                if message == "ping":
                    c.enqueue(b"pong")
                    continue
                self._request(c, message)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            watchdog.cancel()
            c._shed()
            if c in self.connections:
                self.connections.remove(c)
            self.closed.append(ClosedConnection(c.number, c.conn_id, c.close_code,
                                                c.close_reason, c.aborted, c.peak_bytes))

    def _forget_subs(self, c: Connection) -> None:
        for key in c.subs:
            lst = self._subs.get(key)
            if lst and c in lst:
                lst.remove(c)
        c.subs.clear()

    async def _watchdog(self, c: Connection) -> None:
        idle, stuck = self.idle_timeout, self.send_timeout
        step = min(1.0, idle / 4, stuck / 4)
        clock = self.clock
        while not c.closing:
            await asyncio.sleep(step)
            now = clock.monotonic()
            since = c.sending_since
            if since and now - since > stuck:
                c.slow(f"its socket took nothing for {stuck:g}s")
                return
            if now - c.last_activity > idle:
                secs = f"{idle:g}"
                await c.close(4004, f"No data received in {secs}s.")
                return

    def _request(self, c: Connection, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            c.enqueue(_err("60012", f"Illegal request: {excerpt(text)}", c.conn_id))
            return
        if not isinstance(req, dict):
            c.enqueue(_err("60012", f"Invalid request: {excerpt(text)}", c.conn_id))
            return
        rid = req.get("id")
        rid = None if rid is None else str(rid)[:MAX_ID]
        op = req.get("op")
        if op == "login":
            c.logged_in = True
            c.enqueue(_event(rid, {"event": "login", "code": "0", "msg": "",
                                   "connId": c.conn_id}))
            return
        if op not in ("subscribe", "unsubscribe"):
            if op is None:
                c.enqueue(_err("60012", f"Invalid request: {excerpt(text)}", c.conn_id, rid))
            else:
                c.enqueue(_err("60019", f"Invalid op: {excerpt(str(op))}", c.conn_id, rid))
            return
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            c.enqueue(_err("60012", f"Invalid request: {excerpt(text)}", c.conn_id, rid))
            return
        for arg in args:
            if op == "subscribe":
                self._subscribe(c, rid, arg)
            else:
                self._unsubscribe(c, rid, arg)

    def _subscribe(self, c: Connection, rid: str | None, arg: dict) -> None:
        channel, inst = arg.get("channel"), arg.get("instId")
        feed = self.feed
        if (not isinstance(channel, str) or channel not in feed.channels()
                or not isinstance(inst, str) or not feed.has_instrument(inst)):
            c.enqueue(_err("60018", _wrong_channel("subscribe", channel, inst), c.conn_id, rid))
            return
        if channel in TBT and self.tbt_access != "open":
            if not c.logged_in:
                c.enqueue(_err("60011", "Please log in", c.conn_id, rid))
                return
            if self.tbt_access == "deny":
                c.enqueue(_err("64003", "Your trading fee tier doesn't meet the requirement "
                                        "to access this channel", c.conn_id, rid))
                return
        for other in EXCLUSIVE.get(channel, ()):
            if (other, inst) in c.subs:
                c.enqueue(_err("60012", f"Invalid request: {channel} and {other} cannot be "
                                        f"subscribed together for the same instId {inst}",
                               c.conn_id, rid))
                return
        key = (channel, inst)
        c.enqueue(encode_event("subscribe", {"channel": channel, "instId": inst},
                               conn_id=c.conn_id, id=rid))
        if key in c.subs:
            return  # OKX acks a repeated subscribe again and sends no new snapshot
        if channel in FULL or (channel in INCREMENTAL and self.snapshot):
            first = feed.snapshot(channel, inst)
            if first is not None:
                c.enqueue(first)
        else:
            feed.activate(channel, inst)
        c.subs.add(key)
        self._subs.setdefault(key, []).append(c)
        self._readers.set()
        if self._start_on_subscribe and not self._resumed.is_set():
            self._resume()

    def _unsubscribe(self, c: Connection, rid: str | None, arg: dict) -> None:
        channel, inst = arg.get("channel"), arg.get("instId")
        if (not isinstance(channel, str) or channel not in self.feed.channels()
                or not isinstance(inst, str) or not self.feed.has_instrument(inst)):
            c.enqueue(_err("60018", _wrong_channel("unsubscribe", channel, inst), c.conn_id,
                           rid))
            return
        key = (channel, inst)
        c.subs.discard(key)
        lst = self._subs.get(key)
        if lst and c in lst:
            lst.remove(c)
        c.enqueue(encode_event("unsubscribe", {"channel": channel, "instId": inst},
                               conn_id=c.conn_id, id=rid))


def _event(rid: str | None, d: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": rid, **d} if rid is not None else d)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def default_market(seed: int = 0, instruments: list[str] | None = None) -> MarketSource:
    """The Cont-Stoikov-Talreja market (:class:`simlab.emulator.market.CSTMarket`).

    >>> type(default_market(1, ["BTC-USDT"])).__name__
    'CSTMarket'
    """
    from .market import CSTMarket

    return CSTMarket(seed=seed, instruments=tuple(instruments)) if instruments else \
        CSTMarket(seed=seed)
