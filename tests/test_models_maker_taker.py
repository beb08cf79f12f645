"""simlab.models.maker_taker: the model protocol, the queue-share default (hand-computed
values, monotonicity, dual mode, bad input), the constant model and maker_probability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_bitwise

from simlab.models.fees import FeeRates, expected_fee
from simlab.models.maker_taker import (
    ConstantModel,
    MakerTakerModel,
    QueueShareModel,
    maker_probability,
)

Q = QueueShareModel()


def p(queue: float, opp: float, q: float) -> float:
    return Q.predict(own_best_size=queue, opp_best_size=opp, order_size=q)


# -- QueueShareModel -------------------------------------------------------------------------
def test_queue_share_by_hand():
    assert p(3.0, 5.0, 2.0) == 0.5          # 5 / (5 + 3 + 2)
    assert p(0.0, 1.0, 1.0) == 0.5          # empty queue, equal sizes
    assert p(8.0, 1.0, 1.0) == 0.1          # 1 / 10
    assert p(1.0, 3.0, 1.0) == 0.6          # 3 / 5
    assert p(4.0, 0.0, 1.0) == 0.0          # nothing on the other side
    assert p(0.0, 6.0, 2.0) == 0.75         # 6 / 8


def test_queue_share_type_and_ints():
    r = Q.predict(own_best_size=3, opp_best_size=5, order_size=2)
    assert type(r) is float and r == 0.5


def test_queue_share_nan():
    assert math.isnan(p(math.nan, 1.0, 1.0))
    assert math.isnan(p(1.0, math.nan, 1.0))
    assert math.isnan(p(1.0, 1.0, math.nan))
    out = Q.predict(own_best_size=np.array([0.0, math.nan]), opp_best_size=1.0, order_size=1.0)
    assert out[0] == 0.5 and math.isnan(out[1])


def test_queue_share_bad_inputs():
    with pytest.raises(ValueError, match=r"own_best_size must be >= 0.0, got -1.0"):
        p(-1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"opp_best_size must be >= 0.0, got -0.5"):
        p(1.0, -0.5, 1.0)
    with pytest.raises(ValueError, match=r"order_size must be > 0.0, got 0.0"):
        p(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"order_size must be > 0.0, got -2.0"):
        p(1.0, 1.0, -2.0)
    with pytest.raises(ValueError, match=r"own_best_size must be >= 0.0, got -3.0 \(at index 2\)"):
        Q.predict(own_best_size=np.array([1.0, 2.0, -3.0]), opp_best_size=1.0, order_size=1.0)
    with pytest.raises(TypeError, match="own_best_size must be a number"):
        p("1", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Q.predict(own_best_size=1.0, opp_best_size=1.0)  # type: ignore[call-arg]


size = st.floats(0.0, 1e9)
pos = st.floats(1e-9, 1e9)


@settings(max_examples=300, deadline=None)
@given(size, size, pos, st.floats(1e-6, 1e9))
def test_monotonicity(queue, opp, q, more):
    base = p(queue, opp, q)
    assert 0.0 <= base <= 1.0
    # more queue ahead, or a bigger order of ours: never more likely to fill
    assert p(queue + more, opp, q) <= base
    assert p(queue, opp, q + more) <= base
    # more size on the other side: never less likely
    assert p(queue, opp + more, q) >= base


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 1e7), st.floats(1e-6, 1e7), st.floats(1e-6, 1e7), st.floats(1.0, 1e3))
def test_strict_monotonicity(queue, opp, q, factor):
    # a change at least as large as everything else must show, whatever the rounding
    bigger = (queue + q + opp) * factor + 1.0
    assert p(queue + bigger, opp, q) < p(queue, opp, q)
    assert p(queue, opp + bigger, q) > p(queue, opp, q)


nonneg = st.one_of(st.floats(0.0, 1e300), st.just(math.nan), st.just(math.inf),
                   st.floats(0.0, 1e-300))
positive = st.one_of(st.floats(5e-324, 1e300), st.just(math.nan), st.just(math.inf))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 25).flatmap(lambda k: st.tuples(
    arrays(np.float64, k, elements=nonneg), arrays(np.float64, k, elements=nonneg),
    arrays(np.float64, k, elements=positive))))
def test_queue_share_dual_mode(v):
    queue, opp, q = v
    arr = Q.predict(own_best_size=queue, opp_best_size=opp, order_size=q)
    assert_bitwise(arr, [p(float(a), float(b), float(c)) for a, b, c in zip(queue, opp, q,
                                                                             strict=True)])


# -- ConstantModel and the protocol -----------------------------------------------------------
def test_constant_model():
    m = ConstantModel(0.3)
    assert m.predict() == 0.3 and type(m.predict()) is float
    assert m.predict(order_size=np.array([1.0, 2.0])).tolist() == [0.3, 0.3]
    assert ConstantModel(1).p == 1.0
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        ConstantModel(1.5)
    with pytest.raises(ValueError, match="got nan"):
        ConstantModel(math.nan)
    with pytest.raises(TypeError, match="p must be a number"):
        ConstantModel("0.5")  # type: ignore[arg-type]


def test_models_satisfy_the_protocol():
    for m in (QueueShareModel(), ConstantModel(0.2)):
        assert isinstance(m, MakerTakerModel)
        assert isinstance(m.name, str) and isinstance(m.features, tuple)
    assert QueueShareModel.features == ("own_best_size", "opp_best_size", "order_size")
    assert ConstantModel(0.2).features == ()


# -- maker_probability ----------------------------------------------------------------------
def test_market_orders_are_all_taker():
    assert maker_probability("market", Q) == 0.0
    assert maker_probability("market", Q, own_best_size=3.0) == 0.0
    z = maker_probability("market", Q, own_best_size=np.array([1.0, 2.0]), opp_best_size=1.0)
    assert isinstance(z, np.ndarray) and z.tolist() == [0.0, 0.0]


def test_limit_orders_use_the_model():
    feats = {"own_best_size": 3.0, "opp_best_size": 5.0, "order_size": 2.0, "spread_ticks": 1}
    assert maker_probability("limit", Q, **feats) == 0.5
    assert maker_probability("limit", ConstantModel(0.25), **feats) == 0.25
    with pytest.raises(ValueError, match=r"needs features .*missing \['order_size'\]"):
        maker_probability("limit", Q, own_best_size=3.0, opp_best_size=5.0)
    with pytest.raises(ValueError, match=r"order_type must be one of \('market', 'limit'\)"):
        maker_probability("ioc", Q)


def test_expected_fee_of_a_limit_order():
    # p = 0.5 at Lv1 swap rates on 18,000 USDT: 18,000 * (0.5 * 0.0002 + 0.5 * 0.0005) = 6.3
    pm = maker_probability("limit", Q, own_best_size=3.0, opp_best_size=5.0, order_size=2.0)
    assert expected_fee(18_000.0, pm, FeeRates(0.0002, 0.0005)) == pytest.approx(6.3, rel=1e-15)
    pm = maker_probability("market", Q)
    assert expected_fee(18_000.0, pm, FeeRates(0.0002, 0.0005)) == 9.0
