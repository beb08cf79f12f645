"""One call from recording to priced ticks: what ``simlab replay`` and the demo run.

:func:`price_recording` opens the recording(s), resolves the instrument's contract terms,
calibrates the Almgren-Chriss parameters from the data unless they are given, and runs the
cost pipeline columnar (fast) or per event (the live code path, with per-tick latency).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from simlab.feed.replay import ReplayError, ReplaySource, fmt_time, open_recordings
from simlab.feed.tables import scan
from simlab.models.calibrate import Calibration
from simlab.models.impact import ACParams

from .calibrate import calibrate_recording
from .config import MODES, RunConfig
from .fill_dataset import TRADES_CHANNEL
from .order import Instrument, OrderSpec
from .pipeline import CostPipeline, CostResult, needs_history

log = logging.getLogger(__name__)

__all__ = ["MODES", "impact_params", "price_recording"]


def impact_params(recordings: Any, order: OrderSpec, *, T: float = 60.0, N: int = 60,
                  lam: float = 1e-6, channel: str = "books", overrides: dict | None = None,
                  instrument: Instrument | None = None) -> tuple[ACParams, dict[str, str]]:
    """AC parameters for pricing ``order``: calibrated from the first recording, then any
    of ``overrides`` (sigma, eta, gamma, epsilon) applied; with how each was obtained.
    Time unit: seconds (``T`` is the execution horizon, ``N`` its steps).

    >>> p, how = impact_params("rec", OrderSpec("BTC-USDT", "buy", 100.0))   # doctest: +SKIP
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    rec = open_recordings(recordings)[0]
    how: dict[str, str] = {}
    if set(overrides) >= {"sigma", "eta", "gamma"}:
        cal = Calibration(sigma=overrides["sigma"], eta=overrides["eta"],
                          epsilon=overrides.get("epsilon", 0.0), gamma=overrides["gamma"])
    else:
        cal = calibrate_recording(rec, order.inst, channel=channel, instrument=instrument)
        how.update(cal.provenance)
    fields = {k: overrides[k] for k in ("sigma", "eta", "gamma", "epsilon") if k in overrides}
    for k in fields:
        how[k] = "given"
    cal = replace(cal, **fields) if fields else cal
    if cal.epsilon < 0:
        # a negative intercept of the walk-cost fit: noise around a tight spread
        how["epsilon"] = f"set to 0 (fitted {cal.epsilon:.6g} < 0)"
        cal = replace(cal, epsilon=0.0)
    try:
        params = cal.to_params(T=T, N=N, lam=lam)
    except ValueError as e:
        # eta - gamma tau / 2 <= 0: the permanent impact fit is too large for this step
        log.warning("impact: %s; gamma set to 0", e)
        cal = replace(cal, gamma=0.0)
        how["gamma"] = f"set to 0 ({e})"
        params = cal.to_params(T=T, N=N, lam=lam)
    how["T, N, lam"] = f"given: T={T:g} s, N={N}, lam={lam:g}"
    return params, how


def price_recording(recordings: Any, config: RunConfig | OrderSpec, *,
                    monitor: Any = True, **kw: Any) -> tuple[CostResult, dict[str, Any]]:
    """Price an order at every valid tick of the recording(s) (those stamped in
    ``[start, end]`` on the clock ``time_basis``: ``"exchange"``, the default, the
    exchange's message time that ``simlab verify`` prints; ``"recv"``, local receive time).

    ``config``: the :class:`~simlab.sim.config.RunConfig` of the run, or an
    :class:`OrderSpec` with the rest of the run given as keywords (``kw``, any field of
    RunConfig or its alias: ``mode``, ``channel``, ``start``, ``end``, ``impact``, ``T``,
    ``N``, ``lam``, ``overrides``, ``model``, ``ct_val``, ``slippage_model``,
    ``time_basis`` ...); keywords given with a RunConfig change those fields.

    ``impact``: ACParams, None (no impact) or ``"calibrate"`` (from the first recording,
    see :func:`impact_params`). ``monitor``: passed to :class:`CostPipeline` (a started
    :class:`simlab.monitor.Monitor` also samples CPU and memory over the run). Returns the
    result and a dict of what was used. Each dataset of a recording is read once
    (:func:`simlab.feed.tables.scan`).

    >>> r, info = price_recording("rec", OrderSpec("BTC-USDT", "buy", 100.0))  # doctest: +SKIP
    >>> r.summary()["costs"]["net_bps"]["mean"]                               # doctest: +SKIP
    >>> cfg = RunConfig(inst="BTC-USDT", side="buy", notional=100.0, mode="events")
    >>> r, info = price_recording("rec", cfg)                                 # doctest: +SKIP
    """
    cfg = _config(config, kw)
    order, channel, mode, time_basis = cfg.order, cfg.channel, cfg.mode, cfg.time_basis
    start, end = cfg.start, cfg.end
    model, slippage_model = cfg.maker_taker, cfg.slippage
    # one read of each dataset, shared by the checks, the calibration and the run
    recs = [scan(r) for r in open_recordings(recordings)]
    # fail early, and with the instrument named, before any calibration work
    channels = [channel]
    if (order.order_type == "limit" and model is not None and needs_history(model)) or (
            slippage_model is not None):
        channels.append(TRADES_CHANNEL)  # a trained model reads the trade flow
    events = ReplaySource(recs, insts=[order.inst], channels=channels, start=start, end=end,
                          time_basis=time_basis)
    meta = events.instruments
    instrument = Instrument.from_metadata(order.inst, meta.get(order.inst), ct_val=cfg.ct_val)
    info: dict[str, Any] = {"recordings": [str(r.path) for r in recs], "mode": mode,
                            "channel": channel, "time_basis": time_basis,
                            "start": None if events.start is None
                            else fmt_time(events.start, time_basis),
                            "end": None if events.end is None
                            else fmt_time(events.end, time_basis)}
    impact = cfg.impact
    if cfg.calibrate:
        impact, how = impact_params(recs, order, T=cfg.impact_horizon, N=cfg.impact_steps,
                                    lam=cfg.risk_aversion, channel=channel,
                                    overrides=cfg.overrides, instrument=instrument)
        info["impact_provenance"] = how
    p = CostPipeline(order, channel=channel, impact=impact, model=model, instrument=instrument,
                     monitor=monitor, slippage_model=slippage_model)
    res = (p.run_recording(recs, start=start, end=end, time_basis=time_basis)
           if mode == "columnar" else p.run(events))
    if not len(res.table):
        # a range inside the recording with no valid book in it: no cost to report
        c = res.counts
        span = (f" in {info['start'] or 'the start'} .. {info['end'] or 'the end'}"
                if info["start"] or info["end"] else "")
        raise ReplayError(f"no tick priced: {channel}:{order.inst} has no valid book{span} "
                          f"({c['book_ticks']:,} book messages, {c['invalid']:,} invalid)")
    if p.outside_training:
        # also warned on the terminal; here for --json readers and reports
        info["outside_training_range"] = p.outside_training
    return res, info


def _config(config: Any, kw: dict[str, Any]) -> RunConfig:
    """The run's RunConfig: ``config`` itself (changed by ``kw``) or built from an order."""
    if isinstance(config, RunConfig):
        return config.with_(**kw) if kw else config
    if isinstance(config, OrderSpec):
        return RunConfig.from_order(config, **kw)
    raise TypeError(f"config must be a RunConfig or an OrderSpec, got {type(config).__name__}")
