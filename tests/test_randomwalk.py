"""The seeded synthetic OKX stream: determinism, sequence/checksum integrity, gap injection."""

from __future__ import annotations

import doctest
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simlab.emulator.randomwalk as rw_mod
from simlab.book import L2Book
from simlab.emulator.randomwalk import SPECS, generate_stream, inject_gap
from simlab.okx import BookSync, OkxParseError, TradeMsg, is_book, parse_frame


def sync_all(stream, make_book=L2Book):
    """Feed a stream to one BookSync per instrument; also replay trades against the book
    state just before them. Returns (syncs, trades, frames)."""
    syncs: dict[str, BookSync] = {}
    trades: list[tuple[TradeMsg, list, list]] = []
    frames = []
    for recv, f in stream:
        frames.append((recv, f))
        m = parse_frame(f)
        if is_book(m):
            s = syncs.get(m.inst_id)
            if s is None:
                s = syncs[m.inst_id] = BookSync(make_book(m.inst_id))
            s.apply(m, arrival=recv)
        else:
            assert isinstance(m, TradeMsg), m
            b = syncs[m.inst_id].book
            trades.append((m, b.levels("bid"), b.levels("ask")))
    return syncs, trades, frames


def test_docstring_examples():
    assert doctest.testmod(rw_mod).failed == 0


def test_same_seed_same_bytes():
    a = list(generate_stream(seed=7, n_updates=300, heartbeat_every=20, reset_at=50))
    b = list(generate_stream(seed=7, n_updates=300, heartbeat_every=20, reset_at=50))
    assert a == b
    c = list(generate_stream(seed=8, n_updates=300, heartbeat_every=20, reset_at=50))
    assert a != c


def test_default_stream_is_clean(make_book):
    syncs, trades, frames = sync_all(generate_stream(seed=0), make_book)
    assert set(syncs) == {"BTC-USDT", "ETH-USDT"}
    n_book = sum(s.stats.messages for s in syncs.values())
    assert n_book == 2000 + 2  # n_updates updates plus one snapshot each
    for s in syncs.values():
        st = s.stats
        assert st.snapshots == 1 and st.gaps == 0 and st.no_snapshot == 0 and st.rejected == 0
        assert st.checksum_failed == 0 and st.checksum_absent == 0
        assert st.checksum_verified == st.messages
        assert st.crossed == 0
        assert st.heartbeats == 0 and st.resets == 0
        assert s.valid
        assert 40 <= s.book.n_bids <= 50 and 40 <= s.book.n_asks <= 50
    assert len(trades) > 100
    # recv_ns strictly increasing, a few ms after the exchange timestamp.
    recvs = [r for r, _ in frames]
    assert all(b > a for a, b in pairwise(recvs))


def test_first_message_per_instrument_is_a_snapshot():
    seen: dict[str, str] = {}
    for _, f in generate_stream(seed=3, instruments=("BTC-USDT", "ETH-USDT", "SOL-USDT"),
                                n_updates=200):
        m = parse_frame(f)
        if is_book(m) and m.inst_id not in seen:
            seen[m.inst_id] = m.action
            assert m.prev_seq_id == -1 and m.seq_id > 0
    assert seen == {"BTC-USDT": "snapshot", "ETH-USDT": "snapshot", "SOL-USDT": "snapshot"}


def test_seq_ids_chain_with_random_steps():
    last: dict[str, int] = {}
    steps = set()
    for _, f in generate_stream(seed=4, n_updates=500):
        m = parse_frame(f)
        if not is_book(m):
            continue
        if m.action == "update":
            assert m.prev_seq_id == last[m.inst_id]
            assert m.seq_id > m.prev_seq_id
            steps.add(m.seq_id - m.prev_seq_id)
        last[m.inst_id] = m.seq_id
    assert len(steps) > 3 and min(steps) >= 1


def test_heartbeats_and_reset_counted(make_book):
    stream = list(generate_stream(seed=1, n_updates=1000, heartbeat_every=25, reset_at=400))
    # Expected heartbeats from the stream's own structure: one per 25 updates per instrument.
    n_upd: dict[str, int] = {}
    n_hb = 0
    for _, f in stream:
        m = parse_frame(f)
        if is_book(m) and m.action == "update":
            if m.is_empty and m.seq_id == m.prev_seq_id:
                n_hb += 1
            else:
                n_upd[m.inst_id] = n_upd.get(m.inst_id, 0) + 1
    assert sum(n_upd.values()) == 1000
    assert n_hb == sum(v // 25 for v in n_upd.values()) > 0
    syncs, _, _ = sync_all(stream, make_book)
    assert sum(s.stats.heartbeats for s in syncs.values()) == n_hb
    assert sum(s.stats.resets for s in syncs.values()) == 1
    for s in syncs.values():
        assert s.stats.gaps == 0 and s.stats.checksum_failed == 0 and s.valid
        assert s.stats.checksum_verified == s.stats.messages


def test_reset_message_shape():
    stream = generate_stream(seed=2, n_updates=100, reset_at=10)
    updates = [m for m in (parse_frame(f) for _, f in stream)
               if is_book(m) and m.action == "update"]
    resets = [m for m in updates if m.seq_id < m.prev_seq_id]
    assert len(resets) == 1 and updates.index(resets[0]) == 10


def test_checksum_false_writes_zero(make_book):
    syncs, _, frames = sync_all(generate_stream(seed=5, n_updates=100, checksum=False),
                                make_book)
    for s in syncs.values():
        assert s.stats.checksum_absent == s.stats.messages and s.stats.checksum_verified == 0
    assert all(b'"checksum":0,' in f for _, f in frames if b'"books"' in f)


def test_trades_hit_resting_prices_and_consume_them():
    _, trades, _ = sync_all(generate_stream(seed=6, n_updates=600))
    assert trades
    for m, bids, asks in trades:
        for t in m.trades:
            side = asks if t.side == "buy" else bids
            prices = {px: Decimal(sz) for px, sz, _ in side}
            assert t.px in prices, (t, side[:3])
            assert Decimal(t.sz) <= prices[t.px]
            assert t.count >= 1 and t.seq_id is not None
    # The book update that follows a trade removes or reduces the traded level.
    stream = list(generate_stream(seed=6, n_updates=600))
    books: dict[str, L2Book] = {}
    pending: dict[str, TradeMsg] = {}
    checked = 0
    for _, f in stream:
        m = parse_frame(f)
        if isinstance(m, TradeMsg):
            pending[m.inst_id] = m
            continue
        b = books.setdefault(m.inst_id, L2Book(m.inst_id))
        before = {s: dict((p, Decimal(z)) for p, z, _ in b.levels(s)) for s in ("bid", "ask")}
        (b.apply_snapshot if m.action == "snapshot" else b.apply_update)(m.bids, m.asks)
        t = pending.pop(m.inst_id, None)
        if t is None:
            continue
        after = {s: dict((p, Decimal(z)) for p, z, _ in b.levels(s)) for s in ("bid", "ask")}
        for tr in t.trades:
            s = "ask" if tr.side == "buy" else "bid"
            # Makers may re-quote the level in the same update, so only check the common
            # case of a level that was simply consumed.
            left = before[s][tr.px] - Decimal(tr.sz)
            if after[s].get(tr.px, Decimal(0)) == left:
                checked += 1
    assert checked > 50


@pytest.mark.parametrize("inst", ["BTC-USDT", "ETH-USDT"])
def test_inject_gap_gives_exactly_one_gap(make_book, inst):
    stream = generate_stream(seed=9, n_updates=800, heartbeat_every=30, reset_at=200)
    syncs, _, frames = sync_all(inject_gap(stream, inst, 100), make_book)
    assert syncs[inst].stats.gaps == 1
    assert not syncs[inst].valid  # no new snapshot in this stream
    assert syncs[inst].stats.no_snapshot > 0
    assert syncs[inst].events[0].kind == "gap"
    other = next(k for k in syncs if k != inst)
    assert syncs[other].stats.gaps == 0 and syncs[other].valid
    assert len(frames) == len(list(generate_stream(seed=9, n_updates=800, heartbeat_every=30,
                                                   reset_at=200))) - 1


def test_inject_gap_out_of_range():
    with pytest.raises(ValueError, match="no update number"):
        list(inject_gap(generate_stream(seed=1, instruments=("BTC-USDT",), n_updates=5,
                                        depth=5), "BTC-USDT", 5))


def test_instrument_grids_respected():
    stream = generate_stream(seed=10, instruments=("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP",
                                                   "FOO-USDT"), n_updates=400)
    for _, f in stream:
        m = parse_frame(f)
        spec = rw_mod.spec_for(m.inst_id)
        pairs = ([(x[0], x[1]) for x in list(m.bids) + list(m.asks)] if is_book(m)
                 else [(t.px, t.sz) for t in m.trades])
        for px, sz in pairs:
            assert Decimal(px) % spec.tick == 0 and Decimal(sz) % spec.lot == 0, (px, sz)
            assert "e" not in px.lower() and not (("." in px) and px.endswith("0"))
    assert SPECS["BTC-USDT"].tick == Decimal("0.1")
    assert SPECS["BTC-USDT"].lot == Decimal("0.00000001")


def test_frames_are_valid_okx():
    for _, f in generate_stream(seed=11, n_updates=50):
        try:
            parse_frame(f)
        except OkxParseError as e:  # pragma: no cover - the assertion says it all
            pytest.fail(f"generated frame does not parse: {e}")


@pytest.mark.parametrize("kw", [{"n_updates": -1}, {"depth": 2}, {"instruments": ()},
                                {"heartbeat_every": 0}, {"reset_at": 10, "n_updates": 10}])
def test_bad_arguments_raise_at_call_time(kw):
    with pytest.raises(ValueError) as ei:
        generate_stream(**kw)
    assert next(iter(kw)) in str(ei.value)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), vol=st.floats(2_000.0, 1e5))
def test_no_price_is_ever_zero_or_below_at_extreme_volatility(seed, vol):
    """The fair price jumps thousands of ticks a step (the generic instrument sits 10,000
    ticks above zero), so it goes below zero within a few hundred steps: it reflects off
    the floor, every level and trade stays above zero, and the stream stays a valid,
    uncrossed book."""
    stream = list(generate_stream(seed=seed, instruments=("XYZ-USDT",), n_updates=300, depth=20,
                                  volatility=vol))
    prices = []
    for _, f in stream:
        m = parse_frame(f)
        if is_book(m):
            prices += [Decimal(lv[0]) for lv in (*m.bids, *m.asks) if lv[1] != "0"]
        else:
            prices += [Decimal(t.px) for t in m.trades]
    assert min(prices) > 0
    syncs, _, _ = sync_all(stream)
    book = syncs["XYZ-USDT"].book
    assert syncs["XYZ-USDT"].stats.gaps == 0 and not book.is_crossed()


def test_volatility_must_be_a_number():
    with pytest.raises(ValueError, match="volatility"):
        generate_stream(volatility=-1)


def test_the_floor_is_reached_and_held():
    """A seed whose walk reaches the floor: quotes rest a few ticks above zero, none below."""
    for seed in range(40):
        prices = [Decimal(lv[0]) for _, f in generate_stream(
            seed=seed, instruments=("XYZ-USDT",), n_updates=300, depth=20, volatility=1e4)
            if is_book(m := parse_frame(f)) for lv in (*m.bids, *m.asks) if lv[1] != "0"]
        assert min(prices) > 0
        if min(prices) <= Decimal("0.07"):
            return
    raise AssertionError("no seed of 40 reached the floor")
