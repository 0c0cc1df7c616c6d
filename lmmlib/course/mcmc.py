"""MCMC for data cloning: the K-cloned one-way model's Gibbs sampler and its diagnostics.

The model is ``Y_ij = μ + α_i + ε_ij`` with α_i ~ N(0, τ²) and ε_ij ~ N(0, σ²)
(i = 1..n groups, j = 1..n_i replicates).  Data cloning (Lele, Dennis & Lutscher
2007, *Ecology Letters* 10:551–563) copies the data K times; each copy k gets
its own latent effects α_ik, and (μ, σ², τ²) are shared.  With sufficient
statistics n_i, ȳ_i and S_i = Σ_j (y_ij − ȳ_i)², the sampler alternates two
blocks, both drawn exactly:

1. (μ, α) | σ², τ², y.  First μ with the α integrated out: the cloned group
   means are independent N(μ, τ² + σ²/n_i), so under the prior μ ~ N(m₀, v₀)

       μ | σ², τ², y ~ N(M, 1/P),  P = K Σ_i w_i + 1/v₀,
       M = (K Σ_i w_i ȳ_i + m₀/v₀) / P,  w_i = 1 / (τ² + σ²/n_i);

   then every α_ik | μ, σ², τ², y ~ N(r_i (ȳ_i − μ), r_i σ²/n_i) with
   r_i = τ² / (τ² + σ²/n_i).  Drawing μ marginally (rather than given α) is
   the collapsed, blocked version of "μ | rest": it is still an exact draw
   from a conditional of the joint posterior and it removes the μ–α coupling.
2. (σ², τ²) | μ, α, which are conditionally independent inverse-gamma under
   the priors σ² ~ IG(a_σ, b_σ), τ² ~ IG(a_τ, b_τ):

       σ² | · ~ IG(a_σ + K N/2, b_σ + ½ Σ_k Σ_i [S_i + n_i (ȳ_i − μ − α_ik)²]),
       τ² | · ~ IG(a_τ + K n/2, b_τ + ½ Σ_k Σ_i α_ik²),    N = Σ_i n_i.

Every array operation runs over chains and clones at once (α has shape
(chains, K, n)), so one sweep costs a handful of vectorised operations.

The default priors are vague and conjugate: μ ~ N(0, 10) (the course's
``dnorm(0, 0.1)``, a precision of 0.1) and IG(0.001, 0.001) for both
variances, the classic BUGS choice, close to the course's log-normal priors
with precision 0.001 on log σ and log τ (both are nearly flat in log variance).
Under data cloning the prior's influence vanishes as K grows, because the
cloned likelihood is the likelihood to the power K.

R-hat follows coda's ``gelman.diag`` (point estimates, ``transform = FALSE``,
no automatic burn-in: the draws passed are already past the burn-in);
``lambda_max`` and ``chisq_diag`` are dclone's ``lambdamax.diag`` and
``chisq.diag``.  :func:`oneway_loglik` is the closed-form marginal
log-likelihood the cloned posterior concentrates on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_bool, as_count, as_float, describe
from ..errors import ArgumentError, DataError, LmmlibError

__all__ = ["OnewayStats", "Priors", "alpha_conditional", "as_params", "check_run", "chisq_diag",
           "gibbs_oneway", "lambda_max", "mpsrf", "mu_conditional", "oneway_loglik",
           "oneway_stats", "psrf", "variance_conditionals"]


@dataclass(frozen=True)
class Priors:
    """Conjugate priors: μ ~ N(mu_mean, mu_var), σ² ~ IG(a_sigma, b_sigma), τ² ~ IG(a_tau, b_tau).

    IG(a, b) has density ∝ x^(−a−1) exp(−b/x).
    """

    mu_mean: float = 0.0
    mu_var: float = 10.0
    a_sigma: float = 0.001
    b_sigma: float = 0.001
    a_tau: float = 0.001
    b_tau: float = 0.001

    def __post_init__(self) -> None:
        as_float(self.mu_mean, "prior parameter mu_mean")
        bad = []
        for k in ("mu_var", "a_sigma", "b_sigma", "a_tau", "b_tau"):
            # an infinite prior variance of mu is a flat prior; the others must be finite
            value = as_float(getattr(self, k), f"prior parameter {k}", finite=k != "mu_var")
            if not value > 0:
                bad.append(k)
        if bad:
            raise LmmlibError(f"prior parameters must be positive: {', '.join(bad)}")


@dataclass(frozen=True)
class OnewayStats:
    """Sufficient statistics of the one-way layout.

    Attributes
    ----------
    levels : Index
        Group labels, in the order of the arrays.
    n : ndarray
        Replicates per group n_i.
    ybar : ndarray
        Group means ȳ_i.
    ss : ndarray
        Within-group sums of squares S_i = Σ_j (y_ij − ȳ_i)².
    """

    levels: pd.Index
    n: np.ndarray
    ybar: np.ndarray
    ss: np.ndarray

    @property
    def nobs(self) -> int:
        """Total number of observations N = Σ n_i."""
        return int(self.n.sum())


def oneway_stats(data: pd.DataFrame, response: str = "y", group: str = "id") -> OnewayStats:
    """Group sizes, means and within-group sums of squares of a one-way layout.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per observation.
    response, group : str
        Column names of the response and of the grouping factor.

    Returns
    -------
    OnewayStats

    Raises
    ------
    DataError
        A column is missing, the response is not finite, or there are fewer
        than two groups.
    """
    if not isinstance(data, pd.DataFrame):
        raise ArgumentError(f"data must be a DataFrame, got {describe(data)}")
    for name, col in (("response", response), ("group", group)):
        if not isinstance(col, str):
            raise ArgumentError(f"{name} must be a column name (a string), got {describe(col)}")
    missing = [c for c in (response, group) if c not in data.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing))} not in the data "
                        f"(columns: {', '.join(map(str, data.columns))})")
    y = pd.to_numeric(data[response], errors="coerce").to_numpy(float)
    if not np.isfinite(y).all():
        raise DataError(f"response {response!r} has missing or non-finite values")
    g = data[group]
    if g.isna().any():
        raise DataError(f"grouping factor {group!r} has missing values")
    grouped = pd.Series(y, index=data.index).groupby(g, sort=True, observed=True)
    n = grouped.size()
    if len(n) < 2:
        raise DataError(f"grouping factor {group!r} needs at least two levels, has {len(n)}")
    ybar = grouped.mean()
    ss = grouped.apply(lambda s: float(((s - s.mean()) ** 2).sum()))
    return OnewayStats(levels=n.index, n=n.to_numpy(float), ybar=ybar.to_numpy(float),
                       ss=ss.to_numpy(float))


def oneway_loglik(params: Sequence[float], data: pd.DataFrame | OnewayStats,
                  response: str = "y", group: str = "id") -> float:
    """Marginal log-likelihood of the one-way model, in closed form.

    Group i's responses are N(μ1, σ²I + τ²J); the covariance has eigenvalue
    σ² (n_i − 1 times) and λ_i = σ² + n_i τ² (along 1), so

        ℓ = −½ Σ_i [n_i log 2π + (n_i − 1) log σ² + log λ_i + S_i/σ² + n_i (ȳ_i − μ)²/λ_i].

    Parameters
    ----------
    params : (mu, sigma2, tau2)
    data : DataFrame or OnewayStats
    response, group : str
        Column names (for a DataFrame).

    Returns
    -------
    float (−inf outside the parameter space)
    """
    mu, s2, t2 = as_params(params)
    st = data if isinstance(data, OnewayStats) else oneway_stats(data, response, group)
    if not (s2 > 0 and t2 >= 0):
        return -np.inf
    lam = s2 + st.n * t2
    return float(-0.5 * np.sum(st.n * np.log(2 * np.pi) + (st.n - 1) * np.log(s2) + np.log(lam)
                               + st.ss / s2 + st.n * (st.ybar - mu) ** 2 / lam))


def as_params(params: Sequence[float]) -> tuple[float, float, float]:
    """``params`` as the three floats (μ, σ², τ²), or an error naming ``params``."""
    try:
        values = np.asarray(params, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"params must be (mu, sigma2, tau2), got {describe(params)}") from exc
    if values.shape != (3,):
        raise ArgumentError(f"params must be the three numbers (mu, sigma2, tau2), got shape "
                            f"{values.shape}")
    return float(values[0]), float(values[1]), float(values[2])


def check_run(K: int, n_chains: int, n_iter: int, burn: int, thin: int) -> tuple[int, ...]:
    """The run lengths as ints, each an integer of at least its minimum, by name."""
    out = (as_count(K, "K"), as_count(n_chains, "n_chains"), as_count(n_iter, "n_iter", 2),
           as_count(burn, "burn", 0), as_count(thin, "thin"))
    if out[2] // out[4] < 2:
        raise ArgumentError(f"n_iter // thin must be at least 2, got {n_iter} // {thin}")
    return out


def default_inits(stats: OnewayStats, n_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-dispersed starting values of σ² and τ², one pair per chain.

    Moment estimates (pooled within-group variance for σ², or half the
    variance of the group means when every group has one observation;
    τ² = var(ȳ_i) − mean(σ²/n_i), at least a tenth of var(ȳ_i)), multiplied
    by 4^u and 4^−u for u evenly spaced over [−1, 1] across the chains: from
    (σ²/4, 4τ²) to (4σ², τ²/4), so that with one observation per group the
    chains start at different places along the ridge σ² + τ² = const.
    """
    vbar = float(np.var(stats.ybar, ddof=1)) or 1.0
    df_within = stats.nobs - len(stats.n)
    s2 = float(stats.ss.sum() / df_within) if df_within > 0 else vbar / 2
    if not s2 > 0:
        s2 = vbar / 2
    t2 = max(vbar - float(np.mean(s2 / stats.n)), vbar / 10)
    u = np.linspace(-1.0, 1.0, n_chains) if n_chains > 1 else np.zeros(1)
    return s2 * 4.0**u, t2 * 4.0**-u


def mu_conditional(stats: OnewayStats, K: int, s2: np.ndarray, t2: np.ndarray,
                   pri: Priors) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision of μ | σ², τ², y (α integrated out), one per chain."""
    w = 1.0 / (t2[:, None] + s2[:, None] / stats.n)                    # (C, n)
    prec = K * w.sum(axis=1) + 1.0 / pri.mu_var
    return (K * (w * stats.ybar).sum(axis=1) + pri.mu_mean / pri.mu_var) / prec, prec


def alpha_conditional(stats: OnewayStats, mu: np.ndarray, s2: np.ndarray,
                      t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of α_ik | μ, σ², τ², y, shape (C, n) (the same for every clone k)."""
    r = t2[:, None] / (t2[:, None] + s2[:, None] / stats.n)            # shrinkage r_i
    return r * (stats.ybar - mu[:, None]), np.sqrt(r * s2[:, None] / stats.n)


def variance_conditionals(stats: OnewayStats, K: int, mu: np.ndarray, alpha: np.ndarray,
                          pri: Priors) -> tuple[tuple[float, np.ndarray], tuple[float, np.ndarray]]:
    """Inverse-gamma (shape, rate) of σ² | μ, α, y and of τ² | α; α has shape (C, K, n)."""
    dev = stats.ybar - mu[:, None, None] - alpha                        # (C, K, n)
    rss = K * stats.ss.sum() + np.einsum("ckn,n->c", dev * dev, stats.n)
    ssa = np.einsum("ckn,ckn->c", alpha, alpha)
    return ((pri.a_sigma + 0.5 * K * stats.nobs, pri.b_sigma + 0.5 * rss),
            (pri.a_tau + 0.5 * K * stats.n.size, pri.b_tau + 0.5 * ssa))


def _sweep(stats: OnewayStats, K: int, s2: np.ndarray, t2: np.ndarray, pri: Priors,
           rng: np.random.Generator):
    """One Gibbs sweep: block 1 (μ, α) | σ², τ², then block 2 (σ², τ²) | μ, α."""
    C = s2.size
    mean, prec = mu_conditional(stats, K, s2, t2, pri)
    mu = mean + rng.standard_normal(C) / np.sqrt(prec)
    a_mean, a_sd = alpha_conditional(stats, mu, s2, t2)
    alpha = a_mean[:, None, :] + a_sd[:, None, :] * rng.standard_normal((C, K, stats.n.size))
    (sh_s, rate_s), (sh_t, rate_t) = variance_conditionals(stats, K, mu, alpha, pri)
    return mu, alpha, rate_s / rng.gamma(sh_s, size=C), rate_t / rng.gamma(sh_t, size=C)


def _inits(inits: tuple[np.ndarray, np.ndarray], n_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """Starting σ² and τ² given by the user, one per chain (a scalar serves all chains)."""
    try:
        s2, t2 = (np.broadcast_to(np.asarray(v, float), (n_chains,)).copy() for v in inits)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"inits must be (sigma2, tau2), each a number or {n_chains} "
                            f"numbers (one per chain), got {describe(inits)}") from exc
    return s2, t2


def gibbs_oneway(stats: OnewayStats, K: int, n_chains: int, n_iter: int, burn: int,
                 thin: int, priors: Priors, rng: np.random.Generator,
                 inits: tuple[np.ndarray, np.ndarray] | None = None,
                 keep_alpha: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the two-block Gibbs sampler on the K-cloned one-way model.

    Parameters
    ----------
    stats : OnewayStats
        Sufficient statistics of the (uncloned) data.
    K : int
        Number of clones.
    n_chains, n_iter, burn, thin : int
        Chains, iterations kept after the burn-in (before thinning), burn-in
        iterations and thinning interval.
    priors : Priors
        Prior parameters.
    rng : Generator
        Source of randomness.
    inits : (ndarray, ndarray), optional
        Starting σ² and τ² per chain (default ``default_inits(stats, n_chains)``).
    keep_alpha : bool
        Also return the draws of the first clone's α.

    Returns
    -------
    draws : ndarray of shape (n_chains, n_iter // thin, 3)
        μ, σ², τ² per chain and kept iteration.
    alpha : ndarray of shape (n_chains, n_iter // thin, n) or None
    """
    K, n_chains, n_iter, burn, thin = check_run(K, n_chains, n_iter, burn, thin)
    keep_alpha = as_bool(keep_alpha, "keep_alpha")
    if not isinstance(priors, Priors):
        raise ArgumentError(f"priors must be a lmmlib.course.mcmc.Priors, got {describe(priors)}")
    s2, t2 = default_inits(stats, n_chains) if inits is None else _inits(inits, n_chains)
    if not (np.all(s2 > 0) and np.all(t2 > 0)):
        raise LmmlibError("initial values of sigma2 and tau2 must be positive")
    n_keep = n_iter // thin
    draws = np.empty((n_chains, n_keep, 3))
    alphas = np.empty((n_chains, n_keep, stats.n.size)) if keep_alpha else None
    for it in range(burn + n_keep * thin):
        mu, alpha, s2, t2 = _sweep(stats, K, s2, t2, priors, rng)
        kept, rem = divmod(it - burn, thin)
        if it >= burn and rem == thin - 1:
            draws[:, kept] = np.column_stack([mu, s2, t2])
            if alphas is not None:
                alphas[:, kept] = alpha[:, 0, :]
    return draws, alphas


def _as_draws(draws: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(draws, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"draws must be an array of numbers, got {describe(draws)}") from exc


def _check_draws(draws: np.ndarray) -> np.ndarray:
    x = _as_draws(draws)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise LmmlibError("R-hat needs draws of shape (chains >= 2, iterations >= 2, "
                          f"parameters), got {np.shape(draws)}")
    return x


def _within_between(x: np.ndarray):
    """Per-chain covariances S2 (C, p, p), their mean W, chain means and B = T·cov(means)."""
    C, T, _ = x.shape
    xbar = x.mean(axis=1)                                              # (C, p)
    d = x - xbar[:, None, :]
    S2 = np.einsum("ctp,ctq->cpq", d, d) / (T - 1)
    B = T * np.atleast_2d(np.cov(xbar, rowvar=False, ddof=1))
    return S2, S2.mean(axis=0), xbar, B


def psrf(draws: np.ndarray) -> np.ndarray:
    """Univariate potential scale reduction factors, coda's ``gelman.diag`` point estimates.

    Includes coda's degrees-of-freedom correction (df_V + 3)/(df_V + 1).

    Parameters
    ----------
    draws : ndarray of shape (chains, iterations, parameters) or (chains, iterations)

    Returns
    -------
    ndarray of shape (parameters,)
    """
    x = _check_draws(draws)
    C, T, _ = x.shape
    S2, W, xbar, B = _within_between(x)
    w, b = np.diag(W), np.diag(B)
    s2 = np.diagonal(S2, axis1=1, axis2=2)                              # (C, p)
    muhat = xbar.mean(axis=0)
    var_w = s2.var(axis=0, ddof=1) / C
    var_b = 2.0 * b**2 / (C - 1)

    def ccov(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ((u - u.mean(0)) * (v - v.mean(0))).sum(0) / (C - 1)

    cov_wb = (T / C) * (ccov(s2, xbar**2) - 2.0 * muhat * ccov(s2, xbar))
    V = (T - 1) * w / T + (1 + 1 / C) * b / T
    var_V = ((T - 1) ** 2 * var_w + (1 + 1 / C) ** 2 * var_b
             + 2 * (T - 1) * (1 + 1 / C) * cov_wb) / T**2
    df_V = 2.0 * V**2 / var_V
    df_adj = (df_V + 3) / (df_V + 1)
    r2 = (T - 1) / T + (1 + 1 / C) * b / (T * w)
    return np.sqrt(df_adj * r2)


def mpsrf(draws: np.ndarray) -> float:
    """Multivariate PSRF of Brooks & Gelman (1998), as coda's ``gelman.diag(...)$mpsrf``.

    ``sqrt((1 − 1/T) + (1 + 1/p) λ₁/T)`` with λ₁ the largest eigenvalue of
    W⁻¹B; the factor (1 + 1/p), p the number of parameters, is coda's.

    Parameters
    ----------
    draws : ndarray of shape (chains, iterations, parameters)

    Returns
    -------
    float
    """
    x = _check_draws(draws)
    _, T, p = x.shape
    _, W, _, B = _within_between(x)
    try:
        L = np.linalg.cholesky(W)
    except np.linalg.LinAlgError as err:
        raise LmmlibError("within-chain covariance is singular: a parameter does not move"
                          ) from err
    Li = np.linalg.inv(L)
    emax = float(np.linalg.eigvalsh(Li @ B @ Li.T)[-1])
    return float(np.sqrt((1 - 1 / T) + (1 + 1 / p) * emax / T))


def _pooled(draws: np.ndarray) -> np.ndarray:
    x = _as_draws(draws)
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2 or x.shape[0] <= x.shape[1]:
        raise LmmlibError("draws must have shape (chains, iterations, parameters) or "
                          f"(draws, parameters) with more draws than parameters, got {x.shape}")
    return x


def lambda_max(draws: np.ndarray) -> float:
    """Largest eigenvalue of the covariance of the pooled draws (dclone's ``lambdamax.diag``).

    Parameters
    ----------
    draws : ndarray of shape (chains, iterations, parameters) or (draws, parameters)

    Returns
    -------
    float
    """
    x = _pooled(draws)
    return float(np.linalg.eigvalsh(np.atleast_2d(np.cov(x, rowvar=False)))[-1])


def chisq_diag(draws: np.ndarray) -> tuple[float, float]:
    """dclone's ``chisq.diag``: are the pooled draws multivariate normal?

    The sorted squared Mahalanobis distances of the draws from their mean
    (with their covariance) against the χ²_p quantiles at (i − 0.5)/N.

    Parameters
    ----------
    draws : ndarray of shape (chains, iterations, parameters) or (draws, parameters)

    Returns
    -------
    ms_error : float
        Mean squared difference between distances and quantiles.
    r_squared : float
        One minus their squared correlation.
    """
    x = _pooled(draws)
    N, p = x.shape
    d = x - x.mean(axis=0)
    vinv = np.linalg.inv(np.atleast_2d(np.cov(x, rowvar=False)))
    d2 = np.sort(np.einsum("ip,pq,iq->i", d, vinv, d))
    q = scipy.stats.chi2.ppf((np.arange(1, N + 1) - 0.5) / N, p)
    return float(np.mean((d2 - q) ** 2)), float(1.0 - np.corrcoef(q, d2)[0, 1] ** 2)
