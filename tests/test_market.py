"""The synthetic CST market: replays clean, deterministic, plausible, and the model it claims.

The long test runs BTC-USDT alone for 10 simulated minutes, applies every event to an
L2Book and checks the book after each one; the numbers it prints are the ones quoted in
the emulator's documentation.
"""

from __future__ import annotations

import doctest
import random
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import simlab.emulator.cst as cst_mod
import simlab.emulator.instruments as inst_mod
import simlab.emulator.market as market_mod
import simlab.emulator.plot as plot_mod
from simlab.book import L2Book
from simlab.emulator.cst import CSTBook, CSTParams, _Grid
from simlab.emulator.instruments import DEFAULT_INSTRUMENTS, SimInstrument
from simlab.emulator.market import CSTMarket, instrument_seed, summary
from simlab.emulator.source import Instrument, LevelChange, MarketSource, Print
from simlab.emulator.testing import RandomMarket
from simlab.okx.encode import format_decimal

T0 = 1_767_225_600_000
TEN_MIN = 600_000


def wire(levels):
    return [[p, s, "0", str(c)] for p, s, c in levels]


def replay(market: CSTMarket, inst_id: str, events, *,
           nonempty_per_event: bool = True) -> tuple[L2Book, dict]:
    """Apply ``events`` of one instrument to an L2Book built from its initial book, checking
    after every event what the MarketSource contract promises. Returns the book and counts.

    Both sides must be non-empty after every event, or, with ``nonempty_per_event=False``,
    after the last event of each timestamp: a sweep that empties a side deletes its levels
    before the refill at the same ms, and the feed publishes a timestamp's changes together.
    """
    spec = {i.inst_id: i for i in market.instruments()}[inst_id]
    tick, lot = Decimal(spec.tick_sz), Decimal(spec.lot_sz)
    seen_px: set[str] = set()
    seen_sz: set[str] = set()

    def on_grid(px: str, sz: str) -> None:
        if px not in seen_px:
            d = Decimal(px)
            assert format_decimal(d) == px and d % tick == 0 and d > 0, px
            seen_px.add(px)
        if sz not in seen_sz:
            d = Decimal(sz)
            assert format_decimal(d) == sz and d % lot == 0 and d >= 0, sz
            seen_sz.add(sz)

    book = L2Book(inst_id)
    bids, asks = market.initial_book(inst_id)
    for p, s, _ in bids + asks:
        on_grid(p, s)
    book.apply_snapshot(wire(bids), wire(asks))
    assert not book.is_crossed() and book.n_bids and book.n_asks
    last_ts, last_tid, prints, changes = T0 - 1, 0, 0, 0
    for e in events:
        assert e.inst_id == inst_id
        assert e.ts_ms >= last_ts
        if e.ts_ms > last_ts:
            assert book.n_bids and book.n_asks, (last_ts, e)
        last_ts = e.ts_ms
        if isinstance(e, Print):
            prints += 1
            assert e.side in ("buy", "sell") and e.count >= 1
            assert e.trade_id.isdigit() and int(e.trade_id) > last_tid
            last_tid = int(e.trade_id)
            on_grid(e.price, e.size)
            # The price rests on the side the taker hits, with at least the printed size.
            resting = dict((p, s) for p, s, _ in book.levels("ask" if e.side == "buy" else "bid",
                                                               64))
            assert e.price in resting, (e, book.levels("ask", 3), book.levels("bid", 3))
            assert Decimal(resting[e.price]) >= Decimal(e.size) > 0, e
        else:
            assert isinstance(e, LevelChange), e
            changes += 1
            assert e.side in ("bid", "ask")
            assert (e.size == "0") == (e.count == 0) and e.count >= 0, e
            on_grid(e.price, e.size)
            lvl = [[e.price, e.size, "0", str(e.count)]]
            if e.side == "bid":
                book.apply_update(lvl, [])
            else:
                book.apply_update([], lvl)
            assert not book.is_crossed(), e
            assert (book.n_bids and book.n_asks) or not nonempty_per_event, e
    assert book.n_bids and book.n_asks
    return book, {"prints": prints, "changes": changes}


@pytest.fixture(scope="module")
def ten_minutes():
    """BTC-USDT alone, seed 0, default parameters, 10 simulated minutes."""
    m = CSTMarket(seed=0, instruments=["BTC-USDT"], start_ms=T0)
    return m, m.advance(T0 + TEN_MIN - 1)


def test_docstring_examples():
    # (plot's examples render figures: pytest's --doctest-modules runs them with the suite)
    for mod in (cst_mod, inst_mod, market_mod):
        assert doctest.testmod(mod).failed == 0, mod.__name__


def test_is_a_market_source():
    m: MarketSource = CSTMarket(seed=0, instruments=["ETH-USDT"], start_ms=T0)
    assert m.start_ms == T0
    assert [i.inst_id for i in m.instruments()] == ["ETH-USDT"]
    assert isinstance(m.instruments()[0], Instrument)


def test_ten_minute_run_replays_clean(ten_minutes):
    m, events = ten_minutes
    assert events and events[-1].ts_ms <= T0 + TEN_MIN - 1
    book, n = replay(m, "BTC-USDT", events)
    # The replayed book is the model's own book, level for level.
    bids, asks = m.current_book("BTC-USDT")
    assert book.levels("bid") == [(p, s, int(c)) for p, s, c in bids]
    assert book.levels("ask") == [(p, s, int(c)) for p, s, c in asks]
    # initial_book is still the book at start_ms, not the current one.
    assert m.initial_book("BTC-USDT") != (bids, asks)
    assert m.initial_book("BTC-USDT") == m.book("BTC-USDT").initial
    st = m.book("BTC-USDT").stats
    assert n["prints"] == st["prints"] > 1000
    assert st["reseeds"] == 0  # defaults: a side never empties in 10 minutes


def test_ten_minute_run_is_plausible(ten_minutes, capsys):
    m, events = ten_minutes
    s = summary(events, initial=m.initial_book("BTC-USDT"), tick_sz="0.1", start_ms=T0,
                levels=20)
    with capsys.disabled():
        sp = s["spread"]
        print(f"\nBTC-USDT 10 min: {s['event_rate']:.0f} events/s, {s['trade_rate']:.2f} "
              f"prints/s; spread mean {sp['mean']:.2f} median {sp['median']:g} p99 "
              f"{sp['p99']:g} max {sp['max']:g} ticks; levels/side {s['levels_bid']:.0f}; "
              f"mid range {s['mid_range']:.1f}")
        print("depth (BTC) at i=1..20 from the opposite best, bid:",
              " ".join(f"{x:.3f}" for x in s["depth_bid"]))
        print("                                              ask:",
              " ".join(f"{x:.3f}" for x in s["depth_ask"]))
    # A liquid market: the spread is mostly one tick and opens only briefly.
    assert s["spread"]["median"] == 1
    assert 1 < s["spread"]["mean"] < 3
    assert s["spread"]["p99"] <= 20
    # Never empty (replay asserted it after every event; here at every sample too).
    assert s["min_levels"] >= 50
    # Activity: "tens to a few hundred events per second", a few trades per second.
    assert 100 < s["event_rate"] < 600
    assert 1 < s["trade_rate"] < 10
    assert 0.35 < s["buy_share"] < 0.65
    # Hump-shaped mean profile (CST; Bouchaud, Mezard & Potters 2002): the touch is thinner
    # than the book a few ticks away (market orders eat it, and it is empty whenever the
    # spread is wider than i), the profile peaks inside the first 20 ticks, then decays
    # (lambda(i)/theta(i) falls as i**-0.52 once theta is flat).
    for side in ("depth_bid", "depth_ask"):
        d = np.array(s[side])
        assert d[0] < 0.75 * d[1:10].max(), d
        assert 2 <= int(np.argmax(d)) + 1 <= 18, d
        assert d[-1] < 0.95 * d.max(), d


def test_far_book_matches_the_model_stationary_mean(ten_minutes):
    """Away from the touch market orders do not reach, so each tick is an M/M/inf queue:
    orders arrive at lambda(i) and each leaves at theta(i), giving a mean of
    lambda(i)/theta(i) orders (CST 2010, section 2) times the mean order size."""
    m, events = ten_minutes
    p = CSTParams()
    s = summary(events, initial=m.initial_book("BTC-USDT"), tick_sz="0.1", start_ms=T0,
                levels=120, sample_ms=250)
    mean_units = sum(n * q for n, q in enumerate(p.limit_sizes, 1)) / sum(p.limit_sizes)
    theory = np.array([p.limit_rate(i) / p.cancel_rate(i) * mean_units * 0.01
                       for i in range(1, 121)])
    got = (np.array(s["depth_bid"]) + np.array(s["depth_ask"])) / 2
    for lo, hi in ((20, 40), (40, 80), (80, 120)):
        ratio = got[lo:hi].mean() / theory[lo:hi].mean()
        assert 0.9 < ratio < 1.1, (lo, hi, ratio)
    # ... while market orders thin the first ticks below it.
    assert got[:5].mean() < 0.95 * theory[:5].mean()


def test_event_rates_match_the_parameters(ten_minutes):
    """Limit orders arrive at 2 * sum(lambda(i), i=1..depth), market orders at mu: the counts
    of a 10-minute run are Poisson, so within a few standard deviations of rate * 600 s."""
    m, _ = ten_minutes
    p, st = CSTParams(), m.book("BTC-USDT").stats
    want_limit = 2 * sum(p.limit_rate(i) for i in range(1, p.depth + 1)) * 600
    want_market = p.mu * 600
    assert abs(st["limit"] - want_limit) < 5 * want_limit**0.5
    assert abs(st["market"] - want_market) < 5 * want_market**0.5
    # In steady state cancellations balance arrivals (less what market orders take).
    assert 0.9 * st["limit"] < st["cancel"] < st["limit"]
    assert st["null"] < 10


def test_same_seed_same_events_and_chunking_does_not_matter():
    insts = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP"]
    a = CSTMarket(seed=7, instruments=insts, start_ms=T0).advance(T0 + 30_000)
    b_market = CSTMarket(seed=7, instruments=insts, start_ms=T0)
    rng = random.Random(1)
    b, t = [], T0 - 1
    while t < T0 + 30_000:
        t = min(T0 + 30_000, t + rng.choice([1, 3, 10, 100, 2500]))
        b += b_market.advance(t)
    assert repr(a) == repr(b)  # byte for byte, once formatted
    c = CSTMarket(seed=8, instruments=insts, start_ms=T0).advance(T0 + 30_000)
    assert repr(a[:200]) != repr(c[:200])
    assert CSTMarket(seed=8, instruments=insts).initial_book("ETH-USDT") != \
        CSTMarket(seed=7, instruments=insts).initial_book("ETH-USDT")


def test_instruments_are_independent_and_merged_in_order():
    alone = CSTMarket(seed=3, instruments=["ETH-USDT"], start_ms=T0)
    three = CSTMarket(seed=3, instruments=["BTC-USDT-SWAP", "ETH-USDT", "BTC-USDT"],
                      start_ms=T0)
    assert alone.initial_book("ETH-USDT") == three.initial_book("ETH-USDT")
    ev3 = three.advance(T0 + 30_000)
    assert repr(alone.advance(T0 + 30_000)) == repr([e for e in ev3 if e.inst_id == "ETH-USDT"])
    order = {"BTC-USDT-SWAP": 0, "ETH-USDT": 1, "BTC-USDT": 2}
    keys = [(e.ts_ms, order[e.inst_id]) for e in ev3]
    assert keys == sorted(keys)
    assert len({e.inst_id for e in ev3}) == 3


@pytest.mark.parametrize("inst_id", ["ETH-USDT", "BTC-USDT-SWAP"])
def test_other_grids_replay_clean(inst_id):
    """ETH-USDT (tick 0.01) and the swap (sizes in 0.01-contract lots) on their own grids."""
    m = CSTMarket(seed=5, instruments=[inst_id], start_ms=T0)
    book, n = replay(m, inst_id, m.advance(T0 + 60_000))
    assert n["prints"] > 50
    unit = Decimal(DEFAULT_INSTRUMENTS[inst_id].size_unit)
    # Every order is a whole number of units, so every level is too.
    assert all(Decimal(s) % unit == 0 for _, s, _ in book.levels("bid") + book.levels("ask"))


def test_a_tiny_window_reseeds_and_stays_valid():
    """depth=3 and big market orders: sweeps empty a side often. The side is refilled at
    once, the window prunes, and the book stays valid after every event."""
    p = CSTParams(depth=3, mu=20.0, market_sizes=(0, 0, 0, 0, 0, 0, 0, 0, 0, 1), burn_in_s=1.0)
    m = CSTMarket(seed=2, instruments=["BTC-USDT"], params=p, start_ms=T0)
    events = m.advance(T0 + 20_000)
    book, _ = replay(m, "BTC-USDT", events, nonempty_per_event=False)
    st = m.book("BTC-USDT").stats
    assert st["reseeds"] > 10 and st["pruned"] > 10
    assert book.n_bids <= 3 and book.n_asks <= 3
    bids, asks = m.current_book("BTC-USDT")
    assert book.levels("bid") == [(p_, s, int(c)) for p_, s, c in bids]
    assert book.levels("ask") == [(p_, s, int(c)) for p_, s, c in asks]
    # Sweeps through several levels print once per level, best first, same timestamp.
    by_ts: dict[int, list[Print]] = {}
    for e in events:
        if isinstance(e, Print):
            by_ts.setdefault(e.ts_ms, []).append(e)
    multi = [ps for ps in by_ts.values() if len(ps) > 1 and len({x.side for x in ps}) == 1]
    assert multi
    for ps in multi:
        prices = [Decimal(x.price) for x in ps]
        assert prices == sorted(prices, reverse=ps[0].side == "sell")


def test_market_rates_hook_tilts_the_flow():
    class BuyersOnly(CSTBook):
        def market_rates(self):
            return 2.0, 0.0

    m = CSTMarket(seed=4, instruments=["BTC-USDT"], start_ms=T0, book_cls=BuyersOnly)
    events = m.advance(T0 + 120_000)
    prints = [e for e in events if isinstance(e, Print)]
    assert len(prints) > 100 and {e.side for e in prints} == {"buy"}
    replay(m, "BTC-USDT", events)
    b0 = Decimal(m.initial_book("BTC-USDT")[1][0][0])
    assert Decimal(m.current_book("BTC-USDT")[1][0][0]) > b0  # buyers lift the price


def test_grid_formatting_is_format_decimal():
    rng = random.Random(0)
    for step in ("0.1", "0.01", "0.00000001", "1", "0.5", "10", "0.000001", "2.5"):
        g = _Grid(Decimal(step))
        for n in [0, 1, 9, 10, 11, 100, 10**8, 10**8 + 1] + [rng.randrange(10**12)
                                                              for _ in range(300)]:
            assert g(n) == format_decimal(n * Decimal(step)), (step, n)


def test_params_and_inputs_are_checked():
    with pytest.raises(ValueError, match="depth"):
        CSTParams(depth=0)
    with pytest.raises(ValueError, match="theta"):
        CSTParams(theta=(0.5, -1.0))
    with pytest.raises(ValueError, match="mu"):
        CSTParams(mu=float("nan"))
    with pytest.raises(ValueError, match="limit_sizes"):
        CSTParams(limit_sizes=(0.0, 0.0))
    with pytest.raises(ValueError, match="unknown instrument 'DOGE-USDT'"):
        CSTMarket(instruments=["DOGE-USDT"])
    with pytest.raises(ValueError, match="seed"):
        instrument_seed(-1, "BTC-USDT")
    with pytest.raises(ValueError, match="size_unit"):
        SimInstrument(DEFAULT_INSTRUMENTS["BTC-USDT"].instrument, "60000", "0.000000001")
    with pytest.raises(ValueError, match="not in the market"):
        CSTMarket(instruments=["ETH-USDT"], params={"BTC-USDT": CSTParams()})
    with pytest.raises(ValueError, match="tick_sz"):
        summary([], inst_id="BTC-USDT")


def test_per_instrument_params():
    m = CSTMarket(seed=1, instruments=["BTC-USDT", "ETH-USDT"],
                  params={"ETH-USDT": CSTParams(depth=30)}, start_ms=T0)
    assert m.book("ETH-USDT").depth == 30 and m.book("BTC-USDT").depth == 400
    bids, asks = m.initial_book("ETH-USDT")
    span = (Decimal(asks[-1][0]) - Decimal(bids[-1][0])) / Decimal("0.01")
    assert len(bids) <= 30 and len(asks) <= 30 and span <= 2 * 30


def test_plot_writes_a_png(tmp_path, capsys):
    assert plot_mod.main(["--minutes", "0.2", "--out", str(tmp_path / "sub" / "m.png")]) == 0
    out = tmp_path / "sub" / "m.png"
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert plot_mod.main(["--minutes", "-1", "--out", str(tmp_path / "n.png")]) == 2
    assert "minutes must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "n.png").exists()


# -- the price floor ------------------------------------------------------------------------
LOW = SimInstrument(Instrument("LOW-USDT", "SPOT", "LOW", "USDT", tick_sz="0.01", lot_sz="1",
                               min_sz="1"), price="0.1", size_unit="1")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), mu=st.floats(20.0, 400.0), k=st.floats(0.05, 3.0),
       big=st.integers(3, 40))
# both sides pruned empty in the initial settle: the best-ask scan of an empty side hung
@example(seed=322680002, mu=28.175349544325417, k=0.07925504191162837, big=25)
def test_cst_prices_never_reach_zero_at_extreme_volatility(seed, mu, k, big):
    """Ten ticks above zero, a window twice as deep, torrents of large market orders: every
    price the market ever shows is one tick or more, and the book stays valid."""
    params = CSTParams(k=k, mu=mu, market_sizes=(0.0,) * (big - 1) + (1.0,), depth=20,
                       burn_in_s=1.0)
    m = CSTMarket(seed=seed, instruments=[LOW], params=params, start_ms=T0)
    events = m.advance(T0 + 20_000)
    replay(m, "LOW-USDT", events, nonempty_per_event=False)  # asserts every price > 0
    lowest = min(Decimal(e.price) for e in events if isinstance(e, LevelChange))
    assert lowest >= Decimal("0.01")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), share=st.floats(0.2, 0.95), price=st.floats(0.03, 0.5))
def test_random_market_prices_never_reach_zero(seed, share, price):
    m = RandomMarket(seed=seed, instruments=["XYZ-USDT"], rate=2000, depth=30,
                     trade_share=share, prices={"XYZ-USDT": price})
    bids, asks = m.initial_book("XYZ-USDT")
    events = m.advance(m.start_ms + 5_000)
    prices = [Decimal(p) for p, _, _ in bids + asks] + [Decimal(e.price) for e in events]
    assert len(prices) > 1000 and min(prices) > 0
    book = L2Book("XYZ-USDT")
    book.apply_snapshot(wire(bids), wire(asks))
    for e in events:
        if isinstance(e, LevelChange):
            lvl = [[e.price, e.size, "0", str(e.count)]]
            book.apply_update(*((lvl, []) if e.side == "bid" else ([], lvl)))
            assert not book.is_crossed()
