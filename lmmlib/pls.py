"""Stage 3: the profiled deviance / REML criterion by penalised least squares.

For a relative covariance factor Λ(θ) the random effects are b = Λu with
u ~ N(0, σ²I).  Given θ, β and u solve the penalised least-squares problem

    min ‖y − Xβ − ZΛu‖² + ‖u‖²,

whose normal equations have the blocked Cholesky factor

    [ L_θ    0  ]  with  L_θ L_θ' = Λ'Z'ZΛ + I.
    [ C'    L_X ]

The profiled deviance is ``log|L_θ|² + n (1 + log(2π r²/n))`` and the REML
criterion ``log|L_θ|² + log|L_X|² + (n−p)(1 + log(2π r²/(n−p)))``, r² being
the penalised residual sum of squares (Bates et al., 2015, *J. Stat. Softw.*).

Everything here works on cross-products computed once, so one evaluation costs
O(levels · q²·p) for the first grouping factor plus a dense Cholesky of the
remaining factors' random effects; no N×N matrix is ever formed.
The first block (the factor with most levels) is block-diagonal and is
factored level by level in a batched fashion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .design import Design
from .reterms import Block

__all__ = ["PLS", "PLSSolution", "z_matrix"]

LOG2PI = np.log(2.0 * np.pi)


def z_matrix(block: Block) -> sp.csr_matrix:
    """Sparse n × (levels·q) model matrix of one block (level-major columns)."""
    n, q = block.Z.shape
    cols = (block.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    rows = np.repeat(np.arange(n), q)
    return sp.csr_matrix((block.Z.ravel(), (rows, cols)), shape=(n, block.nlevels * q))


def _block_crossprod(block: Block) -> np.ndarray:
    """Per-level Z_i'Z_i of a block, shape (levels, q, q)."""
    k, q = block.nlevels, block.q
    out = np.empty((k, q, q))
    for a in range(q):
        for c in range(a, q):
            w = block.Z[:, a] * block.Z[:, c]
            out[:, a, c] = out[:, c, a] = np.bincount(block.codes, weights=w, minlength=k)
    return out


def _solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched L⁻¹B for lower-triangular (k, q, q) factors."""
    if L.shape[-1] == 1:
        return B / L
    return np.linalg.solve(L, B)


def _solve_upper(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched L⁻ᵀB for lower-triangular (k, q, q) factors."""
    if L.shape[-1] == 1:
        return B / L
    return np.linalg.solve(np.swapaxes(L, -1, -2), B)


@dataclass(frozen=True)
class PLSSolution:
    """Everything the penalised least-squares solve at one θ produced."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray  # spherical random effects, block after block, level-major
    r2: float  # penalised residual sum of squares
    logdet_theta: float  # log|L_θ|²
    logdet_x: float  # log|L_X|²
    L0: np.ndarray  # (k0, q0, q0) Cholesky factors of the first block
    T: np.ndarray | None  # (k0·q0, Q_R) coupling of the first block with the rest
    LR: np.ndarray | None  # (Q_R, Q_R) Cholesky factor of the remaining blocks
    LX: np.ndarray  # (p, p) Cholesky factor of the Schur complement for X


class PLS:
    """Cross-products of a design and the PLS solve as a function of θ.

    Parameters
    ----------
    design : Design
        Output of :func:`lmmlib.design.build_design`.
    """

    def __init__(self, design: Design) -> None:
        self.design = design
        X, y = design.X, design.y
        self.n, self.p = X.shape
        # an OLS offset keeps r² free of cancellation when y has a large mean
        self.beta_offset = np.linalg.lstsq(X, y, rcond=None)[0] if self.p else np.zeros(0)
        y = y - X @ self.beta_offset
        self.blocks = design.blocks
        b0 = self.blocks[0]
        self.k0, self.q0 = b0.nlevels, b0.q
        Z0 = z_matrix(b0)
        self.ZtZ0 = _block_crossprod(b0)
        self.ZtX0 = np.asarray(Z0.T @ X).reshape(self.k0, self.q0, self.p)
        self.Zty0 = np.asarray(Z0.T @ y).reshape(self.k0, self.q0, 1)
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        self.rest = self.blocks[1:]
        self.QR = sum(b.nlevels * b.q for b in self.rest)
        if self.rest:
            ZR = sp.hstack([z_matrix(b) for b in self.rest]).tocsc()
            self.ZRtZR = (ZR.T @ ZR).toarray()
            self.Z0tZR = (Z0.T @ ZR).toarray().reshape(self.k0, self.q0, self.QR)
            self.ZRtX = np.asarray(ZR.T @ X)
            self.ZRty = np.asarray(ZR.T @ y)

    # -- Λ for the blocks after the first, applied without forming it ------------
    def _rmul_rest(self, M: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """M Λ_R, where the last axis of M runs over the remaining random effects."""
        out, o = np.empty_like(M), 0
        for b in self.rest:
            w = b.nlevels * b.q
            lam = b.lam(theta)
            part = M[..., o : o + w].reshape(*M.shape[:-1], b.nlevels, b.q)
            out[..., o : o + w] = (part @ lam).reshape(*M.shape[:-1], w)
            o += w
        return out

    def _rest_factor(self, theta, lam0, L0, c0, d0):
        """Factor the remaining blocks given the first one (Schur complement)."""
        T = _solve_lower(L0, np.swapaxes(lam0, -1, -2) @ self._rmul_rest(self.Z0tZR, theta))
        T = T.reshape(self.k0 * self.q0, self.QR)
        A = self._rmul_rest(self._rmul_rest(self.ZRtZR, theta).T, theta)
        A -= T.T @ T
        A[np.diag_indices_from(A)] += 1.0
        LR = scipy.linalg.cholesky(A, lower=True, check_finite=False)
        rhs_x = self._rmul_rest(self.ZRtX.T, theta).T - T.T @ c0
        rhs_y = self._rmul_rest(self.ZRty[None, :], theta)[0] - T.T @ d0
        solve = scipy.linalg.solve_triangular
        cR = solve(LR, rhs_x, lower=True, check_finite=False)
        dR = solve(LR, rhs_y, lower=True, check_finite=False)
        return T, LR, cR, dR

    def _factor(self, theta: np.ndarray):
        lam0 = self.blocks[0].lam(theta)
        lt = lam0.T
        A0 = lt @ self.ZtZ0 @ lam0
        A0 += np.eye(self.q0)
        L0 = np.sqrt(A0) if self.q0 == 1 else np.linalg.cholesky(A0)
        c0 = _solve_lower(L0, lt @ self.ZtX0).reshape(-1, self.p)
        d0 = _solve_lower(L0, lt @ self.Zty0).ravel()
        logdet = 2.0 * np.log(np.diagonal(L0, axis1=1, axis2=2)).sum()
        T = LR = None
        cs, ds = [c0], [d0]
        if self.rest:
            T, LR, cR, dR = self._rest_factor(theta, lam0, L0, c0, d0)
            cs.append(cR)
            ds.append(dR)
            logdet += 2.0 * np.log(np.diag(LR)).sum()
        c, d = np.vstack(cs), np.concatenate(ds)
        S = self.XtX - c.T @ c
        LX = np.linalg.cholesky(S) if self.p else np.zeros((0, 0))
        fb = scipy.linalg.solve_triangular(LX, self.Xty - c.T @ d, lower=True,
                                           check_finite=False)
        r2 = self.yty - d @ d - fb @ fb
        logdet_x = 2.0 * np.log(np.diag(LX)).sum()
        return lam0, L0, T, LR, c, d, LX, fb, r2, logdet, logdet_x

    def objective(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled REML criterion (``reml=True``) or deviance −2 log L at θ.

        Parameters
        ----------
        theta : ndarray
            Relative covariance parameters in lme4's order.
        reml : bool
            REML criterion or ML deviance.

        Returns
        -------
        float
            ``inf`` where the factorisation fails.
        """
        try:
            *_, r2, logdet, logdet_x = self._factor(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        return self._criterion(r2, logdet, logdet_x, reml)

    def _criterion(self, r2: float, logdet: float, logdet_x: float, reml: bool) -> float:
        if r2 <= 0:
            return np.inf
        nu = self.n - self.p if reml else self.n
        dev = logdet + nu * (1.0 + LOG2PI + np.log(r2 / nu))
        return float(dev + logdet_x) if reml else float(dev)

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """Full solution at θ: β̂, spherical random effects u and the factors."""
        theta = np.asarray(theta, dtype=float)
        lam0, L0, T, LR, c, d, LX, fb, r2, logdet, logdet_x = self._factor(theta)
        beta = scipy.linalg.solve_triangular(LX.T, fb, lower=False, check_finite=False)
        w = d - c @ beta
        n0 = self.k0 * self.q0
        parts = []
        if LR is not None:
            uR = scipy.linalg.solve_triangular(LR.T, w[n0:], lower=False, check_finite=False)
            w0 = w[:n0] - T @ uR
            parts.append(uR)
        else:
            w0 = w[:n0]
        u0 = _solve_upper(L0, w0.reshape(self.k0, self.q0, 1)).ravel()
        u = np.concatenate([u0, *parts])
        return PLSSolution(theta, beta + self.beta_offset, u, float(r2), float(logdet),
                           float(logdet_x), L0, T, LR, LX)
