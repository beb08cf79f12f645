"""What the emulator serves: a market, in simulated time, that moves books and prints trades.

A :class:`MarketSource` knows nothing of the wire protocol. The emulator's publisher turns
its events into OKX channel messages at each channel's cadence (``books`` every 100 ms when
changed, ``bbo-tbt`` every 10 ms, ...), keeps the seqId chains and checksums, and serves them.

All prices and sizes are strings in OKX's shortest plain decimal form
(:func:`simlab.okx.encode.format_decimal`), multiples of the instrument's tick and lot size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

#: 2026-01-01T00:00:00Z in ms: where the synthetic markets start (never the wall clock).
DEFAULT_START_MS = 1_767_225_600_000


@dataclass(frozen=True, slots=True)
class Instrument:
    """An instrument as ``GET /api/v5/public/instruments`` describes it (strings, as OKX)."""

    inst_id: str
    inst_type: str  # "SPOT", "SWAP" or "FUTURES"
    base_ccy: str
    quote_ccy: str
    tick_sz: str
    lot_sz: str
    min_sz: str
    ct_val: str = ""  # contract value (swaps/futures), in ct_val_ccy
    ct_val_ccy: str = ""
    settle_ccy: str = ""
    ct_type: str = ""  # "linear" / "inverse" for derivatives
    uly: str = ""  # underlying, e.g. "BTC-USDT" for BTC-USDT-SWAP

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> Instrument:
        """The instrument OKX's metadata describes (e.g.
        :data:`simlab.okx.instruments.KNOWN_INSTRUMENTS`).

        >>> from simlab.okx.instruments import KNOWN_INSTRUMENTS
        >>> Instrument.from_metadata(KNOWN_INSTRUMENTS["BTC-USDT-SWAP"]).ct_val
        '0.01'
        """
        g = meta.get
        return cls(meta["instId"], meta["instType"], g("baseCcy", ""), g("quoteCcy", ""),
                   meta["tickSz"], meta["lotSz"], meta["minSz"], ct_val=g("ctVal", ""),
                   ct_val_ccy=g("ctValCcy", ""), settle_ccy=g("settleCcy", ""),
                   ct_type=g("ctType", ""), uly=g("uly", ""))


@dataclass(frozen=True, slots=True)
class LevelChange:
    """The new absolute size of one price level; ``size == "0"`` deletes the level."""

    ts_ms: int
    inst_id: str
    side: str  # "bid" or "ask"
    price: str
    size: str
    count: int  # orders resting at the level


@dataclass(frozen=True, slots=True)
class Print:
    """A trade. ``side`` is the taker's side; ``price`` existed in the book when it printed."""

    ts_ms: int
    inst_id: str
    trade_id: str
    price: str
    size: str
    side: str  # "buy" or "sell"
    count: int = 1  # fills aggregated (OKX aggregates per taker order and price)


Event = LevelChange | Print


class MarketSource(Protocol):
    """A deterministic market: the same construction (seed, parameters) gives the same events.

    ``start_ms`` is the exchange time (ms since the epoch) at which the market starts.
    ``initial_book(inst_id)`` is the book at ``start_ms``: ``(bids, asks)`` best first, levels
    ``[price, size, count]`` as strings. ``advance(until_ms)`` returns, in time order, every
    event with ``ts_ms <= until_ms`` not returned before (level changes caused by a trade come
    after that trade's :class:`Print`, with the same ``ts_ms``).
    """

    start_ms: int

    def instruments(self) -> list[Instrument]: ...

    def initial_book(self, inst_id: str) -> tuple[list[list[str]], list[list[str]]]: ...

    def advance(self, until_ms: int) -> list[Event]: ...
