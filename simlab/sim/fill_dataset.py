"""Labelled maker/taker data from recordings: features at sampled moments, fill or not.

:func:`fill_dataset` reads one instrument's book stream and trades from each recording,
rebuilds the book in compiled code (:func:`simlab.sim.rebuild.rebuild_messages`), feeds book
updates and trades in arrival order to :class:`~simlab.models.fill_features.FillFeatureState`
(the same code the cost pipeline uses live, so the features a model is trained on are
the features it later gets), samples moments every ``every_s`` seconds and labels a
virtual order at each with :func:`~simlab.models.fill_labels.label_fills`.

Time order is kept: rows are sorted by the moment's exchange time, recordings in the
order given, so a time-ordered train/test split has no look-ahead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlab.feed.replay import ReplayError, open_recordings
from simlab.feed.tables import BookMessages, book_messages
from simlab.models.fill_features import FILL_FEATURES, FeatureParams, FillFeatureState
from simlab.models.fill_labels import BookPath, TradePath, label_fills
from simlab.store.reader import Recording
from simlab.store.schema import TRADES

from .order import Instrument
from .rebuild import rebuild_messages

log = logging.getLogger(__name__)

TRADES_CHANNEL = "trades"
SIDES = ("buy", "sell", "both")


@dataclass
class StreamPaths:
    """One instrument of one recording as arrays: the book after every message, the
    top-N depth per side, the trades, and the receive times of the messages."""

    book: BookPath
    trades: TradePath
    bid_depth: np.ndarray
    ask_depth: np.ndarray
    recv_ns: np.ndarray
    #: the book stream's messages (:func:`stream_paths` keeps them to rebuild the book again)
    messages: BookMessages | None = None


def trade_path(rec: Recording, inst: str, channel: str = TRADES_CHANNEL, *,
               start: int | None = None, end: int | None = None) -> TradePath:
    """The instrument's trades in arrival order (empty when none were recorded), received
    in ``[start, end]`` (ns) when given, as a replay over that range yields them.

    >>> trade_path(Recording("rec"), "BTC-USDT")                    # doctest: +SKIP
    """
    if channel not in rec.streams()[0]:
        return TradePath.empty()  # the channel was not recorded (an unknown inst still raises)
    t = rec.stream_table(TRADES, channel=channel, inst=inst,
                         columns=["recv_ns", "ts_ms", "side", "price", "size"])
    if t.num_rows == 0:
        return TradePath.empty()
    keep = np.ones(t.num_rows, bool)
    recv = t["recv_ns"].to_numpy()
    if start is not None:
        keep &= recv >= start
    if end is not None:
        keep &= recv <= end
    side = t["side"].to_numpy(zero_copy_only=False)
    return TradePath.from_arrays(arrival=t["arrival"].to_numpy()[keep],
                                 ts_ms=t["ts_ms"].to_numpy()[keep],
                                 price=t["price"].to_numpy()[keep],
                                 size=t["size"].to_numpy()[keep], buy=(side == "buy")[keep])


def stream_paths(rec: Recording, inst: str, *, channel: str = "books",
                 depth_levels: int = 5, validity: str = "auto") -> StreamPaths:
    """Book and trades of ``inst`` in ``rec`` (see :class:`StreamPaths`).

    >>> p = stream_paths(Recording("rec"), "BTC-USDT")              # doctest: +SKIP
    >>> len(p.book), len(p.trades)                                  # doctest: +SKIP
    """
    m = book_messages(rec, channel, inst, validity=validity)
    b = rebuild_messages(m, depth_n=depth_levels, emit=m.valid)
    book = BookPath.from_arrays(arrival=m.arrival, ts_ms=m.ts_ms, bid=b.bid_px,
                                bid_sz=b.bid_sz, ask=b.ask_px, ask_sz=b.ask_sz, valid=m.valid,
                                snapshot=m.snapshot, msg_start=m.msg_start, side=m.side,
                                price=m.price, size=m.size)
    return StreamPaths(book, trade_path(rec, inst), b.depth[:, 0], b.depth[:, 1], m.recv_ns,
                       messages=m)


def run_features(paths: StreamPaths, at: np.ndarray, buy: np.ndarray, order_size: np.ndarray,
                 *, params: FeatureParams, tick_size: float) -> dict[str, np.ndarray]:
    """The fill features at message indices ``at`` (non-decreasing), one order per entry.

    Book messages and trades go through one :class:`FillFeatureState` in arrival order,
    exactly as the live pipeline feeds it.

    >>> f = run_features(paths, np.array([10]), np.array([True]), np.array([0.5]),
    ...                  params=FeatureParams(), tick_size=0.1)    # doctest: +SKIP
    """
    at = np.asarray(at, np.int64)
    if len(at) > 1 and np.any(np.diff(at) < 0):
        raise ValueError("at must be non-decreasing message indices")
    st = FillFeatureState(params, tick_size=tick_size)
    bk, tr = paths.book, paths.trades
    # Python floats, as the live book gives them
    barr, bts, valid = bk.arrival.tolist(), bk.ts_ms.tolist(), bk.valid.tolist()
    snap = bk.snapshot.tolist()
    bid, bsz, ask, asz = bk.bid.tolist(), bk.bid_sz.tolist(), bk.ask.tolist(), bk.ask_sz.tolist()
    bd, ad = paths.bid_depth.tolist(), paths.ask_depth.tolist()
    tarr, tts, tpx, tsz, tbuy = (tr.arrival.tolist(), tr.ts_ms.tolist(), tr.price.tolist(),
                                 tr.size.tolist(), tr.buy.tolist())
    at_l, buy_l, q_l = at.tolist(), np.asarray(buy, bool).tolist(), np.asarray(
        order_size, np.float64).tolist()
    out = {f: np.full(len(at_l), math.nan) for f in FILL_FEATURES}
    cols = [out[f] for f in FILL_FEATURES]
    nt, ti, k = len(tarr), 0, 0
    on_trade, on_book, features = st.on_trade, st.on_book, st.features
    last = at_l[-1] if at_l else -1
    for i in range(last + 1):
        a = barr[i]
        while ti < nt and tarr[ti] < a:
            on_trade(tts[ti], tpx[ti], tsz[ti], tbuy[ti])
            ti += 1
        if valid[i]:
            if snap[i]:
                st.reset_book()  # a resync: no flow history across it
            on_book(bts[i], bid[i], bsz[i], ask[i], asz[i], bd[i], ad[i])
        else:
            st.on_invalid()
        while k < len(at_l) and at_l[k] == i:
            f = features(bts[i], buy_l[k], q_l[k])
            for col, name in zip(cols, FILL_FEATURES, strict=True):
                col[k] = f[name]
            k += 1
    return out


def sample_moments(book: BookPath, every_ms: int) -> np.ndarray:
    """Indices of the first valid message at or after each ``every_ms`` step of exchange
    time (unique, increasing).

    >>> b = BookPath.from_arrays(arrival=[0, 1, 2, 3], ts_ms=[0, 400, 1100, 1200],
    ...                          bid=[1.0] * 4, bid_sz=[1.0] * 4, ask=[2.0] * 4,
    ...                          ask_sz=[1.0] * 4)
    >>> sample_moments(b, 1000).tolist()
    [0, 2]
    """
    if isinstance(every_ms, bool) or not isinstance(every_ms, int | np.integer) or every_ms < 1:
        raise ValueError(f"every_ms must be an integer >= 1, got {every_ms!r}")
    ok = np.flatnonzero(book.valid & np.isfinite(book.bid) & np.isfinite(book.ask))
    if not len(ok):
        return ok
    ts = book.ts_ms[ok]
    grid = np.arange(ts[0], ts[-1] + 1, every_ms)
    pos = np.unique(np.searchsorted(ts, grid, side="left"))
    return ok[pos[pos < len(ok)]]


def infer_tick(prices: np.ndarray) -> float:
    """The price grid step seen in the data: the smallest gap between distinct prices
    (used when the recording has no instrument metadata).

    >>> infer_tick(np.array([100.0, 100.3, 100.1, 100.1]))
    0.1
    """
    u = np.unique(prices[np.isfinite(prices) & (prices > 0)])
    d = np.diff(u)
    d = d[d > 0]
    if not len(d):
        raise ReplayError("cannot infer the tick size: fewer than two distinct prices; "
                          "record instrument metadata or pass the tick size")
    return float(f"{d.min():.10g}")


def _order_units(instrument: Instrument, quantity: float | None, notional: float | None,
                 price: np.ndarray) -> np.ndarray:
    """Order size in the book's units at each moment (contracts for swaps)."""
    if (quantity is None) == (notional is None):
        raise ValueError("give exactly one of quantity (base units) or notional (quote)")
    v = quantity if quantity is not None else notional
    if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
        raise ValueError(f"{'quantity' if quantity is not None else 'notional'} must be a "
                         f"number > 0, got {v!r}")
    # the cost pipeline's arithmetic (book units first, then per price), to the bit
    ct = instrument.ct_val
    return np.full(len(price), quantity / ct) if quantity is not None else notional / ct / price


def fill_dataset(recordings: Any, inst: str, *, quantity: float | None = None,
                 notional: float | None = None, horizon_s: float = 5.0, every_s: float = 1.0,
                 side: str = "both", queue: str = "conservative", power: float = 1.0,
                 params: FeatureParams | None = None, channel: str = "books",
                 ct_val: float | None = None, progress: bool = False) -> pd.DataFrame:
    """Features and fill labels of a limit order at sampled moments of the recording(s).

    The order: ``quantity`` (base units) or ``notional`` (quote currency) posted at the
    best bid (``side="buy"``), the best ask (``"sell"``) or both (two rows per moment).
    One row per moment and side, in time order: ``rec``, ``ts_ms``, ``recv_ns``, ``side``,
    the features (:data:`~simlab.models.fill_features.FILL_FEATURES`), ``label`` (1 filled
    within ``horizon_s``, 0 not, -1 dropped: horizon not fully observed), ``reason``,
    ``fill_ms``, ``price``, ``order_size`` (book units). ``df.attrs`` holds the settings, the
    tick size used and counts per reason.

    >>> df = fill_dataset("rec", "BTC-USDT", quantity=0.01, horizon_s=5)   # doctest: +SKIP
    >>> df.loc[df.label >= 0, "label"].mean()                              # doctest: +SKIP
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    for name, v in (("horizon_s", horizon_s), ("every_s", every_s)):
        if isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v)
                                       and v > 0):
            raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")
    params = params or FeatureParams()
    horizon_ms, every_ms = round(horizon_s * 1000), max(1, round(every_s * 1000))
    recs = open_recordings(recordings)
    sides = [True, False] if side == "both" else [side == "buy"]
    parts, ticks = [], []
    bar = _bar(progress, 3 * len(recs), f"labelling {inst}")
    for r, rec in enumerate(recs):
        meta = rec.manifest.get("instruments", {}).get(inst)
        instrument = Instrument.from_metadata(inst, meta, ct_val=ct_val)
        bar.set_postfix_str(f"{Path(rec.path).name}: reading")
        paths = stream_paths(rec, inst, channel=channel, depth_levels=params.depth_levels)
        bar.update(1)
        if not len(paths.trades):
            raise ReplayError(f"{rec.path}: no {TRADES_CHANNEL} recorded for {inst}: fill "
                              "labels need the trades (record with --channels "
                              f"{channel},{TRADES_CHANNEL})")
        tick = instrument.tick_sz
        if not tick > 0:
            tick = infer_tick(paths.book.price)
            log.info("%s: no tick size in the metadata of %s; %g inferred from the prices",
                     rec.path, inst, tick)
        ticks.append(float(tick))
        moments = sample_moments(paths.book, every_ms)
        at = np.repeat(moments, len(sides))
        buy = np.tile(np.array(sides, bool), len(moments))
        px = np.where(buy, paths.book.bid[at], paths.book.ask[at])
        q = _order_units(instrument, quantity, notional, px)
        bar.set_postfix_str(f"{Path(rec.path).name}: features")
        feats = run_features(paths, at, buy, q, params=params, tick_size=tick)
        bar.update(1)
        bar.set_postfix_str(f"{Path(rec.path).name}: labels")
        lab = label_fills(paths.book, paths.trades, at, buy=buy, order_size=q,
                          horizon_ms=horizon_ms, queue=queue, power=power)
        part = pd.DataFrame({"rec": np.full(len(at), r, np.int64),
                             "ts_ms": paths.book.ts_ms[at], "recv_ns": paths.recv_ns[at],
                             "side": np.where(buy, "buy", "sell"), **feats})
        for c in ("label", "reason", "fill_ms", "price", "order_size"):
            part[c] = lab[c].to_numpy()
        parts.append(part)
        bar.update(1)
    bar.close()
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    df.attrs.update({
        "inst": inst, "channel": channel, "horizon_s": float(horizon_s),
        "every_s": float(every_s), "side": side, "queue": queue, "power": float(power),
        "quantity": quantity, "notional": notional, "features": params.as_dict(),
        "recordings": [str(r.path) for r in recs],
        "tick_size": ticks[0] if ticks else None,  # the first recording's, as used
        "reasons": {str(k): int(v) for k, v in df["reason"].value_counts().sort_index().items()}
        if len(df) else {}})
    return df


def _bar(enabled: bool | None, total: int, desc: str):
    from simlab.progress import bar

    return bar(enabled, total=total, desc=desc, unit="step", leave=False)


__all__ = ["SIDES", "StreamPaths", "fill_dataset", "run_features", "sample_moments",
           "stream_paths", "trade_path"]
