"""Labels for the maker/taker model: would a limit order at the best price have filled?

For a sampled moment (a book message ``i``) a virtual limit order of size ``q`` is posted at
our best price ``P`` (the best bid for a buy, the best ask for a sell), behind everything
already resting there (queue ahead = the size at ``P``). It fills passively within the
horizon ``H`` if, after the moment and by ``ts_ms[i] + H`` (the shared ``cost-models.md``):

- **trade through**: a trade prints at a price worse than ``P`` for the other side (below
  ``P`` for a buy, above for a sell): our better-priced order would have been hit first;
- **opposite**: the opposite best reaches ``P`` (a book message with ask <= P for a buy), or
  a trade prints at ``P`` with the taker on our side (a buyer at our bid price took a
  resting seller there, who would have matched us);
- **queue**: taker volume at ``P`` against our side exceeds the queue ahead plus ``q``
  (the whole order filled; a partial fill counts as no fill).

Two queue assumptions (``queue=``), since recorded L2 data has no order ids:

- ``conservative``: only trades advance the queue; a cancellation is always behind us;
- ``probabilistic``: a drop in the size at ``P`` that the trades do not explain is a
  cancellation ahead of us with probability ``f(front) / (f(front) + f(back))``,
  ``f(x) = x**power`` (``front`` = the queue ahead, ``back`` = the size behind us), the
  expected-value update of hftbacktest's probabilistic queue models. It needs the level
  rows (the size at ``P`` even when ``P`` is no longer the best price).

**Honest windows.** "After the moment" is by arrival: only trades and book messages received
after message ``i`` count (what arrived before it is what the features saw), and only those
with an exchange time in ``(ts_ms[i], ts_ms[i] + H]``. A sample whose horizon is not fully
observed is dropped, never labelled: an invalid book or a snapshot (a resync after a gap or
reconnection) inside the horizon, an explicit gap interval overlapping it, or data ending
before ``ts_ms[i] + H``. Dropping is decided before looking for a fill, so dropping does not
favour either label.

The result (:func:`label_fills`) has one row per sample: ``label`` 1 (filled), 0 (not
filled) or -1 (dropped), ``reason`` (``trade_through``, ``opposite``, ``queue``, ``none``, or
why it was dropped: ``no_book``, ``gap``, ``end``) and ``fill_ms`` (time to the fill).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

QUEUE_MODELS = ("conservative", "probabilistic")
#: ``reason`` values: the fills, no fill, and the reasons a sample is dropped.
FILL_REASONS = ("trade_through", "opposite", "queue")
DROP_REASONS = ("no_book", "gap", "end")
_BID, _ASK = 0, 1


def _col(x, dtype, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name} has {len(a)} values, expected {n} (one per message/trade)")
    return a


@dataclass(frozen=True)
class BookPath:
    """One book stream as arrays, one entry per message in arrival order: top of book after
    the message, whether the book was known (``valid``) and whether the message was a
    snapshot. The level rows (``msg_start``, ``side`` 0 bid / 1 ask / 2 none, ``price``,
    ``size``, as :func:`simlab.book.batch.rebuild_books` takes them) are needed only by the
    probabilistic queue.

    >>> b = BookPath.from_arrays(arrival=[0, 1], ts_ms=[0, 100], bid=[99.0, 99.0],
    ...                          bid_sz=[2.0, 1.0], ask=[100.0, 100.0], ask_sz=[3.0, 3.0])
    >>> len(b), bool(b.valid.all())
    (2, True)
    """

    arrival: np.ndarray
    ts_ms: np.ndarray
    bid: np.ndarray
    bid_sz: np.ndarray
    ask: np.ndarray
    ask_sz: np.ndarray
    valid: np.ndarray
    snapshot: np.ndarray
    msg_start: np.ndarray | None = None
    side: np.ndarray | None = None
    price: np.ndarray | None = None
    size: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, *, arrival, ts_ms, bid, bid_sz, ask, ask_sz, valid=None,
                    snapshot=None, msg_start=None, side=None, price=None,
                    size=None) -> BookPath:
        """Check and convert; ``valid`` defaults to all True, ``snapshot`` to all False."""
        arr = _col(arrival, np.int64, "arrival")
        n = len(arr)
        if n > 1 and np.any(np.diff(arr) <= 0):
            raise ValueError("arrival must be strictly increasing (messages in arrival order)")
        rows = None
        if msg_start is not None:
            ms = _col(msg_start, np.int64, "msg_start", n + 1)
            r = int(ms[-1]) if n + 1 else 0
            rows = (ms, _col(side, np.uint8, "side", r), _col(price, np.float64, "price", r),
                    _col(size, np.float64, "size", r))
        return cls(arr, _col(ts_ms, np.int64, "ts_ms", n),
                   _col(bid, np.float64, "bid", n), _col(bid_sz, np.float64, "bid_sz", n),
                   _col(ask, np.float64, "ask", n), _col(ask_sz, np.float64, "ask_sz", n),
                   np.ones(n, bool) if valid is None else _col(valid, bool, "valid", n),
                   np.zeros(n, bool) if snapshot is None else _col(snapshot, bool,
                                                                   "snapshot", n),
                   *(rows or (None, None, None, None)))

    def __len__(self) -> int:
        return len(self.arrival)


@dataclass(frozen=True)
class TradePath:
    """The instrument's trades in arrival order: exchange time, price, size, and ``buy``
    (the taker bought).

    >>> t = TradePath.from_arrays(arrival=[5], ts_ms=[120], price=[100.0], size=[1.0],
    ...                           buy=[True])
    >>> len(t)
    1
    """

    arrival: np.ndarray
    ts_ms: np.ndarray
    price: np.ndarray
    size: np.ndarray
    buy: np.ndarray

    @classmethod
    def from_arrays(cls, *, arrival, ts_ms, price, size, buy) -> TradePath:
        arr = _col(arrival, np.int64, "trade arrival")
        n = len(arr)
        if n > 1 and np.any(np.diff(arr) < 0):
            raise ValueError("trade arrival must be non-decreasing (trades in arrival order)")
        return cls(arr, _col(ts_ms, np.int64, "trade ts_ms", n),
                   _col(price, np.float64, "trade price", n),
                   _col(size, np.float64, "trade size", n), _col(buy, bool, "trade buy", n))

    @classmethod
    def empty(cls) -> TradePath:
        return cls.from_arrays(arrival=[], ts_ms=[], price=[], size=[], buy=[])

    def __len__(self) -> int:
        return len(self.arrival)


def _level_sizes(book: BookPath, i: int, j_end: int, own_side: int,
                 price: float) -> dict[int, float]:
    """Message index -> new size at ``price`` on our side, for messages i+1 .. j_end-1."""
    ms = book.msg_start
    r0, r1 = int(ms[i + 1]), int(ms[j_end])
    if r1 <= r0:
        return {}
    hit = np.flatnonzero((book.side[r0:r1] == own_side) & (book.price[r0:r1] == price)) + r0
    if not len(hit):
        return {}
    msg = np.searchsorted(ms, hit, side="right") - 1
    return dict(zip(msg.tolist(), book.size[hit].tolist(), strict=True))


def _cancel_ahead(ahead: float, back: float, drop: float, power: float) -> float:
    """Expected queue ahead after ``drop`` units of unexplained cancellations."""
    fa, fb = ahead ** power, back ** power
    share = fa / (fa + fb) if fa + fb > 0 else 0.0
    # the part assigned behind us cannot exceed what is behind us: the rest was ahead
    behind = drop * (1.0 - share)
    over = behind - back if behind > back else 0.0
    return max(ahead - drop * share - over, 0.0)


def label_fills(book: BookPath, trades: TradePath, samples: Sequence[int] | np.ndarray, *,
                buy: bool | Sequence[bool] | np.ndarray, order_size: float | np.ndarray,
                horizon_ms: int, queue: str = "conservative", power: float = 1.0,
                gaps: Sequence[tuple[int, int]] = (),
                observed_until_ms: int | None = None) -> pd.DataFrame:
    """Label each sampled moment: would a passive order at our best price have filled?

    ``samples``: indices of book messages; ``buy``: one side for all, or one per sample;
    ``order_size`` ``q > 0`` in the book's units (one, or one per sample); ``horizon_ms``
    ``H > 0``. ``gaps``: ``(start_ms, end_ms)`` exchange-time intervals known to be
    unobserved (e.g. frames the recorder dropped). ``observed_until_ms``: the end of the
    data (default: the last book message or trade time). Returns a DataFrame with
    ``sample``, ``ts_ms``, ``buy``, ``price``, ``queue_ahead``, ``order_size``, ``label``
    (1 filled, 0 not, -1 dropped), ``reason`` and ``fill_ms`` (NaN unless filled).

    A bid of 2 @ 99 and a buy of 1: 3 sold at 99 fills it (queue 2 + our 1).

    >>> b = BookPath.from_arrays(arrival=[0, 3], ts_ms=[0, 900], bid=[99.0, 99.0],
    ...                          bid_sz=[2.0, 2.0], ask=[100.0, 100.0], ask_sz=[1.0, 1.0])
    >>> t = TradePath.from_arrays(arrival=[1, 2], ts_ms=[100, 200], price=[99.0, 99.0],
    ...                           size=[1.5, 1.5], buy=[False, False])
    >>> r = label_fills(b, t, [0], buy=True, order_size=1.0, horizon_ms=500)
    >>> r[["label", "reason", "fill_ms"]].to_dict("records")
    [{'label': 1, 'reason': 'queue', 'fill_ms': 200.0}]
    >>> label_fills(b, t, [0], buy=True, order_size=1.0, horizon_ms=150)["reason"].tolist()
    ['none']
    """
    if queue not in QUEUE_MODELS:
        raise ValueError(f"queue must be one of {QUEUE_MODELS}, got {queue!r}")
    if isinstance(horizon_ms, bool) or not isinstance(horizon_ms, int | np.integer) \
            or horizon_ms <= 0:
        raise ValueError(f"horizon_ms must be an integer > 0 (milliseconds), got {horizon_ms!r}")
    if not (isinstance(power, int | float) and math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a number > 0, got {power!r}")
    if queue == "probabilistic" and book.msg_start is None:
        raise ValueError("queue='probabilistic' needs the level rows: build the BookPath with "
                         "msg_start, side, price and size")
    idx = _col(samples, np.int64, "samples")
    n, k = len(book), len(idx)
    if k and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"samples must be message indices in [0, {n}), got "
                         f"{int(idx.min())}..{int(idx.max())}")
    sides = np.broadcast_to(np.asarray(buy, dtype=bool), (k,))
    qs = np.broadcast_to(np.asarray(order_size, dtype=np.float64), (k,))
    if k and not (np.all(np.isfinite(qs)) and np.all(qs > 0)):
        raise ValueError("order_size must be > 0 (in the book's units)")
    for g in gaps:
        if len(g) != 2 or g[1] < g[0]:
            raise ValueError(f"each gap must be (start_ms, end_ms) with end >= start, got {g!r}")
    gap_lo = np.array([g[0] for g in gaps], dtype=np.int64)
    gap_hi = np.array([g[1] for g in gaps], dtype=np.int64)
    if observed_until_ms is None:
        last = [int(book.ts_ms.max())] if n else []
        if len(trades):
            last.append(int(trades.ts_ms.max()))
        observed_until_ms = max(last) if last else 0

    # cumulative "bad message" count: any invalid book or snapshot in a window drops it
    bad = np.cumsum(~book.valid | book.snapshot)
    ts, arr = book.ts_ms, book.arrival
    bid, ask, bsz, asz = book.bid, book.ask, book.bid_sz, book.ask_sz
    t_arr, t_ts, t_px, t_sz, t_buy = (trades.arrival, trades.ts_ms, trades.price, trades.size,
                                      trades.buy)
    prob = queue == "probabilistic"
    out_label = np.full(k, -1, np.int8)
    out_reason: list[str] = []
    out_fill = np.full(k, np.nan)
    out_px = np.full(k, np.nan)
    out_q0 = np.full(k, np.nan)
    for s in range(k):
        i = int(idx[s])
        is_buy = bool(sides[s])
        q = float(qs[s])
        t0 = int(ts[i])
        t_end = t0 + int(horizon_ms)
        P = float(bid[i] if is_buy else ask[i])
        q0 = float(bsz[i] if is_buy else asz[i])
        out_px[s], out_q0[s] = P, q0
        if not book.valid[i] or math.isnan(P) or math.isnan(q0):
            out_reason.append("no_book")
            continue
        j_end = int(np.searchsorted(ts[i + 1:], t_end, side="right")) + i + 1
        # a break right after the window (an invalid message or a resync) lost messages
        # between the last one seen and it: inside the horizon unless that one reached it
        after = j_end < n and bad[j_end] != bad[j_end - 1] and ts[j_end - 1] < t_end
        if bad[j_end - 1] != bad[i] or after:
            out_reason.append("gap")
            continue
        if len(gap_lo) and bool(np.any((gap_lo <= t_end) & (gap_hi > t0))):
            out_reason.append("gap")
            continue
        if observed_until_ms < t_end:
            out_reason.append("end")
            continue
        # the events after the moment: book messages i+1 .. j_end-1, and trades received
        # after message i with an exchange time in (t0, t_end]
        tr = int(np.searchsorted(t_arr, arr[i], side="right"))
        sizes = _level_sizes(book, i, j_end, _BID if is_buy else _ASK, P) if prob else {}
        ahead, done, level, traded = q0, 0.0, q0, 0.0
        j = i + 1
        reason, when = "none", math.nan
        while True:
            # next event: a trade before (or at the time of) the next book message
            take_trade = False
            while tr < len(t_ts) and t_ts[tr] <= t0:
                tr += 1
            if tr < len(t_ts) and t_ts[tr] <= t_end:
                take_trade = j >= j_end or t_ts[tr] <= ts[j]
            if take_trade:
                px, sz, tb, tt = float(t_px[tr]), float(t_sz[tr]), bool(t_buy[tr]), int(
                    t_ts[tr])
                tr += 1
                if (px < P) if is_buy else (px > P):
                    reason, when = "trade_through", tt
                    break
                if px == P:
                    if tb == is_buy:  # taker on our side at our price: a resting order
                        reason, when = "opposite", tt  # of the other side was at P
                        break
                    if sz <= ahead:
                        ahead -= sz
                    else:
                        done += sz - ahead
                        ahead = 0.0
                    traded += sz
                    if done >= q * (1.0 - 1e-12):
                        reason, when = "queue", tt
                        break
                continue
            if j >= j_end:
                break
            if (ask[j] <= P) if is_buy else (bid[j] >= P):
                reason, when = "opposite", int(ts[j])
                break
            if prob:
                new = sizes.get(j)
                if new is not None:
                    drop = (level - traded) - new
                    if drop > 0:
                        ahead = _cancel_ahead(ahead, max(level - traded - ahead, 0.0), drop,
                                              power)
                    ahead = min(ahead, new)
                    level, traded = new, 0.0
            j += 1
        out_reason.append(reason)
        if reason != "none":
            out_label[s] = 1
            out_fill[s] = when - t0
        else:
            out_label[s] = 0
    return pd.DataFrame({"sample": idx, "ts_ms": ts[idx] if k else np.zeros(0, np.int64),
                         "buy": np.asarray(sides, bool), "price": out_px, "queue_ahead": out_q0,
                         "order_size": np.asarray(qs, np.float64), "label": out_label,
                         "reason": pd.Series(out_reason, dtype="object"),
                         "fill_ms": out_fill})


__all__ = ["DROP_REASONS", "FILL_REASONS", "QUEUE_MODELS", "BookPath", "TradePath",
           "label_fills"]
