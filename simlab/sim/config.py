"""One pricing run's configuration, validated in one place: :class:`RunConfig`.

``simlab replay``'s flags, a sweep's grid keys, :func:`simlab.sim.run.price_recording`'s
keywords, the notebooks and the trade simulator all describe the same run; each builds a
:class:`RunConfig`, and every check (and its error message) is written here once.

One name per concept: a field is named as its ``simlab replay`` flag
(``--impact-horizon`` is ``impact_horizon``). Where a published symbol differs (the
Almgren-Chriss ``T``, ``N``, ``lambda``) it is accepted as an alias (:data:`ALIASES`) by
:meth:`RunConfig.build`, the CLI and the sweep grid alike; a sweep keeps the symbols as its
parameter names (its cell ids and result columns ``p_T``, ``p_N``, ``p_lam`` predate this).

Errors are :class:`ConfigError`: the message names each input the way the caller named it
(``names``: ``"field"``, the default, ``"cli"`` for flags, or any function of the field
name); :meth:`ConfigError.under` restates it under another naming (a sweep's grid keys).

>>> c = RunConfig.build(inst="BTC-USDT", side="buy", notional=1000, T=300, fee_tier="VIP1")
>>> c.impact_horizon, c.order.quantity, c.order.unit, c.fee_rates
(300.0, 1000.0, 'quote', None)
>>> RunConfig(inst="BTC-USDT", side="buy", notional=-5, names="cli")
Traceback (most recent call last):
...
simlab.sim.config.ConfigError: --notional must be a finite number > 0, got -5
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, InitVar, dataclass, field, fields, replace
from typing import Any

from simlab.feed.replay import TIME_BASES
from simlab.models.fees import FeeRates
from simlab.models.impact import ACParams

from .order import ORDER_TYPES, SIDES, OrderSpec, check_size, order_size

#: Published symbols accepted for a field (the keyword API, the CLI's ``--T`` ..., sweep keys).
ALIASES = {"T": "impact_horizon", "N": "impact_steps", "lam": "risk_aversion"}
#: The impact parameters that may be given instead of calibrated.
IMPACT_OVERRIDES = ("sigma", "eta", "gamma", "epsilon")
IMPACT_MODES = ("calibrate", "none")
MODES = ("columnar", "events")


@dataclass(frozen=True)
class Field:
    """What a :class:`RunConfig` field takes: its ``kind`` (``str``, ``float``, ``int``,
    ``time`` (ISO 8601 UTC, a datetime or ns), ``bool``, ``path`` or ``any``), default,
    meaning, the values allowed (``choices``) and its range (``rule``: ``positive``,
    ``non_negative``)."""

    kind: str
    default: Any
    help: str
    choices: tuple | None = None
    rule: str | None = None


#: Every field of a run, in order (a sweep's result columns keep this order).
FIELDS: dict[str, Field] = {
    "inst": Field("str", None, "instrument, e.g. BTC-USDT"),
    "side": Field("str", "buy", "order side: buy or sell", SIDES),
    "notional": Field("float", None, "order size in quote currency (or quantity)",
                      rule="positive"),
    "quantity": Field("float", None, "order size in base currency (or notional)",
                      rule="positive"),
    "order_type": Field("str", "market", "market or limit", ORDER_TYPES),
    "fee_tier": Field("str", "Lv1", "OKX fee tier (Lv1, VIP1 ...)"),
    "maker_fee": Field("float", None, "maker rate override, fraction (with taker_fee)"),
    "taker_fee": Field("float", None, "taker rate override, fraction (with maker_fee)"),
    "ct_val": Field("float", None, "contract value override, base units", rule="positive"),
    "channel": Field("str", "books", "book channel"),
    "impact": Field("str", "calibrate", "calibrate (from the recording) or none",
                    IMPACT_MODES),
    "sigma": Field("float", None, "impact: volatility override", rule="non_negative"),
    "eta": Field("float", None, "impact: temporary impact override", rule="non_negative"),
    "gamma": Field("float", None, "impact: permanent impact override", rule="non_negative"),
    "epsilon": Field("float", None, "impact: fixed cost override", rule="non_negative"),
    "risk_aversion": Field("float", 1e-6, "impact: risk aversion lambda",
                           rule="non_negative"),
    "impact_horizon": Field("float", 60.0, "impact: execution horizon, seconds",
                            rule="positive"),
    "impact_steps": Field("int", 60, "impact: steps", rule="positive"),
    "maker_taker_model": Field("path", None, "a trained maker/taker model JSON (limit orders)"),
    "slippage_model": Field("path", None, "a trained slippage model JSON: its prediction "
                            "beside the walk-the-book slippage (same side)"),
    "start": Field("time", None, "start time, ISO 8601 UTC (on the time_basis clock)"),
    "end": Field("time", None, "end time, ISO 8601 UTC (on the time_basis clock)"),
    "time_basis": Field("str", "exchange", "clock of start/end: exchange (the exchange's "
                        "message time, what simlab verify prints) or recv (receive time)",
                        TIME_BASES),
    "mode": Field("str", "columnar", "columnar (fast) or events (the live code path, "
                  "per-tick latency)", MODES),
    "include_incomplete": Field("bool", False, "cost statistics over every tick, also those "
                                "where the book could not fill the whole order"),
}
#: The order's size fields: checked as the order checks its size (:func:`check_size`).
_SIZES = ("notional", "quantity")
#: Fields that take an object in Python besides their plain kind (a loaded model, ACParams).
_OBJECTS = {"impact": ACParams, "maker_taker_model": object, "slippage_model": object}


def cli_name(name: str) -> str:
    """The ``simlab replay`` flag of a field.

    >>> cli_name("impact_horizon"), cli_name("impact")
    ('--impact-horizon', '--no-impact')
    """
    return "--no-impact" if name == "impact" else "--" + name.replace("_", "-")


def sweep_name(name: str) -> str:
    """A field's sweep parameter name: its published symbol where it has one.

    >>> sweep_name("impact_steps"), sweep_name("notional")
    ('N', 'notional')
    """
    return _SYMBOL.get(name, name)


_SYMBOL = {v: k for k, v in ALIASES.items()}
_NAMINGS: dict[str, Callable[[str], str]] = {"field": str, "cli": cli_name,
                                             "sweep": sweep_name}


def resolve(name: str) -> str:
    """The field an input name stands for (itself, or the field of an alias); KeyError
    for a name that is neither.

    >>> resolve("lam"), resolve("risk_aversion")
    ('risk_aversion', 'risk_aversion')
    """
    name = ALIASES.get(name, name)
    if name not in FIELDS:
        raise KeyError(name)
    return name


class ConfigError(ValueError):
    """A run configuration that cannot be priced. ``fields``: the fields at fault;
    ``detail``: what is wrong. When ``lead`` the message is ``"<inputs>: <detail>"``,
    else the detail names its inputs itself.

    >>> e = ConfigError("model file not found: m.json", ("slippage_model",), lead=True)
    >>> str(e.named(cli_name))
    '--slippage-model: model file not found: m.json'
    >>> e.under(lambda f: f"grid: {f}")
    'grid: slippage_model: model file not found: m.json'
    """

    def __init__(self, detail: str, fields: tuple[str, ...], *, lead: bool = False,
                 naming: Callable[[str], str] = str) -> None:
        self.detail, self.fields, self.lead, self.naming = detail, tuple(fields), lead, naming
        super().__init__(self._text(naming) if lead else detail)

    def _text(self, naming: Callable[[str], str]) -> str:
        if not self.fields:
            return self.detail
        return f"{' / '.join(naming(f) for f in self.fields)}: {self.detail}"

    def named(self, naming: Callable[[str], str]) -> ConfigError:
        """The same error with a leading input named by ``naming``."""
        return ConfigError(self.detail, self.fields, lead=self.lead, naming=naming)

    def under(self, where: Callable[[str], str]) -> str:
        """The message after the inputs as ``where`` names them (e.g. ``grid: notional``)."""
        return self._text(where)


def check_value(name: str, value: Any, what: str | None = None) -> Any:
    """``value`` checked against field ``name``'s kind, choices and range, in canonical
    form (ints as floats for float fields...); :class:`ConfigError` naming it as ``what``
    (default: the field name) otherwise. None passes for a field without a default.

    >>> check_value("impact_steps", 10.0)
    10
    >>> check_value("impact_steps", 2.5, "N")
    Traceback (most recent call last):
    ...
    simlab.sim.config.ConfigError: N must be an integer, got 2.5
    >>> check_value("side", "hold")
    Traceback (most recent call last):
    ...
    simlab.sim.config.ConfigError: side must be one of ('buy', 'sell'), got 'hold'
    >>> check_value("notional", -5)
    Traceback (most recent call last):
    ...
    simlab.sim.config.ConfigError: notional must be a finite number > 0, got -5
    """
    f = FIELDS[name]
    what = what or name

    def bad(text: str) -> ConfigError:
        return ConfigError(f"{what} {text}", (name,))

    if value is None:
        if f.default is not None:
            raise bad(f"cannot be null (default {f.default!r})")
        return None
    if isinstance(value, _OBJECTS.get(name, ())) and not isinstance(value, (str, os.PathLike)):
        return value  # a loaded model, or impact parameters given
    if f.kind == "time":
        from simlab.feed.source import to_ns

        to_ns(value, what)  # raises naming the input
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise bad(f"must be true or false, got {value!r}")
        return value
    if f.kind == "path":
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise bad(f"must be a non-empty string, got {value!r}")
        return value
    if f.kind == "str":
        if not isinstance(value, str) or not value:
            raise bad(f"must be a non-empty string, got {value!r}")
        if f.choices and value not in f.choices:
            raise bad(f"must be one of {f.choices}, got {value!r}")
        return value
    if name in _SIZES:
        try:
            return check_size(value, what)  # the order's own message, as RunConfig gives it
        except ValueError as e:
            raise ConfigError(str(e), (name,)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise bad(f"must be a finite number, got {value!r}")
    if f.kind == "int":
        if value != int(value):
            raise bad(f"must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if f.rule == "positive" and value <= 0:
        raise bad(f"must be > 0, got {value!r}")
    if f.rule == "non_negative" and value < 0:
        raise bad(f"must be >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """Everything a pricing run takes (see :data:`FIELDS` for each field's meaning),
    checked at construction; :class:`ConfigError` names the first problem.

    The order is sized by exactly one of ``notional`` (quote) and ``quantity`` (base);
    ``maker_fee`` and ``taker_fee`` (both or neither) replace the ``fee_tier`` rates;
    ``impact`` is ``"calibrate"`` (from the recording, with ``sigma`` ... ``epsilon``
    overriding the fit), ``"none"``/None (no impact) or :class:`ACParams` given;
    ``maker_taker_model`` (limit orders only) and ``slippage_model`` are model files or
    loaded models. ``names``: how messages name the inputs (``"field"``, ``"cli"``,
    ``"sweep"`` or a function of the field name); not stored.

    Derived: :attr:`order` (the :class:`OrderSpec`), :attr:`fee_rates`,
    :attr:`overrides`, :attr:`maker_taker` and :attr:`slippage` (the loaded models).

    >>> c = RunConfig(inst="BTC-USDT", side="sell", quantity=0.5, impact="none")
    >>> c.order.unit, c.impact, c.overrides
    ('base', None, {})
    >>> RunConfig(inst="BTC-USDT", notional=1.0, maker_fee=0.0002, names="cli")
    Traceback (most recent call last):
    ...
    simlab.sim.config.ConfigError: give both --maker-fee and --taker-fee, or neither
    """

    inst: str
    side: str = FIELDS["side"].default
    notional: float | None = None
    quantity: float | None = None
    order_type: str = FIELDS["order_type"].default
    fee_tier: str = FIELDS["fee_tier"].default
    maker_fee: float | None = None
    taker_fee: float | None = None
    ct_val: float | None = None
    channel: str = FIELDS["channel"].default
    impact: ACParams | str | None = FIELDS["impact"].default
    sigma: float | None = None
    eta: float | None = None
    gamma: float | None = None
    epsilon: float | None = None
    risk_aversion: float = FIELDS["risk_aversion"].default
    impact_horizon: float = FIELDS["impact_horizon"].default
    impact_steps: int = FIELDS["impact_steps"].default
    maker_taker_model: Any = None
    slippage_model: Any = None
    start: Any = None
    end: Any = None
    time_basis: str = FIELDS["time_basis"].default
    mode: str = FIELDS["mode"].default
    include_incomplete: bool = False
    names: InitVar[str | Callable[[str], str]] = "field"
    order: OrderSpec = field(init=False, repr=False, compare=False)
    maker_taker: Any = field(init=False, repr=False, compare=False)
    slippage: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self, names: str | Callable[[str], str]) -> None:
        for problem in self._validate(_naming(names)):
            raise problem

    @classmethod
    def problems(cls, names: str | Callable[[str], str] = "field", **kw: Any
                 ) -> list[ConfigError]:
        """Every problem of the run ``kw`` describes (as :meth:`build` takes it), not only
        the first: what a sweep reports of each grid combination at once.

        >>> [str(e) for e in RunConfig.problems(inst="BTC-USDT", side="hold", N=0.5)]
        ... # doctest: +NORMALIZE_WHITESPACE
        ['give the order size as notional (quote) or quantity (base), exactly one; got
          notional=None, quantity=None', "side must be one of ('buy', 'sell'), got 'hold'",
          'impact_steps must be an integer, got 0.5']
        """
        values = _fields_of(kw)
        self = object.__new__(cls)
        for f in fields(cls):
            if f.init:
                default = None if f.default is MISSING else f.default
                object.__setattr__(self, f.name, values.get(f.name, default))
        return list(self._validate(_naming(names)))

    def _validate(self, n: Callable[[str], str]) -> Iterator[ConfigError]:
        """Check every field, setting the canonical values and the derived ones; yields
        each problem (the first stops a construction)."""
        set_ = object.__setattr__
        bad: set[str] = set()
        if self.impact is None:
            set_(self, "impact", "none")
        # the order's size first: its message is the order's (a finite number > 0)
        try:
            qty, unit = order_size(self.notional, self.quantity,
                                   names=(n("notional"), n("quantity")))
            set_(self, "notional" if unit == "quote" else "quantity", qty)
        except ValueError as e:
            yield ConfigError(str(e), ("notional", "quantity"))
            qty, unit = 1.0, "quote"  # the rest is still checked
        for name in FIELDS:
            if name in _SIZES:
                continue
            try:
                set_(self, name, check_value(name, getattr(self, name), n(name)))
            except ConfigError as e:
                bad.add(name)
                yield e
            except (TypeError, ValueError) as e:  # a time that does not parse
                bad.add(name)
                yield ConfigError(str(e), (name,))
        if self.impact == "none":
            set_(self, "impact", None)
        if {"inst", "side", "order_type", "fee_tier"} & bad:
            return  # no order to check further
        yield from self._order(qty, unit, n)
        if not {"start", "end"} & bad:
            yield from self._check_range(n)
        for key in ("maker_taker_model", "slippage_model"):
            yield from self._model(key, n)

    def _order(self, qty: float, unit: str, n: Callable[[str], str]) -> Iterator[ConfigError]:
        from simlab.okx.fees import FeeTierError
        from simlab.okx.instruments import inst_type

        both = ("maker_fee", "taker_fee")
        rates = None
        if (self.maker_fee is None) != (self.taker_fee is None):
            yield ConfigError(f"give both {n(both[0])} and {n(both[1])}, or neither", both)
        elif self.maker_fee is not None:
            try:
                rates = FeeRates(maker=self.maker_fee, taker=self.taker_fee)
            except (TypeError, ValueError) as e:
                yield ConfigError(str(e), both, lead=True, naming=n)
                return
        try:
            order = OrderSpec(self.inst, self.side, qty, unit, self.order_type,
                              self.fee_tier, rates)
        except ValueError as e:
            yield ConfigError(str(e), ("inst",))
            return
        object.__setattr__(self, "order", order)
        if rates is None:
            it = inst_type(self.inst)
            try:
                order.fees(it)  # a tier the table lacks fails before any work
            except FeeTierError as e:
                yield ConfigError(f"{self.fee_tier!r} for {self.inst} ({it}): {e}",
                                  ("fee_tier",), lead=True, naming=n)

    def _check_range(self, n: Callable[[str], str]) -> Iterator[ConfigError]:
        from simlab.feed.source import to_ns

        if self.start is not None and self.end is not None and (
                to_ns(self.start) >= to_ns(self.end)):
            yield ConfigError(f"{n('start')} {self.start} must be before {n('end')} "
                              f"{self.end}", ("start", "end"))

    def _model(self, key: str, n: Callable[[str], str]) -> Iterator[ConfigError]:
        from .model_use import check_slippage_model

        value = getattr(self, key)
        attr = "maker_taker" if key == "maker_taker_model" else "slippage"
        object.__setattr__(self, attr, None)
        if value is None:
            return
        if key == "maker_taker_model" and self.order_type != "limit":
            yield ConfigError(f"{n(key)} prices limit orders: add {n('order_type')} limit "
                              "(a market order is always taker)", (key, "order_type"))
            return
        try:
            if not isinstance(value, str):
                model = (check_slippage_model(value, self.side) if key == "slippage_model"
                         else value)
            else:
                model = _load(key, value, self.side if key == "slippage_model" else None)
        except ValueError as e:
            yield ConfigError(str(e), (key,), lead=True, naming=n)
            return
        object.__setattr__(self, attr, model)

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def build(cls, names: str | Callable[[str], str] = "field", **kw: Any) -> RunConfig:
        """A RunConfig from field names or their aliases (:data:`ALIASES`), with
        ``overrides`` (a dict of sigma, eta, gamma, epsilon) and ``model`` (the
        maker/taker model) accepted as :func:`~simlab.sim.run.price_recording` names them.

        >>> RunConfig.build(inst="BTC-USDT", notional=1.0, N=10, lam=0.0).impact_steps
        10
        >>> RunConfig.build(inst="BTC-USDT", notional=1.0, size=3)
        Traceback (most recent call last):
        ...
        simlab.sim.config.ConfigError: unknown run parameter 'size'; known: inst, side, ...
        """
        return cls(**_fields_of(kw), names=names)

    @classmethod
    def from_order(cls, order: OrderSpec, **kw: Any) -> RunConfig:
        """A RunConfig pricing ``order`` (its size, type and fees), the rest from ``kw``
        as in :meth:`build`.

        >>> RunConfig.from_order(OrderSpec("BTC-USDT", "buy", 2.0, "base"), T=30).quantity
        2.0
        """
        size = "notional" if order.unit == "quote" else "quantity"
        rates = order.fee_rates
        return cls.build(inst=order.inst, side=order.side, **{size: order.quantity},
                         order_type=order.order_type, fee_tier=order.fee_tier,
                         maker_fee=None if rates is None else rates.maker,
                         taker_fee=None if rates is None else rates.taker, **kw)

    def with_(self, **kw: Any) -> RunConfig:
        """A copy with the fields (or aliases) in ``kw`` changed, checked again.

        >>> RunConfig(inst="BTC-USDT", notional=1.0).with_(T=5).impact_horizon
        5.0
        """
        return replace(self, **_fields_of(kw))

    # -- derived -----------------------------------------------------------------------------
    @property
    def fee_rates(self) -> FeeRates | None:
        """The given maker/taker rates (None: the ``fee_tier``'s)."""
        return self.order.fee_rates

    @property
    def overrides(self) -> dict[str, float]:
        """The impact parameters given instead of calibrated."""
        return {k: getattr(self, k) for k in IMPACT_OVERRIDES if getattr(self, k) is not None}

    @property
    def calibrate(self) -> bool:
        """True when the impact parameters are calibrated from the recording."""
        return self.impact == "calibrate"

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain values (a model or ACParams given as an object by its type).

        >>> RunConfig(inst="BTC-USDT", notional=1.0).as_dict()["impact_horizon"]
        60.0
        """
        out = {}
        for k in FIELDS:
            v = getattr(self, k)
            out[k] = v if v is None or isinstance(v, (str, int, float, bool)) else repr(v)
        return out


def _naming(names: str | Callable[[str], str]) -> Callable[[str], str]:
    return _NAMINGS[names] if isinstance(names, str) else names


def _fields_of(kw: Mapping[str, Any]) -> dict[str, Any]:
    """``kw`` by field name: aliases resolved, ``overrides`` and ``model`` unpacked."""
    kw = dict(kw)
    for k, v in (kw.pop("overrides", None) or {}).items():
        if k not in IMPACT_OVERRIDES:
            raise ConfigError(f"overrides: unknown impact parameter {k!r}; known: "
                              f"{', '.join(IMPACT_OVERRIDES)}", ())
        kw.setdefault(k, v)
    if "model" in kw:
        kw["maker_taker_model"] = kw.pop("model")
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # the name each field came by, for the message
    for k, v in kw.items():
        try:
            f = resolve(k)
        except KeyError:
            raise ConfigError(f"unknown run parameter {k!r}; known: {', '.join(FIELDS)}",
                              ()) from None
        if f in out:
            raise ConfigError(f"{given[f]!r} and {k!r} name the same parameter ({f}): "
                              "give one", (f,))
        out[f], given[f] = v, k
    return out


def _load(key: str, path: str, side: str | None) -> Any:
    """A model file loaded (and checked for ``side``), once while the file is unchanged: a
    sweep builds a RunConfig per cell."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None  # the loader says what is wrong
    return _load_cached(key, path, side, stamp)


@functools.lru_cache(maxsize=32)
def _load_cached(key: str, path: str, side: str | None, stamp: Any) -> Any:
    from .model_use import load_maker_taker_model, load_slippage_model

    return (load_slippage_model(path, side, None) if key == "slippage_model"
            else load_maker_taker_model(path, None))


def run_config(values: Mapping[str, Any], names: str | Callable[[str], str] = "field"
               ) -> RunConfig:
    """:meth:`RunConfig.build` of a mapping (a sweep cell's parameters, a notebook's dict).

    >>> run_config({"inst": "BTC-USDT", "notional": 1.0, "T": 30}).impact_horizon
    30.0
    """
    return RunConfig.build(names=names, **values)


__all__ = ["ALIASES", "FIELDS", "IMPACT_OVERRIDES", "ConfigError", "Field", "RunConfig",
           "check_value", "cli_name", "resolve", "run_config", "sweep_name"]
