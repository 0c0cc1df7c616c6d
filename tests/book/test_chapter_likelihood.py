"""Chapter 6 (book/likelihood.md): ML, REML and the profile likelihood.

The chapter is executed once (cached in test_chapters.executed); its glued
values are compared with the course notes (seed 001: pig ML/REML variances;
seed 002: pulp moment estimator and REML), with lme4's confint fixtures
(tests/reference/fixtures/confint/*.json, lme4 1.1-31) and with closed forms.

Tolerances (tests/conftest.py): printed numbers to half a unit of their last
digit; closed forms to rounding (relative, for the dense n × n computations);
what comes out of lmmlib's optimiser also gets its spread under the optimiser
gap (``optimum_spread``, ``model_spread``), which is what closed forms of the
optimum (REML = ANOVA, the balanced REML/ML ratios) can be matched to.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest
from conftest import (
    OPT_GAP,
    course_data,
    course_value,
    fitted,
    model_spread,
    optimum_spread,
    profiled_at,
    reference,
)
from test_chapters import BOOK, executed, glued, number


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
    s = {(n, i): optimum_spread(n, "vcov", i) for n in ("pig_reml", "pig_ml") for i in range(2)}
    assert v["tau2_reml"] == course_value(15.1, 1, s["pig_reml", 0])
    assert v["sigma2_reml"] == course_value(4.39, 2, s["pig_reml", 1])
    # the ML printout's 14.8176 is 1.1e-4 above lme4 1.1-31's 14.81749: allowed as such
    assert v["tau2_ml"] == pytest.approx(14.8176, abs=2e-4 + s["pig_ml", 0])
    # lme4 fixtures pig_reml / pig_ml (tests/reference/fixtures): varcorr vcov, at their
    # minimum; lmmlib's spread of each (6.8e-4 for τ², 2.3e-5 for σ²)
    assert v["tau2_reml"] == pytest.approx(15.1418485293798, abs=s["pig_reml", 0])
    assert v["sigma2_reml"] == pytest.approx(4.39470894014411, abs=s["pig_reml", 1])
    assert v["tau2_ml"] == pytest.approx(14.81749357689, abs=s["pig_ml", 0])
    assert v["sigma2_ml"] == pytest.approx(4.38326433049474, abs=s["pig_ml", 1])


def test_reml_over_ml_ratios_are_degrees_of_freedom_ratios():
    v = values()
    # closed form for the balanced pig layout (48 pigs x 9 weeks): lambda = sigma2 + 9 tau2
    # is 48/47 times larger under REML, sigma2 (384 within-pig contrasts) 384/383, at the
    # exact optima; each fit's λ and σ² within its spread (λ: 4.4e-5 relative, σ²: 5e-6),
    # so the ratios within the sum.  Seen: 7e-8 (λ) and 8e-9 (σ²) on OpenBLAS's Sandybridge
    # kernel, 10x less on Haswell's: optimiser outputs, which fixed 1e-7 / 1e-8 did not allow
    def rel_spread(name, combine):
        m = fitted(name)
        return float(model_spread(m, lambda th: np.array([combine(
            profiled_at(m, th)["varcorr"]["vcov"].to_numpy())]))[0]
            / combine(m.varcorr["vcov"].to_numpy()))

    lam = lambda vc: vc[1] + 9 * vc[0]  # noqa: E731
    lam_tol = (rel_spread("pig_reml", lam) + rel_spread("pig_ml", lam)) * 48 / 47
    sig_tol = (rel_spread("pig_reml", lambda vc: vc[1])
               + rel_spread("pig_ml", lambda vc: vc[1])) * 384 / 383
    assert v["lam_ratio"] == pytest.approx(48 / 47, abs=lam_tol)
    assert v["sig_ratio"] == pytest.approx(384 / 383, abs=sig_tol)
    # REML sigma2 = residual variance of the stratified fit on 383 df (closed form of the
    # exact optimum; lmmlib's within its spread, 2.3e-5)
    assert v["strat_df"] == 383
    assert v["strat_sigma2"] == pytest.approx(v["sigma2_reml"],
                                              abs=optimum_spread("pig_reml", "vcov", 1))


def test_sigma_profiled_out():
    v = values()
    # minimising the deviance at (theta, sigma) over sigma reproduces the profiled
    # deviance; the argmin is sqrt(r2/n) (closed form).  Both at the same θ: the bounded
    # scalar search stops within ~sqrt(eps)·σ ≈ 3e-8 of the argmin (seen 2.5e-8, hence
    # 1e-6), where the deviance is within ~1e-14 of its minimum (hence 1e-8)
    assert v["sig_min_dev"] == pytest.approx(v["sig_prof_dev"], abs=1e-8)
    assert v["sig_gap"] < 1e-8
    assert v["sig_gap_reml"] < 1e-8
    assert v["sig_argmin"] == pytest.approx(v["sig_closed"], abs=1e-6)
    assert v["sig_argmin_reml"] == pytest.approx(v["sigma_reml"], abs=1e-6)
    # lme4 fixture pig_ml: deviance 2029.85358715653 (both optima within OPT_GAP)
    assert v["sig_prof_dev"] == pytest.approx(2029.85358715653, abs=2 * OPT_GAP + 1e-9)


def test_pls_pieces_match_dense_formulas():
    v = values()
    # determinant lemma, r2 = GLS weighted RSS, log|X'V^-1X| = log|L_X|^2 - p log sigma2:
    # the same numbers at the same θ from the dense 432 × 432 V (closed forms): rounding
    # only, which grows with n (seen ≤ 4e-16 relative for the log-determinant of 166, 3e-15
    # for r², 3e-15 absolute for log|X'V⁻¹X| = 7.6): 1e-10 relative, 1e-8 absolute
    assert v["pls_logdet_theta"] == pytest.approx(v["dense_logdet_v"], rel=1e-10)
    assert v["pls_logdet_theta"] == pytest.approx(v["pls_logdet_theta_closed"], rel=1e-10)
    assert v["pls_r2"] == pytest.approx(v["dense_r2"], rel=1e-10)
    assert v["logdet_x_minus"] == pytest.approx(v["dense_logdet_xvx"], abs=1e-8)
    # lme4 fixture pig_reml: REML criterion 2033.79684458404 (at lmmlib's θ̂, within
    # OPT_GAP of the minimum, as lme4's)
    assert v["reml_by_hand"] == pytest.approx(2033.79684458404, abs=2 * OPT_GAP + 1e-9)


def test_pulp_moment_equals_reml():
    v = values()
    # seed 002: (0.4467 - 0.1062)/5 = 0.0681 and lmer REML 0.06808; ML 0.04575 (lme4 fixture
    # pulp_ml: 0.0457500003845593)
    assert v["pulp_tau2_mom"] == pytest.approx(0.06808, abs=1e-5)  # closed form, 5 decimals
    # REML = the moment estimator at the exact optimum; lmmlib's within its spread (1.6e-5)
    assert v["pulp_tau2_reml"] == pytest.approx(v["pulp_tau2_mom"],
                                                abs=optimum_spread("pulp_reml", "vcov", 0))
    assert v["pulp_tau2_ml"] == pytest.approx(0.0457500003845593,
                                              abs=optimum_spread("pulp_ml", "vcov", 0))
    # simulation: untruncated moment estimator unbiased (within 3 Monte Carlo SEs), ML
    # biased down, REML mean = mean of the moment estimates truncated at 0
    assert abs(v["sim_mom_tau2"] - v["pulp_tau2_reml"]) < 3 * v["sim_mom_tau2_mcse"]
    assert v["sim_ml_tau2"] < v["pulp_tau2_reml"] - 10 * v["sim_mom_tau2_mcse"]
    # the simulated fits are batch_refit's golden-section optima (θ to 1e-10): the REML
    # mean equals the truncated moment mean to rounding (seen 1.3e-9)
    assert v["sim_trunc_gap"] < 1e-6


@pytest.mark.parametrize("model, prefix", [("pig_reml", "pig_ci"), ("nepal_slope", "nep_ci")])
def test_profile_intervals_match_lme4(model, prefix):
    # lme4 confint(m) (profile of the ML deviance) to 1e-3, as in test_confint.py (lme4's
    # spline interpolation and profile fits; seen ≤ 3.2e-4)
    v = values()
    for par, (lo, hi) in confint_fixture(model).items():
        key = par.strip(".()")
        assert v[f"{prefix}_{key}_lo"] == pytest.approx(lo, abs=1e-3), par
        assert v[f"{prefix}_{key}_hi"] == pytest.approx(hi, abs=1e-3), par


def test_wald_intervals_and_ml_centred_profiles():
    v = values()
    # lme4 confint(m, method = "Wald") for pig_reml: β̂ ± 1.96 SE; β̂ does not move with θ
    # (balanced design), the SE does: 1.96 times its spread, plus rounding
    z = 1.959963984540054
    assert v["pig_wald_Intercept_lo"] == pytest.approx(
        18.1734827458827, abs=1e-9 + z * optimum_spread("pig_reml", "se", 0))
    assert v["pig_wald_weeks_hi"] == pytest.approx(
        6.28645847431391, abs=1e-9 + z * optimum_spread("pig_reml", "se", 1))
    # lme4 profiles the ML deviance for REML fits: zeta = 0 at the ML SD (pig_ml fixture
    # sdcor 3.8493497602699; lmmlib's within its spread, 8.6e-5), and REML and ML fits give
    # the same profile intervals (two optima of one criterion: ~1e-8 SE, seen 4e-12)
    assert v["pig_prof_centre"] == pytest.approx(3.8493497602699,
                                                 abs=optimum_spread("pig_ml", "sdcor", 0))
    assert v["pig_ci_reml_vs_ml"] < 1e-6


def test_hessian_standard_errors():
    v = values()
    # delta method: SE(log s) = SE(s)/s (closed form), REML estimates from the pig_reml
    # fixture, against lmmlib's own s: relative spread of s (2.3e-5 and 2.7e-6)
    for key, sd, i in (("sig01", 3.89125282259837, 0), ("sigma", 2.09635611005003, 1)):
        rel = 1e-9 + optimum_spread("pig_reml", "sdcor", i) / sd
        assert v[f"hess_{key}_logse"] == pytest.approx(v[f"hess_{key}_se"] / sd, rel=rel)
    # the profile interval of the pig SD is skewed upwards: upper/lower half-width from
    # lme4's limits (pig_reml confint fixture) around the ML SD (pig_ml fixture)
    lo, hi = confint_fixture("pig_reml")[".sig01"]
    sd_ml = 3.8493497602699
    # from lme4's limits (their 1e-3 accuracy, over half-widths of ~0.5: 2e-3 in the ratio)
    assert v["asym_pig_prof"] == pytest.approx((hi - sd_ml) / (sd_ml - lo), abs=2e-3)
    # exp of a symmetric interval on the log scale is skewed the same way, less strongly
    assert 1.0 < v["asym_pig_log"] < v["asym_pig_prof"]


# ---------------------------------------------------------------------------
# Exercises


def test_exercise_days_shift_the_reml_criterion_only():
    v = values()
    # closed form: X -> X diag(1, 7) multiplies |X'V^-1 X| by 7^2 at every theta, so the
    # REML criterion rises by 2 log 7 and the ML deviance does not move; two REML (two
    # ML) optima each within OPT_GAP of their minima
    assert v["ex_days_two_log7"] == pytest.approx(2 * np.log(7), rel=1e-14)
    assert v["ex_days_reml_shift"] == pytest.approx(2 * np.log(7), abs=2 * OPT_GAP)
    assert v["ex_days_ml_shift"] == pytest.approx(0.0, abs=2 * OPT_GAP)


def test_exercise_pulp_deviance_by_hand():
    v = values()
    # lme4 fixture pulp_ml: -2 log L of lmer(bright ~ 1 + (1|operator), REML = FALSE); the
    # closed form is the exact minimum, lme4's fit within its optimiser gap (5e-8, seen 1e-12)
    fx = reference("", "pulp_ml")
    assert v["ex_pulp_dev_hand"] == pytest.approx(fx["objective"], abs=2 * OPT_GAP)
    # closed form recomputed here from the Pulp data (a = 4 operators, n = 5 each)
    pulp = course_data("pulp")
    y = pulp["bright"].to_numpy()
    groups = pulp.groupby("operator", observed=True)["bright"]
    a, n = groups.ngroups, len(y) // groups.ngroups
    ssw = float(((pulp["bright"] - groups.transform("mean")) ** 2).sum())
    lam = n * float(((groups.mean() - y.mean()) ** 2).sum()) / a
    dev = (a * n * np.log(2 * np.pi) + a * (n - 1) * (np.log(ssw / (a * (n - 1))) + 1)
           + a * (np.log(lam) + 1))
    assert v["ex_pulp_dev_hand"] == pytest.approx(dev, rel=1e-12)  # the same sums: rounding
    # the fit reaches the closed-form minimum within its optimiser gap
    assert v["ex_pulp_dev_fit"] == pytest.approx(dev, abs=OPT_GAP)


def test_exercise_pulp_profile_interval():
    v = values()
    # lme4 fixture confint/pulp_reml: profile limits of .sig01 (0 and 0.6179), to 1e-3 as the
    # chapter's other intervals (lme4's spline of the profile vs lmmlib's root search)
    lo, hi = confint_fixture("pulp_reml")[".sig01"]
    assert lo == 0.0
    assert v["ex_pulp_ci_lo"] == 0.0  # on the boundary: the deviance at tau = 0 is inside
    assert v["ex_pulp_ci_hi"] == pytest.approx(hi, abs=1e-3)
    # log-scale Wald interval: exp(log s ± 1.96 SE/s) is symmetric about log s, so the
    # geometric mean of its limits is the ML estimate (closed form, rounding only)
    assert np.sqrt(v["ex_pulp_logwald_lo"] * v["ex_pulp_logwald_hi"]) == pytest.approx(
        v["ex_pulp_sd_ml"], rel=1e-12)
    # lme4 fixture pulp_ml: the ML operator SD (optimiser spread ≤ 1e-4 relative)
    sd = {row["group"]: row["sdcor"] for row in reference("", "pulp_ml")["varcorr"]}
    assert v["ex_pulp_sd_ml"] == pytest.approx(sd["operator"], rel=1e-4)
    assert v["ex_pulp_logwald_lo"] > 0


def test_exercise_centring_age():
    v = values()
    # lme4 1.1-31 with tight control, tests/reference/book_exercises.R
    # (fixtures/book/exercises.json) and fixture nepal_slope_ml for (ageC | id)
    fx = reference("book", "exercises")
    corr_gap = abs(fx["nepal_age_corr_ml"]["deviance"]
                   - reference("", "nepal_slope_ml")["objective_tight"])
    ind_gap = fx["nepal_age_indep_ml"]["deviance"] - fx["nepal_agec_indep_ml"]["deviance"]
    # invariance: the correlated model's deviance is the same for age and ageC (lme4's
    # two tight fits: both at their minima, 2·OPT_GAP); lmmlib's uncentred fit is badly
    # scaled (the intercept SD at age 0 is far from the data) and stops up to ~1e-7 above
    # its minimum (seen 1.1e-7), so 1e-6 for lmmlib's pair
    assert corr_gap < 2 * OPT_GAP
    assert v["ex_centre_corr_gap"] < 1e-6
    # two ML deviances, each within OPT_GAP of lme4's tight minima: 2·OPT_GAP (+ rounding)
    assert v["ex_centre_ind_gap"] == pytest.approx(ind_gap, abs=4 * OPT_GAP)
    # the intercept-slope correlation at age 0 (lme4: -0.6213) and at 36 months (0.0875):
    # correlations within the optimiser spread, 1e-4
    rho_age = fx["nepal_age_corr_ml"]["varcorr"]["sdcor"][2]
    assert v["ex_centre_rho_age"] == pytest.approx(rho_age, abs=1e-4)
    assert v["ex_centre_rho_agec"] == pytest.approx(0.0875, abs=5e-5)  # 4 decimals


def test_pig_variances_are_the_pig_chapters():
    # the likelihood and pig chapters show the same REML and ML variances of the pig
    # random-intercept model: the same call in two kernels, so equal to the last digit
    # when both run the same library; two executions can only differ by where the
    # optimiser stops within OPT_GAP, the curvature bound of each variance
    pig = {k: number(v) for k, v in glued(executed("pig")).items()}
    for key, fit, i in (("tau2_reml", "pig_reml", 0), ("sigma2_reml", "pig_reml", 1),
                        ("tau2_ml", "pig_ml", 0), ("sigma2_ml", "pig_ml", 1)):
        assert values()[key] == pytest.approx(pig[key], abs=optimum_spread(fit, "vcov", i)), key
    # and both chapters round them alike in the prose (4 decimals)
    for name in ("likelihood", "pig"):
        text = (BOOK / f"{name}.md").read_text()
        for key in ("tau2_reml", "sigma2_reml", "tau_reml"):
            shown = set(re.findall(r"\{glue:text\}`" + key + r"(:[^`]*)?`", text))
            assert shown <= {":.4f"}, (name, key, shown)
