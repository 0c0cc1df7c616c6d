"""Chapter 2 (pig weights) reproduces the course's numbers from its glued values.

The tests at the end check the key number of each exercise solution against
closed forms of the data or the lme4 fixtures, with the same tolerance rules.

Expected values: BIOS 526 M2 slides (course seed 001, numbers confirmed in
shared/data/SOURCES.md) and the lme4 fixtures tests/reference/fixtures/pig_reml.json
and pig_ml.json (R 4.2.2, lme4 1.1-31); closed forms where named.

Tolerances (tests/conftest.py): lm fits and closed forms are exact up to the
printed rounding (``course_value``); what comes out of lmmlib's optimiser also
gets its spread, the curvature bound of OPT_GAP for the pig_reml / pig_ml fit
(``optimum_spread``, or ``spread`` below for functions of θ = τ/σ).  lme4's pig
fits are at their minimum (6e-12), so their numbers carry no spread of their own.
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
    lme4_fixture,
    model_spread,
    optimum_spread,
    profiled_at,
)
from test_chapters import executed, glued, number

import lmmlib

TAU2, SIGMA2 = 15.1418485, 4.3947089  # pig_reml varcorr, to the digits used below


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("pig")).items()}


def spread(of_theta, name: str = "pig_reml") -> float:
    """Spread of a function of the pig fit's θ = τ/σ under OPT_GAP."""
    return float(curvature_tolerance(fitted(name), lambda th: np.array([of_theta(th[0])]),
                                     OPT_GAP)[0])


def test_design_is_balanced(values):
    # SOURCES.md: 432 rows, 48 pigs x 9 weeks
    assert values["n_pigs"] == 48
    assert values["n_weeks"] == 9
    assert values["n_obs"] == 432
    assert values["min_per_pig"] == 9


def test_pooled_and_stratified_lm(values):
    # seed 001 / SOURCES.md: lm(weight ~ weeks) 19.35561, 6.20990; residual SE 4.392 on 430 df
    # (lm: closed form, the printed rounding alone)
    assert values["lm_b0"] == course_value(19.35561, 5)
    assert values["lm_b1"] == course_value(6.20990, 5)
    assert values["lm_sigma"] == course_value(4.392, 3)
    assert values["lm_df"] == 430
    # R lm(weight ~ weeks): SEs 0.46054465, 0.08184093 (8 decimals; 1e-7 leaves 20 units
    # for the rounding of R's printout and ours)
    assert values["lm_se_b0"] == pytest.approx(0.46054465, abs=1e-7)
    assert values["lm_se_b1"] == pytest.approx(0.08184093, abs=1e-7)
    # seed 001: stratified fit, same slope, residual SE 2.096 on 383 df, t = 158.97
    assert values["st_b1"] == course_value(6.20990, 5)
    assert values["st_sigma"] == course_value(2.096, 3)
    assert values["st_df"] == 383
    assert values["st_b1"] / values["st_se_b1"] == course_value(158.97, 2)
    # R lm(weight ~ weeks + factor(id) - 1): SE of a pig intercept 0.72556840
    assert values["st_se_alpha"] == pytest.approx(0.72556840, abs=1e-7)


def test_random_intercept_reml(values):
    # seed 001: REML id variance 15.142, residual 4.395; lme4 fixture pig_reml for more
    # digits (15.1418, 4.3947 to 4 decimals)
    assert values["tau2_reml"] == course_value(15.1418, 4, optimum_spread("pig_reml", "vcov", 0))
    assert values["sigma2_reml"] == course_value(4.3947, 4, optimum_spread("pig_reml", "vcov", 1))
    # balanced design: β̂ does not move with θ (GLS = OLS), so rounding only
    assert values["ri_b0"] == pytest.approx(19.3556134259, abs=1e-6)  # pig_reml beta
    # the SEs move with θ̂: pig_reml se to 9 decimals plus their spread
    assert values["ri_se_b0"] == course_value(0.603138981, 9, optimum_spread("pig_reml", "se", 0))
    assert values["ri_se_b1"] == course_value(0.039063290, 9, optimum_spread("pig_reml", "se", 1))
    # closed form var(b0) = (tau2 + sigma2/9)/48 + xbar^2 sigma2/Sxx equals the engine's SE
    # (both from the fit's own variances: rounding only)
    assert values["se_b0_formula"] == pytest.approx(values["ri_se_b0"], abs=1e-6)
    # closed form of the pooled SE equals lm's
    assert values["se_b0_pooled_formula"] == pytest.approx(values["lm_se_b0"], abs=1e-8)


def test_icc_and_noise_ratio(values):
    # seed 001: ICC = 0.77, sigma2/tau2 = 0.29; exact value from pig_reml varcorr (7
    # decimals), plus the spread of ICC = θ²/(θ² + 1)
    icc = TAU2 / (TAU2 + SIGMA2)
    assert values["icc"] == pytest.approx(icc, abs=1e-7 + spread(lambda t: t**2 / (t**2 + 1)))
    # seed 001 prints 0.77 for 0.7751: truncated, so a whole unit of the last digit
    assert values["icc"] == pytest.approx(0.77, abs=0.01)
    assert values["noise_ratio"] == course_value(0.29, 2)


def test_compound_symmetry_block(values):
    # V_i = tau2 J + sigma2 I (pig_reml variances to 7 decimals, plus lmmlib's spread of
    # them); zero between pigs, exactly (no term contributes there)
    s_tau2, s_sigma2 = (optimum_spread("pig_reml", "vcov", i) for i in range(2))
    assert values["v_within"] == pytest.approx(TAU2, abs=1e-7 + s_tau2)
    assert values["v_diag"] == pytest.approx(TAU2 + SIGMA2, abs=2e-7 + s_tau2 + s_sigma2)
    assert values["v_between"] == 0.0


def test_gls_by_hand_equals_engine(values):
    # (X'V^-1X)^-1 X'V^-1 y with the marginal V reproduces lmer's fixef: the same closed
    # form at the same θ, rounding of a dense 432 × 432 solve only
    assert values["gls_maxdiff"] < 1e-8
    assert values["gls_se_maxdiff"] < 1e-8


def test_shrinkage(values):
    # r = tau2/(tau2 + sigma2/9) = 9θ²/(9θ² + 1), identical for all pigs (balanced); BLUP =
    # r * raw.  Against pig_reml's variances: rounding (1e-7) plus the spread of r
    r = TAU2 / (TAU2 + SIGMA2 / 9)
    r_spread = spread(lambda t: 9 * t**2 / (9 * t**2 + 1))
    assert values["r"] == pytest.approx(r, abs=1e-7 + r_spread)
    # identities of the fit's own numbers: rounding only
    assert values["r_spread"] < 1e-12
    assert values["blup_vs_r_raw"] < 1e-6
    assert values["raw_vs_strat"] < 1e-8
    assert values["inv_r"] == pytest.approx(1 / r, abs=1e-7 + r_spread / r**2)


def test_effective_df(values):
    # seed 001: EDF = 48 * 9 / (9 + sigma2/tau2) = 48·9/(9 + 1/θ²), with the pig_reml
    # variances: rounding plus its spread (7e-5)
    edf = 48 * 9 / (9 + SIGMA2 / TAU2)
    edf_spread = spread(lambda t: 48 * 9 / (9 + 1 / t**2))
    assert values["edf"] == pytest.approx(edf, abs=1e-6 + edf_spread)
    assert values["edf_formula"] == pytest.approx(edf, abs=1e-6 + edf_spread)
    assert 2 < values["edf_total"] < 49


def test_ml_versus_reml(values):
    # seed 001 / SOURCES.md: ML id variance 14.817, residual 4.383, AIC 2037.85 (14.81749
    # lies 1e-5 inside its rounding interval: hence the spread)
    assert values["tau2_ml"] == course_value(14.817, 3, optimum_spread("pig_ml", "vcov", 0))
    assert values["sigma2_ml"] == course_value(4.383, 3, optimum_spread("pig_ml", "vcov", 1))
    assert values["aic_ml"] == course_value(2037.85, 2, OPT_GAP)
    # lme4 fixture pig_ml: AIC 2037.853587 (6 decimals; the criterion within OPT_GAP)
    assert values["aic_ml"] == course_value(2037.853587, 6, OPT_GAP)
    assert values["ml_se_b0"] == course_value(0.597405555, 9, optimum_spread("pig_ml", "se", 0))
    assert values["ml_se_b1"] == course_value(0.039012393, 9, optimum_spread("pig_ml", "se", 1))
    assert values["tau2_ml"] < values["tau2_reml"]
    assert values["sigma2_ml"] < values["sigma2_reml"]
    # balanced closed forms (SS_W/383, SS_W/384, ...) agree with the numerical fits, to
    # the largest spread of the four variances (6.8e-4, REML τ²)
    worst = max(optimum_spread(name, "vcov", i) for name in ("pig_reml", "pig_ml")
                for i in range(2))
    assert values["closed_form_maxdiff"] < worst


# -- exercises ----------------------------------------------------------------------


def test_exercise_compound_symmetry_against_the_data(values):
    # model: every pair of weeks has correlation ICC = θ²/(θ² + 1) (pig_reml varcorr
    # to 7 decimals, plus its spread)
    icc = TAU2 / (TAU2 + SIGMA2)
    assert values["ex_cs_model"] == pytest.approx(
        icc, abs=1e-7 + spread(lambda t: t**2 / (t**2 + 1)))
    # data: Pearson correlations of the week columns by numpy (rounding only)
    wide = course_data("pig").pivot(index="id", columns="weeks", values="weight")
    assert values["ex_cs_12"] == pytest.approx(np.corrcoef(wide[1], wide[2])[0, 1], abs=1e-12)
    assert values["ex_cs_19"] == pytest.approx(np.corrcoef(wide[1], wide[9])[0, 1], abs=1e-12)
    assert values["ex_cs_19"] < values["ex_cs_model"] < values["ex_cs_12"]


def test_exercise_shrinkage_with_three_weights(values):
    # r = tau2/(tau2 + sigma2/3) = 3θ²/(3θ² + 1) with pig_reml's variances: rounding of
    # the 7-decimal constants plus the spread of r; EDF = 48 r exactly
    r3 = TAU2 / (TAU2 + SIGMA2 / 3)
    r3_spread = spread(lambda t: 3 * t**2 / (3 * t**2 + 1))
    assert values["ex_r3"] == pytest.approx(r3, abs=1e-7 + r3_spread)
    assert values["ex_edf3"] == pytest.approx(48 * values["ex_r3"], rel=1e-12)
    assert values["ex_r3"] < values["r"]


def test_exercise_lrt_of_the_random_intercept(values):
    # lme4 fixtures pig_ml and pig_lm: 2 (logLik_ml - logLik_lm).  The lm log-likelihood
    # is a closed form; lmmlib's ML deviance is within OPT_GAP of lme4's (at its minimum),
    # so the statistic is too (plus 1e-9 for the fixtures' 15 significant digits)
    lrt = 2 * (lme4_fixture("pig_ml")["loglik"] - lme4_fixture("pig_lm")["loglik"])
    assert values["ex_lrt"] == pytest.approx(lrt, abs=OPT_GAP + 1e-9)
    assert values["ex_lrt_loglik_diff"] == pytest.approx(lrt / 2, abs=OPT_GAP + 1e-9)


def test_exercise_one_mean_per_week(values):
    # balanced two-way layout (48 pigs x 9 weeks, week as a factor): REML equals the
    # ANOVA estimators, sigma2 = SS_E / (47 * 8) and tau2 = (MS_pig - sigma2) / 9, at the
    # exact optimum; lmmlib's optimum moves them by their curvature bound (test-side fit)
    pig = course_data("pig")
    y = pig.pivot(index="id", columns="weeks", values="weight").to_numpy(float)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    sigma2 = float((resid**2).sum()) / (47 * 8)
    ms_pig = 9 * float(((y.mean(axis=1) - y.mean()) ** 2).sum()) / 47
    tau2 = (ms_pig - sigma2) / 9
    fit = lmmlib.lmer("weight ~ C(weeks) + (1 | id)", pig)
    s_sigma2, s_tau2 = model_spread(fit, lambda th: np.array([
        profiled_at(fit, th)["sigma"] ** 2,
        profiled_at(fit, th)["varcorr"]["vcov"].iloc[0]]))
    assert values["ex_weeks_sigma2"] == pytest.approx(sigma2, abs=1e-10 + s_sigma2)
    assert values["ex_weeks_tau2"] == pytest.approx(tau2, abs=1e-10 + s_tau2)
    assert values["ex_weeks_sigma2"] < values["sigma2_reml"]
