"""The run configuration (simlab.sim.config.RunConfig, issue 16 deliverable 4), checked
against hand-computed cases: one message per rule whichever door the run comes in by
(``simlab replay``, a sweep grid, ``price_recording``), named the way that door names the
input; the published symbols T, N, lam as aliases; ``with_`` checks again; ``from_order``
gives back the order it was made from."""

from __future__ import annotations

import dataclasses
import math

import pytest

from simlab.cli import main as cli
from simlab.cli.replay import config as cli_config
from simlab.cli.replay import run as cli_run
from simlab.models.fees import FeeRates
from simlab.models.impact import ACParams
from simlab.sim import ConfigError, OrderSpec, RunConfig
from simlab.sim.config import ALIASES, FIELDS, check_value, cli_name, sweep_name
from simlab.sim.run import price_recording
from simlab.sweep import SpecError, SweepSpec

BASE = {"inst": "BTC-USDT", "notional": 1000.0}

# One rule broken at a time: the flags, the same values as sweep grid keys and as
# price_recording keywords, and the message each door gives (the flag, the grid key, the
# keyword). After the input's name it is the same text at all three.
#: A field's own rule: the field, its flag's value, the value in Python, the message after
#: the name.
FIELD_RULES = [
    ("notional", "-5", -5.0, "must be a finite number > 0, got -5.0"),
    ("quantity", "inf", math.inf, "must be a finite number > 0, got inf"),
    ("impact_steps", "0", 0, "must be > 0, got 0"),
    ("impact_horizon", "0s", 0.0, "must be > 0, got 0.0"),
    ("risk_aversion", "-1", -1.0, "must be >= 0, got -1.0"),
    ("sigma", "-0.5", -0.5, "must be >= 0, got -0.5"),
    ("ct_val", "0", 0.0, "must be > 0, got 0.0"),
]
RULES = [pytest.param([cli_name(f), arg], {sweep_name(f): v},
                      f"{cli_name(f)} {rule}", f"grid: {sweep_name(f)}: {sweep_name(f)} {rule}",
                      f"{f} {rule}", id=f)
         for f, arg, v, rule in FIELD_RULES] + [
    pytest.param(
        ["--maker-fee", "0.0002"], {"maker_fee": 0.0002},
        "give both --maker-fee and --taker-fee, or neither",
        "grid: maker_fee / taker_fee (default None): give both maker_fee and taker_fee, "
        "or neither",
        "give both maker_fee and taker_fee, or neither", id="fee-pair"),
    pytest.param(
        ["--maker-fee", "0.02", "--taker-fee", "0.0005"],
        {"maker_fee": 0.02, "taker_fee": 0.0005},
        "--maker-fee / --taker-fee: maker rate must be a fraction of notional with |rate| < "
        "0.01 (0.05 % is 0.0005), got 0.02",
        "grid: maker_fee / grid: taker_fee: maker rate must be a fraction of notional with "
        "|rate| < 0.01 (0.05 % is 0.0005), got 0.02",
        "maker_fee / taker_fee: maker rate must be a fraction of notional with |rate| < 0.01 "
        "(0.05 % is 0.0005), got 0.02", id="fee-range"),
    pytest.param(
        ["--start", "2026-01-02T00:00:00Z", "--end", "2026-01-01T00:00:00Z"],
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        "--start 2026-01-02T00:00:00Z must be before --end 2026-01-01T00:00:00Z",
        "grid: start / grid: end: start 2026-01-02T00:00:00Z must be before end "
        "2026-01-01T00:00:00Z",
        "start 2026-01-02T00:00:00Z must be before end 2026-01-01T00:00:00Z", id="range"),
    pytest.param(
        ["--slippage-model", "no-such-model.json"], {"slippage_model": "no-such-model.json"},
        "--slippage-model: model file not found: no-such-model.json",
        "grid: slippage_model: model file not found: no-such-model.json",
        "slippage_model: model file not found: no-such-model.json", id="model-file"),
]


@pytest.mark.parametrize(("argv", "values", "cli_msg", "sweep_msg", "py_msg"), RULES)
def test_one_message_per_rule_at_every_door(tmp_path, capsys, argv, values, cli_msg,
                                            sweep_msg, py_msg):
    sizes = {"notional", "quantity"}
    # the configuration is refused before the recording is opened: none is needed
    rec = str(tmp_path / "no-recording")
    sized = [] if {"--notional", "--quantity"} & set(argv) else ["--notional", "1000"]
    assert cli(["replay", rec, "--inst", "BTC-USDT", "--side", "buy", *sized, *argv]) == 2
    assert capsys.readouterr().err == f"simlab replay: error: {cli_msg}\n"

    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT"], grid={k: [v] for k, v in values.items()},
                  fixed={} if sizes & set(values) else {"notional": 1000.0})
    assert str(e.value) == sweep_msg

    # price_recording's keywords change a given configuration (the order's size too)
    start = RunConfig(inst="BTC-USDT", notional=1000.0)
    with pytest.raises(ConfigError) as e:
        price_recording(rec, start, **({"notional": None, **values} if "quantity" in values
                                       else values))
    assert str(e.value) == py_msg


def test_problems_lists_every_rule_broken_with_its_fields():
    found = RunConfig.problems(inst="BTC-USDT", side="hold", N=0.5, lam=-1.0)
    assert [(str(e), e.fields) for e in found] == [
        ("give the order size as notional (quote) or quantity (base), exactly one; got "
         "notional=None, quantity=None", ("notional", "quantity")),
        ("side must be one of ('buy', 'sell'), got 'hold'", ("side",)),
        ("risk_aversion must be >= 0, got -1.0", ("risk_aversion",)),
        ("impact_steps must be an integer, got 0.5", ("impact_steps",)),
    ]
    assert RunConfig.problems(**BASE) == []


def test_construction_raises_the_first_problem_named_as_asked():
    with pytest.raises(ConfigError, match=r"^--impact-steps must be an integer, got 2\.5$"):
        RunConfig(inst="BTC-USDT", notional=1.0, impact_steps=2.5, names="cli")
    with pytest.raises(ConfigError, match=r"^N must be an integer, got 2\.5$"):
        RunConfig.build(inst="BTC-USDT", notional=1.0, N=2.5, names="sweep")
    with pytest.raises(ConfigError, match=r"^<impact_steps> must be > 0, got 0$"):
        RunConfig(inst="BTC-USDT", notional=1.0, impact_steps=0, names=lambda f: f"<{f}>")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("side", "hold", "side must be one of ('buy', 'sell'), got 'hold'"),
    ("order_type", "stop", "order_type must be one of ('market', 'limit'), got 'stop'"),
    ("mode", "fast", "mode must be one of ('columnar', 'events'), got 'fast'"),
    ("time_basis", "local", "time_basis must be one of ('exchange', 'recv'), got 'local'"),
    ("fee_tier", "", "fee_tier must be a non-empty string, got ''"),
    ("impact_steps", True, "impact_steps must be a finite number, got True"),
    ("risk_aversion", math.nan, "risk_aversion must be a finite number, got nan"),
    ("include_incomplete", 1, "include_incomplete must be true or false, got 1"),
    ("side", None, "side cannot be null (default 'buy')"),
    ("slippage_model", "", "slippage_model must be a non-empty string, got ''"),
])
def test_each_field_rule_names_the_field_and_what_it_takes(name, value, message):
    with pytest.raises(ConfigError) as e:
        check_value(name, value)
    assert str(e.value) == message and e.value.fields == (name,)
    with pytest.raises(ConfigError) as e:
        RunConfig(**{**BASE, name: value})
    assert str(e.value) == message


def test_values_come_out_in_canonical_form():
    c = RunConfig.build(inst="BTC-USDT", notional=1000, N=10.0, T=30, lam=0)
    assert (c.notional, c.impact_steps, c.impact_horizon, c.risk_aversion) == (
        1000.0, 10, 30.0, 0.0)
    assert [type(v) for v in (c.notional, c.impact_steps, c.impact_horizon)] == [
        float, int, float]
    assert RunConfig(**BASE, impact=None).impact is None
    assert RunConfig(**BASE, impact="none").impact is None
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, T=1.0, N=1)
    assert RunConfig(**BASE, impact=p).impact is p


# -- the fields and their aliases ---------------------------------------------------------------
def test_the_fields_table_is_the_dataclass():
    init = [f for f in dataclasses.fields(RunConfig) if f.init]
    assert [f.name for f in init] == list(FIELDS)
    for f in init:
        default = None if f.default is dataclasses.MISSING else f.default
        assert default == FIELDS[f.name].default, f.name
    c = RunConfig(**BASE)
    assert (c.side, c.order_type, c.fee_tier, c.channel, c.impact, c.risk_aversion,
            c.impact_horizon, c.impact_steps, c.time_basis, c.mode, c.include_incomplete) == (
        "buy", "market", "Lv1", "books", "calibrate", 1e-6, 60.0, 60, "exchange",
        "columnar", False)


def test_the_aliases_are_the_published_symbols():
    assert ALIASES == {"T": "impact_horizon", "N": "impact_steps", "lam": "risk_aversion"}
    by_alias = RunConfig.build(**BASE, T=300, N=10, lam=0.5)
    by_field = RunConfig(**BASE, impact_horizon=300, impact_steps=10, risk_aversion=0.5)
    assert by_alias == by_field
    assert (by_alias.impact_horizon, by_alias.impact_steps, by_alias.risk_aversion) == (
        300.0, 10, 0.5)
    assert [sweep_name(f) for f in ALIASES.values()] == ["T", "N", "lam"]
    assert [cli_name(f) for f in ALIASES.values()] == [
        "--impact-horizon", "--impact-steps", "--risk-aversion"]


@pytest.mark.parametrize(("first", "second"), [("T", "impact_horizon"),
                                               ("impact_horizon", "T")])
def test_an_alias_and_its_field_together_are_refused_naming_both(first, second):
    with pytest.raises(ConfigError) as e:
        RunConfig.build(**BASE, **{first: 30.0, second: 40.0})
    assert str(e.value) == (f"{first!r} and {second!r} name the same parameter "
                            "(impact_horizon): give one")
    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT"], grid={first: [30.0], second: [40.0]},
                  fixed={"notional": 1.0})
    assert str(e.value) == f"grid: {first!r} and {second!r} name the same parameter"


@pytest.mark.parametrize("spelling", [
    ["--T", "5m", "--N", "10", "--lam", "0.5"],
    ["--impact-horizon", "5m", "--impact-steps", "10", "--risk-aversion", "0.5"],
])
def test_the_cli_words_and_the_symbols_build_the_same_config(spelling):
    from simlab.cli import build_parser

    args = build_parser().parse_args(["replay", "r", "--inst", "BTC-USDT", "--side", "sell",
                                      "--quantity", "2", *spelling])
    assert args.run is cli_run
    assert cli_config(args) == RunConfig(inst="BTC-USDT", side="sell", quantity=2.0,
                                         impact_horizon=300.0, impact_steps=10,
                                         risk_aversion=0.5)


def test_the_sweep_grid_keys_are_fields_or_their_aliases():
    s = SweepSpec(["rec"], ["BTC-USDT"], grid={"impact_horizon": [30, 60], "N": [10]},
                  fixed={"notional": 1.0, "risk_aversion": 0.0})
    (a, b) = s.cells()
    assert (a.params["T"], b.params["T"], a.params["N"], a.params["lam"]) == (
        30.0, 60.0, 10, 0.0)
    from simlab.sweep.spec import cell_config

    assert cell_config(a) == RunConfig(inst="BTC-USDT", notional=1.0, impact_horizon=30.0,
                                       impact_steps=10, risk_aversion=0.0)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown run parameter 'size'; known: inst, side,"):
        RunConfig.build(**BASE, size=3)
    with pytest.raises(ConfigError, match=r"^overrides: unknown impact parameter 'beta'"):
        RunConfig.build(**BASE, overrides={"beta": 1.0})
    c = RunConfig.build(**BASE, overrides={"sigma": 0.1, "eta": 0.2})
    assert c.overrides == {"sigma": 0.1, "eta": 0.2}


# -- with_ and from_order ------------------------------------------------------------------------
def test_with_changes_fields_and_checks_again():
    c = RunConfig(**BASE)
    d = c.with_(T=5, side="sell")
    assert (d.impact_horizon, d.side, d.order.side) == (5.0, "sell", "sell")
    assert (c.impact_horizon, c.order.side) == (60.0, "buy")  # the original is unchanged
    with pytest.raises(ConfigError, match=r"^notional must be a finite number > 0, got -1$"):
        c.with_(notional=-1)
    with pytest.raises(ConfigError, match=r"^give the order size as notional \(quote\) or "
                                          r"quantity \(base\), exactly one"):
        c.with_(quantity=2.0)  # the notional is still set
    e = c.with_(notional=None, quantity=2.0)
    assert (e.order.unit, e.order.quantity) == ("base", 2.0)
    with pytest.raises(ConfigError, match=r"^unknown run parameter 'size'"):
        c.with_(size=3)
    with pytest.raises(ConfigError, match=r"^maker_taker_model prices limit orders"):
        c.with_(maker_taker_model=object())


@pytest.mark.parametrize("order", [
    OrderSpec("BTC-USDT", "buy", 1000.0),
    OrderSpec("BTC-USDT", "sell", 0.5, "base", "limit", "VIP1"),
    OrderSpec("BTC-USDT-SWAP", "buy", 2.0, "base", fee_rates=FeeRates(maker=0.0001,
                                                                       taker=0.0004)),
])
def test_from_order_gives_back_the_order(order):
    c = RunConfig.from_order(order, T=30)
    assert c.order == order and c.fee_rates == order.fee_rates
    assert c.impact_horizon == 30.0
    assert RunConfig.from_order(c.order, T=30) == c
    size = "notional" if order.unit == "quote" else "quantity"
    assert getattr(c, size) == order.quantity


def test_a_price_recording_keyword_changes_a_given_config():
    # a keyword with a RunConfig goes through with_: checked again, named by field
    with pytest.raises(ConfigError, match=r"^impact_steps must be > 0, got 0$"):
        price_recording("no-recording", RunConfig(**BASE), N=0)
