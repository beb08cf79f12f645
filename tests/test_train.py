"""Learning from recordings (issue 6): labels, the logistic maker/taker model, the slippage
regression, persistence, the pipeline with a trained model, and ``simlab train``."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from simlab.cli import main
from simlab.emulator import write_synthetic_recording
from simlab.emulator.cst import CSTParams
from simlab.feed.replay import ReplaySource
from simlab.models.logistic import LogisticFillModel
from simlab.models.maker_taker import QueueShareModel
from simlab.models.persist import load_model
from simlab.sim.fill_dataset import fill_dataset
from simlab.sim.order import OrderSpec
from simlab.sim.pipeline import CostPipeline
from simlab.sim.train import train_maker_taker, train_slippage

SECONDS = 1200
QTY = 0.01  # BTC: a fifth of the typical best queue of this market
# Market orders at 8/s (CST's paper: 1.88/s) so that their direction, which the generator
# ties to the imbalance, drives a good share of the fills.
PARAMS = CSTParams(mu=8.0, depth=100)


@pytest.fixture(scope="module")
def tilted(tmp_path_factory):
    """{beta: recording}: market buys at mu/2 (1 + beta I), sells at mu/2 (1 - beta I),
    I = (qb - qa) / (qb + qa). beta > 0: a passive order fills more often when the
    opposite queue is the heavier one (oriented imbalance > 0); beta < 0: less often."""
    root = tmp_path_factory.mktemp("tilted")
    return {beta: write_synthetic_recording(root / f"b{beta}", seconds=SECONDS,
                                            imbalance=beta, params=PARAMS, seed=2)
            for beta in (0.9, -0.9)}


@pytest.fixture(scope="module")
def trained(tilted):
    return {beta: train_maker_taker(rec, "BTC-USDT", quantity=QTY, horizon_s=1.0)
            for beta, rec in tilted.items()}


def test_the_generator_makes_fills_likelier_with_imbalance(trained):
    """The ground truth, seen in the labels: fill rate by imbalance tercile."""
    d = trained[0.9].dataset
    d = d[d["label"] >= 0]
    rate = d.groupby(pd.qcut(d["imbalance"], 3), observed=True)["label"].mean().to_numpy()
    assert rate[0] < rate[1] < rate[2] and rate[2] - rate[0] > 0.15


@pytest.mark.parametrize("beta, sign", [(0.9, 1.0), (-0.9, -1.0)])
def test_the_model_recovers_the_direction_and_beats_the_base_rate(trained, beta, sign):
    r = trained[beta]
    coef = dict(zip(r.model.features, r.model.coef, strict=True))
    assert sign * coef["imbalance"] > 0.1
    m = r.metrics
    # out of sample, in time order: every test moment is later than every training one
    assert m["test"]["first_ts_ms"] > r.model.info["training"]["last_ts_ms"]
    assert m["log_loss"] < m["base_log_loss"] and m["brier"] < m["base_brier"]
    assert m["auc"] > 0.55
    if beta > 0:  # the stronger signal: a clear margin
        assert m["log_loss_skill"] > 0.05 and m["auc"] > 0.65
    # its probabilities are calibrated where it has data: each reliability bin with 50+
    # test moments is within 0.1 of the observed rate
    c = r.curve[r.curve["n"] >= 50]
    assert len(c) >= 3 and (c["mean_pred"] - c["frac_pos"]).abs().max() < 0.1


def _direct_labels(rec, rows, horizon_ms):
    """Labels counted directly from the decoded events (the raw frames, not the levels
    table and compiled book the labeller uses), with the rules stated as 'any of'."""
    books, trades = [], []
    for ev in ReplaySource(rec, channels=["books", "trades"]):
        if ev.kind == "book":
            b = ev.book
            books.append((ev.arrival, ev.recv_ns, ev.ts_ms, b.best_bid, b.best_bid_size,
                          b.best_ask, b.best_ask_size, ev.valid and not ev.snapshot))
        elif ev.kind == "trade":
            trades.append((ev.arrival, ev.ts_ms, ev.price, ev.size, ev.side == "buy"))
    by_recv = {b[1]: b for b in books}
    out = []
    for row in rows.itertuples():
        a, _, t0, bid, bsz, ask, asz, _ = by_recv[row.recv_ns]
        buy = row.side == "buy"
        P, ahead = (bid, bsz) if buy else (ask, asz)
        t1 = t0 + horizon_ms
        later_books = [b for b in books if b[0] > a and b[2] <= t1]
        later_trades = [t for t in trades if t[0] > a and t0 < t[1] <= t1]
        through = any((t[2] < P) if buy else (t[2] > P) for t in later_trades)
        opposite = any((b[5] <= P) if buy else (b[3] >= P) for b in later_books) or any(
            t[2] == P and t[4] == buy for t in later_trades)
        volume = sum(t[3] for t in later_trades if t[2] == P and t[4] != buy)
        out.append(int(through or opposite or volume >= (ahead + row.order_size) * (1 - 1e-12)))
    return np.array(out)


def test_the_labellers_fill_rate_matches_a_direct_count(tilted):
    rec = tilted[0.9]
    df = fill_dataset(rec, "BTC-USDT", quantity=QTY, horizon_s=1.0, every_s=3.0)
    kept = df[df["label"] >= 0]
    assert len(kept) > 700 and set(df["reason"]) <= {"trade_through", "opposite", "queue",
                                                      "none", "end"}
    direct = _direct_labels(rec, kept, 1000)
    assert kept["label"].mean() == direct.mean()
    assert (kept["label"].to_numpy() == direct).all()


def test_retraining_gives_the_same_json(tilted, trained, tmp_path):
    a = trained[0.9].save(tmp_path / "a.json")
    b = train_maker_taker(tilted[0.9], "BTC-USDT", quantity=QTY, horizon_s=1.0).save(
        tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()
    m = load_model(a)
    assert m == trained[0.9].model
    info = json.loads(a.read_text())["info"]
    assert info["training"]["recordings"] == ["b0.9"]     # a name, not this machine's path
    assert info["horizon_s"] == 1.0 and info["queue"] == "conservative"


def test_a_trained_model_prices_live_and_replayed_ticks_alike(tilted, trained):
    rec, model = tilted[0.9], trained[0.9].model
    order = OrderSpec("BTC-USDT", "sell", QTY, "base", "limit")
    meta = ReplaySource(rec).instruments
    col = CostPipeline(order, model=model, metadata=meta).run_recording(rec)
    p = CostPipeline(order, model=model, metadata=meta)
    assert p.channels == ["books", "trades"]
    ev = p.run(ReplaySource(rec, channels=p.channels))   # the live code path, per event
    pd.testing.assert_frame_equal(col.table, ev.table, check_exact=True)
    # ... and it gives the model exactly the features it was trained on
    ds = fill_dataset(rec, "BTC-USDT", quantity=QTY, horizon_s=1.0, side="sell")
    j = ds.merge(col.table[["recv_ns", "maker_prob"]], on="recv_ns")
    assert len(j) > 1000
    assert np.array_equal(model.predict_frame(j), j["maker_prob"].to_numpy())
    # recordings in sequence: each from an empty book and a fresh feature state
    two = [rec, rec]
    pd.testing.assert_frame_equal(
        CostPipeline(order, model=model, metadata=meta).run_recording(two).table,
        p.run(ReplaySource(two, channels=p.channels)).table, check_exact=True)
    # and it is not the default heuristic
    qs = CostPipeline(order, metadata=meta).run_recording(rec).table["maker_prob"]
    assert not np.allclose(qs.to_numpy(), col.table["maker_prob"].to_numpy())


def test_slippage_quantiles_cover_out_of_sample(tilted):
    r = train_slippage(tilted[0.9], "BTC-USDT", side="buy")
    test = r.dataset[r.dataset["split"] == "test"]
    moments = test["ts_ms"].nunique()
    assert moments > 300
    for q, cov in zip(r.curve["quantile"], r.curve["coverage"], strict=True):
        # tolerance: three binomial standard errors, counting test MOMENTS, not rows (the
        # five sizes walked at one moment are strongly correlated)
        tol = 3 * math.sqrt(q * (1 - q) / moments)
        assert abs(cov - q) <= tol, (q, cov, tol)
    # the mean model explains most of the variance: slippage grows with size over depth
    assert r.metrics["r2"] > 0.5
    coef = dict(zip(r.model.features, r.model.coef, strict=True))
    assert coef["size_rel_depth"] > 0


def test_labels_need_the_trades(tmp_path):
    rec = write_synthetic_recording(tmp_path / "r", seconds=20, channels=("books",))
    with pytest.raises(ValueError, match=r"no trades recorded for BTC-USDT.*--channels"):
        fill_dataset(rec, "BTC-USDT", quantity=QTY)


@pytest.mark.parametrize("kw, message", [
    (dict(features=("queue_ahead", "colour")), "features must be a non-empty subset"),
    (dict(horizon_s=0), "horizon_s must be a number of seconds > 0"),
    (dict(quantity=-1.0), "quantity must be a number > 0"),
    (dict(side="up"), "side must be one of"),
])
def test_bad_training_settings_are_named(tilted, kw, message):
    args = dict(quantity=QTY, horizon_s=1.0) | kw
    with pytest.raises(ValueError, match=message):
        train_maker_taker(tilted[0.9], "BTC-USDT", **args)


def test_cli_train_and_replay_with_the_model(tilted, tmp_path, capsys):
    rec = str(tilted[0.9])
    model = tmp_path / "mt.json"
    assert main(["-q", "train", "maker-taker", rec, "--inst", "BTC-USDT", "--quantity",
                 str(QTY), "--horizon", "1s", "--out", str(model), "--plot",
                 str(tmp_path / "rel.png")]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "base rate" in out and "imbalance" in out
    assert (tmp_path / "rel.png").stat().st_size > 10_000
    assert isinstance(load_model(model), LogisticFillModel)
    assert main(["replay", rec, "--inst", "BTC-USDT", "--side", "buy", "--quantity",
                 str(QTY), "--order-type", "limit", "--maker-taker-model", str(model),
                 "--no-impact", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["run"]["maker_taker_model"]["features"][0] == "queue_ahead"
    slip = tmp_path / "slip.json"
    assert main(["-q", "train", "slippage", rec, "--inst", "BTC-USDT", "--out", str(slip),
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics["coverage"]) == {"q50", "q90", "q99"}
    # a slippage model is not a maker/taker model; a market order has no use for one
    for args, message in (
            (["--order-type", "limit", "--maker-taker-model", str(slip)],
             "not a maker/taker model"),
            (["--maker-taker-model", str(model)], "add --order-type limit"),
            (["--order-type", "limit", "--maker-taker-model", str(tmp_path / "nope.json")],
             "nope.json")):
        assert main(["replay", rec, "--inst", "BTC-USDT", "--side", "buy", "--quantity",
                     "0.01", "--no-impact", *args]) == 2
        assert message in capsys.readouterr().err


def test_cli_train_bad_input_exits_2(tilted, tmp_path, capsys):
    assert main(["train", "maker-taker", str(tilted[0.9]), "--inst", "ETH-USDT", "--quantity",
                 "1", "--out", str(tmp_path / "m.json")]) == 2
    assert "ETH-USDT" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_default_heuristic_is_unchanged_without_a_model(tilted):
    p = CostPipeline(OrderSpec("BTC-USDT", "buy", QTY, "base", "limit"),
                     metadata=ReplaySource(tilted[0.9]).instruments)
    assert p.channels == ["books"] and p.state is None
    assert isinstance(p.model, QueueShareModel)


# -- issue 15: models are easy to over-trust -------------------------------------------------
START = 1_767_225_600_000


@pytest.fixture(scope="module")
def regime_change(tmp_path_factory):
    """Two recordings in time order whose fills respond to imbalance in opposite ways: a
    model fitted on the first is worse than the base rate on the second."""
    root = tmp_path_factory.mktemp("regime")
    return [write_synthetic_recording(root / "up", seconds=400, imbalance=0.9, params=PARAMS,
                                      seed=3, start_ms=START),
            write_synthetic_recording(root / "down", seconds=400, imbalance=-0.9,
                                      params=PARAMS, seed=4, start_ms=START + 500_000)]


def test_a_model_worse_than_the_base_rate_is_weak(regime_change):
    r = train_maker_taker(regime_change, "BTC-USDT", quantity=QTY, horizon_s=1.0,
                          test_fraction=0.45)
    m = r.metrics
    assert m["log_loss"] > m["base_log_loss"]    # the premise: it does worse out of sample
    assert r.weak and r.model.info["weak"] is True
    assert f"{m['log_loss']:.6g}" in r.weak_reason and f"{m['base_log_loss']:.6g}" in (
        r.weak_reason)
    assert r.model.info["baseline"]["base_log_loss"] == m["base_log_loss"]


def test_a_good_model_is_not_weak_and_records_its_ranges(trained):
    r = trained[0.9]
    assert not r.weak and r.model.info["weak"] is False
    ranges = r.model.info["training"]["ranges"]
    assert set(ranges) == {*r.model.features, "order_size"}
    assert ranges["order_size"]["min"] == ranges["order_size"]["max"] == QTY
    train = r.dataset[(r.dataset["split"] == "train") & (r.dataset["label"] >= 0)]
    assert ranges["imbalance"]["max"] == pytest.approx(train["imbalance"].max())


def test_cli_train_refuses_a_weak_model_unless_allowed(regime_change, tmp_path, capsys):
    out = tmp_path / "weak.json"
    args = ["-q", "train", "maker-taker", *map(str, regime_change), "--inst", "BTC-USDT",
            "--quantity", str(QTY), "--fill-horizon", "1s", "--test-fraction", "0.45",
            "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the model is weak, not saved" in err and "log-loss" in err and "base rate" in err
    assert not out.exists()
    assert main([*args, "--json"]) == 1        # --json readers see it too
    j = json.loads(capsys.readouterr().out)
    assert j["weak"] is True and j["weak_reason"].startswith("out of sample it does not beat")
    assert main([*args, "--allow-weak"]) == 0
    assert "WEAK model" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["info"]["weak"] is True and "base_log_loss" in doc["info"]["baseline"]
    # using it warns, from the pipeline (replay, sweep and the dashboard all build one)
    from simlab.models.ranges import WeakModelWarning

    order = OrderSpec("BTC-USDT", "buy", QTY, "base", "limit")
    with pytest.warns(WeakModelWarning, match="marked weak: out of sample"):
        CostPipeline(order, model=load_model(out),
                     metadata=ReplaySource(regime_change[0]).instruments)


def _range_warnings(record):
    from simlab.models.ranges import ModelRangeWarning

    return [str(w.message) for w in record if issubclass(w.category, ModelRangeWarning)]


@pytest.mark.parametrize("mode", ["columnar", "events"])
def test_a_model_used_at_100x_its_order_size_warns_once(tilted, trained, mode):
    import warnings

    from simlab.sim.run import price_recording

    rec, model = tilted[0.9], trained[0.9].model
    order = OrderSpec("BTC-USDT", "buy", 1.0, "base", "limit")   # trained at 0.01 BTC
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res, info = price_recording(rec, order, mode=mode, impact=None, model=model,
                                    end="2026-01-01T00:02:00Z")
    # ... and the run's info says so too (replay --json carries it)
    found = info["outside_training_range"]["maker_taker_model"]["order_size"]
    assert (found["value"], found["share"], found["max"]) == (1.0, 1.0, QTY)
    if mode == "columnar":  # every tick checked at once
        assert found["outside"] == found["checked"] == len(res.table)
    msgs = _range_warnings(w)
    size = [m for m in msgs if "'order_size'" in m]
    assert len(size) == 1, msgs     # once, though every tick is outside
    assert "= 1 is outside its training range [0.01, 0.01]" in size[0]
    assert len(msgs) == len(set(msgs)) and len(res.table) > 100
    # inside the range: nothing about the order size
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        price_recording(rec, OrderSpec("BTC-USDT", "buy", QTY, "base", "limit"), mode=mode,
                        impact=None, model=model, end="2026-01-01T00:02:00Z")
    assert not [m for m in _range_warnings(w) if "'order_size'" in m]


def test_an_old_model_file_without_ranges_loads_and_says_so(tilted, trained, tmp_path):
    doc = json.loads(trained[0.9].save(tmp_path / "new.json").read_text())
    del doc["info"]["training"]["ranges"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    from simlab.models.ranges import ModelRangeWarning

    with pytest.warns(ModelRangeWarning, match="records no training ranges"):
        p = CostPipeline(OrderSpec("BTC-USDT", "buy", 1.0, "base", "limit"),
                         model=load_model(old),
                         metadata=ReplaySource(tilted[0.9]).instruments)
    assert p._mt_check is None


def test_replay_and_sweep_use_a_trained_slippage_model(tilted, tmp_path, capsys):
    import warnings

    from simlab.sweep import run_sweep

    rec = str(tilted[0.9])
    slip = tmp_path / "slip.json"
    assert main(["-q", "train", "slippage", rec, "--inst", "BTC-USDT", "--out",
                 str(slip)]) == 0
    capsys.readouterr()
    model = load_model(slip)
    notional = model.info["notionals"][2]
    order = OrderSpec("BTC-USDT", "buy", notional, "quote")
    meta = ReplaySource(rec).instruments
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few ticks past the training extremes
        col = CostPipeline(order, metadata=meta, slippage_model=model).run_recording(rec)
        p = CostPipeline(order, metadata=meta, slippage_model=model)
        ev = p.run(ReplaySource(rec, channels=p.channels))
    # live and replay agree to the bit; the walk-the-book columns are untouched
    pd.testing.assert_frame_equal(col.table, ev.table, check_exact=True)
    plain = CostPipeline(order, metadata=meta).run_recording(rec).table
    pd.testing.assert_frame_equal(col.table[plain.columns], plain, check_exact=True)
    cols = ["slippage_model_bps", "slippage_model_q50_bps", "slippage_model_q90_bps",
            "slippage_model_q99_bps"]
    assert [c for c in col.table.columns if c.startswith("slippage_model")] == cols
    # the model predicts the walk it was trained on: close on average
    t = col.table[col.table["complete"]]
    assert abs(t["slippage_model_bps"].mean() - t["slippage_bps"].mean()) < 0.25 * (
        t["slippage_bps"].mean())
    # replay --slippage-model: a column in the summary, a sell with a buy model refused
    args = ["replay", rec, "--inst", "BTC-USDT", "--notional", str(notional), "--no-impact"]
    assert main([*args, "--side", "buy", "--slippage-model", str(slip), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["slippage_model"]["mean_bps"] == pytest.approx(
        t["slippage_model_bps"].mean(), rel=1e-9)
    # the slippage model's statistics cover the same ticks as the costs, named alike
    assert s["slippage_model"]["covers"] == s["costs_cover"] == "complete"
    assert main([*args, "--side", "sell", "--slippage-model", str(slip)]) == 2
    assert "trained on buy orders" in capsys.readouterr().err
    # sweep: the grid key, its mean in the row
    r = run_sweep({"recordings": [rec], "insts": ["BTC-USDT"],
                   "fixed": {"notional": notional, "impact": "none",
                             "slippage_model": str(slip), "end": "2026-01-01T00:05:00Z"}},
                  tmp_path / "sw", "inline", progress=False)
    row = r.table.iloc[0]
    assert row["status"] == "ok" and row["p_slippage_model"] == str(slip)
    assert math.isfinite(row["slippage_model_bps_mean"])


def test_the_dashboard_warns_about_a_model_used_outside_its_range(tilted, trained):
    """The simulator builds the same pipeline: the warning reaches it without its help."""
    import warnings

    from simlab.widgets.simulator import TradeSimulator

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sim = TradeSimulator.from_recording(tilted[0.9], speed=None, calibrate=False,
                                            charts=False, model=trained[0.9].model,
                                            quantity=1.0, unit="base", order_type="limit")
        assert sim.run_events(400) == 400
    size = [m for m in _range_warnings(w) if "'order_size'" in m]
    assert len(size) == 1 and "= 1 is outside its training range [0.01, 0.01]" in size[0]


def test_a_sweep_row_flags_a_model_used_outside_its_range(tilted, trained, tmp_path, capsys):
    import warnings

    model = trained[0.9].save(tmp_path / "mt.json")
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"insts: [BTC-USDT]\ngrid:\n  quantity: [{QTY}, 1.0]\n"
                    f"fixed:\n  order_type: limit\n  impact: none\n  maker_taker_model: {model}\n"
                    "  end: '2026-01-01T00:02:00Z'\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(["sweep", str(tilted[0.9]), "--grid", str(grid), "--out",
                     str(tmp_path / "out"), "--executor", "inline", "--no-progress",
                     "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    from simlab.sweep import load_results

    t = load_results(tmp_path / "out").set_index("p_quantity")
    big = "maker_taker_model: order_size = 1 is outside its training range [0.01, 0.01] "\
        "(on 1,201 of 1,201 ticks)"
    assert big in t.loc[1.0, "model_warning"]
    # at its own size only the odd extreme tick shows, never the size
    assert "order_size" not in (t.loc[QTY, "model_warning"] or "")
    assert {w["cell"] for w in s["model_warnings"] if big in w["warning"]} == {
        t.loc[1.0, "cell"]}
