"""Per-level sufficient statistics of a single grouping factor's criterion.

With one grouping factor the random-effects part of the blocked Cholesky
factor is block-diagonal: level i contributes the q × q block
A_i = ΛᵀM_iΛ + I, where M_i = Z_iᵀWZ_i, and the Schur complement of the
(p+1)-column [X y] block is

    S = [X y]ᵀW[X y] − Σ_i V_iᵀ G_i V_i,     G_i = Λ A_i⁻¹ Λᵀ,

with V_i = Z_iᵀW[X y] (q × (p+1)).  The profiled criterion needs only S and
log|L_θ|² = Σ_i log det A_i.  For the scalar and 2 × 2 blocks of a random
intercept or one random slope, G_i and det A_i are short closed forms in θ
and M_i, and Σ_i V_iᵀG_iV_i is a linear combination of products
V_i[a, r]·V_i[b, s] that do not depend on θ.  :class:`LevelStats` stores
those products once; one evaluation is then a few vector operations over the
levels and one matrix-vector product, instead of factoring every level.

Levels whose M_i coincide (a balanced design: every subject seen at the same
days) share det A_i and G_i, so their products are summed once and an
evaluation costs O(distinct patterns) rather than O(levels).

The closed forms use only sums of non-negative terms where that is possible:
det A = 1 + tr(ΛᵀMΛ) + det(Λ)² det(M) for 2 × 2 blocks, so no large terms
cancel when a level's M_i is (nearly) singular.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LevelStats"]

# use the distinct-pattern form when it shrinks the levels at least this much
_COMPRESS_RATIO = 4


class LevelStats:
    """θ-free products of one grouping factor's level cross-products.

    Parameters
    ----------
    ztz : ndarray
        (k, q, q) blocks M_i = Z_iᵀWZ_i, q ∈ {1, 2}.
    ztxy : ndarray
        (k, q, p+1) blocks V_i = Z_iᵀW[X y].

    Examples
    --------
    >>> import numpy as np
    >>> ztz = np.array([[[2.0]], [[3.0]]]); ztxy = np.array([[[2.0, 1.0]], [[3.0, -1.0]]])
    >>> C, logdet = LevelStats(ztz, ztxy).schur_terms(np.array([[1.0]]))
    >>> bool(np.isclose(logdet, np.log(3.0) + np.log(4.0)))
    True
    >>> bool(np.isclose(C[0, 1], 2 * 1 / 3 + 3 * -1 / 4))
    True
    """

    def __init__(self, ztz: np.ndarray, ztxy: np.ndarray) -> None:
        k, q, _ = ztz.shape
        if q not in (1, 2):
            raise ValueError("LevelStats handles scalar and 2 x 2 blocks only")
        p1 = ztxy.shape[2]
        self.q, self.p1 = q, p1
        self._rows, self._cols = np.triu_indices(p1)
        if q == 1:
            M = ztz[:, 0, :1]
        else:
            m11, m12, m22 = ztz[:, 0, 0], ztz[:, 0, 1], ztz[:, 1, 1]
            M = np.column_stack([m11, m12, m22, np.maximum(m11 * m22 - m12 * m12, 0.0)])
        Q = self._products(ztxy)
        counts = None
        inverse, patterns = self._patterns(M)
        if inverse is not None:
            flat = Q.reshape(k, -1)
            summed = np.empty((len(patterns), flat.shape[1]))
            for j in range(flat.shape[1]):
                summed[:, j] = np.bincount(inverse, flat[:, j], minlength=len(patterns))
            counts = np.bincount(inverse, minlength=len(patterns)).astype(float)
            M, Q = patterns, summed.reshape(len(patterns), *Q.shape[1:])
        # (1, M_i's columns) by level: the closed forms are linear in these rows
        self._M = np.vstack([np.ones(M.shape[0]), M.T])
        self._counts = counts
        # θ-free products, weight-major: row (w·levels + i) holds level i's products
        # for weight w, so one matrix-vector product applies all weights
        self._Q = np.ascontiguousarray(
            (Q[:, None, :] if q == 1 else Q).transpose(1, 0, 2).reshape(-1, Q.shape[-1]))

    @staticmethod
    def _patterns(M: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Level → distinct-pattern map, when merging shrinks the levels enough.

        Cheap tests only: every level alike (a balanced design), or, for scalar
        blocks, few distinct values of M_i (few distinct group sizes).  Sorting
        many-column rows would cost more than it saves.
        """
        k = M.shape[0]
        if k < 2 * _COMPRESS_RATIO:
            return None, M
        if np.array_equal(M, np.broadcast_to(M[0], M.shape)):
            return np.zeros(k, dtype=np.intp), M[:1]
        if M.shape[1] == 1:
            values, inverse = np.unique(M[:, 0], return_inverse=True)
            if len(values) * _COMPRESS_RATIO <= k:
                return inverse.ravel(), values[:, None]
        return None, M

    def _products(self, V: np.ndarray) -> np.ndarray:
        """The θ-free products: (k, pairs) for q = 1, (k, 3, pairs) for q = 2."""
        r, s = self._rows, self._cols
        v1 = V[:, 0, :]
        if self.q == 1:
            return v1[:, r] * v1[:, s]
        v2 = V[:, 1, :]
        return np.stack([v1[:, r] * v1[:, s],
                         v1[:, r] * v2[:, s] + v2[:, r] * v1[:, s],
                         v2[:, r] * v2[:, s]], axis=1)

    @property
    def nlevels(self) -> int:
        """Rows stored: levels, or distinct patterns when they were merged."""
        return self._M.shape[1]

    def schur_terms(self, lam: np.ndarray) -> tuple[np.ndarray, float]:
        """Σ_i V_iᵀG_iV_i as a symmetric (p+1) × (p+1) matrix, and Σ_i log det A_i.

        Parameters
        ----------
        lam : ndarray
            The q × q lower-triangular relative covariance factor Λ.

        Returns
        -------
        (ndarray, float)
        """
        if self.q == 1:
            a2 = lam[0, 0] ** 2
            det = a2 * self._M[1] + 1.0
            weights = a2 / det
        else:
            a, b, c = lam[0, 0], lam[1, 0], lam[1, 1]
            ac2 = (a * c) ** 2
            # rows (1, m11, m12, m22, det M): det A_i and the adjugate-based weights
            # a²(1 + c²m22), ab − a²c²m12, b² + c² + a²c²m11 of G_i = Λ A_i⁻¹ Λᵀ
            det = np.array([1.0, a * a, 2.0 * a * b, b * b + c * c, ac2]) @ self._M
            weights = np.array([[a * a, 0.0, 0.0, ac2, 0.0],
                                [a * b, 0.0, -ac2, 0.0, 0.0],
                                [b * b + c * c, ac2, 0.0, 0.0, 0.0]]) @ self._M
            weights /= det
        logs = np.log(det)
        logdet = float(logs.sum() if self._counts is None else logs @ self._counts)
        packed = weights.ravel() @ self._Q
        C = np.empty((self.p1, self.p1))
        C[self._rows, self._cols] = packed
        C[self._cols, self._rows] = packed
        return C, logdet
