"""The order a cost run prices at every tick, and the instrument terms it needs.

Units: ``quantity`` is in base currency (``unit="base"``, e.g. BTC) or quote notional
(``unit="quote"``, e.g. USDT). For swaps the book counts contracts; the order is converted
with the contract value (``ctVal``, base units per contract), so results are always in base
and quote units. Fee rates are fractions of notional (0.0005 = 5 bps; negative = rebate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simlab.models.fees import FeeRates
from simlab.okx.fees import fee_rates as okx_fee_rates
from simlab.okx.instruments import contract_terms

SIDES = ("buy", "sell")
UNITS = ("base", "quote")
ORDER_TYPES = ("market", "limit")
#: How an order's size is named in messages, by ``unit``: the CLI's ``--notional`` and
#: ``--quantity``, a sweep's ``notional`` and ``quantity``.
SIZE_NAMES = {"quote": "notional (quantity in quote currency)",
              "base": "quantity (in base currency)"}


def check_size(value: Any, what: str) -> float:
    """``value`` as a float when it is a finite number > 0, else ValueError naming ``what``
    (the flag or key the user typed).

    >>> check_size(5, "--notional")
    5.0
    >>> check_size(-100.0, "--notional")
    Traceback (most recent call last):
    ...
    ValueError: --notional must be a finite number > 0, got -100.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def order_size(notional: Any = None, quantity: Any = None, *,
               names: tuple[str, str] = ("notional", "quantity")) -> tuple[float, str]:
    """``(quantity, unit)`` of an order sized by exactly one of ``notional`` (quote
    currency) and ``quantity`` (base currency), checked; errors name the input by
    ``names`` (e.g. ``("--notional", "--quantity")`` on the command line).

    >>> order_size(notional=1000)
    (1000.0, 'quote')
    >>> order_size(notional=-100, names=("--notional", "--quantity"))
    Traceback (most recent call last):
    ...
    ValueError: --notional must be a finite number > 0, got -100
    """
    if (notional is None) == (quantity is None):
        raise ValueError(f"give the order size as {names[0]} (quote) or {names[1]} (base), "
                         f"exactly one; got {names[0]}={notional!r}, {names[1]}={quantity!r}")
    if notional is not None:
        return check_size(notional, names[0]), "quote"
    return check_size(quantity, names[1]), "base"


@dataclass(frozen=True)
class OrderSpec:
    """What to price: ``side`` buy/sell, ``quantity`` > 0 in ``unit`` (base or quote),
    ``order_type`` market (crosses now) or limit (posted at our best price; fills passively
    with the maker/taker model's probability, else crosses), ``fee_tier`` an OKX tier name
    (``Lv1``, ``VIP1`` ...) or ``fee_rates`` given directly (e.g. from the account's
    fee endpoint), which wins.

    >>> OrderSpec("BTC-USDT", "buy", 100.0, "quote", fee_tier="VIP1").fees("SPOT").taker
    0.0005
    >>> OrderSpec("BTC-USDT", "buy", -100, "quote")
    Traceback (most recent call last):
    ...
    ValueError: notional (quantity in quote currency) must be a finite number > 0, got -100
    """

    inst: str
    side: str
    quantity: float
    unit: str = "quote"
    order_type: str = "market"
    fee_tier: str = "Lv1"
    fee_rates: FeeRates | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inst, str) or not self.inst:
            raise ValueError(f"inst must be an instrument id like 'BTC-USDT', got {self.inst!r}")
        if self.side not in SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be 'base' or 'quote', got {self.unit!r}")
        # a quote-sized order is what the CLI and sweeps call the notional: say that word
        what = SIZE_NAMES[self.unit]
        object.__setattr__(self, "quantity", check_size(self.quantity, what))
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"order_type must be 'market' or 'limit', got {self.order_type!r}")

    @property
    def buy(self) -> bool:
        return self.side == "buy"

    def fees(self, inst_type: str) -> FeeRates:
        """The fee rates: ``fee_rates`` if given, else the OKX tier table for ``inst_type``
        (raises naming the tier and the known ones)."""
        if self.fee_rates is not None:
            return self.fee_rates
        r = okx_fee_rates(self.fee_tier, inst_type)
        return FeeRates(maker=r.maker, taker=r.taker)

    def as_dict(self) -> dict[str, Any]:
        d = {"inst": self.inst, "side": self.side, "quantity": self.quantity, "unit": self.unit,
             "order_type": self.order_type, "fee_tier": self.fee_tier}
        if self.fee_rates is not None:
            d["fee_rates"] = {"maker": self.fee_rates.maker, "taker": self.fee_rates.taker}
        return d


@dataclass(frozen=True)
class Instrument:
    """What the cost run needs to know about the instrument (venue-neutral)."""

    inst: str
    inst_type: str
    ct_val: float
    tick_sz: float

    @classmethod
    def from_metadata(cls, inst: str, meta: dict[str, Any] | None,
                      ct_val: float | None = None) -> Instrument:
        """From a recording's or the live source's metadata; ``ct_val`` overrides.

        >>> Instrument.from_metadata("BTC-USDT-SWAP", {"instType": "SWAP"}, ct_val=0.01).ct_val
        0.01
        """
        if ct_val is not None:
            if not (isinstance(ct_val, (int, float)) and math.isfinite(ct_val) and ct_val > 0):
                raise ValueError(f"ct_val must be > 0, got {ct_val!r}")
            meta = {**(meta or {}), "ctVal": str(ct_val)}
        t = contract_terms(inst, meta)
        return cls(inst, t.inst_type, t.ct_val, t.tick_sz)
