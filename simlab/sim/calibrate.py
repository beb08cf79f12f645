"""Calibrate Almgren-Chriss parameters from a recording.

The fits themselves are in :mod:`simlab.models.calibrate` (pure, arrays in); this module
extracts their inputs from one instrument's recorded book and trades:

- ``sigma``: realised volatility of the mid (every valid book tick), in quote per
  second^1/2 (the time unit is the second throughout);
- ``epsilon`` and ``eta``: walk-the-book cost per unit against the mid, for the depth
  ladder of :mod:`simlab.sim.ladder`, averaged over up to ``max_ticks`` evenly spaced ticks
  and both sides; the fit is ``cost/unit = epsilon + (eta / tau) * size`` with ``tau`` = 1 s;
- ``gamma``: regression of the mid change over each ``step_seconds`` interval on the signed
  taker volume in it (Kyle's lambda); 0 with a note when the recording has no trades.

Each parameter's provenance says how it was obtained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.feed.replay import ReplayError, open_recordings
from simlab.feed.tables import book_messages
from simlab.models.calibrate import (
    Calibration,
    GammaFit,
    calibrate_eta,
    calibrate_gamma,
    calibrate_sigma,
)
from simlab.store.schema import TRADES

from .ladder import LEVELS, ladder_cost, ladder_orders, ladder_sizes, visible_depth
from .order import Instrument
from .rebuild import rebuild_messages


def calibrate_recording(recording: Any, inst: str, *, channel: str = "books",
                        trades_channel: str = "trades", step_seconds: float = 1.0,
                        sizes: Any = None, max_ticks: int = 400,
                        instrument: Instrument | None = None) -> Calibration:
    """AC parameters (time unit: seconds; sizes in base units) for ``inst``.

    ``sizes``: the order sizes (base units) of the walk-the-book ladder; by default 12 sizes
    from 1/50 to 2 times the median visible depth of the top 5 levels.

    >>> cal = calibrate_recording("rec", "BTC-USDT")                 # doctest: +SKIP
    >>> cal.provenance["eta"]                                        # doctest: +SKIP
    'walk-the-book cost per unit vs size ...'
    """
    rec = open_recordings(recording)[0]
    instrument = instrument or Instrument.from_metadata(
        inst, rec.manifest.get("instruments", {}).get(inst))
    ct = instrument.ct_val
    m = book_messages(rec, channel, inst)
    ok = m.valid
    if ok.sum() < 3:
        raise ReplayError(f"{rec.path}: {channel}:{inst} has fewer than 3 valid book ticks; "
                          "cannot calibrate")
    probe = rebuild_messages(m, depth_n=LEVELS, emit=ok)
    mid = (probe.bid_px + probe.ask_px) * 0.5
    good = ok & np.isfinite(mid)
    t_ns = m.recv_ns[good]
    mids = mid[good]
    sig = calibrate_sigma(mids, t_ns, step_seconds=step_seconds,
                          every=min(1.0, step_seconds))
    if sizes is None:
        depth = visible_depth(probe.depth[good, 0], probe.depth[good, 1], ct)
        if not depth > 0:
            raise ReplayError(f"{rec.path}: {inst} has no visible depth to calibrate eta from")
        sizes = ladder_sizes(depth)
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 1 or len(sizes) < 2 or not (sizes > 0).all():
        raise ValueError(f"sizes must be at least 2 order sizes > 0 (base units), got {sizes}")
    # sample ticks evenly; walk every size on both sides
    idx = np.flatnonzero(good)
    pick = idx[np.linspace(0, len(idx) - 1, min(max_ticks, len(idx))).astype(int)]
    emit = np.zeros(len(m), bool)
    emit[pick] = True
    w = rebuild_messages(m, orders=ladder_orders(sizes, ct), emit=emit).walk[pick]
    cost = ladder_cost(mid[pick], w)
    use = np.isfinite(cost)
    if use.sum() < 2:
        raise ReplayError(f"{rec.path}: {inst}: the book could not fill at least 2 of the "
                          f"ladder sizes {sizes.tolist()}; pass smaller sizes=")
    eta = calibrate_eta(sizes[use], cost[use], tau=1.0)
    gam = _gamma(rec, inst, trades_channel, t_ns, mids, step_seconds, ct)
    return Calibration.from_fits(sig, eta, gam)


def typical_size(recording: Any, inst: str, channel: str = "books") -> float:
    """The size the calibration's depth ladder is centred on: the visible depth
    (:func:`~simlab.sim.ladder.visible_depth`, base units) over every valid tick of the
    first recording; 1.0 when the book never shows depth on both sides.

    >>> typical_size("rec", "BTC-USDT")                             # doctest: +SKIP
    """
    rec = open_recordings(recording)[0]
    ct = Instrument.from_metadata(inst, rec.manifest.get("instruments", {}).get(inst)).ct_val
    m = book_messages(rec, channel, inst)
    b = rebuild_messages(m, depth_n=LEVELS, emit=m.valid)
    d = visible_depth(b.depth[m.valid, 0], b.depth[m.valid, 1], ct)
    return d if d > 0 else 1.0


def _gamma(rec: Any, inst: str, channel: str, t_ns: np.ndarray, mids: np.ndarray,
           step_seconds: float, ct: float) -> GammaFit:
    recorded = channel in rec.streams()[0]  # else no trades (an unknown inst still raises)
    t = rec.table(TRADES, channel=channel if recorded else [], inst=inst,
                  columns=["recv_ns", "side", "size"])
    if t.num_rows < 3:
        return GammaFit(0.0, 0.0, float("nan"), 0,
                        f"set to 0: only {t.num_rows} trades recorded for {inst}")
    step = int(step_seconds * 1e9)
    edges = np.arange(t_ns[0], t_ns[-1] + step, step)
    if len(edges) < 4:
        return GammaFit(0.0, 0.0, float("nan"), 0,
                        f"set to 0: the recording spans fewer than 3 intervals of {step_seconds} s")
    # mid at each edge: the last mid at or before it
    at = np.searchsorted(t_ns, edges, side="right") - 1
    mid_edges = mids[np.maximum(at, 0)]
    dmid = np.diff(mid_edges)
    tr = t["recv_ns"].to_numpy()
    sign = np.where(np.asarray(t["side"].to_pylist()) == "buy", 1.0, -1.0)
    vol = sign * t["size"].to_numpy() * ct
    b = np.searchsorted(edges, tr, side="right") - 1
    keep = (b >= 0) & (b < len(dmid))
    signed = np.bincount(b[keep], weights=vol[keep], minlength=len(dmid))
    try:
        return calibrate_gamma(signed, dmid)
    except ValueError as e:
        return GammaFit(0.0, 0.0, float("nan"), 0, f"set to 0: {e}")
