"""Out-of-sample scores for the learned models: probabilistic classification (maker fill or
not) and quantile regression (slippage).

Classification, for labels ``y`` in {0, 1} and predicted probabilities ``p`` in [0, 1]:

- :func:`log_loss`: mean ``-(y log p + (1 - y) log(1 - p))``, lower is better; ``p`` is
  clipped to ``[eps, 1 - eps]`` (``eps`` = float64 machine epsilon, as scikit-learn does),
  so a confident miss costs about 36 rather than infinity;
- :func:`brier_score`: mean ``(p - y)^2``, lower is better;
- :func:`roc_auc`: probability that a random positive is ranked above a random negative
  (ties count half); NaN, with an :class:`UndefinedMetricWarning` saying why, when ``y``
  holds one class only;
- :func:`reliability_curve`: the calibration table (predicted vs observed fill rate by bin);
- :func:`classification_metrics`: all of it next to the constant model that always predicts
  the TRAIN fill rate, the baseline a fitted model must beat, with skill scores
  ``1 - model / base`` (0 = no better than the base rate, 1 = perfect).

Quantile regression, for outcomes ``y`` and predicted ``q``-quantiles ``pred``:

- :func:`pinball_loss`: mean ``max(q (y - pred), (q - 1) (y - pred))``, lower is better;
- :func:`quantile_coverage`: the share of ``y <= pred``, which should be close to ``q``.

Inputs are 1-D array-likes of equal, non-zero length without NaN; anything else raises
ValueError (or TypeError for non-numbers) naming the input.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from simlab.extras import require


class UndefinedMetricWarning(RuntimeWarning):
    """A score is undefined for these data (e.g. ROC AUC with one class) and is NaN."""


def _vector(name: str, x: Any) -> np.ndarray:
    """``x`` as a non-empty 1-D float64 array without NaN, or a clear error."""
    if x is None or isinstance(x, str | bytes):
        raise TypeError(f"{name} must be a 1-D array of numbers, got {x!r}")
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a 1-D array of numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty")
    nan = np.isnan(a)
    if nan.any():
        raise ValueError(f"{name} must not hold NaN, got NaN at index {int(np.argmax(nan))}")
    return a


def _pair(yname: str, y: Any, pname: str, p: Any) -> tuple[np.ndarray, np.ndarray]:
    ya, pa = _vector(yname, y), _vector(pname, p)
    if ya.size != pa.size:
        raise ValueError(f"{yname} and {pname} must have the same length, got "
                         f"{ya.size} and {pa.size}")
    return ya, pa


def _labels(y: np.ndarray) -> np.ndarray:
    bad = (y != 0.0) & (y != 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"y must hold labels 0 or 1, got {float(y[i])!r} at index {i}")
    return y


def _probs(p: np.ndarray) -> np.ndarray:
    bad = (p < 0.0) | (p > 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"p must be probabilities in [0, 1], got {float(p[i])!r} at index {i}")
    return p


def _binary(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    ya, pa = _pair("y", y, "p", p)
    return _labels(ya), _probs(pa)


def log_loss(y: Any, p: Any) -> float:
    """Mean negative log-likelihood of labels ``y`` under probabilities ``p`` (nats).

    >>> log_loss([0, 1, 1, 0], [0.5, 0.5, 0.5, 0.5]) == math.log(2)
    True
    >>> log_loss([1], [1.5])
    Traceback (most recent call last):
    ValueError: p must be probabilities in [0, 1], got 1.5 at index 0
    """
    # lazy: sklearn takes ~1 s to import
    sk_log_loss = require("sklearn.metrics", feature="log_loss").log_loss

    ya, pa = _binary(y, p)
    # labels=[0, 1]: a test set holding one class is still a binary problem
    return float(sk_log_loss(ya, pa, labels=[0.0, 1.0]))


def brier_score(y: Any, p: Any) -> float:
    """Mean squared error of the probabilities ``p`` against labels ``y``.

    >>> brier_score([1, 0, 1, 0], [0.5, 0.5, 1.0, 0.0])
    0.125
    """
    ya, pa = _binary(y, p)
    return float(np.mean((pa - ya) ** 2))


def roc_auc(y: Any, p: Any) -> float:
    """Area under the ROC curve of scores ``p`` for labels ``y`` (ties count half).

    NaN, with an :class:`UndefinedMetricWarning` giving the reason, when ``y`` holds one
    class only: there is no pair of a positive and a negative to rank.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9])
    1.0
    >>> roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    0.5
    """
    roc_auc_score = require("sklearn.metrics", feature="roc_auc").roc_auc_score

    ya, pa = _binary(y, p)
    n_pos = int(ya.sum())
    if n_pos in (0, ya.size):
        warnings.warn(f"roc_auc undefined: y holds only class {int(ya[0])} "
                      f"({ya.size} rows), no positive/negative pair to rank; returning NaN",
                      UndefinedMetricWarning, stacklevel=2)
        return math.nan
    return float(roc_auc_score(ya, pa))


def reliability_curve(y: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Calibration table: ``bins`` equal-width bins of ``p`` over [0, 1]; per non-empty bin
    its edges ``lo``/``hi`` (``lo <= p < hi``, the last bin also holds ``p == 1``), the
    count ``n``, the mean predicted probability ``mean_pred`` and the observed share of
    positives ``frac_pos``. A calibrated model has ``frac_pos`` close to ``mean_pred``.

    >>> reliability_curve([0, 1, 0, 1, 1], [0.1, 0.1, 0.8, 0.9, 1.0], bins=2)
        lo   hi  n  mean_pred  frac_pos
    0  0.0  0.5  2        0.1  0.500000
    1  0.5  1.0  3        0.9  0.666667
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    ya, pa = _binary(y, p)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    idx = np.minimum(np.searchsorted(edges, pa, side="right") - 1, bins - 1)
    n = np.bincount(idx, minlength=bins)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(idx, weights=pa, minlength=bins) / n
        frac_pos = np.bincount(idx, weights=ya, minlength=bins) / n
    return pd.DataFrame({"lo": edges[:-1][keep], "hi": edges[1:][keep], "n": n[keep],
                         "mean_pred": mean_pred[keep], "frac_pos": frac_pos[keep]})


def classification_metrics(y: Any, p: Any, base_rate: float) -> dict[str, float]:
    """The model's scores on (``y``, ``p``) beside those of the constant model predicting
    ``base_rate``, which must be the fill rate of the TRAINING data (using the test rate
    would hand the baseline knowledge of the future).

    Keys: ``n``, ``n_pos``, ``rate`` (the test fill rate), ``base_rate``; ``log_loss``,
    ``brier``, ``auc``; ``base_log_loss``, ``base_brier``, ``base_auc`` (0.5: a constant
    ranks nothing; NaN with a single class); ``log_loss_skill`` and ``brier_skill``
    (``1 - model / base``; positive = better than the base rate, NaN when the base score
    is 0).

    >>> m = classification_metrics([0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75], base_rate=0.5)
    >>> m["brier"], m["base_brier"], m["brier_skill"], m["auc"], m["base_auc"]
    (0.0625, 0.25, 0.75, 1.0, 0.5)
    """
    ya, pa = _binary(y, p)
    if isinstance(base_rate, bool) or not isinstance(base_rate, int | float | np.number):
        raise TypeError(f"base_rate must be a number in [0, 1], got {base_rate!r}")
    r = float(base_rate)
    if not 0.0 <= r <= 1.0:  # NaN fails this too
        raise ValueError(f"base_rate must be in [0, 1], got {base_rate!r}")
    base = np.full(ya.size, r)
    out: dict[str, float] = {"n": int(ya.size), "n_pos": int(ya.sum()),
                             "rate": float(ya.mean()), "base_rate": r}
    out["log_loss"], out["base_log_loss"] = log_loss(ya, pa), log_loss(ya, base)
    out["brier"], out["base_brier"] = brier_score(ya, pa), brier_score(ya, base)
    out["auc"] = roc_auc(ya, pa)
    with warnings.catch_warnings():
        # one warning (from the model's AUC) is enough: the base AUC is NaN for the same reason
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        out["base_auc"] = roc_auc(ya, base)
    out["log_loss_skill"] = _skill(out["log_loss"], out["base_log_loss"])
    out["brier_skill"] = _skill(out["brier"], out["base_brier"])
    return out


def _skill(model: float, base: float) -> float:
    return math.nan if base == 0.0 else 1.0 - model / base


def _quantile_level(q: Any) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float | np.number):
        raise TypeError(f"q must be a number in (0, 1), got {q!r}")
    if not 0.0 < float(q) < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    return float(q)


def pinball_loss(y: Any, pred: Any, q: float) -> float:
    """Mean pinball (quantile) loss of ``pred`` as the ``q``-quantile of ``y``:
    ``max(q (y - pred), (q - 1) (y - pred))`` averaged. The true conditional quantile
    minimises its expectation.

    >>> pinball_loss([1.0, 3.0], [2.0, 2.0], q=0.9)  # (0.1 * 1 + 0.9 * 1) / 2
    0.5
    """
    qq = _quantile_level(q)
    ya, pa = _pair("y", y, "pred", pred)
    d = ya - pa
    return float(np.mean(np.maximum(qq * d, (qq - 1.0) * d)))


def quantile_coverage(y: Any, pred: Any) -> float:
    """Share of outcomes at or below the predicted quantile: close to ``q`` for a good
    ``q``-quantile model.

    >>> quantile_coverage([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 5.0])
    0.75
    """
    ya, pa = _pair("y", y, "pred", pred)
    return float(np.mean(ya <= pa))


__all__ = ["UndefinedMetricWarning", "brier_score", "classification_metrics", "log_loss",
           "pinball_loss", "quantile_coverage", "reliability_curve", "roc_auc"]
