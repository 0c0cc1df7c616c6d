"""Distinct values of integer arrays, by a presence table instead of a sort.

Level ids, and flat positions in a matrix, are integers in a range not much
wider than their count; marking which values occur and ranking them by a
cumulative sum is O(n), where ``np.unique`` sorts.
"""

from __future__ import annotations

import numpy as np

__all__ = ["distinct_codes"]

_SLACK = 1024  # ranges this much wider than twice the count still use the table


def distinct_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted distinct values and each value's rank among them, or ``None``.

    ``None`` when the range of ``values`` is much wider than their number (a
    table would cost more than sorting).

    Examples
    --------
    >>> levels, codes = distinct_codes(np.array([7, 3, 7, 5]))
    >>> levels.tolist(), codes.tolist()
    ([3, 5, 7], [2, 0, 2, 1])
    """
    if not len(values):
        return None
    low, high = int(values.min()), int(values.max())
    if high - low > 2 * len(values) + _SLACK:
        return None
    shifted = (values - low).astype(np.intp, copy=False)
    present = np.zeros(high - low + 1, dtype=bool)
    present[shifted] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, rank[shifted].astype(np.int64, copy=False)
