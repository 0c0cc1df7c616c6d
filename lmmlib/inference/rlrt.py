"""Exact restricted likelihood-ratio test for one variance component.

This follows Crainiceanu & Ruppert (2004, *JRSS-B* 66:165–185) and R's
``RLRsim::exactRLRT``.  The test is H0: σ²_b = 0 in y = Xβ + Zb + ε, where
b ~ N(0, σ²_b I_K) is a single scalar random-effects term.

The null distribution of the RLRT statistic depends only on the eigenvalues μ_s
of Z'P₀Z, where P₀ = I − X(X'X)⁻¹X'.  Under H0 the statistic is

    sup_{λ≥0}  (n−p) log(1 + N(λ)/D(λ)) − Σ_s log(1 + λμ_s),

with N(λ) = Σ_s λμ_s/(1+λμ_s) w_s and D(λ) = Σ_s w_s/(1+λμ_s) + w_rest.  The
w_s ~ χ²₁ and w_rest ~ χ²_{n−p−K} are independent.  As in RLRsim, the μ_s are
scaled so that the largest is 1.  λ runs over 0 and 199 values of a log-grid
from e^-10 to e^8.  Starting from λ = 0 the grid is climbed while the function
does not decrease (``search="ascent"``).  The simulation is vectorised over
draws: one matrix product per block of grid points gives D(λ) for every draw
still climbing.  Equal eigenvalues are pooled.  Z'P₀Z = diag(group sizes) minus
a rank-p term, so unbalanced designs also have few distinct μ_s.  For Nepal,
197 children give 14 distinct values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ..checks import as_choice, as_count, as_float, describe, unweighted
from ..engine.pls import z_matrix
from ..engine.simulate import as_generator
from ..engine.threads import blas_threads
from ..errors import ArgumentError, DataError, LmmlibError, LmmlibWarning
from ..kinds import LinearFit, LinearMixedFit

__all__ = ["RLRTResult", "exact_rlrt", "lambda_grid", "null_rlrt_sample", "rlrt_eigenvalues"]

LOG2PI = np.log(2.0 * np.pi)
ZERO_EIGEN = 1e-10  # eigenvalues below this fraction of the largest count as 0
TIE_EIGEN = 1e-9  # scaled eigenvalues closer than this are pooled (their χ²'s add up)
ZERO_STAT = 1e-9  # observed statistics below this (times max(1, |criterion|)) are rounding
CHUNK_CELLS = 2_000_000  # draws × grid points held in memory at once


@dataclass(frozen=True, repr=False)
class RLRTResult:
    """Outcome of :func:`exact_rlrt`.

    Attributes
    ----------
    statistic : float
        Observed RLRT = 2 (restricted log-likelihood of the alternative − that
        of the null model), floored at 0.
    p_value : float
        Share of simulated statistics strictly above the observed one (RLRsim's
        ``mean(rlrt.obs < sample)``); 1 when the observed statistic is 0.
    null_sample : ndarray
        The ``nsim`` simulated statistics.
    nsim : int
        Number of simulated values.
    share_zero : float
        Share of exact zeros in ``null_sample`` (the point mass at 0).
    eigenvalues : ndarray
        Scaled non-zero eigenvalues μ_s of Z'P₀Z (largest = 1), in decreasing order.
    term : str
        The tested variance component, e.g. ``"operator (Intercept)"``.
    nobs, nfixed : int
        n and p.
    """

    statistic: float
    p_value: float
    null_sample: np.ndarray
    nsim: int
    share_zero: float
    eigenvalues: np.ndarray
    term: str
    nobs: int
    nfixed: int

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        """Quantiles of the simulated null distribution (R's type 7); ``q`` in [0, 1]."""
        try:
            probs = np.asarray(q, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"q must be probabilities, got {describe(q)}") from exc
        if not np.all((probs >= 0) & (probs <= 1)):
            raise ArgumentError(f"q must be probabilities between 0 and 1, got {describe(q)}")
        return np.quantile(self.null_sample, probs)

    def summary(self) -> str:
        """Text report, in the spirit of R's ``htest`` print."""
        qs = self.quantile([0.9, 0.95, 0.99])
        return "\n".join([
            "Exact restricted likelihood-ratio test (Crainiceanu & Ruppert 2004)",
            f"H0: variance of {self.term} = 0   (n = {self.nobs}, p = {self.nfixed}, "
            f"{self.eigenvalues.size} non-zero eigenvalues)",
            f"RLRT = {self.statistic:.4f}, p-value {_format_p(self.p_value, self.nsim)}"
            f"  ({self.nsim} simulated values)",
            f"Null distribution: {100 * self.share_zero:.1f}% exact zeros; quantiles "
            f"90% {qs[0]:.3f}, 95% {qs[1]:.3f}, 99% {qs[2]:.3f}",
        ])

    def __repr__(self) -> str:
        return self.summary()


def _format_p(p: float, nsim: int) -> str:
    return f"< {1 / nsim:.1g}" if p == 0 and nsim > 0 else f"= {p:.4g}"


# -- eigenvalues ---------------------------------------------------------------
def rlrt_eigenvalues(X: np.ndarray, Z: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Eigenvalues of Z'P₀Z, P₀ = I − X(X'X)⁻¹X', in decreasing order.

    The n × n projection is never formed.  With X = QR (thin QR), Z'P₀Z equals
    Z'Z − (Z'Q)(Z'Q)', a K × K matrix.

    Parameters
    ----------
    X : ndarray (n, p)
        Fixed-effects model matrix (full column rank).
    Z : ndarray or sparse matrix (n, K)
        Random-effects model matrix of the tested term (Σ = I_K).

    Returns
    -------
    ndarray of length K
        Unscaled, clipped at 0.
    """
    Q = np.linalg.qr(np.asarray(X, dtype=float), mode="reduced")[0]
    if sp.issparse(Z):
        ztz = (Z.T @ Z).toarray()
        ztq = np.asarray(Z.T @ Q)
    else:
        Z = np.asarray(Z, dtype=float)
        ztz = Z.T @ Z
        ztq = Z.T @ Q
    M = ztz - ztq @ ztq.T
    mu = np.linalg.eigvalsh(0.5 * (M + M.T))[::-1]
    return np.maximum(mu, 0.0)


def _pool(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a decreasing μ (ties within TIE_EIGEN) and their multiplicities."""
    values: list[float] = []
    counts: list[int] = []
    for m in mu:
        if values and values[-1] - m <= TIE_EIGEN:
            counts[-1] += 1
        else:
            values.append(float(m))
            counts.append(1)
    return np.array(values), np.array(counts)


# -- null distribution ---------------------------------------------------------
def _log_grid(log_grid: object) -> tuple[float, float]:
    """``log_grid`` as two finite numbers, the first below the second."""
    try:
        lo, hi = log_grid  # type: ignore[misc]
    except (TypeError, ValueError):
        lo = hi = None
    if lo is None or isinstance(log_grid, str):
        raise ArgumentError(f"log_grid must be a pair (low, high) of log-lambda values, got "
                            f"{describe(log_grid)}")
    lo, hi = as_float(lo, "log_grid[0]"), as_float(hi, "log_grid[1]")
    if not lo < hi:
        raise ArgumentError(f"log_grid must be increasing, got ({lo:g}, {hi:g})")
    return lo, hi


def lambda_grid(gridlength: int = 200, log_grid: tuple[float, float] = (-10.0, 8.0)) -> np.ndarray:
    """RLRsim's grid of λ = σ²_b/σ²: 0, then ``gridlength − 1`` log-spaced values."""
    gridlength = as_count(gridlength, "gridlength", minimum=2)
    lo, hi = _log_grid(log_grid)
    return np.concatenate([[0.0], np.exp(np.linspace(lo, hi, gridlength - 1))])


def _ascent(W: np.ndarray, rest: np.ndarray, fD: np.ndarray, penalty: np.ndarray,
            nu: int) -> np.ndarray:
    """RLRsim's search: climb the grid from λ = 0 and stop at the first decrease.

    The grid is visited in blocks of growing width, and only draws still climbing
    are carried on.  Most draws stop at the first step (the point mass at 0).
    D(λ) is a sum of positive terms, and N(λ) = W_total − D(λ).
    """
    total = W.sum(axis=1) + rest
    best = np.zeros(total.size)  # LR(0) = 0
    active = np.arange(total.size)
    j, width, g = 1, 4, penalty.size
    while active.size and j < g:
        cols = slice(j, min(j + width, g))
        D = W[active] @ fD[:, cols] + rest[active, None]
        LR = nu * np.log1p((total[active, None] - D) / D) - penalty[cols]
        seq = np.concatenate([best[active, None], LR], axis=1)
        down = seq[:, 1:] < seq[:, :-1]
        stopped = down.any(axis=1)
        last = np.where(stopped, down.argmax(axis=1), LR.shape[1])
        best[active] = seq[np.arange(active.size), last]
        active = active[~stopped]
        j, width = cols.stop, min(2 * width, 64)
    return best


def _global(W: np.ndarray, rest: np.ndarray, fD: np.ndarray, penalty: np.ndarray,
            nu: int) -> np.ndarray:
    """Maximum over the whole grid (and 0, the value at λ = 0)."""
    total = W.sum(axis=1) + rest
    D = W @ fD[:, 1:] + rest[:, None]
    LR = nu * np.log1p((total[:, None] - D) / D) - penalty[1:]
    return np.maximum(LR.max(axis=1), 0.0)


def null_rlrt_sample(mu: np.ndarray, n: int, p: int, nsim: int = 10_000,
                     rng: np.random.Generator | int | None = None, *, gridlength: int = 200,
                     log_grid: tuple[float, float] = (-10.0, 8.0),
                     search: Literal["ascent", "global"] = "ascent") -> np.ndarray:
    """Simulate the null distribution of the RLRT statistic (RLRsim's ``RLRTSim``).

    Parameters
    ----------
    mu : ndarray
        Eigenvalues of Z'P₀Z (any scale; they are scaled to a maximum of 1).
    n, p : int
        Number of observations and of fixed effects.
    nsim : int
        Number of simulated values.
    rng : Generator or int
        Random generator or seed.
    gridlength, log_grid
        λ grid, see :func:`lambda_grid`.
    search : {"ascent", "global"}
        ``"ascent"`` (RLRsim) climbs the grid from λ = 0 and stops at the first
        decrease.  ``"global"`` takes the maximum over the whole grid.

    Returns
    -------
    ndarray of length ``nsim``

    Notes
    -----
    Eigenvalues below ``ZERO_EIGEN`` (relative) only add to the χ²_{n−p−K} term.
    Equal eigenvalues are pooled: their χ²₁ variables enter N and D only through
    their sum, a χ² with as many degrees of freedom.
    """
    search = as_choice(search, "search", ("ascent", "global"))
    nsim = as_count(nsim, "nsim")
    n, p = as_count(n, "n"), as_count(p, "p", minimum=0)
    mu = np.sort(np.asarray(mu, dtype=float))[::-1]
    if not np.isfinite(mu).all():
        raise ArgumentError("mu, the eigenvalues of Z'P0Z, must be finite")
    if mu.size == 0 or not mu[0] > 0:
        raise DataError("all eigenvalues of Z'P0Z are 0: the random effect is confounded "
                        "with the fixed effects, so its variance cannot be tested")
    mu = mu / mu[0]
    mu = mu[mu > ZERO_EIGEN][: max(n - p, 0)]
    values, counts = _pool(mu)
    df_rest = max(n - p - int(counts.sum()), 0)
    lam = lambda_grid(gridlength, log_grid)
    lm = np.outer(lam, values)  # (g, k)
    fD = (1.0 / (1.0 + lm)).T  # (k, g)
    penalty = np.log1p(lm) @ counts  # Σ_s log(1 + λμ_s) on the grid
    maximise = _ascent if search == "ascent" else _global
    rng = as_generator(rng)
    out = np.empty(nsim)
    step = max(1, CHUNK_CELLS // lam.size)
    with blas_threads(1):
        for start in range(0, nsim, step):
            m = min(step, nsim - start)
            W = rng.chisquare(counts, size=(m, counts.size))
            rest = rng.chisquare(df_rest, size=m) if df_rest > 0 else np.zeros(m)
            out[start:start + m] = maximise(W, rest, fD, penalty, n - p)
    return out


# -- observed statistic --------------------------------------------------------
def _lm_reml_criterion(X: np.ndarray, y: np.ndarray) -> float:
    """REML criterion of the linear model: ν(1 + log(2π RSS/ν)) + log|X'X|, ν = n − p."""
    Q, R = np.linalg.qr(X, mode="reduced")
    res = y - Q @ (Q.T @ y)
    nu = X.shape[0] - X.shape[1]
    rss = float(res @ res)
    return nu * (1.0 + LOG2PI + np.log(rss / nu)) + 2.0 * float(np.log(np.abs(np.diag(R))).sum())


def _reml_criterion(model: LinearMixedFit) -> float:
    """−2 × restricted log-likelihood; at the ML estimates for an ML fit (as lme4)."""
    if model.reml:
        return float(model.objective)
    warnings.warn(f"model {model.formula!r} was fitted by ML: using the restricted likelihood "
                  "at the ML estimates; refit with reml=True for the exact test",
                  LmmlibWarning, stacklevel=3)
    return float(model.pls.objective(model.theta, reml=True))


def _floor(stat: float, scale: float) -> float:
    return 0.0 if stat <= ZERO_STAT * max(1.0, abs(scale)) else stat


# -- checks --------------------------------------------------------------------
def _scalar_term(model: object, role: str) -> str:
    """Label of the single scalar random-effects term of ``model``, or raise."""
    if isinstance(model, LinearFit) or not isinstance(model, LinearMixedFit):
        raise ArgumentError(f"{role} must be a mixed model fitted by lmmlib.lmer, "
                            f"got {describe(model)}")
    terms = model.design.reterms
    if len(terms) != 1 or terms[0].q != 1:
        desc = ", ".join(f"{t.label}: {'/'.join(t.colnames)}" for t in terms)
        raise LmmlibError(
            f"exact_rlrt tests a single variance component, but {role} {model.formula!r} "
            f"has {len(terms)} random-effects term(s) with {model.design.ntheta} covariance "
            f"parameter(s) ({desc}). Use a model with one scalar term such as (1|g) or "
            "(0+x|g); to test one component of a larger model pass that model as mA, the "
            "model without the component as m0 and the single-term model as m")
    return f"{terms[0].label} {terms[0].colnames[0]}"


def _check_three(m: LinearMixedFit, mA: object, m0: object) -> None:
    for role, mod in (("mA", mA), ("m0", m0)):
        if not isinstance(mod, LinearMixedFit):
            raise ArgumentError(f"{role} must be a mixed model fitted by lmmlib.lmer, "
                                f"got {describe(mod)}")
    if mA.nobs != m.nobs or m0.nobs != m.nobs:
        raise LmmlibError("m, mA and m0 must be fitted to the same observations "
                          f"(n = {m.nobs}, {mA.nobs}, {m0.nobs})")
    xs = (m.design.X, mA.design.X, m0.design.X)
    if any(x.shape != xs[0].shape or not np.allclose(x, xs[0]) for x in xs[1:]):
        raise LmmlibError("fixed-effects matrices of m, mA and m0 differ: REML-based "
                          "comparison is only valid with identical fixed effects")
    extra = mA.design.ntheta - m0.design.ntheta
    if extra != 1:
        raise LmmlibError(f"mA has {mA.design.ntheta} covariance parameters and m0 "
                          f"{m0.design.ntheta}: exact_rlrt tests exactly one variance "
                          "(no covariances set to 0 under H0)")


# -- the test ------------------------------------------------------------------
def exact_rlrt(m: LinearMixedFit, nsim: int = 10_000,
               rng: np.random.Generator | int | None = None, *,
               mA: LinearMixedFit | None = None, m0: LinearMixedFit | None = None,
               gridlength: int = 200, log_grid: tuple[float, float] = (-10.0, 8.0),
               search: Literal["ascent", "global"] = "ascent") -> RLRTResult:
    """Exact restricted likelihood-ratio test of a zero variance component.

    Parameters
    ----------
    m : LinearMixedModel
        Model with exactly one scalar random-effects term, e.g. ``(1|g)`` or
        ``(0+x|g)``.  Its variance is tested, and its X and Z set the null
        distribution.
    nsim : int
        Number of values simulated from the null distribution.
    rng : Generator or int
        Random generator or seed (explicit, for reproducibility).
    mA, m0 : LinearMixedModel, optional
        RLRsim's form for a model with several variance components.  ``mA`` is
        the full model and ``m0`` the same model without the tested term.  ``m``
        then holds only the tested term.  The statistic compares ``mA`` with ``m0``.
    gridlength, log_grid
        λ grid (RLRsim's defaults: 200 values, e^-10 to e^8).
    search : {"ascent", "global"}
        Grid maximisation; ``"ascent"`` is RLRsim's.

    Returns
    -------
    RLRTResult

    Raises
    ------
    ArgumentError
        If ``m``, ``mA`` or ``m0`` is not an ``lmer`` fit, or ``nsim``,
        ``rng``, ``gridlength``, ``log_grid`` or ``search`` are invalid.
    LmmlibError
        If ``m`` has more than one random-effects term or a vector-valued term.

    Notes
    -----
    The conventions follow RLRsim 3.1-8.  The statistic is
    max(0, REML criterion under H0 − REML criterion of the fit).  For an ML fit
    the restricted likelihood is evaluated at the ML estimates, with a warning.
    The p-value is the share of simulated values strictly above the observed one.

    There are two deliberate differences.  An observed statistic at rounding
    level (below 1e-9 of the criterion) is set to 0, and a statistic of 0 gets
    p = 1.  RLRsim reports 5.7e-14 and p = 0.44 for the singular Dyestuff2 fit.
    Also, at most n − p eigenvalues are used: RLRsim keeps min(n, K) of them,
    which adds spurious χ²₁ terms when K > n − p.
    """
    unweighted(m, "exact_rlrt")
    term = _scalar_term(m, "m")
    nsim = as_count(nsim, "nsim")
    rng = as_generator(rng)
    lambda_grid(gridlength, log_grid)  # checks both before the fits are compared
    search = as_choice(search, "search", ("ascent", "global"))
    if (mA is None) != (m0 is None):
        raise LmmlibError("give both mA (full model) and m0 (model without the tested "
                          "variance), or neither")
    X, y = m.design.X, m.design.y
    if mA is None:
        h0 = _lm_reml_criterion(X, y)
        stat = _floor(h0 - _reml_criterion(m), h0)
    else:
        _check_three(m, mA, m0)
        c0 = _reml_criterion(m0)
        stat = _floor(c0 - _reml_criterion(mA), c0)
    n, p = X.shape
    with blas_threads(1):  # small matrices: BLAS threads cost more than they save
        mu = rlrt_eigenvalues(X, z_matrix(m.design.blocks[0]))
        sample = null_rlrt_sample(mu, n, p, nsim, rng, gridlength=gridlength,
                                  log_grid=log_grid, search=search)
    if np.quantile(sample, 0.9) == 0:
        warnings.warn(f"null distribution has mass {np.mean(sample == 0):.3f} at zero",
                      LmmlibWarning, stacklevel=2)
    p_value = 1.0 if stat == 0 else float(np.mean(sample > stat))
    scaled = mu[mu > ZERO_EIGEN * mu[0]] / mu[0]
    return RLRTResult(float(stat), p_value, sample, nsim, float(np.mean(sample == 0)),
                      scaled[: max(n - p, 0)], term, n, p)
