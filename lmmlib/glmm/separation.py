"""Separation: when the fixed effects fit some binary or count responses exactly.

:func:`find_separation` solves the linear programme that says whether the
fixed effects separate the response (R's glm.fit warns "fitted probabilities
numerically 0 or 1 occurred" when they do) and which coefficients diverge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from ..errors import ConvergenceWarning
from .family import MU_EPS, Family

__all__ = ["SEPARATED_ETA", "Separation", "SeparationWarning", "find_separation"]

SEPARATED_ETA = float(-np.log(10.0 * MU_EPS))  # 33.7: μ = 10·eps, glm.fit's "numerically 0"
LP_TOL = 1e-7  # margins of the separation LP (columns scaled to max |x| = 1)


class SeparationWarning(ConvergenceWarning):
    """The fixed effects separate the response: some estimates are infinite.

    Issued by :func:`lmmlib.glmer` when a linear combination of the fixed
    effects is ≥ 0 wherever the response is 1 (all successes), ≤ 0 wherever it
    is 0, and 0 elsewhere (complete or quasi-complete separation): the
    likelihood then keeps increasing as the coefficients of the columns the
    warning names go to ±∞.  Also issued, as R's glm.fit does, when fitted
    probabilities (or Poisson means) are numerically 0 or 1 at the optimum
    without such a combination.
    """



@dataclass(frozen=True)
class Separation:
    """A direction of the fixed effects along which the likelihood increases forever.

    Attributes
    ----------
    direction : ndarray
        d (in the units of β) with s_i·x_iᵀd ≥ 0 for every observation, > 0 for
        the separated ones and = 0 for those whose response is not at a
        boundary (s_i from :meth:`Family.boundary_signs`).
    rows : ndarray of bool
        The separated observations: fitted exactly (μ → 0 or 1) as β → β + t·d, t → ∞.
    signs : ndarray
        s_i of every observation.
    columns : tuple of str
        The fixed effects whose coefficient moves along some separating direction.
    complete : bool
        Every observation with a positive weight is separated.
    """

    direction: np.ndarray
    rows: np.ndarray
    signs: np.ndarray
    columns: tuple[str, ...]
    complete: bool

    def margins(self, X: np.ndarray) -> np.ndarray:
        """s_i·x_iᵀd of the separated rows (all > 0)."""
        return self.signs[self.rows] * (X[self.rows] @ self.direction)

    def message(self, family: Family, nobs: int) -> str:
        """The warning of :func:`lmmlib.glmer`, naming the diverging fixed effects."""
        kind = "complete" if self.complete else "quasi-complete"
        cols = ", ".join(repr(c) for c in self.columns)
        what = ("fitted probabilities numerically 0 or 1" if family.name == "binomial"
                else "fitted means numerically 0")
        return (f"{kind} separation is likely: the fixed effect(s) {cols} separate "
                f"{int(self.rows.sum())} of {nobs} observations (whose responses are at 0 or "
                f"at their maximum) from the others, so the estimates of {cols} diverge "
                f"to +-infinity ({what}, as glm.fit warns); they are reported where those "
                f"fitted values reach 10*eps (|eta| = {SEPARATED_ETA:.1f}), their standard "
                "errors are meaningless, and the other estimates are those of the limit. "
                "Remove or merge the columns (levels), or use a penalised fit")


def _separating_lp(Xs: np.ndarray, s: np.ndarray, ineq: np.ndarray, eq: np.ndarray,
                   target: np.ndarray) -> np.ndarray | None:
    """max Σ_target s_i x_iᵀd over |d_j| ≤ 1, s_i x_iᵀd ≥ 0 (ineq), x_iᵀd = 0 (eq)."""
    c = -(s[target, None] * Xs[target]).sum(axis=0)
    a_ub = -(s[ineq, None] * Xs[ineq])
    a_eq = Xs[eq] if eq.any() else None
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), A_eq=a_eq,
                  b_eq=None if a_eq is None else np.zeros(a_eq.shape[0]),
                  bounds=(-1.0, 1.0), method="highs")
    if res.status != 0 or -res.fun <= LP_TOL:
        return None
    return np.asarray(res.x, dtype=float)


def _certified_unseparated(X: np.ndarray, Xs: np.ndarray, y: np.ndarray, wt: np.ndarray,
                           family: Family, s: np.ndarray, ineq: np.ndarray,
                           beta: np.ndarray) -> bool:
    """Whether the GLM score at β (after one more IRLS step) proves the LP would find nothing.

    With λ_i = wt_i s_i (y_i − μ_i) > 0 on the rows of ``ineq`` and
    g = Xsᵀ wt (y − μ), any feasible d of the LP (|d_j| ≤ 1, x_iᵀd = 0 off
    ``ineq``) has Σ_ineq s_i x_iᵀd ≤ g·d / min λ ≤ ‖g‖₁ / min λ; below LP_TOL the
    LP's optimum cannot exceed its threshold.  A GLM whose estimates are finite
    has g ≈ 0, which spares the LP on large data.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mu = family.linkinv(X @ beta)
        w = wt * family.variance(mu)
        A = X.T @ (w[:, None] * X)
        b = X.T @ (wt * (y - mu))
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            return False
        try:
            beta = beta + np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            return False
        mu = family.linkinv(X @ beta)
        resid = wt * (y - mu)
        lam = s[ineq] * resid[ineq]
        g = np.abs(Xs.T @ resid).sum()
    return bool(np.all(np.isfinite(lam)) and lam.min() > 0 and g <= LP_TOL * lam.min())


def find_separation(X: np.ndarray, y: np.ndarray, wt: np.ndarray, family: Family,
                    names: Sequence[str], beta: np.ndarray | None = None) -> Separation | None:
    """Whether the columns of X separate the response (Konis's linear programme).

    A direction d with s_i·x_iᵀd ≥ 0 for all observations (and = 0 where
    s_i = 0) and > 0 for some exists if and only if the likelihood of the GLM
    (and, for fixed θ, of the GLMM) has no finite maximiser: moving β along d
    fits the observations with s_i·x_iᵀd > 0 ever better and leaves the others
    unchanged.  Each linear programme maximises the total margin of the
    observations not yet separated, over ``|d_j| ≤ 1`` on columns scaled to
    ``max |x| = 1``; the directions found are added up until no more observations
    separate.  X must have full column rank (as the design ensures).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix.
    y, wt : ndarray
        Response and prior weights (observations with weight 0 are ignored).
    family : Family
        Gives the boundary signs s_i.
    names : sequence of str
        Column names of X, for :attr:`Separation.columns`.
    beta : ndarray, optional
        The GLM's estimates, if known: when its score proves that no direction
        separates (see ``_certified_unseparated``), the LP is skipped.

    Returns
    -------
    Separation or None
        None when the response is not separated.
    """
    s = family.boundary_signs(np.asarray(y, dtype=float))
    use = np.asarray(wt) > 0
    ineq, eq = use & (s != 0), use & (s == 0)
    if not ineq.any() or X.shape[1] == 0:
        return None
    scale = np.abs(X[use]).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    if beta is not None and _certified_unseparated(X, Xs, np.asarray(y, dtype=float),
                                                   np.asarray(wt, dtype=float), family, s,
                                                   ineq, np.asarray(beta, dtype=float)):
        return None
    found, total = np.zeros(len(s), dtype=bool), np.zeros(X.shape[1])
    support = np.zeros(X.shape[1], dtype=bool)
    for _ in range(X.shape[1]):  # each round separates more observations, or stops
        d = _separating_lp(Xs, s, ineq, eq, ineq & ~found)
        if d is None:
            break
        sep = ineq & (s * (Xs @ d) > LP_TOL)
        if not (sep & ~found).any():
            break
        found |= sep
        support |= np.abs(d) > LP_TOL
        total += d
        if not (ineq & ~found).any():
            break
    if not found.any():
        return None
    columns = tuple(n for n, k in zip(names, support, strict=True) if k)
    return Separation(total / scale, found, s, columns, bool(found[use].all()))
