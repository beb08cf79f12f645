"""The depth ladder: walk-the-book cost per unit for a ladder of order sizes, the input of
the ``eta``/``epsilon`` fit (:func:`simlab.models.calibrate.calibrate_eta`).

One definition for a recording (:func:`simlab.sim.calibrate.calibrate_recording`, the
book rebuilt in compiled code at sampled ticks) and for a live book
(:func:`simlab.sim.estimate.estimate_impact`, an :class:`~simlab.book.L2Book`):

- the ladder is centred on the *visible depth*: the smaller side's size over the top
  :data:`LEVELS` levels (base units; over a recording, its median over the ticks);
- it has :data:`SIZES` sizes from 1/50 to 2 times that depth, evenly spaced in log;
- each size is walked as a market buy and a market sell; the cost per unit is the average
  fill price against the mid, averaged over every tick and side that filled it completely
  (NaN for a size nothing filled).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from simlab.book.batch import Order

#: Levels per side summed for the visible depth.
LEVELS = 5
#: Sizes in the ladder.
SIZES = 12


def visible_depth(bid_depth: Any, ask_depth: Any, ct_val: float = 1.0) -> float:
    """The smaller side's depth over the top :data:`LEVELS` levels, median over ticks
    (NaN ticks ignored), times ``ct_val`` (book units to base units).

    >>> visible_depth([3.0, 1.0, 2.0], [2.0, 4.0, np.nan], ct_val=0.5)
    0.75
    """
    return float(np.nanmedian(np.minimum(bid_depth, ask_depth)) * ct_val)


def ladder_sizes(depth: float, n: int = SIZES) -> np.ndarray:
    """``n`` order sizes from ``depth / 50`` to ``2 depth``, evenly spaced in log.

    >>> ladder_sizes(1.0, 3).round(9).tolist()
    [0.02, 0.2, 2.0]
    """
    return np.geomspace(depth / 50, depth * 2, n)


def ladder_orders(sizes: Sequence[float], ct_val: float = 1.0) -> list[Order]:
    """Each size (base units) as a market buy, then each as a market sell, in book units.

    >>> ladder_orders([1.0, 2.0], ct_val=0.5)
    [Order(buy=True, amount=2.0, quote=False), Order(buy=True, amount=4.0, quote=False), \
Order(buy=False, amount=2.0, quote=False), Order(buy=False, amount=4.0, quote=False)]
    """
    return [Order(buy, float(s / ct_val), False) for buy in (True, False) for s in sizes]


def ladder_cost(mid: Any, walk: Any) -> np.ndarray:
    """Average cost per unit against ``mid`` of each ladder size, from the walks of
    :func:`ladder_orders` (``walk``: ``(ticks, 2 k, 6)``, the columns of
    :data:`simlab.book.batch.WALK_FIELDS`; ``mid``: ``(ticks,)``): the mean over the ticks
    and sides that filled the size completely, NaN where none did.

    >>> w = np.array([[[1, 101, 0, 0, 1, 0], [1, 99, 0, 0, 1, 0]]], float)  # buy, sell of 1
    >>> ladder_cost([100.0], w).tolist()
    [1.0]
    """
    w = np.asarray(walk, dtype=np.float64)
    mid = np.asarray(mid, dtype=np.float64)[:, None]
    k = w.shape[1] // 2
    fb = w[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):  # nothing filled: NaN, dropped
        avg = w[:, :, 1] / fb
    complete = (w[:, :, 5] <= fb * 1e-12) & (fb > 0)
    per_unit = np.where(np.arange(2 * k) < k, avg - mid, mid - avg)
    rows = np.concatenate([per_unit[:, :k], per_unit[:, k:]])
    ok = np.concatenate([complete[:, :k], complete[:, k:]]) & np.isfinite(rows)
    # the mean of what filled (no nanmean: no warning for a size nothing filled)
    n = ok.sum(axis=0)
    total = np.where(ok, rows, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def walk_book(book: Any, orders: Sequence[Order]) -> np.ndarray:
    """``orders`` walked on ``book`` (an :class:`~simlab.book.L2Book`), as
    ``(1, len(orders), 6)`` in the columns of :data:`simlab.book.batch.WALK_FIELDS`
    (``remaining`` 0 where the book filled the order).

    >>> from simlab.book import L2Book
    >>> b = L2Book(); b.apply_snapshot([["99", "1"]], [["101", "1"]])
    >>> walk_book(b, [Order(True, 2.0)])[0, 0].tolist()
    [1.0, 101.0, 101.0, 101.0, 1.0, 1.0]
    """
    out = np.empty((1, len(orders), 6))
    for j, o in enumerate(orders):
        side = "buy" if o.buy else "sell"
        f = book.walk(side, quote=o.amount) if o.quote else book.walk(side, base=o.amount)
        out[0, j] = (f.filled_base, f.filled_quote, f.best_price, f.worst_price, f.levels,
                     f.shortfall)
    return out


def walk_ladder(book: Any, ct_val: float = 1.0, n: int = SIZES) -> tuple[np.ndarray, np.ndarray]:
    """The ladder of ``book`` (an :class:`~simlab.book.L2Book`): its sizes (base units) and
    the cost per unit of each (quote/base, see :func:`ladder_cost`).

    >>> from simlab.book import L2Book
    >>> b = L2Book(); b.apply_snapshot([["99", "1"], ["98", "1"]], [["101", "1"]])
    >>> sizes, cost = walk_ladder(b, n=3)   # depth 1 (the ask side): 0.02, 0.2, 2
    >>> sizes.round(9).tolist(), cost.round(9).tolist()   # 2: only the bids can fill it
    ([0.02, 0.2, 2.0], [1.0, 1.0, 1.5])
    """
    depth = visible_depth(book.depth("bid", levels=LEVELS), book.depth("ask", levels=LEVELS),
                          ct_val)
    if not depth > 0:
        raise ValueError("the book has an empty side: no depth to walk")
    sizes = ladder_sizes(depth, n)
    return sizes, ladder_cost([book.mid], walk_book(book, ladder_orders(sizes, ct_val)))
