"""Offline synthetic recordings (simlab.emulator.offline) and the imbalance-driven flow
(simlab.emulator.flow)."""

from __future__ import annotations

import itertools
import math

import orjson
import pytest

from simlab.cli import main
from simlab.emulator.cst import CSTParams
from simlab.emulator.flow import ImbalanceFlowBook, imbalance_flow
from simlab.emulator.instruments import DEFAULT_INSTRUMENTS
from simlab.emulator.market import DEFAULT_START_MS, CSTMarket
from simlab.emulator.offline import write_synthetic_recording
from simlab.emulator.source import Print
from simlab.feed.replay import ReplaySource
from simlab.sim import CostPipeline, OrderSpec
from simlab.store import Recording
from simlab.store.manifest import RecordingError
from simlab.store.verify import verify

SEED = 3
SECONDS = 60


@pytest.fixture(scope="module")
def rec60(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "rec"
    write_synthetic_recording(path, seconds=SECONDS, seed=SEED, checksum=True)
    return path


def _fresh_market_events(seconds: float, seed: int = SEED, **kw):
    m = CSTMarket(seed=seed, instruments=["BTC-USDT"], **kw)
    return m, m.advance(m.start_ms + int(seconds * 1000))


# -- the recording -----------------------------------------------------------------------------
def test_verify_passes_with_every_checksum(rec60):
    r = verify(rec60)
    assert r.ok, r.problems
    books = r.channels["books"]["total"]
    # one snapshot, then one update per 100 ms push time (the book moves ~27 times each)
    assert books["snapshots"] == 1
    assert books["updates"] == SECONDS * 10
    assert books["gaps"] == 0 and books["checksum_failed"] == 0
    assert books["checksum_verified"] == SECONDS * 10 + 1
    assert r.control == {"subscribe": 2, "unsubscribe": 2}
    m = Recording(rec60).manifest
    assert m["complete"] is True
    src = m["source"]
    assert src["synthetic"] is True and src["seed"] == SEED and src["seconds"] == SECONDS
    assert src["market"]["books"]["BTC-USDT"]["params"]["depth"] == 400
    # OKX's BTC-USDT grid, as the live recorder stores it from /api/v5/public/instruments
    meta = m["instruments"]["BTC-USDT"]
    assert (meta["instType"], meta["tickSz"], meta["lotSz"], meta["minSz"]) == \
        ("SPOT", "0.1", "0.00000001", "0.00001")


def test_frames_acks_snapshot_and_receive_times(rec60):
    frames = list(Recording(rec60).iter_raw())
    first = orjson.loads(frames[0].payload)
    assert first == {"id": "1", "event": "subscribe",
                     "arg": {"channel": "books", "instId": "BTC-USDT"},
                     "connId": first["connId"]}
    assert len(first["connId"]) == 8
    snap = orjson.loads(frames[1].payload)
    assert snap["action"] == "snapshot" and snap["data"][0]["ts"] == str(DEFAULT_START_MS)
    assert orjson.loads(frames[2].payload)["arg"]["channel"] == "trades"
    assert [orjson.loads(f.payload)["event"] for f in frames[-2:]] == ["unsubscribe"] * 2
    assert all(a.recv_ns <= b.recv_ns for a, b in itertools.pairwise(frames))
    for f in frames:
        msg = orjson.loads(f.payload)
        if "data" in msg:  # received 5 ms after the exchange time, exactly
            assert f.recv_ns == int(msg["data"][0]["ts"]) * 1_000_000 + 5_000_000
    end = (DEFAULT_START_MS + SECONDS * 1000) * 1_000_000 + 5_000_000
    assert frames[-1].recv_ns == end


def test_trades_and_final_book_are_the_markets(rec60):
    m, events = _fresh_market_events(SECONDS)
    prints = [e for e in events if type(e) is Print]
    t = Recording(rec60).trades_table(inst="BTC-USDT").to_pandas()
    assert len(t) == len(prints) > 100
    assert [str(x) for x in t["trade_id"]] == [p.trade_id for p in prints]
    assert [float(x) for x in t["price"]] == [float(p.price) for p in prints]
    # The cost pipeline's last book tick is the market's book at the end.
    order = OrderSpec("BTC-USDT", "buy", 10_000.0, "quote", "market", fee_tier="VIP1")
    res = CostPipeline(order, metadata=Recording(rec60).manifest["instruments"]) \
        .run_recording(rec60)
    bids, asks = m.current_book("BTC-USDT")
    last = res.table.iloc[-1]
    assert (last["best_bid"], last["best_ask"]) == (float(bids[0][0]), float(asks[0][0]))
    assert len(res.table) == SECONDS * 10 + 1
    assert res.table["slippage_bps"].notna().all()


def test_replay_source_gives_the_same_ticks(rec60):
    src = ReplaySource(rec60, insts=["BTC-USDT"])
    kinds: dict[str, int] = {}
    for ev in src:
        kinds[ev.kind] = kinds.get(ev.kind, 0) + 1
    n_trades = len(Recording(rec60).trades_table(inst="BTC-USDT"))
    assert kinds == {"book": SECONDS * 10 + 1, "trade": n_trades}
    order = OrderSpec("BTC-USDT", "sell", 0.5, "base", "market")
    meta = src.instruments
    per_event = CostPipeline(order, metadata=meta).run(ReplaySource(rec60, insts=["BTC-USDT"]))
    columnar = CostPipeline(order, metadata=meta).run_recording(rec60)
    assert per_event.table["best_bid"].tolist() == columnar.table["best_bid"].tolist()
    assert per_event.table["net_bps"].tolist() == pytest.approx(columnar.table["net_bps"])


def test_full_book_channels_and_several_instruments(tmp_path):
    path = write_synthetic_recording(tmp_path / "r", seconds=5,
                                     instruments=["BTC-USDT-SWAP", "ETH-USDT"],
                                     channels=["books5", "bbo-tbt", "trades"])
    r = verify(path)
    assert r.ok, r.problems
    assert set(r.channels) == {"books5", "bbo-tbt", "trades"}
    assert r.control == {"subscribe": 6, "unsubscribe": 6}


# -- determinism -------------------------------------------------------------------------------
def _tables(path):
    rec = Recording(path)
    return (rec.levels_table().to_pandas(), rec.trades_table().to_pandas(),
            [f.payload for f in rec.iter_raw()])


def test_same_arguments_same_recording(tmp_path):
    kw = {"seconds": 20, "seed": 5, "instruments": ["BTC-USDT", "ETH-USDT"],
          "imbalance": 0.7}
    a = _tables(write_synthetic_recording(tmp_path / "a", **kw))
    b = _tables(write_synthetic_recording(tmp_path / "b", **kw))
    # how simulated time is stepped must not matter either
    c = _tables(write_synthetic_recording(tmp_path / "c", step_ms=7, **kw))
    for x in (b, c):
        assert a[0].equals(x[0]) and a[1].equals(x[1]) and a[2] == x[2]
    assert len(a[0]) > 1000 and len(a[1]) > 10
    d = _tables(write_synthetic_recording(tmp_path / "d", **{**kw, "seed": 6}))
    assert not a[0].equals(d[0])


# -- the imbalance flow ------------------------------------------------------------------------
def test_market_rates_by_hand():
    b = ImbalanceFlowBook(DEFAULT_INSTRUMENTS["BTC-USDT"], CSTParams(mu=3.0, depth=20),
                          beta=0.6)
    b.bids, b.asks, b.best_bid, b.best_ask = {99: [1, []]}, {100: [4, []]}, 99, 100
    # I = (1 - 4) / 5 = -0.6: buys 1.5 * (1 - 0.36) = 0.96, sells 1.5 * 1.36 = 2.04
    assert b.market_rates() == pytest.approx((0.96, 2.04))
    assert b.imbalance() == pytest.approx(-0.6)
    b.bids, b.asks = {}, {}
    assert b.market_rates() == (1.5, 1.5)
    assert ImbalanceFlowBook.beta == 0.5 and imbalance_flow(0.25).beta == 0.25


def test_beta_zero_is_the_plain_cst_market():
    _, plain = _fresh_market_events(30)
    _, flat = _fresh_market_events(30, book_cls=imbalance_flow(0.0))
    assert plain == flat


def _market_orders(beta: float, seconds: int = 600) -> list[tuple[float, bool]]:
    """(touch imbalance just before, is a buy) for every market order, rebuilt from the
    market's events alone: a market order is a run of consecutive prints."""
    m, events = _fresh_market_events(seconds, seed=0, book_cls=imbalance_flow(beta))
    ib, ia = m.initial_book("BTC-USDT")
    book = {"bid": {float(p): float(s) for p, s, _ in ib},
            "ask": {float(p): float(s) for p, s, _ in ia}}
    out, in_run = [], False
    for e in events:
        if type(e) is Print:
            if not in_run:
                qb, qa = book["bid"][max(book["bid"])], book["ask"][min(book["ask"])]
                out.append(((qb - qa) / (qb + qa), e.side == "buy"))
            in_run = True
            continue
        in_run = False
        if e.size == "0":
            del book[e.side][float(e.price)]
        else:
            book[e.side][float(e.price)] = float(e.size)
    return out


@pytest.mark.parametrize("beta", [0.9, 0.0])
def test_imbalance_orients_the_flow(beta):
    orders = _market_orders(beta)
    assert len(orders) > 1000  # mu = 1.88/s for 600 s
    up = [buy for i, buy in orders if i > 0]
    down = [buy for i, buy in orders if i < 0]
    share_up, share_down = sum(up) / len(up), sum(down) / len(down)
    if beta:
        # heavier bid -> more market buys (passive asks fill), and the reverse
        assert share_up > 0.6 and share_down < 0.4
        assert share_up - share_down > 0.3
    else:
        assert abs(share_up - 0.5) < 0.06 and abs(share_down - 0.5) < 0.06
    # and the number of buys is the model's: sum of P(buy) = (1 + beta I) / 2, within 4 sd
    p = [(1 + beta * i) / 2 for i, _ in orders]
    sd = math.sqrt(sum(x * (1 - x) for x in p))
    assert abs(sum(buy for _, buy in orders) - sum(p)) < 4 * sd


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [-1.1, 1.5, float("nan"), "0.5", True])
def test_bad_beta(beta, tmp_path):
    with pytest.raises(ValueError, match="beta must be a number in \\[-1, 1\\]"):
        imbalance_flow(beta)
    with pytest.raises(ValueError, match="beta"):
        write_synthetic_recording(tmp_path / "r", seconds=1, imbalance=beta)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="beta"):
        ImbalanceFlowBook(DEFAULT_INSTRUMENTS["BTC-USDT"], CSTParams(depth=10), beta=beta)


@pytest.mark.parametrize("kw, match", [
    ({"seconds": 0}, "seconds must be a finite number > 0"),
    ({"seconds": -5}, "seconds must be a finite number > 0"),
    ({"seconds": float("inf")}, "seconds"),
    ({"instruments": ["DOGE-USDT"]}, "unknown instrument 'DOGE-USDT'"),
    ({"instruments": []}, "instruments must be non-empty"),
    ({"channels": ["books", "candle1m"]}, "unknown channel 'candle1m'"),
    ({"channels": ["books", "books-l2-tbt"]}, "cannot be subscribed together"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"step_ms": 0}, "step_ms"),
    ({"seed": -1}, "seed"),
    ({"market": CSTMarket(instruments=["ETH-USDT"]), "imbalance": 0.5}, "not both"),
    ({"market": CSTMarket(instruments=["ETH-USDT"]), "instruments": ["BTC-USDT"]},
     "not in the market"),
])
def test_bad_arguments(kw, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        write_synthetic_recording(tmp_path / "r", **{"seconds": 1, **kw})
    assert not (tmp_path / "r").exists()


def test_advanced_market_and_existing_directory(tmp_path):
    m = CSTMarket(instruments=["ETH-USDT"])
    m.advance(m.start_ms + 10)
    with pytest.raises(ValueError, match="already advanced"):
        write_synthetic_recording(tmp_path / "r", market=m, seconds=1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(RecordingError, match="not an empty directory"):
        write_synthetic_recording(tmp_path / "full", seconds=1)


def test_given_market(tmp_path):
    m = CSTMarket(seed=2, instruments=["ETH-USDT"], params=CSTParams(depth=50))
    path = write_synthetic_recording(tmp_path / "r", market=m, seconds=3)
    r = verify(path)
    assert r.ok and set(r.channels["books"]["instruments"]) == {"ETH-USDT"}
    assert Recording(path).manifest["source"]["market"]["books"]["ETH-USDT"]["params"][
        "depth"] == 50


# -- command line ------------------------------------------------------------------------------
def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["synth", "--out", str(out), "--seconds", "5", "--seed", "1",
                 "--inst", "BTC-USDT,ETH-USDT", "--imbalance-flow", "0.8", "--checksum", "on",
                 "--no-progress"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    src = Recording(out).manifest["source"]
    assert (src["imbalance_beta"], src["checksum"], src["instruments"]) == \
        (0.8, True, ["BTC-USDT", "ETH-USDT"])
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()
    for bad, msg in ((["--imbalance-flow", "2"], "beta must be"),
                     (["--channels", "books,nope"], "unknown channel 'nope'"),
                     (["--inst", "XYZ"], "unknown instrument 'XYZ'")):
        assert main(["synth", "--out", str(tmp_path / "bad"), "--no-progress", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("simlab synth: error:") and msg in err
    # a duration is checked by the parser, which names the flag as typed
    with pytest.raises(SystemExit) as e:
        main(["synth", "--out", str(tmp_path / "bad"), "--no-progress", "--seconds", "0"])
    assert e.value.code == 2 and "--seconds: duration '0' must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["synth", "--out", str(out), "--seconds", "1", "--no-progress"]) == 2
