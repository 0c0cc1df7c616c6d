"""Chapter 6 (book/likelihood.md): ML, REML and the profile likelihood.

The chapter is executed once (cached in test_chapters.executed); its glued
values are compared with the course notes (seed 001: pig ML/REML variances;
seed 002: pulp moment estimator and REML), with lme4's confint fixtures
(tests/reference/fixtures/confint/*.json, lme4 1.1-31) and with closed forms.
"""

from __future__ import annotations

from functools import cache

import pytest
from conftest import reference
from test_chapters import executed, glued, number


@cache
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("likelihood")).items()}


def confint_fixture(name: str) -> dict[str, tuple[float, float]]:
    """lme4's confint(m) (profile) limits by parameter name."""
    fx = reference("confint", name)["confint_profile"]
    return {r: (lo, hi) for r, lo, hi in zip(fx["rows"], fx["lower"], fx["upper"], strict=True)}


def test_pig_reml_and_ml_variances():
    v = values()
    # seed 001: REML tau2 = 15.1, sigma2 = 4.39 (slide "tau2 = 15.1, sigma2 = 4.39");
    # ML printout: intercept variance 14.8176 (lme4 1.1-31 gives 14.81749)
    assert v["tau2_reml"] == pytest.approx(15.1, abs=0.05)
    assert v["sigma2_reml"] == pytest.approx(4.39, abs=0.005)
    assert v["tau2_ml"] == pytest.approx(14.8176, abs=2e-4)
    # lme4 fixtures pig_reml / pig_ml (tests/reference/fixtures): varcorr vcov
    assert v["tau2_reml"] == pytest.approx(15.1418485293798, abs=1e-4)
    assert v["sigma2_reml"] == pytest.approx(4.39470894014411, abs=1e-5)
    assert v["tau2_ml"] == pytest.approx(14.81749357689, abs=1e-4)
    assert v["sigma2_ml"] == pytest.approx(4.38326433049474, abs=1e-5)


def test_reml_over_ml_ratios_are_degrees_of_freedom_ratios():
    v = values()
    # closed form for the balanced pig layout (48 pigs x 9 weeks): lambda = sigma2 + 9 tau2
    # is 48/47 times larger under REML, sigma2 (384 within-pig contrasts) 384/383
    assert v["lam_ratio"] == pytest.approx(48 / 47, abs=1e-7)
    assert v["sig_ratio"] == pytest.approx(384 / 383, abs=1e-8)
    # REML sigma2 = residual variance of the stratified fit on 383 df
    assert v["strat_df"] == 383
    assert v["strat_sigma2"] == pytest.approx(v["sigma2_reml"], abs=1e-6)


def test_sigma_profiled_out():
    v = values()
    # minimising the deviance at (theta, sigma) over sigma reproduces the profiled
    # deviance; the argmin is sqrt(r2/n) (closed form)
    assert v["sig_min_dev"] == pytest.approx(v["sig_prof_dev"], abs=1e-8)
    assert v["sig_gap"] < 1e-8
    assert v["sig_gap_reml"] < 1e-8
    assert v["sig_argmin"] == pytest.approx(v["sig_closed"], abs=1e-6)
    assert v["sig_argmin_reml"] == pytest.approx(v["sigma_reml"], abs=1e-6)
    # lme4 fixture pig_ml: deviance 2029.85358715653
    assert v["sig_prof_dev"] == pytest.approx(2029.85358715653, abs=1e-6)


def test_pls_pieces_match_dense_formulas():
    v = values()
    # determinant lemma, r2 = GLS weighted RSS, log|X'V^-1X| = log|L_X|^2 - p log sigma2
    assert v["pls_logdet_theta"] == pytest.approx(v["dense_logdet_v"], abs=1e-8)
    assert v["pls_logdet_theta"] == pytest.approx(v["pls_logdet_theta_closed"], abs=1e-8)
    assert v["pls_r2"] == pytest.approx(v["dense_r2"], rel=1e-10)
    assert v["logdet_x_minus"] == pytest.approx(v["dense_logdet_xvx"], abs=1e-8)
    # lme4 fixture pig_reml: REML criterion 2033.79684458404
    assert v["reml_by_hand"] == pytest.approx(2033.79684458404, abs=1e-6)


def test_pulp_moment_equals_reml():
    v = values()
    # seed 002: (0.4467 - 0.1062)/5 = 0.0681 and lmer REML 0.06808; ML 0.04575 (lme4 fixture
    # pulp_ml: 0.0457500003845593)
    assert v["pulp_tau2_mom"] == pytest.approx(0.06808, abs=1e-5)
    assert v["pulp_tau2_reml"] == pytest.approx(v["pulp_tau2_mom"], abs=1e-8)
    assert v["pulp_tau2_ml"] == pytest.approx(0.0457500003845593, abs=1e-7)
    # simulation: untruncated moment estimator unbiased (within 3 Monte Carlo SEs), ML
    # biased down, REML mean = mean of the moment estimates truncated at 0
    assert abs(v["sim_mom_tau2"] - v["pulp_tau2_reml"]) < 3 * v["sim_mom_tau2_mcse"]
    assert v["sim_ml_tau2"] < v["pulp_tau2_reml"] - 10 * v["sim_mom_tau2_mcse"]
    assert v["sim_trunc_gap"] < 1e-6


@pytest.mark.parametrize("model, prefix", [("pig_reml", "pig_ci"), ("nepal_slope", "nep_ci")])
def test_profile_intervals_match_lme4(model, prefix):
    # lme4 confint(m) (profile of the ML deviance) to 1e-3
    v = values()
    for par, (lo, hi) in confint_fixture(model).items():
        key = par.strip(".()")
        assert v[f"{prefix}_{key}_lo"] == pytest.approx(lo, abs=1e-3), par
        assert v[f"{prefix}_{key}_hi"] == pytest.approx(hi, abs=1e-3), par


def test_wald_intervals_and_ml_centred_profiles():
    v = values()
    # lme4 confint(m, method = "Wald") for pig_reml
    assert v["pig_wald_Intercept_lo"] == pytest.approx(18.1734827458827, abs=1e-6)
    assert v["pig_wald_weeks_hi"] == pytest.approx(6.28645847431391, abs=1e-7)
    # lme4 profiles the ML deviance for REML fits: zeta = 0 at the ML SD (pig_ml fixture
    # sdcor 3.8493497602699), and REML and ML fits give the same profile intervals
    assert v["pig_prof_centre"] == pytest.approx(3.8493497602699, abs=1e-5)
    assert v["pig_ci_reml_vs_ml"] < 1e-6


def test_hessian_standard_errors():
    v = values()
    # delta method: SE(log s) = SE(s)/s (closed form), REML estimates from the pig_reml fixture
    assert v["hess_sig01_logse"] == pytest.approx(v["hess_sig01_se"] / 3.89125282259837,
                                                  rel=1e-6)
    assert v["hess_sigma_logse"] == pytest.approx(v["hess_sigma_se"] / 2.09635611005003,
                                                  rel=1e-6)
    # the profile interval of the pig SD is skewed upwards: upper/lower half-width from
    # lme4's limits (pig_reml confint fixture) around the ML SD (pig_ml fixture)
    lo, hi = confint_fixture("pig_reml")[".sig01"]
    sd_ml = 3.8493497602699
    assert v["asym_pig_prof"] == pytest.approx((hi - sd_ml) / (sd_ml - lo), abs=2e-3)
    # exp of a symmetric interval on the log scale is skewed the same way, less strongly
    assert 1.0 < v["asym_pig_log"] < v["asym_pig_prof"]
