"""Chapter 2 (pig weights) reproduces the course's numbers from its glued values.

Expected values: BIOS 526 M2 slides (course seed 001, numbers confirmed in
shared/data/SOURCES.md) and the lme4 fixtures tests/reference/fixtures/pig_reml.json
and pig_ml.json (R 4.2.2, lme4 1.1-31); closed forms where named.
"""

from __future__ import annotations

import pytest
from test_chapters import executed, glued, number


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("pig")).items()}


def test_design_is_balanced(values):
    # SOURCES.md: 432 rows, 48 pigs x 9 weeks
    assert values["n_pigs"] == 48
    assert values["n_weeks"] == 9
    assert values["n_obs"] == 432
    assert values["min_per_pig"] == 9


def test_pooled_and_stratified_lm(values):
    # seed 001 / SOURCES.md: lm(weight ~ weeks) 19.35561, 6.20990; residual SE 4.392 on 430 df
    assert values["lm_b0"] == pytest.approx(19.35561, abs=5e-6)
    assert values["lm_b1"] == pytest.approx(6.20990, abs=5e-6)
    assert values["lm_sigma"] == pytest.approx(4.392, abs=5e-4)
    assert values["lm_df"] == 430
    # R lm(weight ~ weeks): SEs 0.46054465, 0.08184093
    assert values["lm_se_b0"] == pytest.approx(0.46054465, abs=1e-7)
    assert values["lm_se_b1"] == pytest.approx(0.08184093, abs=1e-7)
    # seed 001: stratified fit, same slope, residual SE 2.096 on 383 df, t = 158.97
    assert values["st_b1"] == pytest.approx(6.20990, abs=5e-6)
    assert values["st_sigma"] == pytest.approx(2.096, abs=5e-4)
    assert values["st_df"] == 383
    assert values["st_b1"] / values["st_se_b1"] == pytest.approx(158.97, abs=5e-3)
    # R lm(weight ~ weeks + factor(id) - 1): SE of a pig intercept 0.72556840
    assert values["st_se_alpha"] == pytest.approx(0.72556840, abs=1e-7)


def test_random_intercept_reml(values):
    # seed 001: REML id variance 15.142, residual 4.395; lme4 fixture pig_reml for more digits
    assert values["tau2_reml"] == pytest.approx(15.1418, abs=1e-4)
    assert values["sigma2_reml"] == pytest.approx(4.3947, abs=1e-4)
    assert values["ri_b0"] == pytest.approx(19.3556134259, abs=1e-6)  # pig_reml beta
    assert values["ri_se_b0"] == pytest.approx(0.603138981, abs=1e-6)  # pig_reml se
    assert values["ri_se_b1"] == pytest.approx(0.039063290, abs=1e-7)  # pig_reml se
    # closed form var(b0) = (tau2 + sigma2/9)/48 + xbar^2 sigma2/Sxx equals the engine's SE
    assert values["se_b0_formula"] == pytest.approx(values["ri_se_b0"], abs=1e-6)
    # closed form of the pooled SE equals lm's
    assert values["se_b0_pooled_formula"] == pytest.approx(values["lm_se_b0"], abs=1e-8)


def test_icc_and_noise_ratio(values):
    # seed 001: ICC = 0.77, sigma2/tau2 = 0.29; exact value from pig_reml varcorr
    assert values["icc"] == pytest.approx(15.1418485 / (15.1418485 + 4.3947089), abs=1e-5)
    assert values["icc"] == pytest.approx(0.77, abs=0.01)  # seed 001 prints 0.77
    assert values["noise_ratio"] == pytest.approx(0.29, abs=5e-3)


def test_compound_symmetry_block(values):
    # V_i = tau2 J + sigma2 I (pig_reml variances); zero between pigs
    assert values["v_within"] == pytest.approx(15.1418485, abs=1e-5)
    assert values["v_diag"] == pytest.approx(15.1418485 + 4.3947089, abs=1e-5)
    assert values["v_between"] == 0.0


def test_gls_by_hand_equals_engine(values):
    # (X'V^-1X)^-1 X'V^-1 y with the marginal V reproduces lmer's fixef
    assert values["gls_maxdiff"] < 1e-8
    assert values["gls_se_maxdiff"] < 1e-8


def test_shrinkage(values):
    # r = tau2/(tau2 + sigma2/9), identical for all pigs (balanced); BLUP = r * raw
    r = 15.1418485 / (15.1418485 + 4.3947089 / 9)
    assert values["r"] == pytest.approx(r, abs=1e-6)
    assert values["r_spread"] < 1e-12
    assert values["blup_vs_r_raw"] < 1e-6
    assert values["raw_vs_strat"] < 1e-8
    assert values["inv_r"] == pytest.approx(1 / r, abs=1e-6)


def test_effective_df(values):
    # seed 001: EDF = 48 * 9 / (9 + sigma2/tau2), with the pig_reml variances
    edf = 48 * 9 / (9 + 4.3947089 / 15.1418485)
    assert values["edf"] == pytest.approx(edf, abs=1e-5)
    assert values["edf_formula"] == pytest.approx(edf, abs=1e-5)
    assert 2 < values["edf_total"] < 49


def test_ml_versus_reml(values):
    # seed 001 / SOURCES.md: ML id variance 14.817, residual 4.383, AIC 2037.85
    assert values["tau2_ml"] == pytest.approx(14.817, abs=5e-4)
    assert values["sigma2_ml"] == pytest.approx(4.383, abs=5e-4)
    assert values["aic_ml"] == pytest.approx(2037.85, abs=5e-3)
    # lme4 fixture pig_ml: AIC 2037.853587
    assert values["aic_ml"] == pytest.approx(2037.853587, abs=1e-4)
    assert values["ml_se_b0"] == pytest.approx(0.597405555, abs=1e-6)  # pig_ml se
    assert values["ml_se_b1"] == pytest.approx(0.039012393, abs=1e-7)  # pig_ml se
    assert values["tau2_ml"] < values["tau2_reml"]
    assert values["sigma2_ml"] < values["sigma2_reml"]
    # balanced closed forms (SS_W/383, SS_W/384, ...) agree with the numerical fits
    assert values["closed_form_maxdiff"] < 1e-4
