"""The live recorder stores each frame as the live client decoded it (issue 16): the
writer thread parses no frame the client parsed and applies no book frame again; the
manifest's integrity events and summary are the client's, and they are what ``simlab
verify`` finds in the stored files, and what the format writer's own book check (the
importers' path, the recorder's before) gives for the same frames."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
from test_record import INSTS, advance, faulted, market, recorder, synced

import simlab.okx.normalize
import simlab.okx.parse
import simlab.okx.rest_parse
from simlab.emulator import Fault
from simlab.emulator.testing import run
from simlab.okx.integrity import BookIntegrity, BookSync
from simlab.store import Recording, verify
from simlab.store.writer import RecordingWriter

WRITER_THREAD = "record-writer"
PARSERS = {simlab.okx.parse: ("parse_frame", "parse_history_line"),
           simlab.okx.normalize: ("parse_frame", "parse_history_line", "parse_rest_book"),
           simlab.okx.rest_parse: ("parse_rest_book",)}


def count_calls(monkeypatch, calls: Counter, owner, name: str, label: str = "") -> None:
    """Count each call of ``owner.name`` (as ``label``) by the thread it runs on."""
    fn = getattr(owner, name)

    def counted(*args, **kwargs):
        calls[(label or name, threading.current_thread().name)] += 1
        return fn(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def on_thread(calls: Counter, thread: str) -> dict[str, int]:
    return {name: n for (name, t), n in calls.items() if t == thread}


def checked_again(out) -> dict:
    """The manifest the format writer with its own book check gives for the stored frames
    (what the recorder's writer thread computed before issue 16)."""
    w = RecordingWriter(Path(tempfile.mkdtemp()) / "again", check_books=True)
    for f in Recording(out).iter_raw():
        w.add_frame(f)
    w.close()
    return w.manifest


def book_check(m: dict) -> dict:
    """A manifest's book-integrity record: the summary and the events of the book check
    (client events carry their ``recv_ns``), malformed frames and counts beside."""
    return {"integrity": m["integrity"], "malformed": m["malformed"],
            "channels": m["channels"], "control": m["control"],
            "events": [e for e in m["events"] if "recv_ns" not in e
                       and e["kind"] != "queue_overflow"]}


def test_a_live_frame_is_parsed_and_applied_once(emulator_factory, tmp_path, monkeypatch):
    calls: Counter = Counter()
    for module, names in PARSERS.items():
        for name in names:
            count_calls(monkeypatch, calls, module, name)
    count_calls(monkeypatch, calls, BookIntegrity, "apply", "BookIntegrity.apply")
    count_calls(monkeypatch, calls, BookSync, "apply", "BookSync.apply")
    _emu, out, _info = faulted(emulator_factory, tmp_path, Fault.GAP, inst="BTC-USDT", after=3)
    during = Counter(calls)
    # the writer thread parsed nothing and applied nothing ...
    assert on_thread(during, WRITER_THREAD) == {}
    # ... while the client applied every stored book frame (its REST snapshots too) once
    rec = Recording(out)
    books = rec.raw_table(channel="books").num_rows
    assert during[("BookIntegrity.apply", "MainThread")] == books > 50
    assert sum(st["messages"] for st in rec.manifest["integrity"]["books"].values()) == books
    # the counters see the store's parse: verify parses each stored frame through them
    verify(out)
    assert calls[("parse_frame", "MainThread")] - during[("parse_frame", "MainThread")] \
        >= rec.manifest["arrivals"]


@pytest.mark.parametrize("fault", [Fault.GAP, Fault.CHECKSUM])
def test_the_manifest_says_what_verify_finds(emulator_factory, tmp_path, fault):
    emu = emulator_factory(market(), paused=True)
    out = tmp_path / "rec"

    async def main():
        rec = recorder(emu, out)
        task = asyncio.create_task(rec.run())
        await rec.until(lambda: synced(rec), what="initial snapshots")
        await advance(emu, 500, rec)
        await asyncio.to_thread(emu.emulator.inject, fault, inst="BTC-USDT", after=2)
        for _ in range(8):
            # a book push at a time, resynced before the next: no update comes while the
            # stream resyncs (verify would count it stale, the client without a snapshot)
            await advance(emu, 100, rec)
            await rec.until(lambda: synced(rec), what="resynced books")
        rec.stop("test done")
        return await task

    run(main(), timeout=40)
    m = Recording(out).manifest
    rep = verify(out)
    kind = "checksum_failed" if fault is Fault.CHECKSUM else "gap"
    mine = book_check(m)
    assert [(e["kind"], e["inst"]) for e in mine["events"]] == [(kind, "BTC-USDT")]
    assert mine["events"] == rep.events  # where, with the same seqIds and detail
    assert rep.channels["books"]["instruments"]["BTC-USDT"]["stale"] == 0
    assert m["integrity"] == {ch: e["instruments"] for ch, e in rep.channels.items()
                              if e["kind"] == "book"}
    assert set(m["integrity"]["books"]) == set(INSTS)
    # the recorder's manifest before issue 16: the writer checking the stored frames itself
    assert mine == book_check(checked_again(out))


def test_a_hostile_notice_is_one_malformed_frame_of_a_recording_that_goes_on(tmp_path):
    """The issue's check, as a user runs it: ``simlab serve`` with the fault, ``simlab
    record`` for 5 s."""
    repo = Path(__file__).resolve().parents[1]
    payload = '{"event":"notice","arg":[1],"code":"1"}'
    serve = subprocess.Popen(
        [sys.executable, "-m", "simlab.cli", "serve", "--fault",
         f"malformed:after=20,payload={payload}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo)
    try:
        lines = [serve.stdout.readline() for _ in range(3)]
        ws_url, rest_url = lines[1].split()[1], lines[2].split()[1]
        out = tmp_path / "rec"
        r = subprocess.run(
            [sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT", "--out",
             str(out), "--duration", "5s", "--ws-url", ws_url, "--rest-url", rest_url,
             "--status-interval", "0"],
            capture_output=True, text=True, timeout=60, cwd=repo)
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=15)
    assert r.returncode == 0, r.stderr
    m = Recording(out).manifest
    assert f"recorded {m['arrivals']} frames" in r.stderr and "1 malformed" in r.stderr
    assert m["complete"] and m["arrivals"] > 40
    assert m["malformed"]["reasons"] == {
        "'arg' must be an object with a 'channel', got a list of 1": 1}
    (bad,) = Recording(out).iter_raw(channel="_malformed")
    assert bad.payload == payload.encode()
    assert book_check(m) == book_check(checked_again(out))
