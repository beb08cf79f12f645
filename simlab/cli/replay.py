"""``simlab replay``: price an order at every tick of a recording

Replay recording(s) DIR through the cost pipeline and print a cost summary (slippage, fees,
impact, net cost, maker probability, latency). The statistics cover the ticks where the book
could fill the whole order; the others are counted apart. Exit 1 when it could fill the
order at no tick (no cost to report).
"""

from __future__ import annotations

import argparse
import sys

from ._args import book_stream, command, ct_val, json_flag
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, duration, duration_or_zero, to_json


def add(sub) -> None:
    p = command(sub, __doc__, run)
    book_stream(p, "recording(s), replayed in order")
    p.add_argument("--side", required=True, choices=["buy", "sell"])
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--notional", type=float, help="order size in quote currency")
    size.add_argument("--quantity", type=float, help="order size in base currency")
    p.add_argument("--order-type", default="market", choices=["market", "limit"])
    p.add_argument("--fee-tier", default="Lv1", help="OKX fee tier (Lv1, VIP1 ...)")
    p.add_argument("--maker-fee", type=float, help="maker rate override (fraction, e.g. 0.0002)")
    p.add_argument("--taker-fee", type=float, help="taker rate override (fraction)")
    ct_val(p)
    p.add_argument("--start", help="start time (ISO 8601, UTC; on the --time-basis clock)")
    p.add_argument("--end", help="end time (ISO 8601, UTC; on the --time-basis clock)")
    p.add_argument("--time-basis", default="exchange", choices=["exchange", "recv"],
                   help="clock of --start/--end: exchange (default: the time the exchange "
                   "stamped on each message, what simlab verify prints) or recv (local "
                   "receive time)")
    p.add_argument("--mode", default="columnar", choices=["columnar", "events"],
                   help="columnar (fast) or events (the live code path, per-tick latency)")
    # One name per concept: the Almgren-Chriss T, N and lambda (YAML and Python: T, N, lam).
    # 0 parses, so that RunConfig rejects it with its one message for the rule
    p.add_argument("--impact-horizon", "--T", dest="T", type=duration_or_zero, default=60.0,
                   metavar="DURATION", help="impact: execution horizon T, e.g. 60s or 5m "
                   "(default 60s)")
    p.add_argument("--impact-steps", "--N", dest="N", type=int, default=60, metavar="N",
                   help="impact: steps N (default 60: 1 s steps, the step eta is calibrated for)")
    p.add_argument("--risk-aversion", "--lam", dest="lam", type=float, default=1e-6,
                   metavar="LAMBDA", help="impact: risk aversion lambda (default 1e-6)")
    for k in ("sigma", "eta", "gamma", "epsilon"):
        p.add_argument(f"--{k}", type=float, help=f"impact: {k} (default: calibrated)")
    p.add_argument("--no-impact", action="store_true", help="price no market impact")
    p.add_argument("--include-incomplete", action="store_true",
                   help="cost statistics over every tick, also those where the book could "
                   "not fill the whole order (priced for the part filled); default: over "
                   "the complete ticks only, the others counted apart")
    json_flag(p)
    p.add_argument("--out", metavar="F", help="write the per-tick table to this Parquet file")
    p.add_argument("--every", type=duration, metavar="DURATION",
                   help="with --out: one row per interval, e.g. 1s (the last tick of each)")
    p.add_argument("--report", metavar="DIR", help="write charts and the summary to DIR")
    p.add_argument("--maker-taker-model", metavar="F",
                   help="a trained maker/taker model (simlab train maker-taker) for limit "
                   "orders, instead of the queue-share heuristic")
    p.add_argument("--slippage-model", metavar="F",
                   help="a trained slippage model (simlab train slippage, same --side): its "
                   "prediction is reported as slippage_model_bps (and one column per "
                   "quantile) beside the walk-the-book slippage, which the net cost keeps")
    p.add_argument("--stats", action="store_true",
                   help="also print the performance monitor: stage latency percentiles "
                        "(per stage with --mode events), feed latency per instrument, "
                        "message rates, CPU, memory and threads")


def config(args: argparse.Namespace):
    """The :class:`~simlab.sim.config.RunConfig` of the flags (each flag's dest is its field
    or the field's alias, ``--no-impact`` is ``impact="none"``); errors name the flags."""
    from simlab.sim.config import FIELDS, RunConfig, sweep_name

    values = {}
    for name in FIELDS:
        dest = name if hasattr(args, name) else sweep_name(name)
        if hasattr(args, dest):
            values[name] = getattr(args, dest)
    values["inst"] = args.inst
    values["impact"] = "none" if args.no_impact else "calibrate"
    return RunConfig.build(names="cli", **values)


def run(args: argparse.Namespace) -> int:
    from simlab.sim.report import write_report
    from simlab.sim.run import price_recording

    try:
        cfg = config(args)
        model, slip_model = cfg.maker_taker, cfg.slippage
        monitor = True
        if args.stats:
            from simlab.monitor import Monitor

            monitor = Monitor(interval=0.2).start()
        try:
            res, info = price_recording(args.dirs, cfg, monitor=monitor)
        finally:
            if args.stats:
                monitor.stop()
        if model is not None:
            info["maker_taker_model"] = {"file": args.maker_taker_model,
                                         "features": list(model.features)}
        if slip_model is not None:
            info["slippage_model"] = {"file": args.slippage_model,
                                      "features": list(slip_model.features)}
    except ValueError as e:
        print(f"simlab replay: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    summary = res.summary(include_incomplete=args.include_incomplete)
    summary["run"] = info
    if slip_model is not None:
        summary["slippage_model"] = _slippage_model_summary(res, slip_model,
                                                            args.include_incomplete)
    fills = summary["fills"]
    # no tick filled: there is no cost to report, and the exit code must say so
    unfilled = fills["ticks"] > 0 and fills["covered_ticks"] == 0
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
    if fills.get("warning") and (args.json or unfilled):
        print(f"simlab replay: warning: {fills['warning']}", file=sys.stderr)
    if args.json:
        sys.stdout.write(to_json(summary))
    else:
        from simlab.sim.summary import format_summary

        print(format_summary(summary))
        if "slippage_model" in summary:
            s = summary["slippage_model"]
            print(f"slippage model ({args.slippage_model}): mean {s['mean_bps']:.4f} bps "
                  f"predicted vs {s['walk_mean_bps']:.4f} bps walking the book, over "
                  f"{s['ticks']} {s['covers']} ticks")
        if info.get("start") or info.get("end"):
            print(f"time range: {info.get('start') or 'the start'} .. "
                  f"{info.get('end') or 'the end'}")
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
    return EXIT_PROBLEMS if unfilled else EXIT_OK


def _slippage_model_summary(res, model, include_incomplete: bool) -> dict:
    """The slippage model's columns described over the ticks the cost summary covers."""
    from simlab.sim.model_use import slippage_columns
    from simlab.sim.summary import COVERS, covered, describe

    t = covered(res.table, include_incomplete)
    cols = slippage_columns(model)
    return {"columns": {c: describe(t[c]) for c in cols}, "ticks": len(t),
            "covers": COVERS[include_incomplete],
            "mean_bps": describe(t[cols[0]])["mean"],
            "walk_mean_bps": describe(t["slippage_bps"])["mean"]}
