"""The columnar replay kernel (simlab.book.batch / simlab._native.replay_books).

- a hand-built example with values worked out by hand;
- generated message sequences: the C kernel against the pure-Python reference, bitwise;
- the same sequences against the live path, the exact decimal book (L2Book, C core) fed the
  wire strings message by message: top of book, walks and depths must be bitwise equal;
- the real OKX capture: top of book after every message against BookSync(L2Book);
- bad inputs raise clear errors, from both implementations.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import capture_frames, real

from simlab.book import IMPLS, L2Book
from simlab.book.batch import (
    ASK,
    BID,
    NO_LEVEL,
    SKIP,
    SNAPSHOT,
    Order,
    rebuild_books,
    replay_books_py,
)

HAVE_C = "c" in IMPLS
IMPLS_HERE = ["python", "c"] if HAVE_C else ["python"]
needs_c = pytest.mark.skipif(not HAVE_C, reason="C core not built")
NAN = math.nan

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same_bits(a, b) -> bool:
    """Bitwise equality of float arrays (a NaN matches only a NaN with the same bits)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def arrays(msgs):
    """``[(stream, flags, [(side, px, sz), ...]), ...]`` -> rebuild_books arguments; px/sz
    may be decimal strings (parsed with float(), as the recorder does) or floats."""
    start, stream, flags, side, px, sz = [0], [], [], [], [], []
    for s, f, rows in msgs:
        stream.append(s)
        flags.append(f)
        for sd, p, z in rows:
            side.append(sd)
            px.append(float(p))
            sz.append(float(z))
        start.append(len(side))
    return {"msg_start": np.array(start, np.int64), "msg_stream": np.array(stream, np.int32),
            "msg_flags": np.array(flags, np.uint8), "row_side": np.array(side, np.uint8),
            "row_px": np.array(px, np.float64), "row_sz": np.array(sz, np.float64)}


# -- a hand-built example ------------------------------------------------------------------

HB = (NO_LEVEL, NAN, NAN)
EXAMPLE = [
    # 0: stream 0 snapshot, each side best first (the fast path)
    (0, SNAPSHOT, [(BID, "100", "2"), (BID, "99.5", "1"), (ASK, "100.5", "3"), (ASK, "101", "4")]),
    # 1: stream 1 snapshot
    (1, SNAPSHOT, [(BID, "0.3", "10"), (ASK, "0.4", "5")]),
    # 2: stream 0: delete the best bid, a new best ask, a deep bid
    (0, 0, [(BID, "100", "0"), (BID, "98", "7"), (ASK, "100.25", "1")]),
    # 3: stream 0 heartbeat (a row without a level)
    (0, 0, [HB]),
    # 4: stream 0: delete an absent level (no-op), resize the best ask
    (0, 0, [(BID, "97", "0"), (ASK, "100.25", "2")]),
    # 5: stream 1 skipped (a gap): its book is gone
    (1, SKIP, [(BID, "0.3", "1")]),
    # 6: stream 1, a message without rows
    (1, 0, []),
    # 7: stream 1 snapshot out of order, with a zero size and a repeated price
    (1, SNAPSHOT, [(BID, "0.1", "1"), (BID, "0.2", "2"), (ASK, "0.3", "0"), (ASK, "0.4", "1"),
                   (ASK, "0.5", "9"), (ASK, "0.5", "0")]),
    # 8: stream 0 unchanged: the walks and depths below are read here
    (0, 0, []),
]
EXPECTED_TOP = [
    (100.0, 2.0, 100.5, 3.0),
    (0.3, 10.0, 0.4, 5.0),
    (99.5, 1.0, 100.25, 1.0),
    (99.5, 1.0, 100.25, 1.0),
    (99.5, 1.0, 100.25, 2.0),
    (NAN, NAN, NAN, NAN),
    (NAN, NAN, NAN, NAN),
    (0.2, 2.0, 0.4, 1.0),
    (99.5, 1.0, 100.25, 2.0),
]


@pytest.mark.parametrize("impl", IMPLS_HERE)
def test_hand_built_example(impl):
    orders = [Order(True, 5.0), Order(False, 150.0, quote=True), Order(True, 100.0)]
    emit = np.zeros(len(EXAMPLE), bool)
    emit[[7, 8]] = True
    b = rebuild_books(**arrays(EXAMPLE), orders=orders, depth_n=2, emit=emit, impl=impl)
    top = np.column_stack([b.bid_px, b.bid_sz, b.ask_px, b.ask_sz])
    assert same_bits(top, EXPECTED_TOP)
    # message 8, stream 0: bids 99.5 x 1, 98 x 7; asks 100.25 x 2, 100.5 x 3, 101 x 4
    w = b.walk[8]
    # buy 5 base: 2 at 100.25 then 3 at 100.5
    assert same_bits(w[0], [5.0, 2 * 100.25 + 3 * 100.5, 100.25, 100.5, 2, 0.0])
    # sell 150 quote: 1 at 99.5 (99.5 quote), the remaining 50.5 quote at 98
    take = 50.5 / 98
    assert same_bits(w[1], [1.0 + take, 99.5 + take * 98, 99.5, 98.0, 2, 50.5 - take * 98])
    # buy 100 base, more than the 9 on offer
    assert same_bits(w[2], [9.0, 200.5 + 301.5 + 404.0, 100.25, 101.0, 3, 91.0])
    # message 7, stream 1: bids 0.2 x 2, 0.1 x 1; asks 0.4 x 1, 0.5 deleted again
    assert same_bits(b.walk[7, 2], [1.0, 0.4, 0.4, 0.4, 1, 99.0])
    assert same_bits(b.depth[8], [1.0 + 7.0, 2.0 + 3.0])
    assert same_bits(b.depth[7], [3.0, 1.0])
    # not emitted: NaN
    assert np.isnan(b.walk[:7]).all() and np.isnan(b.depth[:7]).all()


@pytest.mark.parametrize("impl", IMPLS_HERE)
def test_without_walks_or_depth(impl):
    b = rebuild_books(**arrays(EXAMPLE), impl=impl)
    assert b.walk is None and b.depth is None
    assert same_bits(b.ask_sz, [t[3] for t in EXPECTED_TOP])


@pytest.mark.parametrize("impl", IMPLS_HERE)
def test_empty_input(impl):
    b = rebuild_books([0], [], [], [], [], [], orders=[Order(True, 1.0)], depth_n=3, impl=impl)
    assert b.bid_px.shape == (0,) and b.walk.shape == (0, 1, 6) and b.depth.shape == (0, 2)


# -- generated sequences -------------------------------------------------------------------

TICKS = ["0.1", "0.01", "0.5", "1", "0.0001"]
SIZES = ["0", "0.000", "0.5", "1", "1.0", "2.25", "3", "0.001", "10", "123.456"]


@st.composite
def sequences(draw):
    """Messages of wire strings over 1-3 streams: ``[(stream, flags, [(side, px, sz)])]``.
    The same price may be spelt two ways ("1.5" and "1.50")."""
    n_streams = draw(st.integers(1, 3))
    tick = Decimal(draw(st.sampled_from(TICKS)))
    mid = draw(st.integers(20, 60))
    msgs = []
    for _ in range(draw(st.integers(1, 25))):
        s = draw(st.integers(0, n_streams - 1))
        flags = draw(st.sampled_from([0, 0, 0, 0, SNAPSHOT, SNAPSHOT, SKIP, SKIP | SNAPSHOT]))
        rows = []
        for _ in range(draw(st.integers(0, 14))):
            side = draw(st.sampled_from([BID, ASK, BID, ASK, NO_LEVEL]))
            if side == NO_LEVEL:
                rows.append(HB)
                continue
            k = draw(st.integers(1, mid)) if side == BID else draw(st.integers(mid, 2 * mid))
            px = tick * k
            px = format(px, "f") if draw(st.booleans()) else format(px.normalize(), "f")
            rows.append((side, px, draw(st.sampled_from(SIZES))))
        if flags & SNAPSHOT and draw(st.booleans()):
            # as the exchange sends them: each side best first, each price once (fast path)
            seen, uniq = set(), []
            for r in rows:
                if r[0] == NO_LEVEL or Decimal(r[1]) not in seen:
                    uniq.append(r)
                    seen.add(Decimal(r[1]) if r[0] != NO_LEVEL else None)
            rows = sorted(uniq, key=lambda r: (r[0], -Decimal(r[1]) if r[0] == BID
                                               else Decimal(r[1]) if r[0] == ASK else 0))
        msgs.append((s, flags, rows))
    return n_streams, msgs


ORDERS = st.lists(st.builds(Order, st.booleans(),
                            st.sampled_from([0.001, 0.7, 1.0, 3.3, 7.0, 50.0, 1e6]),
                            st.booleans()), max_size=4)


@needs_c
@FAST
@given(sequences(), ORDERS, st.integers(0, 6), st.booleans())
def test_c_kernel_equals_python_reference_bitwise(seq, orders, depth_n, masked):
    n_streams, msgs = seq
    a = arrays(msgs)
    emit = (np.arange(len(msgs)) % 3 != 1) if masked else None
    c = rebuild_books(**a, n_streams=n_streams, orders=orders, depth_n=depth_n, emit=emit,
                      impl="c")
    p = rebuild_books(**a, n_streams=n_streams, orders=orders, depth_n=depth_n, emit=emit,
                      impl="python")
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz", "walk", "depth"):
        x, y = getattr(c, name), getattr(p, name)
        assert (x is None) == (y is None), name
        assert x is None or same_bits(x, y), name


def live_outputs(n_streams, msgs, orders, depth_n):
    """What the exact decimal book gives live, message by message, from the wire strings."""
    books = [L2Book(impl="c" if HAVE_C else "python") for _ in range(n_streams)]
    top, walk, depth = [], [], []
    for s, flags, rows in msgs:
        book = books[s]
        bids = [[p, z] for sd, p, z in rows if sd == BID]
        asks = [[p, z] for sd, p, z in rows if sd == ASK]
        if flags & SKIP:
            book.clear()
        elif flags & SNAPSHOT:
            book.apply_snapshot(bids, asks)
        else:
            book.apply_update(bids, asks)
        top.append((book.best_bid, book.best_bid_size, book.best_ask, book.best_ask_size))
        ws = []
        for o in orders:
            raw = book._core.walk(o.buy, o.amount, o.quote)   # Book_walk itself
            f = book.walk("buy" if o.buy else "sell",
                          **{"quote" if o.quote else "base": o.amount})
            assert same_bits([f.filled_base, f.filled_quote, f.best_price, f.worst_price,
                              f.levels], raw[:5])
            ws.append(raw)
        walk.append(ws)
        depth.append((book.depth("bid", levels=depth_n), book.depth("ask", levels=depth_n)))
    return np.array(top), np.array(walk, np.float64).reshape(len(msgs), len(orders), 6), \
        np.array(depth)


@FAST
@given(sequences(), ORDERS, st.integers(1, 6))
def test_kernel_equals_the_live_exact_book_bitwise(seq, orders, depth_n):
    n_streams, msgs = seq
    top, walk, depth = live_outputs(n_streams, msgs, orders, depth_n)
    b = rebuild_books(**arrays(msgs), n_streams=n_streams, orders=orders, depth_n=depth_n)
    assert same_bits(np.column_stack([b.bid_px, b.bid_sz, b.ask_px, b.ask_sz]), top)
    if orders:
        assert same_bits(b.walk, walk)
    assert same_bits(b.depth, depth)


@needs_c
def test_deep_books_c_equals_python():
    """Books of ~1,000 levels: growth, re-centring, changes at every depth."""
    rng = np.random.default_rng(7)
    msgs = []
    for i in range(300):
        if i % 100 == 0:
            ks = rng.permutation(np.arange(1, 1200))[:900]
            rows = [(BID, f"{k / 10:.1f}", "1") for k in sorted(ks, reverse=True)]
            rows += [(ASK, f"{(k + 1200) / 10:.1f}", "2") for k in sorted(ks)]
            if i == 100:
                rows.reverse()  # a snapshot in the wrong order: the slow path
            msgs.append((0, SNAPSHOT, rows))
            continue
        rows = []
        for _ in range(rng.integers(0, 60)):
            side = int(rng.integers(0, 2))
            k = int(rng.integers(1, 1200)) + (1200 if side == ASK else 0)
            rows.append((side, f"{k / 10:.1f}", str(rng.choice([0, 0, 1, 2.5, 4]))))
        msgs.append((0, 0, rows))
    a = arrays(msgs)
    orders = [Order(True, 300.0), Order(False, 5e4, quote=True)]
    c = rebuild_books(**a, orders=orders, depth_n=400, impl="c")
    p = rebuild_books(**a, orders=orders, depth_n=400, impl="python")
    for x, y in zip(c, p, strict=True):
        assert same_bits(x, y)
    assert c.walk[-1, 0, 4] > 50  # the walk really went deep


# -- the real capture ----------------------------------------------------------------------

def test_real_capture_matches_booksync():
    from simlab.okx import BookSync
    from simlab.okx.normalize import normalize
    from simlab.okx.sequence import Seq

    frames = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    syncs: dict[tuple[str, str], BookSync] = {}
    msgs, live = [], []
    sides = {"bid": BID, "ask": ASK, None: NO_LEVEL}
    orders = [Order(True, 1.0), Order(False, 2e4, quote=True)]
    walks, depths = [], []
    for f in frames:
        n = normalize(f)
        if n.kind != "book":
            continue
        key = (n.channel, n.inst_id)
        if key not in syncs:
            syncs[key] = BookSync(L2Book(n.inst_id, impl="c" if HAVE_C else "python"))
        sync = syncs[key]
        kind = sync.apply(n.msg)
        rows = list(zip(n.rows["side"], n.rows["price"], n.rows["size"], strict=True))
        if kind is Seq.DUPLICATE:
            flags, rows = 0, []
        elif kind in (Seq.GAP, Seq.NO_SNAPSHOT) or not sync.valid:
            flags = SKIP
        else:
            flags = SNAPSHOT if kind is Seq.SNAPSHOT else 0
        msgs.append((list(syncs).index(key), flags,
                     [(sides[s], NAN if p is None else p, NAN if z is None else z)
                      for s, p, z in rows]))
        b = sync.book
        live.append((b.best_bid, b.best_bid_size, b.best_ask, b.best_ask_size))
        walks.append([b._core.walk(o.buy, o.amount, o.quote) for o in orders])
        depths.append((b.depth("bid", levels=5), b.depth("ask", levels=5)))
    assert len(msgs) == 290 and len(syncs) == 3
    out = rebuild_books(**arrays(msgs), orders=orders, depth_n=5)
    assert same_bits(np.column_stack([out.bid_px, out.bid_sz, out.ask_px, out.ask_sz]), live)
    assert same_bits(out.walk, walks)
    assert same_bits(out.depth, depths)
    assert not np.isnan(out.bid_px).any()  # every message had a valid book


# -- bad inputs ----------------------------------------------------------------------------

def good():
    return arrays(EXAMPLE)


def _set(col, i, v):
    def change(a):
        a[col] = a[col].copy()
        a[col][i] = v
    return change


def _put(col, v):
    def change(a):
        a[col] = v
    return change


@pytest.mark.parametrize("impl", IMPLS_HERE)
@pytest.mark.parametrize(("change", "err", "match"), [
    (_put("row_px", ["1"] * 19), TypeError, "row_px must have dtype float64"),
    (_put("msg_flags", [0.5] * 9), TypeError, "msg_flags must have dtype uint8"),
    (_put("msg_start", np.arange(9)), ValueError, "msg_start must have len"),
    (_put("msg_flags", np.zeros(8, np.uint8)), ValueError, "msg_flags must have len"),
    (_put("row_sz", np.ones(10)), ValueError, "row_side, row_px and row_sz must have the same"),
    (_put("row_side", np.zeros((19, 1), np.uint8)), ValueError, "row_side must be 1-dim"),
    (_set("msg_stream", 5, 2), ValueError, r"msg_stream\[5\] must be in \[0, 2\), got 2"),
    (_set("msg_stream", 5, -1), ValueError, r"msg_stream\[5\] must be in \[0, 2\), got -1"),
    (_set("row_side", 6, 3), ValueError,
     r"row_side\[6\] must be 0 \(bid\), 1 \(ask\) or 2 \(no level\), got 3"),
    (_set("msg_start", 4, 8), ValueError,
     r"msg_start must be non-decreasing within \[0, 19\] \(the number of rows\), "
     r"got msg_start\[3\]=9, msg_start\[4\]=8"),
    (_set("msg_start", 9, 20), ValueError, r"got msg_start\[8\]=19, msg_start\[9\]=20"),
])
def test_bad_arrays(impl, change, err, match):
    a = good()
    change(a)
    with pytest.raises(err, match=match):
        rebuild_books(**a, n_streams=2, impl=impl)


@pytest.mark.parametrize("impl", IMPLS_HERE)
@pytest.mark.parametrize(("col", "row", "value", "match"), [
    ("row_px", 5, NAN, r"row_px\[5\] must be a finite price > 0, got nan"),
    ("row_px", 0, math.inf, r"row_px\[0\] must be a finite price > 0, got inf"),
    ("row_px", 1, 0.0, r"row_px\[1\] must be a finite price > 0"),
    ("row_sz", 6, -1.0, r"row_sz\[6\] must be a finite size >= 0, got -1.0"),
    ("row_sz", 14, NAN, r"row_sz\[14\] must be a finite size >= 0, got nan"),  # snapshot
    ("row_sz", 12, NAN, r"row_sz\[12\] must be a finite size >= 0"),  # in a skipped message
])
def test_bad_values_name_the_row(impl, col, row, value, match):
    a = good()
    a[col][row] = value
    with pytest.raises(ValueError, match=match):
        rebuild_books(**a, impl=impl)


@pytest.mark.parametrize("impl", IMPLS_HERE)
def test_heartbeat_rows_may_hold_nan(impl):
    a = good()
    assert a["row_side"][9] == NO_LEVEL and np.isnan(a["row_px"][9])
    rebuild_books(**a, impl=impl)


@pytest.mark.parametrize(("kw", "match"), [
    ({"orders": [Order(True, 0.0)]}, r"orders\[0\] must be Order"),
    ({"orders": [Order(True, 1.0), (True, math.nan, False)]}, r"orders\[1\] must be Order"),
    ({"orders": [(2, 1.0, False)]}, r"orders\[0\] must be Order"),
    ({"orders": [(True, 1.0), (True, 2.0), (False, 3.0)]}, "orders must be Order.* triples"),
    ({"orders": [(True, "lots", False)]}, "orders must be Order.* triples"),
    ({"depth_n": -1}, "depth_n must be an integer >= 0"),
    ({"emit": [1, 0]}, "emit must have len"),
    ({"impl": "rust"}, "impl must be 'c' or 'python'"),
    ({"n_streams": -1}, "n_streams must be >= 0"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        rebuild_books(**good(), **kw)


@needs_c
def test_native_checks_its_buffers():
    from simlab._native import replay_books

    a = good()
    n = len(a["msg_stream"])
    args = dict(a, n_streams=2, out_top=np.empty((n, 4)), orders=np.empty((0, 3)),
                out_walk=np.empty((n, 0, 6)), depth_n=0, out_depth=None)
    replay_books(**args)
    for name, value, err, match in [
        ("row_px", a["row_px"].astype(np.float32), TypeError, "row_px must have dtype float64"),
        ("msg_start", a["msg_start"].astype(np.int32), TypeError,
         "msg_start must have dtype int64"),
        ("msg_stream", a["msg_stream"].astype(np.int64), TypeError,
         "msg_stream must have dtype int32"),
        ("row_side", a["row_side"].astype(bool), TypeError, "row_side must have dtype uint8"),
        ("row_sz", np.ones(38)[::2], TypeError, "row_sz must be a C-contiguous float64"),
        ("row_sz", [1.0] * 19, TypeError, "row_sz must be a C-contiguous float64 array, got list"),
        ("out_top", np.empty((n, 3)), ValueError,
         r"out_top must have shape \(9, 4\), got \(9, 3\)"),
        ("out_top", np.empty((n, 4))[::-1], TypeError, "out_top must be a writable C-contig"),
        ("msg_start", np.zeros(n, np.int64), ValueError, r"msg_start must have shape \(10,\)"),
        ("out_walk", np.empty((n, 1, 6)), ValueError, r"out_walk must have shape \(9, 0, 6\)"),
        ("n_streams", -1, ValueError, "n_streams must be >= 0"),
        ("depth_n", -2, ValueError, "depth_n must be >= 0"),
    ]:
        with pytest.raises(err, match=match):
            replay_books(**dict(args, **{name: value}))
    ro = np.empty((n, 4))
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="out_top must be a writable"):
        replay_books(**dict(args, out_top=ro))
    with pytest.raises(ValueError, match=r"out_depth must have shape \(9, 2\)"):
        replay_books(**dict(args, depth_n=3, out_depth=np.empty((0, 2))))
    with pytest.raises(ValueError, match=r"orders\[0\] must be \(buy 1/0"):
        replay_books(**dict(args, orders=np.array([[1.0, -1.0, 0.0]]),
                            out_walk=np.empty((n, 1, 6))))


def test_python_reference_alone():
    """The reference runs on validated arrays, like the C kernel it stands in for."""
    a = good()
    n = len(a["msg_stream"])
    top = np.empty((n, 4))
    replay_books_py(*a.values(), 2, top, np.empty((0, 3)), np.empty((n, 0, 6)), 0, None)
    assert same_bits(top, EXPECTED_TOP)
