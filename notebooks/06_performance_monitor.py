# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Performance monitor
#
# Where does the time go when the cost pipeline prices a tick, how late does the feed
# arrive, how many messages a second come in, and what does it cost the machine?
# `simlab.monitor.Monitor` answers all four: a latency histogram per pipeline stage, the
# feed latency per instrument (receive time minus exchange time), message counts and rates
# per stream, and the process's CPU, memory and threads sampled from a background thread.
#
# Here the sample recording is replayed through the cost pipeline one event at a time (the
# code path a live feed takes) at `SPEED` x real time, with a started monitor; then its
# tables and figures. The columnar replay's per-tick cost is shown for contrast. The
# dashboard of notebook 05 shows the same monitor live, in its "performance" panel.

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
INST = "BTC-USDT"
NOTIONAL = 10_000.0  # a market buy of this many USDT
FEE_TIER = "VIP1"
SPEED = 100.0  # replay pace, x real time (the sample's 600 s in 6 s); None: as fast as possible
RESOURCE_INTERVAL = 0.2  # seconds between two samples of CPU, RSS and threads

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from simlab.feed import ReplaySource
from simlab.monitor import Monitor, plot_latency, plot_rates, plot_resources
from simlab.sim import CostPipeline, OrderSpec
from simlab.sim.pipeline import MONITOR_STAGES
from simlab.sim.run import impact_params

# %% [markdown]
# ## A monitored replay, per event
#
# The pipeline hands its per-tick stage latencies to the monitor in batches and counts every
# event it sees; `with m:` runs the resource sampler for the duration of the replay.

# %%
order = OrderSpec(INST, "buy", NOTIONAL, "quote", "market", fee_tier=FEE_TIER)
impact, _ = impact_params(DATA, order)  # Almgren-Chriss, calibrated from the recording
source = ReplaySource(DATA, speed=SPEED)
m = Monitor(resources=True, interval=RESOURCE_INTERVAL)
pipeline = CostPipeline(order, impact=impact, metadata=source.instruments, monitor=m)
with m:
    result = pipeline.run(source)
print(m.format())

# %% [markdown]
# ## Stage latency
#
# Per priced tick, in microseconds: `parse` (the WebSocket frame's JSON into a message),
# `apply` (sequence check, checksum, book update), `walk` (the order walked through the
# book), `features` and `maker_taker` (only for a limit order or a model that reads the
# order flow: absent here), `costs` (slippage, fee and impact formulas) and `total` (frame
# in to priced row).

# %%
m.latency_frame()

# %%
stages = [s for s in MONITOR_STAGES if s in m.stages]
fig, ax = plt.subplots(figsize=(9, 4))
plot_latency(m, ax, stages=stages)
plt.show()

# %% [markdown]
# ## Feed latency and message rates
#
# Feed latency is receive time minus the exchange's timestamp: network, the venue's own
# delay, and any offset between the two clocks (a negative count says the clocks
# disagree). In the synthetic sample it is a constant 5 ms, set by the generator; a real
# recording shows the spread.

# %%
display(m.feed_frame())
m.rates_frame()

# %%
fig, ax = plt.subplots(figsize=(9, 3))
plot_latency(m, ax, feed=True)
plt.show()

# %%
fig, ax = plt.subplots(figsize=(9, 3))
plot_rates(m, ax)
plt.show()

# %% [markdown]
# ## Resource use over the replay

# %%
fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
plot_resources(m, axes)
plt.show()

# %% [markdown]
# ## Columnar, for contrast
#
# The columnar replay prices every tick of the recording at once, rebuilding the book from
# the `levels` table in compiled code; its latency is a per-tick average over the batch
# (reading the tables, walking the books, the cost formulas), not a per-tick histogram.

# %%
columnar = CostPipeline(order, impact=impact, metadata=source.instruments).run_recording(DATA)
per_event = m.summary()["stages"]["total"]
pd.DataFrame({
    "per event": {"ticks": per_event["count"], "mean us / tick": per_event["mean_us"],
                  "ticks / s of compute": 1e6 / per_event["mean_us"]},
    "columnar": {"ticks": columnar.counts["priced"],
                 "mean us / tick": columnar.batch_latency["total_ns_per_tick"] / 1e3,
                 "ticks / s of compute": columnar.batch_latency["ticks_per_s"]},
}).round(2)

# %%
pd.Series(columnar.batch_latency, name="columnar batch latency (ns per tick)").round(1)

# %% [markdown]
# ## Reading the figures
#
# - **Stage latency**: each curve is the share of ticks per decade of latency, on a log
#   axis; dashed lines mark the p50, dotted the p99. The body of the curve is the cost of
#   the work; the right tail (p99, max) is the machine: a garbage collection, a page fault,
#   another process on the core. On a shared machine, trust the p50 and read the max as
#   "it happened once".
# - `total` covers every stage of a tick plus the glue between them: what a tick costs
#   from frame to priced row. `parse` + `apply` (the feed handler) usually dominate; the
#   walk and the formulas take a few microseconds each.
# - A paced replay (as here) or a live feed leaves the process idle between ticks, so
#   caches are cold and latencies are higher than in an as-fast-as-possible run
#   (`SPEED = None`); the columnar replay amortises everything over the batch and is
#   much cheaper per tick (10x or more on the sample). Compare like with like.
# - **Feed latency** only means something on real data with a synchronised clock; its
#   spread (p99 - p50) is what delays the numbers, not its median.
# - **Message rate** is per second of receive time: bursts are where latency matters.
# - **Resources**: CPU % counts every thread over the sampling interval (it can exceed 100
#   on several cores); RSS should flatten once the book and the buffers are warm, a
#   steady climb over a long replay is a leak.
