"""Chapter 4 (paper pulp brightness) reproduces the STAT 528 numbers (seed 002).

The tests at the end check the key number of each exercise solution against
closed forms of the data or the lme4 fixtures, with the same tolerance rules.

The chapter is executed once per session by ``test_chapters.executed``; the
glued values are compared with what the course notes print.  Bootstrap values
(seed 528 in the chapter) are compared within a few Monte Carlo standard
errors, since the notes used R's random numbers.

Tolerances (tests/conftest.py): ANOVA quantities are closed forms, exact up to
the printed rounding; what comes out of lmmlib's REML or ML fit also gets its
spread under the optimiser gap (``optimum_spread`` of fixture pulp_reml; 2.3e-4
relative for τ², which the balanced closed forms reproduce only that closely).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    OPT_GAP,
    course_data,
    course_value,
    curvature_tolerance,
    fitted,
    optimum_spread,
    reference,
)
from test_chapters import executed, glued, number


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {key: number(text) for key, text in glued(executed("pulp")).items()}


def test_fixed_effects_anova(values):
    # seed 002: summary(aov(bright ~ operator)): F 4.204, Pr(>F) 0.0226, MSE 0.1062, mean 60.40
    # (closed forms: the printed rounding; MSE = 1.70/16 and the mean exactly, to rounding)
    assert values["aov_F"] == pytest.approx(4.204, abs=5e-4)
    assert values["aov_p"] == pytest.approx(0.0226, abs=5e-5)
    assert values["mse"] == pytest.approx(0.10625, abs=1e-6)
    assert values["aov_mu"] == pytest.approx(60.40, abs=1e-9)
    # seed 002: the fourth sum-contrast effect 0.16 + 0.34 - 0.22 = 0.28
    assert values["alpha_d"] == pytest.approx(0.28, abs=1e-9)


def test_moment_estimator_equals_reml(values):
    # seed 002: (MSA - MSE)/n = 0.0681; lmer REML variances 0.06808 and 0.10625
    assert values["tau2_mom"] == pytest.approx(0.0681, abs=5e-5)
    s_tau2, s_sigma2 = (optimum_spread("pulp_reml", "vcov", i) for i in range(2))
    assert values["tau2_reml"] == course_value(0.068083, 6, s_tau2)
    assert values["sigma2_reml"] == course_value(0.106250, 6, s_sigma2)
    # closed form: balanced one-way REML = ANOVA estimator, to where the optimiser stops
    # (its spread: 1.6e-5 and 3.3e-6; seen 6e-11)
    assert values["tau2_diff"] < s_tau2
    assert values["sigma2_diff"] < s_sigma2


def test_reml_fixed_effect(values):
    # seed 002: summary(mmmod): (Intercept) 60.4000, Std. Error 0.1494; REML criterion 18.6
    # (β̂ is the grand mean whatever θ: rounding only; the SE moves with θ̂)
    s_se = optimum_spread("pulp_reml", "se")
    assert values["beta0"] == pytest.approx(60.4, abs=1e-6)
    assert values["beta0_se"] == course_value(0.1494, 4, s_se)
    assert values["reml_crit"] == course_value(18.6, 1, OPT_GAP)
    # closed form: se = sqrt(MSA / (a n)) at the exact optimum; the engine's SE at θ̂
    # within its spread (1.25e-5; seen 5e-11)
    assert values["beta0_se_closed"] == pytest.approx(values["beta0_se"], abs=s_se)


def test_likelihood_ratio_test(values):
    # seed 002: 2*(logLik(smod) - logLik(nullmod)) = 2.568371; pchisq(., 1, lower=FALSE) =
    # 0.1090199: printed rounding plus the ML fit's criterion gap OPT_GAP
    assert values["lrt"] == course_value(2.568371, 6, OPT_GAP)
    assert values["lrt_p_chisq"] == course_value(0.1090199, 7, OPT_GAP)
    # closed form: the 50:50 mixture halves the chi-square p-value; LRT as a function of F
    # (no optimiser: the printed rounding, 1e-6 = 2 units of the 6th decimal)
    assert values["lrt_p_mix"] == pytest.approx(0.1090199 / 2, abs=1e-6)
    assert values["lrt_closed"] == pytest.approx(2.568371, abs=1e-6)


def test_exact_rlrt(values):
    # RLRsim fixture tests/reference/fixtures/rlrsim/pulp.json: RLRT 3.4701, p 0.02307 (1e5 draws);
    # closed form: the exact p-value is the F test's 0.0226; point mass P(F(3,16) <= 1) = 0.5818
    # (the statistic: a difference of REML criteria, 6 decimals plus OPT_GAP; Monte Carlo:
    # 3 SEs of the p-value, and 0.005 = 3.2 SEs of the share of zeros of 1e5 draws)
    assert values["rlrt_stat"] == pytest.approx(3.470148, abs=1e-5)
    assert values["rlrt_p"] == pytest.approx(0.0226, abs=3 * values["rlrt_mcse"])
    assert values["rlrt_zero"] == pytest.approx(values["rlrt_zero_exact"], abs=0.005)


def test_bootstrap_lrt(values):
    # seed 002 (B = 1000): mean(lrtstat > 2.568371) = 0.026, s.e. 0.00503,
    # mean(lrtstat < 1e-5) = 0.69
    assert values["boot_n"] == 1000
    assert values["boot_p_prop"] == pytest.approx(0.026, abs=3 * 0.00503)
    assert values["boot_p"] == pytest.approx(0.026, abs=3 * 0.00503)
    # the MC s.e. sqrt(p(1-p)/1000) itself moves with p̂ (±3 of its SEs): ±0.0015
    assert values["boot_mcse"] == pytest.approx(0.00503, abs=0.0015)
    assert values["boot_zero"] == pytest.approx(0.69, abs=3 * values["boot_zero_mcse"])
    # closed form: the ML LRT is 0 exactly when F <= a/(a-1): P(F(3,16) <= 4/3) = 0.70148
    # (5 decimals; 1e-5 is 2 units)
    assert values["lrt_zero_exact"] == pytest.approx(0.70148, abs=1e-5)


def test_blup_shrinkage_ratio(values):
    # seed 002: cc[[1]]$operator / ranef(mmod)$operator = 1.312117 for every operator; the
    # ratio is 1 + 1/(5θ²), which moves with θ̂ (spread 8.1e-5)
    ratio_spread = float(curvature_tolerance(
        fitted("pulp_reml"), lambda th: np.array([1 + 1 / (5 * th[0] ** 2)]), OPT_GAP)[0])
    assert values["ratio"] == course_value(1.312117, 6, ratio_spread)
    assert values["ratio_spread"] < 1e-6  # the same number for every operator (balanced)
    # closed form: ratio = F / (F - 1) in the balanced one-way layout (no optimiser)
    assert values["ratio_closed"] == pytest.approx(1.312117, abs=2e-6)
    # seed 002: ranef(mmod)$operator a -0.1219403, d 0.2133955; fixef + ranef a 60.27806,
    # plus the BLUPs' spread (7.6e-6 and 1.3e-5)
    s_a, s_d = (optimum_spread("pulp_reml", "condval", i) for i in (0, 3))
    assert values["blup_a"] == course_value(-0.1219403, 7, s_a)
    assert values["blup_d"] == course_value(0.2133955, 7, s_d)
    assert values["pred_a"] == course_value(60.27806, 5, s_a)


def test_prediction_intervals(values):
    # seed 002: quantile(pv, c(0.025, 0.975)): new operator 59.62780 61.24264,
    # operator a 59.60897 60.97931 (B = 1000).  Each is a Monte Carlo estimate: a 2.5 %
    # quantile of B = 1000 draws with SD ~0.4 has SE sqrt(.025·.975/1000)/φ(1.96)·0.4 ≈
    # 0.034, so R's and lmmlib's independent runs differ with SE ≈ 0.048; 0.1 is ~2 SE
    # (no exact reference exists: the interval is defined by the bootstrap)
    assert values["pi_new_lo"] == pytest.approx(59.62780, abs=0.1)
    assert values["pi_new_hi"] == pytest.approx(61.24264, abs=0.1)
    assert values["pi_a_lo"] == pytest.approx(59.60897, abs=0.1)
    assert values["pi_a_hi"] == pytest.approx(60.97931, abs=0.1)


# -- exercises ----------------------------------------------------------------------


def mean_squares() -> tuple[float, float, np.ndarray, float]:
    """MSA, MSE, the operator means (a..d) and the grand mean, by numpy (balanced 4 x 5)."""
    y = course_data("pulp").sort_values("operator", kind="stable")["bright"].to_numpy(float)
    y = y.reshape(4, 5)
    means = y.mean(axis=1)
    msa = 5 * float(((means - y.mean()) ** 2).sum()) / 3
    mse = float(((y - means[:, None]) ** 2).sum()) / 16
    return msa, mse, means, float(y.mean())


def test_exercise_reading_sds(values):
    # balanced one-way REML = moments: tau2 = (MSA - MSE)/5, sigma2 = MSE at the exact
    # optimum; lmmlib's variances each within their spread (fixture pulp_reml), carried
    # through the square root to first order
    msa, mse, _, _ = mean_squares()
    total = np.sqrt((msa - mse) / 5 + mse)
    s_tau2, s_sigma2 = (optimum_spread("pulp_reml", "vcov", i) for i in range(2))
    assert values["ex_sd_total"] == pytest.approx(
        total, abs=1e-12 + (s_tau2 + s_sigma2) / (2 * total))
    assert values["ex_sd_within"] == pytest.approx(
        np.sqrt(mse), abs=1e-12 + s_sigma2 / (2 * np.sqrt(mse)))


def test_exercise_blup_by_hand(values):
    # (ybar_b - ybar) (1 - 1/F): a closed form of the data (rounding only)
    msa, mse, means, grand = mean_squares()
    assert values["ex_blup_b"] == pytest.approx((means[1] - grand) * (1 - mse / msa), abs=1e-12)
    assert values["ex_blup_F"] == pytest.approx(msa / mse, rel=1e-12)
    # lmer's BLUP of b equals it within its spread (fixture pulp_reml ranef row 1)
    assert values["ex_blup_b_lmer"] == pytest.approx(
        values["ex_blup_b"], abs=1e-12 + optimum_spread("pulp_reml", "condval", 1))


def test_exercise_profile_interval(values):
    # lme4 confint(m) (fixture confint/pulp_reml): spline-inverted ML profile; 1e-3 as in
    # tests/inference/test_confint.py (lme4's interpolation error is of that order)
    fx = reference("confint", "pulp_reml")["confint_profile"]
    rows = {r: (lo, hi) for r, lo, hi in zip(fx["rows"], fx["lower"], fx["upper"], strict=True)}
    assert values["ex_ci_sig_lo"] == rows[".sig01"][0] == 0.0
    assert values["ex_ci_sig_hi"] == pytest.approx(rows[".sig01"][1], abs=1e-3)
    assert values["ex_ci_sigma_lo"] == pytest.approx(rows[".sigma"][0], abs=1e-3)
    assert values["ex_ci_sigma_hi"] == pytest.approx(rows[".sigma"][1], abs=1e-3)


def test_exercise_ml_against_reml(values):
    # balanced one-way closed forms: tau2_REML - tau2_ML = MSA/(a n) = REML's var(mu),
    # and SE_ML / SE_REML = sqrt((a - 1)/a) = sqrt(3/4); each fitted number within its
    # spread (fixtures pulp_reml and pulp_ml), combined to first order
    msa, _, _, _ = mean_squares()
    s_gap = optimum_spread("pulp_reml", "vcov", 0) + optimum_spread("pulp_ml", "vcov", 0)
    assert values["ex_ml_gap"] == pytest.approx(msa / 20, abs=1e-12 + s_gap)
    se_reml, se_ml = np.sqrt(msa / 20), np.sqrt(msa / 20 * 0.75)
    s_se = optimum_spread("pulp_reml", "se", 0)
    assert values["ex_ml_se2_reml"] == pytest.approx(msa / 20, abs=1e-12 + 2 * se_reml * s_se)
    s_ratio = (optimum_spread("pulp_ml", "se", 0) / se_reml
               + se_ml * s_se / se_reml**2)
    assert values["ex_ml_se_ratio"] == pytest.approx(np.sqrt(0.75), abs=1e-12 + s_ratio)
    assert values["ex_ml_narrow"] == pytest.approx(100 * (1 - values["ex_ml_se_ratio"]),
                                                   abs=1e-10)
