"""Exact RLRT (lmmlib.rlrt) against RLRsim 3.1-8 and against closed forms.

Fixtures: tests/reference/fixtures/rlrsim/*.json, written by
tests/reference/rlrsim.R (R exactRLRT with nsim = 1e5 and a fixed seed).

Monte-Carlo tolerances.  lmmlib draws n = 10,000 values and RLRsim drew
N = 100,000.  Quantiles are compared through the CDF: at RLRsim's p-quantile
q_p, the share of our draws ≤ q_p has standard error
sqrt(p(1−p)(1/n + 1/N)), which needs no density estimate.  The same binomial SE
applies to the share of zeros and to the p-value.  We allow 4 standard errors.
Both sides have fixed seeds, so each comparison is deterministic; a correct
implementation would fail one check with probability 6e-5.
"""

from __future__ import annotations

import warnings
from functools import cache, partial

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from conftest import OPT_GAP, fitted, fixture_data, lme4_fixture, reference

import lmmlib
from lmmlib.engine.pls import z_matrix
from lmmlib.inference.rlrt import (
    RLRTResult,
    _lm_reml_criterion,
    exact_rlrt,
    null_rlrt_sample,
    rlrt_eigenvalues,
)

NSIM = 10_000
SEED = 20240611
N_SE = 4.0

# RLRsim case -> lme4 fixture whose lmmlib fit is the model m
SINGLE = {"pulp": "pulp_reml", "pulp_ml": "pulp_ml", "nepal_ri": "nepal_ri",
          "pig": "pig_reml", "dyestuff": "dyestuff"}
SIMULATED = [*SINGLE, "sleepstudy_slope"]


rlrsim = partial(reference, "rlrsim")  # one RLRsim fixture


@cache
def sleepstudy_models():
    """m (tested slope term only), mA (both terms) and m0 (intercept only), as in RLRsim's docs."""
    d = fixture_data(lme4_fixture("sleepstudy_reml"))
    m = lmmlib.lmer("Reaction ~ Days + (0+Days|Subject)", d)
    mA = lmmlib.lmer("Reaction ~ Days + (1|Subject) + (0+Days|Subject)", d)
    m0 = lmmlib.lmer("Reaction ~ Days + (1|Subject)", d)
    return m, mA, m0


def model_of(name: str):
    """The lmmlib model m of an RLRsim case."""
    return sleepstudy_models()[0] if name == "sleepstudy_slope" else fitted(SINGLE[name])


@cache
def result(name: str) -> RLRTResult:
    """lmmlib's test for one RLRsim case (10,000 draws, fixed seed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)  # pulp_ml: ML fit
        if name == "sleepstudy_slope":
            m, mA, m0 = sleepstudy_models()
            return exact_rlrt(m, NSIM, SEED, mA=mA, m0=m0)
        return exact_rlrt(model_of(name), NSIM, SEED)


def mc_tol(p: float, n: int = NSIM, n_ref: int = 100_000) -> float:
    """N_SE binomial standard errors of a difference of two simulated proportions."""
    return N_SE * np.sqrt(p * (1 - p) * (1 / n + 1 / n_ref))


# -- observed statistic and eigenvalues ------------------------------------------
@pytest.mark.parametrize("name", SIMULATED)
def test_statistic_matches_rlrsim(name):
    # RLRsim exactRLRT()$statistic: a difference of two REML criteria, the null one a
    # closed form, the other lmmlib's optimum (within OPT_GAP) or lme4's default fit
    # (≤ 1.5e-9 above its minimum for these models); 1e-6 relative is ≥ 3e-6 absolute
    # (seen ≤ 1e-9 relative)
    assert result(name).statistic == pytest.approx(rlrsim(name)["statistic"], rel=1e-6)


@pytest.mark.parametrize("name", ["pulp", "nepal_ri", "pig", "dyestuff"])
def test_null_model_reml_criterion(name):
    # RLRsim's reml.H0 = REMLcrit(m) + statistic (fixture); lmmlib's PLS at theta = 0
    fx = rlrsim(name)
    m = model_of(name)
    h0 = _lm_reml_criterion(m.design.X, m.design.y)
    # closed form (lm's REML criterion) against R's sum of two numbers: rounding of R's
    # REML criterion and statistic (and of lme4's optimum, ≤ 1.5e-9 absolute)
    assert h0 == pytest.approx(fx["reml_criterion"] + fx["statistic"], rel=1e-10)
    # the same criterion at θ = 0 by the PLS engine: rounding only
    assert m.pls.objective(np.zeros(1), reml=True) == pytest.approx(h0, rel=1e-10)


@pytest.mark.parametrize("name", SIMULATED)
def test_eigenvalues_match_rlrsim(name):
    # RLRTSim: svd(t(qr.resid(qr(X), Z)))$d^2, stored unscaled as mu_raw
    m = model_of(name)
    mu = rlrt_eigenvalues(m.design.X, z_matrix(m.design.blocks[0]))
    ref = np.array(rlrsim(name)["mu_raw"])
    # closed form (singular values of a fixed matrix) in R and here: rounding relative
    # to the largest, ~1e-15 (the zero eigenvalues come out as rounding noise)
    np.testing.assert_allclose(mu, ref, rtol=0, atol=1e-10 * ref.max())


def test_balanced_one_way_eigenvalues_closed_form():
    # K groups of size m, intercept only: Z'P0Z = m(I - J/K), eigenvalues m (K-1 times) and 0
    m = fitted("pulp_reml")  # 4 operators x 5 sheets
    mu = rlrt_eigenvalues(m.design.X, z_matrix(m.design.blocks[0]))
    # closed forms, rounding of an SVD of O(1) entries only (~1e-15)
    np.testing.assert_allclose(mu, [5, 5, 5, 0], atol=1e-10)
    np.testing.assert_allclose(result("pulp").eigenvalues, [1, 1, 1], atol=1e-10)
    K, size = 7, 3
    Z = np.kron(np.eye(K), np.ones((size, 1)))
    mu = rlrt_eigenvalues(np.ones((K * size, 1)), Z)
    np.testing.assert_allclose(mu, [size] * (K - 1) + [0], atol=1e-10)


# -- null distribution against RLRsim --------------------------------------------
@pytest.mark.parametrize("name", SIMULATED)
def test_share_of_zeros_matches_rlrsim(name):
    ref = rlrsim(name)["share_zero"]
    assert abs(result(name).share_zero - ref) <= mc_tol(ref)


@pytest.mark.parametrize("name", SIMULATED)
def test_null_quantiles_match_rlrsim(name):
    # CDF of our sample at RLRsim's quantiles (those above the point mass at 0)
    fx, sample = rlrsim(name), result(name).null_sample
    for p, q in zip(fx["probs"], fx["quantiles"], strict=True):
        if q > 0:
            assert abs(np.mean(sample <= q) - p) <= mc_tol(p), (p, q)


@pytest.mark.parametrize("name", SIMULATED)
def test_p_value_matches_rlrsim(name):
    ref = rlrsim(name)["p_value"]
    assert abs(result(name).p_value - ref) <= mc_tol(ref) + 1 / NSIM
    if ref == 0:  # nepal, pig, sleepstudy: none of 1e5 RLRsim draws reached the statistic
        assert result(name).p_value == 0


def test_singular_fit_gives_zero_statistic():
    # Dyestuff2: theta = 0. RLRsim reports 5.7e-14, a rounding difference of two
    # REML criteria near 162, and then p = mean(5.7e-14 < sample) = 0.438.
    # lmmlib floors such rounding-level values at 0 and reports p = 1.
    assert rlrsim("dyestuff2")["statistic"] < 1e-12
    res = exact_rlrt(fitted("dyestuff2"), 1000, SEED)
    assert res.statistic == 0.0
    assert res.p_value == 1.0


# -- closed form: balanced one-way ANOVA -----------------------------------------
# With mu = 1 (a = K-1 times) and 0, b = n-p-K+1, RLRT = g(F) for F > 1, else 0, where
# F = (w_a/a)/(w_b/b) ~ F(a, b) under H0 and g(F) = (a+b) log((aF+b)/(a+b)) - a log F
# (Crainiceanu & Ruppert 2004, sec. 3; RLRsim's approx.constantmu).  So the exact
# p-value is the ANOVA F-test's: pulp F = 4.2039, p = 0.02261 (course notes 002).
A, B = 3, 16


def _g(F: np.ndarray) -> np.ndarray:
    return (A + B) * np.log((A * F + B) / (A + B)) - A * np.log(F)


def test_pulp_null_distribution_closed_form():
    sample = null_rlrt_sample([5, 5, 5, 0], n=20, p=1, nsim=100_000, rng=SEED)
    tol = lambda p: N_SE * np.sqrt(p * (1 - p) / 100_000)  # noqa: E731
    p0 = scipy.stats.f.cdf(1.0, A, B)  # P(RLRT = 0) = 0.58176
    assert abs(np.mean(sample == 0) - p0) <= tol(p0)
    for p in (0.75, 0.9, 0.95, 0.99):
        q = _g(scipy.stats.f.ppf(p, A, B))
        assert abs(np.mean(sample <= q) - p) <= tol(p), p


def test_pulp_p_value_equals_anova_f_test():
    res = exact_rlrt(fitted("pulp_reml"), 100_000, SEED)
    F = scipy.optimize.brentq(lambda f: _g(f) - res.statistic, 1.0, 100.0)
    # ANOVA F of pulp (course notes 002; the closed form 0.44667/0.10625 to 12 decimals):
    # the statistic carries lmmlib's optimiser gap (OPT_GAP) and g'(F) = 1.28 > 1 there,
    # so F is within OPT_GAP of it (seen 5e-13); a wrong criterion misses by O(0.1)
    assert F == pytest.approx(4.203921568627, abs=OPT_GAP + 1e-12)
    p = scipy.stats.f.sf(F, A, B)
    assert abs(res.p_value - p) <= N_SE * np.sqrt(p * (1 - p) / 100_000)


def test_ascent_equals_global_maximum_when_unimodal():
    # balanced one-way: the restricted likelihood in lambda is unimodal, so
    # RLRsim's climb-until-decrease search finds the grid maximum
    kw = dict(mu=[5, 5, 5, 0], n=20, p=1, nsim=2000, rng=1)
    np.testing.assert_array_equal(null_rlrt_sample(**kw, search="ascent"),
                                  null_rlrt_sample(**kw, search="global"))


# -- API ------------------------------------------------------------------------
def test_ten_thousand_draws_and_reproducible():
    a = exact_rlrt(fitted("nepal_ri"), 10_000, np.random.default_rng(3))
    b = exact_rlrt(fitted("nepal_ri"), 10_000, 3)
    assert a.nsim == 10_000 and a.null_sample.shape == (10_000,)
    assert np.all(np.isfinite(a.null_sample)) and a.null_sample.min() == 0.0
    np.testing.assert_array_equal(a.null_sample, b.null_sample)
    assert not np.array_equal(a.null_sample, exact_rlrt(fitted("nepal_ri"), 10_000, 4).null_sample)
    assert a.share_zero == np.mean(a.null_sample == 0)


def test_ml_fit_warns_and_uses_restricted_likelihood():
    with pytest.warns(lmmlib.LmmlibWarning, match="fitted by ML"):
        res = exact_rlrt(fitted("pulp_ml"), 100, SEED)
    # as test_statistic_matches_rlrsim (the REML refit of an ML fit)
    assert res.statistic == pytest.approx(rlrsim("pulp_ml")["statistic"], rel=1e-6)


def test_summary_text():
    text = repr(result("pulp"))
    assert "H0: variance of operator (Intercept) = 0" in text
    assert f"RLRT = {result('pulp').statistic:.4f}" in text
    assert "10000 simulated values" in text


@pytest.mark.parametrize("name", ["sleepstudy_reml", "sleepstudy_nocorr0", "penicillin",
                                  "sleepstudy_indep", "pastes_nested"])
def test_not_a_single_scalar_term_raises(name):
    with pytest.raises(lmmlib.LmmlibError, match="single variance component"):
        exact_rlrt(fitted(name), 100, SEED)


def test_bad_arguments_raise():
    m, mA, m0 = sleepstudy_models()
    with pytest.raises(lmmlib.LmmlibError, match="mixed model"):
        exact_rlrt(fitted("pulp_lm"), 100, SEED)
    with pytest.raises(lmmlib.LmmlibError, match="give both"):
        exact_rlrt(m, 100, SEED, mA=mA)
    with pytest.raises(lmmlib.LmmlibError, match="exactly one variance"):
        exact_rlrt(m, 100, SEED, mA=fitted("sleepstudy_reml"), m0=m0)
    with pytest.raises(lmmlib.LmmlibError, match="same observations"):
        exact_rlrt(fitted("pulp_reml"), 100, SEED, mA=mA, m0=m0)
    with pytest.raises(lmmlib.DataError, match="confounded"):
        null_rlrt_sample([0.0, 0.0], n=10, p=2, nsim=10, rng=1)
