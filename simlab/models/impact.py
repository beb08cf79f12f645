"""Almgren-Chriss (2000) optimal execution, and the impact laws of a metaorder.

Almgren & Chriss, "Optimal execution of portfolio transactions", J. Risk 3(2), 2000: sell
``X`` over ``T`` in ``N`` steps of ``tau = T/N``; holdings ``x_0 = X .. x_N = 0``, trades
``n_k = x_{k-1} - x_k``. Permanent impact ``g(v) = gamma v``, temporary impact
``h(n/tau) = epsilon sgn(n) + (eta/tau) n``. The schedule minimising ``E + lam V`` is found
in closed form; formulas and the published checks are in ``docs/cost-models.md`` (shared).

Units. The model is unit-free as long as these agree; simlab's conventions:

- ``X``, ``x_k``, ``n_k``: base units of the asset (BTC for BTC-USDT, contracts for a swap).
  ``X > 0`` is a sale, ``X < 0`` a purchase (the model is symmetric).
- prices and costs: quote currency (USDT). ``E`` is the expected implementation shortfall
  against the arrival price, in quote; ``V`` its variance, quote^2; ``SD = sqrt(V)``.
- time: any one unit (a second, a step, a day) used by ``T``, ``tau`` and ``sigma`` alike.
- ``sigma``: ABSOLUTE volatility of the price, quote per time^(1/2) (a relative volatility
  times the price: :func:`simlab.models.volatility.absolute_sigma`).
- ``eta``: temporary impact, quote * time / base^2 (trading ``n`` in one step of ``tau``
  costs ``(eta/tau) n`` per unit more than the fixed cost).
- ``gamma``: permanent impact, quote / base^2 (each unit traded moves the price by gamma).
- ``epsilon``: fixed cost per unit traded, quote / base (half the spread plus fees).
- ``lam``: risk aversion, 1 / quote (``E + lam V`` is in quote); ``alpha``: drift of the
  price, quote / time (it adds ``-alpha sum tau x_k`` to ``E``).

``eta_tilde = eta - gamma tau / 2`` (not ``eta``) enters the cost and ``kappa``; the discrete
``kappa`` solves ``(2/tau^2)(cosh(kappa tau) - 1) = lam sigma^2 / eta_tilde``. Large
``kappa T`` never overflows here: every ``sinh``/``cosh`` ratio is written with
``exp(-...)`` factors. ``lam < 0`` (risk seeking) uses the sin/cos solution.

>>> p = ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, lam=1e-6, T=5, N=5)
>>> round(p.kappa, 2), [round(v) for v in trajectory(p, 1e6)]
(0.61, [1000000, 541956, 289854, 147897, 62142, 0])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "ACParams",
    "cost_coefficients",
    "expected_cost",
    "expected_cost_closed",
    "frontier",
    "impact_fraction",
    "objective",
    "sell_at_once",
    "trade_list",
    "trajectory",
    "var_objective",
    "variance",
    "variance_closed",
]


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


@dataclass(frozen=True)
class ACParams:
    """Parameters of the Almgren-Chriss model (units: see the module docstring).

    The paper's Table 1 (30 % a year, sigma in $/share/day^1/2, T in days):

    >>> p = ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, lam=1e-6,
    ...              T=5, N=5, alpha=0.02)
    >>> p.tau, p.eta_tilde, round(p.kappa_tilde2, 4), round(p.kappa * p.T, 2)
    (1.0, 2.375e-06, 0.38, 3.04)
    >>> round(p.half_life, 2)
    1.65
    """

    sigma: float
    eta: float
    gamma: float
    epsilon: float = 0.0
    lam: float = 0.0
    T: float = 1.0
    N: int = 1
    alpha: float = 0.0

    def __post_init__(self) -> None:
        for name in ("sigma", "eta", "gamma", "epsilon", "lam", "T", "alpha"):
            object.__setattr__(self, name, _real(name, getattr(self, name)))
        if isinstance(self.N, bool) or not isinstance(self.N, numbers.Integral):
            raise TypeError(f"N must be an integer number of steps, got {self.N!r}")
        object.__setattr__(self, "N", int(self.N))
        for name, ok, want in (("N", self.N >= 1, ">= 1"), ("T", self.T > 0, "> 0"),
                               ("sigma", self.sigma >= 0, ">= 0"), ("eta", self.eta > 0, "> 0"),
                               ("gamma", self.gamma >= 0, ">= 0"),
                               ("epsilon", self.epsilon >= 0, ">= 0")):
            if not ok:
                raise ValueError(f"{name} must be {want}, got {getattr(self, name)}")
        self.eta_tilde  # noqa: B018 -- raises when eta_tilde <= 0

    @property
    def tau(self) -> float:
        """Length of one step, ``T / N``."""
        return self.T / self.N

    @property
    def eta_tilde(self) -> float:
        """``eta - gamma tau / 2``, the temporary impact net of the permanent part; > 0."""
        et = self.eta - self.gamma * self.tau / 2
        if not et > 0:
            raise ValueError(
                f"eta_tilde = eta - gamma*tau/2 must be > 0, got {et} (eta={self.eta}, "
                f"gamma={self.gamma}, tau=T/N={self.tau}): permanent impact too large for "
                "this step, use more steps or a smaller gamma")
        return et

    @property
    def kappa_tilde2(self) -> float:
        """``lam sigma^2 / eta_tilde`` (1/time^2); negative when ``lam < 0``."""
        return self.lam * self.sigma**2 / self.eta_tilde

    @property
    def kappa(self) -> float:
        """Urgency (1/time): ``arccosh(kappa_tilde^2 tau^2 / 2 + 1) / tau``.

        Imaginary when ``lam < 0``: this raises then; see :attr:`omega`.
        """
        k2 = self.kappa_tilde2
        if k2 < 0:
            raise ValueError(f"kappa is imaginary for lam < 0 (lam={self.lam}): "
                             "kappa = i*omega, use ACParams.omega")
        # arccosh(1 + z) = 2 asinh(sqrt(z/2)): no rounding of 1 + z when z is tiny
        return 2.0 * math.asinh(math.sqrt(k2) * self.tau / 2) / self.tau

    @property
    def omega(self) -> float:
        """For ``lam <= 0``: the ``w`` solving ``(2/tau^2)(cos(w tau) - 1) = kappa_tilde^2``.

        >>> ACParams(sigma=1.0, eta=1.0, gamma=0.0, lam=-4.0, T=1, N=1).omega == math.pi
        True
        """
        k2 = self.kappa_tilde2
        if k2 > 0:
            raise ValueError(f"omega is for lam <= 0 (got lam={self.lam}): use kappa")
        q = math.sqrt(-k2) * self.tau / 2
        if q > 1:
            raise ValueError(
                f"no sin/cos solution: |kappa_tilde^2 tau^2 / 4| = {q * q} > 1 (lam={self.lam},"
                f" sigma={self.sigma}, eta_tilde={self.eta_tilde}, tau={self.tau})")
        return 2.0 * math.asin(q) / self.tau

    @property
    def half_life(self) -> float:
        """``1 / kappa`` in time units; ``inf`` when ``kappa = 0`` (``lam = 0``)."""
        k = self.kappa
        return math.inf if k == 0 else 1.0 / k


# -- the optimal schedule ----------------------------------------------------------------


def _shape(p: ACParams) -> tuple[Literal["line", "hyp", "trig"], float]:
    """Which solution applies, and its per-step rate (``kappa tau`` or ``omega tau``)."""
    if p.N == 1:  # one trade, whatever lam
        return "line", 0.0
    k2 = p.kappa_tilde2
    if k2 >= 0:
        u = p.kappa * p.tau
        # (kappa T)^2 below 1e-17: the line is exact in double precision (the corrections
        # are O((kappa T)^2)), and the series below would underflow for absurdly small u
        return ("line", 0.0) if (p.N * u) ** 2 < 1e-17 else ("hyp", u)
    th = p.omega * p.tau  # raises when no solution
    if (p.N * th) ** 2 < 1e-17:
        return "line", 0.0
    if p.N * th >= math.pi:
        raise ValueError(
            f"lam={p.lam} is too risk seeking for N={p.N}: E + lam V has no minimum "
            f"(omega*T = {p.N * th} >= pi)")
    if (p.N - 0.5) * th > math.pi / 2 * (1 + 1e-12):  # equality: first trade exactly 0
        raise ValueError(
            f"lam={p.lam} is too risk seeking for N={p.N}: the stationary schedule "
            "x_j = X sin(w(T - t_j))/sin(wT) is not monotone (it trades away from the target "
            f"first); need (N - 1/2) omega tau <= pi/2, got {(p.N - 0.5) * th}")
    return "trig", th


def _ratio(kind: str, r: float, N: int, m: np.ndarray) -> np.ndarray:
    """``S(m r) / S(N r)`` with ``S`` = identity, sinh or sin, stable for large ``N r``."""
    if kind == "line":
        return m / N
    if kind == "hyp":
        # sinh(b)/sinh(a) = exp(b - a) (1 - exp(-2b)) / (1 - exp(-2a)): no overflow
        return np.exp((m - N) * r) * np.expm1(-2 * m * r) / math.expm1(-2 * N * r)
    return np.sin(m * r) / math.sin(N * r)


def _check_X(X: object) -> float:
    return _real("X", X)


def trajectory(p: ACParams, X: float) -> np.ndarray:
    """Optimal holdings ``x_0 = X, x_1, ..., x_N = 0`` (base units), minimising ``E + lam V``.

    ``lam = 0``: the straight line; ``lam > 0``: ``X sinh(kappa (T - t_j)) / sinh(kappa T)``;
    ``lam < 0``: ``X sin(omega (T - t_j)) / sin(omega T)`` (raises when that has no valid
    solution). A drift ``alpha`` adds the paper's term
    ``xbar (1 - (S(T - t_j) + S(t_j)) / S(T))`` with ``xbar = alpha / (2 lam sigma^2)`` (or
    the parabola ``alpha tau^2 j (N - j) / (4 eta_tilde)`` when ``lam sigma^2 = 0``), exact
    in discrete time; the ``epsilon`` term is ignored there, as in the paper.

    >>> trajectory(ACParams(sigma=1.0, eta=1.0, gamma=0.0, T=4, N=4), 8.0)
    array([8., 6., 4., 2., 0.])
    """
    X = _check_X(X)
    kind, r = _shape(p)
    N = p.N
    m = np.arange(N, -1, -1, dtype=float)  # steps left after t_j
    x = X * _ratio(kind, r, N, m)
    if p.alpha != 0:
        if kind == "line":
            j = N - m
            x = x + p.alpha * p.tau**2 / (4 * p.eta_tilde) * j * (N - j)
        else:
            xbar = p.alpha / (2 * p.lam * p.sigma**2)
            x = x + xbar * (1 - _ratio(kind, r, N, m) - _ratio(kind, r, N, N - m))
    x[0], x[-1] = X, 0.0
    return x


def trade_list(p: ACParams, X: float) -> np.ndarray:
    """Optimal trades ``n_1..n_N = x_{k-1} - x_k`` (base units; positive = sold).

    Without drift by the paper's
    ``n_j = 2 sinh(kappa tau/2) cosh(kappa (T - t_{j-1/2})) / sinh(kappa T) X``, stably.

    >>> trade_list(ACParams(sigma=1.0, eta=1.0, gamma=0.0, T=4, N=4), 8.0)
    array([2., 2., 2., 2.])
    """
    X = _check_X(X)
    if p.alpha != 0:
        return -np.diff(trajectory(p, X))
    kind, r = _shape(p)
    N = p.N
    j = np.arange(1, N + 1, dtype=float)
    if kind == "line":
        return np.full(N, X / N)
    c = (N - j + 0.5) * r
    if kind == "hyp":
        # 2 sinh(r/2) cosh(c) / sinh(N r), every factor as exp(...) (1 +- exp(-...))
        return (X * np.exp((1 - j) * r) * -math.expm1(-r) * (1 + np.exp(-2 * c))
                / -math.expm1(-2 * N * r))
    return X * 2 * math.sin(r / 2) * np.cos(c) / math.sin(N * r)


# -- cost and risk ---------------------------------------------------------------------


def _holdings(p: ACParams, X: float, x: np.ndarray | None) -> np.ndarray:
    if x is None:
        return trajectory(p, X)
    x = np.asarray(x, dtype=float)
    if x.shape != (p.N + 1,):
        raise ValueError(f"x must hold N+1 = {p.N + 1} holdings x_0..x_N, got shape {x.shape}")
    if x[0] != X or x[-1] != 0:
        raise ValueError(f"x must start at X = {X} and end at 0, got x_0={x[0]}, x_N={x[-1]}")
    return x


def expected_cost(p: ACParams, X: float, x: np.ndarray | None = None) -> float:
    """Expected shortfall (quote) of holdings ``x`` (default: the optimal), by the sums
    ``1/2 gamma X^2 + epsilon sum|n_k| + (eta_tilde/tau) sum n_k^2 - alpha sum tau x_k``.

    >>> p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, epsilon=0.5, T=4, N=4)
    >>> expected_cost(p, 8.0)  # 0.5*8 + (1/1)*4*2**2
    20.0
    """
    X = _check_X(X)
    x = _holdings(p, X, x)
    n = -np.diff(x)
    return float(0.5 * p.gamma * X**2 + p.epsilon * np.abs(n).sum()
                 + p.eta_tilde / p.tau * (n * n).sum() - p.alpha * p.tau * x[1:].sum())


def variance(p: ACParams, X: float, x: np.ndarray | None = None) -> float:
    """Variance (quote^2) of the shortfall of holdings ``x`` (default: the optimal):
    ``sigma^2 tau sum_{k=1..N} x_k^2``.

    >>> variance(ACParams(sigma=2.0, eta=1.0, gamma=0.0, T=4, N=4), 8.0)  # 4*(36+16+4)
    224.0
    """
    X = _check_X(X)
    x = _holdings(p, X, x)
    return float(p.sigma**2 * p.tau * (x[1:] ** 2).sum())


def _no_drift(p: ACParams, what: str) -> None:
    if p.alpha != 0:
        raise ValueError(f"{what} assumes alpha = 0 (got alpha={p.alpha}); with a drift use "
                         "the sums, expected_cost(p, X) and variance(p, X)")


def _cost_factor(p: ACParams) -> float:
    """``F`` in ``E = 1/2 gamma X^2 + epsilon |X| + eta_tilde X^2 F`` (1/time)."""
    kind, r = _shape(p)
    N, tau = p.N, p.tau
    if kind == "line":
        return 1.0 / p.T
    a = N * r
    if kind == "hyp":
        # the paper's tanh(r/2)(tau sinh 2a + 2T sinh r)/(2 tau^2 sinh^2 a), with
        # sinh 2a / sinh^2 a = 2/tanh a and sinh r / sinh^2 a = 2 e^{r-2a}(1-e^{-2r})/(1-e^{-2a})^2
        R = 2 * math.exp(r - 2 * a) * -math.expm1(-2 * r) / math.expm1(-2 * a) ** 2
        return math.tanh(r / 2) / tau * (1 / math.tanh(a) + N * R)
    return math.tan(r / 2) / tau * (1 / math.tan(a) + N * math.sin(r) / math.sin(a) ** 2)


def _odd_series(M: int, r: float, sign: int) -> float:
    """``sinh(M r) - M sinh r`` (sign=+1) or ``M sin r - sin(M r)`` (sign=-1), by the
    series ``sum_{k odd >= 3} (+-1) ((M r)^k - M r^k) / k!``: exact when ``M r`` is small,
    where the direct difference cancels."""
    big, small = (M * r) ** 3 / 6, M * r**3 / 6
    total, k, s = 0.0, 3, 1.0
    while True:
        term = s * (big - small)
        total += term
        if abs(term) <= 1e-18 * abs(total) or k > 200:
            return total
        big *= (M * r) ** 2 / ((k + 1) * (k + 2))
        small *= r**2 / ((k + 1) * (k + 2))
        k += 2
        s = s if sign > 0 else -s


def _variance_factor(p: ACParams) -> float:
    """``G`` in ``V = sigma^2 X^2 tau G / 4``: ``(sinh(M r)/sinh r - M) / sinh^2(N r)`` with
    ``M = 2N - 1`` (the paper's closed form rewritten; sin for ``lam < 0``)."""
    kind, r = _shape(p)
    N = p.N
    M = 2 * N - 1
    if kind == "line":
        return 4.0 * (N - 1) * (2 * N - 1) / (6 * N)
    a = N * r
    if kind == "hyp":
        if M * r < 2:
            return _odd_series(M, r, +1) / (math.sinh(r) * math.sinh(a) ** 2)
        # S1 - S2 with S1 = sinh(Mr)/(sinh r sinh^2 a), S2 = M/sinh^2 a, as exp(-...) forms;
        # S1/S2 > sinh(2)/2 here, so the difference loses at most a digit
        d = math.expm1(-2 * a) ** 2
        s1 = 4 * math.exp(-2 * r) * -math.expm1(-2 * M * r) / (-math.expm1(-2 * r) * d)
        return s1 - 4 * M * math.exp(-2 * a) / d
    excess = _odd_series(M, r, -1) if M * r < 1 else M * math.sin(r) - math.sin(M * r)
    return excess / (math.sin(r) * math.sin(a) ** 2)


def expected_cost_closed(p: ACParams, X: float) -> float:
    """Expected shortfall of the optimal schedule by the paper's closed form (``alpha = 0``):
    ``1/2 gamma X^2 + epsilon |X| + eta_tilde X^2 tanh(kappa tau/2)(tau sinh(2 kappa T)
    + 2 T sinh(kappa tau)) / (2 tau^2 sinh^2(kappa T))``, computed without overflow.

    >>> p = ACParams(sigma=0.12 / 250**0.5 * 50, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16,
    ...              lam=1e-6, T=60, N=60)
    >>> round(expected_cost_closed(p, 1e6), 2)  # the teaching environment's $477,712.60
    477712.6
    """
    X = _check_X(X)
    _no_drift(p, "expected_cost_closed")
    return 0.5 * p.gamma * X**2 + p.epsilon * abs(X) + p.eta_tilde * X**2 * _cost_factor(p)


def variance_closed(p: ACParams, X: float) -> float:
    """Variance of the optimal schedule by the paper's closed form (``alpha = 0``):
    ``1/2 sigma^2 X^2 (tau sinh(kappa T) cosh(kappa (T - tau)) - T sinh(kappa tau))
    / (sinh^2(kappa T) sinh(kappa tau))``, computed without overflow or cancellation.

    >>> p = ACParams(sigma=2.0, eta=1.0, gamma=0.0, T=4, N=4)  # lam = 0: the line
    >>> variance_closed(p, 8.0)  # 1/3 sigma^2 X^2 T (1 - 1/N)(1 - 1/(2N))
    224.0
    """
    X = _check_X(X)
    _no_drift(p, "variance_closed")
    return p.sigma**2 * X**2 * p.tau * _variance_factor(p) / 4


def cost_coefficients(p: ACParams) -> tuple[float, float]:
    """``(c1, c2)`` with ``E(X) = c1 |X| + c2 X^2`` for the optimal schedule (``alpha = 0``):
    ``c1 = epsilon`` (quote/base), ``c2 = gamma/2 + eta_tilde F(kappa, tau, T)``
    (quote/base^2). ``kappa`` does not depend on ``X``, so a per-tick cost needs only
    ``+`` and ``*``.

    >>> cost_coefficients(ACParams(sigma=1.0, eta=1.0, gamma=0.5, epsilon=0.1, T=4, N=4))
    (0.1, 0.4375)
    """
    _no_drift(p, "cost_coefficients")
    return p.epsilon, 0.5 * p.gamma + p.eta_tilde * _cost_factor(p)


def sell_at_once(p: ACParams, X: float) -> tuple[float, float]:
    """``(E, V)`` of selling everything in the first step: ``(epsilon X + eta X^2/tau, 0)``.

    This is the sum form with ``x = [X, 0, ..., 0]``: there
    ``1/2 gamma X^2 + (eta_tilde/tau) X^2 = 1/2 gamma X^2 + (eta/tau - gamma/2) X^2
    = eta X^2/tau``: the permanent-impact term and the ``gamma tau/2`` taken out of
    ``eta_tilde`` cancel, so plain ``eta`` is right here. ``|X|`` for a purchase.

    >>> sell_at_once(ACParams(sigma=1.0, eta=2.0, gamma=1.0, epsilon=0.5, T=4, N=4), 4.0)
    (34.0, 0.0)
    """
    X = _check_X(X)
    return p.epsilon * abs(X) + p.eta * X**2 / p.tau, 0.0


def _cost_and_variance(p: ACParams, X: float, x: np.ndarray | None) -> tuple[float, float]:
    if x is None and p.alpha == 0:
        return expected_cost_closed(p, X), variance_closed(p, X)
    return expected_cost(p, X, x), variance(p, X, x)


def objective(p: ACParams, X: float, x: np.ndarray | None = None) -> float:
    """``E + lam V`` (quote) of holdings ``x`` (default: the optimal schedule).

    >>> p = ACParams(sigma=0.12 / 250**0.5 * 50, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16,
    ...              lam=1e-6, T=60, N=60)
    >>> round(objective(p, 1e6), 2)  # the teaching environment's $704,723.22
    704723.22
    """
    E, V = _cost_and_variance(p, _check_X(X), x)
    return E + p.lam * V


def var_objective(p: ACParams, X: float, lambda_v: float,
                  x: np.ndarray | None = None) -> float:
    """The value-at-risk form ``E + lambda_v sqrt(V)`` (quote) of holdings ``x`` (default:
    the schedule optimal for ``p.lam``; e.g. ``lambda_v = 1.645`` for 95 %).

    >>> var_objective(ACParams(sigma=2.0, eta=1.0, gamma=0.0, T=4, N=4), 8.0, 1.0)
    30.966629547095764
    """
    lambda_v = _real("lambda_v", lambda_v)
    E, V = _cost_and_variance(p, _check_X(X), x)
    return E + lambda_v * math.sqrt(V)


def frontier(p: ACParams, X: float, lambdas) -> pd.DataFrame:
    """The efficient frontier: one row per risk aversion (``lam = 0`` always included),
    sorted by ``lam``, columns ``lam, E, V, SD, kappa, half_life`` (``kappa`` and
    ``half_life`` are NaN for ``lam < 0``, where the solution is sin/cos).

    >>> p = ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, T=5, N=5)
    >>> f = frontier(p, 1e6, [1e-6, 1e-5])
    >>> f.lam.tolist(), f.SD.is_monotonic_decreasing, f.E.is_monotonic_increasing
    ([0.0, 1e-06, 1e-05], True, True)
    """
    X = _check_X(X)
    lams = sorted({0.0, *(_real("lambdas", v) for v in np.ravel(np.asarray(lambdas, float)))})
    rows = []
    for lam in lams:
        q = replace(p, lam=lam)
        E, V = _cost_and_variance(q, X, None)
        kappa = q.kappa if lam >= 0 else math.nan
        half = (math.inf if kappa == 0 else 1 / kappa) if lam >= 0 else math.nan
        rows.append((lam, E, V, math.sqrt(V), kappa, half))
    return pd.DataFrame(rows, columns=["lam", "E", "V", "SD", "kappa", "half_life"])


# -- impact laws of a metaorder ---------------------------------------------------------

_FORMS = ("linear", "power", "sqrt")


def impact_fraction(Q, V, sigma, form: str = "sqrt", Y: float = 1.0, beta: float = 0.6):
    """Relative price impact (a fraction of the price) of a metaorder of ``Q`` when the
    volume over the horizon is ``V`` (same units, e.g. base units per day) and ``sigma`` is
    the relative volatility over that horizon (e.g. daily):

    - ``"linear"``: ``Y sigma Q/V``;
    - ``"power"``: ``Y sigma (Q/V)^beta`` (Almgren, Thum, Hauptmann & Li 2005: 0.60 +- 0.04);
    - ``"sqrt"``: ``Y sigma sqrt(Q/V)``, the square-root law (Toth et al. 2011; on Bitcoin,
      Donier & Bonart 2015), ``Y`` of order 1.

    ``Q`` may be signed (a sale is negative impact); floats or numpy arrays, broadcast.

    >>> round(impact_fraction(1e4, 1e6, 0.02), 6)  # 1 % of daily volume: 0.02 * 0.1
    0.002
    >>> impact_fraction(np.array([-4.0, 1.0]), 100.0, 0.1, form="linear", Y=2.0)
    array([-0.008,  0.002])
    """
    if form not in _FORMS:
        raise ValueError(f"form must be one of {_FORMS}, got {form!r}")
    Qa, Va, sa = (np.asarray(v, dtype=float) for v in (Q, V, sigma))
    for name, arr in (("Q", Qa), ("V", Va), ("sigma", sa)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr}")
    if np.any(Va <= 0):
        raise ValueError(f"V (volume over the horizon) must be > 0, got {V}")
    if np.any(sa < 0):
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    Y = _real("Y", Y)
    if Y < 0:
        raise ValueError(f"Y must be >= 0, got {Y}")
    exponent = {"linear": 1.0, "sqrt": 0.5, "power": _real("beta", beta)}[form]
    if exponent <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    out = np.sign(Qa) * Y * sa * (np.abs(Qa) / Va) ** exponent
    return float(out) if out.ndim == 0 else out
