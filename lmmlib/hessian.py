"""Hessian-based standard errors of the variance parameters.

The variance parameters are taken on lme4's profiling scale: for every
random-effects term the standard deviations and correlations of its effects
(in the order of θ, named ``.sig01``, ``.sig02``, ...), then the residual
standard deviation ``.sigma``.  :class:`VarPars` converts between that vector
and (θ, σ), so that the criterion (REML criterion or deviance, profiled over β
only) can be evaluated as a function of it.

The standard errors follow the recipe of the course notes (seed 003): the
observed information is the Hessian of −log L at the optimum, its inverse the
approximate covariance matrix of the estimates.  As the criterion is −2 log L,
the covariance matrix is ``2 H⁻¹``.  On the log scale the standard error of
log(SD) is SE(SD)/SD (the delta method, which at the optimum is the same as
differentiating in log SD directly since the gradient vanishes).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .errors import LmmlibError, SingularFitWarning
from .pls import PLS
from .reterms import ReTerm
from .varcomp import term_covariances

__all__ = ["VarPars", "hessian", "varpar_se"]


def _colmajor_tril(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a q×q lower triangle, column by column (θ's order)."""
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def _chol_psd(R: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots allowed).

    Correlations of ±1 make a correlation matrix singular; the factor is then
    still well defined with a zero column, which is what the profile needs at
    the edge of the parameter space.
    """
    q = R.shape[0]
    L = np.zeros_like(R)
    for j in range(q):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-12:
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (R[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


@dataclass(frozen=True)
class VarPars:
    """Variance parameters on the SD/correlation scale, as lme4's profile uses them.

    Attributes
    ----------
    terms : tuple of ReTerm
        The model's random-effects terms (θ layout).
    names : tuple of str
        ``.sig01``, ``.sig02``, ..., ``.sigma``.
    kinds : tuple of str
        ``"sd"``, ``"cor"`` or ``"sigma"`` for each parameter.
    """

    terms: tuple[ReTerm, ...]
    names: tuple[str, ...]
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, terms: Sequence[ReTerm]) -> VarPars:
        """The parametrisation of a model's random-effects terms."""
        kinds: list[str] = []
        for t in terms:
            rows, cols = _colmajor_tril(t.q)
            kinds += ["sd" if r == c else "cor" for r, c in zip(rows, cols, strict=True)]
        names = [f".sig{i + 1:02d}" for i in range(len(kinds))] + [".sigma"]
        return cls(tuple(terms), tuple(names), tuple(kinds) + ("sigma",))

    @property
    def size(self) -> int:
        """Number of variance parameters (length of θ plus one)."""
        return len(self.names)

    @cached_property
    def lower(self) -> np.ndarray:
        """Lower bounds: 0 for SDs and σ, −1 for correlations."""
        return np.array([-1.0 if k == "cor" else 0.0 for k in self.kinds])

    @cached_property
    def upper(self) -> np.ndarray:
        """Upper bounds: ∞ for SDs and σ, 1 for correlations."""
        return np.array([1.0 if k == "cor" else np.inf for k in self.kinds])

    @cached_property
    def _layout(self) -> list[tuple[slice, int, tuple[np.ndarray, np.ndarray]]]:
        return [(t.theta, t.q, _colmajor_tril(t.q)) for t in self.terms]

    def from_theta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """(θ, σ) → SDs and correlations of every term, then σ."""
        out = np.empty(self.size)
        for t, cov in zip(self.terms, term_covariances(theta, sigma, self.terms), strict=True):
            sd = np.sqrt(np.diag(cov))
            denom = np.outer(sd, sd)
            cor = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
            np.fill_diagonal(cor, sd)
            out[t.theta] = cor[_colmajor_tril(t.q)]
        out[-1] = sigma
        return out

    def to_theta(self, v: np.ndarray) -> tuple[np.ndarray, float]:
        """SDs, correlations and σ → (θ, σ); Λ_t = diag(SD/σ) chol(R_t)."""
        sigma = float(v[-1])
        theta = np.empty(self.size - 1)
        for sl, q, idx in self._layout:
            vt = v[sl]
            if q == 1:
                theta[sl] = vt / sigma
            elif q == 2:  # Λ = [[s1, 0], [ρ s2, s2 √(1−ρ²)]] / σ
                s1, rho, s2 = vt
                theta[sl] = (s1 / sigma, rho * s2 / sigma,
                             s2 * np.sqrt(max(1.0 - rho * rho, 0.0)) / sigma)
            else:
                M = np.zeros((q, q))
                M[idx] = vt
                sd = np.diag(M).copy()
                R = np.tril(M, -1)
                R = R + R.T + np.eye(q)
                theta[sl] = ((sd / sigma)[:, None] * _chol_psd(R))[idx]
        return theta, sigma

    def criterion(self, pls: PLS, reml: bool) -> Callable[[np.ndarray], float]:
        """The REML criterion or deviance as a function of these parameters (β profiled)."""

        lower, upper = self.lower, self.upper

        def f(v: np.ndarray) -> float:
            if not v[-1] > 0 or (v < lower).any() or (v > upper).any():
                return np.inf
            theta, sigma = self.to_theta(np.asarray(v, dtype=float))
            return pls.deviance_at(theta, sigma, reml)

        return f


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
            step: float | np.ndarray = 1e-3) -> np.ndarray:
    """Central-difference Hessian of a scalar function.

    Parameters
    ----------
    f : callable
        Function of a 1-d array.
    x : ndarray
        Point at which to differentiate.
    step : float or ndarray
        Step in each coordinate (a scalar is used for all of them).

    Returns
    -------
    ndarray of shape (n, n)
        Second derivatives: ``(f(x+h_i) − 2f(x) + f(x−h_i))/h_i²`` on the
        diagonal, the four-point formula off it.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    h = np.broadcast_to(np.asarray(step, dtype=float), (n,))
    E = np.diag(h)
    f0 = f(x)
    H = np.empty((n, n))
    for i in range(n):
        H[i, i] = (f(x + E[i]) - 2.0 * f0 + f(x - E[i])) / h[i] ** 2
        for j in range(i):
            d = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j])
                 + f(x - E[i] - E[j]))
            H[i, j] = H[j, i] = d / (4.0 * h[i] * h[j])
    return H


def _steps(v: np.ndarray, kinds: Sequence[str], rel: float) -> np.ndarray:
    """Finite-difference steps: relative for SDs and σ, absolute for correlations."""
    return np.array([rel if k == "cor" else rel * abs(x) for x, k in zip(v, kinds, strict=True)])


def varpar_se(model, scale: str = "sd", rel_step: float = 1e-3) -> pd.DataFrame:
    """Hessian-based standard errors of the variance parameters.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model; the Hessian is that of its own criterion (REML
        criterion for REML fits, deviance for ML fits) at its estimates.
    scale : {"sd", "logsd"}
        ``"sd"``: standard deviations, correlations and σ.  ``"logsd"``: the
        logarithm of the standard deviations and of σ (correlations stay as
        they are), with standard errors by the delta method.
    rel_step : float
        Relative finite-difference step (absolute for correlations).

    Returns
    -------
    DataFrame
        Columns ``par`` (``.sig01``, ..., ``.sigma``), ``kind`` (sd, cor,
        sigma), ``estimate``, ``se`` and ``scale``.  Parameters on the
        boundary (an SD of zero, a correlation of ±1) get a missing SE, as do
        the correlations of a term with a zero SD.

    Examples
    --------
    >>> varpar_se(m)  # doctest: +SKIP
          par   kind  estimate        se scale
    0  .sig01     sd  3.891267  0.417...    sd
    1  .sigma  sigma  2.096356  0.076...    sd
    """
    if scale not in ("sd", "logsd"):
        raise LmmlibError(f"scale must be 'sd' or 'logsd', got {scale!r}")
    vp = VarPars.of(model.design.reterms)
    v = vp.from_theta(model.theta, model.sigma)
    free = _interior(v, vp)
    if not free.all():
        bad = ", ".join(n for n, ok in zip(vp.names, free, strict=True) if not ok)
        warnings.warn(f"{bad} on the boundary of the parameter space: no Hessian-based SE",
                      SingularFitWarning, stacklevel=2)
    crit = vp.criterion(model.pls, model.reml)
    idx = np.flatnonzero(free)

    def sub(x: np.ndarray) -> float:
        full = v.copy()
        full[idx] = x
        return crit(full)

    H = hessian(sub, v[idx], _steps(v[idx], [vp.kinds[i] for i in idx], rel_step))
    se = np.full(vp.size, np.nan)
    try:
        cov = 2.0 * np.linalg.inv(H)
        se[idx] = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        warnings.warn("singular Hessian of the criterion: no SEs", SingularFitWarning,
                      stacklevel=2)
    est = v.copy()
    if scale == "logsd":
        logged = np.array([k != "cor" for k in vp.kinds])
        se = np.where(logged, se / np.where(v > 0, v, np.nan), se)
        est = np.where(logged, np.log(np.where(v > 0, v, np.nan)), v)
    return pd.DataFrame({"par": list(vp.names), "kind": list(vp.kinds), "estimate": est,
                         "se": se, "scale": scale})


def _interior(v: np.ndarray, vp: VarPars, tol: float = 1e-4) -> np.ndarray:
    """Parameters away from their bounds (and correlations of terms with no zero SD).

    An SD counts as zero below ``tol`` σ (lme4's singularity tolerance on θ).
    """
    kinds = np.array(vp.kinds)
    scale = np.where(kinds == "cor", 1.0, v[-1])
    ok = (v - vp.lower > tol * scale) & (vp.upper - v > tol * scale)
    for t in vp.terms:
        pos = np.arange(t.theta.start, t.theta.stop)
        if not ok[pos][kinds[pos] == "sd"].all():
            ok[pos[kinds[pos] == "cor"]] = False
    return ok
