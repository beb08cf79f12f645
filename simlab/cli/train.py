"""``simlab train``: train a model on recordings (maker-taker, slippage)

Learn from recordings: label and fit, evaluate out of sample in time order, print the
metrics and save the model as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._args import book_stream, command, ct_val, json_flag
from ._common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, csv_list, duration


def add(sub) -> None:
    p = command(sub, __doc__, run)
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
        book_stream(q, "recording(s), in time order")
        q.add_argument("--every", type=duration, default=1.0, metavar="T",
                       help="sampling step (default 1s)")
        q.add_argument("--lookback", type=duration, default=5.0, metavar="T",
                       help="history window of trade flow, OFI, volatility (default 5s)")
        q.add_argument("--depth-levels", type=int, default=5, metavar="N",
                       help="levels counted as depth (default 5)")
        q.add_argument("--start", help="first moment to sample (ISO 8601, UTC; on the "
                       "--time-basis clock)")
        q.add_argument("--end", help="last moment to sample (ISO 8601, UTC; on the "
                       "--time-basis clock; a label may look past it by the horizon)")
        q.add_argument("--time-basis", default="exchange", choices=["exchange", "recv"],
                       help="clock of --start/--end: exchange (default: the time the "
                       "exchange stamped, what simlab verify prints) or recv (receive time)")
        q.add_argument("--test-fraction", type=float, default=0.3, metavar="F",
                       help="latest share of the data held out (default 0.3)")
        q.add_argument("--features", type=csv_list, metavar="A,B", help="subset of the features")
        ct_val(q)
        q.add_argument("--out", required=True, metavar="F", help="model file to write (JSON)")
        q.add_argument("--dataset", metavar="F", help="also write the labelled rows (Parquet)")
        q.add_argument("--plot", metavar="F", help="also save the reliability / coverage plot")
        json_flag(q, "the metrics")
        q.add_argument("--allow-weak", action="store_true",
                       help="save the model even if it does not beat its baseline out of "
                       "sample (it is marked weak in the file and warns when used); "
                       "without it such a model is not saved and train exits 1")
    size = mt.add_mutually_exclusive_group(required=True)
    size.add_argument("--quantity", type=float, help="order size in base currency")
    size.add_argument("--notional", type=float, help="order size in quote currency")
    # "horizon" alone is ambiguous beside replay's impact horizon T: the fill horizon has
    # its own name (--horizon stays as an alias of it, here only).
    mt.add_argument("--fill-horizon", "--horizon", dest="fill_horizon", type=duration,
                    default=5.0, metavar="DURATION",
                    help="fill horizon: how long a passive order may wait, e.g. 5s (default 5s)")
    mt.add_argument("--side", default="both", choices=["buy", "sell", "both"])
    mt.add_argument("--queue", default="conservative", choices=["conservative", "probabilistic"],
                    help="queue position assumption (default conservative)")
    mt.add_argument("--power", type=float, default=1.0,
                    help="probabilistic queue: f(x) = x**POWER (default 1)")
    mt.add_argument("--C", type=float, default=1.0, dest="C",
                    help="inverse L2 regularisation strength (default 1)")
    sl.add_argument("--side", default="buy", choices=["buy", "sell"])
    sl.add_argument("--notionals", type=csv_list, metavar="A,B",
                    help="order sizes in quote (default: 0.1 .. 2 x the median top depth)")
    sl.add_argument("--quantiles", type=csv_list, default=["0.5", "0.9", "0.99"], metavar="A,B",
                    help="quantiles to fit (default 0.5,0.9,0.99)")


def run(args: argparse.Namespace) -> int:
    from simlab.extras import require
    from simlab.models.fill_features import FeatureParams
    from simlab.sim.train import format_result, train_maker_taker, train_slippage

    # before any work: labelling a night takes minutes, the fit would then fail
    require("sklearn", feature="simlab train")
    if args.plot:
        require("matplotlib", feature="simlab train --plot")
    try:
        params = FeatureParams(lookback_ms=round(args.lookback * 1000),
                               depth_levels=args.depth_levels)
        common = dict(every_s=args.every, params=params, test_fraction=args.test_fraction,
                      channel=args.channel, ct_val=args.ct_val, start=args.start,
                      end=args.end, time_basis=args.time_basis,
                      progress=False if args.quiet else None)
        if args.features:
            common["features"] = tuple(args.features)
        if args.kind == "maker-taker":
            res = train_maker_taker(args.dirs, args.inst, quantity=args.quantity,
                                    notional=args.notional, horizon_s=args.fill_horizon,
                                    side=args.side, queue=args.queue, power=args.power,
                                    C=args.C, **common)
        else:
            res = train_slippage(args.dirs, args.inst, side=args.side,
                                 notionals=tuple(float(x) for x in args.notionals)
                                 if args.notionals else None,
                                 quantiles=tuple(float(x) for x in args.quantiles), **common)
    except ValueError as e:
        print(f"simlab train: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if res.weak and not args.allow_weak:
        # the scores still print: the user sees why, and can decide with --allow-weak
        if args.json:
            sys.stdout.write(json.dumps(res.metrics, indent=2, sort_keys=True) + "\n")
        else:
            print(format_result(res))
        print(f"simlab train: error: the model is weak, not saved to {args.out}: "
              f"{res.weak_reason}. Record more data, change the features or settings, or "
              "pass --allow-weak to save it marked weak", file=sys.stderr)
        return EXIT_PROBLEMS
    path = res.save(args.out)
    if res.weak:
        print(f"simlab train: warning: saved a WEAK model (marked weak in {path}): "
              f"{res.weak_reason}", file=sys.stderr)
    if args.dataset:
        res.dataset.to_parquet(args.dataset, index=False)
    if args.plot:
        require("matplotlib", feature="simlab train --plot").use("Agg")
        ax = res.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
    if args.json:
        sys.stdout.write(json.dumps(res.metrics, indent=2, sort_keys=True) + "\n")
    else:
        print(format_result(res))
        print(f"model: {path}")
    return EXIT_OK
