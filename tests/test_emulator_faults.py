"""Fault injection: each fault gives a careful client (BookSync over L2Book) exactly the
symptom it should, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import aiohttp
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from simlab.emulator import Fault, FaultSpec, parse_fault
from simlab.emulator.faults import ConnectionFaults
from simlab.emulator.publisher import Push
from simlab.emulator.testing import (
    FeedCheck,
    RandomMarket,
    client,
    recv,
    recv_until,
    run,
    subscribe,
)

BOOKS = [("books", "BTC-USDT"), ("books", "ETH-USDT"), ("books5", "BTC-USDT"),
         ("trades", "BTC-USDT")]


def market() -> RandomMarket:
    return RandomMarket(seed=12, rate=300, instruments=["BTC-USDT", "ETH-USDT"])


async def drain(ws) -> list[str]:
    await ws.send("ping")
    return (await recv_until(ws, lambda m: m == "pong"))[:-1]


async def faulted_feed(emu, fault: Fault, **options) -> FeedCheck:
    """1 s of clean feed, the fault, 2 s more: what the client made of it."""
    async with client(emu.ws_url) as ws:
        got = await subscribe(ws, *BOOKS)
        emu.emulator.advance(1000)
        got += await drain(ws)
        emu.emulator.inject(fault, **options)
        emu.emulator.advance(2000)
        got += await drain(ws)
    return FeedCheck().feed_all(got)


@pytest.mark.parametrize(("fault", "options", "symptom"), [
    (Fault.GAP, {"inst": "BTC-USDT"}, {"gaps": 1}),
    (Fault.GAP, {"inst": "ETH-USDT", "after": 4}, {"gaps": 1}),
    (Fault.CHECKSUM, {"inst": "BTC-USDT"}, {"checksum_failed": 1}),
    (Fault.DUPLICATE, {"inst": "ETH-USDT"}, {"duplicates": 1}),
    (Fault.REORDER, {"inst": "BTC-USDT"}, {"gaps": 1}),
    (Fault.RESET, {"inst": "BTC-USDT"}, {"resets": 1}),
    (Fault.MALFORMED, {"channel": "books"}, {"parse_errors": 1}),
])
def test_each_fault_gives_exactly_its_symptom(emulator_factory, fault, options, symptom):
    emu = emulator_factory(market(), paused=True)
    fc = run(faulted_feed(emu, fault, **options))
    counts = {k: fc.total(k) for k in ("gaps", "checksum_failed", "duplicates", "resets",
                                       "rejected")}
    counts["parse_errors"] = fc.parse_errors
    want = dict.fromkeys(counts, 0) | symptom
    assert counts == want
    hit = options.get("inst")
    for (ch, inst), s in fc.syncs.items():
        clean = ch != "books" or (hit is not None and inst != hit)
        if clean or fault in (Fault.DUPLICATE, Fault.RESET, Fault.MALFORMED):
            assert s.valid and s.stats.no_snapshot == 0, (ch, inst)  # unaffected
        else:
            assert not s.valid  # the book is unknown until the client resyncs
    assert fc.total("checksum_verified") > 40


def test_gap_targets_one_connection_reset_reaches_all(emulator_factory):
    emu = emulator_factory(market(), paused=True)

    async def main():
        async with client(emu.ws_url) as a, client(emu.ws_url) as b:
            got = [await subscribe(a, ("books", "BTC-USDT")),
                   await subscribe(b, ("books", "BTC-USDT"))]
            a_id = orjson.loads(got[0][0])["connId"]
            number = next(c.number for c in emu.emulator.connections if c.conn_id == a_id)
            emu.emulator.inject(Fault.GAP, conn=number)
            emu.emulator.inject(Fault.RESET)
            emu.emulator.advance(1500)
            return [FeedCheck().feed_all(g + await drain(ws)) for g, ws in zip(got, (a, b),
                                                                                 strict=True)]

    fa, fb = run(main())
    assert (fa.total("gaps"), fb.total("gaps")) == (1, 0)
    assert fb.total("resets") == 1 and fb.total("checksum_failed") == 0


def test_schedule_at_start_arms_every_connection(emulator_factory):
    emu = emulator_factory(market(), paused=True,
                           faults=[parse_fault("gap:inst=BTC-USDT,after=3"),
                                   FaultSpec(Fault.RESET, inst="ETH-USDT", at=0.05)])

    async def main():
        out = []
        for _ in range(2):
            async with client(emu.ws_url) as ws:
                got = await subscribe(ws, ("books", "BTC-USDT"), ("books", "ETH-USDT"))
                await asyncio.sleep(0.1)  # the scheduled reset fires (once, for everyone)
                emu.emulator.advance(1000)
                out.append(FeedCheck().feed_all(got + await drain(ws)))
        return out

    first, second = run(main())
    assert first.syncs[("books", "BTC-USDT")].stats.gaps == 1
    assert second.syncs[("books", "BTC-USDT")].stats.gaps == 1
    assert first.syncs[("books", "ETH-USDT")].stats.resets == 1
    assert first.total("checksum_failed") == second.total("checksum_failed") == 0


def test_drop_after_n_pushes(emulator_factory):
    emu = emulator_factory(market(), paused=True)

    async def main():
        async with client(emu.ws_url) as ws:
            await subscribe(ws, *BOOKS)
            emu.emulator.inject(Fault.DROP, after=7)
            emu.emulator.advance(2000)
            got = []
            with pytest.raises(ConnectionClosed) as e:
                while True:
                    got.append(await recv(ws))
            return got, e.value

    got, closed = run(main())
    assert len(got) == 7
    assert closed.rcvd is None and closed.sent is None  # no close frame: a cut connection


def test_notice_64008_then_close(emulator_factory):
    emu = emulator_factory(market(), paused=True)

    async def main():
        async with client(emu.ws_url) as ws:
            await subscribe(ws, ("books", "BTC-USDT"))
            t0 = time.monotonic()
            emu.emulator.inject(Fault.NOTICE, delay=0.4)
            notice = orjson.loads((await recv_until(ws, lambda m: '"notice"' in m))[-1])
            emu.emulator.advance(500)
            got = []
            with pytest.raises(ConnectionClosed) as e:
                while True:
                    got.append(await recv(ws, 3))
            return notice, got, e.value, time.monotonic() - t0

    notice, got, closed, waited = run(main())
    assert notice == {"event": "notice", "code": "64008", "msg": "The connection will soon be "
                      "closed for a service upgrade. Please reconnect.",
                      "connId": notice["connId"]}
    assert len(got) >= 4  # the feed goes on until the close
    assert closed.rcvd.code == 1001 and 0.35 < waited < 3


def _arrivals(emu, fault: Fault, duration: float) -> tuple[list[tuple[float, str]], FeedCheck]:
    async def main():
        async with client(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "BTC-USDT"), ("trades", "BTC-USDT"))
            loop = asyncio.get_running_loop()
            timed: list[tuple[float, str]] = []
            end = loop.time() + 0.3 + duration + 0.6
            injected = False
            while loop.time() < end:
                if not injected and loop.time() > end - duration - 0.6:
                    emu.emulator.inject(fault, duration=duration)
                    injected = True
                with contextlib.suppress(TimeoutError):
                    timed.append((loop.time(), await recv(ws, 0.05)))
            return timed, FeedCheck().feed_all(got + [m for _, m in timed])

    return run(main())


def _around_silence(timed: list[tuple[float, str]]) -> tuple[float, list, list]:
    """The longest gap between arrivals, and the book pushes before and after it as
    ``(arrival, exchange ts, levels)``."""
    gap, i = max((b[0] - a[0], k + 1) for k, (a, b) in enumerate(itertools.pairwise(timed)))
    books = []
    for t, m in timed:
        if m.startswith('{"arg":{"channel":"books"'):
            d = orjson.loads(m)["data"][0]
            books.append((t, int(d["ts"]), len(d["bids"]) + len(d["asks"])))
    t_resume = timed[i][0]
    return (gap, [b for b in books if b[0] < t_resume], [b for b in books if b[0] >= t_resume])


def test_stall_silence_then_one_catch_up_update_no_gap(emulator_factory):
    emu = emulator_factory(market(), speed=10)
    timed, fc = _arrivals(emu, Fault.STALL, 0.6)
    silence, before, after = _around_silence(timed)
    assert silence > 0.5
    # ONE book update carries the ~6 simulated seconds of the stall ...
    assert after[0][1] - before[-1][1] >= 5000 and after[0][2] > 20
    assert after[1][1] - after[0][1] <= 500  # ... then the 100 ms cadence again
    # ... and it chains: no gap, every checksum good
    s = fc.syncs[("books", "BTC-USDT")].stats
    assert s.gaps == 0 and s.checksum_failed == 0 and s.checksum_verified == s.messages > 10


def test_burst_holds_then_releases_everything_at_once(emulator_factory):
    emu = emulator_factory(market(), speed=10)
    timed, fc = _arrivals(emu, Fault.BURST, 0.6)
    silence, before, after = _around_silence(timed)
    assert silence > 0.5
    # every 100 ms push of the hold is there (no time jump) and they came together
    assert after[0][1] - before[-1][1] <= 500
    assert len(after) > 40 and after[40][0] - after[0][0] < 0.2
    s = fc.syncs[("books", "BTC-USDT")].stats
    assert s.gaps == 0 and s.checksum_failed == 0 and s.checksum_verified == s.messages


def test_rest_slow_and_rest_error(emulator_factory):
    emu = emulator_factory(market(), paused=True)
    url = "/api/v5/market/books?instId=BTC-USDT"

    async def get(http):
        t = time.monotonic()
        async with http.get(emu.rest_url + url) as r:
            return r.status, orjson.loads(await r.read()), time.monotonic() - t

    async def main():
        async with aiohttp.ClientSession() as http:
            emu.emulator.inject(Fault.REST_SLOW, delay=0.4)
            slow, fast = await get(http), await get(http)
            emu.emulator.inject(Fault.REST_ERROR, count=2)
            e1, e2, ok = await get(http), await get(http), await get(http)
            emu.emulator.inject(Fault.REST_ERROR, status=429, code="50011",
                                msg="Too Many Requests")
            limited = await get(http)
            return slow, fast, e1, e2, ok, limited

    slow, fast, e1, e2, ok, limited = run(main())
    assert slow[2] >= 0.4 and fast[2] < 0.3 and slow[1]["code"] == fast[1]["code"] == "0"
    assert e1[:2] == e2[:2] == (500, {"code": "50026", "msg": "System error.", "data": []})
    assert ok[0] == 200 and ok[1]["code"] == "0"
    assert limited[:2] == (429, {"code": "50011", "msg": "Too Many Requests", "data": []})


def test_parse_fault_and_its_errors():
    s = parse_fault("notice:delay=5,conn=2")
    assert (s.kind, s.delay, s.conn) == (Fault.NOTICE, 5.0, 2)
    assert parse_fault("REST-ERROR:status=503").status == 503
    with pytest.raises(ValueError, match="unknown fault 'gapp'"):
        parse_fault("gapp:inst=X")
    with pytest.raises(ValueError, match="bad fault option 'foo=1'"):
        parse_fault("gap:foo=1")
    with pytest.raises(ValueError, match="after must be a number"):
        parse_fault("gap:after=x")
    with pytest.raises(ValueError, match="must be >= 0"):
        parse_fault("drop:after=-1")


def test_reorder_swaps_two_consecutive_updates_of_one_stream():
    cf = ConnectionFaults()
    cf.arm(FaultSpec(Fault.REORDER, inst="A"))
    u = [Push(i, "books", inst, "update", f"{inst}{i}".encode(), i, i - 1, 0)
         for i, inst in ((1, "A"), (2, "B"), (3, "A"), (4, "A"))]
    sent = [f for p in u for f in cf.process(p)[0]]
    assert sent == [b"B2", b"A3", b"A1", b"A4"]
    assert cf.applied == [FaultSpec(Fault.REORDER, inst="A")] and not cf
