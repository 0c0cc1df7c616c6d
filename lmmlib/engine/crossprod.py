"""Weighted cross-products of the random-effects model matrix Z, by index maps.

The penalised least-squares problem needs Z'WZ and Z'W[X y] for observation
weights W = diag(w): prior weights of a weighted LMM, or the working weights
that change at every step of a GLMM's penalised IRLS.  Z is split as in
:mod:`lmmlib.engine.pls` into the first block Z₀ (one level of the grouping
factor with most levels per row) and the remaining blocks Z_R.

:class:`ZPattern` does the symbolic work once per design: for every
observation, where its products land in the per-level blocks of Z₀'WZ₀, in
the sparse coupling M = Z₀'WZ_R and on the diagonal of Z_R'WZ_R.  Every
reweighting is then a few weighted ``bincount`` calls over the n observations
(no sparse matrix product is formed again), so a GLMM step costs O(n) plus
the factorisation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .reterms import Block

__all__ = ["ZPattern", "z_matrix"]


def z_matrix(block: Block) -> sp.csr_matrix:
    """Sparse n × (levels·q) model matrix of one block (level-major columns)."""
    n, q = block.Z.shape
    cols = (block.codes[:, None] * q + np.arange(q)[None, :]).ravel()
    rows = np.repeat(np.arange(n), q)
    return sp.csr_matrix((block.Z.ravel(), (rows, cols)), shape=(n, block.nlevels * q))


def _weighted(values: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """values (n, ...) times w along the first axis, flattened (w = None: unweighted)."""
    return (values if w is None else values * w.reshape(-1, *([1] * (values.ndim - 1)))).ravel()


class ZPattern:
    """Where each observation's products fall in Z'WZ; computed once per design.

    Parameters
    ----------
    blocks : sequence of Block
        The design's random-effects blocks, the first one block-diagonal.
    """

    def __init__(self, blocks) -> None:
        b0 = blocks[0]
        self.n = b0.Z.shape[0]
        self.k0, self.q0 = b0.nlevels, b0.q
        self.codes0, self.Zv0 = b0.codes, b0.Z
        self._ones0 = [bool(np.all(b0.Z[:, a] == 1.0)) for a in range(self.q0)]
        self.rest = tuple(blocks[1:])
        self.n_rest = sum(b.nlevels * b.q for b in self.rest)
        # (a, c ≥ a) element pairs of the first block's q0 × q0 level blocks
        self._pairs0 = [(a, c) for a in range(self.q0) for c in range(a, self.q0)]
        self.ZR = None
        if not self.rest:
            return
        self.ZR = sp.hstack([z_matrix(b) for b in self.rest]).tocsr()
        self._ZRT = self.ZR.T.tocsr()
        cols, vals, o = [], [], 0
        for b in self.rest:
            cols.append(o + b.codes[:, None] * b.q + np.arange(b.q))
            vals.append(b.Z)
            o += b.nlevels * b.q
        self.colsR, self.ZvR = np.hstack(cols), np.hstack(vals)  # (n, Σ q_b)
        # the coupling M = Z₀'WZ_R: the distinct (row, column) positions and the
        # slot of every observation's contribution among them
        rows0 = self.codes0[:, None] * self.q0 + np.arange(self.q0)  # (n, q0)
        keys = (rows0[:, :, None] * self.n_rest + self.colsR[:, None, :]).ravel()
        positions, self._m_slot = np.unique(keys, return_inverse=True)
        self._m_prod = (self.Zv0[:, :, None] * self.ZvR[:, None, :]).reshape(self.n, -1)
        m_rows, self._m_indices = np.divmod(positions, self.n_rest)
        self._m_indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(m_rows, minlength=self.k0 * self.q0))])
        # Z_R'WZ_R is diagonal when no observation has two remaining effects
        self.rest_diagonal = self.colsR.shape[1] == 1

    # -- the first block ---------------------------------------------------------
    def ztz0(self, w: np.ndarray | None) -> np.ndarray:
        """Per-level Z₀ᵢ'WZ₀ᵢ, shape (k0, q0, q0)."""
        out = np.empty((self.k0, self.q0, self.q0))
        for a, c in self._pairs0:
            if w is None and self._ones0[a] and self._ones0[c]:  # level counts
                out[:, a, c] = np.bincount(self.codes0, minlength=self.k0)
                continue
            v = self.Zv0[:, a] * self.Zv0[:, c]
            out[:, a, c] = out[:, c, a] = np.bincount(self.codes0, _weighted(v, w),
                                                      minlength=self.k0)
        return out

    def z0t(self, V: np.ndarray) -> np.ndarray:
        """Z₀'V for V of shape (n, r), as (k0, q0, r).

        One weighted level count per (effect, column): a segment sum over the
        observations, cheaper than a sparse product for the few columns of
        [X y] (an intercept's unit covariate is not multiplied in).
        """
        V = np.asarray(V, dtype=float)
        out = np.empty((self.k0, self.q0, V.shape[1]))
        for a in range(self.q0):
            za = None if self._ones0[a] else self.Zv0[:, a]
            for j in range(V.shape[1]):
                v = V[:, j] if za is None else za * V[:, j]
                out[:, a, j] = np.bincount(self.codes0, v, minlength=self.k0)
        return out

    # -- the remaining blocks ----------------------------------------------------
    def coupling_data(self, w: np.ndarray | None) -> np.ndarray:
        """The nonzeros of M = Z₀'WZ_R, in the order of :meth:`coupling_matrix`."""
        return np.bincount(self._m_slot, _weighted(self._m_prod, w),
                           minlength=self._m_indices.size)

    def coupling_matrix(self, w: np.ndarray | None) -> sp.csr_matrix:
        """M = Z₀'WZ_R with sorted indices and the same pattern for every w."""
        return sp.csr_matrix((self.coupling_data(w), self._m_indices, self._m_indptr),
                             shape=(self.k0 * self.q0, self.n_rest))

    def zrtzr_diag(self, w: np.ndarray | None) -> np.ndarray:
        """Diagonal of Z_R'WZ_R (all of it when :attr:`rest_diagonal`)."""
        return np.bincount(self.colsR.ravel(), _weighted(self.ZvR**2, w),
                           minlength=self.n_rest)

    def zrtzr(self, w: np.ndarray | None) -> np.ndarray:
        """Z_R'WZ_R as a dense (Q_R, Q_R) array."""
        if self.rest_diagonal:
            return np.diag(self.zrtzr_diag(w))
        ZR = self.ZR if w is None else self.ZR.multiply(w[:, None]).tocsr()
        return (self.ZR.T @ ZR).toarray()

    def zrt(self, V: np.ndarray) -> np.ndarray:
        """Z_R'V for V of shape (n, r)."""
        return np.asarray(self._ZRT @ V)
