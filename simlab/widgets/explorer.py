"""The Almgren-Chriss explorer: sliders for the model's parameters, the optimal schedule and
the efficient frontier, recomputed on every change.

:class:`ImpactExplorer` evaluates :mod:`simlab.models.impact` (``trajectory``,
``trade_list``, ``expected_cost``, ``variance``, ``frontier``) for the slider values and
shows the holdings against time with the trade per step, the frontier ``E`` against ``SD``
with the chosen schedule marked, the numbers (``E``, ``SD``, ``kappa``, half-life,
``E + lam V``) and the trade list. :meth:`ImpactExplorer.from_recording` starts from the
parameters calibrated on a recording (:func:`simlab.sim.run.impact_params`) and shows how
each was obtained; its "calibrate" button restores them.

Units are those of :mod:`simlab.models.impact` (base units, quote currency, and the time
unit of ``T`` and ``sigma``: seconds for a calibrated recording). Every number is in
:attr:`ImpactExplorer.outputs` and in an ``ipywidgets.HTML`` with the CSS class
``simlab-out-<key>``; the sliders have ``simlab-in-<name>`` (``sigma``, ``eta``, ``gamma``,
``epsilon``, ``lam``, ``T``, ``N``, ``X``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simlab.extras import require
from simlab.models.impact import ACParams, expected_cost, frontier, trade_list, trajectory, variance
from simlab.sim.calibrate import typical_size
from simlab.sim.estimate import group_provenance

from . import charts
from .simulator import _escape, _fmt

_FEATURE = "the impact explorer"
W = require("ipywidgets", feature=_FEATURE)

#: The displayed numbers: key -> (label, unit, format).
OUTPUTS: dict[str, tuple[str, str, str]] = {
    "expected_cost": ("expected cost E", "quote", ".6g"),
    "std_cost": ("SD of cost", "quote", ".6g"),
    "variance": ("variance V", "quote^2", ".6g"),
    "objective": ("E + lam V", "quote", ".6g"),
    "kappa": ("kappa", "1 / time", ".6g"),
    "half_life": ("half-life 1/kappa", "time", ".6g"),
    "tau": ("step tau = T/N", "time", ".6g"),
}
#: Decades either side of the starting value that the log sliders span.
DECADES = 3
#: Risk aversions of the frontier, as factors of the chosen ``lam``.
FRONTIER_FACTORS = np.geomspace(1e-3, 1e3, 41)


def _log_slider(name: str, value: float, description: str) -> W.FloatLogSlider:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0 for its log-scale slider, got {value!r}")
    e = math.floor(math.log10(value))
    s = W.FloatLogSlider(value=value, base=10, min=e - DECADES, max=e + DECADES + 1, step=0.01,
                         description=description, readout_format=".4g",
                         continuous_update=False, layout=W.Layout(width="420px"))
    s.add_class(f"simlab-in-{name}")
    return s


def _lin_slider(name: str, value: float, description: str, top: float) -> W.FloatSlider:
    s = W.FloatSlider(value=value, min=0.0, max=top, step=top / 1000,
                      description=description, readout_format=".4g", continuous_update=False,
                      layout=W.Layout(width="420px"))
    s.add_class(f"simlab-in-{name}")
    return s


class ImpactExplorer:
    """Almgren-Chriss for ``params`` and an order of ``X`` base units (> 0 sells, < 0 buys;
    the slider shows ``|X|``), recomputed on every slider change.

    ``recording``/``inst``: where the "calibrate" button reads its parameters
    (:meth:`from_recording` sets them). ``provenance``: how each parameter was obtained,
    shown under the sliders. ``charts=False`` skips the (slower) chart rendering.

    ``sigma``, ``eta``, ``lam``, ``T`` and ``X`` have log-scale sliders spanning
    ``DECADES`` decades either side of the start (a ``lam`` or ``sigma`` of 0 starts them
    at 1e-6); ``gamma`` and ``epsilon`` linear ones from 0 to 4 times the start. A value
    set outside a slider's range is clamped by ipywidgets; :meth:`set_params` widens them.

    >>> ex = ImpactExplorer(ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625,
    ...                              lam=1e-6, T=5, N=5), X=1e6, charts=False)
    >>> round(ex.outputs["kappa"], 2), round(ex.outputs["expected_cost"])
    (0.61, 911227)
    >>> ex.lam.value = 1e-5
    >>> round(ex.outputs["kappa"], 2)
    1.73
    """

    def __init__(self, params: ACParams, X: float = 1.0, *, recording: Any = None,
                 inst: str | None = None, provenance: dict[str, str] | None = None,
                 charts: bool = True) -> None:
        if not isinstance(params, ACParams):
            raise TypeError(f"params must be ACParams, got {type(params).__name__}")
        if isinstance(X, bool) or not isinstance(X, int | float) or not (
                math.isfinite(X) and X != 0):
            raise ValueError(f"X must be a finite order size != 0 (base units), got {X!r}")
        if params.alpha != 0:
            raise ValueError(f"the explorer has no drift slider: alpha must be 0, got "
                             f"{params.alpha}")
        self.recording, self.inst = recording, inst
        self.draw_charts = charts
        self.sign = 1.0 if X > 0 else -1.0
        self.params = params
        self._hold = False
        self._build(params, abs(float(X)))
        self._show_provenance(provenance)
        self.update()

    @classmethod
    def from_recording(cls, recording: Any, inst: str, *, X: float | None = None,
                       T: float = 60.0, N: int = 60, lam: float = 1e-6,
                       channel: str = "books", **options: Any) -> ImpactExplorer:
        """Start from the parameters calibrated on ``recording`` for ``inst`` (time unit:
        seconds; ``T`` the horizon in seconds). ``X`` defaults to the median visible depth
        of the top 5 levels (the size the calibration's walk ladder is centred on).

        >>> ImpactExplorer.from_recording("rec", "BTC-USDT").panel       # doctest: +SKIP
        """
        p, how = _calibrate(recording, inst, T=T, N=N, lam=lam, channel=channel)
        if X is None:
            X = typical_size(recording, inst, channel)
        return cls(p, X, recording=recording, inst=inst, provenance=how, **options)

    def _build(self, p: ACParams, X: float) -> None:
        self.sigma = _log_slider("sigma", p.sigma if p.sigma > 0 else 1e-6, "sigma")
        self.eta = _log_slider("eta", p.eta, "eta")
        self.gamma = _lin_slider("gamma", p.gamma, "gamma",
                                 4 * p.gamma if p.gamma > 0 else 2 * p.eta)
        self.epsilon = _lin_slider("epsilon", p.epsilon, "epsilon",
                                   4 * p.epsilon if p.epsilon > 0 else 1.0)
        self.lam = _log_slider("lam", p.lam if p.lam > 0 else 1e-6, "lambda")
        self.T = _log_slider("T", p.T, "T")
        self.N = W.IntSlider(value=p.N, min=1, max=max(4 * p.N, 100), description="N",
                             continuous_update=False, layout=W.Layout(width="420px"))
        self.N.add_class("simlab-in-N")
        self.X = _log_slider("X", X, "X (size)")
        self.sliders = {"sigma": self.sigma, "eta": self.eta, "gamma": self.gamma,
                        "epsilon": self.epsilon, "lam": self.lam, "T": self.T, "N": self.N,
                        "X": self.X}
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")
        self.error = W.HTML()
        self.error.add_class("simlab-error")
        self.provenance = W.HTML(layout=W.Layout(max_width="900px"))
        self.provenance.add_class("simlab-provenance")
        self.calibrate_button = W.Button(description="calibrate", icon="refresh",
                                         disabled=self.recording is None,
                                         tooltip="reset the sliders to the recording's fit")
        self.calibrate_button.add_class("simlab-calibrate")
        self.calibrate_button.on_click(lambda _: self.calibrate())
        self.out_widgets: dict[str, W.HTML] = {}
        cells: list[W.Widget] = []
        for key, (label, unit, _) in OUTPUTS.items():
            w = W.HTML(value="-")
            w.add_class(f"simlab-out-{key}")
            self.out_widgets[key] = w
            cells += [W.Label(label), w, W.Label(unit)]
        grid = W.GridBox(cells, layout=W.Layout(grid_template_columns="auto 140px auto",
                                                grid_gap="2px 12px"))
        self.trade_table = W.HTML(layout=W.Layout(max_height="260px", overflow="auto"))
        self.trade_table.add_class("simlab-out-trade_list")
        self.schedule_image = W.Image(format="png")
        self.schedule_image.add_class("simlab-chart-schedule")
        self.frontier_image = W.Image(format="png")
        self.frontier_image.add_class("simlab-chart-frontier")
        left = W.VBox([*self.sliders.values(), self.calibrate_button])
        self.panel = W.VBox([W.HBox([left, W.VBox([grid, self.trade_table])],
                                    layout=W.Layout(grid_gap="24px")),
                             self.error, self.provenance,
                             W.HBox([self.schedule_image, self.frontier_image])])
        self.panel.add_class("simlab-impact-explorer")

    def _ipython_display_(self) -> None:
        require("IPython.display", feature=_FEATURE, extra="notebook").display(self.panel)

    def _show_provenance(self, how: dict[str, str] | None) -> None:
        if not how:
            self.provenance.value = ""
            return
        rows = "".join(f"<li><b>{_escape(k)}</b>: {_escape(str(v))}</li>"
                       for k, v in group_provenance(how).items())
        self.provenance.value = f"<small>calibration:<ul>{rows}</ul></small>"

    # -- state -----------------------------------------------------------------------------
    def current(self) -> tuple[ACParams, float]:
        """The parameters and signed order size the sliders describe (raises ValueError
        for an invalid combination, e.g. ``eta - gamma tau / 2 <= 0``)."""
        p = ACParams(sigma=self.sigma.value, eta=self.eta.value, gamma=self.gamma.value,
                     epsilon=self.epsilon.value, lam=self.lam.value, T=self.T.value,
                     N=int(self.N.value))
        return p, self.sign * float(self.X.value)

    def _on_change(self, change: dict) -> None:
        if not self._hold:
            self.update()

    def update(self) -> None:
        """Recompute everything for the slider values; an invalid combination shows in
        the red message and leaves the numbers unknown (NaN)."""
        try:
            p, X = self.current()
            x = trajectory(p, X)
            n = trade_list(p, X)
            E, V = expected_cost(p, X, x), variance(p, X, x)
        except Exception as e:  # a slider callback must not raise into the front end
            self.params = None
            self.schedule = None
            self.outputs = dict.fromkeys(OUTPUTS, math.nan)
            self.error.value = (f'<span style="color:#c00;font-weight:bold">'
                                f"{_escape(f'{type(e).__name__}: {e}')}</span>")
            self._show_numbers()
            return
        self.error.value = ""
        self.params = p
        self.schedule = (np.arange(p.N + 1) * p.tau, x, n)
        kappa = p.kappa
        self.outputs = {"expected_cost": E, "std_cost": math.sqrt(V), "variance": V,
                        "objective": E + p.lam * V, "kappa": kappa,
                        "half_life": math.inf if kappa == 0 else 1 / kappa, "tau": p.tau}
        self._show_numbers()
        self.trade_table.value = _trade_table(self.schedule)
        if self.draw_charts:
            self.draw()

    def _show_numbers(self) -> None:
        for key, w in self.out_widgets.items():
            w.value = _fmt(self.outputs.get(key), OUTPUTS[key][2])

    def frontier(self) -> Any:
        """The efficient frontier around the chosen ``lam`` (a DataFrame of
        :func:`simlab.models.impact.frontier`)."""
        p, X = self.current()
        return frontier(p, X, p.lam * FRONTIER_FACTORS)

    def draw(self) -> None:
        """Render the schedule and frontier charts."""
        if self.schedule is None:
            return
        t, x, n = self.schedule
        self.schedule_image.value = charts.schedule_chart(t, x, n)
        f = self.frontier()
        self.frontier_image.value = charts.frontier_chart(
            f["SD"], f["E"], (self.outputs["std_cost"], self.outputs["expected_cost"]),
            self.lam.value)

    def set_params(self, p: ACParams, X: float | None = None) -> None:
        """Move the sliders to ``p`` (and ``X``), widening a slider's range when needed,
        then recompute once."""
        self._hold = True
        try:
            for name in ("sigma", "eta", "lam", "T"):
                _fit_log(self.sliders[name], getattr(p, name))
            for name in ("gamma", "epsilon"):
                s, v = self.sliders[name], getattr(p, name)
                if v > s.max:
                    s.max = 4 * v
                    s.step = s.max / 1000
                s.value = v
            if self.N.max < p.N:
                self.N.max = p.N
            self.N.value = p.N
            if X is not None:
                self.sign = 1.0 if X > 0 else -1.0
                _fit_log(self.X, abs(X))
        finally:
            self._hold = False
        self.update()

    def calibrate(self) -> None:
        """Reset the sliders to the recording's calibration (keeps ``T``, ``N``, ``lam``)."""
        if self.recording is None:
            self.error.value = ('<span style="color:#c00;font-weight:bold">no recording to '
                                "calibrate from: use ImpactExplorer.from_recording</span>")
            return
        try:
            p, how = _calibrate(self.recording, self.inst, T=self.T.value, N=int(self.N.value),
                                lam=self.lam.value)
        except Exception as e:  # shown, not raised: this is a button callback
            self.error.value = (f'<span style="color:#c00;font-weight:bold">'
                                f"{_escape(f'{type(e).__name__}: {e}')}</span>")
            return
        self._show_provenance(how)
        self.set_params(p)


def _fit_log(s: W.FloatLogSlider, v: float) -> None:
    if v <= 0:
        raise ValueError(f"{s.description} must be > 0 for its log-scale slider, got {v}")
    e = math.log10(v)
    if e < s.min:
        s.min = math.floor(e) - 1
    if e > s.max:
        s.max = math.ceil(e) + 1
    s.value = v


def _trade_table(schedule: tuple[np.ndarray, np.ndarray, np.ndarray]) -> str:
    t, x, n = schedule
    rows = "".join(f"<tr><td>{k}</td><td>{t[k]:.4g}</td><td>{n[k - 1]:.6g}</td>"
                   f"<td>{x[k]:.6g}</td></tr>" for k in range(1, len(x)))
    return ('<table style="font-size:small"><tr><th>step</th><th>t</th><th>trade</th>'
            f"<th>holdings after</th></tr>{rows}</table>")


def _calibrate(recording: Any, inst: str, *, T: float, N: int, lam: float,
               channel: str = "books") -> tuple[ACParams, dict[str, str]]:
    from simlab.sim.order import OrderSpec
    from simlab.sim.run import impact_params

    return impact_params(recording, OrderSpec(inst, "buy", 1.0), T=T, N=N, lam=lam,
                         channel=channel)
