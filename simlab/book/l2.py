"""One instrument's L2 order book, exact and fast.

Prices are keyed by their exact decimal value (no binary rounding: ``"100"`` and
``"100.0"`` are the same level, ``0.1 + 0.2`` surprises cannot happen), and each level keeps
the wire strings it arrived with, so the OKX checksum is computed over exactly what the
exchange sent. Sizes are absolute (base currency for spot, contracts for swaps and
futures); a size of zero deletes the level. Queries return floats in those units.

The work is done by a core: the C one in ``simlab._native`` when it is active (the default,
see :mod:`simlab.core`), else the pure-Python reference in :mod:`simlab.book._pybook`. Both
behave identically; pick one with ``L2Book(impl="python")``, or the pure-Python core for
all of simlab with the environment variable ``SIMLAB_PURE_PYTHON=1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import NamedTuple

import numpy as np

from simlab import core

from ._pybook import PyBook
from .errors import BookError

_native = core.native()
CBook = _native.Book if _native is not None else None

#: Book cores available here, by name ("c" only when the C core is active).
IMPLS: dict[str, type] = {"python": PyBook, **({"c": CBook} if CBook is not None else {})}


def default_impl() -> str:
    """``"c"`` when the C core is active (:func:`simlab.core.native`), else ``"python"``.

    >>> default_impl() == ("c" if "c" in IMPLS else "python")
    True
    """
    return "c" if CBook is not None else "python"


class TopLevels(NamedTuple):
    """Top-N levels, best first, as float64 arrays."""

    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


@dataclass(frozen=True, slots=True)
class Fill:
    """Result of walking the book with a market order.

    ``side`` is the taker's side (``"buy"`` lifts asks, ``"sell"`` hits bids); ``unit`` says
    whether ``requested`` and ``shortfall`` are in base units or quote notional.
    ``filled_base``/``filled_quote`` are what the visible book gives; ``complete`` is False
    when it is too thin, ``shortfall`` being what is left. ``avg_price`` is NaN when nothing
    could be filled.
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
        """Average fill price against the best price, in basis points; positive = worse."""
        if not self.filled_base:
            return math.nan
        sign = 1.0 if self.side == "buy" else -1.0
        return sign * (self.avg_price - self.best_price) / self.best_price * 1e4


_Q18 = Decimal(1).scaleb(-18)
_BID_SIDES = {"bid": False, "bids": False, "sell": False, "ask": True, "asks": True, "buy": True}


def _is_ask(side: str) -> bool:
    try:
        return _BID_SIDES[side]
    except (KeyError, TypeError):
        raise ValueError(
            f"side must be 'bid' or 'ask' (or the taker side 'sell'/'buy'), got {side!r}"
        ) from None


class L2Book:
    """An L2 order book for one instrument.

    >>> b = L2Book("BTC-USDT")
    >>> b.apply_snapshot(bids=[["99.5", "2", "0", "1"], ["99", "5", "0", "3"]],
    ...                  asks=[["100", "1", "0", "1"], ["100.5", "4", "0", "2"]])
    >>> b.best_bid, b.best_ask, b.mid, b.spread
    (99.5, 100.0, 99.75, 0.5)
    >>> b.apply_update(bids=[], asks=[["100", "0", "0", "0"]])  # size 0 deletes
    >>> b.best_ask
    100.5
    >>> b.walk("buy", base=3.0).avg_price
    100.5
    """

    __slots__ = ("_core", "impl", "inst_id")

    def __init__(self, inst_id: str = "", impl: str | None = None) -> None:
        self.inst_id = inst_id
        self.impl = impl or default_impl()
        try:
            self._core = IMPLS[self.impl]()
        except KeyError:
            raise ValueError(f"impl must be one of {sorted(IMPLS)}, got {impl!r}") from None

    # -- mutation ---------------------------------------------------------------------------
    def apply_snapshot(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Replace the whole book with ``[price, size, ..., count]`` levels (wire strings).

        Raises :class:`BookError` naming the bad level; the book is then unchanged.
        """
        self._core.apply_snapshot(bids, asks)

    def apply_update(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Apply absolute level sizes; size 0 deletes. All or nothing on bad input."""
        self._core.apply_update(bids, asks)

    def clear(self) -> None:
        self._core.clear()

    # -- top of book ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._core.n_bids + self._core.n_asks

    @property
    def n_bids(self) -> int:
        return self._core.n_bids

    @property
    def n_asks(self) -> int:
        return self._core.n_asks

    @property
    def best_bid(self) -> float:
        """Best bid price, NaN when there are no bids."""
        return self._core.best(False)

    @property
    def best_ask(self) -> float:
        """Best ask price, NaN when there are no asks."""
        return self._core.best(True)

    @property
    def best_bid_size(self) -> float:
        lv = self._core.levels(False, 1)
        return float(lv[0][1]) if lv else math.nan

    @property
    def best_ask_size(self) -> float:
        lv = self._core.levels(True, 1)
        return float(lv[0][1]) if lv else math.nan

    @property
    def mid(self) -> float:
        return (self._core.best(False) + self._core.best(True)) / 2.0

    @property
    def spread(self) -> float:
        """Best ask minus best bid, computed exactly on the decimals, then as a float."""
        b, a = self._core.levels(False, 1), self._core.levels(True, 1)
        if not a or not b:
            return math.nan
        return float(Decimal(a[0][0]) - Decimal(b[0][0]))

    @property
    def spread_bps(self) -> float:
        return self.spread / self.mid * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (locked or crossed: never a valid OKX book)."""
        return self._core.is_crossed()

    # -- levels -----------------------------------------------------------------------------
    def levels(self, side: str, n: int | None = None) -> list[tuple[str, str, int]]:
        """Levels ``(price, size, order_count)`` as wire strings, best first; all when n is None.

        >>> b = L2Book(); b.apply_snapshot([["9", "1", "0", "2"]], [])
        >>> b.levels("bid")
        [('9', '1', 2)]
        """
        return self._core.levels(_is_ask(side), -1 if n is None else max(n, 0))

    def top(self, n: int = 10) -> TopLevels:
        """Top ``n`` levels of each side as float64 arrays, best first.

        >>> b = L2Book(); b.apply_snapshot([["9", "1"]], [["10", "2"], ["11", "3"]])
        >>> b.top(5).ask_sz
        array([2., 3.])
        """
        bp, bs = self._core.top(False, n)
        ap, as_ = self._core.top(True, n)
        f = np.float64
        return TopLevels(np.array(bp, f), np.array(bs, f), np.array(ap, f), np.array(as_, f))

    def depth(self, side: str, levels: int | None = None, bps: float | None = None,
              notional: bool = False) -> float:
        """Resting size on one side within ``levels`` levels, or within ``bps`` of the mid.

        Base units, or quote notional with ``notional=True``; with neither limit, the whole
        side. Within ``bps`` means bids at or above ``mid * (1 - bps/1e4)`` and asks at or
        below ``mid * (1 + bps/1e4)``.

        >>> b = L2Book(); b.apply_snapshot([["99", "1"], ["98", "2"]], [["101", "3"], ["120", "4"]])
        >>> b.depth("ask", levels=1), b.depth("bid", bps=150), b.depth("ask", bps=150)
        (3.0, 1.0, 3.0)
        """
        ask = _is_ask(side)
        if levels is not None and bps is not None:
            raise ValueError("give levels= or bps=, not both")
        if levels is not None and levels < 0:
            raise ValueError(f"levels must be >= 0, got {levels}")
        limit = ""
        if bps is not None:
            if not bps >= 0:
                raise ValueError(f"bps must be >= 0, got {bps}")
            limit = self._bps_limit(ask, bps)
            if limit is None:
                return 0.0
        return self._core.depth(ask, -1 if levels is None else levels, limit, notional)

    def _bps_limit(self, ask: bool, bps: float) -> str | None:
        """The price bound ``bps`` away from the mid, exactly, as a plain decimal string.

        Computed on the decimals so that a level exactly on the bound counts (in floats,
        100 * 1.015 is 101.49999999999999). Rounded to 18 places towards inclusion, which
        changes nothing since prices have at most 18 decimals. ``None`` for an empty side.
        """
        b, a = self._core.levels(False, 1), self._core.levels(True, 1)
        if not a or not b:
            return None
        with localcontext() as ctx:
            ctx.prec = 80
            mid = (Decimal(b[0][0]) + Decimal(a[0][0])) / 2
            f = Decimal(repr(float(bps))) / 10000
            lim = mid * (1 + f) if ask else mid * (1 - f)
            if lim <= 0:
                return ""  # every bid is within the bound
            lim = lim.quantize(_Q18, rounding=ROUND_FLOOR if ask else ROUND_CEILING)
        return format(lim.normalize(), "f")

    # -- walking the book -------------------------------------------------------------------
    def walk(self, side: str, base: float | None = None, quote: float | None = None) -> Fill:
        """Fill a market order against the visible book.

        ``side`` is the taker side: ``"buy"`` consumes asks, ``"sell"`` consumes bids. Give
        exactly one of ``base`` (base units / contracts) or ``quote`` (quote notional).

        >>> b = L2Book(); b.apply_snapshot([], [["100", "1"], ["101", "2"]])
        >>> f = b.walk("buy", base=2)
        >>> f.avg_price, f.filled_quote, f.levels, f.complete
        (100.5, 201.0, 2, True)
        >>> b.walk("buy", base=5).shortfall   # larger than the book
        2.0
        """
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be the taker side 'buy' or 'sell', got {side!r}")
        if (base is None) == (quote is None):
            raise ValueError("give exactly one of base= or quote=")
        want = base if base is not None else quote
        try:
            want = float(want)
        except (TypeError, ValueError):
            raise ValueError(f"order size must be a number, got {want!r}") from None
        if not (want > 0 and math.isfinite(want)):
            raise ValueError(f"order size must be a positive finite number, got {want!r}")
        unit = "base" if base is not None else "quote"
        gb, gq, best, worst, used, rem = self._core.walk(side == "buy", want, unit == "quote")
        complete = rem <= 1e-12 * want  # floating-point dust is not a shortfall
        return Fill(side, want, unit, gb, gq, gq / gb if gb else math.nan, best, worst, used,
                    complete, 0.0 if complete else rem)

    def touch_walk(self, buy: bool, amount: float, quote: bool = False
                   ) -> tuple[float, float, float, float, float, float, float]:
        """Top of book and a walk in one call, for per-tick pricing: ``(bid, bid_size, ask,
        ask_size, filled_base, filled_quote, remaining)`` (NaN for an empty side). ``amount``
        must be > 0 (not checked: this is the hot path; use :meth:`walk` otherwise).

        >>> b = L2Book(); b.apply_snapshot([["99", "3"]], [["100", "1"], ["101", "2"]])
        >>> b.touch_walk(True, 2.0)
        (99.0, 3.0, 100.0, 1.0, 2.0, 201.0, 0.0)
        """
        core = self._core
        bp, bs = core.top(False, 1)
        ap, asz = core.top(True, 1)
        gb, gq, _, _, _, rem = core.walk(buy, amount, quote)
        nan = math.nan
        return (bp[0] if bp else nan, bs[0] if bs else nan, ap[0] if ap else nan,
                asz[0] if asz else nan, gb, gq, rem)

    # -- integrity --------------------------------------------------------------------------
    def checksum(self) -> int:
        """OKX checksum (signed CRC32 of the top 25 levels, interleaved) of the current book.

        >>> b = L2Book()
        >>> b.apply_snapshot([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
        >>> b.checksum()
        -1881014294
        """
        return self._core.checksum()

    def __repr__(self) -> str:
        return (f"L2Book({self.inst_id!r}, bids={self.n_bids}, asks={self.n_asks}, "
                f"best={self.best_bid}/{self.best_ask}, impl={self.impl!r})")


__all__ = ["IMPLS", "BookError", "Fill", "L2Book", "TopLevels", "default_impl"]
