"""Vectorised refits equal one-at-a-time refits (same optimum, same estimates)."""

from __future__ import annotations

import numpy as np
import pytest

import lmmlib
from lmmlib.batch import batch_refit, supports_batch


@pytest.mark.parametrize("reml", [True, False])
def test_batch_equals_sequential_refits(pulp, reml):
    m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp, reml=reml)
    Y = m.simulate(40, rng=5)
    batch = batch_refit(m, Y)
    one = [m.refit(y) for y in Y]
    np.testing.assert_allclose(batch.objective, [r.objective for r in one], rtol=1e-10)
    np.testing.assert_allclose(batch.theta, [r.theta[0] for r in one], atol=1e-6)
    np.testing.assert_allclose(batch.beta[:, 0], [r.fixef.iloc[0] for r in one], rtol=1e-9)
    np.testing.assert_allclose(batch.sigma, [r.sigma for r in one], rtol=1e-7)
    assert np.any(batch.theta == 0)  # boundary optima are found exactly


def test_batch_with_covariates(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    Y = m.simulate(10, rng=6)
    batch = batch_refit(m, Y)
    np.testing.assert_allclose(batch.beta, [m.refit(y).fixef for y in Y], rtol=1e-8)


def test_only_scalar_random_effects_are_batched(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    assert not supports_batch(m)
    with pytest.raises(lmmlib.LmmlibError):
        batch_refit(m, m.simulate(2, rng=1))
