"""A seeded synthetic OKX ``books`` + ``trades`` stream for the demo and the tests.

Not a market model (the Cont-Stoikov-Talreja market replaces it later): a plausible book
per instrument, on its own tick and lot grid, whose mid wanders because takers eat the
best levels and makers then quote inside the spread. What it guarantees is what the feed
guarantees: a snapshot first (``prevSeqId`` -1), updates whose ``prevSeqId`` is the last
``seqId`` (random steps >= 1), optional heartbeats and one maintenance reset, trades at
prices resting in the book and consuming them, a book that is never crossed, and correct
checksums (computed with :class:`simlab.book.L2Book` over the emitted wire strings).

Same seed, same arguments -> byte-identical stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from simlab.book import L2Book
from simlab.okx import Trade, is_book, parse_frame
from simlab.okx.encode import encode_book, encode_trades, format_decimal

#: 2026-01-01T00:00:00Z in ms: a fixed default so streams never depend on the wall clock.
DEFAULT_START_MS = 1_767_225_600_000


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Grid and scale of one synthetic instrument: ``qty`` is a typical level size."""

    inst_id: str
    tick: Decimal
    lot: Decimal
    price: Decimal
    qty: Decimal


#: Tick/lot sizes as OKX lists them; price levels only set the scale.
SPECS = {
    s.inst_id: s
    for s in (
        InstrumentSpec("BTC-USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("65000"),
                       Decimal("0.5")),
        InstrumentSpec("ETH-USDT", Decimal("0.01"), Decimal("0.000001"), Decimal("3500"),
                       Decimal("5")),
        InstrumentSpec("SOL-USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("150"),
                       Decimal("40")),
        InstrumentSpec("BTC-USDT-SWAP", Decimal("0.1"), Decimal("0.01"), Decimal("65000"),
                       Decimal("50")),
    )
}


def spec_for(inst_id: str) -> InstrumentSpec:
    """The spec of a known instrument, else a generic one (tick 0.01, lot 0.001, price 100).

    >>> spec_for("BTC-USDT").tick, spec_for("XYZ-USDT").price
    (Decimal('0.1'), Decimal('100'))
    """
    return SPECS.get(inst_id) or InstrumentSpec(inst_id, Decimal("0.01"), Decimal("0.001"),
                                                Decimal("100"), Decimal("10"))


#: The fair price reflects off this many ticks: quotes rest up to 6 ticks below it, so every
#: price stays at one tick or more (never zero or below), whatever the volatility.
FLOOR_TICKS = 8


def reflect(fair: int, floor: int = FLOOR_TICKS) -> int:
    """``fair`` reflected off ``floor`` (a walk below the floor bounces back above it).

    >>> reflect(20), reflect(5), reflect(-100)
    (20, 11, 116)
    """
    return fair if fair >= floor else max(floor, 2 * floor - fair)


class _Inst:
    """Book state of one instrument on its integer grid: price ticks -> size lots."""

    def __init__(self, spec: InstrumentSpec, rng: random.Random, depth: int,
                 volatility: float = 1.0) -> None:
        self.spec = spec
        self.rng = rng
        self.depth = depth
        self.bids: dict[int, tuple[int, int]] = {}  # tick -> (lots, order count)
        self.asks: dict[int, tuple[int, int]] = {}
        self.book = L2Book(spec.inst_id)
        self.seq = rng.randrange(10**6, 10**10)
        self.trade_id = rng.randrange(10**6, 10**9)
        self.trade_seq = rng.randrange(10**6, 10**9)
        self.n_updates = 0
        mid = int(spec.price / spec.tick)
        #: The price makers quote around; it wanders, and takers sweep quotes left behind.
        self.fair = mid
        self.vol = volatility * max(0.5, float(spec.price * Decimal("0.000003") / spec.tick))
        half = rng.randint(1, 3)
        self.bids = {mid - half - i * rng.randint(1, 3): self._new_level() for i in range(depth)}
        self.asks = {mid + half + i * rng.randint(1, 3): self._new_level() for i in range(depth)}
        # A price near the floor has fewer bid ticks than `depth` (after the draws above, so
        # the stream of an instrument far from it does not change).
        self.bids = {t: lv for t, lv in self.bids.items() if t >= 1}

    # -- wire form --------------------------------------------------------------------------
    def px(self, tick: int) -> str:
        return format_decimal(tick * self.spec.tick)

    def sz(self, lots: int) -> str:
        return format_decimal(lots * self.spec.lot)

    def wire(self, tick: int, lots: int, count: int) -> list[str]:
        return [self.px(tick), self.sz(lots), "0", str(count)]

    def side_levels(self, bids: bool) -> list[list[str]]:
        d = self.bids if bids else self.asks
        return [self.wire(t, *d[t]) for t in sorted(d, reverse=bids)]

    # -- dynamics ---------------------------------------------------------------------------
    def _new_level(self) -> tuple[int, int]:
        base = float(self.spec.qty / self.spec.lot)
        lots = max(1, int(base * self.rng.lognormvariate(-1.0, 1.0)))
        return lots, self.rng.randint(1, 12)

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)

    def take(self, side: str) -> list[tuple[int, int]]:
        """A taker order eating the best level(s) of the opposite side: ``[(tick, lots)]``."""
        book = self.asks if side == "buy" else self.bids
        ticks = sorted(book, reverse=side == "sell")
        fills = []
        # Quotes on the wrong side of the fair price are swept whole; otherwise usually part
        # of the best level, sometimes all of it and a bit of the next.
        stale = sum(1 for t in ticks[:5] if (t < self.fair if side == "buy" else t > self.fair))
        n_levels = stale + 1 if stale else 1 if self.rng.random() < 0.7 else 2
        for i, t in enumerate(ticks[: min(n_levels, len(ticks) - 2)]):
            lots, count = book[t]
            last = i == n_levels - 1
            took = self.rng.randint(1, lots) if last else lots
            fills.append((t, took))
            if took == lots:
                del book[t]
            else:
                book[t] = (lots - took, max(1, count - 1))
        return fills

    def churn(self) -> None:
        """Makers add, resize and cancel levels; new quotes may improve into the spread."""
        rng = self.rng
        for _ in range(rng.randint(1, 5)):
            bid = rng.random() < 0.5
            book = self.bids if bid else self.asks
            r = rng.random()
            bb, ba = self.best_bid(), self.best_ask()
            if r < 0.35:
                # Rest near the fair price, never crossing the other side.
                f = self.fair
                t = min(rng.randint(f - 6, f - 1), ba - 1) if bid else max(
                    rng.randint(f + 1, f + 6), bb + 1)
                lvl = self._new_level()
                if t in book:
                    lvl = (book[t][0] + lvl[0], book[t][1] + 1)
                book[t] = lvl
            elif r < 0.75:
                ticks = sorted(book, reverse=bid)[:10]
                t = rng.choice(ticks)
                lots, count = book[t]
                lots = max(1, int(lots * rng.uniform(0.3, 1.8)))
                book[t] = (lots, max(1, count + rng.randint(-1, 1)))
            elif len(book) > 3:
                del book[rng.choice(sorted(book))]
        self.refill()

    def refill(self) -> None:
        """Keep ``depth`` levels a side within ``3 * depth`` ticks of the fair price: quotes
        left far behind are cancelled and new ones fill in, so the book follows the price."""
        rng, w, f = self.rng, 3 * self.depth, self.fair
        for bid in (True, False):
            book = self.bids if bid else self.asks
            for t in [t for t in book if (t < f - w if bid else t > f + w)]:
                if len(book) > 3:
                    del book[t]
            # Never crossing: bids below the best ask, asks above the best bid.
            lo, hi = ((max(1, f - w), min(f, self.best_ask()) - 1) if bid
                      else (max(f, self.best_bid()) + 1, f + w))
            tries = 0
            while len(book) < self.depth and lo <= hi and tries < 4 * self.depth:
                tries += 1
                t = rng.randint(lo, hi)
                if t not in book:
                    book[t] = self._new_level()
            while len(book) > self.depth:
                del book[min(book) if bid else max(book)]

    def diff(self, old: dict[int, tuple[int, int]], bids: bool) -> list[list[str]]:
        """Wire levels that changed since ``old``, best first; size "0" for deletions."""
        new = self.bids if bids else self.asks
        ticks = sorted(old.keys() | new.keys(), reverse=bids)
        return [self.wire(t, *new.get(t, (0, 0))) for t in ticks if old.get(t) != new.get(t)]


def generate_stream(
    seed: int = 0,
    instruments: Sequence[str] = ("BTC-USDT", "ETH-USDT"),
    n_updates: int = 2000,
    depth: int = 50,
    checksum: bool = True,
    start_ms: int = DEFAULT_START_MS,
    heartbeat_every: int | None = None,
    reset_at: int | None = None,
    volatility: float = 1.0,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(recv_ns, frame)`` for a synthetic OKX ``books`` + ``trades`` feed.

    Each instrument starts with a snapshot of ``depth`` levels a side; then ``n_updates``
    book updates in total (instruments picked at random) follow, some preceded by the
    ``trades`` push that caused them. ``heartbeat_every=k`` adds an empty update with
    ``seqId == prevSeqId`` after every k-th update of an instrument (heartbeats do not
    count towards ``n_updates``); ``reset_at=i`` gives the i-th update (0-based, over all
    instruments) a ``seqId`` smaller than its ``prevSeqId`` (a maintenance reset).
    ``checksum=False`` writes ``checksum: 0`` (absent, as OKX does since June 2026).
    ``volatility`` scales how far the fair price moves per update; however far, it reflects
    off :data:`FLOOR_TICKS` ticks, so no price is ever zero or below.
    ``recv_ns`` is strictly increasing and a few ms after the exchange ``ts``.

    >>> frames = list(generate_stream(seed=1, instruments=("BTC-USDT",), n_updates=3, depth=5))
    >>> [parse_frame(f).action for _, f in frames if b'"books"' in f]
    ['snapshot', 'update', 'update', 'update']
    """
    if n_updates < 0:
        raise ValueError(f"n_updates must be >= 0, got {n_updates}")
    if depth < 5:
        raise ValueError(f"depth must be >= 5 levels a side, got {depth}")
    if not instruments:
        raise ValueError("instruments must name at least one instrument")
    if reset_at is not None and not 0 <= reset_at < n_updates:
        raise ValueError(f"reset_at must be an update index in [0, {n_updates}), got {reset_at}")
    if heartbeat_every is not None and heartbeat_every < 1:
        raise ValueError(f"heartbeat_every must be >= 1 or None, got {heartbeat_every}")
    if not (isinstance(volatility, int | float) and 0 <= volatility < float("inf")):
        raise ValueError(f"volatility must be a finite number >= 0, got {volatility!r}")
    # Checked above, at call time; the frames come from an inner generator.
    return _generate(seed, instruments, n_updates, depth, checksum, start_ms, heartbeat_every,
                     reset_at, volatility)


def _generate(seed: int, instruments: Sequence[str], n_updates: int, depth: int, checksum: bool,
              start_ms: int, heartbeat_every: int | None,
              reset_at: int | None, volatility: float) -> Iterator[tuple[int, bytes]]:
    rng = random.Random(seed)
    insts = [_Inst(spec_for(i), rng, depth, volatility) for i in instruments]
    ms = start_ms
    last_recv = 0

    def stamp(ts_ms: int) -> int:
        nonlocal last_recv
        # Network latency of 1-30 ms; strictly increasing so ordering is unambiguous.
        last_recv = max(last_recv + 1, ts_ms * 1_000_000 + rng.randint(1_000_000, 30_000_000))
        return last_recv

    def book_frame(st: _Inst, action: str, bids, asks, prev: int, seq: int) -> bytes:
        if action == "snapshot":
            st.book.apply_snapshot(bids, asks)
        elif bids or asks:
            st.book.apply_update(bids, asks)
        cs = st.book.checksum() if checksum else 0
        return encode_book("books", st.spec.inst_id, action, bids, asks, ms, seq_id=seq,
                           prev_seq_id=prev, checksum=cs)

    for st in insts:
        ms += rng.randint(1, 5)
        yield stamp(ms), book_frame(st, "snapshot", st.side_levels(True), st.side_levels(False),
                                    -1, st.seq)

    for i in range(n_updates):
        st = rng.choice(insts)
        ms += max(1, int(rng.expovariate(1 / 40)))
        old_bids, old_asks = dict(st.bids), dict(st.asks)
        st.fair = reflect(st.fair + round(rng.gauss(0.0, st.vol)))
        if rng.random() < 0.25 or not st.best_bid() <= st.fair <= st.best_ask():
            if st.best_ask() < st.fair:
                side = "buy"
            elif st.best_bid() > st.fair:
                side = "sell"
            else:
                side = "buy" if rng.random() < 0.5 else "sell"
            fills = st.take(side)
            if fills:
                trades = []
                for tick, lots in fills:
                    st.trade_id += rng.randint(1, 4)
                    st.trade_seq += rng.randint(1, 3)
                    trades.append(Trade(str(st.trade_id), st.px(tick), st.sz(lots), side, ms,
                                        count=rng.randint(1, 3), seq_id=st.trade_seq, source="0"))
                yield stamp(ms), encode_trades(st.spec.inst_id, trades)
        st.churn()
        bids, asks = st.diff(old_bids, True), st.diff(old_asks, False)
        prev = st.seq
        if i == reset_at:
            st.seq = rng.randint(1, max(1, prev // 1000))
        else:
            st.seq = prev + rng.randint(1, 20)
        yield stamp(ms), book_frame(st, "update", bids, asks, prev, st.seq)
        st.n_updates += 1
        if heartbeat_every and st.n_updates % heartbeat_every == 0:
            ms += 1
            yield stamp(ms), book_frame(st, "update", [], [], st.seq, st.seq)


def inject_gap(stream: Iterable[tuple[int, bytes]], inst_id: str,
               at: int) -> Iterator[tuple[int, bytes]]:
    """Drop the ``at``-th (0-based) non-heartbeat ``books`` update of ``inst_id``.

    The next update's ``prevSeqId`` then names a seqId the receiver never saw: a real gap.
    (Dropping a heartbeat would go unnoticed, as its seqId repeats the previous one.)
    Raises ValueError, once the stream is exhausted, if there was no such update.

    >>> s = list(generate_stream(seed=1, instruments=("BTC-USDT",), n_updates=5, depth=5))
    >>> len(s) - len(list(inject_gap(s, "BTC-USDT", 2)))
    1
    """
    seen = 0
    dropped = False
    for recv, frame in stream:
        if not dropped and b'"books"' in frame:
            msg = parse_frame(frame)
            if (is_book(msg) and msg.inst_id == inst_id and msg.action == "update"
                    and msg.seq_id != msg.prev_seq_id):
                seen += 1
                if seen == at + 1:
                    dropped = True
                    continue
        yield recv, frame
    if not dropped:
        raise ValueError(f"inject_gap: {inst_id!r} has no update number {at} (0-based) "
                         f"in the stream; it has {seen}")
