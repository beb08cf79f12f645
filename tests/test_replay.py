"""The replay engine (simlab.feed): the event stream of a recording, in recorded order, with
instrument / channel / time filters, seeking, several recordings, pacing, determinism, and
the columnar path agreeing with it message for message."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pandas as pd
import pytest

from simlab.book import L2Book
from simlab.cli import main as cli
from simlab.feed import FrameDecoder, ReplayError, ReplaySource, to_ns
from simlab.feed.source import fmt_ns
from simlab.feed.tables import book_messages, validity_from_breaks
from simlab.sim.rebuild import rebuild_messages
from simlab.store import Recording, RecordingWriter
from simlab.store.verify import verify


def ev_key(e):
    """Everything an event says (the book as its top 5 levels)."""
    if e.kind == "book":
        return ("book", e.rec, e.arrival, e.recv_ns, e.ts_ms, e.channel, e.inst, e.valid,
                e.snapshot, e.book.levels("bid", 5) if e.valid else None,
                e.book.levels("ask", 5) if e.valid else None)
    if e.kind == "trade":
        return ("trade", e.rec, e.arrival, e.recv_ns, e.ts_ms, e.inst, e.trade_id, e.side,
                e.price, e.size)
    return ("notice", e.rec, e.what, e.arrival, e.channel, e.inst)


def test_events_of_the_real_capture_match_verify(capture_recording):
    evs = list(ReplaySource(capture_recording))
    books = [e for e in evs if e.kind == "book"]
    trades = [e for e in evs if e.kind == "trade"]
    assert len(books) == 290 and all(e.valid for e in books)  # 290 checksums verify
    assert len(trades) == 74
    assert {e.inst for e in books} == {"BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"}
    arrivals = [e.arrival for e in evs]
    assert arrivals == sorted(arrivals)  # recorded order
    rep = verify(capture_recording)
    assert rep.channels["books"]["total"]["messages"] == len(books)


def test_filters_by_instrument_and_channel(capture_recording):
    evs = list(ReplaySource(capture_recording, insts=["BTC-USDT"], channels=["trades"]))
    assert {(e.kind, e.inst) for e in evs} == {("trade", "BTC-USDT")} and len(evs) == 69
    books = list(ReplaySource(capture_recording, insts="UNI-USD-SWAP", channels="books"))
    assert len(books) == 93 and {e.inst for e in books} == {"UNI-USD-SWAP"}


def test_time_range_seeks_from_the_snapshot(capture_recording):
    full = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"])]
    first = Recording(capture_recording).manifest["first_recv_ns"]
    start, end = first + 3 * 10**9, first + 7 * 10**9
    # (keys are taken during the replay: a tick's book changes with the next tick)
    part = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"], start=start,
                                            end=end, time_basis="recv")]
    assert part and all(start <= k[3] <= end for k in part)
    # the books at the start are the books a full replay has there: rebuilt from the snapshot
    assert part == [k for k in full if start <= k[3] <= end]
    assert all(k[7] for k in part if k[0] == "book")


def test_exchange_time_range_seeks_from_the_snapshot(capture_recording):
    """The default clock is the exchange's ts: the ticks and trades stamped in the range,
    on the books a full replay has there."""
    full = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"])]
    data = [k for k in full if k[0] != "notice"]
    t0 = data[0][4] * 10**6
    start, end = t0 + 3 * 10**9, t0 + 7 * 10**9
    part = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"], start=start,
                                            end=end)]
    assert part and all(start <= k[4] * 10**6 <= end for k in part)
    assert part == [k for k in data if start <= k[4] * 10**6 <= end]
    # the real capture's clocks differ, so the two bases pick different ticks
    recv = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"],
                                            start=start, end=end, time_basis="recv")]
    assert recv != part


def test_time_range_accepts_iso_strings(capture_recording):
    first = Recording(capture_recording).manifest["first_recv_ns"]
    iso = "2022-05-13T16:27:10Z"
    evs = list(ReplaySource(capture_recording, start=iso, time_basis="recv"))
    assert to_ns(iso) > first and min(e.recv_ns for e in evs) >= to_ns(iso)
    evs = [e for e in ReplaySource(capture_recording, start=iso) if e.kind != "notice"]
    assert min(e.ts_ms for e in evs) * 10**6 >= to_ns(iso)


def test_several_recordings_in_sequence(capture_recording):
    one = [ev_key(e) for e in ReplaySource(capture_recording, insts=["BTC-USDT"])]
    two = [ev_key(e) for e in ReplaySource([capture_recording, capture_recording],
                                           insts=["BTC-USDT"])]
    assert len(two) == 2 * len(one)
    assert [k[1] for k in two] == [0] * len(one) + [1] * len(one)
    # each recording starts from empty books: the second is the first again
    assert [k[2:] for k in two[len(one):]] == [k[2:] for k in one]


def test_replay_is_deterministic(capture_recording):
    a = [ev_key(e) for e in ReplaySource(capture_recording)]
    b = [ev_key(e) for e in ReplaySource(capture_recording)]
    assert a == b


def test_paced_replay_waits_for_recorded_time(capture_recording):
    first = Recording(capture_recording).manifest["first_recv_ns"]
    end = first + 2 * 10**9
    src = ReplaySource(capture_recording, insts=["BTC-USDT"], end=end, speed=8.0)
    t0 = time.monotonic()
    evs = list(src)
    span = (evs[-1].recv_ns - evs[0].recv_ns) / 1e9
    assert time.monotonic() - t0 >= span / 8.0 * 0.99  # never faster than asked

    async def collect():
        return [e async for e in ReplaySource(capture_recording, insts=["BTC-USDT"], end=end)]

    assert [ev_key(e) for e in asyncio.run(collect())] == [ev_key(e) for e in evs]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"insts": ["ETH-USDT"]}, "unknown instrument 'ETH-USDT'"),
    ({"channels": ["books5"]}, "unknown channel 'books5'"),
    ({"start": "2023-01-01"}, "outside the recording"),
    ({"end": "2020-01-01"}, "outside the recording"),
    ({"start": "2022-05-13T16:27:10Z", "end": "2022-05-13T16:27:06Z"}, "is before start"),
    ({"speed": 0}, "speed must be > 0"),
    ({"start": "noon"}, "start: expected ns since the epoch"),
    ({"start": "2023-01-01"}, r"\(exchange time\) is outside the recording"),
    ({"start": "2023-01-01", "time_basis": "recv"}, r"\(receive time\) is outside"),
    ({"time_basis": "local"}, "time_basis must be 'exchange'"),
])
def test_bad_replay_requests_are_named(capture_recording, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReplaySource(capture_recording, **kwargs)


def test_no_recordings():
    with pytest.raises(ReplayError, match="at least one recording"):
        ReplaySource([])


# -- the columnar path ---------------------------------------------------------------------------
def _columnar_vs_events(path, channel, inst):
    """Top of book after every message: columnar kernel vs the event engine's book."""
    m = book_messages(Recording(path), channel, inst)
    b = rebuild_messages(m)
    evs = [(e.arrival, e.valid, [e.book.best_bid, e.book.best_bid_size, e.book.best_ask,
                                  e.book.best_ask_size])
           for e in ReplaySource(path, insts=[inst], channels=[channel]) if e.kind == "book"]
    assert [a for a, _, _ in evs] == m.arrival.tolist()
    assert [v for _, v, _ in evs] == m.valid.tolist()
    for i, (a, valid, want) in enumerate(evs):
        if valid:
            got = [b.bid_px[i], b.bid_sz[i], b.ask_px[i], b.ask_sz[i]]
            assert np.array_equal(got, want, equal_nan=True), (a, got, want)
    return m


def test_columnar_books_equal_the_event_engine_on_the_real_capture(capture_recording):
    for inst in ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"):
        m = _columnar_vs_events(capture_recording, "books", inst)
        assert m.validity == "manifest" and m.valid.all()


def _hand_recording(path, wire, *, check_books=True):
    """books for BTC-USDT: snapshot, updates, a gap, updates after it, a new snapshot, a bad
    checksum, a heartbeat, a reset."""
    f = wire.BookFeed("BTC-USDT")
    lv = wire.lv
    frames = [
        f.snapshot([lv("99", "1"), lv("98", "2")], [lv("101", "1"), lv("102", "2")]),
        f.update([lv("99", "3")], []),
        f.update([], [lv("101", "0")]),
        f.update([lv("100", "1")], [], gap=True),        # gap: book unknown from here
        f.update([lv("97", "1")], []),
        f.snapshot([lv("99", "4")], [lv("100.5", "1")]),  # repaired
        f.update([lv("99.5", "2")], []),
        f.update([], [lv("100.5", "3")], bad_checksum=True),
        f.update([lv("98", "1")], []),
        f.snapshot([lv("99", "1")], [lv("101", "1")]),
        f.heartbeat(),
        f.reset(5),
        f.update([lv("99", "2")], []),
    ]
    with RecordingWriter(path, {"importer": "test"}, check_books=check_books) as w:
        for i, fr in enumerate(frames):
            w.add(fr, 1_700_000_000_000_000_000 + i * 10**8)
    return frames


@pytest.mark.parametrize("check_books", [True, False], ids=["manifest", "raw"])
def test_columnar_validity_follows_gaps_and_checksums(tmp_path, wire, check_books):
    _hand_recording(tmp_path / "r", wire, check_books=check_books)
    m = _columnar_vs_events(tmp_path / "r", "books", "BTC-USDT")
    assert m.validity == ("manifest" if check_books else "raw")
    assert m.valid.tolist() == [True, True, True, False, False, True, True, False, False,
                                True, True, True, True]


def test_validity_from_breaks_by_hand():
    arr = np.arange(8)
    snap = np.array([0, 0, 1, 0, 0, 1, 0, 0], bool)
    # a break on a snapshot itself leaves the book unknown until the next one
    assert validity_from_breaks(arr, snap, np.array([5])).tolist() == [
        False, False, True, True, True, False, False, False]
    # a break on a frame that is not in the table (a malformed one) still counts
    assert validity_from_breaks(np.array([0, 2, 4]), np.array([1, 0, 0], bool),
                                np.array([1, 3])).tolist() == [True, False, False]


def test_decoder_counts_malformed_frames_and_never_raises():
    d = FrameDecoder()
    from simlab.okx.frames import RawFrame

    out = d.decode(RawFrame(0, 1, 0, "books", "X", b'{"arg":{"channel":"books"'))
    assert [(e.kind, e.what) for e in out] == [("notice", "malformed")]
    assert d.counts["malformed"] == 1
    assert isinstance(d.book("books", "X"), (type(None), L2Book))


# -- the live source -----------------------------------------------------------------------------
def test_live_source_streams_the_same_kinds_of_events(emulator_factory, capture_recording):
    from simlab.emulator.testing import RandomMarket
    from simlab.feed import LiveSource, Source

    emu = emulator_factory(RandomMarket(seed=5, rate=200, instruments=["BTC-USDT"]))
    src = LiveSource([("books", "BTC-USDT"), ("trades", "BTC-USDT")], duration=1.5,
                     ws_url=emu.ws_url, rest_url=emu.rest_url)
    assert isinstance(src, Source) and isinstance(ReplaySource(capture_recording), Source)

    async def collect():
        out = []
        async for e in src:
            out.append((e.kind, getattr(e, "valid", None),
                        e.book.mid if e.kind == "book" and e.valid else None,
                        getattr(e, "what", None)))
        return out

    evs = asyncio.run(collect())
    books = [e for e in evs if e[0] == "book"]
    assert len(books) > 5 and all(v for _, v, _, _ in books)
    assert all(m > 0 for _, _, m, _ in books)
    assert any(e[0] == "trade" for e in evs)
    assert {"connect", "subscribed"} <= {e[3] for e in evs if e[0] == "notice"}
    assert src.instruments["BTC-USDT"]["instType"] == "SPOT"  # fetched from REST
    with pytest.raises(ValueError, match="at least one"):
        LiveSource([])


# -- the clock of a time range ---------------------------------------------------------------------
LATE_S = 10  # a recording received 10 s after the exchange stamped each message


@pytest.fixture(scope="module")
def late_recording(tmp_path_factory):
    from simlab.emulator.offline import write_synthetic_recording

    path = tmp_path_factory.mktemp("late") / "rec"
    write_synthetic_recording(path, seconds=4, seed=2, latency_ms=LATE_S * 1000)
    return path


def _book_ts(path, **kw):
    return [e.ts_ms for e in ReplaySource(path, channels=["books"], **kw) if e.kind == "book"]


def test_a_range_is_on_the_exchange_clock_by_default(late_recording):
    full = [e for e in ReplaySource(late_recording, channels=["books"]) if e.kind == "book"]
    assert {e.recv_ns - e.ts_ms * 10**6 for e in full} == {LATE_S * 10**9}
    ts = [e.ts_ms for e in full]
    start, end = ts[10] * 10**6, ts[20] * 10**6
    # both boundary ticks are in; a nanosecond inside, both are out
    assert _book_ts(late_recording, start=start, end=end) == ts[10:21]
    assert _book_ts(late_recording, start=start + 1, end=end - 1) == ts[11:20]
    # on the receive clock the same ticks lie LATE_S later ...
    lat = LATE_S * 10**9
    assert _book_ts(late_recording, start=start + lat, end=end + lat,
                    time_basis="recv") == ts[10:21]
    assert _book_ts(late_recording, start=start + lat + 1, end=end + lat - 1,
                    time_basis="recv") == ts[11:20]
    # ... and the exchange times read as receive times are before the recording began
    with pytest.raises(ReplayError, match=r"\(receive time\) is outside the recording"):
        ReplaySource(late_recording, start=start, end=end, time_basis="recv")


def test_columnar_run_filters_on_the_same_clock(late_recording):
    from simlab.sim import CostPipeline, OrderSpec

    ts = _book_ts(late_recording)
    start, end = ts[10] * 10**6, ts[20] * 10**6
    order = OrderSpec("BTC-USDT", "buy", 1000.0)
    col = CostPipeline(order).run_recording(late_recording, start=start, end=end).table
    assert col["ts_ms"].tolist() == ts[10:21]
    ev = CostPipeline(order).run(ReplaySource(late_recording, channels=["books"], start=start,
                                              end=end)).table
    np.testing.assert_array_equal(col.to_numpy(), ev.to_numpy())
    lat = LATE_S * 10**9
    recv = CostPipeline(order).run_recording(late_recording, start=start + lat + 1,
                                             end=end + lat, time_basis="recv").table
    assert recv["ts_ms"].tolist() == ts[11:21]
    with pytest.raises(ReplayError, match="time_basis must be"):
        CostPipeline(order).run_recording(late_recording, start=start, time_basis="ts")


def _find(d, key):
    """The value of ``key`` anywhere in a nested JSON document."""
    if isinstance(d, dict):
        if key in d:
            return d[key]
        d = list(d.values())
    if isinstance(d, list):
        for v in d:
            if (found := _find(v, key)) is not None:
                return found
    return None


def test_train_samples_on_the_exchange_clock_by_default(late_recording, tmp_path, capsys):
    ts = _book_ts(late_recording)
    start, end = ts[5] * 10**6, ts[35] * 10**6
    out, data = tmp_path / "m.json", tmp_path / "d.parquet"
    args = ["train", "slippage", str(late_recording), "--inst", "BTC-USDT", "--every",
            "100ms", "--notionals", "1000,5000,20000", "--allow-weak", "--out", str(out),
            "--start", fmt_ns(start), "--end", fmt_ns(end)]
    assert cli([*args, "--dataset", str(data)]) == 0
    capsys.readouterr()
    d = pd.read_parquet(data)
    assert d["ts_ms"].min() == ts[5] and d["ts_ms"].max() == ts[35]
    assert _find(json.loads(out.read_text()), "time_range") == {
        "time_basis": "exchange", "start": fmt_ns(start) + " (exchange time)",
        "end": fmt_ns(end) + " (exchange time)"}
    # the same times on the receive clock are before the recording: a clear error
    assert cli([*args, "--time-basis", "recv"]) == 2
    err = capsys.readouterr().err
    assert "no moment sampled in" in err and "(receive time)" in err
