"""Work buffers reused between evaluations never leak into kept results.

The criterion of a crossed model writes its dense Schur complement into this
thread's buffer; a solution (whose factor the model keeps) must not.
Reference: the same computation with fresh arrays (exact equality: the same
operations on the same numbers).
"""

from __future__ import annotations

import threading

import numpy as np
from conftest import fitted

from lmmlib.engine.pls import PLS
from lmmlib.engine.scratch import square_buffer


def test_the_criterion_reuses_one_buffer_and_solutions_keep_their_own():
    m = fitted("penicillin")
    pls = PLS(m.design)
    sol = pls.solve(m.theta)
    kept = sol.L_rest.copy()
    first = pls.objective(m.theta, m.reml)
    buffer = square_buffer(pls.n_rest)
    pls.objective(m.theta * 1.5, m.reml)
    # the evaluation wrote into the thread's buffer (same memory as before) ...
    assert np.shares_memory(buffer, square_buffer(pls.n_rest))
    # ... and the solution's factor is untouched by later evaluations
    np.testing.assert_array_equal(sol.L_rest, kept)
    assert pls.objective(m.theta, m.reml) == first


def test_threads_get_their_own_buffers():
    here = square_buffer(4)
    other = []
    t = threading.Thread(target=lambda: other.append(square_buffer(4)))
    t.start()
    t.join()
    assert not np.shares_memory(here, other[0])
