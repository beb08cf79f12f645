"""Pure-Python book core: the reference for, and fallback of, the C core in ``simlab._native``.

Both cores have the same interface and behaviour (the tests run one against the other);
:class:`simlab.book.L2Book` wraps whichever is in use. Prices are keyed by ``Decimal``
(exact); the wire level is kept for the checksum. Levels must be plain decimal strings,
``digits[.digits]`` with at most 18 digits on each side of the point: the form OKX sends,
and the form the C core can key exactly.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, insort
from collections.abc import Sequence
from decimal import Decimal

from simlab.okx.checksum import CHECKSUM_DEPTH, okx_checksum

from .errors import BookError

_DEC = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,18})?").fullmatch
_CNT = re.compile(r"[0-9]{1,18}").fullmatch
_MAXLEN = 31


def _bad(where: str, lvl: object) -> BookError:
    return BookError(
        f"{where} level must be [price, size, ..., count] with plain decimal strings "
        f"(price > 0, size >= 0, count a whole number), got {lvl!r}")


def _parse(levels, where: str) -> list[tuple[Decimal, tuple[str, str, int], bool]]:
    """Validate every level before anything is applied (all or nothing)."""
    if isinstance(levels, str | bytes) or not hasattr(levels, "__len__"):
        raise BookError(f"{where} levels must be a list of [price, size, ...], got {levels!r}")
    out = []
    for lvl in levels:
        if not isinstance(lvl, list | tuple) or len(lvl) < 2:
            raise _bad(where, lvl)
        px, sz = lvl[0], lvl[1]
        if (type(px) is not str or type(sz) is not str or len(px) > _MAXLEN
                or len(sz) > _MAXLEN or not _DEC(px) or not _DEC(sz)):
            raise _bad(where, lvl)
        k = Decimal(px)
        if not k:
            raise _bad(where, lvl)
        count = 0
        if len(lvl) >= 3:
            c = lvl[-1]
            if type(c) is not str or not _CNT(c):
                raise _bad(where, lvl)
            count = int(c)
        out.append((k, (px, sz, count), not Decimal(sz)))
    return out


class _Side:
    __slots__ = ("keys", "levels")

    def __init__(self) -> None:
        self.levels: dict[Decimal, tuple[str, str, int]] = {}
        self.keys: list[Decimal] = []  # ascending

    def replace(self, parsed) -> None:
        levels: dict[Decimal, tuple[str, str, int]] = {}
        for k, lvl, zero in parsed:  # a repeated price: the last one wins
            if zero:
                levels.pop(k, None)
            else:
                levels[k] = lvl
        self.levels = levels
        self.keys = sorted(levels)

    def update(self, parsed) -> None:
        levels, keys = self.levels, self.keys
        for k, lvl, zero in parsed:
            if not zero:
                if k not in levels:
                    insort(keys, k)
                levels[k] = lvl
            elif levels.pop(k, None) is not None:
                del keys[bisect_left(keys, k)]


class PyBook:
    """Same interface as ``simlab._native.Book``; ``ask`` arguments select the side."""

    __slots__ = ("_asks", "_bids")

    def __init__(self) -> None:
        self._bids = _Side()
        self._asks = _Side()

    def apply_snapshot(self, bids, asks) -> None:
        pb, pa = _parse(bids, "bid"), _parse(asks, "ask")
        self._bids.replace(pb)
        self._asks.replace(pa)

    def apply_update(self, bids, asks) -> None:
        pb, pa = _parse(bids, "bid"), _parse(asks, "ask")
        self._bids.update(pb)
        self._asks.update(pa)

    def clear(self) -> None:
        self._bids = _Side()
        self._asks = _Side()

    @property
    def n_bids(self) -> int:
        return len(self._bids.keys)

    @property
    def n_asks(self) -> int:
        return len(self._asks.keys)

    def _best_first(self, ask: bool, n: int = -1) -> list[tuple[str, str, int]]:
        s = self._asks if ask else self._bids
        keys = s.keys
        if n < 0 or n > len(keys):
            n = len(keys)
        ks = keys[:n] if ask else keys[len(keys) - n:][::-1]
        return [s.levels[k] for k in ks]

    def levels(self, ask: bool, n: int = -1) -> list[tuple[str, str, int]]:
        return self._best_first(ask, n)

    def best(self, ask: bool) -> float:
        s = self._asks if ask else self._bids
        if not s.keys:
            return math.nan
        return float(s.levels[s.keys[0] if ask else s.keys[-1]][0])

    def top(self, ask: bool, n: int) -> tuple[list[float], list[float]]:
        lv = self._best_first(ask, max(n, 0))
        return [float(x[0]) for x in lv], [float(x[1]) for x in lv]

    def depth(self, ask: bool, n: int, limit: str, notional: bool) -> float:
        lim = Decimal(limit) if limit else None
        tot = 0.0
        for px, sz, _ in self._best_first(ask, n):
            if lim is not None and (Decimal(px) > lim if ask else Decimal(px) < lim):
                break
            tot += float(px) * float(sz) if notional else float(sz)
        return tot

    def walk(self, buy: bool, want: float, quote: bool):
        rem, gb, gq, best, worst, used = want, 0.0, 0.0, math.nan, math.nan, 0
        for px, sz, _ in self._best_first(buy):
            if rem <= 0:
                break
            p, s = float(px), float(sz)
            take = min(s, rem / p) if quote else min(s, rem)
            gb += take
            gq += take * p
            rem -= take * p if quote else take
            if used == 0:
                best = p
            worst = p
            used += 1
        return gb, gq, best, worst, used, rem

    def checksum(self) -> int:
        return okx_checksum(self._best_first(False, CHECKSUM_DEPTH),
                            self._best_first(True, CHECKSUM_DEPTH))

    def is_crossed(self) -> bool:
        b, a = self._bids.keys, self._asks.keys
        return bool(b) and bool(a) and b[-1] >= a[0]


def level_tuple(lvl: Sequence[str]) -> tuple[str, str, int]:
    """``[px, sz, ..., count]`` -> ``(px, sz, count)``."""
    return (lvl[0], lvl[1], int(lvl[-1]) if len(lvl) >= 3 else 0)
