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
# # 05 · Live trade-simulator dashboard
#
# What would this order cost right now? The trade simulator prices an order (side, size,
# market or limit, fee tier) at every tick of a feed with the cost pipeline (walk-the-book
# slippage, OKX fees, Almgren-Chriss impact, maker/taker split) and shows the numbers, the
# price and spread, and the depth, as they change. Change an input and it re-prices at
# once.
#
# Here it replays the sample recording at `SPEED` x real time; the last section (optional)
# points it at a live feed instead: the local emulator, or the real OKX.

# %% tags=["parameters"]
import os
from pathlib import Path

HERE = Path.cwd()  # Jupyter (and papermill --cwd) run a notebook in its own folder
REPO = HERE.parent if HERE.match("*/notebooks") else HERE
DATA = os.environ.get("SIMLAB_DATA", str(REPO / "data" / "sample"))
SPEED = 10.0  # replay pace, x real time
WARM_UP_EVENTS = 500  # processed at once, so the numbers exist without a browser
START = True  # then keep replaying in the background (does not block the kernel)
LIVE = False  # also run the optional live section (local emulator)

# %%
import pandas as pd
from IPython.display import display

from simlab.widgets import TradeSimulator

# %% [markdown]
# ## Replay

# %%
sim = TradeSimulator.from_recording(DATA, speed=SPEED)
display(sim)

# %% [markdown]
# `run_events(n)` processes the next `n` events at once (how a headless run, or a test,
# gets numbers); `start()` then replays on in the background of the kernel's event loop
# (the cell returns at once), and `pause()` stops it. The inputs are ordinary widgets:
# `sim.quantity.value = 50_000` re-prices as typing it in the box does.

# %%
sim.run_events(WARM_UP_EVENTS)
pd.Series(sim.outputs, name="now").to_frame()

# %%
if START:
    sim.start()

# %% [markdown]
# Try: change the side, the size, the order type (a limit order shows the maker share),
# the fee tier or the volatility; move the speed slider; pause and resume.

# %% [markdown]
# ## Live (optional)
#
# The same dashboard on a live feed: `LiveSource` subscribes to the books and trades over
# the OKX WebSocket protocol. Here the feed is the local emulator (no network); for the
# real OKX drop the URLs (the defaults are OKX's production endpoints). The instruments'
# metadata (tick size, contract value) comes from the REST API when the feed starts.
# Set `LIVE = True` to run it.

# %%
if LIVE:
    from simlab.emulator.market import CSTMarket
    from simlab.emulator.testing import start_emulator
    from simlab.feed import LiveSource

    sim.pause()
    emu = start_emulator(CSTMarket(seed=7, instruments=["BTC-USDT"]), speed=1.0)
    subs = [("books", "BTC-USDT"), ("trades", "BTC-USDT")]
    live = TradeSimulator(lambda: LiveSource(subs, ws_url=emu.ws_url, rest_url=emu.rest_url),
                          instruments=["BTC-USDT"])
    display(live)
    live.start()
    # when done: live.pause(); emu.stop()
