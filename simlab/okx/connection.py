"""OKX WebSocket connection rules, as plain functions: how subscriptions are spread over
connections, how requests are batched, and how fast connections and requests may be made.

From the protocol notes: all args of one request together at most 64 KB; at most 30 depth
channels per connection (OKX advises fewer than 30); 3 new connections per second per IP;
480 subscribe/unsubscribe/login requests per hour per connection. :mod:`simlab.okx.handler`
uses these (and :mod:`simlab.okx.client` the connection rate); they are separate so they
can be tested without a network.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import orjson

from .messages import FULL_BOOK_CHANNELS, INCREMENTAL_BOOK_CHANNELS

#: Channels that count against the per-connection depth limit.
DEPTH_CHANNELS = INCREMENTAL_BOOK_CHANNELS | FULL_BOOK_CHANNELS
MAX_DEPTH_PER_CONN = 30
MAX_REQUEST_BYTES = 65536
CONNECTS_PER_SECOND = 3
REQUESTS_PER_HOUR = 480
#: ``books-l2-tbt`` cannot be subscribed with these for the same instrument.
EXCLUSIVE = {"books-l2-tbt": ("books", "books50-l2-tbt")}

Arg = tuple[str, str]  # (channel, instId)


def normalize_args(subscriptions: Iterable[Arg | dict]) -> list[Arg]:
    """``(channel, instId)`` pairs (or ``{"channel":..,"instId":..}`` dicts), checked and
    de-duplicated in order.

    >>> normalize_args([("books", "BTC-USDT"), {"channel": "trades", "instId": "BTC-USDT"},
    ...                 ("books", "BTC-USDT")])
    [('books', 'BTC-USDT'), ('trades', 'BTC-USDT')]
    """
    out: dict[Arg, None] = {}
    for s in subscriptions:
        if isinstance(s, dict):
            if set(s) != {"channel", "instId"}:
                raise ValueError(f"subscription {s!r}: expected keys 'channel' and 'instId'")
            s = (s["channel"], s["instId"])
        if (not isinstance(s, tuple | list) or len(s) != 2
                or not all(isinstance(x, str) and x for x in s)):
            raise ValueError(f"subscription {s!r}: expected a (channel, instId) pair of "
                             "non-empty strings")
        out[(s[0], s[1])] = None
    args = list(out)
    have = set(args)
    for ch, inst in args:
        for other in EXCLUSIVE.get(ch, ()):
            if (other, inst) in have:
                raise ValueError(f"{ch} and {other} cannot be subscribed together for the same "
                                 f"instId {inst} (OKX refuses it)")
    return args


def plan_connections(args: Sequence[Arg], max_depth: int = MAX_DEPTH_PER_CONN) -> list[list[Arg]]:
    """Spread subscriptions over connections: at most ``max_depth`` depth channels each;
    other channels (trades, tickers ...) ride with their instrument's first depth channel,
    else on the connection with the fewest args.

    >>> plan = plan_connections([("books", f"I{i}") for i in range(35)] + [("trades", "I31")])
    >>> [len(c) for c in plan], ("trades", "I31") in plan[1]
    ([30, 6], True)
    >>> plan_connections([("trades", "A"), ("tickers", "A")])
    [[('trades', 'A'), ('tickers', 'A')]]
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    depth = [a for a in args if a[0] in DEPTH_CHANNELS]
    conns = [list(depth[i:i + max_depth]) for i in range(0, len(depth), max_depth)]
    home = {}
    for n, c in enumerate(conns):
        for _, inst in c:
            home.setdefault(inst, n)
    for a in args:
        if a[0] in DEPTH_CHANNELS:
            continue
        if not conns:
            conns.append([])
        n = home.get(a[1])
        if n is None:
            n = min(range(len(conns)), key=lambda i: len(conns[i]))
        conns[n].append(a)
    return conns


def batch_requests(op: str, args: Sequence[Arg], next_id: Callable[[], str],
                   max_bytes: int = MAX_REQUEST_BYTES) -> list[tuple[str, bytes, list[Arg]]]:
    """``op`` requests (``subscribe``/``unsubscribe``) covering ``args`` in order, as few as
    possible, each encoded request at most ``max_bytes``: ``[(id, frame, args), ...]``.

    >>> ids = iter(range(1, 100))
    >>> reqs = batch_requests("subscribe", [("books", f"I{i:03d}-USDT") for i in range(100)],
    ...                       lambda: str(next(ids)), max_bytes=2000)
    >>> [len(a) for _, _, a in reqs], max(len(f) for _, f, _ in reqs) <= 2000
    ([47, 47, 6], True)
    >>> reqs[0][1][:60]
    b'{"id":"1","op":"subscribe","args":[{"channel":"books","instI'
    """
    out: list[tuple[str, bytes, list[Arg]]] = []
    i = 0
    while i < len(args):
        rid = next_id()
        head = len(orjson.dumps({"id": rid, "op": op, "args": []}))
        size, chunk = head, []
        while i < len(args):
            ch, inst = args[i]
            n = len(orjson.dumps({"channel": ch, "instId": inst})) + (1 if chunk else 0)
            if size + n > max_bytes:
                break
            chunk.append(args[i])
            size += n
            i += 1
        if not chunk:
            raise ValueError(f"subscription {args[i]!r} alone exceeds the request limit of "
                             f"{max_bytes} bytes")
        frame = orjson.dumps({"id": rid, "op": op,
                              "args": [{"channel": c, "instId": s} for c, s in chunk]})
        out.append((rid, frame, chunk))
    return out


class RateLimiter:
    """At most ``limit`` events per ``period`` seconds (a sliding window).

    :meth:`reserve` books the next slot and returns how long to wait for it; ``clock`` is
    injectable for tests.

    >>> t = [0.0]
    >>> lim = RateLimiter(3, 1.0, clock=lambda: t[0])
    >>> [lim.reserve() for _ in range(4)]
    [0.0, 0.0, 0.0, 1.0]
    >>> t[0] = 5.0; lim.reserve()
    0.0
    """

    def __init__(self, limit: int = CONNECTS_PER_SECOND, period: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"rate limit needs limit >= 1 and period > 0, got {limit}/{period}")
        self.limit, self.period, self.clock = limit, period, clock
        self._times: deque[float] = deque()

    def reserve(self) -> float:
        now = self.clock()
        times = self._times
        while times and times[0] <= now - self.period:
            times.popleft()
        at = now if len(times) < self.limit else times[-self.limit] + self.period
        times.append(at)
        while len(times) > self.limit:
            times.popleft()
        return max(0.0, at - now)

    async def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


class RequestBudget:
    """Requests a connection may still send (OKX: 480 per hour per connection).

    >>> t = [0.0]
    >>> b = RequestBudget(2, 3600, clock=lambda: t[0])
    >>> b.take(), b.take(), b.take(), b.left()
    (True, True, False, 0)
    >>> t[0] = 3601; b.left()
    2
    """

    def __init__(self, limit: int = REQUESTS_PER_HOUR, period: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.period, self.clock = limit, period, clock
        self._times: deque[float] = deque()

    def left(self) -> int:
        now = self.clock()
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        return self.limit - len(self._times)

    def take(self, n: int = 1) -> bool:
        if self.left() < n:
            return False
        now = self.clock()
        self._times.extend([now] * n)
        return True


def backoff_delay(attempt: int, base: float, cap: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0, 1, 2 ...): exponential, capped
    at ``cap``, with jitter (uniform over the upper half) so clients do not retry in step.

    >>> backoff_delay(0, 0.5, 30, rand=lambda: 1.0), backoff_delay(3, 0.5, 30, rand=lambda: 0.0)
    (0.5, 2.0)
    >>> backoff_delay(20, 0.5, 30, rand=lambda: 1.0)
    30.0
    """
    d = min(cap, base * 2 ** min(attempt, 60))
    return d * (0.5 + 0.5 * rand())
