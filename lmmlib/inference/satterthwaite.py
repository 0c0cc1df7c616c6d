"""t-tests for fixed effects with Satterthwaite's degrees of freedom, as lmerTest.

For a contrast L'β the variance is v(φ) = L' V(φ) L, where V(φ) = σ² (R_X'R_X)⁻¹(θ)
is the covariance of β̂ as a function of the variance parameters φ = (θ, σ).
Satterthwaite's approximation gives the denominator degrees of freedom

    df = 2 v(φ̂)² / (g' A g),    g = ∂v/∂φ,    A = 2 H⁻¹,

where H is the Hessian of the REML criterion (REML fits) or of the deviance
(ML fits) in φ, profiled over β only, so that A is the asymptotic covariance
of φ̂ (Kuznetsova, Brockhoff & Christensen, 2017, *J. Stat. Softw.* 82(13)).

lmerTest 3.1 differentiates numerically with numDeriv's Richardson scheme; the
same scheme is used here (:func:`richardson_hessian`, :func:`richardson_jacobian`:
the same steps, four halvings and extrapolation), so the degrees of freedom agree
with lmerTest's to the accuracy of the fitted θ rather than to that of two
different difference formulas.  As in lmerTest, H is inverted through its
eigen-decomposition keeping the eigenvalues above 1e-8 only (a warning names
the negative or near-zero ones), and boundary fits (a θ at 0) are handled as
numDeriv does: the step there is absolute (1e-4) and crosses zero, where the
criterion is even in θ, so the derivative in that direction vanishes and the
df come from the remaining parameters (dyestuff2: df = n − p).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from scipy import stats

from ..checks import as_bool, as_choice, as_instance
from ..engine.differences import richardson_hessian, richardson_jacobian
from ..engine.pls import PLS
from ..engine.threads import blas_threads
from ..errors import ArgumentError, ConvergenceWarning
from ..kinds import LinearMixedFit

__all__ = ["SatterthwaiteParts", "coef_table", "satterthwaite_parts"]

#: Eigenvalues of H within ±_EIG_TOL count as zero (lmerTest's tol).
_EIG_TOL = 1e-8

DDF_METHODS = ("satterthwaite", "residual")

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# -- the pieces of Satterthwaite's approximation ------------------------------------
@dataclass(frozen=True)
class SatterthwaiteParts:
    """Covariances and derivatives at one (θ, σ) from which the df follow.

    Attributes
    ----------
    vcov_beta : ndarray (p, p)
        σ² (R_X'R_X)⁻¹, the covariance of β̂.
    vcov_varpar : ndarray (k, k)
        2 H⁻¹ for φ = (θ, σ) (lmerTest's ``vcov_varpar``).
    jacobian : ndarray (k, p, p)
        ∂ vcov_beta / ∂φ_j (lmerTest's ``Jac_list``).
    """

    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray

    def df(self, L: np.ndarray) -> np.ndarray:
        """Satterthwaite df of the contrasts in the rows of ``L`` (shape (m, p) or (p,))."""
        p = self.vcov_beta.shape[0]
        try:
            L = np.atleast_2d(np.asarray(L, dtype=float))
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"L must be a matrix of contrasts with {p} columns") from exc
        if L.ndim != 2 or L.shape[1] != p or not np.isfinite(L).all():
            raise ArgumentError(f"L must be finite contrasts of shape (m, {p}) or ({p},), "
                                f"got shape {L.shape}")
        var = np.einsum("mi,ij,mj->m", L, self.vcov_beta, L)
        grad = np.einsum("mi,kij,mj->mk", L, self.jacobian, L)
        denom = np.einsum("mk,kl,ml->m", grad, self.vcov_varpar, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 * var**2 / denom


def _unit_vcov(pls: PLS, theta: np.ndarray) -> np.ndarray:
    """(R_X'R_X)⁻¹ at θ, i.e. the covariance of β̂ in units of σ²."""
    LX = pls.solve(theta).LX
    Li = scipy.linalg.solve_triangular(LX, np.eye(LX.shape[0]), lower=True, check_finite=False)
    return Li.T @ Li


def _pseudo_inverse(H: np.ndarray) -> np.ndarray:
    """Inverse of H on its positive eigenvalues, warning about the others (as lmerTest)."""
    values, vectors = np.linalg.eigh(H)
    neg, pos = values < -_EIG_TOL, values > _EIG_TOL
    zero = ~neg & ~pos
    for mask, what in ((neg, "negative"), (zero, "close to zero")):
        if mask.any():
            shown = " ".join(f"{v:.1e}" for v in values[mask])
            warnings.warn(f"Hessian of the criterion in (theta, sigma) has {mask.sum()} "
                          f"eigenvalue(s) {what}: {shown}; the model may not have "
                          "converged and the Satterthwaite df ignore those directions",
                          ConvergenceWarning, stacklevel=4)
    V = vectors[:, pos]
    return (V / values[pos]) @ V.T


def satterthwaite_parts(pls: PLS, theta: np.ndarray, sigma: float,
                        reml: bool) -> SatterthwaiteParts:
    """Covariance of (θ, σ) and Jacobian of vcov(β̂) at (θ, σ), as lmerTest.

    Parameters
    ----------
    pls : PLS
        The model's penalised least-squares problem (``model.pls``).
    theta : ndarray
        Relative covariance parameters (lme4's order).
    sigma : float
        Residual standard deviation.
    reml : bool
        Differentiate the REML criterion (True) or the deviance.

    Returns
    -------
    SatterthwaiteParts
    """
    reml = as_bool(reml, "reml")
    theta = np.asarray(theta, dtype=float)
    nt = theta.size
    varpar = np.append(theta, float(sigma))
    with blas_threads(1):
        H = richardson_hessian(lambda v: pls.deviance_at(v[:nt], v[nt], reml), varpar)
        unit = _unit_vcov(pls, theta)
        jac_theta = richardson_jacobian(lambda t: _unit_vcov(pls, t), theta)
    if not np.all(np.isfinite(H)):
        warnings.warn("the criterion is not finite near (theta, sigma); Satterthwaite df "
                      "are not available", ConvergenceWarning, stacklevel=3)
        A = np.full_like(H, np.nan)
    else:
        A = 2.0 * _pseudo_inverse(H)
    # vcov is σ² times a function of θ: the σ-derivative 2σ·unit is exact
    jac = np.concatenate([sigma**2 * jac_theta, (2.0 * sigma * unit)[None]], axis=0)
    return SatterthwaiteParts(sigma**2 * unit, A, jac)


def _model_parts(model: Any) -> SatterthwaiteParts:
    """Satterthwaite pieces at the fitted (θ̂, σ̂), computed once per model."""
    parts = _cache.get(model)
    if parts is None:
        parts = satterthwaite_parts(model.pls, model.theta, model.sigma, model.reml)
        _cache[model] = parts
    return parts


def coef_table(model: Any, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Fixed-effects t-tests with lmerTest's columns.

    Parameters
    ----------
    model : LinearMixedModel
        A fit from :func:`lmmlib.lmer`.
    ddf : {"satterthwaite", "residual"}
        Denominator degrees of freedom: Satterthwaite's approximation (lmerTest's
        default for ``summary()``) or the residual df n − p of the fixed-effects
        design.  The latter ignores the grouping, so for effects that vary between
        groups only it is far too large (anticonservative); it is offered for
        comparison with software that reports it.

    Returns
    -------
    DataFrame
        Rows: fixed effects; columns ``Estimate``, ``Std. Error``, ``df``,
        ``t value``, ``Pr(>|t|)`` (two-sided).

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit or ``ddf`` is not one of the methods.
    """
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    method = as_choice(ddf, "ddf", DDF_METHODS)
    est, se = model.fixef.to_numpy(), model.se.to_numpy()
    p = est.size
    if method == "satterthwaite":
        df = _model_parts(model).df(np.eye(p)) if p else np.empty(0)
    else:
        df = np.full(p, float(model.nobs - p))
    tval = est / se
    pval = 2.0 * stats.t.sf(np.abs(tval), df)
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": tval,
                         "Pr(>|t|)": pval}, index=model.fixef.index)
