"""LinearMixedModel's criterion and optimiser accessors: devfun, deviance_at, devcomp, optinfo.

Sources: lme4's devfun is the function lmer minimises (``lmer(..., devFunOnly =
TRUE)``), so at θ̂ it is the objective; at any other θ it is the REML criterion
of the course notes, log|V_θ| + log|X'V_θ⁻¹X| + (n − p)[1 + log(2π r²/(n − p))],
computed here with the dense V_θ = I + ZΛΛ'Z' and lmmlib.course.gls.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmmlib
from lmmlib.course.gls import gls, random_effects_design

LOG2PI = np.log(2 * np.pi)


@pytest.fixture(scope="module")
def pig_fits(pig):
    return (lmmlib.lmer("weight ~ weeks + (1 | id)", pig),
            lmmlib.lmer("weight ~ weeks + (1 | id)", pig, reml=False))


def _dense(m, theta: float):
    """V_θ (σ² units), the GLS fit and r² for a random-intercept model at θ."""
    Z = random_effects_design(m)[0].toarray()
    V = np.eye(m.nobs) + theta**2 * Z @ Z.T
    X, y = m.model_matrix, m.response
    fit = gls(X, y, V)
    r = y - X @ fit.beta
    return V, fit, float(r @ np.linalg.solve(V, r))


def test_devfun_at_the_estimate_is_the_objective(pig_fits):
    reml, ml = pig_fits
    # the same function the optimiser minimised, at its optimum: exactly
    assert reml.devfun(reml.theta) == reml.objective
    assert ml.devfun(ml.theta) == ml.objective
    assert reml.optinfo["val"] == pytest.approx(reml.objective, rel=1e-12)


@pytest.mark.parametrize("theta", [0.5, 1.3, 3.0])
def test_devfun_is_the_textbook_reml_criterion_and_deviance(pig_fits, theta):
    reml, ml = pig_fits
    V, fit, r2 = _dense(reml, theta)
    n, p = reml.model_matrix.shape
    logdet_v = np.linalg.slogdet(V)[1]
    logdet_xvx = -np.linalg.slogdet(fit.cov)[1]
    nu = n - p
    by_hand_reml = logdet_v + logdet_xvx + nu * (1 + LOG2PI + np.log(r2 / nu))
    by_hand_ml = logdet_v + n * (1 + LOG2PI + np.log(r2 / n))
    # the sparse and the dense route differ by rounding (432 × 432 solves)
    assert reml.devfun([theta]) == pytest.approx(by_hand_reml, rel=1e-11)
    assert reml.devfun([theta], reml=False) == pytest.approx(by_hand_ml, rel=1e-11)
    # the ML fit's devfun is the deviance; reml=True overrides it
    assert ml.devfun([theta]) == reml.devfun([theta], reml=False)
    assert ml.devfun([theta], reml=True) == reml.devfun([theta])
    comp = reml.devcomp([theta])
    assert comp.pwrss == pytest.approx(r2, rel=1e-11)
    assert comp.logdet_theta == pytest.approx(logdet_v, rel=1e-11)
    assert comp.logdet_x == pytest.approx(logdet_xvx, rel=1e-11)
    np.testing.assert_allclose(comp.beta, fit.beta, rtol=1e-11)
    assert comp.deviance == reml.devfun([theta], reml=False)
    assert comp.reml_criterion == reml.devfun([theta])
    assert comp.sigma_ml == pytest.approx(np.sqrt(r2 / n), rel=1e-11)


def test_deviance_at_profiles_sigma_to_devfun(pig_fits):
    reml, ml = pig_fits
    # d(θ, σ) is minimised by σ² = r²/ν, where it equals the profiled criterion
    comp = ml.devcomp()
    assert ml.deviance_at(ml.theta, comp.sigma_ml) == pytest.approx(ml.objective, rel=1e-13)
    assert reml.deviance_at(reml.theta, reml.sigma) == pytest.approx(reml.objective, rel=1e-13)
    assert ml.deviance_at(ml.theta, 1.1 * comp.sigma_ml) > ml.objective
    # the textbook −2 log L at (θ, σ): n log(2πσ²) + log|V_θ| + r²/σ²
    V, _, r2 = _dense(ml, 1.3)
    s = 2.5
    by_hand = ml.nobs * np.log(2 * np.pi * s**2) + np.linalg.slogdet(V)[1] + r2 / s**2
    assert ml.deviance_at([1.3], s) == pytest.approx(by_hand, rel=1e-11)
    assert reml.deviance_at([1.3], s, reml=False) == ml.deviance_at([1.3], s)


def test_devcomp_at_the_estimate_is_the_fit(pig_fits):
    reml, _ = pig_fits
    comp = reml.devcomp()
    np.testing.assert_array_equal(comp.beta, reml.fixef)
    np.testing.assert_array_equal(comp.theta, reml.theta)
    assert comp.sigma_reml == reml.sigma and comp.reml_criterion == reml.objective


def test_devfun_checks_the_length_of_theta(pig_fits):
    with pytest.raises(lmmlib.ArgumentError, match="theta must have 1 value"):
        pig_fits[0].devfun([1.0, 2.0])


def test_optinfo_records_the_optimiser(pig_fits):
    reml, _ = pig_fits
    info = reml.optinfo
    assert info["optimizer"] == reml.opt.algorithm and info["feval"] == reml.opt.feval > 0
    assert info["conv"] is True and info["boundary"] == ()
    info["feval"] = -1  # a new dict every time
    assert reml.optinfo["feval"] == reml.opt.feval


def test_varpar_se_method_is_the_function(pig_fits):
    reml, _ = pig_fits
    assert reml.varpar_se().equals(lmmlib.varpar_se(reml))
    assert reml.varpar_se(scale="logsd").equals(lmmlib.varpar_se(reml, scale="logsd"))
