"""Saving and loading fitted models as JSON (never pickle: a model file is data that anyone
can read, diff and trust; unpickling runs code).

The schema, version 1, one JSON object::

    {
      "schema": "simlab.model",
      "schema_version": 1,
      "kind": "maker_taker_logistic" | "slippage_regression",
      "simlab_version": "0.1.0",             # informational: who wrote it
      "features": ["imbalance", ...],        # names, in the order of the coefficients
      "standardize": {"mean": [...], "scale": [...]},   # one per feature, scale > 0
      "info": {...},                         # free metadata (horizon, training range ...)

      # kind "maker_taker_logistic" (LogisticFillModel):
      "coef": [...], "intercept": 0.0,       # p = 1 / (1 + exp(-z)), z on standardised x

      # kind "slippage_regression" (SlippageRegression):
      "mean_model": {"coef": [...], "intercept": 0.0},
      "quantile_models": [{"quantile": 0.5, "coef": [...], "intercept": 0.0}, ...]
                                             # strictly increasing quantiles
    }

The feature ``i`` enters as ``coef[i] * ((x[i] - mean[i]) / scale[i])``.

Two ``info`` entries are read back by simlab, and checked on load when present (files
written before they existed load without them):

- ``info["training"]["ranges"]``: per input (each feature and the order size,
  ``order_size`` or ``notional``) ``{"min", "p1", "p99", "max", "n"}`` of the training rows;
  the cost pipeline warns when the model is used outside them
  (:mod:`simlab.models.ranges`);
- ``info["weak"]``: true for a model that did not beat its baseline out of sample, saved
  anyway (``simlab train --allow-weak``), with ``info["weak_reason"]`` and
  ``info["baseline"]`` (the scores); using it warns.

Bytes are deterministic: keys sorted, two-space indent, UTF-8, a trailing newline, no
timestamps; floats are written with Python's shortest round-trip ``repr``, so they load
back bit for bit and the same model always gives the same file. JSON has no NaN, so
models keep ``info`` as plain JSON types (NaN becomes None when the model is built).

Loading checks everything and raises :class:`ModelFileError` naming the file and the
problem: not UTF-8 JSON, duplicate keys, a non-finite number (``NaN``, ``Infinity``,
``1e999``), a wrong ``schema``/``kind``/``schema_version``, missing or unknown keys, wrong
types, coefficient lists whose length differs from ``features``, ``scale <= 0``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from simlab._version import __version__

from .logistic import LogisticFillModel
from .slippage_regression import SlippageRegression

SCHEMA = "simlab.model"
SCHEMA_VERSION = 1
KINDS = {"maker_taker_logistic": LogisticFillModel, "slippage_regression": SlippageRegression}

Model = LogisticFillModel | SlippageRegression

_COMMON = ("schema", "schema_version", "kind", "simlab_version", "features", "standardize",
           "info")
_KEYS = {"maker_taker_logistic": {*_COMMON, "coef", "intercept"},
         "slippage_regression": {*_COMMON, "mean_model", "quantile_models"}}


class ModelFileError(ValueError):
    """A model file (or dict) that cannot be loaded; the message names the source and the
    problem."""


def model_to_dict(model: Model) -> dict[str, Any]:
    """The model as a JSON-ready dict (the schema in the module docstring).

    >>> m = LogisticFillModel(("x",), (0.0,), (2.0,), (1.5,), -0.25)
    >>> d = model_to_dict(m)
    >>> d["kind"], d["standardize"], d["coef"], d["intercept"]
    ('maker_taker_logistic', {'mean': [0.0], 'scale': [2.0]}, [1.5], -0.25)
    """
    if not isinstance(model, LogisticFillModel | SlippageRegression):
        raise TypeError(f"model must be a LogisticFillModel or SlippageRegression, got "
                        f"{type(model).__name__}")
    head = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "simlab_version": __version__, "features": list(model.features),
            "standardize": {"mean": list(model.mean), "scale": list(model.scale)},
            "info": copy.deepcopy(model.info)}
    if isinstance(model, LogisticFillModel):
        return {**head, "kind": "maker_taker_logistic", "coef": list(model.coef),
                "intercept": model.intercept}
    return {**head, "kind": "slippage_regression",
            "mean_model": {"coef": list(model.coef), "intercept": model.intercept},
            "quantile_models": [{"quantile": q, "coef": list(c), "intercept": b}
                                for q, c, b in zip(model.quantiles, model.q_coef,
                                                   model.q_intercept, strict=True)]}


def _encode(model: Model) -> bytes:
    text = json.dumps(model_to_dict(model), sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False)
    return (text + "\n").encode("utf-8")


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` as JSON (replacing the file atomically) and return the path.

    >>> import tempfile, pathlib
    >>> m = LogisticFillModel(("x",), (0.0,), (1.0,), (1.0,), 0.0, info={"horizon_s": 5})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(m, pathlib.Path(d) / "fill.json")
    ...     load_model(p) == m
    True
    """
    data = _encode(model)
    path = Path(path)
    # write beside the target, then rename: a reader never sees half a file
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by :func:`save_model`; ModelFileError (naming ``path``) if the
    file is not a valid simlab model file. A missing file raises FileNotFoundError.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "bad.json"
    ...     _ = p.write_text('{"schema": "other"}')
    ...     load_model(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    simlab.models.persist.ModelFileError: .../bad.json: schema must be 'simlab.model', got 'other'
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                         object_pairs_hook=_unique_keys)
    except _Bad as e:
        raise ModelFileError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: not JSON ({e.msg} at line {e.lineno} column "
                             f"{e.colno})") from None
    return model_from_dict(doc, source=str(path))


class _Bad(Exception):
    """A problem found while parsing (carried out of json.loads)."""


def _no_constant(name: str) -> Any:
    raise _Bad(f"non-finite number {name} (JSON has no NaN or Infinity)")


def _finite_float(s: str) -> float:
    f = float(s)
    if not math.isfinite(f):
        raise _Bad(f"non-finite number {s} (overflows a float)")
    return f


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        dup = sorted({k for k, _ in pairs if [p[0] for p in pairs].count(k) > 1})
        raise _Bad(f"duplicate keys {dup}")
    return d


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def model_from_dict(d: Any, source: str = "<dict>") -> Model:
    """The model described by ``d`` (as :func:`model_to_dict` makes), validated;
    ModelFileError naming ``source`` and the problem otherwise.

    >>> m = LogisticFillModel(("x",), (0.0,), (2.0,), (1.5,), -0.25)
    >>> model_from_dict(model_to_dict(m)) == m
    True
    >>> model_from_dict({**model_to_dict(m), "coef": [1.0, 2.0]})
    Traceback (most recent call last):
    simlab.models.persist.ModelFileError: <dict>: coef has 2 values for 1 features ['x']
    """
    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"{source}: {problem}")

    def num_list(where: str, v: Any) -> list[float]:
        if not isinstance(v, list) or not all(_is_num(x) for x in v):
            raise bad(f"{where} must be a list of numbers, got {v!r}")
        if len(v) != len(feats):
            raise bad(f"{where} has {len(v)} values for {len(feats)} features {feats}")
        for i, x in enumerate(v):  # a dict built in Python can hold NaN
            if not math.isfinite(x):
                raise bad(f"{where}[{i}] must be finite, got {x!r}")
        return v

    def number(where: str, v: Any) -> float:
        if not _is_num(v):
            raise bad(f"{where} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise bad(f"{where} must be finite, got {v!r}")
        return v

    def obj(where: str, v: Any, keys: set[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise bad(f"{where} must be a JSON object, got {type(v).__name__}")
        missing, extra = sorted(keys - v.keys()), sorted(v.keys() - keys)
        if missing:
            raise bad(f"{where} lacks keys {missing}")
        if extra:
            raise bad(f"{where} has unknown keys {extra}")
        return v

    if not isinstance(d, dict):
        raise bad(f"a model must be a JSON object, got {type(d).__name__}")
    if d.get("schema") != SCHEMA:
        raise bad(f"schema must be {SCHEMA!r}, got {d.get('schema')!r}")
    v = d.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool) or v != SCHEMA_VERSION:
        raise bad(f"unsupported schema_version {v!r} (this simlab reads {SCHEMA_VERSION})")
    kind = d.get("kind")
    if kind not in KINDS:
        raise bad(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    obj("the model", d, _KEYS[kind])
    if not isinstance(d["simlab_version"], str):
        raise bad(f"simlab_version must be a string, got {d['simlab_version']!r}")
    feats = d["features"]
    if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
        raise bad(f"features must be a list of strings, got {feats!r}")
    std = obj("standardize", d["standardize"], {"mean", "scale"})
    mean, scale = num_list("standardize.mean", std["mean"]), num_list("standardize.scale",
                                                                      std["scale"])
    if not isinstance(d["info"], dict):
        raise bad(f"info must be a JSON object, got {type(d['info']).__name__}")
    _check_trust(d["info"], bad)
    try:
        if kind == "maker_taker_logistic":
            return LogisticFillModel(features=tuple(feats), mean=mean, scale=scale,
                                     coef=num_list("coef", d["coef"]),
                                     intercept=number("intercept", d["intercept"]),
                                     info=d["info"])
        mm = obj("mean_model", d["mean_model"], {"coef", "intercept"})
        qms = d["quantile_models"]
        if not isinstance(qms, list) or not qms:
            raise bad(f"quantile_models must be a non-empty list, got {qms!r}")
        qms = [obj(f"quantile_models[{i}]", q, {"quantile", "coef", "intercept"})
               for i, q in enumerate(qms)]
        return SlippageRegression(
            features=tuple(feats), mean=mean, scale=scale,
            coef=num_list("mean_model.coef", mm["coef"]),
            intercept=number("mean_model.intercept", mm["intercept"]),
            quantiles=[number(f"quantile_models[{i}].quantile", q["quantile"])
                       for i, q in enumerate(qms)],
            q_coef=[num_list(f"quantile_models[{i}].coef", q["coef"])
                    for i, q in enumerate(qms)],
            q_intercept=[number(f"quantile_models[{i}].intercept", q["intercept"])
                         for i, q in enumerate(qms)],
            info=d["info"])
    except ModelFileError:
        raise
    except (TypeError, ValueError) as e:  # the model's own checks: lengths, scale > 0 ...
        raise bad(str(e)) from None


def _check_trust(info: dict[str, Any], bad: Any) -> None:
    """The entries of ``info`` simlab relies on to warn (ranges, the weak flag): a wrong
    shape would switch a warning off silently, so it is an error."""
    if "weak" in info and not isinstance(info["weak"], bool):
        raise bad(f"info.weak must be true or false, got {info['weak']!r}")
    training = info.get("training")
    ranges = training.get("ranges") if isinstance(training, dict) else None
    if ranges is None:
        return
    if not isinstance(ranges, dict):
        raise bad(f"info.training.ranges must be a JSON object, got {type(ranges).__name__}")
    for name, r in ranges.items():
        where = f"info.training.ranges[{name!r}]"
        if not isinstance(r, dict) or not {"min", "max"} <= r.keys():
            raise bad(f"{where} must be an object with min and max, got {r!r}")
        lo, hi = r["min"], r["max"]
        if (lo is None) != (hi is None) or (lo is not None and not (
                _is_num(lo) and _is_num(hi) and lo <= hi)):
            raise bad(f"{where} must have numbers min <= max (or both null), got "
                      f"min={lo!r}, max={hi!r}")


__all__ = ["KINDS", "SCHEMA", "SCHEMA_VERSION", "ModelFileError", "load_model",
           "model_from_dict", "model_to_dict", "save_model"]
