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

from functools import cache

import numpy as np
import pytest
from test_chapters import executed, glued, number

from lmmlib.course.cloning import Priors, dc_fit
from lmmlib.course.neyman_scott import simulate_oneway


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


# ---------------------------------------------------------------------------
# Exercises


@cache
def oneway(n: int, m: int, seed: int):
    """The chapter's simulated one-way data (simulate_oneway with a numpy seed)."""
    return simulate_oneway(n=n, m=m, mu=2.5, tau=0.5, sigma=0.2, rng=np.random.default_rng(seed))


def closed_form_ml(data) -> dict[str, float]:
    """ML of the balanced one-way model: sigma2 = MSE, tau2 = (var0(means) - MSE/m), the
    mean of the means, and SE(mu) = sqrt(var0(means) / n) (tau2 > 0)."""
    g = data.groupby("id", observed=True)["y"]
    n, m = g.ngroups, len(data) // g.ngroups
    ssw = float(((data["y"] - g.transform("mean")) ** 2).sum())
    v0 = float(g.mean().var(ddof=0))
    mse = ssw / (n * (m - 1))
    return {"ssw": ssw, "n": n, "m": m, "sigma2": mse, "tau2": v0 - mse / m,
            "mu": float(g.mean().mean()), "se_mu": np.sqrt(v0 / n)}


def test_exercise_neyman_scott_ratio(values):
    cf = closed_form_ml(oneway(100, 2, 1234))
    # the fixed-effects MLE SSW / (n m), recomputed from the same simulated data (rounding)
    assert values["ex_ns_fixed"] == pytest.approx(cf["ssw"] / (cf["n"] * cf["m"]), rel=1e-12)
    # closed form: the mixed model's ML sigma2 is SSW / (n (m - 1)), so the ratio is
    # (m - 1) / m = 1/2; the lmer ML fit reaches it within its optimiser spread (θ̂ to
    # ~1e-6 relative moves sigma2 by less; seen 1.2e-8): 1e-6
    assert values["ex_ns_expected"] == 0.5
    assert values["ex_ns_ratio"] == pytest.approx(0.5, rel=1e-6)
    assert values["ex_ns_mixed"] == pytest.approx(cf["sigma2"], rel=1e-6)


def test_exercise_se_of_mu_by_hand(values):
    cf = closed_form_ml(oneway(100, 2, 1234))
    # closed form sqrt(var0(individual means) / n), recomputed here (rounding)
    assert values["ex_se_mu_hand"] == pytest.approx(cf["se_mu"], rel=1e-12)
    # the observed-information SE of the lmer ML fit: for mu, at the ML optimum it is the
    # same closed form; the optimiser spread (θ̂ to ~1e-6) bounds the gap: rel 1e-6
    assert values["ex_se_mu_ml"] == pytest.approx(cf["se_mu"], rel=1e-6)
    # data cloning, K = 25: sqrt(K x posterior variance), an SD from ~2000 effective draws
    # (MC error ~1.6 %) plus the O(1/K) difference: 10 %, as for the chapter's SEs
    assert values["ex_se_mu_dc"] == pytest.approx(cf["se_mu"], rel=0.1)


def test_exercise_small_study(values):
    cf = closed_form_ml(oneway(20, 2, 20))
    # ML closed form recomputed here; the lmer fit within its optimiser spread: rel 1e-5
    assert values["ex_small_ml_sigma2"] == pytest.approx(cf["sigma2"], rel=1e-5)
    assert values["ex_small_ml_tau2"] == pytest.approx(cf["tau2"], rel=1e-5)
    # K = 20 clones: posterior means within 0.15 ML SE of the MLE (MC error of a mean of
    # ~1500 effective draws, ~0.03 SE, plus the prior's O(1/K) pull; seen 0.02)
    assert values["ex_small_k20_gap_se"] < 0.15
    # K = 1: the posterior means of both variances lie above the MLE (right-skewed
    # likelihood of a variance from 20 individuals; mean > mode): by 0.3 SE at least for
    # sigma2 (seen 0.61, an MC error of ~0.03 SE)
    assert values["ex_small_k1_sigma2"] > values["ex_small_ml_sigma2"]
    assert values["ex_small_k1_tau2"] > values["ex_small_ml_tau2"]
    assert values["ex_small_k1_gap_se"] > 0.3


def test_exercise_partial_replication_is_identified(values):
    # 20 individuals with two measurements, 80 with one: 120 observations
    assert values["ex_partial_n"] == 120
    # identifiable: lambda.max falls like 1/K from 1 to 25 clones (the chapter's bound for
    # identifiable runs), and the chains agree (r.hat < 1.05)
    assert 15 < values["ex_partial_lam_ratio"] < 40
    assert values["ex_partial_rhat"] < 1.05
    # DC estimates within 0.1 ML SE of the ML fit (as for the full data; seen 0.012)
    assert values["ex_partial_gap_se"] < 0.1
    # information: sigma2 from 20 instead of 100 within-individual differences -- its SE
    # grows by about sqrt(5) = 2.24 (ML SEs of two data sets: between 1.6 and 3), while tau2's
    # SE grows much less (below 1.5)
    assert 1.6 < values["ex_partial_se_ratio_sigma2"] < 3
    assert 1 < values["ex_partial_se_ratio_tau2"] < 1.5


@cache
def free_alpha_run():
    """The chapter's m = 1 run without the smoothing assumption, recomputed from its seeds."""
    data1 = simulate_oneway(n=100, m=1, mu=2.5, tau=0.5, sigma=0.2,
                            rng=np.random.default_rng(1234))
    fit = dc_fit(data1, n_clones=(1,), n_chains=3, n_iter=5000, burn=1000,
                 priors=Priors(a_tau=1e6, b_tau=1e9, b_sigma=1e-12), keep_alpha=True,
                 rng=np.random.default_rng(48))[0]
    return data1, fit


def test_without_smoothing_the_posterior_is_degenerate(values):
    data1, fit = free_alpha_run()
    draws = fit.frame
    # the same seeds and sampler: the glued summaries are these draws' (elementwise
    # arithmetic, so rounding only)
    q = draws["sigma2"].quantile([0.025, 0.5, 0.975])
    assert values["nf_s2_lo"] == pytest.approx(q[0.025], rel=1e-9)
    assert values["nf_s2_med"] == pytest.approx(q[0.5], rel=1e-9)
    assert values["nf_s2_hi"] == pytest.approx(q[0.975], rel=1e-9)
    assert values["nf_mu_mean"] == pytest.approx(draws["mu"].mean(), rel=1e-9)
    # seed 000's picture: sigma2's posterior spans many orders of magnitude and the
    # chains settle at very different levels (the notes: 1.061e-13 to 11.177)
    assert values["nf_s2_decades"] > 6
    assert values["nf_chain_med_hi"] / values["nf_chain_med_lo"] > 1e4
    # tau2 is held at 1000 by its IG(1e6, 1e9) prior: SD 1000/sqrt(1e6 - 2) ~ 1 (MC: 10 %)
    assert values["nf_tau2_sd"] == pytest.approx(1.0, rel=0.1)
    # mu: each draw is exact from N(M, 1/P) given the variances, P = n/(tau2 + sigma2)
    # + 1/10, M = (sum y / (tau2 + sigma2)) / P (prior N(0, 10)); averaging M and 1/P
    # over the sampled variances gives the posterior mean and variance (Rao-Blackwell),
    # and the draws are independent given them: 4 Monte Carlo SEs bound the gap
    v = draws["tau2"].to_numpy() + draws["sigma2"].to_numpy()
    P = len(data1) / v + 1 / 10
    M = data1["y"].sum() / v / P
    mean_rb, var_rb = M.mean(), (1 / P).mean() + M.var()
    mcse = np.sqrt(var_rb / len(draws))
    assert abs(values["nf_mu_mean"] - mean_rb) < 4 * mcse
    assert values["nf_mu_sd"] == pytest.approx(np.sqrt(var_rb), rel=4 / np.sqrt(2 * len(draws)))
    # the closed form with sigma2 dropped (tau2 = 1000): rounding only
    assert values["nf_mu_sd_closed"] == pytest.approx(1 / np.sqrt(0.2), rel=1e-12)
    assert values["nf_mu_mean_closed"] == pytest.approx(data1["y"].sum() / 1000 / 0.2,
                                                        rel=1e-12)
    # mu and alpha_1 are confounded: strongly negatively correlated draws
    alpha1 = fit.alpha[..., 0].ravel()
    assert values["nf_corr_mu_alpha1"] == pytest.approx(np.corrcoef(draws["mu"], alpha1)[0, 1],
                                                        rel=1e-9)
    assert values["nf_corr_mu_alpha1"] < -0.5


def test_prediction_uses_the_identified_fit():
    # the notes predicted from their m = 1 fit; the chapter says so and predicts from the
    # identified m = 2 fit (fits2, K = 25), whose estimates the tests above check against ML
    nb = executed("cloning")
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "dc_predict(" in c.source]
    assert cells and all("dc_predict(fits2[-1]" in src for src in cells)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "prediction step on their $m = 1$ fit" in text
