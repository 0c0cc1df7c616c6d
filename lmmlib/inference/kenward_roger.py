"""Kenward–Roger adjusted covariance of β̂ and F-tests, as pbkrtest.

For a linear mixed model with marginal covariance Σ = Σ_r γ_r G_r, linear in
the variance parameters γ (the variances and covariances of every random term
in lme4's order, then the residual variance σ²), Kenward & Roger (1997) replace
Φ = (X'Σ⁻¹X)⁻¹ by the small-sample corrected

    Φ_A = Φ + 2 Φ U Φ,   U = Σ_{r,s} W_rs (Q_rs − P_r Φ P_s),

with P_r = −X'Σ⁻¹G_rΣ⁻¹X, Q_rs = X'Σ⁻¹G_rΣ⁻¹G_sΣ⁻¹X and W = 2 I_E⁻¹, I_E
the expected REML information of γ:

    (I_E)_rs = tr(Σ⁻¹G_rΣ⁻¹G_s) − 2 tr(Φ Q_rs) + tr(Φ P_r Φ P_s).

(The term in the second derivatives of Σ vanishes because Σ is linear in γ.)
A Wald statistic F = (Lβ̂)'(LΦ_AL')⁻¹(Lβ̂)/q is then scaled and referred to
F(q, m) with the moments-matched denominator df m (Halekoh & Højsgaard, 2014,
*J. Stat. Softw.* 59(9), pbkrtest's ``vcovAdj`` and ``KRmodcomp``).

Σ⁻¹ is never formed: with U = ZΛ, Σ⁻¹ = σ⁻²(I − U C⁻¹U'), C = I + U'U, so
every trace and product above needs only the n×(p+q) products Σ⁻¹[X Z] and
dense q×q matrices (q the number of random effects; N×N only implicitly,
tr(Σ⁻²) in closed form).  This is meant for data of course size: memory is of
order n·q and time of order n·q², so a model with many thousands of random
effects is slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from scipy import stats

from ..checks import as_instance, unweighted
from ..engine.design import Design
from ..engine.pls import z_matrix
from ..errors import ArgumentError
from ..kinds import LinearMixedFit

__all__ = ["KRParts", "kr_coef_table", "kr_parts", "kr_test", "lambda_z"]

#: Below this smallest |eigenvalue| of I_E, pbkrtest inverts by a pseudo-inverse.
_CONDITION_TOL = 1e-10


@dataclass(frozen=True)
class KRParts:
    """The pieces of the Kenward–Roger adjustment at one (θ, σ).

    Attributes
    ----------
    vcov_beta : ndarray (p, p)
        Φ = σ²(X'V⁻¹X)⁻¹, the usual covariance of β̂.
    vcov_adjusted : ndarray (p, p)
        Φ_A, the adjusted covariance (pbkrtest's ``vcovAdj``).
    P : list of ndarray (p, p)
        −X'Σ⁻¹G_rΣ⁻¹X for every variance parameter.
    W : ndarray (m, m)
        2 I_E⁻¹, the asymptotic covariance of the variance parameters γ.
    """

    vcov_beta: np.ndarray
    vcov_adjusted: np.ndarray
    P: list
    W: np.ndarray


def _param_matrices(design: Design) -> list[sp.csr_matrix]:
    """E_r with G_r = Z E_r Z' for every covariance parameter (pbkrtest's order)."""
    sizes = [b.nlevels * b.q for b in design.blocks]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    total = int(starts[-1])
    out = []
    for t in design.reterms:
        b = design.blocks[t.block]
        base = starts[t.block] + np.arange(b.nlevels) * b.q + t.offset
        for col in range(t.q):
            for row in range(col, t.q):
                r, c = base + row, base + col
                rows, cols = (r, c) if row == col else (np.r_[r, c], np.r_[c, r])
                out.append(sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                         shape=(total, total)))
    return out


def lambda_z(design: Design, theta: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The sparse Z (n × q, level-major within blocks) and ZΛ at θ."""
    Z, U = [], []
    for b in design.blocks:
        Zb = z_matrix(b)
        lam = sp.kron(sp.identity(b.nlevels), sp.csr_matrix(b.lam(theta)))
        Z.append(Zb)
        U.append(Zb @ lam)
    return sp.hstack(Z).tocsr(), sp.hstack(U).tocsr()


def kr_parts(design: Design, theta: np.ndarray, sigma: float) -> KRParts:
    """Φ, Φ_A and the pieces of the KR df at (θ, σ), as pbkrtest's ``vcovAdj``.

    Parameters
    ----------
    design : Design
        The model's design (``model.design``).
    theta, sigma
        The variance parameters (relative covariance factor and residual SD);
        for a REML fit, its estimates.

    Returns
    -------
    KRParts
    """
    if design.weights is not None:
        raise ArgumentError("Kenward-Roger is not available for a model with prior weights; "
                            "use ddf='Satterthwaite'")
    X = design.X
    n, p = X.shape
    s2 = float(sigma) ** 2
    Z, U = lambda_z(design, np.asarray(theta, dtype=float))
    Ud = U.toarray()
    C = np.eye(Ud.shape[1]) + Ud.T @ Ud
    cf = scipy.linalg.cho_factor(C, lower=True, check_finite=False)

    def sinv(M: np.ndarray) -> np.ndarray:  # Σ⁻¹ M
        return (M - Ud @ scipy.linalg.cho_solve(cf, Ud.T @ M, check_finite=False)) / s2

    Zd = Z.toarray()
    SX, SZ = sinv(X), sinv(Zd)
    phi = np.linalg.inv(X.T @ SX)
    phi = (phi + phi.T) / 2
    Wz = Zd.T @ SX              # Z'Σ⁻¹X
    A = Zd.T @ SZ               # Z'Σ⁻¹Z
    B = SZ.T @ SZ               # Z'Σ⁻²Z
    F = SZ.T @ SX               # Z'Σ⁻²X
    Cinv = scipy.linalg.cho_solve(cf, np.eye(C.shape[0]), check_finite=False)
    trace_s2 = (n - C.shape[0] + float(np.sum(Cinv * Cinv))) / s2**2   # tr(Σ⁻²)
    E = _param_matrices(design)
    m = len(E) + 1
    EA = [e @ A for e in E]
    EW = [e @ Wz for e in E]
    P = [-(Wz.T @ ew) for ew in EW] + [-(SX.T @ SX)]
    Q: dict[tuple[int, int], np.ndarray] = {}
    K = np.empty((m, m))
    for r in range(m - 1):
        for s in range(r, m - 1):
            Q[r, s] = EW[r].T @ A @ EW[s]
            K[r, s] = K[s, r] = float(np.sum(EA[r] * EA[s].T))
        Q[r, m - 1] = EW[r].T @ F
        K[r, m - 1] = K[m - 1, r] = float((E[r].multiply(B)).sum())
    Q[m - 1, m - 1] = SX.T @ sinv(SX)
    K[m - 1, m - 1] = trace_s2
    info = np.empty((m, m))
    for r in range(m):
        for s in range(r, m):
            info[r, s] = info[s, r] = (K[r, s] - 2 * np.sum(phi * Q[r, s])
                                       + np.sum((phi @ P[r]) * (P[s] @ phi)))
    condition = np.min(np.abs(np.linalg.eigvalsh(info)))
    W = 2 * (np.linalg.inv(info) if condition > _CONDITION_TOL else np.linalg.pinv(info))
    W = (W + W.T) / 2
    Uadj = np.zeros((p, p))
    for r in range(m):
        for s in range(r + 1, m):
            Uadj += W[r, s] * (Q[r, s] - P[r] @ phi @ P[s])
    Uadj = Uadj + Uadj.T
    for r in range(m):
        Uadj += W[r, r] * (Q[r, r] - P[r] @ phi @ P[r])
    adjusted = phi + 2 * phi @ Uadj @ phi
    return KRParts(phi, (adjusted + adjusted.T) / 2, P, W)


def kr_test(parts: KRParts, L: np.ndarray, beta: np.ndarray) -> dict[str, float]:
    """Kenward–Roger F-test of L β = 0 (pbkrtest's ``KRmodcomp`` with a matrix).

    Returns
    -------
    dict
        ``F_unscaled`` (Wald statistic with Φ_A over q), ``F`` (scaled),
        ``scaling``, ``ndf`` (q, the rank of L), ``ddf`` and ``p`` (of the
        scaled F on (q, ddf)).
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    beta = np.asarray(beta, dtype=float)
    if L.shape[1] != beta.size:
        raise ArgumentError(f"L must have {beta.size} columns, got {L.shape[1]}")
    phi, P, W = parts.vcov_beta, parts.P, parts.W
    Theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    ThetaPhi = Theta @ phi
    us = [ThetaPhi @ Pi @ phi for Pi in P]
    traces = np.array([np.trace(u) for u in us])
    m = len(P)
    A1 = A2 = 0.0
    for i in range(m):
        for j in range(i, m):
            e = 1.0 if i == j else 2.0
            A1 += e * W[i, j] * traces[i] * traces[j]
            A2 += e * W[i, j] * float(np.sum(us[i] * us[j].T))
    q = int(np.linalg.matrix_rank(L))
    Bq = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    V0 = 1 + c1 * Bq
    V1 = 1 - c2 * Bq
    V2 = 1 - c3 * Bq
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    num = 1 - A2 / q
    ratio = 1.0 if abs(num) < 1e-14 and abs(V1) < 1e-14 else num / V1
    rho = ratio**2 * V0 / V2 / q
    ddf = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(ddf - 2) < 0.01 else ddf * (1 - A2 / q) / (ddf - 2)
    Lb = L @ beta
    wald = float(Lb @ np.linalg.solve(L @ parts.vcov_adjusted @ L.T, Lb))
    f_unscaled = wald / q
    f = scaling * f_unscaled
    return {"F_unscaled": f_unscaled, "F": f, "scaling": scaling, "ndf": q, "ddf": ddf,
            "p": float(stats.f.sf(f, q, ddf))}


def kr_coef_table(model: Any) -> pd.DataFrame:
    """Fixed-effects t-tests with Kenward–Roger's df (lmerTest's KR ``summary``).

    As lmerTest's ``coef(summary(m, ddf = "Kenward-Roger"))``.

    The standard errors are those of the adjusted covariance Φ_A; t = β̂/SE on
    the KR df of each coefficient (pbkrtest's ``Lb_ddf``).

    Parameters
    ----------
    model : LinearMixedModel
        A REML fit of :func:`lmmlib.lmer`.

    Returns
    -------
    DataFrame
        Columns ``Estimate``, ``Std. Error``, ``df``, ``t value``, ``Pr(>|t|)``.

    Raises
    ------
    ArgumentError
        For a model that is not an ``lmer`` fit or an ML fit.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> kr_coef_table(m)["df"].round(1).tolist()  # lmerTest: 58.55889, 383
    [58.6, 383.0]
    """
    unweighted(model, "Kenward-Roger")
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    if not model.reml:
        raise ArgumentError("Kenward-Roger's method is only available for REML fits "
                            "(refit with reml=True)")
    est = model.fixef.to_numpy()
    parts = kr_parts(model.design, model.theta, model.sigma)
    se = np.sqrt(np.diag(parts.vcov_adjusted))
    eye = np.eye(est.size)
    df = np.array([kr_test(parts, eye[[j]], est)["ddf"] for j in range(est.size)])
    tval = est / se
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": tval,
                         "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(tval), df)},
                        index=model.fixef.index)
