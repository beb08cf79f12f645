"""Calibration: known eta/epsilon/gamma/sigma recovered from synthetic data (exactly when
noise-free, within stated tolerances when noisy), provenance, and clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simlab.book import L2Book
from simlab.models.calibrate import (
    Calibration,
    EtaFit,
    GammaFit,
    SigmaFit,
    calibrate_eta,
    calibrate_gamma,
    calibrate_sigma,
)
from simlab.models.impact import ACParams

NS = 1_000_000_000


def test_eta_from_walking_a_uniform_book():
    # asks at 100.05, 100.15, 100.25, ... each 2.0 deep; mid 100.0 (bid 99.95). A buy of
    # k full levels pays on average 0.05 + 0.1 (k - 1)/2 over the mid, i.e. with Q = 2k:
    # cost = (0.05 - 0.05) + (0.1 / (2 * 2.0)) Q  ->  epsilon = 0, eta/tau = 0.025
    book = L2Book("X-USDT")
    asks = [[f"{100.05 + 0.1 * i:.2f}", "2", "0", "1"] for i in range(40)]
    book.apply_snapshot(bids=[["99.95", "2", "0", "1"]], asks=asks)
    sizes = np.array([2.0 * k for k in range(1, 21)])
    cost = np.array([book.walk("buy", base=q).avg_price - book.mid for q in sizes])
    fit = calibrate_eta(sizes, cost, tau=4.0)
    assert fit.epsilon == pytest.approx(0.0, abs=1e-10)
    assert fit.eta == pytest.approx(0.025 * 4.0, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.n == 20 and fit.tau == 4.0


def test_eta_noise_free_exact_and_noisy_within_tolerance():
    eps, eta, tau = 0.5, 3e-3, 2.0
    sizes = np.linspace(0.1, 50.0, 200)
    clean = eps + eta / tau * sizes
    fit = calibrate_eta(sizes, clean, tau=tau)
    assert fit.epsilon == pytest.approx(eps, rel=1e-12)
    assert fit.eta == pytest.approx(eta, rel=1e-12)
    rng = np.random.default_rng(7)
    noise_sd = 0.01
    fit = calibrate_eta(sizes, clean + rng.normal(0, noise_sd, sizes.size), tau=tau)
    # standard errors: slope sd/(sqrt(n) std(x)) = 5e-5 (eta: 1e-4), intercept ~1.4e-3;
    # allow 4 standard errors
    se_slope = noise_sd / (math.sqrt(sizes.size) * sizes.std())
    assert abs(fit.eta - eta) < 4 * se_slope * tau
    assert abs(fit.epsilon - eps) < 4 * noise_sd * math.sqrt(1 / sizes.size + sizes.mean() ** 2
                                                             / (sizes.size * sizes.var()))
    assert 0.7 < fit.r2 < 0.95  # var(signal) 4.7e-4 vs var(noise) 1e-4: R^2 about 0.82
    assert "epsilon" in fit.provenance and "200 orders" in fit.provenance


def test_gamma_noise_free_exact_and_noisy_within_tolerance():
    gamma, drift = 4e-3, 0.02
    rng = np.random.default_rng(11)
    q = rng.normal(0.0, 5.0, 2000)  # signed taker volume per interval, base units
    dm = drift + gamma * q
    fit = calibrate_gamma(q, dm)
    assert fit.gamma == pytest.approx(gamma, rel=1e-12)
    assert fit.intercept == pytest.approx(drift, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    noise_sd = 0.05  # R^2 about 0.14: var(gamma q) = 4e-4, var(noise) = 2.5e-3
    fit = calibrate_gamma(q, dm + rng.normal(0.0, noise_sd, q.size))
    se = noise_sd / (math.sqrt(q.size) * q.std())  # 2.2e-4
    assert abs(fit.gamma - gamma) < 4 * se
    assert fit.n == 2000 and 0.05 < fit.r2 < 0.3
    assert "Kyle" in fit.provenance and "2000 intervals" in fit.provenance


def test_sigma_from_gbm():
    rel_per_s, price = 1e-4, 2_000.0
    rng = np.random.default_rng(3)
    n = 4 * 3600
    mid = price * np.exp(np.cumsum(np.r_[0.0, rng.normal(0.0, rel_per_s, n)]))
    t = np.arange(n + 1, dtype=np.int64) * NS
    fit = calibrate_sigma(mid, t, step_seconds=60.0)
    # 14,400 one-second returns: 0.6 % standard error; the mean mid is within a few % of 2000
    assert fit.sigma == pytest.approx(rel_per_s * math.sqrt(60) * mid.mean(), rel=0.03)
    assert fit.rel_vol == pytest.approx(rel_per_s * math.sqrt(60), rel=0.03)
    assert fit.sigma == pytest.approx(fit.rel_vol * fit.price, rel=1e-15)
    assert fit.price == pytest.approx(mid.mean(), rel=1e-15) and fit.n == n + 1
    assert fit.provenance.startswith(
        f"realized vol of 1 s log returns of the mid over {n + 1} points")
    assert "the mean mid" in fit.provenance
    given = calibrate_sigma(mid, t, step_seconds=60.0, price=2_000.0)
    assert given.sigma == pytest.approx(fit.rel_vol * 2_000.0, rel=1e-15)
    assert "the given price" in given.provenance


def test_sigma_scaling_by_hand():
    # returns +a, -a, +a, -a each second: std (ddof=1) a*sqrt(4/3) per s^1/2
    a = 1e-3
    mid = 10.0 * np.exp(np.array([0.0, a, 0.0, a, 0.0]))
    t = np.arange(5, dtype=np.int64) * NS
    fit = calibrate_sigma(mid, t, step_seconds=9.0, price=10.0)
    assert fit.sigma == pytest.approx(a * math.sqrt(4 / 3) * 3 * 10.0, rel=1e-9)


def test_calibration_to_params_and_dict():
    s = calibrate_sigma(100 * np.exp(np.array([0.0, 1e-3, 0.0, 1e-3, 0.0])),
                        np.arange(5, dtype=np.int64) * NS, step_seconds=1.0, price=100.0)
    e = calibrate_eta([1.0, 2.0, 3.0], [0.15, 0.2, 0.25], tau=1.0)
    g = calibrate_gamma([-1.0, 0.0, 2.0], [-0.01, 0.0, 0.02])
    c = Calibration.from_fits(s, e, g)
    assert (c.sigma, c.eta, c.epsilon, c.gamma) == (s.sigma, e.eta, e.epsilon, g.gamma)
    assert c.eta == pytest.approx(0.05) and c.epsilon == pytest.approx(0.1)
    assert c.gamma == pytest.approx(0.01)
    assert set(c.provenance) == {"sigma", "eta", "epsilon", "gamma"}
    with pytest.raises(TypeError):
        c.provenance["sigma"] = "tampered"  # read-only
    p = c.to_params(T=30.0, N=30, lam=1e-4)
    assert isinstance(p, ACParams)
    assert (p.sigma, p.eta, p.gamma, p.epsilon, p.lam, p.T, p.N) == (
        c.sigma, c.eta, c.gamma, c.epsilon, 1e-4, 30.0, 30)
    d = c.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["provenance"]["gamma"] == g.provenance and d["step_seconds"] == 1.0


def test_bad_fit_is_caught_by_to_params():
    c = Calibration(sigma=1.0, eta=-0.01, epsilon=0.1, gamma=0.0)
    with pytest.raises(ValueError, match="eta must be > 0"):
        c.to_params(T=10, N=10)


def test_r2_is_nan_when_the_response_does_not_vary():
    fit = calibrate_gamma([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert fit.gamma == 0.0 and math.isnan(fit.r2)


@pytest.mark.parametrize(("call", "err", "match"), [
    (lambda: calibrate_eta([1.0, 2.0], [0.1, 0.2]), ValueError, "too few points"),
    (lambda: calibrate_eta([2.0, 2.0, 2.0], [0.1, 0.2, 0.3]), ValueError, "zero variance"),
    (lambda: calibrate_eta([1.0, 2.0, 3.0], [0.1, 0.2]), ValueError, "one length"),
    (lambda: calibrate_eta([1.0, -2.0, 3.0], [0.1, 0.2, 0.3]), ValueError, "sizes must be > 0"),
    (lambda: calibrate_eta([1.0, 2.0, 3.0], [0.1, math.nan, 0.3]), ValueError,
     "cost_per_unit must be finite"),
    (lambda: calibrate_eta([1.0, 2.0, 3.0], [0.1, 0.2, 0.3], tau=0), ValueError, "tau must be"),
    (lambda: calibrate_gamma([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]), ValueError,
     "signed_volume has zero variance"),
    (lambda: calibrate_gamma([1.0], [1.0]), ValueError, "too few points"),
    (lambda: calibrate_gamma([[1.0, 2.0]], [[1.0, 2.0]]), ValueError, "1-D"),
    (lambda: calibrate_sigma([100.0], [0], 1.0), ValueError, "too few points"),
    (lambda: calibrate_sigma([100.0, 101.0, 99.0], [0, NS, 2 * NS], 0.0), ValueError,
     "step_seconds must be > 0"),
    (lambda: calibrate_sigma([100.0, 101.0, 99.0], [0, NS, 2 * NS], 1.0, price=-1.0),
     ValueError, "price must be > 0"),
    (lambda: calibrate_sigma([100.0, 101.0, 99.0], [2 * NS, NS, 0], 1.0), ValueError,
     "sorted"),
    (lambda: Calibration(sigma=1.0, eta=1.0, epsilon=0.0, gamma=0.0, tau=0.0), ValueError,
     "tau must be > 0"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_fit_records_are_frozen():
    for rec in (SigmaFit(1.0, 0.01, 100.0, 1.0, 10, "x"), EtaFit(0.1, 0.01, 1.0, 1.0, 3, "x"),
                GammaFit(0.1, 0.0, 1.0, 3, "x")):
        with pytest.raises(AttributeError):
            rec.n = 0
