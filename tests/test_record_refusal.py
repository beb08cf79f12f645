"""Refused subscriptions, requested streams, outages and disconnect losses, against the
emulator: a misspelled instrument stops ``simlab record`` within seconds naming what was
refused; ``--allow-partial`` records the rest and ``simlab verify`` fails naming the missing
stream; a stream silent for longer than its threshold is an outage (on a fake clock)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from support import subscribe_requests

from simlab.emulator import Fault, FaultSpec
from simlab.emulator.testing import RandomMarket, ScriptedMarket, run
from simlab.record import Recorder, RefusedError
from simlab.record.status import format_status
from simlab.store import Recording, verify

INSTS = ["BTC-USDT", "ETH-USDT"]
CLIENT = ["--client-option", "backoff_base=0.05", "--client-option", "close_timeout=0.5",
          "--client-option", "snapshot_timeout=0.5"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def emu(emulator_factory):
    return emulator_factory(RandomMarket(seed=3, rate=300, instruments=INSTS), speed=10)


def record_cli(emu, out: Path, inst: str, *extra: str, timeout: float = 30):
    cmd = [sys.executable, "-m", "simlab.cli", "record", "--inst", inst,
           "--channels", "books,trades", "--out", str(out), "--rotate", "0.3s",
           "--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--status-interval", "0.2s",
           *CLIENT, *extra]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    return r, time.monotonic() - t0


def verify_cli(out: Path):
    return subprocess.run([sys.executable, "-m", "simlab.cli", "verify", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_a_misspelled_instrument_stops_the_recording_naming_what_was_refused(emu, tmp_path):
    out = tmp_path / "rec"
    r, took = record_cli(emu, out, "BTC-USTD", "--duration", "20s")
    assert r.returncode == 1, r.stderr
    assert took < 10  # within seconds, not at the end of --duration
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("simlab record: error: ")
    for what in ("books BTC-USTD", "trades BTC-USTD", "60018",
                 "channel:books,instId:BTC-USTD doesn't exist"):
        assert what in err, err
    m = Recording(out).manifest
    assert m["requested"] == [{"channel": "books", "inst": "BTC-USTD"},
                              {"channel": "trades", "inst": "BTC-USTD"}]
    assert sorted((x["channel"], x["inst"], x["code"]) for x in m["live"]["refused"]) == [
        ("books", "BTC-USTD", "60018"), ("trades", "BTC-USTD", "60018")]
    assert "refused" in (out / "record.log").read_text()


def test_one_refused_of_several_fails_without_allow_partial(emu, tmp_path):
    # the README's own example: the emulator does not list this SWAP
    r, took = record_cli(emu, tmp_path / "rec", "BTC-USDT,BTC-USDT-SWAP", "--duration", "20s")
    assert r.returncode == 1 and took < 10, r.stderr
    assert "books BTC-USDT-SWAP: 60018" in r.stderr and "--allow-partial" in r.stderr


def test_allow_partial_records_the_rest_and_verify_names_the_missing_stream(emu, tmp_path):
    out = tmp_path / "rec"
    r, _ = record_cli(emu, out, "BTC-USDT,BTC-USTD", "--duration", "2s", "--allow-partial")
    assert r.returncode == 0, r.stderr
    # warned on the terminal, named in the summary
    assert "WARNING: books BTC-USTD: subscription refused by the server: 60018" in r.stderr
    assert "REFUSED books BTC-USTD" in r.stderr
    m = Recording(out).manifest
    assert {(x["channel"], x["inst"]) for x in m["live"]["refused"]} == {
        ("books", "BTC-USTD"), ("trades", "BTC-USTD")}
    assert len(m["requested"]) == 4
    assert m["channels"]["books"]["instruments"]["BTC-USDT"] > 10
    v = verify_cli(out)
    assert v.returncode == 1, v.stdout
    problems = [ln for ln in v.stdout.splitlines() if ln.startswith("PROBLEM")]
    assert len(problems) == 2, problems  # one per missing stream, nothing else
    assert any("books BTC-USTD" in p and "60018" in p for p in problems)
    assert any("trades BTC-USTD" in p and "60018" in p for p in problems)
    rep = verify(out)
    assert rep.channels["books"]["instruments"]["BTC-USDT"]["gaps"] == 0


# -- in process: outages on a fake clock, a disconnect proven lossless -------------------------
FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
        "ping_interval": 5.0, "pong_timeout": 5.0, "close_timeout": 0.5, "open_timeout": 2.0,
        "splice_wait": 1.0, "rest_retry_base": 0.05, "rest_retry_max": 0.2, "silence_s": 30.0}
SUBS = [(ch, i) for i in INSTS for ch in ("books", "trades")]


class FakeClock:
    """Nanoseconds that move only when the test says so."""

    def __init__(self) -> None:
        self.ns = 1_800_000_000 * 10**9

    def __call__(self) -> int:
        return self.ns

    def tick(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


def synced(rec: Recorder) -> bool:
    c = rec.client
    return c is not None and all(c.mode(ch, i) == "live" and rec.per_stream[(ch, i)] > 0
                                 for ch, i in rec.subscriptions if ch == "books")


async def advance(emu, ms: int, rec: Recorder) -> None:
    await asyncio.to_thread(emu.emulator.advance, ms)
    await asyncio.sleep(0.05)
    await rec.idle(0.2)


def test_a_silent_stream_is_an_outage_on_the_injected_clock(emulator_factory, tmp_path):
    emu = emulator_factory(RandomMarket(seed=5, rate=300, instruments=INSTS), paused=True)
    out = tmp_path / "rec"
    clock = FakeClock()
    t0 = clock.ns

    async def main():
        rec = Recorder(out, SUBS, ws_url=emu.ws_url, rest_url=emu.rest_url, rotate=0.3,
                       outage_after=10.0, clock=clock, **FAST)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: synced(rec), what="initial snapshots")
        await advance(emu, 500, rec)
        clock.tick(9.0)  # not yet
        await asyncio.sleep(0.2)
        assert rec.outages.count == 0
        clock.tick(2.0)  # 11 s without a book message: both books are out
        await rec.until(lambda: rec.outages.count == 2, what="two outages")
        assert "outages 2 (silent now: books " in format_status(rec.status())
        await advance(emu, 500, rec)  # data again: they end
        await rec.until(lambda: not rec.outages.open, what="outages ended")
        clock.tick(30.0)  # silent again, until the end
        await rec.until(lambda: rec.outages.count == 4, what="two more outages")
        rec.stop("test done")
        return await task

    result = run(main(), timeout=30)
    assert result.outages == 4
    outs = Recording(out).manifest["live"]["outages"]
    assert sorted((o["channel"], o["inst"]) for o in outs) == sorted(
        [("books", i) for i in INSTS] * 2)  # trades have no threshold by default
    first = [o for o in outs if o["end"] is not None]
    last = [o for o in outs if o["end"] is None]
    assert len(first) == len(last) == 2
    for o in first:  # from the last message before to the first after, on the fake clock
        assert o["seconds"] == 11.0 and o["threshold_s"] == 10.0
        assert o["start_ns"] == t0
    for o in last:  # still silent when the recording closed
        assert o["seconds"] == 30.0
    rep = verify(out)
    # one problem per incident (overlapping outages), naming every silent stream
    assert len(rep.problems) == 2, rep.problems
    for p in rep.problems:
        assert p.startswith("outage from ") and "books BTC-USDT" in p and "books ETH-USDT" in p
    assert "still silent at the end" in rep.problems[1]
    log = (out / "record.log").read_text()
    assert "outage since" in log and "data again after 11.000 s" in log


def test_a_disconnect_that_missed_nothing_is_proven_lossless(emulator_factory, tmp_path):
    emu = emulator_factory(RandomMarket(seed=5, rate=300, instruments=INSTS), paused=True)
    out = tmp_path / "rec"

    async def main():
        rec = Recorder(out, SUBS, ws_url=emu.ws_url, rest_url=emu.rest_url, rotate=0.3,
                       **FAST)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: synced(rec), what="initial snapshots")
        await advance(emu, 500, rec)
        # the line goes down while the market stands still (the emulator is paused)
        await asyncio.to_thread(emu.emulator._call, emu.emulator.connections[0].abort)
        await rec.until(lambda: rec.reconnects == 1 and synced(rec), what="reconnected")
        await rec.idle(0.2)
        await advance(emu, 500, rec)
        rec.stop("test done")
        return await task

    run(main(), timeout=30)
    (b,) = Recording(out).manifest["live"]["breaks"]
    assert b["kind"] == "disconnect" and sorted(map(tuple, b["streams"])) == sorted(SUBS)
    assert {k: v["lossless"] for k, v in b["resumed"].items()} == {
        f"{ch}:{i}": True for ch, i in SUBS}
    assert "did not change while disconnected" in b["resumed"]["trades:BTC-USDT"]["detail"]
    rep = verify(out)
    assert rep.ok, rep.problems
    assert any("resumed with nothing missed" in w for w in rep.warnings), rep.warnings


def _record(emu, out, subs, seconds: float, **options):
    async def main():
        rec = Recorder(out, subs, ws_url=emu.ws_url, rest_url=emu.rest_url, rotate=0.3,
                       **{**FAST, **options})
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: rec.events > 0, what="start")
        await asyncio.sleep(seconds)
        rec.stop("test done")
        return await task

    return run(main(), timeout=30)


def test_a_requested_stream_that_never_arrived_fails_verify(emulator_factory, tmp_path):
    # a market with a book and no trade at all: the trades stream is subscribed, never fed
    market = ScriptedMarket({"BTC-USDT": ([["100", "1", "1"]], [["101", "2", "1"]])})
    emu = emulator_factory(market, speed=10)
    out = tmp_path / "rec"
    res = _record(emu, out, [("books", "BTC-USDT"), ("trades", "BTC-USDT")], 0.5)
    # shorter than an outage, yet the run itself names the stream that sent nothing
    assert res.silent == ["trades BTC-USDT"] and "NO DATA from trades BTC-USDT" in res.summary()
    m = Recording(out).manifest
    assert m["requested"] == [{"channel": "books", "inst": "BTC-USDT"},
                              {"channel": "trades", "inst": "BTC-USDT"}]
    assert "trades" not in m["channels"] and m["live"]["refused"] == []
    rep = verify(out)
    assert rep.problems == ["trades BTC-USDT: requested, no messages arrived"]


def test_a_book_that_never_became_valid_fails_verify(emulator_factory, tmp_path):
    # no in-band snapshot and every REST bootstrap fails: updates, but never a book
    emu = emulator_factory(RandomMarket(seed=5, rate=300, instruments=["BTC-USDT"]),
                           speed=10, snapshot=False,
                           faults=(FaultSpec(Fault.REST_ERROR, count=10**6),))
    out = tmp_path / "rec"
    _record(emu, out, [("books", "BTC-USDT")], 1.5)
    rep = verify(out)
    assert "books BTC-USDT: requested" in "".join(rep.problems)
    assert any(p.endswith("messages but never a valid book (no snapshot)")
               for p in rep.problems), rep.problems


def test_every_subscription_refused_fails_even_with_allow_partial(emu, tmp_path):
    with pytest.raises(RefusedError, match="every subscription was refused"):
        _record(emu, tmp_path / "rec", [("books", "BTC-USTD"), ("books", "ETH-USTD")], 2.0,
                allow_partial=True)


def test_a_stream_refused_later_lets_the_others_record_on_and_fails_at_the_end(tmp_path):
    """A server that accepts trades of two instruments, drops the line, then refuses one
    of them (as if delisted): the night goes on for the other, and the run still fails."""
    from websockets.asyncio.server import serve

    conns = []

    def trade(inst: str, tid: int) -> str:
        return orjson.dumps({"arg": {"channel": "trades", "instId": inst}, "data": [
            {"instId": inst, "tradeId": str(tid), "px": "100", "sz": "1", "side": "buy",
             "ts": str(1_767_225_600_000 + tid), "count": "1"}]}).decode()

    async def handler(ws):
        n = len(conns)
        conns.append(ws)
        async for req in subscribe_requests(ws):
            for arg in req["args"]:
                if n > 0 and arg["instId"] == "AAA-USDT":
                    await ws.send(orjson.dumps({"id": req["id"], "event": "error",
                                                "code": "60018", "msg": "Wrong URL or channel:"
                                                "trades,instId:AAA-USDT doesn't exist",
                                                "connId": "c"}).decode())
                else:
                    await ws.send(orjson.dumps({"id": req["id"], "event": "subscribe",
                                                "arg": arg, "connId": "c"}).decode())
            for i in range(5):
                for inst in ("AAA-USDT", "BBB-USDT") if n == 0 else ("BBB-USDT",):
                    await ws.send(trade(inst, 100 * n + i))
            if n == 0:
                ws.transport.abort()  # the line goes down
                return

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            rec = Recorder(tmp_path / "rec", [("trades", "AAA-USDT"), ("trades", "BBB-USDT")],
                           ws_url=f"ws://127.0.0.1:{port}/ws", rotate=0.3, metadata=False,
                           **FAST)
            task = asyncio.create_task(rec.run())
            await rec.until(lambda: rec.refused, what="the refusal")
            await asyncio.sleep(0.3)
            assert not task.done()  # still recording the other stream
            rec.stop("test done")
            with pytest.raises(RefusedError, match="trades AAA-USDT: 60018"):
                await task
            return rec

    rec = run(main(), timeout=30)
    assert rec.per_stream[("trades", "BBB-USDT")] == 10  # before and after the refusal
    m = Recording(tmp_path / "rec").manifest
    assert m["complete"] and [r["inst"] for r in m["live"]["refused"]] == ["AAA-USDT"]
    assert "recorded until now, the other streams go on" in (
        tmp_path / "rec" / "record.log").read_text()
