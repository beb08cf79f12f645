"""The live OKX client: connection rules and splicing as plain functions, then the client
against the local emulator (real WebSocket and REST on loopback).

The helpers here (``session``, ``replay``, ``FAST``) are shared with test_client_faults.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest
from support import subscribe_requests

from simlab.book import L2Book
from simlab.emulator.testing import RandomMarket, run
from simlab.okx import BookIntegrity, BookSync, OkxParseError
from simlab.okx.client import ClientConfig, ClientEvent, OkxClient
from simlab.okx.connection import (
    RateLimiter,
    RequestBudget,
    backoff_delay,
    batch_requests,
    normalize_args,
    plan_connections,
)
from simlab.okx.frames import RawFrame
from simlab.okx.integrity import find_splice, splices
from simlab.okx.messages import BOOK_CHANNELS
from simlab.okx.normalize import WIRE_WS, parse_stored
from simlab.okx.rest import REST_CONN, parse_rest_book

#: Short timeouts so that every fault plays out in about a second.
FAST = dict(snapshot_timeout=0.4, ping_interval=0.3, pong_timeout=1.0, backoff_base=0.05,
            backoff_max=0.5, splice_wait=0.5, silence_s=0.3, rest_timeout=0.5,
            rest_retry_base=0.05, rest_retry_max=0.2, close_timeout=1.0, tick=0.02)
BOTH = ["BTC-USDT", "ETH-USDT"]


def market(insts=BOTH, rate: float = 200, depth: int = 60) -> RandomMarket:
    return RandomMarket(seed=7, instruments=list(insts), rate=rate, depth=depth)


@dataclass
class Session:
    """What a client yielded: frames and events in stream order."""

    client: OkxClient
    frames: list[RawFrame] = field(default_factory=list)
    events: list[ClientEvent] = field(default_factory=list)
    items: list = field(default_factory=list)

    def kinds(self) -> Counter:
        return Counter(e.kind for e in self.events)

    def of(self, kind: str, inst: str | None = None) -> list[ClientEvent]:
        return [e for e in self.events if e.kind == kind and (inst is None or e.inst == inst)]


async def session(emu, subs, body: Callable[[OkxClient, Session], Awaitable[None]],
                  **options) -> Session:
    """Run a client against ``emu`` while ``body`` drives the scenario, then close it."""
    client = OkxClient(subs, book_factory=L2Book, ws_url=emu.ws_url, rest_url=emu.rest_url,
                       **{**FAST, **options})
    s = Session(client)

    async def consume():
        async for item in client.stream():
            s.items.append(item)
            (s.frames if isinstance(item, RawFrame) else s.events).append(item)

    task = asyncio.create_task(consume())
    try:
        await body(client, s)
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)
    return s


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or pred}")
        await asyncio.sleep(0.01)


def replay(frames: list[RawFrame]) -> dict[tuple[str, str], BookSync]:
    """Rebuild every book from the yielded frames alone, as replaying a recording would
    (the production integrity owner, REST snapshots spliced as the client did)."""
    books = BookIntegrity(L2Book)
    for f in frames:
        if f.channel in BOOK_CHANNELS:
            books.apply(parse_stored(f.payload, f.conn, f.channel, f.inst, WIRE_WS), f.arrival,
                        rest=f.conn == REST_CONN)
    return books.syncs


def assert_continuous(s: BookSync, what: str) -> None:
    """One snapshot, then an unbroken, checksum-clean chain."""
    st = s.stats
    assert s.valid, what
    assert (st.gaps, st.no_snapshot, st.checksum_failed, st.rejected, st.snapshots) == \
        (0, 0, 0, 0, 1), (what, st)
    assert st.updates > 5, (what, st)


async def rest_book(emu, inst: str, sz: int = 400) -> dict:
    async with aiohttp.ClientSession() as http, http.get(
            f"{emu.rest_url}/api/v5/market/books", params={"instId": inst, "sz": str(sz)}) as r:
        return orjson.loads(await r.read())["data"][0]


async def same_book_as_emulator(emu, client: OkxClient, inst: str) -> None:
    """Pause the exchange, let the client catch up, compare its book with the exchange's."""
    emu.emulator.pause()
    want = await rest_book(emu, inst)
    sync = client.sync("books", inst)
    if "seqId" in want:
        await wait_until(lambda: sync.last_seq == want["seqId"], 3,
                         f"{inst} to reach seqId {want['seqId']}")
    else:
        await wait_until(lambda: sync.stats.last_ts == int(want["ts"]), 3,
                         f"{inst} to reach ts {want['ts']}")
    book = client.book("books", inst)
    assert [list(x) for x in book.levels("bid")] == [[p, s, int(c)] for p, s, _, c in
                                                      want["bids"]]
    assert [list(x) for x in book.levels("ask")] == [[p, s, int(c)] for p, s, _, c in
                                                      want["asks"]]
    emu.emulator.resume()


# -- connection rules -------------------------------------------------------------------------
def test_plan_spreads_depth_channels_30_per_connection_and_keeps_trades_with_them():
    subs = [("books", f"I{i:02d}-USDT") for i in range(35)] + [("trades", "I33-USDT"),
                                                               ("tickers", "ZZZ-USDT")]
    plan = plan_connections(subs)
    assert [sum(a[0] == "books" for a in c) for c in plan] == [30, 5]
    assert ("trades", "I33-USDT") in plan[1] and ("tickers", "ZZZ-USDT") in plan[1]
    assert sorted(a for c in plan for a in c) == sorted(subs)
    assert [len(c) for c in plan_connections(subs[:31], max_depth=10)] == [10, 10, 10, 1]


def test_args_are_checked():
    assert normalize_args([["books", "A"], ("books", "A")]) == [("books", "A")]
    with pytest.raises(ValueError, match="cannot be subscribed together"):
        normalize_args([("books-l2-tbt", "A"), ("books", "A")])
    with pytest.raises(ValueError, match=r"expected a \(channel, instId\) pair"):
        normalize_args([("books", "")])
    with pytest.raises(ValueError, match="unknown OkxClient option"):
        OkxClient([("books", "A")], book_factory=L2Book, pong_timout=3)
    with pytest.raises(ValueError, match="resync must be one of"):
        ClientConfig(resync="sometimes")
    with pytest.raises(ValueError, match="ws_url must start with"):
        ClientConfig(ws_url="http://x")


def test_requests_are_batched_under_64_kb():
    ids = iter(range(1, 10**6))
    args = [("trades", f"LONGNAMECOIN{i:05d}-USDT-SWAP") for i in range(3000)]
    reqs = batch_requests("subscribe", args, lambda: str(next(ids)))
    assert len(reqs) == 3  # ~160 KB of args
    assert all(len(frame) <= 65536 for _, frame, _ in reqs)
    assert len(reqs[0][1]) > 60000  # full, not timid
    decoded = [orjson.loads(f) for _, f, _ in reqs]
    assert [d["id"] for d in decoded] == ["1", "2", "3"]
    assert [(a["channel"], a["instId"]) for d in decoded for a in d["args"]] == args
    with pytest.raises(ValueError, match="alone exceeds"):
        batch_requests("subscribe", [("books", "X" * 200)], lambda: "1", max_bytes=100)


def test_connection_rate_request_budget_and_backoff():
    t = [0.0]
    lim = RateLimiter(3, 1.0, clock=lambda: t[0])
    assert [lim.reserve() for _ in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    budget = RequestBudget(480, 3600, clock=lambda: t[0])
    assert sum(budget.take() for _ in range(500)) == 480
    t[0] = 3600.5
    assert budget.left() == 480
    delays = [backoff_delay(a, 0.5, 8.0) for a in range(8)]
    assert all(0.25 * 2 ** a <= d <= 0.5 * 2 ** a for a, d in enumerate(delays[:4]))
    assert all(4.0 <= d <= 8.0 for d in delays[4:])  # capped
    assert len({backoff_delay(3, 0.5, 8.0) for _ in range(20)}) > 1  # jitter


# -- splicing a REST snapshot -----------------------------------------------------------------
def test_find_splice_follows_okx_rule():
    ups = [(100, 107), (107, 107), (107, 119), (119, 131)]
    buf = [(p, s, i) for i, (p, s) in enumerate(ups)]
    assert find_splice(107, 0, buf)[:2] == ("splice", 2)  # snapshot == a published seqId
    assert find_splice(112, 0, buf)[:2] == ("splice", 2)  # between prevSeqId and seqId
    assert find_splice(100, 0, buf)[:2] == ("splice", 0)
    assert find_splice(131, 0, buf).outcome == "wait"  # newer than everything: wait
    assert find_splice(99, 0, buf).outcome == "stale"  # older than the buffer: fetch again
    # after a maintenance reset in the buffer only what follows it can splice
    reset = [*buf, (131, 4, 5), (4, 9, 6)]
    assert find_splice(5, 0, reset)[:2] == ("splice", 5)
    assert find_splice(None, 2, buf)[:2] == ("splice", 3)  # no seqId: by exchange time
    assert find_splice(None, 1, buf, base_ts=5).outcome == "stale"
    assert splices(112, 0, 107, 119, 0) and not splices(119, 0, 107, 119, 0)


def test_parse_rest_book_and_its_errors():
    body = (b'{"code":"0","msg":"","data":[{"asks":[["101","2","0","1"]],"bids":[["100","1",'
            b'"0","3"]],"ts":"1767225600000","seqId":123}]}')
    m = parse_rest_book(body, "books50-l2-tbt", "BTC-USDT")
    assert (m.channel, m.inst_id, m.action, m.seq_id, m.prev_seq_id) == (
        "books50-l2-tbt", "BTC-USDT", "snapshot", 123, -1)
    assert parse_rest_book(body.replace(b',"seqId":123', b""), "books", "X").seq_id is None
    for bad, reason in [(b"{", "invalid JSON"), (b'{"code":"50011","msg":"slow down"}',
                                                 "REST error code 50011: slow down"),
                        (b'{"code":"0","data":[]}', "exactly one book"),
                        (b'{"code":"0","data":[{"bids":[],"asks":[]}]}', "without 'ts'"),
                        (b'{"code":"0","data":[{"bids":[[1,2]],"asks":[],"ts":"1"}]}',
                         "level must be")]:
        with pytest.raises(OkxParseError, match=reason):
            parse_rest_book(bad, "books", "X")


def test_integrity_replays_a_rest_splice_between_seq_ids():
    def upd(prev, seq, bids):
        return RawFrame(0, 0, 0, "books", "X", orjson.dumps(
            {"arg": {"channel": "books", "instId": "X"}, "action": "update",
             "data": [{"asks": [], "bids": bids, "ts": "9", "checksum": 0, "prevSeqId": prev,
                       "seqId": seq}]}))

    rest = (b'{"code":"0","msg":"","data":[{"asks":[["11","1","0","1"]],"bids":[["10","1","0",'
            b'"1"]],"ts":"8","seqId":50}]}')
    syncs = replay([upd(40, 45, [["10", "5", "0", "1"]]),  # stale, before the snapshot
                    RawFrame(1, 0, REST_CONN, "books", "X", rest),
                    upd(45, 55, [["10", "2", "0", "1"]]),  # 45 <= 50 < 55: continues it
                    upd(55, 60, [["9", "1", "0", "1"]]),
                    upd(70, 80, [])])  # a real gap is still a gap
    st = syncs[("books", "X")].stats
    assert (st.snapshots, st.updates, st.gaps, st.no_snapshot) == (1, 2, 1, 1)


# -- against the emulator -----------------------------------------------------------------------
SUBS = [("books", "BTC-USDT"), ("books", "ETH-USDT"), ("books5", "BTC-USDT"),
        ("bbo-tbt", "ETH-USDT"), ("trades", "BTC-USDT"), ("trades", "ETH-USDT")]


def test_subscribes_streams_and_every_book_checks_out(emulator_factory):
    emu = emulator_factory(market(), speed=10)

    async def body(client, s):
        await wait_until(lambda: len(s.frames) > 800, 5, "800 frames")
        await same_book_as_emulator(emu, client, "BTC-USDT")

    s = run(session(emu, SUBS, body))
    k = s.kinds()
    assert (k["connect"], k["subscribed"], k["unsubscribed"], k["synced"]) == (1, 6, 6, 2)
    assert sum(k.values()) == len(s.events) and k["closed"] == 1 and s.items[-1].kind == "closed"
    assert not {"gap", "checksum_failed", "resync_started", "duplicate", "malformed",
                "reconnect"} & set(k)
    per = Counter(f.channel for f in s.frames)
    assert per["books"] > 20 and per["books5"] > 10 and per["bbo-tbt"] > 20 and per["trades"] > 5
    assert [f.arrival for f in s.frames] == list(range(len(s.frames)))
    assert {f.conn for f in s.frames} == {0}
    assert all(f.recv_ns > 1.7e18 for f in s.frames)
    syncs = replay(s.frames)
    for inst in BOTH:
        assert_continuous(syncs[("books", inst)], inst)
        live = s.client.sync("books", inst)
        assert live.stats.checksum_verified == live.stats.messages > 20
        assert live.stats.as_dict() == syncs[("books", inst)].stats.as_dict()
    assert syncs[("bbo-tbt", "ETH-USDT")].stats.snapshots > 20
    trade_ids = [t["tradeId"] for f in s.frames if f.channel == "trades"
                 for t in orjson.loads(f.payload)["data"]]
    assert len(trade_ids) == len(set(trade_ids))


def test_35_depth_channels_use_two_connections(emulator_factory):
    insts = [f"C{i:02d}-USDT" for i in range(35)]
    emu = emulator_factory(market(insts, rate=20, depth=10), speed=10)
    subs = [("books", i) for i in insts]

    async def body(client, s):
        await wait_until(lambda: len(s.of("synced")) == 35, 5, "35 books synced")
        counts = sorted(len(c.subs) for c in emu.emulator.connections)
        assert counts == [5, 30]

    s = run(session(emu, subs, body))
    assert [len(c) for c in s.client.connections] == [30, 5]
    assert sorted(e.conn for e in s.of("connect")) == [0, 1]
    assert len(s.of("subscribed")) == 35 and not s.of("error")
    for key, sync in replay(s.frames).items():
        assert sync.valid and sync.stats.gaps == sync.stats.no_snapshot == 0, key


def test_a_subscription_over_64_kb_goes_out_in_several_requests(emulator_factory):
    insts = [f"LONGNAMECOIN{i:04d}-USDT" for i in range(1600)]  # ~80 KB of args
    emu = emulator_factory(market(insts, rate=0.01, depth=5), paused=True)
    subs = [("trades", i) for i in insts]

    async def body(client, s):
        await wait_until(lambda: len(s.of("subscribed")) == 1600, 5, "1600 acks")

    s = run(session(emu, subs, body))
    assert s.client.counts["requests"] == 2 + 2  # subscribe and unsubscribe, two each
    assert len(s.of("connect")) == 1 and not s.of("error")
    assert s.of("disconnect")[0].data["expected"]  # the server did not refuse a frame


def test_rest_bootstrap_when_no_snapshot_comes(emulator_factory):
    emu = emulator_factory(market(), speed=10, snapshot=False)

    async def body(client, s):
        await wait_until(lambda: len(s.of("synced")) == 2, 5, "both books synced")
        await asyncio.sleep(0.3)
        await same_book_as_emulator(emu, client, "ETH-USDT")

    s = run(session(emu, SUBS[:2], body))
    k = s.kinds()
    assert k["snapshot_timeout"] == 2 and k["bootstrap"] >= 2 and not s.of("gap")
    for ev in s.of("synced"):
        assert ev.data["how"] == "rest"
        assert ev.data["splice_prev_seq_id"] <= ev.data["seq_id"] < ev.data["splice_seq_id"]
    rest = [f for f in s.frames if f.conn == REST_CONN]
    assert sorted(f.inst for f in rest) == BOTH and all(f.channel == "books" for f in rest)
    assert all(orjson.loads(f.payload)["code"] == "0" for f in rest)
    syncs = replay(s.frames)
    for inst in BOTH:
        st = syncs[("books", inst)].stats
        # the updates held before the snapshot are passed on first, unusable; then no break
        assert st.snapshots == 1 and st.gaps == 0 and st.checksum_failed == 0
        assert st.no_snapshot == s.client.sync("books", inst).stats.no_snapshot > 0
        assert st.checksum_verified > 10


def test_rest_bootstrap_without_seq_id_splices_by_time(emulator_factory):
    emu = emulator_factory(market(), speed=10, snapshot=False, rest_seq_id=False)

    async def body(client, s):
        await wait_until(lambda: len(s.of("synced")) == 2, 5, "both books synced")
        await asyncio.sleep(0.3)
        await same_book_as_emulator(emu, client, "BTC-USDT")

    s = run(session(emu, SUBS[:2], body, resync="rest"))
    assert all("by ts" in e.detail for e in s.of("synced"))
    for inst in BOTH:
        st = replay(s.frames)[("books", inst)].stats
        assert st.gaps == st.checksum_failed == 0 and st.checksum_verified > 10


def test_checksum_zero_mode_relies_on_the_chain(emulator_factory):
    emu = emulator_factory(market(), speed=10, checksum=False)

    async def body(client, s):
        await wait_until(lambda: len(s.frames) > 300, 5, "300 frames")
        await same_book_as_emulator(emu, client, "BTC-USDT")

    s = run(session(emu, SUBS[:2], body))
    for inst in BOTH:
        st = s.client.sync("books", inst).stats
        assert st.checksum_verified == 0 and st.checksum_absent == st.messages > 20
        assert_continuous(replay(s.frames)[("books", inst)], inst)


def test_idle_connection_is_kept_alive_with_ping(emulator_factory):
    emu = emulator_factory(market(), paused=True, idle_timeout=0.5)

    async def body(client, s):
        await asyncio.sleep(1.6)  # three idle timeouts without a single push

    s = run(session(emu, [("books", "BTC-USDT")], body))
    pongs = [f for f in s.frames if f.payload == b"pong"]
    assert len(pongs) >= 3 and all(f.channel == "_event" for f in pongs)
    assert [e.data["expected"] for e in s.of("disconnect")] == [True]
    assert len(s.of("connect")) == 1


def test_clean_shutdown(emulator_factory):
    emu = emulator_factory(market(), speed=10)

    async def main():
        client = OkxClient(SUBS, book_factory=L2Book, ws_url=emu.ws_url,
                           rest_url=emu.rest_url, **FAST)
        items = []
        async with client:
            async for item in client.stream():
                items.append(item)
                if isinstance(item, RawFrame) and len(items) > 200:
                    await client.close()  # from inside the loop: the stream then ends
        await client.close()  # idempotent
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("okx-")]
        return client, items, tasks

    client, items, tasks = run(main())
    events = [i for i in items if isinstance(i, ClientEvent)]
    unsub = [e for e in events if e.kind == "unsubscribed"]
    assert sorted((e.channel, e.inst) for e in unsub) == sorted(SUBS)
    assert events[-1].kind == "closed" and items[-1] is events[-1]
    assert events[-1].data["frames"] == sum(isinstance(i, RawFrame) for i in items)
    assert [e.data["expected"] for e in events if e.kind == "disconnect"] == [True]
    assert tasks == []  # nothing left running
    assert client.stats()["connections"] == 0
    assert run(_connections_gone(emu)) == 0


async def _connections_gone(emu) -> int:
    await wait_until(lambda: not emu.emulator.connections, 2, "the server to see the close")
    return len(emu.emulator.connections)


def test_new_connections_are_rate_limited(emulator_factory):
    emu = emulator_factory(market(["A-USDT", "B-USDT", "C-USDT"], rate=20, depth=10), speed=10)
    subs = [("books", i) for i in ("A-USDT", "B-USDT", "C-USDT")]

    async def body(client, s):
        await wait_until(lambda: len(s.of("synced")) == 3, 5, "three books synced")

    s = run(session(emu, subs, body, max_depth_per_conn=1, connects_per_s=2))
    t = sorted(e.recv_ns for e in s.of("connect"))
    assert len(t) == 3 and t[2] - t[0] >= 0.95e9  # the third waited for the 1 s window
    assert t[1] - t[0] < 0.5e9


def test_a_refused_subscription_is_reported_and_the_rest_goes_on(emulator_factory):
    emu = emulator_factory(market(), speed=10)

    async def body(client, s):
        await wait_until(lambda: s.of("refused") and s.of("synced"), 5, "refusal and sync")
        await asyncio.sleep(0.2)
        # after a reconnect the refused one is not asked for again: reported once
        emu.emulator.inject("drop", after=5)
        await wait_until(lambda: s.of("reconnect"), 5, "reconnect")
        await asyncio.sleep(0.3)

    s = run(session(emu, [("books", BTC_), ("books", "NOPE-USDT")], body))
    (err,) = s.of("error")
    assert err.data["code"] == "60018" and "NOPE-USDT" in err.detail
    assert err.data["op"] == "subscribe" and ["books", "NOPE-USDT"] in err.data["args"]
    (ref,) = s.of("refused")  # the caller is told which stream, with OKX's words
    assert (ref.channel, ref.inst, ref.data["code"]) == ("books", "NOPE-USDT", "60018")
    assert "channel:books,instId:NOPE-USDT doesn't exist" in ref.data["msg"]
    assert [(r["channel"], r["inst"], r["code"]) for r in s.client.refused] == [
        ("books", "NOPE-USDT", "60018")]
    assert s.client.connections == [[("books", BTC_)]]
    assert len(s.of("connect")) == 2 and len(s.of("error")) == 1
    assert s.client.mode("books", "NOPE-USDT") == "await"  # no REST bootstrap of a bad arg
    book = replay(s.frames)[("books", BTC_)]  # one snapshot per connection, no gap
    assert book.valid and book.stats.snapshots == 2 and book.stats.gaps == 0


def test_a_subscribe_error_naming_no_argument_refuses_what_was_not_acked():
    """A server that answers a two-argument subscribe with one ack and an error that names
    nothing (and no id): after ``refusal_wait`` the unacked argument counts as refused."""
    from websockets.asyncio.server import serve

    async def handler(ws):
        async for req in subscribe_requests(ws):
            good, _bad = req["args"]
            await ws.send(orjson.dumps({"id": req["id"], "event": "subscribe", "arg": good,
                                        "connId": "x"}).decode())
            await ws.send(orjson.dumps({"id": req["id"], "event": "error", "code": "64003",
                                        "msg": "Your trading fee tier doesn't meet the "
                                               "requirement", "connId": "x"}).decode())

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = OkxClient([("trades", BTC_), ("trades", "ETH-USDT")],
                               book_factory=L2Book, ws_url=f"ws://127.0.0.1:{port}/ws",
                               refusal_wait=0.3, **{**FAST, "silence_s": 30.0})
            events = []

            async def consume():
                async for item in client.stream():
                    if isinstance(item, ClientEvent):
                        events.append(item)

            task = asyncio.create_task(consume())
            await wait_until(lambda: client.refused, 3, "the refusal")
            await client.close()
            await asyncio.wait_for(task, 5)
            return client, events

    client, events = run(main())
    assert [(r["channel"], r["inst"], r["code"]) for r in client.refused] == [
        ("trades", "ETH-USDT", "64003")]
    assert [e.inst for e in events if e.kind == "refused"] == ["ETH-USDT"]


def test_a_slow_consumer_pauses_the_readers(emulator_factory):
    emu = emulator_factory(market(), speed=10)

    async def main():
        client = OkxClient(SUBS[:4], book_factory=L2Book, ws_url=emu.ws_url,
                           rest_url=emu.rest_url, **{**FAST, "max_ready": 50})
        most = n = 0
        async with client:
            async for item in client.stream():
                if n < 400:  # (during close() the readers drain the sockets unpaused)
                    most = max(most, client.backlog)
                n += isinstance(item, RawFrame)
                await asyncio.sleep(0.002)
                if n == 400:
                    await client.close()
        return client, most

    client, most = run(main())
    assert 45 <= most <= 60  # it filled up to the limit and stopped there
    for inst in BOTH:
        st = client.sync("books", inst).stats
        assert st.gaps == st.checksum_failed == 0


BTC_ = BOTH[0]
