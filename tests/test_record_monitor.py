"""The recorder's performance monitor (issue 9): stage latencies of the writer thread, feed
latency and message counts per stream, and resource use, kept in the manifest
(``live.monitor``) at every rotation and at the end, restored by ``Monitor.from_summary`` /
``Recording.monitor()``, and printed by ``simlab record --stats``.

The emulator's simulated clock starts at the wall clock (``start_ms`` = now, ``speed=1``),
so a frame's feed latency is known: the emulator's start-up delay (its clock starts when it
does, a little after ``start_ms``), plus at most a clock tick (10 ms), plus delivery on
loopback; never below zero."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simlab.emulator.testing import RandomMarket, run
from simlab.jsonsafe import json_safe
from simlab.monitor import Monitor
from simlab.record import Recorder
from simlab.store import Recording, verify

INSTS = ("BTC-USDT", "ETH-USDT")
SUBS = [(ch, i) for i in INSTS for ch in ("books", "trades")]
STAGES = ["queue", "parse", "check", "store", "write"]
FAST = {"snapshot_timeout": 0.5, "backoff_base": 0.05, "backoff_max": 0.2,
        "close_timeout": 0.5, "open_timeout": 2.0}
#: Slack on top of the emulator's start-up delay for a frame's feed latency: a clock tick,
#: delivery, and a busy 2-core machine.
SLACK_MS = 500


@pytest.fixture
def emu(emulator_factory):
    """An emulator whose simulated time is the wall clock (behind it by its start-up delay,
    :attr:`offset_ms`, an upper bound)."""
    start_ms = time.time_ns() // 1_000_000
    e = emulator_factory(RandomMarket(seed=5, rate=300, instruments=list(INSTS),
                                      start_ms=start_ms), speed=1)
    e.offset_ms = time.time_ns() // 1_000_000 - start_ms
    return e


def strict_json(path: Path) -> dict:
    """The file as JSON, refusing ``NaN``/``Infinity`` (not JSON, though Python writes them)."""
    def refuse(c: str):
        raise ValueError(f"{path}: {c} is not valid JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def record(emu, out: Path, duration: float, **options) -> tuple:
    """Record for ``duration`` s; also the manifests seen at rotations on the way."""
    seen: list[dict] = []

    async def main():
        rec = Recorder(out, SUBS, ws_url=emu.ws_url, rest_url=emu.rest_url,
                       duration=duration, **{"rotate": 0.5, "status_interval": 0.2, **FAST,
                                             **options})
        task = asyncio.create_task(rec.run())
        while not task.done():
            await asyncio.sleep(0.15)
            if rec.rotations >= 1 and len(seen) < 3:
                seen.append(strict_json(out / "manifest.json"))
        return rec, await task

    rec, res = run(main(), timeout=30)
    return rec, res, seen


def test_the_manifest_keeps_the_monitor(emu, tmp_path):
    out = tmp_path / "rec"
    _, res, seen = record(emu, out, 3.0)
    m = strict_json(out / "manifest.json")  # valid JSON: no NaN anywhere
    assert m["complete"] is True and res.dropped == 0
    mon = m["live"]["monitor"]
    st = mon["stages"]
    assert list(st) == STAGES
    # one row per frame written: parse, store and queue for every frame, check for books
    frames = m["arrivals"]
    assert frames == res.frames > 100
    assert st["parse"]["count"] == st["store"]["count"] == st["queue"]["count"] == frames
    assert st["check"]["count"] == m["channels"]["books"]["messages"] > 10
    # a write per rotation (and per flush of the buffers, if any)
    assert st["write"]["count"] >= m["live"]["recorder"]["rotations"] >= 6
    for name in STAGES:
        s = st[name]
        assert s["negative"] == 0, name
        assert 0 < s["min_us"] <= s["p50_us"] <= s["p99_us"] <= s["max_us"], (name, s)
    # message counts per stream are the manifest's
    got = {k: v["messages"] for k, v in mon["streams"].items()}
    want = {f"{ch}:{i}": n for ch, c in m["channels"].items()
            for i, n in c["instruments"].items()}
    assert got == want and set(got) == {f"{ch}:{i}" for ch, i in SUBS}
    assert mon["events"] == sum(want.values())
    # feed latency per subscribed instrument, every data frame carries an exchange time
    fl = mon["feed_latency"]
    assert set(fl) == set(INSTS)
    for inst in INSTS:
        n = sum(v for k, v in got.items() if k.endswith(f":{inst}"))
        f = fl[inst]
        assert f["count"] == n and f["negative"] == 0, (inst, f)
        assert 0 < f["p50_ms"] < emu.offset_ms + SLACK_MS, (inst, f, emu.offset_ms)
    # resources, sampled every status_interval
    r = mon["resources"]
    assert r["samples"] >= 5 and r["rss_mb_peak"] > 0 and r["threads_max"] >= 2, r
    # at every rotation the monitor is there, counting exactly the frames written so far
    assert len(seen) >= 2
    for s in seen:
        sm = s["live"]["monitor"]
        assert sm["stages"]["parse"]["count"] == s["arrivals"] > 0
        assert sm["stages"]["write"]["count"] >= s["live"]["recorder"]["rotations"]
    assert seen[-1]["arrivals"] < frames
    # the result's monitor is what the manifest says; from_summary restores the histograms
    assert json_safe(res.monitor.summary()) == mon
    back = Recording(out).monitor()
    assert isinstance(back, Monitor)
    s2 = back.summary()
    assert s2["stages"] == mon["stages"] and s2["feed_latency"] == mon["feed_latency"]
    assert {k: v["messages"] for k, v in s2["streams"].items()} == got
    assert "stage latency (us)" in back.format()
    res_rows = back.frame().query("group == 'resource'").set_index("name")
    assert res_rows.loc["rss", "max"] == pytest.approx(r["rss_mb_peak"], abs=1e-3)
    assert verify(out).ok  # the new manifest section leaves the recording valid


def test_monitor_off_or_your_own(emu, tmp_path):
    rec, res, _ = record(emu, tmp_path / "off", 1.0, monitor=False)
    assert rec.monitor is None and res.monitor is None
    assert "monitor" not in Recording(tmp_path / "off").manifest["live"]
    assert Recording(tmp_path / "off").monitor() is None

    mine = Monitor(resources=False)
    rec, res, _ = record(emu, tmp_path / "mine", 1.0, monitor=mine)
    assert rec.monitor is mine and res.monitor is mine
    m = Recording(tmp_path / "mine").manifest
    assert mine.stages["parse"].count == m["arrivals"] > 0
    assert m["live"]["monitor"]["resources"] is None
    with pytest.raises(TypeError, match="monitor must be"):
        Recorder(tmp_path / "x", SUBS, monitor="yes")


def test_record_stats_prints_the_monitor_without_pandas(emu, tmp_path):
    out = tmp_path / "rec"
    # main() in a process of its own: `simlab record` refuses pandas (without_pandas()),
    # so the recording and --stats must not need it, and it must never be loaded
    code = ("import sys; from simlab.cli import main; "
            "rc = main(sys.argv[1:]); print('pandas refused:', 'pandas' not in sys.modules); "
            "sys.exit(rc)")
    r = subprocess.run(
        [sys.executable, "-c", code, "record", "--inst", ",".join(INSTS), "--channels",
         "books,trades", "--out", str(out), "--duration", "2s", "--rotate", "0.5s",
         "--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--status-interval", "0.2",
         "--stats", "--client-option", "close_timeout=0.5"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert "pandas refused: True" in r.stdout, r.stdout
    err = r.stderr
    summary, stats = err.index("recorded "), err.index("performance (record)")
    assert summary < stats  # after the summary
    table = err[stats:]
    assert "stage latency (us)" in table and "feed latency (ms)" in table
    m = Recording(out).manifest
    parse = next(line for line in table.splitlines() if line.startswith("parse "))
    assert parse.split()[1] == f"{m['arrivals']:,}"  # the count column: every frame
    for name in STAGES:
        assert any(line.startswith(f"{name} ") for line in table.splitlines()), name
    assert "RSS" in table and "threads" in table
    # without --stats: the summary only
    r = subprocess.run(
        [sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT", "--out",
         str(tmp_path / "plain"), "--duration", "1s", "--ws-url", emu.ws_url, "--rest-url",
         emu.rest_url, "--status-interval", "0", "--client-option", "close_timeout=0.5"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    assert "recorded " in r.stderr and "stage latency" not in r.stderr
