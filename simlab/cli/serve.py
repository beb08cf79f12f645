"""``simlab serve``: run a local OKX exchange (WebSocket + REST)

Serve a simulated market (or a recording) over OKX's v5 public WebSocket and REST
protocols until Ctrl-C. See docs/emulator.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from ._args import command
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, csv_list, duration, duration_or_zero


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1); anything but loopback needs "
                        "--public")
    p.add_argument("--public", action="store_true",
                   help="allow a non-loopback --host: the emulator has no authentication, "
                        "anyone who can reach the address can connect (warns on stderr)")
    p.add_argument("--port", type=int, default=0, help="WebSocket port (0: any free port)")
    p.add_argument("--rest-port", type=int, default=0, help="REST port (0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="market and seqId seed")
    # A comma list like --inst elsewhere (one list dialect); repeating the flag adds more.
    p.add_argument("--instruments", "--inst", type=csv_list, action="extend",
                   metavar="A,B", dest="instruments",
                   help="instruments of the simulated market, comma-separated "
                        "(default: the market's own)")
    p.add_argument("--speed", default="1", metavar="K|max",
                   help="simulated seconds per second, or 'max' (as fast as clients read)")
    p.add_argument("--clock", choices=("wall", "sim"), default=None,
                   help="what the frames' ts say: wall time ('wall', the default at speed 1) "
                        "or a simulated clock ('sim', the default at any other speed)")
    p.add_argument("--start", metavar="TIME",
                   help="with --clock sim: the simulated clock's start, ISO 8601 "
                        "(e.g. 2026-01-01T00:00Z; default: the market's)")
    p.add_argument("--latency", type=duration_or_zero, default=0.0, metavar="DURATION",
                   help="with --clock wall: simulated network latency, e.g. 5ms (frames "
                        "leave that long after their ts)")
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


def run(args: argparse.Namespace) -> int:
    import asyncio

    from simlab.emulator import Emulator, default_market, parse_fault
    from simlab.emulator.clock import parse_start
    from simlab.emulator.server import check_host

    try:
        try:
            if not args.public:  # with --public the emulator itself warns (and we do below)
                check_host(args.host)
        except ValueError:
            raise ValueError(f"--host {args.host!r} is not a loopback address (127.0.0.1, ::1, "
                             "localhost); the emulator has no authentication: add --public "
                             "to serve it to other machines") from None
        try:
            speed = None if args.speed == "max" else float(args.speed)
        except ValueError:
            raise ValueError(f"--speed {args.speed!r}: expected a number > 0 or 'max'") from None
        if args.recording is not None and args.clock == "wall":
            raise ValueError("--clock wall: a recording is served with the ts it recorded")
        start_ms = parse_start(args.start) if args.start is not None else None
        if start_ms is not None and args.clock != "sim":
            raise ValueError("--start sets the simulated clock: add --clock sim")
        clock_mode = args.clock
        if clock_mode is None and args.recording is None:
            clock_mode = "wall" if speed == 1 else "sim"
        if args.latency and clock_mode != "wall":
            raise ValueError("--latency delays frames behind wall time: it needs --clock "
                             "wall (and --speed 1)")
        if clock_mode == "wall" and speed != 1:
            raise ValueError(f"--clock wall runs at --speed 1, got --speed {args.speed}; "
                             "use --clock sim")
        faults = [parse_fault(f) for f in args.fault]
        market = None
        if args.recording is None:
            market = default_market(args.seed, args.instruments)
        emu = Emulator(market, recording=args.recording, host=args.host, port=args.port,
                       rest_port=args.rest_port, speed=speed, seed=args.seed,
                       checksum=args.checksum == "on", snapshot=args.snapshot == "on",
                       tbt_access=args.tbt_access, idle_timeout=args.idle_timeout,
                       heartbeat_s=args.heartbeat, faults=faults, public=args.public,
                       clock_mode=clock_mode, latency_ms=args.latency * 1000.0,
                       start_ms=start_ms)
    except ValueError as e:
        print(f"simlab serve: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.public:
        print(f"simlab serve: warning: --public: serving on {args.host!r} without "
              "authentication; anyone who can reach it can connect", file=sys.stderr)

    async def serve() -> None:
        await emu.start()
        what = args.recording or type(emu.feed.source).__name__
        clock = ("recorded ts" if args.recording else
                 f"clock wall, latency {emu.latency_ms:g} ms" if emu.clock_mode == "wall" else
                 "clock sim")
        print(f"simlab serve: {what}, speed {args.speed}, checksum {args.checksum}, "
              f"snapshot {args.snapshot}, {clock}")
        print(f"ws   {emu.ws_url}")
        print(f"rest {emu.rest_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emu.stop()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(serve())
    if emu.clock_error is not None:  # logged when it happened; the clients saw 1011
        e = emu.clock_error
        print(f"simlab serve: error: the feed stopped: the market raised "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK
