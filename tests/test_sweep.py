"""simlab.sweep: specs and cells, the same results on every executor, resume, failures, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simlab import __version__
from simlab.cli import main
from simlab.sim.order import OrderSpec
from simlab.sim.run import price_recording
from simlab.sweep import (
    PARAMS,
    RESULT_COLUMNS,
    Cell,
    SpecError,
    SweepSpec,
    defaults,
    load_results,
    make_executor,
    metrics,
    run_cell,
    run_sweep,
)

SAMPLE = str(Path(__file__).resolve().parents[1] / "data" / "sample")
START, END = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"  # the sample's first 60 s
WINDOW = {"start": START, "end": END}


def small_spec(**kw) -> SweepSpec:
    """8 cells: notional x side x order type, VIP1, over 60 s of the sample."""
    return SweepSpec([SAMPLE], ["BTC-USDT"],
                     grid=kw.pop("grid", {"notional": [1e3, 1e5], "side": ["buy", "sell"],
                                          "order_type": ["market", "limit"]}),
                     fixed={"fee_tier": "VIP1", **WINDOW, **kw.pop("fixed", {})}, **kw)


def comparable(t: pd.DataFrame) -> pd.DataFrame:
    return t.drop(columns="seconds").sort_values("cell").reset_index(drop=True)


@pytest.fixture(scope="module")
def inline_run(tmp_path_factory):
    return run_sweep(small_spec(), tmp_path_factory.mktemp("inline"), "inline", progress=False)


# -- the cell runner --------------------------------------------------------------------


def test_metrics_hand_computed():
    # percentiles by linear interpolation (numpy's default): p10 of 0..10 is 1, p99 is 9.9
    # then 3 ticks the book could only fill 10, 20, 30 % of: counted, never averaged in
    t = pd.DataFrame({"net_bps": np.r_[np.arange(11.0), 1e3, 2e3, 3e3],
                      "slippage_bps": np.r_[np.arange(10.0), np.nan, 1e3, 1e3, 1e3],
                      "fee_bps": 5.0, "impact_bps": 0.5, "maker_prob": 0.25,
                      "complete": [True] * 11 + [False] * 3,
                      "filled_share": [1.0] * 11 + [0.1, 0.2, 0.3]})
    m = metrics(t)
    assert m["ticks"] == 14
    assert m["net_bps_mean"] == 5.0
    assert (m["net_bps_p10"], m["net_bps_p50"], m["net_bps_p90"]) == (1.0, 5.0, 9.0)
    assert m["net_bps_p99"] == pytest.approx(9.9)
    assert m["slippage_bps_mean"] == 4.5  # the NaN tick is left out
    assert m["slippage_bps_p50"] == 4.5
    assert m["complete_share"] == 11 / 14 and m["incomplete_ticks"] == 3
    assert m["filled_share_mean"] == pytest.approx((11 + 0.6) / 14)
    assert m["filled_share_min"] == 0.1
    assert (m["fee_bps_mean"], m["impact_bps_mean"], m["maker_prob_mean"]) == (5.0, 0.5, 0.25)
    empty = metrics(t.iloc[:0])
    assert empty["ticks"] == 0 and math.isnan(empty["net_bps_mean"])
    none = metrics(t.iloc[11:])
    assert none["incomplete_ticks"] == 3 and math.isnan(none["net_bps_mean"])


def test_run_cell_matches_price_recording_and_published_fees():
    cell = small_spec().cells()[0]
    assert (cell.params["notional"], cell.params["side"], cell.params["order_type"]) == (
        1000.0, "buy", "market")
    row = run_cell(cell)
    assert row["status"] == "ok" and row["error"] is None
    assert set(row) == set(RESULT_COLUMNS)
    # the uncached path (price_recording calibrates itself) gives the same numbers
    res, _ = price_recording(SAMPLE, OrderSpec("BTC-USDT", "buy", 1000.0, "quote", "market",
                                               "VIP1"), start=START, end=END)
    t = res.table
    assert row["ticks"] == len(t) > 100
    assert row["net_bps_mean"] == float(t["net_bps"].mean())
    assert row["impact_bps_mean"] == float(t["impact_bps"].mean()) > 0
    # OKX VIP1 spot taker fee: 0.050 % of the notional paid, i.e. 5 bps of the filled
    # notional at the average price; bps are of the notional at the mid, so per tick
    # fee_bps = 5 * avg / mid = 5 * (1 + slippage_bps / 1e4), and the same for the means
    assert row["fee_bps_mean"] == pytest.approx(5.0 * (1 + row["slippage_bps_mean"] / 1e4),
                                                rel=1e-12)
    assert row["fee_bps_mean"] != 5.0
    assert row["maker_prob_mean"] == 0.0
    assert row["p_fee_tier"] == "VIP1" and row["simlab_version"] == __version__


def test_limit_fee_is_maker_taker_mix():
    row = run_cell(small_spec().cells()[1])  # 1000 buy limit
    assert row["p_order_type"] == "limit" and 0 < row["maker_prob_mean"] < 1
    # VIP1 spot: maker 4.5 bps, taker 5 bps, mixed by p; avg / mid (see above) differs from 1
    # by under 1e-5 for this order, far less than the 0.5 bps * p the mix is worth
    assert row["fee_bps_mean"] == pytest.approx(5.0 - 0.5 * row["maker_prob_mean"], rel=1e-4)


def test_impact_overrides_and_no_impact():
    base = {**defaults(), "notional": 1e5, **WINDOW}
    calibrated = run_cell(Cell(SAMPLE, "BTC-USDT", base))
    none = run_cell(Cell(SAMPLE, "BTC-USDT", {**base, "impact": "none"}))
    zero = run_cell(Cell(SAMPLE, "BTC-USDT", {**base, "sigma": 0.0, "eta": 1.0, "gamma": 0.0}))
    assert none["impact_bps_mean"] == 0.0 and calibrated["impact_bps_mean"] > 0
    assert none["net_bps_mean"] < calibrated["net_bps_mean"]
    # with sigma = gamma = 0 and lambda > 0 the AC cost is eta_tilde/tau * X^2 / N ... > 0
    assert zero["impact_bps_mean"] > 0 and zero["impact_bps_mean"] != calibrated[
        "impact_bps_mean"]
    assert none["slippage_bps_mean"] == calibrated["slippage_bps_mean"]


# -- the same sweep on every executor ----------------------------------------------------


def test_inline_process_pool_and_dask_agree(inline_run, tmp_path):
    a = inline_run.table
    assert inline_run.ran == 8 and inline_run.failed == 0 and len(a) == 8
    assert list(a.columns) == list(RESULT_COLUMNS)
    assert (a["status"] == "ok").all() and a["net_bps_mean"].nunique() == 8
    with ProcessPoolExecutor(2) as ex:
        b = run_sweep(small_spec(), tmp_path / "pool", ex, progress=False)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        c = run_sweep(small_spec(), tmp_path / "dask", client.get_executor(), progress=False)
        assert len(client.scheduler_info()["workers"]) == 2
        # by address, as the CLI does: run_sweep opens (and closes) its own client
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        d = run_sweep(small_spec(), tmp_path / "addr", address, progress=False)
    for other in (b, c, d):
        assert other.ran == 8 and other.failed == 0
        pd.testing.assert_frame_equal(comparable(a), comparable(other.table), check_exact=True)
    # what is on disk is what was returned
    pd.testing.assert_frame_equal(comparable(load_results(tmp_path / "dask")),
                                  comparable(c.table), check_exact=True)


# -- resume ------------------------------------------------------------------------------


def test_resume_after_stop_after(inline_run, tmp_path):
    out = tmp_path / "r"
    first = run_sweep(small_spec(), out, "inline", progress=False, stop_after=3)
    assert (first.ran, first.skipped, first.missing, len(first.table)) == (3, 0, 5, 3)
    assert len(list((out / "cells").glob("*.parquet"))) == 3
    seen = []
    second = run_sweep(small_spec(), out, "inline", progress=False, callback=seen.append)
    assert (second.ran, second.skipped, second.missing) == (5, 3, 0)
    assert {r["cell"] for r in seen}.isdisjoint(first.table["cell"])
    pd.testing.assert_frame_equal(comparable(second.table), comparable(inline_run.table),
                                  check_exact=True)
    third = run_sweep(small_spec(), out, "inline", progress=False)
    assert (third.ran, third.skipped) == (0, 8)


@pytest.mark.parametrize("kind", ["inline", "pool"])
def test_resume_after_interrupt(inline_run, tmp_path, kind):
    out, done = tmp_path / "r", []

    def interrupt(row):
        done.append(row["cell"])
        if len(done) == 2:
            raise KeyboardInterrupt

    ex = "inline" if kind == "inline" else make_executor("local", 2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(small_spec(), out, ex, progress=False, callback=interrupt)
    if kind == "pool":
        ex.shutdown(wait=True, cancel_futures=True)
    kept = {p.stem for p in (out / "cells").glob("*.parquet")}
    assert kept == set(done)  # both finished cells kept, nothing half-written
    assert not list((out / "cells").glob(".*"))
    again = run_sweep(small_spec(), out, "inline", progress=False)
    assert (again.ran, again.skipped) == (6, 2)
    pd.testing.assert_frame_equal(comparable(again.table), comparable(inline_run.table),
                                  check_exact=True)


# -- failures ----------------------------------------------------------------------------


def test_failed_cells_reported_kept_apart_and_retried(tmp_path):
    spec = SweepSpec([SAMPLE], ["BTC-USDT", "ETH-USDT"],
                     grid={"fee_tier": ["VIP1", "VIP2"]}, fixed={"notional": 1e3, **WINDOW})
    out = tmp_path / "f"
    r = run_sweep(spec, out, "inline", progress=False)
    assert (r.ran, r.failed, len(r.table)) == (4, 2, 4)
    t = r.table.set_index(["inst", "p_fee_tier"])
    assert t.loc[("BTC-USDT", "VIP1"), "status"] == "ok"
    assert t.loc[("BTC-USDT", "VIP1"), "fee_bps_mean"] == pytest.approx(5.0, rel=1e-4)
    bad_inst = t.loc[("ETH-USDT", "VIP1")]
    assert bad_inst["status"] == "error" and "ETH-USDT" in bad_inst["error"]
    assert math.isnan(bad_inst["net_bps_mean"])
    # (a tier the fee table lacks never gets here: tests/test_sweep_grid.py)
    # a re-run retries only the failed cells (they fail again: same data)
    again = run_sweep(spec, out, "inline", progress=False)
    assert (again.ran, again.skipped, again.failed) == (2, 2, 2)


def test_ticks_kept(tmp_path):
    spec = small_spec(grid={"notional": [1e3, 1e5]})
    r = run_sweep(spec, tmp_path / "t", "inline", progress=False, keep_ticks=True)
    for row in r.table.itertuples():
        ticks = pd.read_parquet(tmp_path / "t" / "ticks" / f"{row.cell}.parquet")
        assert len(ticks) == row.ticks and (ticks["cell"] == row.cell).all()
        full = ticks["complete"]
        assert float(ticks.loc[full, "net_bps"].mean()) == row.net_bps_mean
        assert int((~full).sum()) == row.incomplete_ticks


# -- specs -------------------------------------------------------------------------------


def test_cell_id_is_a_hash_of_the_canonical_params():
    params = {**defaults(), "notional": 1000.0}
    # a parameter added later (slippage_model) stays out of the id while unset: old ids hold
    old = {k: v for k, v in params.items() if k != "slippage_model"}
    blob = json.dumps(["simlab.sweep.cell/2", "rec", "BTC-USDT", old], sort_keys=True,
                      separators=(",", ":"))
    assert Cell("rec", "BTC-USDT", params).id == hashlib.sha256(blob.encode()).hexdigest()[:16]
    # 1000 and 1000.0, a datetime and its ISO string: the same cell
    a = SweepSpec(["rec"], ["BTC-USDT"], grid={"notional": [1000]},
                  fixed={"start": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}).cells()
    b = SweepSpec(["rec"], ["BTC-USDT"], grid={"notional": [1000.0]},
                  fixed={"start": "2026-01-01T00:00:00Z"}).cells()
    assert [c.id for c in a] == [c.id for c in b]
    assert a[0].params["start"] == "2026-01-01T00:00:00Z"


def test_cells_order_and_counts():
    s = SweepSpec(["r1", "r2"], ["A-B", "C-D"], grid={"notional": [1.0, 2.0],
                                                       "side": ["buy", "sell"]})
    cells = s.cells()
    assert len(cells) == 2 * 2 * 2 * 2 == len({c.id for c in cells})
    assert [(c.recording, c.inst, c.params["notional"], c.params["side"]) for c in cells[:5]] == [
        ("r1", "A-B", 1.0, "buy"), ("r1", "A-B", 1.0, "sell"), ("r1", "A-B", 2.0, "buy"),
        ("r1", "A-B", 2.0, "sell"), ("r1", "C-D", 1.0, "buy")]
    assert all(set(c.params) == set(PARAMS) for c in cells)
    assert s.varying() == ["side", "notional"]


@pytest.mark.parametrize("kw, match", [
    ({"grid": {"size": [1]}}, r"unknown parameter 'size'; known: side, notional, quantity"),
    ({"grid": {"notional": [1], "quantity": [1]}}, "exactly one"),
    ({"grid": {"side": ["buy"]}}, "notional .* or quantity"),
    ({"grid": {"notional": [-1]}}, "notional must be a finite number > 0, got -1"),
    ({"grid": {"notional": []}}, "non-empty list"),
    ({"grid": {"notional": [1, 1.0]}}, "duplicate"),
    ({"grid": {"notional": [1]}, "fixed": {"notional": 2}},
     r"\['notional'\] given in both grid and fixed"),
    ({"grid": {"notional": ["big"]}}, "notional must be a finite number"),
    ({"grid": {"order_type": ["stop"]}, "fixed": {"notional": 1}}, "order_type must be one of"),
    ({"fixed": {"notional": 1, "maker_fee": 0.0001}}, "maker_fee and taker_fee"),
    ({"fixed": {"notional": 1, "N": 2.5}}, "N must be an integer"),
    ({"fixed": {"notional": 1, "start": "yesterday"}}, "start"),
    ({"fixed": {"notional": 1}, "random": {"n": 2, "params": {"N": {"uniform": [1, 5]}}}},
     r"random: N: takes int values: use \{int"),
    ({"fixed": {"notional": 1}, "random": {"n": 2, "params": {"lam": {"normal": [0, 1]}}}},
     "distribution must be one of"),
    ({"fixed": {"notional": 1}, "random": {"n": 2, "params": {"eta": {"loguniform": [0, 1]}}}},
     "0 < lo"),
])
def test_spec_errors(kw, match):
    with pytest.raises(SpecError, match=match):
        SweepSpec.from_dict(kw, recordings=["rec"], insts=["BTC-USDT"])


def test_spec_file_errors(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("grid: {notional: [1}\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        SweepSpec.from_yaml(p, recordings="r", insts="X-Y")
    p.write_text("notional: [1]\n")
    with pytest.raises(SpecError, match=r"g.yaml: sweep spec: unknown keys \['notional'\]"):
        SweepSpec.from_yaml(p, recordings="r", insts="X-Y")
    p.write_text("grid: {notional: [1]}\n")
    with pytest.raises(SpecError, match="no insts"):
        SweepSpec.from_yaml(p, recordings="r")


def test_random_spec_is_deterministic():
    d = {"fixed": {"notional": 1e3},
         "random": {"n": 25, "seed": 7, "params": {
             "lam": {"loguniform": [1e-8, 1e-4]}, "T": {"uniform": [10, 120]},
             "N": {"int": [5, 8]}, "side": {"choice": ["buy", "sell"]}}}}
    a = SweepSpec.from_dict(d, recordings="r", insts="X-Y").cells()
    b = SweepSpec.from_dict(d, recordings="r", insts="X-Y").cells()
    assert [c.id for c in a] == [c.id for c in b] and len(a) == 25
    p = pd.DataFrame([c.params for c in a])
    assert p["lam"].between(1e-8, 1e-4).all() and p["T"].between(10, 120).all()
    assert set(p["N"]) <= {5, 6, 7, 8} and set(p["side"]) <= {"buy", "sell"}
    assert p["lam"].nunique() == 25
    # key order does not change the draws; another seed does
    d2 = {**d, "random": {**d["random"], "params": dict(reversed(
        list(d["random"]["params"].items())))}}
    assert [c.id for c in SweepSpec.from_dict(d2, recordings="r", insts="X-Y").cells()] == [
        c.id for c in a]
    d3 = {**d, "random": {**d["random"], "seed": 8}}
    assert {c.id for c in SweepSpec.from_dict(d3, recordings="r", insts="X-Y").cells()
            }.isdisjoint(c.id for c in a)


def test_yaml_round_trip(tmp_path):
    s = SweepSpec(["rec"], ["BTC-USDT"], grid={"notional": [1e3, 1e4], "fee_tier": ["Lv1"]},
                  fixed={"start": "2026-01-01T00:00:00Z", "impact": None},
                  random={"n": 3, "seed": 1, "params": {"lam": {"loguniform": [1e-8, 1e-4]}}})
    p = tmp_path / "s.yaml"
    s.to_yaml(p)
    back = SweepSpec.from_yaml(p)
    assert back == s and [c.id for c in back.cells()] == [c.id for c in s.cells()]
    assert back.fixed["impact"] == "none"
    # an unquoted YAML timestamp is the same time
    p.write_text("recordings: [rec]\ninsts: [BTC-USDT]\nfixed: {notional: 1000, start: "
                 "2026-01-01T00:00:00Z}\n")
    assert SweepSpec.from_yaml(p).cells()[0].params["start"] == "2026-01-01T00:00:00Z"


def test_make_executor_errors():
    with pytest.raises(ValueError, match="executor must be"):
        make_executor("threads")
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        make_executor("local", 0)
    with pytest.raises(ValueError, match="expected dask://HOST:PORT"):
        make_executor("dask://")


def test_example_grid_is_valid():
    s = SweepSpec.from_yaml(Path(__file__).resolve().parents[1] / "examples" / "sweep_grid.yaml")
    assert len(s.cells()) == 32


# -- CLI ---------------------------------------------------------------------------------


def test_cli_sweep(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(f"grid:\n  notional: [1000, 100000]\nfixed:\n  start: '{START}'\n"
                    f"  end: '{END}'\n")
    out = tmp_path / "res"
    args = ["sweep", SAMPLE, "--grid", str(grid), "--out", str(out), "--executor", "inline",
            "--no-progress"]
    assert main([*args, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["cells"], s["ran"], s["ok"], s["failed_cells"]) == (2, 2, 2, [])
    assert s["best"][0]["p_notional"] == 1000.0  # a small order costs less
    assert (out / "spec.yaml").exists() and len(load_results(out)) == 2
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "2 cells: 0 ran (0 failed), 2 already done" in text and str(out) in text
    # an instrument not in the recording: reported, exit 1
    assert main([*args, "--inst", "ETH-USDT"]) == 1
    assert "unknown instrument 'ETH-USDT'" in capsys.readouterr().out


def test_cli_sweep_draws_no_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    # without --no-progress the bar follows simlab.progress: off when stderr is a log
    grid = tmp_path / "g.yaml"
    grid.write_text(f"grid:\n  notional: [1000]\nfixed:\n  start: '{START}'\n"
                    f"  end: '{END}'\n")
    assert main(["sweep", SAMPLE, "--grid", str(grid), "--out", str(tmp_path / "res"),
                 "--executor", "inline", "--json"]) == 0
    err = capsys.readouterr().err
    assert "cell" not in err and "\r" not in err, err[:500]


def test_cli_bad_grid(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text("grid:\n  size: [1]\n")
    assert main(["sweep", SAMPLE, "--grid", str(grid), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "simlab sweep: error:" in err and "unknown parameter 'size'" in err
    assert "known: side, notional" in err


def test_cli_missing_recording(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text("insts: [BTC-USDT]\ngrid:\n  notional: [1000]\n")
    assert main(["sweep", str(tmp_path / "nope"), "--grid", str(grid), "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    assert "no such recording" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_sweep_flags_a_cell_the_book_cannot_fill(tmp_path, capsys):
    """The issue's case: a notional beyond the book's depth at every tick is not ranked at a
    cost of its partial fill; it is listed, with the share of ticks filled (0)."""
    from simlab.emulator.offline import write_synthetic_recording
    from simlab.sweep.compare import rank

    rec = write_synthetic_recording(tmp_path / "rec", seconds=3, seed=5)
    grid = tmp_path / "g.yaml"
    grid.write_text("grid:\n  notional: [1000, 1000000000000]\nfixed:\n  impact: none\n")
    out = tmp_path / "res"
    args = ["sweep", str(rec), "--grid", str(grid), "--out", str(out), "--executor",
            "inline", "--no-progress"]
    assert main([*args, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    t = load_results(out)
    big = t[t["p_notional"] == 1e12].iloc[0]
    assert big["complete_share"] == 0 and big["incomplete_ticks"] == big["ticks"] > 0
    assert math.isnan(big["net_bps_mean"]) and big["filled_share_min"] < 1e-3
    assert [r["p_notional"] for r in s["best"]] == [1000.0] and s["ranked"] == 1
    (flagged,) = s["incomplete_cells"]
    assert flagged["cell"] == big["cell"] and flagged["complete_share"] == 0
    assert main(args) == 0
    text = capsys.readouterr().out
    assert ("the book could not fill the order at every tick in 1 cell(s) (left out of the "
            "ranking; --include-incomplete ranks them):") in text
    assert f"{big['cell']} notional=1000000000000.0: whole order filled at 0.0% of" in text
    assert main([*args, "--json", "--include-incomplete"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [r["p_notional"] for r in s["best"]] == [1000.0, 1e12]
    with pytest.warns(UserWarning, match=big["cell"]):
        assert list(rank(t)["cell"]) == list(t.loc[t["p_notional"] == 1000.0, "cell"])


def test_time_basis_picks_the_clock_of_start_and_end():
    # the sample is received 5 ms after the exchange stamped it: the window's last tick,
    # stamped at END, is in on the exchange clock (the default) and out on the receive clock
    spec = small_spec(grid={"notional": [1e3], "time_basis": ["exchange", "recv"]})
    by = {r["p_time_basis"]: r for r in (run_cell(c) for c in spec.cells())}
    every, _ = price_recording(SAMPLE, OrderSpec("BTC-USDT", "buy", 1e3), impact=None)
    ts = every.table["ts_ms"] * 10**6
    recv = every.table["recv_ns"]
    lo, hi = (pd.Timestamp(x).value for x in (START, END))
    assert by["exchange"]["ticks"] == int(((ts >= lo) & (ts <= hi)).sum())
    assert by["recv"]["ticks"] == int(((recv >= lo) & (recv <= hi)).sum())
    assert by["exchange"]["ticks"] == by["recv"]["ticks"] + 1
    with pytest.raises(SpecError, match="time_basis must be one of"):
        small_spec(fixed={"time_basis": "local"}).cells()
