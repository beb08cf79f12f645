"""Columnar replay: a recording's level rows -> L2 books, in the C kernel.

The data is the real OKX capture (../shared/okx-real/cryptofeed/OKX.ws.1.0: 290 `books`
pushes over 3 instruments, 8,264 level rows) repeated to at least 140,000 frames. Each frame
is normalised (`simlab.okx.normalize`) into the columnar `levels` layout a recording stores
(not timed); the timed part is `simlab.book.batch.rebuild_books` over all book messages:
(a) top of book only, (b) plus one walk (buy 1 BTC-ish in base units) per message,
(c) plus the depth of the top 5 levels, and (d) the pure-Python reference on a slice.
"""

from __future__ import annotations

import time

import numpy as np

from simlab.book.batch import NO_LEVEL, SNAPSHOT, Order, rebuild_books
from simlab.book.l2 import default_impl
from simlab.okx.normalize import normalize

from ._common import CAPTURE, capture_frames, median_rate, repeat_to

MIN_FRAMES = 140_000
PY_MESSAGES = 2_000  # the pure-Python reference runs on a slice of this many messages
SIDES = {"bid": 0, "ask": 1, None: NO_LEVEL}


def level_arrays(frames: list[bytes]) -> dict[str, np.ndarray]:
    """The book frames as ``rebuild_books`` arguments: one stream per (channel, instrument).

    >>> a = level_arrays([b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot",'
    ...                   b'"data":[{"asks":[["2","1","0","1"]],"bids":[],"ts":"1"}]}'])
    >>> a["msg_start"].tolist(), a["msg_flags"].tolist(), a["row_px"].tolist()
    ([0, 1], [1], [2.0])
    """
    streams: dict[tuple[str, str], int] = {}
    start, stream, flags, side, px, sz = [0], [], [], [], [], []
    for f in frames:
        n = normalize(f)
        if n.kind != "book":
            continue
        rows = n.rows
        stream.append(streams.setdefault((n.channel, n.inst_id), len(streams)))
        flags.append(SNAPSHOT if rows["snapshot"][0] else 0)
        side += [SIDES[s] for s in rows["side"]]
        px += rows["price"]
        sz += rows["size"]
        start.append(len(side))
    return {"msg_start": np.array(start, np.int64), "msg_stream": np.array(stream, np.int32),
            "msg_flags": np.array(flags, np.uint8), "row_side": np.array(side, np.uint8),
            "row_px": np.array(px, np.float64),  # None (heartbeat rows) -> NaN
            "row_sz": np.array(sz, np.float64)}


def _timed(arrays: dict[str, np.ndarray], **kw) -> tuple[int, float]:
    t = time.perf_counter()
    rebuild_books(**arrays, **kw)
    return len(arrays["msg_stream"]), time.perf_counter() - t


def _slice(arrays: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    start = arrays["msg_start"][: n + 1]
    end = int(start[-1])
    return {"msg_start": start, "msg_stream": arrays["msg_stream"][:n],
            "msg_flags": arrays["msg_flags"][:n], "row_side": arrays["row_side"][:end],
            "row_px": arrays["row_px"][:end], "row_sz": arrays["row_sz"][:end]}


def run(runs: int = 5) -> list[dict]:
    if not CAPTURE.exists():
        return [{"what": "level rows -> books", "data": f"{CAPTURE} absent: skipped",
                 "n": "-", "rate": "-", "spread": "-", "note": ""}]
    frames = repeat_to(capture_frames(), MIN_FRAMES)
    arrays = level_arrays(frames)
    n, r = len(arrays["msg_stream"]), len(arrays["row_side"])
    data = f"OKX.ws.1.0 x{len(frames) // 410}: {n:,} book msgs, {r:,} rows"
    buy1 = [Order(buy=True, amount=1.0)]
    configs = [("top of book", {}), ("top + walk (buy 1 base)", {"orders": buy1}),
               ("top + walk + depth 5", {"orders": buy1, "depth_n": 5})]
    impl = default_impl()
    rows = []
    for what, kw in configs:
        rate, spread = median_rate(lambda kw=kw: _timed(arrays, impl=impl, **kw), runs)
        rows.append({"what": f"level rows -> books, {what} ({impl})", "data": data, "n": n,
                     "rate": rate, "spread": spread, "note": "book msgs/s"})
    small = _slice(arrays, PY_MESSAGES)
    py_rate, py_spread = median_rate(lambda: _timed(small, impl="python"), max(1, runs // 2))
    note = "book msgs/s"
    if impl == "c":
        note += f"; C (a) is {rows[0]['rate'] / py_rate:,.0f}x"
    rows.append({"what": "level rows -> books, top of book (pure-Python reference)",
                 "data": f"first {PY_MESSAGES:,} book msgs", "n": PY_MESSAGES, "rate": py_rate,
                 "spread": py_spread, "note": note})
    return rows
