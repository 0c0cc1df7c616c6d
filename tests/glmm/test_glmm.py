"""lmmlib.glmer against R lme4 1.1-31 glmer fits and against exact integrals.

Reference fits: tests/reference/fixtures/glmer/*.json, written by
tests/reference/lme4_glmer.R.  lme4's *default* glmer fits stop short (stage 2
by Nelder-Mead, PIRLS to tolPwrss = 1e-7): for cbpp its logLik is 2.8e-4 below
its own tight refit and its Hessian SEs are 1.3 % off, so parameters are
compared with the tight refit (``*_tight``: nloptwrap with xtol_abs = ftol_abs =
1e-12, tolPwrss = 1e-10).

Tolerances against lme4 (see LME4_* below).  lmmlib's optimum is never worse
than lme4's tight refit (by 2e-9 at most, grouseticks_brood_agq10), while the
tight refit still ends up to 6.5e-6 below lmmlib's log-likelihood
(grouseticks_brood).  On the deviance scale that is a gap δf = 1.3e-5, along
which a parameter can move by sqrt(δf)·SE ≈ 4e-3 standard errors (the
curvature bound of tests/conftest.py): observed differences are below 2e-5 SE
on every BLAS kernel tried.  Quantities lme4 obtains by finite differences
(Hessian, SEs) carry its differencing error on top.

The exactness checks integrate the Poisson random-intercept likelihood group by
group with scipy.integrate.quad, independently of lmmlib.
"""

from __future__ import annotations

import warnings
from functools import cache, partial

import numpy as np
import pandas as pd
import pytest
from conftest import fixture_data, reference
from scipy import integrate, optimize, stats
from scipy.special import gammaln

from lmmlib.errors import DataError, DataWarning
from lmmlib.glmm.family import FamilyError
from lmmlib.glmm.fit import glmer

fixture = partial(reference, "glmer")  # one lme4 glmer fixture
NAMES = fixture("index")["models"]

# logLik against lme4's tight refit: 15x the largest gap seen (6.5e-6, lme4 short of
# the optimum); a wrong constant (saturated likelihood, log C(n, k)) or Laplace vs
# AGQ is O(0.01) or more.  lmmlib may be better than lme4, never worse by more than
# lme4's own rounding (1e-6; seen: 2e-9).
LME4_LOGLIK_ATOL = 1e-4
LME4_NOT_WORSE = 1e-6
# Parameters, in standard errors of lme4's tight fit: the curvature bound sqrt(δf) for
# δf = 2·6.5e-6 is 3.6e-3 SE (observed ≤ 2e-5 SE).  Swapping Laplace for AGQ(10)
# moves grouseticks_brood's θ by 0.08 SE (its β by 0.003-0.008 SE: the logLik test
# above is what tells those apart), a wrong family or weights far more.
LME4_PARAM_SE = 4e-3
# lme4's SEs and vcov come from its finite-difference Hessian (deriv12, step 1e-4) of a
# deviance that PIRLS solves to tolPwrss; lmmlib differentiates by its own scheme.  The
# two agree to 1e-4 in the Hessian (test_hessian_matches_lme4), and inverting amplifies
# that by the condition number: seen SEs 3.8e-4 and vcov 7e-4 apart in grouseticks,
# whose uncentred Hessian is poorly conditioned (below 5e-5 for the other fits).
LME4_FD_RTOL = 1e-2


@cache
def fit(name: str):
    """lmmlib's fit of the model a fixture describes."""
    fx = fixture(name)
    return glmer(fx["python_formula"], fixture_data(fx), fx["family"], weights=fx["weights"],
                 nAGQ=fx["nAGQ"])


def lme4_loglik(fx: dict) -> float:
    """lme4's tight logLik on the full-likelihood scale.

    For nAGQ > 1 lme4 1.1 leaves out the saturated log-likelihood (lme4 issue
    #161); the fixture stores it, so it is added back.
    """
    return fx["loglik_tight"] + (fx["saturated_loglik"] if fx["nAGQ"] > 1 else 0.0)


def _rel(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.abs(b)


# -- against lme4 ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_loglik_aic_bic_match_lme4(name):
    fx, m = fixture(name), fit(name)
    ll = lme4_loglik(fx)
    assert m.loglik == pytest.approx(ll, abs=LME4_LOGLIK_ATOL)
    assert m.loglik >= ll - LME4_NOT_WORSE  # never a worse optimum than lme4's tight refit
    # deviance, AIC and BIC are −2 logLik plus exact integers: twice the logLik tolerance
    assert m.deviance == pytest.approx(-2 * ll, abs=2 * LME4_LOGLIK_ATOL)
    assert m.objective == m.deviance  # the same attribute by definition
    assert m.npar == fx["df"]
    assert m.df_resid == fx["df_resid"]
    assert m.aic == pytest.approx(-2 * ll + 2 * fx["df"], abs=2 * LME4_LOGLIK_ATOL)
    assert m.bic == pytest.approx(-2 * ll + np.log(fx["nobs"]) * fx["df"],
                                  abs=2 * LME4_LOGLIK_ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_match_lme4(name):
    fx, m = fixture(name), fit(name)
    assert len(m.fixef) == len(fx["beta"]["names"])
    # β and θ within LME4_PARAM_SE standard errors of lme4's tight refit (curvature)
    se_beta = np.asarray(fx["se_tight"], float)
    np.testing.assert_array_less(np.abs(m.fixef.to_numpy() - fx["beta_tight"]),
                                 LME4_PARAM_SE * se_beta)
    se_theta = m.varpar_se()["se"].to_numpy()
    # (a θ on its bound has no SE; there the curvature bound is the gap itself, ≤ 1e-5)
    tol_theta = np.where(np.isfinite(se_theta), LME4_PARAM_SE * se_theta, 1e-5)
    np.testing.assert_array_less(np.abs(m.theta - np.asarray(fx["theta_tight"], float)),
                                 tol_theta)
    assert m.nobs == fx["nobs"]
    assert dict(m.ngroups) == fx["ngroups"]
    assert m.is_singular == fx["singular"]
    assert m.sigma == fx["sigma"] == 1  # no scale parameter: exactly 1 by definition
    assert m.fit.problem.theta_names() == fx["theta_names"]
    # the variance parameters are named as lme4's profile and confint name them
    assert list(m.varpar_se()["par"]) == [f".sig{i + 1:02d}" for i in range(len(m.theta))]


@pytest.mark.parametrize("name", NAMES)
def test_standard_errors_match_lme4(name):
    fx, m = fixture(name), fit(name)
    # lme4's finite-difference Hessian SEs (LME4_FD_RTOL)
    assert _rel(m.se, fx["se_tight"]).max() < LME4_FD_RTOL
    V = np.array(fx["vcov_tight"])
    assert np.abs(m.vcov.to_numpy() - V).max() < LME4_FD_RTOL * np.abs(np.diag(V)).max()
    # lme4's use.hessian = FALSE covariance (from the PIRLS factor R_X), of its *default*
    # fit: no differencing, but evaluated at lme4's default optimum, whose θ is up to
    # 1e-3 relative off (cbpp, verbagg100); seen ≤ 4.6e-4
    assert _rel(np.diag(m.vcov_pirls()), np.diag(fx["vcov_nohess"])).max() < 2e-3


@pytest.mark.parametrize("name", NAMES)
def test_hessian_matches_lme4(name):
    fx, m = fixture(name), fit(name)
    H = np.array(fx["hessian_tight"])  # lme4's deriv12 Hessian of the deviance in (θ, β)
    # both are finite-difference Hessians of the same deviance at optima 2e-5 SE apart;
    # they differ by the differencing errors (truncation with step 1e-4, PIRLS noise
    # divided by the squared step), relative to the largest entry; seen ≤ 1e-4
    assert np.abs(m.fit.hessian - H).max() < 1e-3 * np.abs(H).max()


@pytest.mark.parametrize("name", NAMES)
def test_varcorr_and_ranef_match_lme4(name):
    fx, m = fixture(name), fit(name)
    ref = pd.DataFrame(fx["varcorr"])
    ours = m.varcorr
    assert list(ours["group"]) == list(ref["group"])  # no Residual row for GLMMs
    # lme4's *default* fit's SDs (varcorr): its θ is up to 1e-3 relative off (the
    # default stops short, see the module docstring); seen 3e-4 (cbpp)
    np.testing.assert_allclose(ours["sdcor"], ref["sdcor"], rtol=2e-3)
    re = m.ranef(condvar=True)
    ref_re = pd.DataFrame(fx["ranef"])
    assert list(re["grp"]) == list(ref_re["grp"].astype(str))
    # conditional modes of the tight refit: they move with (θ, β), by up to LME4_PARAM_SE
    # standard errors of 0.1-0.2 here, i.e. ~5e-4 (seen 8e-6); a wrong PIRLS weight or
    # link moves them by O(0.1)
    np.testing.assert_allclose(re["condval"], fx["ranef_tight"]["condval"], atol=1e-3)
    # conditional SDs: 1/sqrt of the PIRLS curvature at the modes, no differencing;
    # they move with (θ, β) as the modes do (seen 3.4e-6 relative)
    np.testing.assert_allclose(re["condsd"], fx["ranef_tight"]["condsd"], rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_fitted_and_residuals_match_lme4(name):
    fx, m = fixture(name), fit(name)
    # against lme4's *default* fit (fitted, linpred, residuals are not stored for the
    # tight refit): η = Xβ + Zb moves with β and the modes, which lme4's default fit has
    # up to ~1e-3 off (relative for μ, absolute on the link scale); seen ≤ 8e-4
    np.testing.assert_allclose(m.fitted, fx["fitted"], rtol=2e-3)
    np.testing.assert_allclose(m.predict(), fx["linpred"], atol=2e-3)
    np.testing.assert_allclose(m.resid("pearson"), fx["pearson"], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(m.residuals, fx["devresid"], atol=2e-3)
    # lme4's deviance() is the sum of squared deviance residuals (lme4 issue #375); a
    # sum of O(100) such terms: relative 1e-4 (seen 3.5e-5); missing the prior weights or
    # the penalty ‖u‖² would change it by > 1 %
    assert (m.residuals ** 2).sum() == pytest.approx(fx["deviance_lme4"], rel=1e-4)


def test_agq_loglik_on_lme4_scale():
    # lme4 1.1's nAGQ = 10 logLik omits the saturated log-likelihood (issue #161)
    fx, m = fixture("grouseticks_brood_agq10"), fit("grouseticks_brood_agq10")
    assert m.loglik - m.saturated_loglik == pytest.approx(fx["loglik_tight"],
                                                          abs=LME4_LOGLIK_ATOL)
    # Σ log p(y | μ = y): a closed form of the data, no fit involved; rounding only
    assert m.saturated_loglik == pytest.approx(fx["saturated_loglik"], rel=1e-12)
    assert "nAGQ = 10" in str(m.summary())


def test_binomial_proportions_equal_expanded_binary_data():
    # cbpp as incidence/size with weights=size, and as one 0/1 row per animal: the
    # same likelihood up to sum log C(size, incidence) (lme4 gives the same, see fixtures)
    agg, ones = fit("cbpp"), fit("cbpp01")
    # two optima of one likelihood, each polished by a Newton step (lmmlib.glmm): their
    # log-likelihoods agree to ~1e-12, which the curvature turns into ~1e-6 SE; 1e-5
    # absolute is 5e-5 of the SEs (0.2-0.4) and catches any lost weight (seen 5e-9)
    np.testing.assert_allclose(agg.fixef.to_numpy(), ones.fixef.to_numpy(), atol=1e-5)
    np.testing.assert_allclose(agg.theta, ones.theta, atol=1e-5)
    # SEs from each fit's central-difference Hessian with steps of 1 % of an SE: the same
    # truncation error on both, rounding noise ~1e-8 relative (seen 1e-9)
    np.testing.assert_allclose(agg.se.to_numpy(), ones.se.to_numpy(), rtol=1e-3)
    d = fixture_data(fixture("cbpp"))
    n, k = d["size"].to_numpy(float), d["incidence"].to_numpy(float)
    log_choose = np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    # closed form: the difference is the binomial constant (56.8 here), up to the two
    # optima's gaps (~1e-12, seen 3e-14)
    assert agg.loglik - ones.loglik == pytest.approx(log_choose, abs=1e-5)
    d01 = fixture_data(fixture("cbpp01"))
    as_bool = glmer("y ~ period + (1 | herd)", d01.assign(y=d01["y"] == 1), "binomial")
    # a bool response becomes the same 0/1 floats: the same fit, to the optimiser's
    # reproducibility (seen exactly equal on every kernel)
    assert as_bool.loglik == pytest.approx(ones.loglik, abs=1e-9)


def test_uncentred_covariate_gives_the_reparametrised_fit():
    # TICKS ~ YEAR + HEIGHT vs lme4's centred cHEIGHT = HEIGHT - mean: the same model.
    # lme4's own default fit of the uncentred one has SEs 3x off (see fixture warnings).
    raw, cen = fit("grouseticks"), fit("grouseticks_c")
    # one likelihood in two parametrisations: the optima agree to the optimiser's
    # accuracy (seen 5e-12); lme4's default fit of the raw one is 1.5e-8 off
    assert raw.loglik == pytest.approx(cen.loglik, abs=1e-6)
    mean_h = fixture_data(fixture("grouseticks"))["HEIGHT"].mean()
    V = cen.vcov.to_numpy()  # order: (Intercept), YEAR96, YEAR97, cHEIGHT
    var_int = V[0, 0] + mean_h**2 * V[3, 3] - 2 * mean_h * V[0, 3]
    # closed form (linear reparametrisation of β) applied to finite-difference Hessians
    # taken in different coordinates: their truncation errors differ, ~1e-5 relative
    # (seen 5e-6); 3x off would be lme4's own failure on the raw fit
    assert raw.se.iloc[0] == pytest.approx(np.sqrt(var_int), rel=1e-3)
    np.testing.assert_allclose(raw.se.iloc[1:], cen.se.iloc[1:], rtol=1e-3)
    # the intercepts map exactly; the optima's β agree to ~1e-6 SE (seen 1e-7 relative)
    assert raw.fixef.iloc[0] == pytest.approx(cen.fixef.iloc[0] - mean_h * cen.fixef.iloc[3],
                                              rel=1e-4)


# -- against exact one-dimensional integrals ------------------------------------------

@cache
def small_poisson():
    """Eight groups of four counts, log μ = 0.5 + b, b ~ N(0, 1) (seeded)."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(8), 4)
    y = rng.poisson(np.exp(0.5 + rng.standard_normal(8))[g])
    data = pd.DataFrame({"y": y, "g": [f"g{i}" for i in g]})
    return data, glmer("y ~ 1 + (1 | g)", data, "poisson")


def _group_integrals(y: np.ndarray, beta0: float, sd: float):
    """−2 log ∫ Π p(y_j | e^{β0 + sd·b}) φ(b) db, exact (quad) and Laplace; g″, g‴, g⁗."""
    const = gammaln(y + 1).sum()

    def g(b):  # −log of the integrand
        eta = beta0 + sd * b
        return np.sum(np.exp(eta) - y * eta) + const + 0.5 * b * b + 0.5 * np.log(2 * np.pi)

    # the mode: bracketed search, then Newton on g'(b) = sd (Σμ − Σy) + b with the exact
    # g''(b) = sd² Σμ + 1 (g is convex).  The bounded search alone stops within ~1e-8
    # of the mode (scipy's sqrt(eps)·|b|), and the Laplace term log g''(b̂) is first-order
    # in that error: ~5e-8 over the eight groups, depending on the rounding of the
    # inputs; after Newton the mode is exact to rounding.
    bhat = optimize.minimize_scalar(g, bounds=(-10, 10), method="bounded",
                                    options={"xatol": 1e-12}).x
    for _ in range(4):  # quadratic convergence from ~1e-8: 1e-16 after two steps
        mu_sum = len(y) * np.exp(beta0 + sd * bhat)
        bhat -= (sd * (mu_sum - y.sum()) + bhat) / (sd**2 * mu_sum + 1)
    s = len(y) * np.exp(beta0 + sd * bhat)  # Σ μ_j: all μ_j of a group are equal
    d2, d3, d4 = sd**2 * s + 1, sd**3 * s, sd**4 * s
    # the prior factor e^{-b²/2} makes the integrand < e^{-400} beyond ±30 of the mode
    exact = integrate.quad(lambda b: np.exp(g(bhat) - g(b)), bhat - 30, bhat + 30,
                           epsabs=0, epsrel=1e-13, limit=200, points=[bhat])[0]
    exact_dev = 2 * g(bhat) - 2 * np.log(exact)
    laplace_dev = 2 * g(bhat) + np.log(d2) - np.log(2 * np.pi)
    return exact_dev, laplace_dev, (d2, d3, d4)


def test_agq_equals_exact_integral_and_laplace_has_its_known_error():
    data, m = small_poisson()
    beta0, sd = m.fixef.iloc[0], m.theta[0]
    parts = [_group_integrals(grp["y"].to_numpy(float), beta0, sd)
             for _, grp in data.groupby("g")]
    exact = sum(p[0] for p in parts)
    laplace = sum(p[1] for p in parts)
    theta, beta = m.theta, m.fixef.to_numpy()
    # closed form: lmmlib's Laplace deviance is the sum of the per-group Laplace formulas
    # at the same (θ, β); both modes are exact to rounding (PIRLS stops at a Newton
    # decrement of 1e-20), so only the rounding of ~40 terms of a deviance of 117 is
    # left, ~1e-13 (seen 1e-14 on every kernel); 1e-9 ≈ 1e-11 relative
    assert m.deviance == pytest.approx(laplace, abs=1e-9)
    assert m.deviance_at(theta, beta) == pytest.approx(laplace, abs=1e-9)
    # AGQ against quad (epsrel 1e-13): with 25 nodes Gauss–Hermite still has its
    # truncation error (3.4e-9, the same on every kernel; 3e-5 with 10 nodes); with 50
    # it is exact to rounding (seen 1e-13)
    assert m.deviance_at(theta, beta, nAGQ=25) == pytest.approx(exact, abs=1e-8)
    assert m.deviance_at(theta, beta, nAGQ=50) == pytest.approx(exact, abs=1e-10)
    # Laplace's leading error term: log I = Laplace + log(1 − g⁗/8g″² + 5g‴²/24g″³) + O(m⁻²)
    corr = sum(-2 * np.log(1 - d4 / (8 * d2**2) + 5 * d3**2 / (24 * d2**3))
               for *_, (d2, d3, d4) in parts)
    err = exact - laplace
    # the Laplace error is real (−0.077 here) and its leading term explains it to within
    # the next order, O(1/g″) ≈ 10 % for counts of this size (seen 3.4 %)
    assert abs(err) > 1e-3
    assert abs(err - corr) < 0.1 * abs(err)


def test_agq_fit_maximises_the_exact_likelihood():
    data, _ = small_poisson()
    m = glmer("y ~ 1 + (1 | g)", data, "poisson", nAGQ=30)
    beta0, sd = m.fixef.iloc[0], m.theta[0]
    exact = sum(_group_integrals(grp["y"].to_numpy(float), beta0, sd)[0]
                for _, grp in data.groupby("g"))
    # AGQ(30) is within its truncation error (< 3.4e-9, the 25-node one; seen 3e-10) of
    # quad's exact integral at the same point
    assert m.deviance == pytest.approx(exact, abs=1e-8)
    # a maximum: 0.01 away (≈ 0.03 SE) the exact deviance is higher by ½H·0.01² ≈ 6e-4,
    # far above rounding and AGQ(30)'s truncation error
    for db, ds in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        other = sum(_group_integrals(grp["y"].to_numpy(float), beta0 + db, sd + ds)[0]
                    for _, grp in data.groupby("g"))
        assert other > exact


# -- prediction, simulation, display --------------------------------------------------

def test_predict_response_is_exp_link_and_new_levels_get_population():
    m = fit("grouseticks_brood")
    # identities of one fit's numbers: μ = exp(η), fitted = μ at the mode.  η may be
    # formed by different products (rounding a few ulps of |η| < 5, i.e. < 1e-14 in μ)
    np.testing.assert_allclose(m.predict(type="response"), np.exp(m.predict()), rtol=1e-12)
    np.testing.assert_allclose(m.predict(type="response"), m.fitted, rtol=1e-12)
    new = pd.DataFrame({"YEAR": pd.Categorical(["96", "96"], categories=["95", "96", "97"]),
                        "BROOD": ["501", "not-a-brood"]})
    with pytest.raises(DataError, match="'not-a-brood' of 'BROOD'"):
        m.predict(new)  # lme4's default: allow.new.levels = FALSE
    eta = m.predict(new, allow_new_levels=True)
    beta = m.fixef.to_numpy()
    b501 = m.ranef_arrays()["BROOD"].loc["501", "(Intercept)"]
    # closed form: η = β0 + β(YEAR96) (+ the brood's mode) from the fit's own numbers;
    # rounding of a sum of three terms only
    assert eta.iloc[0] == pytest.approx(beta[0] + beta[1] + b501, rel=1e-12)
    assert eta.iloc[1] == pytest.approx(beta[0] + beta[1], rel=1e-12)
    assert m.predict(new, re=False).iloc[0] == pytest.approx(beta[0] + beta[1], rel=1e-12)


def test_simulated_counts_have_the_lognormal_mean():
    # E[y] = exp(Xβ + θ²/2) for a Poisson random intercept with SD θ (closed form)
    m = fit("grouseticks_brood")
    sims = m.simulate(400, rng=np.random.default_rng(7))
    assert sims.shape == (400, m.nobs)
    expected = np.exp(m.predict(re=False).to_numpy() + m.theta[0] ** 2 / 2).mean()
    # Monte Carlo: the 400 simulated means scatter (new brood effects each time) with a
    # standard error of 1.3 % of the mean; 5 % is 3.8 SE (seen −2.1 %)
    assert sims.mean() == pytest.approx(expected, rel=0.05)
    again = m.simulate(2, rng=np.random.default_rng(7))
    # the same seed gives the same random stream through the same code: bit-identical
    np.testing.assert_array_equal(again, m.simulate(2, rng=np.random.default_rng(7)))


def test_simulated_binomial_proportions_use_the_trials():
    m = fit("cbpp")
    sims = m.simulate(50, rng=np.random.default_rng(3))
    size = fixture_data(fixture("cbpp"))["size"].to_numpy()
    # proportions k/n times n are whole numbers up to the rounding of k/n (≤ 1e-14)
    np.testing.assert_allclose(sims * size, np.round(sims * size), atol=1e-9)
    assert ((sims >= 0) & (sims <= 1)).all()


def test_summary_has_lme4_layout():
    m = fit("cbpp")
    text = str(m.summary())
    for line in ["Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)",
                 " Family: binomial  ( logit )", "Weights: size", "Number of obs: 56, groups:  "
                 "herd, 15", "Pr(>|z|)", "Correlation of Fixed Effects:"]:
        assert line in text
    assert "Residual" not in text
    z = m.summary().fixed["z value"].to_numpy()
    p = m.summary().fixed["Pr(>|z|)"].to_numpy()
    # closed form of the printed z values (numpy's default rtol 1e-7: the table may round)
    np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(z)))
    assert "<table" in m._repr_html_()


# -- errors ------------------------------------------------------------------------

def test_bad_family_is_a_clear_error():
    data, _ = small_poisson()
    with pytest.raises(FamilyError, match="unknown family 'gaussian'.*lmer"):
        glmer("y ~ 1 + (1 | g)", data, "gaussian")
    with pytest.raises(FamilyError, match="poisson"):
        glmer("y ~ 1 + (1 | g)", data, "inverse.gaussian")


@pytest.mark.filterwarnings("ignore::lmmlib.errors.SingularFitWarning")
def test_impossible_responses_and_weights_are_errors():
    data, _ = small_poisson()
    with pytest.raises(DataError, match="binomial"):
        glmer("y ~ 1 + (1 | g)", data, "binomial")  # counts > 1
    with pytest.raises(DataError, match="negative"):
        glmer("z ~ 1 + (1 | g)", data.assign(z=data["y"] - 3), "poisson")
    with pytest.raises(DataError, match="weights column 'n'"):
        glmer("y ~ 1 + (1 | g)", data, "poisson", weights="n")
    with pytest.raises(DataError, match="weights has 3 values"):
        glmer("y ~ 1 + (1 | g)", data, "poisson", weights=[1, 2, 3])
    with pytest.warns(DataWarning, match="non-integer numbers of successes"):
        glmer("p ~ 1 + (1 | g)", data.assign(p=0.3 + 0.1 * (data["y"] > 1)), "binomial",
              weights=np.full(len(data), 4.0))


def test_nagq_limits():
    fx = fixture("grouseticks")
    with pytest.raises(DataError, match="single scalar"):
        glmer(fx["python_formula"], fixture_data(fx), "poisson", nAGQ=5)
    data, _ = small_poisson()
    with pytest.raises(DataError, match="nAGQ must be"):
        glmer("y ~ 1 + (1 | g)", data, "poisson", nAGQ=-1)


def test_start_from_theta_and_fixef_skips_stage_one():
    m = fit("cbpp")
    data = fixture_data(fixture("cbpp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = glmer("prop ~ period + (1 | herd)", data, "binomial", weights="size",
                      start={"theta": m.theta, "fixef": m.fixef.to_numpy()})
    assert again.fit.opt_stage1 is None
    # started at the optimum, stage 2 and the Newton polish return to it: the two
    # log-likelihoods agree far inside the optimiser's accuracy (seen 5e-12)
    assert again.loglik == pytest.approx(m.loglik, abs=1e-7)
