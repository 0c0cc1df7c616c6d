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
    reference,
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
    # SOURCES.md (the slides): REML id variance 15.142, residual 4.395; fixture pig_reml for more
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
    # SOURCES.md: ML id variance 14.817, residual 4.383, AIC 2037.85 (14.81749
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


# -- conditional SD against the stratified SE (like with like) -----------------------


def test_conditional_sd_and_prediction_se(values):
    # closed forms of the balanced random intercept at the chapter's own variances
    # (glued to full precision), so rounding only: condsd^2 = sigma2 / (9 + sigma2/tau2)
    tau2, sigma2 = values["tau2_reml"], values["sigma2_reml"]
    n, m, xbar, sxx = 48, 9, 5.0, 48 * 60.0
    assert values["condsd"] == pytest.approx(np.sqrt(sigma2 / (m + sigma2 / tau2)), rel=1e-9)
    # the slope's part of the stratified intercept's variance: xbar^2 sigma2 / Sxx
    assert values["slope_part"] == pytest.approx(xbar**2 * sigma2 / sxx, rel=1e-12)
    assert values["st_se_level"] == pytest.approx(np.sqrt(sigma2 / m), rel=1e-12)
    # prediction error of beta0_hat + b_i_hat with the fixed effects estimated (Henderson's
    # C^-1), in closed form: b0_hat + b_i_hat = (1-r) ybar.. + r ybar_i - xbar beta1_hat, so
    # the error is -(1-r)(1-1/n) b_i + (1-r)/n sum_{j!=i} b_j + ((1-r)/n + r) e_i
    # + (1-r)/n sum_{j!=i} e_j - xbar (beta1_hat - beta1), with var(e_i) = sigma2/m
    r = tau2 / (tau2 + sigma2 / m)
    s = sigma2 / m
    pev = (tau2 * (1 - r) ** 2 * ((1 - 1 / n) ** 2 + (n - 1) / n**2)
           + s * (((1 - r) / n + r) ** 2 + (n - 1) * (1 - r) ** 2 / n**2)
           + xbar**2 * sigma2 / sxx)
    # a 50 x 50 inverse against the closed form: rounding only
    assert values["pev_se"] == pytest.approx(np.sqrt(pev), rel=1e-9)
    # the chapter's claim: the slope term is most of the gap, and the like-with-like
    # prediction SE lies just below the stratified SE
    assert values["slope_share"] > 50
    assert values["condsd"] < values["pev_se"] < values["st_se_alpha"]


# -- the bias-variance simulation ---------------------------------------------------


def _simulation():
    """The chapter's simulation, recomputed with its seed (same draws, same refits)."""
    pig = course_data("pig")
    fit = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    tau = float(fit.varcorr["sdcor"].iloc[0])
    rng = np.random.default_rng(526)
    X = fit.model_matrix
    rows = np.unique(fit.model_frame["id"], return_inverse=True)[1]
    truth, blups, raws = [], [], []
    for _ in range(1000):
        b = rng.normal(0.0, tau, 48)
        y = X @ fit.fixef.to_numpy() + b[rows] + rng.normal(0.0, fit.sigma, len(pig))
        refit = lmmlib.shrinkage(fit.refit(y))
        truth.append(b - b.mean())
        blups.append(refit["blup"].to_numpy())
        raws.append(refit["raw"].to_numpy())
    return fit, tau, np.array(truth), np.array(blups), np.array(raws)


def test_bias_variance_simulation(values):
    fit, tau, truth, blups, raws = _simulation()
    # the same seeds, data and refits as the chapter.  Two fits of one problem stop at
    # slightly different points within OPT_GAP: the base fit's variances, which scale
    # every simulated draw, by their curvature bound (4.5e-5 relative at most, REML
    # tau2 in optimum_spread), and each refit's shrinkage factor r by spread(r) = 1.5e-6,
    # which moves the MSEs by at most 2 sqrt(MSE E raw^2) 1.5e-6 = 8e-6 (2e-5 relative).
    # 1e-4 relative (abs 1e-4 for the bias, about 0.3 kg) covers both
    mse_blup = np.mean((blups - truth) ** 2)
    mse_raw = np.mean((raws - truth) ** 2)
    assert values["sim_mse_blup"] == pytest.approx(mse_blup, rel=1e-4)
    assert values["sim_mse_raw"] == pytest.approx(mse_raw, rel=1e-4)
    extreme = np.abs(truth) > 2 * tau
    bias_ext = np.mean(((blups - truth) * np.sign(truth))[extreme])
    assert values["sim_bias_blup_ext"] == pytest.approx(bias_ext, abs=1e-4)
    # closed form: raw - (b_i - bbar) = ebar_i - ebar.., variance (sigma2/9)(1 - 1/48),
    # with the chapter's own sigma2 (the same kernel's fit: rounding only)
    assert values["sim_mse_raw_theory"] == pytest.approx(
        values["sigma2_reml"] / 9 * (1 - 1 / 48), rel=1e-12)
    # Monte Carlo: the 1000 replicate means are independent, so 4 of their standard
    # errors bound the gap to the closed form (a 6e-5 chance of a false failure)
    per_rep = np.mean((raws - truth) ** 2, axis=1)
    theory = fit.sigma**2 / 9 * (1 - 1 / 48)
    assert abs(per_rep.mean() - theory) < 4 * per_rep.std(ddof=1) / np.sqrt(len(per_rep))
    # the chapter's claims: BLUPs win on MSE overall, are biased towards the line
    # (negative) for the extreme pigs, and lose on MSE there
    assert values["sim_mse_blup"] < values["sim_mse_raw"]
    assert values["sim_bias_blup_ext"] < 0
    assert abs(values["sim_bias_raw_ext"]) < abs(values["sim_bias_blup_ext"]) / 5
    assert values["sim_mse_blup_ext"] > values["sim_mse_raw_ext"]


# -- the random slope, against lme4 (tests/reference/book_pig_slope.R) ----------------


def test_random_slope_against_lme4(values):
    fx = reference("book", "pig_slope")
    pig = course_data("pig")
    fit = lmmlib.lmer("weight ~ weeks + (weeks | id)", pig)
    # lme4 stops at its minimum with tight tolerances; lmmlib's criterion within OPT_GAP
    assert fit.objective == pytest.approx(fx["slope_reml"]["deviance"], abs=OPT_GAP)
    np.testing.assert_allclose(fit.theta, fx["slope_reml"]["theta"], atol=1e-4)
    # glued variances and SE: lme4's values (15 significant digits) plus lmmlib's spread
    # of each under OPT_GAP (curvature bound)
    vc = {(r["var1"], r["var2"]): r for r in fx["slope_reml"]["varcorr"]}
    spread_vc = model_spread(fit, lambda th: profiled_at(fit, th)["varcorr"]["vcov"]
                             .to_numpy()[:4])
    assert values["sl_tau2_int"] == pytest.approx(vc[("(Intercept)", None)]["vcov"],
                                                  abs=1e-9 + spread_vc[0])
    assert values["sl_tau2_slope"] == pytest.approx(vc[("weeks", None)]["vcov"],
                                                    abs=1e-9 + spread_vc[1])
    assert values["sl_sigma2"] == pytest.approx(vc[(None, None)]["vcov"],
                                                abs=1e-9 + spread_vc[3])
    spread_corr = model_spread(fit, lambda th: profiled_at(fit, th)["varcorr"]["sdcor"]
                               .to_numpy()[2:3])[0]
    assert values["sl_corr"] == pytest.approx(vc[("(Intercept)", "weeks")]["sdcor"],
                                              abs=1e-9 + spread_corr)
    spread_se = model_spread(fit, lambda th: profiled_at(fit, th)["se"][1:2])[0]
    assert values["sl_se_b1"] == pytest.approx(fx["slope_reml"]["se"][1], abs=1e-9 + spread_se)
    # balanced design: the slope estimate does not depend on theta (GLS = OLS)
    assert values["sl_b1"] == pytest.approx(fx["slope_reml"]["beta"]["values"][1], abs=1e-9)
    # ML fits: AIC and the LRT are deviances; each of lmmlib's within OPT_GAP of lme4's
    assert values["sl_aic_slope"] == pytest.approx(fx["slope_ml"]["aic"], abs=OPT_GAP + 1e-9)
    assert values["sl_aic_ri"] == pytest.approx(fx["intercept_ml"]["aic"], abs=OPT_GAP + 1e-9)
    assert values["sl_lrt"] == pytest.approx(fx["lrt"]["statistic"], abs=2 * OPT_GAP + 1e-9)
    assert values["sl_lrt_df"] == fx["lrt"]["df"] == 2


def test_random_slope_implied_spread(values):
    # sqrt(G00 + 2w G01 + w^2 G11 + sigma2) from the glued components (rounding only);
    # the random slope reproduces the fanning the data show (sd_w1 < sd_w9)
    tau2_int, tau2_slope = values["sl_tau2_int"], values["sl_tau2_slope"]
    cov = values["sl_corr"] * np.sqrt(tau2_int * tau2_slope)
    for w, key in ((1, "sl_sd_w1"), (9, "sl_sd_w9")):
        implied = np.sqrt(tau2_int + 2 * w * cov + w**2 * tau2_slope + values["sl_sigma2"])
        assert values[key] == pytest.approx(implied, rel=1e-9)
    assert values["sl_sd_w1"] < values["sd_w1"] * 1.2 and values["sl_sd_w9"] > values["sd_w1"]
    assert values["sl_sd_ri"] == pytest.approx(np.sqrt(values["tau2_reml"]
                                                       + values["sigma2_reml"]), rel=1e-12)
