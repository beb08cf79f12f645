"""The cost-run report folder: files written and valid, summary JSON/Markdown by hand, the
charts' data against hand-computed and published numbers, optional charts skipped."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from simlab.book import L2Book
from simlab.models.impact import ACParams
from simlab.sim.order import Instrument, OrderSpec
from simlab.sim.pipeline import RESULT_COLUMNS, STAGES, CostResult
from simlab.sim.report import (
    DPI,
    plot_ac_frontier,
    plot_ac_schedule,
    plot_batch_latency,
    plot_costs,
    plot_depth,
    plot_latency,
    summary_to_json,
    summary_to_markdown,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC, in ns

# Almgren-Chriss Table 1 without drift, and the teaching environment (cost-models.md).
TABLE1 = ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, lam=1e-6, T=5, N=5)
TEACH = ACParams(sigma=0.12 / math.sqrt(250) * 50, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16,
                 lam=1e-6, T=60, N=60)


def _table() -> pd.DataFrame:
    # a 1 BTC market buy, 5 bps taker: three ticks, the last one with no book (NaN costs)
    rows = []
    for i, (bid, ask, slip) in enumerate(((99.0, 101.0, 1.0), (100.0, 102.0, 2.0),
                                          (math.nan, math.nan, math.nan))):
        mid = (bid + ask) / 2
        fee = 0.0005 * (mid + slip)
        net = slip + fee
        bps = 1e4 / mid
        rows.append({"rec": 0, "arrival": i, "recv_ns": T0 + i * 1_000_000_000,
                     "ts_ms": T0 // 1_000_000 + i * 1000, "best_bid": bid, "best_ask": ask,
                     "bid_size": 1.0, "ask_size": 1.0, "mid": mid,
                     "spread_bps": (ask - bid) * bps, "filled_base": 1.0,
                     "filled_quote": mid + slip, "avg_price": mid + slip, "complete": True,
                     "maker_prob": 0.0, "slippage_quote": slip, "slippage_bps": slip * bps,
                     "fee_quote": fee, "fee_bps": fee * bps, "impact_quote": 0.0,
                     "impact_bps": 0.0 * bps, "net_quote": net, "net_bps": net * bps})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _result(*, columnar: bool = False, batch: bool = True) -> CostResult:
    cols = [f"{s}_ns" for s in STAGES]
    if columnar:
        lat = pd.DataFrame(columns=cols, dtype="int64")
        b = ({"read_ns_per_tick": 120.0, "walk_ns_per_tick": 40.0, "models_ns_per_tick": 20.0,
              "total_ns_per_tick": 180.0, "ticks_per_s": 1e9 / 180} if batch else None)
    else:
        lat = pd.DataFrame([(2000, 300, 700, 3000), (4000, 500, 500, 5000),
                            (6000, 100, 900, 7000)], columns=cols, dtype="int64")
        b = None
    return CostResult(OrderSpec("BTC-USDT", "buy", 1.0, "base"),
                      Instrument("BTC-USDT", "SPOT", 1.0, 0.1), None, _table(), lat,
                      {"priced": 3}, b, "columnar" if columnar else "events")


def _assert_png(path, size=(8, 4.5)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000
    img = imread(path)
    # tight layout must not crop: the PNG is exactly figsize x dpi
    assert img.shape[:2] == (round(size[1] * DPI), round(size[0] * DPI))
    assert img.std() > 0  # something was drawn


def _strict_json(text: str):
    def reject(c):
        raise AssertionError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=reject)


# -- the folder ---------------------------------------------------------------------------


def test_full_report(tmp_path):
    book = L2Book("BTC-USDT")
    book.apply_snapshot([["99", "1"], ["98", "2"]], [["101", "0.5"], ["102", "4"]])
    summary = {"ticks": 3, "net_bps": {"mean": 5.0, "p50": 4.5, "p99": math.nan},
               "maker_prob": {"mean": np.float64(0.0)}}
    out = tmp_path / "rep"
    files = write_report(_result(), out, depth=book.top(10), ac=TABLE1, ac_X=1e6,
                         summary=summary, title="test run")
    assert sorted(files) == ["ac_frontier.png", "ac_schedule.png", "cost_over_time.png",
                             "depth.png", "latency.png", "summary.json", "summary.md"]
    for name, path in files.items():
        assert path == out / name and path.is_file()
    for name in ("ac_frontier.png", "ac_schedule.png", "depth.png", "latency.png"):
        _assert_png(files[name])
    _assert_png(files["cost_over_time.png"], size=(10, 6.5))
    # NaN -> null, numpy -> plain numbers; the rest round-trips unchanged
    assert _strict_json(files["summary.json"].read_text()) == {
        "ticks": 3, "net_bps": {"mean": 5.0, "p50": 4.5, "p99": None},
        "maker_prob": {"mean": 0.0}}
    md = files["summary.md"].read_text()
    assert md.startswith("# test run\n")
    assert "| ticks | 3 |" in md
    assert "| metric | mean | p50 | p99 |" in md
    assert "| net_bps | 5 | 4.5 | NaN |" in md
    assert "| metric | mean |\n|---|---|\n| maker_prob | 0 |" in md


def test_overwrites_existing_files(tmp_path):
    (tmp_path / "depth.png").write_bytes(b"old")
    (tmp_path / "summary.json").write_text("old")
    files = write_report(_result(), tmp_path, depth=([1.0], [1.0], [2.0], [1.0]),
                         summary={"a": 1})
    assert files["depth.png"].read_bytes()[:8] == PNG_SIGNATURE
    assert _strict_json(files["summary.json"].read_text()) == {"a": 1}


def test_optional_charts_skipped(tmp_path):
    files = write_report(_result(), tmp_path, summary={"a": 1})
    assert sorted(files) == ["cost_over_time.png", "latency.png", "summary.json", "summary.md"]
    assert not (tmp_path / "depth.png").exists()
    assert not (tmp_path / "ac_schedule.png").exists()
    # columnar run without batch timings: nothing to draw for latency
    files = write_report(_result(columnar=True, batch=False), tmp_path / "b", summary={})
    assert "latency.png" not in files and not (tmp_path / "b" / "latency.png").exists()


def test_columnar_variant(tmp_path):
    files = write_report(_result(columnar=True), tmp_path, summary={"a": 1})
    _assert_png(files["latency.png"])
    ax = plot_batch_latency(Figure().add_subplot(), _result(columnar=True).batch_latency)
    assert [float(p.get_height()) for p in ax.patches] == [120.0, 40.0, 20.0, 180.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["read", "walk", "models", "total"]
    assert ax.get_title() == "columnar run: ns per tick by stage (5.56M ticks/s)"


def test_default_summary_is_strict_json(tmp_path):
    # result.summary() (or the stand-in while simlab.sim.summary is absent) on a table
    # with a NaN tick: whatever it holds, the file is standard JSON
    files = write_report(_result(), tmp_path)
    data = _strict_json(files["summary.json"].read_text())
    assert isinstance(data, dict) and data
    assert files["summary.md"].read_text().startswith("# BTC-USDT buy 1 base market\n")


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match="result must be a CostResult"):
        write_report(_table(), tmp_path)
    with pytest.raises(ValueError, match="ac and ac_X go together"):
        write_report(_result(), tmp_path, ac=TABLE1)
    with pytest.raises(ValueError, match="ac_X must be a finite nonzero"):
        write_report(_result(), tmp_path, ac=TABLE1, ac_X=0.0)
    with pytest.raises(ValueError, match=r"depth must be \(bid_px, bid_sz, ask_px, ask_sz\)"):
        write_report(_result(), tmp_path, depth=([1.0], [1.0]))
    with pytest.raises(ValueError, match="bid_px and bid_sz must have the same length"):
        write_report(_result(), tmp_path, depth=([1.0, 0.5], [1.0], [2.0], [1.0]))
    with pytest.raises(TypeError, match="summary must be a dict"):
        write_report(_result(), tmp_path, summary=[1, 2])


# -- summary files ------------------------------------------------------------------------


def test_summary_json_nan_and_inf_are_null():
    s = {"x": [1.0, math.inf, -math.inf, math.nan], "y": np.array([1, 2]), "z": None,
         "w": np.float32(0.5), "ok": True}
    assert _strict_json(summary_to_json(s)) == {"x": [1.0, None, None, None], "y": [1, 2],
                                                "z": None, "w": 0.5, "ok": True}


def test_summary_markdown_nesting():
    s = {"order": {"inst": "BTC-USDT", "quantity": 1.0},
         "latency_us": {"decode": {"mean": 1.5, "p50": 1.0},
                        "total": {"mean": 3.0, "p50": 2.0}},
         "costs": {"net_bps": {"mean": 7.0, "p90": 9.0}},
         "mode": "events"}
    md = summary_to_markdown(s)
    assert md == ("| metric | value |\n|---|---|\n"
                  "| order.inst | BTC-USDT |\n| order.quantity | 1 |\n| mode | events |\n"
                  "\n"
                  "| metric | mean | p50 |\n|---|---|---|\n"
                  "| latency_us.decode | 1.5 | 1 |\n| latency_us.total | 3 | 2 |\n"
                  "\n"
                  "| metric | mean | p90 |\n|---|---|---|\n| costs.net_bps | 7 | 9 |\n")


# -- chart data ---------------------------------------------------------------------------


def test_depth_cumulative_steps():
    book = L2Book("BTC-USDT")
    book.apply_snapshot([["99", "1"], ["98", "2"], ["97", "3"]], [["101", "0.5"], ["103", "4"]])
    ax = plot_depth(Figure().add_subplot(), book.top(10), size_unit="BTC", price_unit="USDT")
    bids, asks, mid = ax.get_lines()
    assert bids.get_xdata().tolist() == [99.0, 98.0, 97.0]
    assert bids.get_ydata().tolist() == [1.0, 3.0, 6.0]
    assert asks.get_xdata().tolist() == [101.0, 103.0]
    assert asks.get_ydata().tolist() == [0.5, 4.5]
    assert mid.get_xdata()[0] == 100.0
    assert bids.get_color() == "tab:green" and asks.get_color() == "tab:red"
    assert ax.get_xlabel() == "price (USDT)" and ax.get_ylabel() == "cumulative size (BTC)"


def test_depth_one_side_empty():
    ax = plot_depth(Figure().add_subplot(), ([], [], [101.0], [2.0]))
    assert len(ax.get_lines()) == 2  # no mid without both sides
    assert ax.get_lines()[1].get_ydata().tolist() == [2.0]


def test_costs_series():
    t = _table()
    fig = Figure()
    top, bottom = fig.add_subplot(211), fig.add_subplot(212)
    plot_costs(top, bottom, t, quote="USDT")
    lines = {ln.get_label().split(" (")[0]: ln for ln in top.get_lines()}
    assert set(lines) >= {"slippage", "fees", "impact", "net"}
    x = lines["net"].get_xdata()
    assert x[0] == np.datetime64("2023-11-14T22:13:20", "ns")
    assert x[1] - x[0] == np.timedelta64(1, "s")
    # tick 0: mid 100, slippage 1, fee 5 bps of 101 = 0.0505 -> net 105.05 bps of 100;
    # tick 1: mid 101, slippage 2, fee 5 bps of 103 = 0.0515 -> 2.0515 / 101
    np.testing.assert_allclose(lines["net"].get_ydata()[:2], [105.05, 2.0515 / 101 * 1e4])
    # means skip the no-book tick: slippage (1/100 + 2/101) / 2 * 1e4 bps
    assert lines["slippage"].get_label() == f"slippage (mean {(100 + 2e4 / 101) / 2:.3g} bps)"
    assert bottom.get_lines()[0].get_ydata()[:2].tolist() == [100.0, 101.0]
    assert bottom.get_ylabel() == "mid (USDT)"


def test_costs_thinned_beyond_max_points():
    t = pd.concat([_table()] * 5, ignore_index=True)  # 15 ticks
    fig = Figure()
    top = fig.add_subplot(211)
    plot_costs(top, fig.add_subplot(212), t, max_points=4)
    assert len(top.get_lines()[0].get_xdata()) == 4  # every 4th tick: 0, 4, 8, 12
    assert "every 4th tick drawn" in top.get_title()


def test_latency_percentiles_in_legend():
    ax = plot_latency(Figure().add_subplot(), _result().latency)
    labels = ax.get_legend_handles_labels()[1]
    # total_ns 3000, 5000, 7000: p50 5 us; p99 = 5 + 0.98 * 2 = 6.96 us
    assert labels == ["decode: p50 4 µs, p99 5.96 µs", "walk: p50 0.3 µs, p99 0.496 µs",
                      "models: p50 0.7 µs, p99 0.896 µs", "total: p50 5 µs, p99 6.96 µs"]
    assert ax.get_xscale() == "log"


def test_ac_schedule_published_trajectory():
    ax = plot_ac_schedule(Figure().add_subplot(), TABLE1, 1e6, size_unit="shares",
                          time_unit="days")
    opt, line = ax.get_lines()[:2]
    # Almgren & Chriss (2000), Table 1 parameters: the printed optimal holdings
    assert np.round(opt.get_ydata()).tolist() == [1000000, 541956, 289854, 147897, 62142, 0]
    assert opt.get_xdata().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert line.get_ydata().tolist() == [1e6, 8e5, 6e5, 4e5, 2e5, 0.0]
    assert ax.get_ylabel() == "holdings x_k (shares)"


def test_ac_frontier_marks_published_point():
    ax = plot_ac_frontier(Figure().add_subplot(), TEACH, 1e6, quote="$")
    curve, zero, chosen = ax.get_lines()
    # the teaching environment: E = $477,712.60, SD = $476,456.32 at lam = 1e-6
    assert round(chosen.get_ydata()[0], 2) == 477712.60
    assert round(chosen.get_xdata()[0], 2) == 476456.32
    # lam = 0 is the straight line: E = gamma X^2/2 + eps X + eta_tilde X^2/T
    eta_t = 2.5e-6 - 2.5e-7 / 2
    assert math.isclose(zero.get_ydata()[0], 0.5 * 2.5e-7 * 1e12 + 1e6 / 16 + eta_t * 1e12 / 60)
    # the frontier trades expectation for risk: SD falls while E rises with lam
    sd, e = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert len(sd) == 49 + 1  # grid (which holds 1e-6 itself) and lam = 0
    assert np.all(np.diff(sd) < 0) and np.all(np.diff(e) > 0)
    assert ax.get_xlabel() == "standard deviation of shortfall √V ($)"


def test_ac_frontier_risk_neutral_default_grid():
    p = ACParams(sigma=2.0, eta=1.0, gamma=0.0, lam=0.0, T=4, N=4)
    ax = plot_ac_frontier(Figure().add_subplot(), p, 8.0)
    assert len(ax.get_lines()) == 2  # curve and the lam = 0 point (which is the chosen one)
    # lam = 0 line: V = 1/3 sigma^2 X^2 T (1 - 1/N)(1 - 1/(2N)) = 224 (cost-models.md)
    assert math.isclose(ax.get_lines()[1].get_xdata()[0], math.sqrt(224.0))


def test_ticks_the_book_could_not_fill_are_marked_and_left_out_of_the_means(tmp_path):
    t = _table()
    t["filled_share"] = [1.0, 0.5, 1.0]
    t.loc[1, "complete"] = False  # the book filled half of the order at tick 1
    fig = Figure()
    top, bottom = fig.add_subplot(211), fig.add_subplot(212)
    plot_costs(top, bottom, t)
    labels = [ln.get_label() for ln in top.get_lines()]
    # the mean is tick 0's alone (tick 2 has no book): 1 quote of mid 100 = 100 bps
    assert "slippage (mean 100 bps, complete ticks)" in labels
    assert "book could not fill the order (1 ticks)" in labels
    assert "1 not fillable" in top.get_title()
    assert bottom.get_xlabel() == "receive time (UTC)"
    res = _result()
    res.table = t
    files = write_report(res, tmp_path / "r")
    md = files["summary.md"].read_text()
    assert ("**Unfilled orders:** 1 of 3 ticks (33.3 %) the book could not fill the order: "
            "filled share p50 0.5; statistics below cover the 2 complete ticks.") in md
    s = json.loads(files["summary.json"].read_text())
    assert s["fills"]["incomplete"] == 1 and s["costs"]["net_bps"]["count"] == 1
