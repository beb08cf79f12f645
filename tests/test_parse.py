"""parse_frame on every channel and event, real captured frames, and malformed input."""

from __future__ import annotations

import orjson
import pytest
from support import capture_frames, real

import simlab.okx.parse as parse_mod
from simlab.book import BookError
from simlab.okx import (
    BookSync,
    EventMsg,
    OkxParseError,
    OtherMsg,
    Pong,
    TradeMsg,
    is_book,
    parse_frame,
    parse_history_line,
)


@pytest.fixture(params=[True, False], ids=["scanner", "orjson"], autouse=True)
def parser(request, monkeypatch):
    """Run every test with the C fast path on and off (when it is built)."""
    if request.param and getattr(parse_mod, "_scan", None) is None:
        pytest.skip("C scanner not built")
    monkeypatch.setattr(parse_mod, "USE_SCANNER", request.param, raising=False)
    return request.param


def lv(levels) -> list[list[str]]:
    """Levels as plain lists, whatever sequence type the parser returned."""
    return [list(x) for x in levels]


def frame(obj) -> bytes:
    return orjson.dumps(obj)


# -- book channels --------------------------------------------------------------------------
BOOKS_SNAPSHOT = (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{'
                  b'"asks":[["41006.8","0.60038921","0","1"],["41007","1","0","3"]],'
                  b'"bids":[["41006.3","0.30178218","0","2"]],"ts":"1629966436396",'
                  b'"checksum":-1881014294,"prevSeqId":-1,"seqId":123456}]}')


def test_books_snapshot_fields():
    m = parse_frame(BOOKS_SNAPSHOT)
    assert is_book(m)
    assert (m.channel, m.inst_id, m.action, m.ts) == ("books", "BTC-USDT", "snapshot",
                                                       1629966436396)
    assert (m.seq_id, m.prev_seq_id, m.checksum) == (123456, -1, -1881014294)
    assert lv(m.asks) == [["41006.8", "0.60038921", "0", "1"], ["41007", "1", "0", "3"]]
    assert lv(m.bids) == [["41006.3", "0.30178218", "0", "2"]]
    assert len(m.asks) == 2 and m.asks[1][0] == "41007" and m.bids[0][3] == "2"
    assert m.is_snapshot and not m.is_empty


def test_books_update_and_str_input():
    f = ('{"arg":{"channel":"books","instId":"ETH-USDT"},"action":"update","data":[{"asks":[],'
         '"bids":[["3000.1","0","0","0"]],"ts":"5","checksum":0,"prevSeqId":7,"seqId":19}]}')
    for x in (f, f.encode()):
        m = parse_frame(x)
        assert (m.action, m.prev_seq_id, m.seq_id, m.checksum, m.ts) == ("update", 7, 19, 0, 5)
        assert lv(m.bids) == [["3000.1", "0", "0", "0"]] and len(m.asks) == 0
        assert not m.is_snapshot


def test_books_heartbeat_is_empty():
    m = parse_frame(b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{'
                    b'"asks":[],"bids":[],"ts":"9","checksum":0,"prevSeqId":7,"seqId":7}]}')
    assert m.is_empty and m.seq_id == m.prev_seq_id == 7


@pytest.mark.parametrize("channel", ["books-l2-tbt", "books50-l2-tbt"])
def test_tbt_channels(channel):
    m = parse_frame(frame({"arg": {"channel": channel, "instId": "BTC-USDT"}, "action": "update",
                           "data": [{"asks": [["1", "2", "0", "3"]], "bids": [], "ts": "11",
                                     "checksum": 5, "prevSeqId": 1, "seqId": 2}]}))
    assert is_book(m)
    assert (m.channel, m.action, m.seq_id, m.prev_seq_id, m.checksum) == (channel, "update", 2,
                                                                          1, 5)


def test_books5_no_action_inst_in_data():
    m = parse_frame(b'{"arg":{"channel":"books5","instId":"BTC-USDT-SWAP"},"data":[{"asks":'
                    b'[["103129.9","523.29","0","18"]],"bids":[["103129.8","1484.29","0","71"]],'
                    b'"instId":"BTC-USDT-SWAP","ts":"1747246185609","seqId":231089433206}]}')
    assert is_book(m)
    assert (m.channel, m.inst_id, m.action, m.ts) == ("books5", "BTC-USDT-SWAP", "snapshot",
                                                       1747246185609)
    assert (m.seq_id, m.prev_seq_id) == (231089433206, None)
    assert m.checksum in (None, 0)
    assert lv(m.asks) == [["103129.9", "523.29", "0", "18"]]


def test_bbo_tbt_inst_only_in_data():
    m = parse_frame(b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":'
                    b'[["2","1","0","1"]],"bids":[["1","1","0","1"]],"instId":"BTC-USDT",'
                    b'"ts":"3","seqId":4}]}')
    assert (m.channel, m.inst_id, m.action, m.seq_id) == ("bbo-tbt", "BTC-USDT", "snapshot", 4)
    m2 = parse_frame(b'{"arg":{"channel":"bbo-tbt"},"data":[{"asks":[],"bids":[],'
                     b'"instId":"ETH-USDT","ts":"3","seqId":4}]}')
    assert m2.inst_id == "ETH-USDT"


def test_books5_real_pushes():
    pushes = orjson.loads(real("TradeSim", "btc_usdt_snap.json").read_bytes())
    for p in pushes:
        m = parse_frame(orjson.dumps(p))
        d = p["data"][0]
        assert (m.channel, m.inst_id, m.ts, m.seq_id) == ("books5", d["instId"], int(d["ts"]),
                                                          d["seqId"])
        assert lv(m.bids) == d["bids"] and lv(m.asks) == d["asks"]


def test_history_line():
    m = parse_history_line('{"instId":"BTC-USDT","action":"update","ts":"7",'
                           '"asks":[["2","1","4"]],"bids":[]}')
    assert (m.channel, m.inst_id, m.action, m.ts) == ("books-l2-history", "BTC-USDT", "update", 7)
    assert (m.seq_id, m.prev_seq_id, m.checksum) == (None, None, None)
    assert lv(m.asks) == [["2", "1", "4"]]
    with pytest.raises(OkxParseError, match="action"):
        parse_history_line('{"instId":"BTC-USDT","action":"x","ts":"7","asks":[],"bids":[]}')
    with pytest.raises(OkxParseError, match="JSON"):
        parse_history_line('{"instId":')


# -- trades ---------------------------------------------------------------------------------
def test_trades_with_count_and_seq():
    m = parse_frame(b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":'
                    b'"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306",'
                    b'"side":"buy","ts":"1629386781174","count":"3","source":"0","seqId":1234}]}')
    assert isinstance(m, TradeMsg)
    assert (m.channel, m.inst_id, len(m.trades)) == ("trades", "BTC-USDT", 1)
    t = m.trades[0]
    assert (t.trade_id, t.px, t.sz, t.side, t.ts) == ("130639474", "42219.9", "0.12060306",
                                                      "buy", 1629386781174)
    assert (t.count, t.seq_id, t.source) == (3, 1234, "0")


def test_trades_2022_without_count_or_seq():
    m = parse_frame(b'{"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":'
                    b'"BTC-USD-220527","tradeId":"7849","px":"30218.8","sz":"1","side":"buy",'
                    b'"ts":"1652459199958"}]}')
    t = m.trades[0]
    assert (t.trade_id, t.px, t.sz, t.side, t.ts) == ("7849", "30218.8", "1", "buy",
                                                      1652459199958)
    assert (t.count, t.seq_id, t.source) == (None, None, None)


def test_trades_several_rows_in_order():
    rows = [{"instId": "X", "tradeId": str(i), "px": "1.5", "sz": "2", "side": s, "ts": "9"}
            for i, s in ((1, "buy"), (2, "sell"))]
    m = parse_frame(frame({"arg": {"channel": "trades", "instId": "X"}, "data": rows}))
    assert [(t.trade_id, t.side) for t in m.trades] == [("1", "buy"), ("2", "sell")]


# -- events, pong, other channels -----------------------------------------------------------
def test_subscribe_ack():
    m = parse_frame(b'{"id":"1","event":"subscribe","arg":{"channel":"books","instId":'
                    b'"BTC-USDT"},"connId":"a4d3ae55"}')
    assert isinstance(m, EventMsg)
    assert (m.event, m.id, m.conn_id, m.channel, m.inst_id) == ("subscribe", "1", "a4d3ae55",
                                                                "books", "BTC-USDT")
    assert m.code is None


def test_error_event():
    m = parse_frame(b'{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": '
                    b'\\"subscribe\\"}","connId":"a4d3ae55"}')
    assert isinstance(m, EventMsg)
    assert (m.event, m.code, m.conn_id) == ("error", "60012", "a4d3ae55")
    assert m.msg.startswith("Invalid request") and m.channel is None and m.inst_id is None


def test_notice_64008():
    m = parse_frame(b'{"event":"notice","code":"64008","msg":"The connection will soon be '
                    b'closed for a service upgrade. Please reconnect.","connId":"x1"}')
    assert (m.event, m.code, m.conn_id) == ("notice", "64008", "x1")
    assert "reconnect" in m.msg


@pytest.mark.parametrize("f", [b"pong", "pong"])
def test_pong(f):
    assert isinstance(parse_frame(f), Pong)


def test_tickers_other_msg():
    data = [{"instType": "SPOT", "instId": "BTC-USDT", "last": "30243.5", "ts": "1"}]
    m = parse_frame(frame({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": data}))
    assert isinstance(m, OtherMsg)
    assert (m.channel, m.inst_id, m.data) == ("tickers", "BTC-USDT", data)


def test_unknown_channel_is_kept_as_other():
    m = parse_frame(b'{"arg":{"channel":"brand-new-channel","instId":"X"},"data":[{"a":1}]}')
    assert isinstance(m, OtherMsg)
    assert (m.channel, m.inst_id, m.data) == ("brand-new-channel", "X", [{"a": 1}])


# -- real capture ---------------------------------------------------------------------------
def test_real_capture_every_frame_parses():
    frames = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    kinds: dict[str, int] = {}
    trade_rows: dict[str, int] = {}
    for f in frames:
        m = parse_frame(f)
        k = "book" if is_book(m) else type(m).__name__
        kinds[k] = kinds.get(k, 0) + 1
        if isinstance(m, TradeMsg):
            trade_rows[m.inst_id] = trade_rows.get(m.inst_id, 0) + len(m.trades)
            assert all(t.count is None and t.seq_id is None for t in m.trades)
        if isinstance(m, OtherMsg):
            assert m.channel == "tickers"
        if isinstance(m, EventMsg):
            assert m.event == "subscribe"
    assert kinds == {"book": 290, "TradeMsg": 74, "OtherMsg": 28, "EventMsg": 18}
    assert trade_rows == {"BTC-USDT": 69, "BTC-USD-220527": 4, "UNI-USD-SWAP": 1}


def test_real_capture_first_book_frame():
    frames = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    f = next(x for x in frames if x.startswith(b'{"arg":{"channel":"books"'))
    m = parse_frame(f)
    raw = orjson.loads(f)
    d = raw["data"][0]
    assert (m.inst_id, m.action, m.ts, m.checksum) == (raw["arg"]["instId"], raw["action"],
                                                       int(d["ts"]), d["checksum"])
    assert lv(m.bids) == d["bids"] and lv(m.asks) == d["asks"]
    assert (m.seq_id, m.prev_seq_id) == (None, None)


# -- malformed input ------------------------------------------------------------------------
def book_obj(**data_over):
    d = {"asks": [["2", "1", "0", "1"]], "bids": [["1", "1", "0", "1"]], "ts": "5",
         "checksum": 0, "prevSeqId": 1, "seqId": 2}
    d.update(data_over)
    return {"arg": {"channel": "books", "instId": "X"}, "action": "update",
            "data": [{k: v for k, v in d.items() if v is not ...}]}


def trade_obj(**over):
    t = {"instId": "X", "tradeId": "1", "px": "1.5", "sz": "2", "side": "buy", "ts": "9"}
    t.update(over)
    return {"arg": {"channel": "trades", "instId": "X"},
            "data": [{k: v for k, v in t.items() if v is not ...}]}


BAD = [
    ("truncated", BOOKS_SNAPSHOT[:60], "invalid JSON"),
    ("empty", b"", "invalid JSON"),
    ("not-json", b"ping?", "invalid JSON"),
    ("list", b"[1, 2]", "JSON object"),
    ("string", b'"pong"', "JSON object"),
    ("number", b"5", "JSON object"),
    ("no-arg", b'{"data":[]}', "channel"),
    ("arg-no-channel", b'{"arg":{"instId":"X"},"data":[]}', "channel"),
    ("arg-not-dict", b'{"arg":"books","data":[]}', "channel"),
    ("data-not-list", b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":{}}',
     "data"),
    ("data-missing", b'{"arg":{"channel":"trades","instId":"X"}}', "data"),
    ("book-two-data", frame({**book_obj(), "data": [{}, {}]}), "exactly one"),
    ("book-data-not-obj", frame({**book_obj(), "data": [[1]]}), "exactly one"),
    ("book-no-inst", frame({**book_obj(), "arg": {"channel": "books"}}), "instId"),
    ("book-no-ts", frame(book_obj(ts=...)), "ts"),
    ("book-bad-ts", frame(book_obj(ts="soon")), "ts"),
    ("bad-action", frame({**book_obj(), "action": "partial"}), "action"),
    ("no-action", frame({k: v for k, v in book_obj().items() if k != "action"}), "action"),
    ("bids-not-list", frame(book_obj(bids="1:1")), "bids"),
    ("level-not-list", frame(book_obj(asks=["2", "1", "0", "1"])), "asks"),
    ("level-too-short", frame(book_obj(bids=[["1"]])), "bids"),
    ("level-empty", frame(book_obj(asks=[[]])), "asks"),
    ("seqid-text", frame(book_obj(seqId="abc")), "seqId"),
    ("seqid-list", frame(book_obj(seqId=[1])), "seqId"),
    ("seqid-fraction", frame(book_obj(seqId=1.5)), "seqId"),
    ("prevseqid-text", frame(book_obj(prevSeqId="x")), "prevSeqId"),
    ("checksum-text", frame(book_obj(checksum="crc")), "checksum"),
    ("trade-not-obj", frame({**trade_obj(), "data": ["x"]}), "trade"),
    ("trade-no-px", frame(trade_obj(px=...)), "px"),
    ("trade-no-sz", frame(trade_obj(sz=...)), "sz"),
    ("trade-no-side", frame(trade_obj(side=...)), "side"),
    ("trade-no-id", frame(trade_obj(tradeId=...)), "tradeId"),
    ("trade-no-ts", frame(trade_obj(ts=...)), "ts"),
    ("trade-bad-side", frame(trade_obj(side="long")), "side"),
    ("trade-px-text", frame(trade_obj(px="abc")), "px"),
    ("trade-px-number", frame(trade_obj(px=1.5)), "px"),
    ("trade-px-nan", frame(trade_obj(px="NaN")), "px"),
    ("trade-px-inf", frame(trade_obj(px="inf")), "px"),
    ("trade-sz-text", frame(trade_obj(sz="lots")), "sz"),
    ("trade-count-text", frame(trade_obj(count="three")), "count"),
    ("channel-unhashable", b'{"arg":{"channel":["books"]},"data":[]}', "channel"),
    ("channel-dict", b'{"arg":{"channel":{"a":1},"instId":"X"},"data":[]}', "channel"),
    # issue 15: every field the code reads is type-checked, events included
    ("notice-arg-list", b'{"event":"notice","arg":[1],"code":"1"}', "'arg' must be an object"),
    ("event-arg-channel", b'{"event":"subscribe","arg":{"channel":5}}', "channel"),
    ("event-arg-inst", b'{"event":"subscribe","arg":{"channel":"books","instId":[1]}}',
     "instId"),
    ("event-not-str", b'{"event":7}', "event"),
    ("event-name-odd", b'{"event":"sub scribe"}', "event"),
    ("event-code-obj", b'{"event":"error","code":{"a":1}}', "code"),
    ("event-code-long", b'{"event":"error","code":"' + b"1" * 40 + b'"}', "code"),
    ("event-msg-list", b'{"event":"error","code":"1","msg":[1]}', "msg"),
    ("event-connid-int", b'{"event":"error","connId":5}', "connId"),
    ("event-id-list", b'{"event":"subscribe","id":[1]}', "id"),
    ("level-item-number", frame(book_obj(asks=[["1", 2, "0", "1"]])), "asks"),
    ("level-item-deep", b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{'
     b'"asks":[["1",' + b"[" * 900 + b"]" * 900 + b',"0","1"]],"ts":"1"}]}', "asks"),
    ("book-ts-negative", frame(book_obj(ts="-5")), "ts"),
    ("seqid-huge", frame(book_obj(seqId=2**63)), "seqId"),
    ("trade-id-list", frame(trade_obj(tradeId=[1])), "tradeId"),
    ("trade-source-obj", frame(trade_obj(source={"a": 1})), "source"),
    ("trade-side-list", frame(trade_obj(side=["buy"])), "side"),
    ("trades-empty", b'{"arg":{"channel":"trades","instId":"X"},"data":[]}', "without a trade"),
    ("deep-frame", b"[" * 1000 + b"]" * 1000, "JSON object"),
    ("deeper-frame", b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
]


@pytest.mark.parametrize("f, needle", [(f, n) for _, f, n in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input_raises_named_error(f, needle):
    with pytest.raises(OkxParseError) as ei:
        parse_frame(f)
    e = ei.value
    assert isinstance(e, ValueError)
    assert needle in e.reason and needle in str(e)


def test_event_codes_and_ids_sent_as_integers_are_kept_as_text():
    m = parse_frame(b'{"event":"error","code":60012,"msg":"bad","id":7}')
    assert isinstance(m, EventMsg) and (m.code, m.id, m.msg) == ("60012", "7", "bad")
    t = parse_frame(frame(trade_obj(tradeId=130639474, source=0)))
    assert (t.trades[0].trade_id, t.trades[0].source) == ("130639474", "0")


@pytest.mark.parametrize("x", [None, 5, ["pong"], bytearray(b"[1]"), memoryview(b"nope")])
def test_non_frames_raise_only_parse_errors(x):
    with pytest.raises(OkxParseError):
        parse_frame(x)


def test_reasons_quote_values_briefly():
    with pytest.raises(OkxParseError) as ei:
        parse_frame(frame(book_obj(seqId="7" * 5000)))
    assert len(ei.value.reason) < 120 and "5000 chars" in ei.value.reason
    assert len(str(ei.value)) < 300


def test_parse_error_excerpt_is_the_frame_start():
    with pytest.raises(OkxParseError) as ei:
        parse_frame(b'{"arg":{"channel":"books","instId":"X"},"action":"nope","data":[{}]}')
    assert ei.value.excerpt.startswith('{"arg":{"channel":"books"')
    assert "'nope'" in ei.value.reason


# -- a bad level passes the parser and is rejected by the book ------------------------------
def test_non_numeric_book_price_rejected_by_book(make_book):
    f = frame(book_obj(bids=[["12x.5", "1", "0", "1"]]))
    m = parse_frame(f)  # the parser does not judge level contents
    assert is_book(m) and m.bids[0][0] == "12x.5"
    book = make_book("X")
    book.apply_snapshot([["100", "1", "0", "1"]], [["101", "1", "0", "1"]])
    with pytest.raises(BookError) as ei:
        book.apply_update(m.bids, m.asks)
    assert "12x.5" in str(ei.value)
    assert book.levels("bid") == [("100", "1", 1)]  # unchanged
    sync = BookSync(make_book("X"))
    sync.apply(parse_frame(frame({**book_obj(prevSeqId=-1, seqId=1), "action": "snapshot"})))
    assert sync.valid
    sync.apply(parse_frame(frame(book_obj(prevSeqId=1, seqId=2, bids=[["12x.5", "1", "0", "1"]]))))
    assert sync.stats.rejected == 1 and not sync.valid
    assert sync.events[-1].kind == "rejected" and "12x.5" in sync.events[-1].detail
