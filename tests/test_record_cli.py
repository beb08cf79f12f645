"""``simlab record`` as a real process: SIGINT/SIGTERM close the files and exit 0; kill -9
loses at most the current rotation and leaves no half file a reader could see; a full
disk exits non-zero with a clear message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_record import small_disk  # noqa: F401 (fixture)

from simlab.emulator.testing import RandomMarket
from simlab.store import Recording, verify

ROTATE = 0.4
CLIENT = ["--client-option", "backoff_base=0.05", "--client-option", "close_timeout=0.5",
          "--client-option", "snapshot_timeout=0.5"]


def start(emu, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT,ETH-USDT",
           "--channels", "books,trades", "--out", str(out), "--rotate", f"{ROTATE}s",
           "--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--status-interval", "0.2",
           *CLIENT, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])


def wait_rotations(proc: subprocess.Popen, out: Path, n: int, timeout: float = 20.0) -> dict:
    """The manifest once it lists the files of ``n`` rotations."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        try:
            m = json.loads((out / "manifest.json").read_bytes())
        except (OSError, ValueError):
            m = {}
        if (m.get("live") or {}).get("recorder", {}).get("rotations", 0) >= n:
            return m
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {n} rotations within {timeout} s: {proc.communicate()}")


@pytest.fixture
def emu(emulator_factory):
    return emulator_factory(RandomMarket(seed=3, rate=300, instruments=["BTC-USDT",
                                                                        "ETH-USDT"]), speed=10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_closes_the_files_and_exits_0(emu, tmp_path, sig):
    out = tmp_path / "rec"
    proc = start(emu, out)
    wait_rotations(proc, out, 3)
    proc.send_signal(sig)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    m = Recording(out).manifest
    assert m["complete"] is True and m["live"]["recorder"]["stop_reason"] == f"signal {sig.name}"
    assert m["events"][-1]["kind"] == "closed"  # the client's last word is in it
    rep = verify(out)
    assert rep.ok and rep.stray_files == [], (rep.problems, rep.stray_files)
    assert rep.frames == m["arrivals"] > 100
    # the status line ran, and the log file is there (and not a stray)
    assert "msg/s" in stderr and "RSS" in stderr and "recorded" in stderr
    assert "stopping: signal" in (out / "record.log").read_text()


def test_kill_9_loses_at_most_the_current_rotation(emu, tmp_path):
    out = tmp_path / "rec"
    proc = start(emu, out)
    wait_rotations(proc, out, 4)
    time.sleep(ROTATE * 0.7)  # somewhere inside a rotation
    killed_ns = time.time_ns()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    rec = Recording(out)
    m = rec.manifest
    assert m["complete"] is False and m["files"]
    rep = verify(out)  # every listed file is there, readable, with its rows
    assert rep.ok, rep.problems
    assert rep.frames == m["arrivals"] == rec.raw_table().num_rows
    # at most the current rotation (and the writer's lag) is lost
    lost_s = (killed_ns - m["last_recv_ns"]) / 1e9
    assert 0 < lost_s < 2 * ROTATE + 0.5
    # readers see only complete, listed files: hidden temporaries are all that may remain
    assert all(Path(s).name.startswith(".") for s in rep.stray_files), rep.stray_files
    for dataset in ("raw", "levels", "trades"):
        assert len(pd.read_parquet(out / dataset)) == m["rows"][dataset]


def test_a_full_disk_exits_non_zero_naming_the_directory(emu, small_disk):  # noqa: F811
    out = small_disk / "rec"
    proc = start(emu, out)
    _stdout, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 1
    err = stderr.strip().splitlines()[-1]
    assert err.startswith(f"simlab record: error: {out}: recording stopped: could not write ")
    assert "No space left on device" in err and "intact and listed" in err
    rep = verify(out)
    assert rep.ok and len(rep.files_listed and Recording(out).manifest["files"]) > 0
    assert all(Path(s).name.startswith(".") for s in rep.stray_files)


def test_bad_arguments_are_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT",
                        "--out", str(tmp_path / "r"), "--rotate", "soon"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "duration 'soon'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT",
                        "--out", str(tmp_path / "r"), "--client-option", "nope=1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "record", "--inst", "BTC-USDT",
                        "--out", str(tmp_path / "r"), "--outage-after", "0s"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--outage-after" in r.stderr
    assert not (tmp_path / "r").exists()
    assert os.path.exists(tmp_path)
