"""The textbook route: marginal covariance, generalised least squares and BLUPs.

With y = Xβ + Zb + ε, b ~ N(0, G) and ε ~ N(0, σ²I), the marginal covariance
is V = ZGZ' + σ²I, the GLS estimator β̂ = (X'V⁻¹X)⁻¹X'V⁻¹y and the BLUP
b̂ = GZ'V⁻¹(y − Xβ̂).  These functions build the n×n matrix V on purpose, to
show the formulas; they are for teaching and checking, not for fitting (the
engine in :mod:`lmmlib.engine.pls` never forms V).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from ..engine.pls import z_matrix
from ..errors import DataError
from ..models.lmm import LinearMixedModel

__all__ = ["GLSFit", "gls", "marginal_covariance", "random_effects_design", "blup"]

MAX_DENSE_N = 20_000


@dataclass(frozen=True)
class GLSFit:
    """Result of :func:`gls`: β̂, its covariance and standard errors."""

    beta: np.ndarray
    cov: np.ndarray

    @property
    def se(self) -> np.ndarray:
        """Standard errors √diag(cov)."""
        return np.sqrt(np.diag(self.cov))


def gls(X: np.ndarray, y: np.ndarray, V: np.ndarray) -> GLSFit:
    """Generalised least squares β̂ = (X'V⁻¹X)⁻¹X'V⁻¹y.

    Parameters
    ----------
    X : (n, p) array
        Fixed-effects design.
    y : (n,) array
        Response.
    V : (n, n) array
        Covariance of y (positive definite).

    Returns
    -------
    GLSFit
        ``beta`` and ``cov`` = (X'V⁻¹X)⁻¹.
    """
    X, y, V = np.asarray(X, float), np.asarray(y, float), np.asarray(V, float)
    if V.shape != (len(y), len(y)) or X.shape[0] != len(y):
        raise DataError(f"shapes do not match: X {X.shape}, y {y.shape}, V {V.shape}")
    try:
        factor = scipy.linalg.cho_factor(V, lower=True)
    except np.linalg.LinAlgError as exc:
        raise DataError("V is not positive definite") from exc
    vx, vy = scipy.linalg.cho_solve(factor, X), scipy.linalg.cho_solve(factor, y)
    cov = np.linalg.inv(X.T @ vx)
    return GLSFit(cov @ (X.T @ vy), cov)


def random_effects_design(model: LinearMixedModel) -> tuple[sp.csr_matrix, np.ndarray]:
    """Z (sparse, n × q) and G = Cov(b) (dense q × q) of a fitted model."""
    blocks = model.design.blocks
    Z = sp.hstack([z_matrix(b) for b in blocks]).tocsr()
    parts = []
    for b in blocks:
        lam = b.lam(model.theta)
        parts.append(np.kron(np.eye(b.nlevels), model.sigma**2 * lam @ lam.T))
    return Z, scipy.linalg.block_diag(*parts)


def marginal_covariance(model: LinearMixedModel) -> np.ndarray:
    """The n×n marginal covariance V = ZGZ' + σ²I at the estimates (dense)."""
    if model.nobs > MAX_DENSE_N:
        raise DataError(f"{model.nobs} observations: the dense n×n V would be too large")
    Z, G = random_effects_design(model)
    Zd = Z.toarray()
    return Zd @ G @ Zd.T + model.sigma**2 * np.eye(model.nobs)


def blup(model: LinearMixedModel, beta: np.ndarray | None = None) -> pd.DataFrame:
    """BLUPs by the textbook formula b̂ = GZ'V⁻¹(y − Xβ̂).

    Parameters
    ----------
    model : LinearMixedModel
        A fit providing X, y and the variance components.
    beta : ndarray, optional
        Fixed effects to use (default: the GLS estimate with V).

    Returns
    -------
    DataFrame
        Same rows and columns as ``model.ranef(condvar=False)``.
    """
    V = marginal_covariance(model)
    X, y = model.design.X, model.design.y
    if beta is None:
        beta = gls(X, y, V).beta
    Z, G = random_effects_design(model)
    b = G @ (Z.T @ scipy.linalg.solve(V, y - X @ beta, assume_a="pos"))
    out = model.ranef(condvar=False)
    values, o = [], 0
    for blk in model.design.blocks:
        w = blk.nlevels * blk.q
        values.append(b[o : o + w].reshape(blk.nlevels, blk.q).T.ravel())
        o += w
    out["condval"] = np.concatenate(values)
    return out
