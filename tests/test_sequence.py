"""OKX sequence rules: ``classify`` unit cases and BookSync end to end, on real captures too."""

from __future__ import annotations

import orjson
import pytest
from support import capture_frames, real

from simlab.okx import BookSync, Seq, classify, is_book, okx_checksum, parse_frame
from simlab.okx.messages import BookMsg

BID = [["100", "1", "0", "1"]]
ASK = [["101", "1", "0", "1"]]


def snap(seq, ts=1, bids=BID, asks=ASK, inst="X"):
    return BookMsg("books", inst, "snapshot", bids, asks, ts, seq, -1, 0)


def upd(prev, seq, bids=(), asks=(), ts=2, inst="X"):
    return BookMsg("books", inst, "update", list(bids), list(asks), ts, seq, prev, 0)


# -- classify: unit cases -------------------------------------------------------------------
def test_classify_documented_chain():
    chain = [(-1, 10), (10, 15), (15, 15), (15, 3), (3, 5)]
    out, last, lprev = [], None, None
    for prev, seq in chain:
        out.append(classify(last is not None, last, lprev, prev == -1, prev, seq, prev == seq))
        last, lprev = seq, prev
    assert out == [Seq.SNAPSHOT, Seq.UPDATE, Seq.HEARTBEAT, Seq.RESET, Seq.UPDATE]


@pytest.mark.parametrize(
    "args, expected",
    [
        # (valid, last_seq, last_prev, is_snapshot, prev_seq, seq, empty)
        ((False, None, None, True, -1, 10, False), Seq.SNAPSHOT),
        ((True, 50, 40, True, -1, 10, False), Seq.SNAPSHOT),  # a new snapshot resets
        ((False, None, None, False, -1, 10, False), Seq.SNAPSHOT),  # prevSeqId -1 marks one
        ((True, 10, -1, False, 10, 11, False), Seq.UPDATE),
        ((True, 10, -1, False, 10, 1000, False), Seq.UPDATE),  # arbitrary step
        ((True, 15, 10, False, 15, 15, True), Seq.HEARTBEAT),
        ((True, 15, 10, False, 15, 3, False), Seq.RESET),
        ((True, 15, 10, False, 15, 3, True), Seq.RESET),
        ((True, 15, 10, False, 14, 20, False), Seq.GAP),
        ((True, 15, 10, False, 16, 20, False), Seq.GAP),
        ((True, 15, 10, False, 3, 5, False), Seq.GAP),  # a reset not chained on 15
        ((True, 15, 10, False, 10, 15, False), Seq.DUPLICATE),
        ((True, 15, 10, False, 10, 16, False), Seq.GAP),  # same prev, different seq
        ((False, None, None, False, 10, 15, False), Seq.NO_SNAPSHOT),
        ((False, None, None, False, None, None, False), Seq.NO_SNAPSHOT),
        ((True, None, None, False, None, None, False), Seq.UNSEQUENCED),
        ((True, 10, -1, False, None, None, False), Seq.UNSEQUENCED),
        ((True, None, None, False, 10, 11, False), Seq.UNSEQUENCED),  # chain unknown
    ],
)
def test_classify_rules(args, expected):
    assert classify(*args) is expected


# -- BookSync end to end --------------------------------------------------------------------
def test_sync_documented_chain_no_gap(make_book):
    sync = BookSync(make_book("X"))
    kinds = [
        sync.apply(snap(10)),
        sync.apply(upd(10, 15, bids=[["100", "2", "0", "1"]])),
        sync.apply(upd(15, 15)),  # heartbeat
        sync.apply(upd(15, 3, asks=[["101", "5", "0", "2"]])),  # maintenance reset
        sync.apply(upd(3, 5, bids=[["99", "1", "0", "1"]])),
    ]
    assert kinds == ["snapshot", "update", "heartbeat", "reset", "update"]
    st = sync.stats
    assert (st.gaps, st.heartbeats, st.resets, st.snapshots, st.updates) == (0, 1, 1, 1, 4)
    assert (st.no_snapshot, st.rejected, st.duplicates, st.messages) == (0, 0, 0, 5)
    assert sync.valid and sync.events == []
    assert sync.book.levels("bid") == [("100", "2", 1), ("99", "1", 1)]
    assert sync.book.levels("ask") == [("101", "5", 2)]


def test_sync_real_gap_then_snapshot_restores(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    sync.apply(upd(10, 15))
    assert sync.apply(upd(17, 20, bids=[["100", "9", "0", "1"]], ts=7)) == "gap"
    st = sync.stats
    assert st.gaps == 1 and not sync.valid
    ev = sync.events[-1]
    assert (ev.kind, ev.inst_id, ev.prev_seq_id, ev.seq_id, ev.expected_prev, ev.ts) == (
        "gap", "X", 17, 20, 15, 7)
    assert len(sync.book) == 0
    # Updates after the gap are not applied, even if they chain on the gap message.
    assert sync.apply(upd(20, 21, bids=[["100", "3", "0", "1"]])) == "no_snapshot"
    assert sync.apply(upd(21, 22)) == "no_snapshot"
    assert st.no_snapshot == 2 and len(sync.book) == 0
    # the gap explains the updates that follow: no event per skipped update
    assert [e.kind for e in sync.events] == ["gap"]
    cs = okx_checksum([["98", "4"]], ASK)
    sync.apply(BookMsg("books", "X", "snapshot", [["98", "4", "0", "1"]], ASK, 9, 30, -1, cs))
    assert sync.valid and sync.book.best_bid == 98.0
    assert sync.stats.checksum_verified == 1
    assert sync.apply(upd(30, 31, bids=[["98", "0", "0", "0"]])) == "update"
    assert sync.book.n_bids == 0 and sync.stats.gaps == 1


def test_sync_update_before_any_snapshot(make_book):
    sync = BookSync(make_book("X"))
    assert sync.apply(upd(5, 6, bids=BID)) == "no_snapshot"
    assert sync.stats.no_snapshot == 1 and sync.stats.gaps == 0
    assert not sync.valid and len(sync.book) == 0
    assert sync.events[0].kind == "no_snapshot"
    assert sync.apply(snap(10)) == "snapshot" and sync.valid


def test_sync_duplicate_of_last_message(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    sync.apply(upd(10, 15, bids=[["100", "2", "0", "1"]]))
    assert sync.apply(upd(10, 15, bids=[["100", "2", "0", "1"]])) == "duplicate"
    st = sync.stats
    assert (st.duplicates, st.gaps, st.updates) == (1, 0, 1)
    assert sync.valid
    # The chain continues from 15 after the duplicate.
    assert sync.apply(upd(15, 16)) == "update"
    assert st.gaps == 0


def test_sync_duplicate_not_confused_with_older_message(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    sync.apply(upd(10, 15))
    sync.apply(upd(15, 18))
    # (10, 15) is two messages back: OKX would never resend it; it is a gap.
    assert sync.apply(upd(10, 15)) == "gap"


def test_sync_heartbeat_does_not_change_book(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    before = sync.book.levels("bid"), sync.book.levels("ask")
    cs = sync.book.checksum()
    assert sync.apply(BookMsg("books", "X", "update", [], [], 5, 10, 10, cs)) == "heartbeat"
    assert (sync.book.levels("bid"), sync.book.levels("ask")) == before
    assert sync.stats.checksum_verified == 1


def test_sync_rejected_level_invalidates(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    assert sync.apply(upd(10, 11, bids=[["abc", "1", "0", "1"]])) == "update"
    assert sync.stats.rejected == 1 and not sync.valid
    assert sync.events[-1].kind == "rejected" and "abc" in sync.events[-1].detail
    assert sync.apply(upd(11, 12)) == "no_snapshot"


def test_sync_crossed_book_counted(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10))
    sync.apply(upd(10, 11, bids=[["101", "1", "0", "1"]]))
    assert sync.stats.crossed == 1


def test_sync_stats_ts_and_as_dict(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(snap(10, ts=100))
    sync.apply(upd(10, 11, ts=250))
    d = sync.stats.as_dict()
    assert (d["first_ts"], d["last_ts"], d["messages"]) == (100, 250, 2)


# -- real captures --------------------------------------------------------------------------
def test_cryptofeed_2022_capture_unsequenced_all_checksums_verify(make_book):
    frames = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    syncs: dict[str, BookSync] = {}
    n_book = 0
    for f in frames:
        m = parse_frame(f)
        if is_book(m):
            n_book += 1
            assert m.seq_id is None and m.prev_seq_id is None and m.checksum
            s = syncs.setdefault(m.inst_id, BookSync(make_book(m.inst_id)))
            s.apply(m)
            assert s.last_checksum == "ok", (m.inst_id, m.ts)
    assert n_book == 290
    counts = {k: (s.stats.messages, s.stats.snapshots, s.stats.unsequenced)
              for k, s in syncs.items()}
    assert counts == {"BTC-USDT": (98, 1, 97), "BTC-USD-220527": (99, 1, 98),
                      "UNI-USD-SWAP": (93, 1, 92)}
    assert sum(s.stats.checksum_verified for s in syncs.values()) == 290
    for s in syncs.values():
        st = s.stats
        assert (st.gaps, st.checksum_failed, st.rejected, st.crossed, st.no_snapshot) == (
            0, 0, 0, 0, 0)
        assert s.valid


def test_cryptofeed_capture_detects_a_dropped_message(make_book):
    """Without seqIds only the checksum can catch a lost update: drop one and it must fail."""
    frames = capture_frames(real("cryptofeed", "OKX.ws.1.0"))
    books = [f for f in frames
             if f.startswith(b'{"arg":{"channel":"books","instId":"BTC-USDT"}')]
    assert len(books) == 98
    sync = BookSync(make_book("BTC-USDT"))
    for f in books[:10] + books[11:]:
        sync.apply(parse_frame(f))
    assert sync.stats.checksum_failed == 1
    assert sync.events[0].kind == "checksum_failed"


def test_books5_real_each_push_a_snapshot(make_book):
    pushes = orjson.loads(real("TradeSim", "btc_usdt_snap.json").read_bytes())
    assert len(pushes) == 10
    sync = BookSync(make_book("BTC-USDT-SWAP"))
    for p in pushes:
        m = parse_frame(orjson.dumps(p))
        assert is_book(m)
        assert (m.channel, m.action, m.inst_id) == ("books5", "snapshot", "BTC-USDT-SWAP")
        assert m.seq_id == p["data"][0]["seqId"] and m.prev_seq_id is None
        assert sync.apply(m) == "snapshot"
        d = p["data"][0]
        book = sync.book
        assert book.levels("bid") == [(x[0], x[1], int(x[3])) for x in d["bids"]]
        assert book.levels("ask") == [(x[0], x[1], int(x[3])) for x in d["asks"]]
        assert book.best_bid == float(d["bids"][0][0])
        assert book.best_ask == float(d["asks"][0][0])
        top = book.top(5)
        assert list(top.bid_px) == [float(x[0]) for x in d["bids"]]
        assert list(top.ask_sz) == [float(x[1]) for x in d["asks"]]
    st = sync.stats
    assert (st.snapshots, st.gaps, st.updates, st.checksum_absent) == (10, 0, 0, 10)
    # First push, by hand: best 103129.8 / 103129.9.
    first = pushes[0]["data"][0]
    assert (first["bids"][0][0], first["asks"][0][0]) == ("103129.8", "103129.9")


def test_books5_levels_are_replaced_not_merged(make_book):
    sync = BookSync(make_book("X"))
    a = BookMsg("books5", "X", "snapshot", [["10", "1", "0", "1"], ["9", "1", "0", "1"]],
                [["11", "1", "0", "1"]], 1, 5)
    b = BookMsg("books5", "X", "snapshot", [["8", "2", "0", "1"]], [["12", "1", "0", "1"]], 2, 9)
    sync.apply(a)
    sync.apply(b)
    assert sync.book.levels("bid") == [("8", "2", 1)]
    assert sync.book.levels("ask") == [("12", "1", 1)]
