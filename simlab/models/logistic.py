"""A logistic maker/taker model fitted to labelled data, and a time-ordered train/test split.

:class:`LogisticFillModel` is the baseline learned model of the shared ``cost-models.md``:
the probability that a limit order at the best price fills passively within the horizon,
``p = 1 / (1 + exp(-z))`` with ``z`` linear in standardised features. It satisfies
:class:`~simlab.models.maker_taker.MakerTakerModel`, so it plugs into the cost pipeline
like the queue-share default. Fitting uses scikit-learn (``StandardScaler`` then an L2
``LogisticRegression``, lbfgs, deterministic); the fitted model keeps only plain numbers,
so it predicts without scikit-learn objects and saves as JSON
(:mod:`simlab.models.persist`).

Dual mode (see :mod:`simlab.models._dual`): ``z`` uses only ``+ - * /`` in a fixed order,
and the exponential is ``math.exp`` in both modes (applied element by element to arrays:
``np.exp`` may differ from it in the last bit), so a per-tick call with floats and a
replay call with arrays give the same bits.

The helpers shared with :mod:`simlab.models.slippage_regression` (validation of the
fitted numbers, the dual-mode linear predictor, JSON-like ``info``) live here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from simlab.jsonsafe import json_safe

from ._dual import Dual, coerce, quiet
from .metrics import _labels, _vector  # the metrics' own label checks and messages

# -- helpers shared by the linear models ------------------------------------------------------


def _real(name: str, v: Any) -> float:
    """``v`` as a finite Python float, or a clear error."""
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {f!r}")
    return f


def _reals(name: str, values: Any, n: int) -> tuple[float, ...]:
    """``values`` as a tuple of ``n`` finite floats."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(
            values, Iterable | np.ndarray):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    out = tuple(_real(f"{name}[{i}]", v) for i, v in enumerate(values))
    if len(out) != n:
        raise ValueError(f"{name} must have one value per feature ({n}), got {len(out)}")
    return out


def _feature_names(features: Any) -> tuple[str, ...]:
    if isinstance(features, str | bytes) or not isinstance(features, Iterable):
        raise TypeError(f"features must be a sequence of names, got {features!r}")
    names = tuple(features)
    if not names:
        raise ValueError("features must name at least one feature, got none")
    for f in names:
        if not isinstance(f, str) or not f:
            raise TypeError(f"features must be non-empty strings, got {f!r}")
    dup = sorted({f for f in names if names.count(f) > 1})
    if dup:
        raise ValueError(f"features must be unique, got {dup} more than once")
    return names


def _standardisation(features: tuple[str, ...], mean: Any, scale: Any
                     ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    m = _reals("mean", mean, len(features))
    s = _reals("scale", scale, len(features))
    for f, v in zip(features, s, strict=True):
        if v <= 0.0:
            raise ValueError(f"scale must be > 0, got {v!r} for feature {f!r}")
    return m, s


def _json_info(obj: Any) -> Any:
    """``obj`` as plain JSON types (:func:`simlab.jsonsafe.json_safe`, strict), so that a
    model saved and loaded compares equal; a value JSON cannot hold is a TypeError."""
    return json_safe(obj, strict=True, path="info")


def _values(name: str, features: tuple[str, ...], given: Mapping[str, Any]
            ) -> list[float] | tuple[Dual, ...]:
    """The model's features from ``given``: a list when all are Python floats (the per-tick
    path), else a tuple of floats and float64 arrays (coerced)."""
    try:
        xs = [given[f] for f in features]
    except KeyError:
        missing = [f for f in features if f not in given]
        raise ValueError(f"model {name!r} needs features {list(features)}; "
                         f"missing {missing}") from None
    for x in xs:  # the per-tick case, all floats, skips coercion
        if type(x) is not float:
            return coerce(**{f: given[f] for f in features})
    return xs


def _linear(xs: Sequence[Dual], mean: Sequence[float], scale: Sequence[float],
            coef: Sequence[float], intercept: float) -> Dual:
    """``intercept + sum(coef_i * ((x_i - mean_i) / scale_i))``, summed in feature order,
    the same operations in the same order whether the ``x_i`` are floats or arrays.

    ``xs`` comes from :func:`_values`: a list means all Python floats (the per-tick path).
    """
    z: Dual = intercept
    if type(xs) is list:  # per tick, all floats (see _values): Python floats never warn
        for x, m, s, c in zip(xs, mean, scale, coef, strict=False):  # equal by construction
            z = z + c * ((x - m) / s)
        return z
    with quiet(*xs):
        for x, m, s, c in zip(xs, mean, scale, coef, strict=True):
            z = z + c * ((x - m) / s)
    return z


def _design(X: Any, features: Any, who: str = "X") -> tuple[tuple[str, ...], np.ndarray]:
    """Feature names and the float64 design matrix for fitting: a DataFrame holding every
    feature, numeric and finite."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{who} must be a pandas DataFrame, got {type(X).__name__}")
    names = _feature_names(X.columns if features is None else features)
    missing = [f for f in names if f not in X.columns]
    if missing:
        raise ValueError(f"{who} lacks feature columns {missing}; it has {list(X.columns)}")
    if len(X) == 0:
        raise ValueError(f"{who} must have rows, got none")
    cols = []
    for f in names:
        try:
            a = np.asarray(X[f], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{who} column {f!r} must be numeric, got dtype "
                            f"{X[f].dtype}") from None
        bad = ~np.isfinite(a)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{who} column {f!r} must be finite, got {float(a[i])!r} at "
                             f"row {i}")
        cols.append(a)
    return names, np.column_stack(cols)


def _frame_values(name: str, features: tuple[str, ...], df: Any) -> dict[str, np.ndarray]:
    """The model's feature columns of ``df`` as float64 arrays (extra columns ignored)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise ValueError(f"model {name!r} needs features {list(features)}; missing {missing}")
    out = {}
    for f in features:
        try:
            out[f] = np.asarray(df[f], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"df column {f!r} must be numeric, got dtype "
                            f"{df[f].dtype}") from None
    return out


def _fit_labels(y: Any, n: int) -> np.ndarray:
    ya = _labels(_vector("y", y))
    if ya.size != n:
        raise ValueError(f"X and y must have the same length, got {n} and {ya.size}")
    return ya


def _check_linear(m: Any) -> None:
    """Check and normalise, in place, the fields every standardised linear model has
    (``features``, ``mean``, ``scale``, ``coef``, ``intercept``, ``info``) of the frozen
    dataclass ``m``."""
    feats = _feature_names(m.features)
    mean, scale = _standardisation(feats, m.mean, m.scale)
    if not isinstance(m.info, Mapping):
        raise TypeError(f"info must be a dict, got {type(m.info).__name__}")
    object.__setattr__(m, "features", feats)
    object.__setattr__(m, "mean", mean)
    object.__setattr__(m, "scale", scale)
    object.__setattr__(m, "coef", _reals("coef", m.coef, len(feats)))
    object.__setattr__(m, "intercept", _real("intercept", m.intercept))
    object.__setattr__(m, "info", _json_info(m.info))


# -- the logistic model ---------------------------------------------------------------------


def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:  # exp(v) > max float: numpy would give inf, so do we
        return math.inf


def _sigmoid(z: Dual) -> Dual:
    """``1 / (1 + exp(-z))`` with ``math.exp`` in both modes (bitwise identical)."""
    if isinstance(z, np.ndarray):
        neg = (-z).ravel().tolist()
        try:
            e = list(map(math.exp, neg))
        except OverflowError:
            e = list(map(_exp, neg))
        ea = np.array(e, dtype=np.float64).reshape(z.shape)
        return 1.0 / (1.0 + ea)
    return 1.0 / (1.0 + _exp(-z))


@dataclass(frozen=True, slots=True)
class LogisticFillModel:
    """Passive-fill probability ``p = 1 / (1 + exp(-z))``, with
    ``z = intercept + sum(coef_i * ((x_i - mean_i) / scale_i))`` over ``features`` in order.

    ``mean``/``scale`` standardise each feature (from the training data), ``coef`` and
    ``intercept`` are the fitted logistic regression on the standardised features. ``info``
    is free metadata (horizon, order size, queue assumption, training range, metrics ...),
    kept as plain JSON types (NaN becomes None) so that it saves and loads unchanged;
    :meth:`fit` adds its own under ``info["fit"]`` (``rate``: the training fill rate, the
    base rate to compare against).

    ``predict`` is dual-mode: Python floats in, float out (the live path, once per tick);
    arrays in, array out (replay), bitwise identical. A NaN feature gives NaN. Features
    beyond ``features`` are ignored; a missing one raises ValueError.

    >>> m = LogisticFillModel(features=("imbalance", "spread_ticks"), mean=(0.0, 1.0),
    ...                       scale=(0.5, 1.0), coef=(1.0, -0.5), intercept=0.0)
    >>> m.predict(imbalance=0.0, spread_ticks=1.0)
    0.5
    >>> m.predict(imbalance=np.array([0.0, 0.5]), spread_ticks=1.0).round(6)
    array([0.5     , 0.731059])
    >>> m.predict(spread_ticks=1.0)
    Traceback (most recent call last):
    ValueError: model 'logistic' needs features ['imbalance', 'spread_ticks']; missing ['imbalance']
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    info: dict = field(default_factory=dict, hash=False)

    name: ClassVar[str] = "logistic"

    def __post_init__(self) -> None:
        _check_linear(self)

    def predict(self, /, **features: Any) -> Dual:
        xs = _values(self.name, self.features, features)
        z = _linear(xs, self.mean, self.scale, self.coef, self.intercept)
        return _sigmoid(z)

    def predict_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Probabilities for every row of ``df`` (it must hold the feature columns).

        >>> m = LogisticFillModel(("x",), (0.0,), (1.0,), (2.0,), 0.0)
        >>> m.predict_frame(pd.DataFrame({"x": [0.0, 100.0], "other": ["a", "b"]}))
        array([0.5, 1. ])
        """
        cols = _frame_values(self.name, self.features, df)
        return np.asarray(self.predict(**cols), dtype=np.float64)

    @classmethod
    def fit(cls, X: pd.DataFrame, y: Any, features: Sequence[str] | None = None,
            C: float = 1.0, info: Mapping[str, Any] | None = None) -> LogisticFillModel:
        """Fit on the rows of ``X`` (a DataFrame; ``features`` = its columns by default) and
        labels ``y`` in {0, 1} (1 = filled as maker): ``StandardScaler``, then
        ``LogisticRegression(C=C, solver="lbfgs")`` (L2 penalty; smaller ``C`` = stronger).

        Features must be finite (drop or fill missing values first); ``y`` must hold both
        classes. ``info`` is copied into the model, with ``info["fit"]`` set to the fit's
        own facts (``n``, ``n_pos``, ``rate``, ``C``, ``n_iter``, ``sklearn_version``).

        >>> X = pd.DataFrame({"x": [-2.0, -1.0, 1.0, 2.0, -0.5, 0.5]})
        >>> m = LogisticFillModel.fit(X, [0, 0, 1, 1, 1, 0])
        >>> m.coef[0] > 0, m.info["fit"]["rate"]
        (True, 0.5)
        """
        from simlab.extras import require

        sklearn = require("sklearn", feature="training a maker/taker model")
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        c = _real("C", C)
        if c <= 0.0:
            raise ValueError(f"C must be > 0, got {C!r}")
        if info is not None and not isinstance(info, Mapping):
            raise TypeError(f"info must be a dict, got {type(info).__name__}")
        names, Xa = _design(X, features)
        ya = _fit_labels(y, len(Xa))
        n_pos = int(ya.sum())
        if n_pos in (0, ya.size):
            raise ValueError(f"y must hold both classes to fit, got only {int(ya[0])} "
                             f"({ya.size} rows)")
        scaler = StandardScaler().fit(Xa)
        clf = LogisticRegression(C=c, solver="lbfgs", tol=1e-8, max_iter=1000)
        clf.fit(scaler.transform(Xa), ya)
        fit_info = {"method": "sklearn StandardScaler + LogisticRegression(lbfgs, L2)",
                    "C": c, "n": int(ya.size), "n_pos": n_pos, "rate": n_pos / ya.size,
                    "n_iter": int(np.max(clf.n_iter_)),
                    "sklearn_version": sklearn.__version__}
        return cls(features=names, mean=tuple(scaler.mean_), scale=tuple(scaler.scale_),
                   coef=tuple(clf.coef_[0]), intercept=float(clf.intercept_[0]),
                   info={**(info or {}), "fit": fit_info})


# -- time-ordered split -----------------------------------------------------------------------


class TimeSplit(NamedTuple):
    """A train/test split in time order: every training row is earlier than every test row.
    ``split_time`` is the first test time."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    split_time: Any


def fit_time_split(X: pd.DataFrame, y: Any, time: Any, test_fraction: float = 0.3
                   ) -> TimeSplit:
    """Split labelled rows by time for out-of-sample evaluation: the earliest rows train,
    the latest ``test_fraction`` (about) test. No shuffling: shuffled splits leak the
    future into training, because neighbouring ticks are strongly correlated.

    The cut is a time: every row at or after ``split_time`` is a test row, so rows sharing
    a timestamp never straddle it (the test share may differ from ``test_fraction`` by
    those ties). Parts are returned in time order (stable for ties), ``X`` keeping its
    index. Raises ValueError if a part would be empty or hold one class only, since
    neither fitting nor AUC makes sense then.

    >>> X = pd.DataFrame({"x": [5.0, 1.0, 4.0, 2.0, 3.0]})
    >>> s = fit_time_split(X, [1, 0, 0, 1, 0], time=[50, 10, 40, 20, 30], test_fraction=0.4)
    >>> s.X_train["x"].tolist(), s.y_train.tolist(), s.X_test["x"].tolist(), s.split_time
    ([1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [4.0, 5.0], 40)
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    f = _real("test_fraction", test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n = len(X)
    ya = _fit_labels(y, n)
    if isinstance(getattr(time, "dtype", None), pd.DatetimeTZDtype):
        time = pd.DatetimeIndex(time).tz_convert("UTC").tz_localize(None)  # compare as UTC
    t = np.asarray(time)
    if t.ndim != 1 or t.size != n:
        raise ValueError(f"time must be 1-D with one value per row of X ({n}), got shape "
                         f"{t.shape}")
    if t.dtype.kind not in "iufmM":
        raise TypeError(f"time must be numbers or datetimes, got dtype {t.dtype}")
    if pd.isna(t).any():
        raise ValueError(f"time must not hold NaN/NaT, got one at row "
                         f"{int(np.argmax(pd.isna(t)))}")
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cut = ts[min(n - 1, max(0, math.floor(n * (1.0 - f))))]
    n_train = int(np.searchsorted(ts, cut, side="left"))
    if n_train == 0 or n_train == n:
        raise ValueError(f"time split at {cut!r} leaves an empty "
                         f"{'train' if n_train == 0 else 'test'} part ({n} rows, "
                         f"test_fraction={f})")
    tr, te = order[:n_train], order[n_train:]
    for part, idx in (("train", tr), ("test", te)):
        pos = int(ya[idx].sum())
        if pos in (0, idx.size):
            raise ValueError(f"time split: the {part} part holds only class "
                             f"{int(ya[idx][0])} ({idx.size} rows); need both 0 and 1")
    split_time = pd.Timestamp(cut) if t.dtype.kind == "M" else (
        pd.Timedelta(cut) if t.dtype.kind == "m" else cut.item())
    return TimeSplit(X.iloc[tr], ya[tr], X.iloc[te], ya[te], split_time)


__all__ = ["LogisticFillModel", "TimeSplit", "fit_time_split"]
