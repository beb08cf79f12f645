"""Parameter sweeps: a 100-cell sweep over the sample recording on 1 and 2 workers.

Data: ``data/sample`` (600 s of synthetic BTC-USDT, 6,001 book messages). The sweep: 25
order sizes (1,000 to 1,000,000 USDT, log-spaced) x buy/sell x Lv1/VIP1 fee tiers = 100
cells, each a columnar replay of the whole recording through the cost pipeline with
Almgren-Chriss impact calibrated from the data (once per worker process, then cached).

Executors: a process pool and a Dask ``LocalCluster`` (one process per worker, one thread
each), created and warmed up before timing (worker start-up and simlab's import are not
counted); every timed run writes to a new results folder, so no cell is skipped. Rows report
cells/s (median of the runs) and the 2-worker / 1-worker ratio.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from simlab.sweep import SweepSpec, run_sweep

from ._common import REPO

SAMPLE = REPO / "data" / "sample"


def spec() -> SweepSpec:
    sizes = [float(f"{x:.4g}") for x in np.logspace(3, 6, 25)]
    return SweepSpec([str(SAMPLE)], ["BTC-USDT"],
                     grid={"notional": sizes, "side": ["buy", "sell"],
                           "fee_tier": ["Lv1", "VIP1"]},
                     fixed={"T": 60, "N": 60, "lam": 1e-6})


def _time(executor, runs: int, tmp: Path) -> tuple[float, float]:
    s = spec()
    rates = []
    for k in range(runs + 1):  # the first run warms the workers' caches (not counted)
        t = time.perf_counter()
        r = run_sweep(s, tmp / f"run{id(executor)}_{k}", executor, progress=False)
        dt = time.perf_counter() - t
        if r.failed:
            raise RuntimeError(f"{r.failed} cells failed: {r.table['error'].dropna().iloc[0]}")
        if k:
            rates.append(len(r.table) / dt)
    return statistics.median(rates), max(rates) / min(rates)


def run(runs: int = 5) -> list[dict]:
    if not (SAMPLE / "manifest.json").exists():
        return [{"what": "sweep", "data": f"{SAMPLE} absent: skipped", "rate": "-",
                 "spread": "-", "note": ""}]
    runs = max(1, runs // 2)
    rows = []
    data = "data/sample, 100 cells"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = {}
        for w in (1, 2):
            import multiprocessing

            with ProcessPoolExecutor(w, mp_context=multiprocessing.get_context("spawn")) as ex:
                list(ex.map(abs, range(w * 4)))  # start the workers
                pool[w] = _time(ex, runs, tmp)
        for w in (1, 2):
            rows.append({"what": f"sweep, process pool, {w} worker{'s' * (w > 1)}", "data": data,
                         "rate": pool[w][0], "spread": pool[w][1],
                         "note": "cells/s" + (f"; x{pool[2][0] / pool[1][0]:.2f} vs 1 worker"
                                               if w == 2 else "")})
        from distributed import Client, LocalCluster

        dask = {}
        for w in (1, 2):
            with LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(abs, 0)
                dask[w] = _time(client, runs, tmp)
        for w in (1, 2):
            rows.append({"what": f"sweep, Dask LocalCluster, {w} worker{'s' * (w > 1)}",
                         "data": data, "rate": dask[w][0], "spread": dask[w][1],
                         "note": "cells/s" + (f"; x{dask[2][0] / dask[1][0]:.2f} vs 1 worker"
                                               if w == 2 else "")})
    return rows


if __name__ == "__main__":
    for row in run(3):
        print(row)
