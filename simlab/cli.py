"""The ``simlab`` command line.

    simlab import okx-capture OKX.ws.1.0 --out rec [--instruments OKX.0]
    simlab verify rec [--json]
    simlab rebuild rec
    simlab serve [--port 0] [--rest-port 0] [--speed K|max] [--checksum off] [--snapshot off]
                 [--recording DIR] [--fault SPEC ...]
    simlab record --inst BTC-USDT,ETH-USDT-SWAP --channels books,trades --out DIR
                  [--duration 8h] [--rotate 5m] [--ws-url URL] [--rest-url URL] [--stats]
    simlab replay DIR [DIR ...] --inst BTC-USDT --side buy --notional 100 [--fee-tier VIP1]
                  [--order-type limit] [--start T] [--end T] [--json] [--out F.parquet]
                  [--mode events] [--stats]
    simlab demo [--out DIR] [--seconds 30]
    simlab train maker-taker DIR [DIR ...] --inst BTC-USDT --quantity 0.01 [--horizon 5s]
                 [--side both] [--queue conservative] --out model.json
    simlab train slippage DIR [DIR ...] --inst BTC-USDT [--side buy] --out model.json
    simlab synth --out DIR [--seconds 600] [--inst BTC-USDT,...] [--channels books,trades]
                 [--seed 0] [--imbalance-flow BETA] [--checksum on|off]
    simlab sweep DIR [DIR ...] --grid grid.yaml [--inst X] [--executor local|inline|dask://H:P]
                 [--workers N] [--out results] [--ticks] [--json]

Exit status: 0 success, 1 verification found problems (``record``: stopped by a write
error, e.g. a full disk; ``sweep``: a cell failed), 2 unusable input (message on stderr,
no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from . import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    >>> build_parser().parse_args(["verify", "rec", "--json"]).json
    True
    """
    p = argparse.ArgumentParser(prog="simlab", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"simlab {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    sub = p.add_subparsers(dest="command")
    _add_import(sub)
    _add_verify(sub)
    _add_rebuild(sub)
    _add_serve(sub)
    _add_record(sub)
    _add_replay(sub)
    _add_demo(sub)
    _add_train(sub)
    _add_synth(sub)
    _add_sweep(sub)
    return p


def _add_replay(sub) -> None:
    p = sub.add_parser("replay", help="price an order at every tick of a recording",
                       description="Replay recording(s) DIR through the cost pipeline and "
                       "print a cost summary (slippage, fees, impact, net cost, maker "
                       "probability, latency).")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="recording(s), replayed in order")
    p.add_argument("--inst", required=True, help="instrument, e.g. BTC-USDT")
    p.add_argument("--channel", default="books", help="book channel (default books)")
    p.add_argument("--side", required=True, choices=["buy", "sell"])
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--notional", type=float, help="order size in quote currency")
    size.add_argument("--quantity", type=float, help="order size in base currency")
    p.add_argument("--order-type", default="market", choices=["market", "limit"])
    p.add_argument("--fee-tier", default="Lv1", help="OKX fee tier (Lv1, VIP1 ...)")
    p.add_argument("--maker-fee", type=float, help="maker rate override (fraction, e.g. 0.0002)")
    p.add_argument("--taker-fee", type=float, help="taker rate override (fraction)")
    p.add_argument("--ct-val", type=float, help="contract value override (base units)")
    p.add_argument("--start", help="start time (ISO 8601, UTC)")
    p.add_argument("--end", help="end time (ISO 8601, UTC)")
    p.add_argument("--mode", default="columnar", choices=["columnar", "events"],
                   help="columnar (fast) or events (the live code path, per-tick latency)")
    p.add_argument("--horizon", type=float, default=60.0, metavar="T",
                   help="impact: execution horizon in seconds (default 60)")
    p.add_argument("--steps", type=int, default=60, metavar="N",
                   help="impact: steps (default 60: 1 s steps, the step eta is calibrated for)")
    p.add_argument("--risk-aversion", type=float, default=1e-6, metavar="LAMBDA",
                   help="impact: lambda (default 1e-6)")
    for k in ("sigma", "eta", "gamma", "epsilon"):
        p.add_argument(f"--{k}", type=float, help=f"impact: {k} (default: calibrated)")
    p.add_argument("--no-impact", action="store_true", help="price no market impact")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--out", metavar="F", help="write the per-tick table to this Parquet file")
    p.add_argument("--every", type=float, metavar="S",
                   help="with --out: one row per S seconds (the last tick of each interval)")
    p.add_argument("--report", metavar="DIR", help="write charts and the summary to DIR")
    p.add_argument("--maker-taker-model", metavar="F",
                   help="a trained maker/taker model (simlab train maker-taker) for limit "
                   "orders, instead of the queue-share heuristic")
    p.add_argument("--stats", action="store_true",
                   help="also print the performance monitor: stage latency percentiles "
                        "(per stage with --mode events), feed latency per instrument, "
                        "message rates, CPU, memory and threads")
    p.set_defaults(run=_run_replay)


def _seconds(text: str) -> float:
    """A duration: 5s, 500ms, 2m, 1h, or plain seconds."""
    t = text.strip().lower()
    if t.endswith("ms"):
        return _duration(f"{float(t[:-2]) / 1000.0!r}")
    return _duration(t)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on recordings (maker-taker, slippage)",
                       description="Learn from recordings: label and fit, evaluate out of "
                       "sample in time order, print the metrics and save the model as JSON.")
    kinds = p.add_subparsers(dest="kind", required=True)
    mt = kinds.add_parser("maker-taker", help="logistic model of a passive fill within H",
                          description="Label a virtual limit order at the best price at "
                          "sampled moments (filled within the horizon or not), fit a "
                          "standardised logistic regression on the earliest part and score "
                          "it on the latest against the base-rate model.")
    sl = kinds.add_parser("slippage", help="linear and quantile regression of slippage",
                          description="Walk the book with several order sizes at sampled "
                          "moments; fit the mean (linear) and quantiles (linear quantile "
                          "regression) of slippage in bps; report coverage out of sample.")
    for q in (mt, sl):
        q.add_argument("dirs", nargs="+", metavar="DIR", help="recording(s), in time order")
        q.add_argument("--inst", required=True, help="instrument, e.g. BTC-USDT")
        q.add_argument("--channel", default="books", help="book channel (default books)")
        q.add_argument("--every", type=_seconds, default=1.0, metavar="T",
                       help="sampling step (default 1s)")
        q.add_argument("--lookback", type=_seconds, default=5.0, metavar="T",
                       help="history window of trade flow, OFI, volatility (default 5s)")
        q.add_argument("--depth-levels", type=int, default=5, metavar="N",
                       help="levels counted as depth (default 5)")
        q.add_argument("--test-fraction", type=float, default=0.3, metavar="F",
                       help="latest share of the data held out (default 0.3)")
        q.add_argument("--features", type=_csv, metavar="A,B", help="subset of the features")
        q.add_argument("--ct-val", type=float, help="contract value override (base units)")
        q.add_argument("--out", required=True, metavar="F", help="model file to write (JSON)")
        q.add_argument("--dataset", metavar="F", help="also write the labelled rows (Parquet)")
        q.add_argument("--plot", metavar="F", help="also save the reliability / coverage plot")
        q.add_argument("--json", action="store_true", help="print the metrics as JSON")
    size = mt.add_mutually_exclusive_group(required=True)
    size.add_argument("--quantity", type=float, help="order size in base currency")
    size.add_argument("--notional", type=float, help="order size in quote currency")
    mt.add_argument("--horizon", type=_seconds, default=5.0, metavar="H",
                    help="fill horizon (default 5s)")
    mt.add_argument("--side", default="both", choices=["buy", "sell", "both"])
    mt.add_argument("--queue", default="conservative", choices=["conservative", "probabilistic"],
                    help="queue position assumption (default conservative)")
    mt.add_argument("--power", type=float, default=1.0,
                    help="probabilistic queue: f(x) = x**POWER (default 1)")
    mt.add_argument("--C", type=float, default=1.0, dest="C",
                    help="inverse L2 regularisation strength (default 1)")
    sl.add_argument("--side", default="buy", choices=["buy", "sell"])
    sl.add_argument("--notionals", type=_csv, metavar="A,B",
                    help="order sizes in quote (default: 0.1 .. 2 x the median top depth)")
    sl.add_argument("--quantiles", type=_csv, default=["0.5", "0.9", "0.99"], metavar="A,B",
                    help="quantiles to fit (default 0.5,0.9,0.99)")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .models.fill_features import FeatureParams
    from .sim.train import format_result, train_maker_taker, train_slippage

    try:
        params = FeatureParams(lookback_ms=round(args.lookback * 1000),
                               depth_levels=args.depth_levels)
        common = dict(every_s=args.every, params=params, test_fraction=args.test_fraction,
                      channel=args.channel, ct_val=args.ct_val)
        if args.features:
            common["features"] = tuple(args.features)
        if args.kind == "maker-taker":
            res = train_maker_taker(args.dirs, args.inst, quantity=args.quantity,
                                    notional=args.notional, horizon_s=args.horizon,
                                    side=args.side, queue=args.queue, power=args.power,
                                    C=args.C, progress=not args.quiet, **common)
        else:
            res = train_slippage(args.dirs, args.inst, side=args.side,
                                 notionals=tuple(float(x) for x in args.notionals)
                                 if args.notionals else None,
                                 quantiles=tuple(float(x) for x in args.quantiles),
                                 progress=not args.quiet, **common)
    except ValueError as e:
        print(f"simlab train: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    path = res.save(args.out)
    if args.dataset:
        res.dataset.to_parquet(args.dataset, index=False)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
    if args.json:
        sys.stdout.write(json.dumps(res.metrics, indent=2, sort_keys=True) + "\n")
    else:
        print(format_result(res))
        print(f"model: {path}")
    return EXIT_OK


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the offline end-to-end demo",
                       description="Start the local emulator, record it through the live "
                       "client, replay the recording through the cost pipeline and write a "
                       "report folder.")
    p.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--seconds", type=float, default=30.0, help="recording length (30 s)")
    p.set_defaults(run=_run_demo)


def _run_replay(args: argparse.Namespace) -> int:
    from .models.fees import FeeRates
    from .sim.order import OrderSpec
    from .sim.report import write_report
    from .sim.run import price_recording

    try:
        rates = None
        if (args.maker_fee is None) != (args.taker_fee is None):
            raise ValueError("give both --maker-fee and --taker-fee, or neither")
        if args.maker_fee is not None:
            rates = FeeRates(maker=args.maker_fee, taker=args.taker_fee)
        qty, unit = ((args.notional, "quote") if args.notional is not None
                     else (args.quantity, "base"))
        order = OrderSpec(args.inst, args.side, qty, unit, args.order_type, args.fee_tier, rates)
        order.fees(order_inst_type(args.inst))  # a bad tier fails before any work
        overrides = {k: getattr(args, k) for k in ("sigma", "eta", "gamma", "epsilon")}
        model = None
        if args.maker_taker_model:
            from .models.persist import load_model

            if args.order_type != "limit":
                raise ValueError("--maker-taker-model prices limit orders: add --order-type "
                                 "limit (a market order is always taker)")
            model = load_model(args.maker_taker_model)
            if not hasattr(model, "predict") or getattr(model, "name", "") != "logistic":
                raise ValueError(f"{args.maker_taker_model}: not a maker/taker model (it is "
                                 f"a {type(model).__name__}); train one with simlab train "
                                 "maker-taker")
        monitor = True
        if args.stats:
            from .monitor import Monitor

            monitor = Monitor(interval=0.2).start()
        try:
            res, info = price_recording(
                args.dirs, order, mode=args.mode, channel=args.channel, start=args.start,
                end=args.end, impact=None if args.no_impact else "calibrate", T=args.horizon,
                N=args.steps, lam=args.risk_aversion, overrides=overrides, ct_val=args.ct_val,
                model=model, monitor=monitor)
        finally:
            if args.stats:
                monitor.stop()
        if model is not None:
            info["maker_taker_model"] = {"file": args.maker_taker_model,
                                         "features": list(model.features)}
    except ValueError as e:
        print(f"simlab replay: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    summary = res.summary()
    summary["run"] = info
    if args.stats and res.monitor is not None:
        summary["monitor"] = {k: v for k, v in res.monitor.summary().items()
                              if k != "histograms"}
    if args.out:
        if args.every:
            res.sampled(args.every).to_parquet(args.out, index=False, compression="zstd")
        else:
            res.to_parquet(args.out)
    if args.report:
        write_report(res, args.report, summary=summary, ac=res.impact,
                     ac_X=float(res.table["filled_base"].median()) if res.impact and len(
                         res.table) else None)
    if args.json:
        sys.stdout.write(_json(summary))
    else:
        from .sim.summary import format_summary

        print(format_summary(summary))
        if info.get("impact_provenance"):
            p = res.impact
            print(f"impact parameters (sigma {p.sigma:.6g}, eta {p.eta:.6g}, gamma "
                  f"{p.gamma:.6g}, T {p.T:g} s, N {p.N}, lambda {p.lam:g}):")
            for k, v in info["impact_provenance"].items():
                print(f"  {k}: {v}")
        if args.out:
            print(f"per-tick table: {args.out}")
        if args.report:
            print(f"report: {args.report}")
        if args.stats and res.monitor is not None:
            print()
            print(res.monitor.format(f"performance ({args.mode} replay)"))
    return EXIT_OK


def order_inst_type(inst: str) -> str:
    from .okx.rest import inst_type

    return inst_type(inst)


def _json(obj) -> str:
    from .sim.report import summary_to_json

    return summary_to_json(obj)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(["--out", args.out, "--seconds", str(args.seconds)])


def _add_import(sub) -> None:
    from .store.importers import IMPORTERS

    p = sub.add_parser("import", help="import existing data into a new recording",
                       description="Import SRC (format FORMAT) into a new recording DIR.")
    p.add_argument("format", choices=sorted(IMPORTERS), metavar="FORMAT",
                   help=f"one of: {', '.join(sorted(IMPORTERS))}")
    p.add_argument("src", metavar="SRC", help="input file (plain, .gz, .zip or .tar.gz)")
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")
    p.add_argument("--instruments", metavar="FILE",
                   help="REST capture of /api/v5/public/instruments (okx-capture only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_import)


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="replay a recording and check every book",
                       description="Rebuild every book from raw/ and report counts, "
                                   "checksums and gaps. Exit 1 on problems.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(run=_run_verify)


def _add_rebuild(sub) -> None:
    p = sub.add_parser("rebuild", help="re-derive levels/ and trades/ from raw/",
                       description="Delete and re-derive the normalised tables from raw/.")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(run=_run_rebuild)


def _add_serve(sub) -> None:
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
    p.add_argument("--idle-timeout", type=float, default=30.0, metavar="S",
                   help="close a connection after S seconds without push or client frame")
    p.add_argument("--heartbeat", type=float, default=60.0, metavar="S",
                   help="simulated seconds without change before the empty update")
    p.add_argument("--recording", metavar="DIR", help="replay this recording instead")
    p.add_argument("--fault", action="extend", nargs="+", default=[], metavar="SPEC",
                   help="KIND[:key=value,...], e.g. gap:inst=BTC-USDT,after=100 or "
                        "stall:duration=5,at=30 (several, or repeated; see docs/emulator.md)")
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from .emulator import Emulator, default_market, parse_fault

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


def _csv(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def _duration(text: str) -> float:
    from .store.status import parse_duration

    try:
        v = parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be > 0")
    return v


def _add_record(sub) -> None:
    p = sub.add_parser("record", help="record the live OKX feed into a new recording",
                       description="Record the OKX v5 public feed (or the emulator's) into a "
                                   "new recording DIR: raw frames and normalised tables in "
                                   "part files closed every --rotate, a status line on "
                                   "stderr, the log in DIR/record.log. Ctrl-C / SIGTERM "
                                   "closes the files and exits 0. See "
                                   "docs/recording-format.md, 'Live recording'.")
    p.add_argument("--inst", required=True, type=_csv, metavar="ID,ID",
                   help="instruments, comma-separated (e.g. BTC-USDT,ETH-USDT-SWAP)")
    p.add_argument("--channels", type=_csv, default=["books", "trades"], metavar="CH,CH",
                   help="channels, comma-separated (default books,trades)")
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")
    p.add_argument("--duration", type=_duration, metavar="T",
                   help="stop after T (e.g. 8h, 30m, 90s; default: until Ctrl-C)")
    p.add_argument("--rotate", type=_duration, default=300.0, metavar="T",
                   help="close the part files every T (default 5m)")
    p.add_argument("--ws-url", metavar="URL", help="WebSocket URL (default OKX's public feed)")
    p.add_argument("--rest-url", metavar="URL", help="REST base URL (default OKX's)")
    p.add_argument("--resync", choices=("auto", "resubscribe", "rest"), default="auto",
                   help="how a broken book is resynced (default auto)")
    p.add_argument("--status-interval", type=float, default=1.0, metavar="S",
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
    p.set_defaults(run=_run_record)


def _client_options(items: list[str]) -> dict:
    from dataclasses import fields

    from .okx.client import ClientConfig

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


def _run_record(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from .store.recorder import Recorder, RecordError, without_pandas

    without_pandas()
    try:
        options = _client_options(args.client_option)
        for key, value in (("ws_url", args.ws_url), ("rest_url", args.rest_url)):
            if value:
                options[key] = value
        options["resync"] = args.resync
        subs = [(ch, inst) for inst in args.inst for ch in args.channels]
        rec = Recorder(args.out, subs, duration=args.duration, rotate=args.rotate,
                       queue_bytes=int(args.queue_mb * 2**20),
                       status=None if args.status_interval > 0 else False,
                       status_interval=args.status_interval or 1.0, console=True, **options)
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
        print(f"simlab record: error: {e}", file=sys.stderr)
        if args.stats and rec.monitor is not None:
            print(rec.monitor.format("performance (record)"), file=sys.stderr)
        return EXIT_PROBLEMS
    print(result.summary(), file=sys.stderr)
    if args.stats and result.monitor is not None:
        print(result.monitor.format("performance (record)"), file=sys.stderr)
    return EXIT_OK


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic recording offline, in seconds",
                       description="Simulate the emulator's Cont-Stoikov-Talreja market for "
                                   "--seconds of simulated time and write what a live "
                                   "recording of it would hold (acks, snapshots, pushes, "
                                   "instrument metadata) to a new recording DIR. "
                                   "Deterministic: the same arguments give the same data.")
    p.add_argument("--out", required=True, metavar="DIR", help="new recording directory")
    p.add_argument("--seconds", type=float, default=600.0, metavar="S",
                   help="simulated seconds (default 600)")
    p.add_argument("--inst", type=_csv, default=["BTC-USDT"], metavar="ID,ID",
                   help="instruments, comma-separated (default BTC-USDT)")
    p.add_argument("--channels", type=_csv, default=["books", "trades"], metavar="CH,CH",
                   help="channels, comma-separated (default books,trades)")
    p.add_argument("--seed", type=int, default=0, help="market, seqId and connId seed")
    p.add_argument("--imbalance-flow", type=float, metavar="BETA",
                   help="market orders follow the touch imbalance I: buys at mu/2*(1+BETA*I), "
                        "sells at mu/2*(1-BETA*I), BETA in [-1, 1] (default: plain CST flow)")
    p.add_argument("--checksum", choices=("on", "off"), default="off",
                   help="'off' (default): checksum 0 on every frame (OKX since June 2026)")
    p.add_argument("--latency-ms", type=float, default=5.0, metavar="MS",
                   help="receive time after the exchange time (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    import time

    from .emulator.offline import write_synthetic_recording

    t0 = time.perf_counter()
    try:
        path = write_synthetic_recording(
            args.out, seconds=args.seconds, instruments=args.inst, channels=args.channels,
            seed=args.seed, imbalance=args.imbalance_flow, checksum=args.checksum == "on",
            latency_ms=args.latency_ms, progress=not args.no_progress)
    except ValueError as e:
        print(f"simlab synth: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from .store import Recording

    m = Recording(path).manifest
    per = ", ".join(f"{ch} {c['messages']}" for ch, c in m["channels"].items())
    print(f"wrote {path}: {m['arrivals']} frames ({per}), {args.seconds:g} simulated s in "
          f"{time.perf_counter() - t0:.1f} s; check it with: simlab verify {path}")
    return EXIT_OK


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a parameter sweep over recordings (resumable)",
                       description="Price every cell of a grid (or random) spec of order, fee "
                       "and impact parameters over recording(s) DIR, on a process pool, in "
                       "process or on a Dask cluster. Each finished cell is written at once to "
                       "OUT/cells/ (one Parquet dataset); a re-run skips the cells already "
                       "done and retries failed ones. Exit 1 if a cell failed.")
    p.add_argument("dirs", nargs="*", metavar="DIR",
                   help="recording(s) (path or URI); default: the grid file's recordings")
    p.add_argument("--grid", required=True, metavar="FILE",
                   help="YAML spec: grid / random / fixed parameters (examples/sweep_grid.yaml)")
    p.add_argument("--inst", action="append", type=_csv, metavar="ID,ID",
                   help="instrument(s); default: the grid file's insts, else every book "
                   "instrument of the recordings")
    p.add_argument("--executor", default="local", metavar="KIND",
                   help="local (process pool, default), inline (this process) or "
                   "dask://HOST:PORT (a Dask scheduler)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local: worker processes (default: the CPU count)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="output folder (default results)")
    p.add_argument("--ticks", action="store_true",
                   help="also keep each cell's per-tick table (OUT/ticks/)")
    p.add_argument("--top", type=int, default=5, metavar="K",
                   help="best and worst K cells to print (default 5)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_sweep)


def _sweep_spec(args: argparse.Namespace):
    import yaml

    from .feed.replay import streams
    from .store import Recording
    from .sweep import SpecError, SweepSpec

    try:
        with open(args.grid) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise SpecError(f"{args.grid}: not valid YAML: {e}") from None
    doc = {} if doc is None else doc
    dirs = args.dirs or None
    insts = [i for group in args.inst for i in group] if args.inst else None
    if insts is None and isinstance(doc, dict) and not doc.get("insts"):
        recs = dirs or doc.get("recordings") or []
        recs = [recs] if isinstance(recs, str) else recs
        found = {}
        for r in recs:
            for _, inst in streams(Recording(r), "book"):
                found.setdefault(inst, None)
        insts = list(found) or None
    try:
        spec = SweepSpec.from_dict(doc, recordings=dirs, insts=insts)
    except SpecError as e:
        raise SpecError(f"{args.grid}: {e}") from None
    for r in spec.recordings:
        Recording(r)  # a missing recording is a usage error, not 100 failed cells
    return spec


def _run_sweep(args: argparse.Namespace) -> int:
    from .sweep import run_sweep

    try:
        spec = _sweep_spec(args)
        res = run_sweep(spec, args.out, args.executor, workers=args.workers,
                        progress=not (args.no_progress or args.quiet), keep_ticks=args.ticks)
    except ValueError as e:
        print(f"simlab sweep: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"simlab sweep: interrupted; finished cells are kept in {args.out}/cells, "
              "run the same command again to do the rest", file=sys.stderr)
        return 130
    summary = _sweep_summary(spec, res, args.top)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=1, default=str) + "\n")
    else:
        print(_format_sweep(summary))
    return EXIT_PROBLEMS if summary["failed_cells"] else EXIT_OK


def _sweep_summary(spec, res, top: int) -> dict:
    """Counts, the best and worst cells by mean net cost, and the failed cells."""
    import math

    t = res.table
    shown = [c for c in ("recording", "inst") if t[c].nunique() > 1]
    shown += [f"p_{k}" for k in spec.varying()]
    metrics = ["net_bps_mean", "net_bps_p50", "net_bps_p90", "maker_prob_mean", "ticks"]
    ok = t[t["status"] == "ok"].sort_values("net_bps_mean", kind="stable")

    def rows(df) -> list[dict]:
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in r.items()} for r in df[["cell", *shown, *metrics]]
                .to_dict("records")]

    bad = t[t["status"] != "ok"]
    return {"out": str(res.out), "cells": len(spec.cells()), "ran": res.ran,
            "skipped": res.skipped, "failed": res.failed, "missing": res.missing,
            "ok": len(ok), "columns": shown, "best": rows(ok.head(top)),
            "worst": rows(ok.tail(top).iloc[::-1]),
            "failed_cells": [{"cell": r["cell"], "recording": r["recording"],
                              "inst": r["inst"], "error": r["error"]}
                             for r in bad.to_dict("records")]}


def _format_sweep(s: dict) -> str:
    import pandas as pd

    lines = [f"sweep: {s['cells']} cells: {s['ran']} ran ({s['failed']} failed), "
             f"{s['skipped']} already done, {s['missing']} not run"]
    for title, key in (("lowest mean net cost", "best"), ("highest mean net cost", "worst")):
        if s[key]:
            df = pd.DataFrame(s[key])
            fmt = {c: (lambda v: f"{v:.10g}") if c.startswith("p_") else (lambda v: f"{v:.4g}")
                   for c in df.columns if df[c].dtype.kind == "f"}
            text = df.rename(columns=lambda c: c.removeprefix("p_")).to_string(
                index=False, formatters={c.removeprefix("p_"): f for c, f in fmt.items()})
            lines += [f"{title}:", text]
    if s["failed_cells"]:
        lines.append(f"failed cells ({len(s['failed_cells'])}; a re-run retries them):")
        lines += [f"  {f['cell']} {f['inst']} {f['recording']}: {f['error']}"
                  for f in s["failed_cells"][:10]]
    out = s["out"]
    lines.append(f"results: {out}/cells (Parquet dataset, one row per cell; "
                 f"simlab.sweep.load_results({out!r})), spec: {out}/spec.yaml")
    return "\n".join(lines)


def _run_import(args: argparse.Namespace) -> int:
    from .store import import_file

    result = import_file(args.format, args.src, args.out, instruments=args.instruments,
                         progress=False if args.no_progress else None)
    print(result.summary())
    return EXIT_OK


def _run_verify(args: argparse.Namespace) -> int:
    from .store import format_report, verify

    report = verify(args.dir, progress=bool(args.progress))
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(format_report(report))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _run_rebuild(args: argparse.Namespace) -> int:
    from .store import rebuild

    rows = rebuild(args.dir)
    print(f"rebuilt {args.dir}: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    >>> main(["verify", "/nonexistent"])  # doctest: +SKIP
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="simlab: %(levelname)s: %(message)s")
    from .store import RecordingError, SourceError

    try:
        return args.run(args)
    except (RecordingError, SourceError, OSError) as e:
        print(f"simlab {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
