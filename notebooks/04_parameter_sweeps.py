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
# # 04 · Parameter sweeps
#
# How does the cost of a market order depend on its size, the account's OKX fee tier and
# its side? `simlab.sweep` runs every cell of a grid as a replay of the recording through
# the cost pipeline, on any executor: in-process here (the sample is small), a local
# process pool by default, or a Dask cluster for a night of data
# (`run_sweep(spec, out, "dask://scheduler:8786")`, or `simlab sweep ... --executor
# dask://HOST:PORT`). Results are a tidy table, one row per cell, also written as a
# Parquet dataset; re-running skips the cells already computed.
#
# Impact parameters are calibrated from the recording (once per worker), so the cells
# differ only in what the grid changes.

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
INST = "BTC-USDT"
SIZES = [1_000.0, 3_000.0, 10_000.0, 30_000.0, 100_000.0]  # order sizes, quote (USDT)
FEE_TIERS = ["Lv1", "VIP1", "VIP3", "VIP5", "VIP8"]
SIDES = ["buy", "sell"]
T = 60.0  # impact horizon, seconds
N = 60  # impact steps
EXECUTOR = "inline"  # "local" (process pool) or "dask://HOST:PORT" for big sweeps
OUT = None  # results folder; None: a temporary one

# %%
import tempfile

import matplotlib.pyplot as plt
import pandas as pd

from simlab.okx.fees import fee_tiers
from simlab.sweep import SweepSpec, compare, heatmap, lines, rank, run_sweep

# %% [markdown]
# The fee tiers swept (OKX spot, maker and taker rates; simlab's dated table):

# %%
pd.DataFrame({t: r._asdict() for t, r in fee_tiers("SPOT").items()}).T.loc[FEE_TIERS].mul(1e4).add_suffix(" (bps)")

# %% [markdown]
# ## The sweep

# %%
spec = SweepSpec([DATA], [INST], grid={"notional": SIZES, "fee_tier": FEE_TIERS, "side": SIDES},
                 fixed={"T": T, "N": N})
out = Path(OUT or tempfile.mkdtemp(prefix="sweep-"))
result = run_sweep(spec, out, EXECUTOR)
print(f"{result.ran} cells run, {result.skipped} already done, {result.failed} failed -> {out}")
sweep = result.table
sweep.filter(regex="^(p_notional|p_fee_tier|p_side|ticks|net_bps_mean|net_bps_p90|complete_share)$").head()

# %% [markdown]
# `complete_share` is the share of ticks where the visible book could fill the whole order.
# The cost metrics cover those ticks only, and `rank` leaves out every cell with a tick it
# could not fill (it warns and names them; `include_incomplete=True` ranks them too). The
# cheapest cells:

# %%
rank(sweep, by="net_bps_mean", top=5)

# %% [markdown]
# ## Net cost by size and fee tier
#
# Mean net cost (bps) of a market buy: at these sizes the fee tier dominates.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
heatmap(sweep[sweep["p_side"] == "buy"], x="fee_tier", y="notional", value="net_bps_mean", ax=ax)
ax.set_title("mean net cost of a market buy (bps)")
plt.show()

# %% [markdown]
# ## What the size changes
#
# Net cost of a buy by size, one line per fee tier, with the 10-90 % band over the ticks.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
lines(sweep[sweep["p_side"] == "buy"], x="notional", value="net_bps", hue="fee_tier", ax=ax)
ax.set(xscale="log", xlabel="order size (USDT)", ylabel="net cost (bps)")
plt.show()

# %% [markdown]
# ## Comparing two sweeps
#
# The same grid with a longer impact horizon (T = 300 s): `compare` joins the two sweeps on
# their parameters and shows the change, cell by cell.

# %%
longer = SweepSpec([DATA], [INST], grid={"notional": SIZES, "fee_tier": FEE_TIERS[:1], "side": SIDES},
                   fixed={"T": 300.0, "N": N})
slow = run_sweep(longer, Path(tempfile.mkdtemp(prefix="sweep-")), EXECUTOR).table
base = sweep[sweep["p_fee_tier"] == FEE_TIERS[0]]
compare(base, slow, value="impact_bps_mean", labels=("T=60 s", "T=300 s"))
