"""Maker/taker: the probability that a limit order fills passively (as maker).

The question (see the shared ``cost-models.md``): if I post a limit order of size ``q`` at
the best price now, what is the probability ``p`` that it fills passively within the horizon
rather than having to cross the spread? The expected fee is then ``p * maker + (1 - p) *
taker`` (:func:`simlab.models.fees.expected_fee`).

A model is anything that satisfies :class:`MakerTakerModel`: a ``name``, the ``features`` it
reads (names of per-tick inputs), and ``predict(**features)``, dual-mode like every
element-wise cost function (floats in, float out; arrays in, array out; bitwise identical,
see :mod:`simlab.models._dual`). Two are provided:

- :class:`QueueShareModel`, the default: a documented heuristic, NOT fitted to any data;
- :class:`ConstantModel`, a fixed probability (0 = always taker, 1 = always maker).

A model trained on recorded books and trades, :class:`simlab.models.logistic.LogisticFillModel`
(``simlab train maker-taker``), plugs in through the same protocol. Its labels and features
are re-exported here: :func:`label_fills` (would a passive order at the best price have
filled within the horizon? see :mod:`simlab.models.fill_labels`) and
:class:`FillFeatureState` (:mod:`simlab.models.fill_features`).

Sizes are in the book's units (base currency for spot, contracts for swaps), all three the
same.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._dual import Dual, check_range, coerce, quiet, safe_div
from .fill_features import FILL_FEATURES, FeatureParams, FillFeatureState
from .fill_labels import QUEUE_MODELS, BookPath, TradePath, label_fills


@runtime_checkable
class MakerTakerModel(Protocol):
    """A passive-fill probability model.

    ``predict`` takes the features named in ``features`` as keyword arguments (floats or
    arrays) and returns the probability in [0, 1] (NaN when undefined) that a limit order
    posted at the best price fills passively within the model's horizon.

    >>> isinstance(QueueShareModel(), MakerTakerModel), isinstance(object(), MakerTakerModel)
    (True, False)
    """

    name: str
    features: tuple[str, ...]

    def predict(self, **features: Any) -> Dual: ...


class QueueShareModel:
    """Default heuristic: ``p = opp / (opp + queue_ahead + q)``. Not fitted, not calibrated.

    Inputs: ``own_best_size`` (the size resting at our price, i.e. the queue ahead of us: the
    best bid for a buy), ``opp_best_size`` (the size at the opposite best: the best ask for
    a buy) and ``order_size`` (our order, ``q > 0``).

    Intuition: it is queue imbalance (the share of the opposite best in the two best
    queues, a known short-horizon predictor of the next price move; e.g. Gould & Bonart
    2016) with our own order added to our side. A thick opposite queue against a thin one
    on our side means the price is more likely to tick towards us, which fills a resting
    order; a long queue ahead of us, or a large order of ours, means more volume must trade
    at our price before we fill. ``p`` falls with the queue ahead and with the order size
    and rises with the opposite size.

    Limits: it ignores the horizon (the same ``p`` for one second or one hour), trade flow,
    cancellations in the queue ahead, the spread (with a wide spread someone may improve
    in front of us), volatility and hidden orders; its numbers are not probabilities
    checked against any data. Use it as a sensible default and for ranking, not as a
    calibrated forecast. NaN inputs give NaN; negative sizes or ``order_size <= 0`` raise
    ValueError (in both modes).

    >>> m = QueueShareModel()
    >>> m.predict(own_best_size=3.0, opp_best_size=5.0, order_size=2.0)
    0.5
    >>> m.predict(own_best_size=np.array([0.0, 8.0]), opp_best_size=1.0, order_size=1.0)
    array([0.5, 0.1])
    """

    name = "queue_share"
    features = ("own_best_size", "opp_best_size", "order_size")

    def predict(self, *, own_best_size: Dual, opp_best_size: Dual, order_size: Dual) -> Dual:
        if type(own_best_size) is float and type(opp_best_size) is float and type(
                order_size) is float:
            # the live path, once per tick: the same checks and formula without the
            # general coercion (the tests hold both paths to the same bits and errors)
            if own_best_size < 0.0 or opp_best_size < 0.0 or order_size <= 0.0:
                check_range("own_best_size", own_best_size, lo=0.0)
                check_range("opp_best_size", opp_best_size, lo=0.0)
                check_range("order_size", order_size, lo=0.0, lo_open=True)
            d = opp_best_size + own_best_size + order_size
            return opp_best_size / d if d != 0 else math.nan
        queue, opp, q = coerce(own_best_size=own_best_size, opp_best_size=opp_best_size,
                               order_size=order_size)
        check_range("own_best_size", queue, lo=0.0)
        check_range("opp_best_size", opp, lo=0.0)
        check_range("order_size", q, lo=0.0, lo_open=True)
        with quiet(queue, opp, q):
            return safe_div(opp, opp + queue + q)

    def __repr__(self) -> str:
        return "QueueShareModel()"


def _array_shape(features: dict[str, Any]) -> tuple[int, ...] | None:
    """Broadcast shape of the array-like features; None when all are scalars (scalar mode)."""
    shapes = [np.shape(v) for v in features.values()
              if not isinstance(v, str | bytes) and np.ndim(v) > 0]
    return np.broadcast_shapes(*shapes) if shapes else None


class ConstantModel:
    """A fixed maker probability ``p``, whatever the book.

    It reads no features; given array features anyway (as a pipeline may pass), it returns
    an array of ``p`` of their broadcast shape so that arrays in still give an array out.

    >>> ConstantModel(0.3).predict()
    0.3
    >>> ConstantModel(0.3).predict(order_size=np.array([1.0, 2.0]))
    array([0.3, 0.3])
    """

    name = "constant"
    features: tuple[str, ...] = ()

    def __init__(self, p: float) -> None:
        if isinstance(p, str | bool) or not isinstance(p, int | float | np.floating):
            raise TypeError(f"p must be a number in [0, 1], got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def predict(self, **features: Any) -> Dual:
        shape = _array_shape(features)
        return self.p if shape is None else np.full(shape, self.p)

    def __repr__(self) -> str:
        return f"ConstantModel({self.p!r})"


ORDER_TYPES = ("market", "limit")


def maker_probability(order_type: str, model: MakerTakerModel, **features: Any) -> Dual:
    """Share of an order expected to fill as maker: 0.0 for a market order (all taker),
    ``model.predict`` of the model's features for a limit order at the best price.

    ``features`` may hold more than the model reads; a missing one raises ValueError. For a
    market order with array features the answer is an array of zeros.

    >>> maker_probability("market", QueueShareModel())
    0.0
    >>> maker_probability("limit", QueueShareModel(), own_best_size=3.0, opp_best_size=5.0,
    ...                   order_size=2.0, spread_ticks=1.0)
    0.5
    """
    if order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {order_type!r}")
    if order_type == "market":
        shape = _array_shape(features)
        return 0.0 if shape is None else np.zeros(shape)
    missing = [f for f in model.features if f not in features]
    if missing:
        raise ValueError(f"model {model.name!r} needs features {list(model.features)}; "
                         f"missing {missing}")
    return model.predict(**{f: features[f] for f in model.features})


__all__ = ["FILL_FEATURES", "ORDER_TYPES", "QUEUE_MODELS", "BookPath", "ConstantModel",
           "FeatureParams", "FillFeatureState", "MakerTakerModel", "QueueShareModel",
           "TradePath", "label_fills", "maker_probability"]
