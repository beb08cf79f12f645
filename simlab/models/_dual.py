"""Dual-mode arithmetic: one formula, called with Python floats (live, once per tick) or with
numpy float64 arrays (replay, once per batch), giving bitwise identical results.

Why this works: ``+ - * /`` and ``abs`` on IEEE-754 doubles are correctly rounded both in
CPython and in numpy's element-wise loops, so the same expression, evaluated in the same
order, gives the same bits in both modes. What breaks it is anything else: transcendental
functions (``math.exp`` and ``np.exp`` may differ in the last bit), reductions, fused
multiply-adds, or Python raising where numpy returns NaN. So element-wise cost functions
use only the four operations, ``abs``, comparisons, and the two helpers here:

- :func:`where` selects (``numpy.where`` on arrays, a conditional expression on scalars);
- :func:`safe_div` divides, giving NaN where the divisor is zero in both modes (CPython
  raises ZeroDivisionError, numpy warns and returns inf or NaN).

:func:`coerce` turns the inputs into floats (scalar mode) or float64 arrays (array mode);
:func:`check_range` validates them the same way in both modes; :func:`quiet` silences
numpy's floating-point warnings in array mode, since scalar arithmetic never warns. The
scalar path never calls numpy: numpy scalar arithmetic is slow and returns numpy scalars,
not floats.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any

import numpy as np

Dual = float | np.ndarray


def _one(name: str, x: Any) -> Dual:
    if type(x) is float:
        return x
    if x is None or isinstance(x, str | bytes):
        raise TypeError(f"{name} must be a number or an array of numbers, got {x!r}")
    if isinstance(x, numbers.Number | np.generic):
        try:
            return float(x)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number, got {x!r}") from None
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, got {x!r}") from None
    return float(a) if a.ndim == 0 else a


def coerce(**values: Any) -> tuple[Dual, ...]:
    """The values, in the order given, as Python floats or float64 arrays.

    Scalars (int, float, Decimal, numpy scalars, 0-d arrays) become Python floats; anything
    array-like (ndarray, list, pandas Series) becomes a float64 ndarray. Mixed calls are
    fine: floats broadcast against arrays exactly as float64 scalars would.

    >>> coerce(price=100, size=[1, 2])
    (100.0, array([1., 2.]))
    >>> coerce(price="100")
    Traceback (most recent call last):
    TypeError: price must be a number or an array of numbers, got '100'
    """
    vals = tuple(values.values())
    for v in vals:  # the per-tick case, all floats, returns at once
        if type(v) is not float:
            return tuple(_one(k, v) for k, v in values.items())
    return vals


def is_array(*xs: Any) -> bool:
    """True when any of ``xs`` is a numpy array (array mode).

    >>> is_array(1.0, 2.0), is_array(1.0, coerce(x=[2.0])[0])
    (False, True)
    """
    return any(isinstance(x, np.ndarray) for x in xs)


_NO_ERRSTATE = contextlib.nullcontext()


def quiet(*xs: Any) -> contextlib.AbstractContextManager:
    """A context in which array arithmetic neither warns nor raises (overflow to inf, inf * 0
    and the like), as scalar arithmetic does not; a no-op in scalar mode.

    >>> with quiet(np.array([1e308])) as _:
    ...     np.array([1e308]) * 10
    array([inf])
    """
    return np.errstate(all="ignore") if is_array(*xs) else _NO_ERRSTATE


def where(cond: Any, a: Dual, b: Dual) -> Dual:
    """``a`` where ``cond`` holds, else ``b``: element-wise in array mode.

    >>> where(1.0 > 0.0, 1.0, 2.0)
    1.0
    >>> where(np.array([True, False]), 1.0, np.array([5.0, 6.0]))
    array([1., 6.])
    """
    if is_array(cond, a, b):
        return np.where(cond, a, b).astype(np.float64, copy=False)
    return a if cond else b


def safe_div(a: Dual, b: Dual) -> Dual:
    """``a / b``, NaN where ``b == 0`` (either sign), in both modes; never raises or warns.

    >>> safe_div(1.0, 4.0), safe_div(1.0, 0.0), safe_div(0.0, -0.0)
    (0.25, nan, nan)
    >>> safe_div(np.array([1.0, 1.0]), np.array([4.0, 0.0]))
    array([0.25,  nan])
    """
    if is_array(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.divide(a, b)
        return np.where(b == 0, np.nan, q)
    return math.nan if b == 0 else a / b


def check_range(name: str, x: Dual, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """Raise ValueError naming ``name`` if any element is below ``lo`` (at or below it with
    ``lo_open``) or above ``hi``. NaN passes: it propagates to a NaN result instead.

    Both modes raise on the same values, so a batch that holds a bad row fails like the
    tick that holds it would.

    >>> check_range("size", 1.0, lo=0.0)
    >>> check_range("size", np.array([1.0, -2.0]), lo=0.0)
    Traceback (most recent call last):
    ValueError: size must be >= 0.0, got -2.0 (at index 1)
    """
    def bad(v: Dual) -> Any:
        out = False
        if lo is not None:
            out = (v <= lo) if lo_open else (v < lo)
        if hi is not None:
            out = out | (v > hi)
        return out

    if isinstance(x, np.ndarray):
        mask = bad(x)
        if np.any(mask):
            i = int(np.flatnonzero(mask)[0])
            raise ValueError(f"{name} must be {_bounds(lo, hi, lo_open)}, got "
                             f"{float(x.flat[i])!r} (at index {i})")
    elif bad(x):
        raise ValueError(f"{name} must be {_bounds(lo, hi, lo_open)}, got {x!r}")


def _bounds(lo: float | None, hi: float | None, lo_open: bool) -> str:
    parts = [] if lo is None else [f"{'>' if lo_open else '>='} {lo}"]
    return " and ".join(parts + ([] if hi is None else [f"<= {hi}"]))


__all__ = ["Dual", "check_range", "coerce", "is_array", "quiet", "safe_div", "where"]
