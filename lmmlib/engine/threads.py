"""BLAS threading for the fitting loop.

The criterion evaluations work on small dense matrices, for which a
multi-threaded BLAS spends more time waking threads than computing (on a busy
machine a 200×200 Cholesky factor went from 0.2 ms to over 100 ms).  Fits
therefore run with a single BLAS thread; parallelism belongs one level up
(bootstrap replicates over processes).

The BLAS thread count is a property of the whole process, so the limit is
shared: the first fit to start (in any thread) lowers it to one, the last to
finish restores the count the process had before, whatever order fits run in
concurrently.  lmmlib never raises the count above what the user set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["blas_threads"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"depth": 0, "limiter": None}


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def _enter() -> None:
    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["limiter"] = _controller().limit(limits=1, user_api="blas")
        _STATE["depth"] += 1


def _exit() -> None:
    with _LOCK:
        _STATE["depth"] -= 1
        if _STATE["depth"] == 0:
            limiter, _STATE["limiter"] = _STATE["limiter"], None
            limiter.restore_original_limits()


@contextmanager
def blas_threads(n: int | None = 1) -> Iterator[None]:
    """Context manager: at most ``n`` BLAS threads while it is open.

    Only lowering is done: ``n=1`` limits BLAS to one thread for the whole
    process until the last such context (of any thread) closes, then the
    previous limits come back; ``None`` or ``n > 1`` leave the limits as the
    user set them.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> with blas_threads(1):
    ...     all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    True
    """
    if n is None or n > 1:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _exit()
