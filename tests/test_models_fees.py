"""simlab.models.fees: hand-computed fees for spot and a linear swap, FeeRates validation,
and dual-mode arithmetic (floats and arrays give bitwise identical numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_bitwise

from simlab.models import _dual
from simlab.models.fees import FeeRates, expected_fee, fee_amount, fee_bps, notional
from simlab.okx.fees import fee_rates, parse_trade_fee

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
fvec = arrays(np.float64, st.integers(1, 30), elements=any_float)


def vecs(n: int, elements=any_float):
    return st.integers(1, 30).flatmap(
        lambda k: st.tuples(*[arrays(np.float64, k, elements=elements) for _ in range(n)]))


# -- hand-computed ---------------------------------------------------------------------------
def test_spot_buy_vip1_taker():
    # BTC-USDT: buy 0.5 BTC at 50,000 as taker, VIP1 taker 0.050 % -> 25,000 * 0.0005 = 12.5
    rates = FeeRates.of(fee_rates("VIP1"))
    n = notional(50_000.0, 0.5)
    assert n == 25_000.0
    assert fee_amount(n, rates.taker) == 12.5
    assert fee_amount(-n, rates.taker) == 12.5  # a sell pays the same


def test_swap_contracts_times_ctval():
    # BTC-USDT-SWAP: 30 contracts x ctVal 0.01 BTC at 60,000 -> 0.3 BTC -> 18,000 USDT
    n = notional(60_000.0, 30, ct_val=0.01)
    assert n == 18_000.0
    rates = FeeRates.of(fee_rates("Lv1", "SWAP"))
    assert fee_amount(n, rates.taker) == 9.0                          # 0.050 %
    assert fee_amount(n, rates.maker) == pytest.approx(3.6, rel=1e-15)  # 0.020 %


def test_vip6_maker_rebate_is_negative():
    rates = FeeRates.of(fee_rates("VIP6"))
    fee = fee_amount(25_000.0, rates.maker)
    assert fee < 0
    assert fee == pytest.approx(-0.5, rel=1e-15)                       # -0.002 % of 25,000


def test_expected_fee_mixes_maker_and_taker():
    rates = FeeRates(maker=0.0002, taker=0.0005)
    assert expected_fee(18_000.0, 0.0, rates) == 9.0
    assert expected_fee(18_000.0, 1.0, rates) == pytest.approx(3.6, rel=1e-15)
    # half and half: 18,000 * 0.035 % = 6.3
    assert expected_fee(18_000.0, 0.5, rates) == pytest.approx(6.3, rel=1e-15)
    # a quarter maker: 18,000 * (0.25 * 0.0002 + 0.75 * 0.0005) = 7.65
    assert expected_fee(18_000.0, 0.25, rates) == pytest.approx(7.65, rel=1e-15)
    # with a rebate the expected fee can be negative: p = 1 at VIP7
    assert expected_fee(10_000.0, 1.0, FeeRates.of(fee_rates("VIP7"))) == pytest.approx(-0.5)


def test_expected_fee_p_range():
    rates = FeeRates(0.0002, 0.0005)
    with pytest.raises(ValueError, match=r"p_maker must be >= 0.0 and <= 1.0, got 1.5"):
        expected_fee(100.0, 1.5, rates)
    with pytest.raises(ValueError, match=r"got -0.1 \(at index 1\)"):
        expected_fee(np.array([100.0, 100.0]), np.array([0.5, -0.1]), rates)
    assert math.isnan(expected_fee(100.0, math.nan, rates))


def test_fee_bps():
    assert fee_bps(0.0005) == 5.0
    assert fee_bps(0.001) == 10.0
    assert FeeRates(0.0008, 0.001).maker_bps == 8.0
    assert FeeRates(-0.00005, 0.0002).maker_bps == pytest.approx(-0.5, rel=1e-15)


def test_int_and_decimal_inputs_give_floats():
    from decimal import Decimal

    assert type(notional(50_000, 2)) is float and notional(50_000, 2) == 100_000.0
    assert fee_amount(Decimal("25000"), Decimal("0.0005")) == 12.5
    assert type(fee_bps(np.float64(0.0005))) is float


def test_array_in_array_out():
    out = fee_amount([25_000.0, 18_000.0], 0.0005)
    assert isinstance(out, np.ndarray) and out.tolist() == [12.5, 9.0]
    assert notional(np.array([50_000.0]), np.array([0.5])).tolist() == [25_000.0]


def test_bad_numbers():
    with pytest.raises(TypeError, match="price must be a number"):
        notional("50000", 1.0)
    with pytest.raises(TypeError, match="rate must be"):
        fee_amount(1.0, None)


# -- FeeRates --------------------------------------------------------------------------------
def test_fee_rates_validation():
    assert FeeRates(0, 0.0005) == FeeRates(0.0, 0.0005)
    FeeRates(-0.00005, 0.0002)  # rebate ok
    with pytest.raises(ValueError, match=r"taker rate must be >= 0, got -0\.0001"):
        FeeRates(0.0002, -0.0001)
    with pytest.raises(ValueError, match=r"maker rate .*got 0.05"):
        FeeRates(0.05, 0.0005)   # 0.05 is 5 %, a percent passed as a fraction
    with pytest.raises(ValueError, match=r"taker rate .*got 0.01"):
        FeeRates(0.0, 0.01)
    with pytest.raises(ValueError, match=r"maker rate .*got -0.02"):
        FeeRates(-0.02, 0.0005)
    with pytest.raises(ValueError, match="maker rate must be finite, got nan"):
        FeeRates(math.nan, 0.0005)
    with pytest.raises(ValueError, match="taker rate must be finite"):
        FeeRates(0.0, math.inf)
    with pytest.raises(TypeError, match="maker rate must be a number"):
        FeeRates("0.0002", 0.0005)  # type: ignore[arg-type]
    r = FeeRates(0.0002, 0.0005)
    with pytest.raises(AttributeError):
        r.maker = 0.0  # type: ignore[misc]


def test_fee_rates_of():
    assert FeeRates.of(fee_rates("Lv1")) == FeeRates(0.0008, 0.001)
    assert FeeRates.of([0.0002, 0.0005]) == FeeRates(0.0002, 0.0005)
    r = FeeRates(0.0002, 0.0005)
    assert FeeRates.of(r) is r
    body = ('{"code":"0","msg":"","data":[{"instType":"SWAP","level":"Lv1","maker":"",'
            '"taker":"","makerU":"-0.0002","takerU":"-0.0005","ts":"1"}]}')
    assert FeeRates.of(parse_trade_fee(body)["SWAP"].rates) == FeeRates(0.0002, 0.0005)
    with pytest.raises(TypeError, match="maker"):
        FeeRates.of(0.0005)
    with pytest.raises(ValueError):
        FeeRates.of((0.0002, -1.0))


# -- dual mode ----------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(vecs(3))
def test_notional_dual(v):
    p, s, c = v
    assert_bitwise(notional(p, s, c), [notional(float(a), float(b), float(d))
                                       for a, b, d in zip(p, s, c, strict=True)])
    assert_bitwise(notional(p, s), [notional(float(a), float(b)) for a, b in zip(p, s,
                                                                                  strict=True)])


@settings(max_examples=200, deadline=None)
@given(vecs(2))
def test_fee_amount_and_bps_dual(v):
    n, r = v
    assert_bitwise(fee_amount(n, r), [fee_amount(float(a), float(b))
                                      for a, b in zip(n, r, strict=True)])
    assert_bitwise(fee_bps(r), [fee_bps(float(b)) for b in r])


p_float = st.one_of(st.floats(0.0, 1.0), st.just(math.nan))


@settings(max_examples=200, deadline=None)
@given(vecs(1), vecs(1, p_float),
       st.builds(FeeRates, st.floats(-0.0099, 0.0099), st.floats(0.0, 0.0099)))
def test_expected_fee_dual(nv, pv, rates):
    (n,), (p,) = nv, pv
    k = min(len(n), len(p))
    n, p = n[:k], p[:k]
    assert_bitwise(expected_fee(n, p, rates), [expected_fee(float(a), float(b), rates)
                                               for a, b in zip(n, p, strict=True)])
    # scalar p against an array of notionals, too
    assert_bitwise(expected_fee(n, 0.3, rates), [expected_fee(float(a), 0.3, rates) for a in n])


def test_dual_helpers():
    assert _dual.safe_div(1.0, 0.0) != _dual.safe_div(1.0, 0.0)  # NaN
    with np.errstate(all="raise"):  # array mode neither warns nor raises
        out = _dual.safe_div(np.array([1.0, 0.0, -1.0]), np.array([0.0, 0.0, -0.0]))
    assert np.isnan(out).all()
    assert _dual.where(True, 1.0, 2.0) == 1.0 and type(_dual.where(False, 1.0, 2.0)) is float
    assert _dual.coerce(x=np.array(2.5)) == (2.5,)
    with pytest.raises(TypeError, match="x must be a real number"):
        _dual.coerce(x=1j)
