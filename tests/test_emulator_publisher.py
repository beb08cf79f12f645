"""The emulator's publisher: market events -> OKX channel messages, checked message by
message against docs/okx-v5-public-feed.md and against real OKX frames."""

from __future__ import annotations

import re

import orjson
import pytest
from support import real

from simlab.book import L2Book
from simlab.emulator import LevelChange, Print, Publisher
from simlab.emulator.publisher import BOOK_CHANNELS, CHANNELS, PUSH_ORDER
from simlab.emulator.testing import FeedCheck, RandomMarket, ScriptedMarket
from simlab.okx import BookSync, is_book, parse_frame
from simlab.okx.encode import encode_book, encode_trades

INSTS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP")
ALL_STREAMS = [(c, i) for c in CHANNELS for i in INSTS]
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")


def _ladder(top: int, n: int, step: int) -> list[list[str]]:
    return [[str(top + i * step), str(i + 1), "1"] for i in range(n)]


def scripted(n_levels: int = 55, **kw) -> ScriptedMarket:
    """BTC-USDT with bids 1000, 999, ... and asks 1001, 1002, ... (size i+1, one order)."""
    return ScriptedMarket({"BTC-USDT": (_ladder(1000, n_levels, -1), _ladder(1001, n_levels, 1))},
                          **kw)


def frames(pushes) -> list[dict]:
    return [orjson.loads(p.frame) for p in pushes]


def test_same_seed_gives_byte_identical_streams():
    def stream(seed: int, chunks: list[int]) -> bytes:
        m = RandomMarket(seed=seed, rate=300)
        p = Publisher(m, seed=seed, streams=ALL_STREAMS)
        out = [p.snapshot(c, i).frame for c, i in ALL_STREAMS if c != "trades"]
        t = m.start_ms
        for step in chunks:
            t += step
            out += [x.frame for x in p.advance(t)]
        return b"\n".join(out)

    a = stream(7, [3000] * 3)
    # Advancing in odd chunks must not change a byte: pushes fall on cadence boundaries.
    assert stream(7, [1, 9, 990, 1234, 766, 3000, 2000, 1000]) == a
    assert stream(8, [3000] * 3) != a
    assert len(a) > 100_000


def test_fast_encoders_write_what_encode_book_writes():
    m = RandomMarket(seed=3, rate=400)
    p = Publisher(m, streams=ALL_STREAMS)
    pushes = p.advance(m.start_ms + 5000)
    seen = set()
    for x in pushes:
        msg = parse_frame(x.frame)
        if is_book(msg):
            action = None if x.channel in ("books5", "bbo-tbt") else msg.action
            again = encode_book(msg.channel, msg.inst_id, action, list(msg.bids),
                                list(msg.asks), msg.ts, seq_id=msg.seq_id,
                                prev_seq_id=msg.prev_seq_id, checksum=msg.checksum)
        else:
            again = encode_trades(msg.inst_id, msg.trades)
        assert again == x.frame
        seen.add(x.channel)
    assert seen == set(CHANNELS)


def test_every_stream_syncs_with_no_gap_and_every_checksum_verified():
    m = RandomMarket(seed=11, rate=500, depth=450)
    p = Publisher(m, streams=ALL_STREAMS)
    fc = FeedCheck()
    for c, i in ALL_STREAMS:
        if c != "trades":
            fc.feed(p.snapshot(c, i).frame)
    fc.feed_all(x.frame for x in p.advance(m.start_ms + 20_000))
    assert len(fc.syncs) == len(BOOK_CHANNELS) * len(INSTS)
    assert fc.total("gaps") == fc.total("checksum_failed") == fc.total("rejected") == 0
    incremental = [s for (c, _), s in fc.syncs.items() if c not in ("books5", "bbo-tbt")]
    assert all(s.stats.checksum_verified == s.stats.messages > 20 for s in incremental)
    assert fc.trades > 100
    # What the subscriber rebuilt is the exchange's top N, level for level.
    for (c, i), s in fc.syncs.items():
        depth = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5,
                 "bbo-tbt": 1}[c]
        eng = p._engines[i]
        for ask, side in ((False, "bid"), (True, "ask")):
            want = [(px, sz, int(n)) for px, sz, _, n in eng.top(ask, depth)]
            assert s.book.levels(side) == want, (c, i, side)


def test_cadence_and_seqid_chains():
    m = RandomMarket(seed=5, rate=300)
    p = Publisher(m, streams=ALL_STREAMS)
    last = {k: p.snapshot(*k).seq_id for k in ALL_STREAMS if k[0] != "trades"}
    pushes = p.advance(m.start_ms + 10_000)
    for x in pushes:
        if x.channel == "trades":
            continue
        period = 100 if x.channel in ("books", "books5") else 10
        assert x.ts_ms % period == 0, x
        if x.channel in ("books", "books-l2-tbt", "books50-l2-tbt"):
            assert x.kind == "update"
            assert x.prev_seq_id == last[x.key]
            assert x.seq_id > x.prev_seq_id
            last[x.key] = x.seq_id
    # One seqId counter per instrument behind every channel: books (100 ms) publishes the
    # same seqIds books-l2-tbt (10 ms, same 400 window) did, only fewer of them.
    for inst in INSTS:
        books = {x.seq_id for x in pushes if x.key == ("books", inst)}
        tbt = {x.seq_id for x in pushes if x.key == ("books-l2-tbt", inst)}
        assert books < tbt and len(tbt) > 3 * len(books) > 50


def test_window_leaving_and_entering_levels_are_sent():
    m = scripted()
    p = Publisher(m, checksum=False, streams=[("books50-l2-tbt", "BTC-USDT"),
                                              ("books", "BTC-USDT")])
    snap = orjson.loads(p.snapshot("books50-l2-tbt", "BTC-USDT").frame)["data"][0]
    assert len(snap["bids"]) == 50 and snap["bids"][-1][0] == "951"
    t0 = m.start_ms
    m.add(LevelChange(t0 + 5, "BTC-USDT", "bid", "1000.5", "7", 2))
    m.add(LevelChange(t0 + 15, "BTC-USDT", "bid", "1000.5", "0", 0),
          LevelChange(t0 + 15, "BTC-USDT", "bid", "1000", "0", 0))
    got = frames(p.advance(t0 + 100))
    tbt = [f["data"][0] for f in got if f["arg"]["channel"] == "books50-l2-tbt"]
    # A better bid enters: the 50th level leaves the window and is deleted.
    assert tbt[0]["bids"] == [["1000.5", "7", "0", "2"], ["951", "0", "0", "0"]]
    # Two deletions inside: the next two levels below the window move in, with their sizes.
    assert tbt[1]["bids"] == [["1000.5", "0", "0", "0"], ["1000", "0", "0", "0"],
                              ["951", "50", "0", "1"], ["950", "51", "0", "1"]]
    assert tbt[0]["asks"] == tbt[1]["asks"] == []
    # books (400 deep, 100 ms): only the net change of the whole 100 ms.
    books = [f["data"][0] for f in got if f["arg"]["channel"] == "books"]
    assert books == [{"asks": [], "bids": [["1000", "0", "0", "0"]], "ts": str(t0 + 100),
                      "checksum": 0, "prevSeqId": books[0]["prevSeqId"],
                      "seqId": books[0]["prevSeqId"] + 3}]


def test_heartbeat_then_maintenance_reset():
    m = scripted(n_levels=10)
    streams = [("books", "BTC-USDT"), ("books5", "BTC-USDT"), ("books-l2-tbt", "BTC-USDT")]
    p = Publisher(m, heartbeat_ms=1000, streams=streams)
    fc = FeedCheck().feed_all(p.snapshot(c, i).frame for c, i in streams)
    snap_seq = p.snapshot("books", "BTC-USDT").seq_id
    t0 = m.start_ms
    quiet = p.advance(t0 + 2500)
    fc.feed_all(x.frame for x in quiet)
    hb = [orjson.loads(x.frame)["data"][0] for x in quiet if x.channel == "books"]
    assert [h["ts"] for h in hb] == [str(t0 + 1000), str(t0 + 2000)]
    assert all(h["asks"] == h["bids"] == [] and h["seqId"] == h["prevSeqId"] == snap_seq
               for h in hb)
    # books5 repeats its snapshot instead (same levels and seqId, new ts)
    b5 = [orjson.loads(x.frame)["data"][0] for x in quiet if x.channel == "books5"]
    assert len(b5) == 2 and b5[0]["asks"] == b5[1]["asks"] and b5[0]["seqId"] == snap_seq
    new = p.reset("BTC-USDT")
    assert new < snap_seq
    after = p.advance(t0 + 2600)
    resets = [x for x in after if x.kind == "reset"]
    assert {x.channel for x in resets} == {"books", "books-l2-tbt"}
    assert all(x.prev_seq_id == snap_seq and x.seq_id == new for x in resets)
    m.add(LevelChange(t0 + 2650, "BTC-USDT", "ask", "1001", "9", 3))
    after += p.advance(t0 + 2800)
    fc.feed_all(x.frame for x in after)
    upd = [x for x in after if x.kind == "update" and x.channel == "books"]
    assert upd[0].prev_seq_id == new and upd[0].seq_id == new + 1
    s = fc.syncs[("books", "BTC-USDT")].stats
    assert (s.heartbeats, s.resets, s.gaps, s.checksum_failed) == (2, 1, 0, 0)
    assert s.checksum_verified == s.messages == 5


def test_checksum_generation_off_writes_zero():
    m = RandomMarket(seed=2, rate=300)
    p = Publisher(m, checksum=False, streams=ALL_STREAMS)
    pushes = [p.snapshot("books", "ETH-USDT"), *p.advance(m.start_ms + 3000)]
    book = [orjson.loads(x.frame)["data"][0] for x in pushes
            if x.channel in ("books", "books-l2-tbt", "books50-l2-tbt")]
    assert len(book) > 100 and all(d["checksum"] == 0 for d in book)
    # checksum 0 is "absent": a client still syncs on the seqId chain alone
    fc = FeedCheck().feed_all(x.frame for x in pushes)
    s = fc.syncs[("books", "ETH-USDT")].stats
    assert s.gaps == 0 and s.checksum_absent == s.messages > 10


def test_trades_pushed_at_their_time_and_book_channels_in_okx_order():
    m = scripted(n_levels=10)
    streams = [(c, "BTC-USDT") for c in reversed(CHANNELS)]
    p = Publisher(m, streams=streams)
    t0 = m.start_ms
    m.add(Print(t0 + 37, "BTC-USDT", "77", "1001", "1", "buy", 2),
          LevelChange(t0 + 37, "BTC-USDT", "ask", "1001", "0", 0))
    pushes = p.advance(t0 + 100)
    assert [(x.channel, x.ts_ms - t0) for x in pushes] == [
        ("trades", 37), ("bbo-tbt", 40), ("books-l2-tbt", 40), ("books50-l2-tbt", 40),
        ("books", 100), ("books5", 100)]
    assert [x.channel for x in pushes[1:]] == list(PUSH_ORDER)
    trade = orjson.loads(pushes[0].frame)["data"][0]
    assert trade == {"instId": "BTC-USDT", "tradeId": "77", "px": "1001", "sz": "1",
                     "side": "buy", "ts": str(t0 + 37), "count": "2", "source": "0",
                     "seqId": pushes[0].seq_id}


def test_stall_holds_pushes_then_catches_up_without_gap():
    m = RandomMarket(seed=4, rate=300, instruments=["BTC-USDT"])
    streams = [("books", "BTC-USDT"), ("trades", "BTC-USDT")]
    p = Publisher(m, streams=streams)
    fc = FeedCheck()
    fc.feed(p.snapshot("books", "BTC-USDT").frame)
    t0 = m.start_ms
    fc.feed_all(x.frame for x in p.advance(t0 + 1000))
    p.stall(t0 + 3000)
    assert p.advance(t0 + 2990) == []
    after = p.advance(t0 + 3000)
    # the trades of the stall come first, then one update carrying 2 s of changes
    kinds = [x.kind for x in after]
    assert kinds[-1] == "update" and set(kinds[:-1]) == {"trade"} and len(kinds) > 50
    assert len(orjson.loads(after[-1].frame)["data"][0]["bids"]) > 20
    fc.feed_all(x.frame for x in after + p.advance(t0 + 4000))
    s = fc.syncs[("books", "BTC-USDT")].stats
    assert s.gaps == 0 and s.checksum_failed == 0 and s.checksum_verified == s.messages


def test_rest_book_is_the_published_books_state():
    m = RandomMarket(seed=9, rate=300, instruments=["BTC-USDT"])
    p = Publisher(m, streams=[("books", "BTC-USDT")])
    pushes = p.advance(m.start_ms + 1050)  # 50 ms of changes not yet published
    bids, asks, ts, seq = p.rest_book("BTC-USDT", 400)
    assert (ts, seq) == (pushes[-1].ts_ms, pushes[-1].seq_id) and seq < p.seq_id("BTC-USDT")
    book = L2Book("BTC-USDT")
    book.apply_snapshot(bids, asks)
    assert book.checksum() == pushes[-1].checksum
    assert len(p.rest_book("BTC-USDT", 5)[0]) == 5


def test_frames_have_the_shape_of_real_okx_frames(okxreal):
    """Key order and field sets of real frames: 2022 books/trades (cryptofeed capture, no
    seqIds then) and 2025 books5 (TradeSim); the 2026 fields follow the protocol notes."""
    from support import capture_frames

    real_frames = [orjson.loads(f) for f in capture_frames(real("cryptofeed", "OKX.ws.1.0"))]
    real_books = [f for f in real_frames if f.get("arg", {}).get("channel") == "books"
                  and "data" in f]
    real_trades = [f for f in real_frames if f.get("arg", {}).get("channel") == "trades"
                   and "data" in f]
    real_b5 = orjson.loads(real("TradeSim", "btc_usdt_snap.json").read_bytes())
    m = RandomMarket(seed=1, rate=300)
    p = Publisher(m, streams=ALL_STREAMS)
    ours = {c: [] for c in CHANNELS}
    for x in [p.snapshot("books", "BTC-USDT"), *p.advance(m.start_ms + 3000)]:
        ours[x.channel].append(orjson.loads(x.frame))
    for f in ours["books"]:
        rb = real_books[0] if f["action"] == "snapshot" else real_books[1]
        assert list(f) == list(rb) == ["arg", "action", "data"]
        assert list(f["arg"]) == list(rb["arg"])
        keys = list(f["data"][0])
        assert keys[:4] == list(rb["data"][0]) == ["asks", "bids", "ts", "checksum"]
        assert keys[4:] == ["prevSeqId", "seqId"]
        for lv in f["data"][0]["asks"] + f["data"][0]["bids"]:
            assert len(lv) == 4 and lv[2] == "0" and all(isinstance(v, str) for v in lv)
            assert _DECIMAL.fullmatch(lv[0]) and _DECIMAL.fullmatch(lv[1]) and lv[3].isdigit()
    assert [f["action"] for f in ours["books"][:2]] == ["snapshot", "update"]
    for f in ours["books5"]:
        assert list(f) == list(real_b5[0]) and list(f["arg"]) == list(real_b5[0]["arg"])
        assert list(f["data"][0]) == list(real_b5[0]["data"][0])
        assert len(f["data"][0]["asks"]) == len(real_b5[0]["data"][0]["asks"]) == 5
    for f in ours["bbo-tbt"]:
        assert list(f["data"][0]) == list(real_b5[0]["data"][0])
        assert len(f["data"][0]["asks"]) == len(f["data"][0]["bids"]) == 1
    rt = list(real_trades[0]["data"][0])
    for f in ours["trades"]:
        assert list(f) == list(real_trades[0]) == ["arg", "data"]
        assert list(f["data"][0])[: len(rt)] == rt
        assert list(f["data"][0])[len(rt):] == ["count", "source", "seqId"]


def test_unknown_stream_and_bad_events_are_refused():
    m = scripted(n_levels=5)
    p = Publisher(m)
    with pytest.raises(KeyError, match="unknown instrument 'ETH-USDT'"):
        p.activate("books", "ETH-USDT")
    with pytest.raises(KeyError, match="unknown channel 'tickers'"):
        p.activate("tickers", "BTC-USDT")
    p.activate("books", "BTC-USDT")
    m.add(LevelChange(m.start_ms + 1, "BTC-USDT", "buy", "1", "1", 1))
    with pytest.raises(ValueError, match="side must be 'bid' or 'ask'"):
        p.advance(m.start_ms + 10)


def test_booksync_of_a_real_client_detects_a_skipped_update():
    """The checker used by the server tests can fail: drop one update, get one gap."""
    m = RandomMarket(seed=6, rate=300, instruments=["ETH-USDT"])
    p = Publisher(m, streams=[("books", "ETH-USDT")])
    sync = BookSync(L2Book("ETH-USDT"))
    sync.apply(parse_frame(p.snapshot("books", "ETH-USDT").frame))
    for k, x in enumerate(p.advance(m.start_ms + 2000)):
        if k != 5:
            sync.apply(parse_frame(x.frame))
    assert sync.stats.gaps == 1


def test_frames_take_their_own_size_in_memory():
    """orjson hands back every result in a 4 KB block; queued by the thousand for a slow
    client, 300-byte updates held 14 times their size. The publisher's frames are tight."""
    import tracemalloc

    m = RandomMarket(seed=3, instruments=["BTC-USDT", "ETH-USDT"], rate=500)
    p = Publisher(m, streams=[(ch, i) for i in ("BTC-USDT", "ETH-USDT")
                              for ch in ("books-l2-tbt", "bbo-tbt", "books5", "trades")])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pushes = p.advance(m.start_ms + 3000)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    frame_bytes = sum(len(x.frame) for x in pushes)
    assert len(pushes) > 500
    # frames, the Push tuples and the market's own state: about 3x the frames (14x before)
    assert held < 4 * frame_bytes, (held, frame_bytes)


def test_channel_tables_agree_with_simlab_okx():
    """The publisher adds cadence; the channel names, kinds and depths are simlab.okx's."""
    from simlab.emulator.publisher import FULL, INCREMENTAL, TRADES
    from simlab.okx.messages import (
        BOOK_DEPTH,
        FULL_BOOK_CHANNELS,
        INCREMENTAL_BOOK_CHANNELS,
        TRADE_CHANNELS,
    )

    assert set(INCREMENTAL) == INCREMENTAL_BOOK_CHANNELS
    assert set(FULL) == FULL_BOOK_CHANNELS
    assert TRADES in TRADE_CHANNELS
    assert set(PUSH_ORDER) == set(BOOK_CHANNELS) == INCREMENTAL_BOOK_CHANNELS | FULL_BOOK_CHANNELS
    depth = {c: d for c, (d, _) in {**INCREMENTAL, **FULL}.items()}
    assert depth == {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5,
                     "bbo-tbt": 1}
    assert all(BOOK_DEPTH[c] == d for c, d in depth.items())
    # OKX's push order within one push time, and its cadences
    assert PUSH_ORDER == ("bbo-tbt", "books-l2-tbt", "books50-l2-tbt", "books", "books5")
    assert [{**INCREMENTAL, **FULL}[c][1] for c in PUSH_ORDER] == [10, 10, 10, 100, 100]

