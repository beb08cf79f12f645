"""Values made plain JSON: what every summary, manifest and model file is written as.

:func:`json_safe` walks a value and returns it with plain Python types only: NaN and
infinities become ``None`` (JSON has neither, and ``json.dumps`` would write ``NaN``), numpy
numbers and arrays become ints, floats and lists, tuples lists, dates and times ISO strings.
By default anything else becomes its ``str`` (a summary is printed whatever it holds); with
``strict=True`` it is a TypeError naming where it sits (a model's ``info`` must load back
equal). :func:`to_json` is the indented JSON text of a summary.

Base module: imports nothing of simlab, nor pandas (the recorder keeps pandas out of its
process: a Series is recognised by its type's name).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_safe(obj: Any, *, strict: bool = False, path: str = "value") -> Any:
    """``obj`` as plain JSON types: dicts (str keys), lists, str, int, float (finite), bool,
    None. NaN and infinities -> None; numpy scalars -> int/float/bool; arrays, tuples and
    (unless ``strict``) pandas Series -> lists; dates, times and timestamps -> ISO strings;
    ``numpy.datetime64`` -> its str; dataclasses -> dicts (unless ``strict``). Anything else
    is its ``str``, or with ``strict`` a TypeError (as is a key that is not a string) naming
    its place from ``path``.

    >>> json_safe({"p50": float("nan"), "n": [1, 2.5, float("inf")], "t": (True, None)})
    {'p50': None, 'n': [1, 2.5, None], 't': [True, None]}
    >>> json_safe({"x": {1, 2}}, strict=True, path="info")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: info['x'] must hold only JSON-like values (str, numbers, bool, None, ...
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)  # np.bool_ is not Integral: it is a np.generic, below
    if isinstance(obj, numbers.Real):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                if strict:
                    raise TypeError(f"{path} keys must be strings, got {k!r}")
                k = str(k)
            out[k] = json_safe(v, strict=strict, path=f"{path}[{k!r}]")
        return out
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):  # pd.Timestamp is a datetime
        return obj.isoformat()
    if isinstance(obj, np.datetime64):
        return str(obj)
    if isinstance(obj, np.generic):  # np.bool_, np.str_ ...: as the Python value
        return json_safe(obj.item(), strict=strict, path=path)
    if isinstance(obj, list | tuple | np.ndarray) or (not strict and _is_series(obj)):
        items = obj if isinstance(obj, list | tuple) else obj.tolist()
        if not isinstance(items, list | tuple):  # a 0-d array's tolist() is its value
            return json_safe(items, strict=strict, path=path)
        return [json_safe(v, strict=strict, path=f"{path}[{i}]") for i, v in enumerate(items)]
    if not strict and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_safe(dataclasses.asdict(obj), path=path)
    if strict:
        raise TypeError(f"{path} must hold only JSON-like values (str, numbers, bool, None, "
                        f"lists, dicts with str keys, dates), got {type(obj).__name__}: "
                        f"{obj!r}")
    return str(obj)


def _is_series(obj: Any) -> bool:
    t = type(obj)
    return t.__name__ == "Series" and t.__module__.startswith("pandas")


def to_json(obj: Any, indent: int = 2) -> str:
    """``obj`` (:func:`json_safe`) as indented JSON text ending in a newline.

    >>> print(to_json({"net_bps": {"mean": 1.5, "p99": float("nan")}, "n": 3}))
    {
      "net_bps": {
        "mean": 1.5,
        "p99": null
      },
      "n": 3
    }
    <BLANKLINE>
    """
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False) + "\n"


__all__ = ["json_safe", "to_json"]
