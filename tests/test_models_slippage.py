"""simlab.models.slippage: hand-computed walks of a real L2Book (both cores), spot and swap,
base and quote units, books too thin, mid vs best, and dual-mode arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_bitwise

from simlab.models.slippage import Slippage, SlippageCost, slippage, walk_slippage


def L(px: str, sz: str) -> list[str]:
    return [px, sz, "0", "1"]


@pytest.fixture
def spot(make_book):
    """mid 100: bids 99.5x2 99x3 98x5, asks 100.5x1 101x2 102x4 (7 BTC of asks)."""
    b = make_book("BTC-USDT")
    b.apply_snapshot([L("99.5", "2"), L("99", "3"), L("98", "5")],
                     [L("100.5", "1"), L("101", "2"), L("102", "4")])
    return b


@pytest.fixture
def swap(make_book):
    """BTC-USDT-SWAP in contracts of 0.01 BTC, mid 60,000: bid 59,990x100 (1 BTC),
    asks 60,010x20 60,040x100."""
    b = make_book("BTC-USDT-SWAP")
    b.apply_snapshot([L("59990", "100")], [L("60010", "20"), L("60040", "100")])
    return b


# -- slippage(): the arithmetic --------------------------------------------------------------
def test_slippage_buy_and_sell_by_hand():
    # buy 2 for 203 against mid 100: avg 101.5, cost 1.5 * 2 = 3, 3 / 200 = 150 bps
    assert slippage(2.0, 203.0, 100.0, "buy") == SlippageCost(101.5, 3.0, 150.0)
    # sell 4 for 397 against mid 100: avg 99.25, cost 0.75 * 4 = 3, 3 / 400 = 75 bps
    assert slippage(4.0, 397.0, 100.0, "sell") == SlippageCost(99.25, 3.0, 75.0)
    # a buy below mid is a gain: negative slippage
    assert slippage(1.0, 99.0, 100.0, "buy") == SlippageCost(99.0, -1.0, -100.0)
    # numeric sides are the same as names
    assert slippage(4.0, 397.0, 100.0, -1) == slippage(4.0, 397.0, 100.0, "sell")


def test_slippage_nothing_filled_is_nan():
    r = slippage(0.0, 0.0, 100.0, "buy")
    assert all(math.isnan(x) for x in r)
    assert all(math.isnan(x) for x in slippage(1.0, 100.0, math.nan, "sell")[1:])


def test_slippage_arrays_with_side_array():
    r = slippage(np.array([2.0, 4.0, 0.0]), np.array([203.0, 397.0, 0.0]), 100.0,
                 np.array(["buy", "sell", "buy"]))
    assert r.avg_price[:2].tolist() == [101.5, 99.25]
    assert r.slippage_quote[:2].tolist() == [3.0, 3.0]
    assert r.slippage_bps[:2].tolist() == [150.0, 75.0]
    assert np.isnan(r.slippage_bps[2])


def test_slippage_bad_inputs():
    with pytest.raises(ValueError, match="side must be 'buy' or 'sell', got 'bid'"):
        slippage(1.0, 100.0, 100.0, "bid")
    with pytest.raises(ValueError, match=r"side must be 'buy'/'sell' or \+1/-1, got 'x'"):
        slippage(np.array([1.0, 1.0]), np.array([100.0, 100.0]), 100.0, np.array(["buy", "x"]))
    with pytest.raises(ValueError, match="got 0"):
        slippage(1.0, 100.0, 100.0, 0)
    with pytest.raises(ValueError, match=r"filled_base must be >= 0.0, got -1.0"):
        slippage(-1.0, 100.0, 100.0, "buy")
    with pytest.raises(ValueError, match=r"filled_quote must be >= 0.0, got -5.0 \(at index 0\)"):
        slippage(np.array([1.0]), np.array([-5.0]), 100.0, "buy")


nonneg = st.one_of(st.floats(0.0, 1e12), st.just(math.nan), st.just(math.inf),
                   st.floats(0.0, 1e-300))
anyf = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 25).flatmap(lambda k: st.tuples(
    arrays(np.float64, k, elements=nonneg), arrays(np.float64, k, elements=nonneg),
    arrays(np.float64, k, elements=anyf), st.lists(st.sampled_from(["buy", "sell"]),
                                                   min_size=k, max_size=k))))
def test_slippage_dual_mode(v):
    fb, fq, mid, sides = v
    arr = slippage(fb, fq, mid, np.array(sides))
    one = [slippage(float(a), float(b), float(m), s)
           for a, b, m, s in zip(fb, fq, mid, sides, strict=True)]
    for i in range(3):
        assert_bitwise(arr[i], [o[i] for o in one])
    # one side for the whole batch
    arr = slippage(fb, fq, mid, "sell")
    for i in range(3):
        assert_bitwise(arr[i], [slippage(float(a), float(b), float(m), "sell")[i]
                                for a, b, m in zip(fb, fq, mid, strict=True)])


# -- walk_slippage(): spot -------------------------------------------------------------------
def test_buy_base_two_levels(spot):
    s = walk_slippage(spot, "buy", base=2)
    # 1 @ 100.5 + 1 @ 101 = 201.5; avg 100.75; vs mid 100: 0.75 * 2 = 1.5 USDT, 75 bps
    assert isinstance(s, Slippage)
    assert (s.side, s.requested, s.unit, s.ref, s.ref_price) == ("buy", 2.0, "base", "mid", 100.0)
    assert (s.filled_base, s.filled_quote, s.avg_price) == (2.0, 201.5, 100.75)
    assert (s.slippage_quote, s.slippage_bps) == (1.5, 75.0)
    assert (s.levels, s.complete, s.shortfall) == (2, True, 0.0)


def test_buy_base_three_levels(spot):
    s = walk_slippage(spot, "buy", base=5)
    # 1 @ 100.5 + 2 @ 101 + 2 @ 102 = 506.5; cost vs mid 6.5 USDT; 6.5 / 500 = 130 bps
    assert (s.filled_base, s.filled_quote, s.levels) == (5.0, 506.5, 3)
    assert s.slippage_quote == pytest.approx(6.5, rel=1e-12)
    assert s.slippage_bps == pytest.approx(130.0, rel=1e-12)


def test_sell_base(spot):
    s = walk_slippage(spot, "sell", base=4)
    # 2 @ 99.5 + 2 @ 99 = 397; avg 99.25; vs mid (100 - 99.25) * 4 = 3 USDT, 75 bps
    assert (s.filled_base, s.filled_quote, s.avg_price, s.levels) == (4.0, 397.0, 99.25, 2)
    assert (s.slippage_quote, s.slippage_bps, s.complete) == (3.0, 75.0, True)


def test_buy_and_sell_in_quote(spot):
    s = walk_slippage(spot, "buy", quote=201.5)
    assert (s.unit, s.requested, s.filled_base, s.filled_quote) == ("quote", 201.5, 2.0, 201.5)
    assert (s.slippage_quote, s.complete) == (1.5, True)
    s = walk_slippage(spot, "sell", quote=298)
    # 2 @ 99.5 = 199, then 99 USDT at 99 = 1 BTC: 3 BTC for 298, avg 99.333..
    assert (s.filled_base, s.filled_quote, s.levels) == (3.0, 298.0, 2)
    assert s.slippage_quote == pytest.approx(2.0, rel=1e-12)     # 300 - 298
    assert s.slippage_bps == pytest.approx(2.0 / 300 * 1e4, rel=1e-12)


def test_order_bigger_than_book(spot):
    s = walk_slippage(spot, "buy", base=10)
    # the whole ask side: 7 BTC for 100.5 + 202 + 408 = 710.5; 3 BTC missing
    assert (s.complete, s.shortfall, s.filled_base, s.filled_quote, s.levels) == (
        False, 3.0, 7.0, 710.5, 3)
    assert s.requested == 10.0
    assert s.slippage_quote == pytest.approx(10.5, rel=1e-12)  # 710.5 - 7 * 100, not more
    s = walk_slippage(spot, "buy", quote=1000)
    assert (s.complete, s.filled_quote) == (False, 710.5)
    assert s.shortfall == pytest.approx(289.5, rel=1e-12)


def test_ref_best_vs_mid(spot):
    m = walk_slippage(spot, "buy", base=2, ref="mid")
    b = walk_slippage(spot, "buy", base=2, ref="best")
    assert (m.ref_price, b.ref_price) == (100.0, 100.5)
    # vs best ask 100.5: (100.75 - 100.5) * 2 = 0.5 USDT; 0.5 / 201 * 1e4 bps
    assert b.slippage_quote == 0.5
    assert b.slippage_bps == pytest.approx(0.5 / 201 * 1e4, rel=1e-12)
    assert b.slippage_bps == pytest.approx(spot.walk("buy", base=2).slippage_bps, rel=1e-12)
    s = walk_slippage(spot, "sell", base=4, ref="best")
    assert s.ref_price == 99.5 and s.slippage_quote == 1.0     # (99.5 - 99.25) * 4


def test_a_market_order_within_the_best_level_costs_half_the_spread(spot):
    s = walk_slippage(spot, "buy", base=0.5)
    assert s.slippage_bps == 50.0                                # 0.5 / 100
    assert walk_slippage(spot, "buy", base=0.5, ref="best").slippage_quote == 0.0


def test_empty_side(make_book):
    b = make_book("X")
    b.apply_snapshot([L("99", "1")], [])
    s = walk_slippage(b, "buy", base=1)
    assert (s.complete, s.shortfall, s.filled_base, s.levels) == (False, 1.0, 0.0, 0)
    assert math.isnan(s.avg_price) and math.isnan(s.slippage_quote)
    assert math.isnan(s.ref_price)                               # no mid without asks


# -- walk_slippage(): swap in contracts ----------------------------------------------------
def test_swap_base_in_btc(swap):
    s = walk_slippage(swap, "buy", base=0.5, ct_val=0.01)
    # 0.5 BTC = 50 contracts: 20 @ 60,010 + 30 @ 60,040 -> (1,200,200 + 1,801,200) * 0.01
    assert (s.filled_base, s.filled_quote, s.avg_price, s.levels) == (0.5, 30014.0, 60028.0, 2)
    assert s.ref_price == 60000.0
    assert s.slippage_quote == 14.0                               # 28 * 0.5
    assert s.slippage_bps == pytest.approx(14.0 / 30000 * 1e4, rel=1e-12)


def test_swap_contract_value_is_exact(swap):
    s = walk_slippage(swap, "buy", base=0.3, ct_val=0.01)    # 30 contracts, not 29.999..
    assert (s.filled_base, s.complete, s.levels) == (0.3, True, 2)
    # 20 @ 60,010 + 10 @ 60,040 = 1,800,600 USDT-contracts -> 18,006 USDT, avg 60,020
    assert (s.filled_quote, s.avg_price) == (18006.0, 60020.0)


def test_swap_quote(swap):
    s = walk_slippage(swap, "buy", quote=30014, ct_val=0.01)
    assert (s.unit, s.filled_base, s.filled_quote, s.complete) == ("quote", 0.5, 30014.0, True)


def test_swap_too_thin(swap):
    s = walk_slippage(swap, "sell", base=2, ct_val=0.01)
    # bids hold 100 contracts = 1 BTC; 1 BTC short
    assert (s.complete, s.shortfall, s.filled_base, s.filled_quote) == (False, 1.0, 1.0, 59990.0)
    assert s.slippage_quote == 10.0                               # (60,000 - 59,990) * 1


def test_walk_bad_inputs(spot):
    with pytest.raises(ValueError, match="side must be the taker side"):
        walk_slippage(spot, "bid", base=1)
    with pytest.raises(ValueError, match="ref must be 'mid' or 'best', got 'last'"):
        walk_slippage(spot, "buy", base=1, ref="last")
    with pytest.raises(ValueError, match="exactly one of base= or quote="):
        walk_slippage(spot, "buy")
    with pytest.raises(ValueError, match="exactly one of base= or quote="):
        walk_slippage(spot, "buy", base=1, quote=100)
    with pytest.raises(ValueError, match="base must be a positive finite number, got -1"):
        walk_slippage(spot, "buy", base=-1)
    with pytest.raises(ValueError, match="quote must be a positive"):
        walk_slippage(spot, "buy", quote=math.inf)
    with pytest.raises(ValueError, match="ct_val must be a positive finite number, got 0"):
        walk_slippage(spot, "buy", base=1, ct_val=0)
    with pytest.raises(ValueError, match="base must be a positive"):
        walk_slippage(spot, "buy", base="1")  # type: ignore[arg-type]
