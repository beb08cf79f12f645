"""Almgren-Chriss parameters from recorded data: arrays in, parameters and provenance out.

Pure functions (no I/O); the arrays come from a recording elsewhere. Units follow
:mod:`simlab.models.impact`: sizes in base units, prices in quote, and one time unit of
``step_seconds`` seconds chosen by the caller (a second, or the length of one AC step):

- ``sigma`` (quote per time^1/2): realized volatility of the mid's log returns, times a
  price level (:func:`calibrate_sigma`);
- ``epsilon`` (quote/base) and ``eta`` (quote*time/base^2): the average cost per unit of a
  market order against the mid is ``epsilon + (eta/tau) size`` when ``size`` is traded in
  one step of ``tau`` time units; a least-squares line through walk-the-book costs gives
  ``epsilon`` (the intercept, about the half spread) and ``eta = slope * tau``
  (:func:`calibrate_eta`);
- ``gamma`` (quote/base^2): Kyle's lambda, the slope of mid changes over intervals on the
  signed taker volume in them (:func:`calibrate_gamma`).

>>> fit = calibrate_eta([1.0, 2.0, 4.0], [0.6, 0.7, 0.9], tau=2.0)
>>> round(fit.epsilon, 9), round(fit.eta, 9), round(fit.r2, 9)
(0.5, 0.2, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .impact import ACParams
from .volatility import realized_vol

__all__ = [
    "Calibration",
    "EtaFit",
    "GammaFit",
    "SigmaFit",
    "calibrate_eta",
    "calibrate_gamma",
    "calibrate_sigma",
]


@dataclass(frozen=True)
class SigmaFit:
    """Absolute sigma (quote per step^1/2) and how it was obtained."""

    sigma: float
    rel_vol: float
    price: float
    step_seconds: float
    n: int
    provenance: str


@dataclass(frozen=True)
class EtaFit:
    """Temporary impact from walk-the-book costs: ``cost = epsilon + (eta/tau) size``."""

    epsilon: float
    eta: float
    tau: float
    r2: float
    n: int
    provenance: str


@dataclass(frozen=True)
class GammaFit:
    """Permanent impact (Kyle's lambda): ``d mid = intercept + gamma * signed volume``."""

    gamma: float
    intercept: float
    r2: float
    n: int
    provenance: str


def _vector(name: str, values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got a non-finite value at index "
                         f"{int(np.flatnonzero(~np.isfinite(a))[0])}")
    return a


def _line(xname: str, x: np.ndarray, yname: str, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: (a, b, R^2); R^2 is NaN when y does not vary."""
    if len(x) != len(y):
        raise ValueError(f"{xname} and {yname} must have one length, got {len(x)} and {len(y)}")
    if len(x) < 3:
        raise ValueError(f"too few points: a line needs at least 3 ({xname}, {yname}) pairs, "
                         f"got {len(x)}")
    if np.ptp(x) == 0:
        raise ValueError(f"{xname} has zero variance (all {x[0]}): the slope is undefined")
    A = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    ss_res = float(np.sum((y - a - b * x) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return float(a), float(b), r2


def calibrate_sigma(mid, t_ns, step_seconds: float, every: float = 1.0,
                    price: float | None = None) -> SigmaFit:
    """Absolute sigma in quote per step^1/2, a step being ``step_seconds`` seconds: the
    realized volatility of ``every``-second log returns of the mid
    (:func:`simlab.models.volatility.realized_vol`), scaled to one step, times ``price``
    (default: the mean mid of the window).

    >>> t = np.arange(5, dtype=np.int64) * 1_000_000_000
    >>> mid = 100 * np.exp(np.array([0.0, 1e-4, 0.0, 1e-4, 0.0]))
    >>> fit = calibrate_sigma(mid, t, step_seconds=4.0, price=100.0)
    >>> round(fit.sigma, 9), fit.n  # 1.1547e-4 per s^1/2 * sqrt(4) * 100
    (0.023094011, 5)
    >>> fit.provenance.split(";")[0]
    'realized vol of 1 s log returns of the mid over 5 points (4 s)'
    """
    if isinstance(step_seconds, bool) or not isinstance(step_seconds, int | float):
        raise TypeError(f"step_seconds must be a number of seconds, got {step_seconds!r}")
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError(f"step_seconds must be > 0, got {step_seconds}")
    rel_sec = realized_vol(mid, t_ns, every=every, per="second")  # validates mid and t_ns
    mids = np.asarray(mid, dtype=float)
    t = np.asarray(t_ns, dtype=np.int64)
    if price is None:
        level, how = float(mids.mean()), "the mean mid"
    else:
        level, how = float(price), "the given price"
        if not (math.isfinite(level) and level > 0):
            raise ValueError(f"price must be > 0, got {price}")
    rel_step = rel_sec * math.sqrt(step_seconds)
    span = (int(t[-1]) - int(t[0])) / 1e9
    prov = (f"realized vol of {every:g} s log returns of the mid over {len(mids)} points "
            f"({span:g} s); {rel_sec:.6g} per s^1/2 scaled to a {step_seconds:g} s step "
            f"({rel_step:.6g}), times {how} {level:.10g} quote")
    return SigmaFit(rel_step * level, rel_step, level, float(step_seconds), len(mids), prov)


def calibrate_eta(sizes, cost_per_unit, tau: float = 1.0) -> EtaFit:
    """Temporary impact from walk-the-book: least squares of the average cost per unit
    (quote per base unit, against the mid) of market orders of ``sizes`` (base units) on
    ``epsilon + (eta/tau) size``; ``epsilon`` = intercept, ``eta`` = slope * ``tau``.

    The book walked is the one a step of ``tau`` time units would face: changing the step
    later (``ACParams`` with another ``T/N``) keeps ``eta`` and so assumes the cost scales
    with the trading rate, as the model does.

    >>> fit = calibrate_eta([1.0, 2.0, 3.0, 4.0], [0.11, 0.12, 0.13, 0.14])
    >>> round(fit.epsilon, 12), round(fit.eta, 12), fit.n
    (0.1, 0.01, 4)
    """
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not (
            math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a number > 0 (time units), got {tau!r}")
    tau = float(tau)
    x = _vector("sizes", sizes)
    y = _vector("cost_per_unit", cost_per_unit)
    if np.any(x <= 0):
        raise ValueError(f"sizes must be > 0 (base units), got {x[x <= 0][0]}")
    eps, slope, r2 = _line("sizes", x, "cost_per_unit", y)
    prov = (f"least squares of walk-the-book cost per unit vs size over {len(x)} orders "
            f"(sizes {x.min():g}..{x.max():g}): intercept {eps:.6g} quote/base = epsilon, "
            f"slope {slope:.6g} quote/base^2 * tau {tau:g} = eta; R^2 {r2:.4f}")
    return EtaFit(eps, slope * tau, tau, r2, len(x), prov)


def calibrate_gamma(signed_volume, mid_change) -> GammaFit:
    """Permanent impact (Kyle's lambda): least squares of the mid change over each interval
    (quote) on the signed taker volume in it (base units, buys positive), with an
    intercept for drift; ``gamma`` = slope in quote/base^2.

    >>> fit = calibrate_gamma([-2.0, 0.0, 1.0, 3.0], [-0.3, 0.1, 0.3, 0.7])
    >>> round(fit.gamma, 12), round(fit.intercept, 12), fit.n
    (0.2, 0.1, 4)
    """
    q = _vector("signed_volume", signed_volume)
    dm = _vector("mid_change", mid_change)
    c, g, r2 = _line("signed_volume", q, "mid_change", dm)
    prov = (f"least squares of mid change on signed taker volume over {len(q)} intervals "
            f"(Kyle's lambda): slope {g:.6g} quote/base^2 = gamma, intercept {c:.6g}; "
            f"R^2 {r2:.4f}")
    return GammaFit(g, c, r2, len(q), prov)


@dataclass(frozen=True)
class Calibration:
    """Calibrated AC parameters in one time unit of ``step_seconds`` seconds (``sigma`` per
    time^1/2, ``eta`` in quote*time/base^2, ``tau`` the step the walk-the-book fit assumed),
    with ``provenance``: parameter -> how it was obtained.

    >>> c = Calibration(sigma=2.0, eta=0.01, epsilon=0.1, gamma=0.0, tau=1.0,
    ...                 step_seconds=60.0, provenance={"sigma": "given"})
    >>> round(c.to_params(T=10, N=10, lam=1e-3).kappa_tilde2, 12)  # lam sigma^2 / eta
    0.4
    >>> c.as_dict()["provenance"]["sigma"]
    'given'
    """

    sigma: float
    eta: float
    epsilon: float
    gamma: float
    tau: float = 1.0
    step_seconds: float = 1.0
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sigma", "eta", "epsilon", "gamma", "tau", "step_seconds"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
            object.__setattr__(self, name, v)
        for name in ("tau", "step_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))

    @classmethod
    def from_fits(cls, sigma: SigmaFit, eta: EtaFit, gamma: GammaFit) -> Calibration:
        """Bundle the three fits (their time unit is ``sigma.step_seconds``).

        >>> s = SigmaFit(2.0, 0.02, 100.0, 60.0, 500, "rv")
        >>> e = EtaFit(0.1, 0.01, 1.0, 0.9, 20, "walk")
        >>> Calibration.from_fits(s, e, GammaFit(1e-3, 0.0, 0.3, 99, "kyle")).provenance["eta"]
        'walk'
        """
        return cls(sigma=sigma.sigma, eta=eta.eta, epsilon=eta.epsilon, gamma=gamma.gamma,
                   tau=eta.tau, step_seconds=sigma.step_seconds,
                   provenance={"sigma": sigma.provenance, "eta": eta.provenance,
                               "epsilon": eta.provenance, "gamma": gamma.provenance})

    def to_params(self, T: float, N: int, lam: float = 0.0, alpha: float = 0.0) -> ACParams:
        """:class:`ACParams` for a horizon ``T`` (in time units of ``step_seconds``) in
        ``N`` steps; raises as ``ACParams`` does (e.g. a fitted ``eta <= 0``)."""
        return ACParams(sigma=self.sigma, eta=self.eta, gamma=self.gamma,
                        epsilon=self.epsilon, lam=lam, T=T, N=N, alpha=alpha)

    def as_dict(self) -> dict:
        """Plain values (JSON-ready), ``provenance`` as a dict."""
        return {"sigma": self.sigma, "eta": self.eta, "epsilon": self.epsilon,
                "gamma": self.gamma, "tau": self.tau, "step_seconds": self.step_seconds,
                "provenance": dict(self.provenance)}
