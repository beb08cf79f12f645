"""L2Book: hand-computed queries, exact price keys, update semantics, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.book import BookError
from simlab.okx import crc32_signed


def L(px: str, sz: str, count: int = 1) -> list[str]:
    return [px, sz, "0", str(count)]


@pytest.fixture
def book(make_book):
    """mid 100, spread 1: bids 99.5x2 99x5 98.5x1 98.4x7, asks 100.5x4 101x3 101.5x2 101.6x9."""
    b = make_book("T")
    b.apply_snapshot([L("99.5", "2", 1), L("99", "5", 3), L("98.5", "1"), L("98.4", "7")],
                     [L("100.5", "4", 2), L("101", "3"), L("101.5", "2"), L("101.6", "9")])
    return b


def snapshot_of(b) -> tuple:
    return b.levels("bid"), b.levels("ask")


# -- top of book ----------------------------------------------------------------------------
def test_best_mid_spread(book):
    assert (book.best_bid, book.best_ask) == (99.5, 100.5)
    assert (book.best_bid_size, book.best_ask_size) == (2.0, 4.0)
    assert book.mid == 100.0
    assert book.spread == 1.0
    assert book.spread_bps == 100.0
    assert (book.n_bids, book.n_asks, len(book)) == (4, 4, 8)
    assert not book.is_crossed()


def test_spread_is_exact_decimal_difference(make_book):
    b = make_book("T")
    b.apply_snapshot([L("0.1", "1")], [L("0.3", "1")])
    assert 0.3 - 0.1 != 0.2  # what a float book would report
    assert b.spread == 0.2
    b.apply_snapshot([L("1.1", "1")], [L("1.3", "1")])
    assert b.spread == 0.2
    b.apply_snapshot([L("30243.5", "1")], [L("30243.6", "1")])
    assert b.spread == 0.1


def test_empty_book_queries(make_book):
    b = make_book("T")
    for v in (b.best_bid, b.best_ask, b.mid, b.spread, b.spread_bps, b.best_bid_size):
        assert math.isnan(v)
    assert b.levels("bid") == [] and b.levels("ask") == []
    assert b.depth("bid") == 0.0 and b.depth("ask", bps=50) == 0.0
    t = b.top(5)
    assert [len(x) for x in t] == [0, 0, 0, 0]
    assert b.checksum() == crc32_signed("") == 0
    assert not b.is_crossed() and len(b) == 0


def test_one_sided_book(make_book):
    b = make_book("T")
    b.apply_snapshot([L("10", "1")], [])
    assert b.best_bid == 10.0 and math.isnan(b.best_ask) and math.isnan(b.mid)
    assert not b.is_crossed()


# -- levels and top -------------------------------------------------------------------------
def test_levels(book):
    assert book.levels("bid") == [("99.5", "2", 1), ("99", "5", 3), ("98.5", "1", 1),
                                  ("98.4", "7", 1)]
    assert book.levels("ask", 2) == [("100.5", "4", 2), ("101", "3", 1)]
    assert book.levels("bids", 1) == [("99.5", "2", 1)]
    assert book.levels("asks", 10) == book.levels("ask")
    assert book.levels("bid", 0) == []


def test_levels_count_is_last_element(make_book):
    b = make_book("T")
    b.apply_snapshot([["10", "1"], ["9", "2", "7"]], [["11", "1", "0", "4"]])
    assert b.levels("bid") == [("10", "1", 0), ("9", "2", 7)]
    assert b.levels("ask") == [("11", "1", 4)]


def test_top(book):
    t = book.top(2)
    assert t.bid_px.dtype == np.float64 and t.ask_sz.dtype == np.float64
    assert t.bid_px.tolist() == [99.5, 99.0]
    assert t.bid_sz.tolist() == [2.0, 5.0]
    assert t.ask_px.tolist() == [100.5, 101.0]
    assert t.ask_sz.tolist() == [4.0, 3.0]
    t = book.top(10)
    assert t.bid_px.tolist() == [99.5, 99.0, 98.5, 98.4]
    assert t.ask_px.tolist() == [100.5, 101.0, 101.5, 101.6]
    assert [len(x) for x in book.top(0)] == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", ["mid", "BID", "", None])
def test_bad_side_names_it(book, bad):
    with pytest.raises(ValueError, match="side"):
        book.levels(bad)
    with pytest.raises(ValueError, match="side"):
        book.depth(bad, levels=1)


# -- depth ----------------------------------------------------------------------------------
def test_depth_by_levels(book):
    assert book.depth("bid", levels=1) == 2.0
    assert book.depth("bid", levels=2) == 7.0
    assert book.depth("ask", levels=3) == 9.0
    assert book.depth("ask", levels=99) == 18.0
    assert book.depth("bid") == 15.0 and book.depth("ask") == 18.0
    assert book.depth("ask", levels=0) == 0.0
    # notional: 100.5*4 + 101*3 = 705
    assert book.depth("ask", levels=2, notional=True) == 705.0


def test_depth_by_bps_hand_computed(book):
    """mid 100, 150 bps: bids >= 98.5 and asks <= 101.5, both bounds included."""
    assert book.depth("bid", bps=150) == 2 + 5 + 1
    assert book.depth("ask", bps=150) == 4 + 3 + 2
    # 99.5*2 + 99*5 + 98.5*1
    assert book.depth("bid", bps=150, notional=True) == 792.5
    assert book.depth("bid", bps=0) == 0.0 and book.depth("ask", bps=0) == 0.0
    assert book.depth("bid", bps=50) == 2.0  # >= 99.5
    assert book.depth("ask", bps=50) == 4.0  # <= 100.5
    assert book.depth("bid", bps=10_000) == 15.0


def test_depth_bad_args(book):
    with pytest.raises(ValueError, match="levels"):
        book.depth("bid", levels=1, bps=10)
    with pytest.raises(ValueError, match="bps"):
        book.depth("bid", bps=-1)


# -- walking the book -----------------------------------------------------------------------
def test_walk_buy_by_base(book):
    f = book.walk("buy", base=5)
    # 4 @ 100.5 + 1 @ 101 = 503
    assert (f.filled_base, f.filled_quote, f.avg_price) == (5.0, 503.0, 100.6)
    assert (f.best_price, f.worst_price, f.levels) == (100.5, 101.0, 2)
    assert f.complete and f.shortfall == 0.0
    assert (f.side, f.unit, f.requested) == ("buy", "base", 5.0)
    assert f.slippage_bps == pytest.approx((100.6 - 100.5) / 100.5 * 1e4)


def test_walk_buy_by_quote(book):
    f = book.walk("buy", quote=503)
    assert f.filled_base == pytest.approx(5.0, rel=1e-12)
    assert f.filled_quote == pytest.approx(503.0, rel=1e-12)
    assert f.levels == 2 and f.complete and f.unit == "quote"
    f = book.walk("buy", quote=201)  # half of the best level
    assert f.filled_base == pytest.approx(2.0, rel=1e-12) and f.levels == 1
    assert f.avg_price == 100.5


def test_walk_exact_level_boundary(book):
    f = book.walk("buy", base=4)
    assert f.levels == 1 and f.complete and f.worst_price == 100.5


def test_walk_sell_side(book):
    f = book.walk("sell", base=8)
    # 2 @ 99.5 + 5 @ 99 + 1 @ 98.5 = 792.5
    assert (f.filled_base, f.filled_quote, f.avg_price) == (8.0, 792.5, 99.0625)
    assert (f.best_price, f.worst_price, f.levels, f.complete) == (99.5, 98.5, 3, True)
    assert f.slippage_bps == pytest.approx((99.5 - 99.0625) / 99.5 * 1e4)
    assert f.slippage_bps > 0


def test_walk_larger_than_book_base(book):
    f = book.walk("buy", base=30)
    assert not f.complete
    assert f.filled_base == 18.0  # the whole ask side
    assert f.shortfall == 12.0
    # 402 + 303 + 203 + 914.4
    assert f.filled_quote == pytest.approx(1822.4, rel=1e-12)
    assert (f.levels, f.worst_price) == (4, 101.6)
    g = book.walk("sell", base=15.5)
    assert not g.complete and g.filled_base == 15.0 and g.shortfall == 0.5


def test_walk_larger_than_book_quote(book):
    f = book.walk("buy", quote=2000)
    assert not f.complete
    assert f.filled_base == pytest.approx(18.0, rel=1e-12)
    assert f.shortfall == pytest.approx(2000 - 1822.4, rel=1e-12)


def test_walk_empty_side(make_book):
    b = make_book("T")
    b.apply_snapshot([L("1", "1")], [])
    f = b.walk("buy", base=1)
    assert (f.filled_base, f.levels, f.complete, f.shortfall) == (0.0, 0, False, 1.0)
    assert math.isnan(f.avg_price) and math.isnan(f.slippage_bps)


@pytest.mark.parametrize("side", ["bid", "ask", "BUY", "long", None])
def test_walk_bad_side_names_it(book, side):
    with pytest.raises(ValueError, match="side"):
        book.walk(side, base=1)


@pytest.mark.parametrize("kw", [{}, {"base": 1, "quote": 1}])
def test_walk_needs_exactly_one_of_base_quote(book, kw):
    with pytest.raises(ValueError, match="base") as ei:
        book.walk("buy", **kw)
    assert "quote" in str(ei.value)


@pytest.mark.parametrize("v", [0, -1, -0.5, math.nan, math.inf])
@pytest.mark.parametrize("unit", ["base", "quote"])
def test_walk_non_positive_size(book, v, unit):
    with pytest.raises(ValueError) as ei:
        book.walk("sell", **{unit: v})
    assert "positive" in str(ei.value)


# -- exact price keys -----------------------------------------------------------------------
def test_decimal_keys_float_sum_prices_are_distinct(make_book):
    b = make_book("T")
    b.apply_snapshot([L("0.3", "1"), L(repr(0.1 + 0.2), "2"), L("0.1", "3"), L("0.2", "4")], [])
    assert repr(0.1 + 0.2) == "0.30000000000000004"
    assert b.n_bids == 4
    assert [x[0] for x in b.levels("bid")] == ["0.30000000000000004", "0.3", "0.2", "0.1"]
    b.apply_update([L("0.30", "9")], [])  # same price as "0.3"
    assert b.n_bids == 4
    assert ("0.30", "9", 1) in b.levels("bid") and ("0.3", "1", 1) not in b.levels("bid")


def test_same_price_different_spelling_is_one_level(make_book):
    b = make_book("T")
    b.apply_snapshot([L("100", "1"), L("99", "1")], [L("101", "1")])
    b.apply_update([L("100.0", "3", 2)], [])
    assert b.n_bids == 2
    assert b.levels("bid", 1) == [("100.0", "3", 2)]
    # The checksum uses the spelling of the last message for that level.
    assert b.checksum() == crc32_signed("100.0:3:101:1:99:1")
    b.apply_update([L("100.00", "0", 0)], [])  # deletes it too
    assert b.levels("bid") == [("99", "1", 1)]


def test_tiny_sizes(make_book):
    b = make_book("T")
    b.apply_snapshot([L("30000.1", "0.00000001")], [L("30000.2", "0.00000002")])
    assert b.best_bid_size == 1e-8 and b.best_ask_size == 2e-8
    assert b.depth("ask") == 2e-8
    assert b.levels("bid") == [("30000.1", "0.00000001", 1)]
    b.apply_update([L("30000.1", "0.00000000")], [])
    assert b.n_bids == 0


def test_very_large_prices_stay_exact(make_book):
    b = make_book("T")
    # 2**53 and 2**53 + 1: the same float, different prices.
    lo, hi = "9007199254740992", "9007199254740993"
    assert float(lo) == float(hi)
    b.apply_snapshot([L(lo, "1")], [L(hi, "2")])
    assert (b.n_bids, b.n_asks) == (1, 1)
    assert not b.is_crossed()
    assert b.spread == 1.0
    assert b.levels("ask") == [(hi, "2", 1)]
    b.apply_update([], [L("9007199254740993.0", "5")])
    assert b.levels("ask") == [("9007199254740993.0", "5", 1)]


def test_many_decimals_prices(make_book):
    b = make_book("T")
    b.apply_snapshot([L("0.000000012345", "1"), L("0.000000012344", "1")],
                     [L("0.000000012346", "1")])
    assert b.n_bids == 2 and b.levels("bid", 1)[0][0] == "0.000000012345"
    assert b.spread == pytest.approx(1e-15, rel=1e-9)


# -- update semantics -----------------------------------------------------------------------
def test_update_insert_modify_delete(book):
    book.apply_update([L("99.7", "1"), L("99", "6", 4), L("98.4", "0", 0)],
                      [L("100.5", "0", 0), L("100.6", "2")])
    assert book.levels("bid") == [("99.7", "1", 1), ("99.5", "2", 1), ("99", "6", 4),
                                  ("98.5", "1", 1)]
    assert book.levels("ask", 2) == [("100.6", "2", 1), ("101", "3", 1)]
    assert book.best_ask == 100.6


def test_delete_missing_level_is_noop(book):
    before = snapshot_of(book)
    book.apply_update([L("50", "0", 0)], [L("150", "0", 0)])
    assert snapshot_of(book) == before


def test_snapshot_replaces_everything(book):
    book.apply_snapshot([L("1", "1")], [L("2", "1")])
    assert book.levels("bid") == [("1", "1", 1)] and book.levels("ask") == [("2", "1", 1)]


def test_snapshot_drops_zero_size_levels(make_book):
    b = make_book("T")
    b.apply_snapshot([L("1", "0"), L("0.5", "1")], [])
    assert b.levels("bid") == [("0.5", "1", 1)]


def test_clear(book):
    book.clear()
    assert len(book) == 0 and math.isnan(book.best_bid)


BAD_LEVELS = [
    L("abc", "1"),
    L("100", "x"),
    L("-1", "1"),
    L("0", "1"),
    L("100", "-1"),
    L("NaN", "1"),
    L("100", "NaN"),
    L("inf", "1"),
    L("100", "inf"),
    L("", "1"),
    ["100"],
    [],
    [100.0, "1"],
    ["100", 1],
    None,
    5,
    ["100", "1", "0", "x"],  # order count must be an integer (it is reported by levels())
]


@pytest.mark.parametrize("bad", BAD_LEVELS, ids=[repr(x) for x in BAD_LEVELS])
@pytest.mark.parametrize("where", ["bid", "ask"])
def test_bad_level_rejected_all_or_nothing(book, bad, where):
    before = snapshot_of(book)
    cs = book.checksum()
    good = [L("99.9", "1")]
    bids, asks = ([*good, bad], []) if where == "bid" else (good, [bad])
    with pytest.raises(BookError) as ei:
        book.apply_update(bids, asks)
    assert isinstance(ei.value, ValueError)
    assert repr(bad) in str(ei.value) or str(bad) in str(ei.value)
    assert snapshot_of(book) == before and book.checksum() == cs
    with pytest.raises(BookError):
        book.apply_snapshot(bids, asks)
    assert snapshot_of(book) == before


def test_crossed_detection(make_book):
    b = make_book("T")
    b.apply_snapshot([L("100", "1")], [L("101", "1")])
    assert not b.is_crossed()
    b.apply_update([L("101", "1")], [])  # locked
    assert b.is_crossed()
    b.apply_update([L("101", "0")], [])
    assert not b.is_crossed()
    b.apply_update([L("102", "1")], [])  # crossed
    assert b.is_crossed()
    assert b.spread == -1.0


def test_accepts_parser_level_views(make_book):
    """Levels straight from parse_frame (lists or read-only views) are accepted."""
    from simlab.okx import parse_frame

    m = parse_frame(b'{"arg":{"channel":"books","instId":"X"},"action":"snapshot","data":[{'
                    b'"asks":[["2","1","0","1"]],"bids":[["1","3","0","2"]],"ts":"1",'
                    b'"checksum":0,"prevSeqId":-1,"seqId":1}]}')
    b = make_book("X")
    b.apply_snapshot(m.bids, m.asks)
    assert b.levels("bid") == [("1", "3", 2)] and b.levels("ask") == [("2", "1", 1)]
