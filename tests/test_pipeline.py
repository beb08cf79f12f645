"""The per-tick cost pipeline (simlab.sim): hand-computed costs for spot and swap, the
per-event and columnar runs equal to the bit, byte-identical result files, the live run
reproduced by replaying its recording (with faults injected), bad input, and the CLI."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlab.cli import main as cli
from simlab.emulator import Fault, FaultSpec
from simlab.emulator.testing import RandomMarket
from simlab.feed import FrameTap, ReplaySource
from simlab.feed.replay import ReplayError
from simlab.models.fees import FeeRates, expected_fee
from simlab.models.fill_features import FILL_FEATURES
from simlab.models.impact import ACParams, cost_coefficients
from simlab.models.logistic import LogisticFillModel
from simlab.models.maker_taker import QueueShareModel
from simlab.models.slippage import slippage
from simlab.okx.fees import FeeTierError
from simlab.record import Recorder
from simlab.sim import CostPipeline, OrderSpec, price_recording
from simlab.sim.costs import CostConstants, tick_costs
from simlab.sim.pipeline import RESULT_COLUMNS
from simlab.sim.summary import format_summary
from simlab.store import Recording, RecordingWriter

T0 = 1_700_000_000_000_000_000
VIP1 = FeeRates(maker=0.00045, taker=0.0005)


def _book_recording(path, wire, inst, bids, asks, meta=None, updates=()):
    f = wire.BookFeed(inst)
    frames = [f.snapshot(bids, asks)] + [f.update(b, a) for b, a in updates]
    with RecordingWriter(path, {"importer": "test"}) as w:
        if meta:
            w.set_instrument(inst, meta)
        for i, fr in enumerate(frames):
            w.add(fr, T0 + i * 10**8)
    return path


def _both(path, order, **kw):
    kw.setdefault("metadata", ReplaySource(path).instruments)
    p = CostPipeline(order, **kw)
    a = p.run(ReplaySource(path, insts=[order.inst], channels=["books"]))
    b = p.run_recording(path)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    return a


def test_spot_market_buy_by_hand(tmp_path, wire):
    lv = wire.lv
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "1"), lv("98", "2")],
                           [lv("101", "1"), lv("102", "2")], {"instType": "SPOT"})
    res = _both(path, OrderSpec("BTC-USDT", "buy", 1.5, "base", fee_tier="VIP1"))
    (row,) = res.table.to_dict("records")
    # 1 @ 101 + 0.5 @ 102 = 152 quote; mid 100 -> slippage 2.0 quote = 2 / 150 = 133.33 bps
    assert row["filled_base"] == 1.5 and row["filled_quote"] == 152.0
    assert row["avg_price"] == pytest.approx(152 / 1.5)
    assert row["slippage_quote"] == pytest.approx(2.0)
    assert row["slippage_bps"] == pytest.approx(2.0 / 150.0 * 1e4)
    assert row["fee_quote"] == pytest.approx(152.0 * 0.0005)  # VIP1 spot taker 0.05 %
    assert row["maker_prob"] == 0.0 and row["impact_quote"] == 0.0 and row["complete"]
    assert row["net_quote"] == pytest.approx(2.0 + 0.076)


def test_swap_contracts_times_ct_val_by_hand(tmp_path, wire):
    lv = wire.lv
    # BTC-USDT-SWAP: sizes are contracts of 0.01 BTC; 100 contracts = 1 BTC
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT-SWAP",
                           [lv("99", "100"), lv("98", "200")], [lv("101", "100"), lv("102", "200")],
                           {"instType": "SWAP", "ctVal": "0.01", "ctType": "linear"})
    res = _both(path, OrderSpec("BTC-USDT-SWAP", "buy", 1.5, "base", fee_tier="Lv1"))
    (row,) = res.table.to_dict("records")
    # the same book as the spot test in BTC: 150 contracts -> 1.5 BTC for 152 USDT
    assert row["filled_base"] == pytest.approx(1.5)
    assert row["filled_quote"] == pytest.approx(152.0)
    assert row["fee_quote"] == pytest.approx(152.0 * 0.0005)  # Lv1 swap taker 0.05 %
    assert res.instrument.ct_val == 0.01


def test_sell_by_quote_notional_and_a_book_too_thin(tmp_path, wire):
    lv = wire.lv
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "1"), lv("98", "2")],
                           [lv("101", "1")], {"instType": "SPOT"})
    res = _both(path, OrderSpec("BTC-USDT", "sell", 197.0, "quote", fee_rates=VIP1))
    (row,) = res.table.to_dict("records")
    # 99 (1 @ 99) + 98 (1 @ 98) = 197 quote for 2 BTC; mid 100 -> slippage 3 quote
    assert row["filled_base"] == pytest.approx(2.0)
    assert row["slippage_quote"] == pytest.approx(3.0) and row["complete"]
    thin = _both(path, OrderSpec("BTC-USDT", "sell", 10.0, "base", fee_rates=VIP1))
    (row,) = thin.table.to_dict("records")
    assert not row["complete"] and row["filled_base"] == 3.0  # never extrapolated
    assert thin.summary()["incomplete_fills"] == 1


def test_filled_share_of_an_order_bigger_than_the_book_by_hand(tmp_path, wire):
    lv = wire.lv
    # asks: 1 @ 101 + 2 @ 102 = 3 BTC for 305 USDT; then the book deepens to 20 BTC
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "1")],
                           [lv("101", "1"), lv("102", "2")], {"instType": "SPOT"},
                           updates=[([], [lv("103", "17")])])
    base = _both(path, OrderSpec("BTC-USDT", "buy", 18.0, "base"))
    first, second = base.table.to_dict("records")
    assert not first["complete"] and first["filled_share"] == 3.0 / 18.0  # depth / order
    assert second["complete"] and second["filled_share"] == 1.0
    quote = _both(path, OrderSpec("BTC-USDT", "buy", 1000.0, "quote"))
    assert quote.table["filled_share"].iloc[0] == 305.0 / 1000.0
    swap = _book_recording(tmp_path / "s", wire, "BTC-USDT-SWAP", [lv("99", "100")],
                           [lv("101", "100"), lv("102", "200")],
                           {"instType": "SWAP", "ctVal": "0.01", "ctType": "linear"})
    r = _both(swap, OrderSpec("BTC-USDT-SWAP", "buy", 6.0, "base"))
    assert r.table["filled_share"].iloc[0] == pytest.approx(3.0 / 6.0, rel=1e-15)

    s = base.summary()
    f = s["fills"]
    assert (f["ticks"], f["complete"], f["incomplete"], f["covered_ticks"]) == (2, 1, 1, 1)
    assert f["incomplete_filled_share"]["p50"] == 3.0 / 18.0
    # the statistics are the complete tick's, the incomplete one's are reported apart
    assert s["costs_cover"] == "complete" and s["costs"]["net_bps"]["count"] == 1
    assert s["costs"]["net_bps"]["mean"] == second["net_bps"]
    assert s["costs_incomplete"]["net_bps"]["mean"] == first["net_bps"]
    text = format_summary(s)
    assert ("1 of 2 ticks (50.0 %) the book could not fill the order: filled share p50 "
            "0.167; statistics below cover the 1 complete ticks") in text
    every = base.summary(include_incomplete=True)
    assert every["costs_cover"] == "all" and every["costs"]["net_bps"]["count"] == 2
    assert "statistics below cover all 2 ticks" in format_summary(every)


def test_a_book_that_never_fills_the_order_gives_no_statistic(tmp_path, wire):
    lv = wire.lv
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "1")],
                           [lv("101", "1"), lv("102", "2")], {"instType": "SPOT"})
    s = _both(path, OrderSpec("BTC-USDT", "buy", 18.0, "base")).summary()
    assert s["fills"]["covered_ticks"] == 0 and s["costs"]["slippage_bps"]["count"] == 0
    assert math.isnan(s["costs"]["slippage_bps"]["mean"])
    text = format_summary(s)
    assert "WARNING: the book could not fill the order at any of the 1 ticks" in text
    assert "no cost statistic is available" in text


def test_limit_order_mixes_passive_and_crossing(tmp_path, wire):
    lv = wire.lv
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "3")],
                           [lv("101", "5"), lv("102", "5")], {"instType": "SPOT"})
    res = _both(path, OrderSpec("BTC-USDT", "buy", 2.0, "base", "limit", fee_rates=VIP1))
    (row,) = res.table.to_dict("records")
    p = 5.0 / (5.0 + 3.0 + 2.0)  # the default queue-share model: opp / (opp + ahead + q)
    assert row["maker_prob"] == pytest.approx(p)
    # passive: earn half the spread on 2 BTC (-2.0); crossing: 2 @ 101 vs mid 100 (+2.0)
    assert row["slippage_quote"] == pytest.approx(p * -2.0 + (1 - p) * 2.0)
    assert row["fee_quote"] == pytest.approx(202.0 * (p * 0.00045 + (1 - p) * 0.0005))


def test_impact_is_the_almgren_chriss_quadratic(tmp_path, wire):
    lv = wire.lv
    path = _book_recording(tmp_path / "r", wire, "BTC-USDT", [lv("99", "10")],
                           [lv("101", "10")], {"instType": "SPOT"})
    ac = ACParams(sigma=3.0, eta=0.05, gamma=0.002, epsilon=0.1, lam=1e-4, T=60, N=10)
    res = _both(path, OrderSpec("BTC-USDT", "buy", 4.0, "base"), impact=ac)
    from simlab.models.impact import expected_cost_closed

    # AC's expected cost minus its epsilon X term (the spread, counted by the book walk)
    want = expected_cost_closed(ac, 4.0) - 0.1 * 4.0
    assert res.table["impact_quote"].iloc[0] == pytest.approx(want, rel=1e-12)


def test_columnar_equals_events_on_the_real_capture(capture_recording):
    meta = ReplaySource(capture_recording).instruments
    ac = ACParams(sigma=5.0, eta=1e-2, gamma=1e-3, lam=1e-6, T=60, N=10)
    for kind in ("market", "limit"):
        for side in ("buy", "sell"):
            o = OrderSpec("BTC-USDT", side, 50_000.0, "quote", kind, "VIP1")
            res = _both(capture_recording, o, impact=ac, metadata=meta)
            assert len(res.table) == 98 and res.table["complete"].all()


def test_result_files_are_byte_identical(capture_recording, tmp_path):
    o = OrderSpec("BTC-USDT", "buy", 100.0, "quote", fee_tier="VIP1")
    paths = []
    for i, mode in enumerate(("columnar", "columnar", "events")):
        res, _ = price_recording(capture_recording, o, mode=mode)
        paths.append(res.to_parquet(tmp_path / f"r{i}.parquet"))
    data = [p.read_bytes() for p in paths]
    assert data[0] == data[1] == data[2]
    assert list(pd.read_parquet(paths[0]).columns) == list(RESULT_COLUMNS)


# -- live == replay ------------------------------------------------------------------------------
FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2, "close_timeout": 0.5,
        "splice_wait": 1.0, "rest_retry_base": 0.05, "rest_retry_max": 0.2}


# A maker/taker model that reads history (trade flow, OFI, volatility ...): the pipeline
# then keeps a feature state, which gaps and resyncs must affect alike live and in replay.
HISTORY_MODEL = LogisticFillModel(
    features=FILL_FEATURES, mean=(0.0,) * len(FILL_FEATURES), scale=(1.0,) * len(FILL_FEATURES),
    coef=(-0.3, 0.2, 0.1, 0.5, -0.2, 0.05, 0.02, -0.01, -0.4), intercept=0.3,
    info={"feature_params": {"lookback_ms": 1000, "depth_levels": 5}, "tick_size": 0.01})


@pytest.mark.parametrize("model", [None, HISTORY_MODEL], ids=["queue-share", "history"])
def test_live_results_equal_the_replay_of_their_recording(emulator_factory, tmp_path, model):
    """Price BTC-USDT live while recording, with a gap, a bad checksum, a duplicate and a
    reorder injected; replaying the recording must give exactly the live table."""
    # armed on the client's connection as it connects, counted in BTC-USDT updates (not
    # in seconds: a slow start must not make them miss)
    faults = [FaultSpec(Fault.GAP, inst="BTC-USDT", channel="books", after=3),
              FaultSpec(Fault.DUPLICATE, inst="BTC-USDT", channel="books", after=8),
              FaultSpec(Fault.CHECKSUM, inst="BTC-USDT", channel="books", after=13),
              FaultSpec(Fault.REORDER, inst="BTC-USDT", channel="books", after=18)]
    emu = emulator_factory(RandomMarket(seed=3, rate=300, instruments=["BTC-USDT", "ETH-USDT"]),
                           faults=faults)
    order = OrderSpec("BTC-USDT", "buy", 2_000.0, "quote", "limit", "VIP1")
    ac = ACParams(sigma=1.0, eta=0.01, gamma=0.0, lam=1e-6, T=30, N=5)
    live = CostPipeline(order, impact=ac, metadata={"BTC-USDT": {"instType": "SPOT"}},
                        model=model)
    out = tmp_path / "rec"
    subs = [("books", "BTC-USDT"), ("trades", "BTC-USDT"), ("books", "ETH-USDT")]
    rec = Recorder(out, subs, duration=3.0, rotate=0.5, ws_url=emu.ws_url,
                   rest_url=emu.rest_url, tap=FrameTap(live.on_event), **FAST)
    asyncio.run(rec.run())
    got = live.result()
    assert got.counts["invalid"] > 0 and got.counts["priced"] > 20  # the faults were seen
    events = Recording(out).manifest["events"]
    assert {"gap", "checksum_failed"} <= {e["kind"] for e in events if "expected_prev" in e}
    replay = CostPipeline(order, impact=ac, instrument=live.instrument, model=model)
    for res in (replay.run(ReplaySource(out, insts=["BTC-USDT"], channels=replay.channels)),
                replay.run_recording(out)):
        pd.testing.assert_frame_equal(got.table, res.table, check_exact=True)
    if model is not None:  # the history mattered: trades were seen and fed
        assert got.table["maker_prob"].nunique() > 5
    assert replay.run_recording(out).counts["streams"][0]["validity"] == "manifest"


# -- the formula, two modes ----------------------------------------------------------------------
floats = st.floats(0.01, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(floats, floats, floats, floats, floats, floats), min_size=1,
                max_size=20), st.booleans(), st.booleans())
def test_tick_costs_floats_and_arrays_give_the_same_bits(rows, buy, limit):
    c = CostConstants(buy, limit, 0.01, VIP1, 1e-4, QueueShareModel(), 3.0)
    a = np.array(rows).T
    bid, spread, bsz, asz, fb, fq = a
    ask = bid + spread
    arr = tick_costs(bid, ask, bsz, asz, fb, fq, np.zeros(len(bid)), c)
    for i in range(len(bid)):
        one = tick_costs(float(bid[i]), float(ask[i]), float(bsz[i]), float(asz[i]),
                         float(fb[i]), float(fq[i]), 0.0, c)
        for k, v in one.items():
            assert np.array_equal(np.float64(v), np.float64(arr[k][i]), equal_nan=True), k


@settings(max_examples=100, deadline=None)
@given(floats, floats, floats, floats, st.booleans())
def test_tick_costs_agree_with_the_model_functions(bid, spread, fb, fq, buy):
    c = CostConstants(buy, False, 1.0, VIP1, 0.0, QueueShareModel(), 1.0)
    ask = bid + spread
    r = tick_costs(bid, ask, 1.0, 1.0, fb, fq, 0.0, c)
    s = slippage(fb, fq, (bid + ask) * 0.5, "buy" if buy else "sell")
    assert r["slippage_quote"] == s.slippage_quote and r["slippage_bps"] == s.slippage_bps
    assert r["fee_quote"] == expected_fee(fq, 0.0, VIP1)
    assert cost_coefficients(ACParams(sigma=1, eta=1, gamma=0, T=1, N=1))[1] > 0


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "message"), [
    (lambda: OrderSpec("BTC-USDT", "buy", 0),
     r"^notional \(quantity in quote currency\) must be a finite number > 0, got 0$"),
    (lambda: OrderSpec("BTC-USDT", "buy", -5.0, "base"),
     r"^quantity \(in base currency\) must be a finite number > 0, got -5.0$"),
    (lambda: OrderSpec("BTC-USDT", "hold", 1.0), "side must be 'buy' or 'sell'"),
    (lambda: OrderSpec("BTC-USDT", "buy", 1.0, "lots"), "unit must be 'base' or 'quote'"),
    (lambda: OrderSpec("BTC-USDT", "buy", 1.0, order_type="stop"), "order_type must be"),
])
def test_bad_orders_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_fee_tier_names_the_tier():
    with pytest.raises(FeeTierError, match="VIP42"):
        CostPipeline(OrderSpec("BTC-USDT", "buy", 1.0, fee_tier="VIP42"))
    with pytest.raises(FeeTierError, match="no tier 'VIP3' for SWAP"):
        CostPipeline(OrderSpec("BTC-USDT-SWAP", "buy", 1.0, fee_tier="VIP3"),
                     metadata={"BTC-USDT-SWAP": {"instType": "SWAP", "ctVal": "0.01"}})


def test_bad_replay_inputs_are_named(capture_recording):
    with pytest.raises(ValueError, match="unknown instrument 'ETH-USDT'"):
        price_recording(capture_recording, OrderSpec("ETH-USDT", "buy", 1.0))
    with pytest.raises(ValueError, match="outside the recording"):
        price_recording(capture_recording, OrderSpec("BTC-USDT", "buy", 1.0),
                        start="2030-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="inverse contracts"):
        price_recording(capture_recording, OrderSpec("UNI-USD-SWAP", "buy", 1.0))


# -- the command line ----------------------------------------------------------------------------
def test_cli_replay_json_and_parquet(capture_recording, tmp_path, capsys):
    out = tmp_path / "ticks.parquet"
    code = cli(["replay", str(capture_recording), "--inst", "BTC-USDT", "--side", "buy",
                "--notional", "100", "--fee-tier", "VIP1", "--json", "--out", str(out)])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ticks"] == 98 and s["order"]["fee_tier"] == "VIP1"
    for k in ("slippage_bps", "impact_bps", "fee_bps", "net_bps", "maker_prob"):
        assert set(s["costs"][k]) >= {"mean", "p50", "p90", "p99"}
    assert s["costs"]["fee_bps"]["p50"] == pytest.approx(5.0, abs=1e-3)  # VIP1 taker
    assert set(s["run"]["impact_provenance"]) >= {"sigma", "eta", "gamma"}
    t = pd.read_parquet(out)
    assert len(t) == 98 and list(t.columns) == list(RESULT_COLUMNS)


def test_cli_replay_table_and_latency(capture_recording, capsys):
    assert cli(["replay", str(capture_recording), "--inst", "BTC-USDT", "--side", "sell",
                "--quantity", "0.5", "--mode", "events"]) == 0
    out = capsys.readouterr().out
    assert "net cost (bps)" in out and "latency per tick" in out and "p99" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--inst", "ETH-USDT"], "unknown instrument 'ETH-USDT'"),
    (["--inst", "BTC-USDT", "--fee-tier", "VIP99"], "VIP99"),
    (["--inst", "BTC-USDT", "--start", "2031-01-01"], "outside the recording"),
])
def test_cli_replay_bad_input_exits_2(capture_recording, capsys, args, message):
    size = ["--side", "buy", "--notional", "100"]
    assert cli(["replay", str(capture_recording), *args, *size]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(("flag", "value"), [("--notional", "0"), ("--notional", "-100"),
                                             ("--quantity", "-0.5"), ("--quantity", "nan")])
def test_cli_replay_rejects_a_bad_size_naming_the_flag(capture_recording, capsys, flag, value):
    assert cli(["replay", str(capture_recording), "--inst", "BTC-USDT", "--side", "buy",
                flag, value]) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} must be a finite number > 0, got {float(value)!r}" in err
    other = "--quantity" if flag == "--notional" else "--notional"
    assert other not in err


def test_nan_free_summary_of_an_empty_result(capture_recording):
    p = CostPipeline(OrderSpec("BTC-USDT", "buy", 1.0))
    res = p.result()
    s = res.summary()
    assert s["ticks"] == 0 and math.isnan(s["costs"]["net_bps"]["mean"])


@pytest.mark.parametrize("mode", ["columnar", "events"])
def test_a_window_with_no_tick_to_price_fails(mode, capsys):
    # inside the recording's span, yet no book message in 0.1 ms: no cost to report
    sample = str(Path(__file__).resolve().parents[1] / "data" / "sample")
    window = ["--time-basis", "recv", "--start", "2026-01-01T00:00:01.0005Z",
              "--end", "2026-01-01T00:00:01.0006Z"]
    with pytest.raises(ReplayError, match="no tick priced: books:BTC-USDT"):
        price_recording(sample, OrderSpec("BTC-USDT", "buy", 100.0), mode=mode,
                        impact=None, time_basis="recv", start=window[3], end=window[5])
    assert cli(["replay", sample, "--inst", "BTC-USDT", "--side", "buy", "--notional",
                "100", "--no-impact", "--mode", mode, *window]) == 2
    assert "no tick priced" in capsys.readouterr().err


def test_sampling_interval_keeps_the_last_tick_of_each(capture_recording, tmp_path):
    res, _ = price_recording(capture_recording, OrderSpec("BTC-USDT", "buy", 100.0))
    s = res.sampled(1.0)
    sec = res.table["recv_ns"] // 10**9
    assert len(s) == sec.nunique() and s["ticks"].sum() == len(res.table)
    # each row is the last tick of its second
    want = res.table.groupby(sec).tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(s.drop(columns="ticks"), want)
    out = tmp_path / "s.parquet"
    assert cli(["replay", str(capture_recording), "--inst", "BTC-USDT", "--side", "buy",
                "--notional", "100", "--out", str(out), "--every", "1"]) == 0
    assert len(pd.read_parquet(out)) == len(s)
    with pytest.raises(ValueError, match="every must be"):
        res.sampled(0)


# -- unfillable orders on the command line -----------------------------------------------------
@pytest.fixture(scope="module")
def synth_recording(tmp_path_factory):
    from simlab.emulator.offline import write_synthetic_recording

    path = tmp_path_factory.mktemp("synth") / "rec"
    write_synthetic_recording(path, seconds=5, seed=4)
    return path


def test_cli_replay_of_an_order_no_tick_can_fill_exits_1(synth_recording, tmp_path, capsys):
    out = tmp_path / "t.parquet"
    args = ["replay", str(synth_recording), "--inst", "BTC-USDT", "--side", "buy",
            "--notional", "1e12", "--no-impact"]
    assert cli([*args, "--json", "--out", str(out)]) == 1
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    n = s["ticks"]
    assert n > 0 and s["fills"]["incomplete"] == n and s["fills"]["covered_ticks"] == 0
    assert s["costs"]["net_bps"]["count"] == 0 and s["costs"]["net_bps"]["mean"] is None
    assert f"warning: the book could not fill the order at any of the {n:,} ticks" in cap.err
    t = pd.read_parquet(out)
    assert not t["complete"].any() and (t["filled_share"] < 1e-3).all()
    assert cli(args) == 1
    text = capsys.readouterr().out
    assert "WARNING: the book could not fill" in text and "no cost statistic" in text
    # asked for, the part filled is priced, and said to be
    assert cli([*args, "--include-incomplete"]) == 0
    assert "statistics below cover all" in capsys.readouterr().out


def test_cli_replay_reports_the_ticks_the_book_could_not_fill(synth_recording, tmp_path,
                                                              capsys):
    depth = price_recording(synth_recording, OrderSpec("BTC-USDT", "buy", 1e12),
                            impact=None)[0].table["filled_quote"]
    notional = float(depth.median())
    short = int((depth < notional).sum())
    assert 0 < short < len(depth)
    out = tmp_path / "t.parquet"
    assert cli(["replay", str(synth_recording), "--inst", "BTC-USDT", "--side", "buy",
                "--notional", repr(notional), "--no-impact", "--json", "--out",
                str(out)]) == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    f = s["fills"]
    assert (f["incomplete"], f["complete"], f["covered_ticks"]) == (short, len(depth) - short,
                                                                   len(depth) - short)
    assert s["costs"]["net_bps"]["count"] == len(depth) - short
    assert s["costs_incomplete"]["net_bps"]["count"] == short
    assert f"{short:,} of {len(depth):,} ticks" in cap.err
    t = pd.read_parquet(out)
    np.testing.assert_array_equal(t["filled_share"] < 1, ~t["complete"])
    assert int((~t["complete"]).sum()) == short
    assert f["incomplete_filled_share"]["p50"] == pytest.approx(
        float(np.median(t.loc[~t["complete"], "filled_share"])))


# -- one scan per pricing run ------------------------------------------------------------------
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture
def reads(monkeypatch):
    """Every file of a recording the reader's entry points read, and how many times."""
    from collections import Counter

    seen: Counter = Counter()

    def counting(name):
        read = getattr(Recording, name)

        def counted(self, *args, **kw):
            dataset = "raw" if name == "iter_raw" else (args[0] if args else kw["dataset"])
            for e in self.files(dataset, channel=kw.get("channel"), inst=kw.get("inst")):
                seen[e["path"]] += 1
            return read(self, *args, **kw)
        monkeypatch.setattr(Recording, name, counted)

    for name in ("table", "stream_table", "iter_raw"):
        counting(name)
    return seen


def _slippage_model():
    from simlab.models.slippage_regression import SlippageRegression

    return SlippageRegression(("spread_bps",), (0.0,), (1.0,), (1.0,), 0.0, (0.5,), ((1.0,),),
                              (0.0,), info={"side": "buy"})


@pytest.mark.parametrize("mode", ["columnar", "events"])
@pytest.mark.parametrize("window", [{}, {"start": "2026-01-01T00:02:00Z",
                                         "end": "2026-01-01T00:05:00Z"},
                                    {"start": "2026-01-01T00:02:00Z", "time_basis": "recv"}],
                         ids=["all", "exchange-range", "recv-start"])
@pytest.mark.parametrize("trades", [False, True], ids=["book", "book+trades"])
def test_a_pricing_run_reads_each_file_of_the_recording_once(reads, mode, window, trades):
    # calibrated impact (levels, receive times, trades), the range checks, the seek point,
    # the run itself and, with a trained slippage model, the trade flow: one read of each
    order = OrderSpec("BTC-USDT", "buy", 1000.0)
    res, info = price_recording(str(SAMPLE), order, mode=mode,
                                slippage_model=_slippage_model() if trades else None, **window)
    assert len(res.table) and "impact_provenance" in info
    assert reads and max(reads.values()) == 1, {k: v for k, v in reads.items() if v > 1}
    datasets = {p.split("/")[0] for p in reads}
    # the raw frames only when the run decodes them (events); columnar reads none
    assert datasets == ({"levels", "trades", "raw"} if mode == "events"
                        else {"levels", "trades"})
    # and the numbers are those of a plain, unscanned, pipeline run
    p = CostPipeline(order, impact=res.impact, instrument=res.instrument,
                     slippage_model=_slippage_model() if trades else None)
    start, end = window.get("start"), window.get("end")
    basis = window.get("time_basis", "exchange")
    want = (p.run_recording(str(SAMPLE), start=start, end=end, time_basis=basis)
            if mode == "columnar" else
            p.run(ReplaySource(str(SAMPLE), insts=["BTC-USDT"], channels=p.channels,
                               start=start, end=end, time_basis=basis)))
    pd.testing.assert_frame_equal(res.table, want.table, check_exact=True)
