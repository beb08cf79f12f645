"""Running a sweep: each cell is a replay + cost pipeline run summarised as one row.

:func:`run_cell` is a pure function of its :class:`~simlab.sweep.spec.Cell` (so any
executor, in any process, gives the same row, ``seconds`` apart); it never raises for a bad
cell, it returns an ``"error"`` row naming the error. A cell whose trained model is marked
weak, or was fed inputs outside its training range, is ``"ok"`` with a ``model_warning``
saying so. Impact calibration, the slow part, is
done once per (recording, instrument, channel, contract value) per process and reused.

:func:`run_sweep` runs the cells of a spec that are not done yet on an executor and writes
each finished row at once as its own Parquet file, ``out/cells/<id>.parquet`` (written to a
hidden temporary name, then renamed: a reader or a resumed run never sees half a file),
optionally its per-tick table as ``out/ticks/<id>.parquet``, and the spec as
``out/spec.yaml``. A cell whose file says ``"ok"`` is skipped on a re-run; an ``"error"``
cell is retried. ``out/cells`` is a Parquet dataset with one fixed schema
(:data:`RESULT_SCHEMA`): ``pandas.read_parquet("out/cells")`` works.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simlab import __version__
from simlab.store.atomic import atomic_write

from .executors import InlineExecutor, executor_slots, make_executor
from .results import METRICS, RESULT_SCHEMA, load_results
from .spec import Cell, SweepSpec, cell_config

log = logging.getLogger(__name__)

#: Key of the per-tick table in a :func:`run_cell` row made with ``keep_ticks=True``.
TICKS_KEY = "_ticks"


@dataclass(frozen=True)
class SweepResult:
    """A sweep's rows (``table``: one per cell of the spec that has a result, in the
    spec's cell order), and what this call did: ``ran`` cells (``failed`` of them with an
    error), ``skipped`` (already done), ``missing`` (not run: ``stop_after``)."""

    table: pd.DataFrame
    ran: int
    skipped: int
    failed: int
    missing: int
    out: Path


#: The cost columns :func:`metrics` summarises over the complete ticks: the mean of each and
#: these percentiles.
METRIC_PERCENTILES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("net_bps", (10, 50, 90, 99)), ("slippage_bps", (50, 90)), ("fee_bps", ()),
    ("impact_bps", ()), ("maker_prob", ()))


def metrics(table: pd.DataFrame) -> dict[str, Any]:
    """The summary metrics of a per-tick cost table (NaN where there is no finite value):
    the costs over the complete ticks, and how many ticks the book could not fill.

    >>> t = pd.DataFrame({"net_bps": [1.0, 2.0, 9.0], "slippage_bps": [0.0, 1.0, 2.0],
    ...                   "fee_bps": 1.0, "impact_bps": 0.0, "maker_prob": 0.0,
    ...                   "complete": [True, True, False], "filled_share": [1.0, 1.0, 0.25]})
    >>> m = metrics(t)
    >>> m["ticks"], m["net_bps_p50"], m["net_bps_p10"], round(m["complete_share"], 4)
    (3, 1.5, 1.1, 0.6667)
    >>> m["incomplete_ticks"], m["filled_share_mean"], m["filled_share_min"]
    (1, 0.75, 0.25)
    """
    from simlab.monitor.stats import percentile_summary
    from simlab.sim.summary import complete_mask

    done = complete_mask(table)
    full = table[done]
    out: dict[str, Any] = {"ticks": len(table)}
    for col, qs in METRIC_PERCENTILES:
        out |= percentile_summary(full[col], qs, stats=("mean", "p"), prefix=f"{col}_")
    out["complete_share"] = float(done.mean()) if len(table) else math.nan
    out["incomplete_ticks"] = int((~done).sum())
    # a NaN share (an unknown fill) makes the mean and min NaN: it is not dropped as a cost is
    share = (table["filled_share"] if "filled_share" in table
             else np.where(done, 1.0, math.nan))
    out |= percentile_summary(share, (), stats=("mean", "min"), only_finite=False,
                              prefix="filled_share_")
    # a trained slippage model's mean prediction, beside slippage_bps (NaN without one)
    out["slippage_model_bps_mean"] = (
        percentile_summary(full["slippage_model_bps"], (), stats=("mean",))["mean"]
        if "slippage_model_bps" in table else math.nan)
    return out


@functools.lru_cache(maxsize=64)
def _calibration(recording: str, inst: str, channel: str, ct_val: float | None) -> Any:
    from simlab.feed.replay import open_recordings
    from simlab.sim.calibrate import calibrate_recording
    from simlab.sim.order import Instrument

    rec = open_recordings(recording)[0]
    instrument = Instrument.from_metadata(
        inst, rec.manifest.get("instruments", {}).get(inst), ct_val=ct_val)
    return calibrate_recording(rec, inst, channel=channel, instrument=instrument)


def _price(cell: Cell) -> tuple[pd.DataFrame, str | None]:
    """The per-tick table of one cell (what ``simlab replay`` computes for these params) and
    its ``model_warning``."""
    from simlab.sim.run import impact_params, price_recording

    cfg = cell_config(cell)
    if cfg.calibrate:
        given = cfg.overrides
        if not set(given) >= {"sigma", "eta", "gamma"}:
            # the cached fit, then the overrides: what impact_params would do uncached
            cal = _calibration(cell.recording, cell.inst, cfg.channel, cfg.ct_val)
            given = {"sigma": cal.sigma, "eta": cal.eta, "gamma": cal.gamma,
                     "epsilon": cal.epsilon, **given}
        impact, _ = impact_params(cell.recording, cfg.order, T=cfg.impact_horizon,
                                  N=cfg.impact_steps, lam=cfg.risk_aversion,
                                  channel=cfg.channel, overrides=given)
        cfg = cfg.with_(impact=impact)
    res, info = price_recording(cell.recording, cfg)
    return res.table, _model_warning({"maker_taker_model": cfg.maker_taker,
                                      "slippage_model": cfg.slippage}, info)


def _model_warning(models: dict[str, Any], info: dict[str, Any]) -> str | None:
    """What a cell's trained models cannot stand behind: a model marked weak, inputs
    outside a model's training range (the row's ``model_warning``; None when nothing)."""
    from simlab.models.ranges import weak_reason

    parts = [f"{k} is marked weak ({weak_reason(m)})" for k, m in models.items()
             if m is not None and weak_reason(m)]
    for key, found in info.get("outside_training_range", {}).items():
        parts += [f"{key}: {name} = {f['value']:.6g} is outside its training range "
                  f"[{f['min']:.6g}, {f['max']:.6g}] (on {f['outside']:,} of "
                  f"{f['checked']:,} ticks)"
                  for name, f in found.items()]
    return "; ".join(parts) or None


def base_row(cell: Cell) -> dict[str, Any]:
    """The identifying part of a cell's row: id, version, recording, inst, ``p_*``."""
    return {"cell": cell.id, "status": "ok", "error": None, "model_warning": None,
            "simlab_version": __version__,
            "recording": cell.recording, "inst": cell.inst,
            **{f"p_{k}": v for k, v in cell.params.items()}}


def error_row(cell: Cell, error: BaseException | str, seconds: float = math.nan
              ) -> dict[str, Any]:
    """The row of a cell that failed: ``status`` "error", ``error`` "Type: message",
    metrics null."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {**base_row(cell), "status": "error", "error": text,
            **dict.fromkeys(METRICS), "seconds": seconds}


def run_cell(cell: Cell, keep_ticks: bool = False) -> dict[str, Any]:
    """Run one cell; its row (:data:`RESULT_COLUMNS`), with the per-tick table (plus a
    ``cell`` column) under :data:`TICKS_KEY` when ``keep_ticks``. Never raises for a bad
    cell: any ``Exception`` becomes an ``"error"`` row.

    >>> from simlab.sweep.spec import defaults
    >>> row = run_cell(Cell("/nonexistent", "BTC-USDT", {**defaults(), "notional": 1.0}))
    >>> row["status"], row["error"].split(":")[0]
    ('error', 'RecordingError')
    """
    t0 = perf_counter()
    try:
        table, warning = _price(cell)
        row = {**base_row(cell), "model_warning": warning, **metrics(table)}
    except Exception as e:
        return error_row(cell, e, perf_counter() - t0)
    row["seconds"] = perf_counter() - t0
    if keep_ticks:
        row[TICKS_KEY] = table.assign(cell=cell.id)[["cell", *table.columns]]
    return row


def _write_parquet(path: Path, table: pa.Table) -> None:
    atomic_write(path, lambda f: pq.write_table(table, f, compression="zstd"))


def write_row(out: Path, row: dict[str, Any]) -> None:
    """Write one result row as ``out/cells/<cell>.parquet`` (and its ticks, if any)."""
    ticks = row.pop(TICKS_KEY, None)
    if ticks is not None:
        (out / "ticks").mkdir(exist_ok=True)
        _write_parquet(out / "ticks" / f"{row['cell']}.parquet",
                       pa.Table.from_pandas(ticks, preserve_index=False))
    _write_parquet(out / "cells" / f"{row['cell']}.parquet",
                   pa.Table.from_pylist([row], schema=RESULT_SCHEMA))


def _done(out: Path, keep_ticks: bool) -> dict[str, str]:
    """cell id -> simlab version, of the cells with an ``"ok"`` row (and ticks if asked)."""
    t = load_results(out)
    t = t[t["status"] == "ok"]
    if keep_ticks:
        t = t[np.array([(out / "ticks" / f"{c}.parquet").exists() for c in t["cell"]],
                       dtype=bool)]
    return dict(zip(t["cell"], t["simlab_version"], strict=True))


def _open_spec(spec: Any) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return SweepSpec.from_yaml(spec)
    return SweepSpec.from_dict(spec)


def run_sweep(spec: SweepSpec | dict | str | os.PathLike, out: str | os.PathLike,
              executor: Executor | str | Any = None, *, workers: int | None = None,
              progress: bool | None = None, keep_ticks: bool = False,
              stop_after: int | None = None,
              callback: Callable[[dict[str, Any]], Any] | None = None) -> SweepResult:
    """Run the cells of ``spec`` (a SweepSpec, a dict or a YAML path) not yet done in
    ``out`` and return every row of the spec.

    ``executor``: an Executor (left open), a ``distributed.Client``, or a name for
    :func:`~simlab.sweep.executors.make_executor` (None = ``"local"``, ``workers``
    processes; closed at the end). ``keep_ticks``: also write each cell's per-tick table.
    ``stop_after``: run at most that many cells (the rest stay missing for a later call).
    ``progress``: a bar of the cells, None (default) only where a person watches it
    (:func:`simlab.progress.wanted`: a terminal or a notebook, not a log).
    ``callback(row)``: called after each row is written. On KeyboardInterrupt (or any
    exception from ``callback``) queued cells are cancelled, every finished row is already
    on disk, and the exception propagates.

    >>> spec = SweepSpec(["data/sample"], ["BTC-USDT"], grid={"notional": [1e3, 1e5]},
    ...                  fixed={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:10Z"})
    >>> r = run_sweep(spec, "results", "inline", progress=False)    # doctest: +SKIP
    >>> r.ran, r.table["net_bps_mean"].round(2).tolist()           # doctest: +SKIP
    (2, [5.05, 5.52])
    """
    from simlab.progress import bar as progress_bar

    spec = _open_spec(spec)
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(
            stop_after, int) or stop_after < 0):
        raise ValueError(f"stop_after must be an integer >= 0, got {stop_after!r}")
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    text = spec.to_yaml()
    atomic_write(out / "spec.yaml", lambda f: f.write(text.encode()))
    cells = spec.cells()
    done = _done(out, keep_ticks)
    todo = [c for c in cells if c.id not in done]
    old = sorted({v for c in cells if (v := done.get(c.id)) and v != __version__})
    if old:
        log.warning("sweep: reusing cells computed by simlab %s (this is %s); write to a new "
                    "folder to recompute them", ", ".join(old), __version__)
    if stop_after is not None:
        todo = todo[:stop_after]
    ran = failed = 0
    if todo:
        owned = not isinstance(executor, Executor)
        ex = make_executor("local" if executor is None else executor, workers) if owned \
            else executor
        # a few cells queued per slot: busy workers, yet little lost work on an interrupt
        window = 1 if isinstance(ex, InlineExecutor) else 2 * executor_slots(ex)
        queue = iter(todo)
        pending: dict[Any, Cell] = {}
        clean = False
        try:
            with progress_bar(progress, total=len(todo), desc="sweep", unit="cell",
                              dynamic_ncols=True) as bar:
                def fill() -> None:
                    while len(pending) < window and (c := next(queue, None)) is not None:
                        pending[ex.submit(run_cell, c, keep_ticks)] = c
                fill()
                while pending:
                    finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for f in finished:
                        cell = pending.pop(f)
                        try:
                            row = f.result()
                        except Exception as e:  # the worker died, the cell did not pickle...
                            row = error_row(cell, e)
                        write_row(out, row)
                        ran += 1
                        failed += row["status"] != "ok"
                        bar.update(1)
                        if failed:
                            bar.set_postfix(failed=failed)
                        if callback is not None:
                            callback(row)
                    fill()
            clean = True
        finally:
            for f in pending:
                f.cancel()
            if owned:
                ex.shutdown(wait=clean, cancel_futures=not clean)
    table = _spec_rows(out, cells)
    return SweepResult(table, ran=ran, skipped=sum(c.id in done for c in cells), failed=failed,
                       missing=len(cells) - len(table), out=out)


def _spec_rows(out: Path, cells: list[Cell]) -> pd.DataFrame:
    t = load_results(out)
    order = {c.id: i for i, c in enumerate(cells)}
    t = t[t["cell"].isin(order)]
    return t.iloc[np.argsort(t["cell"].map(order).to_numpy(), kind="stable")].reset_index(
        drop=True)
