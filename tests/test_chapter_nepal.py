"""Chapter 3 (book/nepal.md): the glued numbers reproduce the course and lme4.

Sources: BIOS 526 M2 notes (course seed 001, Nepal slides), data/SOURCES.md
(cleaning counts) and lme4 1.1-31 / lmerTest runs of the same models.
"""

from __future__ import annotations

import pytest
from test_chapters import executed, glued, number


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("nepal")).items()}


def test_cleaning_counts(values):
    # SOURCES.md: 1000 rows; arm 99.9 (108 rows) and 88.8 (10 rows) dropped
    # -> 882 rows, 197 children
    assert values["n_raw_rows"] == 1000
    assert values["n_code_999"] == 108
    assert values["n_code_888"] == 10
    assert values["n_rows"] == 882
    assert values["n_children"] == 197


def test_pooled_and_dummy_fits(values):
    # seed 001: lm(arm ~ age) 12.838182, 0.029789, residual SE 0.9849
    assert values["lm_int"] == pytest.approx(12.838182, abs=5e-7)
    assert values["lm_age"] == pytest.approx(0.029789, abs=5e-7)
    assert values["lm_sigma"] == pytest.approx(0.9849, abs=5e-5)
    # seed 001: fixed-effects (dummy) model slope 0.0313 (truncated), SE 0.00307, t = 10.20
    assert values["fe_age"] == pytest.approx(0.0313, abs=1e-4)
    assert values["fe_age_se"] == pytest.approx(0.00307, abs=5e-6)
    assert values["fe_t"] == pytest.approx(10.20, abs=5e-3)


def test_random_intercept_fit(values):
    # seed 001 / SOURCES.md: lmer(arm ~ age + (1|id)) REML
    assert values["ri_int"] == pytest.approx(12.753789, abs=5e-7)
    assert values["ri_age"] == pytest.approx(0.031697, abs=5e-7)
    assert values["ri_tau2"] == pytest.approx(0.780733, abs=5e-7)
    assert values["ri_sigma2"] == pytest.approx(0.248067, abs=5e-7)
    assert values["ri_t"] == pytest.approx(13.45, abs=5e-3)  # seed 001 t value
    # seed 001 shrinkage slide: sigma^2/tau^2 = 0.32, ICC = 0.76
    assert values["ri_ratio"] == pytest.approx(0.32, abs=5e-3)
    assert values["ri_icc"] == pytest.approx(0.76, abs=5e-3)


def test_literacy(values):
    # lme4 1.1-31: lit 0.9302447 (the notes print 0.930247); seed 001: intercept 12.710555, t 2.94
    assert values["lit_coef"] == pytest.approx(0.9302447, abs=5e-7)
    assert values["lit_int"] == pytest.approx(12.710555, abs=5e-7)
    assert values["lit_t"] == pytest.approx(2.94, abs=5e-3)
    assert values["lit_sigma2"] == pytest.approx(0.24824, abs=5e-6)  # seed 001


def test_shrinkage_factors(values):
    # closed form tau^2 / (tau^2 + sigma^2 / n) with the seed-001 REML variances
    tau2, sigma2 = 0.780733, 0.248067
    assert values["shrink_r1"] == pytest.approx(tau2 / (tau2 + sigma2), abs=1e-6)
    assert values["shrink_r5"] == pytest.approx(tau2 / (tau2 + sigma2 / 5), abs=1e-6)


def test_random_slope(values):
    # seed 001: fixed effects 13.943962 (printed truncated as 13.9439) and 0.032527
    assert values["slope_int"] == pytest.approx(13.943962, abs=5e-6)
    assert values["slope_age"] == pytest.approx(0.032527, abs=5e-7)
    # seed 001: variances 0.71937746, 0.00043572, correlation 0.090, residual 0.22657451
    assert values["slope_tau0sq"] == pytest.approx(0.71937746, abs=5e-6)
    assert values["slope_tau1sq"] == pytest.approx(0.00043572, abs=5e-8)
    assert values["slope_rho"] == pytest.approx(0.090, abs=5e-4)
    assert values["slope_sigma2"] == pytest.approx(0.22657451, abs=5e-7)
    # seed 001 (ageC || id): variances 0.7170990, 0.0004122, 0.2279327; lme4 1.1-31
    # gives 0.7170907 for the first (as lmmlib), so the notes' sixth digit is a slip
    assert values["indep_tau0sq"] == pytest.approx(0.7170907, abs=5e-7)
    assert values["indep_tau1sq"] == pytest.approx(0.0004122, abs=5e-8)
    assert values["indep_sigma2"] == pytest.approx(0.2279327, abs=5e-7)
    # lme4 1.1-31: (ageC || id) fixed effects 13.94277, 0.03225124
    assert values["indep_int"] == pytest.approx(13.94277, abs=5e-6)
    assert values["indep_age"] == pytest.approx(0.03225124, abs=5e-8)


def test_model_comparison(values):
    # seed 001: AIC 1807.26 (random intercept) and 1802.58 (random slope), ML
    assert values["aic_ri"] == pytest.approx(1807.26, abs=5e-3)
    assert values["aic_slope"] == pytest.approx(1802.58, abs=5e-3)
    # seed 001: Chisq 8.6854 on 2 df; lme4 1.1-31 anova prints p = 0.013 (notes: 0.015)
    assert values["lrt_chisq"] == pytest.approx(8.6854, abs=5e-5)
    assert values["lrt_df"] == 2
    assert values["lrt_p"] == pytest.approx(0.0130, abs=5e-5)
    # closed form: 0.5 * P(chi2_1 > 8.68545) + 0.5 * P(chi2_2 > 8.68545)
    assert values["mix_p"] == pytest.approx(0.0081043, abs=1e-6)


def test_bootstrap_lrt(values):
    # the bootstrap p-value (1 + k)/(1 + n) lies below the naive chi-square one, with its MC s.e.
    n, k = values["boot_n"], values["boot_exceed"]
    assert values["boot_p"] == pytest.approx((1 + k) / (1 + n))
    p = values["boot_p"]
    assert values["boot_se"] == pytest.approx((p * (1 - p) / n) ** 0.5)
    assert values["boot_p"] < values["lrt_p"]


def test_sensitivity_without_57_and_105(values):
    # seed 001: intercept 13.949133, ageC 0.031182, sds 0.816880 (printed; 0.816850 by the
    # printed variance 0.66724471) and 0.017264, correlation 0.123
    assert values["drop_int"] == pytest.approx(13.949133, abs=5e-7)
    assert values["drop_age"] == pytest.approx(0.031182, abs=5e-7)
    assert values["drop_tau0"] == pytest.approx(0.81685, abs=5e-5)
    assert values["drop_tau1"] == pytest.approx(0.017264, abs=5e-7)
    assert values["drop_rho"] == pytest.approx(0.123, abs=5e-4)


def test_cross_level_model_as_in_the_notes(values):
    # seed 001 (weight missing codes left in, 882 rows): lit 0.811968, sex2 0.024062,
    # lit:ageC 0.007405; lme4 1.1-31 wt 0.0098668 (notes print 0.009967)
    assert values["notes_nobs"] == 882
    assert values["notes_lit"] == pytest.approx(0.811968, abs=5e-5)
    assert values["notes_sex"] == pytest.approx(0.024062, abs=5e-5)
    assert values["notes_wt"] == pytest.approx(0.0098668, abs=5e-7)
    # lmerTest 3.1 (cleaned weight, 877 rows): wtC 0.7104, lit 0.5203 (lme4 warns of
    # non-convergence there; lmmlib's optimum has a lower REML criterion)
    assert values["cross_nobs"] == 877
    assert values["cross_wt"] == pytest.approx(0.7104, abs=5e-4)
    assert values["cross_lit"] == pytest.approx(0.5203, abs=5e-4)
