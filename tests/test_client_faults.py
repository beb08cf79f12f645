"""The live OKX client under every emulator fault: the affected stream is resynced, the others
are undisturbed, the status events say what happened and where; and the 64008 switchover
loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from test_client import (
    BOTH,
    assert_continuous,
    market,
    replay,
    same_book_as_emulator,
    session,
    wait_until,
)

from simlab.emulator import Fault
from simlab.emulator.testing import client as raw_client
from simlab.emulator.testing import run, subscribe
from simlab.okx.rest import REST_CONN

BTC, ETH = BOTH
SUBS = [("books", BTC), ("books", ETH), ("trades", BTC)]


def synced(s, n: int = 2):
    return lambda: len(s.of("synced")) >= n


async def faulted(emu, fault: Fault, options: dict, done, client_options: dict,
                  settle: float = 0.3):
    """Sync, inject the fault, wait until ``done(session)``, let the feed run a little."""
    async def body(client, s):
        await wait_until(synced(s), 5, "both books synced")
        await asyncio.sleep(0.2)
        emu.emulator.inject(fault, **options)
        await wait_until(lambda: done(s), 4, f"the client to handle {fault}")
        await asyncio.sleep(settle)
        for inst in BOTH:  # every book ends right, the hit one included
            await same_book_as_emulator(emu, client, inst)

    return await session(emu, SUBS, body, **client_options)


def resynced(s) -> bool:
    return bool(s.of("resync_done", BTC)) and s.client.mode("books", BTC) == "live"


@pytest.mark.parametrize(("fault", "options", "client_options", "what"), [
    (Fault.GAP, {"inst": BTC}, {}, "gap"),
    (Fault.GAP, {"inst": BTC}, {"resync": "rest"}, "gap"),
    (Fault.CHECKSUM, {"inst": BTC}, {}, "checksum_failed"),
    (Fault.REORDER, {"inst": BTC}, {}, "gap"),
], ids=["gap-resubscribe", "gap-rest", "checksum", "reorder"])
def test_a_broken_chain_resyncs_that_stream_only(emulator_factory, fault, options,
                                                 client_options, what):
    emu = emulator_factory(market(), speed=10)
    s = run(faulted(emu, fault, options, resynced, client_options))
    (broke,) = s.of(what)
    assert (broke.conn, broke.channel, broke.inst) == (0, "books", BTC)
    assert broke.data["seq_id"] and broke.data["ts"] > 1.7e12
    assert s.frames[broke.data["arrival"]].inst == BTC  # where: the frame that broke it
    how = client_options.get("resync", "resubscribe")
    started, done = s.of("resync_started", BTC), s.of("resync_done", BTC)
    assert [(e.data["why"], e.data["how"]) for e in started + done] == [(what, how)] * 2
    assert not s.of("resync_started", ETH) and not s.of("reconnect")
    assert (s.client.counts["resyncs_rest"] > 0) == (how == "rest")
    assert any(f.conn == REST_CONN and f.inst == BTC for f in s.frames) == (how == "rest")
    syncs = replay(s.frames)
    assert_continuous(syncs[("books", ETH)], ETH)  # undisturbed
    hit = syncs[("books", BTC)]
    assert hit.valid and hit.stats.snapshots == 2
    assert hit.stats.gaps + hit.stats.checksum_failed == 1


@pytest.mark.parametrize(("fault", "options", "event"), [
    (Fault.MALFORMED, {"inst": BTC, "channel": "books"}, "malformed"),
    (Fault.DUPLICATE, {"inst": BTC}, "duplicate"),
    (Fault.RESET, {"inst": BTC}, "seq_reset"),
])
def test_faults_that_need_no_resync(emulator_factory, fault, options, event):
    emu = emulator_factory(market(), speed=10)
    s = run(faulted(emu, fault, options, lambda s: s.of(event), {}))
    (ev,) = s.of(event)
    assert ev.conn == 0 and ev.inst in (BTC, None)
    assert not s.of("resync_started") and not s.of("gap") and not s.of("reconnect")
    syncs = replay(s.frames)
    for inst in BOTH:
        assert_continuous(syncs[("books", inst)], inst)
    if fault is Fault.MALFORMED:
        (bad,) = [f for f in s.frames if f.channel == "_malformed"]
        assert len(bad.payload) == ev.data["bytes"] and "invalid JSON" in ev.detail
    if fault is Fault.DUPLICATE:
        assert (ev.data["seq_id"], ev.data["prev_seq_id"]) != (None, None)
        assert syncs[("books", BTC)].stats.duplicates == 0  # it never reached the output
    if fault is Fault.RESET:
        assert syncs[("books", BTC)].stats.resets == 1 and ev.data["seq_id"] < \
            ev.data["prev_seq_id"]


def test_dropped_connection_reconnects_and_resubscribes(emulator_factory):
    emu = emulator_factory(market(), speed=10)
    s = run(faulted(emu, Fault.DROP, {"after": 20},
                    lambda s: len(s.of("synced")) + len(s.of("resync_done")) >= 2
                    and s.of("reconnect"), {}))
    dis, rec = s.of("disconnect")[0], s.of("reconnect")[0]
    assert (dis.conn, dis.data["code"], dis.data["expected"]) == (0, 1006, False)
    assert (rec.conn, rec.data["previous_conn"]) == (1, 0) and rec.data["missing_s"] < 2
    assert [e.conn for e in s.of("connect")] == [0, 1]
    assert len(s.of("subscribed")) == 2 * len(SUBS)
    for inst in BOTH:
        st = replay(s.frames)[("books", inst)].stats
        assert st.snapshots == 2 and st.gaps == st.no_snapshot == st.checksum_failed == 0


def test_stall_and_burst_are_silences_not_failures(emulator_factory):
    for fault in (Fault.STALL, Fault.BURST):
        emu = emulator_factory(market(), speed=10)
        s = run(faulted(emu, fault, {"duration": 0.6}, lambda s: s.of("silence"), {}))
        (quiet,) = s.of("silence")
        assert 0.5 < quiet.data["silent_s"] < 1.5 and quiet.conn == 0
        assert not s.of("reconnect") and not s.of("ping_timeout") and not s.of("gap")
        syncs = replay(s.frames)
        for inst in BOTH:
            assert_continuous(syncs[("books", inst)], inst)


def test_a_missing_pong_means_a_dead_connection(emulator_factory):
    emu = emulator_factory(market(), speed=10)
    s = run(faulted(emu, Fault.BURST, {"duration": 2.0}, lambda s: s.of("reconnect"),
                    {"pong_timeout": 0.4}))
    (timeout,) = s.of("ping_timeout")
    assert timeout.conn == 0
    assert next((e.conn, e.data["expected"]) for e in s.of("disconnect")) == (0, False)
    assert s.of("reconnect")[0].data["missing_s"] > 0.4
    for inst in BOTH:
        assert replay(s.frames)[("books", inst)].valid


@pytest.mark.parametrize(("fault", "options", "detail"), [
    (Fault.REST_ERROR, {"count": 2}, "HTTP 500, code 50026: System error."),
    (Fault.REST_SLOW, {"delay": 0.8}, "timed out after 0.5 s"),
])
def test_rest_failures_are_retried(emulator_factory, fault, options, detail):
    emu = emulator_factory(market(), speed=10, snapshot=False, faults=[])
    emu.emulator.inject(fault, **options)  # hits the first REST requests (the bootstrap)

    async def body(client, s):
        await wait_until(synced(s), 6, "both books synced")
        await asyncio.sleep(0.2)
        for inst in BOTH:
            await same_book_as_emulator(emu, client, inst)

    s = run(session(emu, SUBS, body, resync="rest", snapshot_timeout=0.2))
    errors = s.of("rest_error")
    assert 1 <= len(errors) <= 2 and all(detail in e.detail for e in errors)
    assert errors[0].data["attempt"] == 1 and errors[0].data["retry_in_s"] > 0
    assert all(e.data["how"] == "rest" for e in s.of("synced"))
    for inst in BOTH:
        st = replay(s.frames)[("books", inst)].stats
        assert st.gaps == st.checksum_failed == 0 and st.snapshots == 1


def test_bootstrap_buffer_is_capped(emulator_factory):
    emu = emulator_factory(market(), speed=10, snapshot=False)
    emu.emulator.inject(Fault.REST_SLOW, delay=0.4, count=2)

    async def body(client, s):
        await wait_until(synced(s), 6, "both books synced")

    s = run(session(emu, SUBS[:2], body, resync="rest", snapshot_timeout=0.1,
                    max_buffered=10, rest_timeout=2))
    over = s.of("buffer_overflow")
    assert over and "max_buffered=10" in over[0].detail and over[0].data["held"] == 10
    for inst in BOTH:
        assert s.client.sync("books", inst).valid
        assert replay(s.frames)[("books", inst)].stats.gaps == 0


@pytest.mark.parametrize("snapshot", [True, False], ids=["in-band", "rest-world"])
def test_64008_switchover_loses_and_duplicates_nothing(emulator_factory, snapshot):
    emu = emulator_factory(market(rate=400), speed=10, snapshot=snapshot)
    observed: list[bytes] = []

    async def observer(stop: asyncio.Event):
        # An independent plain connection: every trade it sees, the client must yield.
        async with raw_client(emu.ws_url) as ws:
            await subscribe(ws, ("trades", BTC))
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    observed.append(await asyncio.wait_for(ws.recv(), 0.05))

    async def body(client, s):
        await wait_until(synced(s), 5, "both books synced")
        stop = asyncio.Event()
        watcher = asyncio.create_task(observer(stop))
        await asyncio.sleep(0.3)
        emu.emulator.inject(Fault.NOTICE, delay=1.0, conn=0)  # the client, not the observer
        await wait_until(lambda: s.of("switchover"), 4, "the switchover")
        await asyncio.sleep(1.2)  # past the old connection's close
        stop.set()
        await watcher

    s = run(session(emu, SUBS, body))
    (notice,) = s.of("notice")
    (sw,) = s.of("switchover")
    assert notice.conn == 0 and notice.data["code"] == "64008"
    assert (sw.data["old_conn"], sw.conn, sw.data["joined"]) == (0, 1, 3)
    assert sw.data["duplicates_dropped"] > 0 and not s.of("gap") and not s.of("reconnect")
    assert not s.of("resync_started")
    # the old connection may still pass on what continues a chain (when it is ahead), but
    # nothing once it is closed; the new one carries on
    gone = s.items.index(next(e for e in s.of("disconnect") if e.conn == 0))
    assert s.of("disconnect")[0].data["expected"]  # closed by us, before the server did
    assert {f.conn for f in s.items[gone:] if getattr(f, "channel", "") == "books"} == {1}
    syncs = replay(s.frames)
    for inst in BOTH:
        st = syncs[("books", inst)].stats
        # one chain from the first snapshot to the end: nothing lost, nothing twice (in the
        # REST world the updates before the first REST snapshot are passed on first, stale)
        (first,) = s.of("synced", inst)
        a, b = first.data.get("stale_arrivals", (1, 0))
        assert st.snapshots == 1 and st.gaps == st.duplicates == 0
        assert st.no_snapshot == b - a + 1 and (st.no_snapshot == 0) == snapshot
        assert st.messages > 100
        seqs = [orjson.loads(f.payload)["data"][0]["seqId"] for f in s.frames
                if f.channel == "books" and f.inst == inst and f.conn != REST_CONN]
        assert len(seqs) == len(set(seqs))
    got = [t["tradeId"] for f in s.frames if f.channel == "trades"
           for t in orjson.loads(f.payload)["data"]]
    assert len(got) == len(set(got))
    seen = [t["tradeId"] for m in observed if m.startswith('{"arg":{"channel":"trades"')
            for t in orjson.loads(m)["data"]]
    assert len(seen) > 20 and set(seen) <= set(got)
