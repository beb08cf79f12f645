"""Training ranges and the weak flag of learned models (issue 15): what a model has seen,
and the warnings when it is used beyond it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from simlab.models.logistic import LogisticFillModel
from simlab.models.ranges import ModelRangeWarning, RangeCheck, value_ranges, warn_if_weak
from simlab.models.slippage_regression import SlippageRegression


def _model(**ranges):
    return LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0,
                             info={"inst": "BTC-USDT", "training": {"ranges": ranges}})


def _caught(f):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f()
    return [str(x.message) for x in w if issubclass(x.category, ModelRangeWarning)]


def test_value_ranges_are_of_the_finite_values():
    r = value_ranges({"x": np.r_[np.arange(101.0), np.nan, np.inf]})["x"]
    assert (r["min"], r["p1"], r["p99"], r["max"], r["n"]) == (0.0, 1.0, 99.0, 100.0, 101)
    assert value_ranges({"x": [np.nan]})["x"] == {"min": None, "p1": None, "p99": None,
                                                  "max": None, "n": 0}


def test_a_constant_input_has_no_slack_and_warns_once():
    c = RangeCheck(_model(order_size=value_ranges({"s": [0.01]})["s"]), "maker/taker model")
    msgs = _caught(lambda: [c.check({"order_size": v}) for v in (0.01, 1.0, 2.0, 0.5)])
    assert msgs == ["maker/taker model (BTC-USDT): input 'order_size' = 1 is outside its "
                    "training range [0.01, 0.01] (p1 0.01, p99 0.01); the model "
                    "extrapolates there and its output is not supported by its data"]
    assert c.outside["order_size"]["value"] == 1.0


def test_a_batch_names_the_extreme_value_and_the_share_outside():
    c = RangeCheck(_model(x=value_ranges({"x": np.linspace(0.0, 1.0, 11)})["x"]))
    # just past the extremes (within a quarter of the span): not worth a warning
    assert _caught(lambda: c.check({"x": np.array([-0.2, 0.5, 1.2, np.nan])})) == []
    msgs = _caught(lambda: c.check({"x": np.array([0.5, 0.5, 3.0, -0.1])}))
    assert len(msgs) == 1 and "'x' = 3 is outside" in msgs[0]
    assert "(on 1 of the 4 values checked)" in msgs[0]   # -0.1 is within the slack
    assert _caught(lambda: c.check({"x": np.array([9.0])})) == []   # once
    assert _caught(lambda: c.check({"y": 1e9})) == []               # no range: not checked


def test_nan_is_not_a_finding_and_no_ranges_checks_nothing():
    c = RangeCheck(_model(x=value_ranges({"x": [0.0, 1.0]})["x"]))
    assert _caught(lambda: c.check({"x": float("nan")})) == []
    bare = RangeCheck(LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0))
    assert not bare.has_ranges and _caught(lambda: bare.check({"x": 1e9})) == []


def test_a_weak_model_warns_with_its_reason():
    from simlab.models.ranges import WeakModelWarning

    m = LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0,
                          info={"weak": True, "weak_reason": "log-loss 0.7 vs base rate 0.6"})
    with pytest.warns(WeakModelWarning, match="marked weak: log-loss 0.7 vs base rate 0.6"):
        assert warn_if_weak(m, "maker/taker model")
    assert not warn_if_weak(LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0))


def test_a_slippage_model_worse_than_the_training_mean_is_weak():
    from simlab.sim.train import _slippage_scores, _weak_regression

    rng = np.random.default_rng(0)
    y_train, y_test = rng.normal(1.0, 0.1, 200), rng.normal(1.0, 0.1, 100)
    # a model with a slope where there is none: worse than the constant out of sample
    X = pd.DataFrame({"x": rng.normal(0.0, 1.0, 100)})
    bad = SlippageRegression(("x",), (0.0,), (1.0,), (0.5,), 1.0, (0.5,), ((0.5,),), (1.0,))
    s = _slippage_scores(bad, y_train, y_test, bad.predict_frame(X))
    w = _weak_regression(s)
    assert w["weak"] and "mean: squared error" in w["weak_reason"]
    assert "q50: pinball loss" in w["weak_reason"] and s["mse"] > s["base_mse"]
    # a model that knows the slope beats the constant: not weak
    y_good = 1.0 + 0.5 * X["x"].to_numpy() + rng.normal(0.0, 0.01, 100)
    s = _slippage_scores(bad, 1.0 + 0.5 * rng.normal(0.0, 1.0, 200), y_good,
                         bad.predict_frame(X))
    assert _weak_regression(s) == {"weak": False}
