"""Percentile summaries: one dict of count, mean, percentiles, min, max ... of some values.

Every summary simlab prints or stores (cost statistics, per-tick latency, sweep metrics, the
synthetic market's spread, the monitor's latency histograms) is laid out by
:func:`summary_row` and, for an array of values, computed by :func:`percentile_summary`:
NumPy's default (linear) percentile of the values, NaN when there is none. Each caller names
the statistics it reports and their order (``stats``), so its output keeps its keys.

Base layer: imports nothing of simlab.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: The percentiles of the cost summaries.
DEFAULT_PERCENTILES = (50, 90, 99)
#: ``"p"`` in ``stats`` stands for the percentiles, in their order.
DEFAULT_STATS = ("count", "mean", "std", "min", "p", "max")
_NAN = math.nan


def percentile_name(q: float) -> str:
    """The key of the ``q``-th percentile: ``"p"`` and ``q`` in its shortest form.

    >>> percentile_name(50), percentile_name(99.9), percentile_name(50.0)
    ('p50', 'p99.9', 'p50')
    """
    return f"p{q:g}"


def finite(values: Any) -> np.ndarray:
    """The finite values of ``values`` as a float64 array.

    >>> finite([1, float("nan"), float("inf"), 2]).tolist()
    [1.0, 2.0]
    """
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def percentiles(values: Any, qs: Sequence[float] = DEFAULT_PERCENTILES) -> list[float]:
    """The ``qs``-th percentiles (0..100, linear interpolation) of ``values`` as floats,
    NaN for each when there is no value.

    >>> percentiles([1.0, 2.0, 3.0, 4.0], (50, 100)), percentiles([], (50,))
    ([2.5, 4.0], [nan])
    """
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return [_NAN] * len(qs)
    return [float(v) for v in np.percentile(a, qs)]


def summary_row(values: Mapping[str, Any], qs: Sequence[float], pcts: Sequence[float],
                stats: Sequence[str] = DEFAULT_STATS, *, prefix: str = "",
                suffix: str = "") -> dict[str, Any]:
    """The summary dict: for each name of ``stats`` in order, ``values[name]``, and for
    ``"p"`` the percentiles ``pcts`` of ``qs`` (named by :func:`percentile_name`). Keys are
    ``prefix + name + suffix``; ``count`` takes no suffix (a unit: ``_us``).

    >>> summary_row({"count": 3, "max": 9.0}, (50, 99), (2.0, 8.0), ("count", "p", "max"),
    ...             suffix="_us")
    {'count': 3, 'p50_us': 2.0, 'p99_us': 8.0, 'max_us': 9.0}
    """
    out: dict[str, Any] = {}
    for name in stats:
        if name == "p":
            for q, v in zip(qs, pcts, strict=True):
                out[f"{prefix}{percentile_name(q)}{suffix}"] = v
        else:
            out[f"{prefix}{name}{'' if name == 'count' else suffix}"] = values[name]
    return out


#: How each statistic is computed from a non-empty float64 array.
_STATS: dict[str, Callable[[np.ndarray], Any]] = {
    "count": len,
    "mean": lambda a: float(a.mean()),
    "std": lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0,
    "min": lambda a: float(a.min()),
    "max": lambda a: float(a.max()),
    "median": lambda a: float(np.median(a)),
}


def percentile_summary(values: Any, percentiles: Sequence[float] = DEFAULT_PERCENTILES, *,
                       stats: Sequence[str] = DEFAULT_STATS, only_finite: bool = True,
                       scale: float = 1.0, prefix: str = "", suffix: str = ""
                       ) -> dict[str, Any]:
    """Count, mean, std (ddof 1; 0 for one value), min, the ``percentiles`` (0..100) and max
    of ``values`` (``stats`` picks which and their order; ``"median"`` is also known), after
    dividing by ``scale`` (1e3: ns -> us); of its finite values unless ``only_finite`` is
    False. With no value the count is 0 and every other statistic NaN. Keys as
    :func:`summary_row` names them.

    >>> s = percentile_summary([1.0, 2.0, 3.0, float("nan")])
    >>> s["count"], s["std"], s["p90"], list(s)
    (3, 1.0, 2.8, ['count', 'mean', 'std', 'min', 'p50', 'p90', 'p99', 'max'])
    >>> percentile_summary([1000, 3000], (50,), stats=("p", "max"), scale=1e3, suffix="_us")
    {'p50_us': 2.0, 'max_us': 3.0}
    """
    a = np.asarray(values, dtype=np.float64)
    if scale != 1.0:
        a = a / scale
    if only_finite:
        a = finite(a)
    if not len(a):
        vals: dict[str, Any] = {k: (0 if k == "count" else _NAN) for k in stats}
        return summary_row(vals, percentiles, [_NAN] * len(percentiles), stats,
                           prefix=prefix, suffix=suffix)
    pcts = ([float(v) for v in np.percentile(a, percentiles)] if "p" in stats
            else [_NAN] * len(percentiles))
    vals = {k: _STATS[k](a) for k in stats if k != "p"}
    return summary_row(vals, percentiles, pcts, stats, prefix=prefix, suffix=suffix)


__all__ = ["DEFAULT_PERCENTILES", "DEFAULT_STATS", "finite", "percentile_name",
           "percentile_summary", "percentiles", "summary_row"]
