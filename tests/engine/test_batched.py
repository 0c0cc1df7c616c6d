"""The batched kernels of the block-diagonal first block against LAPACK."""

from __future__ import annotations

import numpy as np

from lmmlib.engine.batched import batched_cholesky, solve_lower_batched, solve_upper_batched


def test_batched_cholesky_matches_numpy():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(50, 3, 3))
    A = B @ np.swapaxes(B, 1, 2) + np.eye(3)
    # the same factorisation by a vectorised formula and by LAPACK: rounding only, a few
    # ulps times cond(A) ≤ ~100 (seen 1.3e-13 on the Sandybridge kernel); 1e-10 relative
    np.testing.assert_allclose(batched_cholesky(A), np.linalg.cholesky(A), rtol=1e-10)


def test_batched_triangular_solves_match_scipy():
    import scipy.linalg

    rng = np.random.default_rng(1)
    B = rng.normal(size=(20, 3, 3))
    L = np.linalg.cholesky(B @ np.swapaxes(B, 1, 2) + np.eye(3))
    R = rng.normal(size=(20, 3, 2))
    lower = np.stack([scipy.linalg.solve_triangular(L[i], R[i], lower=True) for i in range(20)])
    upper = np.stack([scipy.linalg.solve_triangular(L[i].T, R[i], lower=False)
                      for i in range(20)])
    # the same triangular solves, rounding only (cond ≤ ~100): 1e-10 relative
    np.testing.assert_allclose(solve_lower_batched(L, R), lower, rtol=1e-10)
    np.testing.assert_allclose(solve_upper_batched(L, R), upper, rtol=1e-10)
