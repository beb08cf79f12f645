"""The trade simulator's headless session: no ipywidgets (nor matplotlib) anywhere in its
imports, built from a RunConfig, its numbers checked against an independent replay of the
same recording (the book walked with L2Book.walk) and OKX's published fee rates."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from simlab.book import L2Book
from simlab.emulator import write_synthetic_recording
from simlab.feed import ReplaySource
from simlab.models.impact import ACParams, cost_coefficients
from simlab.sim.config import ConfigError, RunConfig
from simlab.sim.order import OrderSpec
from simlab.sim.run import impact_params
from simlab.sim.session import Listener, SessionOptions, TradeSession

INSTS = ["BTC-USDT", "ETH-USDT"]


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return write_synthetic_recording(tmp_path_factory.mktemp("session") / "rec", seconds=30.0,
                                     instruments=INSTS, seed=11)


@pytest.fixture
def session(rec):
    return TradeSession.from_recording(rec, RunConfig(inst="BTC-USDT", notional=10_000.0),
                                       instruments=INSTS)


def replayed(rec, n, inst="BTC-USDT"):
    """A copy of ``inst``'s book after the first ``n`` events of an independent replay, and
    the (recv_ns, bid, ask) of each of its valid ticks."""
    levels, ticks = None, []
    for i, ev in enumerate(ReplaySource(rec, insts=INSTS)):
        if i == n:
            break
        if ev.kind == "book" and ev.inst == inst and ev.valid:
            levels = ev.book.levels("bid"), ev.book.levels("ask")
            ticks.append((ev.recv_ns, ev.book.best_bid, ev.book.best_ask))
    book = L2Book(inst)
    book.apply_snapshot(*([[p, s] for p, s, _ in side] for side in levels))
    return book, ticks


def walked_slippage_bps(book, side, quote):
    fill = book.walk(side, quote=quote)
    mid = book.mid
    return ((fill.avg_price - mid) if side == "buy" else (mid - fill.avg_price)) / mid * 1e4


def test_importing_and_running_a_session_loads_no_widget_or_plotting_library(rec):
    # a fresh interpreter where ipywidgets and matplotlib cannot be imported at all
    code = textwrap.dedent(f"""
        import sys
        sys.modules["ipywidgets"] = None   # import ipywidgets -> ImportError
        sys.modules["matplotlib"] = None
        from simlab.sim.session import TradeSession
        s = TradeSession.from_recording({str(rec)!r})
        assert s.run_events(200) == 200, s.error
        assert s.outputs["net_bps"] > 0
        t, bid, ask, title = s.price_series()
        assert len(t) > 0 and s.depth_series() is not None
        loaded = [m for m in sys.modules if m.split(".")[0] in ("ipywidgets", "matplotlib",
                                                                "IPython")
                  and sys.modules[m] is not None]
        print("loaded:", loaded)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "loaded: []"


def test_prices_the_book_as_an_independent_replay(session, rec):
    assert session.run_events(300) == 300
    out = session.outputs
    assert out["events"] == 300 and out["ticks"] > 50
    book, _ = replayed(rec, 300)
    assert out["mid"] == book.mid
    assert out["slippage_bps"] == pytest.approx(walked_slippage_bps(book, "buy", 10_000.0),
                                                rel=1e-9)
    # OKX's published Lv1 spot taker rate, 0.100 %
    assert out["fee_quote"] == pytest.approx(0.001 * 10_000.0, rel=1e-12)
    assert out["net_quote"] == pytest.approx(out["slippage_quote"] + out["fee_quote"]
                                             + out["impact_quote"], rel=1e-12)
    # the calibrated Almgren-Chriss impact of the filled size
    p, _ = impact_params(rec, OrderSpec("BTC-USDT", "buy", 1.0))
    assert session.impact == p
    assert out["impact_quote"] == pytest.approx(cost_coefficients(p)[1] * out["filled_base"] ** 2,
                                                rel=1e-12)
    assert session.state == "paused" and session.error == ""


def test_new_inputs_reprice_the_last_book_without_a_new_tick(session, rec):
    session.run_events(300)
    book, _ = replayed(rec, 300)
    ticks = session.outputs["ticks"]
    session.set_inputs(quantity=400_000.0, side="sell")
    assert session.outputs["slippage_bps"] == pytest.approx(
        walked_slippage_bps(book, "sell", 400_000.0), rel=1e-9)
    session.set_inputs(fee_tier="VIP1")
    # OKX's published VIP1 spot taker rate, 0.050 %
    assert session.outputs["fee_quote"] == pytest.approx(0.0005 * 400_000.0, rel=1e-12)
    assert session.outputs["ticks"] == ticks
    assert session.config.order == OrderSpec("BTC-USDT", "sell", 400_000.0, "quote", "market",
                                             "VIP1")
    eth, _ = replayed(rec, 300, "ETH-USDT")
    session.set_inputs(inst="ETH-USDT")
    assert session.outputs["mid"] == eth.mid


def test_a_bad_input_is_kept_as_the_error_and_never_raised(session):
    session.run_events(100)
    session.set_inputs(quantity=-5.0)
    assert session.error == "ConfigError: quantity must be a finite number > 0, got -5.0"
    assert session.config is None and math.isnan(session.outputs["net_bps"])
    with pytest.raises(ConfigError, match="quantity must be"):
        session.order()
    session.set_inputs(quantity=5_000.0)
    assert session.error == "" and session.outputs["filled_quote"] == pytest.approx(5_000.0)
    session.set_inputs(volatility=-1.0)
    assert session.error.startswith("ValueError: volatility must be a number >= 0")
    with pytest.raises(TypeError, match="unknown inputs"):
        session.set_inputs(size=3)


def test_volatility_override_and_unit_conversion_at_the_mid(session):
    session.run_events(300)
    mid = session.outputs["mid"]
    session.set_inputs(volatility=400.0)
    assert session.impact.sigma == pytest.approx(4.0 * mid / math.sqrt(365 * 86_400),
                                                 rel=1e-12)
    assert session.outputs["volatility_pct"] == pytest.approx(400.0)
    q = session.convert_quantity(10_000.0, "base")
    assert q == pytest.approx(10_000.0 / mid)
    session.set_inputs(unit="base", quantity=q)
    assert session.outputs["filled_base"] == pytest.approx(q, rel=1e-12)


def test_chart_series_follow_the_replay(rec):
    s = TradeSession.from_recording(rec, instruments=INSTS,
                                    options=SessionOptions(history_seconds=5.0, depth_levels=3))
    s.run_events(400)
    book, ticks = replayed(rec, 400)
    t, bid, ask, title = s.price_series()
    last = ticks[-1][0]
    kept = [x for x in ticks if x[0] >= last - 5_000_000_000]
    assert t.tolist() == [(r - last) / 1e9 for r, _, _ in kept]
    assert bid.tolist() == [b for _, b, _ in kept] and ask.tolist() == [a for _, _, a in kept]
    assert title == "BTC-USDT (last 5 s)"
    bid_px, bid_sz, ask_px, ask_sz, _ = s.depth_series()
    top = book.top(3)
    for got, want in ((bid_px, top.bid_px), (bid_sz, top.bid_sz), (ask_px, top.ask_px),
                      (ask_sz, top.ask_sz)):
        assert np.array_equal(got, want)


def test_a_session_from_a_run_config(rec):
    p = ACParams(sigma=1.0, eta=1e-3, gamma=0.0, epsilon=0.0, lam=0.0, T=10.0, N=10)
    config = RunConfig.build(inst="ETH-USDT", side="sell", quantity=0.5, order_type="limit",
                             fee_tier="VIP1", impact=p, T=10, N=10, lam=0.0)
    s = TradeSession.from_recording(rec, config, options=SessionOptions(speed=None))
    assert not s.paced and s.instruments == INSTS
    assert s.impact == p and s.impact_info == "given"
    assert s.order() == OrderSpec("ETH-USDT", "sell", 0.5, "base", "limit", "VIP1")
    s.run_events(300)
    assert 0 < s.outputs["maker_prob"] < 1
    # no impact at all
    s = TradeSession.from_recording(rec, config.with_(impact=None))
    s.run_events(100)
    assert s.outputs["impact_quote"] == 0.0 and "not priced" in s.impact_info


class Recorder(Listener):
    def __init__(self):
        self.refreshes, self.states, self.errors = 0, [], []

    def refresh(self, force=False, charts=None):
        self.refreshes += 1

    def state_changed(self, state):
        self.states.append(state)

    def show_error(self, error):
        self.errors.append(error if error is None else str(error))


def test_the_listener_hears_the_run_and_the_errors(session):
    seen = Recorder()
    session.listener = seen
    session.run_events(10)
    assert seen.states == ["paused"] and seen.refreshes >= 1
    session.set_inputs(quantity=0.0)
    assert "quantity must be" in seen.errors[-1]
    session.set_inputs(quantity=1.0)
    assert seen.errors[-1] is None


def test_start_and_pause_in_an_event_loop_lose_no_event(rec):
    all_events = sum(1 for _ in ReplaySource(rec, insts=INSTS))
    s = TradeSession.from_recording(rec, instruments=INSTS,
                                    options=SessionOptions(speed=None))
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        s.start()

    async def main():
        s.start()
        assert s.running and s.state == "running"
        while s.outputs["events"] == 0:
            await asyncio.sleep(0)
        s.pause()
        at_pause = s.outputs["events"]
        assert s.state == "paused" and 0 < at_pause < all_events
        await s.start()
        return at_pause

    asyncio.run(main())
    assert s.state == "ended" and s.outputs["events"] == all_events
    assert s.monitor.summary()["events"] == all_events
    first = s.monitor
    s.restart()  # from the beginning: a fresh monitor and counts
    assert s.monitor is not first and s.outputs["events"] == 0
    assert s.run_events(10**9) == all_events


def test_a_new_speed_applies_from_the_injected_clocks_now(rec):
    now = [100.0]
    s = TradeSession.from_recording(rec, instruments=INSTS, clock=lambda: now[0],
                                    options=SessionOptions(speed=10.0))
    assert s.pacer.delay(0, now=now[0]) == 0.0  # the first event anchors the clock
    now[0] = 100.5  # 5 s of feed done at 10x
    s.set_speed(100.0)  # 5 s of feed left, at 100x, from the session's clock
    assert s.pacer.speed == 100.0
    assert s.pacer.delay(10_000_000_000, now=100.5) == pytest.approx(0.05)


def test_bad_arguments():
    config = RunConfig(inst="BTC-USDT", notional=1.0)
    with pytest.raises(TypeError, match="source_factory"):
        TradeSession(None, config)
    with pytest.raises(TypeError, match="config must be a RunConfig"):
        TradeSession(lambda: [], {"inst": "BTC-USDT"})
    with pytest.raises(ValueError, match="instruments"):
        TradeSession(lambda: [], config, instruments=[])
    with pytest.raises(ValueError, match="impact must be 'book'"):
        TradeSession(lambda: [], config, impact="calibrated")
    with pytest.raises(ValueError, match="history_seconds must be > 0 seconds"):
        SessionOptions(history_seconds=-1)
    with pytest.raises(ValueError, match="speed must be a number > 0"):
        SessionOptions(speed=0)
    with pytest.raises(TypeError, match="config or as keywords"):
        TradeSession.build(lambda: [], config, quantity=2.0)
