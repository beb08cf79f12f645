"""The trade-simulator dashboard: what would this order cost, at every tick, live or replayed.

:class:`TradeSimulator` drives a :class:`~simlab.sim.pipeline.CostPipeline` from any feed
source (a :class:`~simlab.feed.replay.ReplaySource` paced at k x real time, or a
:class:`~simlab.feed.live.LiveSource`) and shows the costs in ipywidgets: inputs on the
left (instrument, side, order type, quantity and its unit, volatility override, fee tier),
the numbers on the right (slippage, fees, impact, net cost in bps and quote, maker/taker
split, per-tick latency), a price/spread chart and a depth chart below.

How it runs:

- the source is iterated unpaced; a replay is paced here, from the events' receive times
  divided by the speed slider (:class:`Pacer`), so pause, resume and a new speed apply at
  once;
- :meth:`TradeSimulator.start` runs the loop as a task of the running event loop (the
  kernel's, in Jupyter); :meth:`TradeSimulator.pause` cancels it; a replay resumes where it
  stopped, a live source reconnects (the world does not pause);
- :meth:`TradeSimulator.run_events` processes events synchronously (headless notebooks,
  tests);
- changing an input rebuilds the pipeline and re-prices at once on the book of the last
  tick, so the numbers follow the inputs even while paused; bad input shows in a red
  message, a callback never raises;
- the widgets are refreshed at most every ``update_every`` seconds (numbers) and
  ``chart_every`` seconds (charts) while running: the cost is priced at every tick, but a
  browser cannot draw thousands of updates a second;
- the simulator owns a :class:`~simlab.monitor.Monitor` (:attr:`TradeSimulator.monitor`),
  handed to every pipeline it builds: per-stage latencies of every tick priced, feed
  latency and message counts of every event, and the process's CPU, RSS and threads,
  sampled every ``monitor_interval`` seconds while running (:meth:`~TradeSimulator.start`
  to :meth:`~TradeSimulator.pause`, or during :meth:`~TradeSimulator.run_events`). The
  "performance" panel shows it, refreshed with the numbers. A replay restarted from the
  beginning gets a fresh monitor.

Every number is in :attr:`TradeSimulator.outputs` and in an ``ipywidgets.HTML`` with the CSS
class ``simlab-out-<key>`` (its text parses with ``float()``, or is ``-`` when unknown);
the performance panel's in :attr:`TradeSimulator.perf_outputs`, with the CSS classes
``simlab-out-perf-<stage>-<count|p50|p99|max>`` (stages: :data:`PERF_STAGES`) and
``simlab-out-<key>`` for the keys of :data:`PERF_OUTPUTS`; every input has the class
``simlab-in-<name>``; the buttons ``simlab-start`` and ``simlab-pause``; the error message
``simlab-error``; the state line ``simlab-status``; the panel ``simlab-perf``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from time import perf_counter_ns
from typing import Any

import ipywidgets as W
import numpy as np

from simlab.feed.replay import ReplaySource, open_recordings, streams
from simlab.models.impact import ACParams
from simlab.models.volatility import PER_SECONDS
from simlab.monitor import Monitor
from simlab.okx.fees import fee_tiers
from simlab.sim.estimate import estimate_impact, group_provenance
from simlab.sim.order import ORDER_TYPES, SIDES, UNITS, Instrument, OrderSpec, check_size
from simlab.sim.pipeline import MONITOR_STAGES, CostPipeline

from . import charts

#: The displayed numbers: key -> (label, unit, format).
OUTPUTS: dict[str, tuple[str, str, str]] = {
    "mid": ("mid", "quote", ".8g"),
    "spread_bps": ("spread", "bps", ".3f"),
    "slippage_bps": ("expected slippage", "bps", ".4f"),
    "slippage_quote": ("expected slippage", "quote", ".4f"),
    "fee_bps": ("fees", "bps", ".4f"),
    "fee_quote": ("fees", "quote", ".4f"),
    "impact_bps": ("market impact", "bps", ".4f"),
    "impact_quote": ("market impact", "quote", ".4f"),
    "net_bps": ("net cost", "bps", ".4f"),
    "net_quote": ("net cost", "quote", ".4f"),
    "maker_prob": ("maker share", "", ".4f"),
    "taker_prob": ("taker share", "", ".4f"),
    "filled_base": ("filled", "base", ".8g"),
    "filled_share": ("filled share", "of the order", ".4f"),
    "unfilled_ticks": ("ticks not fillable", "for this order", "d"),
    "volatility_pct": ("volatility used", "% / year", ".4g"),
    "latency_p50_us": ("latency p50", "us / tick", ".2f"),
    "latency_p99_us": ("latency p99", "us / tick", ".2f"),
    "ticks": ("ticks priced", "", "d"),
    "events": ("events", "", "d"),
}
#: The performance panel's stage rows (the cost pipeline's, :data:`MONITOR_STAGES`) and
#: columns: stat -> (column title, format); latencies in microseconds per tick.
PERF_STAGES: tuple[str, ...] = MONITOR_STAGES
PERF_STAGE_STATS: dict[str, tuple[str, str]] = {
    "count": ("ticks", "d"), "p50": ("p50 us", ".2f"), "p99": ("p99 us", ".2f"),
    "max": ("max us", ".2f")}
#: The performance panel's other numbers: key -> (label, unit, format).
PERF_OUTPUTS: dict[str, tuple[str, str, str]] = {
    "perf-feed-p50": ("feed latency p50", "ms", ".3f"),
    "perf-feed-p99": ("feed latency p99", "ms", ".3f"),
    "perf-messages": ("messages", "all streams", "d"),
    "perf-msg-rate": ("message rate", "msg / s of feed", ".2f"),
    "perf-cpu-pct": ("process CPU", "% mean", ".1f"),
    "perf-cpu-pct-max": ("process CPU", "% max", ".1f"),
    "perf-rss-mb": ("RSS", "MB", ".1f"),
    "perf-rss-mb-peak": ("RSS peak", "MB", ".1f"),
    "perf-threads": ("threads", "max", "d"),
}
#: Seconds in a (crypto, 365-day) year: the volatility inputs and outputs are annualised.
YEAR_S = PER_SECONDS["year"]
#: Longest single sleep of the paced loop, so a new speed or a pause applies at once.
MAX_SLEEP = 0.1
#: Per-tick latencies kept for the percentiles.
LATENCY_WINDOW = 10_000


def _fmt(value: Any, fmt: str) -> str:
    """A number as the output widgets show it: parseable by ``float()``, ``-`` if unknown.

    >>> _fmt(1.23456, ".3f"), _fmt(float("nan"), ".3f"), _fmt(None, "d"), _fmt(7, "d")
    ('1.235', '-', '-', '7')
    """
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return format(value, fmt)


def perf_numbers(summary: Mapping[str, Any], inst: str) -> dict[str, Any]:
    """The performance panel's numbers from a :meth:`Monitor.summary` (NaN, or None for a
    count, when unknown): per stage its tick count and p50, p99 and max (us); ``inst``'s feed
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
    streams = (summary.get("streams") or {}).values()
    out["perf-messages"] = sum(v["messages"] for v in streams) if streams else None
    rates = [v["rate_per_s"] for v in streams if v.get("rate_per_s") is not None]
    out["perf-msg-rate"] = float(sum(rates)) if rates else nan
    r = summary.get("resources") or {}
    have = bool(r.get("samples"))
    for key, field_ in (("perf-cpu-pct", "cpu_pct_mean"), ("perf-cpu-pct-max", "cpu_pct_max"),
                        ("perf-rss-mb", "rss_mb_last"), ("perf-rss-mb-peak", "rss_mb_peak")):
        out[key] = float(r[field_]) if have else nan
    out["perf-threads"] = int(r["threads_max"]) if have else None
    return out


class Pacer:
    """When to process the next event of a replay at ``speed`` x real time.

    The first event after :meth:`reset` is due at once and anchors the clock: an event
    received ``d`` ns after the anchor is due ``d / 1e9 / speed`` seconds after it. A new
    speed re-anchors at the replay time reached so far, so it applies from now on. ``speed``
    None: unpaced (every event is due at once).

    >>> p = Pacer(10.0)
    >>> p.delay(0, now=100.0), p.delay(5_000_000_000, now=100.0)  # 5 s of feed at 10x
    (0.0, 0.5)
    >>> p.set_speed(50.0, now=100.25)  # halfway there: 2.5 s of feed left, at 50x
    >>> round(p.delay(5_000_000_000, now=100.25), 9)
    0.05
    """

    def __init__(self, speed: float | None = None) -> None:
        self.speed = self._check(speed)
        self._anchor: tuple[int, float] | None = None

    @staticmethod
    def _check(speed: float | None) -> float | None:
        if speed is None:
            return None
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not (
                math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a number > 0 (x real time) or None, got {speed!r}")
        return float(speed)

    def reset(self) -> None:
        """Forget the clock: the next event is due at once (resume, restart)."""
        self._anchor = None

    def delay(self, recv_ns: int, now: float) -> float:
        """Seconds from ``now`` (monotonic) until the event received at ``recv_ns`` is due
        (<= 0: due)."""
        if self.speed is None:
            return 0.0
        if self._anchor is None:
            self._anchor = (recv_ns, now)
            return 0.0
        r0, t0 = self._anchor
        return t0 + (recv_ns - r0) / 1e9 / self.speed - now

    def set_speed(self, speed: float | None, now: float) -> None:
        """Change the speed from ``now`` on, keeping the replay time reached so far."""
        speed = self._check(speed)
        if self._anchor is not None and self.speed is not None and speed is not None:
            r0, t0 = self._anchor
            self._anchor = (r0 + round((now - t0) * self.speed * 1e9), now)
        elif speed is None:
            self._anchor = None
        self.speed = speed


ImpactSpec = ACParams | Mapping[str, ACParams] | Callable[[str], Any] | str | None


class TradeSimulator:
    """Price an order at every tick of ``source_factory()``'s events, in ipywidgets.

    ``source_factory``: called with no argument for a fresh source (at the first
    :meth:`start` or :meth:`run_events`, and again after the end or after pausing a live
    source). ``instruments``: those offered (default: ``metadata``'s); ``metadata``:
    instrument id -> OKX instrument metadata (the source's ``instruments`` fill the rest).
    ``impact``: ``"book"`` (default) estimates the Almgren-Chriss parameters from the
    live book and the mids seen (:func:`simlab.sim.estimate.estimate_impact`, again
    every ``estimate_every`` seconds of feed); or parameters (time unit: seconds) for every
    instrument, a mapping per instrument, a function ``inst -> ACParams`` or
    ``(ACParams, provenance)``, or None (impact not priced). ``speed``: pace a replay at
    this many x real time (None: unpaced, e.g. a live source). ``T``, ``N``, ``lam``: the
    impact horizon (s), its steps and the risk aversion of the estimated parameters.
    ``volatility`` (input, % a year): 0 uses the calibrated or estimated sigma, else
    ``sigma = vol * mid / sqrt(seconds a year)``. ``monitor_interval``: seconds between two
    samples of the process's CPU, RSS and threads while running (:attr:`monitor`).

    >>> from simlab.emulator import write_synthetic_recording
    >>> import tempfile
    >>> rec = write_synthetic_recording(tempfile.mkdtemp() + "/rec", seconds=5.0)
    >>> sim = TradeSimulator.from_recording(rec, charts=False)
    >>> sim.run_events(30) > 0, sim.outputs["net_bps"] > 0
    (True, True)
    """

    def __init__(self, source_factory: Callable[[], Any], *,
                 instruments: Iterable[str] | None = None,
                 metadata: Mapping[str, Mapping[str, Any]] | None = None,
                 impact: ImpactSpec = "book", speed: float | None = None,
                 channel: str = "books", quantity: float = 10_000.0, unit: str = "quote",
                 side: str = "buy", order_type: str = "market", fee_tier: str = "Lv1",
                 model: Any = None, T: float = 60.0, N: int = 60, lam: float = 1e-6,
                 history_seconds: float = 120.0, depth_levels: int = 50,
                 update_every: float = 0.1, chart_every: float = 0.5,
                 estimate_every: float = 10.0, charts: bool = True,
                 monitor_interval: float = 1.0) -> None:
        if not callable(source_factory):
            raise TypeError("source_factory must be a function returning a fresh source, "
                            f"got {type(source_factory).__name__}")
        self.source_factory = source_factory
        self.metadata: dict[str, dict[str, Any]] = {k: dict(v) for k, v in
                                                    (metadata or {}).items()}
        insts = list(instruments) if instruments is not None else sorted(self.metadata)
        if not insts or not all(isinstance(i, str) and i for i in insts):
            raise ValueError(f"instruments must name at least one instrument id, got {insts!r}")
        if isinstance(impact, str) and impact != "book":
            raise ValueError(f"impact must be 'book', ACParams, a mapping, a function or None, "
                             f"got {impact!r}")
        for name, v in (("update_every", update_every), ("chart_every", chart_every),
                        ("history_seconds", history_seconds),
                        ("estimate_every", estimate_every),
                        ("monitor_interval", monitor_interval)):
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        self.channel = channel
        self.model = model
        self.T, self.N, self.lam = T, N, lam
        self.history_seconds = float(history_seconds)
        self.depth_levels = depth_levels
        self.update_every, self.chart_every = float(update_every), float(chart_every)
        self.estimate_every_ns = int(estimate_every * 1e9)
        self.monitor_interval = float(monitor_interval)
        self.monitor: Monitor | None = None  # a fresh one per run (_reset_stream)
        self.draw_charts = charts
        self._charts: tuple[Any, Any] | None = None  # built at the first draw
        self._chart_gap = float(chart_every)
        self._impact_spec = impact
        self._impact_cache: dict[str, tuple[ACParams | None, str]] = {}
        self.pacer = Pacer(speed)
        self.paced = speed is not None

        self.source: Any = None
        self._it: Any = None      # the source's sync iterator (a replay)
        self._ait: Any = None     # or its async iterator (live)
        self._task: asyncio.Task | None = None
        self._pending: Any = None
        self._hold = False
        self.state = "idle"
        self.pipeline: CostPipeline | None = None
        self.impact: ACParams | None = None
        self.impact_info = ""
        self._reset_stream()

        self._build_widgets(insts, quantity, unit, side, order_type, fee_tier, speed)
        self._rebuild_safely()
        self.refresh(force=True)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_recording(cls, recordings: Any, *, speed: float | None = 10.0,
                       instruments: Iterable[str] | None = None, channel: str = "books",
                       start: Any = None, end: Any = None, calibrate: bool = True,
                       T: float = 60.0, N: int = 60, lam: float = 1e-6,
                       time_basis: str = "exchange", **options: Any) -> TradeSimulator:
        """Replay one or several recordings at ``speed`` x real time (None: as fast as
        possible), with impact parameters calibrated from the first recording
        (:func:`simlab.sim.run.impact_params`; ``calibrate=False``: no impact).
        ``start``/``end`` are on the clock ``time_basis``: ``"exchange"`` (the default, the
        exchange's message time) or ``"recv"`` (receive time).

        >>> TradeSimulator.from_recording("rec", speed=10.0).panel        # doctest: +SKIP
        """
        from simlab.sim.run import impact_params

        recs = open_recordings(recordings)
        have = sorted({i for r in recs for (c, i) in streams(r, "book") if c == channel})
        insts = list(instruments) if instruments is not None else have
        probe = ReplaySource(recs, insts=insts, channels=[channel], start=start, end=end,
                             time_basis=time_basis)

        def factory() -> ReplaySource:
            return ReplaySource(recs, insts=insts, start=start, end=end,
                                time_basis=time_basis)

        impact: ImpactSpec = None
        if calibrate:
            def impact(inst: str) -> tuple[ACParams, str]:
                p, how = impact_params(recs, OrderSpec(inst, "buy", 1.0), T=T, N=N, lam=lam,
                                       channel=channel)
                return p, "; ".join(f"{k}: {v}" for k, v in group_provenance(how).items())

        return cls(factory, instruments=insts, metadata=probe.instruments, impact=impact,
                   speed=speed, channel=channel, T=T, N=N, lam=lam, **options)

    def _build_widgets(self, insts: list[str], quantity: float, unit: str, side: str,
                       order_type: str, fee_tier: str, speed: float | None) -> None:
        def tag(w: W.Widget, cls: str) -> W.Widget:
            w.add_class(cls)
            return w

        lay = W.Layout(width="300px")
        self.exchange = tag(W.Dropdown(options=["OKX"], value="OKX", description="exchange",
                                       disabled=True, layout=lay), "simlab-in-exchange")
        self.instrument = tag(W.Dropdown(options=insts, value=insts[0], description="instrument",
                                         layout=lay), "simlab-in-instrument")
        self.side = tag(W.ToggleButtons(options=list(SIDES), value=side, description="side",
                                        style={"button_width": "90px"}), "simlab-in-side")
        self.order_type = tag(W.ToggleButtons(options=list(ORDER_TYPES), value=order_type,
                                              description="order type",
                                              style={"button_width": "90px"}),
                              "simlab-in-order_type")
        self.quantity = tag(W.FloatText(value=quantity, description="quantity", layout=lay),
                            "simlab-in-quantity")
        self.unit = tag(W.ToggleButtons(options=list(UNITS), value=unit, description="unit",
                                        tooltips=["base currency (e.g. BTC)",
                                                  "quote notional (e.g. USDT)"],
                                        style={"button_width": "90px"}), "simlab-in-unit")
        self.volatility = tag(W.FloatText(value=0.0, description="volatility %/yr",
                                          tooltip="0 = calibrated", layout=lay,
                                          style={"description_width": "initial"}),
                              "simlab-in-volatility")
        self.fee_tier = tag(W.Dropdown(options=self._tiers(insts[0]), description="fee tier",
                                       layout=lay), "simlab-in-fee_tier")
        if fee_tier in self.fee_tier.options:
            self.fee_tier.value = fee_tier
        self.speed = tag(W.FloatLogSlider(value=speed or 10.0, base=10, min=-1, max=3,
                                          step=0.05, description="speed x",
                                          disabled=speed is None, readout_format=".3g",
                                          continuous_update=False, layout=lay),
                         "simlab-in-speed")
        self.start_button = tag(W.Button(description="start", icon="play",
                                         button_style="success"), "simlab-start")
        self.pause_button = tag(W.Button(description="pause", icon="pause"), "simlab-pause")
        self.start_button.on_click(lambda _: self._safely(self.start))
        self.pause_button.on_click(lambda _: self._safely(self.pause))
        self.status = tag(W.HTML(), "simlab-status")
        self.error = tag(W.HTML(), "simlab-error")
        self.impact_note = tag(W.HTML(layout=W.Layout(max_width="900px")), "simlab-impact-info")

        self.out_widgets: dict[str, W.HTML] = {}
        cells: list[W.Widget] = []
        for key, (label, unit_, _) in OUTPUTS.items():
            w = tag(W.HTML(value="-", layout=W.Layout(justify_content="flex-end")),
                    f"simlab-out-{key}")
            self.out_widgets[key] = w
            cells += [W.Label(label), w, W.Label(unit_)]
        grid = W.GridBox(cells, layout=W.Layout(grid_template_columns="auto 120px auto",
                                                grid_gap="2px 12px"))
        self.price_image = tag(W.Image(format="png"), "simlab-chart-price")
        self.depth_image = tag(W.Image(format="png"), "simlab-chart-depth")
        self.perf_panel = tag(self._build_perf(tag), "simlab-perf")
        inputs = W.VBox([self.exchange, self.instrument, self.side, self.order_type,
                         self.quantity, self.unit, self.volatility, self.fee_tier, self.speed,
                         W.HBox([self.start_button, self.pause_button])])
        self.panel = tag(W.VBox([W.HBox([inputs, grid], layout=W.Layout(grid_gap="24px")),
                                 self.status, self.error, self.impact_note, self.perf_panel,
                                 W.HBox([self.price_image, self.depth_image])]),
                         "simlab-trade-simulator")
        for w in (self.side, self.order_type, self.quantity, self.volatility, self.fee_tier):
            w.observe(self._on_input, names="value")
        self.instrument.observe(self._on_instrument, names="value")
        self.unit.observe(self._on_unit, names="value")
        self.speed.observe(self._on_speed, names="value")

    def _build_perf(self, tag: Callable[[W.Widget, str], W.Widget]) -> W.Accordion:
        """The performance panel: a stage x (ticks, p50, p99, max) table and the feed and
        process numbers, in a collapsed accordion (the numbers refresh while collapsed, so
        they can be read from the page either way)."""
        self.perf_widgets: dict[str, W.HTML] = {}
        self._perf_fmt = {f"perf-{stage}-{stat}": fmt for stage in PERF_STAGES
                          for stat, (_, fmt) in PERF_STAGE_STATS.items()}
        self._perf_fmt.update({k: v[2] for k, v in PERF_OUTPUTS.items()})

        def cell(key: str) -> W.HTML:
            w = tag(W.HTML(value="-", layout=W.Layout(justify_content="flex-end")),
                    f"simlab-out-{key}")
            self.perf_widgets[key] = w
            return w

        head = [W.HTML("<b>stage</b>"),
                *(W.HTML(f"<b>{title}</b>") for title, _ in PERF_STAGE_STATS.values())]
        cells: list[W.Widget] = list(head)
        for stage in PERF_STAGES:
            cells += [W.Label(stage), *(cell(f"perf-{stage}-{stat}") for stat in PERF_STAGE_STATS)]
        stages = W.GridBox(cells, layout=W.Layout(
            grid_template_columns=f"auto repeat({len(PERF_STAGE_STATS)}, 90px)",
            grid_gap="2px 12px"))
        cells = []
        for key, (label, unit_, _) in PERF_OUTPUTS.items():
            cells += [W.Label(label), cell(key), W.Label(unit_)]
        other = W.GridBox(cells, layout=W.Layout(grid_template_columns="auto 90px auto",
                                                 grid_gap="2px 12px"))
        acc = W.Accordion(children=[W.HBox([stages, other], layout=W.Layout(grid_gap="36px"))],
                          titles=("performance",), selected_index=None)
        return acc

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.panel)

    # -- inputs ------------------------------------------------------------------------------
    def _tiers(self, inst: str) -> list[str]:
        try:
            kind = Instrument.from_metadata(inst, self.metadata.get(inst)).inst_type
        except ValueError:
            kind = "SPOT"
        return list(fee_tiers(kind))

    def _safely(self, fn: Callable[[], Any]) -> None:
        """Run a callback; an exception goes to the red message, never out."""
        try:
            fn()
        except Exception as e:  # a widget callback must not raise into the front end
            self._show_error(e)

    def _show_error(self, e: BaseException | str | None) -> None:
        if e is None:
            self.error.value = ""
        else:
            text = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
            self.error.value = (f'<span style="color:#c00;font-weight:bold">'
                                f'{_escape(text)}</span>')

    @property
    def error_message(self) -> str:
        """The error message shown (plain text), "" when none."""
        import re

        return _unescape(re.sub(r"<[^>]+>", "", self.error.value))

    def _on_input(self, change: dict) -> None:
        if not self._hold:
            self._rebuild_safely()

    def _on_instrument(self, change: dict) -> None:
        self._hold = True
        try:
            tiers = self._tiers(change["new"])
            if list(self.fee_tier.options) != tiers:
                keep = self.fee_tier.value
                self.fee_tier.options = tiers
                self.fee_tier.value = keep if keep in tiers else tiers[0]
        finally:
            self._hold = False
        self._rebuild_safely(charts=True)

    def _on_unit(self, change: dict) -> None:
        # keep the order's size: convert the quantity at the mid when one is known
        mid = self._mid(self.instrument.value)
        if math.isfinite(mid) and mid > 0 and not self._hold:
            q = self.quantity.value
            self._hold = True
            try:
                self.quantity.value = q / mid if change["new"] == "base" else q * mid
            finally:
                self._hold = False
        self._rebuild_safely()

    def _on_speed(self, change: dict) -> None:
        if self.paced:
            self._safely(lambda: self.pacer.set_speed(float(change["new"]), time.monotonic()))

    def order(self) -> OrderSpec:
        """The order the inputs describe (raises ValueError naming a bad input)."""
        # the input box is "quantity" whatever the unit: name it, not the API's wording
        q = check_size(self.quantity.value, "quantity")
        return OrderSpec(self.instrument.value, self.side.value, q, self.unit.value,
                         self.order_type.value, self.fee_tier.value)

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
        return p, "; ".join(f"{k}: {v}" for k, v in group_provenance(how).items())

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
        vol = self.volatility.value
        if not isinstance(vol, int | float) or not math.isfinite(vol) or vol < 0:
            raise ValueError(f"volatility must be a number >= 0 (% a year; 0 = calibrated), "
                             f"got {vol!r}")
        if vol == 0:
            return p, how
        if p is None:
            return None, (how + f"; the volatility override ({vol:g} %/yr) needs impact "
                          "parameters (eta, gamma) too")
        mid = self._mid(inst)
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
        self._row = None
        if not in_stream:
            # a new order: its ticks the book could not fill are counted afresh
            self._order_ticks = self._unfilled = 0
        order = self.order()
        inst = order.inst
        self.impact, self.impact_info = self._impact_params(inst)
        self._sigma_pending = (self.volatility.value > 0 and self.impact is not None
                               and not math.isfinite(self._mid(inst)))
        self._meta_known = inst in self.metadata
        self.pipeline = CostPipeline(order, channel=self.channel, impact=self.impact,
                                     model=self.model, metadata=self.metadata,
                                     monitor=self.monitor)
        self.impact_note.value = f"<small>impact: {_escape(self.impact_info)}</small>"
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
        except Exception as e:  # shown, never raised out of a callback
            self._show_error(e)
        else:
            self._show_error(None)
        self.refresh(force=True, charts=charts)

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
        self._last_numbers = self._last_chart = -math.inf
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

    def _restart(self) -> None:
        """A fresh source from the beginning (after the end of a replay)."""
        self._reset_stream()
        self._it = self._ait = self.source = None
        self._pending = None
        self.pacer.reset()
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
            if ev.inst != self.instrument.value:
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
                    # the widget keeps its own numbers; bound the pipeline's table
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
        self.refresh(force=True)
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
            self._restart()
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
        self.refresh(force=True)

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
                        self.refresh(force=True)
                        return
                    self._pending = ev
                if self.paced:
                    wait = self.pacer.delay(ev.recv_ns, time.monotonic())
                    if wait > 0:
                        self.refresh()
                        await asyncio.sleep(min(wait, MAX_SLEEP))
                        continue
                self._pending = None
                self._process(ev)
                n += 1
                if n % 64 == 0:
                    await asyncio.sleep(0)  # let the kernel handle widget messages
                self.refresh()
        except asyncio.CancelledError:
            if self._task is asyncio.current_task():
                # cancelled from outside (pause() lets go of the task first): the event loop
                # is going away, so the sampler thread must not outlive the run
                self._sample_resources(False)
            raise
        except Exception as e:  # a background task has no caller to raise to
            self._show_error(e)
            self._set_state("stopped")

    def close(self) -> None:
        """Stop for good: pause, stop the resource sampler, hand the last latencies to
        :attr:`monitor` (still readable afterwards) and close the widgets."""
        self.pause()
        self._sample_resources(False)
        if self.pipeline is not None:
            self.pipeline.flush_monitor()
        _close_tree(self.panel)

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
        self.start_button.disabled = state == "running"
        self.pause_button.disabled = state != "running"

    # -- outputs -----------------------------------------------------------------------------
    def _mid(self, inst: str) -> float:
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
        """The displayed numbers (NaN when unknown): costs at the last priced tick, the
        maker/taker split, the per-tick latency percentiles (us) over the last
        ``LATENCY_WINDOW`` ticks, counts."""
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
        mid = out["mid"] if math.isfinite(out["mid"]) else self._mid(self.instrument.value)
        out["sigma"] = sigma
        out["volatility_pct"] = (sigma / mid * math.sqrt(YEAR_S) * 100
                                 if math.isfinite(mid) and mid > 0 else nan)
        return out

    @property
    def perf_outputs(self) -> dict[str, Any]:
        """The performance panel's numbers (:func:`perf_numbers` of :attr:`monitor`'s
        summary, for the selected instrument), with the latencies measured so far."""
        if self.pipeline is not None:
            self.pipeline.flush_monitor()
        return perf_numbers(self.monitor.summary(), self.instrument.value)

    def refresh(self, force: bool = False, charts: bool | None = None) -> None:
        """Update the output widgets (at most every ``update_every`` s unless ``force``)
        and the charts (every ``chart_every`` s, or when ``charts`` is True)."""
        now = time.monotonic()
        if force or now - self._last_numbers >= self.update_every:
            self._last_numbers = now
            out = self.outputs
            for key, w in self.out_widgets.items():
                text = _fmt(out.get(key), OUTPUTS[key][2])
                if w.value != text:
                    w.value = text
            for key, value in self.perf_outputs.items():
                text = _fmt(value, self._perf_fmt[key])
                w = self.perf_widgets[key]
                if w.value != text:
                    w.value = text
            state = self.state + (f" ({self.speed.value:.3g}x)" if self.paced else "")
            note = f" &middot; last notice: {_escape(self.notice)}" if self.notice else ""
            self.status.value = (f"<b>{state}</b> &middot; {self._events} events, "
                                 f"{self._ticks} ticks priced{note}{self._fill_note(out)}")
        if self.draw_charts and (charts or (charts is None and (
                force or now - self._last_chart >= self._chart_gap))):
            self.draw()
            # charts take ~0.1 s: keep them under a fifth of the loop's time
            self._last_chart = time.monotonic()
            self._chart_gap = max(self.chart_every, 4 * (self._last_chart - now))

    def _fill_note(self, out: dict[str, Any]) -> str:
        """The status line's warning when the book could not fill the order: the costs shown
        are then those of the part filled."""
        if out["complete"] is not None and not out["complete"]:
            return (' &middot; <span style="color:#c00;font-weight:bold">the book could not '
                    f'fill the order at the last tick (filled share {out["filled_share"]:.3g}):'
                    ' the costs shown are of the part filled; '
                    f'{out["unfilled_ticks"]} of {out["order_ticks"]} ticks not fillable'
                    '</span>')
        if out["unfilled_ticks"]:
            return (f' &middot; <span style="color:#c00">{out["unfilled_ticks"]} of '
                    f'{out["order_ticks"]} ticks the book could not fill the order</span>')
        return ""

    @property
    def fill_warning(self) -> str:
        """The status line's warning about unfilled orders (plain text), "" when none."""
        import re

        return _unescape(re.sub(r"<[^>]+>", "", self._fill_note(self.outputs))).removeprefix(
            " &middot; ").strip(" ·")

    def draw(self) -> None:
        """Render the price/spread and depth charts of the selected instrument."""
        if self._charts is None:
            self._charts = (charts.PriceChart("seconds before the last tick"),
                            charts.DepthChart())
        price, depth = self._charts
        inst = self.instrument.value
        h = self._hist.get(inst) or ()
        if h:
            arr = np.array(h, dtype=float)
            t = (arr[:, 0] - arr[-1, 0]) / 1e9
            self.price_image.value = price.render(t, arr[:, 1], arr[:, 2],
                                                  f"{inst} (last {self.history_seconds:g} s)")
        else:
            self.price_image.value = price.render([], [], [], inst)
        ev = self._last.get(inst)
        if ev is not None and ev.valid:
            top = ev.book.top(self.depth_levels)
            self.depth_image.value = depth.render(top.bid_px, top.bid_sz, top.ask_px,
                                                  top.ask_sz, f"{inst} depth")
        else:
            self.depth_image.value = depth.render([], [], [], [], f"{inst} depth")


def _close_tree(w: W.Widget) -> None:
    for child in getattr(w, "children", ()):
        _close_tree(child)
    w.close()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
