"""The emulator's clocks: frames carry wall time (less a simulated latency) by default, a
simulated clock on request, and a served recording starts at the first subscribe.

Time-dependent checks use an injected :class:`ManualClock`; two run on the real clock on
loopback (a short recording through the real Recorder, and a 1.5 s late subscriber).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import orjson
import pytest

from simlab.emulator import Emulator
from simlab.emulator.clock import ManualClock, SystemClock, parse_start
from simlab.emulator.offline import write_synthetic_recording
from simlab.emulator.testing import RandomMarket, client, recv, run, subscribe
from simlab.okx import parse_frame
from simlab.record import Recorder
from simlab.store import Recording

FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
        "ping_interval": 2.0, "pong_timeout": 2.0, "close_timeout": 0.5, "open_timeout": 2.0}
WALL0 = 1_780_000_000_000  # ms: an arbitrary wall time for the manual clock


def data_frames(got: list[str]) -> list[str]:
    return [m for m in got if m.startswith('{"arg"')]


def ts_of(frame: str | bytes) -> int:
    """The exchange time (ms) of a book or trades push."""
    return int(orjson.loads(frame)["data"][0]["ts"])


def test_recorded_feed_latency_is_the_simulated_latency(emulator_factory, tmp_path):
    """Recorded through the real Recorder: recv - ts is the 20 ms latency asked for plus the
    time the frame took, not the months between 2026-01-01 and now."""
    market = RandomMarket(seed=4, rate=300, instruments=["BTC-USDT", "ETH-USDT"])
    emu = emulator_factory(market, latency_ms=20)
    assert emu.emulator.clock_mode == "wall"
    out = tmp_path / "rec"
    subs = [(ch, i) for i in ("BTC-USDT", "ETH-USDT") for ch in ("books", "trades")]
    asyncio.run(Recorder(out, subs, duration=2.0, rotate=0.5, ws_url=emu.ws_url,
                         rest_url=emu.rest_url, **FAST).run())
    lat = [f.recv_ns / 1e6 - ts_of(f.payload) for f in Recording(out).iter_raw()
           if f.channel in ("books", "trades") and f.conn >= 0]
    assert len(lat) > 20
    med = statistics.median(lat)
    assert 20 <= med < 1000, med
    # ts is whole ms, cut down: a frame is never received before its ts plus the latency
    assert min(lat) >= 19, min(lat)


def test_wall_clock_stamps_now_less_the_latency_on_an_injected_clock(emulator_factory):
    clock = ManualClock(wall_ns=WALL0 * 1_000_000)
    emu = emulator_factory(RandomMarket(seed=2, instruments=["BTC-USDT"]), latency_ms=5,
                           clock=clock)

    async def main() -> list[str]:
        async with client(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "BTC-USDT"))
            clock.advance(1.0)  # one second passes, on the injected clock only
            while not data_frames(got) or ts_of(data_frames(got)[-1]) < WALL0 + 900:
                got.append(await recv(ws))
            return data_frames(got)

    frames = run(main())
    assert parse_frame(frames[0]).action == "snapshot"
    assert ts_of(frames[0]) == WALL0 - 5  # subscribed at WALL0: the book as of 5 ms ago
    assert all(WALL0 - 5 <= ts_of(f) <= WALL0 + 1000 - 5 for f in frames)


def test_a_sim_clock_starts_where_told_and_is_the_default_off_speed_1():
    start = parse_start("2030-06-01T12:00Z")
    m = RandomMarket(seed=1, instruments=["BTC-USDT"])
    emu = Emulator(m, clock_mode="sim", start_ms=start, paused=True)
    assert b'"ts":"%d"' % start in emu.feed.snapshot("books", "BTC-USDT").frame
    assert Emulator(RandomMarket(seed=1), speed=10).clock_mode == "sim"
    assert Emulator(RandomMarket(seed=1), speed=None).clock_mode == "sim"
    assert Emulator(RandomMarket(seed=1)).clock_mode == "wall"


@pytest.mark.parametrize("kw, msg", [
    ({"clock_mode": "wall", "speed": 10}, "speed 1"),
    ({"clock_mode": "sim", "latency_ms": 5}, "needs clock_mode='wall'"),
    ({"start_ms": 0}, "simulated clock"),
    ({"clock_mode": "moon"}, "clock_mode must be one of"),
    ({"latency_ms": -1}, "latency_ms must be >= 0"),
])
def test_clock_options_are_checked(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Emulator(RandomMarket(seed=1), **kw)


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("short") / "rec"
    write_synthetic_recording(out, market=RandomMarket(seed=5, rate=50,
                                                       instruments=["BTC-USDT"]),
                              seconds=3.0, channels=("books", "trades"))
    return out


def recorded_books(rec) -> list[str]:
    return [bytes(f.payload).decode() for f in Recording(rec).iter_raw()
            if f.channel == "books" and f.inst == "BTC-USDT"]


def test_a_served_recording_starts_at_the_first_subscribe_on_an_injected_clock(
        emulator_factory, short_recording):
    want = recorded_books(short_recording)
    assert len(want) > 20 and '"action":"snapshot"' in want[0]
    clock = ManualClock()
    emu = emulator_factory(recording=short_recording, speed=1, clock=clock)
    clock.advance(5.0)  # five seconds with nobody listening: the recording waits

    async def main() -> list[str]:
        async with client(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "BTC-USDT"))
            clock.advance(10.0)
            while len(data_frames(got)) < len(want):
                got.append(await recv(ws))
            return data_frames(got)

    assert run(main()) == want  # every update, from the recorded snapshot on


def test_a_late_subscriber_at_speed_1_gets_every_update_from_the_first(emulator_factory,
                                                                       short_recording):
    want = recorded_books(short_recording)
    emu = emulator_factory(recording=short_recording, speed=1)
    assert isinstance(emu.emulator.clock, SystemClock)
    time.sleep(1.5)  # on the real clock: more than a third of the recording

    async def main() -> list[str]:
        async with client(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "BTC-USDT"))
            while len(data_frames(got)) < 5:
                got.append(await recv(ws, timeout=3))
            return data_frames(got)

    got = run(main())
    assert got == want[:len(got)]
    assert orjson.loads(got[0])["action"] == "snapshot"
