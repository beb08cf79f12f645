"""OKX encoder: number format, exact envelopes, round trips, real frames reproduced."""

from __future__ import annotations

import doctest
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import capture_frames, real

import simlab.okx.encode as encode_mod
from simlab.okx import EventMsg, Trade, TradeMsg, is_book, parse_frame
from simlab.okx.encode import encode_book, encode_event, encode_trades, format_decimal


def test_docstring_examples():
    assert doctest.testmod(encode_mod).failed == 0


# -- format_decimal -------------------------------------------------------------------------
@pytest.mark.parametrize("x, want", [
    (Decimal("41006.80"), "41006.8"),
    (Decimal("100"), "100"),
    (Decimal("100.000"), "100"),
    (Decimal("1E+2"), "100"),
    (Decimal("1.2E+3"), "1200"),
    (Decimal("1E-8"), "0.00000001"),
    (Decimal("0.000000012340"), "0.00000001234"),
    (Decimal("0"), "0"),
    (Decimal("0.000"), "0"),
    (Decimal("-0"), "0"),
    (Decimal("0E-8"), "0"),
    (Decimal("-1.50"), "-1.5"),
    (Decimal("123456789012345678901234567890.123456789"),
     "123456789012345678901234567890.123456789"),  # no 28-digit context rounding
    (7, "7"),
    (0, "0"),
    (10**20, "100000000000000000000"),
    ("0.60038921", "0.60038921"),
    ("3366.10", "3366.1"),
    ("1e-8", "0.00000001"),
    ("5E3", "5000"),
    ("-0.0", "0"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),  # via repr: the float's shortest form
    (1e-8, "0.00000001"),
    (1e22, "10000000000000000000000"),
    (30243.5, "30243.5"),
    (2.0, "2"),
])
def test_format_decimal(x, want):
    assert format_decimal(x) == want


@pytest.mark.parametrize("bad", ["abc", "", "1.2.3", "NaN", "inf", Decimal("NaN"),
                                 Decimal("-Infinity"), float("nan"), float("inf")])
def test_format_decimal_rejects_non_numbers(bad):
    with pytest.raises(ValueError) as ei:
        format_decimal(bad)
    assert repr(bad) in str(ei.value) or str(bad) in str(ei.value)


@pytest.mark.parametrize("bad", [None, [1], True, b"1"])
def test_format_decimal_rejects_other_types(bad):
    with pytest.raises(TypeError):
        format_decimal(bad)


@settings(max_examples=200, deadline=None)
@given(d=st.decimals(allow_nan=False, allow_infinity=False))
def test_format_decimal_is_shortest_plain_and_exact(d):
    s = format_decimal(d)
    assert "e" not in s.lower()
    assert Decimal(s) == d
    if "." in s:
        assert not s.endswith("0") and not s.endswith(".")
    assert s != "-0"


def test_real_capture_numbers_are_in_format_decimal_form():
    """All prices and sizes OKX sent in 2022 are fixed points of format_decimal."""
    n = 0
    for f in capture_frames(real("cryptofeed", "OKX.ws.1.0")):
        m = parse_frame(f)
        if is_book(m):
            for lvl in list(m.bids) + list(m.asks):
                assert format_decimal(lvl[0]) == lvl[0] and format_decimal(lvl[1]) == lvl[1]
                n += 2
    assert n == 16_528


# -- books ----------------------------------------------------------------------------------
def test_encode_books_exact_bytes():
    f = encode_book("books", "BTC-USDT", "snapshot",
                    bids=[("41006.3", "0.30178218", 2)], asks=[["41006.8", "0.60038921", "0", "1"]],
                    ts=1629966436396, seq_id=123456, prev_seq_id=-1, checksum=-1881014294)
    assert f == (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{'
                 b'"asks":[["41006.8","0.60038921","0","1"]],"bids":[["41006.3","0.30178218",'
                 b'"0","2"]],"ts":"1629966436396","checksum":-1881014294,"prevSeqId":-1,'
                 b'"seqId":123456}]}')


def test_encode_books_normalises_numbers():
    f = encode_book("books", "X", "update", [(Decimal("100.50"), 1.0), ("99.0", "0")], [], 5,
                    seq_id=2, prev_seq_id=1, checksum=0)
    d = orjson.loads(f)["data"][0]
    assert d["bids"] == [["100.5", "1", "0", "1"], ["99", "0", "0", "0"]]
    assert d["ts"] == "5" and d["asks"] == []


def test_encode_books_optional_fields_left_out():
    f = encode_book("books", "X", "update", [], [], 5)
    assert orjson.loads(f)["data"][0] == {"asks": [], "bids": [], "ts": "5"}


@pytest.mark.parametrize("channel", ["books5", "bbo-tbt"])
def test_encode_full_book_channels(channel):
    f = encode_book(channel, "BTC-USDT-SWAP", None, [("103129.8", "1484.29", 71)],
                    [("103129.9", "523.29", 18)], 1747246185609, seq_id=231089433206)
    assert f == (b'{"arg":{"channel":"' + channel.encode() + b'","instId":"BTC-USDT-SWAP"},'
                 b'"data":[{"asks":[["103129.9","523.29","0","18"]],"bids":[["103129.8",'
                 b'"1484.29","0","71"]],"instId":"BTC-USDT-SWAP","ts":"1747246185609",'
                 b'"seqId":231089433206}]}')
    m = parse_frame(f)
    assert (m.channel, m.action, m.inst_id, m.seq_id) == (channel, "snapshot", "BTC-USDT-SWAP",
                                                          231089433206)


def test_books5_real_pushes_reproduced_exactly():
    pushes = orjson.loads(real("TradeSim", "btc_usdt_snap.json").read_bytes())
    for p in pushes:
        want = orjson.dumps(p)
        m = parse_frame(want)
        got = encode_book(m.channel, m.inst_id, None, list(m.bids), list(m.asks), m.ts,
                          seq_id=m.seq_id)
        assert got == want


@pytest.mark.parametrize("kw, needle", [
    ({"channel": "tickers"}, "channel"),
    ({"action": "partial"}, "action"),
    ({"action": None}, "action"),
    ({"inst_id": ""}, "inst_id"),
    ({"bids": [("1",)]}, "level"),
    ({"bids": [("1", "2", "0", "3", "4")]}, "level"),
    ({"asks": [("abc", "1")]}, "abc"),
    ({"asks": [("1", "1", "x")]}, "count"),
])
def test_encode_book_bad_args(kw, needle):
    args = {"channel": "books", "inst_id": "X", "action": "update", "bids": [], "asks": [],
            "ts": 1} | kw
    with pytest.raises(ValueError, match=needle):
        encode_book(**args)


def test_encode_full_book_rejects_incremental_fields():
    with pytest.raises(ValueError, match="action"):
        encode_book("books5", "X", "update", [], [], 1)
    with pytest.raises(ValueError, match="prevSeqId"):
        encode_book("books5", "X", None, [], [], 1, seq_id=2, prev_seq_id=1)


@settings(max_examples=200, deadline=None)
@given(
    channel=st.sampled_from(["books", "books-l2-tbt", "books50-l2-tbt"]),
    action=st.sampled_from(["snapshot", "update"]),
    bids=st.lists(st.tuples(st.decimals(min_value=Decimal("0.00000001"), max_value=10**9,
                                        places=8),
                            st.decimals(min_value=0, max_value=10**6, places=8),
                            st.integers(0, 999)), max_size=5),
    ts=st.integers(0, 2**45),
    seq=st.none() | st.integers(-1, 2**40),
    checksum=st.none() | st.integers(-(2**31), 2**31 - 1),
)
def test_book_round_trip(channel, action, bids, ts, seq, checksum):
    f = encode_book(channel, "BTC-USDT", action, bids, bids[::-1], ts, seq_id=seq,
                    prev_seq_id=None if seq is None else seq - 1, checksum=checksum)
    m = parse_frame(f)
    assert is_book(m)
    assert (m.channel, m.inst_id, m.action, m.ts, m.seq_id, m.checksum) == (
        channel, "BTC-USDT", action, ts, seq, checksum)
    assert m.prev_seq_id == (None if seq is None else seq - 1)
    want = [[format_decimal(p), format_decimal(s), "0", str(c)] for p, s, c in bids]
    assert [list(x) for x in m.bids] == want
    assert [list(x) for x in m.asks] == want[::-1]
    assert all(Decimal(x[0]) == p for x, (p, _, _) in zip(m.bids, bids, strict=True))


def test_real_capture_book_frames_reproduced_exactly():
    """Every 2022 books frame re-encoded from its parsed fields gives the same bytes (those
    frames have no seqId/prevSeqId, which the encoder then leaves out)."""
    n = 0
    for f in capture_frames(real("cryptofeed", "OKX.ws.1.0")):
        m = parse_frame(f)
        if not is_book(m):
            continue
        got = encode_book(m.channel, m.inst_id, m.action, list(m.bids), list(m.asks), m.ts,
                          seq_id=m.seq_id, prev_seq_id=m.prev_seq_id, checksum=m.checksum)
        assert got == f, m.inst_id
        n += 1
    assert n == 290


# -- trades ---------------------------------------------------------------------------------
def test_encode_trades_exact_doc_example():
    f = encode_trades("BTC-USDT", [Trade("130639474", "42219.9", "0.12060306", "buy",
                                         1629386781174, count=3, seq_id=1234, source="0")])
    assert f == (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
                 b'"tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",'
                 b'"ts":"1629386781174","count":"3","source":"0","seqId":1234}]}')


def test_encode_trades_round_trip_and_mappings():
    trades = [Trade("1", "30000.1", "0.5", "sell", 10, count=2, seq_id=7, source="0"),
              {"trade_id": "2", "px": Decimal("30000.20"), "sz": "1", "side": "buy", "ts": 11}]
    m = parse_frame(encode_trades("BTC-USDT", trades))
    assert isinstance(m, TradeMsg) and m.inst_id == "BTC-USDT"
    assert m.trades[0] == trades[0]
    assert m.trades[1] == Trade("2", "30000.2", "1", "buy", 11)


def test_real_capture_trade_frames_reproduced_exactly():
    n = 0
    for f in capture_frames(real("cryptofeed", "OKX.ws.1.0")):
        m = parse_frame(f)
        if isinstance(m, TradeMsg):
            assert encode_trades(m.inst_id, m.trades) == f
            n += 1
    assert n == 74


def test_encode_trades_bad_side():
    with pytest.raises(ValueError, match="side"):
        encode_trades("X", [Trade("1", "1", "1", "long", 1)])


# -- events ---------------------------------------------------------------------------------
def test_encode_events():
    ack = encode_event("subscribe", {"channel": "books", "instId": "BTC-USDT"}, id="1",
                       conn_id="a4d3ae55")
    assert ack == (b'{"id":"1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},'
                   b'"connId":"a4d3ae55"}')
    err = encode_event("error", code="60012", msg="Invalid request", conn_id="c")
    assert err == b'{"event":"error","code":"60012","msg":"Invalid request","connId":"c"}'
    m = parse_frame(err)
    assert isinstance(m, EventMsg) and (m.event, m.code, m.msg, m.conn_id) == (
        "error", "60012", "Invalid request", "c")
    notice = parse_frame(encode_event("notice", code="64008", msg="reconnect", conn_id="x"))
    assert (notice.event, notice.code) == ("notice", "64008")


def test_real_capture_event_frames_reproduced_exactly():
    n = 0
    for f in capture_frames(real("cryptofeed", "OKX.ws.1.0")):
        m = parse_frame(f)
        if isinstance(m, EventMsg):
            assert encode_event(m.event, m.arg, m.code, m.msg, m.conn_id, m.id) == f
            n += 1
    assert n == 18
