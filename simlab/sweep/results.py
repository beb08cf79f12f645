"""A sweep's results: the row schema every cell is written with, and reading them back.

Both the cell runner (:mod:`simlab.sweep.run`) and the executors need these, and nothing
here needs either of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .spec import PARAMS

#: Summary metrics of a cell, in column order (bps of the filled notional; see
#: :mod:`simlab.sim.costs`). The cost percentiles and means are over the ticks where the
#: book filled the whole order (with finite values): a partial fill's cost is not the
#: order's. ``complete_share``, ``incomplete_ticks`` and ``filled_share_*`` (filled /
#: requested, over all ticks) say how often the book could not fill it.
METRICS = ("ticks", "net_bps_mean", "net_bps_p10", "net_bps_p50", "net_bps_p90",
           "net_bps_p99", "slippage_bps_mean", "slippage_bps_p50", "slippage_bps_p90",
           "fee_bps_mean", "impact_bps_mean", "maker_prob_mean", "complete_share",
           "slippage_model_bps_mean", "incomplete_ticks", "filled_share_mean",
           "filled_share_min")
#: Metrics that count ticks (integers; the others are floats).
COUNT_METRICS = ("ticks", "incomplete_ticks")
_ARROW = {"str": pa.string(), "time": pa.string(), "float": pa.float64(), "int": pa.int64()}
#: The schema of every result row (and of every ``out/cells`` file).
RESULT_SCHEMA = pa.schema(
    [("cell", pa.string()), ("status", pa.string()), ("error", pa.string()),
     ("model_warning", pa.string()), ("simlab_version", pa.string()),
     ("recording", pa.string()), ("inst", pa.string())]
    + [(f"p_{k}", _ARROW[p.kind]) for k, p in PARAMS.items()]
    + [(m, pa.int64() if m in COUNT_METRICS else pa.float64()) for m in METRICS]
    + [("seconds", pa.float64())])
RESULT_COLUMNS = tuple(RESULT_SCHEMA.names)


def load_results(out: str | os.PathLike) -> pd.DataFrame:
    """Every cell row of a sweep output folder (``out/cells/*.parquet``), sorted by cell id;
    an empty table with the result columns when there are none.

    >>> load_results("/nonexistent").columns[:3].tolist()
    ['cell', 'status', 'error']
    """
    import pyarrow.dataset as ds

    cells = Path(out) / "cells"
    if not cells.is_dir() or not any(cells.glob("*.parquet")):
        return RESULT_SCHEMA.empty_table().to_pandas()
    t = ds.dataset(cells, format="parquet", schema=RESULT_SCHEMA).to_table()
    return t.to_pandas().sort_values("cell", kind="stable").reset_index(drop=True)
