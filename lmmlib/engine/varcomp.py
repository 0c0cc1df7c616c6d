"""θ ↔ variance components: the one place that converts between parameterisations.

θ holds, term by term, the lower triangle (column by column) of the relative
covariance factor Λ_t, so that the covariance matrix of the term's random
effects is Σ_t = σ² Λ_t Λ_tᵀ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .reterms import ReTerm

if TYPE_CHECKING:
    from .pls import PLS

__all__ = ["VarPars", "term_lambda", "term_covariances", "varcorr_frame", "theta_from_covariances"]


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


def term_lambda(theta: np.ndarray, term: ReTerm) -> np.ndarray:
    """Λ_t (q×q, lower triangular) of one term."""
    lam = np.zeros((term.q, term.q))
    lam[_colmajor_tril(term.q)] = theta[term.theta]
    return lam


def term_covariances(theta: np.ndarray, sigma: float, terms: Sequence[ReTerm]) -> list[np.ndarray]:
    """Σ_t = σ² Λ_t Λ_tᵀ for every term."""
    out = []
    for t in terms:
        lam = term_lambda(theta, t)
        out.append(sigma**2 * lam @ lam.T)
    return out


def theta_from_covariances(covs: Sequence[np.ndarray], sigma: float) -> np.ndarray:
    """Inverse of :func:`term_covariances` (Cholesky factors scaled by σ)."""
    parts = []
    for cov in covs:
        lam = _chol_psd(np.atleast_2d(cov) / sigma**2)
        parts.append(lam[_colmajor_tril(lam.shape[0])])
    return np.concatenate(parts) if parts else np.zeros(0)


def varcorr_frame(theta: np.ndarray, sigma: float, terms: Sequence[ReTerm]) -> pd.DataFrame:
    """Variance components as lme4's ``as.data.frame(VarCorr(m))``.

    Columns ``group, var1, var2, vcov, sdcor``: for each term its variances
    (``var2`` missing, ``sdcor`` the standard deviation), then its covariances
    (``sdcor`` the correlation), then the residual row.
    """
    rows = []
    for t, cov in zip(terms, term_covariances(theta, sigma, terms), strict=True):
        sd = np.sqrt(np.diag(cov))
        for i, name in enumerate(t.colnames):
            rows.append((t.label, name, None, cov[i, i], sd[i]))
        for j in range(t.q):
            for i in range(j + 1, t.q):
                denom = sd[i] * sd[j]
                corr = cov[i, j] / denom if denom > 0 else np.nan
                rows.append((t.label, t.colnames[j], t.colnames[i], cov[i, j], corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


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
