"""``simlab serve``."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ._common import EXIT_OK, EXIT_USAGE, duration


def add(sub) -> None:
    p = sub.add_parser("serve", help="run a local OKX exchange (WebSocket + REST)",
                       description="Serve a simulated market (or a recording) over OKX's v5 "
                                   "public WebSocket and REST protocols until Ctrl-C. "
                                   "See docs/emulator.md.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--port", type=int, default=0, help="WebSocket port (0: any free port)")
    p.add_argument("--rest-port", type=int, default=0, help="REST port (0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="market and seqId seed")
    p.add_argument("--instruments", nargs="+", metavar="INST",
                   help="instruments of the simulated market (default: the market's own)")
    p.add_argument("--speed", default="1", metavar="K|max",
                   help="simulated seconds per second, or 'max' (as fast as clients read)")
    p.add_argument("--checksum", choices=("on", "off"), default="on",
                   help="'off': checksum 0 on every frame (OKX since June 2026)")
    p.add_argument("--snapshot", choices=("on", "off"), default="on",
                   help="'off': no initial snapshot on incremental book channels (bootstrap "
                        "from REST, OKX's announced 2026 change)")
    p.add_argument("--tbt-access", choices=("open", "login", "deny"), default="open",
                   help="*-l2-tbt channels: served without login (open), after a login "
                        "request (login), or refused as for a non-VIP account (deny)")
    p.add_argument("--idle-timeout", type=duration, default=30.0, metavar="DURATION",
                   help="close a connection after S seconds without push or client frame")
    p.add_argument("--heartbeat", type=duration, default=60.0, metavar="DURATION",
                   help="simulated seconds without change before the empty update")
    p.add_argument("--recording", metavar="DIR", help="replay this recording instead")
    # repeated, not a comma list: a spec holds commas of its own
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="KIND[:key=value,...], e.g. gap:inst=BTC-USDT,after=100 or "
                        "stall:duration=5,at=30 (repeat for several; see docs/emulator.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from simlab.emulator import Emulator, default_market, parse_fault

    try:
        speed = None if args.speed == "max" else float(args.speed)
        faults = [parse_fault(f) for f in args.fault]
        market = None
        if args.recording is None:
            market = default_market(args.seed, args.instruments)
        emu = Emulator(market, recording=args.recording, host=args.host, port=args.port,
                       rest_port=args.rest_port, speed=speed, seed=args.seed,
                       checksum=args.checksum == "on", snapshot=args.snapshot == "on",
                       tbt_access=args.tbt_access, idle_timeout=args.idle_timeout,
                       heartbeat_s=args.heartbeat, faults=faults,
                       start_on_subscribe=args.recording is not None)
    except ValueError as e:
        print(f"simlab serve: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    async def serve() -> None:
        await emu.start()
        what = args.recording or type(emu.feed.source).__name__
        print(f"simlab serve: {what}, speed {args.speed}, checksum {args.checksum}, "
              f"snapshot {args.snapshot}")
        print(f"ws   {emu.ws_url}")
        print(f"rest {emu.rest_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emu.stop()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(serve())
    return EXIT_OK
