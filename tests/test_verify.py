"""verify(): replaying recordings, real and synthetic, good and broken."""

from __future__ import annotations

import json

import pytest

from simlab.store import Recording, RecordingError, RecordingWriter, format_report, verify

T = 1_652_459_225 * 10**9


def record(path, frames, **kw):
    with RecordingWriter(path, {"importer": "test"}, **kw) as w:
        for i, p in enumerate(frames):
            w.add(p, T + i * 1000)
    return path


def book_stats(rep, inst, channel="books"):
    return rep.channels[channel]["instruments"][inst]


# -- the real capture: published counts -----------------------------------------------------
def test_real_capture_all_checksums_verify(capture_recording):
    rep = verify(capture_recording)
    books = rep.channels["books"]
    assert books["kind"] == "book"
    assert books["total"]["checksum_verified"] == 290
    assert books["total"]["checksum_failed"] == 0
    assert {i: s["messages"] for i, s in books["instruments"].items()} == {
        "BTC-USDT": 98, "BTC-USD-220527": 99, "UNI-USD-SWAP": 93}
    assert {i: s["snapshots"] for i, s in books["instruments"].items()} == {
        "BTC-USDT": 1, "BTC-USD-220527": 1, "UNI-USD-SWAP": 1}
    assert books["total"]["gaps"] == 0 and books["total"]["crossed"] == 0
    trades = rep.channels["trades"]["instruments"]
    assert {i: c["rows"] for i, c in trades.items()} == {
        "BTC-USDT": 69, "BTC-USD-220527": 4, "UNI-USD-SWAP": 1}
    assert rep.channels["tickers"]["kind"] == "other"
    assert rep.control == {"subscribe": 18}
    assert rep.frames == 410 and rep.malformed["count"] == 0
    assert rep.stray_files == [] and rep.ok and rep.complete
    # timestamps are the exchange's, in ms
    assert books["instruments"]["BTC-USDT"]["first_ts"] == 1_652_459_225_381
    json.dumps(rep.as_dict())  # serialisable


def test_a_corrupted_real_update_fails_its_checksum(capture_recording, tmp_path):
    rec = Recording(capture_recording)
    frames = list(rec.iter_raw())
    i = next(k for k, f in enumerate(frames)
             if b'"instId":"BTC-USDT"' in f.payload and b'"action":"update"' in f.payload)
    msg = json.loads(frames[i].payload)
    lvl = (msg["data"][0]["asks"] or msg["data"][0]["bids"])[0]
    lvl[1] = str(float(lvl[1]) + 1)  # one size changed: the book no longer matches
    payloads = [f.payload for f in frames]
    payloads[i] = json.dumps(msg, separators=(",", ":")).encode()
    rep = verify(record(tmp_path / "r", payloads))
    st = book_stats(rep, "BTC-USDT")
    assert st["checksum_failed"] == 1
    assert st["no_snapshot"] > 0  # the book is invalid until a new snapshot
    assert not rep.ok
    assert any("checksum failures" in p and "BTC-USDT" in p for p in rep.problems)
    assert rep.events[0]["kind"] == "checksum_failed" and rep.events[0]["arrival"] == i


# -- synthetic chains ------------------------------------------------------------------------
def test_heartbeat_and_reset_are_not_gaps(tmp_path, wire):
    f = wire.BookFeed("X")
    frames = [f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")]),
              f.update([wire.lv("1", "3")], []), f.heartbeat(), f.reset(5),
              f.update([], [wire.lv("2", "4")])]
    rep = verify(record(tmp_path / "r", frames))
    st = book_stats(rep, "X")
    assert (st["messages"], st["snapshots"], st["updates"], st["heartbeats"], st["resets"],
            st["gaps"], st["checksum_verified"]) == (5, 1, 4, 1, 1, 0, 5)
    assert rep.ok


def test_gap_is_reported_and_recorded_at_import(tmp_path, wire):
    f = wire.BookFeed("X")
    frames = [f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")]),
              f.update([wire.lv("1", "3")], [], gap=True),
              f.update([wire.lv("1", "4")], [])]
    path = record(tmp_path / "r", frames)
    rep = verify(path)
    st = book_stats(rep, "X")
    assert (st["gaps"], st["no_snapshot"]) == (1, 1)
    assert not rep.ok and any("sequence gaps" in p for p in rep.problems)
    gap = rep.events[0]
    assert (gap["kind"], gap["arrival"], gap["expected_prev"]) == ("gap", 1, 110)
    m = Recording(path).manifest
    # one event for the break; the updates it made unusable are counted, not listed
    assert [e["kind"] for e in m["events"]] == ["gap"]
    assert m["events"][0]["prev_seq_id"] == 113


def test_update_before_any_snapshot(tmp_path, wire):
    f = wire.BookFeed("X")
    f.book.apply_snapshot([wire.lv("1", "1")], [])
    frames = [f.update([wire.lv("1", "2")], []), f.update([wire.lv("1", "3")], []),
              f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")])]
    rep = verify(record(tmp_path / "r", frames))
    st = book_stats(rep, "X")
    assert (st["no_snapshot"], st["snapshots"], st["checksum_verified"]) == (2, 1, 1)
    assert not rep.ok
    assert "X: 2 updates without a valid snapshot" in " ".join(rep.problems)
    # one event for the run, not one per message
    assert [e["kind"] for e in rep.events] == ["no_snapshot"]


def test_bad_frames_are_counted_not_fatal(tmp_path, wire):
    f = wire.BookFeed("X")
    snap = f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")])
    frames = [snap,
              b'{"arg":{"channel":"books"',                                    # truncated
              wire.dumps({"arg": {"channel": "nonsense", "instId": "X"}, "data": [{}]}),
              wire.dumps({"event": "error", "code": "60012", "msg": "bad"}),
              b"pong"]
    rep = verify(record(tmp_path / "r", frames))
    assert rep.malformed["count"] == 1
    assert rep.malformed["examples"][0]["payload"] == '{"arg":{"channel":"books"'
    assert rep.channels["nonsense"]["kind"] == "unknown"
    assert rep.control == {"error 60012": 1, "pong": 1}
    assert rep.ok  # warnings only
    assert any("malformed" in w for w in rep.warnings)
    assert any("unknown channel 'nonsense'" in w for w in rep.warnings)


def test_non_numeric_price_is_malformed_and_rejected(tmp_path, wire):
    f = wire.BookFeed("X")
    frames = [f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")])]
    bad = f.update([wire.lv("1", "2")], []).replace(b'["1","2"', b'["one","2"')
    frames += [bad, f.update([wire.lv("1", "3")], [])]
    rep = verify(record(tmp_path / "r", frames))
    st = book_stats(rep, "X")
    assert rep.malformed["count"] == 1
    assert "'one'" in next(iter(rep.malformed["reasons"]))
    # kept raw but not normalised (malformed), refused by the book, which is then invalid
    assert (st["rejected"], st["no_snapshot"], st["gaps"]) == (1, 1, 0)
    (ev,) = rep.events
    assert (ev["kind"], ev["arrival"]) == ("rejected", 1) and "'one'" in ev["detail"]
    assert st["checksum_verified"] == 1 and not rep.ok


# -- files ---------------------------------------------------------------------------------
def test_stray_and_temporary_files_are_reported(capture_recording, tmp_path):
    import shutil

    path = tmp_path / "r"
    shutil.copytree(capture_recording, path)
    (path / "raw" / "notes.txt").write_text("hello")
    part = next((path / "levels").rglob("part-*.parquet")).parent
    (part / ".part-000001.parquet.tmp").write_bytes(b"half")
    (path / "notes.txt").write_text("beside the datasets")
    rep = verify(path)
    hidden = (part / ".part-000001.parquet.tmp").relative_to(path).as_posix()
    assert rep.stray_files == sorted(["notes.txt", "raw/notes.txt", hidden])
    # hidden and top-level leftovers: no reader sees them
    assert any("2 files not listed in the manifest (hidden" in w for w in rep.warnings)
    # in a dataset directory, pandas / DuckDB / pyarrow read what simlab ignores
    (problem,) = rep.problems
    assert "1 files in the dataset directories are not listed" in problem
    assert "raw/notes.txt" in problem and "pandas" in problem
    (path / "raw" / "notes.txt").unlink()
    assert verify(path).ok


def test_listed_raw_file_not_parquet_is_unusable(tmp_path, wire):
    path = record(tmp_path / "r", [wire.subscribe("books", "X")])
    entry = Recording(path).files("raw")[0]["path"]
    (path / entry).write_bytes(b"not parquet at all")
    with pytest.raises(RecordingError, match="not a readable Parquet file") as e:
        verify(path)
    assert entry in str(e.value)


def test_damaged_derived_file_is_a_problem(tmp_path, wire):
    f = wire.BookFeed("X")
    path = record(tmp_path / "r", [f.snapshot([wire.lv("1", "1")], [])])
    entry = Recording(path).files("levels")[0]["path"]
    (path / entry).write_bytes(b"junk")
    rep = verify(path)
    assert not rep.ok and any(entry in p and "simlab rebuild" in p for p in rep.problems)


def test_missing_raw_part_breaks_arrival_order(tmp_path, wire):
    frames = [wire.subscribe("books", "X"), b"pong", wire.subscribe("books", "Y")]
    path = record(tmp_path / "r", frames, flush_rows=1)
    m = Recording(path).manifest
    m["files"] = [f for f in m["files"] if not (f["dataset"] == "raw"
                                                 and f["arrival_min"] == 1)]
    (path / "manifest.json").write_text(json.dumps(m))
    rep = verify(path)
    assert not rep.ok
    assert any("arrival 2 where 1 was expected (1 missing)" in p for p in rep.problems)
    assert any("2 raw frames, manifest says 3" in p for p in rep.problems)


def test_incomplete_recording_is_a_warning(tmp_path, wire):
    w = RecordingWriter(tmp_path / "r", flush_rows=1)
    w.add(wire.trade("X", "1", "10", "1", "buy", wire.T0_MS), T)
    rep = verify(tmp_path / "r")
    assert rep.ok and not rep.complete
    assert any("not closed cleanly" in x for x in rep.warnings)


def test_text_report_is_an_aligned_table(capture_recording):
    text = format_report(verify(capture_recording))
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("channel  inst"))
    row = next(ln for ln in lines if ln.startswith("books") and "BTC-USDT " in ln)
    assert header.index("last ts") == row.index("2022-05-13 16:27:16.096")
    cks = header.index("cks_ok") + len("cks_ok")
    assert row[:cks].endswith(" 98")
    assert lines[-1] == "OK"


# -- every file read in full; --quick reads footers -------------------------------------------
def _deep_book(wire, levels=400):
    f = wire.BookFeed("X")
    bids = [wire.lv(f"{1000 - i * 0.5:.1f}", f"{1 + i % 7}.{i % 10}") for i in range(levels)]
    asks = [wire.lv(f"{1001 + i * 0.5:.1f}", f"{2 + i % 5}.{i % 10}") for i in range(levels)]
    frames = [f.snapshot(bids, asks)]
    frames += [f.update([wire.lv(f"{1000 - i * 0.5:.1f}", f"{i % 9}.5")], [])
               for i in range(50)]
    return frames


def _flip_middle(path, n=64):
    """Flip ``n`` bytes in the middle of a Parquet file, well before its footer."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    mid = len(data) // 2
    assert mid + n < len(data) - footer, "the file is too small to damage its middle"
    for i in range(mid, mid + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_levels_file_fail_and_name_it(tmp_path, wire):
    path = record(tmp_path / "r", _deep_book(wire))
    assert verify(path).ok
    (entry,) = Recording(path).files("levels")
    _flip_middle(path / entry["path"])
    rep = verify(path)  # used to read only the footer: OK
    assert not rep.ok and not rep.quick
    (problem,) = rep.problems
    assert entry["path"] in problem and "damaged" in problem and "simlab rebuild" in problem
    quick = verify(path, quick=True)
    assert quick.ok and quick.quick
    text = format_report(quick)
    assert "QUICK check: levels/trades files checked by their footers only" in text
    assert "every file read in full" in format_report(rep)


def test_verify_cli_quick(tmp_path, wire, capsys):
    from simlab.cli import main

    path = record(tmp_path / "r", _deep_book(wire))
    _flip_middle(path / Recording(path).files("levels")[0]["path"])
    assert main(["verify", str(path)]) == 1
    assert "damaged Parquet file" in capsys.readouterr().out
    assert main(["verify", "--quick", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["quick"] is True


def test_flipped_bytes_in_a_raw_file_make_it_unusable(tmp_path, wire):
    path = record(tmp_path / "r", _deep_book(wire))
    (entry,) = Recording(path).files("raw", channel="books")
    _flip_middle(path / entry["path"], 16)
    with pytest.raises(RecordingError, match="damaged Parquet file") as e:
        verify(path, quick=True)
    assert entry["path"] in str(e.value)


def test_levels_rows_that_raw_does_not_give_are_a_problem(tmp_path, wire):
    # a rotation killed by the old writer left raw rows whose levels rows did not exist
    f = wire.BookFeed("X")
    frames = [f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")]),
              f.update([wire.lv("1", "2")], []), f.update([], [wire.lv("2", "3")])]
    path = record(tmp_path / "r", frames, flush_rows=3)
    m = json.loads((path / "manifest.json").read_text())
    gone = [e for e in m["files"] if e["dataset"] == "levels"][-1]
    m["files"].remove(gone)
    m["rows"]["levels"] -= gone["rows"]
    (path / gone["path"]).unlink()
    (path / "manifest.json").write_text(json.dumps(m))
    rep = verify(path)
    assert any(p.startswith("levels books X: 2 rows listed, the raw frames give 4")
               for p in rep.problems), rep.problems


def test_listed_rows_must_add_up(tmp_path, wire):
    path = record(tmp_path / "r", [wire.trade("X", "1", "10", "1", "buy", wire.T0_MS)])
    m = json.loads((path / "manifest.json").read_text())
    m["rows"]["trades"] = 5
    (path / "manifest.json").write_text(json.dumps(m))
    assert any("lists 1 trades rows in its files but counts 5 (rows.trades)" in p
               for p in verify(path).problems)


# -- empty and malformed recordings ---------------------------------------------------------
def test_empty_recording_fails(tmp_path):
    path = record(tmp_path / "r", [])
    rep = verify(path)
    assert rep.problems == ["the recording is empty: no frames"]


def test_only_control_frames_is_no_data(tmp_path, wire):
    rep = verify(record(tmp_path / "r", [wire.subscribe("books", "X"), b"pong"]))
    assert rep.problems == ["no market data: its 2 frames are control frames (0 malformed)"]


def test_random_bytes_fail(tmp_path):
    import random

    rng = random.Random(15)
    noise = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    path = record(tmp_path / "r", [ln for ln in noise.split(b"\n") if ln])
    rep = verify(path)
    n = rep.frames
    assert n > 3000 and rep.malformed["count"] == n
    assert rep.problems == [f"no market data: all {n} frames are malformed"]


@pytest.mark.parametrize("bad,ok", [(6, False), (5, True), (1, True)])
def test_mostly_malformed_fails(tmp_path, wire, bad, ok):
    good = [wire.trade("X", str(i), "10", "1", "buy", wire.T0_MS + i) for i in range(10 - bad)]
    rep = verify(record(tmp_path / "r", good + [b"\x00garbage"] * bad))
    assert rep.ok is ok
    if not ok:
        assert rep.problems == [f"{bad} of 10 frames ({bad * 10}.0 %) are malformed, more "
                                "than 50%: not the feed it claims to be"]
    else:
        assert any(f"{bad} malformed frames" in w for w in rep.warnings)


@pytest.mark.parametrize("streams, problem", [
    ([["books", "BTC-USDT"]], True),        # cut a stream, no lossless verdict
    ([], False),                            # carried no stream: nothing lost on it
    ([["books"]], True),                    # damaged entries prove nothing
    (["books:BTC-USDT"], True),
    (None, True),
])
def test_a_disconnect_is_cleared_only_by_its_streams_verdicts(streams, problem):
    from simlab.store.verify import VerifyReport, _disconnect

    rep = VerifyReport("rec", True, "okx-ws")
    b = {"conn": 1, "time": "2026-01-01T00:00:00Z", "code": 1006, "streams": streams}
    _disconnect(rep, b)
    assert bool(rep.problems) is problem, (rep.problems, rep.warnings)
