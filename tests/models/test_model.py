"""Accessors of a fitted LinearMixedModel beyond the lme4 fixture comparisons.

Accessors of one fit are identities of its own numbers (exact up to rounding,
compared at 1e-10 relative or numpy's/pytest's defaults of 1e-7/1e-6 where the
two sides are formed differently); two fits of the same problem are compared at
the optimiser's accuracy (SAME_OPTIMUM and SAME_OPTIMUM_SE, tests/conftest.py);
simulations within a few Monte Carlo standard errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_OPTIMUM, SAME_OPTIMUM_SE, fitted, fixture_data, lme4_fixture, same_optimum

import lmmlib


def test_predict_newdata_known_and_unknown_levels(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    # the same X β̂ + Z b̂, with Z rebuilt from the new data: rounding only
    np.testing.assert_allclose(m.predict(nepal), m.fitted, rtol=1e-10)
    new = pd.DataFrame({"ageC": [0.0, 12.0], "id": [nepal["id"].iloc[0], -999]})
    with pytest.raises(lmmlib.DataError, match="new level.*'-999'.*allow_new_levels"):
        m.predict(new)  # lme4's default: allow.new.levels = FALSE
    pred = m.predict(new, allow_new_levels=True)
    blup = m.ranef_arrays()["id"].loc[str(nepal["id"].iloc[0])]
    beta = m.fixef
    # closed forms from the fit's own β̂ and BLUPs (pytest's and numpy's default
    # tolerances, far above the rounding of these sums)
    assert pred.iloc[0] == pytest.approx(beta.iloc[0] + blup.iloc[0])  # known child, ageC 0
    assert pred.iloc[1] == pytest.approx(beta.iloc[0] + 12 * beta.iloc[1])  # unknown: population
    np.testing.assert_allclose(m.predict(new, re=False), beta.iloc[0] + new.ageC * beta.iloc[1])


def test_predict_with_categorical_fixed_effects():
    m = fitted("disks_full")
    data = fixture_data(lme4_fixture("disks_full"))
    # identity: predictions for the fitting rows are the fitted values (rounding only)
    np.testing.assert_allclose(m.predict(data.iloc[:50]), m.fitted.iloc[:50], rtol=1e-10)


def test_coef_adds_blups_to_fixed_effects():
    m = fitted("sleepstudy_reml")
    coefs = m.coef()["Subject"]
    re = m.ranef_arrays()["Subject"]
    # identity: coef = fixef + ranef (numpy's default rtol 1e-7; rounding of one sum)
    np.testing.assert_allclose(coefs["Days"], m.fixef["Days"] + re["Days"])
    np.testing.assert_allclose(coefs["(Intercept)"], m.fixef["(Intercept)"] + re["(Intercept)"])


def test_singular_fit_is_flagged_with_a_warning():
    fx = lme4_fixture("dyestuff2")
    with pytest.warns(lmmlib.SingularFitWarning, match="boundary"):
        m = lmmlib.lmer(fx["formula"], fixture_data(fx))
    assert m.is_singular and m.opt.boundary == (0,)
    assert "boundary (singular) fit" in str(m.summary())


def test_regular_fit_is_not_flagged(pig):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    assert not m.is_singular and m.opt.converged


def test_opt_summary_records_the_search():
    m = fitted("sleepstudy_reml")
    opt = m.opt
    assert opt.algorithm == "NLOPT_LN_BOBYQA"
    np.testing.assert_array_equal(opt.theta0, [1.0, 0.0, 1.0])  # lme4's start: Lambda = I
    assert opt.fval < opt.fval0 and opt.feval > 10
    # converged: within OPT_GAP of the minimum the gradient is at most
    # sqrt(2·λ_max·OPT_GAP) ≈ 9e-3 (λ_max ≈ 840 for sleepstudy), plus the
    # finite-difference error; seen 1.8e-5 on every kernel.  Early stops show O(1).
    assert np.max(np.abs(opt.gradient)) < 1e-2
    # the optimiser's best value is lme4's optimum (fixture sleepstudy_reml, tight refit)
    assert opt.fval == pytest.approx(lme4_fixture("sleepstudy_reml")["objective_tight"],
                                     **SAME_OPTIMUM)


def test_reml_and_ml_differ_as_lme4(pig):
    reml = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    ml = lmmlib.lmer("weight ~ weeks + (1 | id)", pig, reml=False)
    assert reml.reml and not ml.reml
    # closed forms: AIC = −2 logL + 2 npar, BIC = −2 logL + log(n) npar (4 parameters)
    # lme4's AIC and BIC of the same fits (fixtures pig_reml, pig_ml): they count the same
    # 4 parameters and use the REML criterion for REML fits; the objectives agree to
    # SAME_OPTIMUM, so AIC/BIC do too
    for m, fx in ((reml, lme4_fixture("pig_reml")), (ml, lme4_fixture("pig_ml"))):
        assert m.aic == pytest.approx(fx["aic"], **SAME_OPTIMUM)
        assert m.bic == pytest.approx(fx["bic"], **SAME_OPTIMUM)
        assert m.loglik == pytest.approx(fx["loglik"], **SAME_OPTIMUM)


def test_condvar_arrays_agree_with_ranef_table():
    m = fitted("penicillin")
    table = m.ranef().set_index(["grpvar", "grp"])["condsd"]
    for factor, cv in m.condvar_arrays().items():
        levels = m.ranef_arrays()[factor].index
        # identity: the table's condsd is the square root of the conditional variance
        np.testing.assert_allclose(np.sqrt(cv[:, 0, 0]), table.loc[factor].loc[levels])


def test_results_are_independent_of_row_order(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    shuffled = nepal.sample(frac=1.0, random_state=np.random.default_rng(3).integers(1e6))
    m2 = lmmlib.lmer("arm ~ ageC + (ageC | id)", shuffled)
    # the same problem: criteria within SAME_OPTIMUM, β̂ within SAME_OPTIMUM_SE standard
    # errors (the optimiser's accuracy; seen 3e-6 SE)
    assert m2.objective == same_optimum(m.objective)
    np.testing.assert_array_less(np.abs(m2.fixef - m.fixef), SAME_OPTIMUM_SE * m.se)


def test_simulate_is_reproducible_and_has_the_model_moments(pulp):
    m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp)
    n = 2000
    a, b = m.simulate(n, rng=7), m.simulate(n, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)  # the same seed and code: bit-identical draws
    assert a.shape == (2000, 20)
    tau2, sigma2 = m.varcorr["vcov"]
    # closed form: Var(y_ij) = tau^2 + sigma^2, Cov within an operator = tau^2; Monte
    # Carlo errors of n normal draws: a variance has relative SE sqrt(2/(n−1)) = 3.2 %
    # (0.1 is 3.1 SE; seen 0.8 SE), a covariance SE sqrt((v² + c²)/n) = 0.0042
    cov = np.cov(a[:, :2].T)
    assert cov[0, 0] == pytest.approx(tau2 + sigma2, rel=0.1)
    same = np.flatnonzero(pulp["operator"] == pulp["operator"].iloc[0])[:2]
    se_cov = np.sqrt(((tau2 + sigma2) ** 2 + tau2**2) / n)
    assert np.cov(a[:, same].T)[0, 1] == pytest.approx(tau2, abs=4 * se_cov)  # seen 0.5 SE
    cond = m.simulate(4000, rng=1, use_u=True)
    # given the BLUPs the mean of 4000 draws has SE σ/sqrt(4000) = 0.0052: 0.03 is 5.8 SE
    # for each of the 20 means (the largest seen: 2.9 SE)
    np.testing.assert_allclose(cond.mean(axis=0), m.fitted, atol=0.03)


def test_refit_equals_a_fresh_fit(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    y = m.simulate(1, rng=11)[0]
    fresh = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal.assign(arm=y))
    again = m.refit(y)
    # the same problem reached two ways: the optimiser's accuracy (seen 9e-7 SE)
    assert again.objective == same_optimum(fresh.objective)
    np.testing.assert_array_less(np.abs(again.fixef - fresh.fixef), SAME_OPTIMUM_SE * fresh.se)
    with pytest.raises(lmmlib.DataError):
        m.refit(y[:-1])
