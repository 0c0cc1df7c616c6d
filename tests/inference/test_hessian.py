"""Hessian-based standard errors of the variance parameters (course notes, seed 003)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import fitted, fixture_data, lme4_fixture, optimum_spread

from lmmlib import SingularFitWarning
from lmmlib.engine.design import build_design
from lmmlib.engine.pls import PLS
from lmmlib.engine.varcomp import VarPars
from lmmlib.inference.hessian import hessian, varpar_se
from lmmlib.inference.profile import zeta_at


def test_hessian_of_a_known_function():
    # closed form: f = x0^2 x1 + exp(x1) has Hessian [[2 x1, 2 x0], [2 x0, exp(x1)]]
    def f(x):
        return x[0] ** 2 * x[1] + np.exp(x[1])

    x = np.array([1.5, -0.5])
    H = hessian(f, x, step=1e-4)
    # central differences with h = 1e-4: truncation h²·f⁗/12 ≈ 1e-9, rounding ε/h² ≈ 1e-8
    np.testing.assert_allclose(H, [[2 * x[1], 2 * x[0]], [2 * x[0], np.exp(x[1])]], rtol=1e-6)


def test_balanced_one_way_reml_closed_form(pulp):
    # Closed form for a balanced one-way layout (pulp: a = 4 operators, n = 5 each):
    # the REML likelihood is that of SSW ~ s2 chi2(N-a) and SSB ~ (s2 + n t2) chi2(a-1),
    # so var(s2_hat) = 2 s2^2/(N-a), var(t2_hat) = (2 MSB^2/(a-1) + 2 MSW^2/(N-a))/n^2,
    # and by the delta method SE(sd) = SE(variance) / (2 sd)
    m = fitted("pulp_reml")
    a, n = 4, 5
    N = a * n
    y = pulp["bright"].to_numpy()
    means = pulp.groupby("operator")["bright"].transform("mean").to_numpy()
    msw = ((y - means) ** 2).sum() / (N - a)
    msb = ((means - y.mean()) ** 2).sum() / (a - 1)  # means repeated n times per group
    tau = np.sqrt((msb - msw) / n)
    se_tau = np.sqrt(2 * msb**2 / (a - 1) + 2 * msw**2 / (N - a)) / n / (2 * tau)
    se_sigma = np.sqrt(msw) / np.sqrt(2 * (N - a))
    out = varpar_se(m)
    assert list(out["par"]) == [".sig01", ".sigma"]
    # the REML optimum is the closed form up to where BOBYQA stops: the spread of the SDs
    # (1.1e-4 and 1.6e-5 relative; seen 1e-9)
    spread = np.array([optimum_spread("pulp_reml", "sdcor", i) for i in range(2)])
    np.testing.assert_array_less(np.abs(out["estimate"] - [tau, np.sqrt(msw)]), spread + 1e-12)
    # the SEs: the finite-difference Hessian's error (~1e-6, seen 1.1e-6) plus their
    # move with the estimates (SE(τ) ∝ 1/τ to first order, hence the same relative spread)
    rel = 1e-5 + spread / np.array([tau, np.sqrt(msw)])
    for got, want, r in zip(out["se"], [se_tau, se_sigma], rel, strict=True):
        assert got == pytest.approx(want, rel=r)


def test_log_scale_is_the_delta_method_and_the_direct_hessian():
    # SE(log sd) = SE(sd)/sd; the same from the Hessian in (log sd, cor, log sigma)
    m = fitted("sleepstudy_reml")
    sd, log = varpar_se(m, "sd"), varpar_se(m, "logsd")
    is_cor = (sd["kind"] == "cor").to_numpy()
    # identities of one fit's numbers (numpy's default rtol 1e-7)
    np.testing.assert_allclose(log["estimate"][~is_cor], np.log(sd["estimate"][~is_cor]))
    np.testing.assert_allclose(log["se"][~is_cor], (sd["se"] / sd["estimate"])[~is_cor])
    np.testing.assert_allclose(log["se"][is_cor], sd["se"][is_cor])
    vp = VarPars.of(m.design.reterms)
    crit = vp.criterion(m.pls, reml=True)

    def f(u):
        return crit(np.where(is_cor, u, np.exp(u)))

    u = np.where(is_cor, sd["estimate"], np.log(sd["estimate"]))
    direct = np.sqrt(np.diag(2 * np.linalg.inv(hessian(f, u, step=1e-3))))
    # a second Hessian, differenced in the log scale with a coarser step (1e-3): its
    # truncation error, h²·(higher derivatives of the criterion), up to ~1e-4..1e-3
    # relative for strongly curved directions (seen 9e-7)
    np.testing.assert_allclose(log["se"], direct, rtol=2e-3)


def test_se_is_the_inverse_slope_of_the_profile_at_the_optimum():
    # zeta(p) = (p - p_hat)/SE + O((p - p_hat)^2): for an ML fit the symmetric
    # difference of lme4's profile zeta at p_hat +- 0.02 SE recovers 1/SE
    m = fitted("sleepstudy_ml")
    out = varpar_se(m)
    for par, est, se in zip(out["par"], out["estimate"], out["se"], strict=True):
        h = 0.02 * se
        zp, zm = zeta_at(m, par, [est + h, est - h])
        # the symmetric difference cancels ζ's quadratic term; its cubic term, (0.02)²
        # relative, and the profile's re-optimisation (ζ² is a criterion difference:
        # OPT_GAP/ζ ≈ 1e-6 at ζ = 0.02, i.e. 6e-5 relative) bound the error (seen 1e-5)
        assert (zp - zm) / (2 * h) == pytest.approx(1 / se, rel=1e-4), par


def test_boundary_parameters_get_no_se():
    # Dyestuff2 (lme4: theta = 0, singular): no SE for the batch SD; sigma's SE is
    # then that of a linear model's REML estimate, sigma / sqrt(2 (n - p))
    m = fitted("dyestuff2")
    with pytest.warns(SingularFitWarning, match=".sig01"):
        out = varpar_se(m)
    assert np.isnan(out["se"].iloc[0])
    # closed form at θ = 0 (no optimiser spread: θ sits on its bound, σ̂ is lm's); the
    # finite-difference Hessian's error only (seen < 2e-7)
    assert out["se"].iloc[1] == pytest.approx(m.sigma / np.sqrt(2 * (m.nobs - 1)), rel=1e-5)


def test_varpars_round_trip_three_effects():
    # a 3x3 term (theta of length 6, lme4's column-major lower triangle); the
    # criterion stays finite at a correlation of exactly 1 (semi-definite factor)
    data = fixture_data(lme4_fixture("sleepstudy_reml")).assign(
        D2=lambda d: (d["Days"] - 4.5) ** 2 / 10)
    design = build_design("Reaction ~ Days + (Days + D2 | Subject)", data)
    vp = VarPars.of(design.reterms)
    assert vp.kinds == ("sd", "cor", "cor", "sd", "cor", "sd", "sigma")
    theta = np.array([1.0, 0.3, -0.2, 0.5, 0.1, 0.4])
    v = vp.from_theta(theta, 20.0)
    back, sigma = vp.to_theta(v)
    # closed-form conversions and back (square roots and products of O(1) numbers):
    # rounding only, a few ulps
    np.testing.assert_allclose(back, theta, atol=1e-12)
    assert sigma == 20.0  # σ passes through unchanged
    crit = vp.criterion(PLS(design), reml=True)
    edge = v.copy()
    edge[1] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(crit(edge))
    assert crit(np.where(np.arange(v.size) == 1, 1.5, v)) == np.inf
