"""BLAS threading for the fitting loop.

The criterion evaluations work on small dense matrices, for which a
multi-threaded BLAS spends more time waking threads than computing (on a busy
machine a 200×200 Cholesky factor went from 0.2 ms to over 100 ms).  Fits
therefore run with a single BLAS thread; parallelism belongs one level up
(bootstrap replicates over processes).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import lru_cache

from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads"]


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def blas_threads(n: int | None = 1) -> AbstractContextManager:
    """Context manager limiting BLAS to ``n`` threads (``None``: leave as is)."""
    return _controller().limit(limits=n, user_api="blas")
