"""Rebuild L2 books from a recording's columnar ``levels`` table, in one call.

Replaying a recording message by message through :class:`~simlab.book.L2Book` costs
microseconds of Python per message. :func:`rebuild_books` takes the level changes as flat
arrays instead (one row per level change, messages as row ranges) and rebuilds every book in
the C kernel ``simlab._native.replay_books``, returning top of book after every message and,
where asked, the walk-the-book result of some market orders and the depth of the top N
levels. Walks and depths are bitwise equal to what the exact book gives live for the same
levels (:meth:`L2Book.walk`, :meth:`L2Book.depth` with ``levels=``): the kernel repeats the
exact core's float arithmetic operation for operation.

The pure-Python reference (``impl="python"``, also the fallback without the C core) feeds
one :class:`~simlab.book._pybook.PyBook` per stream, the pure-Python core of ``L2Book``.
It needs prices and sizes that print as plain decimals with at most 18 digits on each side of
the point (any real price or size does).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import numpy as np

from simlab import core

from ._pybook import PyBook

# None when the C core is not active, or is a build from before replay_books existed
_replay_books = getattr(core.native(), "replay_books", None)

#: ``msg_flags`` bit: the message is a snapshot (clear the stream's book, then apply).
SNAPSHOT = 1
#: ``msg_flags`` bit: do not apply the message; the stream's book is invalid (empty) until
#: its next snapshot. The caller sets it from its sequence checks.
SKIP = 2
#: ``row_side`` values.
BID, ASK, NO_LEVEL = 0, 1, 2
#: Columns of :attr:`BookBatch.walk`, as returned by the book core's ``walk``.
WALK_FIELDS = ("filled_base", "filled_quote", "best", "worst", "levels", "remaining")


class Order(NamedTuple):
    """A market order to walk the book with: ``buy`` lifts asks, else hits bids; ``amount``
    is in base units, or quote notional when ``quote``."""

    buy: bool
    amount: float
    quote: bool = False


class BookBatch(NamedTuple):
    """Per-message results of :func:`rebuild_books` (``n`` messages, ``k`` orders).

    Top of book after each message: NaN price and NaN size for an empty side, as
    :attr:`L2Book.best_bid` / :attr:`L2Book.best_bid_size` give. ``walk`` is ``(n, k, 6)``
    (columns :data:`WALK_FIELDS`) and ``depth`` is ``(n, 2)`` (bids, asks), NaN where not
    emitted; each is None when not asked for.
    """

    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray
    walk: np.ndarray | None = None
    depth: np.ndarray | None = None


def _array(a, dtype, name: str) -> np.ndarray:
    """A C-contiguous 1-d array of ``dtype``; only lossless conversions are made (integers
    of another width are accepted when every value fits)."""
    x = np.asarray(a)
    want = np.dtype(dtype)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {x.shape}")
    if x.dtype != want and x.size:
        if want.kind in "iu" and x.dtype.kind in "biu":
            info = np.iinfo(want)
            bad = np.flatnonzero((x < info.min) | (x > info.max))
            if len(bad):
                raise ValueError(f"{name}[{bad[0]}] does not fit {want.name}: {x[bad[0]]}")
        elif not np.can_cast(x.dtype, want, "safe"):
            raise TypeError(f"{name} must have dtype {want.name}, got {x.dtype}")
    return np.ascontiguousarray(x, want)


def rebuild_books(msg_start, msg_stream, msg_flags, row_side, row_px, row_sz, *,
                  n_streams: int | None = None, orders=(), depth_n: int = 0, emit=None,
                  impl: str | None = None) -> BookBatch:
    """Rebuild books from level rows; top of book (and walks, depths) after every message.

    Message ``i`` is the rows ``msg_start[i]:msg_start[i + 1]`` (``msg_start`` has n + 1
    entries, non-decreasing; a message may have no rows) of book ``msg_stream[i]``;
    ``msg_flags[i]`` combines :data:`SNAPSHOT` and :data:`SKIP`. A row sets the absolute
    size of one level: ``row_side`` 0 bid / 1 ask / 2 no level (a heartbeat row, ignored),
    ``row_px`` > 0, ``row_sz`` >= 0 (0 deletes). ``orders`` are :class:`Order` tuples walked
    after each message, ``depth_n`` > 0 sums the sizes of the top ``depth_n`` levels per side;
    both only where ``emit`` (bool/uint8 per message, default all) is set.
    ``impl="python"`` forces the pure-Python reference; the default is the C kernel when built.

    >>> b = rebuild_books(
    ...     msg_start=[0, 3, 4], msg_stream=[0, 0], msg_flags=[SNAPSHOT, 0],
    ...     row_side=[BID, ASK, ASK, ASK], row_px=[99.5, 100.0, 100.5, 100.0],
    ...     row_sz=[2.0, 1.0, 4.0, 0.0], orders=[Order(buy=True, amount=2.0)], depth_n=5)
    >>> b.bid_px, b.ask_px, b.ask_sz
    (array([99.5, 99.5]), array([100. , 100.5]), array([1., 4.]))
    >>> b.walk[0, 0]   # filled_base, filled_quote, best, worst, levels, remaining
    array([  2. , 200.5, 100. , 100.5,   2. ,   0. ])
    >>> b.depth[1]     # bids, asks
    array([2., 4.])
    """
    if impl is None:
        impl = "c" if _replay_books is not None else "python"
    if impl not in ("c", "python"):
        raise ValueError(f"impl must be 'c' or 'python', got {impl!r}")
    if impl == "c" and _replay_books is None:
        raise ValueError(f"impl='c' needs the C core (simlab._native), which is not active "
                         f"here ({core.describe()})")
    stream = _array(msg_stream, np.int32, "msg_stream")
    n = len(stream)
    if n_streams is None:
        n_streams = max(int(stream.max()) + 1, 0) if n else 0
    if n_streams < 0:
        raise ValueError(f"n_streams must be >= 0, got {n_streams}")
    start = _array(msg_start, np.int64, "msg_start")
    flags = _array(msg_flags, np.uint8, "msg_flags")
    side = _array(row_side, np.uint8, "row_side")
    px = _array(row_px, np.float64, "row_px")
    sz = _array(row_sz, np.float64, "row_sz")
    if len(start) != n + 1:
        raise ValueError(f"msg_start must have len(msg_stream) + 1 = {n + 1} entries, "
                         f"got {len(start)}")
    if len(flags) != n:
        raise ValueError(f"msg_flags must have len(msg_stream) = {n} entries, got {len(flags)}")
    if not len(px) == len(sz) == len(side):
        raise ValueError(f"row_side, row_px and row_sz must have the same length, got "
                         f"{len(side)}, {len(px)} and {len(sz)}")
    if isinstance(depth_n, bool) or not isinstance(depth_n, int | np.integer) or depth_n < 0:
        raise ValueError(f"depth_n must be an integer >= 0, got {depth_n!r}")
    orders = [tuple(o) for o in orders]
    try:
        order_arr = np.array(orders, np.float64).reshape(len(orders), 3)
    except (TypeError, ValueError):
        raise ValueError(f"orders must be Order(buy, amount, quote) triples, got {orders!r}"
                         ) from None
    for j, (buy, amount, quote) in enumerate(order_arr):
        if buy not in (0.0, 1.0) or quote not in (0.0, 1.0) or not 0 < amount < np.inf:
            raise ValueError(f"orders[{j}] must be Order(buy, amount > 0 and finite, quote), "
                             f"got {orders[j]!r}")
    emit_arr = None
    if emit is not None:
        emit_arr = _array(emit, np.uint8, "emit")
        if len(emit_arr) != n:
            raise ValueError(f"emit must have len(msg_stream) = {n} entries, got {len(emit_arr)}")
    k = len(order_arr)
    top = np.empty((n, 4))
    walk = np.full((n, k, 6), np.nan)
    depth = np.full((n, 2), np.nan) if depth_n else np.empty((0, 2))
    run = _replay_books if impl == "c" else replay_books_py
    run(start, stream, flags, side, px, sz, int(n_streams), top, order_arr, walk, int(depth_n),
        depth, emit_arr)
    return BookBatch(top[:, 0], top[:, 1], top[:, 2], top[:, 3], walk if k else None,
                     depth if depth_n else None)


def _dec(x: float) -> str:
    """The float as a plain decimal string that parses back to the same double."""
    s = repr(x)
    return format(Decimal(s), "f") if "e" in s else s


def replay_books_py(msg_start, msg_stream, msg_flags, row_side, row_px, row_sz, n_streams,
                    out_top, orders, out_walk, depth_n, out_depth, emit=None) -> None:
    """Pure-Python reference of ``simlab._native.replay_books``: same arguments (validated
    numpy arrays, see :func:`rebuild_books`), same outputs written in place, same errors.

    >>> top, walk = np.empty((1, 4)), np.empty((1, 0, 6))
    >>> replay_books_py(np.array([0, 2]), np.array([0]), np.array([SNAPSHOT]),
    ...                 np.array([BID, NO_LEVEL]), np.array([9.5, np.nan]),
    ...                 np.array([3.0, np.nan]), 1, top, np.empty((0, 3)), walk, 0, None)
    >>> top
    array([[9.5, 3. , nan, nan]])
    """
    n, r = len(msg_stream), len(row_side)
    books = [PyBook() for _ in range(n_streams)]
    walks = [(bool(b), float(a), bool(q)) for b, a, q in orders]
    start = msg_start.tolist()
    sides, pxs, szs = row_side.tolist(), row_px.tolist(), row_sz.tolist()
    for i in range(n):
        a, b = start[i], start[i + 1]
        if not 0 <= a <= b <= r:
            raise ValueError(f"msg_start must be non-decreasing within [0, {r}] (the number of "
                             f"rows), got msg_start[{i}]={a}, msg_start[{i + 1}]={b}")
        si = int(msg_stream[i])
        if not 0 <= si < n_streams:
            raise ValueError(f"msg_stream[{i}] must be in [0, {n_streams}), got {si}")
        levels: tuple[list, list] = ([], [])
        for j in range(a, b):
            sd = sides[j]
            if sd == NO_LEVEL:
                continue
            if sd > NO_LEVEL:
                raise ValueError(f"row_side[{j}] must be 0 (bid), 1 (ask) or 2 (no level), "
                                 f"got {sd}")
            if not 0 < pxs[j] < np.inf:
                raise ValueError(f"row_px[{j}] must be a finite price > 0, got {pxs[j]!r}")
            if not 0 <= szs[j] < np.inf:
                raise ValueError(f"row_sz[{j}] must be a finite size >= 0, got {szs[j]!r}")
            levels[sd].append([_dec(pxs[j]), _dec(szs[j])])
        book, flag = books[si], int(msg_flags[i])
        if flag & SKIP:
            book.clear()
        elif flag & SNAPSHOT:
            book.apply_snapshot(*levels)
        else:
            book.apply_update(*levels)
        bid, ask = book.levels(False, 1), book.levels(True, 1)
        out_top[i] = (float(bid[0][0]) if bid else np.nan, float(bid[0][1]) if bid else np.nan,
                      float(ask[0][0]) if ask else np.nan, float(ask[0][1]) if ask else np.nan)
        if emit is not None and not emit[i]:
            continue
        for o, w in enumerate(walks):
            out_walk[i, o] = book.walk(*w)
        if depth_n > 0:
            out_depth[i] = (book.depth(False, depth_n, "", False),
                            book.depth(True, depth_n, "", False))


__all__ = ["ASK", "BID", "NO_LEVEL", "SKIP", "SNAPSHOT", "WALK_FIELDS", "BookBatch", "Order",
           "rebuild_books", "replay_books_py"]
