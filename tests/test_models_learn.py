"""Learned models (issue 6): metrics against hand-computed values, the logistic maker/taker
model and the slippage (quantile) regression on synthetic data with known parameters,
dual mode bit for bit, the time split, and JSON persistence (golden bytes, round trips,
every kind of bad file)."""

from __future__ import annotations

import json
import math
import re
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import assert_bitwise

from simlab._version import __version__
from simlab.models import (
    LogisticFillModel,
    MakerTakerModel,
    ModelFileError,
    QueueShareModel,
    SlippageRegression,
    UndefinedMetricWarning,
    brier_score,
    classification_metrics,
    fit_time_split,
    load_model,
    log_loss,
    maker_probability,
    model_from_dict,
    model_to_dict,
    pinball_loss,
    quantile_coverage,
    quantile_name,
    reliability_curve,
    roc_auc,
    save_model,
)

EPS = np.finfo(np.float64).eps


# -- metrics: hand-computed values ------------------------------------------------------------
def test_log_loss_by_hand():
    assert log_loss([0, 1, 1, 0], [0.5] * 4) == pytest.approx(math.log(2), abs=1e-15)
    # -(ln 0.8 + ln 0.6) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2,
                                                         rel=1e-15)
    # a confident miss is clipped at eps, not infinite: -ln(eps) = 52 ln 2
    assert log_loss([1], [0.0]) == pytest.approx(52 * math.log(2), rel=1e-12)
    assert log_loss([0, 1], [0.0, 1.0]) == pytest.approx(EPS, rel=1e-6)  # ~ -ln(1 - eps)


def test_brier_by_hand():
    assert brier_score([1, 0, 1], [0.5, 0.2, 1.0]) == pytest.approx((0.25 + 0.04) / 3, rel=1e-15)
    assert brier_score([True, False], [1.0, 0.0]) == 0.0
    assert brier_score([1, 0], [0.0, 1.0]) == 1.0


def test_constant_base_rate_scores():
    y = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]                          # rate r = 0.3
    assert brier_score(y, [0.3] * 10) == pytest.approx(0.3 * 0.7, rel=1e-14)  # r(1 - r)
    entropy = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))       # log-loss = entropy of r
    assert log_loss(y, [0.3] * 10) == pytest.approx(entropy, rel=1e-14)


def test_roc_auc_by_hand():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9]) == 1.0   # perfect ranking
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.9]) == 0.0   # exactly reversed
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75  # 3 of 4 pairs in order
    assert roc_auc([0, 0, 1], [0.2, 0.5, 0.5]) == 0.75           # a tie counts half
    assert roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_roc_auc_one_class_is_nan_with_reason():
    with pytest.warns(UndefinedMetricWarning, match=r"only class 1 \(3 rows\)"):
        assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.warns(UndefinedMetricWarning, match="only class 0"):
        assert math.isnan(roc_auc([0, 0], [0.2, 0.5]))


def test_reliability_curve_by_hand():
    y = [0, 1, 0, 1, 1, 1, 0]
    p = [0.0, 0.1, 0.5, 0.55, 0.9, 1.0, 0.2]
    r = reliability_curve(y, p, bins=4)           # edges 0, .25, .5, .75, 1
    assert list(r.columns) == ["lo", "hi", "n", "mean_pred", "frac_pos"]
    # bin [0, .25): 0.0, 0.1, 0.2; [.25, .5): empty, omitted; [.5, .75): 0.5 (an edge goes
    # up), 0.55; [.75, 1]: 0.9 and 1.0 (1.0 belongs to the last bin)
    assert r["lo"].tolist() == [0.0, 0.5, 0.75]
    assert r["hi"].tolist() == [0.25, 0.75, 1.0]
    assert r["n"].tolist() == [3, 2, 2]
    assert r["mean_pred"].tolist() == pytest.approx([0.1, 0.525, 0.95], rel=1e-14)
    assert r["frac_pos"].tolist() == pytest.approx([1 / 3, 0.5, 1.0], rel=1e-14)
    assert reliability_curve([1], [0.3], bins=1)[["lo", "hi", "n"]].values.tolist() == [
        [0.0, 1.0, 1]]


def test_classification_metrics_by_hand():
    y = [0, 0, 0, 1]                              # test rate 0.25
    p = [0.1, 0.2, 0.3, 0.6]
    m = classification_metrics(y, p, base_rate=0.5)   # a train rate of 0.5
    assert (m["n"], m["n_pos"], m["rate"], m["base_rate"]) == (4, 1, 0.25, 0.5)
    brier = (0.01 + 0.04 + 0.09 + 0.16) / 4
    assert m["brier"] == pytest.approx(brier, rel=1e-14)
    assert m["base_brier"] == 0.25                # (0.5 - y)^2 = 0.25 for every row
    assert m["brier_skill"] == pytest.approx(1 - brier / 0.25, rel=1e-14)
    ll = -(math.log(0.9) + math.log(0.8) + math.log(0.7) + math.log(0.6)) / 4
    assert m["log_loss"] == pytest.approx(ll, rel=1e-14)
    assert m["base_log_loss"] == pytest.approx(math.log(2), rel=1e-14)
    assert m["log_loss_skill"] == pytest.approx(1 - ll / math.log(2), rel=1e-14)
    assert m["auc"] == 1.0 and m["base_auc"] == 0.5


def test_classification_metrics_one_class():
    with pytest.warns(UndefinedMetricWarning) as rec:
        m = classification_metrics([0, 0], [0.1, 0.2], base_rate=0.5)
    assert len(rec) == 1                          # one reason, not one per AUC
    assert math.isnan(m["auc"]) and math.isnan(m["base_auc"])
    assert m["brier"] == pytest.approx(0.025, rel=1e-14)


def test_pinball_and_coverage_by_hand():
    assert pinball_loss([1.0, 3.0], [2.0, 2.0], q=0.9) == pytest.approx(0.5, rel=1e-15)
    assert pinball_loss([1.0, 3.0], [2.0, 2.0], q=0.5) == 0.5     # half the absolute error
    assert pinball_loss([0.0, 10.0], [1.0, 1.0], q=0.1) == pytest.approx((0.9 + 0.9) / 2)
    assert pinball_loss([5.0], [5.0], q=0.3) == 0.0
    assert quantile_coverage([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 5.0]) == 0.75


def test_pinball_minimised_by_empirical_quantile():
    y = np.arange(1.0, 101.0)                     # 1..100: the 0.9 quantile is 90
    losses = {c: pinball_loss(y, np.full(100, c), q=0.9) for c in (80.0, 89.0, 90.0, 91.0, 95.0)}
    assert min(losses, key=losses.get) == 90.0


@pytest.mark.parametrize("call, match", [
    (lambda: log_loss([0, 1], [0.5]), "y and p must have the same length, got 2 and 1"),
    (lambda: brier_score([0, 2], [0.5, 0.5]), "y must hold labels 0 or 1, got 2.0 at index 1"),
    (lambda: brier_score([0.5], [0.5]), "y must hold labels 0 or 1, got 0.5"),
    (lambda: roc_auc([0, 1], [0.5, 1.2]), r"p must be probabilities in \[0, 1\], got 1.2"),
    (lambda: log_loss([0, 1], [-0.1, 0.5]), r"p must be probabilities in \[0, 1\], got -0.1"),
    (lambda: log_loss([0, math.nan], [0.5, 0.5]), "y must not hold NaN, got NaN at index 1"),
    (lambda: brier_score([0, 1], [0.5, math.nan]), "p must not hold NaN"),
    (lambda: brier_score([], []), "y must not be empty"),
    (lambda: brier_score([[0, 1]], [[0.5, 0.5]]), r"y must be 1-D, got shape \(1, 2\)"),
    (lambda: reliability_curve([0], [0.5], bins=0), "bins must be an integer >= 1, got 0"),
    (lambda: classification_metrics([0, 1], [0.5, 0.5], base_rate=1.5),
     r"base_rate must be in \[0, 1\], got 1.5"),
    (lambda: classification_metrics([0, 1], [0.5, 0.5], base_rate=math.nan), "base_rate"),
    (lambda: pinball_loss([1.0], [1.0], q=1.0), r"q must be in \(0, 1\), got 1.0"),
    (lambda: pinball_loss([1.0, 2.0], [1.0], q=0.5), "y and pred must have the same length"),
    (lambda: quantile_coverage([1.0], [math.nan]), "pred must not hold NaN"),
])
def test_metric_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_metric_type_errors():
    with pytest.raises(TypeError, match="y must be a 1-D array of numbers"):
        brier_score("01", [0.5, 0.5])
    with pytest.raises(TypeError, match="p must be a 1-D array of numbers, got dtype"):
        brier_score([0, 1], ["a", "b"])
    with pytest.raises(TypeError, match="base_rate must be a number"):
        classification_metrics([0, 1], [0.5, 0.5], base_rate="0.5")


# -- logistic model ---------------------------------------------------------------------------
TRUE_B = {"queue": 0.8, "spread": -0.3, "noise": 0.0}
TRUE_B0 = -0.5


def synthetic_fills(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features on different scales, y ~ Bernoulli(sigmoid(b0 + X b)), and the true p."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"queue": rng.normal(2.0, 3.0, n), "spread": rng.uniform(0.0, 10.0, n),
                      "noise": rng.normal(0.0, 1.0, n)})
    z = TRUE_B0 + sum(b * X[k].to_numpy() for k, b in TRUE_B.items())
    p = 1.0 / (1.0 + np.exp(-z))
    return X, (rng.uniform(size=n) < p).astype(int), p


@pytest.fixture(scope="module")
def fitted():
    X, y, p = synthetic_fills(20_000, seed=7)
    time = np.random.default_rng(8).permutation(len(X))   # rows arrive out of time order
    split = fit_time_split(X, y, time, test_fraction=0.3)
    model = LogisticFillModel.fit(split.X_train, split.y_train, info={"horizon_s": 5.0})
    return model, split, pd.Series(p, index=X.index)


def raw_coefficients(m) -> tuple[dict[str, float], float]:
    """The fitted model's coefficients on the unstandardised features."""
    slope = {f: c / s for f, c, s in zip(m.features, m.coef, m.scale, strict=True)}
    return slope, m.intercept - sum(c * mu / s for c, mu, s in zip(m.coef, m.mean, m.scale,
                                                                     strict=True))


def test_logistic_recovers_known_coefficients(fitted):
    model, split, _ = fitted
    slope, b0 = raw_coefficients(model)
    # 14,000 training rows: the asymptotic standard errors (inverse Fisher information at the
    # true coefficients) are 0.014 (queue), 0.009 (spread), 0.024 (noise) and 0.049 (the
    # intercept); the tolerances are 4 of them. A sign error or a standardisation bug (a
    # coefficient not divided by its scale of 3 or 2.9) misses by far more.
    tol = {"queue": 0.056, "spread": 0.036, "noise": 0.096}
    for k, b in TRUE_B.items():
        assert slope[k] == pytest.approx(b, abs=tol[k]), k
    assert b0 == pytest.approx(TRUE_B0, abs=0.2)
    assert slope["queue"] > 0 > slope["spread"]
    assert model.features == ("queue", "spread", "noise")
    fit = model.info["fit"]
    assert fit["n"] == len(split.X_train) == 14_000
    assert fit["rate"] == split.y_train.mean() and model.info["horizon_s"] == 5.0


def test_logistic_beats_base_rate_out_of_sample(fitted):
    model, split, true_p = fitted
    p = model.predict_frame(split.X_test)
    m = classification_metrics(split.y_test, p, base_rate=model.info["fit"]["rate"])
    assert m["log_loss_skill"] > 0.2 and m["brier_skill"] > 0.2 and m["auc"] > 0.8
    # and it is close to the true probabilities (the best any model can do)
    assert np.mean(np.abs(p - true_p.loc[split.X_test.index].to_numpy())) < 0.02
    truth = classification_metrics(split.y_test, true_p.loc[split.X_test.index],
                                   base_rate=model.info["fit"]["rate"])
    assert m["log_loss"] == pytest.approx(truth["log_loss"], abs=0.01)


def test_logistic_matches_sklearn_predict_proba(fitted):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model, split, _ = fitted
    pipe = make_pipeline(StandardScaler(),
                         LogisticRegression(C=1.0, solver="lbfgs", tol=1e-8, max_iter=1000))
    pipe.fit(split.X_train.to_numpy(), split.y_train)
    expect = pipe.predict_proba(split.X_test.to_numpy())[:, 1]
    np.testing.assert_allclose(model.predict_frame(split.X_test), expect, rtol=0, atol=1e-12)


def test_logistic_is_a_maker_taker_model(fitted):
    model, _, _ = fitted
    assert isinstance(model, MakerTakerModel) and model.name == "logistic"
    f = {"queue": 2.0, "spread": 1.0, "noise": 0.0, "order_size": 1.0}   # extras ignored
    assert maker_probability("limit", model, **f) == model.predict(**f)
    assert maker_probability("market", model, **f) == 0.0


def test_logistic_by_hand():
    m = LogisticFillModel(("a", "b"), mean=(1.0, 0.0), scale=(2.0, 4.0), coef=(2.0, -1.0),
                          intercept=0.5)
    # z = 0.5 + 2 * (3 - 1) / 2 - 1 * (8 - 0) / 4 = 0.5
    assert m.predict(a=3.0, b=8.0) == 1.0 / (1.0 + math.exp(-0.5))
    assert type(m.predict(a=3, b=8)) is float
    assert m.predict(a=1.0, b=-2.0) == 1.0 / (1.0 + math.exp(-1.0))
    assert m.predict(a=1e6, b=0.0) == 1.0
    assert m.predict(a=-1e6, b=0.0) == 0.0        # exp(1e6) overflows: p = 0, no error
    assert math.isnan(m.predict(a=math.nan, b=0.0))
    out = m.predict(a=np.array([-1e6, math.nan, 3.0]), b=8.0)
    assert out[0] == 0.0 and math.isnan(out[1]) and out[2] == m.predict(a=3.0, b=8.0)


DUAL = LogisticFillModel(("a", "b"), mean=(0.3, -2.0), scale=(0.7, 3.0), coef=(1.3, -0.45),
                         intercept=0.2)
anyfloat = st.floats(allow_nan=True, allow_infinity=True, width=64)
moderate = st.floats(-800.0, 800.0)               # z around exp's overflow point, and beyond


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30).flatmap(lambda k: st.tuples(
    arrays(np.float64, k, elements=st.one_of(anyfloat, moderate)),
    arrays(np.float64, k, elements=st.one_of(anyfloat, moderate)))))
def test_logistic_dual_mode_bitwise(ab):
    a, b = ab
    arr = DUAL.predict(a=a, b=b)
    assert_bitwise(arr, [DUAL.predict(a=float(x), b=float(y)) for x, y in zip(a, b,
                                                                                 strict=True)])
    mixed = DUAL.predict(a=a, b=1.5)
    assert_bitwise(mixed, [DUAL.predict(a=float(x), b=1.5) for x in a])


def test_logistic_predict_errors():
    with pytest.raises(ValueError, match=r"needs features \['a', 'b'\]; missing \['b'\]"):
        DUAL.predict(a=1.0)
    with pytest.raises(ValueError, match=r"missing \['a'\]"):
        DUAL.predict_frame(pd.DataFrame({"b": [1.0]}))
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        DUAL.predict_frame({"a": [1.0], "b": [1.0]})
    with pytest.raises(TypeError, match="a must be a number"):
        DUAL.predict(a="1", b=1.0)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"scale": (0.0, 1.0)}, ValueError, "scale must be > 0, got 0.0 for feature 'a'"),
    ({"scale": (1.0, -1.0)}, ValueError, "scale must be > 0, got -1.0 for feature 'b'"),
    ({"coef": (1.0,)}, ValueError, r"coef must have one value per feature \(2\), got 1"),
    ({"mean": (1.0, math.nan)}, ValueError, r"mean\[1\] must be finite, got nan"),
    ({"intercept": math.inf}, ValueError, "intercept must be finite"),
    ({"intercept": "0"}, TypeError, "intercept must be a real number"),
    ({"features": ("a", "a")}, ValueError, r"features must be unique, got \['a'\]"),
    ({"features": ()}, ValueError, "features must name at least one feature"),
    ({"info": {"x": object()}}, TypeError, r"info\['x'\] must hold only JSON-like values"),
    ({"info": {1: "x"}}, TypeError, "info keys must be strings, got 1"),
])
def test_logistic_construction_errors(kwargs, exc, match):
    args = {"features": ("a", "b"), "mean": (0.0, 0.0), "scale": (1.0, 1.0),
            "coef": (1.0, 1.0), "intercept": 0.0, **kwargs}
    with pytest.raises(exc, match=match):
        LogisticFillModel(**args)


def test_logistic_info_is_plain_json():
    m = LogisticFillModel(("a",), (0.0,), (1.0,), (1.0,), 0.0, info={
        "auc": np.float64(math.nan), "n": np.int64(3), "range": (pd.Timestamp("2022-05-13"),
                                                               np.datetime64("2022-05-14")),
        "nested": {"x": np.array([1.0, 2.0])}})
    assert m.info == {"auc": None, "n": 3, "range": ["2022-05-13T00:00:00", "2022-05-14"],
                      "nested": {"x": [1.0, 2.0]}}
    assert type(m.info["n"]) is int


@pytest.mark.parametrize("call, exc, match", [
    (lambda X, y: LogisticFillModel.fit(X, np.zeros(len(X))), ValueError,
     r"y must hold both classes to fit, got only 0 \(6 rows\)"),
    (lambda X, y: LogisticFillModel.fit(X.assign(a=[1.0, math.nan, 0, 0, 0, 0]), y),
     ValueError, "X column 'a' must be finite, got nan at row 1"),
    (lambda X, y: LogisticFillModel.fit(X, y[:5]), ValueError,
     "X and y must have the same length, got 6 and 5"),
    (lambda X, y: LogisticFillModel.fit(X, y, C=0.0), ValueError, "C must be > 0, got 0.0"),
    (lambda X, y: LogisticFillModel.fit(X, y, features=["a", "zz"]), ValueError,
     r"X lacks feature columns \['zz'\]"),
    (lambda X, y: LogisticFillModel.fit(X.to_numpy(), y), TypeError,
     "X must be a pandas DataFrame"),
    (lambda X, y: LogisticFillModel.fit(X.assign(a=list("abcdef")), y), TypeError,
     "X column 'a' must be numeric"),
    (lambda X, y: LogisticFillModel.fit(X, [0, 1, 2, 0, 1, 0]), ValueError,
     "y must hold labels 0 or 1, got 2.0 at index 2"),
])
def test_logistic_fit_errors(call, exc, match):
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    y = np.array([0, 0, 1, 0, 1, 1])
    with pytest.raises(exc, match=match):
        call(X, y)


def test_logistic_fit_is_deterministic(fitted):
    model, split, _ = fitted
    assert LogisticFillModel.fit(split.X_train, split.y_train, info={"horizon_s": 5.0}) == model


# -- time split -------------------------------------------------------------------------------
def test_time_split_orders_by_time_and_keeps_ties_together():
    X = pd.DataFrame({"x": np.arange(10.0)}, index=list("abcdefghij"))
    time = [9, 0, 8, 1, 7, 2, 6, 3, 5, 5]
    y = [1, 0, 0, 1, 1, 0, 0, 1, 1, 0]
    s = fit_time_split(X, y, time, test_fraction=0.25)
    # sorted times 0 1 2 3 5 5 6 7 8 9; floor(10 * 0.75) = 7 -> cut at 7
    assert s.split_time == 7
    assert s.X_train.index.tolist() == ["b", "d", "f", "h", "i", "j", "g"]
    assert s.X_test.index.tolist() == ["e", "c", "a"]
    assert s.y_train.tolist() == [0, 1, 0, 1, 1, 0, 0] and s.y_test.tolist() == [1, 0, 1]
    # a cut on a tied time moves the whole tie to the test part
    s2 = fit_time_split(X, y, time, test_fraction=0.55)          # cut at sorted[4] = 5
    assert s2.split_time == 5 and s2.X_train.index.tolist() == ["b", "d", "f", "h"]


def test_time_split_datetimes():
    t = pd.Series(pd.to_datetime(["2022-05-13 10:00:03", "2022-05-13 10:00:01",
                                  "2022-05-13 10:00:02", "2022-05-13 10:00:00"], utc=True))
    s = fit_time_split(pd.DataFrame({"x": [3.0, 1.0, 2.0, 0.0]}), [1, 1, 0, 0], t,
                       test_fraction=0.5)
    assert s.split_time == pd.Timestamp("2022-05-13 10:00:02")
    assert s.X_train["x"].tolist() == [0.0, 1.0] and s.X_test["x"].tolist() == [2.0, 3.0]


@pytest.mark.parametrize("y, time, frac, match", [
    ([0, 1, 1, 1], [0, 1, 2, 3], 0.5, r"the test part holds only class 1 \(2 rows\)"),
    ([0, 0, 1, 0], [0, 1, 2, 3], 0.5, "the train part holds only class 0"),
    ([0, 1, 0, 1], [5, 5, 5, 5], 0.5, "leaves an empty train part"),
    ([0, 1, 0, 1], [0, 1, 2, 3], 1.0, r"test_fraction must be in \(0, 1\), got 1.0"),
    ([0, 1, 0, 1], [0, 1, 2], 0.5, "time must be 1-D with one value per row of X"),
    ([0, 1, 0, 1], [0, 1, math.nan, 3], 0.5, "time must not hold NaN/NaT, got one at row 2"),
])
def test_time_split_errors(y, time, frac, match):
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=match):
        fit_time_split(X, y, time, test_fraction=frac)


# -- slippage regression ----------------------------------------------------------------------
def heteroscedastic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """y = 1 + 2 x + (0.5 + 1.5 x) e, e ~ N(0, 1), x ~ U(0, 1); x2 ~ N(0, 1) is irrelevant.
    The true q-quantile is linear: (1 + 0.5 z_q) + (2 + 1.5 z_q) x."""
    rng = np.random.default_rng(seed)
    x, x2 = rng.uniform(0.0, 1.0, n), rng.normal(0.0, 1.0, n)
    return (pd.DataFrame({"x": x, "x2": x2}),
            1.0 + 2.0 * x + (0.5 + 1.5 * x) * rng.normal(0.0, 1.0, n))


N_TRAIN, N_TEST = 8_000, 5_000


@pytest.fixture(scope="module")
def slip():
    X, y = heteroscedastic(N_TRAIN + N_TEST, seed=11)
    model = SlippageRegression.fit(X.iloc[:N_TRAIN], y[:N_TRAIN], info={"target": "bps"})
    return model, X.iloc[N_TRAIN:], y[N_TRAIN:]


def test_slippage_regression_recovers_lines(slip):
    model, _, _ = slip
    assert model.quantiles == (0.5, 0.9, 0.99)
    slope, b0 = raw_coefficients(model)
    # standard deviations over 30 simulated training sets of 8,000 rows: OLS 0.053 (x), 0.015
    # (x2), 0.019 (intercept); q50 0.059, 0.014, 0.023; q90 0.073, 0.024, 0.029. The
    # tolerances are 4 of them; the true q90 slope (3.92) is 1.9 away from the mean's (2).
    assert slope["x"] == pytest.approx(2.0, abs=0.21) and b0 == pytest.approx(1.0, abs=0.08)
    assert slope["x2"] == pytest.approx(0.0, abs=0.06)
    tol = {0.5: (0.24, 0.06, 0.09), 0.9: (0.29, 0.1, 0.12)}
    for i, q in enumerate((0.5, 0.9)):
        z = statistics.NormalDist().inv_cdf(q)
        qm = SlippageRegression(model.features, model.mean, model.scale, model.q_coef[i],
                                model.q_intercept[i], (q,), (model.q_coef[i],),
                                (model.q_intercept[i],))
        s, c = raw_coefficients(qm)
        assert s["x"] == pytest.approx(2.0 + 1.5 * z, abs=tol[q][0]), q
        assert s["x2"] == pytest.approx(0.0, abs=tol[q][1]), q
        assert c == pytest.approx(1.0 + 0.5 * z, abs=tol[q][2]), q


def tolerance(q: float) -> float:
    """3.5 standard errors of an empirical coverage: binomial on the N_TEST test rows, plus
    as much again for the fitted line's own error from N_TRAIN rows (its coverage is itself
    an estimate): 0.032 at q = 0.5, 0.019 at 0.9, 0.0064 at 0.99."""
    return 3.5 * math.sqrt(q * (1 - q) * (1 / N_TEST + 1 / N_TRAIN))


def test_slippage_quantile_coverage_out_of_sample(slip):
    model, X, y = slip
    cov = model.coverage(X, y)
    assert list(cov.columns) == ["quantile", "coverage", "n", "pinball_loss"]
    assert cov["quantile"].tolist() == [0.5, 0.9, 0.99] and set(cov["n"]) == {N_TEST}
    for q, c in zip(cov["quantile"], cov["coverage"], strict=True):
        assert abs(c - q) <= tolerance(q), (q, c)
    # the spread grows with x: the quantiles must hold in both halves, which a constant
    # offset from the mean would not (it covers ~0.96 of low-x rows and ~0.83 of high-x
    # rows at q = 0.9); ~2,500 rows each, so 2.4 times the tolerance (~3.5 SE again)
    for half in (X["x"] < 0.5, X["x"] >= 0.5):
        for q, c in zip(model.quantiles, model.coverage(X[half], y[half.to_numpy()])["coverage"],
                        strict=True):
            assert abs(c - q) <= 2.4 * tolerance(q), (q, c)
    # the fitted lines beat the constant (unconditional) quantile on pinball loss
    for q, loss in zip(cov["quantile"], cov["pinball_loss"], strict=True):
        const = pinball_loss(y, np.full(len(y), np.quantile(y, q)), q)
        assert loss < const


def test_slippage_predict_matches_sklearn():
    from sklearn.linear_model import LinearRegression, QuantileRegressor
    from sklearn.preprocessing import StandardScaler

    X, y = heteroscedastic(1_500, seed=3)
    m = SlippageRegression.fit(X, y, quantiles=(0.9,))
    sc = StandardScaler().fit(X.to_numpy())
    Z = sc.transform(X.to_numpy())
    Xn, _ = heteroscedastic(200, seed=4)
    Zn = sc.transform(Xn.to_numpy())
    pred = m.predict_frame(Xn)
    np.testing.assert_allclose(pred["mean"], LinearRegression().fit(Z, y).predict(Zn),
                               rtol=0, atol=1e-12)
    qr = QuantileRegressor(quantile=0.9, alpha=0.0, solver="highs").fit(Z, y)
    np.testing.assert_allclose(pred["q90"], qr.predict(Zn), rtol=0, atol=1e-10)


def test_slippage_subsample_is_seeded():
    X, y = heteroscedastic(3_000, seed=5)
    a = SlippageRegression.fit(X, y, quantiles=(0.5,), max_rows=500, seed=0)
    b = SlippageRegression.fit(X, y, quantiles=(0.5,), max_rows=500, seed=0)
    c = SlippageRegression.fit(X, y, quantiles=(0.5,), max_rows=500, seed=1)
    assert a == b and a.q_coef != c.q_coef
    assert a.coef == c.coef                       # the mean model uses every row
    assert a.info["fit"]["n_quantile_fit"] == 500 and a.info["fit"]["n"] == 3_000


def test_slippage_by_hand_and_outputs():
    m = SlippageRegression(("d",), mean=(0.5,), scale=(0.25,), coef=(2.0,), intercept=3.0,
                           quantiles=(0.5, 0.995), q_coef=((2.0,), (4.0,)),
                           q_intercept=(2.5, 6.0))
    # (0.75 - 0.5) / 0.25 = 1
    assert m.predict(d=0.75) == {"mean": 5.0, "q50": 4.5, "q99.5": 10.0}
    assert m.outputs == ("mean", "q50", "q99.5")
    df = m.predict_frame(pd.DataFrame({"d": [0.5, math.nan]}, index=[10, 20]))
    assert df.index.tolist() == [10, 20] and list(df.columns) == ["mean", "q50", "q99.5"]
    assert df.loc[10].tolist() == [3.0, 2.5, 6.0] and df.loc[20].isna().all()
    assert [quantile_name(q) for q in (0.01, 0.05, 0.5, 0.9, 0.99, 0.999)] == [
        "q1", "q5", "q50", "q90", "q99", "q99.9"]


SDUAL = SlippageRegression(("a", "b"), (0.3, -2.0), (0.7, 3.0), (1.3, -0.45), 0.2,
                           (0.5, 0.9), ((0.9, -0.1), (2.5, 0.3)), (0.1, 1.7))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30).flatmap(lambda k: st.tuples(
    arrays(np.float64, k, elements=anyfloat), arrays(np.float64, k, elements=anyfloat))))
def test_slippage_dual_mode_bitwise(ab):
    a, b = ab
    arr = SDUAL.predict(a=a, b=b)
    scal = [SDUAL.predict(a=float(x), b=float(y)) for x, y in zip(a, b, strict=True)]
    for k in SDUAL.outputs:
        assert_bitwise(arr[k], [s[k] for s in scal])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"quantiles": (0.9, 0.5)}, ValueError, "quantiles must be strictly increasing"),
    ({"quantiles": (0.5, 1.0)}, ValueError, r"quantiles must be in \(0, 1\), got 1.0"),
    ({"quantiles": (0.5, 0.5)}, ValueError, "quantiles must be distinct"),
    ({"q_coef": ((1.0,),)}, ValueError, "q_coef must hold one row of coefficients per quantile"),
    ({"q_coef": ((1.0,), (1.0, 2.0))}, ValueError,
     r"q_coef\[1\] must have one value per feature \(1\), got 2"),
    ({"q_intercept": (0.0,)}, ValueError, "q_intercept must hold one value per quantile"),
    ({"scale": (0.0,)}, ValueError, "scale must be > 0"),
])
def test_slippage_construction_errors(kwargs, exc, match):
    args = {"features": ("a",), "mean": (0.0,), "scale": (1.0,), "coef": (1.0,),
            "intercept": 0.0, "quantiles": (0.5, 0.9), "q_coef": ((1.0,), (2.0,)),
            "q_intercept": (0.0, 1.0), **kwargs}
    with pytest.raises(exc, match=match):
        SlippageRegression(**args)


def test_slippage_fit_errors():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="y must be finite, got inf at index 1"):
        SlippageRegression.fit(X, [0.0, math.inf, 1.0, 2.0])
    with pytest.raises(ValueError, match="y must not hold NaN"):
        SlippageRegression.fit(X, [0.0, math.nan, 1.0, 2.0])
    with pytest.raises(ValueError, match="max_rows must be an integer >= 1, got 0"):
        SlippageRegression.fit(X, [0.0, 1.0, 1.0, 2.0], max_rows=0)
    with pytest.raises(ValueError, match="solver must be one of"):
        SlippageRegression.fit(X, [0.0, 1.0, 1.0, 2.0], solver="interior-point")
    with pytest.raises(ValueError, match=r"quantiles must be in \(0, 1\)"):
        SlippageRegression.fit(X, [0.0, 1.0, 1.0, 2.0], quantiles=(0.0,))
    with pytest.raises(ValueError, match=r"X lacks feature columns \['a'\]; it has \['b'\]"):
        SlippageRegression.fit(X, [0.0, 1.0, 1.0, 2.0], quantiles=(0.5,)).coverage(
            pd.DataFrame({"b": [1.0]}), [1.0])


# -- persistence ------------------------------------------------------------------------------
GOLDEN = """{
  "coef": [
    1.5
  ],
  "features": [
    "x"
  ],
  "info": {
    "horizon_s": 5,
    "note": "café"
  },
  "intercept": -0.25,
  "kind": "maker_taker_logistic",
  "schema": "simlab.model",
  "schema_version": 1,
  "simlab_version": "VERSION",
  "standardize": {
    "mean": [
      0.0
    ],
    "scale": [
      2.0
    ]
  }
}
"""


def test_golden_bytes(tmp_path):
    m = LogisticFillModel(("x",), (0.0,), (2.0,), (1.5,), -0.25,
                          info={"note": "café", "horizon_s": 5})
    p = save_model(m, tmp_path / "m.json")
    expect = GOLDEN.replace("VERSION", __version__)
    assert p == tmp_path / "m.json" and p.read_text(encoding="utf-8") == expect
    assert load_model(p) == m


def test_round_trip_logistic_fitted(fitted, tmp_path):
    model, split, _ = fitted
    p1 = save_model(model, tmp_path / "a.json")
    back = load_model(p1)
    assert back == model                          # every float bit for bit, info included
    assert all(x.hex() == y.hex() for x, y in zip(back.coef + back.mean + back.scale,
                                                  model.coef + model.mean + model.scale,
                                                  strict=True))
    x = split.X_test.iloc[:50]
    assert np.array_equal(back.predict_frame(x), model.predict_frame(x))
    p2 = save_model(back, tmp_path / "b.json")
    assert p1.read_bytes() == p2.read_bytes()
    assert p1.read_bytes().endswith(b"}\n") and b"NaN" not in p1.read_bytes()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temp files


def test_round_trip_slippage(slip, tmp_path):
    model, X, _ = slip
    p = save_model(model, tmp_path / "s.json")
    back = load_model(p)
    assert back == model and isinstance(back, SlippageRegression)
    assert back.predict_frame(X.iloc[:20]).equals(model.predict_frame(X.iloc[:20]))
    assert save_model(back, tmp_path / "t.json").read_bytes() == p.read_bytes()
    d = json.loads(p.read_text())
    assert d["kind"] == "slippage_regression"
    assert [q["quantile"] for q in d["quantile_models"]] == [0.5, 0.9, 0.99]
    assert d["info"]["target"] == "bps" and d["info"]["fit"]["n"] == N_TRAIN


def test_round_trip_awkward_floats(tmp_path):
    m = LogisticFillModel(("a", "b"), (-0.0, 5e-324), (1e-300, 1.7976931348623157e308),
                          (0.1 + 0.2, -1 / 3), 1e-17, info={"x": 2.0 ** -1074})
    back = load_model(save_model(m, tmp_path / "m.json"))
    assert back == m and math.copysign(1.0, back.mean[0]) == -1.0


def test_model_to_dict_wrong_type():
    with pytest.raises(TypeError, match="got QueueShareModel"):
        model_to_dict(QueueShareModel())


def valid_dict(kind: str) -> dict:
    if kind == "maker_taker_logistic":
        return model_to_dict(LogisticFillModel(("a", "b"), (0.0, 1.0), (1.0, 2.0),
                                               (0.5, -0.5), 0.1))
    return model_to_dict(SDUAL)


def _set(path: str, value):
    def edit(d: dict) -> None:
        *head, last = path.split(".")
        for k in head:
            d = d[int(k)] if isinstance(d, list) else d[k]
        if value is _DROP:
            del d[last]
        elif isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value
    return edit


_DROP = object()

BAD_EDITS = [
    ("maker_taker_logistic", _set("schema", "other"), "schema must be 'simlab.model', got 'other'"),
    ("maker_taker_logistic", _set("schema_version", 2), "unsupported schema_version 2"),
    ("maker_taker_logistic", _set("schema_version", True), "unsupported schema_version True"),
    ("maker_taker_logistic", _set("schema_version", "1"), "unsupported schema_version '1'"),
    ("maker_taker_logistic", _set("kind", "tree"), "kind must be one of"),
    ("maker_taker_logistic", _set("intercept", _DROP), r"the model lacks keys \['intercept'\]"),
    ("maker_taker_logistic", _set("extra", 1), r"the model has unknown keys \['extra'\]"),
    ("maker_taker_logistic", _set("simlab_version", 1), "simlab_version must be a string"),
    ("maker_taker_logistic", _set("features", "ab"), "features must be a list of strings"),
    ("maker_taker_logistic", _set("features", ["a", "a"]), "features must be unique"),
    ("maker_taker_logistic", _set("coef", [1.0, 2.0, 3.0]),
     r"coef has 3 values for 2 features \['a', 'b'\]"),
    ("maker_taker_logistic", _set("standardize.mean", [0.0]), "standardize.mean has 1 values"),
    ("maker_taker_logistic", _set("standardize.scale", [1.0, 0.0]),
     "scale must be > 0, got 0.0 for feature 'b'"),
    ("maker_taker_logistic", _set("standardize.scale", [-1.0, 1.0]), "scale must be > 0"),
    ("maker_taker_logistic", _set("standardize.extra", []), "standardize has unknown keys"),
    ("maker_taker_logistic", _set("coef", [1.0, "2"]), "coef must be a list of numbers"),
    ("maker_taker_logistic", _set("coef", [1.0, True]), "coef must be a list of numbers"),
    ("maker_taker_logistic", _set("intercept", None), "intercept must be a number, got None"),
    ("maker_taker_logistic", _set("intercept", math.nan), "intercept must be finite"),
    ("maker_taker_logistic", _set("info", []), "info must be a JSON object, got list"),
    ("slippage_regression", _set("quantile_models", []), "quantile_models must be a non-empty"),
    ("slippage_regression", _set("quantile_models.1.quantile", 0.4),
     "quantiles must be strictly increasing"),
    ("slippage_regression", _set("quantile_models.0.quantile", 1.5),
     r"quantiles must be in \(0, 1\), got 1.5"),
    ("slippage_regression", _set("quantile_models.0.coef", [1.0]),
     r"quantile_models\[0\].coef has 1 values for 2 features"),
    ("slippage_regression", _set("quantile_models.0.intercept", _DROP),
     r"quantile_models\[0\] lacks keys \['intercept'\]"),
    ("slippage_regression", _set("mean_model.coef", [1.0]), "mean_model.coef has 1 values"),
    ("slippage_regression", _set("coef", [1.0, 1.0]), r"the model has unknown keys \['coef'\]"),
]


@pytest.mark.parametrize("kind, edit, match", BAD_EDITS)
def test_bad_model_dicts_and_files(kind, edit, match, tmp_path):
    d = valid_dict(kind)
    model_from_dict(d)                            # valid before the edit
    edit(d)
    with pytest.raises(ModelFileError, match=r"^<dict>: " + match):
        model_from_dict(d)
    try:
        text = json.dumps(d, allow_nan=False)
    except ValueError:
        return                                    # NaN in a file: test_non_finite_numbers...
    p = tmp_path / "model.json"
    p.write_text(text)
    with pytest.raises(ModelFileError, match=r"model\.json: " + match):
        load_model(p)


@pytest.mark.parametrize("text, match", [
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b'{"schema": "simlab.model",', r"not JSON \(Expecting property name"),
    (b"", "not JSON"),
    (b"[1, 2]", "a model must be a JSON object, got list"),
    (b'{"a": 1, "a": 2}', r"duplicate keys \['a'\]"),
])
def test_bad_file_text(text, match, tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(text)
    with pytest.raises(ModelFileError, match=r"bad\.json: " + match):
        load_model(p)


@pytest.mark.parametrize("token, match", [
    ("NaN", "non-finite number NaN"), ("Infinity", "non-finite number Infinity"),
    ("-Infinity", "non-finite number -Infinity"), ("1e999", "non-finite number 1e999"),
])
def test_non_finite_numbers_in_file(token, match, tmp_path):
    text = json.dumps(valid_dict("maker_taker_logistic")).replace('"intercept": 0.1',
                                                                  f'"intercept": {token}')
    assert token in text
    p = tmp_path / "nf.json"
    p.write_text(text)
    with pytest.raises(ModelFileError, match=r"nf\.json: " + match):
        load_model(p)
    # also deep inside info, where the model itself would not look
    d = valid_dict("maker_taker_logistic")
    d["info"] = {"metrics": {"auc": "X"}}
    p.write_text(json.dumps(d).replace('"X"', token))
    with pytest.raises(ModelFileError, match=match):
        load_model(p)


def test_model_file_error_is_value_error_and_missing_file(tmp_path):
    assert issubclass(ModelFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.json")


def test_save_does_not_warn_or_pickle(fitted, tmp_path):
    model, _, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = save_model(model, tmp_path / "m.json").read_text()
    assert json.loads(text)["info"]["fit"]["n"] == 14_000


# -- issue 15: the entries that make a model warn are checked on load --------------------------


@pytest.mark.parametrize("info, message", [
    ({"weak": "yes"}, "info.weak must be true or false, got 'yes'"),
    ({"training": {"ranges": [1, 2]}}, "info.training.ranges must be a JSON object"),
    ({"training": {"ranges": {"x": {"min": 0.0}}}},
     "info.training.ranges['x'] must be an object with min and max"),
    ({"training": {"ranges": {"x": {"min": 2.0, "max": 1.0}}}},
     "must have numbers min <= max (or both null), got min=2.0, max=1.0"),
    ({"training": {"ranges": {"x": {"min": "0", "max": 1.0}}}}, "min='0'"),
])
def test_a_malformed_range_or_weak_flag_is_a_load_error(info, message):
    from simlab.models.logistic import LogisticFillModel
    from simlab.models.persist import ModelFileError, model_from_dict, model_to_dict

    d = model_to_dict(LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0))
    with pytest.raises(ModelFileError, match=re.escape(message)):
        model_from_dict({**d, "info": info}, source="m.json")
    # well-formed ones load, and an old file without them too
    ok = {"weak": True, "training": {"ranges": {"x": {"min": 0.0, "p1": 0.0, "p99": 1.0,
                                                      "max": 1.0, "n": 3},
                                                "y": {"min": None, "max": None}}}}
    assert model_from_dict({**d, "info": ok}).info["weak"] is True
    assert model_from_dict({**d, "info": {"training": {"rows": 5}}}).info["training"]
