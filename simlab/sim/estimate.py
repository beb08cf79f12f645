"""Almgren-Chriss parameters estimated from a live book, when there is no recording to
calibrate on (the trade simulator on a live source).

The same fits as :func:`simlab.sim.calibrate.calibrate_recording`, on what a live consumer
has at hand: ``epsilon`` and ``eta`` from walking the current book with the same depth
ladder (:func:`simlab.sim.ladder.walk_ladder`, fitted by
:func:`simlab.models.calibrate.calibrate_eta`), ``sigma`` from the mids seen so far
(:func:`simlab.models.calibrate.calibrate_sigma`, 0 until ``min_seconds`` of them), and
``gamma`` = 0 (a permanent-impact regression needs minutes of trades). Time unit: seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simlab.models.calibrate import calibrate_eta, calibrate_sigma
from simlab.models.impact import ACParams

from .ladder import walk_ladder


def estimate_impact(book: Any, mids: Any, t_ns: Any, *, ct_val: float = 1.0,
                    T: float = 60.0, N: int = 60, lam: float = 1e-6,
                    min_seconds: float = 10.0) -> tuple[ACParams, dict[str, str]]:
    """AC parameters (seconds) from ``book`` (an :class:`~simlab.book.L2Book`) and the mid
    history ``mids`` at ``t_ns``, with how each was obtained; raises ValueError when the
    book cannot give ``eta`` (fewer than 3 fillable sizes, or a slope <= 0).

    >>> from simlab.book import L2Book
    >>> b = L2Book()
    >>> b.apply_snapshot([[str(99.5 - k), "1"] for k in range(20)],
    ...                  [[str(100.5 + k), "1"] for k in range(20)])
    >>> p, how = estimate_impact(b, [100.0], [0])
    >>> p.eta > 0, p.sigma, p.gamma
    (True, 0.0, 0.0)
    """
    sizes, cost = walk_ladder(book, ct_val)
    use = np.isfinite(cost)
    if use.sum() < 3:
        raise ValueError(f"the book fills only {int(use.sum())} of the ladder's sizes; "
                         "need 3 to estimate eta")
    fit = calibrate_eta(sizes[use], cost[use], tau=1.0)
    if not fit.eta > 0:
        raise ValueError(f"the book's walk cost does not grow with size (eta = {fit.eta:.6g})")
    how = {"eta": "live book: " + fit.provenance, "epsilon": "live book: " + fit.provenance}
    epsilon = fit.epsilon
    if epsilon < 0:
        how["epsilon"] = f"set to 0 (fitted {epsilon:.6g} < 0)"
        epsilon = 0.0
    mids = np.asarray(mids, dtype=float)
    t = np.asarray(t_ns, dtype=np.int64)
    span = (int(t[-1]) - int(t[0])) / 1e9 if len(t) else 0.0
    sigma = 0.0
    if span >= min_seconds:
        try:
            s = calibrate_sigma(mids, t, step_seconds=1.0, every=1.0)
            sigma, how["sigma"] = s.sigma, "mids seen so far: " + s.provenance
        except ValueError as e:
            how["sigma"] = f"0: {e}"
    else:
        how["sigma"] = f"0 until {min_seconds:g} s of mids are seen (have {span:.3g} s)"
    how["gamma"] = "0: not estimated from a live book"
    if not math.isfinite(sigma):
        sigma = 0.0
    return ACParams(sigma=sigma, eta=fit.eta, gamma=0.0, epsilon=epsilon, lam=lam, T=T,
                    N=N), how


def group_provenance(how: dict[str, str]) -> dict[str, str]:
    """Provenance with the parameters that share one explanation named together (eta and
    epsilon come from the same fit), so each explanation is shown once.

    >>> group_provenance({"eta": "fit A", "epsilon": "fit A", "sigma": "vol"})
    {'eta, epsilon': 'fit A', 'sigma': 'vol'}
    """
    groups: dict[str, list[str]] = {}
    for k, v in how.items():
        groups.setdefault(str(v), []).append(k)
    return {", ".join(keys): text for text, keys in groups.items()}
