"""Importers: okx-capture (real cryptofeed capture), okx-jsonl, okx-l2 (generated files)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile

import pytest

from simlab.store import Recording, SourceError, import_file, seconds_to_ns, verify
from simlab.store.importers import load_instruments, open_lines


# -- receive times -------------------------------------------------------------------------
@pytest.mark.parametrize("text,ns", [
    ("1652459225.5037491", 1_652_459_225_503_749_100),
    ("1652459224", 1_652_459_224_000_000_000),
    ("1652459225.504232", 1_652_459_225_504_232_000),
    ("1.000000001", 1_000_000_001),
    ("1.1234567899", 1_123_456_789),  # beyond ns: truncated
    (b"0.5", 500_000_000),
])
def test_seconds_to_ns_is_exact(text, ns):
    assert seconds_to_ns(text) == ns


def test_float_would_not_be_exact():
    # why the string arithmetic: the float route is off by tens of ns at this magnitude
    assert int(float("1652459225.5037491") * 1e9) != seconds_to_ns("1652459225.5037491")


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "-5", "1e9"])
def test_seconds_to_ns_rejects_non_decimals(bad):
    with pytest.raises(ValueError, match="decimal seconds"):
        seconds_to_ns(bad)


# -- okx-capture on the real file -----------------------------------------------------------
def _capture_lines(path):
    return path.read_bytes().split(b"\n")


def test_capture_payloads_are_byte_identical(capture_recording, okx_capture):
    lines = [ln for ln in _capture_lines(okx_capture) if ln and ln[:1].isdigit()]
    rec = Recording(capture_recording)
    frames = list(rec.iter_raw())
    assert len(frames) == len(lines) == 410  # 414 lines - connect - 3 requests
    for f, line in zip(frames, lines, strict=True):
        prefix, _, payload = line.partition(b": ")
        assert f.payload == payload
        assert f.recv_ns == seconds_to_ns(prefix)
    assert [f.arrival for f in frames] == list(range(410))
    assert rec.raw_table().column("payload").to_pylist() == [f.payload for f in frames]


def test_capture_manifest(capture_recording, okx_capture):
    m = Recording(capture_recording).manifest
    assert m["complete"] and m["source"]["importer"] == "okx-capture"
    assert m["source"]["input"] == str(okx_capture.resolve())
    assert (m["source"]["connect_lines"], m["source"]["request_lines"]) == (1, 3)
    (connect,) = [e for e in m["events"] if e["kind"] == "connect"]
    assert connect["url"] == "wss://ws.okx.com:8443/ws/v5/public"
    assert connect["recv_ns"] == 1_652_459_224_530_060_500 and connect["arrival"] == 0
    assert m["channels"]["books"]["instruments"] == {
        "BTC-USD-220527": 99, "BTC-USDT": 98, "UNI-USD-SWAP": 93}
    assert m["first_recv_ns"] == 1_652_459_225_503_749_100
    assert m["malformed"]["count"] == 0
    assert m["integrity"]["books"]["BTC-USDT"]["checksum_verified"] == 98
    assert [e for e in m["events"] if e["kind"] != "connect"] == []


def test_capture_tables_match_the_messages(capture_recording):
    rec = Recording(capture_recording)
    lv = rec.levels_table(inst="BTC-USDT")
    snap = lv.filter(lv.column("snapshot"))
    # the real snapshot is 400 x 400 levels; 2022 messages carry no seqIds
    assert snap.num_rows == 800
    assert set(lv.column("seq_id").to_pylist()) == {None}
    assert lv.column("checksum").null_count == 0
    trades = rec.trades_table()
    assert {i: trades.column("inst").to_pylist().count(i) for i in set(
        trades.column("inst").to_pylist())} == {"BTC-USDT": 69, "BTC-USD-220527": 4,
                                                "UNI-USD-SWAP": 1}
    assert set(trades.column("count").to_pylist()) == {None}  # 2022 trades lack count


def test_capture_with_instruments(okx_capture, okx_rest, tmp_path):
    r = import_file("okx-capture", okx_capture, tmp_path / "r", instruments=okx_rest,
                    progress=False)
    inst = r.manifest["instruments"]
    assert sorted(inst) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    assert (inst["BTC-USDT"]["tickSz"], inst["BTC-USDT"]["lotSz"]) == ("0.1", "0.00000001")
    assert inst["UNI-USD-SWAP"]["ctVal"] == "10" and inst["UNI-USD-SWAP"]["instType"] == "SWAP"
    assert inst["BTC-USD-220527"]["instType"] == "FUTURES"
    assert r.manifest["source"]["instruments_missing"] == []


def test_load_instruments(okx_rest, tmp_path):
    meta = load_instruments(okx_rest)
    assert meta["BTC-USDT"]["tickSz"] == "0.1" and len(meta) > 100
    bad = tmp_path / "bad"
    bad.write_text("https://x/api/v5/public/instruments -> 1.5: {broken\n")
    with pytest.raises(SourceError, match="line 1") as e:
        load_instruments(bad)
    assert str(bad) in str(e.value)
    with pytest.raises(SourceError, match="only supported for okx-capture"):
        import_file("okx-jsonl", bad, tmp_path / "r", instruments=okx_rest)


# -- bad input: kept raw, counted, never a crash --------------------------------------------
def _capture(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_capture_bad_lines_are_kept_and_counted(tmp_path, wire):
    f = wire.BookFeed("BTC-USDT")
    good = f.snapshot([wire.lv("100", "1")], [wire.lv("101", "1")])
    bad_price = good.replace(b'"100"', b'"1x0"')
    truncated = good[:40]
    unknown = wire.dumps({"arg": {"channel": "made-up", "instId": "BTC-USDT"}, "data": [{}]})
    no_prefix = b"garbage without timestamp"
    lines = [b"1652459225.1: " + p for p in (good, truncated, unknown, bad_price)] + [no_prefix]
    r = import_file("okx-capture", _capture(tmp_path / "cap", lines), tmp_path / "r",
                    progress=False)
    m = r.manifest
    assert m["complete"] and m["arrivals"] == 5
    assert m["malformed"]["count"] == 3
    reasons = " | ".join(m["malformed"]["reasons"])
    assert "invalid JSON" in reasons and "'1x0'" in reasons
    assert "prefix" in reasons
    assert m["channels"]["made-up"]["messages"] == 1
    payloads = [fr.payload for fr in Recording(tmp_path / "r").iter_raw()]
    assert payloads == [good, truncated, unknown, bad_price, no_prefix]
    # the bad-price frame is not normalised: only the good snapshot has level rows
    assert Recording(tmp_path / "r").levels_table().column("arrival").to_pylist() == [0, 0]


def test_missing_and_unreadable_inputs_are_named(tmp_path):
    with pytest.raises(SourceError, match="no such file") as e:
        import_file("okx-capture", tmp_path / "nope", tmp_path / "r")
    assert str(tmp_path / "nope") in str(e.value)
    assert not (tmp_path / "r").exists()
    with pytest.raises(SourceError, match="unknown import format"):
        import_file("csv", tmp_path / "nope", tmp_path / "r")


def test_truncated_gzip_is_an_error_and_the_recording_is_incomplete(tmp_path, wire):
    body = b"\n".join(b"1652459225.%d: " % i + wire.subscribe("books", f"I{i}")
                      for i in range(3000))
    data = gzip.compress(body)
    src = tmp_path / "cap.gz"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated") as e:
        import_file("okx-capture", src, tmp_path / "r", progress=False)
    assert str(src) in str(e.value)
    m = Recording(tmp_path / "r").manifest
    assert m["complete"] is False and "truncated" in m["error"]


# -- okx-jsonl -----------------------------------------------------------------------------
def test_jsonl_recv_time_from_exchange_ts(tmp_path, wire):
    f = wire.BookFeed("BTC-USDT")
    lines = [wire.subscribe("books", "BTC-USDT"),
             f.snapshot([wire.lv("100", "1")], [wire.lv("101", "1")]),
             b"pong",
             f.update([wire.lv("100", "2")], [])]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\r\n".join([*lines[:2], b"", *lines[2:]]) + b"\r\n")
    r = import_file("okx-jsonl", src, tmp_path / "r", progress=False)
    frames = list(Recording(tmp_path / "r").iter_raw())
    assert [fr.payload for fr in frames] == lines
    t1, t2 = wire.T0_MS + 100, wire.T0_MS + 200
    # the subscribe ack takes the first ts found, pong the previous one
    assert [fr.recv_ns for fr in frames] == [t1 * 10**6, t1 * 10**6, t1 * 10**6, t2 * 10**6]
    assert "exchange ts" in r.manifest["source"]["recv_time"]
    assert r.manifest["source"]["blank_lines"] == 1
    assert verify(tmp_path / "r").channels["books"]["total"]["checksum_verified"] == 2


# -- okx-l2 (OKX's historical files; no real sample exists) ---------------------------------
def _history_lines(wire) -> list[bytes]:
    def line(action, ts, bids, asks):
        return wire.dumps({"instId": "BTC-USDT", "action": action, "ts": str(ts),
                           "asks": asks, "bids": bids})

    return [
        line("snapshot", 1_704_067_200_000, [["42000.1", "1.5", "3"], ["42000", "2", "1"]],
             [["42000.2", "0.7", "2"]]),
        line("update", 1_704_067_200_100, [["42000.1", "0", "0"]], [["42000.3", "4", "5"]]),
        line("update", 1_704_067_200_200, [], [["42000.2", "1.1", "3"]]),
        line("snapshot", 1_704_068_100_000, [["41999", "1", "1"]], [["42001", "1", "1"]]),
    ]


def _write_archive(path, kind, body):
    if kind == "plain":
        path.write_bytes(body)
    elif kind == "gz":
        path.write_bytes(gzip.compress(body))
    elif kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("BTC-USDT-L2orderbook-400lv-2024-01-01.data", body)
    else:
        with tarfile.open(path, "w:gz") as t:
            info = tarfile.TarInfo("BTC-USDT-L2orderbook-400lv-2024-01-01.data")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))


@pytest.mark.parametrize("kind", ["plain", "gz", "zip", "tar.gz"])
def test_okx_l2_history_files(tmp_path, wire, kind):
    lines = _history_lines(wire)
    src = tmp_path / f"BTC-USDT-L2orderbook-400lv-2024-01-01.{kind}"
    _write_archive(src, kind, b"\n".join(lines) + b"\n")
    r = import_file("okx-l2", src, tmp_path / "r", progress=False)
    assert r.manifest["wire_format"] == "okx-l2-history" and r.malformed == 0
    rec = Recording(tmp_path / "r")
    assert [f.payload for f in rec.iter_raw()] == lines
    assert [f.recv_ns for f in rec.iter_raw()] == [
        int(json.loads(ln)["ts"]) * 10**6 for ln in lines]
    lv = rec.levels_table().to_pylist()
    assert {r["channel"] for r in lv} == {"books-l2-history"}
    first = [(r["side"], r["price_str"], r["size"], r["count"]) for r in lv if r["arrival"] == 0]
    assert first == [("bid", "42000.1", 1.5, 3), ("bid", "42000", 2.0, 1), ("ask", "42000.2",
                                                                           0.7, 2)]
    assert all(r["seq_id"] is None and r["checksum"] is None for r in lv)
    rep = verify(tmp_path / "r")
    st = rep.channels["books-l2-history"]["instruments"]["BTC-USDT"]
    assert (st["snapshots"], st["updates"], st["unsequenced"], st["gaps"]) == (2, 2, 2, 0)
    assert (st["checksum_absent"], st["checksum_verified"], st["crossed"]) == (4, 0, 0)
    assert rep.ok


def test_open_lines_reads_archives_by_content_not_name(tmp_path):
    src = tmp_path / "misnamed.txt"
    src.write_bytes(gzip.compress(b"a\nb\r\nc"))
    with open_lines(src) as (lines, pos, size):
        assert [ln for _, ln in lines] == [b"a", b"b", b"c"]
        assert pos() == size


# -- input that is not the format: refused, exit 2, no recording left ----------------------
FORMATS = ["okx-capture", "okx-jsonl", "okx-l2"]


def _cli_import(capsys, fmt, src, out) -> tuple[int, str]:
    from simlab.cli import main

    code = main(["import", fmt, str(src), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _refused(capsys, fmt, src, out, *needles) -> str:
    code, err = _cli_import(capsys, fmt, src, out)
    assert code == 2, err
    assert str(src) in err and "expected" in err
    for n in needles:
        assert n in err, err
    assert not out.exists()  # nothing verify could call OK
    return err


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_directory_is_refused(tmp_path, capsys, fmt):
    (tmp_path / "d").mkdir()
    _refused(capsys, fmt, tmp_path / "d", tmp_path / "r", "is a directory")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_symlink_loop_is_refused(tmp_path, capsys, fmt):
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    _refused(capsys, fmt, a, tmp_path / "r", "symbolic links")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("body", [b"", b"\n\n  \n", gzip.compress(b"")],
                         ids=["empty", "blank-lines", "empty-gzip"])
def test_an_empty_input_is_refused(tmp_path, capsys, fmt, body):
    src = tmp_path / "in"
    src.write_bytes(body)
    err = _refused(capsys, fmt, src, tmp_path / "r")
    assert ("is empty" if body == b"" else "holds no frame") in err


@pytest.mark.parametrize("fmt", FORMATS)
def test_binary_noise_is_refused(tmp_path, capsys, fmt):
    import random

    src = tmp_path / "noise.bin"
    src.write_bytes(random.Random(15).randbytes(1 << 20))  # 1 MB, as in the issue
    _refused(capsys, fmt, src, tmp_path / "r", "malformed", "none is a market-data frame")


def test_noise_into_an_existing_empty_directory_leaves_it_empty(tmp_path, capsys):
    src = tmp_path / "noise.txt"
    src.write_bytes(b"not json at all\n" * 100)
    out = tmp_path / "r"
    out.mkdir()
    code, err = _cli_import(capsys, "okx-jsonl", src, out)
    assert code == 2 and "100 of its 100 lines are malformed" in err
    assert list(out.iterdir()) == []


def test_control_frames_only_are_refused(tmp_path, capsys, wire):
    src = tmp_path / "acks.jsonl"
    src.write_bytes(b"\n".join([wire.subscribe("books", "BTC-USDT"), b"pong"]) + b"\n")
    _refused(capsys, "okx-jsonl", src, tmp_path / "r", "none of its 2 lines is market data")


def test_mostly_noise_with_one_valid_frame_is_imported(tmp_path, capsys, wire):
    f = wire.BookFeed("BTC-USDT")
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([b"garbage"] * 50 + [f.snapshot([wire.lv("1", "1")], [])]))
    code, err = _cli_import(capsys, "okx-jsonl", src, tmp_path / "r")
    assert code == 0, err
    m = Recording(tmp_path / "r").manifest
    assert m["malformed"]["count"] == 50 and m["channels"]["books"]["messages"] == 1


def test_mostly_noise_is_flagged_on_the_terminal(tmp_path, capsys, wire):
    """Imported, but not silently: verify will fail it, and the import says so."""
    f = wire.BookFeed("BTC-USDT")
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([b"garbage"] * 50 + [f.snapshot([wire.lv("1", "1")], [])]))
    code, err = _cli_import(capsys, "okx-jsonl", src, tmp_path / "r")
    assert code == 0
    assert "warning: 50 of 51 frames are malformed (more than 50 %)" in err
    src.write_bytes(b"\n".join([b"garbage"] * 2 + [f.snapshot([wire.lv("1", "1")], [])] * 3))
    code, err = _cli_import(capsys, "okx-jsonl", src, tmp_path / "r2")
    assert code == 0 and "warning" not in err


def test_a_misnamed_file_says_so(tmp_path, capsys):
    src = tmp_path / "books.jsonl.zst"
    src.write_bytes(b"plain text, not zstandard\n")
    _refused(capsys, "okx-jsonl", src, tmp_path / "r", "named .zst but is not .zst data")


# -- .zst -----------------------------------------------------------------------------------
def _zstd(body: bytes) -> bytes:
    """zstandard-compressed ``body`` (the package when present, else the zstd tool)."""
    try:
        import zstandard
    except ImportError:
        import shutil
        import subprocess

        if shutil.which("zstd") is None:
            pytest.skip("neither the zstandard package nor the zstd tool is available")
        return subprocess.run(["zstd", "-q", "-c"], input=body, capture_output=True,
                              check=True).stdout
    return zstandard.ZstdCompressor().compress(body)


def _has_zstandard() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def _inputs(wire) -> dict[str, list[bytes]]:
    f = wire.BookFeed("BTC-USDT")
    frames = [wire.subscribe("books", "BTC-USDT"),
              f.snapshot([wire.lv("100", "1")], [wire.lv("101", "1")]),
              f.update([wire.lv("100", "2")], [])]
    return {"okx-jsonl": frames,
            "okx-capture": [b"1652459225.%d: %s" % (i, fr) for i, fr in enumerate(frames)],
            "okx-l2": _history_lines(wire)}


@pytest.mark.skipif(not _has_zstandard(), reason="the zstandard package is not installed")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("container", ["zst", "tar.zst"])
def test_zst_input_works_for_every_importer(tmp_path, capsys, wire, fmt, container):
    lines = _inputs(wire)[fmt]
    body = b"\n".join(lines) + b"\n"
    if container == "tar.zst":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo("data.txt")
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        body = buf.getvalue()
    src = tmp_path / "in.bin"  # by content, not by name
    src.write_bytes(_zstd(body))
    code, err = _cli_import(capsys, fmt, src, tmp_path / "r")
    assert code == 0, err
    rec = Recording(tmp_path / "r")
    stored = [ln.partition(b": ")[2] for ln in lines] if fmt == "okx-capture" else lines
    assert [fr.payload for fr in rec.iter_raw()] == stored
    assert rec.manifest["malformed"]["count"] == 0


@pytest.mark.skipif(not _has_zstandard(), reason="the zstandard package is not installed")
def test_zst_of_many_frames_and_lines_across_chunks(tmp_path, wire):
    sub = wire.subscribe("books", "BTC-USDT")
    f = wire.BookFeed("BTC-USDT")
    lines = [f.snapshot([wire.lv("100", "1")], [])] + [sub + b" " * (i % 97) for i in range(30000)]
    src = tmp_path / "in.zst"
    src.write_bytes(_zstd(b"\n".join(lines)))
    r = import_file("okx-jsonl", src, tmp_path / "r", progress=False)
    assert r.frames == len(lines) and r.malformed == 0


@pytest.mark.skipif(_has_zstandard(), reason="the zstandard package is installed")
def test_zst_without_zstandard_is_a_clear_error(tmp_path, capsys, wire):
    src = tmp_path / "in.jsonl.zst"
    src.write_bytes(_zstd(b"\n".join(_inputs(wire)["okx-jsonl"])))
    code, err = _cli_import(capsys, "okx-jsonl", src, tmp_path / "r")
    assert code == 2 and "zstandard" in err and str(src) in err
