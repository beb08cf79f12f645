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
# # 03 · A maker/taker model learned from a recording
#
# Will a limit order posted at the best price fill passively (maker fee, no spread paid)
# within the next `HORIZON_S` seconds? This notebook labels that question at sampled
# moments of a recording, trains simlab's logistic maker/taker model on the earliest part
# and scores it out of sample on the latest part (no look-ahead), saves it as JSON, and
# plugs it into the cost pipeline in place of the default queue-share model.
#
# The sample recording's market orders follow the touch imbalance (see `data/README.md`),
# so there is a real signal to find. The same calls work on any recording with `books`
# and `trades` (`simlab train maker-taker` is the command-line equivalent).

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
INST = "BTC-USDT"
QTY = 0.01  # order size, base units (BTC)
HORIZON_S = 1.0  # fill horizon, seconds
EVERY_S = 1.0  # one labelled moment per side every EVERY_S seconds
FEE_TIER = "VIP1"
MODEL_PATH = None  # where to save the model JSON; None for a temporary file

# %%
import json
import tempfile

import matplotlib.pyplot as plt
import pandas as pd

from simlab.models import load_model
from simlab.sim import OrderSpec, fill_dataset, price_recording, train_maker_taker

# %% [markdown]
# ## Label
#
# `fill_dataset` posts `QTY` at the best bid and the best ask every `EVERY_S` seconds and
# follows the book and the trades for `HORIZON_S`: label 1 when it would have filled
# (a trade through the price, the opposite side reaching it, or enough volume traded at
# the price to clear the queue ahead, counted conservatively), 0 when not, -1 when the
# recording ends first. The features are computed from data up to the moment only.

# %%
ds = fill_dataset(DATA, INST, quantity=QTY, horizon_s=HORIZON_S, every_s=EVERY_S)
kept = ds[ds["label"] >= 0]
print(f"{len(ds):,} rows, {len(kept):,} labelled, fill rate {kept['label'].mean():.3f}")
ds.head()

# %%
pd.Series(ds.attrs["reasons"], name="rows").to_frame().rename_axis("label reason")

# %% [markdown]
# The ground truth, seen in the labels: the fill rate by imbalance tercile (imbalance
# oriented so that > 0 means the opposite queue is the heavier one).

# %%
kept.groupby(pd.qcut(kept["imbalance"], 3), observed=True)["label"].agg(["mean", "count"])

# %% [markdown]
# ## Train and evaluate
#
# The earliest 70 % of the moments train, the latest 30 % test. The table compares the
# model with the base rate (the training fill rate) on the test set; skill is the
# relative improvement.

# %%
result = train_maker_taker(DATA, INST, quantity=QTY, horizon_s=HORIZON_S, every_s=EVERY_S)
result.table

# %%
pd.Series(dict(zip(result.model.features, result.model.coef, strict=True)),
          name="coefficient (standardised features)").to_frame()

# %% [markdown]
# Reliability: among test moments given a probability near p, a fraction near p should
# have filled (bins with few moments are noisy).

# %%
fig, ax = plt.subplots(figsize=(4.5, 4))
result.plot(ax)
plt.show()
result.curve

# %% [markdown]
# ## Save, load, use
#
# The JSON holds the coefficients, the feature definitions and the training metadata;
# the same recording and settings give the same file.

# %%
path = Path(MODEL_PATH) if MODEL_PATH else Path(tempfile.mkdtemp(prefix="simlab-nb03-")) / "mt.json"
result.save(path)
model = load_model(path)
saved = json.loads(path.read_text())
print(path, f"{path.stat().st_size:,} bytes")
{k: saved["info"][k] for k in ("target", "inst", "horizon_s", "training")}

# %% [markdown]
# The cost pipeline prices a limit buy of `QTY` posted at the best bid at every tick:
# with probability `maker_prob` it fills passively (maker fee, earning half the spread),
# otherwise it crosses as a market order (taker fee, walking the asks). The default model
# against the trained one:

# %%
order = OrderSpec(INST, "buy", QTY, "base", order_type="limit", fee_tier=FEE_TIER)
runs = {"default (queue share)": price_recording(DATA, order)[0],
        "trained (logistic)": price_recording(DATA, order, model=model)[0]}
cols = ["maker_prob", "fee_bps", "slippage_bps", "net_bps"]
pd.concat({name: r.table[cols].mean() for name, r in runs.items()}, axis=1)

# %%
fig, (ax_t, ax_h) = plt.subplots(1, 2, figsize=(11, 3.5), layout="constrained",
                                 gridspec_kw={"width_ratios": [2, 1]})
for name, r in runs.items():
    minutes = (r.table["recv_ns"] - r.table["recv_ns"].iloc[0]) / 60e9
    ax_t.plot(minutes, r.table["maker_prob"].rolling(50).mean(), lw=1, label=name)
    ax_h.hist(r.table["maker_prob"], bins=40, histtype="step", label=name)
ax_t.set(title="maker probability (rolling mean of 50 ticks)", xlabel="minutes",
         ylabel="P(fill)")
ax_h.set(title="per tick", xlabel="P(fill)", ylabel="ticks")
ax_t.legend()
plt.show()
