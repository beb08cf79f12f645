"""What a sweep runs: a grid or random specification, expanded into cells.

A :class:`SweepSpec` names the recordings, the instruments, and the parameters: ``grid``
(every combination of the listed values), ``random`` (``n`` draws from per-parameter
distributions, seeded) and ``fixed`` (one value for every cell). Parameters not named take
their defaults (:data:`PARAMS`). Cells are recordings x instruments x grid combinations x
random draws, in that nesting order, so the order is deterministic.

A :class:`Cell` carries its full parameter dict (defaults included) and an id: the first 16
hex digits of the SHA-256 of the recording, the instrument and that dict, as canonical JSON.
The simlab version is deliberately *not* in the id: a result stays reusable (a resumed
sweep skips it) after an upgrade that does not change the numbers. Every result row records
the version that computed it; to recompute after a change that does move the numbers, write
to a new output folder (or delete ``out/cells``).

The YAML form (``SweepSpec.from_yaml``; ``recordings`` and ``insts`` may come from the
command line instead)::

    recordings: [data/sample]
    insts: [BTC-USDT]
    grid:
      notional: [1000, 10000, 100000]
      side: [buy, sell]
    fixed:
      fee_tier: VIP1
    random:            # optional; combined with the grid as a product
      n: 20
      seed: 0
      params:
        sigma: {loguniform: [0.1, 10]}
        N: {int: [10, 60]}
        order_type: {choice: [market, limit]}
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random as _random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from simlab.extras import require
from simlab.sim.config import FIELDS, ConfigError, RunConfig, check_value, resolve, sweep_name


class SpecError(ValueError):
    """A sweep specification that cannot be run (the message names the input)."""


@dataclass(frozen=True)
class Param:
    """One sweepable parameter: its value kind (``str``, ``float``, ``int`` or ``time``,
    an ISO 8601 UTC string), default (None = not set) and meaning."""

    kind: str
    default: Any
    help: str


#: Fields of a run that are not swept: the instrument is a sweep axis of its own, a sweep
#: runs columnar and its metrics cover the complete ticks.
_NOT_SWEPT = ("inst", "mode", "include_incomplete")
#: Every parameter the cell runner understands, in result-column order: the fields of
#: :class:`~simlab.sim.config.RunConfig`, named by their published symbol where they have
#: one (``T``, ``N``, ``lam``: the names cell ids and result columns were made with), with
#: RunConfig's defaults. A grid may also name them by field (``impact_horizon``).
PARAMS: dict[str, Param] = {
    sweep_name(name): Param("str" if f.kind == "path" else f.kind, f.default, f.help)
    for name, f in FIELDS.items() if name not in _NOT_SWEPT}
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")
#: Parameters added after the first sweeps: left out of a cell's id while unset, so cells
#: computed before they existed keep their ids (a resumed sweep still skips them).
_ID_OPTIONAL = ("slippage_model",)
_SPEC_KEYS = ("recordings", "insts", "grid", "fixed", "random")
#: Bumped if the meaning of a cell's parameters changes, so old ids stop matching. 2: start
#: and end on exchange time by default (time_basis), metrics of complete fills only.
_ID_SCHEMA = "simlab.sweep.cell/2"


def _unknown(name: Any, where: str) -> SpecError:
    return SpecError(f"{where}: unknown parameter {name!r}; known: {', '.join(PARAMS)}")


def _time(value: Any, name: str) -> str:
    """A time as a canonical ISO 8601 UTC string (so equal times give equal cell ids)."""
    import pandas as pd

    from simlab.feed.source import to_ns

    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    try:
        ns = to_ns(value, name)
    except (ValueError, TypeError) as e:
        raise SpecError(str(e)) from None
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")


def normalize(name: str, value: Any, where: str = "parameters") -> Any:
    """``value`` checked and in canonical form for parameter ``name`` (ints as floats for
    float parameters, times as ISO strings...); SpecError naming both when it does not fit.

    >>> normalize("notional", 1000)
    1000.0
    >>> normalize("start", "2026-01-01T00:00:00+00:00")
    '2026-01-01T00:00:00Z'
    >>> normalize("side", "hold")
    Traceback (most recent call last):
    ...
    simlab.sweep.spec.SpecError: parameters: side must be one of ('buy', 'sell'), got 'hold'
    """
    key = param_key(name)
    if key is None:
        raise _unknown(name, where)
    if key == "impact" and value is None:
        return "none"
    if PARAMS[key].kind == "time" and value is not None:
        return _time(value, f"{where}: {key}")
    try:
        return check_value(resolve(key), value, key)
    except ConfigError as e:
        raise SpecError(f"{where}: {e}") from None


def param_key(name: Any) -> str | None:
    """The parameter ``name`` stands for (itself, or a RunConfig field's sweep name, e.g.
    ``impact_horizon`` is ``T``); None when it is neither.

    >>> param_key("impact_steps"), param_key("N"), param_key("size")
    ('N', 'N', None)
    """
    if not isinstance(name, str):
        return None
    if name in PARAMS:
        return name
    try:
        key = sweep_name(resolve(name))
    except KeyError:
        return None
    return key if key in PARAMS else None


def _keyed(values: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """``values`` by parameter name (fields named as RunConfig does, mapped); names that are
    no parameter, or two names of one, are problems."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # the name each parameter came by, for the message
    for name, v in values.items():
        key = param_key(name)
        if key is None:
            problems.append(str(_unknown(name, where)))
        elif key in out:
            problems.append(f"{where}: {given[key]!r} and {name!r} name the same parameter")
        else:
            out[key], given[key] = v, name
    return out


@dataclass(frozen=True)
class Dist:
    """A distribution to draw one parameter from: ``choice`` (a list of values),
    ``uniform`` / ``loguniform`` ([lo, hi], floats) or ``int`` ([lo, hi], inclusive).

    >>> Dist("int", (1, 3)).sample(_random.Random(0)) in (1, 2, 3)
    True
    """

    kind: str
    args: tuple

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise SpecError(f"distribution must be one of {DISTRIBUTIONS}, got {self.kind!r}")
        args = tuple(self.args) if isinstance(self.args, (list, tuple)) else None
        if not args:
            raise SpecError(f"{self.kind}: expected a non-empty list, got {self.args!r}")
        object.__setattr__(self, "args", args)
        if self.kind == "choice":
            return
        if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                     and math.isfinite(a) for a in args):
            raise SpecError(f"{self.kind}: expected [lo, hi] (two numbers), got {list(args)}")
        lo, hi = args
        if lo > hi:
            raise SpecError(f"{self.kind}: expected lo <= hi, got [{lo}, {hi}]")
        if self.kind == "loguniform" and lo <= 0:
            raise SpecError(f"loguniform: expected 0 < lo, got [{lo}, {hi}]")
        if self.kind == "int" and (lo != int(lo) or hi != int(hi)):
            raise SpecError(f"int: expected integer bounds, got [{lo}, {hi}]")

    def sample(self, rng: _random.Random) -> Any:
        """One draw (stdlib ``random``: its streams are stable across Python versions)."""
        if self.kind == "choice":
            return self.args[rng.randrange(len(self.args))]
        lo, hi = self.args
        if self.kind == "uniform":
            return rng.uniform(lo, hi)
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return rng.randint(int(lo), int(hi))


@dataclass(frozen=True)
class RandomSpec:
    """``n`` draws, seeded by ``seed``, of the parameters in ``params`` (name -> Dist);
    parameters are drawn in name order, so a dict's key order does not matter.

    >>> r = RandomSpec(2, 0, {"notional": Dist("loguniform", (100, 1e5))})
    >>> r.draws() == r.draws()
    True
    """

    n: int
    seed: int
    params: dict[str, Dist]

    def __post_init__(self) -> None:
        for k in ("n", "seed"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k == "n" else 0):
                raise SpecError(f"random: {k} must be an integer >= {1 if k == 'n' else 0}, "
                                f"got {v!r}")
        if not isinstance(self.params, Mapping) or not self.params:
            raise SpecError("random: params must map parameter names to distributions, e.g. "
                            "{notional: {loguniform: [100, 100000]}}")
        dists = {}
        for name, d in self.params.items():
            if param_key(name) is None:
                raise _unknown(name, "random")
            if param_key(name) in dists:
                raise SpecError(f"random: {name!r} and {param_key(name)!r} name the same "
                                "parameter")
            name = param_key(name)
            if not isinstance(d, Dist):
                raise SpecError(f"random: {name}: expected a Dist, got {d!r}")
            kind = PARAMS[name].kind
            where = f"random: {name}"
            if d.kind == "choice":
                d = Dist("choice", tuple(normalize(name, v, where) for v in d.args))
            elif kind not in ("float", "int") or (kind == "int" and d.kind != "int"):
                hint = "{int: [lo, hi]} or {choice: [...]}" if kind == "int" else "{choice: [...]}"
                raise SpecError(f"{where}: takes {kind} values: use {hint}, not {d.kind}")
            else:
                for v in d.args:
                    normalize(name, v, where)
            dists[name] = d
        object.__setattr__(self, "params", dists)

    def draws(self) -> list[dict[str, Any]]:
        """The ``n`` parameter dicts, in draw order."""
        rng = _random.Random(self.seed)
        names = sorted(self.params)
        return [{k: normalize(k, self.params[k].sample(rng), "random") for k in names}
                for _ in range(self.n)]

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed,
                "params": {k: {d.kind: list(d.args)} for k, d in self.params.items()}}

    @classmethod
    def from_dict(cls, d: Any) -> RandomSpec:
        if not isinstance(d, Mapping):
            raise SpecError(f"random: expected a mapping with n, seed, params, got {d!r}")
        extra = set(d) - {"n", "seed", "params"}
        if extra:
            raise SpecError(f"random: unknown keys {sorted(extra)}; expected n, seed, params")
        params = d.get("params")
        if not isinstance(params, Mapping) or not params:
            raise SpecError("random: params must map parameter names to distributions, e.g. "
                            "{notional: {loguniform: [100, 100000]}}")
        dists = {}
        for name, spec in params.items():
            if not isinstance(spec, Mapping) or len(spec) != 1:
                raise SpecError(f"random: {name}: expected one of {{choice: [...]}}, "
                                f"{{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, "
                                f"{{int: [lo, hi]}}, got {spec!r}")
            (kind, args), = spec.items()
            try:
                dists[name] = Dist(kind, args)
            except SpecError as e:
                raise SpecError(f"random: {name}: {e}") from None
        return cls(d.get("n", 0), d.get("seed", 0), dists)


@dataclass(frozen=True)
class Cell:
    """One run: a recording (path or URI, as given), an instrument and the full parameter
    dict (every name in :data:`PARAMS`). ``id`` is a stable hash of the three.

    >>> c = Cell("data/sample", "BTC-USDT", {**defaults(), "notional": 1000.0})
    >>> c.id == Cell("data/sample", "BTC-USDT", {**defaults(), "notional": 1000.0}).id
    True
    >>> len(c.id)
    16
    """

    recording: str
    inst: str
    params: dict[str, Any]
    id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        missing = [k for k in PARAMS if k not in self.params]
        extra = [k for k in self.params if k not in PARAMS]
        if missing or extra:
            raise SpecError(f"cell params: expected every parameter of PARAMS; missing "
                            f"{missing}, unknown {extra}")
        keyed = {k: v for k, v in self.params.items() if not (k in _ID_OPTIONAL and v is None)}
        blob = json.dumps([_ID_SCHEMA, self.recording, self.inst, keyed],
                          sort_keys=True, separators=(",", ":"), allow_nan=False)
        object.__setattr__(self, "id", hashlib.sha256(blob.encode()).hexdigest()[:16])

    def __hash__(self) -> int:
        return hash(self.id)


def defaults() -> dict[str, Any]:
    """Every parameter's default value.

    >>> defaults()["fee_tier"], defaults()["notional"]
    ('Lv1', None)
    """
    return {k: p.default for k, p in PARAMS.items()}


def config_values(inst: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~simlab.sim.config.RunConfig` fields of a cell's parameters: a market
    order's cell prices no maker/taker model (always taker: the model would not change a
    number), so a grid may cross models with order types.

    >>> config_values("BTC-USDT", {**defaults(), "notional": 1.0})["impact_horizon"]
    60.0
    """
    values = {resolve(k): v for k, v in params.items()}
    if values["order_type"] != "limit":
        values["maker_taker_model"] = None
    return {"inst": inst, **values}


def cell_config(cell: Cell, **kw: Any) -> RunConfig:
    """The RunConfig a cell prices (``kw``: fields given instead, e.g. loaded models).

    >>> cell_config(Cell("rec", "BTC-USDT", {**defaults(), "notional": 1.0})).order.quantity
    1.0
    """
    return RunConfig.build(names="sweep", **{**config_values(cell.inst, cell.params), **kw})


_BAD = object()  # a value that failed its check (already reported)


def _combinations(spec: SweepSpec) -> list[dict[str, Any]]:
    """The parameters of every combination of ``spec``: defaults, fixed, grid, random."""
    base = {**defaults(), **spec.fixed}
    combos = [dict(zip(spec.grid, vals, strict=True))
              for vals in itertools.product(*spec.grid.values())]
    draws = spec.random.draws() if spec.random else [{}]
    return [{**base, **c, **d} for c in combos for d in draws]


def _cell_problems(spec: SweepSpec) -> list[str]:
    """What would make a cell fail for its parameters (not its data), as RunConfig finds it:
    every distinct problem once, naming the parameter's grid key."""
    def where(name: str) -> str:
        return spec.where(sweep_name(name))

    found: dict[str, None] = {}
    for p in _combinations(spec):
        for inst in spec.insts:
            for e in RunConfig.problems(names="sweep", **config_values(inst, p)):
                found[e.under(where)] = None
    return list(found)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, (str, os.PathLike)) and str(v) for v in value):
        raise SpecError(f"{key}: expected a non-empty list of strings, got {value!r}")
    out = tuple(str(v) for v in value)
    if len(set(out)) != len(out):
        raise SpecError(f"{key}: duplicate entries in {list(out)}")
    return out


@dataclass(frozen=True)
class SweepSpec:
    """Recordings x instruments x ``grid`` x ``random`` draws, with ``fixed`` values; see
    the module docstring for the YAML form.

    >>> s = SweepSpec(["data/sample"], ["BTC-USDT"], grid={"notional": [1e3, 1e4],
    ...               "side": ["buy", "sell"]}, fixed={"fee_tier": "VIP1"})
    >>> [(c.params["notional"], c.params["side"]) for c in s.cells()][:3]
    [(1000.0, 'buy'), (1000.0, 'sell'), (10000.0, 'buy')]
    >>> SweepSpec(["rec"], ["BTC-USDT"], grid={"size": [1]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simlab.sweep.spec.SpecError: grid: unknown parameter 'size'; known: side, notional, ...
    """

    recordings: tuple[str, ...]
    insts: tuple[str, ...]
    grid: dict[str, tuple] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    random: RandomSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "recordings", _strings(self.recordings, "recordings"))
        object.__setattr__(self, "insts", _strings(self.insts, "insts"))
        for key in ("grid", "fixed"):
            if not isinstance(getattr(self, key), Mapping):
                raise SpecError(f"{key}: expected a mapping of parameter -> "
                                f"{'list of values' if key == 'grid' else 'value'}, "
                                f"got {getattr(self, key)!r}")
        # every problem of the spec is collected and reported at once, before any cell runs
        problems: list[str] = []

        def check(f: Any, *args: Any) -> Any:
            try:
                return f(*args)
            except SpecError as e:
                problems.append(str(e))
                return _BAD

        grid = {}
        for name, values in _keyed(self.grid, "grid", problems).items():
            if not isinstance(values, (list, tuple)) or not values:
                problems.append(f"grid: {name}: expected a non-empty list of values, got "
                                f"{values!r}")
                continue
            vals = tuple(v for v in (check(normalize, name, v, f"grid: {name}")
                                     for v in values) if v is not _BAD)
            if len(set(vals)) != len(vals):
                problems.append(f"grid: {name}: duplicate values in {list(vals)}")
            grid[name] = tuple(dict.fromkeys(vals))
        fixed = {}
        for name, v in _keyed(self.fixed, "fixed", problems).items():
            v = check(normalize, name, v, "fixed")
            if v is not _BAD:
                fixed[name] = v
        rnd = self.random
        if rnd is not None and not isinstance(rnd, RandomSpec):
            rnd = check(RandomSpec.from_dict, rnd)
            rnd = None if rnd is _BAD else rnd
        named = [list(grid), list(fixed), list(rnd.params) if rnd else []]
        for (a, na), (b, nb) in itertools.combinations(zip(("grid", "fixed", "random"), named,
                                                           strict=True), 2):
            both = sorted(set(na) & set(nb))
            if both:
                problems.append(f"parameter(s) {both} given in both {a} and {b}")
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "random", rnd)
        if not problems:
            # every combination must be runnable: order size, fees for the instrument's
            # type, models that load, a time range that is one
            problems += _cell_problems(self)
        if problems:
            raise SpecError(problems[0] if len(problems) == 1 else
                            f"the sweep spec has {len(problems)} problems:\n"
                            + "\n".join(f"  - {p}" for p in problems))

    def where(self, name: str) -> str:
        """Where parameter ``name``'s values come from, as error messages name it.

        >>> SweepSpec(["r"], ["X-Y"], grid={"notional": [1.0]}).where("notional")
        'grid: notional'
        """
        for key in ("grid", "fixed"):
            if name in getattr(self, key):
                return f"{key}: {name}"
        if self.random and name in self.random.params:
            return f"random: {name}"
        return f"{name} (default {PARAMS[name].default!r})"

    def cells(self) -> list[Cell]:
        """Every cell, in a deterministic order (duplicate random draws kept once)."""
        params = _combinations(self)  # each checked when the spec was made
        out, seen = [], set()
        for rec in self.recordings:
            for inst in self.insts:
                for p in params:
                    cell = Cell(rec, inst, p)
                    if cell.id not in seen:
                        seen.add(cell.id)
                        out.append(cell)
        return out

    def varying(self) -> list[str]:
        """The names of the parameters that differ between cells (grid and random).

        >>> SweepSpec(["r"], ["X-Y"], grid={"side": ["buy", "sell"]},
        ...           fixed={"notional": 1.0}).varying()
        ['side']
        """
        names = list(self.grid) + (sorted(self.random.params) if self.random else [])
        return [n for n in PARAMS if n in names]

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and dicts (YAML/JSON-ready); ``from_dict`` of it is equal."""
        d: dict[str, Any] = {"recordings": list(self.recordings), "insts": list(self.insts)}
        if self.grid:
            d["grid"] = {k: list(v) for k, v in self.grid.items()}
        if self.fixed:
            d["fixed"] = dict(self.fixed)
        if self.random:
            d["random"] = self.random.as_dict()
        return d

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The spec as YAML text; also written to ``path`` when given."""
        yaml = require("yaml", feature="sweep spec files")

        text = yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: Any, *, recordings: Any = None, insts: Any = None) -> SweepSpec:
        """From a mapping with keys recordings, insts, grid, fixed, random; ``recordings``
        and ``insts`` given here replace the mapping's.

        >>> SweepSpec.from_dict({"grid": {"notional": [100]}}, recordings="r",
        ...                     insts="BTC-USDT").recordings
        ('r',)
        """
        if not isinstance(d, Mapping):
            raise SpecError(f"sweep spec: expected a mapping with keys {', '.join(_SPEC_KEYS)}"
                            f", got {type(d).__name__}")
        extra = [k for k in d if k not in _SPEC_KEYS]
        if extra:
            raise SpecError(f"sweep spec: unknown keys {extra}; expected {', '.join(_SPEC_KEYS)}"
                            f" (parameters go under grid, fixed or random)")
        recordings = recordings if recordings is not None else d.get("recordings")
        insts = insts if insts is not None else d.get("insts")
        if recordings is None:
            raise SpecError("sweep spec: no recordings (give them in the file or as arguments)")
        if insts is None:
            raise SpecError("sweep spec: no insts (give them in the file or with --inst)")
        rnd = d.get("random")
        return cls(recordings, insts, grid=d.get("grid") or {}, fixed=d.get("fixed") or {},
                   random=RandomSpec.from_dict(rnd) if rnd is not None else None)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **kw: Any) -> SweepSpec:
        """Read a YAML spec file (errors name the file); ``kw`` as in :meth:`from_dict`."""
        yaml = require("yaml", feature="sweep spec files")

        try:
            doc = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as e:
            raise SpecError(f"{path}: not valid YAML: {e}") from None
        try:
            return cls.from_dict(doc if doc is not None else {}, **kw)
        except SpecError as e:
            raise SpecError(f"{path}: {e}") from None
