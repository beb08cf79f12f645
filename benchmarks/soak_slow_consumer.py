"""Soak test of the emulator against clients that never read (not run in CI).

    python -m benchmarks.soak_slow_consumer [--seconds 25] [--speed 10] [--clients 1]
                                            [--unbounded]

The emulator runs in its own process (measured with psutil) over a seeded ``RandomMarket``
(3 instruments, 500 events per simulated second each). Each dead client is a real socket on
loopback with a 4 KB SO_RCVBUF that connects, subscribes to every book channel and the
trades of every instrument, and never calls recv. Every 0.5 s the server's RSS is sampled.
The table gives RSS at start (after the subscriptions), peak and end, and what happened to
each client: the emulator closes a slow consumer with 4005 and aborts the connection when
the close frame cannot drain (the client then sees a TCP reset).

``--unbounded`` lifts the queue bounds and the send timeout (1 TB, 1e9 frames, a day):
what the emulator did before it bounded them, for comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil

from simlab.emulator.testing import RawClient, request

from ._common import machine, table, today

INSTS = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP"]
HEAVY = [(ch, i) for i in INSTS for ch in ("books-l2-tbt", "bbo-tbt", "books5", "trades")]

_SERVER = r"""
import asyncio, logging, sys
from simlab.emulator import Emulator
from simlab.emulator.testing import RandomMarket
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
speed, unbounded = float(sys.argv[1]), sys.argv[2] == "1"
limits = {}
if unbounded:
    limits = dict(max_queue=10**9, max_queue_bytes=10**12, send_timeout=86400.0)
async def main():
    emu = Emulator(RandomMarket(seed=3, instruments=@INSTS@, rate=500.0), speed=speed,
                   rest_port=None, idle_timeout=86400.0, **limits)
    await emu.start()
    print(emu.ws_url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for c in emu.closed:
        print("closed", c.number, c.code, c.aborted, c.peak_bytes, flush=True)
    print("open", len(emu.connections), flush=True)
    await emu.stop()
asyncio.run(main())
""".replace("@INSTS@", repr(INSTS))


def soak(seconds: float, speed: float, n_clients: int, unbounded: bool) -> list[dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(speed), "1" if unbounded else "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    try:
        url = proc.stdout.readline().strip()
        dead = [RawClient(url, rcvbuf=4096) for _ in range(n_clients)]
        for c in dead:
            c.send_text(request("subscribe", *HEAVY))
        time.sleep(0.5)
        rss = [ps.memory_info().rss]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.5)
            rss.append(ps.memory_info().rss)
        seen = []
        for c in dead:
            c.sock.settimeout(2.0)
            try:
                msgs = c.read_messages()
                seen.append(f"close {msgs[-1][1][:4]}" if msgs and msgs[-1][0] == 8
                            else "still open" if not msgs else "EOF")
            except (ConnectionResetError, BrokenPipeError):
                seen.append("reset (aborted)")
            except TimeoutError:
                seen.append("still open")
            c.close()
        out, err = proc.communicate("\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    mb = [r / 2**20 for r in rss]
    closed = [ln.split() for ln in out.splitlines() if ln.startswith("closed")]
    rows = [
        ("mode", "unbounded (as before)" if unbounded else "bounded (default limits)"),
        ("speed", f"{speed:g}x"),
        ("duration", f"{seconds:g} s, {n_clients} dead client(s)"),
        ("server RSS start / peak / end", f"{mb[0]:.0f} / {max(mb):.0f} / {mb[-1]:.0f} MB"),
        ("server RSS every 5 s", " ".join(f"{x:.0f}" for x in mb[::10]) + " MB"),
        ("server closes", ", ".join(f"#{n} code {code} aborted {ab} peak queue "
                                    f"{int(peak) / 2**20:.2f} MB"
                                    for _, n, code, ab, peak in closed) or "none"),
        ("clients saw", ", ".join(seen)),
        ("slow-consumer warnings", str(err.count("slow consumer"))),
    ]
    return [{"what": a, "value": b} for a, b in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--speed", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--unbounded", action="store_true",
                    help="no queue bounds, no send timeout (the old behaviour)")
    args = ap.parse_args(argv)
    rows = soak(args.seconds, args.speed, args.clients, args.unbounded)
    print(f"soak_slow_consumer, {today()}, {machine()}")
    print(table(rows, [("what", "what"), ("value", "value")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
