"""``simulate`` of lmer and glmer fits: arguments checked, draws reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import three_fits

import lmmlib


@pytest.fixture(scope="module")
def fits():
    return three_fits()


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
@pytest.mark.parametrize("nsim", [2.5, "3", True, 0])
def test_simulate_counts_are_whole_numbers(fits, kind, nsim):
    with pytest.raises(lmmlib.ArgumentError, match="^nsim must be an integer"):
        fits[kind].simulate(nsim, rng=1)


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
def test_simulate_is_reproducible_from_the_seed(fits, kind):
    a, b = fits[kind].simulate(3, rng=5), fits[kind].simulate(3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)  # the same generator stream: bit-identical draws
    assert a.shape == (3, fits[kind].nobs)


def test_simulate_use_u_must_be_a_boolean(fits):
    with pytest.raises(lmmlib.ArgumentError, match="use_u must be True or False"):
        fits["lmer"].simulate(2, rng=1, use_u="no")
    np.testing.assert_array_equal(fits["lmer"].simulate(2, rng=1, use_u=np.True_),
                                  fits["lmer"].simulate(2, rng=1, use_u=True))
