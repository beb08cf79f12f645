"""The command line: import, verify, rebuild, exit statuses and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.cli import build_parser, main
from simlab.store import Recording

REPO = Path(__file__).resolve().parents[1]
EXPECTED_BOOKS = {"BTC-USDT": 98, "BTC-USD-220527": 99, "UNI-USD-SWAP": 93}
EXPECTED_TRADES = {"BTC-USDT": 69, "BTC-USD-220527": 4, "UNI-USD-SWAP": 1}


def check_capture_report(rep: dict) -> None:
    books = rep["channels"]["books"]
    assert books["total"]["checksum_verified"] == 290
    assert books["total"]["checksum_failed"] == 0
    assert {i: s["messages"] for i, s in books["instruments"].items()} == EXPECTED_BOOKS
    trades = rep["channels"]["trades"]["instruments"]
    assert {i: c["rows"] for i, c in trades.items()} == EXPECTED_TRADES
    assert rep["ok"] is True and rep["problems"] == []


def test_import_then_verify_json(okx_capture, tmp_path, capsys):
    out = tmp_path / "R"
    assert main(["import", "okx-capture", str(okx_capture), "--out", str(out),
                 "--no-progress"]) == 0
    assert "imported 410 frames" in capsys.readouterr().out
    assert main(["verify", str(out), "--json"]) == 0
    check_capture_report(json.loads(capsys.readouterr().out))


def _simlab_command() -> list[str]:
    script = Path(sys.executable).with_name("simlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simlab.cli"]


def test_real_processes(okx_capture, tmp_path):
    out = tmp_path / "R"
    imp = subprocess.run([sys.executable, "-m", "simlab.cli", "import", "okx-capture",
                          str(okx_capture), "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert imp.returncode == 0, imp.stderr
    ver = subprocess.run([*_simlab_command(), "verify", str(out), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert ver.returncode == 0, ver.stderr
    check_capture_report(json.loads(ver.stdout))


def test_verify_text_output(capture_recording, capsys):
    assert main(["verify", str(capture_recording)]) == 0
    text = capsys.readouterr().out
    assert "cks_ok" in text and "UNI-USD-SWAP" in text
    assert text.rstrip().endswith("OK")


def test_verify_exit_1_on_checksum_failure(tmp_path, wire, capsys):
    f = wire.BookFeed("X")
    lines = [f.snapshot([wire.lv("1", "1")], [wire.lv("2", "1")]),
             f.update([wire.lv("1", "2")], [], bad_checksum=True)]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines))
    assert main(["import", "okx-jsonl", str(src), "--out", str(tmp_path / "r")]) == 0
    assert "integrity events: checksum_failed 1" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "r"), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False
    assert rep["channels"]["books"]["instruments"]["X"]["checksum_failed"] == 1
    assert main(["verify", str(tmp_path / "r")]) == 1
    assert "PROBLEM: books X: 1 checksum failures" in capsys.readouterr().out


def _fails_cleanly(argv, capsys, *needles) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in err


def test_unusable_input_exit_2(tmp_path, capsys):
    _fails_cleanly(["verify", str(tmp_path / "nope")], capsys, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    _fails_cleanly(["verify", str(tmp_path / "empty")], capsys, "no manifest.json")
    _fails_cleanly(["rebuild", str(tmp_path / "empty")], capsys, "no manifest.json")
    _fails_cleanly(["import", "okx-capture", str(tmp_path / "missing.txt"), "--out",
                    str(tmp_path / "o")], capsys, tmp_path / "missing.txt", "no such file")
    _fails_cleanly(["import", "okx-l2", str(tmp_path / "x"), "--out", str(tmp_path / "o"),
                    "--instruments", "y"], capsys, "--instruments")


def test_import_refuses_an_existing_directory(capture_recording, okx_capture, capsys):
    _fails_cleanly(["import", "okx-capture", str(okx_capture), "--out",
                    str(capture_recording)], capsys, "already exists")


def test_subprocess_error_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "simlab.cli", "verify", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "no manifest.json" in p.stderr and "Traceback" not in p.stderr


def test_rebuild_command(capture_recording, tmp_path, capsys):
    import shutil

    path = tmp_path / "r"
    shutil.copytree(capture_recording, path)
    before = Recording(path).levels_table()
    shutil.rmtree(path / "trades")
    assert main(["rebuild", str(path)]) == 0
    assert "levels 8264 rows, trades 74 rows" in capsys.readouterr().out
    assert Recording(path).levels_table().equals(before)
    assert main(["verify", str(path)]) == 0


def test_parser_and_help(capsys):
    assert main([]) == 0
    assert "import" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["import", "nope", "x", "--out", "y"])
    args = build_parser().parse_args(["import", "okx-l2", "f.tar.gz", "--out", "d"])
    assert (args.format, args.src, args.out) == ("okx-l2", "f.tar.gz", "d")
