"""simlab.widgets without a browser: the callbacks, the numbers and the run loop.

The simulator's numbers are checked against an independent replay of the same recording
(the book walked with L2Book.walk) and OKX's published fee rates; the explorer's against
simlab.models.impact and the published Almgren-Chriss examples.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from simlab.book import L2Book
from simlab.emulator import write_synthetic_recording
from simlab.feed import ReplaySource
from simlab.models.impact import ACParams, cost_coefficients, expected_cost, frontier, variance
from simlab.sim.estimate import estimate_impact
from simlab.sim.order import OrderSpec
from simlab.sim.run import impact_params
from simlab.widgets import ImpactExplorer, Pacer, TradeSimulator

INSTS = ["BTC-USDT", "ETH-USDT"]
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
YEAR_S = 365 * 86_400


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return write_synthetic_recording(tmp_path_factory.mktemp("widgets") / "rec", seconds=60.0,
                                     instruments=INSTS, seed=7)


@pytest.fixture(scope="module")
def all_events(rec):
    return sum(1 for _ in ReplaySource(rec, insts=INSTS))


@pytest.fixture
def sim(rec):
    return TradeSimulator.from_recording(rec, speed=10.0, charts=False)


def last_book(rec, n, inst="BTC-USDT"):
    """A copy of ``inst``'s book after the first ``n`` events of an independent replay (a
    copy: the replay decodes the next frame before it yields its events)."""
    levels = None
    for i, ev in enumerate(ReplaySource(rec, insts=INSTS)):
        if i == n:
            break
        if ev.kind == "book" and ev.inst == inst and ev.valid:
            levels = ev.book.levels("bid"), ev.book.levels("ask")
    book = L2Book(inst)
    book.apply_snapshot(*([[p, s] for p, s, _ in side] for side in levels))
    return book


def walked_slippage_bps(book, side, quote):
    fill = book.walk(side, quote=quote)
    mid = book.mid
    return ((fill.avg_price - mid) if side == "buy" else (mid - fill.avg_price)) / mid * 1e4


def classes(widget):
    """Every CSS class in a widget tree."""
    out = set(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        out |= classes(child)
    return out


# -- the trade simulator --------------------------------------------------------------------


def test_css_classes_of_the_contract(sim, rec):
    have = classes(sim.panel)
    for key in ("slippage_bps", "fee_bps", "impact_bps", "net_bps", "maker_prob",
                "latency_p50_us", "latency_p99_us", "ticks", "mid"):
        assert f"simlab-out-{key}" in have
    for name in ("quantity", "side", "order_type", "fee_tier", "instrument", "volatility",
                 "unit", "speed", "exchange"):
        assert f"simlab-in-{name}" in have
    assert {"simlab-start", "simlab-pause", "simlab-error", "simlab-status"} <= have
    ex = ImpactExplorer(ACParams(sigma=1.0, eta=1.0, gamma=0.0, T=4, N=4), 8.0, charts=False)
    have = classes(ex.panel)
    assert {"simlab-out-expected_cost", "simlab-out-std_cost"} <= have
    for name in ("sigma", "eta", "gamma", "epsilon", "lam", "T", "N", "X"):
        assert f"simlab-in-{name}" in have


def test_run_events_prices_the_book_as_an_independent_replay(sim, rec):
    assert sim.run_events(300) == 300
    out = sim.outputs
    assert out["events"] == 300 and out["ticks"] > 50
    book = last_book(rec, 300)
    assert out["mid"] == book.mid
    assert out["slippage_bps"] == pytest.approx(walked_slippage_bps(book, "buy", 10_000.0),
                                                rel=1e-9)
    # OKX's published Lv1 spot taker rate, 0.100 %
    assert out["fee_quote"] == pytest.approx(0.001 * 10_000.0, rel=1e-12)
    assert out["maker_prob"] == 0.0 and out["taker_prob"] == 1.0
    assert out["net_quote"] == pytest.approx(out["slippage_quote"] + out["fee_quote"]
                                             + out["impact_quote"], rel=1e-12)
    assert out["impact_bps"] > 0
    assert out["latency_p50_us"] > 0 and out["latency_p99_us"] >= out["latency_p50_us"]
    # the widgets show the same numbers, as text float() reads
    assert float(sim.out_widgets["net_bps"].value) == pytest.approx(out["net_bps"], abs=1e-4)
    assert int(sim.out_widgets["ticks"].value) == out["ticks"]


def test_impact_is_the_calibrated_almgren_chriss_cost(sim, rec):
    sim.run_events(300)
    p, _ = impact_params(rec, OrderSpec("BTC-USDT", "buy", 1.0))
    assert sim.impact == p
    out = sim.outputs
    assert out["impact_quote"] == pytest.approx(cost_coefficients(p)[1] * out["filled_base"] ** 2,
                                                rel=1e-12)
    assert "realized vol" in sim.impact_info


def test_larger_quantity_costs_more_slippage_even_while_paused(sim, rec):
    sim.run_events(300)
    book = last_book(rec, 300)
    small = sim.outputs["slippage_bps"]
    sim.quantity.value = 400_000.0
    big = sim.outputs["slippage_bps"]
    assert big > small
    assert big == pytest.approx(walked_slippage_bps(book, "buy", 400_000.0), rel=1e-9)
    ticks = sim.outputs["ticks"]
    sim.quantity.value = 20_000.0
    assert sim.outputs["ticks"] == ticks  # re-pricing is not a new tick


def test_side_sell_walks_the_bids(sim, rec):
    sim.run_events(300)
    sim.side.value = "sell"
    book = last_book(rec, 300)
    assert sim.outputs["slippage_bps"] == pytest.approx(
        walked_slippage_bps(book, "sell", 10_000.0), rel=1e-9)


def test_vip_fee_tier_lowers_the_fee(sim):
    sim.run_events(300)
    lv1 = sim.outputs["fee_bps"]
    sim.fee_tier.value = "VIP1"
    out = sim.outputs
    assert out["fee_bps"] < lv1
    # OKX's published VIP1 spot taker rate, 0.050 %
    assert out["fee_quote"] == pytest.approx(0.0005 * 10_000.0, rel=1e-12)


def test_limit_order_has_a_maker_share(sim):
    sim.run_events(300)
    sim.order_type.value = "limit"
    out = sim.outputs
    assert 0 < out["maker_prob"] < 1
    assert out["taker_prob"] == pytest.approx(1 - out["maker_prob"])


def test_bad_quantity_shows_an_error_and_never_raises(sim):
    sim.run_events(300)
    sim.quantity.value = 0.0
    assert "quantity must be a finite number > 0" in sim.error_message
    assert math.isnan(sim.outputs["net_bps"])
    assert sim.out_widgets["net_bps"].value == "-"
    sim.quantity.value = -5.0
    assert "got -5.0" in sim.error_message
    sim.quantity.value = 5_000.0
    assert sim.error_message == ""
    assert sim.outputs["filled_quote"] == pytest.approx(5_000.0)
    sim.volatility.value = -1.0
    assert "volatility must be a number >= 0" in sim.error_message


def test_volatility_override_sets_sigma_from_the_mid(sim):
    sim.run_events(300)
    calibrated = sim.outputs["impact_quote"]
    sim.volatility.value = 400.0
    out = sim.outputs
    assert sim.impact.sigma == pytest.approx(4.0 * out["mid"] / math.sqrt(YEAR_S), rel=1e-12)
    assert out["volatility_pct"] == pytest.approx(400.0)
    # higher sigma, more urgency at lam > 0: a costlier optimal schedule
    assert out["impact_quote"] > calibrated
    assert out["impact_quote"] == pytest.approx(
        cost_coefficients(sim.impact)[1] * out["filled_base"] ** 2, rel=1e-12)
    sim.volatility.value = 0.0
    assert sim.outputs["impact_quote"] == calibrated


def test_unit_toggle_keeps_the_order_size(sim):
    sim.run_events(300)
    mid = sim.outputs["mid"]
    sim.unit.value = "base"
    assert sim.quantity.value == pytest.approx(10_000.0 / mid)
    assert sim.outputs["filled_base"] == pytest.approx(10_000.0 / mid, rel=1e-12)
    assert sim.error_message == ""


def test_switching_instrument_prices_its_own_book(sim, rec):
    sim.run_events(300)
    sim.instrument.value = "ETH-USDT"
    book = last_book(rec, 300, "ETH-USDT")
    assert sim.outputs["mid"] == book.mid
    assert sim.outputs["slippage_bps"] == pytest.approx(
        walked_slippage_bps(book, "buy", 10_000.0), rel=1e-9)


def test_run_to_the_end(sim, all_events):
    assert sim.run_events(10**9) == all_events
    assert sim.state == "ended"
    assert sim.run_events(10) == 0


def test_speed_slider_changes_the_pacing():
    p = Pacer(10.0)
    assert p.delay(0, now=0.0) == 0.0
    assert p.delay(10_000_000_000, now=0.0) == pytest.approx(1.0)  # 10 s of feed at 10x
    p.set_speed(100.0, now=0.5)   # 5 s of feed done, 5 s left at 100x
    assert p.delay(10_000_000_000, now=0.5) == pytest.approx(0.05)
    assert Pacer(None).delay(10**12, now=0.0) == 0.0
    with pytest.raises(ValueError, match="speed must be a number > 0"):
        Pacer(0.0)


def test_speed_slider_drives_the_simulators_pacer(sim):
    sim.speed.value = 100.0
    assert sim.pacer.speed == 100.0
    sim.pacer.reset()
    sim.pacer.delay(0, now=0.0)
    assert sim.pacer.delay(10_000_000_000, now=0.0) == pytest.approx(0.1)


def test_start_without_an_event_loop_shows_an_error(sim):
    sim.start_button.click()
    assert "running asyncio event loop" in sim.error_message
    assert sim.state == "idle"


def test_buttons_start_and_pause_a_replay(sim):
    async def main():
        sim.speed.value = 1000.0
        sim.start_button.click()
        assert sim.state == "running" and sim.running
        assert sim.start_button.disabled and not sim.pause_button.disabled
        for _ in range(200):
            await asyncio.sleep(0.02)
            if sim.outputs["ticks"] > 20:
                break
        sim.pause_button.click()
        assert sim.state == "paused"
        seen = sim.outputs["events"]
        await asyncio.sleep(0.1)
        return seen

    seen = asyncio.run(main())
    assert seen > 20 and sim.outputs["events"] == seen and not sim.running
    # resume where it paused: synchronously, one more event
    assert sim.run_events(1) == 1 and sim.outputs["events"] == seen + 1


def test_unpaced_start_runs_to_the_end_and_pause_resumes(rec, all_events):
    sim = TradeSimulator.from_recording(rec, speed=None, charts=True)
    assert sim.speed.disabled

    async def main():
        sim.start()
        await asyncio.sleep(0)
        while sim.outputs["events"] == 0:
            await asyncio.sleep(0)
        sim.pause()
        at_pause = sim.outputs["events"]
        assert 0 < at_pause < all_events
        await sim.start()
        return at_pause

    asyncio.run(main())
    assert sim.state == "ended"
    assert sim.outputs["events"] == all_events  # nothing lost or repeated across the pause
    assert sim.price_image.value[:4] == b"\x89PNG" and sim.depth_image.value[:4] == b"\x89PNG"


class AsyncOnly:
    """A live-like source: asynchronous iteration only."""

    opened = 0

    def __init__(self, rec):
        self.inner = ReplaySource(rec, insts=["BTC-USDT"])
        self.instruments = self.inner.instruments
        AsyncOnly.opened += 1

    def __aiter__(self):
        return self.inner.__aiter__()


def test_async_source_reconnects_after_pause(rec):
    AsyncOnly.opened = 0
    sim = TradeSimulator(lambda: AsyncOnly(rec), instruments=["BTC-USDT"], charts=False)
    assert math.isnan(sim.outputs["impact_bps"]) and "first valid tick" in sim.impact_info

    async def main():
        sim.start()
        while sim.outputs["ticks"] < 5:
            await asyncio.sleep(0)
        sim.pause()
        await asyncio.sleep(0)
        with pytest.raises(TypeError, match="synchronously"):
            sim.run_events(1)
        sim.start()
        while sim.running:
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert AsyncOnly.opened == 2
    assert sim.state == "ended"
    # no recording to calibrate on: impact estimated from the live book and the mids seen
    out = sim.outputs
    assert "live book" in sim.impact_info and sim.impact.sigma > 0
    assert out["impact_quote"] == pytest.approx(
        cost_coefficients(sim.impact)[1] * out["filled_base"] ** 2, rel=1e-12)


def test_no_impact_parameters(rec):
    sim = TradeSimulator(lambda: ReplaySource(rec), instruments=["BTC-USDT"], impact=None,
                         charts=False)
    sim.run_events(100)
    assert sim.outputs["impact_quote"] == 0.0 and "not priced" in sim.impact_info
    sim.volatility.value = 50.0
    assert "needs impact parameters" in sim.impact_info and sim.error_message == ""


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="source_factory"):
        TradeSimulator(None, instruments=["BTC-USDT"])
    with pytest.raises(ValueError, match="instruments"):
        TradeSimulator(lambda: None, instruments=[])


# -- the performance panel (issue 9) -------------------------------------------------------


def panel_number(sim, key):
    """What the widget ``simlab-out-<key>`` shows, as a number (NaN for ``-``)."""
    text = sim.perf_widgets[key].value
    assert f"simlab-out-{key}" in sim.perf_widgets[key]._dom_classes
    return math.nan if text == "-" else float(text)


@pytest.fixture(scope="module")
def sample_sim():
    """data/sample replayed through the dashboard to the end (calibrated impact)."""
    sim = TradeSimulator.from_recording(SAMPLE, speed=10.0, charts=False)
    sim.run_events(10**9)
    return sim


def test_performance_panel_shows_the_monitors_summary(sample_sim):
    sim = sample_sim
    assert sim.state == "ended"
    s = sim.monitor.summary()
    ticks = sim.outputs["ticks"]
    assert ticks == 6001  # every book message of the sample (data/README.md)
    # every tick priced reached the monitor once, and every event was counted once
    for stage in ("parse", "apply", "walk", "costs", "total"):
        assert s["stages"][stage]["count"] == ticks
        assert panel_number(sim, f"perf-{stage}-count") == ticks
        for stat in ("p50", "p99", "max"):
            want = s["stages"][stage][f"{stat}_us"]
            assert want > 0
            assert panel_number(sim, f"perf-{stage}-{stat}") == pytest.approx(want, abs=0.0051)
    # a market order with the default model: no history features, no maker/taker model
    for stage in ("features", "maker_taker"):
        assert stage not in s["stages"]
        assert sim.perf_widgets[f"perf-{stage}-p50"].value == "-"
    assert s["events"] == sim.outputs["events"] == 15_176
    feed = s["feed_latency"]["BTC-USDT"]
    assert feed["count"] == s["events"]
    assert panel_number(sim, "perf-feed-p50") == pytest.approx(feed["p50_ms"], abs=0.00051)
    assert panel_number(sim, "perf-feed-p99") == pytest.approx(feed["p99_ms"], abs=0.00051)
    streams = s["streams"]
    assert streams["books:BTC-USDT"]["messages"] == ticks
    assert panel_number(sim, "perf-messages") == sum(v["messages"] for v in streams.values())
    assert panel_number(sim, "perf-msg-rate") == pytest.approx(
        sum(v["rate_per_s"] for v in streams.values()), abs=0.0051)
    # the sample's feed rate: a book push every 100 ms plus the trades
    assert streams["books:BTC-USDT"]["rate_per_s"] == pytest.approx(10.0, rel=0.01)
    r = s["resources"]
    assert r["samples"] >= 2 and not sim.monitor.resources.running
    assert panel_number(sim, "perf-rss-mb") == pytest.approx(r["rss_mb_last"], abs=0.051)
    assert panel_number(sim, "perf-rss-mb-peak") == pytest.approx(r["rss_mb_peak"], abs=0.051)
    assert panel_number(sim, "perf-cpu-pct") == pytest.approx(r["cpu_pct_mean"], abs=0.051)
    assert panel_number(sim, "perf-cpu-pct-max") == pytest.approx(r["cpu_pct_max"], abs=0.051)
    assert panel_number(sim, "perf-threads") == r["threads_max"]
    assert r["rss_mb_last"] > 0 and r["threads_max"] >= 1


def test_performance_panel_css_classes(sim):
    have = classes(sim.panel)
    assert "simlab-perf" in have
    for stage in ("parse", "apply", "walk", "maker_taker", "costs", "total"):
        for stat in ("count", "p50", "p99", "max"):
            assert f"simlab-out-perf-{stage}-{stat}" in have
    for key in ("feed-p50", "feed-p99", "msg-rate", "cpu-pct", "rss-mb", "threads"):
        assert f"simlab-out-perf-{key}" in have


def test_monitor_counts_every_event_once_across_instruments_and_new_inputs(sim):
    assert sim.run_events(300) == 300
    s = sim.monitor.summary()
    ticks = sim.outputs["ticks"]
    assert s["events"] == 300 and s["stages"]["total"]["count"] == ticks
    # the other instrument's book never reaches the pipeline, but the monitor sees it
    assert s["streams"]["books:ETH-USDT"]["messages"] > 0
    before = sim.outputs["slippage_bps"]
    sim.quantity.value = 50_000.0  # re-priced at once, not a new tick
    assert sim.outputs["slippage_bps"] > before
    sim.order_type.value = "limit"
    assert 0 < sim.outputs["maker_prob"] < 1
    s = sim.monitor.summary()
    assert s["events"] == 300 and s["stages"]["total"]["count"] == ticks
    assert sim.run_events(100) == 100
    s = sim.monitor.summary()
    assert s["events"] == 400 and s["stages"]["total"]["count"] == sim.outputs["ticks"] > ticks
    assert s["stages"]["maker_taker"]["count"] == sim.outputs["ticks"] - ticks
    assert panel_number(sim, "perf-maker_taker-count") == sim.outputs["ticks"] - ticks


def test_monitor_keeps_what_rebuilt_pipelines_measured(rec):
    # impact re-estimated from the book every 2 s of feed: a new pipeline each time
    sim = TradeSimulator(lambda: ReplaySource(rec, insts=["BTC-USDT"]),
                         instruments=["BTC-USDT"], estimate_every=2.0, charts=False)
    n = sim.run_events(10**9)
    s = sim.monitor.summary()
    assert s["events"] == n and s["stages"]["total"]["count"] == sim.outputs["ticks"] > 100
    assert "live book" in sim.impact_info
    # a replay restarted from the beginning (start after the end) starts a fresh monitor
    first = sim.monitor

    async def main():
        await sim.start()

    asyncio.run(main())
    s = sim.monitor.summary()
    assert sim.monitor is not first and sim.state == "ended"
    assert s["events"] == n and s["stages"]["total"]["count"] == sim.outputs["ticks"]
    assert first.summary()["events"] == n  # the first run's monitor is left as it was


def test_resources_are_sampled_while_running_only(rec):
    sim = TradeSimulator.from_recording(rec, speed=1000.0, charts=False, monitor_interval=0.05)
    res = sim.monitor.resources

    async def main():
        assert not res.running
        sim.start()
        assert res.running
        for _ in range(200):
            await asyncio.sleep(0.02)
            if sim.outputs["ticks"] > 20 and len(res.samples) >= 3:
                break
        sim.pause()
        assert not res.running

    asyncio.run(main())
    n = len(res.samples)
    assert n >= 3
    s = sim.monitor.summary()
    assert s["resources"]["rss_mb_peak"] > 0 and s["resources"]["threads_max"] >= 2
    assert panel_number(sim, "perf-threads") == s["resources"]["threads_max"]
    sim.close()
    assert not res.running and len(res.samples) == n
    assert sim.monitor.summary()["stages"]["total"]["count"] == sim.outputs["ticks"]


def test_estimate_impact_fits_the_walk_of_a_ladder_book():
    # 20 levels of 1 each side, 1 apart, half spread 0.5 around 100: a buy of s = m + f
    # (m whole levels) pays (sum_{k<m} (0.5 + k) + f (0.5 + m)) / s per unit over the mid
    b = L2Book()
    b.apply_snapshot([[str(99.5 - k), "1"] for k in range(20)],
                     [[str(100.5 + k), "1"] for k in range(20)])
    sizes = np.geomspace(5 / 50, 5 * 2, 12)  # the visible depth of 5 levels is 5
    m, f = np.floor(sizes), sizes - np.floor(sizes)
    per_unit = (m * 0.5 + m * (m - 1) / 2 + f * (0.5 + m)) / sizes
    slope, icpt = np.polyfit(sizes, per_unit, 1)
    t = np.arange(0, 31) * 1_000_000_000
    mids = 100 * np.exp(np.r_[0, np.cumsum(np.full(30, 1e-4) * (-1) ** np.arange(30))])
    p, how = estimate_impact(b, mids, t, T=60, N=60, lam=1e-6)
    assert p.eta == pytest.approx(slope, rel=1e-9)
    assert p.epsilon == pytest.approx(icpt, rel=1e-9)
    r = np.diff(np.log(mids))
    assert p.sigma == pytest.approx(np.std(r, ddof=1) * mids.mean(), rel=1e-9)
    assert p.gamma == 0.0 and "live book" in how["eta"]
    short = estimate_impact(b, mids[:3], t[:3])[0]
    assert short.sigma == 0.0


# -- the Almgren-Chriss explorer ------------------------------------------------------------

# the teaching environment's example: 30 % a year on a $50 stock (sigma per day^1/2), 1e6
# shares over 60 days; published E = $477,712.60 and E + lam V = $704,723.22
TEACH = ACParams(sigma=0.12 / 250**0.5 * 50, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16,
                 lam=1e-6, T=60, N=60)


def test_explorer_matches_the_published_example():
    ex = ImpactExplorer(TEACH, X=1e6, charts=False)
    assert ex.outputs["expected_cost"] == pytest.approx(477_712.60, abs=0.01)
    assert ex.outputs["objective"] == pytest.approx(704_723.22, abs=0.01)
    assert float(ex.out_widgets["expected_cost"].value) == pytest.approx(477_712.6, rel=1e-6)


def test_explorer_sliders_recompute_with_the_model():
    ex = ImpactExplorer(TEACH, X=1e6, charts=False)
    ex.sigma.value = 1.5
    ex.lam.value = 1e-5
    p = ACParams(sigma=1.5, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16, lam=1e-5, T=60, N=60)
    assert ex.outputs["expected_cost"] == pytest.approx(expected_cost(p, 1e6), rel=1e-12)
    assert ex.outputs["std_cost"] == pytest.approx(math.sqrt(variance(p, 1e6)), rel=1e-12)
    assert ex.outputs["kappa"] == pytest.approx(p.kappa, rel=1e-12)
    ex.X.value = 2e5
    ex.N.value = 30
    q = ACParams(sigma=1.5, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16, lam=1e-5, T=60, N=30)
    assert ex.outputs["expected_cost"] == pytest.approx(expected_cost(q, 2e5), rel=1e-12)
    f = ex.frontier()
    assert f.equals(frontier(q, 2e5, 1e-5 * np.geomspace(1e-3, 1e3, 41)))
    row = f.iloc[(f["lam"] - 1e-5).abs().argmin()]
    assert row["E"] == pytest.approx(ex.outputs["expected_cost"], rel=1e-9)


def test_explorer_straight_line_by_hand():
    # lam = 0 sells evenly: 8 in 4 steps of 2; E = 4 * 2 + 1 * 4 * 2^2 (epsilon 1, eta 1)
    ex = ImpactExplorer(ACParams(sigma=2.0, eta=1.0, gamma=0.0, epsilon=1.0, lam=1e-12, T=4,
                                 N=4), X=8.0, charts=True)
    _, x, _ = ex.schedule
    assert x.round(6).tolist() == [8, 6, 4, 2, 0]
    assert ex.outputs["expected_cost"] == pytest.approx(24.0, rel=1e-9)
    assert ex.outputs["variance"] == pytest.approx(224.0, rel=1e-9)  # 4 * (36 + 16 + 4)
    assert "<td>2</td>" in ex.trade_table.value
    assert ex.schedule_image.value[:4] == b"\x89PNG"
    assert ex.frontier_image.value[:4] == b"\x89PNG"


def test_explorer_shows_an_invalid_combination():
    ex = ImpactExplorer(TEACH, X=1e6, charts=False)
    ex.N.value = 1  # tau = 60: eta - gamma tau / 2 < 0
    assert "eta_tilde" in ex.error.value
    assert math.isnan(ex.outputs["expected_cost"])
    assert ex.out_widgets["std_cost"].value == "-"
    ex.N.value = 60
    assert ex.error.value == ""
    assert ex.outputs["expected_cost"] == pytest.approx(477_712.60, abs=0.01)


def test_explorer_from_recording_and_calibrate_button(rec):
    ex = ImpactExplorer.from_recording(rec, "BTC-USDT", charts=False)
    p, _ = impact_params(rec, OrderSpec("BTC-USDT", "buy", 1.0))
    assert (ex.sigma.value, ex.eta.value, ex.gamma.value, ex.epsilon.value) == (
        p.sigma, p.eta, p.gamma, p.epsilon)
    assert "realized vol" in ex.provenance.value
    assert ex.outputs["expected_cost"] == pytest.approx(expected_cost(p, ex.X.value), rel=1e-12)
    ex.sigma.value = p.sigma * 10
    assert ex.outputs["std_cost"] != pytest.approx(math.sqrt(variance(p, ex.X.value)))
    ex.calibrate_button.click()
    assert ex.sigma.value == p.sigma
    assert ex.outputs["std_cost"] == pytest.approx(math.sqrt(variance(p, ex.X.value)), rel=1e-12)


def test_explorer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="params must be ACParams"):
        ImpactExplorer({"sigma": 1.0}, 1.0)
    with pytest.raises(ValueError, match="X must be"):
        ImpactExplorer(TEACH, 0.0)
    ex = ImpactExplorer(TEACH, 1e6, charts=False)
    ex.calibrate_button.click()  # disabled in a browser; here it explains
    assert "no recording" in ex.error.value


def test_resource_sampler_stops_when_the_event_loop_cancels_the_run(rec):
    sim = TradeSimulator.from_recording(rec, speed=1.0, charts=False, monitor_interval=0.05)

    async def main():
        sim.start()
        await asyncio.sleep(0.1)
        assert sim.monitor.resources.running
        # asyncio.run cancels the still-running task on the way out

    asyncio.run(main())
    assert not sim.running and not sim.monitor.resources.running


def test_an_order_the_book_cannot_fill_is_flagged_on_the_dashboard(sim):
    sim.run_events(300)
    out = sim.outputs
    assert out["complete"] and out["filled_share"] == 1.0 and out["unfilled_ticks"] == 0
    assert sim.fill_warning == ""
    sim.quantity.value = 1e12  # quote: far beyond the visible book
    out = sim.outputs
    assert not out["complete"] and 0 < out["filled_share"] < 1e-3
    assert out["filled_share"] == pytest.approx(out["filled_quote"] / 1e12, rel=1e-12)
    assert sim.out_widgets["filled_share"].value == f"{out['filled_share']:.4f}"
    assert "could not fill the order at the last tick" in sim.fill_warning
    assert "costs shown are of the part filled" in sim.fill_warning
    sim.run_events(200)
    out = sim.outputs
    assert out["unfilled_ticks"] == out["order_ticks"] > 0
    assert sim.out_widgets["unfilled_ticks"].value == str(out["unfilled_ticks"])
    assert f"{out['unfilled_ticks']} of {out['order_ticks']} ticks" in sim.fill_warning
    # a new order counts afresh
    sim.quantity.value = 1000.0
    assert sim.outputs["unfilled_ticks"] == 0 and sim.fill_warning == ""


def test_dashboard_time_range_names_its_clock(rec):
    with pytest.raises(ValueError, match="time_basis must be 'exchange'"):
        TradeSimulator.from_recording(rec, start="2026-01-01", time_basis="local", charts=False)
    with pytest.raises(ValueError, match=r"\(receive time\) is outside the recording"):
        TradeSimulator.from_recording(rec, start="2030-01-01", time_basis="recv", charts=False)
