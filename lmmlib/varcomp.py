"""θ ↔ variance components: the one place that converts between parameterisations.

θ holds, term by term, the lower triangle (column by column) of the relative
covariance factor Λ_t, so that the covariance matrix of the term's random
effects is Σ_t = σ² Λ_t Λ_tᵀ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .reterms import ReTerm

__all__ = ["term_lambda", "term_covariances", "varcorr_frame", "theta_from_covariances"]


def term_lambda(theta: np.ndarray, term: ReTerm) -> np.ndarray:
    """Λ_t (q×q, lower triangular) of one term."""
    q = term.q
    lam = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # column-major order of the lower triangle
    lam[rows[order], cols[order]] = theta[term.theta]
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
        lam = np.linalg.cholesky(np.atleast_2d(cov) / sigma**2 + 0.0)
        rows, cols = np.tril_indices(lam.shape[0])
        order = np.lexsort((rows, cols))
        parts.append(lam[rows[order], cols[order]])
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
            rows.append((t.group, name, None, cov[i, i], sd[i]))
        for j in range(t.q):
            for i in range(j + 1, t.q):
                denom = sd[i] * sd[j]
                corr = cov[i, j] / denom if denom > 0 else np.nan
                rows.append((t.group, t.colnames[j], t.colnames[i], cov[i, j], corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])
