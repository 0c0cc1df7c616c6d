"""Batched kernels for the block-diagonal first random-effects block.

The grouping factor with most levels contributes one small q × q block per
level to Λ'Z'WZΛ + I.  These functions factor and solve all levels at once as
q² vector operations over the levels, which for the small q of random-effects
terms is much faster than a loop over levels or a batched LAPACK call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batched_cholesky", "factor_first", "solve_lower_batched", "solve_upper_batched"]


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


def factor_first(lam: np.ndarray, ztz: np.ndarray, ztxy: np.ndarray, full: bool = True):
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
