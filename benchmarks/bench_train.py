"""Learning from recordings: labelling, training, and the cost of a trained model per tick.

Data: one simulated hour of the emulator's BTC-USDT market (``simlab synth`` with
``--imbalance-flow 0.9``, market orders at 8/s, depth 100), written once into a temporary
folder (not timed): about 36,000 book messages and 80,000 trades.

- ``label``: :func:`simlab.sim.fill_dataset.fill_dataset`, both sides every second, 1 s
  horizon: read the tables, rebuild the book in C, run the feature state over every book
  message and trade, label; moments/s.
- ``train maker-taker``: the whole of ``simlab train maker-taker`` (labels, time split,
  fit, out-of-sample metrics); moments/s.
- ``train slippage``: walk five sizes per second, fit the mean and three quantiles;
  rows/s.
- ``pipeline``: a limit order priced columnar with the trained model (feature state in
  Python over every message and trade) and with the default queue-share heuristic; ticks/s,
  and per event (the live code path) the per-tick p50 of the ``models`` stage (features,
  model, formulas), the median over the runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from simlab.emulator import write_synthetic_recording
from simlab.emulator.cst import CSTParams
from simlab.feed.replay import ReplaySource
from simlab.sim.fill_dataset import fill_dataset
from simlab.sim.order import OrderSpec
from simlab.sim.pipeline import CostPipeline
from simlab.sim.train import train_maker_taker, train_slippage

SECONDS = 3600
QTY = 0.01


def _timed(fn, runs: int) -> tuple[float, float, object]:
    """Median and max/min of items/s over ``runs`` runs (after one warm-up); last result."""
    out = fn()
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        rates.append(out[0] / (time.perf_counter() - t))
    return statistics.median(rates), max(rates) / min(rates), out[1]


def run(runs: int = 5) -> list[dict]:
    runs = max(1, runs // 2)  # each run takes seconds
    with tempfile.TemporaryDirectory() as tmp:
        rec = write_synthetic_recording(Path(tmp) / "rec", seconds=SECONDS, imbalance=0.9,
                                        params=CSTParams(mu=8.0, depth=100), seed=2)
        data = f"synthetic BTC-USDT, {SECONDS // 60} min"
        rows = []

        def label():
            d = fill_dataset(rec, "BTC-USDT", quantity=QTY, horizon_s=1.0)
            return len(d), d
        rate, spread, d = _timed(label, runs)
        rows.append({"what": "maker/taker labels + features (fill_dataset)", "data": data,
                     "rate": rate, "spread": spread,
                     "note": f"moments x sides /s ({len(d):,} per run)"})

        def train():
            r = train_maker_taker(rec, "BTC-USDT", quantity=QTY, horizon_s=1.0)
            return len(r.dataset), r
        rate, spread, r = _timed(train, runs)
        rows.append({"what": "simlab train maker-taker (labels, split, fit, metrics)",
                     "data": data, "rate": rate, "spread": spread,
                     "note": f"moments/s; test AUC {r.metrics['auc']:.2f}"})
        model = r.model

        def slip():
            s = train_slippage(rec, "BTC-USDT", side="buy")
            return len(s.dataset), s
        rate, spread, s = _timed(slip, runs)
        rows.append({"what": "simlab train slippage (5 sizes, mean + 3 quantiles)",
                     "data": data, "rate": rate, "spread": spread,
                     "note": f"rows/s; q90 coverage {s.metrics['coverage']['q90']:.3f}"})

        order = OrderSpec("BTC-USDT", "buy", QTY, "base", "limit")
        meta = ReplaySource(rec).instruments
        for name, m in (("trained logistic", model), ("queue-share default", None)):
            p = CostPipeline(order, model=m, metadata=meta)

            def columnar(p=p):
                res = p.run_recording(rec)
                return len(res.table), res
            rate, spread, _ = _timed(columnar, runs)
            events = list(ReplaySource(rec, channels=p.channels))  # decoded once, not timed
            p50s = []
            for _ in range(runs):
                p.reset()
                for e in events:
                    p.on_event(e)
                p50s.append(float(np.median(p.result().latency["models_ns"])) / 1000)
            p50 = statistics.median(p50s)
            rows.append({"what": f"cost pipeline, limit order, {name}: columnar", "data": data,
                         "rate": rate, "spread": spread,
                         "note": f"ticks/s; per event: models stage p50 {p50:.1f} us"})
        return rows


if __name__ == "__main__":
    for row in run(3):
        print(row)
