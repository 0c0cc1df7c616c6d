"""Coupling between the first (block-diagonal) random-effects block and the rest.

With L₀ the per-level Cholesky factors of the first block, the remaining blocks
are factored through the Schur complement

    Λ_R'Z_R'Z_RΛ_R + I − TᵀT,   T = L₀⁻¹Λ₀ᵀ Z₀ᵀZ_R Λ_R,

so every θ evaluation needs TᵀT and products Tᵀc.  Two strategies:

* :class:`DenseCoupling` stores Z₀ᵀZ_R densely; fine when it is small.
* :class:`SparseScalarCoupling` handles the common case of a scalar first block
  (crossed random intercepts, e.g. students × lecturers): T = diag(s) M Λ_R with
  M = Z₀ᵀZ_R sparse and s = λ₀ / L₀, so TᵀT = Λ_Rᵀ Mᵀ diag(s²) M Λ_R.  The
  products m_ia·m_ib of every row of M are listed once (the symbolic step);
  each evaluation is one weighted ``bincount`` over that list, proportional to
  Σ_i nnz_i² instead of levels × Q_R².
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["DenseCoupling", "SparseScalarCoupling", "make_coupling", "symmetrize_lower"]

Rmul = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (M, θ) ↦ M Λ_R

MAX_PAIRS = 30_000_000


class DenseCoupling:
    """Z₀ᵀZ_R held as a dense (k₀, q₀, Q_R) array."""

    def __init__(self, M: sp.spmatrix, k0: int, q0: int) -> None:
        self.Z0tZR = M.toarray().reshape(k0, q0, -1)

    def state(self, theta: np.ndarray, lam0: np.ndarray, L0: np.ndarray, rmul: Rmul,
              solve_lower: Callable) -> np.ndarray:
        """T as a dense (k₀q₀, Q_R) matrix."""
        T = solve_lower(L0, lam0.T @ rmul(self.Z0tZR, theta))
        return T.reshape(-1, T.shape[-1])

    gram_is_lower = False
    scaled = True

    @staticmethod
    def gram(T: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """TᵀT (already scaled by Λ_R)."""
        return T.T @ T

    @staticmethod
    def tmul(T: np.ndarray, c: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """Tᵀc."""
        return T.T @ c

    @staticmethod
    def dense(T: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """T itself."""
        return T


class SparseScalarCoupling:
    """Sparse M = Z₀ᵀZ_R with a scalar first block; see the module docstring."""

    gram_is_lower = True
    scaled = False

    def __init__(self, M: sp.csr_matrix, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]):
        self.M = M
        self.n_rest = M.shape[1]
        rows, index, values = pairs
        # distinct positions of the lower triangle of MᵀM, and the sparse map
        # (positions × levels) whose product with s² gives their values
        self.positions, slot = np.unique(index, return_inverse=True)
        self.P = sp.csr_matrix((values, (slot, rows)), shape=(self.positions.size, M.shape[0]))
        self.P.sum_duplicates()
        self.position_rows, self.position_cols = np.divmod(self.positions, self.n_rest)

    def values(self, s: np.ndarray) -> np.ndarray:
        """The nonzeros of Mᵀ diag(s²) M at :attr:`positions`."""
        return self.P @ (s * s)

    @staticmethod
    def pairs(M: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Row, flat (a, b ≥ a) position and m_ia·m_ib of every within-row product."""
        counts = np.diff(M.indptr)
        if int(np.sum(counts * (counts + 1) // 2)) > MAX_PAIRS:
            return None
        rows, index, values = [], [], []
        for nnz in np.unique(counts[counts > 0]):
            which = np.flatnonzero(counts == nnz)
            starts = M.indptr[which]
            a, b = np.triu_indices(nnz)
            cols = M.indices[starts[:, None] + np.arange(nnz)]  # (r, nnz)
            vals = M.data[starts[:, None] + np.arange(nnz)]
            rows.append(np.repeat(which, a.size))
            index.append((cols[:, b] * M.shape[1] + cols[:, a]).ravel())  # lower triangle
            values.append((vals[:, a] * vals[:, b]).ravel())
        if not rows:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
        return np.concatenate(rows), np.concatenate(index), np.concatenate(values)

    def state(self, theta: np.ndarray, lam0: np.ndarray, L0: np.ndarray, rmul: Rmul,
              solve_lower: Callable) -> np.ndarray:
        """The row scales s = λ₀ / L₀ (T = diag(s) M Λ_R)."""
        return lam0[0, 0] / L0[:, 0, 0]

    def gram(self, s: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """Mᵀ diag(s²) M from the listed products — *lower triangle only*.

        The caller scales it by Λ_R on both sides (a diagonal Λ_R keeps it
        triangular) or symmetrises it first (:func:`symmetrize_lower`).
        """
        G = np.zeros(self.n_rest * self.n_rest)
        G[self.positions] = self.values(s)
        return G.reshape(self.n_rest, self.n_rest)

    def tmul(self, s: np.ndarray, c: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """Tᵀc = Λ_Rᵀ Mᵀ (s ⊙ c)."""
        return rmul(np.asarray(self.M.T @ (s[:, None] * c)).T, theta).T

    def dense(self, s: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """T as a dense matrix (for the final solve only)."""
        return rmul(self.M.multiply(s[:, None]).toarray(), theta)


def symmetrize_lower(G: np.ndarray) -> np.ndarray:
    """Fill the upper triangle of G from its lower triangle (in place)."""
    iu = np.triu_indices(G.shape[0], 1)
    G[iu] = G.T[iu]
    return G


def make_coupling(Z0: sp.spmatrix, ZR: sp.spmatrix, k0: int, q0: int):
    """Choose the coupling strategy for a design."""
    M = (Z0.T @ ZR).tocsr()
    M.sort_indices()
    if q0 == 1:
        pairs = SparseScalarCoupling.pairs(M)
        if pairs is not None:
            return SparseScalarCoupling(M, pairs)
    return DenseCoupling(M, k0, q0)
