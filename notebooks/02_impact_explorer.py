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
# # 02 · Almgren-Chriss impact explorer
#
# How should an order of `X` BTC be worked over `T` seconds, and what does it cost?
# Almgren & Chriss (2000) trade the expected shortfall `E` against its variance `V` with a
# risk aversion `lam`: the optimal holdings decay as `sinh(kappa (T - t)) / sinh(kappa T)`.
# The parameters (volatility `sigma`, temporary impact `eta`, permanent impact `gamma`,
# half-spread and fees `epsilon`) are calibrated from a recording; the explorer lets you
# move each one and see the schedule, the frontier and the numbers follow.
#
# Below the widget: the same model, computed with `simlab.models.impact`, swept over the
# risk aversion and the horizon.

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
INST = "BTC-USDT"
X = 0.5  # order size, base units (BTC); > 0 sells, as in the paper
T = 60.0  # horizon, seconds
N = 60  # trading steps
LAM = 1e-3  # risk aversion, 1 / quote

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from simlab.models.impact import expected_cost, frontier, trajectory, variance
from simlab.widgets import ImpactExplorer

# %% [markdown]
# ## The explorer
#
# Started from the recording's calibration (how each parameter was obtained is shown under
# the sliders; the *calibrate* button restores them). Time unit: seconds, sizes in BTC,
# costs in USDT.

# %%
ex = ImpactExplorer.from_recording(DATA, INST, X=X, T=T, N=N, lam=LAM)
display(ex)

# %% [markdown]
# Every displayed number is also in `ex.outputs`, and the sliders are ordinary widgets:
# setting one from code updates everything, as dragging it does.

# %%
before = dict(ex.outputs)
ex.lam.value = LAM * 10
pd.DataFrame({f"lam = {LAM:g}": before, f"lam = {LAM * 10:g}": ex.outputs})

# %%
ex.lam.value = LAM
p, x = ex.current()
p

# %% [markdown]
# ## Sensitivity to the risk aversion
#
# Each `lam` gives one optimal schedule: more risk aversion trades faster, paying more
# expected impact for less variance. `lam = 0` is the straight line (minimum `E`).

# %%
lams = np.geomspace(LAM * 1e-3, LAM * 1e3, 61)
f = frontier(p, X, lams)
fig, (ax_l, ax_f) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
pos = f[f["lam"] > 0]
ax_l.plot(pos["lam"], pos["E"], label="expected cost E")
ax_l.plot(pos["lam"], pos["SD"], label="SD of cost")
ax_l.axvline(LAM, color="gray", ls=":", label=f"lam = {LAM:g}")
ax_l.set(xscale="log", xlabel="risk aversion lam (1/USDT)", ylabel="USDT",
         title=f"cost of {X:g} BTC over {T:g} s, by risk aversion")
ax_l.legend()
ax_f.plot(f["SD"], f["E"], ".-", ms=3)
ax_f.set(xlabel="SD of cost (USDT)", ylabel="expected cost E (USDT)",
         title="efficient frontier")
plt.show()

# %% [markdown]
# The schedules themselves, for a few risk aversions:

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
t = np.arange(p.N + 1) * p.tau
for lam in (0.0, LAM / 10, LAM, LAM * 10):
    ax.plot(t, trajectory(replace(p, lam=lam), X), label=f"lam = {lam:g}")
ax.set(xlabel="time (s)", ylabel="holdings (BTC)", title="optimal holdings")
ax.legend()
plt.show()

# %% [markdown]
# ## Sensitivity to the horizon
#
# A longer horizon spreads the order thinner (less temporary impact) but leaves it exposed
# to the price for longer (more variance). The step stays `T / N` = the calibration's
# time unit (1 s).

# %%
horizons = np.array([5, 10, 20, 30, 60, 120, 300, 600], float)
rows = []
for lam in (LAM / 10, LAM, LAM * 10):
    for h in horizons:
        q = replace(p, T=h, N=int(round(h / p.tau)), lam=lam)
        rows.append({"lam": lam, "T": h, "E": expected_cost(q, X),
                     "SD": np.sqrt(variance(q, X))})
by_T = pd.DataFrame(rows)
fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for lam, g in by_T.groupby("lam"):
    ax_e.plot(g["T"], g["E"], "o-", ms=3, label=f"lam = {lam:g}")
    ax_s.plot(g["T"], g["SD"], "o-", ms=3, label=f"lam = {lam:g}")
ax_e.set(xscale="log", xlabel="horizon T (s)", ylabel="USDT", title="expected cost E")
ax_s.set(xscale="log", xlabel="horizon T (s)", ylabel="USDT", title="SD of cost")
ax_e.legend()
plt.show()
by_T.pivot(index="T", columns="lam", values="E")
