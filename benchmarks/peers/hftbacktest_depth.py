"""Peer: hftbacktest's market depths replaying the same real OKX level events.

The capture's book level events (every bid/ask row of every ``books`` message; see
:func:`level_events`) are converted to hftbacktest's event array (``event_dtype``, one array
per instrument = one asset): an update row becomes ``DEPTH_EVENT | BUY/SELL_EVENT``, a snapshot
becomes one ``DEPTH_CLEAR_EVENT`` without a side (hftbacktest then clears both sides: OKX's
snapshot replaces the whole book) followed by its rows as ``DEPTH_SNAPSHOT_EVENT``. Every row
carries ``EXCH_EVENT | LOCAL_EVENT`` as its own converters produce, so both the exchange
simulator's book and the strategy's local book are kept, i.e. hftbacktest applies each row
twice; a second configuration flags rows ``LOCAL_EVENT`` only (the local book alone, no
exchange-side matching possible), its fastest way to rebuild a book.

The clock is synthetic: exch_ts = local_ts = 1 us per book message in arrival order (the
capture's own timestamps are per instrument and restart with each repetition, and only the
order matters to a depth). Both Python-exposed depths are timed, ``ROIVectorMarketDepth``
(range of interest = the data's price range) and ``HashMapMarketDepth``, in a
``numba.njit`` loop as hftbacktest's docs write it: ``elapse`` to the end of the data, and,
like simlab's "top of book" replay, ``wait_next_feed`` once per book message reading the
best bid/ask of every asset. Compilation is excluded (a warm-up run first) and so is building
the backtest object (it only maps the arrays). Rates are level rows/s (clear events not
counted). hftbacktest does not verify OKX checksums; the check compares its books with
simlab's after every book message of the first cycle and the full depth at the end of it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import orjson

from simlab.okx.messages import FULL_BOOK_CHANNELS, INCREMENTAL_BOOK_CHANNELS

from .._common import median_rate
from ._shared import first_cycle, simlab_syncs
from .nautilus_book import rest_metadata

NAME = "hftbacktest"
PIP = "hftbacktest>=2.4"

#: One row per book level in arrival order; a message without levels (heartbeat) gets one
#: row with ``side`` NO_LEVEL (2) and NaN price/size, as simlab's ``levels`` table has it.
LEVEL_EVENT_FIELDS = [("msg", "<i8"), ("stream", "<i4"), ("snapshot", "u1"), ("side", "u1"),
                      ("px", "<f8"), ("sz", "<f8"), ("ts_ms", "<i8")]
BID, ASK, NO_LEVEL = 0, 1, 2
TS_STEP_NS = 1_000
UNTIL_END = 1 << 62


def version() -> str | None:
    """The installed hftbacktest version, or None when it cannot be imported."""
    try:
        import hftbacktest
    except ImportError:
        return None
    return hftbacktest.__version__


def level_events(frames: list[bytes]) -> np.ndarray:
    """Every bid/ask row of every book message in ``frames`` as one structured array.

    Streams are numbered by first appearance of (channel, instId), as
    ``benchmarks.bench_replay.level_arrays`` does; their names are in
    ``events.dtype.metadata["streams"]``. :func:`to_simlab` turns the array into
    ``rebuild_books`` arguments, :func:`to_hftbacktest` into hftbacktest events.

    >>> ev = level_events([b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot",'
    ...                    b'"data":[{"asks":[["2","1","0","1"]],"bids":[["1","3","0","1"]],'
    ...                    b'"ts":"5"}]}'])
    >>> ev["side"].tolist(), ev["px"].tolist(), ev.dtype.metadata["streams"]
    ([0, 1], [1.0, 2.0], [('books', 'X')])
    """
    streams: dict[tuple[str, str], int] = {}
    msg, stream, snap, side, px, sz, ts = [], [], [], [], [], [], []
    k = 0
    for f in frames:
        m = orjson.loads(f)
        arg = m.get("arg")
        if arg is None or "data" not in m:
            continue
        ch = arg.get("channel")
        if ch in INCREMENTAL_BOOK_CHANNELS:
            is_snap = m.get("action") == "snapshot"
        elif ch in FULL_BOOK_CHANNELS:
            is_snap = True
        else:
            continue
        s = streams.setdefault((ch, arg["instId"]), len(streams))
        for d in m["data"]:
            bids, asks = d["bids"], d["asks"]
            n = len(bids) + len(asks)
            if n:
                side += [BID] * len(bids) + [ASK] * len(asks)
                px += [lv[0] for lv in bids] + [lv[0] for lv in asks]
                sz += [lv[1] for lv in bids] + [lv[1] for lv in asks]
            else:
                n = 1
                side.append(NO_LEVEL)
                px.append("nan")
                sz.append("nan")
            msg += [k] * n
            stream += [s] * n
            snap += [is_snap] * n
            ts += [int(d["ts"])] * n
            k += 1
    names = [key for key, _ in sorted(streams.items(), key=lambda kv: kv[1])]
    out = np.empty(len(side), np.dtype(LEVEL_EVENT_FIELDS, metadata={"streams": names}))
    out["msg"], out["stream"], out["snapshot"], out["side"] = msg, stream, snap, side
    out["px"] = np.array(px, dtype=np.float64)
    out["sz"] = np.array(sz, dtype=np.float64)
    out["ts_ms"] = ts
    return out


def level_rows(events: np.ndarray) -> int:
    """Number of real level rows (heartbeat rows excluded)."""
    return int(np.count_nonzero(events["side"] != NO_LEVEL))


def to_simlab(events: np.ndarray) -> dict[str, np.ndarray]:
    """``simlab.book.batch.rebuild_books`` arguments for the same events (equal to
    ``bench_replay.level_arrays`` on the same frames)."""
    from simlab.book.batch import SNAPSHOT

    msg = events["msg"]
    first = np.flatnonzero(np.r_[True, msg[1:] != msg[:-1]]) if len(msg) else np.zeros(0, int)
    start = np.r_[first, len(msg)].astype(np.int64)
    return {"msg_start": start, "msg_stream": events["stream"][first].astype(np.int32),
            "msg_flags": np.where(events["snapshot"][first] != 0, SNAPSHOT, 0).astype(np.uint8),
            "row_side": events["side"].astype(np.uint8), "row_px": events["px"].copy(),
            "row_sz": events["sz"].copy()}


def to_hftbacktest(events: np.ndarray, local_only: bool = False) -> list[np.ndarray]:
    """hftbacktest event arrays, one per stream (asset), from :func:`level_events`."""
    import hftbacktest as hb

    seen = hb.LOCAL_EVENT if local_only else hb.EXCH_EVENT | hb.LOCAL_EVENT
    out = []
    for s in range(len(events.dtype.metadata["streams"])):
        sub = events[events["stream"] == s]
        msg = sub["msg"]
        first = np.r_[True, msg[1:] != msg[:-1]] if len(msg) else np.zeros(0, bool)
        clear_at = np.flatnonzero(first & (sub["snapshot"] != 0))
        rows = np.flatnonzero(sub["side"] != NO_LEVEL)
        # a clear sorts just before the first row of its snapshot
        order = np.argsort(np.r_[2 * clear_at, 2 * rows + 1], kind="stable")
        src = np.r_[clear_at, rows][order]
        is_clear = np.r_[np.ones(len(clear_at), bool), np.zeros(len(rows), bool)][order]
        r = sub[src]
        ev = np.empty(len(src), hb.event_dtype)
        kind = np.where(r["snapshot"] != 0, hb.DEPTH_SNAPSHOT_EVENT, hb.DEPTH_EVENT)
        side = np.where(r["side"] == BID, hb.BUY_EVENT, hb.SELL_EVENT)
        ev["ev"] = np.where(is_clear, hb.DEPTH_CLEAR_EVENT, kind | side) | seen
        ev["exch_ts"] = ev["local_ts"] = (r["msg"] + 1) * TS_STEP_NS
        ev["px"] = np.where(is_clear, 0.0, r["px"])
        ev["qty"] = np.where(is_clear, 0.0, r["sz"])
        ev["order_id"], ev["ival"], ev["fval"] = 0, 0, 0.0
        out.append(ev)
    return out


def make_assets(hb_events: list[np.ndarray], names: list[tuple[str, str]],
                roi: bool, meta: dict[str, dict[str, Any]] | None = None) -> list:
    """One ``BacktestAsset`` per stream: tick/lot size and contract terms injected from OKX's
    instrument metadata; ROI = the data's price range when ``roi``. hftbacktest reads the
    arrays in place (no copy): keep them alive as long as the backtest."""
    from hftbacktest import BacktestAsset

    meta = rest_metadata() if meta is None else meta
    assets = []
    for ev, (_, inst) in zip(hb_events, names, strict=True):
        m = meta[inst]
        tick, lot = float(m["tickSz"]), float(m["lotSz"])
        ct = float(m.get("ctVal") or 1.0)
        a = BacktestAsset().data(ev)
        a = a.inverse_asset(ct) if m.get("ctType") == "inverse" else a.linear_asset(ct)
        a = (a.constant_order_latency(0, 0).risk_adverse_queue_model()
             .no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
             .tick_size(tick).lot_size(lot).last_trades_capacity(0))
        if roi:
            px = ev["px"][ev["px"] > 0]
            a = a.roi_lb(float(px.min()) - tick).roi_ub(float(px.max()) + tick)
        assets.append(a)
    return assets


_JIT: dict[str, Any] = {}


def _jit() -> dict[str, Any]:
    """The numba-compiled drivers (compiled lazily: numba is hftbacktest's dependency)."""
    if not _JIT:
        from numba import njit

        @njit
        def to_end(hbt):
            while hbt.elapse(UNTIL_END) == 0:
                pass
            return hbt.current_timestamp

        @njit
        def tops(hbt, out):
            # out[k] = (bid tick, bid qty, ask tick, ask qty) of every asset after the k-th
            # feed stop; the last feed comes back as 1 (end of data) rather than 2
            k = 0
            while k < out.shape[0]:
                r = hbt.wait_next_feed(False, UNTIL_END)
                if r != 1 and r != 2:
                    break
                for a in range(out.shape[1]):
                    d = hbt.depth(a)
                    # prices in ticks (what the depth keeps); not best_bid_qty: in 2.4.4
                    # ROIVectorMarketDepth's returns the price
                    bid, ask = d.best_bid_tick, d.best_ask_tick
                    out[k, a, 0] = bid
                    out[k, a, 1] = d.bid_qty_at_tick(bid)
                    out[k, a, 2] = ask
                    out[k, a, 3] = d.ask_qty_at_tick(ask)
                k += 1
                if r == 1:
                    break
            return k

        _JIT.update(to_end=to_end, tops=tops)
    return _JIT


DEPTHS = ("ROIVectorMarketDepth", "HashMapMarketDepth")


def backtest(depth: str, assets: list):
    """A ``ROIVectorMarketDepthBacktest`` or ``HashMapMarketDepthBacktest`` on ``assets``."""
    import hftbacktest as hb

    return getattr(hb, depth + "Backtest")(assets)


def _book_levels(depth: str, d) -> tuple[list, list]:
    """All (price in ticks, qty) levels of a depth, best first."""
    tick = d.tick_size
    if depth == "ROIVectorMarketDepth":
        lb = d.roi_lb_tick
        bd, ad = np.array(d.bid_depth), np.array(d.ask_depth)
        bids = [(int(i) + lb, float(bd[i])) for i in np.flatnonzero(bd > 0)[::-1]]
        asks = [(int(i) + lb, float(ad[i])) for i in np.flatnonzero(ad > 0)]
        return bids, asks
    snap = d.snapshot()
    rows = [(int(ev["ev"]), round(float(ev["px"]) / tick), float(ev["qty"])) for ev in snap]
    d.snapshot_free(snap)
    import hftbacktest as hb

    bids = sorted(((t, q) for e, t, q in rows if e & hb.BUY_EVENT and q > 0), reverse=True)
    asks = sorted((t, q) for e, t, q in rows if e & hb.SELL_EVENT and q > 0)
    return bids, asks


def _simlab_reference(frames: list[bytes]) -> tuple[list, dict]:
    """simlab's top (bid, bid size, ask, ask size) after each book message, and its syncs."""
    syncs: dict[tuple[str, str], Any] = {}
    tops = []
    for _, m, s in simlab_syncs(frames):
        key = (m.channel, m.inst_id)
        syncs[key] = s
        b = s.book
        tops.append((key, (b.best_bid, b.best_bid_size, b.best_ask, b.best_ask_size)))
    return tops, syncs


def _top_ticks(top: tuple, tick: float) -> tuple:
    """simlab's (bid, bid size, ask, ask size) with prices in ticks, None for an empty side."""
    bid, bsz, ask, asz = top
    return (None if math.isnan(bid) else round(bid / tick), bsz,
            None if math.isnan(ask) else round(ask / tick), asz)


def _hb_top(g: np.ndarray) -> tuple:
    """A row of ``tops`` output in the same form (hftbacktest marks an empty side with an
    out-of-range tick and quantity 0 -- simlab's sizes are then NaN)."""
    bid, bsz, ask, asz = (float(x) for x in g)
    empty_b, empty_a = abs(bid) >= 2.0**62, abs(ask) >= 2.0**62
    return (None if empty_b else int(bid), math.nan if empty_b else bsz,
            None if empty_a else int(ask), math.nan if empty_a else asz)


def _same_top(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[2] == b[2] and all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)
        for x, y in ((a[1], b[1]), (a[3], b[3])))


def check(frames: list[bytes], depths: tuple[str, ...] = DEPTHS) -> dict:
    """Replay ``frames`` (e.g. the first cycle) through each depth and through simlab: count
    the book messages after which the instrument's best bid/ask (price, size) agree, and
    whether the full depth agrees at the end. Prices are compared in ticks (what
    hftbacktest keeps), sizes to 1e-9 relative (it keeps them as floats)."""
    events = level_events(frames)
    names = events.dtype.metadata["streams"]
    ref, syncs = _simlab_reference(frames)
    meta = rest_metadata()
    ticks = [float(meta[inst]["tickSz"]) for _, inst in names]
    stream_of = {key: i for i, key in enumerate(names)}
    out: dict[str, Any] = {"book_msgs": len(ref),
                           "simlab_checksums_verified":
                               sum(s.stats.checksum_verified for s in syncs.values()),
                           "simlab_checksums_failed":
                               sum(s.stats.checksum_failed for s in syncs.values())}
    jit = _jit()
    hb_events = to_hftbacktest(events)  # must outlive the backtests: they read it in place
    for depth in depths:
        hbt = backtest(depth, make_assets(hb_events, names, depth.startswith("ROI")))
        got = np.full((len(ref), len(names), 4), np.nan)
        stops = jit["tops"](hbt, got)
        same = 0
        for k, (key, top) in enumerate(ref):
            a = stream_of[key]
            same += _same_top(_hb_top(got[k, a]), _top_ticks(top, ticks[a]))
        depth_equal = {}
        for key, s in syncs.items():
            a = stream_of[key]
            tick = ticks[a]
            theirs = tuple([(round(float(p) / tick), float(q)) for p, q, _ in s.book.levels(side)]
                           for side in ("bid", "ask"))
            ours = _book_levels(depth, hbt.depth(a))
            depth_equal[key[1]] = all(
                len(o) == len(t) and all(po == pt and math.isclose(qo, qt, rel_tol=1e-9)
                                         for (po, qo), (pt, qt) in zip(o, t, strict=True))
                for o, t in zip(ours, theirs, strict=True))
        hbt.close()
        out[depth] = {"feed_stops": int(stops), "same_top": same, "depth_equal": depth_equal}
    return out


def _timed(depth: str, hb_events: list, names: list, how: str, n_rows: int,
           n_msgs: int) -> tuple[int, float]:
    hbt = backtest(depth, make_assets(hb_events, names, depth.startswith("ROI")))
    jit = _jit()
    if how == "to_end":
        t = time.perf_counter()
        jit["to_end"](hbt)
        dt = time.perf_counter() - t
    else:
        out = np.empty((n_msgs, len(names), 4))
        t = time.perf_counter()
        jit["tops"](hbt, out)
        dt = time.perf_counter() - t
    hbt.close()
    return n_rows, dt


def run(frames: list[bytes], runs: int) -> list[dict]:
    """Rows per depth x configuration (see the module docstring), with the first-cycle check."""
    cycle = first_cycle(frames)
    chk = check(cycle)
    events = level_events(frames)
    names = events.dtype.metadata["streams"]
    n_rows = level_rows(events)
    n_msgs = int(events["msg"][-1]) + 1 if len(events) else 0
    data = (f"OKX.ws.1.0 x{len(frames) // len(cycle)}: {n_msgs:,} book msgs, "
            f"{n_rows:,} level rows")
    both, local = to_hftbacktest(events), to_hftbacktest(events, local_only=True)
    configs = [("to_end", both, "elapse to end, EXCH|LOCAL events (exchange + local book)"),
               ("to_end", local, "elapse to end, LOCAL events only (local book only)"),
               ("tops", both, "wait_next_feed per book msg + best bid/ask (tick, qty) of every "
                              "asset, EXCH|LOCAL events")]
    rows = []
    for depth in DEPTHS:
        c = chk[depth]
        ok = c["same_top"] == chk["book_msgs"] and all(c["depth_equal"].values())
        note = (f"{'' if ok else 'CHECK FAILED: '}top == simlab after {c['same_top']}/"
                f"{chk['book_msgs']} book msgs of cycle 1, full depth "
                f"{'equal' if all(c['depth_equal'].values()) else 'DIFFERS'}; no checksum "
                "(hftbacktest does not verify OKX's); numba compile and backtest build excluded")
        for how, hb_events, label in configs:
            rate, spread = median_rate(
                lambda d=depth, e=hb_events, h=how: _timed(d, e, names, h, n_rows, n_msgs), runs)
            rows.append({"what": f"hftbacktest {depth}Backtest, {label}", "data": data,
                         "n": n_rows, "rate": rate, "spread": spread, "unit": "level rows/s",
                         "note": f"= {rate * n_msgs / n_rows:,.0f} book msgs/s; {note}"})
    return rows
