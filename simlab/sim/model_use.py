"""Using trained models in the cost pipeline: the slippage regression's inputs and output
columns, and the checks that say when a model's numbers cannot be trusted.

A trained slippage model (``simlab train slippage``) predicts the walk-the-book slippage of
a MARKET order, in bps of the mid, from the book at the tick. The pipeline reports its
prediction beside the walk it computes itself, never in place of it: ``slippage_bps`` stays
what the visible book says, and the model's mean and quantiles are the columns
:func:`slippage_columns` names (``slippage_model_bps``, ``slippage_model_q90_bps`` ...).
The inputs are computed exactly as :func:`simlab.sim.train.slippage_dataset` computed them
for training (:func:`slippage_inputs`).

:func:`model_guard` gives the :class:`~simlab.models.ranges.RangeCheck` a pipeline runs
on a trained model's inputs (None for a heuristic), after warning once if the model is
marked weak or records no training ranges.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from simlab.models._dual import Dual, safe_div
from simlab.models.logistic import LogisticFillModel
from simlab.models.ranges import ModelRangeWarning, RangeCheck, training_ranges, warn_if_weak
from simlab.models.slippage_regression import SlippageRegression

#: The inputs :func:`slippage_inputs` computes (those ``simlab train slippage`` uses).
SLIPPAGE_INPUTS = ("size_rel_depth", "spread_bps", "volatility_bps", "imbalance")


def slippage_columns(model: SlippageRegression) -> tuple[str, ...]:
    """The result columns of a slippage model's outputs: the mean, then each quantile.

    >>> m = SlippageRegression(("spread_bps",), (0.0,), (1.0,), (1.0,), 0.0, (0.5, 0.9),
    ...                        ((1.0,), (2.0,)), (0.0, 1.0))
    >>> slippage_columns(m)
    ('slippage_model_bps', 'slippage_model_q50_bps', 'slippage_model_q90_bps')
    """
    return ("slippage_model_bps",
            *(f"slippage_model_{k}_bps" for k in model.outputs[1:]))


def check_slippage_model(model: Any, side: str, source: str = "slippage model") -> Any:
    """``model`` if it is a slippage regression that can price an order on ``side``;
    ValueError naming ``source`` otherwise.

    >>> check_slippage_model(object(), "buy", "m.json")
    Traceback (most recent call last):
    ValueError: m.json: not a slippage model (it is a object); train one with simlab train slippage
    """
    if not isinstance(model, SlippageRegression):
        raise ValueError(f"{source}: not a slippage model (it is a {type(model).__name__}); "
                         "train one with simlab train slippage")
    unknown = [f for f in model.features if f not in SLIPPAGE_INPUTS]
    if unknown:
        raise ValueError(f"{source}: needs inputs {unknown} the pipeline cannot compute; "
                         f"it provides {list(SLIPPAGE_INPUTS)}")
    trained = model.info.get("side")
    if trained is not None and trained != side:
        raise ValueError(f"{source}: trained on {trained} orders, cannot price a {side} "
                         f"order; train one with simlab train slippage --side {side}")
    return model


def slippage_inputs(bid: Dual, ask: Dual, bid_sz: Dual, ask_sz: Dual, walk_base: Dual,
                    taken_depth: Dual, volatility_bps: Dual, buy: bool) -> dict[str, Dual]:
    """The slippage model's inputs at a tick (floats) or many (arrays), as in training:
    the walk's filled size over the taken side's depth, the spread and volatility in bps,
    the touch imbalance ``(taken - other) / (taken + other)``.

    >>> slippage_inputs(99.0, 101.0, 1.0, 3.0, 2.0, 8.0, 1.5, True)["imbalance"]
    0.5
    """
    div = safe_div if isinstance(bid, np.ndarray) else _div
    taken, other = (ask_sz, bid_sz) if buy else (bid_sz, ask_sz)
    mid = (bid + ask) * 0.5
    return {"size_rel_depth": div(walk_base, taken_depth),
            "spread_bps": div(ask - bid, mid) * 1e4, "volatility_bps": volatility_bps,
            "imbalance": div(taken - other, taken + other)}


def _div(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan


def model_guard(model: Any, what: str) -> RangeCheck | None:
    """The range check for a trained ``model`` (None for a heuristic such as the
    queue-share default). Warns once now if the model is marked weak, or if it records no
    training ranges (an older model file: it loads, but cannot be checked).

    >>> from simlab.models.maker_taker import QueueShareModel
    >>> model_guard(QueueShareModel(), "maker/taker model") is None
    True
    """
    if not isinstance(model, LogisticFillModel | SlippageRegression):
        return None
    warn_if_weak(model, what)
    check = RangeCheck(model, what)
    if training_ranges(model) is None:
        if "training" not in model.info:
            return None  # built by hand, not trained: there is no training range to hold
        warnings.warn(f"{check.name} records no training ranges (a model file from an older "
                      "simlab): its inputs are not range-checked; retrain it to get the check",
                      ModelRangeWarning, stacklevel=3)
        return None
    return check


def load_maker_taker_model(path: Any, source: str | None = "--maker-taker-model") -> Any:
    """The maker/taker model in the file ``path``; ValueError naming the file (and
    ``source``, the option or grid key it came from, unless None) when it is missing or not
    one.

    >>> load_maker_taker_model("/nonexistent.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: --maker-taker-model: model file not found: /nonexistent.json
    """
    model = _load(path, source)
    if not isinstance(model, LogisticFillModel):
        raise ValueError(f"{path}: not a maker/taker model (it is a {type(model).__name__}); "
                         "train one with simlab train maker-taker")
    return model


def load_slippage_model(path: Any, side: str, source: str | None = "--slippage-model") -> Any:
    """The slippage model in the file ``path``, checked for an order on ``side``
    (:func:`check_slippage_model`); ValueError naming the file otherwise.

    >>> load_slippage_model("/nonexistent.json", "buy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: --slippage-model: model file not found: /nonexistent.json
    """
    return check_slippage_model(_load(path, source), side, str(path))


def _load(path: Any, source: str | None) -> Any:
    from simlab.models.persist import load_model

    lead = "" if source is None else f"{source}: "
    try:
        return load_model(path)
    except FileNotFoundError:
        raise ValueError(f"{lead}model file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{lead}{path} is a directory, not a model file") from None


__all__ = ["SLIPPAGE_INPUTS", "check_slippage_model", "load_maker_taker_model",
           "load_slippage_model", "model_guard", "slippage_columns", "slippage_inputs"]
