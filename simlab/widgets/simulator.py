"""The trade-simulator dashboard: the ipywidgets view of a
:class:`~simlab.sim.session.TradeSession` (what would this order cost, at every tick, live
or replayed).

:class:`TradeSimulator` shows a session in ipywidgets: inputs on the left (instrument, side,
order type, quantity and its unit, volatility override, fee tier, replay speed), the numbers
on the right (slippage, fees, impact, net cost in bps and quote, maker/taker split,
per-tick latency), a performance panel, a price/spread chart and a depth chart below. The
session holds the state and does the work (the run loop, pricing, the numbers and the
charts' series: see :mod:`simlab.sim.session`); the view forwards each input change to it,
and renders what it computes:

- changing an input re-prices at once on the book of the last tick, so the numbers follow
  the inputs even while paused; bad input shows in a red message, a callback never raises;
- the widgets are refreshed at most every ``update_every`` seconds (numbers) and
  ``chart_every`` seconds (charts) while running: the cost is priced at every tick, but a
  browser cannot draw thousands of updates a second;
- the "performance" panel shows the session's :attr:`~TradeSimulator.monitor`, refreshed
  with the numbers.

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
import re
import time
from collections.abc import Callable
from typing import Any

from simlab.extras import require
from simlab.sim.config import RunConfig
from simlab.sim.order import ORDER_TYPES, SIDES, UNITS, OrderSpec
from simlab.sim.pacing import Pacer
from simlab.sim.session import PERF_STAGES, Listener, TradeSession, perf_numbers

from . import charts

_FEATURE = "the trade-simulator dashboard"
W = require("ipywidgets", feature=_FEATURE)

__all__ = ["OUTPUTS", "PERF_OUTPUTS", "PERF_STAGES", "PERF_STAGE_STATS", "Pacer",
           "TradeSimulator", "perf_numbers"]

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
#: The performance panel's columns (its rows: :data:`PERF_STAGES`, the cost pipeline's
#: stages): stat -> (column title, format); latencies in microseconds per tick.
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


class TradeSimulator(Listener):
    """A :class:`~simlab.sim.session.TradeSession` in ipywidgets.

    ``source``: the session, or a function returning a fresh feed source, with ``config``
    (a :class:`~simlab.sim.config.RunConfig`) and ``session`` keywords as
    :meth:`TradeSession.build <simlab.sim.session.TradeSession.build>` takes them (the
    instruments offered, their metadata, the impact parameters, the maker/taker model, the
    :class:`~simlab.sim.session.SessionOptions` such as ``speed``, or the order's first
    inputs such as ``quantity``, ``unit``, ``side``, ``order_type``, ``fee_tier``, ``T``,
    ``N``, ``lam`` when there is no ``config``). ``update_every`` and ``chart_every``:
    seconds between two refreshes of the numbers and of the charts while running;
    ``charts=False`` draws no charts.

    >>> from simlab.emulator import write_synthetic_recording
    >>> import tempfile
    >>> rec = write_synthetic_recording(tempfile.mkdtemp() + "/rec", seconds=5.0)
    >>> sim = TradeSimulator.from_recording(rec, charts=False)
    >>> sim.run_events(30) > 0, sim.outputs["net_bps"] > 0
    (True, True)
    """

    def __init__(self, source: Callable[[], Any] | TradeSession,
                 config: RunConfig | None = None, *, update_every: float = 0.1,
                 chart_every: float = 0.5, charts: bool = True, **session: Any) -> None:
        if isinstance(source, TradeSession):
            if config is not None or session:
                raise TypeError("a TradeSession comes with its configuration: give no "
                                f"config or {', '.join(session) or 'session keywords'}")
            s = source
        else:
            s = TradeSession.build(source, config, **session)
        for name, v in (("update_every", update_every), ("chart_every", chart_every)):
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        self.session = s
        self.update_every, self.chart_every = float(update_every), float(chart_every)
        self.draw_charts = charts
        self._charts: tuple[Any, Any] | None = None  # built at the first draw
        self._chart_gap = float(chart_every)
        self._last_numbers = self._last_chart = -float("inf")
        self._hold = False
        self._build_widgets()
        s.listener = self
        self.show_error(s.error or None)
        if self.fee_tier.value != s.inputs["fee_tier"]:
            s.set_inputs(fee_tier=self.fee_tier.value)  # the instrument has no such tier
        self.refresh(force=True)

    @classmethod
    def from_recording(cls, recordings: Any, config: RunConfig | None = None, *,
                       update_every: float = 0.1, chart_every: float = 0.5,
                       charts: bool = True, **session: Any) -> TradeSimulator:
        """Replay one or several recordings (:meth:`TradeSession.from_recording
        <simlab.sim.session.TradeSession.from_recording>`: at ``speed`` x real time, 10 by
        default, None: as fast as possible; impact parameters calibrated from the first
        recording unless ``calibrate=False``; ``start``/``end`` on the clock
        ``time_basis``).

        >>> TradeSimulator.from_recording("rec", speed=10.0).panel        # doctest: +SKIP
        """
        return cls(TradeSession.from_recording(recordings, config, **session),
                   update_every=update_every, chart_every=chart_every, charts=charts)

    def _build_widgets(self) -> None:
        s = self.session
        i = s.inputs
        insts = s.instruments
        speed = s.pacer.speed if s.paced else None

        def tag(w: W.Widget, cls: str) -> W.Widget:
            w.add_class(cls)
            return w

        lay = W.Layout(width="300px")
        self.exchange = tag(W.Dropdown(options=["OKX"], value="OKX", description="exchange",
                                       disabled=True, layout=lay), "simlab-in-exchange")
        self.instrument = tag(W.Dropdown(options=insts, value=i["inst"], description="instrument",
                                         layout=lay), "simlab-in-instrument")
        self.side = tag(W.ToggleButtons(options=list(SIDES), value=i["side"], description="side",
                                        style={"button_width": "90px"}), "simlab-in-side")
        self.order_type = tag(W.ToggleButtons(options=list(ORDER_TYPES), value=i["order_type"],
                                              description="order type",
                                              style={"button_width": "90px"}),
                              "simlab-in-order_type")
        self.quantity = tag(W.FloatText(value=i["quantity"], description="quantity", layout=lay),
                            "simlab-in-quantity")
        self.unit = tag(W.ToggleButtons(options=list(UNITS), value=i["unit"], description="unit",
                                        tooltips=["base currency (e.g. BTC)",
                                                  "quote notional (e.g. USDT)"],
                                        style={"button_width": "90px"}), "simlab-in-unit")
        self.volatility = tag(W.FloatText(value=i["volatility"], description="volatility %/yr",
                                          tooltip="0 = calibrated", layout=lay,
                                          style={"description_width": "initial"}),
                              "simlab-in-volatility")
        self.fee_tier = tag(W.Dropdown(options=s.fee_tiers(i["inst"]), description="fee tier",
                                       layout=lay), "simlab-in-fee_tier")
        if i["fee_tier"] in self.fee_tier.options:
            self.fee_tier.value = i["fee_tier"]
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
        for name, w in (("side", self.side), ("order_type", self.order_type),
                        ("quantity", self.quantity), ("volatility", self.volatility),
                        ("fee_tier", self.fee_tier)):
            w.observe(self._on_input(name), names="value")
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
        require("IPython.display", feature=_FEATURE, extra="notebook").display(self.panel)

    # -- inputs: forwarded to the session ------------------------------------------------------
    def _safely(self, fn: Callable[[], Any]) -> None:
        """Run a callback; an exception goes to the red message, never out."""
        try:
            fn()
        except Exception as e:  # a widget callback must not raise into the front end
            self.show_error(e)

    def show_error(self, e: BaseException | str | None) -> None:
        """Show ``e`` in the red message (None: clear it)."""
        if e is None:
            self.error.value = ""
        else:
            text = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
            self.error.value = (f'<span style="color:#c00;font-weight:bold">'
                                f'{_escape(text)}</span>')

    @property
    def error_message(self) -> str:
        """The error message shown (plain text), "" when none."""
        return _unescape(re.sub(r"<[^>]+>", "", self.error.value))

    def _on_input(self, name: str) -> Callable[[dict], None]:
        def changed(change: dict) -> None:
            if not self._hold:
                self.session.set_inputs(**{name: change["new"]})
        return changed

    def _on_instrument(self, change: dict) -> None:
        self._hold = True
        try:
            tiers = self.session.fee_tiers(change["new"])
            if list(self.fee_tier.options) != tiers:
                keep = self.fee_tier.value
                self.fee_tier.options = tiers
                self.fee_tier.value = keep if keep in tiers else tiers[0]
        finally:
            self._hold = False
        self.session.set_inputs(redraw=True, inst=change["new"], fee_tier=self.fee_tier.value)

    def _on_unit(self, change: dict) -> None:
        # keep the order's size: the session converts the quantity at the mid
        if not self._hold:
            q = self.session.convert_quantity(self.quantity.value, change["new"])
            self._hold = True
            try:
                self.quantity.value = q
            finally:
                self._hold = False
        self.session.set_inputs(unit=change["new"], quantity=self.quantity.value)

    def _on_speed(self, change: dict) -> None:
        self._safely(lambda: self.session.set_speed(change["new"]))

    def order(self) -> OrderSpec:
        """The order the inputs describe (raises ValueError naming a bad input)."""
        return self.session.order()

    # -- running: the session's ----------------------------------------------------------------
    def run_events(self, n: int) -> int:
        """Process the next ``n`` events synchronously (:meth:`TradeSession.run_events
        <simlab.sim.session.TradeSession.run_events>`)."""
        return self.session.run_events(n)

    def start(self) -> asyncio.Task:
        """Run in the background of the running event loop (Jupyter's); returns the task."""
        return self.session.start()

    def pause(self) -> None:
        """Stop processing; :meth:`start` resumes (a live source reconnects)."""
        self.session.pause()

    def close(self) -> None:
        """Stop for good (:meth:`TradeSession.close
        <simlab.sim.session.TradeSession.close>`) and close the widgets."""
        self.session.close()
        _close_tree(self.panel)

    def state_changed(self, state: str) -> None:
        """The buttons follow the run state."""
        self.start_button.disabled = state == "running"
        self.pause_button.disabled = state != "running"

    # -- outputs -----------------------------------------------------------------------------
    def refresh(self, force: bool = False, charts: bool | None = None) -> None:
        """Update the output widgets (at most every ``update_every`` s unless ``force``)
        and the charts (every ``chart_every`` s, or when ``charts`` is True)."""
        now = time.monotonic()
        s = self.session
        if force or now - self._last_numbers >= self.update_every:
            self._last_numbers = now
            out = s.outputs
            for key, w in self.out_widgets.items():
                text = _fmt(out.get(key), OUTPUTS[key][2])
                if w.value != text:
                    w.value = text
            for key, value in s.perf_outputs.items():
                text = _fmt(value, self._perf_fmt[key])
                w = self.perf_widgets[key]
                if w.value != text:
                    w.value = text
            state = s.state + (f" ({self.speed.value:.3g}x)" if s.paced else "")
            note = f" &middot; last notice: {_escape(s.notice)}" if s.notice else ""
            self.status.value = (f"<b>{state}</b> &middot; {out['events']} events, "
                                 f"{out['ticks']} ticks priced{note}{self._fill_note(out)}")
            info = f"<small>impact: {_escape(s.impact_info)}</small>"
            if self.impact_note.value != info:
                self.impact_note.value = info
        if self.draw_charts and (charts or (charts is None and (
                force or now - self._last_chart >= self._chart_gap))):
            self.draw()
            # charts take ~0.1 s: keep them under a fifth of the loop's time
            self._last_chart = time.monotonic()
            self._chart_gap = max(self.chart_every, 4 * (self._last_chart - now))

    def _fill_note(self, out: dict[str, Any]) -> str:
        """The status line's warning when the book could not fill the order."""
        text, last_tick = self.session.fill_warning(out)
        if not text:
            return ""
        style = "color:#c00;font-weight:bold" if last_tick else "color:#c00"
        return f' &middot; <span style="{style}">{_escape(text)}</span>'

    @property
    def fill_warning(self) -> str:
        """The status line's warning about unfilled orders (plain text), "" when none."""
        return self.session.fill_warning()[0]

    def draw(self) -> None:
        """Render the price/spread and depth charts of the selected instrument."""
        if self._charts is None:
            self._charts = (charts.PriceChart("seconds before the last tick"),
                            charts.DepthChart())
        price, depth = self._charts
        s = self.session
        self.price_image.value = price.render(*s.price_series())
        d = s.depth_series()
        self.depth_image.value = (depth.render(*d) if d is not None else
                                  depth.render([], [], [], [], f"{s.inputs['inst']} depth"))


def _delegate(name: str) -> property:
    return property(lambda self: getattr(self.session, name),
                    doc=f"The session's :attr:`~simlab.sim.session.TradeSession.{name}`.")


# what the session holds, read through the view as before the split
for _name in ("outputs", "perf_outputs", "impact", "impact_info", "monitor", "pacer", "paced",
              "pipeline", "running", "state", "notice", "source", "instruments", "metadata",
              "model", "channel"):
    setattr(TradeSimulator, _name, _delegate(_name))
del _name


def _close_tree(w: W.Widget) -> None:
    for child in getattr(w, "children", ()):
        _close_tree(child)
    w.close()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
