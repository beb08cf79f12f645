"""Performance monitoring: per-stage latency percentiles, feed latency, message rates, CPU,
memory and threads.

:class:`Monitor` is cheap enough to leave on (a list append per value, binned in numpy
batches); the cost pipeline, the recorder, the CLI (``--stats``) and the dashboard use it.

>>> m = Monitor(resources=False)
>>> m.add("parse", 12_000)
>>> m.summary()["stages"]["parse"]["p50_us"]
12.0
"""

from .histogram import PERCENTILES, LatencyHistogram
from .monitor import Monitor, merge
from .report import format_monitor, plot_latency, plot_rates, plot_resources
from .resources import ResourceSampler

__all__ = ["PERCENTILES", "LatencyHistogram", "Monitor", "ResourceSampler", "format_monitor",
           "merge", "plot_latency", "plot_rates", "plot_resources"]
