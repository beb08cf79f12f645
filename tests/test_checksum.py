"""OKX checksum: documentation vectors and real recorded books (gocryptotrader, Okcoin)."""

from __future__ import annotations

import json

import pytest
from support import real

from simlab.okx import BookSync, checksum_string, crc32_signed, is_book, okx_checksum, parse_frame
from simlab.okx.messages import BookMsg


def vectors() -> list[dict]:
    return json.loads(real("checksum_test_vectors.json").read_text())["vectors"]


# -- documentation vectors -----------------------------------------------------------------
def test_doc_vectors_are_the_two_published_ones():
    v = vectors()
    assert [x["expected"] for x in v] == [-1881014294, 831078360]


@pytest.mark.parametrize("i", [0, 1])
def test_doc_vector_string_and_value(i):
    v = vectors()[i]
    assert checksum_string(v["bids"], v["asks"]) == v["check_string"]
    assert okx_checksum(v["bids"], v["asks"]) == v["expected"]
    assert crc32_signed(v["check_string"]) == v["expected"]


@pytest.mark.parametrize("i", [0, 1])
def test_doc_vector_through_book(make_book, i):
    v = vectors()[i]
    book = make_book("X")
    book.apply_snapshot(v["bids"], v["asks"])
    assert book.checksum() == v["expected"]
    # Order of the input levels must not matter: the book sorts them.
    book2 = make_book("X")
    book2.apply_snapshot(list(reversed(v["bids"])), list(reversed(v["asks"])))
    assert book2.checksum() == v["expected"]


def test_doc_vector_values_hardcoded():
    # Independent of the JSON file, straight from the protocol notes.
    assert okx_checksum([["3366.1", "7"], ["3366", "6"]],
                        [["3366.8", "9"], ["3368", "8"]]) == -1881014294
    assert okx_checksum([["3366.1", "7"]],
                        [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]) == 831078360


def test_signed_crc_is_negative_above_2_pow_31():
    # zlib.crc32("a") = 0xE8B7BE43 -> as int32 that is negative.
    assert crc32_signed("a") == 0xE8B7BE43 - 2**32


def test_only_top_25_levels_count(make_book):
    bids = [[str(1000 - i), "1", "0", "1"] for i in range(40)]
    asks = [[str(1001 + i), "2", "0", "1"] for i in range(30)]
    book = make_book("X")
    book.apply_snapshot(bids, asks)
    expected = okx_checksum(bids[:25], asks[:25])
    assert book.checksum() == expected
    s = checksum_string(bids, asks)
    assert s.count(":") == 25 * 4 - 1
    assert s.startswith("1000:1:1001:2:999:1:1002:2") and s.endswith("976:1:1025:2")


def test_uses_exact_wire_strings(make_book):
    # "100.0" and "100" are the same price but different checksum input.
    a, b = make_book("X"), make_book("X")
    a.apply_snapshot([["100.0", "1", "0", "1"]], [["101", "1", "0", "1"]])
    b.apply_snapshot([["100", "1", "0", "1"]], [["101", "1", "0", "1"]])
    assert a.checksum() == crc32_signed("100.0:1:101:1")
    assert b.checksum() == crc32_signed("100:1:101:1")
    assert a.checksum() != b.checksum()


# -- the documentation's bad push example ---------------------------------------------------
def test_doc_push_example_checksum_does_not_match_its_book(make_book):
    """The docs' push example prints -855196043; its 8-level book computes to -2102840145."""
    note = json.loads(real("checksum_test_vectors.json").read_text())["note"]
    assert "-855196043" in note and "-2102840145" in note
    # The docs-v5 books push example (BTC-USDT snapshot, 8 asks and 8 bids).
    asks = [["8476.98", "415", "0", "13"], ["8477", "7", "0", "2"], ["8477.34", "85", "0", "1"],
            ["8477.56", "1", "0", "1"], ["8505.84", "8", "0", "1"], ["8506.37", "85", "0", "1"],
            ["8506.49", "2", "0", "1"], ["8506.96", "100", "0", "2"]]
    bids = [["8476.97", "256", "0", "12"], ["8475.55", "101", "0", "1"],
            ["8475.54", "100", "0", "1"], ["8475.3", "1", "0", "1"], ["8447.32", "6", "0", "1"],
            ["8447.02", "246", "0", "1"], ["8446.83", "24", "0", "1"], ["8446", "95", "0", "3"]]
    book = make_book("BTC-USDT")
    book.apply_snapshot(bids, asks)
    assert book.checksum() == okx_checksum(bids, asks)
    assert book.checksum() == -2102840145  # the value the JSON note computes
    assert book.checksum() != -855196043
    sync = BookSync(make_book("BTC-USDT"))
    sync.apply(BookMsg("books", "BTC-USDT", "snapshot", bids, asks, 1, 10, -1, -855196043))
    assert sync.stats.checksum_failed == 1 and not sync.valid


def test_bad_checksum_is_reported_failed(make_book):
    v = vectors()[0]
    sync = BookSync(make_book("X"))
    sync.apply(BookMsg("books", "X", "snapshot", v["bids"], v["asks"], 1, 10, -1, -855196043))
    assert sync.stats.checksum_failed == 1
    assert sync.stats.checksum_verified == 0
    assert sync.valid is False
    assert sync.events[-1].kind == "checksum_failed"
    assert "-855196043" in sync.events[-1].detail


# -- checksum 0 / absent, failure semantics ------------------------------------------------
def test_checksum_zero_is_absent_never_failed(make_book):
    sync = BookSync(make_book("X"))
    sync.apply(BookMsg("books", "X", "snapshot", [["1", "1", "0", "1"]], [["2", "1", "0", "1"]],
                       1, 10, -1, 0))
    sync.apply(BookMsg("books", "X", "update", [["1", "3", "0", "1"]], [], 2, 11, 10, 0))
    sync.apply(BookMsg("books", "X", "update", [["1.5", "3", "0", "1"]], [], 3, 12, 11, None))
    st = sync.stats
    assert (st.checksum_absent, st.checksum_failed, st.checksum_verified) == (3, 0, 0)
    assert sync.valid
    assert sync.last_checksum == "absent"


def test_wrong_checksum_invalidates_until_next_snapshot(make_book):
    bids = [["100", "1", "0", "1"]]
    asks = [["101", "1", "0", "1"]]
    sync = BookSync(make_book("X"))
    good = okx_checksum(bids, asks)
    assert sync.apply(BookMsg("books", "X", "snapshot", bids, asks, 1, 10, -1, good)) == "snapshot"
    assert sync.stats.checksum_verified == 1 and sync.valid
    # An update whose checksum is wrong.
    sync.apply(BookMsg("books", "X", "update", [["100", "2", "0", "1"]], [], 2, 11, 10, 12345))
    assert sync.stats.checksum_failed == 1
    assert not sync.valid
    assert sync.last_checksum == "failed"
    assert len(sync.book) == 0  # cleared: nothing trustworthy is left
    # Later updates are not applied, even correctly chained ones.
    after = [["100", "3", "0", "1"]]
    assert sync.apply(BookMsg("books", "X", "update", after, [], 3, 12, 11, 0)) == "no_snapshot"
    assert sync.stats.no_snapshot == 1
    assert len(sync.book) == 0
    # A new snapshot restores it.
    cs = okx_checksum([["99", "5"]], asks)
    sync.apply(BookMsg("books", "X", "snapshot", [["99", "5", "0", "1"]], asks, 4, 20, -1, cs))
    assert sync.valid and sync.stats.checksum_verified == 2
    assert sync.book.best_bid == 99.0


def test_verify_checksum_false_ignores_it(make_book):
    sync = BookSync(make_book("X"), verify_checksum=False)
    sync.apply(BookMsg("books", "X", "snapshot", [["1", "1"]], [["2", "1"]], 1, 10, -1, 777))
    assert sync.valid
    assert sync.stats.checksum_failed == sync.stats.checksum_verified == 0


# -- real recorded books --------------------------------------------------------------------
def test_gocryptotrader_okx_snapshot(make_book):
    frame = real("gocryptotrader", "okx_books_snapshot_39x37_2022-08-06.json").read_bytes()
    msg = parse_frame(frame.strip())
    assert is_book(msg)
    assert (len(msg.bids), len(msg.asks), msg.checksum) == (39, 37, -1462286744)
    # Plain lists: parse_frame may return read-only level views (C fast path).
    assert okx_checksum([list(x) for x in msg.bids], [list(x) for x in msg.asks]) == -1462286744
    sync = BookSync(make_book(msg.inst_id))
    assert sync.apply(msg) == "snapshot"
    assert sync.stats.checksum_verified == 1 and sync.stats.checksum_failed == 0
    assert sync.book.checksum() == -1462286744
    assert sync.valid


def test_okcoin_snapshot_then_update(make_book):
    lines = real("gocryptotrader",
                 "okcoin_BTC-USD_books_snapshot_update_2023-07-10.jsonl").read_bytes().splitlines()
    msgs = [parse_frame(x) for x in lines if x.strip()]
    assert [m.action for m in msgs] == ["snapshot", "update"]
    assert [m.checksum for m in msgs] == [-872896843, 1109161389]
    assert (len(msgs[0].bids), len(msgs[0].asks)) == (266, 127)
    sync = BookSync(make_book("BTC-USD"))
    sync.apply(msgs[0])
    assert sync.book.checksum() == -872896843
    best_ask = sync.book.best_ask
    assert best_ask == 30382.6
    sync.apply(msgs[1])  # deletes the best ask
    assert sync.book.checksum() == 1109161389
    assert sync.book.best_ask == 30382.61
    assert sync.stats.checksum_verified == 2 and sync.stats.checksum_failed == 0
    assert sync.valid


def test_okcoin_update_alone_does_not_verify(make_book):
    """The update's checksum depends on the snapshot: applied to a book without the deletion
    having happened, it must not match (guards against a trivially passing checksum)."""
    lines = real("gocryptotrader",
                 "okcoin_BTC-USD_books_snapshot_update_2023-07-10.jsonl").read_bytes().splitlines()
    snap, upd = (parse_frame(x) for x in lines if x.strip())
    book = make_book("BTC-USD")
    book.apply_snapshot(snap.bids, snap.asks)
    assert book.checksum() != upd.checksum
