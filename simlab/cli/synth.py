"""``simlab synth``: write a synthetic recording offline, in seconds

Simulate the emulator's Cont-Stoikov-Talreja market for --seconds of simulated time and
write what a live recording of it would hold (acks, snapshots, pushes, instrument
metadata) to a new recording DIR. Deterministic: the same arguments give the same data.
"""

from __future__ import annotations

import argparse
import sys

from ._args import channels, command, new_recording, no_progress
from ._common import EXIT_OK, EXIT_USAGE, csv_list, duration, duration_or_zero


def add(sub) -> None:
    p = command(sub, __doc__, run)
    new_recording(p)
    p.add_argument("--duration", "--seconds", dest="seconds", type=duration, default=600.0,
                   metavar="DURATION", help="simulated time, e.g. 600s or 10m (default 10m)")
    p.add_argument("--inst", type=csv_list, default=["BTC-USDT"], metavar="ID,ID",
                   help="instruments, comma-separated (default BTC-USDT)")
    channels(p)
    p.add_argument("--seed", type=int, default=0, help="market, seqId and connId seed")
    p.add_argument("--imbalance-flow", type=float, metavar="BETA",
                   help="market orders follow the touch imbalance I: buys at mu/2*(1+BETA*I), "
                        "sells at mu/2*(1-BETA*I), BETA in [-1, 1] (default: plain CST flow)")
    p.add_argument("--checksum", choices=("on", "off"), default="off",
                   help="'off' (default): checksum 0 on every frame (OKX since June 2026)")
    p.add_argument("--latency", type=duration_or_zero, default=0.005, metavar="DURATION",
                   help="receive time after the exchange time, e.g. 5ms (default 5ms)")
    p.add_argument("--latency-ms", type=float, help=argparse.SUPPRESS)  # the old spelling
    no_progress(p)


def run(args: argparse.Namespace) -> int:
    import time

    from simlab.emulator.offline import write_synthetic_recording

    latency_ms = args.latency * 1000.0 if args.latency_ms is None else args.latency_ms
    t0 = time.perf_counter()
    try:
        path = write_synthetic_recording(
            args.out, seconds=args.seconds, instruments=args.inst, channels=args.channels,
            seed=args.seed, imbalance=args.imbalance_flow, checksum=args.checksum == "on",
            latency_ms=latency_ms, progress=False if args.no_progress else None)
    except ValueError as e:
        print(f"simlab synth: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from simlab.store import Recording

    m = Recording(path).manifest
    per = ", ".join(f"{ch} {c['messages']}" for ch, c in m["channels"].items())
    print(f"wrote {path}: {m['arrivals']} frames ({per}), {args.seconds:g} simulated s in "
          f"{time.perf_counter() - t0:.1f} s; check it with: simlab verify {path}")
    return EXIT_OK
