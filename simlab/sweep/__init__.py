"""Parameter sweeps over recordings: a grid or random spec of pipeline and model
parameters, run cell by cell on any executor (in-process, a process pool, Dask), resumable,
with the results as one tidy table and a Parquet dataset; comparison helpers (pivot, rank,
heatmap, lines, compare, plot_compare) for the results."""

from .compare import compare, heatmap, lines, params, pivot, plot_compare, rank, varying
from .executors import InlineExecutor, make_executor
from .results import METRICS, RESULT_COLUMNS, RESULT_SCHEMA, load_results
from .run import SweepResult, metrics, run_cell, run_sweep
from .spec import PARAMS, Cell, Dist, RandomSpec, SpecError, SweepSpec, defaults

__all__ = ["METRICS", "PARAMS", "RESULT_COLUMNS", "RESULT_SCHEMA", "Cell", "Dist",
           "InlineExecutor", "RandomSpec", "SpecError", "SweepResult", "SweepSpec", "compare",
           "defaults", "heatmap", "lines", "load_results", "make_executor", "metrics", "params",
           "pivot", "plot_compare", "rank", "run_cell", "run_sweep", "varying"]
