"""Market-order flow that follows the touch imbalance: a CST market where fills are likelier
for quotes on the side the imbalance points at.

In the plain CST model (:mod:`simlab.emulator.cst`) market buys and sells arrive at ``mu/2``
each whatever the book looks like. :class:`ImbalanceFlowBook` tilts them with the touch
imbalance ``I = (qb - qa) / (qb + qa)`` (``qb``, ``qa``: lots at the best bid and the best
ask; ``I = 0`` if both are empty):

    buy rate = mu/2 * (1 + beta * I),   sell rate = mu/2 * (1 - beta * I),   -1 <= beta <= 1

so the total stays ``mu`` and neither rate goes negative. When the bid queue is heavier
(``I > 0``) more market buys hit the ask: a passive sell resting at the ask fills more often
and a passive buy at the bid less often; the reverse for ``I < 0``. This is the stylised fact
(the queue imbalance predicts the next trade's direction) built in by construction, so a
maker/taker model trained on such a recording has a known signal to find. ``beta = 0`` is the
plain CST flow.

``beta`` is a class attribute, so the book plugs into
:class:`~simlab.emulator.market.CSTMarket` (which builds every book as ``book_cls(spec,
params, seed, start_ms)``) either as :class:`ImbalanceFlowBook` (``beta = 0.5``) or as
``imbalance_flow(beta)``, a subclass with another ``beta``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .cst import CSTBook, CSTParams
from .instruments import SimInstrument


def check_beta(beta: object) -> float:
    """``beta`` as a float, or ValueError unless it is a number in [-1, 1] (a negative beta
    tilts the flow the other way: against the heavier side).

    >>> check_beta(1), check_beta(0.25)
    (1.0, 0.25)
    >>> check_beta(1.5)
    Traceback (most recent call last):
    ...
    ValueError: imbalance flow beta must be a number in [-1, 1], got 1.5
    """
    if (isinstance(beta, bool) or not isinstance(beta, int | float)
            or not math.isfinite(beta) or not -1.0 <= beta <= 1.0):
        raise ValueError(f"imbalance flow beta must be a number in [-1, 1], got {beta!r}")
    return float(beta)


class ImbalanceFlowBook(CSTBook):
    """A :class:`~simlab.emulator.cst.CSTBook` whose market orders follow the touch imbalance.

    Market buys arrive at ``mu/2 * (1 + beta * I)`` and sells at ``mu/2 * (1 - beta * I)``
    per second, ``I = (qb - qa) / (qb + qa)`` being the imbalance of the lots at the best bid
    and ask (see the module docstring). ``beta`` is the class attribute (0.5 here; other
    values: :func:`imbalance_flow`) unless given to the constructor.

    >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
    >>> b = ImbalanceFlowBook(DEFAULT_INSTRUMENTS["BTC-USDT"], CSTParams(mu=2.0, depth=20),
    ...                       beta=0.9)
    >>> b.bids, b.asks = {100: [3, []]}, {101: [1, []]}   # I = (3 - 1) / (3 + 1) = 0.5
    >>> b.best_bid, b.best_ask = 100, 101
    >>> tuple(round(r, 6) for r in b.market_rates())      # 1 * (1 +- 0.9 * 0.5)
    (1.45, 0.55)
    """

    #: How strongly the flow follows the imbalance, in [-1, 1] (0: the plain CST flow).
    beta: float = 0.5

    def __init__(self, spec: SimInstrument, params: CSTParams | None = None,
                 seed: int | np.random.SeedSequence = 0, start_ms: int = 0, *,
                 beta: float | None = None) -> None:
        # CSTBook.__init__ already calls market_rates (burn-in): set what it reads first.
        self.beta = check_beta(type(self).beta if beta is None else beta)
        self._half_mu = (params or CSTParams()).mu / 2.0
        super().__init__(spec, params, seed, start_ms)

    def market_rates(self) -> tuple[float, float]:
        """Market (buy, sell) orders per second on the current book (see the class example).

        Called after every event: reads only the two best levels.
        """
        lv = self.bids.get(self.best_bid)
        qb = lv[0] if lv is not None else 0
        lv = self.asks.get(self.best_ask)
        qa = lv[0] if lv is not None else 0
        q = qb + qa
        if not q:
            return self._half_mu, self._half_mu
        tilt = self.beta * (qb - qa) / q
        h = self._half_mu
        return h * (1.0 + tilt), h * (1.0 - tilt)

    def imbalance(self) -> float:
        """The touch imbalance ``I`` now, in [-1, 1] (0 if both best levels are empty).

        >>> from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
        >>> -1.0 <= ImbalanceFlowBook(DEFAULT_INSTRUMENTS["ETH-USDT"],
        ...                           CSTParams(depth=20)).imbalance() <= 1.0
        True
        """
        lv = self.bids.get(self.best_bid)
        qb = lv[0] if lv is not None else 0
        lv = self.asks.get(self.best_ask)
        qa = lv[0] if lv is not None else 0
        return (qb - qa) / (qb + qa) if qb + qa else 0.0


@lru_cache(maxsize=64)
def _subclass(beta: float) -> type[ImbalanceFlowBook]:
    name = f"ImbalanceFlowBook_beta_{beta:g}".replace(".", "_").replace("-", "_")
    return type(name, (ImbalanceFlowBook,), {"beta": beta, "__module__": __name__,
                                             "__doc__": f"ImbalanceFlowBook with beta={beta:g}."})


def imbalance_flow(beta: float) -> type[ImbalanceFlowBook]:
    """A :class:`ImbalanceFlowBook` subclass with ``beta`` (the same class for the same
    ``beta``), to pass as ``CSTMarket(book_cls=...)``.

    >>> from simlab.emulator.market import CSTMarket
    >>> cls = imbalance_flow(0.9)
    >>> cls.beta, cls is imbalance_flow(0.9), issubclass(cls, ImbalanceFlowBook)
    (0.9, True, True)
    >>> m = CSTMarket(seed=1, instruments=["BTC-USDT"], book_cls=cls)
    >>> m.book("BTC-USDT").beta
    0.9
    """
    return _subclass(check_beta(beta))
