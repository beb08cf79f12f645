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
# its side? This notebook prices every combination of a small grid at every tick of a
# recording with the cost pipeline (`price_recording`, columnar replay: a few hundredths of
# a second per run on the sample), collects the results in one tidy DataFrame (a row per
# grid point) and plots them.
#
# The impact parameters are calibrated once from the recording and shared by every run,
# so the grid points differ only in what the grid changes.

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

# %%
import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from simlab.okx.fees import fee_tiers
from simlab.sim import OrderSpec, price_recording
from simlab.sim.run import impact_params

# %% [markdown]
# The fee tiers swept (OKX spot, maker and taker rates; simlab's dated table):

# %%
pd.DataFrame({t: r._asdict() for t, r in fee_tiers("SPOT").items()}).T.loc[FEE_TIERS].mul(1e4).add_suffix(" (bps)")

# %%
impact, how = impact_params(DATA, OrderSpec(INST, "buy", SIZES[0]), T=T, N=N)
pd.Series(how, name="how").to_frame()

# %% [markdown]
# ## The sweep

# %%
COSTS = ["slippage_bps", "fee_bps", "impact_bps", "net_bps"]
rows = []
for size, tier, side in itertools.product(SIZES, FEE_TIERS, SIDES):
    order = OrderSpec(INST, side, size, "quote", fee_tier=tier)
    t = price_recording(DATA, order, impact=impact)[0].table
    rows.append({"size_quote": size, "fee_tier": tier, "side": side, "ticks": len(t),
                 "complete": t["complete"].mean(), **t[COSTS].mean(),
                 "net_bps_p90": t["net_bps"].quantile(0.9)})
sweep = pd.DataFrame(rows)
sweep

# %% [markdown]
# `complete` is the share of ticks where the visible book could fill the whole order
# (else the costs are those of the part it could fill).
#
# ## Net cost by size and fee tier
#
# Mean net cost (bps) of a market buy: at these sizes the fee tier dominates.

# %%
net = sweep[sweep["side"] == "buy"].pivot(index="size_quote", columns="fee_tier",
                                          values="net_bps")[FEE_TIERS]
fig, ax = plt.subplots(figsize=(7, 4))
im = ax.imshow(net.to_numpy(), cmap="viridis", aspect="auto")
ax.set(xticks=range(len(net.columns)), xticklabels=net.columns, yticks=range(len(net.index)),
       yticklabels=[f"{s:,.0f}" for s in net.index], xlabel="fee tier",
       ylabel="order size (USDT)", title="mean net cost of a market buy (bps)")
light = net.to_numpy().mean()  # dark text on the bright (high) cells, light on the dark
for (i, j), v in np.ndenumerate(net.to_numpy()):
    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
            color="black" if v > light else "white")
fig.colorbar(im, ax=ax, label="bps")
plt.show()

# %% [markdown]
# ## What the size changes
#
# Slippage and impact do not depend on the fee tier: one tier is enough to see them by
# size, for each side (impact is symmetric: the two sides' lines coincide).

# %%
one = sweep[sweep["fee_tier"] == FEE_TIERS[0]]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for side, g in one.groupby("side"):
    axes[0].plot(g["size_quote"], g["slippage_bps"], "o-", label=f"{side}: slippage")
    axes[0].plot(g["size_quote"], g["impact_bps"], "s--", label=f"{side}: impact")
for tier, g in sweep[sweep["side"] == "buy"].groupby("fee_tier", sort=False):
    axes[1].plot(g["size_quote"], g["net_bps"], "o-", label=tier)
axes[0].set(xscale="log", xlabel="order size (USDT)", ylabel="bps",
            title="slippage and impact by size")
axes[1].set(xscale="log", xlabel="order size (USDT)", ylabel="bps",
            title="net cost of a buy, by fee tier")
axes[0].legend(fontsize="small")
axes[1].legend(fontsize="small", ncols=2)
plt.show()
