"""Vectorised refits equal one-at-a-time refits (same optimum, same estimates).

Both sides minimise the same criterion for each response: batch_refit by a
golden-section search down to a θ-bracket of 1e-10, refit() by BOBYQA, which
stops within OPT_GAP of the minimum (conftest; on OpenBLAS's Sandybridge kernel
one pulp refit here stops 5.7e-9 above it, 3e-5 short in θ).  So:

* the criteria agree within SAME_OPTIMUM (a different criterion, REML vs ML or
  a lost constant, would be off by O(0.1));
* batch's β, σ and criterion are the profiled ones at batch's own θ, computed by
  the PLS engine (closed form, rounding only: seen ≤ 5e-15 relative);
* θ agrees within twice the curvature bound of the refit's criterion gap where
  the refit is off the boundary (at θ = 0 the criterion is flat to rounding over
  a stretch of θ, and the agreement of the criteria is the test).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, CurvatureBound, profiled_at

import lmmlib
from lmmlib.inference.batch import batch_refit, supports_batch

CLOSED_FORM_RTOL = 1e-10  # the same numbers computed by two formulas


def assert_same_optima(batch, refits) -> None:
    """Each batch entry is the optimum of the matching one-at-a-time refit."""
    np.testing.assert_allclose(batch.objective, [r.objective for r in refits],
                               rtol=SAME_OPTIMUM["rel"], atol=SAME_OPTIMUM["abs"])
    for i, r in enumerate(refits):
        theta = batch.theta[i:i + 1]
        at = profiled_at(r, theta)
        np.testing.assert_allclose(batch.beta[i], at["beta"], rtol=CLOSED_FORM_RTOL)
        np.testing.assert_allclose(batch.sigma[i], at["sigma"], rtol=CLOSED_FORM_RTOL)
        np.testing.assert_allclose(batch.objective[i], r.pls.objective(theta, r.reml),
                                   rtol=CLOSED_FORM_RTOL)
        if r.theta[0] > 1e-4:  # off the boundary: the quadratic curvature bound holds
            tol = 2.0 * CurvatureBound(r, OPT_GAP)(lambda th: th)
            assert abs(batch.theta[i] - r.theta[0]) <= tol[0], (i, batch.theta[i], r.theta, tol)


@pytest.mark.parametrize("reml", [True, False])
def test_batch_equals_sequential_refits(pulp, reml):
    m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp, reml=reml)
    Y = m.simulate(40, rng=5)
    batch = batch_refit(m, Y)
    refits = [m.refit(y) for y in Y]
    assert_same_optima(batch, refits)
    # boundary optima (6 of 40 for REML, 11 for ML) are boundary optima of the batch
    # too: θ = 0, or a θ within rounding of the criterion at 0 (whether batch_refit
    # returns 0 itself is a tie decided by rounding, f being even in θ), below lme4's
    # singularity tolerance 1e-4 either way
    at_bound = np.array([r.is_singular for r in refits])  # θ within 1e-4 of 0
    assert at_bound.sum() >= 5
    assert np.all(batch.theta[at_bound] < 1e-4)


def test_batch_with_covariates(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    Y = m.simulate(10, rng=6)
    batch = batch_refit(m, Y)
    assert_same_optima(batch, [m.refit(y) for y in Y])


def test_only_scalar_random_effects_are_batched(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    assert not supports_batch(m)
    with pytest.raises(lmmlib.LmmlibError):
        batch_refit(m, m.simulate(2, rng=1))
