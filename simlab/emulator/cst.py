"""The Cont-Stoikov-Talreja order-book model for one instrument, simulated exactly.

Cont, Stoikov & Talreja (2010), "A stochastic model for order book dynamics", Operations
Research 58(3). Prices live on the instrument's tick grid; distances ``i`` are counted in
ticks from the *opposite* best quote (a bid at price ``p`` is at ``i = best_ask - p``).

- Limit buy (sell) orders arrive at distance ``i = 1..depth`` at rate ``lambda(i) = k/i**alpha``
  each side; ``i >= 1`` so a limit order never crosses, and one arriving inside the spread
  becomes the new best: the book is never crossed nor locked.
- Market buy and sell orders arrive at rate ``mu/2`` each; they take resting orders from the
  best level outwards, in time priority, possibly sweeping several levels.
- Each resting order at distance ``i`` is cancelled at rate ``theta(i)``.

What this adds to the paper: orders have sizes (a whole number of the instrument's order
units, drawn from :attr:`CSTParams.limit_sizes` / :attr:`CSTParams.market_sizes`), and the
book is a window: limit orders arrive within ``depth`` ticks of the opposite best, and orders
that the window leaves behind when the opposite best moves away are cancelled (a
``LevelChange`` to size 0), so at most ``depth`` levels a side exist. If a side ever empties
(a sweep, or cancellations), one limit order is added to it at once, at a distance drawn from
``lambda`` (counted in ``stats["reseeds"]``; with the defaults it does not happen in hours).

The simulation is Gillespie's direct method: the next event time is exponential with the
total rate, the event is chosen with probability proportional to its rate. Cancellations
are split exactly as ``theta(i) = theta_base + extra(i)``, ``theta_base`` being the smallest
rate and ``extra(i)`` zero beyond the first few ticks: a base cancellation picks a resting
order uniformly, an extra one a level near the touch (weights kept up to date as orders come
and go and recomputed when a best quote moves), then an order in it; no candidate is ever
rejected. Random numbers are drawn in batches from one numpy Generator, so the events depend
only on the seed and the parameters, never on how :meth:`CSTBook.run` calls are split.
Prices and sizes are integers (ticks, lots) inside, formatted only when emitted.

The grid has a floor: no price is ever at or below zero. A limit bid that would arrive at
tick 0 or below does not happen (it counts as a ``null`` event), so near the floor the bid
side thins out, market sells find less to take, and the price reflects off one tick.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

import numpy as np

from simlab.okx.encode import format_decimal
from simlab.okx.messages import BOOK_DEPTH

from .instruments import SimInstrument
from .source import Event, LevelChange, Print

_BATCH = 4096  # random numbers drawn per numpy call
_CACHE_MAX = 1 << 20  # formatted strings kept per grid before the cache is dropped


def _harmonic(k: int) -> tuple[float, ...]:
    """P(n) proportional to 1/n, n = 1..k: mostly small orders, some large ones."""
    w = [1.0 / n for n in range(1, k + 1)]
    s = sum(w)
    return tuple(x / s for x in w)


@dataclass(frozen=True)
class CSTParams:
    """Parameters of the CST model for one instrument (rates per second).

    - ``k``, ``alpha``: limit-order arrival rate ``k / i**alpha`` at distance ``i`` ticks from
      the opposite best, each side. The paper's fit on Tokyo stocks: 1.92 and 0.52.
    - ``mu``: market orders per second, buys and sells together (half each); 1.88 is the
      paper's 0.94 per side.
    - ``theta``: cancellation rate of one resting order at distances 1, 2, ...;
      ``theta_far`` beyond the table. CST estimate cancellation rates that fall with the
      distance; these values are chosen, not fitted: quotes at the touch are the most
      actively managed (1.9/s), the rate falls to 0.3/s at 10 ticks and stays there. Then
      ``lambda(i)/theta(i)``, the mean number of orders a tick would hold without market
      orders, rises from 1.0 at i=1 to 1.9 at i=8..11 and falls as ``i**-0.52`` beyond
      (0.28 at i=400): the mean book is hump-shaped, the stylised fact CST (and Bouchaud,
      Mezard & Potters 2002) report, and sparse far out, as OKX's BTC-USDT book is
      (its 400 levels span some 2,000-4,000 ticks). Far orders live 3.3 s on average.
    - ``limit_sizes``, ``market_sizes``: probabilities of an order being 1, 2, ... order
      units (:attr:`SimInstrument.size_unit`). Defaults: ``P(n) ~ 1/n`` on 1..10 for limit
      orders (mean 3.4 units) and 1..20 for market orders (mean 5.6), so a market order
      sometimes sweeps more than the best level.
    - ``depth``: the window, in ticks from the opposite best, where limit orders arrive
      and rest: at most ``depth`` levels a side (400, the ``books`` channel's depth).
    - ``burn_in_s``: simulated seconds run (and not emitted) before ``start_ms`` so the
      initial book is a typical state, not the starting guess.

    With the defaults an instrument makes about 275 events a second (limit orders 136/s and
    cancellations 132/s, spread over the 400 ticks; market orders 1.9/s, giving about 3.4
    prints/s as some sweep two levels or more); the spread is one tick most of the time.
    The rates are :meth:`limit_rate` and :meth:`cancel_rate`: subclass to change their
    shape; state-dependent market-order rates are the hook :meth:`CSTBook.market_rates`.

    >>> p = CSTParams()
    >>> round(p.limit_rate(1), 2), round(p.limit_rate(4), 3), p.cancel_rate(2), p.cancel_rate(400)
    (1.92, 0.934, 1.0, 0.3)
    """

    k: float = 1.92
    alpha: float = 0.52
    mu: float = 1.88
    theta: tuple[float, ...] = (1.9, 1.0, 0.7, 0.55, 0.46, 0.41, 0.37, 0.34, 0.32, 0.3)
    theta_far: float = 0.3
    limit_sizes: tuple[float, ...] = _harmonic(10)
    market_sizes: tuple[float, ...] = _harmonic(20)
    depth: int = BOOK_DEPTH["books"]
    burn_in_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("k", "alpha", "mu", "theta_far", "burn_in_s"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"CSTParams.{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.depth, int) or not 1 <= self.depth <= 10_000:
            raise ValueError(f"CSTParams.depth must be an integer in 1..10000, got {self.depth!r}")
        if any(not math.isfinite(x) or x <= 0 for x in (*self.theta, self.theta_far)):
            raise ValueError(f"CSTParams.theta and theta_far must be rates > 0, got "
                             f"{self.theta!r}, {self.theta_far!r}")
        for name in ("limit_sizes", "market_sizes"):
            p = getattr(self, name)
            if not p or any(not math.isfinite(x) or x < 0 for x in p) or not sum(p) > 0:
                raise ValueError(f"CSTParams.{name} must be probabilities of 1, 2, ... units "
                                 f"(>= 0, not all 0), got {p!r}")

    def limit_rate(self, i: int) -> float:
        """Limit orders per second at distance ``i >= 1`` ticks from the opposite best.

        >>> round(CSTParams(k=2.0, alpha=0.5).limit_rate(4), 6)
        1.0
        """
        return self.k / i**self.alpha

    def cancel_rate(self, i: int) -> float:
        """Cancellation rate of one resting order at distance ``i >= 1`` from the opposite best.

        >>> p = CSTParams(theta=(0.5, 0.4), theta_far=0.2)
        >>> p.cancel_rate(1), p.cancel_rate(2), p.cancel_rate(3)
        (0.5, 0.4, 0.2)
        """
        return self.theta[i - 1] if i <= len(self.theta) else self.theta_far


class _Grid:
    """``n * step`` as OKX's shortest decimal string, exactly and fast (cached by ``n``)."""

    __slots__ = ("cache", "e", "m")

    def __init__(self, step: Decimal) -> None:
        _, digits, exp = step.as_tuple()
        m = int("".join(map(str, digits)))
        if exp >= 0:
            m, exp = m * 10**exp, 0
        self.m, self.e = m, -exp
        self.cache: dict[int, str] = {}

    def fmt(self, n: int) -> str:
        v, e = n * self.m, self.e
        if not e or not v:
            return str(v)
        s = str(v).rjust(e + 1, "0")
        frac = s[-e:].rstrip("0")
        return f"{s[:-e]}.{frac}" if frac else s[:-e]

    def __call__(self, n: int) -> str:
        s = self.cache.get(n)
        if s is None:
            if len(self.cache) > _CACHE_MAX:
                self.cache.clear()
            s = self.cache[n] = self.fmt(n)
        return s


def _ticks(value: Decimal, step: Decimal, what: str) -> int:
    q = value / step
    if q != q.to_integral_value():
        raise ValueError(f"{what} {value} is not a multiple of {step}")
    return int(q)


class CSTBook:
    """One instrument's CST market; :class:`simlab.emulator.market.CSTMarket` runs several.

    ``seed`` is anything :func:`numpy.random.default_rng` takes (an int or a SeedSequence).
    The book at ``start_ms`` is the state after ``params.burn_in_s`` simulated seconds;
    :meth:`run` then appends the events up to a time to a list.

    Subclass hook: override :meth:`market_rates` to make market orders depend on the book
    (it is then called after every event); the book is in :attr:`bids` / :attr:`asks`
    (tick -> ``[total_lots, [order, ...]]``, an order being ``[tick, lots, index]``) and
    :attr:`best_bid` / :attr:`best_ask` (ticks).

    >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
    >>> b = CSTBook(DEFAULT_INSTRUMENTS["BTC-USDT"], CSTParams(depth=50), seed=1, start_ms=0)
    >>> out = []
    >>> b.run(1000, out)
    >>> len(out) > 20, out[0].ts_ms >= 0, out[-1].ts_ms <= 1000
    (True, True, True)
    """

    def __init__(self, spec: SimInstrument, params: CSTParams | None = None,
                 seed: int | np.random.SeedSequence = 0, start_ms: int = 0) -> None:
        params = params or CSTParams()
        self.spec, self.params, self.inst_id = spec, params, spec.inst_id
        self.start_ms = int(start_ms)
        inst = spec.instrument
        tick, lot = Decimal(inst.tick_sz), Decimal(inst.lot_sz)
        self.tick_sz, self.lot_sz = tick, lot
        self.unit_lots = _ticks(Decimal(spec.size_unit), lot, f"{self.inst_id} size_unit")
        self._px, self._sz = _Grid(tick), _Grid(lot)
        self.depth = d = params.depth
        lam = [float(params.limit_rate(i)) for i in range(1, d + 1)]
        theta = [0.0] + [float(params.cancel_rate(i)) for i in range(1, d + 1)]
        if any(not math.isfinite(x) or x < 0 for x in lam) or not sum(lam) > 0:
            raise ValueError(f"{self.inst_id}: limit_rate must give rates >= 0, not all 0")
        if any(not math.isfinite(x) or x <= 0 for x in theta[1:]):
            raise ValueError(f"{self.inst_id}: cancel_rate must give rates > 0")
        self._lam = lam
        self._cum = list(accumulate(lam))
        self._lam_sum = self._cum[-1]
        self._theta = theta
        # theta(i) = base + extra(i); extra is 0 beyond `near` ticks (10 with the defaults).
        self._base = base = min(theta[1:])
        extra = [x - base for x in theta]
        extra[0] = 0.0
        self._near = near = max((i for i in range(1, d + 1) if extra[i] > 0), default=0)
        self._extra = extra[: near + 1]
        self._eb = self._ea = 0.0  # extra cancellation rate of the bid / ask side now
        self._lprob = np.asarray(params.limit_sizes, float) / sum(params.limit_sizes)
        self._mprob = np.asarray(params.market_sizes, float) / sum(params.market_sizes)

        self._rng = np.random.default_rng(seed)
        self._exps: list[float] = []
        self._unis: list[float] = []
        self._lsz: list[int] = []
        self._msz: list[int] = []
        self._ei = self._ui = self._li = self._mi = 0

        #: tick -> [total lots, [order, ...]] in time priority; an order is [tick, lots, index
        #: in the side's flat list] (the flat list is what cancellations sample from).
        self.bids: dict[int, list] = {}
        self.asks: dict[int, list] = {}
        self._bflat: list[list[int]] = []
        self._aflat: list[list[int]] = []
        self.best_bid = self.best_ask = 0
        self._dynamic = type(self).market_rates is not CSTBook.market_rates
        self._mub = self._mus = params.mu / 2.0
        self.trade_id = int(self._rng.integers(10**8, 10**9))
        self.stats = dict.fromkeys(("limit", "market", "cancel", "null", "pruned",
                                    "reseeds", "prints"), 0)

        self._init_book()
        if self._dynamic:
            self._mub, self._mus = self.market_rates()
        # Burn-in on its own clock, then restart the clock at 0: the pending event's residual
        # waiting time is still exponential with the current rate, so this is exact.
        self._R = self._rate()
        self._t_next = self._draw_exp() / self._R
        self._run(params.burn_in_s * 1000.0, None)
        self._t_next = max(0.0, self._t_next - params.burn_in_s)
        for k in self.stats:
            self.stats[k] = 0
        self.initial = self.levels()

    # -- public -----------------------------------------------------------------------------
    def market_rates(self) -> tuple[float, float]:
        """Market (buy, sell) orders per second; the default is ``mu/2`` each, always.

        Override to tilt the flow with the book's state (e.g. more buys when the bid side
        is heavier): it is called after every event, on the current book.

        >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
        >>> CSTBook(DEFAULT_INSTRUMENTS["ETH-USDT"], CSTParams(depth=20)).market_rates()
        (0.94, 0.94)
        """
        return self.params.mu / 2.0, self.params.mu / 2.0

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        """The book now: ``(bids, asks)`` best first, levels ``[price, size, count]`` (strings).

        >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
        >>> bids, asks = CSTBook(DEFAULT_INSTRUMENTS["ETH-USDT"], CSTParams(depth=20)).levels()
        >>> float(bids[0][0]) < float(asks[0][0]), len(bids) <= 20
        (True, True)
        """
        px, sz, b, a = self._px, self._sz, self.bids, self.asks
        return ([[px(t), sz(b[t][0]), str(len(b[t][1]))] for t in sorted(b, reverse=True)],
                [[px(t), sz(a[t][0]), str(len(a[t][1]))] for t in sorted(a)])

    def next_ts(self) -> int:
        """The ``ts_ms`` of the next event (already drawn, not yet run).

        >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
        >>> CSTBook(DEFAULT_INSTRUMENTS["ETH-USDT"], CSTParams(depth=20), start_ms=5).next_ts() >= 5
        True
        """
        return self.start_ms + int(self._t_next * 1000.0)

    def run(self, until_ms: int, out: list[Event]) -> None:
        """Run the model up to ``until_ms`` inclusive, appending its events to ``out``.

        Events come in time order; a market order's :class:`Print` s come first, then the
        :class:`LevelChange` s it caused (same ``ts_ms``). See the class example.
        """
        # ts = start_ms + floor(t * 1000) <= until_ms  <=>  t * 1000 < until_ms - start_ms + 1
        self._run(float(until_ms - self.start_ms + 1), out)

    # -- internals --------------------------------------------------------------------------
    def _rate(self) -> float:
        return (2.0 * self._lam_sum + self._mub + self._mus + self._eb + self._ea
                + self._base * (len(self._bflat) + len(self._aflat)))

    def _extra_rate(self, bid: bool, ref: int) -> float:
        """Sum of ``extra(i)`` over one side's orders, ``ref`` being the opposite best."""
        book, ext, r = (self.bids, self._extra, 0.0) if bid else (self.asks, self._extra, 0.0)
        step = -1 if bid else 1
        for i in range(1, self._near + 1):
            lv = book.get(ref + step * i)
            if lv is not None:
                r += len(lv[1]) * ext[i]
        return r

    def _rescore(self) -> None:
        self._eb = self._extra_rate(True, self.best_ask)
        self._ea = self._extra_rate(False, self.best_bid)

    def _draw_exp(self) -> float:
        if self._ei >= len(self._exps):
            self._exps, self._ei = self._rng.standard_exponential(_BATCH).tolist(), 0
        self._ei += 1
        return self._exps[self._ei - 1]

    def _draw_distance(self) -> int:
        """A distance ``i`` with probability ``lambda(i) / sum(lambda)`` (rare paths only)."""
        k = bisect_right(self._cum, float(self._rng.random()) * self._lam_sum)
        return min(k, self.depth - 1) + 1

    def _draw_size(self) -> int:
        """A limit-order size in lots (rare paths only)."""
        n = int(self._rng.choice(len(self._lprob), p=self._lprob)) + 1
        return n * self.unit_lots

    def _add(self, bid: bool, tick: int, lots: int) -> list:
        book, flat = (self.bids, self._bflat) if bid else (self.asks, self._aflat)
        rec = [tick, lots, len(flat)]
        flat.append(rec)
        lv = book.get(tick)
        if lv is None:
            lv = book[tick] = [lots, [rec]]
        else:
            lv[0] += lots
            lv[1].append(rec)
        return lv

    def _init_book(self) -> None:
        """Start from the model's far-field profile: Poisson(lambda(i)/theta(i)) orders at each
        distance from a one-tick spread (exact for queues market orders do not reach);
        the burn-in then brings the touch to a typical state."""
        inst = self.spec
        ref = _ticks(Decimal(inst.price).quantize(self.tick_sz, rounding="ROUND_FLOOR"),
                     self.tick_sz, f"{self.inst_id} price")
        bb, ba = ref, ref + 1
        rng = self._rng
        means = np.array([self._lam[i - 1] / self._theta[i] for i in range(1, self.depth + 1)])
        nb, na = rng.poisson(means), rng.poisson(means)
        ns = rng.choice(len(self._lprob), size=int(nb.sum() + na.sum()), p=self._lprob) + 1
        sizes = (ns * self.unit_lots).tolist()
        j = 0
        for i in range(1, self.depth + 1):
            for bid, n, tick in ((True, nb[i - 1], ba - i), (False, na[i - 1], bb + i)):
                for _ in range(int(n)):
                    if tick >= 1:  # no price <= 0 (a book near the grid's floor)
                        self._add(bid, tick, sizes[j])
                    j += 1
        self.best_bid = max(self.bids) if self.bids else bb
        self.best_ask = min(self.asks) if self.asks else ba
        self._settle(0, None, bb, ba)
        self._rescore()

    def _remove_level(self, bid: bool, tick: int, ts: int, out: list | None) -> None:
        book, flat = (self.bids, self._bflat) if bid else (self.asks, self._aflat)
        for rec in book.pop(tick)[1]:
            last = flat.pop()
            if last is not rec:
                p = rec[2]
                flat[p] = last
                last[2] = p
        self.stats["pruned"] += 1
        if out is not None:
            out.append(LevelChange(ts, self.inst_id, "bid" if bid else "ask", self._px(tick),
                                   "0", 0))

    def _settle(self, ts: int, out: list | None, old_bb: int, old_ba: int) -> None:
        """After orders left the book (from ``old_bb``/``old_ba``): refill an empty side, find
        the new best quotes, and cancel orders now outside the window."""
        for _ in range(4):  # one reseed can move a quote once; two rounds always suffice
            if not self.bids or not self.asks:
                bid = not self.bids
                if bid and not self.asks:  # both empty: restart around the last quotes
                    self.best_ask = old_ba
                ref = self.best_ask if bid else self.best_bid
                i = self._draw_distance()
                # A bid never goes below one tick (asks are above a bid, so at 2 or more).
                tick = max(1, ref - i) if bid else ref + i
                lv = self._add(bid, tick, self._draw_size())
                self.stats["reseeds"] += 1
                if bid:
                    self.best_bid = tick
                else:
                    self.best_ask = tick
                if out is not None:
                    out.append(LevelChange(ts, self.inst_id, "bid" if bid else "ask",
                                           self._px(tick), self._sz(lv[0]), len(lv[1])))
            bb, ba = self.best_bid, self.best_ask
            # The best level went: the next one is within the window. A side left empty
            # (both were, and one was reseeded above) is reseeded on the next round; a scan
            # of an empty side would never end.
            if self.bids and bb not in self.bids:
                bb = _scan(self.bids, bb, -1)
            if self.asks and ba not in self.asks:
                ba = _scan(self.asks, ba, 1)
            self.best_bid, self.best_ask = bb, ba
            # Orders more than depth ticks from the opposite best leave the window.
            gone = ([(True, t) for t in _ticks_between(self.bids, old_ba - self.depth,
                                                       ba - self.depth)]
                    + [(False, t) for t in _ticks_between(self.asks, bb + self.depth + 1,
                                                          old_bb + self.depth + 1)])
            for bid, t in gone:
                self._remove_level(bid, t, ts, out)
            old_bb, old_ba = bb, ba
            if self.bids and self.asks:
                return
        raise AssertionError(f"{self.inst_id}: book did not settle")  # pragma: no cover

    def _market(self, buy: bool, lots: int, ts: int, out: list | None) -> None:
        """A market order of ``lots``: fills from the best level outwards in time priority;
        whatever the whole side cannot fill is dropped (immediate-or-cancel)."""
        book, flat = (self.asks, self._aflat) if buy else (self.bids, self._bflat)
        old_bb, old_ba = self.best_bid, self.best_ask
        tick = old_ba if buy else old_bb
        step = 1 if buy else -1
        prints: list[Event] = []
        changes: list[Event] = []
        side, lside = ("buy", "ask") if buy else ("sell", "bid")
        px, sz, inst = self._px, self._sz, self.inst_id
        rem = lots
        while rem and book:
            lv = book.get(tick)
            if lv is None:
                tick += step
                continue
            orders = lv[1]
            filled = n = 0
            while rem and orders:
                rec = orders[0]
                n += 1
                if rec[1] <= rem:
                    rem -= rec[1]
                    filled += rec[1]
                    del orders[0]
                    last = flat.pop()
                    if last is not rec:
                        p = rec[2]
                        flat[p] = last
                        last[2] = p
                else:
                    rec[1] -= rem
                    filled += rem
                    rem = 0
            lv[0] -= filled
            self.trade_id += n  # OKX: an aggregated trade's id is that of its last fill
            self.stats["prints"] += 1
            if out is not None:
                prints.append(Print(ts, inst, str(self.trade_id), px(tick), sz(filled), side, n))
                changes.append(LevelChange(ts, inst, lside, px(tick), sz(lv[0]) if orders else "0",
                                           len(orders)))
            if not orders:
                del book[tick]
            tick += step
        if out is not None:
            out += prints
            out += changes
        self._settle(ts, out, old_bb, old_ba)

    def _run(self, lim: float, out: list | None) -> None:
        """Run events while ``t_next * 1000 < lim``. The hot loop: locals only, batched random
        numbers, rare paths (market orders, a best level emptied) in methods."""
        rng, batch = self._rng, _BATCH
        exps, ei, unis, ui = self._exps, self._ei, self._unis, self._ui
        lsz, li = self._lsz, self._li
        msz, mi = self._msz, self._mi
        bids, asks, bflat, aflat = self.bids, self.asks, self._bflat, self._aflat
        bb, ba = self.best_bid, self.best_ask
        cum, lam, depth = self._cum, self._lam_sum, self.depth
        base, ext, near, eb, ea = self._base, self._extra, self._near, self._eb, self._ea
        lam2 = 2.0 * lam
        mub, mus = self._mub, self._mus
        dyn = self._dynamic
        tn, rate = self._t_next, self._R
        inst, t0, px, sz = self.inst_id, self.start_ms, self._px, self._sz
        emit = out is not None
        append = out.append if emit else None
        n_lim = n_can = n_null = n_mkt = 0
        unit, lprob, mprob = self.unit_lots, self._lprob, self._mprob
        extra_rate = self._extra_rate
        while tn * 1000.0 < lim:
            t = tn
            ts = t0 + int(t * 1000.0)
            if ui >= len(unis):
                unis, ui = rng.random(batch).tolist(), 0
            x = unis[ui] * rate
            ui += 1
            if x < lam2:  # a limit order
                if li >= len(lsz):
                    lsz = ((rng.choice(len(lprob), size=batch, p=lprob) + 1) * unit).tolist()
                    li = 0
                lots = lsz[li]
                li += 1
                n_lim += 1
                if x < lam:
                    k = bisect_right(cum, x) + 1
                    if k > depth:  # float rounding at the very top of the range
                        k = depth
                    tick = ba - k
                    if tick < 1:  # no price <= 0 on the grid: nothing can rest there
                        n_null += 1
                        n_lim -= 1
                    else:
                        rec = [tick, lots, len(bflat)]
                        bflat.append(rec)
                        lv = bids.get(tick)
                        if lv is None:
                            lv = bids[tick] = [lots, [rec]]
                            if tick > bb:  # inside the spread: the asks' distances shrink
                                bb = tick
                                ea = extra_rate(False, bb)
                        else:
                            lv[0] += lots
                            lv[1].append(rec)
                        if k <= near:
                            eb += ext[k]
                        if emit:
                            append(LevelChange(ts, inst, "bid", px(tick), sz(lv[0]),
                                               len(lv[1])))
                else:
                    k = bisect_right(cum, x - lam) + 1
                    if k > depth:
                        k = depth
                    tick = bb + k
                    rec = [tick, lots, len(aflat)]
                    aflat.append(rec)
                    lv = asks.get(tick)
                    if lv is None:
                        lv = asks[tick] = [lots, [rec]]
                        if tick < ba:
                            ba = tick
                            eb = extra_rate(True, ba)
                    else:
                        lv[0] += lots
                        lv[1].append(rec)
                    if k <= near:
                        ea += ext[k]
                    if emit:
                        append(LevelChange(ts, inst, "ask", px(tick), sz(lv[0]), len(lv[1])))
            elif x < lam2 + mub + mus:  # a market order
                if mi >= len(msz):
                    msz = ((rng.choice(len(mprob), size=batch, p=mprob) + 1) * unit).tolist()
                    mi = 0
                n_mkt += 1
                self.best_bid, self.best_ask = bb, ba
                self._market(x < lam2 + mub, msz[mi], ts, out)
                mi += 1
                bb, ba = self.best_bid, self.best_ask
                eb, ea = extra_rate(True, ba), extra_rate(False, bb)
            else:  # a cancellation
                y = x - lam2 - mub - mus
                nb = len(bflat)
                nall = nb + len(aflat)
                rec = None
                if y < base * nall:  # at the base rate: every resting order alike
                    j = int(y / base)
                    if j >= nall:  # float rounding at the very top of the range
                        j = nall - 1
                    bid = j < nb
                    rec = bflat[j] if bid else aflat[j - nb]
                else:  # at the extra rate of the orders near the touch: pick a level, then
                    y -= base * nall  # an order in it (the rest of y is uniform)
                    bid = y < eb
                    if not bid:
                        y -= eb
                    book, ref, step = (bids, ba, -1) if bid else (asks, bb, 1)
                    for i in range(1, near + 1):
                        lv = book.get(ref + step * i)
                        if lv is not None:
                            w = len(lv[1]) * ext[i]
                            if y < w:
                                rec = lv[1][min(int(y / ext[i]), len(lv[1]) - 1)]
                                break
                            y -= w
                if rec is None:  # only float drift in eb/ea can get here: nothing happens
                    n_null += 1
                    eb, ea = extra_rate(True, ba), extra_rate(False, bb)
                else:
                    n_can += 1
                    tick = rec[0]
                    book, flat = (bids, bflat) if bid else (asks, aflat)
                    lv = book[tick]
                    orders = lv[1]
                    orders.remove(rec)
                    last = flat.pop()
                    if last is not rec:
                        j = rec[2]
                        last[2] = j
                        flat[j] = last
                    lv[0] -= rec[1]
                    if bid:
                        k = ba - tick
                        if k <= near:
                            eb -= ext[k]
                    else:
                        k = tick - bb
                        if k <= near:
                            ea -= ext[k]
                    if orders:
                        if emit:
                            append(LevelChange(ts, inst, "bid" if bid else "ask", px(tick),
                                               sz(lv[0]), len(orders)))
                    else:
                        del book[tick]
                        if emit:
                            append(LevelChange(ts, inst, "bid" if bid else "ask", px(tick), "0",
                                               0))
                        if tick == (bb if bid else ba):
                            self.best_bid, self.best_ask = bb, ba
                            self._settle(ts, out, bb, ba)
                            bb, ba = self.best_bid, self.best_ask
                            eb, ea = extra_rate(True, ba), extra_rate(False, bb)
            if dyn:
                self.best_bid, self.best_ask = bb, ba
                mub, mus = self.market_rates()
                if not (mub >= 0 and mus >= 0):
                    raise ValueError(f"{inst}: market_rates() must be >= 0, got {(mub, mus)}")
            rate = lam2 + mub + mus + eb + ea + base * (len(bflat) + len(aflat))
            if ei >= len(exps):
                exps, ei = rng.standard_exponential(batch).tolist(), 0
            tn = t + exps[ei] / rate
            ei += 1
        self.best_bid, self.best_ask = bb, ba
        self._exps, self._ei, self._unis, self._ui = exps, ei, unis, ui
        self._lsz, self._li, self._msz, self._mi = lsz, li, msz, mi
        self._mub, self._mus, self._eb, self._ea = mub, mus, eb, ea
        self._t_next, self._R = tn, rate
        st = self.stats
        st["limit"] += n_lim
        st["cancel"] += n_can
        st["null"] += n_null
        st["market"] += n_mkt


def _ticks_between(book: dict[int, list], lo: int, hi: int) -> list[int]:
    """The ticks in ``[lo, hi)`` that have a level (ascending)."""
    if hi - lo > 64:  # a big jump: cheaper to look at the levels than at the ticks
        return sorted(t for t in book if lo <= t < hi)
    return [t for t in range(lo, hi) if t in book]


def _scan(book: dict[int, list], start: int, step: int) -> int:
    """The first tick from ``start`` (moving by ``step``) that has a level; book not empty."""
    t = start + step
    while t not in book:
        t += step
    return t


def check_grid(price: str, step: Decimal) -> bool:
    """True if ``price`` (a decimal string) is a whole multiple of ``step``, in OKX's shortest
    form (what every emitted price and size must be).

    >>> check_grid("60000.1", Decimal("0.1")), check_grid("60000.10", Decimal("0.1"))
    (True, False)
    >>> check_grid("0.015", Decimal("0.01"))
    False
    """
    d = Decimal(price)
    return format_decimal(d) == price and d % step == 0
