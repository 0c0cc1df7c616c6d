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

import copy
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf

from .coupling import make_coupling, symmetrize_lower
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


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack (k, q, q) of small SPD matrices.

    Written as q² vector operations over the k levels, which for the small q of
    random-effects terms is much faster than a batched LAPACK call.
    """
    k, q, _ = A.shape
    if q == 1:
        return np.sqrt(A)
    L = np.zeros_like(A)
    for j in range(q):
        s = A[:, j, j] - np.einsum("ij,ij->i", L[:, j, :j], L[:, j, :j])
        if np.any(s <= 0):
            raise np.linalg.LinAlgError("matrix not positive definite")
        L[:, j, j] = np.sqrt(s)
        for i in range(j + 1, q):
            L[:, i, j] = (A[:, i, j] - np.einsum("ij,ij->i", L[:, i, :j], L[:, j, :j])) / L[:, j, j]
    return L


def solve_lower_batched(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched L⁻¹B for lower-triangular (k, q, q) factors, B of shape (k, q, r)."""
    q = L.shape[-1]
    if q == 1:
        return B / L
    X = np.empty_like(B)
    for i in range(q):
        acc = B[:, i, :] - np.einsum("km,kmr->kr", L[:, i, :i], X[:, :i, :])
        X[:, i, :] = acc / L[:, i, i, None]
    return X


def solve_upper_batched(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched L⁻ᵀB for lower-triangular (k, q, q) factors, B of shape (k, q, r)."""
    q = L.shape[-1]
    if q == 1:
        return B / L
    X = np.empty_like(B)
    for i in reversed(range(q)):
        acc = B[:, i, :] - np.einsum("km,kmr->kr", L[:, i + 1 :, i], X[:, i + 1 :, :])
        X[:, i, :] = acc / L[:, i, i, None]
    return X


def _factor_first(lam: np.ndarray, ztz: np.ndarray, ztxy: np.ndarray, full: bool = True):
    """Factor the block-diagonal first block: L_i L_iᵀ = ΛᵀZ_iᵀZ_iΛ + I for every level.

    Returns the (k, q, q) factors (``None`` unless ``full``), the rows
    L_i⁻¹ΛᵀZ_iᵀ[X y] as q arrays of shape (k, p+1) (row j of every level), and
    log|L|².  Scalar and 2×2 blocks (random intercepts, one slope) are written
    out element by element, which is several times faster than batched LAPACK.
    """
    k, q, _ = ztz.shape
    if q == 1:
        l11 = np.sqrt(lam[0, 0] ** 2 * ztz[:, 0, 0] + 1.0)
        cd1 = (lam[0, 0] * ztxy[:, 0, :]) / l11[:, None]
        return (l11.reshape(k, 1, 1) if full else None), [cd1], 2.0 * np.log(l11).sum()
    if q == 2:
        a, b, c = lam[0, 0], lam[1, 0], lam[1, 1]
        m11, m12, m22 = ztz[:, 0, 0], ztz[:, 0, 1], ztz[:, 1, 1]
        l11 = np.sqrt(a * a * m11 + 2 * a * b * m12 + b * b * m22 + 1.0)
        l21 = c * (a * m12 + b * m22) / l11
        l22 = np.sqrt(c * c * m22 + 1.0 - l21 * l21)
        v1, v2 = ztxy[:, 0, :], ztxy[:, 1, :]
        cd1 = (a * v1 + b * v2) / l11[:, None]
        cd2 = (c * v2 - l21[:, None] * cd1) / l22[:, None]
        L = None
        if full:
            L = np.zeros((k, 2, 2))
            L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, l22
        return L, [cd1, cd2], 2.0 * (np.log(l11).sum() + np.log(l22).sum())
    A = lam.T @ ztz @ lam
    A += np.eye(q)
    L = batched_cholesky(A)
    cd = solve_lower_batched(L, lam.T @ ztxy)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
    return L, [cd[:, j, :] for j in range(q)], logdet


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
    L_rest: np.ndarray | None  # (Q_R, Q_R) Cholesky factor of the remaining blocks
    LX: np.ndarray  # (p, p) Cholesky factor of the Schur complement for X


class PLS:
    """Cross-products of a design and the PLS solve as a function of θ.

    The response is carried as an extra column of X, so that one Cholesky
    factor of the (p+1)×(p+1) Schur complement yields L_X, the solution for β
    and the penalised residual sum of squares r² (its last pivot squared).

    Parameters
    ----------
    design : Design
        Output of :func:`lmmlib.engine.design.build_design`.
    y : ndarray, optional
        A response to use instead of the design's (same X and Z).
    """

    def __init__(self, design: Design, y: np.ndarray | None = None) -> None:
        self.design = design
        X = design.X
        self.n, self.p = X.shape
        self.blocks = design.blocks
        b0 = self.blocks[0]
        self.k0, self.q0 = b0.nlevels, b0.q
        self._Z0 = z_matrix(b0)
        self.ZtZ0 = _block_crossprod(b0)
        self.rest = self.blocks[1:]
        self.n_rest = sum(b.nlevels * b.q for b in self.rest)
        self._ZR = None
        if self.rest:
            self._ZR = sp.hstack([z_matrix(b) for b in self.rest]).tocsc()
            self.ZRtZR = (self._ZR.T @ self._ZR).toarray()
            self.coupling = make_coupling(self._Z0, self._ZR, self.k0, self.q0)
        self._rest_scalar = all(b.q == 1 for b in self.rest)
        self._zrtzr_diag = None
        if self.rest and not np.count_nonzero(self.ZRtZR - np.diag(np.diag(self.ZRtZR))):
            self._zrtzr_diag = np.diag(self.ZRtZR).copy()
        self._rest_sizes = [b.nlevels for b in self.rest]
        self._xpinv = np.linalg.pinv(X) if self.p else np.zeros((0, self.n))
        self._set_response(design.y if y is None else y)

    def _set_response(self, y: np.ndarray) -> None:
        """Compute the cross-products that involve the response."""
        y = np.asarray(y, dtype=float)
        if y.shape != (self.n,):
            raise ValueError(f"response must have shape ({self.n},), got {y.shape}")
        X = self.design.X
        # an OLS offset keeps r² free of cancellation when y has a large mean
        self.beta_offset = self._xpinv @ y
        Xy = np.column_stack([X, y - X @ self.beta_offset])
        self.ZtXy0 = np.asarray(self._Z0.T @ Xy).reshape(self.k0, self.q0, self.p + 1)
        self.XytXy = Xy.T @ Xy
        if self._ZR is not None:
            self.ZRtXy = np.asarray(self._ZR.T @ Xy)

    def with_response(self, y: np.ndarray) -> PLS:
        """The same problem for a new response: X, Z and Z'Z are reused."""
        new = copy.copy(self)
        new._set_response(y)
        return new

    # -- Λ for the blocks after the first, applied without forming it ------------
    def _rest_scales(self, theta: np.ndarray) -> np.ndarray | None:
        """Diagonal of Λ_R when every remaining block is scalar, else ``None``."""
        if not self._rest_scalar:
            return None
        return np.repeat([b.lam(theta)[0, 0] for b in self.rest], self._rest_sizes)

    def _rmul_rest(self, M: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """M Λ_R, where the last axis of M runs over the remaining random effects."""
        scales = self._rest_scales(theta)
        if scales is not None:
            return M * scales
        out, o = np.empty_like(M), 0
        for b in self.rest:
            w = b.nlevels * b.q
            lam = b.lam(theta)
            part = M[..., o : o + w].reshape(*M.shape[:-1], b.nlevels, b.q)
            out[..., o : o + w] = (part @ lam).reshape(*M.shape[:-1], w)
            o += w
        return out

    def _rest_matrix(self, theta: np.ndarray, state) -> np.ndarray:
        """Λ_Rᵀ(Z_RᵀZ_R)Λ_R + I − TᵀT; only the lower triangle is guaranteed."""
        coupling, rmul = self.coupling, self._rmul_rest
        scales = self._rest_scales(theta)
        if not coupling.scaled and scales is not None and self._zrtzr_diag is not None:
            return self._rest_matrix_sparse(state, scales)
        gram = coupling.gram(state, theta, rmul)
        if coupling.scaled:
            A = rmul(rmul(self.ZRtZR, theta).T, theta) - gram
        elif scales is not None:
            A = self.ZRtZR - gram
            A *= scales[:, None]
            A *= scales[None, :]
        else:
            A = rmul(rmul(self.ZRtZR - symmetrize_lower(gram), theta).T, theta)
        A[np.diag_indices_from(A)] += 1.0
        return A

    def _rest_matrix_sparse(self, state, scales: np.ndarray) -> np.ndarray:
        """The same matrix when Z_RᵀZ_R is diagonal: only MᵀWM's nonzeros are written."""
        coupling = self.coupling
        A = np.zeros((self.n_rest, self.n_rest))
        rows, cols = coupling.position_rows, coupling.position_cols
        A.ravel()[coupling.positions] = -coupling.values(state) * scales[rows] * scales[cols]
        A[np.diag_indices_from(A)] += self._zrtzr_diag * scales**2 + 1.0
        return A

    def _rest_factor(self, theta, lam0, L0, cd0, full):
        """Factor the remaining blocks given the first one (Schur complement)."""
        rmul, coupling = self._rmul_rest, self.coupling
        state = coupling.state(theta, lam0, L0, rmul, solve_lower_batched)
        A = self._rest_matrix(theta, state)
        L_rest = scipy.linalg.cholesky(A, lower=True, check_finite=False, overwrite_a=True)
        rhs = rmul(self.ZRtXy.T, theta).T - coupling.tmul(state, cd0, theta, rmul)
        cdR = scipy.linalg.solve_triangular(L_rest, rhs, lower=True, check_finite=False)
        T = coupling.dense(state, theta, rmul) if full else None
        return T, L_rest, cdR

    def _factor(self, theta: np.ndarray, full: bool = True):
        lam0 = self.blocks[0].lam(theta)
        L0, parts, logdet = _factor_first(lam0, self.ZtZ0, self.ZtXy0, full or bool(self.rest))
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("first block not positive definite")
        T = L_rest = None
        S = self.XytXy.copy()
        for part in parts:
            S -= part.T @ part
        cd = None
        if full or self.rest:
            cd = parts[0] if len(parts) == 1 else np.stack(parts, axis=1).reshape(-1, self.p + 1)
        if self.rest:
            T, L_rest, cdR = self._rest_factor(theta, lam0, L0, cd, full)
            S -= cdR.T @ cdR
            cd = np.vstack([cd, cdR])
            logdet += 2.0 * np.log(np.diag(L_rest)).sum()
        LXy, info = dpotrf(S, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("fixed-effects Schur complement not positive definite")
        r2 = LXy[-1, -1] ** 2
        logdet_x = 2.0 * np.log(np.diagonal(LXy)[:-1]).sum()
        return L0, T, L_rest, cd, LXy, r2, logdet, logdet_x

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
            *_, r2, logdet, logdet_x = self._factor(np.asarray(theta, dtype=float), full=False)
        except np.linalg.LinAlgError:
            return np.inf
        return self._criterion(r2, logdet, logdet_x, reml)

    def _criterion(self, r2: float, logdet: float, logdet_x: float, reml: bool) -> float:
        if not r2 > 0:
            return np.inf
        nu = self.n - self.p if reml else self.n
        dev = logdet + nu * (1.0 + LOG2PI + np.log(r2 / nu))
        return float(dev + logdet_x) if reml else float(dev)

    def deviance_at(self, theta: np.ndarray, sigma: float, reml: bool = True) -> float:
        """REML criterion or deviance at (θ, σ), profiled over β only.

        ``log|L_θ|² [+ log|L_X|²] + ν log(2πσ²) + r²(θ)/σ²`` with ν = n − p for
        REML and n for ML.  Minimising over σ gives :meth:`objective`; derivatives
        with respect to (θ, σ) give Satterthwaite's degrees of freedom and
        Hessian-based standard errors of the variance parameters.

        Parameters
        ----------
        theta : ndarray
            Relative covariance parameters.
        sigma : float
            Residual standard deviation (> 0).
        reml : bool
            REML criterion or ML deviance.

        Returns
        -------
        float
        """
        try:
            *_, r2, logdet, logdet_x = self._factor(np.asarray(theta, dtype=float), full=False)
        except np.linalg.LinAlgError:
            return np.inf
        if not sigma > 0:
            return np.inf
        nu = self.n - self.p if reml else self.n
        dev = logdet + nu * (LOG2PI + 2.0 * np.log(sigma)) + r2 / sigma**2
        return float(dev + logdet_x) if reml else float(dev)

    def solve(self, theta: np.ndarray) -> PLSSolution:
        """Full solution at θ: β̂, spherical random effects u and the factors."""
        theta = np.asarray(theta, dtype=float)
        L0, T, L_rest, cd, LXy, r2, logdet, logdet_x = self._factor(theta)
        p = self.p
        LX = LXy[:p, :p]
        beta = scipy.linalg.solve_triangular(LX.T, LXy[p, :p], lower=False, check_finite=False)
        w = cd[:, p] - cd[:, :p] @ beta
        n0 = self.k0 * self.q0
        parts = []
        if L_rest is not None:
            uR = scipy.linalg.solve_triangular(L_rest.T, w[n0:], lower=False, check_finite=False)
            w0 = w[:n0] - T @ uR
            parts.append(uR)
        else:
            w0 = w[:n0]
        u0 = solve_upper_batched(L0, w0.reshape(self.k0, self.q0, 1)).ravel()
        u = np.concatenate([u0, *parts])
        return PLSSolution(theta, beta + self.beta_offset, u, float(r2), float(logdet),
                           float(logdet_x), L0, T, L_rest, LX)
