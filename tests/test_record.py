"""The overnight recorder against the emulator, in-process: every fault of the catalogue
shows up in the recording exactly where it was injected, with its repair in the manifest;
the other streams are undisturbed and nothing else is missing. Also: round trip of the real
2022 capture, REST-bootstrap and checksum-0 feeds, a slow disk (frames dropped, never
silently), a full disk (clear error, earlier files intact)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time

import pyarrow.compute as pc
import pytest

from simlab.book import L2Book
from simlab.emulator import Fault, FaultSpec
from simlab.emulator.testing import RandomMarket, run
from simlab.okx.integrity import BookIntegrity
from simlab.okx.normalize import normalize_raw
from simlab.record import RECORD_LOG, Recorder, RecordError
from simlab.store import Recording, verify
from simlab.store.verify import stale_ranges
from simlab.units import parse_duration

INSTS = ("BTC-USDT", "ETH-USDT")
SUBS = [(ch, i) for i in INSTS for ch in ("books", "trades")]
#: Client timeouts short enough for tests.
FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
        "ping_interval": 2.0, "pong_timeout": 2.0, "close_timeout": 0.5, "open_timeout": 2.0,
        "splice_wait": 1.0, "rest_retry_base": 0.05, "rest_retry_max": 0.2, "silence_s": 5.0}


def market(seed: int = 12) -> RandomMarket:
    return RandomMarket(seed=seed, rate=300, instruments=list(INSTS))


def recorder(emu, out, subs=SUBS, **options) -> Recorder:
    return Recorder(out, subs, ws_url=emu.ws_url, rest_url=emu.rest_url,
                    **{"rotate": 0.3, **FAST, **options})


def synced(rec: Recorder) -> bool:
    c = rec.client
    return c is not None and all(
        c.mode(ch, i) == "live" and rec.per_stream[(ch, i)] > 0
        for ch, i in rec.subscriptions if ch == "books")


async def advance(emu, ms: int, rec: Recorder, steps: int = 1) -> None:
    """Move the paused emulator's clock by ``ms`` and wait until the recorder has it all."""
    for _ in range(steps):
        await asyncio.to_thread(emu.emulator.advance, ms // steps)
        await asyncio.sleep(0.05)
        await rec.idle(0.25)


def record_paused(emu, out, ms: int, steps: int = 2, timeout: float = 30) -> None:
    """Record the paused emulator: until every book is synced (moving its clock 200 ms at a
    time while not: a REST splice needs updates after its snapshot), then ``ms`` more in
    ``steps``."""
    async def main():
        rec = recorder(emu, out)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.client is not None and rec.events > 0, what="start")
        while not synced(rec):
            await advance(emu, 200, rec)
        await advance(emu, ms, rec, steps=steps)
        rec.stop("test done")
        return await task

    run(main(), timeout=timeout)


def sent_frames(emu) -> int:
    """Data pushes the emulator wrote to its current connections."""
    return sum(c.sent for c in emu.emulator.connections)


def replay_books(path) -> dict[tuple[str, str], L2Book]:
    """Every book of a recording rebuilt from raw (REST snapshots and stale updates as
    simlab verify treats them)."""
    rec = Recording(path)
    checker = BookIntegrity(L2Book, stale=stale_ranges(rec.manifest))
    for f in rec.iter_raw():
        n = normalize_raw(f.payload, f.conn, f.channel, f.inst, rec.wire_format)
        if n.kind == "book":
            checker.apply(n.msg, f.arrival, rest=f.conn == -1)
    return {k: s.book for k, s in checker.syncs.items() if s.valid}


def assert_books_equal_emulator(emu, path, insts=INSTS) -> None:
    books = replay_books(path)
    for inst in insts:
        bids, asks, _, _ = emu.emulator.feed.rest_book(inst, 400)
        book = books[("books", inst)]
        got = ([[p, s] for p, s, _ in book.levels("bid", 400)],
               [[p, s] for p, s, _ in book.levels("ask", 400)])
        want = ([lv[:2] for lv in bids], [lv[:2] for lv in asks])
        assert got == want, inst


def book_frames(path, inst: str, channel: str = "books") -> list:
    return [f for f in Recording(path).iter_raw(channel=channel, inst=inst) if f.conn != -1]


def stream_stats(rep, inst: str, channel: str = "books") -> dict:
    return rep.channels[channel]["instruments"][inst]


CLEAN = {"gaps": 0, "checksum_failed": 0, "no_snapshot": 0, "rejected": 0, "stale": 0}


def assert_clean(rep, inst: str, snapshots: int = 1) -> None:
    st = stream_stats(rep, inst)
    assert {k: st[k] for k in CLEAN} == CLEAN, (inst, st)
    assert st["snapshots"] == snapshots and st["checksum_verified"] == st["messages"] > 10


def live_breaks(path, inst: str | None = None) -> list[dict]:
    bs = Recording(path).manifest["live"]["breaks"]
    return [b for b in bs if inst is None or b.get("inst") == inst]


# -- the fault catalogue ----------------------------------------------------------------------
def faulted(emulator_factory, tmp_path, fault: Fault, *, extra_ms: int = 2000, **options):
    """1 s of feed, the fault, ``extra_ms`` more, 0.5 s after: what was recorded."""
    emu = emulator_factory(market(), paused=True)
    out = tmp_path / "rec"
    info: dict = {}

    async def main():
        rec = recorder(emu, out)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: synced(rec), what="initial snapshots")
        await advance(emu, 1000, rec)
        info["before"] = {i: rec.per_stream[("books", i)] for i in INSTS}
        info["arrivals"] = rec._written
        await asyncio.to_thread(emu.emulator.inject, fault, **options)
        await advance(emu, extra_ms, rec, steps=4)
        await advance(emu, 500, rec)
        await rec.until(lambda: synced(rec), what="resynced books")
        await advance(emu, 500, rec)
        info["sent"] = sent_frames(emu)
        info["duplicates"] = rec.client.counts["duplicates"]
        rec.stop("test done")
        info["result"] = await task

    run(main(), timeout=40)
    return emu, out, info


def data_frames(path) -> int:
    t = Recording(path).raw_table()
    keep = pc.and_(pc.not_equal(t["channel"], "_event"), pc.not_equal(t["conn"], -1))
    return t.filter(keep).num_rows


def assert_nothing_else_missing(out, info, rep) -> None:
    m = Recording(out).manifest
    assert m["complete"] and m["live"]["summary"]["dropped_frames"] == 0
    # every frame the client passed on is in the recording ...
    assert rep.frames == m["arrivals"] == sum(info["result"].per_stream.values())
    # ... and every push the emulator sent, but the duplicates the client dropped
    assert data_frames(out) + info["duplicates"] == info["sent"]


@pytest.mark.parametrize(("fault", "options", "where"), [
    (Fault.GAP, {"inst": "BTC-USDT", "after": 3}, 3),
    (Fault.CHECKSUM, {"inst": "BTC-USDT", "after": 2}, 2),
    (Fault.REORDER, {"inst": "BTC-USDT", "after": 1}, 1),
])
def test_a_broken_chain_is_shown_where_injected_and_repaired(emulator_factory, tmp_path, fault,
                                                            options, where):
    emu, out, info = faulted(emulator_factory, tmp_path, fault, **options)
    rep = verify(out)
    kind = "checksum_failed" if fault is Fault.CHECKSUM else "gap"
    # exactly one break, on the update `after` updates after the injection
    frames = book_frames(out, "BTC-USDT")
    hit = frames[info["before"]["BTC-USDT"] + where]
    assert [(e["kind"], e["inst"], e["arrival"]) for e in rep.events] == [
        (kind, "BTC-USDT", hit.arrival)]
    st = stream_stats(rep, "BTC-USDT")
    assert st["gaps" if kind == "gap" else kind] == 1
    assert st["no_snapshot"] == st["rejected"] == 0
    assert st["snapshots"] == 2  # the first and the one that repaired it
    # the manifest says where and how it was repaired
    (b,) = live_breaks(out, "BTC-USDT")
    assert (b["kind"], b["arrival"]) == (kind, hit.arrival)
    assert b["repair"]["done"] and b["repair"]["how"] == "resubscribe"
    snap = next(f for f in frames if f.arrival == b["repair"]["arrival"])
    assert b'"action":"snapshot"' in snap.payload and snap.arrival > hit.arrival
    stale = b["repair"]["stale_arrivals"]  # updates that came while it resynced
    if stale is None:
        assert st["stale"] == 0
    else:
        lo, hi = stale
        assert hit.arrival < lo <= hi < snap.arrival
        assert st["stale"] == sum(lo <= f.arrival <= hi for f in frames)
    # the other instrument is undisturbed, nothing else is missing
    assert_clean(rep, "ETH-USDT")
    assert live_breaks(out, "ETH-USDT") == []
    assert_nothing_else_missing(out, info, rep)
    assert_books_equal_emulator(emu, out)
    assert not rep.ok and len(rep.problems) == 1 and "BTC-USDT" in rep.problems[0]


@pytest.mark.parametrize(("fault", "options"), [
    (Fault.DUPLICATE, {"inst": "ETH-USDT", "after": 2}),
    (Fault.RESET, {"inst": "BTC-USDT"}),
    (Fault.MALFORMED, {"inst": "ETH-USDT", "channel": "books", "after": 2}),
    (Fault.BURST, {"duration": 0.5}),
    (Fault.STALL, {"duration": 0.8}),
])
def test_faults_without_loss_leave_complete_chains(emulator_factory, tmp_path, fault, options):
    emu, out, info = faulted(emulator_factory, tmp_path, fault, **options)
    rep = verify(out)
    assert rep.ok, rep.problems
    for inst in INSTS:
        assert_clean(rep, inst)
    assert_nothing_else_missing(out, info, rep)
    assert_books_equal_emulator(emu, out)
    m = Recording(out).manifest
    kinds = [e["kind"] for e in m["events"]]
    streams = m["live"]["summary"]["streams"]
    if fault is Fault.DUPLICATE:
        # the second copy was not recorded; the manifest says which one it was
        (dup,) = [e for e in m["events"] if e["kind"] == "duplicate"]
        frames = book_frames(out, "ETH-USDT")
        orig = frames[info["before"]["ETH-USDT"] + 2]
        assert f'"seqId":{dup["seq_id"]}'.encode() in orig.payload
        assert streams["books:ETH-USDT"]["duplicates"] == 1 and info["duplicates"] == 1
    elif fault is Fault.RESET:
        assert stream_stats(rep, "BTC-USDT")["resets"] == 1
        assert stream_stats(rep, "ETH-USDT")["resets"] == 0
        assert kinds.count("seq_reset") == 1 and streams["books:BTC-USDT"]["seq_resets"] == 1
    elif fault is Fault.MALFORMED:
        assert rep.malformed["count"] == 1
        bad = next(Recording(out).iter_raw(channel="_malformed"))
        frames = book_frames(out, "ETH-USDT")
        nxt = frames[info["before"]["ETH-USDT"] + 2]
        # the truncated copy came right before the push it was cut from
        assert nxt.arrival == bad.arrival + 1 and nxt.payload.startswith(bad.payload)
        assert kinds.count("malformed") == 1
    else:
        assert rep.malformed["count"] == 0
    assert live_breaks(out) == []  # no break: nothing was lost


def test_a_dropped_connection_is_a_disconnect_with_its_missing_time(emulator_factory, tmp_path):
    emu, out, info = faulted(emulator_factory, tmp_path, Fault.DROP, after=10)
    rep = verify(out)
    # The new connection's snapshots restart every book, but what the market did while the
    # line was down is not in the recording: one problem, naming the streams that lost it.
    (problem,) = rep.problems
    assert problem.startswith("disconnect of connection 0 at ")
    (b,) = live_breaks(out)
    assert b["kind"] == "disconnect" and b["conn"] == 0 and b["code"] == 1006
    assert sorted(map(tuple, b["streams"])) == sorted(SUBS)
    lost = [k for k, v in b["resumed"].items() if not v["lossless"]]
    assert lost and all(_stream(k) in problem for k in lost)
    # a book that moved on shows it in seqIds: its snapshot is not where the chain stopped
    for inst in INSTS:
        v = b["resumed"][f"books:{inst}"]
        assert not v["lossless"] and "updates in between were not received" in v["detail"]
    r = b["repair"]
    assert r["done"] and r["how"] == "reconnect" and r["conn"] == 1 and r["missing_s"] > 0
    raw = Recording(out).raw_table()
    conns = dict(zip(raw["arrival"].to_pylist(), raw["conn"].to_pylist(), strict=True))
    # it is where it happened: after the 10 pushes, every frame of connection 0 before it,
    # every frame of connection 1 after it
    assert max(a for a, c in conns.items() if c == 0) < b["arrival"]
    assert min(a for a, c in conns.items() if c == 1) >= b["arrival"]
    after = [f for f in Recording(out).iter_raw() if f.conn == 0 and f.channel != "_event"
             and f.arrival >= info["arrivals"]]
    assert len(after) == 10  # the pushes the fault let through before cutting the line
    for inst in INSTS:
        assert stream_stats(rep, inst)["snapshots"] == 2  # one per connection
        assert stream_stats(rep, inst)["gaps"] == 0
    s = Recording(out).manifest["live"]["summary"]
    assert (s["disconnects"], s["reconnects"]) == (1, 1) and s["missing_s"] == r["missing_s"]
    assert_books_equal_emulator(emu, out)


def _stream(key: str) -> str:
    return key.replace(":", " ", 1)


def test_a_64008_notice_switches_connections_without_loss(emulator_factory, tmp_path):
    emu, out, _info = faulted(emulator_factory, tmp_path, Fault.NOTICE, delay=0.6)
    rep = verify(out)
    assert rep.ok, rep.problems
    for inst in INSTS:
        assert_clean(rep, inst)  # one snapshot: the chain went on across the connections
    (b,) = live_breaks(out)
    assert b["kind"] == "switchover" and b["old_conn"] == 0 and b["conn"] == 1
    assert Recording(out).manifest["live"]["summary"]["disconnects"] == 0
    assert_books_equal_emulator(emu, out)


# -- REST bootstrap, checksum 0, REST faults ----------------------------------------------------
@pytest.mark.parametrize("faults", [(), (FaultSpec(Fault.REST_ERROR, count=2),
                                        FaultSpec(Fault.REST_SLOW, count=1, delay=0.3))],
                         ids=["clean", "rest-faults"])
def test_rest_bootstrap_mode_records_correct_books(emulator_factory, tmp_path, faults):
    emu = emulator_factory(market(), paused=True, snapshot=False, faults=faults)
    out = tmp_path / "rec"
    record_paused(emu, out, 1000, timeout=40)
    rep = verify(out)
    assert rep.ok, rep.problems
    for inst in INSTS:
        st = stream_stats(rep, inst)
        assert st["gaps"] == st["no_snapshot"] == st["checksum_failed"] == 0
        assert st["snapshots"] == 1 and st["checksum_verified"] == st["updates"] > 5
    rest = [f for f in Recording(out).iter_raw() if f.conn == -1]
    assert sorted(f.inst for f in rest) == sorted(INSTS)
    assert Recording(out).levels_table().filter(pc.field("snapshot")).num_rows > 0
    assert_books_equal_emulator(emu, out)
    streams = Recording(out).manifest["live"]["summary"]["streams"]
    for inst in INSTS:
        init = streams[f"books:{inst}"]["initial"]
        assert init["how"] == "rest"
    if faults:
        errors = sum(s["rest_errors"] for s in streams.values())
        assert errors == 2
        steps = [s["kind"] for st in streams.values() if st["initial"]
                 for s in st["initial"]["steps"]]
        assert steps.count("rest_error") == 2


def test_checksum_zero_feed_records_correct_books(emulator_factory, tmp_path):
    emu = emulator_factory(market(), paused=True, checksum=False)
    out = tmp_path / "rec"
    record_paused(emu, out, 2000)
    rep = verify(out)
    assert rep.ok, rep.problems
    for inst in INSTS:
        st = stream_stats(rep, inst)
        assert st["gaps"] == st["no_snapshot"] == st["checksum_verified"] == 0
        assert st["checksum_absent"] == st["messages"] > 10
    assert_books_equal_emulator(emu, out)


# -- round trip -------------------------------------------------------------------------------
def test_round_trip_of_the_real_capture(emulator_factory, capture_recording, tmp_path):
    a = Recording(capture_recording)
    insts = sorted({f["inst"] for f in a.files("raw", channel="books")})
    subs = [(ch, i) for i in insts for ch in ("books", "trades")]
    want = {(ch, i): len(a.raw_table(channel=ch, inst=i)) for ch, i in subs}
    emu = emulator_factory(recording=capture_recording, speed=None, start_on_subscribe=True)
    out = tmp_path / "b"

    async def main():
        rec = recorder(emu, out, subs)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: all(rec.per_stream[k] >= n for k, n in want.items()),
                        timeout=20, what="every recorded frame")
        await rec.idle(0.3)
        rec.stop("test done")
        return await task

    run(main(), timeout=40)
    b = Recording(out)
    for name in ("levels_table", "trades_table"):
        ta = getattr(a, name)().drop_columns(["arrival", "recv_ns"])
        tb = getattr(b, name)().drop_columns(["arrival", "recv_ns"])
        assert ta.num_rows > 70
        assert tb.equals(ta), name
    rep = verify(out)
    assert rep.ok and stream_stats(rep, "BTC-USDT")["checksum_verified"] == 98


# -- a slow disk, a full disk -----------------------------------------------------------------
def test_a_slow_disk_drops_frames_and_says_exactly_which(emulator_factory, tmp_path):
    emu = emulator_factory(market(), speed=10)
    out = tmp_path / "rec"
    slow = threading.Event()

    async def main():
        rec = recorder(emu, out, queue_frames=30, rotate=0.2)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.writer is not None, what="writer")
        real = rec.writer.add_frame

        def add_frame(f):
            if slow.is_set():
                time.sleep(0.005)  # a disk that cannot keep up
            return real(f)

        rec.writer.add_frame = add_frame
        await rec.until(lambda: synced(rec), what="initial snapshots")
        await asyncio.sleep(0.3)
        slow.set()
        await rec.until(lambda: rec.dropped > 50, what="drops")
        slow.clear()
        await rec.until(lambda: not rec.dropping, what="the writer catching up")
        await asyncio.sleep(0.3)
        rec.stop("test done")
        return rec, await task

    rec, result = run(main(), timeout=40)
    m = Recording(out).manifest
    s = m["live"]["summary"]
    assert s["dropped_frames"] == rec.dropped == result.dropped > 50
    eps = [b for b in m["live"]["breaks"] if b["kind"] == "queue_overflow"]
    assert s["drop_episodes"] == len(eps) >= 1
    assert sum(e["frames"] for e in eps) == rec.dropped
    assert sum(sum(e["per_stream"].values()) for e in eps) == rec.dropped
    assert m["arrivals"] == rec.frames - rec.dropped
    raw = Recording(out).raw_table()
    recv = dict(zip(raw["arrival"].to_pylist(), raw["recv_ns"].to_pylist(), strict=True))
    for e in eps:
        # the hole is where the manifest says: nothing recorded inside the drop's time span
        # (an episode still running when the recording stopped has no frame after it; the
        # client may yield frames of different streams slightly out of receive order, seen
        # under load as 0.1 ms, hence the tolerance)
        after = recv.get(e["arrival"], m["last_recv_ns"] + 1)
        tol = 100_000_000  # 0.1 s
        assert recv[e["arrival"] - 1] - tol <= e["first_recv_ns"] <= e["last_recv_ns"] \
            <= after + tol
        assert e["client_arrivals"][1] - e["client_arrivals"][0] + 1 == e["frames"]
    rep = verify(out)
    assert any("dropped" in p for p in rep.problems)
    text = (out / RECORD_LOG).read_text()
    assert "dropped" in text and "writer queue full" in text


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KB tmpfs (skipped where mounting is not permitted)."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_a_full_disk_stops_with_a_clear_error_and_keeps_earlier_files(emulator_factory,
                                                                       small_disk):
    emu = emulator_factory(market(), speed=20)
    out = small_disk / "rec"

    async def main():
        rec = recorder(emu, out, rotate=0.2)
        with pytest.raises(RecordError) as err:
            await asyncio.wait_for(rec.run(), 30)
        return rec, str(err.value)

    rec, msg = run(main(), timeout=40)
    assert str(out) in msg and "could not write" in msg
    assert "No space left on device" in msg and "intact and listed" in msg
    m = Recording(out).manifest
    assert m["complete"] is False and len(m["files"]) > 0 and rec.rotations >= 1
    rep = verify(out)  # every listed file is there, complete, with its rows
    assert rep.frames == m["arrivals"] > 0 and rep.ok, rep.problems
    # no file a reader could see besides the listed ones (hidden temporaries aside)
    assert [s for s in rep.stray_files if not s.rsplit("/", 1)[-1].startswith(".")] == []


# -- units ------------------------------------------------------------------------------------
def test_durations():
    assert parse_duration("8h") == 28800 and parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400 and parse_duration("0.5s") == 0.5
    with pytest.raises(ValueError, match="duration"):
        parse_duration("5 minutes")


def test_an_existing_directory_is_refused(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "x").write_text("x")
    with pytest.raises(Exception, match="not an empty directory"):
        run(Recorder(tmp_path / "rec", SUBS, ws_url="ws://127.0.0.1:1/ws").run())

