"""The C fast path against its pure-Python reference.

- the C book core (simlab._native.Book) and the Python core (simlab.book._pybook.PyBook) must
  give identical answers, and reject the same inputs, after any sequence of operations;
- the C frame scanner must either decline a frame (None) or return exactly what the orjson
  parser returns for it, and must decline everything orjson rejects.
"""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import capture_frames, real

from simlab import core
from simlab.book import IMPLS, BookError, L2Book
from simlab.okx import OkxParseError, parse

native = core.native()
if native is None:  # not built, or SIMLAB_PURE_PYTHON=1: L2Book(impl="c") is not available
    pytest.skip(f"C core not active ({core.describe()})", allow_module_level=True)

FIELDS = ("channel", "inst_id", "action", "ts", "seq_id", "prev_seq_id", "checksum")


def orjson_parse(frame):
    """parse_frame with the scanner switched off."""
    saved = parse.USE_SCANNER
    parse.USE_SCANNER = False
    try:
        return parse.parse_frame(frame)
    finally:
        parse.USE_SCANNER = saved


def assert_same_msg(scanned, ref):
    assert type(ref).__name__ == "BookMsg"
    for f in FIELDS:
        assert getattr(scanned, f) == getattr(ref, f), f
    assert list(scanned.bids) == ref.bids
    assert list(scanned.asks) == ref.asks
    assert scanned.is_snapshot == ref.is_snapshot
    assert scanned.is_empty == ref.is_empty


def check_frame(frame: bytes) -> None:
    scanned = native.scan_okx_book(frame)
    try:
        ref = orjson_parse(frame)
    except OkxParseError:
        assert scanned is None, f"scanner accepted a frame orjson rejects: {frame[:200]!r}"
        return
    if scanned is not None:
        assert_same_msg(scanned, ref)


# -- real frames ---------------------------------------------------------------------------

def real_frames() -> list[bytes]:
    out = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    snap = real("TradeSim", "btc_usdt_snap.json")
    out += [orjson.dumps(m) for m in orjson.loads(snap.read_bytes())]
    for p in real("gocryptotrader").glob("*.json*"):
        out += [ln for ln in p.read_bytes().splitlines() if ln.strip()]
    return out


def test_scanner_takes_every_real_book_frame_and_agrees_with_orjson():
    frames = real_frames()
    scanned = 0
    for f in frames:
        check_frame(f)
        ref = orjson_parse(f)
        if type(ref).__name__ == "BookMsg":
            # every real OKX book push is plain enough for the fast path
            assert native.scan_okx_book(f) is not None, f[:200]
            scanned += 1
    assert scanned == 290 + 10 + 3  # capture books, TradeSim books5, gocryptotrader books


def test_scanner_declines_non_book_frames():
    for f in (b"pong", b'{"event":"subscribe","arg":{"channel":"books","instId":"X"}}',
              b'{"arg":{"channel":"trades","instId":"X"},"data":[]}', b"", b"{}", b"[]"):
        assert native.scan_okx_book(f) is None


@pytest.mark.parametrize("frame", [
    # whitespace, other key orders, str input: valid JSON the scanner may or may not take
    b' { "arg" : { "instId":"X", "channel":"books"} , "data":[{"ts":"5","bids":[],'
    b'"asks":[["1","2","0","3"]],"seqId":2,"prevSeqId":-1,"checksum":0}],"action":"snapshot"}\n',
    '{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],'
    '"ts":"5","seqId":3,"prevSeqId":3}]}',
    # not for the fast path: escapes, floats, unknown keys, trailing garbage, duplicates
    b'{"arg":{"channel":"books","instId":"X\\u0041"},"action":"update","data":[{"asks":[],'
    b'"bids":[],"ts":"5"}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],'
    b'"ts":"5","seqId":3.0}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],'
    b'"ts":"5","extra":1}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],'
    b'"ts":"5"}]}xyz',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"asks":[],'
    b'"bids":[],"ts":"5"}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[["1e5","1"]],'
    b'"bids":[],"ts":"5"}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"upd","data":[{"asks":[],"bids":[],'
    b'"ts":"5"}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[]}]}',
    b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[["1","2"]',
])
def test_scanner_edge_frames_agree_with_orjson(frame):
    check_frame(frame)


def test_scanned_views_behave_as_lists():
    f = (b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{"asks":'
         b'[["2","1","0","4"],["3","5","0","1"]],"bids":[["1","2","0","1"]],"ts":"9",'
         b'"checksum":0,"prevSeqId":-1,"seqId":7}]}')
    m = native.scan_okx_book(f)
    assert len(m.asks) == 2 and m.asks[1] == ["3", "5", "0", "1"] == m.asks[-1]
    assert m.asks[:1] == [["2", "1", "0", "4"]] and m.asks[5:] == []
    assert [lv[0] for lv in m.asks] == ["2", "3"]
    assert m.asks == [["2", "1", "0", "4"], ["3", "5", "0", "1"]]
    with pytest.raises(IndexError):
        m.bids[1]
    del f  # the message keeps its frame alive
    assert m.bids.tolist() == [["1", "2", "0", "1"]]


# -- generated frames ----------------------------------------------------------------------

num = st.one_of(
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,8})?", fullmatch=True),
    st.sampled_from(["0", "0.0", "00.5", "1e5", "-1", "", "abc", "1.", ".5", "NaN"]),
)
level = st.lists(num, min_size=2, max_size=4)
levels = st.lists(level, max_size=6)


@st.composite
def book_frames(draw):
    channel = draw(st.sampled_from(["books", "books5", "bbo-tbt", "books-l2-tbt",
                                    "books50-l2-tbt", "trades", "bogus"]))
    data = {"asks": draw(levels), "bids": draw(levels)}
    if draw(st.booleans()):
        data["ts"] = draw(st.sampled_from(["1629966436396", "0", "-5", "x", 17]))
    for k in ("seqId", "prevSeqId", "checksum"):
        if draw(st.booleans()):
            data[k] = draw(st.one_of(st.integers(-2**40, 2**40), st.just("7"), st.just(1.5)))
    if draw(st.booleans()):
        data["instId"] = "BTC-USDT"
    keys = draw(st.permutations(list(data)))
    data = {k: data[k] for k in keys}
    msg = {"arg": {"channel": channel, "instId": draw(st.sampled_from(["BTC-USDT", "É", ""]))}}
    if draw(st.booleans()):
        msg["action"] = draw(st.sampled_from(["snapshot", "update", "other"]))
    msg["data"] = [data]
    raw = orjson.dumps(msg)
    cut = draw(st.integers(0, len(raw)))
    return raw if draw(st.booleans()) else raw[:cut]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_frames())
def test_scanner_agrees_with_orjson_on_generated_frames(frame):
    check_frame(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_scanner_never_crashes_on_bytes(frame):
    check_frame(frame)


# -- the two book cores --------------------------------------------------------------------

price = st.one_of(st.from_regex(r"[1-9][0-9]{0,3}(\.[0-9]{1,3})?", fullmatch=True),
                  st.sampled_from(["100", "100.0", "100.00", "0.001", "99.999", "5"]))
size = st.one_of(st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,4})?", fullmatch=True),
                 st.sampled_from(["0", "0.000"]))
good_level = st.tuples(price, size, st.just("0"), st.from_regex(r"[0-9]{1,3}", fullmatch=True))
bad_level = st.sampled_from([["-1", "1"], ["abc", "1"], ["1", "x"], ["0", "1"], ["1"],
                             [1.5, "1"], ["1", "1", "0", "z"], ["1e3", "1"]])
op = st.tuples(st.sampled_from(["snapshot", "update", "update", "update"]),
               st.lists(st.one_of(good_level.map(list), bad_level), max_size=8),
               st.lists(st.one_of(good_level.map(list), bad_level), max_size=8))


def state(b: L2Book):
    return (b.levels("bid"), b.levels("ask"), b.checksum(), b.is_crossed(), b.n_bids, b.n_asks)


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.skipif("c" not in IMPLS, reason="C core not built")
@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25), st.floats(0.001, 50), st.sampled_from([0, 1, 3, 25]))
def test_c_and_python_cores_agree(ops, amount, nlev):
    c, p = L2Book(impl="c"), L2Book(impl="python")
    for kind, bids, asks in ops:
        errs = []
        for b in (c, p):
            try:
                (b.apply_snapshot if kind == "snapshot" else b.apply_update)(bids, asks)
                errs.append(None)
            except BookError as e:
                errs.append(type(e))
        assert errs[0] == errs[1], (kind, bids, asks)
        assert state(c) == state(p)
        for side in ("buy", "sell"):
            for kw in ({"base": amount}, {"quote": amount * 100}):
                fc, fp = c.walk(side, **kw), p.walk(side, **kw)
                for f in fc.__slots__:
                    assert same_float(getattr(fc, f), getattr(fp, f)) if isinstance(
                        getattr(fc, f), float) else getattr(fc, f) == getattr(fp, f), f
        for side in ("bid", "ask"):
            assert c.depth(side, levels=nlev) == p.depth(side, levels=nlev)
            assert same_float(c.depth(side, bps=25.0), p.depth(side, bps=25.0))
            assert c.depth(side, notional=True) == p.depth(side, notional=True)
        tc, tp = c.top(nlev), p.top(nlev)
        for a, b in zip(tc, tp, strict=True):
            assert a.tolist() == b.tolist()
        assert same_float(c.best_bid, p.best_bid) and same_float(c.best_ask, p.best_ask)
        assert same_float(c.spread, p.spread)


def test_bad_update_leaves_c_book_unchanged():
    b = L2Book(impl="c")
    b.apply_snapshot([["1", "1"]], [["2", "1"]])
    before = state(b)
    with pytest.raises(BookError, match="ask level"):
        b.apply_update([["1.5", "3"]], [["2", "0"], ["oops", "1"]])
    assert state(b) == before


def test_snapshot_duplicates_and_unsorted_input_match_reference():
    lv = [["5", "1"], ["7", "2"], ["5", "3"], ["6", "0"], ["6", "4"]]
    c, p = L2Book(impl="c"), L2Book(impl="python")
    for b in (c, p):
        b.apply_snapshot(lv, lv)
    assert state(c) == state(p)
    assert c.levels("bid") == [("7", "2", 0), ("6", "4", 0), ("5", "3", 0)]


def test_many_levels_and_frees_are_reused():
    c, p = L2Book(impl="c"), L2Book(impl="python")
    for i in range(3):
        for b in (c, p):
            b.apply_update([[str(1000 - j), "1"] for j in range(500)], [])
            b.apply_update([[str(1000 - j), "0"] for j in range(0, 500, 2)], [])
            b.apply_update([[str(1000 - j) + ".5", str(i + 1)] for j in range(300)], [])
        assert state(c) == state(p)
    assert c.n_bids == 250 + 300


def test_book_made_without_init_is_a_correct_book():
    # the side order is set when the object is made (tp_new), not by __init__
    b = native.Book.__new__(native.Book)
    b.apply_snapshot([["99", "1"], ["98", "1"]], [["101", "1"], ["100", "1"]])
    assert (b.best(False), b.best(True)) == (99.0, 100.0)
    assert b.levels(False) == [("99", "1", 0), ("98", "1", 0)]
    assert b.levels(True) == [("100", "1", 0), ("101", "1", 0)]
    ref = L2Book(impl="python")
    ref.apply_snapshot([["99", "1"], ["98", "1"]], [["101", "1"], ["100", "1"]])
    assert b.checksum() == ref.checksum() and not b.is_crossed()
    b.__init__()  # running __init__ afterwards changes nothing
    assert b.best(False) == 99.0 and b.n_bids == 2
    with pytest.raises(TypeError):
        native.Book(1)
