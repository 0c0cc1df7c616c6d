"""Per-thread work buffers reused between criterion evaluations.

Arrays of megabytes made afresh at every evaluation are fresh pages from the
operating system each time, which can cost more than the arithmetic done in
them.  The buffers here are kept per thread, so concurrent fits (threads of a
bootstrap) never share one; a caller must not keep a view of a buffer beyond
the evaluation that asked for it.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["pair_buffers", "square_buffer"]

_THREAD = threading.local()


def pair_buffers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float work arrays of ``size`` for this thread, kept between calls.

    The pairwise products are formed at every penalised IRLS step; fresh
    arrays of this size (megabytes) would be fresh pages from the system each
    time, which costs several times the arithmetic.
    """
    bufs = getattr(_THREAD, "pairs", None)
    if bufs is None or bufs[0].size < size:
        bufs = (np.empty(size), np.empty(size))
        _THREAD.pairs = bufs
    return bufs[0][:size], bufs[1][:size]


def square_buffer(n: int) -> np.ndarray:
    """A zeroed n × n work array of this thread (the dense Schur complement).

    Examples
    --------
    >>> A = square_buffer(3)
    >>> A.shape, float(A.sum())
    ((3, 3), 0.0)
    """
    flat = getattr(_THREAD, "square", None)
    if flat is None or flat.size < n * n:
        flat = np.empty(n * n)
        _THREAD.square = flat
    A = flat[: n * n].reshape(n, n)
    A.fill(0.0)
    return A
