"""One instrument's L2 order book, exact and fast.

Levels are keyed by :class:`decimal.Decimal` parsed from the wire price string: equal prices
are equal keys whatever their spelling, there is no binary rounding, and the C-accelerated
``decimal`` parses as fast as ``float`` does. Each side keeps a dict ``price -> wire level``
and a sorted list of its keys (``bisect``), so best prices, top-N and the checksum need no
sorting. The wire level (``[price, size, ..., count]``) is kept as received, so the OKX
checksum is computed over the exact strings the exchange sent.

Sizes are absolute (base currency for spot, contracts for swaps/futures); a size of zero
deletes the level. Quantities returned by queries are floats in those same units.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

from simlab.okx.checksum import CHECKSUM_DEPTH, okx_checksum

_D = Decimal
_ZERO = Decimal(0)
_INF = Decimal("Infinity")
_FINF = math.inf


class BookError(ValueError):
    """A level that cannot be applied (non-numeric or negative price or size)."""


class TopLevels(NamedTuple):
    """Top-N levels, best first, as float64 arrays."""

    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


@dataclass(frozen=True, slots=True)
class Fill:
    """Result of walking the book with a market order.

    ``side`` is the taker's side (``"buy"`` lifts asks, ``"sell"`` hits bids). ``filled_base``
    and ``filled_quote`` are what the visible book can give; ``complete`` is False when the
    book is too thin, in which case ``shortfall`` says how much of the request (in the
    requested unit) is left. ``avg_price`` is NaN when nothing could be filled.
    """

    side: str
    requested: float
    unit: str
    filled_base: float
    filled_quote: float
    avg_price: float
    best_price: float
    worst_price: float
    levels: int
    complete: bool
    shortfall: float

    @property
    def slippage_bps(self) -> float:
        """Average fill price against the best price, in basis points, positive = worse."""
        if not self.filled_base or not self.best_price:
            return math.nan
        sign = 1.0 if self.side == "buy" else -1.0
        return sign * (self.avg_price - self.best_price) / self.best_price * 1e4


def _parse(levels: Iterable[Sequence[str]], where: str) -> list[tuple[Decimal, Sequence, float]]:
    """Validate levels before anything is applied, so a bad level leaves the book untouched."""
    out = []
    for lvl in levels:
        try:
            px, sz = lvl[0], lvl[1]
            if type(px) is not str or type(sz) is not str:
                raise TypeError
            k = _D(px)
            f = float(sz)
            if not (_ZERO < k < _INF) or not (0.0 <= f < _FINF):
                raise ValueError
        except (TypeError, ValueError, InvalidOperation, IndexError, KeyError):
            raise BookError(
                f"{where} level must be [price, size, ...] with decimal strings, price > 0 and "
                f"size >= 0, got {lvl!r}"
            ) from None
        out.append((k, lvl, f))
    return out


class _Side:
    __slots__ = ("keys", "levels")

    def __init__(self) -> None:
        self.levels: dict[Decimal, Sequence] = {}
        self.keys: list[Decimal] = []  # ascending

    def replace(self, parsed: list[tuple[Decimal, Sequence, float]]) -> None:
        self.levels = {k: lvl for k, lvl, f in parsed if f}
        self.keys = sorted(self.levels)

    def update(self, parsed: list[tuple[Decimal, Sequence, float]]) -> None:
        levels, keys = self.levels, self.keys
        for k, lvl, f in parsed:
            if f:
                if k not in levels:
                    insort(keys, k)
                levels[k] = lvl
            elif levels.pop(k, None) is not None:
                del keys[bisect_left(keys, k)]


def _count(lvl: Sequence) -> int:
    return int(lvl[-1]) if len(lvl) >= 3 else 0


class L2Book:
    """An L2 order book for one instrument.

    >>> b = L2Book("BTC-USDT")
    >>> b.apply_snapshot(bids=[["99.5", "2", "0", "1"], ["99", "5", "0", "3"]],
    ...                  asks=[["100", "1", "0", "1"], ["100.5", "4", "0", "2"]])
    >>> b.best_bid, b.best_ask, b.mid, b.spread
    (99.5, 100.0, 99.75, 0.5)
    >>> b.apply_update(bids=[], asks=[["100", "0", "0", "0"]])  # delete the best ask
    >>> b.best_ask
    100.5
    >>> f = b.walk("buy", base=3.0)
    >>> f.avg_price, f.complete
    (100.5, True)
    """

    __slots__ = ("_asks", "_bids", "inst_id")

    def __init__(self, inst_id: str = "") -> None:
        self.inst_id = inst_id
        self._bids = _Side()
        self._asks = _Side()

    # -- mutation ---------------------------------------------------------------------------
    def apply_snapshot(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Replace the whole book. Levels are ``[price, size, ..., count]`` wire lists."""
        pb = _parse(bids, "bid")
        pa = _parse(asks, "ask")
        self._bids.replace(pb)
        self._asks.replace(pa)

    def apply_update(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Apply absolute level sizes; size 0 deletes the level. All-or-nothing on bad input."""
        pb = _parse(bids, "bid")
        pa = _parse(asks, "ask")
        self._bids.update(pb)
        self._asks.update(pa)

    def clear(self) -> None:
        self._bids = _Side()
        self._asks = _Side()

    # -- top of book ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._bids.keys) + len(self._asks.keys)

    @property
    def n_bids(self) -> int:
        return len(self._bids.keys)

    @property
    def n_asks(self) -> int:
        return len(self._asks.keys)

    @property
    def best_bid(self) -> float:
        """Best bid price, NaN when the side is empty."""
        k = self._bids.keys
        return float(k[-1]) if k else math.nan

    @property
    def best_ask(self) -> float:
        """Best ask price, NaN when the side is empty."""
        k = self._asks.keys
        return float(k[0]) if k else math.nan

    @property
    def best_bid_size(self) -> float:
        k = self._bids.keys
        return float(self._bids.levels[k[-1]][1]) if k else math.nan

    @property
    def best_ask_size(self) -> float:
        k = self._asks.keys
        return float(self._asks.levels[k[0]][1]) if k else math.nan

    @property
    def best_bid_decimal(self) -> Decimal | None:
        k = self._bids.keys
        return k[-1] if k else None

    @property
    def best_ask_decimal(self) -> Decimal | None:
        k = self._asks.keys
        return k[0] if k else None

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2.0

    @property
    def spread(self) -> float:
        """Best ask minus best bid, computed exactly then converted to float."""
        b, a = self.best_bid_decimal, self.best_ask_decimal
        return float(a - b) if a is not None and b is not None else math.nan

    @property
    def spread_bps(self) -> float:
        return self.spread / self.mid * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a locked or crossed book: never valid on OKX)."""
        b, a = self._bids.keys, self._asks.keys
        return bool(b) and bool(a) and b[-1] >= a[0]

    # -- levels -----------------------------------------------------------------------------
    def _best_first(self, side: str, n: int | None = None) -> list[Decimal]:
        if side in ("bid", "bids", "sell"):
            keys = self._bids.keys
            return keys[::-1] if n is None else keys[: -n - 1 : -1] if n else []
        if side in ("ask", "asks", "buy"):
            keys = self._asks.keys
            return keys[:] if n is None else keys[:n]
        raise ValueError(f"side must be 'bid' or 'ask' (or taker 'buy'/'sell'), got {side!r}")

    def _levels_of(self, side: str):
        return self._bids.levels if side in ("bid", "bids", "sell") else self._asks.levels

    def levels(self, side: str, n: int | None = None) -> list[tuple[str, str, int]]:
        """Wire levels ``(price, size, order_count)`` best first; ``n=None`` for all."""
        keys = self._best_first(side, n)
        lv = self._levels_of(side)
        return [(lv[k][0], lv[k][1], _count(lv[k])) for k in keys]

    def top(self, n: int = 10) -> TopLevels:
        """Top ``n`` levels of each side as float64 arrays, best first.

        >>> b = L2Book(); b.apply_snapshot([["9", "1"]], [["10", "2"], ["11", "3"]])
        >>> b.top(5).ask_sz
        array([2., 3.])
        """
        out = []
        for side in ("bid", "ask"):
            keys = self._best_first(side, n)
            lv = self._levels_of(side)
            out.append(np.array([float(k) for k in keys], dtype=np.float64))
            out.append(np.array([float(lv[k][1]) for k in keys], dtype=np.float64))
        return TopLevels(*out)

    def depth(self, side: str, levels: int | None = None, bps: float | None = None,
              notional: bool = False) -> float:
        """Resting size on one side within ``levels`` levels or within ``bps`` of the mid.

        Returns base units (or quote notional with ``notional=True``). With neither limit,
        the whole side.

        >>> b = L2Book(); b.apply_snapshot([["99", "1"], ["98", "2"]], [["101", "3"], ["120", "4"]])
        >>> b.depth("ask", levels=1), b.depth("bid", bps=150), b.depth("ask", bps=150)
        (3.0, 3.0, 3.0)
        """
        if levels is not None and bps is not None:
            raise ValueError("give levels or bps, not both")
        keys = self._best_first(side, levels)
        lv = self._levels_of(side)
        if bps is not None:
            if bps < 0:
                raise ValueError(f"bps must be >= 0, got {bps}")
            mid = self.mid
            if math.isnan(mid):
                return 0.0
            if side in ("bid", "bids", "sell"):
                limit = _D(repr(mid * (1 - bps / 1e4)))
                keys = self._bids.keys[bisect_left(self._bids.keys, limit):]
            else:
                limit = _D(repr(mid * (1 + bps / 1e4)))
                keys = self._asks.keys[: bisect_right(self._asks.keys, limit)]
        if notional:
            return float(sum(float(k) * float(lv[k][1]) for k in keys))
        return float(sum(float(lv[k][1]) for k in keys))

    # -- walking the book -------------------------------------------------------------------
    def walk(self, side: str, base: float | None = None, quote: float | None = None) -> Fill:
        """Fill a market order against the visible book.

        ``side`` is the taker side: ``"buy"`` consumes asks, ``"sell"`` consumes bids. Give
        exactly one of ``base`` (quantity in base units / contracts) or ``quote`` (notional in
        quote currency).

        >>> b = L2Book(); b.apply_snapshot([], [["100", "1"], ["101", "2"]])
        >>> f = b.walk("buy", base=2)
        >>> f.avg_price, f.filled_quote, f.levels
        (100.5, 201.0, 2)
        >>> b.walk("buy", base=5).shortfall
        2.0
        """
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be the taker side 'buy' or 'sell', got {side!r}")
        if (base is None) == (quote is None):
            raise ValueError("give exactly one of base= or quote=")
        want = float(base if base is not None else quote)
        if not (want > 0 and math.isfinite(want)):
            raise ValueError(f"order size must be a positive finite number, got {want!r}")
        unit = "base" if base is not None else "quote"
        keys = self._best_first(side)
        lv = self._levels_of(side)
        remaining = want
        got_base = got_quote = 0.0
        used = 0
        best = worst = math.nan
        for k in keys:
            if remaining <= 0:
                break
            px = float(k)
            sz = float(lv[k][1])
            take = min(sz, remaining) if unit == "base" else min(sz, remaining / px)
            got_base += take
            got_quote += take * px
            remaining -= take if unit == "base" else take * px
            used += 1
            if used == 1:
                best = px
            worst = px
        # A residue of floating-point dust is not a shortfall.
        tol = 1e-12 * want
        complete = remaining <= tol
        return Fill(side, want, unit, got_base, got_quote,
                    got_quote / got_base if got_base else math.nan,
                    best, worst, used, complete, 0.0 if complete else remaining)

    # -- integrity --------------------------------------------------------------------------
    def checksum(self) -> int:
        """OKX checksum (signed CRC32 of the top 25 levels) of the current book."""
        bk, ak = self._bids.keys, self._asks.keys
        bl, al = self._bids.levels, self._asks.levels
        return okx_checksum([bl[k] for k in bk[: -CHECKSUM_DEPTH - 1 : -1]],
                            [al[k] for k in ak[:CHECKSUM_DEPTH]])

    def __repr__(self) -> str:
        return (f"L2Book({self.inst_id!r}, bids={self.n_bids}, asks={self.n_asks}, "
                f"best={self.best_bid}/{self.best_ask})")
