"""Neyman-Scott: the fixed-effects MLE of sigma^2 tends to sigma^2 (m-1)/m (closed form)."""

from __future__ import annotations

import numpy as np
import pytest

import lmmlib
from lmmlib.course.neyman_scott import consistency_study, fixed_effects_mle, simulate_oneway


def test_simulation_layout_and_seed():
    a = simulate_oneway(50, 2, rng=1)
    b = simulate_oneway(50, 2, rng=np.random.default_rng(1))
    assert a.equals(b) and a.shape == (100, 3) and a["id"].nunique() == 50


def test_fixed_effects_mle_converges_to_half_sigma2():
    data = simulate_oneway(20_000, 2, sigma=0.2, rng=2)
    est = fixed_effects_mle(data)
    # E = sigma^2 (m - 1) / m = 0.02; sd of the estimate ~ 0.04 * sqrt(2 / 40000) = 2.8e-4,
    # so 1.2e-3 is 4.3 Monte Carlo SEs (seen 1.1 SE), and twice that for the unbiased
    # version (twice the estimate); the biased/unbiased mix-up is a factor of 2
    assert est["sigma2"] == pytest.approx(0.02, abs=1.2e-3)
    assert est["sigma2_unbiased"] == pytest.approx(0.04, abs=2.4e-3)


def test_random_effects_estimates_are_consistent():
    study = consistency_study([1000], m=2, reps=3, rng=3)
    means = study.groupby("estimator")["sigma2"].mean()
    # Monte Carlo: the mean of 3 estimates from 1000 pairs has relative SE ~
    # sqrt(2/1000)/sqrt(3) = 2.6 %, so 10 % is 3.9 SE (seen 1 %); the two targets differ
    # by a factor of 2
    assert means["random effects, REML"] == pytest.approx(0.04, rel=0.1)
    assert means["fixed-effects MLE"] == pytest.approx(0.02, rel=0.1)


def test_one_observation_per_individual_is_refused():
    data = simulate_oneway(100, 1, rng=4)
    with pytest.raises(lmmlib.DataError, match="not separately identifiable"):
        lmmlib.lmer("y ~ 1 + (1 | id)", data)
