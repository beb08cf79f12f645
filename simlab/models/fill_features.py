"""Features of a passive (maker) fill, computed the same way in training and in use.

A maker/taker model is only as good as the agreement between the features it was trained
on and the features it is given later. :class:`FillFeatureState` is the one implementation
of them: the training set builder (:mod:`simlab.sim.fill_dataset`) and the cost pipeline
(live, per event, and columnar replay) all feed it the same book and trade events in
arrival order and read the features from it, so a model sees in use exactly the numbers
it was fitted on (the tests check this bit for bit).

The features describe a limit order of size ``q`` posted now at our best price (the best
bid for a buy, the best ask for a sell). Sizes are in the book's units (base currency for
spot, contracts for swaps). "Oriented" features are signed so that a positive value pushes
towards a passive fill of *this* order:

- ``queue_ahead``: size at our price, all of it ahead of a new order (``own best size``);
- ``queue_ahead_rel``: ``queue_ahead`` over the size of our side's top ``depth_levels`` levels;
- ``opp_best_size``: size at the opposite best;
- ``imbalance``: touch imbalance oriented to the order, ``(opp - own) / (opp + own)``: the
  usual ``(qb - qa) / (qb + qa)`` for a sell, its negative for a buy (a heavy opposite
  queue predicts a move of the price towards us);
- ``spread_ticks``: ``(ask - bid) / tick size``;
- ``trade_flow``: taker volume that hit our side minus taker volume that hit the other side
  over the last ``lookback_ms`` (for a buy: sells minus buys);
- ``ofi``: order-flow imbalance of Cont, Kukanov & Stoikov (2014) summed over the last
  ``lookback_ms`` of book updates, oriented (its negative for a buy: OFI > 0 is buying
  pressure, which moves the price away from a resting bid);
- ``volatility_bps``: realised volatility of the mid over the last ``lookback_ms``,
  ``sqrt(sum r^2)`` of the log returns between book updates, in bps;
- ``size_rel_depth``: ``q`` over our side's top ``depth_levels`` depth.

Windows are on the exchange clock (``ts_ms``); an event leaves the window once it is
``lookback_ms`` old. A book that becomes invalid (a gap) resets the book-derived history:
OFI and returns across a gap would be made up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: Every feature :class:`FillFeatureState` computes, in the order of :meth:`features`.
FILL_FEATURES = ("queue_ahead", "queue_ahead_rel", "opp_best_size", "imbalance",
                 "spread_ticks", "trade_flow", "ofi", "volatility_bps", "size_rel_depth")


@dataclass(frozen=True)
class FeatureParams:
    """How the features are computed: the history window and the depth used for relative
    sizes. Saved with a trained model, so the model is always fed as it was trained.

    >>> FeatureParams().lookback_ms, FeatureParams(depth_levels=10).depth_levels
    (5000, 10)
    """

    lookback_ms: int = 5000
    depth_levels: int = 5

    def __post_init__(self) -> None:
        for name in ("lookback_ms", "depth_levels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")

    def as_dict(self) -> dict[str, int]:
        return {"lookback_ms": self.lookback_ms, "depth_levels": self.depth_levels}


def _drop(q: deque[tuple[int, float]], cut: int, total: float) -> float:
    """Remove the entries at or before ``cut`` from the window; the new running sum."""
    while q and q[0][0] <= cut:
        total -= q.popleft()[1]
    return total if q else 0.0  # an empty window sums to exactly 0: no residue carried on


def _nan_div(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan


class FillFeatureState:
    """Rolling state of one instrument's book and trades, giving the fill features.

    Feed it every valid book update (:meth:`on_book`), every trade (:meth:`on_trade`) and
    every loss of the book (:meth:`on_invalid`; a resync snapshot calls :meth:`reset_book`
first), in arrival order; :meth:`features` then
    gives the features of an order posted now. Plain Python floats throughout, so the
    numbers do not depend on how the events were obtained.

    >>> s = FillFeatureState(FeatureParams(lookback_ms=1000), tick_size=0.5)
    >>> s.on_book(0, 100.0, 2.0, 101.0, 6.0, 10.0, 12.0)
    >>> s.on_trade(100, 100.0, 1.5, buy=False)   # a taker sold 1.5 into the bids
    >>> f = s.features(100, buy=True, order_size=1.0)
    >>> f["queue_ahead"], f["imbalance"], f["spread_ticks"], f["trade_flow"], f["size_rel_depth"]
    (2.0, 0.5, 2.0, 1.5, 0.1)
    >>> s.features(2000, buy=True, order_size=1.0)["trade_flow"]   # the trade left the window
    0.0
    """

    __slots__ = (
        "_flow",
        "_ofi",
        "_ofi_sum",
        "_r2",
        "_r2_sum",
        "_trades",
        "ask",
        "ask_depth",
        "ask_sz",
        "bid",
        "bid_depth",
        "bid_sz",
        "has_book",
        "lookback",
        "params",
        "tick",
    )

    def __init__(self, params: FeatureParams | None = None, *, tick_size: float) -> None:
        if not (isinstance(tick_size, int | float) and math.isfinite(tick_size)
                and tick_size > 0):
            raise ValueError(f"tick_size must be a number > 0, got {tick_size!r}")
        self.params = params or FeatureParams()
        self.lookback = self.params.lookback_ms
        self.tick = float(tick_size)
        self._trades: deque[tuple[int, float]] = deque()  # (ts, buy volume - sell volume)
        self._flow = 0.0
        self.reset_book()

    def reset_book(self) -> None:
        """Forget the book and its history (the trades are kept)."""
        self._ofi: deque[tuple[int, float]] = deque()
        self._r2: deque[tuple[int, float]] = deque()
        self._ofi_sum = self._r2_sum = 0.0
        self.has_book = False
        self.bid = self.bid_sz = self.ask = self.ask_sz = math.nan
        self.bid_depth = self.ask_depth = math.nan

    def on_invalid(self) -> None:
        """The book is no longer known (a gap): history across it would be invented."""
        if self.has_book:
            self.reset_book()

    def on_book(self, ts_ms: int, bid: float, bid_sz: float, ask: float, ask_sz: float,
                bid_depth: float, ask_depth: float) -> None:
        """A valid book state: best prices and sizes, and each side's top-N depth."""
        # expire on every event, so the running sums depend only on the events, not on
        # when (or how often) the features are read: training and use round alike
        self._expire(ts_ms)
        if self.has_book:
            pb, qb, pa, qa = self.bid, self.bid_sz, self.ask, self.ask_sz
            # Cont, Kukanov & Stoikov (2014), eq. (2)
            e = ((bid_sz if bid >= pb else 0.0) - (qb if bid <= pb else 0.0)
                 - (ask_sz if ask <= pa else 0.0) + (qa if ask >= pa else 0.0))
            if e == e:  # an empty side gives NaN: no contribution
                self._ofi.append((ts_ms, e))
                self._ofi_sum += e
            m0, m1 = pb + pa, bid + ask
            if m0 > 0 and m1 > 0 and m0 != m1:
                r = math.log(m1 / m0)
                self._r2.append((ts_ms, r * r))
                self._r2_sum += r * r
        self.bid, self.bid_sz, self.ask, self.ask_sz = bid, bid_sz, ask, ask_sz
        self.bid_depth, self.ask_depth = bid_depth, ask_depth
        self.has_book = True

    def on_trade(self, ts_ms: int, price: float, size: float, buy: bool) -> None:
        """A trade; ``buy`` when the taker bought (lifted the asks)."""
        self._expire(ts_ms)
        v = size if buy else -size
        self._trades.append((ts_ms, v))
        self._flow += v

    def _expire(self, now: int) -> None:
        # unrolled: this runs on every event, and nothing is due most of the time
        cut = now - self.lookback
        q = self._trades
        if q and q[0][0] <= cut:
            self._flow = _drop(q, cut, self._flow)
        q = self._ofi
        if q and q[0][0] <= cut:
            self._ofi_sum = _drop(q, cut, self._ofi_sum)
        q = self._r2
        if q and q[0][0] <= cut:
            self._r2_sum = _drop(q, cut, self._r2_sum)

    def features(self, ts_ms: int, buy: bool, order_size: float) -> dict[str, float]:
        """The features (:data:`FILL_FEATURES`) of an order of ``order_size`` posted now at
        our best price; NaN where the book does not define them."""
        self._expire(ts_ms)
        if buy:
            own, opp, depth, sign = self.bid_sz, self.ask_sz, self.bid_depth, -1.0
        else:
            own, opp, depth, sign = self.ask_sz, self.bid_sz, self.ask_depth, 1.0
        return {
            "queue_ahead": own,
            "queue_ahead_rel": _nan_div(own, depth),
            "opp_best_size": opp,
            "imbalance": _nan_div(opp - own, opp + own),
            "spread_ticks": (self.ask - self.bid) / self.tick,
            "trade_flow": sign * self._flow + 0.0,  # + 0.0: no -0.0
            "ofi": sign * self._ofi_sum + 0.0,
            "volatility_bps": math.sqrt(self._r2_sum) * 1e4 if self._r2_sum > 0 else 0.0,
            "size_rel_depth": _nan_div(order_size, depth),
        }


__all__ = ["FILL_FEATURES", "FeatureParams", "FillFeatureState"]
