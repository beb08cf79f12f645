"""Volatility of the mid price from recorded (timestamp, mid) pairs.

Inputs are a mid-price array (quote currency, > 0) and its timestamps as int64 nanoseconds
since the epoch, sorted (equal timestamps are allowed). Volatilities are RELATIVE (std of
log returns) and quoted per ``per``: ``"second"``, ``"minute"``, ``"hour"``, ``"day"``
(86,400 s) or ``"year"`` = 365 days, since crypto trades around the clock (not 252 trading
days). Scaling assumes returns are uncorrelated (variance grows linearly with time).
Almgren-Chriss needs an ABSOLUTE sigma (quote per time^1/2): :func:`absolute_sigma`.

>>> t = np.arange(5) * 1_000_000_000  # one mid a second
>>> mid = 100 * np.exp(np.array([0.0, 1e-4, 0.0, 1e-4, 0.0]))
>>> returns(mid, t).round(6).tolist()
[0.0001, -0.0001, 0.0001, -0.0001]
>>> round(realized_vol(mid, t, per="second"), 9)  # sample std of the four returns
0.00011547
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "PER_SECONDS",
    "absolute_sigma",
    "ewma_vol",
    "parkinson_vol",
    "realized_vol",
    "returns",
]

#: Seconds in each unit a volatility can be quoted per (a crypto year is 365 days).
PER_SECONDS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0,
                                 "day": 86_400.0, "year": 365 * 86_400.0}
_NS = 1_000_000_000


def _per(per: str) -> float:
    try:
        return PER_SECONDS[per]
    except (KeyError, TypeError):
        raise ValueError(f"per must be one of {sorted(PER_SECONDS)}, got {per!r}") from None


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    return v


def _check(mid, t_ns, min_points: int = 2) -> tuple[np.ndarray, np.ndarray]:
    mid = np.asarray(mid, dtype=float)
    t = np.asarray(t_ns)
    if mid.ndim != 1 or t.ndim != 1 or len(mid) != len(t):
        raise ValueError(f"mid and t_ns must be 1-D arrays of one length, got shapes "
                         f"{mid.shape} and {t.shape}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"t_ns must be integer nanoseconds (int64), got dtype {t.dtype}")
    t = t.astype(np.int64)
    if len(mid) < min_points:
        raise ValueError(f"too few points: need at least {min_points} mids, got {len(mid)}")
    if not np.all(np.isfinite(mid)) or np.any(mid <= 0):
        bad = int(np.flatnonzero(~(np.isfinite(mid) & (mid > 0)))[0])
        raise ValueError(f"mid must be finite and > 0, got mid[{bad}] = {mid[bad]}")
    if np.any(np.diff(t) < 0):
        bad = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
        raise ValueError(f"t_ns must be sorted, but t_ns[{bad}] = {t[bad]} < t_ns[{bad - 1}] "
                         f"= {t[bad - 1]}")
    return mid, t


def _grid(mid: np.ndarray, t: np.ndarray, every: float) -> tuple[np.ndarray, np.ndarray]:
    """The last mid at or before each time of a regular grid from the first timestamp."""
    step = round(every * _NS)
    if step < 1:
        raise ValueError(f"every must be at least 1 ns, got {every} s")
    n = int((t[-1] - t[0]) // step) + 1
    if n < 2:
        raise ValueError(f"too few points: the data span {(t[-1] - t[0]) / _NS} s, shorter "
                         f"than one step of every={every} s")
    g = t[0] + np.arange(n, dtype=np.int64) * step
    return g, mid[np.searchsorted(t, g, side="right") - 1]


def _log_returns(mid, t_ns, every: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(end time of each return, log return)."""
    mid, t = _check(mid, t_ns)
    if every is not None:
        t, mid = _grid(mid, t, _seconds("every", every))
    return t[1:], np.diff(np.log(mid))


def returns(mid, t_ns, every: float | None = None) -> np.ndarray:
    """Log returns of the mid: tick to tick (``every=None``), or on a regular grid of
    ``every`` seconds starting at the first timestamp, each grid point taking the last mid
    at or before it (no look-ahead).

    >>> t = np.array([0, 400, 1000, 1600, 2000]) * 1_000_000  # ms -> ns
    >>> mid = np.array([100.0, 101.0, 102.0, 103.0, 104.0])
    >>> np.exp(returns(mid, t, every=1.0)).round(6).tolist()  # mids at 0 s, 1 s, 2 s
    [1.02, 1.019608]
    """
    return _log_returns(mid, t_ns, every)[1]


def realized_vol(mid, t_ns, every: float = 1.0, per: str = "second") -> float:
    """Sample standard deviation (``ddof=1``) of the ``every``-second log returns, scaled to
    ``per`` by ``sqrt(seconds in per / every)``: a relative volatility.

    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(100_001, dtype=np.int64) * 1_000_000_000
    >>> mid = 100 * np.exp(np.cumsum(np.r_[0, rng.normal(0, 1e-4, 100_000)]))
    >>> round(realized_vol(mid, t, per="second"), 6), round(realized_vol(mid, t, per="day"), 4)
    (0.0001, 0.0294)
    """
    scale = _per(per)
    every = _seconds("every", every)
    r = returns(mid, t_ns, every)
    if len(r) < 2:
        raise ValueError(f"too few points: need at least 2 returns, got {len(r)}")
    return float(np.std(r, ddof=1) * math.sqrt(scale / every))


def ewma_vol(mid, t_ns, every: float = 1.0, lam: float = 0.94, per: str = "second") -> pd.Series:
    """RiskMetrics EWMA volatility of the ``every``-second log returns, as a series.

    ``var_k = lam var_{k-1} + (1 - lam) r_k^2`` (zero mean) with ``var_1 = r_1^2``: the value
    at each grid time uses only the returns up to it. Scaled to ``per`` like
    :func:`realized_vol`; indexed by the end of each return (UTC timestamps).

    >>> t = np.arange(4, dtype=np.int64) * 1_000_000_000
    >>> s = ewma_vol(np.array([100.0, 101.0, 100.0, 101.0]), t, lam=0.5)
    >>> len(s), round(float(s.iloc[0]), 6), s.name
    (3, 0.00995, 'ewma_vol')
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0 < lam < 1:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    scale = _per(per)
    every = _seconds("every", every)
    t_end, r = _log_returns(mid, t_ns, every)
    var = pd.Series(r * r).ewm(alpha=1 - lam, adjust=False).mean().to_numpy()
    return pd.Series(np.sqrt(var * scale / every), index=pd.to_datetime(t_end, unit="ns", utc=True),
                     name="ewma_vol")


def _bar_seconds(bar) -> float:
    if isinstance(bar, str):
        try:
            s = pd.Timedelta(bar).total_seconds()
        except ValueError:
            raise ValueError(f"bar must be a duration like '1min', '5s', '1h' or seconds, "
                             f"got {bar!r}") from None
        return _seconds("bar", s)
    return _seconds("bar", bar)


def parkinson_vol(mid, t_ns, bar="1min", per: str = "second") -> float:
    """Parkinson (1980) range estimator: ``sigma^2 = mean(ln(H/L)^2) / (4 ln 2)`` per bar,
    from the high ``H`` and low ``L`` of the mid in each bar, scaled to ``per``.

    Bars are consecutive ``bar``-long windows from the first timestamp (``"1min"``, ``"5s"``
    or seconds); only complete bars count, and each starts with the mid in force at its
    open. A range seen through sampled mids is narrower than the true one, so this is biased
    low, by about ``0.58 sqrt(dt/bar)`` relative for samples every ``dt`` (~2 % for 0.1 s
    mids in 1-minute bars, ~7 % for 1 s mids).

    >>> t = np.arange(121, dtype=np.int64) * 1_000_000_000  # two 1-minute bars
    >>> mid = np.where(np.arange(121) % 2 == 0, 100.0, 101.0)
    >>> v = parkinson_vol(mid, t, bar="1min", per="minute")
    >>> round(v, 6) == round(math.log(1.01) / math.sqrt(4 * math.log(2)), 6)
    True
    """
    scale = _per(per)
    b = _bar_seconds(bar)
    mid, t = _check(mid, t_ns)
    step = round(b * _NS)
    n_bars = int((t[-1] - t[0]) // step)
    if n_bars < 1:
        raise ValueError(f"too few points: the data span {(t[-1] - t[0]) / _NS} s, less than "
                         f"one bar of {b} s")
    opens = t[0] + np.arange(n_bars, dtype=np.int64) * step
    open_mid = mid[np.searchsorted(t, opens, side="right") - 1]
    inside = t < opens[-1] + step
    k = (t[inside] - t[0]) // step
    grp = pd.Series(mid[inside]).groupby(k)
    hi = np.fmax(open_mid, grp.max().reindex(range(n_bars)).to_numpy())
    lo = np.fmin(open_mid, grp.min().reindex(range(n_bars)).to_numpy())
    var_bar = float(np.mean(np.log(hi / lo) ** 2) / (4 * math.log(2)))
    return math.sqrt(var_bar * scale / b)


def absolute_sigma(rel_vol, price):
    """Almgren-Chriss's absolute sigma (quote per time^1/2) from a relative volatility
    (per the same time unit) and the price level: ``rel_vol * price``.

    >>> round(absolute_sigma(0.12 / 250**0.5, 50.0), 6)  # the teaching example, $/share/day^1/2
    0.379473
    """
    r, p = np.asarray(rel_vol, dtype=float), np.asarray(price, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"rel_vol must be finite and >= 0, got {rel_vol}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"price must be finite and > 0, got {price}")
    out = r * p
    return float(out) if out.ndim == 0 else out
