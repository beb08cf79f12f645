"""``simlab record``: record the live OKX feed into a new recording

Record the OKX v5 public feed (or the emulator's) into a new recording DIR: raw frames and
normalised tables in part files closed every --rotate, a status line on stderr, the log in
DIR/record.log. Ctrl-C / SIGTERM closes the files and exits 0. A subscription the server
refuses (e.g. OKX 60018 for a misspelled instrument) stops it with exit 1 naming the
channel, instrument and OKX's code and message, unless --allow-partial. See
docs/recording-format.md, 'Live recording'.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import fields

from ._args import channels, command, new_recording
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, csv_list, duration, duration_or_zero

#: The recorder's default (simlab.record.app.OUTAGE_AFTER_S; not imported here: the
#: parser is built without loading the recorder).
OUTAGE_AFTER_S = 90.0


def add(sub) -> None:
    p = command(sub, __doc__, run)
    p.add_argument("--inst", required=True, type=csv_list, metavar="ID,ID",
                   help="instruments, comma-separated (e.g. BTC-USDT,ETH-USDT-SWAP)")
    channels(p)
    new_recording(p)
    p.add_argument("--duration", type=duration, metavar="T",
                   help="stop after T (e.g. 8h, 30m, 90s; default: until Ctrl-C)")
    p.add_argument("--rotate", type=duration, default=300.0, metavar="T",
                   help="close the part files every T (default 5m)")
    p.add_argument("--allow-partial", action="store_true",
                   help="record the other streams when the server refuses a subscription: "
                        "a warning on stderr and the refusal in the manifest (live.refused; "
                        "simlab verify then fails naming the missing stream)")
    p.add_argument("--outage-after", type=duration, default=OUTAGE_AFTER_S, metavar="T",
                   help="a book stream silent for longer than T is an outage in the manifest "
                        f"(live.outages; default {OUTAGE_AFTER_S:g}s: OKX pushes every book "
                        "at least every ~60 s)")
    p.add_argument("--trade-outage-after", type=duration, metavar="T",
                   help="the same for trades and other channels (default: never, a quiet "
                        "instrument may trade rarely)")
    p.add_argument("--ws-url", metavar="URL", help="WebSocket URL (default OKX's public feed)")
    p.add_argument("--rest-url", metavar="URL", help="REST base URL (default OKX's)")
    p.add_argument("--resync", choices=("auto", "resubscribe", "rest"), default="auto",
                   help="how a broken book is resynced (default auto)")
    p.add_argument("--status-interval", type=duration_or_zero, default=1.0, metavar="DURATION",
                   help="seconds between status lines (0: no status line)")
    p.add_argument("--queue-mb", type=float, default=32.0, metavar="MB",
                   help="payload bytes the writer queue may hold before frames are dropped "
                        "(default 32)")
    p.add_argument("--client-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a live-client setting (ClientConfig field), e.g. ping_interval=5 "
                        "(repeatable)")
    p.add_argument("--stats", action="store_true",
                   help="at the end, also print the performance monitor (stderr): the writer's "
                        "stage latency percentiles (queue, parse, check, store, write), feed "
                        "latency per instrument, message rates, CPU, memory and threads (the "
                        "manifest keeps them either way, under live.monitor)")


def client_options(items: list[str]) -> dict:
    """``--client-option KEY=VALUE`` items as :class:`~simlab.okx.client.ClientConfig`
    fields, each value converted to the field's type.

    >>> client_options(["ping_interval=5", "resync=rest"])
    {'ping_interval': 5.0, 'resync': 'rest'}
    """
    from simlab.okx.client import ClientConfig

    types = {f.name: f.type for f in fields(ClientConfig)}
    out: dict = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in types:
            raise ValueError(f"--client-option {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(types))}")
        default = getattr(ClientConfig(), key)
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                out[key] = int(value)
            elif isinstance(default, float):
                out[key] = float(value)
            elif isinstance(default, str):
                out[key] = value
            else:
                raise ValueError(f"{key} cannot be set from the command line")
        except ValueError:
            raise ValueError(f"--client-option {item!r}: bad value for {key} (a "
                             f"{type(default).__name__})") from None
    return out


def run(args: argparse.Namespace) -> int:
    """Record as the ``simlab record`` arguments ``args`` say; the command's exit status
    (0, or 1 on a write error or a refused subscription, 2 on bad options).

    >>> run(argparse.Namespace(client_option=["nope=1"]))  # doctest: +SKIP
    2
    """
    from simlab.record.app import Recorder, RecordError
    from simlab.record.nopandas import without_pandas

    without_pandas()
    try:
        options = client_options(args.client_option)
        for key, value in (("ws_url", args.ws_url), ("rest_url", args.rest_url)):
            if value:
                options[key] = value
        options["resync"] = args.resync
        subs = [(ch, inst) for inst in args.inst for ch in args.channels]
        rec = Recorder(args.out, subs, duration=args.duration, rotate=args.rotate,
                       queue_bytes=int(args.queue_mb * 2**20),
                       status=None if args.status_interval > 0 else False,
                       status_interval=args.status_interval or 1.0, console=True,
                       allow_partial=args.allow_partial, outage_after=args.outage_after,
                       trade_outage_after=args.trade_outage_after, **options)
    except ValueError as e:
        print(f"simlab record: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rec.stop, f"signal {sig.name}")
        return await rec.run()

    try:
        result = asyncio.run(main())
    except RecordError as e:
        done = getattr(e, "result", None)  # a refusal: what was recorded, then why it failed
        if done is not None and done.frames:
            print(done.summary(), file=sys.stderr)
        print(f"simlab record: error: {e}", file=sys.stderr)
        if args.stats and rec.monitor is not None:
            print(rec.monitor.format("performance (record)"), file=sys.stderr)
        return EXIT_PROBLEMS
    print(result.summary(), file=sys.stderr)
    if result.silent:  # acknowledged, then nothing: shorter than an outage, still no data
        print(f"simlab record: warning: no data from {', '.join(result.silent)}; "
              "simlab verify will fail this recording", file=sys.stderr)
    if args.stats and result.monitor is not None:
        print(result.monitor.format("performance (record)"), file=sys.stderr)
    return EXIT_OK
