"""Walk-the-book slippage: what a market order costs against the visible book.

Sign and units: slippage is POSITIVE WHEN IT IS A COST (a buy filled above the reference
price, a sell below it), in quote currency (``slippage_quote``) and in basis points of the
reference notional (``slippage_bps``). The reference is the mid (default) or the best price
on the side the order consumes (best ask for a buy, best bid for a sell).

:func:`slippage` is the dual-mode arithmetic (floats per tick or arrays per batch, bitwise
identical; see :mod:`simlab.models._dual`) from what was filled; :func:`walk_slippage`
walks a live :class:`~simlab.book.L2Book` (or anything with its ``walk``/``mid``/
``best_bid``/``best_ask``) and says when the book is too thin: ``complete`` is False and
``shortfall`` is what is missing; nothing is extrapolated beyond the visible levels.

>>> from simlab.book import L2Book
>>> b = L2Book("BTC-USDT")
>>> b.apply_snapshot([["99", "5"]], [["101", "1"], ["102", "1"]])
>>> s = walk_slippage(b, "buy", base=2)
>>> s.avg_price, s.slippage_quote, s.slippage_bps, s.complete
(101.5, 3.0, 150.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, NamedTuple

import numpy as np

from ._dual import Dual, check_range, coerce, quiet, safe_div, where


class SlippageCost(NamedTuple):
    """Average fill price and slippage (quote, bps; positive = cost): floats or arrays.

    >>> avg, quote, bps = slippage(4.0, 397.0, 100.0, "sell")
    >>> avg, quote, bps
    (99.25, 3.0, 75.0)
    """

    avg_price: Dual
    slippage_quote: Dual
    slippage_bps: Dual


_SIGNS = {"buy": 1.0, "sell": -1.0}


def _side_sign(side: Any) -> Dual:
    """+1.0 for buys, -1.0 for sells: from "buy"/"sell" or +1/-1, or an array of either."""
    if isinstance(side, str):
        try:
            return _SIGNS[side]
        except KeyError:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}") from None
    a = np.asarray(side)
    if a.dtype.kind in "USO":
        out = np.where(a == "buy", 1.0, np.where(a == "sell", -1.0, np.nan))
    elif a.dtype.kind in "iuf":
        out = np.where(a == 1, 1.0, np.where(a == -1, -1.0, np.nan))
    else:
        out = np.full(a.shape, np.nan)
    if np.isnan(out).any():
        bad = a.reshape(-1)[int(np.flatnonzero(np.isnan(out))[0])].item()
        raise ValueError(f"side must be 'buy'/'sell' or +1/-1, got {bad!r}")
    return float(out) if out.ndim == 0 else out


def slippage(filled_base: Dual, filled_quote: Dual, mid: Dual, side: Any) -> SlippageCost:
    """Slippage of fills against a reference price ``mid``, dual-mode.

    ``avg_price = filled_quote / filled_base``; ``slippage_quote = (avg - mid) * filled_base``
    for buys, ``(mid - avg) * filled_base`` for sells; ``slippage_bps = slippage_quote /
    (mid * filled_base) * 1e4``. All NaN where nothing was filled. ``side`` is ``"buy"``/
    ``"sell"`` (or +1/-1), or an array of them; negative fills raise ValueError.

    >>> slippage(2.0, 203.0, 100.0, "buy")
    SlippageCost(avg_price=101.5, slippage_quote=3.0, slippage_bps=150.0)
    >>> slippage(np.array([2.0, 0.0]), np.array([197.0, 0.0]), 100.0, "sell").slippage_bps
    array([150.,  nan])
    """
    fb, fq, mid = coerce(filled_base=filled_base, filled_quote=filled_quote, mid=mid)
    check_range("filled_base", fb, lo=0.0)
    check_range("filled_quote", fq, lo=0.0)
    sign = _side_sign(side)
    with quiet(fb, fq, mid, sign):
        avg = safe_div(fq, fb)
        slip = where(sign > 0, avg - mid, mid - avg) * fb
        return SlippageCost(avg, slip, safe_div(slip, mid * fb) * 1e4)


@dataclass(frozen=True, slots=True)
class Slippage:
    """A market order walked through the book, and its slippage against ``ref_price``.

    ``requested`` and ``shortfall`` are in ``unit``: ``"base"`` (base currency, e.g. BTC,
    also for swaps) or ``"quote"`` (quote notional, e.g. USDT). ``filled_base`` is in base
    currency and ``filled_quote`` in quote currency (contracts already times ``ct_val``).
    ``ref`` is ``"mid"`` or ``"best"``; ``slippage_quote``/``slippage_bps`` are positive for
    a cost and NaN when nothing was filled or the reference price is missing (NaN mid on a
    one-sided book). ``complete`` is False when the visible book could not fill the order;
    the fill figures are then what it could give, and ``shortfall`` what is left.

    >>> from simlab.book import L2Book
    >>> b = L2Book(); b.apply_snapshot([["99", "1"]], [["101", "1"]])
    >>> s = walk_slippage(b, "buy", base=3, ref="best")
    >>> s.complete, s.shortfall, s.filled_base, s.slippage_quote
    (False, 2.0, 1.0, 0.0)
    """

    side: str
    requested: float
    unit: str
    filled_base: float
    filled_quote: float
    avg_price: float
    ref: str
    ref_price: float
    slippage_quote: float
    slippage_bps: float
    levels: int
    complete: bool
    shortfall: float


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _mul(a: float, b: float) -> float:
    """``a * b`` on the decimals of their shortest reprs: 30 contracts x 0.01 is 0.3."""
    if b == 1.0:
        return a
    with localcontext() as ctx:
        ctx.prec = 60
        return float(_dec(a) * _dec(b))


def _div(a: float, b: float) -> float:
    """``a / b`` on decimals: 0.3 BTC / 0.01 is 30 contracts, not 29.999999999999996."""
    if b == 1.0:
        return a
    with localcontext() as ctx:
        ctx.prec = 60
        return float(_dec(a) / _dec(b))


def _positive(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {v!r}") from None
    if isinstance(v, str | bool) or not (f > 0 and math.isfinite(f)):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return f


def walk_slippage(book: Any, side: str, base: float | None = None, quote: float | None = None,
                  ct_val: float = 1.0, ref: str = "mid") -> Slippage:
    """Walk ``book`` with a market order of ``base`` base units or ``quote`` quote notional and
    measure its slippage against the mid (``ref="mid"``) or the best price (``ref="best"``).

    The book's sizes are in its own units: contracts for swaps and futures. Pass ``ct_val``
    (the contract value in base units, OKX's ``ctVal``) and give ``base`` in base currency:
    it is converted to contracts, and the fills back to base and quote currency. Spot books
    use the default ``ct_val=1``.

    >>> from simlab.book import L2Book
    >>> b = L2Book("BTC-USDT-SWAP")     # sizes in contracts of 0.01 BTC
    >>> b.apply_snapshot([["59990", "100"]], [["60010", "20"], ["60040", "100"]])
    >>> s = walk_slippage(b, "buy", base=0.5, ct_val=0.01)     # 50 contracts
    >>> s.filled_base, s.filled_quote, s.avg_price, s.levels, s.slippage_quote
    (0.5, 30014.0, 60028.0, 2, 14.0)
    >>> walk_slippage(b, "sell", base=2, ct_val=0.01).shortfall   # only 1 BTC of bids
    1.0
    """
    if side not in _SIGNS:
        raise ValueError(f"side must be the taker side 'buy' or 'sell', got {side!r}")
    if ref not in ("mid", "best"):
        raise ValueError(f"ref must be 'mid' or 'best', got {ref!r}")
    if (base is None) == (quote is None):
        raise ValueError("give exactly one of base= or quote=")
    unit = "base" if base is not None else "quote"
    want = _positive(unit, base if base is not None else quote)
    ct = _positive("ct_val", ct_val)
    book_want = _div(want, ct)
    fill = book.walk(side, base=book_want) if unit == "base" else book.walk(side, quote=book_want)
    fb, fq = _mul(fill.filled_base, ct), _mul(fill.filled_quote, ct)
    best = book.best_ask if side == "buy" else book.best_bid
    ref_price = book.mid if ref == "mid" else best
    cost = slippage(fb, fq, ref_price, side)
    return Slippage(side, want, unit, fb, fq, cost.avg_price, ref, ref_price,
                    cost.slippage_quote, cost.slippage_bps, fill.levels, fill.complete,
                    0.0 if fill.complete else _mul(fill.shortfall, ct))


__all__ = ["Slippage", "SlippageCost", "slippage", "walk_slippage"]
