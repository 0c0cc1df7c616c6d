"""Fits in concurrent threads leave the process's BLAS thread count as it was."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import lmmlib
from lmmlib.engine.threads import blas_threads


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": x + rng.normal(size=40)[g] + rng.normal(size=g.size),
                         "x": x, "g": g})


def test_concurrent_fits_restore_the_thread_count(data):
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        results, errors = [], []
        start = threading.Barrier(4)

        def work(seed: int) -> None:
            try:
                start.wait()
                for _ in range(5):
                    results.append(lmmlib.lmer("y ~ x + (1|g)", data).objective)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert _blas_threads() == before
    # every fit is the same fit: identical criterion whatever thread ran it
    assert len(set(results)) == 1


def test_limit_is_one_inside_and_never_raised(data):
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=1, user_api="blas"):
        with blas_threads(4):  # asks for more than the user set: left alone
            assert set(_blas_threads()) == {1}
    with threadpool_limits(limits=2, user_api="blas"):
        with blas_threads(1):
            with blas_threads(1):
                assert set(_blas_threads()) == {1}
            assert set(_blas_threads()) == {1}  # still inside the outer limit
        assert set(_blas_threads()) == {2}
