"""The emulator's WebSocket and REST protocol, driven by a plain `websockets` client and
checked message by message against docs/okx-v5-public-feed.md."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from simlab.book import L2Book
from simlab.emulator import Fault, LevelChange
from simlab.emulator.testing import (
    FeedCheck,
    RandomMarket,
    ScriptedMarket,
    client,
    recv,
    recv_until,
    request,
    run,
    subscribe,
)
from simlab.okx import is_book, okx_checksum, parse_frame

CONN_ID = re.compile(r"[0-9a-f]{8}")


def ladder(top: int, n: int, step: int) -> list[list[str]]:
    return [[str(top + i * step), str(i + 1), "1"] for i in range(n)]


def static_market() -> ScriptedMarket:
    book = (ladder(1000, 30, -1), ladder(1001, 30, 1))
    return ScriptedMarket({"BTC-USDT": book, "ETH-USDT": book})


async def drain(ws) -> list[str]:
    """Everything queued for us so far: ping, and read up to the pong (same queue, in order)."""
    await ws.send("ping")
    return (await recv_until(ws, lambda m: m == "pong"))[:-1]


def test_subscribe_acks_carry_id_and_conn_id_then_the_snapshot(emulator_factory):
    emu = emulator_factory(static_market(), paused=True)

    async def main():
        async with connect(emu.ws_url) as a, connect(emu.ws_url) as b:
            await a.send(request("subscribe", ("books", "BTC-USDT"), ("trades", "BTC-USDT"),
                                 id="42"))
            ack = orjson.loads(await recv(a))
            assert list(ack) == ["id", "event", "arg", "connId"]
            assert ack["id"] == "42" and ack["event"] == "subscribe"
            assert ack["arg"] == {"channel": "books", "instId": "BTC-USDT"}
            assert CONN_ID.fullmatch(ack["connId"])
            snap = parse_frame(await recv(a))
            assert is_book(snap) and snap.action == "snapshot" and snap.prev_seq_id == -1
            assert len(snap.bids) == len(snap.asks) == 30
            assert snap.checksum == okx_checksum(list(snap.bids), list(snap.asks)) != 0
            ack2 = orjson.loads(await recv(a))
            assert ack2["arg"]["channel"] == "trades" and ack2["connId"] == ack["connId"]
            # no id in the request, none in the ack; every connection has its own connId
            await b.send(request("subscribe", ("books", "BTC-USDT"), id=None))
            ackb = orjson.loads(await recv(b))
            assert list(ackb) == ["event", "arg", "connId"] and ackb["connId"] != ack["connId"]
            snap_b = parse_frame(await recv(b))
            assert snap_b.seq_id == snap.seq_id
            # a change reaches both connections as the same bytes (same seqIds everywhere)
            t = emu.emulator.now_ms
            emu.emulator.feed.source.add(LevelChange(t + 5, "BTC-USDT", "ask", "1001", "7", 2))
            emu.emulator.advance(100)
            fa, fb = await drain(a), await drain(b)
            assert fa == fb and len(fa) == 1
            upd = parse_frame(fa[0])
            assert (upd.action, upd.prev_seq_id, upd.asks[0][:]) == (
                "update", snap.seq_id, ["1001", "7", "0", "2"])
            # a repeated subscribe is acked again, with no second snapshot
            await b.send(request("subscribe", ("books", "BTC-USDT"), id="9"))
            again = await drain(b)
            assert [orjson.loads(m)["event"] for m in again] == ["subscribe"]

    run(main())


def test_unsubscribe_acks_and_stops_the_pushes(emulator_factory):
    emu = emulator_factory(RandomMarket(seed=1), paused=True)

    async def main():
        async with connect(emu.ws_url) as ws:
            await subscribe(ws, ("books5", "ETH-USDT"))
            emu.emulator.advance(1000)
            got = await drain(ws)
            assert len(got) > 5
            got = await subscribe(ws, ("books5", "ETH-USDT"), id="u1", op="unsubscribe")
            emu.emulator.advance(1000)
            assert await drain(ws) == []
            assert len(got) == 1
            assert orjson.loads(got[0]) == {"id": "u1", "event": "unsubscribe",
                                            "arg": {"channel": "books5", "instId": "ETH-USDT"},
                                            "connId": orjson.loads(got[0])["connId"]}

    run(main())


WRONG = ("doesn't exist. Please use the correct URL, channel and parameters referring to API "
         "document.")


@pytest.mark.parametrize(("sent", "code", "msg", "rid"), [
    ("{bad", "60012", "Illegal request: {bad", None),
    ('{"op":"subscribe"}', "60012", 'Invalid request: {"op":"subscribe"}', None),
    ('["subscribe"]', "60012", 'Invalid request: ["subscribe"]', None),
    (request("fly", ("books", "BTC-USDT"), id="7"), "60019", "Invalid op: fly", "7"),
    (request("subscribe", ("candle1m", "BTC-USDT"), id="8"), "60018",
     f"Subscribe failed, wrong URL or channel:candle1m,instId:BTC-USDT {WRONG}", "8"),
    (request("subscribe", ("books", "NOPE-USDT")), "60018",
     f"Subscribe failed, wrong URL or channel:books,instId:NOPE-USDT {WRONG}", "1"),
    (request("unsubscribe", ("books", "NOPE-USDT")), "60018",
     f"Unsubscribe failed, wrong URL or channel:books,instId:NOPE-USDT {WRONG}", "1"),
])
def test_error_events_and_the_connection_stays_open(emulator_factory, sent, code, msg, rid):
    emu = emulator_factory(static_market(), paused=True)

    async def main():
        async with connect(emu.ws_url) as ws:
            await ws.send(sent)
            err = orjson.loads(await recv(ws))
            want = {"event": "error", "msg": msg, "code": code, "connId": err.get("connId")}
            if rid is not None:
                want = {"id": rid, **want}
            assert err == want and list(err) == list(want)
            assert CONN_ID.fullmatch(err["connId"])
            # still usable: ping -> pong, and a good subscribe is acked
            await ws.send("ping")
            assert await recv(ws) == "pong"
            await ws.send(request("subscribe", ("books5", "BTC-USDT")))
            assert orjson.loads(await recv(ws))["event"] == "subscribe"

    run(main())


def test_books_l2_tbt_excludes_books_and_books50_for_the_same_instrument(emulator_factory):
    emu = emulator_factory(static_market(), paused=True)

    async def main():
        async with connect(emu.ws_url) as ws:
            await ws.send(request("subscribe", ("books", "BTC-USDT"), ("books50-l2-tbt",
                                                                          "BTC-USDT")))
            await ws.send(request("subscribe", ("books-l2-tbt", "BTC-USDT"),
                                  ("books-l2-tbt", "ETH-USDT"), id="2"))
            got = [orjson.loads(m) for m in await drain(ws)]
            events = [(m.get("event"), m.get("code"), m.get("arg", {}).get("channel"))
                      for m in got if "event" in m]
            assert events == [("subscribe", None, "books"), ("subscribe", None, "books50-l2-tbt"),
                              ("error", "60012", None), ("subscribe", None, "books-l2-tbt")]
            err = next(m for m in got if m.get("event") == "error")
            assert err["id"] == "2" and "books-l2-tbt" in err["msg"] and "BTC-USDT" in err["msg"]
            acked = next(m for m in got if m.get("arg", {}).get("channel") == "books-l2-tbt")
            assert acked["arg"]["instId"] == "ETH-USDT"

    run(main())


def test_a_request_over_64_kb_closes_the_connection(emulator_factory):
    emu = emulator_factory(static_market(), paused=True)

    async def main():
        async with connect(emu.ws_url, max_size=None) as ws:
            args = [("books", f"X{i:06d}-USDT") for i in range(2000)]
            big = request("subscribe", *args)
            assert len(big) > 65536
            await ws.send(big)
            with pytest.raises(ConnectionClosed) as e:
                await recv(ws)
            assert e.value.rcvd.code == 1009
            assert e.value.rcvd.reason == "Max frame length of 65536 has been exceeded."

    run(main())


def test_idle_connections_are_closed_and_ping_keeps_them_open(emulator_factory):
    emu = emulator_factory(static_market(), paused=True, idle_timeout=0.4)

    async def main():
        async with connect(emu.ws_url) as idle, connect(emu.ws_url) as pinger:
            loop = asyncio.get_running_loop()
            t0 = loop.time()

            async def keep_pinging():
                for _ in range(8):
                    await pinger.send("ping")
                    assert await recv(pinger) == "pong"
                    await asyncio.sleep(0.15)

            task = asyncio.create_task(keep_pinging())
            with pytest.raises(ConnectionClosed) as e:
                await recv(idle, 5)
            assert e.value.rcvd.code == 4004
            assert e.value.rcvd.reason == "No data received in 0.4s."
            assert 0.35 < loop.time() - t0 < 2.0
            await task  # 1.2 s of pings: never closed

    run(main())


def test_heartbeat_after_the_quiet_interval(emulator_factory):
    emu = emulator_factory(static_market(), speed=20, heartbeat_s=2.0, idle_timeout=5)

    async def main():
        async with connect(emu.ws_url) as ws:
            await ws.send(request("subscribe", ("books", "BTC-USDT"), ("books5", "BTC-USDT")))
            got: list[str] = []

            def done(m: str) -> bool:
                got.append(m)
                return (sum(x.startswith('{"arg":{"channel":"books5"') for x in got) == 2
                        and any('"update"' in x for x in got))

            await recv_until(ws, done, 3)
            snap = next(parse_frame(m) for m in got if '"snapshot"' in m)
            hb = next(parse_frame(m) for m in got if '"update"' in m)
            assert len(hb.bids) == len(hb.asks) == 0
            assert hb.seq_id == hb.prev_seq_id == snap.seq_id
            assert hb.checksum == snap.checksum
            assert hb.ts - snap.ts >= 2000
            # books5 repeats its snapshot (same levels, same seqId) instead
            b5 = [orjson.loads(m)["data"][0] for m in got
                  if m.startswith('{"arg":{"channel":"books5"')]
            assert len(b5) == 2 and b5[0]["seqId"] == b5[1]["seqId"]
            assert b5[0]["bids"] == b5[1]["bids"] and b5[0]["ts"] != b5[1]["ts"]

    run(main())


def test_maintenance_reset_continues_the_chain(emulator_factory):
    emu = emulator_factory(RandomMarket(seed=3), paused=True)

    async def main():
        async with connect(emu.ws_url) as ws:
            first = await subscribe(ws, ("books", "BTC-USDT"), ("books5", "BTC-USDT"))
            emu.emulator.advance(1000)
            emu.emulator.inject(Fault.RESET, inst="BTC-USDT")
            emu.emulator.advance(1000)
            fc = FeedCheck().feed_all(first + await drain(ws))
            s = fc.syncs[("books", "BTC-USDT")].stats
            assert (s.resets, s.gaps, s.checksum_failed) == (1, 0, 0)
            assert s.checksum_verified == s.messages > 15

    run(main())


def test_checksum_generation_off(emulator_factory):
    emu = emulator_factory(RandomMarket(seed=4), paused=True, checksum=False)

    async def main():
        async with connect(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "ETH-USDT"), ("books50-l2-tbt", "BTC-USDT"))
            emu.emulator.advance(2000)
            got += await drain(ws)
            books = [parse_frame(m) for m in got if '"data"' in m]
            assert len(books) > 100 and {b.checksum for b in books} == {0}
            fc = FeedCheck().feed_all(got)
            assert fc.total("gaps") == 0 and fc.total("checksum_absent") == len(books)

    run(main())


def test_no_snapshot_generation_bootstraps_from_rest(emulator_factory):
    emu = emulator_factory(RandomMarket(seed=5), paused=True, snapshot=False)

    async def main():
        async with connect(emu.ws_url) as ws, aiohttp.ClientSession() as http:
            buffered = await subscribe(ws, ("books", "BTC-USDT"), ("books5", "BTC-USDT"))
            emu.emulator.advance(700)
            buffered = [m for m in buffered + await drain(ws) if '"books"' in m]
            assert orjson.loads(buffered[0])["event"] == "subscribe"
            updates = [parse_frame(m) for m in buffered[1:]]
            assert updates and all(u.action == "update" for u in updates)  # no snapshot
            url = f"{emu.rest_url}/api/v5/market/books?instId=BTC-USDT&sz=400"
            async with http.get(url) as r:
                rest = orjson.loads(await r.read())
            emu.emulator.advance(1000)
            updates += [parse_frame(m) for m in await drain(ws) if '"books"' in m]
        # OKX's documented procedure: drop updates with seqId <= snapshot seqId; the first
        # kept one must satisfy prevSeqId <= seqId(snapshot) < seqId; then chain as usual.
        snap = rest["data"][0]
        assert rest["code"] == "0" and list(snap) == ["asks", "bids", "ts", "seqId"]
        book = L2Book("BTC-USDT")
        book.apply_snapshot(snap["bids"], snap["asks"])
        kept = [u for u in updates if u.seq_id > snap["seqId"]]
        assert kept[0].prev_seq_id <= snap["seqId"] < kept[0].seq_id
        last = snap["seqId"]
        for u in kept:
            assert u.prev_seq_id == last or u is kept[0]
            book.apply_update(u.bids, u.asks)
            assert book.checksum() == u.checksum
            last = u.seq_id
        assert len(kept) >= 10

    run(main())


def test_rest_seq_id_can_be_left_out(emulator_factory):
    emu = emulator_factory(RandomMarket(seed=5), paused=True, rest_seq_id=False)

    async def main():
        url = f"{emu.rest_url}/api/v5/market/books?instId=ETH-USDT"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            body = orjson.loads(await r.read())
        assert list(body) == ["code", "msg", "data"]
        assert list(body["data"][0]) == ["asks", "bids", "ts"]
        assert len(body["data"][0]["asks"]) == len(body["data"][0]["bids"]) == 1  # sz: 1

    run(main())


@pytest.mark.parametrize(("access", "before_login", "after_login"), [
    ("open", "subscribe", "subscribe"),
    ("login", "60011", "subscribe"),
    ("deny", "60011", "64003"),
])
def test_l2_tbt_access(emulator_factory, access, before_login, after_login):
    emu = emulator_factory(static_market(), paused=True, tbt_access=access)

    def outcome(m: str) -> str:
        d = orjson.loads(m)
        return d["event"] if d["event"] != "error" else d["code"]

    async def main():
        async with connect(emu.ws_url) as ws:
            first = (await subscribe(ws, ("books50-l2-tbt", "BTC-USDT")))[0]
            assert outcome(first) == before_login
            if before_login == "60011":
                assert orjson.loads(first)["msg"] == "Please log in"
            await ws.send(orjson.dumps({"op": "login", "args": [{"apiKey": "k"}]}).decode())
            got = await recv_until(ws, lambda m: '"login"' in m)
            login = orjson.loads(got[-1])
            assert login == {"event": "login", "code": "0", "msg": "", "connId": login["connId"]}
            got = await subscribe(ws, ("books-l2-tbt", "ETH-USDT"))
            assert outcome(got[0]) == after_login

    run(main())


def test_only_the_public_path_is_served(emulator_factory):
    emu = emulator_factory(static_market(), paused=True)

    async def main():
        with pytest.raises(InvalidStatus) as e:
            async with connect(emu.ws_url.replace("/public", "/private")):
                pass
        assert e.value.response.status_code == 404

    run(main())


def test_rest_errors_use_okx_envelopes(emulator_factory, okx_rest):
    emu = emulator_factory(static_market(), paused=True)
    real_fields = None
    for line in okx_rest.read_bytes().splitlines():
        if b"instType=SPOT" in line:
            real = orjson.loads(line.partition(b": ")[2])
            real_fields = list(real["data"][0])
            real_keys = list(real)
            break

    async def get(http, path):
        async with http.get(emu.rest_url + path) as r:
            return r.status, orjson.loads(await r.read())

    async def main():
        async with aiohttp.ClientSession() as http:
            assert await get(http, "/api/v5/market/books?instId=NOPE-USDT") == (200, {
                "code": "51001", "msg": "Instrument ID, Instrument ID code, or Spread ID "
                "doesn't exist.", "data": []})
            assert await get(http, "/api/v5/market/books?instId=BTC-USDT&sz=401") == (
                200, {"code": "51000", "msg": "Parameter sz error.", "data": []})
            status, body = await get(http, "/api/v5/market/books")
            assert (status, body["code"]) == (400, "50014")
            status, body = await get(http, "/api/v5/market/nothing")
            assert status == 404 and body["msg"] == "Not Found" and body["code"] == 404
            status, body = await get(http, "/api/v5/market/books?instId=BTC-USDT&sz=400")
            assert status == 200 and len(body["data"][0]["bids"]) == 30
            status, body = await get(http, "/api/v5/public/instruments?instType=SPOT")
            assert status == 200 and list(body) == real_keys == ["code", "data", "msg"]
            assert [d["instId"] for d in body["data"]] == ["BTC-USDT", "ETH-USDT"]
            assert all(list(d) == real_fields for d in body["data"])
            status, body = await get(http,
                                     "/api/v5/public/instruments?instType=SPOT&instId=ETH-USDT")
            assert [(d["instId"], d["tickSz"], d["lotSz"]) for d in body["data"]] == [
                ("ETH-USDT", "0.01", "0.000001")]
            status, body = await get(http, "/api/v5/public/instruments")
            assert (status, body["code"]) == (400, "50014")

    run(main())


def test_a_third_party_client_syncs_every_stream_at_full_speed(emulator_factory):
    """As fast as the client reads: every book stream syncs, no gap, every checksum checks,
    and nothing arrives that real OKX would not send."""
    emu = emulator_factory(RandomMarket(seed=8, rate=400), speed=None)
    args = [(c, i) for i in ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP")
            for c in ("books", "books5", "bbo-tbt", "trades")]
    args += [("books-l2-tbt", "BTC-USDT-SWAP"), ("books50-l2-tbt", "ETH-USDT")]
    args.remove(("books", "BTC-USDT-SWAP"))

    async def main():
        async with client(emu.ws_url) as ws:
            await ws.send(request("subscribe", *args))
            return [await recv(ws) for _ in range(4000)]

    got = run(main())
    fc = FeedCheck().feed_all(got)
    assert fc.parse_errors == 0 and len(fc.events) == len(args)
    assert {(e["event"], e["arg"]["channel"], e["arg"]["instId"]) for e in fc.events} == {
        ("subscribe", c, i) for c, i in args}
    assert len(fc.syncs) == len(args) - 3  # every book stream
    assert fc.total("gaps") == fc.total("checksum_failed") == fc.total("no_snapshot") == 0
    assert fc.total("crossed") == 0 and fc.trades > 50
    inc = [s for (c, _), s in fc.syncs.items() if c not in ("books5", "bbo-tbt")]
    assert all(s.stats.checksum_verified == s.stats.messages for s in inc)
    for m in got:
        d = orjson.loads(m)
        assert list(d) in (["id", "event", "arg", "connId"], ["arg", "action", "data"],
                           ["arg", "data"])
    # the market is not idle: the full-speed feed really moved
    assert sum(s.stats.updates for s in inc) > 500


def test_same_seed_same_bytes_through_the_server(emulator_factory):
    """Two emulators with one seed, the same subscriptions and the same clock steps send the
    same bytes (connIds included); another seed does not."""

    async def session(seed: int) -> list[str]:
        emu = emulator_factory(RandomMarket(seed=seed), paused=True, seed=seed)
        async with connect(emu.ws_url) as ws:
            got = await subscribe(ws, ("books", "BTC-USDT"), ("books-l2-tbt", "ETH-USDT"),
                                  ("bbo-tbt", "BTC-USDT-SWAP"), ("trades", "BTC-USDT"))
            for _ in range(5):
                emu.emulator.advance(700)
                got += await drain(ws)
        return got

    a, b, c = run(session(21)), run(session(21)), run(session(22))
    assert a == b and len(a) > 500
    assert a != c
