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
# # 01 · Record and replay
#
# Record a few seconds of L2 order book and trades from simlab's **local OKX emulator**
# (a Cont-Stoikov-Talreja synthetic market served over the real OKX v5 WebSocket and REST
# protocols), look inside the recording (manifest, tables), check it with the gap report
# (`simlab verify`), and replay it through the cost pipeline.
#
# The same recorder records the **real OKX**: its default URLs are OKX's production
# endpoints (`wss://ws.okx.com:8443/ws/v5/public` and `https://www.okx.com`). Set
# `LIVE_OKX = True` below (network needed), or from a shell:
# `simlab record --inst BTC-USDT --channels books,trades --out night --duration 8h`.

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
INST = "BTC-USDT"
SECONDS = 10.0  # how long to record
SPEED = 1.0  # emulator clock, 1.0 is real time
OUT = None  # where to record; None: a new temporary directory
LIVE_OKX = False  # True: record the real OKX instead of the emulator (network needed)
ORDER_QUOTE = 10_000.0  # the market buy priced on replay (USDT)

# %%
import tempfile
from itertools import islice

import matplotlib.pyplot as plt
import pandas as pd

from simlab.emulator.market import CSTMarket
from simlab.emulator.testing import start_emulator
from simlab.feed import ReplaySource
from simlab.sim import OrderSpec, price_recording
from simlab.sim.report import plot_costs
from simlab.sim.summary import format_summary
from simlab.store import Recording, format_report, verify
from simlab.record import Recorder

out = Path(OUT) if OUT else Path(tempfile.mkdtemp(prefix="simlab-nb01-")) / "rec"

# %% [markdown]
# ## Record
#
# `start_emulator` serves the market on free loopback ports in a background thread; the
# `Recorder` connects to it exactly as it would to OKX (subscribe, snapshot, incremental
# updates with seqIds, REST instrument metadata). The kernel already runs an event loop,
# so the recorder is awaited directly.

# %%
streams = [("books", INST), ("trades", INST)]
emu = None if LIVE_OKX else start_emulator(CSTMarket(seed=7, instruments=[INST]), speed=SPEED)
urls = {} if emu is None else {"ws_url": emu.ws_url, "rest_url": emu.rest_url}
try:
    result = await Recorder(out, streams, duration=SECONDS, rotate=5.0, **urls).run()
finally:
    if emu is not None:
        emu.stop()
print(result.summary())

# %% [markdown]
# ## Inspect
#
# A recording is a folder of hive-partitioned Parquet (`raw/` keeps every frame byte for
# byte, `levels/` and `trades/` are the normalised tables) and a `manifest.json`. It opens
# with plain pandas too: `pd.read_parquet(out / "levels")`.

# %%
rec = Recording(out)
m = rec.manifest
pd.Series({k: m[k] for k in ("complete", "wire_format", "arrivals", "rows", "instruments")})

# %%
levels = rec.levels_table(channel="books", inst=INST).to_pandas()
trades = rec.trades_table(channel="trades", inst=INST).to_pandas()
print(f"{len(levels):,} level changes, {len(trades):,} trades")
levels.head()

# %%
trades.head()

# %% [markdown]
# ## The gap report
#
# `verify` replays every book through OKX's sequence rules (seqId / prevSeqId) and
# checksums and reports, per channel and instrument, snapshots, updates, gaps, checksum
# results and crossed books. `report.ok` is False on any gap or failed checksum.

# %%
report = verify(out)
print(format_report(report))
assert report.ok, report.problems

# %% [markdown]
# ## Replay
#
# `ReplaySource` yields the events a live `LiveSource` would have: book ticks (with the
# rebuilt `L2Book`) and trades, in arrival order; `speed=None` (default) as fast as possible,
# `speed=1.0` at the recorded pace.

# %%
for ev in islice(ReplaySource(out, insts=[INST]), 8):
    print(ev.kind, ev.ts_ms, ev.book if ev.kind == "book" else f"{ev.side} {ev.size} @ {ev.price}")

# %% [markdown]
# ### Through the cost pipeline
#
# Price a market buy of `ORDER_QUOTE` USDT at every book tick of the recording: walk-the-book
# slippage, OKX VIP1 fees and Almgren-Chriss impact calibrated from the recording itself.

# %%
order = OrderSpec(INST, "buy", ORDER_QUOTE, "quote", fee_tier="VIP1")
res, info = price_recording(out, order)
print(format_summary(res.summary()))

# %%
fig, (ax_cost, ax_mid) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True,
                                      layout="constrained")
plot_costs(ax_cost, ax_mid, res.table)
plt.show()

# %% [markdown]
# The sample recording (`DATA`, 10 simulated minutes, see `data/README.md`) replays the
# same way, and much longer recordings just as fast (columnar replay).

# %%
sample, _ = price_recording(DATA, order)
cols = ["spread_bps", "slippage_bps", "net_bps"]
pd.concat({"just recorded": res.table[cols].describe(), "sample": sample.table[cols].describe()},
          axis=1)
