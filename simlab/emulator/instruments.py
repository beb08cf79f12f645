"""The emulator's default instruments: OKX's grid (tick, lot, minimum size) and a price level.

Tick and lot sizes are OKX's (:data:`simlab.okx.instruments.KNOWN_INSTRUMENTS`, from the
2022 REST capture of ``/api/v5/public/instruments``); the price level only sets where the
synthetic book starts, and ``size_unit`` the scale of its orders: each order is a small
whole number of units (see :class:`simlab.emulator.cst.CSTParams`), so sizes are exact
multiples of ``lotSz`` and at least ``minSz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from simlab.okx.instruments import KNOWN_INSTRUMENTS

from .source import Instrument


@dataclass(frozen=True, slots=True)
class SimInstrument:
    """An OKX instrument plus where its synthetic market sits.

    ``price`` is the reference price the initial book is built around (rounded down to the
    tick grid); ``size_unit`` is the size of one order unit, in the instrument's size
    currency (base currency for spot, contracts for swaps): a multiple of ``lot_sz`` and at
    least ``min_sz``.

    >>> s = DEFAULT_INSTRUMENTS["BTC-USDT"]
    >>> s.inst_id, s.instrument.tick_sz, s.price, s.size_unit
    ('BTC-USDT', '0.1', '60000', '0.01')
    """

    instrument: Instrument
    price: str
    size_unit: str

    @property
    def inst_id(self) -> str:
        return self.instrument.inst_id

    def __post_init__(self) -> None:
        inst = self.instrument
        tick, lot, mn = (_positive(inst.tick_sz, "tick_sz", inst.inst_id),
                         _positive(inst.lot_sz, "lot_sz", inst.inst_id),
                         _positive(inst.min_sz, "min_sz", inst.inst_id))
        price = _positive(self.price, "price", inst.inst_id)
        unit = _positive(self.size_unit, "size_unit", inst.inst_id)
        if price < 10 * tick:
            raise ValueError(f"{inst.inst_id}: price {self.price} must be at least 10 ticks "
                             f"(tick_sz {inst.tick_sz})")
        if unit % lot or unit < mn:
            raise ValueError(f"{inst.inst_id}: size_unit {self.size_unit} must be a multiple of "
                             f"lot_sz {inst.lot_sz} and at least min_sz {inst.min_sz}")


def _positive(value: str, name: str, inst_id: str) -> Decimal:
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{inst_id}: {name} must be a decimal string, got {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"{inst_id}: {name} must be a positive decimal, got {value!r}")
    return d


#: Where each default market starts: reference price and order unit. Sizes: 0.01 BTC (about
#: 600 USDT), 0.1 ETH (about 300 USDT) and 1 contract (0.01 BTC) per order unit, so the
#: three books carry comparable notional.
DEFAULT_MARKETS = {"BTC-USDT": ("60000", "0.01"), "ETH-USDT": ("3000", "0.1"),
                   "BTC-USDT-SWAP": ("60000", "1")}
#: The default instruments, by instId: OKX's facts (:data:`~simlab.okx.instruments.
#: KNOWN_INSTRUMENTS`) and where the synthetic market sits (:data:`DEFAULT_MARKETS`).
DEFAULT_INSTRUMENTS: dict[str, SimInstrument] = {
    inst_id: SimInstrument(Instrument.from_metadata(KNOWN_INSTRUMENTS[inst_id]), price=price,
                           size_unit=unit)
    for inst_id, (price, unit) in DEFAULT_MARKETS.items()
}


def get_instrument(inst_id: str) -> SimInstrument:
    """The default spec of ``inst_id``; ValueError naming the known ones otherwise.

    >>> get_instrument("ETH-USDT").instrument.lot_sz
    '0.000001'
    """
    try:
        return DEFAULT_INSTRUMENTS[inst_id]
    except KeyError:
        known = sorted(DEFAULT_INSTRUMENTS)
        raise ValueError(f"unknown instrument {inst_id!r}: the emulator knows {known}; "
                         f"pass a SimInstrument for others") from None
