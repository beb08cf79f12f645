"""The per-tick cost formula, written once for both evaluation modes.

:func:`tick_costs` turns what the book says at a tick (top of book, and the walk of the
order through it) into slippage, fees, impact and net cost. Live it is called once per tick
with Python floats; in replay once per batch with float64 arrays. It uses only dual-mode
arithmetic (:mod:`simlab.models._dual`), so both give bitwise identical numbers: that is
what makes a replay reproduce exactly what was computed live.

Definitions (quote currency; bps are of ``mid * filled_base``; positive = cost):

- ``slippage``: the walk's average price against the mid, times the filled size. For a limit
  order posted at our best price: with probability ``p`` it fills passively at that price
  (earning half the spread: ``-(ask - bid)/2`` per unit), else it crosses as a market order.
- ``fee``: ``notional * (p * maker + (1 - p) * taker)``; ``p = 0`` for a market order.
- ``impact``: Almgren-Chriss expected cost of working the order over the impact horizon,
  without its ``epsilon X`` term (the spread and fees, which the two lines above count):
  ``c2 * X^2`` with ``c2`` from :func:`simlab.models.impact.cost_coefficients`.
- ``net``: the sum. ``complete`` is False when the visible book could not fill the order
  (then everything is for the part that could be filled, never extrapolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simlab.models._dual import Dual, safe_div
from simlab.models.fees import FeeRates
from simlab.models.maker_taker import MakerTakerModel

#: Output columns of :func:`tick_costs`, in order.
COST_COLUMNS = ("mid", "spread_bps", "filled_base", "filled_quote", "avg_price", "complete",
                "maker_prob", "slippage_quote", "slippage_bps", "fee_quote", "fee_bps",
                "impact_quote", "impact_bps", "net_quote", "net_bps")


@dataclass(frozen=True)
class CostConstants:
    """Everything per run: order direction and type, contract value, fee rates, the AC
    quadratic coefficient ``c2`` (quote per base unit squared) and the maker/taker model."""

    buy: bool
    limit: bool
    ct_val: float
    rates: FeeRates
    impact_c2: float
    model: MakerTakerModel
    amount: float  # requested, in the walk's unit (book units, or quote / ct_val)


def tick_costs(bid: Dual, ask: Dual, bid_sz: Dual, ask_sz: Dual, walk_base: Dual,
               walk_quote: Dual, remaining: Dual, c: CostConstants,
               features: dict[str, Dual] | None = None,
               maker_prob: Dual | None = None) -> dict[str, Any]:
    """Costs at one tick (floats) or many (arrays); the walk is in the book's size units.

    ``features``: the maker/taker model's inputs when it reads more than the touch (a
    trained model: see :class:`~simlab.sim.pipeline.CostPipeline`); by default the model
    gets ``own_best_size``, ``opp_best_size`` and ``order_size`` from the book.

    The formulas are those of :func:`simlab.models.slippage.slippage` and
    :func:`simlab.models.fees.expected_fee`, inlined because this runs on every live tick
    (the tests check that both give the same bits).

    >>> from simlab.models.maker_taker import QueueShareModel
    >>> c = CostConstants(True, False, 1.0, FeeRates(maker=0.0002, taker=0.0005), 0.0,
    ...                   QueueShareModel(), 2.0)
    >>> r = tick_costs(99.0, 101.0, 1.0, 1.0, 2.0, 203.0, 0.0, c)   # 1 @ 101, 1 @ 102
    >>> r["slippage_quote"], r["fee_quote"], round(r["net_bps"], 3), r["complete"]
    (3.0, 0.1015, 155.075, True)
    """
    # arrays: the models' NaN-on-zero division; floats: the same, without its mode test
    div = safe_div if isinstance(bid, np.ndarray) else _div_float
    ct = c.ct_val
    mid = (bid + ask) * 0.5
    fb = walk_base * ct
    fq = walk_quote * ct
    avg = div(fq, fb)
    cross = ((avg - mid) if c.buy else (mid - avg)) * fb
    if c.limit:
        p = (maker_probability(bid_sz, ask_sz, walk_base, c, features) if maker_prob is None
             else maker_prob)
        slip = p * ((bid - ask) * 0.5 * fb) + (1.0 - p) * cross
    else:
        p = mid * 0.0  # 0, NaN where there is no book
        slip = cross
    rates = c.rates
    fee = abs(fq) * (p * rates.maker + (1.0 - p) * rates.taker)
    impact = c.impact_c2 * fb * fb
    net = slip + fee + impact
    ref = mid * fb
    return {
        "mid": mid,
        "spread_bps": div(ask - bid, mid) * 1e4,
        "filled_base": fb,
        "filled_quote": fq,
        "avg_price": avg,
        "complete": remaining <= c.amount * 1e-12,
        "maker_prob": p,
        "slippage_quote": slip,
        "slippage_bps": div(slip, ref) * 1e4,
        "fee_quote": fee,
        "fee_bps": div(fee, ref) * 1e4,
        "impact_quote": impact,
        "impact_bps": div(impact, ref) * 1e4,
        "net_quote": net,
        "net_bps": div(net, ref) * 1e4,
    }


def maker_probability(bid_sz: Dual, ask_sz: Dual, walk_base: Dual, c: CostConstants,
                      features: dict[str, Dual] | None = None) -> Dual:
    """The maker/taker model's fill probability for a limit order: from ``features`` when
    given, else from the touch (our side's and the opposite best size, the order's size).

    >>> from simlab.models.maker_taker import QueueShareModel
    >>> c = CostConstants(True, True, 1.0, FeeRates(maker=0.0002, taker=0.0005), 0.0,
    ...                   QueueShareModel(), 1.0)
    >>> 0.0 < maker_probability(3.0, 1.0, 1.0, c) < 1.0
    True
    """
    own, opp = (bid_sz, ask_sz) if c.buy else (ask_sz, bid_sz)
    if features is None:
        return c.model.predict(own_best_size=own, opp_best_size=opp, order_size=walk_base)
    return c.model.predict(**features)


def _div_float(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan
