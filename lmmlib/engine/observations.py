"""Per-observation inputs of the penalised least-squares problem.

Prior weights and offsets given by the user are checked here, and the
least-squares centring of the response (an offset β that keeps the penalised
residual sum of squares free of cancellation when y has a large mean).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..errors import DataError

__all__ = ["obs_vector", "offset_beta"]


def offset_beta(X: np.ndarray, xtx: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares β of y on X from the normal equations, refined once.

    Only a centring offset (any β gives the same fit), so the normal
    equations suffice: columns are scaled to unit norm first (covariates in
    very different units), and one refinement step on the residual removes
    most of the remaining error when X is ill-conditioned.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> offset_beta(X, X.T @ X, np.array([1.0, 3.0, 5.0, 7.0])).round(12).tolist()
    [1.0, 2.0]
    """
    if not X.shape[1]:
        return np.zeros(0)
    d = 1.0 / np.sqrt(np.maximum(np.diag(xtx), np.finfo(float).tiny))
    try:
        factor = scipy.linalg.cho_factor(xtx * d[:, None] * d[None, :], lower=True,
                                         check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    b = d * scipy.linalg.cho_solve(factor, d * (X.T @ y), check_finite=False)
    return b + d * scipy.linalg.cho_solve(factor, d * (X.T @ (y - X @ b)), check_finite=False)


def obs_vector(values, n: int, name: str, positive: bool) -> np.ndarray:
    """``values`` as a finite float vector of length n (``positive``: > 0).

    Examples
    --------
    >>> obs_vector([1, 2], 2, "weights", positive=True).tolist()
    [1.0, 2.0]
    """
    arr = np.asarray(values, dtype=float).ravel()
    if arr.shape != (n,):
        raise DataError(f"{name} must have one value per observation ({n}), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} must be finite")
    if positive and not np.all(arr > 0):
        raise DataError(f"{name} must be positive")
    return arr
