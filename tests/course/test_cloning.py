"""Data cloning for the one-way model (course notes, seed 000: Neyman–Scott and data cloning).

Targets: the ML fit of lmmlib.lmer (itself checked against lme4 elsewhere), the
closed-form marginal likelihood and Fisher information of the one-way model,
brute-force posteriors on a tiny data set, and coda's gelman.diag.

Tolerances: closed forms and deterministic diagnostics to rounding; MCMC
summaries within a few Monte Carlo standard errors (stated at each assertion);
quantities at lmmlib's ML optimum with its spread (tests/conftest.py).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import lmmlib
from lmmlib.course.cloning import (
    Priors,
    clone_fit,
    dc_fit,
    dc_mle,
    dc_predict,
    dc_se,
    dc_vcov,
    dcdiag,
    ml_reference,
    oneway_information,
    posterior_alpha,
    posterior_corr,
)
from lmmlib.course.mcmc import (
    alpha_conditional,
    chisq_diag,
    lambda_max,
    mpsrf,
    mu_conditional,
    oneway_loglik,
    oneway_stats,
    psrf,
    variance_conditionals,
)
from lmmlib.course.neyman_scott import simulate_oneway

KS = (1, 10, 20)


@cache
def oneway(m: int) -> pd.DataFrame:
    # the course set-up (seed 000): n = 100, mu = 2.5, tau = 0.5, sigma = 0.2
    return simulate_oneway(100, m, rng=1234)


@cache
def fits(m: int) -> tuple:
    return tuple(dc_fit(oneway(m), KS, rng=2024 + m))


@cache
def ml2() -> pd.DataFrame:
    return ml_reference(oneway(2))


# --- R-hat: coda 0.19-4 (R 4.2.2), gelman.diag(x, autoburnin = FALSE) on `_coda_array`'s arrays:
# mk <- function(C, Tn, P) lapply(0:(C-1), function(c) { t <- 0:(Tn-1)
#   mcmc(sapply(0:(P-1), function(p)
#     sin(0.37*(t+1)*(p+1) + c) + 0.15*c*(p+1) + cos(0.11*t*(c+1)))) })

def _coda_array(C: int, T: int, P: int) -> np.ndarray:
    t, c, p = np.arange(T)[None, :, None], np.arange(C)[:, None, None], np.arange(P)[None, None, :]
    return np.sin(0.37 * (t + 1) * (p + 1) + c) + 0.15 * c * (p + 1) + np.cos(0.11 * t * (c + 1))


def test_rhat_matches_coda():
    x = _coda_array(3, 50, 3)
    # deterministic arrays, coda's numbers printed to 15 digits: rounding only
    assert psrf(x) == pytest.approx([1.01873581100749, 1.07419410597661, 1.17328691938734],
                                    rel=1e-10)
    assert mpsrf(x) == pytest.approx(1.15371297514007, rel=1e-10)
    assert psrf(_coda_array(4, 40, 1)) == pytest.approx([1.01806918886159], rel=1e-10)


def test_dclone_diagnostics_on_exact_normal_draws():
    # lambdamax.diag = largest eigenvalue of var(as.matrix(x)); chisq.diag is ~0 for MVN draws
    rng = np.random.default_rng(5)
    S = np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    x = rng.multivariate_normal(np.zeros(3), S, size=(3, 4000))
    # the top eigenvalue of a sample covariance of 12000 draws: relative Monte Carlo SE
    # sqrt(2/12000) = 1.3 %, so 5 % is 3.9 SE
    assert lambda_max(x) == pytest.approx(np.linalg.eigvalsh(S)[-1], rel=0.05)
    ms, r2 = chisq_diag(x)
    assert r2 < 0.002 and ms < 0.05
    # skewed (log-normal) draws are far from normal
    ms, r2 = chisq_diag(np.exp(x / 2))
    assert r2 > 0.1 and ms > 1.0


# --- The Gibbs conditionals against a brute-force joint density (tiny unbalanced layout)

TINY = pd.DataFrame({"g": ["a", "b", "b", "c", "c", "c", "d", "d"],
                     "y": [1.3, 0.2, 0.6, 2.1, 1.7, 2.6, 0.9, 1.4]})
PRI = Priors(mu_mean=0.5, mu_var=4.0, a_sigma=3.0, b_sigma=0.6, a_tau=2.5, b_tau=0.8)


def _log_joint(mu, alpha, s2, t2, K):
    """log p(y^(K), α, μ, σ², τ²) term by term from the raw rows (α has shape (K, groups))."""
    codes = pd.factorize(TINY["g"], sort=True)[0]
    y = TINY["y"].to_numpy()
    out = scipy.stats.norm.logpdf(mu, PRI.mu_mean, np.sqrt(PRI.mu_var))
    out += scipy.stats.invgamma.logpdf(s2, PRI.a_sigma, scale=PRI.b_sigma)
    out += scipy.stats.invgamma.logpdf(t2, PRI.a_tau, scale=PRI.b_tau)
    for k in range(K):
        out += scipy.stats.norm.logpdf(y, mu + alpha[k, codes], np.sqrt(s2)).sum()
        out += scipy.stats.norm.logpdf(alpha[k], 0.0, np.sqrt(t2)).sum()
    return out


def _is_constant(values):
    """Equal up to the rounding of sums of log-densities (1e-9 relative is ~1e5 ulps)."""
    v = np.asarray(values)
    return np.ptp(v - v[0]) < 1e-9 * max(1.0, np.abs(v).max())


def test_gibbs_conditionals_match_brute_force_joint():
    st, K = oneway_stats(TINY, "y", "g"), 2
    rng = np.random.default_rng(0)
    alpha = rng.normal(0, 0.7, size=(1, K, 4))
    mu, s2, t2 = np.array([1.1]), np.array([0.3]), np.array([0.5])
    # log(full conditional) − log(joint) must not depend on the updated variable
    (sh_s, r_s), (sh_t, r_t) = variance_conditionals(st, K, mu, alpha, PRI)
    grid = np.linspace(0.05, 2.0, 9)
    assert _is_constant([scipy.stats.invgamma.logpdf(v, sh_s, scale=r_s[0])
                         - _log_joint(mu[0], alpha[0], v, t2[0], K) for v in grid])
    assert _is_constant([scipy.stats.invgamma.logpdf(v, sh_t, scale=r_t[0])
                         - _log_joint(mu[0], alpha[0], s2[0], v, K) for v in grid])
    a_mean, a_sd = alpha_conditional(st, mu, s2, t2)
    diffs = []
    for a in np.linspace(-1.5, 1.5, 7):
        al = alpha[0].copy()
        al[1, 2] = a                              # clone 2, group "c"
        diffs.append(scipy.stats.norm.logpdf(a, a_mean[0, 2], a_sd[0, 2])
                     - _log_joint(mu[0], al, s2[0], t2[0], K))
    assert _is_constant(diffs)
    # μ | σ², τ², y with α integrated out: prior × K copies of the N(μ1, σ²I + τ²ZZ') marginal
    Z = pd.get_dummies(TINY["g"]).to_numpy(float)
    V = s2[0] * np.eye(len(TINY)) + t2[0] * Z @ Z.T
    m_mean, m_prec = mu_conditional(st, K, s2, t2, PRI)
    diffs = [scipy.stats.norm.logpdf(m, m_mean[0], 1 / np.sqrt(m_prec[0]))
             - scipy.stats.norm.logpdf(m, PRI.mu_mean, np.sqrt(PRI.mu_var))
             - K * scipy.stats.multivariate_normal.logpdf(TINY["y"], m * np.ones(len(TINY)), V)
             for m in np.linspace(-1, 3, 9)]
    assert _is_constant(diffs)


def _grid_posterior(K):
    """Posterior means and SDs of (μ, σ², τ²) ∝ prior × L^K by quadrature on a 3-d grid."""
    Z = pd.get_dummies(TINY["g"]).to_numpy(float)
    y, N = TINY["y"].to_numpy(), len(TINY)
    mu = np.linspace(-1.5, 3.5, 121)
    ls2, lt2 = np.linspace(-4.5, 1.5, 121), np.linspace(-5.0, 2.5, 121)
    S2, T2 = np.meshgrid(np.exp(ls2), np.exp(lt2), indexing="ij")
    V = S2[..., None, None] * np.eye(N) + T2[..., None, None] * (Z @ Z.T)
    Vi, logdet = np.linalg.inv(V), np.linalg.slogdet(V)[1]
    r = y[None, :] - mu[:, None]                                       # (μ, N)
    quad = np.einsum("mi,abij,mj->mab", r, Vi, r)
    loglik = -0.5 * (N * np.log(2 * np.pi) + logdet[None] + quad)
    # uniform grid in (μ, log σ², log τ²): the priors of σ², τ² carry the Jacobians σ², τ²
    log_prior_var = (scipy.stats.invgamma.logpdf(S2, PRI.a_sigma, scale=PRI.b_sigma) + np.log(S2)
                     + scipy.stats.invgamma.logpdf(T2, PRI.a_tau, scale=PRI.b_tau) + np.log(T2))
    log_prior_mu = scipy.stats.norm.logpdf(mu, PRI.mu_mean, np.sqrt(PRI.mu_var))
    logpost = K * loglik + log_prior_mu[:, None, None] + log_prior_var[None]
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    vals = [mu[:, None, None], S2[None], T2[None]]
    means = np.array([(w * v).sum() for v in vals])
    sds = np.sqrt([(w * v**2).sum() - m**2 for v, m in zip(vals, means, strict=True)])
    return means, sds


def _batch_mcse(draws: np.ndarray, batches: int = 25) -> np.ndarray:
    """Monte Carlo SE of posterior means by batch means within each chain."""
    C, T, p = draws.shape
    b = draws[:, : T // batches * batches].reshape(C, batches, -1, p).mean(axis=2)
    return b.reshape(-1, p).std(axis=0, ddof=1) / np.sqrt(C * batches)


def test_sampler_reproduces_brute_force_cloned_posterior():
    # K = 2 clones: the posterior is prior × L(θ)², computed on a grid (independent of the sampler)
    means, sds = _grid_posterior(K=2)
    fit = clone_fit(TINY, K=2, n_chains=4, n_iter=6000, burn=500, rng=11, response="y",
                    group="g", priors=PRI)
    mcse = _batch_mcse(fit.draws)
    # posterior means within 4 Monte Carlo SEs, plus the grid quadrature's error (121
    # points per axis: ~0.005 posterior SD)
    assert np.all(np.abs(fit.mean.to_numpy() - means) < 4 * mcse + 0.005 * sds)
    # posterior SDs from ~2000+ effective draws: relative SE ~1.6 %, 5 % is 3 SE
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx(sds, rel=0.05)


# --- The closed-form likelihood and information (cross-checked with lmer's ML fit)

def test_closed_form_loglik_and_information_match_lmer():
    d = oneway(2)
    m = lmmlib.lmer("y ~ 1 + (1 | id)", d, reml=False)
    est = ml2()["estimate"]
    # the closed-form likelihood at lmer's own estimates against lmer's: the same number
    # computed two ways (rounding of a logLik of ~70)
    assert oneway_loglik(est, d) == pytest.approx(m.loglik, abs=1e-8)
    # ML: SE(μ̂) = I_μμ^{-1/2}, lmer's vcov of the intercept (μ is orthogonal to the
    # variances, so the conditional SE is the same closed form; seen 1.3e-7)
    assert ml2().loc["mu", "se"] == pytest.approx(m.se.iloc[0], rel=1e-4)
    # balanced one-way = full exponential family: observed information = expected at the
    # MLE, exactly; at lmer's optimum (within OPT_GAP of the MLE, tests/conftest.py) they
    # differ at first order in its spread, ~1e-4 relative for these 100 groups
    obs, exp_ = (oneway_information(est, d, kind).to_numpy() for kind in ("observed", "expected"))
    assert obs == pytest.approx(exp_, rel=1e-4, abs=1e-6 * np.abs(exp_).max())


def test_m1_likelihood_depends_on_sigma2_plus_tau2_only():
    d = oneway(1)
    # closed form: σ² + τ² = 0.3 in both; rounding only
    assert oneway_loglik([2.5, 0.05, 0.25], d) == pytest.approx(oneway_loglik([2.5, 0.2, 0.1], d),
                                                                abs=1e-10)
    info = oneway_information([2.5, 0.04, 0.25], d).to_numpy()
    assert np.linalg.matrix_rank(info[1:, 1:]) == 1       # σ², τ² not separately identifiable


# --- Data cloning, m = 2: estimates → MLE, K·cov → I(θ̂)⁻¹, λ_max ∝ 1/K, R-hat ≈ 1

def test_dc_estimates_tend_to_ml():
    f1, _, f20 = fits(2)
    ml = ml2()
    post_sd = np.sqrt(np.diag(f20.cov))
    # posterior mean − MLE: O(1/K) bias (mean vs mode of an inverse-gamma-like posterior of
    # shape ≈ K n/2, i.e. ≈ 0.06 posterior SD at K = 20) plus MC error (≈ 0.03 SD, ESS ≳ 1000);
    # 0.5 posterior SD = 0.5 / sqrt(20) ≈ 0.11 ML standard errors
    assert np.all(np.abs(dc_mle(f20) - ml["estimate"]) < 0.5 * post_sd)
    dev = [abs(dc_mle(f)["tau2"] - ml.loc["tau2", "estimate"]) / ml.loc["tau2", "se"]
           for f in (f1, f20)]
    assert dev[1] < dev[0]                                # the prior's pull fades with K


def test_k_times_posterior_covariance_is_inverse_fisher_information():
    f20 = fits(2)[-1]
    # relative MC error of a variance from ~2000 effective draws: sqrt(2/2000) ≈ 3 %, so
    # 15 % is 5 SE (half that for an SD: 8 % is 5 SE); the O(1/K) posterior-vs-Fisher
    # difference at K = 20 is a few % more
    assert np.diag(dc_vcov(f20)) == pytest.approx(ml2()["se"].to_numpy() ** 2, rel=0.15)
    assert dc_se(f20).to_numpy() == pytest.approx(ml2()["se"].to_numpy(), rel=0.08)


def test_dcdiag_identifiable_m2():
    diag = dcdiag(list(fits(2)))
    assert list(diag.columns) == ["n.clones", "lambda.max", "ms.error", "r.squared", "r.hat"]
    assert diag["n.clones"].tolist() == list(KS)
    # λ_max ≈ λ_max(K=1) / K when the parameters are identifiable
    ratio = diag["lambda.max"] * diag["n.clones"] / diag["lambda.max"].iloc[0]
    assert ratio.between(0.75, 1.33).all()
    assert (diag["r.hat"] < 1.05).all()
    assert diag["r.squared"].iloc[-1] < 0.01               # near-normal posterior at K = 20


# --- m = 1 (Neyman–Scott with one replicate): only σ² + τ² is identified

def test_dcdiag_flags_nonidentifiability_m1():
    fs = fits(1)
    diag = dcdiag(list(fs))
    # λ_max stays put instead of falling like 1/K (which would give K·ratio ≈ 1)
    assert diag["lambda.max"].iloc[-1] * KS[-1] > 5 * diag["lambda.max"].iloc[0]
    assert diag["r.hat"].iloc[-1] > 1.1
    corr = posterior_corr(fs[-1])
    assert corr.loc["sigma2", "tau2"] < -0.95
    assert abs(corr.loc["mu", "sigma2"]) < 0.3
    # the identified combination behaves: σ² + τ² monitored instead
    ident = dcdiag([f.monitor("mu", "sum") for f in fs])
    ratio = ident["lambda.max"] * ident["n.clones"] / ident["lambda.max"].iloc[0]
    assert ratio.between(0.75, 1.33).all() and (ident["r.hat"] < 1.05).all()
    # and it estimates the variance of the single observations (sample variance, ML divisor)
    y = oneway(1)["y"]
    # the posterior mean of σ² + τ² at K = 20 clones: MC error ~0.5 % (ESS ≳ 1000 of a
    # posterior with relative SD 0.14/sqrt(20)) plus the O(1/K) prior pull; 2 %
    assert dc_mle(fs[-1].monitor("sum"))["sum"] == pytest.approx(y.var(ddof=0), rel=0.02)


# --- Prediction of the α_i after cloning

def test_dc_predict_matches_blups():
    d, f20 = oneway(2), fits(2)[-1]
    pred = dc_predict(f20, n_draws=4000, rng=3)
    m = lmmlib.lmer("y ~ 1 + (1 | id)", d, reml=False)
    re = m.ranef().set_index("grp")
    blup = re["condval"].to_numpy()
    assert np.corrcoef(pred["mean"], blup)[0, 1] > 0.99
    # E[α_i | y] = E_θ[r_i(θ)(ȳ_i − μ)] with θ ~ N(θ̂, V): second-order (delta-method) value,
    # then the Monte Carlo average must agree within 4 MC standard errors
    st = f20.stats
    b = f20.base.reshape(-1, 3)
    logged = np.column_stack([b[:, 0], 0.5 * np.log(b[:, 1:])])
    th, V = logged.mean(axis=0), f20.K * np.cov(logged, rowvar=False)

    def cond_mean(t):
        r = np.exp(2 * t[2]) / (np.exp(2 * t[2]) + np.exp(2 * t[1]) / st.n)
        return r * (st.ybar - t[0])

    h, E = 1e-3, np.eye(3) * 1e-3
    H = np.array([[(cond_mean(th + E[i] + E[j]) - cond_mean(th + E[i] - E[j])
                    - cond_mean(th - E[i] + E[j]) + cond_mean(th - E[i] - E[j])) / (4 * h * h)
                   for j in range(3)] for i in range(3)])
    second_order = cond_mean(th) + 0.5 * np.einsum("ijn,ij->n", H, V)
    assert np.all(np.abs(pred["mean"].to_numpy() - second_order) < 4 * pred["mcse"].to_numpy())
    # and the plug-in at θ̂_DC is the BLUP at θ̂_ML up to θ̂_DC − θ̂_ML (< 0.1 ML SE here)
    assert np.abs(cond_mean(th) - blup).max() < 0.01 * re["condsd"].min()
    # parameter uncertainty widens the prediction SD a little beyond lme4's condsd
    assert (pred["sd"] / re["condsd"].to_numpy()).between(1.0, 1.2).all()
    assert (pred["2.5%"] < pred["50%"]).all() and (pred["50%"] < pred["97.5%"]).all()


def test_bayesian_alpha_with_one_clone():
    fit = clone_fit(oneway(2), K=1, n_iter=1000, burn=300, rng=8, keep_alpha=True)
    post = posterior_alpha(fit)
    blup = lmmlib.lmer("y ~ 1 + (1 | id)", oneway(2), reml=False).ranef()["condval"].to_numpy()
    assert np.corrcoef(post["mean"], blup)[0, 1] > 0.99
    with pytest.raises(lmmlib.LmmlibError, match="keep_alpha"):
        posterior_alpha(fits(2)[0])


# --- API behaviour

def test_reproducible_and_shapes():
    a = clone_fit(oneway(2), K=3, n_chains=2, n_iter=50, burn=10, thin=5, rng=4)
    b = clone_fit(oneway(2), K=3, n_chains=2, n_iter=50, burn=10, thin=5, rng=4)
    assert np.array_equal(a.draws, b.draws) and a.draws.shape == (2, 10, 3)
    frame = a.frame
    assert frame.columns.tolist() == ["chain", "iteration", "mu", "sigma2", "tau2"]
    assert frame["iteration"].iloc[:2].tolist() == [15, 20]
    s = a.monitor("sum", "icc")
    assert s.draws[..., 0] == pytest.approx(a.draws[..., 1] + a.draws[..., 2])  # identity


def test_errors_name_the_problem():
    with pytest.raises(lmmlib.DataError, match="'resp'"):
        clone_fit(oneway(2), K=2, response="resp")
    with pytest.raises(lmmlib.LmmlibError, match="K must be"):
        clone_fit(oneway(2), K=0)
    with pytest.raises(lmmlib.LmmlibError, match="unknown parameter"):
        fits(2)[0].monitor("rho")
    with pytest.raises(lmmlib.LmmlibError, match="identical"):
        dcdiag([fits(2)[0], fits(2)[1].monitor("mu", "sum")])
