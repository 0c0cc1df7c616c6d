"""Coupling between the first (block-diagonal) random-effects block and the rest.

With L₀ the per-level Cholesky factors of the first block, the remaining blocks
are factored through the Schur complement

    Λ_R'Z_R'Z_RΛ_R + I − TᵀT,   T = L₀⁻¹Λ₀ᵀ Z₀ᵀZ_R Λ_R,

so every θ evaluation needs TᵀT and products Tᵀc.  With observation weights
(a weighted LMM, or a GLMM's penalised IRLS) every product is Z₀ᵀWZ_R instead;
``reweighted`` gives the same strategy for new values of that matrix (same
pattern), reusing the symbolic work.  Two strategies:

* :class:`DenseCoupling` stores Z₀ᵀZ_R densely; fine when it is small.
* :class:`SparseScalarCoupling` handles the common case of a scalar first block
  (crossed random intercepts, e.g. students × lecturers): T = diag(s) M Λ_R with
  M = Z₀ᵀZ_R sparse and s = λ₀ / L₀, so TᵀT = Λ_Rᵀ Mᵀ diag(s²) M Λ_R.  The
  products m_ia·m_ib of every row of M are listed once (the symbolic step);
  each evaluation is one weighted ``bincount`` over that list, proportional to
  Σ_i nnz_i² instead of levels × Q_R².
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .codes import distinct_codes
from .scratch import pair_buffers

__all__ = ["DenseCoupling", "SparseScalarCoupling", "make_coupling", "symmetrize_lower"]

Rmul = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (M, θ) ↦ M Λ_R

MAX_PAIRS = 30_000_000

class DenseCoupling:
    """Z₀ᵀZ_R held as a dense (k₀, q₀, Q_R) array."""

    def __init__(self, M: sp.csr_matrix, k0: int, q0: int) -> None:
        self.k0, self.q0 = k0, q0
        self.Z0tZR = M.toarray().reshape(k0, q0, -1)
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        self._flat = rows * M.shape[1] + M.indices  # where M's nonzeros go in Z0tZR

    def reweighted(self, data: np.ndarray) -> DenseCoupling:
        """The coupling for new nonzeros of M = Z₀ᵀWZ_R (this coupling's pattern)."""
        new = copy.copy(self)
        Z = np.zeros(self.Z0tZR.size)
        Z[self._flat] = data
        new.Z0tZR = Z.reshape(self.Z0tZR.shape)
        return new

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

    @staticmethod
    def matvec(T: np.ndarray, v: np.ndarray, theta: np.ndarray, lmul: Rmul) -> np.ndarray:
        """Tv."""
        return T @ v


class SparseScalarCoupling:
    """Sparse M = Z₀ᵀZ_R with a scalar first block; see the module docstring."""

    gram_is_lower = True
    scaled = False

    def __init__(self, M: sp.csr_matrix, pairs: tuple[np.ndarray, ...]) -> None:
        self.M = M
        self.n_rest = M.shape[1]
        rows, index, ia, ib = pairs
        self.k, self._cols = M.shape[0], M.indices
        # distinct positions of the lower triangle of MᵀM, and the sparse map
        # P (positions × levels) whose product with s² gives their values; P's
        # nonzeros are the products m_ia·m_ib, kept in P's order for reweighting
        distinct = distinct_codes(index)  # positions are flat indices into Q_R × Q_R
        self.positions, slot = (distinct if distinct is not None
                                else np.unique(index, return_inverse=True))
        order = np.argsort(slot, kind="stable")  # P's rows: products grouped by position
        self._ia, self._ib = ia[order], ib[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(slot, minlength=self.positions.size))])
        self.P = sp.csr_matrix((M.data[self._ia] * M.data[self._ib], rows[order], indptr),
                               shape=(self.positions.size, M.shape[0]))
        self._data = M.data
        # Mᵀ's pattern, and where each of its nonzeros is among M's (for Mᵀx)
        where = sp.csr_matrix((np.arange(1, M.nnz + 1, dtype=float), M.indices, M.indptr),
                              shape=M.shape).T.tocsr()  # (1-based: no explicit zero)
        self._t_perm = where.data.astype(np.intp) - 1
        self._t_indices, self._t_indptr = where.indices, where.indptr
        self._rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))  # of each nonzero
        self._slot = slot[order]  # position of every product, in P's order
        self.position_rows, self.position_cols = np.divmod(self.positions, self.n_rest)

    def reweighted(self, data: np.ndarray) -> SparseScalarCoupling:
        """The coupling for new nonzeros of M = Z₀ᵀWZ_R (this coupling's pattern).

        A reweighted problem is factored once or a few times, so no sparse
        matrix is built: :meth:`values` multiplies the scaled nonzeros pairwise
        on each call, and the products with M are weighted ``bincount`` calls.
        """
        new = copy.copy(self)
        new._data, new.P, new.M = data, None, None
        return new

    def _matrix(self) -> sp.csr_matrix:
        """M itself (built on demand for a reweighted coupling)."""
        if self.M is None:
            order = np.argsort(self._rows, kind="stable")  # rows are already sorted
            indptr = np.concatenate([[0], np.cumsum(np.bincount(self._rows, minlength=self.k))])
            self.M = sp.csr_matrix((self._data[order], self._cols[order], indptr),
                                   shape=(self.k, self.n_rest))
        return self.M

    def values(self, s: np.ndarray) -> np.ndarray:
        """The nonzeros of Mᵀ diag(s²) M at :attr:`positions`."""
        if self.P is None:  # reweighted: Σ_rows (s m_ia)(s m_ib) directly
            m = self._data * s[self._rows]
            a, b = pair_buffers(self._ia.size)
            np.take(m, self._ia, out=a, mode="clip")  # indices are valid by construction
            np.take(m, self._ib, out=b, mode="clip")
            a *= b
            return np.bincount(self._slot, a, minlength=self.positions.size)
        return self.P @ (s * s)

    @staticmethod
    def pairs(M: sp.csr_matrix) -> tuple[np.ndarray, ...] | None:
        """Row, flat (a, b ≥ a) position and the two nonzeros (indices into M.data)
        of every within-row product m_ia·m_ib."""
        counts = np.diff(M.indptr)
        if int(np.sum(counts * (counts + 1) // 2)) > MAX_PAIRS:
            return None
        rows, index, ia, ib = [], [], [], []
        for nnz in np.unique(counts[counts > 0]):
            which = np.flatnonzero(counts == nnz)
            a, b = np.triu_indices(nnz)
            slots = M.indptr[which][:, None] + np.arange(nnz)  # (r, nnz) indices into M.data
            cols = M.indices[slots]
            rows.append(np.repeat(which, a.size))
            index.append((cols[:, b] * M.shape[1] + cols[:, a]).ravel())  # lower triangle
            ia.append(slots[:, a].ravel())
            ib.append(slots[:, b].ravel())
        if not rows:
            return tuple(np.zeros(0, int) for _ in range(4))
        return tuple(np.concatenate(x) for x in (rows, index, ia, ib))

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
        Mt = sp.csr_matrix((self._data[self._t_perm], self._t_indices, self._t_indptr),
                           shape=(self.n_rest, self.k))
        return rmul(np.asarray(Mt @ (s[:, None] * c)).T, theta).T

    def dense(self, s: np.ndarray, theta: np.ndarray, rmul: Rmul) -> np.ndarray:
        """T as a dense matrix (for the final solve only)."""
        return rmul(self._matrix().multiply(s[:, None]).toarray(), theta)

    def matvec(self, s: np.ndarray, v: np.ndarray, theta: np.ndarray, lmul: Rmul) -> np.ndarray:
        """Tv = s ⊙ M(Λ_R v) without forming T (``lmul(v, θ)`` = Λ_R v)."""
        lv = lmul(v, theta)
        if self.M is not None:
            return s * (self.M @ lv)
        return s * np.bincount(self._rows, self._data * lv[self._cols], minlength=self.k)


def symmetrize_lower(G: np.ndarray) -> np.ndarray:
    """Fill the upper triangle of G from its lower triangle (in place)."""
    iu = np.triu_indices(G.shape[0], 1)
    G[iu] = G.T[iu]
    return G


def make_coupling(M: sp.csr_matrix, k0: int, q0: int):
    """Choose the coupling strategy for M = Z₀ᵀZ_R (sorted indices)."""
    if q0 == 1:
        pairs = SparseScalarCoupling.pairs(M)
        if pairs is not None:
            return SparseScalarCoupling(M, pairs)
    return DenseCoupling(M, k0, q0)
