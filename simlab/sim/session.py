"""The trade simulator without a user interface: what would this order cost, at every tick,
live or replayed.

A :class:`TradeSession` drives a :class:`~simlab.sim.pipeline.CostPipeline` from any feed
source (a :class:`~simlab.feed.replay.ReplaySource` paced at k x real time, or a
:class:`~simlab.feed.live.LiveSource`) and holds everything a dashboard shows: the order
being priced (its inputs), the costs at the last priced tick (:attr:`~TradeSession.outputs`),
the performance numbers (:attr:`~TradeSession.perf_outputs`), the state of the run, and the
series of the price and depth charts. :class:`simlab.widgets.TradeSimulator` is its
ipywidgets view; a notebook without widgets, a test or a script uses the session directly.

How it runs:

- the source is iterated unpaced; a replay is paced here, from the events' receive times
  divided by the speed (:class:`~simlab.sim.pacing.Pacer`), so pause, resume and a new
  speed apply at once;
- :meth:`TradeSession.start` runs the loop as a task of the running event loop (the
  kernel's, in Jupyter); :meth:`TradeSession.pause` cancels it; a replay resumes where it
  stopped, a live source reconnects (the world does not pause);
- :meth:`TradeSession.run_events` processes events synchronously (headless runs, tests);
- :meth:`TradeSession.set_inputs` changes the order and re-prices at once on the book of
  the last tick, so the numbers follow the inputs even while paused; a bad input is kept
  in :attr:`TradeSession.error` (the numbers become unknown), never raised;
- the session owns a :class:`~simlab.monitor.Monitor` (:attr:`TradeSession.monitor`),
  handed to every pipeline it builds: per-stage latencies of every tick priced, feed
  latency and message counts of every event, and the process's CPU, RSS and threads,
  sampled every ``monitor_interval`` seconds while running. A replay restarted from the
  beginning gets a fresh monitor.

A view follows the session through a :class:`Listener` (``session.listener``): told to
refresh after each event (it decides how often to redraw), when the state changes, and
when an error is shown or cleared.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from time import perf_counter_ns
from typing import Any

import numpy as np

from simlab.feed.replay import ReplaySource, check_time_basis, open_recordings, streams
from simlab.models.impact import ACParams
from simlab.models.volatility import PER_SECONDS
from simlab.monitor import Monitor
from simlab.okx.fees import fee_tiers

from .config import RunConfig
from .estimate import estimate_impact, group_provenance
from .order import UNITS, Instrument, OrderSpec
from .pacing import Pacer, check_speed
from .pipeline import MONITOR_STAGES, CostPipeline

#: Seconds in a (crypto, 365-day) year: the volatility input and output are annualised.
YEAR_S = PER_SECONDS["year"]
#: Longest single sleep of the paced loop, so a new speed or a pause applies at once.
MAX_SLEEP = 0.1
#: Per-tick latencies kept for the percentiles.
LATENCY_WINDOW = 10_000
#: The performance numbers' stages (the cost pipeline's, :data:`MONITOR_STAGES`).
PERF_STAGES: tuple[str, ...] = MONITOR_STAGES
#: The order inputs :meth:`TradeSession.set_inputs` takes.
INPUTS = ("inst", "side", "quantity", "unit", "order_type", "fee_tier", "volatility")

ImpactSpec = ACParams | Mapping[str, ACParams] | Callable[[str], Any] | str | None


def perf_numbers(summary: Mapping[str, Any], inst: str) -> dict[str, Any]:
    """The performance numbers from a :meth:`Monitor.summary` (NaN, or None for a count,
    when unknown): per stage its tick count and p50, p99 and max (us); ``inst``'s feed
    latency p50 and p99 (ms); messages and their rate over every stream (each stream's count
    over the span of its receive times, summed: the rate the feed sent at); the process's
    mean and peak CPU %, last and peak RSS (MB) and most threads.

    >>> m = Monitor(resources=False); m.add("walk", 2_000)
    >>> n = perf_numbers(m.summary(), "BTC-USDT")
    >>> n["perf-walk-count"], n["perf-walk-p50"], n["perf-costs-count"], n["perf-rss-mb"]
    (1, 2.0, None, nan)
    """
    nan = math.nan
    out: dict[str, Any] = {}
    stages = summary.get("stages") or {}
    for stage in PERF_STAGES:
        s = stages.get(stage)
        out[f"perf-{stage}-count"] = s["count"] if s else None
        for stat in ("p50", "p99", "max"):
            out[f"perf-{stage}-{stat}"] = float(s[f"{stat}_us"]) if s else nan
    f = (summary.get("feed_latency") or {}).get(inst)
    out["perf-feed-p50"] = float(f["p50_ms"]) if f else nan
    out["perf-feed-p99"] = float(f["p99_ms"]) if f else nan
    streams_ = (summary.get("streams") or {}).values()
    out["perf-messages"] = sum(v["messages"] for v in streams_) if streams_ else None
    rates = [v["rate_per_s"] for v in streams_ if v.get("rate_per_s") is not None]
    out["perf-msg-rate"] = float(sum(rates)) if rates else nan
    r = summary.get("resources") or {}
    have = bool(r.get("samples"))
    for key, field_ in (("perf-cpu-pct", "cpu_pct_mean"), ("perf-cpu-pct-max", "cpu_pct_max"),
                        ("perf-rss-mb", "rss_mb_last"), ("perf-rss-mb-peak", "rss_mb_peak")):
        out[key] = float(r[field_]) if have else nan
    out["perf-threads"] = int(r["threads_max"]) if have else None
    return out


@dataclass(frozen=True)
class SessionOptions:
    """How a :class:`TradeSession` runs, beside the run it prices: ``speed`` paces a replay
    at this many x real time (None: unpaced, e.g. a live source); the mid history kept for
    the price chart and the live volatility estimate (``history_seconds``); the book levels
    of the depth chart (``depth_levels``); how often the impact is re-estimated from a live
    book (``estimate_every`` seconds of feed); the resource sampler's period while running
    (``monitor_interval``, seconds).

    >>> SessionOptions(speed=10.0).history_seconds
    120.0
    >>> SessionOptions(estimate_every=0)
    Traceback (most recent call last):
    ...
    ValueError: estimate_every must be > 0 seconds, got 0
    """

    speed: float | None = None
    history_seconds: float = 120.0
    depth_levels: int = 50
    estimate_every: float = 10.0
    monitor_interval: float = 1.0

    def __post_init__(self) -> None:
        check_speed(self.speed)
        for name in ("history_seconds", "estimate_every", "monitor_interval"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")


class Listener:
    """What a :class:`TradeSession` tells its view; this one ignores everything (a headless
    session). ``refresh``: new numbers (``force``: now, else when the view sees fit;
    ``charts``: redraw the charts, None: when the view sees fit); ``state_changed``: the run
    state is now ``state``; ``show_error``: an error to show, or None to clear it."""

    def refresh(self, force: bool = False, charts: bool | None = None) -> None:
        """New numbers to show."""

    def state_changed(self, state: str) -> None:
        """The run state changed."""

    def show_error(self, error: BaseException | str | None) -> None:
        """An error to show (None: clear it)."""


def _quantity_name(field: str) -> str:
    # the order's size is one input whatever its unit: name it, not the run's wording
    return "quantity" if field in ("notional", "quantity") else field


class TradeSession:
    """Price an order at every tick of ``source_factory()``'s events.

    ``source_factory``: called with no argument for a fresh source (at the first
    :meth:`start` or :meth:`run_events`, and again after the end or after pausing a live
    source). ``config``: the run (a :class:`~simlab.sim.config.RunConfig`): the order first
    priced (its instrument, side, size, type and fee tier), the book ``channel``, and the
    impact horizon, steps and risk aversion of estimated parameters. ``instruments``: those
    offered (default: ``metadata``'s, else the config's); ``metadata``: instrument id ->
    OKX instrument metadata (the source's ``instruments`` fill the rest). ``impact``:
    ``"book"`` (default) estimates the Almgren-Chriss parameters from the live book and the
    mids seen (:func:`simlab.sim.estimate.estimate_impact`, again every ``estimate_every``
    seconds of feed); or parameters (time unit: seconds) for every instrument, a mapping per
    instrument, a function ``inst -> ACParams`` or ``(ACParams, provenance)``, or None
    (impact not priced). ``model``: the maker/taker model of limit orders (default: the
    config's, else the pipeline's). ``volatility`` (% a year): 0 uses the calibrated or
    estimated sigma, else ``sigma = vol * mid / sqrt(seconds a year)``. ``clock``:
    monotonic seconds, for pacing.

    >>> from simlab.emulator import write_synthetic_recording
    >>> import tempfile
    >>> rec = write_synthetic_recording(tempfile.mkdtemp() + "/rec", seconds=5.0)
    >>> s = TradeSession.from_recording(rec)
    >>> s.run_events(30) > 0, s.outputs["net_bps"] > 0
    (True, True)
    >>> s.set_inputs(quantity=0.0); s.error
    'ConfigError: quantity must be a finite number > 0, got 0.0'
    """

    def __init__(self, source_factory: Callable[[], Any], config: RunConfig, *,
                 instruments: Iterable[str] | None = None,
                 metadata: Mapping[str, Mapping[str, Any]] | None = None,
                 impact: ImpactSpec = "book", model: Any = None, volatility: float = 0.0,
                 options: SessionOptions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not callable(source_factory):
            raise TypeError("source_factory must be a function returning a fresh source, "
                            f"got {type(source_factory).__name__}")
        if not isinstance(config, RunConfig):
            raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
        self.source_factory = source_factory
        self.metadata: dict[str, dict[str, Any]] = {k: dict(v) for k, v in
                                                    (metadata or {}).items()}
        self.instruments = offered(instruments, self.metadata, config.inst)
        if isinstance(impact, str) and impact != "book":
            raise ValueError(f"impact must be 'book', ACParams, a mapping, a function or None, "
                             f"got {impact!r}")
        self.options = options = options or SessionOptions()
        # the run's other fields; the order follows the inputs, and its maker/taker model
        # is kept aside (a limit order uses it, a market order is priced without it)
        self.run_config = replace(config, maker_taker_model=None)
        self.config: RunConfig | None = config
        o = config.order
        self.inputs: dict[str, Any] = {
            "inst": o.inst, "side": o.side, "quantity": o.quantity, "unit": o.unit,
            "order_type": o.order_type, "fee_tier": o.fee_tier, "volatility": volatility}
        self.channel = config.channel
        self.model = model if model is not None else config.maker_taker
        self.T, self.N, self.lam = (config.impact_horizon, config.impact_steps,
                                    config.risk_aversion)
        self.history_seconds = float(options.history_seconds)
        self.depth_levels = options.depth_levels
        self.estimate_every_ns = int(options.estimate_every * 1e9)
        self.monitor_interval = float(options.monitor_interval)
        self.clock = clock
        self.listener = Listener()
        self.monitor: Monitor | None = None  # a fresh one per run (_reset_stream)
        self._impact_spec = impact
        self._impact_cache: dict[str, tuple[ACParams | None, str]] = {}
        self.pacer = Pacer(options.speed)
        self.paced = options.speed is not None

        self.source: Any = None
        self._it: Any = None      # the source's sync iterator (a replay)
        self._ait: Any = None     # or its async iterator (live)
        self._task: asyncio.Task | None = None
        self._pending: Any = None
        self.state = "idle"
        self.error = ""
        self.pipeline: CostPipeline | None = None
        self.impact: ACParams | None = None
        self.impact_info = ""
        self._reset_stream()
        self._rebuild_safely()

    @classmethod
    def build(cls, source_factory: Callable[[], Any], config: RunConfig | None = None,
              **kw: Any) -> TradeSession:
        """A session from keywords: the constructor's (``instruments``, ``metadata``,
        ``impact``, ``model``, ``volatility``, ``clock``), the :class:`SessionOptions`
        fields (``speed``, ``history_seconds`` ...), and, without ``config``, the order's
        first inputs and the run's fields (:func:`dashboard_config`: ``quantity``, ``unit``,
        ``side``, ``order_type``, ``fee_tier``, ``channel``, ``T``, ``N``, ``lam`` ...) for
        the first instrument offered.

        >>> s = TradeSession.build(lambda: [], instruments=["ETH-USDT"], quantity=2.0,
        ...                        unit="base", T=30, speed=5.0)
        >>> s.order().quantity, s.order().unit, s.T, s.pacer.speed
        (2.0, 'base', 30.0, 5.0)
        """
        if not callable(source_factory):
            raise TypeError("source_factory must be a function returning a fresh source, "
                            f"got {type(source_factory).__name__}")
        session, options, run = _split(kw)
        if config is None:
            inst = offered(session.get("instruments"), session.get("metadata") or {}, None)[0]
            config = dashboard_config(inst, **run)
        elif run:
            raise TypeError(f"give the run as config or as keywords, not both: {sorted(run)}")
        return cls(source_factory, config, options=SessionOptions(**options), **session)

    @classmethod
    def from_recording(cls, recordings: Any, config: RunConfig | None = None, *,
                       instruments: Iterable[str] | None = None, calibrate: bool = True,
                       **kw: Any) -> TradeSession:
        """Replay one or several recordings, the range ``start``..``end`` on the
        ``time_basis`` clock of ``config`` (or of the keywords, as :meth:`build` takes them;
        ``speed`` defaults to 10 x real time here). Impact parameters as ``config.impact``
        says: ``"calibrate"`` from the first recording (:func:`simlab.sim.run.impact_params`),
        ACParams given, None none; without a config, ``calibrate=False`` prices no impact.

        >>> TradeSession.from_recording("rec").run_events(100)          # doctest: +SKIP
        """
        recs = open_recordings(recordings)
        session, options, run = _split(kw)
        options.setdefault("speed", 10.0)
        if config is not None and run:
            raise TypeError(f"give the run as config or as keywords, not both: {sorted(run)}")
        if config is not None:
            channel, start, end, basis = (config.channel, config.start, config.end,
                                          config.time_basis)
        else:  # the replay's own check first: its message names the clocks
            channel, start, end = run.get("channel", "books"), run.get("start"), run.get("end")
            basis = check_time_basis(run.get("time_basis", "exchange"))
        have = sorted({i for r in recs for (c, i) in streams(r, "book") if c == channel})
        insts = list(instruments) if instruments is not None else have
        probe = ReplaySource(recs, insts=insts, channels=[channel], start=start, end=end,
                             time_basis=basis)
        if config is None:
            config = dashboard_config(offered(insts, {}, None)[0],
                                      impact="calibrate" if calibrate else None, **run)

        def factory() -> ReplaySource:
            return ReplaySource(recs, insts=insts, start=start, end=end, time_basis=basis)

        return cls(factory, config, instruments=insts, metadata=probe.instruments,
                   impact=recording_impact(recs, config),
                   options=SessionOptions(**options), **session)

    # -- inputs ------------------------------------------------------------------------------
    def fee_tiers(self, inst: str) -> list[str]:
        """The OKX fee tiers of ``inst``'s instrument type (spot's when unknown)."""
        try:
            kind = Instrument.from_metadata(inst, self.metadata.get(inst)).inst_type
        except ValueError:
            kind = "SPOT"
        return list(fee_tiers(kind))

    def order(self) -> OrderSpec:
        """The order the inputs describe (raises ValueError naming a bad input)."""
        return self._config().order

    def _config(self) -> RunConfig:
        i = self.inputs
        size = "notional" if i["unit"] == "quote" else "quantity"
        other = "quantity" if size == "notional" else "notional"
        return replace(self.run_config, names=_quantity_name, inst=i["inst"], side=i["side"],
                       **{size: i["quantity"], other: None}, order_type=i["order_type"],
                       fee_tier=i["fee_tier"])

    def set_inputs(self, redraw: bool = False, **inputs: Any) -> None:
        """Change order inputs (names: :data:`INPUTS`) and re-price at once on the book of
        the last tick; a bad input goes to :attr:`error`, never raised. ``redraw``: the
        view should redraw its charts too (a new instrument)."""
        bad = set(inputs) - set(INPUTS)
        if bad:
            raise TypeError(f"unknown inputs {sorted(bad)}; known: {', '.join(INPUTS)}")
        self.inputs.update(inputs)
        self._rebuild_safely(charts=redraw)

    def convert_quantity(self, quantity: Any, unit: str) -> Any:
        """``quantity`` (in the other unit) in ``unit``, converted at the mid when one is
        known (else unchanged): the order keeps its size when its unit changes."""
        mid = self.mid(self.inputs["inst"])
        if math.isfinite(mid) and mid > 0:
            return quantity / mid if unit == "base" else quantity * mid
        return quantity

    def set_speed(self, speed: float) -> None:
        """Pace a paced replay at ``speed`` x real time from now on."""
        if self.paced:
            self.pacer.set_speed(float(speed), self.clock())

    def _estimate(self, inst: str) -> tuple[ACParams | None, str]:
        ev = self._last.get(inst)
        if ev is None or not ev.valid:
            self._estimate_pending = True
            return None, "to be estimated from the live book at its first valid tick"
        self._estimate_pending = False
        self._estimated_ns = ev.recv_ns
        h = self._hist.get(inst) or [(ev.recv_ns, math.nan, math.nan)]
        arr = np.array(h, dtype=float)
        t = np.array([r[0] for r in h], dtype=np.int64)
        try:
            ct = Instrument.from_metadata(inst, self.metadata.get(inst)).ct_val
            p, how = estimate_impact(ev.book, (arr[:, 1] + arr[:, 2]) / 2, t, ct_val=ct,
                                     T=self.T, N=self.N, lam=self.lam)
        except ValueError as e:
            return None, f"not priced: {e}"
        return p, provenance_text(how)

    def _impact_for(self, inst: str) -> tuple[ACParams | None, str]:
        if self._impact_spec == "book":
            return self._estimate(inst)
        if inst not in self._impact_cache:
            spec = self._impact_spec
            try:
                if spec is None:
                    got: Any = None
                elif isinstance(spec, ACParams):
                    got = spec
                elif isinstance(spec, Mapping):
                    got = spec.get(inst)
                else:
                    got = spec(inst)
                p, how = got if isinstance(got, tuple) else (got, "given")
            except Exception as e:  # e.g. too few ticks to calibrate: priced without impact
                p, how = None, f"not priced: {type(e).__name__}: {e}"
            if p is None and how == "given":
                how = "not priced: no impact parameters for this instrument"
            if p is not None and not isinstance(p, ACParams):
                raise TypeError(f"impact for {inst} must be ACParams, got {type(p).__name__}")
            self._impact_cache[inst] = (p, how)
        return self._impact_cache[inst]

    def _impact_params(self, inst: str) -> tuple[ACParams | None, str]:
        """The impact parameters with the volatility override applied."""
        p, how = self._impact_for(inst)
        vol = self.inputs["volatility"]
        if not isinstance(vol, int | float) or not math.isfinite(vol) or vol < 0:
            raise ValueError(f"volatility must be a number >= 0 (% a year; 0 = calibrated), "
                             f"got {vol!r}")
        if vol == 0:
            return p, how
        if p is None:
            return None, (how + f"; the volatility override ({vol:g} %/yr) needs impact "
                          "parameters (eta, gamma) too")
        mid = self.mid(inst)
        if not (math.isfinite(mid) and mid > 0):
            return p, how + f"; volatility override {vol:g} %/yr applies from the first tick"
        sigma = vol / 100 * mid / math.sqrt(YEAR_S)
        return replace(p, sigma=sigma), (how + f"; sigma overridden: {vol:g} %/yr at mid "
                                         f"{mid:.8g} = {sigma:.6g} quote/s^1/2")

    def _rebuild(self, in_stream: bool = False) -> None:
        """A new pipeline for the inputs, priced at once at the book of the last tick
        (``in_stream``: that tick is being processed now, so the monitor counts it; else it
        is a re-price for new inputs, which the monitor does not count again)."""
        if self.pipeline is not None:
            self.pipeline.flush_monitor()  # what the old pipeline measured is kept
        self.pipeline = None
        self.config = None
        self._row = None
        if not in_stream:
            # a new order: its ticks the book could not fill are counted afresh
            self._order_ticks = self._unfilled = 0
        config = self._config()
        order = config.order
        inst = order.inst
        self.impact, self.impact_info = self._impact_params(inst)
        self._sigma_pending = (self.inputs["volatility"] > 0 and self.impact is not None
                               and not math.isfinite(self.mid(inst)))
        self._meta_known = inst in self.metadata
        self.pipeline = CostPipeline(order, channel=self.channel, impact=self.impact,
                                     model=self.model, metadata=self.metadata,
                                     monitor=self.monitor)
        self.config = config
        last = self._last.get(inst)
        if last is not None and last.valid and last.channel == self.channel:
            self._row = self.pipeline.on_event(last)
            if not in_stream:
                # forget the re-price before it reaches the monitor: that tick's message
                # and latency were counted when it arrived
                self.pipeline.reset()

    def _rebuild_safely(self, charts: bool = False, in_stream: bool = False) -> None:
        try:
            self._rebuild(in_stream)
        except Exception as e:  # kept and shown, never raised out of a callback
            self._fail(e)
        else:
            self._fail(None)
        self.listener.refresh(force=True, charts=charts)

    def _fail(self, e: BaseException | str | None) -> None:
        if e is None:
            self.error = ""
        else:
            self.error = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
        self.listener.show_error(e)

    # -- the stream --------------------------------------------------------------------------
    def _reset_stream(self) -> None:
        old = self.monitor
        if old is not None and old.resources is not None:
            old.resources.stop()
        self.monitor = Monitor(resources=True, interval=self.monitor_interval)
        self._events = 0
        self._ticks = 0
        self._order_ticks = self._unfilled = 0  # priced for the current order / not filled
        self._row: dict[str, Any] | None = None
        self._last: dict[str, Any] = {}
        self._hist: dict[str, deque] = {}
        self._lat: deque[int] = deque(maxlen=LATENCY_WINDOW)
        self.notice = ""
        self._sigma_pending = False
        self._meta_known = True
        self._estimate_pending = False
        self._estimated_ns = 0

    def _count_fill(self, row: dict[str, Any]) -> None:
        self._order_ticks += 1
        if not row["complete"]:
            self._unfilled += 1

    def _open(self) -> None:
        src = self.source_factory()
        self.source = src
        for k, v in (getattr(src, "instruments", None) or {}).items():
            self.metadata.setdefault(k, dict(v))
        if hasattr(src, "__iter__"):
            self._it, self._ait = iter(src), None
        elif hasattr(src, "__aiter__"):
            self._it, self._ait = None, src.__aiter__()
        else:
            raise TypeError(f"source_factory() must return a feed source (iterable or async "
                            f"iterable of events), got {type(src).__name__}")

    def restart(self) -> None:
        """A fresh source from the beginning (a fresh monitor, counts and history)."""
        self._reset_stream()
        self._it = self._ait = self.source = None
        self._pending = None
        self.pacer.reset()
        self._set_state("idle")
        self._rebuild_safely(charts=True)

    def _process(self, ev: Any) -> None:
        self._events += 1
        kind = ev.kind
        if kind == "book":
            self._last[ev.inst] = ev
            if ev.valid and ev.channel == self.channel:
                book = ev.book
                h = self._hist.get(ev.inst)
                if h is None or (h and ev.recv_ns < h[-1][0]):
                    # time went back (the next recording, a replay reopened): a new history
                    h = self._hist[ev.inst] = deque()
                h.append((ev.recv_ns, book.best_bid, book.best_ask))
                cut = ev.recv_ns - int(self.history_seconds * 1e9)
                while h[0][0] < cut:
                    h.popleft()
            if ev.inst != self.inputs["inst"]:
                self.monitor.observe(ev)  # the pipeline only sees the selected instrument
                return
            if ev.valid and (self._sigma_pending or not self._meta_known or (
                    self._impact_spec == "book" and (
                        self._estimate_pending
                        or ev.recv_ns - self._estimated_ns >= self.estimate_every_ns))):
                for k, v in (getattr(self.source, "instruments", None) or {}).items():
                    self.metadata.setdefault(k, dict(v))
                self._rebuild_safely(in_stream=True)
                if self._row is not None:
                    self._ticks += 1  # the rebuild priced this tick
                    self._count_fill(self._row)
                else:
                    self.monitor.observe(ev)
                return
            p = self.pipeline
            if p is None:
                self.monitor.observe(ev)
                return
            t0 = perf_counter_ns()
            row = p.on_event(ev)
            t1 = perf_counter_ns()
            if row is not None:
                self._row = row
                self._ticks += 1
                self._count_fill(row)
                self._lat.append(ev.decode_ns + t1 - t0)
                if p.counts["priced"] >= 100_000 and not p.history:
                    # the session keeps its own numbers; bound the pipeline's table
                    p.flush_monitor()
                    p.reset()
        elif kind == "trade":
            if self.pipeline is not None:
                self.pipeline.on_event(ev)  # a trained maker/taker model reads trade flow
            else:
                self.monitor.observe(ev)
        else:
            self.monitor.observe(ev)
            if kind == "notice" and ev.what != "end":
                self.notice = f"{ev.what} {ev.inst or ''} {ev.detail}".strip()

    def run_events(self, n: int) -> int:
        """Process the next ``n`` events synchronously (a replay source); returns how many
        there were (fewer at the end of the recording). Not while running: :meth:`pause`
        first."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        if self.running:
            raise RuntimeError("the simulator is running: pause() it before run_events()")
        if self.state == "ended":
            return 0
        if self._it is None:
            if self._ait is not None:
                raise TypeError("run_events needs a source that can be iterated "
                                "synchronously (a replay); this one is asynchronous: start()")
            self._open()
            if self._it is None:
                raise TypeError("run_events needs a source that can be iterated "
                                "synchronously (a replay); this one is asynchronous: start()")
        done = 0
        self._sample_resources(True)
        try:
            if self._pending is not None and n > 0:
                self._process(self._pending)
                self._pending = None
                done = 1
            it = self._it
            while done < n:
                ev = next(it, None)
                if ev is None:
                    self._set_state("ended")
                    break
                self._process(ev)
                done += 1
        finally:
            self._sample_resources(False)
        if self.state == "idle":
            self._set_state("paused")
        self._flush()
        self.listener.refresh(force=True)
        return done

    @property
    def running(self) -> bool:
        """Whether the loop task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task:
        """Run in the background of the running event loop (Jupyter's); returns the task."""
        if self.running:
            return self._task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("start() needs a running asyncio event loop (Jupyter has one); "
                               "in a script use run_events(n)") from None
        if self.state == "ended":
            self.restart()
        self.pacer.reset()
        self._task = loop.create_task(self._run())
        self._set_state("running")
        return self._task

    def pause(self) -> None:
        """Stop processing; :meth:`start` resumes (a live source reconnects)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if self._ait is not None:
                # the cancelled task was awaiting the live stream, which closes with it
                self._ait = self.source = None
                self._pending = None
        if self.state == "running":
            self._set_state("paused")
        self._flush()
        self.listener.refresh(force=True)

    async def _next(self) -> Any:
        if self._it is None and self._ait is None:
            self._open()
        if self._it is not None:
            return next(self._it, None)
        return await anext(self._ait, None)

    async def _run(self) -> None:
        n = 0
        try:
            while True:
                ev = self._pending
                if ev is None:
                    ev = await self._next()
                    if ev is None:
                        self._set_state("ended")
                        self._flush()
                        self.listener.refresh(force=True)
                        return
                    self._pending = ev
                if self.paced:
                    wait = self.pacer.delay(ev.recv_ns, self.clock())
                    if wait > 0:
                        self.listener.refresh()
                        await asyncio.sleep(min(wait, MAX_SLEEP))
                        continue
                self._pending = None
                self._process(ev)
                n += 1
                if n % 64 == 0:
                    await asyncio.sleep(0)  # let the kernel handle widget messages
                self.listener.refresh()
        except asyncio.CancelledError:
            if self._task is asyncio.current_task():
                # cancelled from outside (pause() lets go of the task first): the event loop
                # is going away, so the sampler thread must not outlive the run
                self._sample_resources(False)
            raise
        except Exception as e:  # a background task has no caller to raise to
            self._fail(e)
            self._set_state("stopped")

    def close(self) -> None:
        """Stop for good: pause, stop the resource sampler and hand the last latencies to
        :attr:`monitor` (still readable afterwards)."""
        self.pause()
        self._sample_resources(False)
        self._flush()

    def _flush(self) -> None:
        """Hand what the pipeline measured to :attr:`monitor` (where the run stops: its
        summary is then complete)."""
        if self.pipeline is not None:
            self.pipeline.flush_monitor()

    def _sample_resources(self, on: bool) -> None:
        r = self.monitor.resources
        if r is not None:
            if on:
                r.start()
            else:
                r.stop()

    def _set_state(self, state: str) -> None:
        self.state = state
        self._sample_resources(state == "running")
        if state != "running" and self._task is not None and self._task.done():
            self._task = None
        self.listener.state_changed(state)

    # -- outputs -----------------------------------------------------------------------------
    def mid(self, inst: str) -> float:
        """``inst``'s mid at its last valid book (NaN before one)."""
        ev = self._last.get(inst)
        if ev is not None and ev.valid:
            m = ev.book.mid
            if m is not None and math.isfinite(m):
                return float(m)
        h = self._hist.get(inst)
        if h:
            _, b, a = h[-1]
            return (b + a) / 2
        return math.nan

    @property
    def outputs(self) -> dict[str, Any]:
        """The numbers (NaN when unknown): costs at the last priced tick, the maker/taker
        split, the per-tick latency percentiles (us) over the last ``LATENCY_WINDOW`` ticks,
        counts."""
        r = self._row or {}
        nan = math.nan
        out: dict[str, Any] = {k: float(r.get(k, nan)) for k in (
            "mid", "spread_bps", "best_bid", "best_ask", "avg_price", "filled_base",
            "filled_quote", "slippage_bps", "slippage_quote", "fee_bps", "fee_quote",
            "impact_bps", "impact_quote", "net_bps", "net_quote", "maker_prob")}
        out["taker_prob"] = 1.0 - out["maker_prob"]
        out["complete"] = r.get("complete")
        out["filled_share"] = float(r.get("filled_share", nan))
        out["unfilled_ticks"], out["order_ticks"] = self._unfilled, self._order_ticks
        if self._lat:
            lat = np.fromiter(self._lat, dtype=np.int64, count=len(self._lat))
            p50, p99 = np.percentile(lat, [50, 99]) / 1e3
        else:
            p50 = p99 = nan
        out["latency_p50_us"], out["latency_p99_us"] = float(p50), float(p99)
        out["ticks"], out["events"] = self._ticks, self._events
        sigma = self.impact.sigma if self.impact is not None else nan
        mid = out["mid"] if math.isfinite(out["mid"]) else self.mid(self.inputs["inst"])
        out["sigma"] = sigma
        out["volatility_pct"] = (sigma / mid * math.sqrt(YEAR_S) * 100
                                 if math.isfinite(mid) and mid > 0 else nan)
        return out

    @property
    def perf_outputs(self) -> dict[str, Any]:
        """The performance numbers (:func:`perf_numbers` of :attr:`monitor`'s summary, for
        the selected instrument), with the latencies measured so far."""
        self._flush()
        return perf_numbers(self.monitor.summary(), self.inputs["inst"])

    def fill_warning(self, out: Mapping[str, Any] | None = None) -> tuple[str, bool]:
        """The warning when the book could not fill the order (``""`` when none) and whether
        it concerns the last tick (the costs shown are then of the part filled)."""
        out = self.outputs if out is None else out
        if out["complete"] is not None and not out["complete"]:
            return ("the book could not fill the order at the last tick (filled share "
                    f'{out["filled_share"]:.3g}): the costs shown are of the part filled; '
                    f'{out["unfilled_ticks"]} of {out["order_ticks"]} ticks not fillable',
                    True)
        if out["unfilled_ticks"]:
            return (f'{out["unfilled_ticks"]} of {out["order_ticks"]} ticks the book could '
                    "not fill the order", False)
        return "", False

    def price_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """The price chart of the selected instrument: seconds before its last tick, best
        bid and best ask over the last ``history_seconds``, and a title."""
        inst = self.inputs["inst"]
        h = self._hist.get(inst) or ()
        if not h:
            e = np.empty(0)
            return e, e, e, inst
        arr = np.array(h, dtype=float)
        return ((arr[:, 0] - arr[-1, 0]) / 1e9, arr[:, 1], arr[:, 2],
                f"{inst} (last {self.history_seconds:g} s)")

    def depth_series(self) -> tuple[Any, Any, Any, Any, str] | None:
        """The depth chart of the selected instrument: bid prices and sizes, ask prices and
        sizes of the top ``depth_levels`` levels of its last valid book (None before one),
        and a title."""
        inst = self.inputs["inst"]
        ev = self._last.get(inst)
        if ev is None or not ev.valid:
            return None
        top = ev.book.top(self.depth_levels)
        return top.bid_px, top.bid_sz, top.ask_px, top.ask_sz, f"{inst} depth"


#: The constructor's keywords of :class:`TradeSession` that :meth:`TradeSession.build` takes.
SESSION_KEYWORDS = ("instruments", "metadata", "impact", "model", "volatility", "clock")


def _split(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Keywords as (session's, its options' (``options``, a :class:`SessionOptions`, with
    the fields given one by one on top), the run's)."""
    kw = dict(kw)
    given = kw.pop("options", None)
    names = {f.name for f in fields(SessionOptions)}
    session = {k: v for k, v in kw.items() if k in SESSION_KEYWORDS}
    options = {k: getattr(given, k) for k in names} if given is not None else {}
    options.update({k: v for k, v in kw.items() if k in names})
    run = {k: v for k, v in kw.items() if k not in names and k not in SESSION_KEYWORDS}
    return session, options, run


def dashboard_config(inst: str, *, quantity: float = 10_000.0, unit: str = "quote",
                     **run: Any) -> RunConfig:
    """The run of a dashboard: an order of ``quantity`` in ``unit`` (``"quote"``: notional,
    ``"base"``: quantity) of ``inst``, the other fields as :meth:`RunConfig.build` takes
    them (``side``, ``order_type``, ``fee_tier``, ``channel``, ``T``, ``N``, ``lam`` ...);
    errors name the size ``quantity`` whatever its unit.

    >>> c = dashboard_config("BTC-USDT", quantity=0.5, unit="base", T=30)
    >>> c.order.quantity, c.order.unit, c.impact_horizon
    (0.5, 'base', 30.0)
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    size = "notional" if unit == "quote" else "quantity"
    return RunConfig.build(names=_quantity_name, inst=inst, **{size: quantity}, **run)


def offered(instruments: Iterable[str] | None, metadata: Mapping[str, Any],
            default: str | None) -> list[str]:
    """The instruments a session offers: ``instruments``, else ``metadata``'s, else
    ``default``; ValueError when that names none.

    >>> offered(None, {"ETH-USDT": {}, "BTC-USDT": {}}, None)
    ['BTC-USDT', 'ETH-USDT']
    """
    insts = (list(instruments) if instruments is not None
             else sorted(metadata) or ([default] if default else []))
    if not insts or not all(isinstance(i, str) and i for i in insts):
        raise ValueError(f"instruments must name at least one instrument id, got {insts!r}")
    return insts


def provenance_text(how: Mapping[str, str]) -> str:
    """How each impact parameter was obtained, on one line (shared explanations once).

    >>> provenance_text({"eta": "fit A", "epsilon": "fit A", "sigma": "vol"})
    'eta, epsilon: fit A; sigma: vol'
    """
    return "; ".join(f"{k}: {v}" for k, v in group_provenance(dict(how)).items())


def recording_impact(recordings: Any, config: RunConfig) -> ImpactSpec:
    """The impact parameters of a replay as ``config.impact`` says: ``"calibrate"``, a
    function calibrating each instrument on the first recording (with ``config``'s impact
    overrides, horizon, steps and risk aversion); ACParams or None as given."""
    if not config.calibrate:
        return config.impact
    from .run import impact_params

    def impact(inst: str) -> tuple[ACParams, str]:
        p, how = impact_params(recordings, OrderSpec(inst, "buy", 1.0), T=config.impact_horizon,
                               N=config.impact_steps, lam=config.risk_aversion,
                               channel=config.channel, overrides=config.overrides)
        return p, provenance_text(how)

    return impact
