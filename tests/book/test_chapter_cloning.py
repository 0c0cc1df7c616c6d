"""Chapter 8 (data cloning) reproduces the behaviour the course notes describe.

Sources: course seed 000 (Neyman–Scott revisited, data cloning with dclone);
the ML fit of the one-way model (lmmlib.course.cloning.ml_reference, lmer with
reml=False, itself checked against lme4 in test_cloning.py); closed forms for
a single normal sample (m = 1).  The chapter's data come from NumPy, not from
R's set.seed(1234), so the notes' numbers are matched in behaviour (lambda.max
falling like 1/K or not, r.hat, correlations), not digit by digit.

Tolerances: the chapter's MCMC runs are seeded, so each comparison is
deterministic given the seed; the bounds are Monte Carlo ones (a few posterior
or ML standard errors, or a factor on rates such as λ_max ∝ 1/K), stated at each
assertion, and none rests on the rounding of a particular BLAS kernel.
"""

from __future__ import annotations

import pytest
from test_chapters import executed, glued, number


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("cloning")).items()}


def test_dc_estimates_match_ml_for_two_replicates(values):
    # lmer ML fit of the same data: DC with K = 25 within a tenth of a standard error
    for par in ("mu", "sigma2", "tau2"):
        gap = abs(values[f"dc_dc_{par}"] - values[f"dc_ml_{par}"])
        assert gap < 0.1 * values[f"dc_ml_se_{par}"], par
    assert values["dc_maxdiff_in_se"] < 0.1
    # K x posterior variance estimates the inverse observed information: SEs within 10 %
    # (an SD from ~2000 effective draws has ~1.6 % MC error, plus the O(1/K) difference)
    for par in ("mu", "sigma2", "tau2"):
        assert values[f"dc_dc_se_{par}"] == pytest.approx(values[f"dc_ml_se_{par}"], rel=0.1)


def test_ml_estimates_are_plausible_for_the_course_truth(values):
    # seed 000: mu = 2.5, sigma^2 = 0.2^2, tau^2 = 0.5^2; ML within 3 SEs of the truth
    for par, truth in (("mu", 2.5), ("sigma2", 0.04), ("tau2", 0.25)):
        assert abs(values[f"dc_ml_{par}"] - truth) < 3 * values[f"dc_ml_se_{par}"], par


def test_lambda_max_falls_like_one_over_k_only_when_identifiable(values):
    # 1/K rate from 1 to 25 clones: a ratio near 25 for m = 2 and for the sum with m = 1
    assert 15 < values["dc_lam2_ratio"] < 40
    assert 15 < values["dc_lam1s_ratio"] < 40
    # seed 000, m = 1: lambda.max 0.0264, 0.0161, 0.0227 -- no 1/K decay
    assert values["dc_lam1_ratio"] < 3
    assert values["dc_lam2_ratio"] > 5 * values["dc_lam1_ratio"]


def test_m1_diagnostics_flag_non_identifiability(values):
    # seed 000: r.hat grows with K (2.02 -> 6.69); corr(sigma^2, tau^2) = -0.9971
    assert values["dc_rhat1_25"] > values["dc_rhat1_1"]
    assert values["dc_rhat1_25"] > 1.5
    assert values["dc_rhat2_max"] < 1.05
    assert values["dc_rhat1s_max"] < 1.05
    assert values["dc_corr1"] < -0.98
    assert abs(values["dc_corr2"]) < 0.3


def test_m1_sum_is_the_closed_form_mle(values):
    # single normal sample: MLE of mu is the mean, of sigma^2 + tau^2 the variance with divisor n
    # (posterior means at K = 25 clones: MC error plus the O(1/K) prior pull, ~0.1 ML SE)
    assert values["dc_mu1_dc"] == pytest.approx(values["dc_mu1_ml"], abs=0.005)
    assert values["dc_sum_dc"] == pytest.approx(values["dc_sum_ml"], rel=0.02)


def test_prior_influence_decays_like_one_over_k(values):
    # Laplace expansion: K x (MLE - posterior mean) tends to a constant (to O(1/K): 10 %
    # between K = 25 and 100, plus MC error); at K = 100 the posterior mean is within 0.02
    # (about 0.4 ML SE of mu) of the MLE
    assert values["dc_prior_mu1"] < 1.0
    assert values["dc_prior_kgap25"] == pytest.approx(values["dc_prior_kgap100"], rel=0.1)
    assert values["dc_prior_mu100"] == pytest.approx(values["dc_ml_mu"], abs=0.02)


def test_prediction_matches_blups(values):
    # lmer ranef (conditional modes at the ML estimates) vs dc_predict
    assert values["dc_corr_blup"] > 0.99
    assert values["dc_maxdiff_blup"] < 0.01
    assert values["dc_corr_truth"] > 0.9
    # DC prediction SDs include the uncertainty of theta-hat: wider than condsd
    assert values["dc_sd_ratio"] > 1
    # 95 % intervals over 100 effects: binomial coverage between 0.85 and 1
    for key in ("dc_cover_dc", "dc_cover_blup", "dc_cover_bayes"):
        assert 0.85 <= values[key] <= 1.0, key
