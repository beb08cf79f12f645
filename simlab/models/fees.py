"""Trading fees, venue-neutral.

Units and signs:

- a rate is a fraction of notional (``0.0005`` = 0.05 % = 5 bps); POSITIVE = A FEE PAID,
  NEGATIVE = A REBATE (only maker rates may be negative);
- notional is in quote currency: ``price * size * ct_val``, where ``size`` is in base units
  (spot) or contracts (swaps, futures) and ``ct_val`` is the contract value in base units
  (OKX's ``ctVal``: 0.01 BTC for BTC-USDT-SWAP; 1 for spot). This is the linear-contract
  formula; inverse (coin-margined) contracts are not covered;
- a fee amount is in quote currency, computed on the absolute notional (buying and selling
  cost the same fee).

The element-wise functions (:func:`notional`, :func:`fee_amount`, :func:`expected_fee`,
:func:`fee_bps`) are dual-mode: Python floats in, a Python float out (live, per tick); numpy
arrays in, an array out (replay, per batch); the two give bitwise identical numbers (see
:mod:`simlab.models._dual`).

Venue rates come from elsewhere: ``FeeRates.of(simlab.okx.fees.fee_rates("VIP1"))`` for OKX's
published tiers, or the account's own rates from ``simlab.okx.fees.parse_trade_fee``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._dual import Dual, check_range, coerce, quiet

#: Rates at or beyond 1 % of notional are rejected as a likely percent/fraction mix-up.
MAX_ABS_RATE = 0.01


def _rate(name: str, v: Any) -> float:
    if isinstance(v, str | bytes | bool):
        raise TypeError(f"{name} rate must be a number (a fraction of notional), got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} rate must be a number (a fraction of notional), "
                        f"got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} rate must be finite, got {v!r}")
    if abs(f) >= MAX_ABS_RATE:
        raise ValueError(f"{name} rate must be a fraction of notional with |rate| < "
                         f"{MAX_ABS_RATE} (0.05 % is 0.0005), got {v!r}")
    return f


@dataclass(frozen=True, slots=True)
class FeeRates:
    """Maker and taker fee rates, fractions of notional; a negative maker rate is a rebate.

    Validated: finite, ``taker >= 0``, ``|rate| < 0.01`` (1 %: larger values are almost
    surely percentages passed as fractions).

    >>> FeeRates(maker=0.0002, taker=0.0005).taker_bps
    5.0
    >>> FeeRates(maker=-0.00002, taker=0.00025).maker < 0   # VIP6 spot maker rebate
    True
    >>> FeeRates(maker=0.02, taker=0.05)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: maker rate must be a fraction of notional with |rate| < 0.01 ... got 0.02
    """

    maker: float
    taker: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker", _rate("maker", self.maker))
        object.__setattr__(self, "taker", _rate("taker", self.taker))
        if self.taker < 0:
            raise ValueError(f"taker rate must be >= 0, got {self.taker!r}")

    @classmethod
    def of(cls, rates: Any) -> FeeRates:
        """``FeeRates`` from any object with ``.maker`` and ``.taker`` (an OKX
        ``OkxFeeRates`` or ``TradeFee.rates``), a ``(maker, taker)`` pair, or a FeeRates.

        >>> from simlab.okx.fees import fee_rates
        >>> FeeRates.of(fee_rates("VIP1"))
        FeeRates(maker=0.00045, taker=0.0005)
        >>> FeeRates.of((0.0002, 0.0005))
        FeeRates(maker=0.0002, taker=0.0005)
        """
        if isinstance(rates, FeeRates):
            return rates
        if hasattr(rates, "maker") and hasattr(rates, "taker"):
            return cls(rates.maker, rates.taker)
        if isinstance(rates, tuple | list) and len(rates) == 2:
            return cls(*rates)
        raise TypeError("rates must have .maker and .taker or be a (maker, taker) pair, "
                        f"got {rates!r}")

    @property
    def maker_bps(self) -> float:
        """The maker rate in basis points."""
        return fee_bps(self.maker)

    @property
    def taker_bps(self) -> float:
        """The taker rate in basis points."""
        return fee_bps(self.taker)


def notional(price: Dual, size: Dual, ct_val: Dual = 1.0) -> Dual:
    """Quote notional ``price * (size * ct_val)``; signed like ``size``. Dual-mode.

    >>> notional(50_000.0, 0.5)                     # spot: 0.5 BTC at 50,000
    25000.0
    >>> notional(60_000.0, 30, ct_val=0.01)         # 30 BTC-USDT-SWAP contracts of 0.01 BTC
    18000.0
    """
    price, size, ct_val = coerce(price=price, size=size, ct_val=ct_val)
    with quiet(price, size, ct_val):
        return price * (size * ct_val)


def fee_amount(notional: Dual, rate: Dual) -> Dual:
    """Fee in quote currency, ``|notional| * rate``: positive = paid, negative = rebate.
    Dual-mode.

    >>> fee_amount(25_000.0, 0.0005)                # VIP1 spot taker
    12.5
    >>> fee_amount(-25_000.0, 0.0005)               # a sell costs the same
    12.5
    """
    notional, rate = coerce(notional=notional, rate=rate)
    with quiet(notional, rate):
        return abs(notional) * rate


def expected_fee(notional: Dual, p_maker: Dual, rates: Any) -> Dual:
    """Fee expected when a share ``p_maker`` of the order fills as maker and the rest as taker:
    ``|notional| * (p * maker + (1 - p) * taker)``. ``rates`` is a :class:`FeeRates` (or
    anything with ``.maker`` and ``.taker``). Dual-mode; ``p_maker`` outside [0, 1] raises,
    NaN gives NaN.

    >>> expected_fee(10_000.0, 0.25, FeeRates(maker=0.0002, taker=0.0005))
    4.25
    """
    notional, p, maker, taker = coerce(notional=notional, p_maker=p_maker, maker=rates.maker,
                                       taker=rates.taker)
    check_range("p_maker", p, lo=0.0, hi=1.0)
    with quiet(notional, p, maker, taker):
        return abs(notional) * (p * maker + (1.0 - p) * taker)


def fee_bps(rate: Dual) -> Dual:
    """A rate in basis points (``rate * 1e4``). Dual-mode.

    >>> fee_bps(0.0005), fee_bps(-0.00002)
    (5.0, -0.2)
    """
    (rate,) = coerce(rate=rate)
    with quiet(rate):
        return rate * 1e4


__all__ = ["MAX_ABS_RATE", "FeeRates", "expected_fee", "fee_amount", "fee_bps", "notional"]
