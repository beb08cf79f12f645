"""Almgren-Chriss: published numbers (docs/cost-models.md), closed forms against the sums,
stability, the risk-seeking branch, and the metaorder impact laws."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlab.models.impact import (
    ACParams,
    cost_coefficients,
    expected_cost,
    expected_cost_closed,
    frontier,
    impact_fraction,
    objective,
    sell_at_once,
    trade_list,
    trajectory,
    var_objective,
    variance,
    variance_closed,
)

# The teaching environment built on the paper (cost-models.md): daily units, tau = 1 day.
TEACH = ACParams(sigma=0.12 / math.sqrt(250) * 50, eta=2.5e-6, gamma=2.5e-7, epsilon=1 / 16,
                 lam=1e-6, T=60, N=60)
X_TEACH = 1e6

# The paper's Table 1.
TABLE1 = ACParams(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625, lam=1e-6, T=5, N=5,
                  alpha=0.02)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


# -- published numbers -------------------------------------------------------------------


def test_teaching_environment_to_the_cent():
    # printed: E = $477,712.60, SD = $476,456.32, E + lam V = $704,723.22, half-life ~4.1 days.
    # These come out with eta_tilde = eta - gamma tau/2 in both kappa and E (the paper's
    # convention), and sigma^2 tau with tau = 1 day: no other convention was needed.
    E = expected_cost_closed(TEACH, X_TEACH)
    V = variance_closed(TEACH, X_TEACH)
    assert round(E, 2) == 477712.60
    assert round(math.sqrt(V), 2) == 476456.32
    assert round(E + TEACH.lam * V, 2) == 704723.22
    assert round(objective(TEACH, X_TEACH), 2) == 704723.22
    assert round(TEACH.half_life, 1) == 4.1
    # the sums over the optimal trajectory give the same numbers
    assert round(expected_cost(TEACH, X_TEACH), 2) == 477712.60
    assert round(math.sqrt(variance(TEACH, X_TEACH)), 2) == 476456.32


def test_eta_instead_of_eta_tilde_is_material():
    # the known bug: eta where eta_tilde belongs (in kappa and in E). Emulate it with an eta'
    # whose eta_tilde equals the true eta.
    bug = replace(TEACH, eta=TEACH.eta + TEACH.gamma * TEACH.tau / 2)
    assert bug.eta_tilde == pytest.approx(TEACH.eta, rel=1e-15)
    E_bug = expected_cost_closed(bug, X_TEACH)
    E = expected_cost_closed(TEACH, X_TEACH)
    assert round(E_bug, 2) != 477712.60
    assert E_bug - E > 5_000  # thousands of dollars against a result published to the cent
    assert (E_bug - E) / E > 0.01  # 1.6 % here (gamma tau / (2 eta) = 5 % of eta)
    assert (objective(bug, X_TEACH) - objective(TEACH, X_TEACH)) / objective(TEACH, X_TEACH) > 0.02


def test_table1_kappa_and_sigma_sqrt_T():
    # the paper: kappa about 0.6 / day, kappa T about 3, sigma sqrt(T) = 2.12 $/share
    assert round(TABLE1.kappa, 1) == 0.6
    assert round(TABLE1.kappa * TABLE1.T) == 3
    assert round(TABLE1.sigma * math.sqrt(TABLE1.T), 2) == 2.12
    # discrete kappa solves (2/tau^2)(cosh(kappa tau) - 1) = kappa_tilde^2
    k, tau = TABLE1.kappa, TABLE1.tau
    assert 2 / tau**2 * (math.cosh(k * tau) - 1) == pytest.approx(TABLE1.kappa_tilde2, rel=1e-14)
    # and differs from the continuous-time sqrt(lam sigma^2 / eta) = 0.6008 (kappa = 0.6071)
    assert abs(k - math.sqrt(TABLE1.lam * TABLE1.sigma**2 / TABLE1.eta)) > 0.005


def test_table1_trajectory_by_hand():
    p = replace(TABLE1, alpha=0.0)
    k = math.acosh(0.38 * 1.0 / 2 + 1)  # kappa_tilde^2 = 1e-6 * 0.9025 / 2.375e-6 = 0.38
    want = [1e6 * math.sinh(k * (5 - j)) / math.sinh(5 * k) for j in range(6)]
    np.testing.assert_allclose(trajectory(p, 1e6), want, rtol=1e-13, atol=1e-7)
    n = [2 * math.sinh(k / 2) / math.sinh(5 * k) * math.cosh(k * (5 - (j - 0.5))) * 1e6
         for j in range(1, 6)]
    np.testing.assert_allclose(trade_list(p, 1e6), n, rtol=1e-13)


# -- lam = 0, sell at once -----------------------------------------------------------------


def test_lam_zero_is_the_straight_line():
    p = ACParams(sigma=2.0, eta=3.0, gamma=0.5, epsilon=0.25, lam=0.0, T=8.0, N=4)
    x = trajectory(p, 12.0)
    assert x.tolist() == [12.0, 9.0, 6.0, 3.0, 0.0]
    assert trade_list(p, 12.0).tolist() == [3.0, 3.0, 3.0, 3.0]
    # eta_tilde = 3 - 0.5*2/2 = 2.5; E = 1/2 gamma X^2 + eps X + eta_tilde X^2 / T
    assert expected_cost_closed(p, 12.0) == pytest.approx(36 + 3 + 2.5 * 144 / 8, rel=1e-15)
    # V = 1/3 sigma^2 X^2 T (1 - 1/N)(1 - 1/(2N)) = 1/3*4*144*8*(3/4)(7/8) = 1008
    assert variance_closed(p, 12.0) == pytest.approx(1008.0, rel=1e-15)
    # the sums: sigma^2 tau (81 + 36 + 9) = 4*2*126
    assert variance(p, 12.0) == 1008.0
    assert expected_cost(p, 12.0) == pytest.approx(36 + 3 + 2.5 / 2 * 4 * 9, rel=1e-15)
    assert math.isinf(p.half_life) and p.kappa == 0


def test_sell_at_once_as_the_doc_states():
    # "Selling everything in the first step costs epsilon X + eta X^2 / tau with zero variance"
    E, V = sell_at_once(TEACH, X_TEACH)
    assert E == 1 / 16 * 1e6 + 2.5e-6 * 1e12 / 1.0
    assert V == 0.0
    # the sum form on [X, 0, ..., 0] gives the same: 1/2 gamma X^2 + eta_tilde/tau X^2 = eta/tau X^2
    x = np.zeros(TEACH.N + 1)
    x[0] = X_TEACH
    assert expected_cost(TEACH, X_TEACH, x) == pytest.approx(E, rel=1e-14)
    assert variance(TEACH, X_TEACH, x) == 0.0
    # and the optimum is better in E + lam V
    assert objective(TEACH, X_TEACH) < E


# -- stability and the two other branches --------------------------------------------------


def _lam_for_kappa_tau(u: float, sigma: float, eta_tilde: float) -> float:
    return 2 * (math.cosh(u) - 1) * eta_tilde / sigma**2


def test_large_kappa_T_is_finite_and_sells_almost_at_once():
    N, T = 60, 60.0
    lam = _lam_for_kappa_tau(1000 / N, 1.0, 1.0)
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, epsilon=0.1, lam=lam, T=T, N=N)
    assert p.kappa * p.T == pytest.approx(1000, rel=1e-12)
    x, n = trajectory(p, 1e6), trade_list(p, 1e6)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(n))
    assert np.all(np.diff(x) <= 0) and np.all(x >= 0)
    # x_1 = X sinh(kappa (T - tau)) / sinh(kappa T) = X e^{-kappa tau} (1 + O(e^{-2 kappa tau}))
    assert x[1] / 1e6 == pytest.approx(math.exp(-1000 / N), rel=1e-12)
    E, V = expected_cost_closed(p, 1e6), variance_closed(p, 1e6)
    assert math.isfinite(E) and math.isfinite(V)
    assert rel(E, expected_cost(p, 1e6)) < 1e-12 and rel(V, variance(p, 1e6)) < 1e-12
    E_once = sell_at_once(p, 1e6)[0]
    assert rel(E, E_once) < 1e-6
    assert E + lam * V <= E_once
    c1, c2 = cost_coefficients(p)
    assert rel(c1 * 1e6 + c2 * 1e12, E) < 1e-12


def test_large_kappa_T_many_steps():
    lam = _lam_for_kappa_tau(1.0, 1.0, 1.0)  # kappa tau = 1, N = 1000: kappa T = 1000
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, lam=lam, T=1000.0, N=1000)
    assert rel(expected_cost_closed(p, 1.0), expected_cost(p, 1.0)) < 1e-12
    assert rel(variance_closed(p, 1.0), variance(p, 1.0)) < 1e-12


def test_risk_seeking_sags_above_the_line():
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, epsilon=0.01, lam=-0.01, T=10, N=10)
    x = trajectory(p, 1.0)
    line = np.linspace(1.0, 0.0, 11)
    assert np.all(x >= line - 1e-15) and np.all(x[1:-1] > line[1:-1])
    assert np.all(np.diff(x) < 0)
    # sin form by hand: (2/tau^2)(cos(w tau) - 1) = kappa_tilde^2 = -0.01
    w = math.acos(1 - 0.01 / 2)
    np.testing.assert_allclose(x, [math.sin(w * (10 - j)) / math.sin(10 * w) for j in range(11)],
                               rtol=1e-13, atol=1e-16)
    assert p.omega == pytest.approx(w, rel=1e-13)
    assert rel(expected_cost_closed(p, 1.0), expected_cost(p, 1.0)) < 1e-12
    assert rel(variance_closed(p, 1.0), variance(p, 1.0)) < 1e-12
    p0 = replace(p, lam=0.0)  # the line has the least E: slower costs more, and is riskier
    assert expected_cost(p, 1.0) > expected_cost(p0, 1.0)
    assert variance(p, 1.0) > variance(p0, 1.0)
    with pytest.raises(ValueError, match="imaginary"):
        _ = p.kappa


@pytest.mark.parametrize(("lam", "match"), [(-5.0, "no sin/cos solution"),
                                            (-0.2, "no minimum"),
                                            (-0.03, "not monotone")])
def test_risk_seeking_without_a_valid_solution(lam, match):
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, lam=lam, T=10, N=10)
    with pytest.raises(ValueError, match=match):
        trajectory(p, 1.0)
    with pytest.raises(ValueError, match=match):
        expected_cost_closed(p, 1.0)


def test_drift_trajectory_is_stationary():
    # with alpha the paper adds xbar (1 - (sinh(k(T-t)) + sinh(k t))/sinh(kT)); check that
    # the gradient of E + lam V (epsilon aside) vanishes at it, by finite differences
    for lam in (1e-6, 0.0, -1e-8):
        p = replace(TABLE1, epsilon=0.0, lam=lam)
        x = trajectory(p, 1e6)
        assert x[1] != trajectory(replace(p, alpha=0.0), 1e6)[1]

        def U(y, p=p):
            return expected_cost(p, 1e6, y) + p.lam * variance(p, 1e6, y)

        for k in range(1, p.N):
            e = np.zeros_like(x)
            e[k] = 10.0
            grad = (U(x + e) - U(x - e)) / 20.0
            assert abs(grad) < 1e-6  # an O(1) move of x_k costs ~ eta/tau = 2.5e-6 per unit^2
    with pytest.raises(ValueError, match="alpha = 0"):
        expected_cost_closed(TABLE1, 1e6)
    with pytest.raises(ValueError, match="alpha = 0"):
        cost_coefficients(TABLE1)
    # objective falls back to the sums
    assert objective(TABLE1, 1e6) == pytest.approx(
        expected_cost(TABLE1, 1e6) + 1e-6 * variance(TABLE1, 1e6), rel=1e-15)


# -- closed forms against the sums, for many parameters ------------------------------------


@st.composite
def ac_params(draw, lam_sign=1):
    N = draw(st.integers(1, 400))
    T = draw(st.floats(1e-3, 1e4))
    sigma = draw(st.floats(1e-4, 1e3))
    eta = draw(st.floats(1e-9, 10.0))
    gamma = draw(st.floats(0.0, 1.99)) * eta / (T / N)
    eps = draw(st.floats(0.0, 1.0))
    if lam_sign > 0:
        kappa_tau = draw(st.floats(0.0, 40.0))
        lam = 2 * (math.cosh(kappa_tau) - 1) * (eta - gamma * T / N / 2) / (T / N) ** 2 / sigma**2
    else:  # keep (N - 1/2) omega tau <= pi/2
        th = draw(st.floats(0.0, 1.0)) * math.pi / 2 / (N - 0.5) * 0.999
        lam = 2 * (math.cos(th) - 1) * (eta - gamma * T / N / 2) / (T / N) ** 2 / sigma**2
    return ACParams(sigma=sigma, eta=eta, gamma=gamma, epsilon=eps, lam=lam, T=T, N=N)


@settings(max_examples=300, deadline=None)
@given(ac_params(), st.floats(1e-3, 1e7))
def test_closed_forms_equal_the_sums(p, X):
    assert rel(expected_cost_closed(p, X), expected_cost(p, X)) < 1e-9
    V_sum = variance(p, X)
    if V_sum > 0:
        assert rel(variance_closed(p, X), V_sum) < 1e-9
    x, n = trajectory(p, X), trade_list(p, X)
    assert np.all(np.diff(x) <= 1e-12 * X)
    np.testing.assert_allclose(n, -np.diff(x), rtol=1e-9, atol=1e-12 * X)


@settings(max_examples=200, deadline=None)
@given(ac_params(lam_sign=-1), st.floats(1e-3, 1e7))
def test_closed_forms_equal_the_sums_risk_seeking(p, X):
    assert rel(expected_cost_closed(p, X), expected_cost(p, X)) < 1e-9
    V_sum = variance(p, X)
    if V_sum > 0:
        assert rel(variance_closed(p, X), V_sum) < 1e-9
    line = X * np.arange(p.N, -1, -1) / p.N
    assert np.all(trajectory(p, X) >= line * (1 - 1e-12))


@settings(max_examples=200, deadline=None)
@given(ac_params(), st.lists(st.floats(-1e7, 1e7), min_size=1, max_size=10))
def test_cost_coefficients_reproduce_E(p, sizes):
    c1, c2 = cost_coefficients(p)
    assert c1 == p.epsilon
    for X in sizes:
        E = expected_cost_closed(p, X)
        assert abs(c1 * abs(X) + c2 * X * X - E) <= 1e-12 * abs(E) + 1e-300


def test_purchase_is_symmetric():
    p = replace(TEACH)
    np.testing.assert_array_equal(trajectory(p, -X_TEACH), -trajectory(p, X_TEACH))
    assert expected_cost_closed(p, -X_TEACH) == expected_cost_closed(p, X_TEACH)
    assert expected_cost(p, -X_TEACH) == pytest.approx(expected_cost(p, X_TEACH), rel=1e-14)


# -- frontier ------------------------------------------------------------------------------


def test_frontier_trades_cost_for_risk():
    lams = np.geomspace(1e-8, 1e-4, 30)
    f = frontier(TEACH, X_TEACH, lams)
    assert list(f.columns) == ["lam", "E", "V", "SD", "kappa", "half_life"]
    assert f.lam.iloc[0] == 0.0 and len(f) == 31
    pos = f[f.lam > 0]
    assert np.all(np.diff(pos.V) < 0) and np.all(np.diff(pos.E) > 0)
    assert np.all(np.diff(f.V) < 0) and np.all(np.diff(f.E) > 0)  # from lam = 0 on
    np.testing.assert_allclose(f.SD, np.sqrt(f.V))
    np.testing.assert_allclose(pos.half_life, 1 / pos.kappa)
    row = f[f.lam == 1e-6]
    assert row.empty  # 1e-6 is not on this grid; check it separately
    g = frontier(TEACH, X_TEACH, [1e-6])
    assert round(g.E.iloc[1], 2) == 477712.60 and round(g.SD.iloc[1], 2) == 476456.32
    line = replace(TEACH, lam=0.0)
    assert g.E.iloc[0] == expected_cost_closed(line, X_TEACH)
    assert math.isinf(g.half_life.iloc[0])


def test_frontier_with_risk_seeking_rows():
    p = ACParams(sigma=1.0, eta=1.0, gamma=0.0, T=10, N=10)
    f = frontier(p, 1.0, [-0.01, 0.01])
    assert f.lam.tolist() == [-0.01, 0.0, 0.01]
    assert math.isnan(f.kappa.iloc[0]) and math.isnan(f.half_life.iloc[0])
    # V falls with lam throughout; E is least at lam = 0 (risk seeking is inefficient)
    assert np.all(np.diff(f.V) < 0)
    assert f.E.iloc[1] < f.E.iloc[0] and f.E.iloc[1] < f.E.iloc[2]


def test_var_objective():
    E, V = expected_cost_closed(TEACH, X_TEACH), variance_closed(TEACH, X_TEACH)
    assert var_objective(TEACH, X_TEACH, 1.645) == pytest.approx(E + 1.645 * math.sqrt(V),
                                                                rel=1e-15)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"N": 0}, ValueError, "N must be >= 1"),
    ({"N": 2.5}, TypeError, "N must be an integer"),
    ({"N": True}, TypeError, "N must be an integer"),
    ({"T": 0.0}, ValueError, "T must be > 0"),
    ({"sigma": -1.0}, ValueError, "sigma must be >= 0"),
    ({"eta": 0.0}, ValueError, "eta must be > 0"),
    ({"gamma": -1e-9}, ValueError, "gamma must be >= 0"),
    ({"epsilon": -0.1}, ValueError, "epsilon must be >= 0"),
    ({"lam": math.nan}, ValueError, "lam must be finite"),
    ({"sigma": "1"}, TypeError, "sigma must be a real number"),
    ({"gamma": 1e-5}, ValueError, r"eta_tilde = eta - gamma\*tau/2 must be > 0.*eta=2.5e-06"),
])
def test_params_are_validated(kw, err, match):
    base = {"sigma": 1.0, "eta": 2.5e-6, "gamma": 2.5e-7, "T": 1.0, "N": 1}
    with pytest.raises(err, match=match):
        ACParams(**{**base, **kw})


def test_explicit_trajectory_is_checked():
    with pytest.raises(ValueError, match="N\\+1 = 61"):
        expected_cost(TEACH, X_TEACH, np.zeros(5))
    with pytest.raises(ValueError, match="start at X"):
        variance(TEACH, X_TEACH, np.zeros(61))


# -- impact laws ---------------------------------------------------------------------------


def test_impact_forms_by_hand():
    # 1 % of daily volume, 2 % daily vol
    assert impact_fraction(1e4, 1e6, 0.02) == pytest.approx(0.02 * 0.1, rel=1e-15)
    assert impact_fraction(1e4, 1e6, 0.02, form="linear") == pytest.approx(0.02 * 0.01, rel=1e-15)
    assert impact_fraction(1e4, 1e6, 0.02, form="power", beta=0.6) == pytest.approx(
        0.02 * 10**-1.2, rel=1e-14)
    assert impact_fraction(1e4, 1e6, 0.02, form="power", beta=0.5) == pytest.approx(
        impact_fraction(1e4, 1e6, 0.02, form="sqrt"), rel=1e-15)
    assert impact_fraction(4e4, 1e6, 0.02, Y=0.5) == pytest.approx(0.5 * 0.02 * 0.2, rel=1e-15)
    assert isinstance(impact_fraction(1.0, 2.0, 0.1), float)


def test_impact_on_arrays_and_signs():
    Q = np.array([-1e4, 0.0, 1e4, 4e4])
    out = impact_fraction(Q, 1e6, 0.02)
    np.testing.assert_allclose(out, [-0.002, 0.0, 0.002, 0.004], rtol=1e-14)
    # doubling Q multiplies a square-root impact by sqrt(2), a linear one by 2
    assert impact_fraction(2.0, 100.0, 0.1) / impact_fraction(1.0, 100.0, 0.1) == pytest.approx(
        math.sqrt(2))
    V = np.array([1e6, 4e6])
    np.testing.assert_allclose(impact_fraction(1e4, V, 0.02), [0.002, 0.001], rtol=1e-14)


@pytest.mark.parametrize(("kw", "match"), [
    ({"form": "cubic"}, "form must be one of"),
    ({"V": 0.0}, "V .* must be > 0"),
    ({"sigma": -0.1}, "sigma must be >= 0"),
    ({"Q": math.inf}, "Q must be finite"),
    ({"Y": -1.0}, "Y must be >= 0"),
    ({"form": "power", "beta": 0.0}, "beta must be > 0"),
])
def test_impact_bad_input(kw, match):
    args = {"Q": 1.0, "V": 10.0, "sigma": 0.1, **kw}
    with pytest.raises(ValueError, match=match):
        impact_fraction(**args)
