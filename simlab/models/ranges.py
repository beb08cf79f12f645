"""What a trained model has seen: the training range of each input, the weak flag, and the
warnings a user gets when a model is used outside what it can stand behind.

A linear model extrapolates without complaint: a maker/taker model trained on 0.01 BTC
orders and asked about 1 BTC returns a number (4e-17, say) that nothing in its data
supports. So training records, per input, the ``min``, ``p1``, ``p99`` and ``max`` of the
training rows (:func:`value_ranges`, kept in ``info["training"]["ranges"]``), and
:class:`RangeCheck` warns (:class:`ModelRangeWarning`, once per input and check) when a
value falls outside ``[min, max]`` by more than a quarter of the training span
(:data:`SPAN_SLACK`). A model that did not beat its baseline out of sample
carries ``info["weak"] = True``; :func:`warn_if_weak` says so whenever it is used.

Both warnings are Python :mod:`warnings`, so they reach the terminal (stderr) by default,
``pytest.warns`` sees them, and ``warnings.simplefilter("error", ModelRangeWarning)``
turns them into errors. Model files written before ranges were recorded have none: they
still load, unchecked (:func:`simlab.sim.model_use.model_guard` says so once).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

#: The statistics kept per input, in order.
RANGE_KEYS = ("min", "p1", "p99", "max")
#: A value is outside when beyond ``[min, max]`` by more than this share of the training
#: span ``max - min``: new data always has a few ticks just past the extremes seen in
#: training, and a warning on each would teach people to ignore it. A constant input (span
#: 0, e.g. the order size) has no slack: any other value is outside.
SPAN_SLACK = 0.25
#: Relative slack on the bounds, so a value equal to a bound up to rounding is inside.
_SLACK = 1e-9


class ModelRangeWarning(UserWarning):
    """A model is used on inputs outside its training range (or cannot be checked)."""


class WeakModelWarning(UserWarning):
    """A model that did not beat its baseline out of sample (saved with ``--allow-weak``)."""


def value_ranges(columns: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per column: ``min``, ``p1``, ``p99``, ``max`` of its finite values and their count
    ``n`` (the statistics are None when there are none).

    >>> value_ranges({"x": [1.0, 2.0, 3.0, float("nan")]})["x"]["max"]
    3.0
    >>> value_ranges({"x": [0.5]})["x"]
    {'min': 0.5, 'p1': 0.5, 'p99': 0.5, 'max': 0.5, 'n': 1}
    """
    out: dict[str, dict[str, float]] = {}
    for name, values in columns.items():
        a = np.asarray(values, dtype=np.float64).ravel()
        a = a[np.isfinite(a)]
        if not len(a):
            out[name] = {**dict.fromkeys(RANGE_KEYS), "n": 0}
            continue
        p1, p99 = np.percentile(a, (1, 99))
        out[name] = {"min": float(a.min()), "p1": float(p1), "p99": float(p99),
                     "max": float(a.max()), "n": len(a)}
    return out


def training_ranges(model: Any) -> dict[str, dict[str, float]] | None:
    """The ranges a model file records (``info["training"]["ranges"]``), None when it has
    none (a model written before simlab recorded them).

    >>> training_ranges(object()) is None
    True
    """
    info = getattr(model, "info", None) or {}
    r = (info.get("training") or {}).get("ranges") if isinstance(info, Mapping) else None
    return r if isinstance(r, Mapping) and r else None


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def describe_model(model: Any, what: str) -> str:
    """How warnings name a model: its kind, instrument and training span.

    >>> describe_model(object(), "maker/taker model")
    'maker/taker model'
    """
    info = getattr(model, "info", None) or {}
    tr = info.get("training") or {}
    bits = [b for b in (info.get("inst"), f"trained {tr['first']} .. {tr['last']}"
                        if tr.get("first") and tr.get("last") else None) if b]
    return f"{what} ({', '.join(bits)})" if bits else what


class RangeCheck:
    """Compare a model's inputs with its training ranges; warn once per input.

    ``check`` takes a mapping of input name to a float (one tick) or an array (a batch);
    inputs the model has no range for are ignored, NaN values too. The first time an
    input falls outside ``[min, max]`` (widened by :data:`SPAN_SLACK` of the span) a
    :class:`ModelRangeWarning` names the input, its
    training range and the value (for a batch: the most extreme value and how many of the
    values are outside; one tick at a time, the first value found). ``outside`` keeps what
    was found, for a summary. A model without recorded ranges (``has_ranges`` False)
    checks nothing.

    >>> from simlab.models.logistic import LogisticFillModel
    >>> m = LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0, info={"training": {
    ...     "ranges": {"x": {"min": 0.0, "p1": 0.0, "p99": 1.0, "max": 1.0, "n": 10}}}})
    >>> c = RangeCheck(m, "maker/taker model")
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     c.check({"x": 0.5}); c.check({"x": 3.0}); c.check({"x": 4.0})
    >>> len(w), sorted(c.outside)
    (1, ['x'])
    """

    def __init__(self, model: Any, what: str = "model") -> None:
        self.name = describe_model(model, what)
        ranges = training_ranges(model)
        self.has_ranges = ranges is not None
        self.limits: dict[str, tuple[float, float]] = {}
        self.stats: dict[str, Mapping[str, Any]] = {}
        for k, r in (ranges or {}).items():
            lo, hi = r.get("min"), r.get("max")
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                slack = SPAN_SLACK * (hi - lo) + _SLACK * max(abs(lo), abs(hi), 1e-300)
                self.limits[k] = (lo - slack, hi + slack)
                self.stats[k] = r
        self.outside: dict[str, dict[str, Any]] = {}
        # the inputs not yet found outside: the per-tick loop shrinks to nothing
        self._live = [(k, lo, hi) for k, (lo, hi) in self.limits.items()]

    def _warn(self, text: str) -> None:
        warnings.warn(text, ModelRangeWarning, stacklevel=4)

    def check(self, values: Mapping[str, Any]) -> None:
        """Warn (once per input) about values outside the training range."""
        for k, lo, hi in self._live:
            v = values.get(k)
            if v is None:
                continue
            if type(v) is float:  # one tick (the live path): two comparisons
                if v < lo or v > hi:
                    self._found(k, v, 1, 1)
                continue
            if isinstance(v, np.ndarray):
                a = v[np.isfinite(v)] if v.dtype.kind == "f" else v
                if not a.size:
                    continue
                vmin, vmax = float(a.min()), float(a.max())
                if vmin >= lo and vmax <= hi:
                    continue
                worst = vmax if vmax > hi and (vmax - hi >= lo - vmin) else vmin
                n_out, n = int(np.count_nonzero((a < lo) | (a > hi))), int(a.size)
            else:
                if not (v < lo or v > hi):  # NaN: not comparable, not a finding
                    continue
                worst, n_out, n = float(v), 1, 1
            self._found(k, worst, n_out, n)

    def _found(self, k: str, value: float, n_out: int, n: int) -> None:
        r = self.stats[k]
        self.outside[k] = {"value": value, "share": n_out / n, "outside": n_out, "checked": n,
                           "min": r["min"], "max": r["max"]}
        self._live = [t for t in self._live if t[0] != k]
        where = "" if n == 1 else f" (on {n_out:,} of the {n:,} values checked)"
        self._warn(f"{self.name}: input {k!r} = {_fmt(value)} is outside its training range "
                   f"[{_fmt(r['min'])}, {_fmt(r['max'])}] (p1 {_fmt(r['p1'])}, p99 "
                   f"{_fmt(r['p99'])}){where}; the model extrapolates there and its "
                   "output is not supported by its data")


def weak_reason(model: Any) -> str | None:
    """Why a model is marked weak (``info["weak"]``), None when it is not.

    >>> weak_reason(object()) is None
    True
    """
    info = getattr(model, "info", None) or {}
    if not (isinstance(info, Mapping) and info.get("weak")):
        return None
    return str(info.get("weak_reason") or "it did not beat its baseline out of sample")


def warn_if_weak(model: Any, what: str = "model") -> bool:
    """Warn (:class:`WeakModelWarning`) when ``model`` is marked weak; True if it is.

    >>> warn_if_weak(object())
    False
    """
    reason = weak_reason(model)
    if reason is None:
        return False
    warnings.warn(f"{describe_model(model, what)} is marked weak: {reason}; its numbers are "
                  "no better than the baseline's", WeakModelWarning, stacklevel=3)
    return True


__all__ = ["RANGE_KEYS", "ModelRangeWarning", "RangeCheck", "WeakModelWarning",
           "describe_model", "training_ranges", "value_ranges", "warn_if_weak", "weak_reason"]
