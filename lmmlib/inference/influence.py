"""Leverages and Cook's distances of a linear mixed model, as lme4.

The fitted values of the penalised least-squares problem are ŷ = H y with

    H = A M⁻¹ A',   A = [ZΛ  X],   M = A'A + diag(I_q, 0_p),

the hat matrix "including the random effects" that ``lme4:::hatvalues.merMod``
takes the diagonal of.  Only the diagonal is computed: h_i = a_i' M⁻¹ a_i for
the rows a_i of A, in chunks of rows, so no n × n matrix is formed (memory of
order (q + p)² for a dense factor of M, or a sparse LU of M when q is large).

Cook's distance is lme4's ``cooks.distance.merMod``:
D_i = (r_i/(1 − h_i))² h_i/(σ̂² p), r_i the Pearson (here: raw) residual and p
the rank of X; an infinite value (h_i = 1) becomes NaN as in lme4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from ..checks import as_instance, unweighted
from ..kinds import LinearMixedFit
from .kenward_roger import lambda_z

__all__ = ["cooks_distance", "hatvalues"]

#: Above this size of M its factor is a sparse LU instead of a dense Cholesky.
DENSE_MAX = 3000
#: Rows of A processed at once (bounds the memory of M⁻¹A' to CHUNK·(q + p)).
CHUNK = 4096


def _leverage(U: sp.csr_matrix, X: np.ndarray,
              y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """diag(H) and, given y, the PLS fitted values H y = A M⁻¹A'y (no n × n matrix)."""
    q = U.shape[1]
    A = sp.hstack([U, sp.csr_matrix(X)]).tocsr()
    M = (A.T @ A).tocsc() + sp.diags(np.r_[np.ones(q), np.zeros(X.shape[1])])
    if M.shape[0] <= DENSE_MAX:
        cf = scipy.linalg.cho_factor(M.toarray(), lower=True, check_finite=False)

        def solve(B: np.ndarray) -> np.ndarray:
            return scipy.linalg.cho_solve(cf, B, check_finite=False)
    else:
        solve = scipy.sparse.linalg.splu(M.tocsc()).solve
    n = A.shape[0]
    out = np.empty(n)
    for start in range(0, n, CHUNK):
        dense = A[start:start + CHUNK].toarray()
        out[start:start + CHUNK] = np.einsum("ij,ji->i", dense, solve(dense.T))
    fitted = None if y is None else A @ solve(np.asarray(A.T @ y).ravel())
    return out, fitted


def _hat_diagonal(U: sp.csr_matrix, X: np.ndarray) -> np.ndarray:
    """diag(H) for U = ZΛ and X."""
    return _leverage(U, X)[0]


def hatvalues(model: Any) -> pd.Series:
    """Diagonal of the hat matrix of a mixed model's PLS fit (``lme4:::hatvalues.merMod``).

    Parameters
    ----------
    model : LinearMixedModel
        A fit of :func:`lmmlib.lmer`.

    Returns
    -------
    Series
        One leverage per observation (index of the model frame; with
        ``na_action="exclude"`` the data's rows, NaN where a row was left out,
        as lme4's ``napredict``); they sum to the effective number of
        parameters, between p and p + q.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> h = hatvalues(m)
    >>> bool(2 < h.sum() < 2 + 48)
    True
    """
    unweighted(model, "hatvalues")
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    _, U = lambda_z(model.design, model.theta)
    return model.design.pad(_hat_diagonal(U, model.design.X), "hat")


def cooks_distance(model: Any) -> pd.Series:
    """Cook's distances of a mixed model's observations (lme4's ``cooks.distance.merMod``).

    D_i = (r_i/(1 − h_i))² h_i/(σ̂² p) with the leverages of :func:`hatvalues`
    and the residuals of the PLS fit.

    Parameters
    ----------
    model : LinearMixedModel
        A fit of :func:`lmmlib.lmer`.

    Returns
    -------
    Series

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> bool(cooks_distance(m).idxmax() in m.model_frame.index)
    True
    """
    unweighted(model, "cooks_distance")
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    design = model.design
    _, U = lambda_z(design, model.theta)
    h, fitted = _leverage(U, design.X, design.y)
    r = design.y - fitted
    p = np.linalg.matrix_rank(design.X)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (r / (1 - h)) ** 2 * h / (model.sigma**2 * p)
    d[np.isinf(d)] = np.nan
    return design.pad(d, "cooks")
