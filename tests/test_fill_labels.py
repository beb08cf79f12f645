"""Fill labels and fill features on hand-built books and trades (simlab.models)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simlab.models.fill_features import FeatureParams, FillFeatureState
from simlab.models.fill_labels import BookPath, TradePath, label_fills


def book(rows, levels=None):
    """rows: (arrival, ts_ms, bid, bid_sz, ask, ask_sz[, valid, snapshot]);
    levels: per message, a list of (side 0/1, price, size) level rows."""
    cols = list(zip(*[(*r, True, False)[:8] for r in rows], strict=True))
    kw = dict(arrival=cols[0], ts_ms=cols[1], bid=cols[2], bid_sz=cols[3], ask=cols[4],
              ask_sz=cols[5], valid=cols[6], snapshot=cols[7])
    if levels is not None:
        start, side, price, size = [0], [], [], []
        for msg in levels:
            for s, p, z in msg:
                side.append(s)
                price.append(p)
                size.append(z)
            start.append(len(side))
        kw.update(msg_start=start, side=side, price=price, size=size)
    return BookPath.from_arrays(**kw)


def trades(*rows):
    """rows: (arrival, ts_ms, price, size, taker 'buy'/'sell')."""
    if not rows:
        return TradePath.empty()
    a, t, p, s, b = zip(*rows, strict=True)
    return TradePath.from_arrays(arrival=a, ts_ms=t, price=p, size=s,
                                 buy=[x == "buy" for x in b])


# A quiet book: bid 2 @ 99, ask 3 @ 100, a message every 100 ms for 2 s (arrivals even).
QUIET = [(2 * k, 100 * k, 99.0, 2.0, 100.0, 3.0) for k in range(21)]


def one(b, t, buy=True, q=1.0, horizon=1000, **kw):
    r = label_fills(b, t, [0], buy=buy, order_size=q, horizon_ms=horizon, **kw)
    return r.loc[0, "label"], r.loc[0, "reason"], r.loc[0, "fill_ms"]


def test_fill_by_trade_through():
    t = trades((5, 250, 98.5, 0.1, "sell"))
    assert one(book(QUIET), t) == (1, "trade_through", 250.0)
    # a sell at the ask is traded through by a buy above it
    t = trades((5, 300, 100.5, 0.1, "buy"))
    assert one(book(QUIET), t, buy=False) == (1, "trade_through", 300.0)


def test_fill_by_the_opposite_side_reaching_the_price():
    rows = list(QUIET)
    rows[4] = (8, 400, 98.0, 1.0, 99.0, 0.5)   # the ask comes down to our bid
    assert one(book(rows), trades()) == (1, "opposite", 400.0)
    # a trade at our price with the taker on our side: a seller rested at our price
    t = trades((5, 300, 99.0, 0.2, "buy"))
    assert one(book(QUIET), t) == (1, "opposite", 300.0)


def test_fill_by_queue_depletion_needs_queue_ahead_plus_own_size():
    full = trades((5, 200, 99.0, 1.5, "sell"), (7, 300, 99.0, 1.5, "sell"))  # 3 = 2 + 1
    assert one(book(QUIET), full) == (1, "queue", 100.0 * 3)
    short = trades((5, 200, 99.0, 1.5, "sell"), (7, 300, 99.0, 1.4, "sell"))  # 2.9 < 3
    assert one(book(QUIET), short)[:2] == (0, "none")
    # a smaller order needs less: q = 0.9 fills with 2.9
    assert one(book(QUIET), short, q=0.9)[:2] == (1, "queue")


def test_no_fill_at_the_horizon_and_the_window_bounds():
    t = trades((5, 200, 99.0, 1.5, "sell"), (31, 1500, 99.0, 5.0, "sell"))
    assert one(book(QUIET), t, horizon=1000)[:2] == (0, "none")   # the big one is too late
    assert one(book(QUIET), t, horizon=1500)[:2] == (1, "queue")  # ... on the boundary
    # received before the moment (arrival < 0's?) cannot happen; one received before a
    # later moment with a later exchange time is not counted for that moment
    b = book(QUIET)
    t = trades((9, 450, 98.0, 1.0, "sell"))                       # arrives before msg 5
    r = label_fills(b, t, [5], buy=True, order_size=1.0, horizon_ms=1000)
    assert r.loc[0, "reason"] == "none"
    # nor one with an exchange time at or before the moment that arrives after it
    t = trades((11, 500, 98.0, 1.0, "sell"))                      # ts = msg 5's ts
    r = label_fills(b, t, [5], buy=True, order_size=1.0, horizon_ms=1000)
    assert r.loc[0, "reason"] == "none"


@pytest.mark.parametrize("fault", ["invalid", "snapshot"])
def test_a_gap_inside_the_horizon_drops_the_sample(fault):
    rows = list(QUIET)
    a, ts, *top = rows[6]
    rows[6] = (a, ts, *top, fault != "invalid", fault == "snapshot")
    no_fill = trades()
    assert one(book(rows), no_fill)[:2] == (-1, "gap")
    # dropped even when it would have filled before the gap: dropping never picks a label
    fill = trades((5, 250, 98.5, 0.1, "sell"))
    assert one(book(rows), fill)[:2] == (-1, "gap")
    # the same break after the horizon does not matter
    assert one(book(rows), no_fill, horizon=500)[:2] == (0, "none")


def test_a_resync_right_after_the_window_drops_the_sample():
    # the connection broke after ts 300; the next message (a snapshot) comes at 1500
    rows = [QUIET[k] for k in range(4)] + [(30, 1500, 99.0, 2.0, 100.0, 3.0, True, True)]
    assert one(book(rows), trades(), horizon=1000)[:2] == (-1, "gap")


def test_explicit_gaps_and_the_end_of_the_data():
    assert one(book(QUIET), trades(), gaps=[(600, 700)])[:2] == (-1, "gap")
    assert one(book(QUIET), trades(), gaps=[(1200, 1300)])[:2] == (0, "none")
    assert one(book(QUIET), trades(), horizon=2500)[:2] == (-1, "end")
    assert one(book(QUIET), trades(), horizon=2000)[:2] == (0, "none")


def test_no_book_at_the_moment():
    rows = [(0, 0, math.nan, math.nan, 100.0, 3.0), *QUIET[1:]]
    assert one(book(rows), trades())[:2] == (-1, "no_book")
    assert one(book(rows), trades(), buy=False)[:2] == (0, "none")


def test_probabilistic_queue_credits_unexplained_cancellations():
    # level at 99: 2 (all ahead of us) -> 6 (4 join behind us) -> 4 (2 cancelled)
    rows = [QUIET[0], (2, 100, 99.0, 6.0, 100.0, 3.0), (4, 200, 99.0, 4.0, 100.0, 3.0)]
    rows += [(2 * k, 100 * k, 99.0, 4.0, 100.0, 3.0) for k in range(3, 21)]
    levels = [[(0, 99.0, 2.0), (1, 100.0, 3.0)], [(0, 99.0, 6.0)], [(0, 99.0, 4.0)]]
    levels += [[] for _ in range(3, 21)]
    b = book(rows, levels)
    # power 1: the 2 cancelled are ahead of us with probability front/(front+back) = 2/6,
    # so the queue ahead becomes 2 - 2/3 = 4/3 and we fill once 4/3 + 1 has traded
    fills = trades((5, 250, 99.0, 2.4, "sell"))
    short = trades((5, 250, 99.0, 2.3, "sell"))
    assert one(b, fills, queue="probabilistic")[:2] == (1, "queue")
    assert one(b, short, queue="probabilistic")[:2] == (0, "none")
    # conservative: cancellations never help, 2 + 1 must trade
    assert one(b, fills, queue="conservative")[:2] == (0, "none")
    # a higher power puts cancellations behind the longer queue: here behind us
    assert one(b, fills, queue="probabilistic", power=3.0)[:2] == (0, "none")


def test_probabilistic_queue_with_trades_between_book_messages():
    # 2 ahead; 1 trades, then the level shows 0.5: 1 explained by the trade, 0.5 cancelled,
    # all ahead of us (nothing behind): 0.5 stays ahead, so 1.5 more traded fills us
    rows = [QUIET[0], (4, 200, 99.0, 0.5, 100.0, 3.0)]
    rows += [(2 * k, 100 * k, 99.0, 0.5, 100.0, 3.0) for k in range(3, 21)]
    levels = [[(0, 99.0, 2.0), (1, 100.0, 3.0)], [(0, 99.0, 0.5)]] + [[]] * 18
    b = book(rows, levels)
    t = trades((1, 100, 99.0, 1.0, "sell"), (7, 300, 99.0, 1.5, "sell"))
    assert one(b, t, queue="probabilistic") == (1, "queue", 300.0)
    t = trades((1, 100, 99.0, 1.0, "sell"), (7, 300, 99.0, 1.4, "sell"))
    assert one(b, t, queue="probabilistic")[:2] == (0, "none")
    assert one(b, t, queue="conservative")[:2] == (0, "none")


def test_sides_and_sizes_per_sample():
    t = trades((5, 250, 98.5, 0.1, "sell"))
    r = label_fills(book(QUIET), t, [0, 0, 2], buy=[True, False, True],
                    order_size=[1.0, 1.0, 2.0], horizon_ms=500)
    assert r["label"].tolist() == [1, 0, 1]
    assert r["order_size"].tolist() == [1.0, 1.0, 2.0]
    assert r["price"].tolist() == [99.0, 100.0, 99.0]


@pytest.mark.parametrize("kw, message", [
    (dict(queue="optimistic"), "queue must be one of"),
    (dict(horizon_ms=0), "horizon_ms must be an integer > 0"),
    (dict(horizon_ms=1.5), "horizon_ms must be an integer > 0"),
    (dict(order_size=0.0), "order_size must be > 0"),
    (dict(samples=[99]), r"samples must be message indices in \[0, 21\)"),
    (dict(queue="probabilistic"), "needs the level rows"),
    (dict(gaps=[(5, 1)]), "each gap must be"),
    (dict(power=0), "power must be a number > 0"),
])
def test_bad_arguments_are_named(kw, message):
    args = dict(samples=[0], buy=True, order_size=1.0, horizon_ms=1000) | kw
    samples = args.pop("samples")
    with pytest.raises(ValueError, match=message):
        label_fills(book(QUIET), trades(), samples, **args)


def test_paths_check_their_arrays():
    with pytest.raises(ValueError, match="arrival must be strictly increasing"):
        book([(1, 0, 99.0, 1.0, 100.0, 1.0), (1, 0, 99.0, 1.0, 100.0, 1.0)])
    with pytest.raises(ValueError, match="ts_ms has 1 values, expected 2"):
        BookPath.from_arrays(arrival=[0, 1], ts_ms=[0], bid=[1, 1], bid_sz=[1, 1],
                             ask=[2, 2], ask_sz=[1, 1])


# -- features ---------------------------------------------------------------------------------
def test_order_flow_imbalance_follows_cont_kukanov_stoikov():
    s = FillFeatureState(FeatureParams(lookback_ms=10_000), tick_size=1.0)
    s.on_book(0, 100.0, 5.0, 101.0, 5.0, 20.0, 20.0)
    s.on_book(1, 100.0, 7.0, 101.0, 5.0, 20.0, 20.0)   # bid queue +2: e = +2
    s.on_book(2, 101.0, 1.0, 102.0, 4.0, 20.0, 20.0)   # bid up (+1), ask up (+5): e = 6
    s.on_book(3, 101.0, 1.0, 101.5, 3.0, 20.0, 20.0)   # ask down: e = -3
    f = s.features(3, buy=False, order_size=1.0)
    assert f["ofi"] == 2.0 + 6.0 - 3.0
    assert s.features(3, buy=True, order_size=1.0)["ofi"] == -5.0
    # realised volatility: the three mid log returns
    mids = [100.5, 100.5, 101.5, 101.25]
    r2 = sum(math.log(b / a) ** 2 for a, b in itertools.pairwise(mids))
    assert f["volatility_bps"] == pytest.approx(math.sqrt(r2) * 1e4, rel=1e-12)


def test_features_window_and_invalid_book():
    s = FillFeatureState(FeatureParams(lookback_ms=1000), tick_size=0.5)
    s.on_book(0, 100.0, 2.0, 100.5, 6.0, 8.0, 12.0)
    s.on_trade(100, 100.5, 2.0, buy=True)
    s.on_trade(900, 100.0, 0.5, buy=False)
    f = s.features(1000, buy=False, order_size=3.0)
    assert f["trade_flow"] == 1.5          # buys hit our (ask) side: 2 - 0.5
    assert f["queue_ahead"] == 6.0 and f["opp_best_size"] == 2.0
    assert f["queue_ahead_rel"] == 0.5 and f["size_rel_depth"] == 0.25
    assert f["imbalance"] == (2.0 - 6.0) / 8.0
    assert f["spread_ticks"] == 1.0
    assert s.features(1100, buy=False, order_size=3.0)["trade_flow"] == -0.5  # first expired
    s.on_invalid()
    g = s.features(1100, buy=True, order_size=1.0)
    assert math.isnan(g["queue_ahead"]) and g["ofi"] == 0.0
    assert g["trade_flow"] == 0.5          # trades survive a book gap


def test_feature_params_are_checked():
    with pytest.raises(ValueError, match="lookback_ms must be an integer >= 1"):
        FeatureParams(lookback_ms=0)
    with pytest.raises(ValueError, match="tick_size must be a number > 0"):
        FillFeatureState(tick_size=float("nan"))
    assert np.isnan(FillFeatureState(tick_size=1.0).features(0, True, 1.0)["imbalance"])
