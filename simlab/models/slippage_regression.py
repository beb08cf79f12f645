"""Slippage regression: the mean and chosen quantiles of slippage (bps) as linear functions
of book features (size relative to depth, spread, volatility, imbalance ...).

Following the shared ``cost-models.md``: ordinary least squares for the mean
(scikit-learn ``LinearRegression``) and linear quantile regression for the tails
(``QuantileRegressor``, pinball loss, no penalty, HiGHS interior point), both on features
standardised with the training mean and standard deviation. The fitted model keeps only
plain numbers; predictions are dual-mode (floats per tick or arrays per batch, bitwise
identical, see :mod:`simlab.models._dual`) and it saves as JSON
(:mod:`simlab.models.persist`). Check the quantiles out of sample with :meth:`coverage`:
the share of outcomes at or below the predicted ``q``-quantile should be close to ``q``.

Limits: linear in the features (transform them first, e.g. ``sqrt(size / depth)``, if the
relation is not); separately fitted quantile lines can cross far from the training data
(``q90`` below ``q50``); nothing forces them apart. Quantile regression is a linear
program whose cost grows quickly with the rows, so at most ``max_rows`` rows (a seeded,
hence reproducible, random subsample) fit the quantiles; the mean uses every row. The
default solver is HiGHS's interior point method with crossover (``"highs-ipm"``): on
10,000 to 20,000 rows it returned the same coefficients, bit for bit, as the automatic
choice (``"highs"``, which picks the dual simplex here) 8 to 15 times faster; 50,000 rows
and three features take about 3 s for the median and 9 s for the 99 % quantile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._dual import Dual
from .logistic import (
    _check_linear,
    _design,
    _frame_values,
    _linear,
    _real,
    _reals,
    _values,
)
from .metrics import _vector, pinball_loss, quantile_coverage

DEFAULT_QUANTILES = (0.5, 0.9, 0.99)
_SOLVERS = ("highs-ipm", "highs-ds", "highs")


@cache  # predict asks for the keys on every tick
def quantile_name(q: float) -> str:
    """The prediction key of quantile ``q``: ``"q"`` and the percentage.

    >>> quantile_name(0.5), quantile_name(0.99), quantile_name(0.995)
    ('q50', 'q99', 'q99.5')
    """
    return f"q{round(q * 100.0, 8):g}"


def _quantiles(quantiles: Any) -> tuple[float, ...]:
    if isinstance(quantiles, str | bytes | Mapping) or not isinstance(
            quantiles, Sequence | np.ndarray):
        raise TypeError(f"quantiles must be a sequence of numbers in (0, 1), got "
                        f"{quantiles!r}")
    qs = tuple(_real(f"quantiles[{i}]", q) for i, q in enumerate(quantiles))
    if not qs:
        raise ValueError("quantiles must hold at least one quantile, got none")
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantiles must be in (0, 1), got {q!r}")
    names = [quantile_name(q) for q in qs]
    if len(set(names)) != len(names):
        raise ValueError(f"quantiles must be distinct, got {list(qs)}")
    return qs


@dataclass(frozen=True, slots=True)
class SlippageRegression:
    """Mean and quantiles of slippage, each ``intercept + sum(coef_i * ((x_i - mean_i) /
    scale_i))`` over ``features`` in order (the same standardisation for all).

    ``coef``/``intercept`` are the mean model; ``quantiles`` (strictly increasing) and, one
    row per quantile, ``q_coef``/``q_intercept`` the quantile models. ``info`` is free
    metadata, kept as plain JSON types (NaN becomes None); :meth:`fit` adds
    ``info["fit"]``. ``predict`` returns a dict ``{"mean": ..., "q50": ..., ...}`` (keys
    from :func:`quantile_name`), floats for float inputs and arrays for arrays, bitwise
    identical; a NaN feature gives NaN.

    >>> m = SlippageRegression(features=("size_to_depth",), mean=(0.5,), scale=(0.25,),
    ...                        coef=(2.0,), intercept=3.0, quantiles=(0.5, 0.9),
    ...                        q_coef=((2.0,), (4.0,)), q_intercept=(2.5, 6.0))
    >>> m.predict(size_to_depth=0.75)
    {'mean': 5.0, 'q50': 4.5, 'q90': 10.0}
    >>> m.predict(size_to_depth=np.array([0.5, 1.0]))["q90"]
    array([ 6., 14.])
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    quantiles: tuple[float, ...]
    q_coef: tuple[tuple[float, ...], ...]
    q_intercept: tuple[float, ...]
    info: dict = field(default_factory=dict, hash=False)

    name: ClassVar[str] = "slippage_regression"

    def __post_init__(self) -> None:
        _check_linear(self)
        feats = self.features
        qs = _quantiles(self.quantiles)
        if any(b <= a for a, b in pairwise(qs)):
            raise ValueError(f"quantiles must be strictly increasing, got {list(qs)}")
        rows = tuple(self.q_coef) if isinstance(self.q_coef, Sequence | np.ndarray) else None
        if rows is None or len(rows) != len(qs):
            raise ValueError(f"q_coef must hold one row of coefficients per quantile "
                             f"({len(qs)}), got {self.q_coef!r}")
        object.__setattr__(self, "quantiles", qs)
        object.__setattr__(self, "q_coef", tuple(
            _reals(f"q_coef[{i}]", r, len(feats)) for i, r in enumerate(rows)))
        if isinstance(self.q_intercept, str | bytes) or not isinstance(
                self.q_intercept, Sequence | np.ndarray) or len(self.q_intercept) != len(qs):
            raise ValueError(f"q_intercept must hold one value per quantile ({len(qs)}), "
                             f"got {self.q_intercept!r}")
        object.__setattr__(self, "q_intercept", _reals("q_intercept", self.q_intercept,
                                                       len(qs)))

    @property
    def outputs(self) -> tuple[str, ...]:
        """The prediction keys, ``("mean", "q50", ...)``.

        >>> SlippageRegression(("x",), (0.0,), (1.0,), (1.0,), 0.0, (0.9,), ((1.0,),),
        ...                    (1.0,)).outputs
        ('mean', 'q90')
        """
        return ("mean", *(quantile_name(q) for q in self.quantiles))

    def predict(self, /, **features: Any) -> dict[str, Dual]:
        xs = _values(self.name, self.features, features)
        out = {"mean": _linear(xs, self.mean, self.scale, self.coef, self.intercept)}
        for q, c, b in zip(self.quantiles, self.q_coef, self.q_intercept, strict=True):
            out[quantile_name(q)] = _linear(xs, self.mean, self.scale, c, b)
        return out

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Predictions for every row of ``df`` (it must hold the feature columns), one
        column per output, on ``df``'s index.

        >>> m = SlippageRegression(("x",), (0.0,), (1.0,), (2.0,), 1.0, (0.9,), ((3.0,),),
        ...                        (2.0,))
        >>> m.predict_frame(pd.DataFrame({"x": [0.0, 1.0]}))
           mean  q90
        0   1.0  2.0
        1   3.0  5.0
        """
        cols = _frame_values(self.name, self.features, df)
        pred = self.predict(**cols)
        return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in pred.items()},
                            index=df.index)

    def coverage(self, X: pd.DataFrame, y: Any) -> pd.DataFrame:
        """Out-of-sample check of the quantile models on rows ``X`` with outcomes ``y``: per
        quantile, the ``coverage`` (share of ``y <= prediction``, close to ``quantile`` for
        a good model), ``n`` and the mean ``pinball_loss``.

        >>> m = SlippageRegression(("x",), (0.0,), (1.0,), (1.0,), 0.0, (0.5,), ((1.0,),),
        ...                        (0.0,))
        >>> m.coverage(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), [1.0, 0.0, 2.0, 0.0])
           quantile  coverage  n  pinball_loss
        0       0.5      0.75  4         0.625
        """
        _design(X, self.features)  # same checks as fitting: columns present, finite
        ya = _finite_target(y, len(X))
        pred = self.predict_frame(X)
        rows = [{"quantile": q, "coverage": quantile_coverage(ya, pred[quantile_name(q)]),
                 "n": int(ya.size), "pinball_loss": pinball_loss(ya, pred[quantile_name(q)], q)}
                for q in self.quantiles]
        return pd.DataFrame(rows, columns=["quantile", "coverage", "n", "pinball_loss"])

    @classmethod
    def fit(cls, X: pd.DataFrame, y: Any, features: Sequence[str] | None = None,
            quantiles: Sequence[float] = DEFAULT_QUANTILES, max_rows: int = 50_000,
            seed: int = 0, info: Mapping[str, Any] | None = None,
            solver: str = "highs-ipm") -> SlippageRegression:
        """Fit on the rows of ``X`` (a DataFrame; ``features`` = its columns by default) and
        finite outcomes ``y`` (slippage, bps): the standardisation and the mean model on
        every row; the quantile models (given in any order, kept sorted) on every row, or on
        ``max_rows`` rows drawn without replacement with ``numpy.random.default_rng(seed)``
        when there are more. ``solver`` goes to ``QuantileRegressor`` (any of its HiGHS
        solvers). ``info`` is copied into the model with ``info["fit"]`` set.

        >>> X = pd.DataFrame({"x": np.arange(8.0)})
        >>> m = SlippageRegression.fit(X, 1.0 + 2.0 * X["x"], quantiles=(0.5,))
        >>> round(m.predict(x=10.0)["mean"], 9), round(m.predict(x=10.0)["q50"], 9)
        (21.0, 21.0)
        """
        from simlab.extras import require

        sklearn = require("sklearn", feature="training a slippage model")
        from sklearn.linear_model import LinearRegression, QuantileRegressor
        from sklearn.preprocessing import StandardScaler

        qs = tuple(sorted(_quantiles(quantiles)))
        if isinstance(max_rows, bool) or not isinstance(max_rows, int | np.integer) or (
                max_rows < 1):
            raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        if info is not None and not isinstance(info, Mapping):
            raise TypeError(f"info must be a dict, got {type(info).__name__}")
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
        names, Xa = _design(X, features)
        ya = _finite_target(y, len(Xa))
        scaler = StandardScaler().fit(Xa)
        Z = scaler.transform(Xa)
        lin = LinearRegression().fit(Z, ya)
        n = ya.size
        rows = (np.arange(n) if n <= max_rows else
                np.sort(np.random.default_rng(int(seed)).choice(n, size=int(max_rows),
                                                                replace=False)))
        q_coef, q_int = [], []
        for q in qs:
            qr = QuantileRegressor(quantile=q, alpha=0.0, solver=solver).fit(Z[rows], ya[rows])
            q_coef.append(tuple(qr.coef_))
            q_int.append(float(qr.intercept_))
        fit_info = {"method": "sklearn StandardScaler + LinearRegression (mean) + "
                              "QuantileRegressor(alpha=0)", "solver": solver,
                    "n": int(n), "n_quantile_fit": int(rows.size), "max_rows": int(max_rows),
                    "seed": int(seed), "sklearn_version": sklearn.__version__}
        return cls(features=names, mean=tuple(scaler.mean_), scale=tuple(scaler.scale_),
                   coef=tuple(lin.coef_), intercept=float(lin.intercept_), quantiles=qs,
                   q_coef=tuple(q_coef), q_intercept=tuple(q_int),
                   info={**(info or {}), "fit": fit_info})


def _finite_target(y: Any, n: int) -> np.ndarray:
    ya = _vector("y", y)
    if ya.size != n:
        raise ValueError(f"X and y must have the same length, got {n} and {ya.size}")
    bad = ~np.isfinite(ya)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"y must be finite, got {float(ya[i])!r} at index {i}")
    return ya


__all__ = ["DEFAULT_QUANTILES", "SlippageRegression", "quantile_name"]
