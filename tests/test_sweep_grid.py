"""A sweep spec is checked completely before any cell runs (issue 15, deliverable 8): fee
tiers against each instrument's type, every parameter's type and range, model files that
exist and load; one error lists every problem and names its grid key."""

from __future__ import annotations

import pytest

from simlab.cli import main
from simlab.models.logistic import LogisticFillModel
from simlab.models.persist import save_model
from simlab.models.slippage_regression import SlippageRegression
from simlab.sweep import SpecError, SweepSpec, run_sweep


def test_a_tier_the_table_lacks_for_a_swap_fails_when_the_grid_is_read():
    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT", "BTC-USDT-SWAP"], grid={"fee_tier": ["VIP1"]},
                  fixed={"notional": 1e3})
    msg = str(e.value)
    # the grid key, the tier, the instrument and its type; and how to give the rate
    assert "grid: fee_tier: 'VIP1' for BTC-USDT-SWAP (SWAP)" in msg
    assert "--maker-fee" in msg and "maker_fee" in msg
    assert "BTC-USDT (SPOT)" not in msg  # VIP1 is in the spot table


def test_explicit_rates_make_a_derivatives_vip_cell_valid():
    s = SweepSpec(["rec"], ["BTC-USDT-SWAP"], grid={"fee_tier": ["VIP1"]},
                  fixed={"notional": 1e3, "maker_fee": 0.00015, "taker_fee": 0.0004})
    assert len(s.cells()) == 1


def test_every_problem_is_listed_at_once_naming_its_key(tmp_path):
    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT"],
                  grid={"notional": [1e3, -5], "side": ["buy", "hold"], "N": [10, 2.5]},
                  fixed={"lam": -1.0, "colour": "red"})
    msg = str(e.value)
    assert msg.startswith("the sweep spec has 5 problems:")
    for part in ("grid: notional: notional must be a finite number > 0, got -5",
                 "grid: side: side must be one of ('buy', 'sell'), got 'hold'",
                 "grid: N: N must be an integer, got 2.5",
                 "fixed: lam must be >= 0, got -1.0",
                 "fixed: unknown parameter 'colour'"):
        assert part in msg, part


def test_cell_level_problems_are_found_too():
    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT"], grid={"fee_tier": ["Lv1", "VIP99"]},
                  fixed={"notional": 1e3, "start": "2026-01-02T00:00:00Z",
                         "end": "2026-01-01T00:00:00Z"})
    msg = str(e.value)
    assert "2 problems" in msg
    assert "grid: fee_tier: 'VIP99' for BTC-USDT (SPOT)" in msg
    assert "fixed: start / fixed: end: start 2026-01-02T00:00:00Z must be before end" in msg
    with pytest.raises(SpecError, match=r"fixed: maker_fee / fixed: taker_fee: .*taker rate"):
        SweepSpec(["rec"], ["BTC-USDT"], fixed={"notional": 1e3, "maker_fee": 0.0002,
                                                "taker_fee": 0.05})


def _models(tmp_path):
    mt = save_model(LogisticFillModel(("imbalance",), (0.0,), (1.0,), (1.0,), 0.0),
                    tmp_path / "mt.json")
    sl = save_model(SlippageRegression(("spread_bps",), (0.0,), (1.0,), (1.0,), 0.0, (0.5,),
                                       ((1.0,),), (0.0,), info={"side": "buy"}),
                    tmp_path / "slip.json")
    return mt, sl


def test_model_files_must_exist_load_and_fit(tmp_path):
    mt, sl = _models(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError) as e:
        SweepSpec(["rec"], ["BTC-USDT"],
                  grid={"maker_taker_model": [str(mt), str(tmp_path / "nope.json")],
                        "slippage_model": [str(sl), str(tmp_path / "bad.json")],
                        "side": ["buy", "sell"]},
                  fixed={"notional": 1e3, "order_type": "limit"})
    msg = str(e.value)
    assert f"grid: maker_taker_model: model file not found: {tmp_path / 'nope.json'}" in msg
    assert "grid: slippage_model: " in msg and "bad.json: not JSON" in msg
    # a buy-side slippage model asked to price sells
    assert "trained on buy orders, cannot price a sell order" in msg
    # the wrong kind of model under a key
    with pytest.raises(SpecError, match=r"fixed: maker_taker_model: .*not a maker/taker model"):
        SweepSpec(["rec"], ["BTC-USDT"], fixed={"notional": 1e3, "order_type": "limit",
                                                "maker_taker_model": str(sl)})
    # good files pass
    s = SweepSpec(["rec"], ["BTC-USDT"], fixed={"notional": 1e3, "order_type": "limit",
                                                "maker_taker_model": str(mt),
                                                "slippage_model": str(sl)})
    assert s.cells()[0].params["slippage_model"] == str(sl)


def test_no_cell_runs_and_the_cli_exits_2(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("insts: [BTC-USDT-SWAP]\ngrid:\n  fee_tier: [VIP1, VIP2]\n"
                    "fixed:\n  notional: 1000\n")
    out = tmp_path / "out"
    rec = tmp_path / "rec"
    from simlab.emulator import write_synthetic_recording

    write_synthetic_recording(rec, seconds=2, instruments=["BTC-USDT-SWAP"])
    assert main(["sweep", str(rec), "--grid", str(grid), "--out", str(out),
                 "--executor", "inline", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "'VIP1' for BTC-USDT-SWAP (SWAP)" in err
    assert not (out / "cells").exists() or not any((out / "cells").iterdir())
    with pytest.raises(SpecError):
        run_sweep({"recordings": [str(rec)], "insts": ["BTC-USDT-SWAP"],
                   "fixed": {"notional": 1e3, "fee_tier": "VIP1"}}, out, "inline",
                  progress=False)
