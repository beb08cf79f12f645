"""Soak test of ``simlab record`` (not run in CI): 20 instruments, books + trades, the
emulator pushing at 10x OKX's rate for N minutes.

    python -m benchmarks.soak_record [--minutes 10] [--instruments 20] [--speed 10]

The emulator runs in this process (a thread) over a seeded ``RandomMarket``; ``books``
pushes every 100 ms of simulated time per instrument, so ``--speed 10`` is ten times
OKX's push cadence (100 book pushes a second per instrument) and the market's ``--rate``
events per simulated second (10 % trades) give the trades. The recorder is a real
``python -m simlab.cli record`` process, measured with psutil: RSS at start (after the
subscriptions), peak and end; CPU seconds (user + system, from the exit status) per 1,000
messages. At the end the emulator is paused, everything sent is left to arrive, the
recorder is stopped with SIGINT, and what the emulator wrote to the recorder's connections
is compared with what the recording holds: zero messages may be lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from simlab.emulator import testing
from simlab.emulator.testing import RandomMarket, start_emulator

from ._common import REPO, machine, table, today

NAMES = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "SOL-USDT", "XRP-USDT", "DOGE-USDT",
         "ADA-USDT", "TRX-USDT", "LINK-USDT", "DOT-USDT", "LTC-USDT", "BCH-USDT", "AVAX-USDT",
         "UNI-USDT", "ATOM-USDT", "ETC-USDT", "FIL-USDT", "APT-USDT", "ARB-USDT", "OP-USDT",
         "NEAR-USDT", "SUI-USDT", "TON-USDT", "PEPE-USDT"]
RSS_TARGET_MB = 150


def _recorded(out: Path) -> tuple[int, dict]:
    """Data frames in the recording (every channel but control frames) and its manifest."""
    m = json.loads((out / "manifest.json").read_bytes())
    frames = sum(c["messages"] for c in m["channels"].values()) + m["malformed"]["count"]
    return frames, m


def soak(minutes: float, n_inst: int, speed: float, rate: float, rotate: str,
         keep: bool) -> list[dict]:
    insts = NAMES[:n_inst]
    # RandomMarket prices unknown instruments at 100 with a 0.01 tick; a long random walk
    # can reach 0 (and the emulator's clock dies on it): start them far from 0.
    for name in insts:
        testing._SCALE.setdefault(name, (20_000, "5"))
    emu = start_emulator(RandomMarket(seed=7, rate=rate, instruments=insts), speed=speed)
    tmp = Path(tempfile.mkdtemp(prefix="soak-record-"))
    out = tmp / "rec"
    cmd = [sys.executable, "-m", "simlab.cli", "record", "--inst", ",".join(insts),
           "--channels", "books,trades", "--out", str(out), "--rotate", rotate,
           "--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--status-interval", "0"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    rss: list[tuple[float, int]] = []
    try:
        end = t0 + minutes * 60
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"the recorder exited early: {proc.stderr.read()}")
            rss.append((time.monotonic() - t0, ps.memory_info().rss))
            time.sleep(0.5)
        emu_ok = all(not t.done() for t in emu.emulator._tasks)  # its clock still runs
        emu.emulator.pause()
        # everything queued in the emulator goes out and is read before the recorder stops
        while any(c.queue for c in emu.emulator.connections):
            time.sleep(0.05)
        time.sleep(2.0)
        sent = sum(c.sent for c in emu.emulator.connections)
        rss.append((time.monotonic() - t0, ps.memory_info().rss))
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        emu.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"the recorder failed ({proc.returncode}): {stderr}")
    frames, m = _recorded(out)
    live = m["live"]["summary"]
    cpu = usage.ru_utime + usage.ru_stime
    elapsed = time.monotonic() - t0
    start_rss = next((r for t, r in rss if t >= 3.0), rss[0][1])  # after the subscriptions
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    rows = [
        ("instruments x channels", f"{n_inst} x books,trades", ""),
        ("duration", f"{elapsed:.0f} s ({minutes:g} min of feed at {speed:g}x)", ""),
        ("messages sent by the emulator", f"{sent:,}", ""),
        ("messages recorded", f"{frames:,}", "= sent"),
        ("messages lost", f"{sent - frames:,}", "0"),
        ("dropped by the recorder", f"{live['dropped_frames']:,}", "0"),
        ("breaks / disconnects", f"{live['breaks']} / {live['disconnects']}", "0 / 0"),
        ("message rate", f"{frames / (minutes * 60):,.0f} /s", ""),
        ("emulator clock", "ran to the end" if emu_ok else "DIED (see its log)", ""),
        ("RSS start / peak / end", f"{start_rss / 2**20:.0f} / "
         f"{max(r for _, r in rss) / 2**20:.0f} / {rss[-1][1] / 2**20:.0f} MB",
         f"peak <= {RSS_TARGET_MB} MB"),
        ("CPU", f"{cpu:.1f} s = {cpu / frames * 1000:.3f} s per 1,000 messages", ""),
        ("files / bytes on disk", f"{len(m['files']):,} / {size / 2**20:.1f} MB",
         f"rotate {rotate}"),
    ]
    if not keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        rows.append(("recording", str(out), ""))
    return [{"what": a, "value": b, "target": c} for a, b, c in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak_record", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of feed (default 10)")
    ap.add_argument("--instruments", type=int, default=20, choices=range(1, len(NAMES) + 1),
                    metavar=f"1..{len(NAMES)}", help="number of instruments (default 20)")
    ap.add_argument("--speed", type=float, default=10.0,
                    help="emulator speed, times OKX's push cadence (default 10)")
    ap.add_argument("--rate", type=float, default=50.0,
                    help="market events per simulated second per instrument (default 50)")
    ap.add_argument("--rotate", default="5m", help="recorder --rotate (default 5m, as the CLI)")
    ap.add_argument("--keep", action="store_true", help="keep the recording")
    args = ap.parse_args(argv)
    rows = soak(args.minutes, args.instruments, args.speed, args.rate, args.rotate, args.keep)
    print(f"simlab record soak, {today()}, {machine()}")
    print(table(rows, [("what", "what"), ("value", "measured"), ("target", "target")]))
    lost = next(r["value"] for r in rows if r["what"] == "messages lost")
    return 0 if lost == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
