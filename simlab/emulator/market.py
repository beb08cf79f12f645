"""The emulator's synthetic market: one Cont-Stoikov-Talreja book per instrument.

:class:`CSTMarket` is a :class:`~simlab.emulator.source.MarketSource`. Each instrument runs
the model of :mod:`simlab.emulator.cst` on its own tick/lot grid with its own random stream,
seeded from ``(seed, instId)`` only, so adding or removing an instrument never changes the
others' events. :func:`summary` measures a run (spreads, depth profile, trade and event
rates); the tests and :mod:`simlab.emulator.plot` use it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from operator import attrgetter

import numpy as np

from simlab.book import L2Book
from simlab.monitor.stats import percentile_summary

from .cst import CSTBook, CSTParams
from .instruments import DEFAULT_INSTRUMENTS, SimInstrument, get_instrument
from .source import DEFAULT_START_MS, Event, Instrument, LevelChange, MarketSource, Print

_ts = attrgetter("ts_ms")


def instrument_seed(seed: int, inst_id: str) -> np.random.SeedSequence:
    """The random stream of one instrument: depends on ``seed`` and ``inst_id`` only.

    >>> a = instrument_seed(0, "BTC-USDT").generate_state(1)
    >>> bool((a == instrument_seed(0, "BTC-USDT").generate_state(1)).all())
    True
    >>> bool((a == instrument_seed(0, "ETH-USDT").generate_state(1)).all())
    False
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(inst_id.encode()),))


class CSTMarket:
    """A deterministic multi-instrument CST market (a ``MarketSource``).

    ``instruments`` are instIds of :data:`~simlab.emulator.instruments.DEFAULT_INSTRUMENTS`
    or :class:`SimInstrument` s; ``params`` is one :class:`CSTParams` for all, or a mapping
    instId -> CSTParams (others get the defaults). ``book_cls`` lets a subclass of
    :class:`CSTBook` (e.g. one overriding ``market_rates``) run the instruments.

    >>> m = CSTMarket(seed=1, instruments=["BTC-USDT", "ETH-USDT"], start_ms=0)
    >>> [i.inst_id for i in m.instruments()]
    ['BTC-USDT', 'ETH-USDT']
    >>> ev = m.advance(2000)
    >>> all(a.ts_ms <= b.ts_ms for a, b in zip(ev, ev[1:])), sorted({e.inst_id for e in ev})
    (True, ['BTC-USDT', 'ETH-USDT'])
    >>> m.advance(1000)  # nothing new before what was already returned
    []
    """

    def __init__(self, seed: int = 0,
                 instruments: Sequence[str | SimInstrument] = tuple(DEFAULT_INSTRUMENTS),
                 params: CSTParams | Mapping[str, CSTParams] | None = None,
                 start_ms: int = DEFAULT_START_MS, book_cls: type[CSTBook] = CSTBook) -> None:
        if isinstance(instruments, str | SimInstrument):
            instruments = [instruments]
        specs = [get_instrument(i) if isinstance(i, str) else i for i in instruments]
        if not specs:
            raise ValueError("instruments must name at least one instrument")
        ids = [s.inst_id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instruments must be distinct, got {ids}")
        if isinstance(params, Mapping):
            unknown = set(params) - set(ids)
            if unknown:
                raise ValueError(f"params names instruments not in the market: {sorted(unknown)}")
        self.seed = seed
        self.start_ms = int(start_ms)
        self._now = self.start_ms - 1
        self._books: dict[str, CSTBook] = {}
        for s in specs:
            p = params.get(s.inst_id) if isinstance(params, Mapping) else params
            self._books[s.inst_id] = book_cls(s, p or CSTParams(), instrument_seed(seed, s.inst_id),
                                              self.start_ms)

    @property
    def now_ms(self) -> int:
        """The ``until_ms`` of the last :meth:`advance` (``start_ms - 1`` before any)."""
        return self._now

    def instruments(self) -> list[Instrument]:
        """The instruments, in the market's fixed order (ties in :meth:`advance` follow it)."""
        return [b.spec.instrument for b in self._books.values()]

    def book(self, inst_id: str) -> CSTBook:
        """The model of one instrument (its current state, parameters and stats)."""
        try:
            return self._books[inst_id]
        except KeyError:
            raise ValueError(f"instrument {inst_id!r} is not in this market "
                             f"({list(self._books)})") from None

    def initial_book(self, inst_id: str) -> tuple[list[list[str]], list[list[str]]]:
        """The book at ``start_ms``: ``(bids, asks)`` best first, ``[price, size, count]``.

        >>> bids, asks = CSTMarket(instruments=["ETH-USDT"]).initial_book("ETH-USDT")
        >>> bids[0][0] < asks[0][0] and len(bids) > 100
        True
        """
        b, a = self.book(inst_id).initial
        return [list(x) for x in b], [list(x) for x in a]

    def current_book(self, inst_id: str) -> tuple[list[list[str]], list[list[str]]]:
        """The book after the events returned so far (same form as :meth:`initial_book`)."""
        return self.book(inst_id).levels()

    def advance(self, until_ms: int) -> list[Event]:
        """Every event with ``ts_ms <= until_ms`` not returned before, in time order; events
        at the same ms keep each instrument's order, instruments in :meth:`instruments` order.
        """
        until_ms = int(until_ms)
        if until_ms <= self._now:
            return []
        self._now = until_ms
        out: list[Event] = []
        for b in self._books.values():
            b.run(until_ms, out)
        if len(self._books) > 1:
            out.sort(key=_ts)  # stable: the per-instrument order and instrument order stay
        return out


# -- measuring a run ---------------------------------------------------------------------------
def summary(source: MarketSource | Sequence[Event], inst_id: str | None = None, *,
            minutes: float = 10.0, initial: tuple[list, list] | None = None,
            tick_sz: str | None = None, start_ms: int | None = None, levels: int = 20,
            sample_ms: int = 100, series: bool = False) -> dict:
    """Statistics of one instrument's run, from a market or from its events.

    With a market: runs it ``minutes`` from where it is (this consumes its events) and
    uses its initial book and tick size. With a list of events: ``initial`` (bids, asks)
    is the book before them (empty if None), ``tick_sz`` must be given, ``start_ms``
    defaults to the first event's time. The book is replayed in :class:`simlab.book.L2Book`
    and sampled every ``sample_ms`` ms. Returned keys:

    - ``events``, ``level_changes``, ``prints``, ``duration_s``, ``event_rate`` (level
      changes + prints per second), ``trade_rate``, ``traded`` (size), ``buy_share``;
    - ``spread`` (ticks): ``mean``, ``median``, ``p99``, ``max``;
    - ``depth_bid``, ``depth_ask``: mean size (size currency) at distance ``i = 1..levels``
      ticks from the *opposite* best quote, CST's convention (``i = 1`` is the best quote
      when the spread is one tick; a tick inside the spread counts as empty);
    - ``levels_bid``, ``levels_ask``: mean number of levels; ``min_levels``: the fewest
      levels either side had at any sample; ``mid_first``, ``mid_last``, ``mid_range``;
    - with ``series=True``: ``t_s``, ``mid``, ``spread_ticks`` (numpy arrays per sample).

    >>> m = CSTMarket(seed=3, instruments=["BTC-USDT"], params=CSTParams(depth=60))
    >>> s = summary(m, minutes=0.5)
    >>> s["inst_id"], s["spread"]["median"] >= 1, len(s["depth_bid"])
    ('BTC-USDT', True, 20)
    """
    if levels < 1 or sample_ms < 1:
        raise ValueError(f"levels and sample_ms must be >= 1, got {levels}, {sample_ms}")
    if hasattr(source, "advance"):
        market = source
        insts = {i.inst_id: i for i in market.instruments()}
        inst_id = inst_id or next(iter(insts))
        if inst_id not in insts:
            raise ValueError(f"instrument {inst_id!r} is not in the market ({list(insts)})")
        tick_sz = tick_sz or insts[inst_id].tick_sz
        if initial is None:
            initial = (market.current_book(inst_id) if hasattr(market, "current_book")
                       else market.initial_book(inst_id))
        t0 = getattr(market, "now_ms", market.start_ms - 1) + 1
        start_ms = t0 if start_ms is None else start_ms
        end_ms = t0 + int(minutes * 60_000) - 1
        events = [e for e in market.advance(end_ms) if e.inst_id == inst_id]
    else:
        events = list(source)
        if tick_sz is None:
            raise ValueError("summary of a list of events needs tick_sz")
        inst_id = inst_id or (events[0].inst_id if events else "")
        events = [e for e in events if e.inst_id == inst_id]
        if start_ms is None:
            start_ms = events[0].ts_ms if events else 0
        end_ms = events[-1].ts_ms if events else start_ms
    tick = float(Decimal(tick_sz))
    book = L2Book(inst_id)
    if initial is not None:
        book.apply_snapshot([[p, s, "0", str(c)] for p, s, c in initial[0]],
                            [[p, s, "0", str(c)] for p, s, c in initial[1]])

    n_samples = max(1, (end_ms - start_ms) // sample_ms + 1)
    t_s = np.empty(n_samples)
    mid = np.full(n_samples, math.nan)
    spr = np.full(n_samples, math.nan)
    depth = {"bid": np.zeros(levels), "ask": np.zeros(levels)}
    nlev = {"bid": 0, "ask": 0}
    min_levels = math.inf
    k = 0

    def sample(ts: int) -> None:
        nonlocal min_levels
        t_s[k] = (ts - start_ms) / 1000.0
        min_levels = min(min_levels, book.n_bids, book.n_asks)
        nlev["bid"] += book.n_bids
        nlev["ask"] += book.n_asks
        if not (book.n_bids and book.n_asks):
            return
        bb, ba = book.best_bid, book.best_ask
        mid[k] = (bb + ba) / 2.0
        spr[k] = round((ba - bb) / tick)
        for side, ref, sign in (("bid", ba, 1.0), ("ask", bb, -1.0)):
            acc = depth[side]
            for px, sz, _ in book.levels(side, levels):
                i = round(sign * (ref - float(px)) / tick)
                if i > levels:
                    break
                acc[i - 1] += float(sz)

    n_lc = n_pr = 0
    traded = buys = 0.0
    nxt = start_ms
    bids: list = []
    asks: list = []
    for e in events:
        while k < n_samples and nxt < e.ts_ms:  # the book as it was at time nxt
            sample(nxt)
            k += 1
            nxt += sample_ms
        if type(e) is LevelChange:
            n_lc += 1
            lvl = [[e.price, e.size, "0", str(e.count)]]
            if e.side == "bid":
                book.apply_update(lvl, asks)
            else:
                book.apply_update(bids, lvl)
        elif type(e) is Print:
            n_pr += 1
            traded += float(e.size)
            buys += float(e.size) if e.side == "buy" else 0.0
    while k < n_samples:
        sample(nxt)
        k += 1
        nxt += sample_ms

    dur = max((end_ms - start_ms + 1) / 1000.0, 1e-3)
    ok = ~np.isnan(spr)
    out = {
        "inst_id": inst_id,
        "events": len(events),
        "level_changes": n_lc,
        "prints": n_pr,
        "duration_s": dur,
        "event_rate": len(events) / dur,
        "trade_rate": n_pr / dur,
        "traded": traded,
        "buy_share": buys / traded if traded else math.nan,
        "spread": percentile_summary(spr, (99,), stats=("mean", "median", "p", "max")),
        "depth_bid": (depth["bid"] / n_samples).tolist(),
        "depth_ask": (depth["ask"] / n_samples).tolist(),
        "levels_bid": nlev["bid"] / n_samples,
        "levels_ask": nlev["ask"] / n_samples,
        "min_levels": int(min_levels),
        "mid_first": float(mid[ok][0]) if ok.any() else math.nan,
        "mid_last": float(mid[ok][-1]) if ok.any() else math.nan,
        "mid_range": float(np.ptp(mid[ok])) if ok.any() else math.nan,
    }
    if series:
        out.update(t_s=t_s, mid=mid, spread_ticks=spr)
    return out
