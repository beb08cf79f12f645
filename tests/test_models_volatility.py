"""Volatility estimators: recover a known sigma from seeded geometric Brownian motion, unit
scaling by hand, resampling by hand, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simlab.models.volatility import (
    PER_SECONDS,
    absolute_sigma,
    ewma_vol,
    parkinson_vol,
    realized_vol,
    returns,
)

NS = 1_000_000_000
SIGMA = 2e-4  # relative vol per second^1/2 (about 5.9 % a day)


@pytest.fixture(scope="module")
def gbm():
    """Six hours of mids every 0.1 s, log-price a Brownian motion with SIGMA per second^1/2
    (and a small drift, which the estimators must not care about)."""
    rng = np.random.default_rng(20240611)
    dt, n = 0.1, 6 * 3600 * 10
    steps = rng.normal(1e-7 * dt, SIGMA * math.sqrt(dt), n)
    mid = 30_000.0 * np.exp(np.cumsum(np.r_[0.0, steps]))
    t = 1_700_000_000 * NS + np.arange(n + 1, dtype=np.int64) * (NS // 10)
    return mid, t


def test_realized_vol_recovers_sigma(gbm):
    mid, t = gbm
    # 21,600 one-second returns: the standard error of a std is sigma/sqrt(2n) = 0.5 %
    assert realized_vol(mid, t, every=1.0) == pytest.approx(SIGMA, rel=0.02)
    # 10-second returns, 2,160 of them: 1.5 % standard error
    assert realized_vol(mid, t, every=10.0) == pytest.approx(SIGMA, rel=0.05)
    # tick returns are 0.1 s apart: realized_vol needs the grid, so per-second std is the same
    assert realized_vol(mid, t, every=0.1) == pytest.approx(SIGMA, rel=0.02)


def test_ewma_recovers_sigma(gbm):
    mid, t = gbm
    s = ewma_vol(mid, t, every=1.0)
    assert isinstance(s, pd.Series) and len(s) == 6 * 3600
    assert s.index[0] == pd.Timestamp(t[0] + NS, unit="ns", tz="UTC")
    # the mean EWMA variance is unbiased for sigma^2; a single value is noisy (about 12 %
    # relative with lam = 0.94, an effective window of ~30 returns)
    assert math.sqrt(np.mean(s.to_numpy() ** 2)) == pytest.approx(SIGMA, rel=0.03)
    assert np.mean(np.abs(s.to_numpy() / SIGMA - 1) < 0.5) > 0.95


def test_parkinson_recovers_sigma(gbm):
    mid, t = gbm
    # 360 one-minute bars of 600 samples: standard error ~2 %, discrete-sampling bias ~ -2 %
    v = parkinson_vol(mid, t, bar="1min")
    assert v == pytest.approx(SIGMA, rel=0.06)
    assert parkinson_vol(mid, t, bar=60.0) == v
    assert parkinson_vol(mid, t, bar="5min", per="day") == pytest.approx(
        SIGMA * math.sqrt(86_400), rel=0.08)


def test_unit_scaling_by_hand(gbm):
    mid, t = gbm
    per_s = realized_vol(mid, t, every=1.0, per="second")
    assert realized_vol(mid, t, every=1.0, per="day") == pytest.approx(per_s * math.sqrt(86_400),
                                                                      rel=1e-12)
    assert realized_vol(mid, t, every=1.0, per="minute") == pytest.approx(per_s * math.sqrt(60),
                                                                         rel=1e-12)
    # a crypto year is 365 days of 86,400 s
    assert PER_SECONDS["year"] == 31_536_000
    assert realized_vol(mid, t, every=1.0, per="year") == pytest.approx(
        per_s * math.sqrt(31_536_000), rel=1e-12)
    e = ewma_vol(mid, t, per="hour")
    np.testing.assert_allclose(e, ewma_vol(mid, t) * 60, rtol=1e-12)


def test_realized_vol_small_example_by_hand():
    # mids every 2 s; returns +a, -a, +a over 2 s each: sample std = a * sqrt(4/3 / ... )
    a = 1e-3
    mid = 50 * np.exp(np.array([0, a, 0, a]))
    t = np.array([0, 2, 4, 6], dtype=np.int64) * NS
    r = np.array([a, -a, a])
    std = math.sqrt(((r - r.mean()) ** 2).sum() / 2)  # = a * sqrt(4/3)
    assert std == pytest.approx(a * math.sqrt(4 / 3), rel=1e-12)
    assert realized_vol(mid, t, every=2.0) == pytest.approx(std / math.sqrt(2), rel=1e-9)
    assert realized_vol(mid, t, every=2.0, per="day") == pytest.approx(
        std * math.sqrt(86_400 / 2), rel=1e-9)


def test_returns_resampling_takes_the_last_mid_at_or_before():
    t = np.array([0, 300, 1000, 1000, 2999, 3000, 3500], dtype=np.int64) * 1_000_000  # ms
    mid = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0])
    # grid 0, 1, 2, 3 s -> 10 (t=0), 13 (last at 1 s), 13 (nothing new by 2 s), 15 (at 3 s)
    np.testing.assert_allclose(returns(mid, t, every=1.0),
                               np.log([13 / 10, 13 / 13, 15 / 13]), rtol=1e-15)
    np.testing.assert_allclose(returns(mid, t), np.diff(np.log(mid)), rtol=1e-15)
    # 0.5 s grid over 3.5 s: 8 points, 7 returns
    assert len(returns(mid, t, every=0.5)) == 7


def test_ewma_recursion_by_hand():
    mid = np.array([100.0, 102.0, 101.0, 101.5])
    t = np.arange(4, dtype=np.int64) * NS
    r = np.diff(np.log(mid))
    lam = 0.8
    v1 = r[0] ** 2
    v2 = lam * v1 + (1 - lam) * r[1] ** 2
    v3 = lam * v2 + (1 - lam) * r[2] ** 2
    np.testing.assert_allclose(ewma_vol(mid, t, lam=lam), np.sqrt([v1, v2, v3]), rtol=1e-14)
    # 2-second grid: one return of 2 s, scaled to per second
    s = ewma_vol(mid, t, every=2.0, lam=lam)
    assert s.iloc[0] == pytest.approx(abs(math.log(101.0 / 100.0)) / math.sqrt(2), rel=1e-14)


def test_parkinson_by_hand():
    # one 10 s bar: the mid in force at the open is 100 (set before), then 103 and 99 inside
    t = np.array([-5, 2, 7, 10], dtype=np.int64) * NS
    mid = np.array([100.0, 103.0, 99.0, 99.5])
    # bars start at the first timestamp (-5 s): one complete bar [-5, 5) holds 100 and 103
    want = math.log(103 / 100) / math.sqrt(4 * math.log(2)) / math.sqrt(10)
    assert parkinson_vol(mid, t, bar="10s") == pytest.approx(want, rel=1e-14)
    # a bar with no mids inside has the open mid alone: zero range
    t2 = np.array([0, 1, 25], dtype=np.int64) * NS
    mid2 = np.array([100.0, 110.0, 120.0])
    want2 = math.sqrt((math.log(1.1) ** 2 + 0.0) / 2 / (4 * math.log(2)) / 10)
    assert parkinson_vol(mid2, t2, bar=10) == pytest.approx(want2, rel=1e-14)


def test_absolute_sigma_teaching_example():
    # 12 % a year over 250 trading days at $50: 0.12/sqrt(250)*50 = 0.379473 $/share/day^1/2
    assert absolute_sigma(0.12 / math.sqrt(250), 50.0) == pytest.approx(0.3794733192, rel=1e-9)
    np.testing.assert_allclose(absolute_sigma(0.01, np.array([100.0, 200.0])), [1.0, 2.0])
    with pytest.raises(ValueError, match="price must be finite and > 0"):
        absolute_sigma(0.01, 0.0)
    with pytest.raises(ValueError, match="rel_vol must be finite and >= 0"):
        absolute_sigma(-0.01, 10.0)


def test_equal_timestamps_are_allowed():
    t = np.array([0, 0, 1, 2], dtype=np.int64) * NS
    mid = np.array([100.0, 100.5, 101.0, 100.0])
    assert len(returns(mid, t)) == 3
    assert len(returns(mid, t, every=1.0)) == 2  # grid 0 s -> 100.5 (the last at t=0)
    assert returns(mid, t, every=1.0)[0] == pytest.approx(math.log(101.0 / 100.5))


@pytest.mark.parametrize(("mid", "t", "kw", "err", "match"), [
    ([100.0], [0], {}, ValueError, "too few points"),
    ([100.0, 101.0, 102.0], [0, 2 * NS, NS], {}, ValueError, "t_ns must be sorted.*t_ns\\[2\\]"),
    ([100.0, 0.0, 102.0], [0, NS, 2 * NS], {}, ValueError, r"finite and > 0.*mid\[1\]"),
    ([100.0, -1.0, 102.0], [0, NS, 2 * NS], {}, ValueError, "mid must be finite and > 0"),
    ([100.0, math.nan, 102.0], [0, NS, 2 * NS], {}, ValueError, "mid must be finite"),
    ([100.0, 101.0], [0.0, 1e9], {}, TypeError, "t_ns must be integer nanoseconds"),
    ([100.0, 101.0], [0, NS, 2 * NS], {}, ValueError, "one length"),
    ([100.0, 101.0], [0, NS // 2], {"every": 1.0}, ValueError, "shorter than one step"),
    ([100.0, 101.0], [0, NS], {"every": 0.0}, ValueError, "every must be > 0"),
    ([100.0, 101.0], [0, NS], {"every": "1s"}, TypeError, "every must be a number of seconds"),
])
def test_returns_bad_input(mid, t, kw, err, match):
    with pytest.raises(err, match=match):
        returns(np.array(mid), np.array(t), **kw)


def test_estimator_errors():
    t = np.arange(3, dtype=np.int64) * NS
    mid = np.array([100.0, 101.0, 100.0])
    with pytest.raises(ValueError, match="per must be one of"):
        realized_vol(mid, t, per="week")
    with pytest.raises(ValueError, match="too few points: need at least 2 returns"):
        realized_vol(mid[:2], t[:2])
    with pytest.raises(ValueError, match="lam must be in"):
        ewma_vol(mid, t, lam=1.0)
    with pytest.raises(ValueError, match="less than one bar"):
        parkinson_vol(mid, t, bar="1min")
    with pytest.raises(ValueError, match="bar must be a duration"):
        parkinson_vol(mid, t, bar="soon")
