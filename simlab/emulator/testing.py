"""Test support for the emulator: small deterministic markets, a pytest fixture that runs an
:class:`~simlab.emulator.server.Emulator` in a background thread, and client helpers.

``ScriptedMarket`` plays back events you give it (exact, for message-by-message tests);
``RandomMarket`` is a seeded random book per instrument (for load, faults and benchmarks).
Both are :class:`~simlab.emulator.source.MarketSource` objects: the server takes any market.

The fixtures (registered in ``tests/conftest.py``):

``emulator_factory``
    ``emulator_factory(market=None, **Emulator options) -> RunningEmulator``; every emulator
    it started is stopped at teardown.
``okx_emulator``
    one emulator with a ``RandomMarket`` at 10x real time.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from simlab.book import L2Book
from simlab.okx import BookIntegrity, BookSync, OkxParseError, is_book, parse_frame
from simlab.okx.encode import format_decimal
from simlab.okx.instruments import KNOWN_INSTRUMENTS

from .source import DEFAULT_START_MS, Event, Instrument, LevelChange, MarketSource, Print

#: The random markets' price level and typical level size (base units or contracts) by
#: instrument: this market's own parameters (the CST market sits elsewhere, see
#: :data:`simlab.emulator.instruments.DEFAULT_MARKETS`).
_SCALE = {"BTC-USDT": (65000, "0.5"), "ETH-USDT": (3500, "5"), "BTC-USDT-SWAP": (65000, "50")}
#: The instruments of these markets: OKX's facts (:data:`simlab.okx.instruments.
#: KNOWN_INSTRUMENTS`; spot sizes in base currency, swap in contracts of 0.01 BTC).
DEFAULT_INSTRUMENTS = tuple(Instrument.from_metadata(KNOWN_INSTRUMENTS[i]) for i in _SCALE)


def instrument_for(inst_id: str) -> Instrument:
    """The default instrument named ``inst_id``, or a generic spot one (tick 0.01, lot 0.001).

    >>> instrument_for("BTC-USDT").tick_sz, instrument_for("XYZ-USDT").lot_sz
    ('0.1', '0.001')
    """
    for ins in DEFAULT_INSTRUMENTS:
        if ins.inst_id == inst_id:
            return ins
    base, _, quote = inst_id.partition("-")
    return Instrument(inst_id, "SPOT", base, quote.split("-")[0], "0.01", "0.001", "0.001")


# -- ScriptedMarket ----------------------------------------------------------------------------
class ScriptedMarket:
    """A market that replays the events it is given, in time order.

    ``books`` maps each instrument id to its initial ``(bids, asks)`` (levels
    ``[price, size, count]`` as strings, best first). More events can be added later with
    :meth:`add`, as long as they are not in the past of the last :meth:`advance`.

    >>> m = ScriptedMarket({"BTC-USDT": ([["100", "1", "1"]], [["101", "2", "1"]])})
    >>> m.add(LevelChange(m.start_ms + 5, "BTC-USDT", "bid", "100.5", "3", 2))
    >>> [e.price for e in m.advance(m.start_ms + 10)]
    ['100.5']
    """

    def __init__(self, books: dict[str, tuple[list[list[str]], list[list[str]]]],
                 events: Iterable[Event] = (), *, instruments: Sequence[Instrument] | None = None,
                 start_ms: int = DEFAULT_START_MS) -> None:
        if not books:
            raise ValueError("books must name at least one instrument")
        self.start_ms = start_ms
        self._books = {k: ([list(x) for x in b], [list(x) for x in a])
                       for k, (b, a) in books.items()}
        self._instruments = list(instruments) if instruments is not None else [
            instrument_for(i) for i in books]
        self._events: list[Event] = []
        self._keys: list[int] = []
        self._done_ms = start_ms - 1
        self._lock = threading.Lock()  # tests add events from their own thread
        self.add(*events)

    def instruments(self) -> list[Instrument]:
        return list(self._instruments)

    def initial_book(self, inst_id: str) -> tuple[list[list[str]], list[list[str]]]:
        b, a = self._books[inst_id]
        return [list(x) for x in b], [list(x) for x in a]

    def add(self, *events: Event) -> None:
        """Schedule more events (kept in time order; equal times keep the order given)."""
        with self._lock:
            for ev in events:
                if ev.inst_id not in self._books:
                    raise ValueError(f"event for unknown instrument {ev.inst_id!r}; "
                                     f"expected one of {sorted(self._books)}")
                if ev.ts_ms <= self._done_ms:
                    raise ValueError(f"event at {ev.ts_ms} is in the past: the market was "
                                     f"already advanced to {self._done_ms}")
                i = bisect.bisect_right(self._keys, ev.ts_ms)
                self._keys.insert(i, ev.ts_ms)
                self._events.insert(i, ev)

    def advance(self, until_ms: int) -> list[Event]:
        with self._lock:
            i = bisect.bisect_right(self._keys, until_ms)
            out, self._events, self._keys = self._events[:i], self._events[i:], self._keys[i:]
            self._done_ms = max(self._done_ms, until_ms)
            return out


# -- RandomMarket ------------------------------------------------------------------------------
class _RandomBook:
    """One instrument's book on its integer grid, moved by random order-flow events.

    Per side: ``lv`` tick -> (lots, orders) and ``ticks``, the sorted ticks (ascending).
    """

    def __init__(self, ins: Instrument, rng: random.Random, depth: int,
                 price: float | None = None) -> None:
        self.ins, self.rng, self.depth = ins, rng, depth
        self.tick = Decimal(ins.tick_sz)
        self.lot = Decimal(ins.lot_sz)
        _, digits, exp = self.lot.as_tuple()
        self._lot_m = int("".join(map(str, digits))) * 10 ** max(0, exp)
        self._lot_d = max(0, -exp)
        scale, qty = _SCALE.get(ins.inst_id, (100, "10"))
        self.unit = max(1, int(Decimal(qty) / self.lot))  # typical level size in lots
        mid = max(3, int(Decimal(str(scale if price is None else price)) / self.tick))
        self.lv: tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]] = ({}, {})
        self.ticks: tuple[list[int], list[int]] = ([], [])
        t = mid - 1
        for _ in range(depth):
            level = self._new_level()
            if t >= 1:  # no price <= 0: a book near the floor has fewer bids
                self._set(False, t, level)
            t -= rng.randint(1, 3)
        t = mid + 1
        for _ in range(depth):
            self._set(True, t, self._new_level())
            t += rng.randint(1, 3)
        self._px: dict[int, str] = {}
        self.trade_id = rng.randrange(10**8, 10**9)

    def _new_level(self) -> tuple[int, int]:
        rng = self.rng
        return max(1, int(self.unit * rng.lognormvariate(-1.0, 1.0))), 1 + int(rng.random() * 9)

    def _set(self, ask: bool, t: int, level: tuple[int, int] | None) -> None:
        lv, ticks = self.lv[ask], self.ticks[ask]
        if level is None:
            del lv[t]
            del ticks[bisect.bisect_left(ticks, t)]
            return
        if t not in lv:
            bisect.insort(ticks, t)
        lv[t] = level

    def nth(self, ask: bool, i: int) -> int:
        """The tick of the i-th best level (clamped to the worst)."""
        ticks = self.ticks[ask]
        i = min(i, len(ticks) - 1)
        return ticks[i] if ask else ticks[-1 - i]

    def px(self, tick: int) -> str:
        s = self._px.get(tick)
        if s is None:
            s = self._px[tick] = format_decimal(tick * self.tick)
        return s

    def sz(self, lots: int) -> str:
        # format_decimal(lots * lot) on integers: the market's hottest path.
        v = str(lots * self._lot_m)
        d = self._lot_d
        if not d:
            return v
        if len(v) <= d:
            v = "0" * (d + 1 - len(v)) + v
        frac = v[-d:].rstrip("0")
        return f"{v[:-d]}.{frac}" if frac else v[:-d]

    def levels(self, ask: bool) -> list[list[str]]:
        lv, ticks = self.lv[ask], self.ticks[ask]
        order = ticks if ask else reversed(ticks)
        return [[self.px(t), self.sz(lv[t][0]), str(lv[t][1])] for t in order]

    def change(self, ts: int, ask: bool, tick: int) -> LevelChange:
        lots, n = self.lv[ask].get(tick, (0, 0))
        return LevelChange(ts, self.ins.inst_id, "ask" if ask else "bid", self.px(tick),
                           self.sz(lots), n)

    def step(self, ts: int, trade_share: float) -> list[Event]:
        """One order-flow event: a trade, a resize, a new quote or a cancel."""
        rng = self.rng
        rand = rng.random
        out: list[Event] = []
        r = rand()
        ask = r < 0.5
        r = 2 * r if ask else 2 * r - 1  # a second uniform draw from the same number
        lv, ticks = self.lv[ask], self.ticks[ask]
        if r < trade_share and len(ticks) > 2:
            # A taker on the other side eats part or all of this side's best level.
            t = ticks[0] if ask else ticks[-1]
            lots, n = lv[t]
            took = lots if rand() < 0.3 else 1 + int(rand() * lots)
            self.trade_id += 1 + int(rand() * 3)
            out.append(Print(ts, self.ins.inst_id, str(self.trade_id), self.px(t), self.sz(took),
                             "buy" if ask else "sell", 1 + int(rand() * 3)))
            self._set(ask, t, None if took == lots else (lots - took, max(1, n - 1)))
            out.append(self.change(ts, ask, t))
        elif r < 0.55:
            t = self.nth(ask, int(rng.expovariate(0.15)))
            lots, n = lv[t]
            lv[t] = (max(1, int(lots * (0.3 + 1.5 * rand()))), max(1, n + int(rand() * 3) - 1))
            out.append(self.change(ts, ask, t))
        elif r < 0.8:
            # New quotes rest around the mid (often inside the spread), never crossing.
            bb, ba = self.ticks[False][-1], self.ticks[True][0]
            off = int(rng.expovariate(0.3))
            # Bids at one tick at least (asks are above them, so at two or more).
            t = max((bb + ba + 1) // 2 + off, bb + 1) if ask else max(1, min(
                (bb + ba) // 2 - off, ba - 1))
            old = lv.get(t)
            new = self._new_level()
            self._set(ask, t, (old[0] + new[0], old[1] + 1) if old else new)
            out.append(self.change(ts, ask, t))
        elif len(ticks) > 3:
            t = self.nth(ask, int(rng.expovariate(0.1)))
            self._set(ask, t, None)
            out.append(self.change(ts, ask, t))
        # Keep the depth: quotes far away come and go so the book stays about `depth` deep.
        while len(ticks) < self.depth:
            t = ticks[-1] + 1 + int(rand() * 3) if ask else ticks[0] - 1 - int(rand() * 3)
            if t < 1:
                break  # the floor: no price <= 0, the bid side stays shorter
            self._set(ask, t, self._new_level())
            out.append(self.change(ts, ask, t))
        while len(ticks) > self.depth + 20:
            t = ticks[-1] if ask else ticks[0]
            self._set(ask, t, None)
            out.append(self.change(ts, ask, t))
        return out


class RandomMarket:
    """A seeded random market (a :class:`~simlab.emulator.source.MarketSource`).

    Each instrument has its own random stream (``seed`` and the instrument id), so adding an
    instrument does not change the others. Order-flow events arrive as a Poisson process of
    ``rate`` events per simulated second per instrument; ``depth`` levels a side are kept
    (fewer bids near the floor: no price is ever zero or below). ``prices`` sets where
    instruments start (instId -> price; default about their market price). Same arguments,
    same events.

    >>> m = RandomMarket(seed=1, instruments=["BTC-USDT"], rate=100)
    >>> evs = m.advance(m.start_ms + 1000)
    >>> len(evs) > 50, {type(e).__name__ for e in evs} <= {"LevelChange", "Print"}
    (True, True)
    """

    def __init__(self, seed: int = 0, instruments: Sequence[str] | None = None, *,
                 rate: float = 200.0, depth: int = 500, trade_share: float = 0.1,
                 start_ms: int = DEFAULT_START_MS,
                 prices: dict[str, float] | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 events per second, got {rate}")
        if depth < 5:
            raise ValueError(f"depth must be >= 5 levels a side, got {depth}")
        ids = list(instruments) if instruments else [i.inst_id for i in DEFAULT_INSTRUMENTS]
        self.start_ms = start_ms
        self.rate, self.trade_share = rate, trade_share
        self._instruments = [instrument_for(i) for i in ids]
        prices = prices or {}
        self._books = {i.inst_id: _RandomBook(i, random.Random(f"{seed}:{i.inst_id}"), depth,
                                              prices.get(i.inst_id))
                       for i in self._instruments}
        self._initial = {k: (b.levels(False), b.levels(True)) for k, b in self._books.items()}
        self._next = {k: start_ms + self._gap(b) for k, b in self._books.items()}

    def _gap(self, book: _RandomBook) -> int:
        return int(book.rng.expovariate(self.rate) * 1000)

    def instruments(self) -> list[Instrument]:
        return list(self._instruments)

    def initial_book(self, inst_id: str) -> tuple[list[list[str]], list[list[str]]]:
        b, a = self._initial[inst_id]
        return [list(x) for x in b], [list(x) for x in a]

    def advance(self, until_ms: int) -> list[Event]:
        out: list[Event] = []
        nxt = self._next
        while True:
            inst = min(nxt, key=nxt.__getitem__)  # ties: instrument order (dicts keep it)
            ts = nxt[inst]
            if ts > until_ms:
                return out
            book = self._books[inst]
            out.extend(book.step(ts, self.trade_share))
            nxt[inst] = ts + self._gap(book)


# -- running an emulator from sync tests ------------------------------------------------------
@dataclass
class RunningEmulator:
    """An :class:`~simlab.emulator.server.Emulator` serving in a background thread."""

    emulator: Any

    @property
    def ws_url(self) -> str:
        return self.emulator.ws_url

    @property
    def rest_url(self) -> str:
        return self.emulator.rest_url

    def stop(self) -> None:
        self.emulator.stop_thread()


def start_emulator(market: MarketSource | None = None, **options: Any) -> RunningEmulator:
    """Start an emulator on free loopback ports in a background thread.

    >>> emu = start_emulator(RandomMarket(seed=1), paused=True)
    >>> emu.ws_url.startswith("ws://127.0.0.1:"), emu.rest_url.startswith("http://")
    (True, True)
    >>> emu.stop()
    """
    from .server import Emulator

    options.setdefault("port", 0)
    options.setdefault("rest_port", 0)
    return RunningEmulator(Emulator(market, **options).start_in_thread())


try:
    import pytest
except ImportError:  # the markets above also serve `simlab serve`, where pytest may be absent
    pytest = None

if pytest is not None:

    @pytest.fixture
    def emulator_factory() -> Iterator[Callable[..., RunningEmulator]]:
        """``emulator_factory(market=None, **Emulator options)`` starts an emulator in a
        background thread; all of them are stopped at teardown."""
        started: list[RunningEmulator] = []

        def make(market: MarketSource | None = None, **options: Any) -> RunningEmulator:
            r = start_emulator(market, **options)
            started.append(r)
            return r

        yield make
        for r in started:
            r.stop()

    @pytest.fixture
    def okx_emulator(emulator_factory) -> RunningEmulator:
        """An emulator over ``RandomMarket(seed=0)`` at 10x real time."""
        return emulator_factory(RandomMarket(seed=0), speed=10)


# -- client helpers ---------------------------------------------------------------------------
def run(coro, timeout: float = 30.0) -> Any:
    """Run a client coroutine from a sync test, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def client(url: str, **options: Any):
    """``websockets.asyncio.client.connect(url)`` for tests: a 1 s close timeout, because a
    client that stops reading a full-speed feed cannot see the server's close frame behind
    the data it did not read (websockets would wait 10 s)."""
    from websockets.asyncio.client import connect

    options.setdefault("close_timeout", 1.0)
    return connect(url, **options)


def request(op: str, *args: tuple[str, str], id: str | None = "1") -> str:
    """A subscribe/unsubscribe request for ``(channel, instId)`` pairs.

    >>> request("subscribe", ("books", "BTC-USDT"))
    '{"id":"1","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}'
    """
    d: dict[str, Any] = {} if id is None else {"id": id}
    d["op"] = op
    d["args"] = [{"channel": c, "instId": i} for c, i in args]
    return orjson.dumps(d).decode()


async def subscribe(ws, *args: tuple[str, str], id: str | None = "1", op: str = "subscribe",
                    timeout: float = 5.0) -> list[str]:
    """Send a request and read until each arg was answered (ack or error): the frames read
    (acks, errors and any snapshots among them)."""
    await ws.send(request(op, *args, id=id))
    out: list[str] = []
    answered = 0
    while answered < len(args):
        m = await recv(ws, timeout)
        out.append(m)
        if m.startswith(('{"id"', '{"event"')):
            answered += 1
    return out


async def recv(ws, timeout: float = 5.0) -> str:
    """The next frame as text (raises TimeoutError after ``timeout`` seconds)."""
    m = await asyncio.wait_for(ws.recv(), timeout)
    return m.decode() if isinstance(m, bytes) else m


async def recv_until(ws, pred: Callable[[str], bool], timeout: float = 5.0,
                     limit: int = 1_000_000) -> list[str]:
    """Frames up to and including the first one for which ``pred`` is true."""
    out: list[str] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(out) < limit:
        m = await recv(ws, max(0.001, end - loop.time()))
        out.append(m)
        if pred(m):
            return out
    raise AssertionError(f"no matching frame within {limit} frames")


@dataclass
class FeedCheck:
    """What a careful client makes of the frames it received: one ``BookSync(L2Book)`` per
    book stream (:class:`~simlab.okx.BookIntegrity`), counts of parse errors, events,
    trades and pongs.

    >>> fc = FeedCheck()
    >>> fc.feed("pong"); fc.feed("{nope")
    >>> fc.pongs, fc.parse_errors
    (1, 1)
    """

    verify_checksum: bool = True
    books: BookIntegrity = field(init=False, repr=False)
    events: list[dict] = field(default_factory=list)
    trades: int = 0
    pongs: int = 0
    parse_errors: int = 0
    frames: int = 0

    def __post_init__(self) -> None:
        self.books = BookIntegrity(L2Book, self.verify_checksum)

    @property
    def syncs(self) -> dict[tuple[str, str], BookSync]:
        """The :class:`~simlab.okx.BookSync` of each book stream."""
        return self.books.syncs

    def feed(self, frame: str | bytes) -> None:
        self.frames += 1
        if frame in ("pong", b"pong"):
            self.pongs += 1
            return
        try:
            msg = parse_frame(frame)
        except OkxParseError:
            self.parse_errors += 1
            return
        if is_book(msg):
            self.books.apply(msg)
        elif type(msg).__name__ == "EventMsg":
            self.events.append(orjson.loads(frame))
        elif type(msg).__name__ == "TradeMsg":
            self.trades += len(msg.trades)

    def feed_all(self, frames: Iterable[str | bytes]) -> FeedCheck:
        for f in frames:
            self.feed(f)
        return self

    def total(self, stat: str) -> int:
        """A :class:`~simlab.okx.BookStats` counter summed over every stream."""
        return sum(getattr(s.stats, stat) for s in self.syncs.values())


# -- a client that does not read ----------------------------------------------------------------
class RawClient:
    """A WebSocket client on a plain blocking socket that reads only when told: a slow (or
    dead) consumer, as the kernel sees it. ``rcvbuf`` sets ``SO_RCVBUF`` before connecting,
    so the server's writes back up after a few KB.

    >>> emu = start_emulator(RandomMarket(seed=1), paused=True)
    >>> with RawClient(emu.ws_url) as c:
    ...     c.send_text(request("subscribe", ("books", "BTC-USDT")))
    ...     '"event":"subscribe"' in c.read_messages(1)[0][1]
    True
    >>> emu.stop()
    """

    def __init__(self, url: str, rcvbuf: int | None = 4096, timeout: float = 5.0) -> None:
        import base64
        import os
        import socket
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET6 if ":" in (u.hostname or "") else
                                  socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((u.hostname, u.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError(f"{url}: closed during the handshake: {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"{url}: handshake refused: {head.splitlines()[0]!r}")
        self._buf = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_text(self, text: str) -> None:
        """One masked text frame (clients must mask)."""
        import os
        import struct

        data = text.encode()
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack("!Q", n))
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def read_messages(self, limit: int = 1_000_000) -> list[tuple[int, str]]:
        """Up to ``limit`` messages as ``(opcode, text)``, stopping after a close frame
        (opcode 8, text: the code then the reason) or when the server ends the connection.
        Raises ConnectionResetError if the server aborted it."""
        import struct

        out: list[tuple[int, str]] = []
        while len(out) < limit:
            while True:
                frame = _parse_frame(self._buf)
                if frame is not None:
                    break
                chunk = self.sock.recv(65536)
                if not chunk:
                    return out
                self._buf += chunk
            op, payload, used = frame
            self._buf = self._buf[used:]
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                out.append((8, f"{code} {payload[2:].decode(errors='replace')}"))
                return out
            out.append((op, payload.decode(errors="replace")))
        return out


def _parse_frame(buf: bytes) -> tuple[int, bytes, int] | None:
    """``(opcode, payload, bytes used)`` of the first whole (unmasked) frame, else None."""
    import struct

    if len(buf) < 2:
        return None
    op, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < pos + n:
        return None
    return op, buf[pos:pos + n], pos + n
