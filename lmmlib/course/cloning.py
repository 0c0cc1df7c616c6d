"""Data cloning for the one-way random-effects model (Lele, Dennis & Lutscher 2007).

Copy the data K times, give every copy its own latent effects, and run MCMC on
the K-cloned model with a vague prior.  The posterior is proportional to
prior × L(θ)^K, so as K grows it concentrates on the maximum-likelihood
estimate θ̂: the posterior mean tends to θ̂ and K times the posterior covariance
to the inverse Fisher information I(θ̂)⁻¹ (Lele, Nadeem & Schmuland 2010,
*JASA* 105:1617–1625).  Sampling is done by the exact Gibbs sampler of
:mod:`lmmlib.course.mcmc`.

Diagnostics follow the R package dclone (``dcdiag``): ``lambda.max``, the
largest eigenvalue of the (unscaled) posterior covariance of the monitored
parameters, falls like 1/K when they are identifiable; ``ms.error`` and
``r.squared`` compare the squared Mahalanobis distances of the draws with
χ²_p quantiles (``chisq.diag``); ``r.hat`` is coda's multivariate PSRF
(:func:`lmmlib.course.mcmc.lambda_max`, :func:`~lmmlib.course.mcmc.chisq_diag`,
:func:`~lmmlib.course.mcmc.mpsrf`).

With one observation per group (m = 1) only σ² + τ² is identifiable: the
posterior ridge along σ² + τ² = const keeps its width whatever K, so
``lambda.max`` does not fall and σ², τ² are correlated near −1, whereas
monitoring ``sum`` = σ² + τ² gives a well-behaved parameter.

Latent effects are predicted, after cloning, from ∫ π(α | y, θ) φ(θ; θ̂, V) dθ
with V = K Σ_posterior on the scale (μ, log σ, log τ) (course notes, seed 000):
a direct Monte Carlo average, since α | y, θ is normal.  (The course's JAGS
program puts N(θ̂, V) as a prior and keeps the data in the model, which uses
the data twice for θ; here θ is drawn from N(θ̂, V) itself.)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..checks import as_bool, as_choice, as_count, as_instance, as_level, describe
from ..engine.differences import hessian
from ..engine.simulate import as_generator
from ..errors import ArgumentError, LmmlibError
from .mcmc import (
    OnewayStats,
    Priors,
    as_params,
    check_run,
    chisq_diag,
    gibbs_oneway,
    lambda_max,
    mpsrf,
    oneway_loglik,
    oneway_stats,
    psrf,
)

__all__ = ["CloneFit", "Priors", "clone_fit", "dc_fit", "dc_mle", "dc_predict",
           "dc_se", "dc_vcov", "dcdiag", "ml_reference", "oneway_information",
           "posterior_alpha", "posterior_corr"]

BASE = ("mu", "sigma2", "tau2")
DERIVED = ("mu", "sigma2", "tau2", "sum", "log_sigma", "log_tau", "sigma", "tau", "icc")


def _derive(base: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Monitored parameters from the (μ, σ², τ²) draws; ``sum`` is σ² + τ²."""
    if not names:
        raise ArgumentError(f"no parameter to monitor; choose from {', '.join(DERIVED)}")
    unknown = [n for n in names if n not in DERIVED]
    if unknown:
        raise LmmlibError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(DERIVED)}")
    m, s2, t2 = np.moveaxis(base, -1, 0)
    with np.errstate(divide="ignore"):
        table = dict(zip(DERIVED, (m, s2, t2, s2 + t2, 0.5 * np.log(s2), 0.5 * np.log(t2),
                                   np.sqrt(s2), np.sqrt(t2), t2 / (s2 + t2)), strict=True))
    return np.stack([table[n] for n in names], axis=-1)


@dataclass(frozen=True)
class CloneFit:
    """Posterior draws of a data-cloning run.

    Attributes
    ----------
    K : int
        Number of clones.
    draws : ndarray of shape (chains, iterations, parameters)
        Draws of the monitored parameters ``names``, chains kept apart.
    names : tuple of str
        Monitored parameters (``mu``, ``sigma2``, ``tau2`` by default; any of
        ``sum`` = σ² + τ², ``log_sigma``, ``log_tau``, ``sigma``, ``tau``, ``icc``).
    base : ndarray of shape (chains, iterations, 3)
        Draws of (μ, σ², τ²), from which the monitored parameters derive.
    stats : OnewayStats
        Sufficient statistics of the data.
    priors : Priors
        The priors used.
    burn, thin : int
        Burn-in iterations and thinning interval.
    seconds : float
        Sampling time.
    alpha : ndarray of shape (chains, iterations, n) or None
        Draws of the first clone's α (``keep_alpha=True``).
    """

    K: int
    draws: np.ndarray
    names: tuple[str, ...]
    base: np.ndarray
    stats: OnewayStats
    priors: Priors
    burn: int
    thin: int
    seconds: float
    alpha: np.ndarray | None = None

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return self.draws.shape[0]

    @cached_property
    def pooled(self) -> np.ndarray:
        """All chains stacked, shape (chains × iterations, parameters) (dclone's ``as.matrix``)."""
        return self.draws.reshape(-1, self.draws.shape[-1])

    @property
    def frame(self) -> pd.DataFrame:
        """Long table of the draws: ``chain``, ``iteration`` and one column per parameter."""
        C, T, _ = self.draws.shape
        df = pd.DataFrame(self.pooled, columns=list(self.names))
        df.insert(0, "iteration", np.tile(np.arange(1, T + 1) * self.thin + self.burn, C))
        df.insert(0, "chain", np.repeat(np.arange(1, C + 1), T))
        return df

    @cached_property
    def mean(self) -> pd.Series:
        """Posterior means (dclone's ``coef``)."""
        return pd.Series(self.pooled.mean(axis=0), index=list(self.names), name="mean")

    @cached_property
    def cov(self) -> pd.DataFrame:
        """Posterior covariance matrix (not scaled by K)."""
        c = np.atleast_2d(np.cov(self.pooled, rowvar=False, ddof=1))
        return pd.DataFrame(c, index=list(self.names), columns=list(self.names))

    @property
    def r_hat(self) -> float:
        """coda's multivariate PSRF (the univariate PSRF with one parameter)."""
        if self.draws.shape[-1] == 1:
            return float(psrf(self.draws)[0])
        return mpsrf(self.draws)

    def monitor(self, *names: str) -> CloneFit:
        """The same run with other monitored parameters, e.g. ``fit.monitor("mu", "sum")``."""
        names = _param_names(names)
        return dataclasses.replace(self, names=tuple(names), draws=_derive(self.base, names))


def _param_names(params: Sequence[str] | str) -> tuple[str, ...]:
    """Monitored parameter names as a tuple (a single name is fine)."""
    if isinstance(params, str):
        return (params,)
    names = tuple(params) if hasattr(params, "__iter__") else None
    if names is None or not all(isinstance(n, str) for n in names):
        raise ArgumentError(f"params must be parameter names, got {describe(params)}")
    return names


def clone_fit(data: pd.DataFrame, K: int, n_chains: int = 3, n_iter: int = 2000,
              burn: int = 1000, thin: int = 1, rng: np.random.Generator | int | None = None,
              response: str = "y", group: str = "id", priors: Priors | None = None,
              inits: tuple[np.ndarray, np.ndarray] | None = None,
              params: Sequence[str] = BASE, keep_alpha: bool = False) -> CloneFit:
    """Data cloning: MCMC on the one-way model with the data copied K times.

    Parameters
    ----------
    data : DataFrame
        One-way layout, one row per observation (balanced or not).
    K : int
        Number of clones (K = 1 is the ordinary Bayesian posterior).
    n_chains : int
        Independent chains, started from over-dispersed values (for R-hat).
    n_iter, burn, thin : int
        Iterations kept after the burn-in (before thinning), burn-in, thinning.
    rng : Generator or int
        Random generator or seed.
    response, group : str
        Column names.
    priors : Priors, optional
        Conjugate priors (default: μ ~ N(0, 10), σ², τ² ~ IG(0.001, 0.001)).
    inits : (array, array), optional
        Starting σ² and τ² for each chain.
    params : sequence of str
        Monitored parameters (see :class:`CloneFit`).
    keep_alpha : bool
        Keep the draws of the first clone's α (useful with K = 1).

    Returns
    -------
    CloneFit

    Raises
    ------
    ArgumentError
        For counts that are not integers of at least their minimum (``K``,
        ``n_chains``, ``thin`` >= 1, ``n_iter`` >= 2, ``burn`` >= 0), a
        ``keep_alpha`` that is not a boolean, unknown ``params`` or a bad ``rng``.

    Examples
    --------
    >>> from lmmlib.course.neyman_scott import simulate_oneway
    >>> fit = clone_fit(simulate_oneway(100, 2, rng=1), K=10, rng=2)
    >>> dc_mle(fit).index.tolist()
    ['mu', 'sigma2', 'tau2']
    """
    K, n_chains, n_iter, burn, thin = check_run(K, n_chains, n_iter, burn, thin)
    keep_alpha = as_bool(keep_alpha, "keep_alpha")
    names = _param_names(params)
    _derive(np.ones((1, 1, 3)), names)  # unknown names are an error before sampling
    rng = as_generator(rng)
    stats = oneway_stats(data, response, group)
    pri = Priors() if priors is None else priors
    start = time.perf_counter()
    base, alpha = gibbs_oneway(stats, K, n_chains, n_iter, burn, thin, pri, rng, inits,
                               keep_alpha)
    return CloneFit(K=K, draws=_derive(base, names), names=names, base=base, stats=stats,
                    priors=pri, burn=burn, thin=thin,
                    seconds=time.perf_counter() - start, alpha=alpha)


def dc_fit(data: pd.DataFrame, n_clones: Iterable[int] = (1, 10, 25),
           rng: np.random.Generator | int | None = None, **kwargs) -> list[CloneFit]:
    """:func:`clone_fit` for several numbers of clones (dclone's ``dc.fit``).

    Parameters
    ----------
    data : DataFrame
        One-way layout.
    n_clones : iterable of int
        Numbers of clones, fitted in increasing order.
    rng : Generator or int
        Random generator or seed, shared by the runs.
    **kwargs
        Passed to :func:`clone_fit`.

    Returns
    -------
    list of CloneFit
    """
    if isinstance(n_clones, (str, bytes)) or not hasattr(n_clones, "__iter__"):
        raise ArgumentError(f"n_clones must be a list of numbers of clones, got "
                            f"{describe(n_clones)}")
    clones = sorted({as_count(k, "n_clones (each)") for k in n_clones})
    if not clones:
        raise ArgumentError("n_clones is empty: give at least one number of clones")
    gen = as_generator(rng)
    return [clone_fit(data, K, rng=gen, **kwargs) for K in clones]


def dcdiag(fits: CloneFit | Iterable[CloneFit]) -> pd.DataFrame:
    """Data-cloning diagnostics for a sequence of clone numbers, as dclone's ``dcdiag``.

    Parameters
    ----------
    fits : CloneFit or iterable of CloneFit
        Runs with the same monitored parameters.

    Returns
    -------
    DataFrame
        One row per run, by increasing K: ``n.clones``, ``lambda.max``,
        ``ms.error``, ``r.squared`` and ``r.hat`` (coda's multivariate PSRF
        when more than one parameter is monitored, else the univariate one).
    """
    fits = [fits] if isinstance(fits, CloneFit) else list(fits)
    if not fits or not all(isinstance(f, CloneFit) for f in fits):
        raise ArgumentError("fits must be a CloneFit or a non-empty list of them (from "
                            f"clone_fit or dc_fit), got {describe(fits)}")
    fits = sorted(fits, key=lambda f: f.K)
    if len({f.names for f in fits}) > 1:
        raise LmmlibError("parameter names in each run should be identical")
    rows = [(f.K, lambda_max(f.draws), *chisq_diag(f.draws),
             f.r_hat if f.n_chains > 1 else np.nan) for f in fits]
    return pd.DataFrame(rows, columns=["n.clones", "lambda.max", "ms.error", "r.squared",
                                       "r.hat"])


def _check_fit(fit: object) -> CloneFit:
    return as_instance(fit, "fit", CloneFit, "a CloneFit (from clone_fit)")


def dc_mle(fit: CloneFit) -> pd.Series:
    """Data-cloning estimates: the posterior means, which tend to the MLE as K grows."""
    return _check_fit(fit).mean.rename("estimate")


def dc_vcov(fit: CloneFit) -> pd.DataFrame:
    """K × posterior covariance, the estimate of the inverse Fisher information."""
    return _check_fit(fit).cov * fit.K


def dc_se(fit: CloneFit) -> pd.Series:
    """Data-cloning standard errors sqrt(K × posterior variance) (dclone's ``dcsd``)."""
    return pd.Series(np.sqrt(np.diag(dc_vcov(fit))), index=list(fit.names), name="se")


def posterior_corr(fit: CloneFit) -> pd.DataFrame:
    """Posterior correlation matrix (R's ``cov2cor(vcov(fit))``)."""
    c = _check_fit(fit).cov.to_numpy()
    d = np.sqrt(np.diag(c))
    return pd.DataFrame(c / np.outer(d, d), index=fit.cov.index, columns=fit.cov.columns)


def _stats(data: pd.DataFrame | OnewayStats, response: str, group: str) -> OnewayStats:
    return data if isinstance(data, OnewayStats) else oneway_stats(data, response, group)


def oneway_information(params: Sequence[float], data: pd.DataFrame | OnewayStats,
                       kind: str = "expected", response: str = "y",
                       group: str = "id") -> pd.DataFrame:
    """Fisher information of (μ, σ², τ²) in the one-way model.

    ``"expected"``: with λ_i = σ² + n_i τ², I_μμ = Σ n_i/λ_i, μ is orthogonal
    to the variances, I_σ²σ² = ½ Σ [(n_i − 1)/σ⁴ + 1/λ_i²],
    I_σ²τ² = ½ Σ n_i/λ_i², I_τ²τ² = ½ Σ n_i²/λ_i² (each variance eigenvalue v
    contributes ½ ∂v ∂v / v²).  With n_i = 1 for all i the 2 × 2 variance
    block is singular: σ² and τ² are not separately identifiable.
    ``"observed"``: minus the central-difference Hessian of
    :func:`oneway_loglik` (relative steps 10⁻⁴).
    """
    kind = as_choice(kind, "kind", ("expected", "observed"))
    st = _stats(data, response, group)
    p = np.array(as_params(params))
    if kind == "observed":
        h = 1e-4 * np.maximum(np.abs(p), 1e-3)
        info = -hessian(lambda v: oneway_loglik(v, st), p, h)
    elif kind == "expected":
        _, s2, t2 = p
        lam = s2 + st.n * t2
        info = np.zeros((3, 3))
        info[0, 0] = np.sum(st.n / lam)
        info[1, 1] = 0.5 * np.sum((st.n - 1) / s2**2 + 1 / lam**2)
        info[1, 2] = info[2, 1] = 0.5 * np.sum(st.n / lam**2)
        info[2, 2] = 0.5 * np.sum(st.n**2 / lam**2)
    return pd.DataFrame(info, index=list(BASE), columns=list(BASE))


def ml_reference(data: pd.DataFrame, response: str = "y", group: str = "id") -> pd.DataFrame:
    """ML estimates of (μ, σ², τ²) by ``lmer(..., reml=False)`` and SEs from I(θ̂)⁻¹.

    The standard errors invert the observed information (numerical Hessian of
    the closed-form log-likelihood) at the ML estimates.

    Returns
    -------
    DataFrame
        Index ``mu``, ``sigma2``, ``tau2``; columns ``estimate`` and ``se``.
    """
    from ..models.fit import lmer

    m = lmer(f"{response} ~ 1 + (1 | {group})", data, reml=False)
    est = np.array([m.fixef.iloc[0], m.sigma**2, (m.theta[0] * m.sigma) ** 2])
    cov = np.linalg.inv(oneway_information(est, data, "observed", response, group).to_numpy())
    return pd.DataFrame({"estimate": est, "se": np.sqrt(np.diag(cov))}, index=list(BASE))


def _summarise(draws: np.ndarray, mean: np.ndarray, sd: np.ndarray, levels: pd.Index,
               level: float) -> pd.DataFrame:
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    q = np.percentile(draws, [lo, 50, hi], axis=0)
    return pd.DataFrame({"mean": mean, "sd": sd, f"{lo:g}%": q[0], "50%": q[1],
                         f"{hi:g}%": q[2]}, index=levels)


def dc_predict(fit: CloneFit, data: pd.DataFrame | None = None, n_draws: int = 4000,
               rng: np.random.Generator | int | None = None, level: float = 0.95,
               response: str = "y", group: str = "id") -> pd.DataFrame:
    """Predict the α_i after data cloning.

    θ = (μ, log σ, log τ) is drawn ``n_draws`` times from its asymptotic
    distribution N(θ̂, V), with θ̂ the posterior mean and V = K × posterior
    covariance of the cloned run on that scale (as the course notes, seed 000);
    for each draw, α_i | y, θ ~ N(r_i (ȳ_i − μ), r_i σ²/n_i) with
    r_i = τ²/(τ² + σ²/n_i).

    Parameters
    ----------
    fit : CloneFit
        A data-cloning run (K large enough for the normal approximation).
    data : DataFrame, optional
        Data of the groups to predict (default: the data of the fit).
    n_draws : int
        Monte Carlo draws of θ.
    rng : Generator or int
        Random generator or seed.
    level : float
        Coverage of the equal-tailed prediction interval.
    response, group : str
        Column names (for ``data``).

    Returns
    -------
    DataFrame
        Indexed by group: ``mean`` (E[α_i | y], averaged conditional means),
        ``sd`` (total variance: E var + var E), the interval quantiles and
        the median (from the draws), and ``mcse``, the Monte Carlo standard
        error of ``mean``.
    """
    _check_fit(fit)
    level = as_level(level)
    n_draws = as_count(n_draws, "n_draws", minimum=2)
    st = fit.stats if data is None else oneway_stats(data, response, group)
    gen = as_generator(rng)
    logged = _derive(fit.base, ("mu", "log_sigma", "log_tau")).reshape(-1, 3)
    theta = gen.multivariate_normal(logged.mean(axis=0),
                                    fit.K * np.cov(logged, rowvar=False), size=n_draws)
    mu, s2, t2 = theta[:, :1], np.exp(2 * theta[:, 1:2]), np.exp(2 * theta[:, 2:3])
    r = t2 / (t2 + s2 / st.n)
    cmean, cvar = r * (st.ybar - mu), r * s2 / st.n
    draws = cmean + np.sqrt(cvar) * gen.standard_normal(cmean.shape)
    out = _summarise(draws, cmean.mean(axis=0), np.sqrt(cvar.mean(axis=0) + cmean.var(axis=0)),
                     st.levels, level)
    out["mcse"] = cmean.std(axis=0, ddof=1) / np.sqrt(n_draws)
    return out


def posterior_alpha(fit: CloneFit, level: float = 0.95) -> pd.DataFrame:
    """Posterior summary of the first clone's α (with K = 1: the Bayesian posterior).

    Needs ``clone_fit(..., keep_alpha=True)``; columns as :func:`dc_predict`
    (without ``mcse``).
    """
    _check_fit(fit)
    level = as_level(level)
    if fit.alpha is None:
        raise LmmlibError("no alpha draws kept: refit with clone_fit(..., keep_alpha=True)")
    a = fit.alpha.reshape(-1, fit.alpha.shape[-1])
    return _summarise(a, a.mean(axis=0), a.std(axis=0, ddof=1), fit.stats.levels, level)
