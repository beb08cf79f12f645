"""Recording format: writer, reader, atomic files, manifest, rebuild."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from simlab.store import Recording, RecordingError, RecordingWriter, rebuild, verify
from simlab.store.reader import UnknownStreamError
from simlab.store.schema import utc_date

NS = 1_000_000


def sample_frames(wire) -> list[bytes]:
    """A small session: subscribe, snapshot, update, heartbeat, trade, pong, junk."""
    f = wire.BookFeed("BTC-USDT")
    g = wire.BookFeed("ETH-USDT", seq=5)
    return [
        wire.subscribe("books", "BTC-USDT"),
        f.snapshot([wire.lv("100.5", "2", 3), wire.lv("100", "1")],
                   [wire.lv("101", "4", 2), wire.lv("102.25", "0.5")]),
        g.snapshot([wire.lv("10", "1")], [wire.lv("11", "1")]),
        f.update([wire.lv("100.5", "0", 0)], [wire.lv("101.5", "3", 1)]),
        f.heartbeat(),
        wire.trade("BTC-USDT", "77", "101", "0.25", "buy", wire.T0_MS + 500),
        b"pong",
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd',
        g.update([], [wire.lv("11", "2", 4)]),
    ]


def write(path, frames, flush_rows=100_000, t0=None, **kw):
    t0 = t0 if t0 is not None else 1_652_459_225 * 10**9
    with RecordingWriter(path, {"importer": "test"}, flush_rows=flush_rows, **kw) as w:
        arrivals = [w.add(p, t0 + i * NS) for i, p in enumerate(frames)]
    return arrivals


def no_tmp(path) -> bool:
    return not list(path.rglob("*.tmp"))


# -- writing and reading back -------------------------------------------------------------
@pytest.mark.parametrize("flush_rows", [1, 3, 100_000])
def test_raw_roundtrip_is_byte_exact_and_totally_ordered(tmp_path, wire, flush_rows):
    frames = sample_frames(wire)
    assert write(tmp_path / "r", frames, flush_rows) == list(range(len(frames)))
    rec = Recording(tmp_path / "r")
    raw = rec.raw_table()
    assert raw.column("arrival").to_pylist() == list(range(len(frames)))
    assert raw.column("payload").to_pylist() == frames
    streamed = list(rec.iter_raw())
    assert [f.arrival for f in streamed] == list(range(len(frames)))
    assert [f.payload for f in streamed] == frames
    assert [f.channel for f in streamed][:3] == ["_event", "books", "books"]
    assert streamed[7].channel == "_malformed"
    assert rec.manifest["complete"] is True
    assert rec.manifest["malformed"]["count"] == 1
    assert no_tmp(tmp_path)


def test_levels_rows_follow_the_wire(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire))
    t = Recording(tmp_path / "r").levels_table(inst="BTC-USDT").to_pylist()
    snap = [r for r in t if r["arrival"] == 1]
    assert [(r["side"], r["price_str"], r["size_str"], r["count"]) for r in snap] == [
        ("bid", "100.5", "2", 3), ("bid", "100", "1", 1),
        ("ask", "101", "4", 2), ("ask", "102.25", "0.5", 1)]
    assert [r["price"] for r in snap] == [100.5, 100.0, 101.0, 102.25]
    assert all(r["snapshot"] and r["prev_seq_id"] == -1 and r["seq_id"] == 110 for r in snap)
    assert snap[0]["checksum"] != 0 and snap[0]["ts_ms"] == wire.T0_MS + 100
    upd = [r for r in t if r["arrival"] == 3]
    assert [(r["side"], r["size"]) for r in upd] == [("bid", 0.0), ("ask", 3.0)]
    assert not upd[0]["snapshot"] and upd[0]["prev_seq_id"] == 110 and upd[0]["seq_id"] == 117
    # the heartbeat keeps exactly one row, levels NULL, so the chain survives
    hb = [r for r in t if r["arrival"] == 4]
    assert len(hb) == 1
    assert (hb[0]["side"], hb[0]["price"], hb[0]["seq_id"], hb[0]["prev_seq_id"]) == (
        None, None, 117, 117)


def test_trades_table(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire))
    t = Recording(tmp_path / "r").trades_table().to_pylist()
    assert len(t) == 1
    r = t[0]
    assert (r["trade_id"], r["side"], r["price"], r["size"], r["price_str"], r["inst"]) == (
        "77", "buy", 101.0, 0.25, "101", "BTC-USDT")
    assert (r["arrival"], r["ts_ms"], r["count"], r["seq_id"]) == (5, wire.T0_MS + 500, None,
                                                                   None)


def test_filters_by_channel_and_instrument(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire), flush_rows=2)
    rec = Recording(tmp_path / "r")
    assert set(rec.levels_table(inst="ETH-USDT").column("inst").to_pylist()) == {"ETH-USDT"}
    assert rec.levels_table(inst="ETH-USDT").column("arrival").to_pylist() == [2, 2, 8]
    assert [f.arrival for f in rec.iter_raw(channel="books", inst="ETH-USDT")] == [2, 8]
    assert rec.raw_table(channel="trades").num_rows == 1
    assert rec.trades_table(inst="ETH-USDT").num_rows == 0  # held, but no trades
    assert rec.levels_table(channel=["books", "trades"], inst=("BTC-USDT",)).num_rows == 7


def test_unknown_instrument_or_channel_names_what_exists(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire), flush_rows=2)
    rec = Recording(tmp_path / "r")
    with pytest.raises(UnknownStreamError, match=r"instrument 'BTC-UDST' is not in the "
                       r"recording .*it has 3 instruments: BTC-USDT, ETH-USDT, _none"):
        rec.levels_table(inst="BTC-UDST")
    with pytest.raises(ValueError, match=r"channel 'book' is not in .*: _event, _malformed, "
                       r"books, trades"):
        rec.iter_raw(channel="book")
    for call in (lambda: rec.files("raw", inst=["ETH-USDT", "XRP-USDT"]),
                 lambda: rec.stream_table("levels", channel="books", inst="XRP-USDT",
                                          columns=["price"]),
                 lambda: rec.table("trades", inst="XRP-USDT")):
        with pytest.raises(UnknownStreamError, match="'XRP-USDT'"):
            call()
    with pytest.raises(TypeError, match="name or a collection of names"):
        rec.levels_table(inst=7)


@pytest.mark.parametrize("call", [
    lambda rec: rec.levels_table("BTC-USDT"),
    lambda rec: rec.trades_table("trades", "BTC-USDT"),
    lambda rec: rec.raw_table("books"),
    lambda rec: rec.iter_raw("books"),
    lambda rec: rec.table("levels", "books"),
    lambda rec: rec.files("levels", "books"),
    lambda rec: rec.stream_table("levels", "books", "BTC-USDT", ["price"]),
])
def test_filters_are_keyword_only(tmp_path, wire, call):
    # levels_table("BTC-USDT") used to filter on the channel "BTC-USDT": 0 rows, no error
    write(tmp_path / "r", sample_frames(wire))
    with pytest.raises(TypeError, match="positional argument"):
        call(Recording(tmp_path / "r"))


def test_plain_pandas_and_pyarrow_read_the_datasets(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire), flush_rows=2)
    rec = Recording(tmp_path / "r")
    levels = pd.read_parquet(tmp_path / "r" / "levels")
    assert len(levels) == rec.manifest["rows"]["levels"] == rec.levels_table().num_rows
    assert set(levels["inst"].astype(str)) == {"BTC-USDT", "ETH-USDT"}
    raw = ds.dataset(tmp_path / "r" / "raw", partitioning="hive").to_table()
    assert sorted(raw.column("payload").to_pylist()) == sorted(sample_frames(wire))
    trades = pq.read_table(tmp_path / "r" / "trades")
    assert trades.column("trade_id").to_pylist() == ["77"]
    files = [f["path"] for f in rec.manifest["files"]]
    assert all(pq.ParquetFile(tmp_path / "r" / p).metadata.row_group(0).column(0).compression
               == "ZSTD" for p in files)


def test_duckdb_reads_levels(tmp_path, wire):
    duckdb = pytest.importorskip("duckdb")  # in the dev extra: present under `make test`
    write(tmp_path / "r", sample_frames(wire))
    glob = str(tmp_path / "r" / "levels" / "**" / "*.parquet")
    src = f"read_parquet('{glob}', hive_partitioning=1)"
    (n,) = duckdb.sql(f"select count(*) from {src}").fetchall()
    assert n[0] == Recording(tmp_path / "r").manifest["rows"]["levels"]
    insts = duckdb.sql(f"select distinct inst from {src} order by inst").fetchall()
    assert [i[0] for i in insts] == ["BTC-USDT", "ETH-USDT"]


def test_polars_reads_trades_and_raw(tmp_path, wire):
    pl = pytest.importorskip("polars")  # in the dev extra: present under `make test`
    frames = sample_frames(wire)
    write(tmp_path / "r", frames)
    trades = pl.read_parquet(str(tmp_path / "r" / "trades" / "**" / "*.parquet"),
                             hive_partitioning=True)
    assert trades["trade_id"].to_list() == ["77"]
    raw = pl.read_parquet(str(tmp_path / "r" / "raw" / "**" / "*.parquet"),
                          hive_partitioning=True).sort("arrival")
    assert raw["payload"].to_list() == list(frames)


def test_partitions_split_by_utc_day(tmp_path, wire):
    midnight = 1_652_486_400 * 10**9  # 2022-05-14 00:00:00 UTC
    frames = [wire.subscribe("books", "X")] * 4
    write(tmp_path / "r", frames, t0=midnight - 2 * NS)
    dates = sorted({f["date"] for f in Recording(tmp_path / "r").manifest["files"]})
    assert dates == ["2022-05-13", "2022-05-14"]
    assert utc_date(midnight - 1) == "2022-05-13" and utc_date(midnight) == "2022-05-14"


def test_odd_channel_names_are_encoded_and_decoded(tmp_path, wire):
    frame = wire.dumps({"arg": {"channel": "weird/ch an", "instId": "A/B"}, "data": [{}]})
    write(tmp_path / "r", [frame])
    rec = Recording(tmp_path / "r")
    (entry,) = rec.files("raw")
    assert entry["path"].startswith("raw/channel=weird%2Fch%20an/inst=A%2FB/")
    t = ds.dataset(tmp_path / "r" / "raw", partitioning="hive").to_table()
    assert t.column("channel").to_pylist() == ["weird/ch an"]
    assert next(rec.iter_raw()).payload == frame


# -- manifest ------------------------------------------------------------------------------
def test_manifest_contents(tmp_path, wire):
    with RecordingWriter(tmp_path / "r", {"importer": "test", "input": "x"}) as w:
        for i, p in enumerate(sample_frames(wire)):
            w.add(p, 1_652_459_225 * 10**9 + i)
        w.set_instrument("BTC-USDT", {"tickSz": "0.1", "lotSz": "0.00000001"})
        w.add_event({"kind": "reconnect", "reason": "test"})
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["format"] == "simlab-recording" and m["format_version"] == 1
    assert m["source"] == {"importer": "test", "input": "x"}
    assert m["instruments"]["BTC-USDT"]["tickSz"] == "0.1"
    assert m["channels"]["books"]["instruments"] == {"BTC-USDT": 3, "ETH-USDT": 2}
    assert m["control"] == {"pong": 1, "subscribe": 1}
    assert m["events"] == [{"arrival": 9, "kind": "reconnect", "reason": "test"}]
    assert m["arrivals"] == 9 and m["rows"]["raw"] == 9
    assert sum(f["rows"] for f in m["files"] if f["dataset"] == "levels") == m["rows"]["levels"]
    assert m["integrity"]["books"]["BTC-USDT"]["checksum_verified"] == 3
    assert m["malformed"]["examples"][0]["arrival"] == 7
    assert m["created"].endswith("Z") and m["simlab_version"]


def test_add_event_and_arguments_are_checked(tmp_path):
    with RecordingWriter(tmp_path / "r") as w:
        with pytest.raises(ValueError, match="kind"):
            w.add_event({"no": "kind"})
        with pytest.raises(ValueError, match="JSON"):
            w.add_event({"kind": "x", "obj": object()})
        with pytest.raises(ValueError, match="recv_ns"):
            w.add(b"pong", -1)
        with pytest.raises(ValueError, match="recv_ns"):
            w.add(b"pong", 1.5)
    with pytest.raises(ValueError, match="wire format"):
        RecordingWriter(tmp_path / "s", wire_format="csv")


def test_writer_refuses_an_existing_recording(tmp_path):
    write(tmp_path / "r", [b"pong"])
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(tmp_path / "r")


# -- bounded memory and atomic files ---------------------------------------------------------
def test_rows_are_flushed_before_close(tmp_path, wire):
    frames = sample_frames(wire) * 5
    w = RecordingWriter(tmp_path / "r", flush_rows=10)
    for i, p in enumerate(frames):
        w.add(p, 10**18 + i)
    mid = Recording(tmp_path / "r").manifest
    assert mid["complete"] is False
    assert 0 < mid["rows"]["raw"] <= len(frames)
    assert sum(b.rows for b in w.buffers.values()) < 10
    w.close()
    assert Recording(tmp_path / "r").manifest["rows"]["raw"] == len(frames)


def _assert_consistent(path):
    rec = Recording(path)
    listed = {f["path"] for f in rec.manifest["files"]}
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*.parquet")}
    assert listed == on_disk
    for f in rec.manifest["files"]:
        assert pq.ParquetFile(path / f["path"]).metadata.num_rows == f["rows"]
    assert no_tmp(path)
    return rec


def test_writer_not_closed_leaves_only_complete_listed_files(tmp_path, wire):
    frames = sample_frames(wire) * 3
    w = RecordingWriter(tmp_path / "r", flush_rows=7)
    for i, p in enumerate(frames):
        w.add(p, 10**18 + i)
    del w  # never closed: buffered rows are lost, flushed ones are complete and listed
    rec = _assert_consistent(tmp_path / "r")
    assert rec.manifest["complete"] is False
    n = rec.manifest["rows"]["raw"]
    assert 0 < n < len(frames)
    assert [f.payload for f in rec.iter_raw()] == frames[:n]


def test_error_inside_context_manager_flushes_and_marks_incomplete(tmp_path, wire):
    frames = sample_frames(wire)
    with pytest.raises(RuntimeError, match="boom"), RecordingWriter(tmp_path / "r") as w:
        for i, p in enumerate(frames):
            w.add(p, 10**18 + i)
        raise RuntimeError("boom")
    rec = _assert_consistent(tmp_path / "r")
    assert rec.manifest["complete"] is False
    assert "boom" in rec.manifest["error"]
    assert rec.raw_table().column("payload").to_pylist() == frames


def test_failed_part_write_leaves_no_temporary_and_is_not_listed(tmp_path, wire, monkeypatch):
    w = RecordingWriter(tmp_path / "r", flush_rows=10**6)
    w.add(b"pong", 10**18)
    w.flush()

    def half_then_fail(self, table, **kw):
        with open(self.where, "ab") as f:  # the hidden temporary, partly written
            f.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", half_then_fail)
    w.add(wire.subscribe("books", "X"), 10**18 + 1)
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    monkeypatch.undo()
    rec = _assert_consistent(tmp_path / "r")
    assert rec.manifest["rows"]["raw"] == 1
    assert w.failed_path == "raw/channel=_event/inst=_none/date=2001-09-09/part-000001.parquet"


def test_killed_writer_process_leaves_a_readable_recording(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from simlab.store import RecordingWriter
        w = RecordingWriter({str(tmp_path / "r")!r}, flush_rows=100)  # 50 frames
        for i in range(175):
            w.add(b'{{"arg":{{"channel":"trades","instId":"X"}},"data":[{{"instId":"X",'
                  b'"tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}}]}}', 10**18 + i)
        os._exit(9)  # like a kill: no close, no cleanup
    """)
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    rec = _assert_consistent(tmp_path / "r")
    assert rec.manifest["complete"] is False
    assert rec.manifest["rows"]["raw"] == rec.manifest["arrivals"] == 150
    assert [f.arrival for f in rec.iter_raw()] == list(range(150))
    report = verify(tmp_path / "r")
    assert report.ok and report.frames == 150
    assert any("not closed cleanly" in w for w in report.warnings)


# -- reader errors -------------------------------------------------------------------------
def test_missing_directory_and_manifest_are_named(tmp_path):
    with pytest.raises(RecordingError, match="no such recording directory") as e:
        Recording(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match=r"no manifest\.json") as e:
        Recording(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)


@pytest.mark.parametrize("text,match", [
    ("{not json", "unreadable manifest"),
    ('{"format": "other"}', "not a simlab manifest"),
    ('{"format": "simlab-recording", "format_version": 99, "files": []}', "not supported"),
    ('{"format": "simlab-recording", "format_version": 1, "wire_format": "csv", "files": []}',
     "wire_format 'csv'"),
    ('{"format": "simlab-recording", "format_version": 1, "files": [{"path": "../x", '
     '"dataset": "raw", "rows": 1}]}', "inside the recording"),
])
def test_invalid_manifest_is_named(tmp_path, text, match):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text(text)
    with pytest.raises(RecordingError, match=match) as e:
        Recording(tmp_path / "r")
    assert "manifest.json" in str(e.value)


def _edited_manifest(path, edit):
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("edit,field,expected", [
    (lambda m: m.pop("arrivals"), "arrivals", "is missing"),
    (lambda m: m.update(arrivals=-3), "arrivals", "must be an integer >= 0, got -3"),
    (lambda m: m.update(arrivals="12"), "arrivals", "must be an integer >= 0, got '12'"),
    (lambda m: m.update(complete="yes"), "complete", "must be true or false"),
    (lambda m: m.update(created="yesterday"), "created", "must be an ISO 8601 time"),
    (lambda m: m.update(first_recv_ns=-1), "first_recv_ns", "ns since the epoch"),
    (lambda m: m["rows"].update(raw=-1), "rows.raw", "must be an integer >= 0, got -1"),
    (lambda m: m["rows"].update(quotes=1), "rows.quotes", "one of the datasets"),
    (lambda m: m["files"][0].update(rows=-5), "files[0].rows", "an integer >= 0, got -5"),
    (lambda m: m["files"][0].update(rows=True), "files[0].rows", "an integer >= 0, got True"),
    (lambda m: m["files"][1].update(inst=None), "files[1].inst", "a non-empty string"),
    (lambda m: m["files"][0].update(date="13/05/2022"), "files[0].date", "YYYY-MM-DD"),
    (lambda m: m["files"][0].update(arrival_min=9, arrival_max=2), "files[0].arrival_max",
     ">= arrival_min"),
    (lambda m: m.update(pending=["raw/x.parquet"]), "pending[0]", "the path of a listed"),
    (lambda m: m.update(events={}), "events", "must be a list"),
    (lambda m: m["malformed"].update(count=-1), "malformed.count", "an integer >= 0"),
    (lambda m: m["channels"]["books"]["instruments"].update(X="many"),
     "channels.books.instruments.X", "an integer >= 0"),
    (lambda m: m.update(requested={"channel": "books"}), "requested", "a list of"),
    (lambda m: m.update(requested=[{"channel": "books", "inst": ""}]), "requested[0].inst",
     "a non-empty string"),
    (lambda m: m.update(requested=[{"inst": "X"}]), "requested[0].channel",
     "a non-empty string"),
    (lambda m: m.update(live=[]), "live", "must be an object"),
])
def test_malformed_manifest_field_is_named(tmp_path, wire, edit, field, expected):
    write(tmp_path / "r", sample_frames(wire), flush_rows=3)
    _edited_manifest(tmp_path / "r", edit)
    for read in (Recording, verify):  # verify opens it the same way
        with pytest.raises(RecordingError, match=re.escape(f"manifest field {field!r} ")
                           + ".*" + re.escape(expected)) as e:
            read(tmp_path / "r")
        assert "manifest.json" in str(e.value)


def test_requested_streams_are_accepted(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire))
    _edited_manifest(tmp_path / "r", lambda m: m.update(
        requested=[{"channel": "books", "inst": "BTC-USDT"}], live={"refused": []}))
    assert Recording(tmp_path / "r").manifest["requested"][0]["inst"] == "BTC-USDT"


def test_listed_file_that_is_not_parquet_is_named(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire))
    rec = Recording(tmp_path / "r")
    victim = rec.files("levels", inst="ETH-USDT")[0]["path"]
    (tmp_path / "r" / victim).write_bytes(b"this is not parquet")
    with pytest.raises(RecordingError, match="not a readable Parquet file") as e:
        rec.levels_table()
    assert victim in str(e.value)
    assert rec.trades_table().num_rows == 1  # other datasets still readable


def test_unlisted_files_are_ignored_by_readers(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire))
    part = tmp_path / "r" / "levels" / "channel=books" / "inst=BTC-USDT" / "date=2022-05-13"
    (part / "part-000099.parquet").write_bytes(b"garbage")
    (part / ".part-000100.parquet.tmp").write_bytes(b"half")
    assert Recording(tmp_path / "r").levels_table(inst="BTC-USDT").num_rows == 4 + 2 + 1


# -- rebuild -------------------------------------------------------------------------------
def _tables(path):
    rec = Recording(path)
    return rec.levels_table(), rec.trades_table()


def test_rebuild_gives_identical_tables(tmp_path, wire):
    write(tmp_path / "r", sample_frames(wire) * 4, flush_rows=5)
    before = _tables(tmp_path / "r")
    victim = Recording(tmp_path / "r").files("levels")[0]["path"]
    (tmp_path / "r" / victim).write_bytes(b"damaged")
    assert rebuild(tmp_path / "r", flush_rows=7) == {"levels": before[0].num_rows,
                                                     "trades": before[1].num_rows}
    after = _tables(tmp_path / "r")
    assert after[0].equals(before[0]) and after[1].equals(before[1])
    _assert_consistent(tmp_path / "r")
    assert not (tmp_path / "r" / ".rebuild").exists()
    assert Recording(tmp_path / "r").manifest["history"][-1]["action"] == "rebuild"


def test_rebuild_of_the_real_capture_is_identical(capture_recording, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(capture_recording, copy)
    before = _tables(copy)
    assert before[0].num_rows > 0
    shutil.rmtree(copy / "levels")  # even with the normalised tables gone
    rebuild(copy)
    after = _tables(copy)
    assert after[0].equals(before[0]) and after[1].equals(before[1])
    assert pa.concat_tables([after[0]]).num_rows == Recording(copy).manifest["rows"]["levels"]
