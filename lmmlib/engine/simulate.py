"""Simulating responses from a fitted linear mixed model (parametric bootstrap)."""

from __future__ import annotations

import numpy as np

from ..checks import as_count, describe, is_seed
from ..errors import ArgumentError
from .pls import PLSSolution
from .reterms import Block

__all__ = ["as_generator", "simulate_responses"]

_SEEDLIKE = (np.random.SeedSequence, np.random.BitGenerator, np.random.RandomState)


def as_generator(rng: np.random.Generator | int | None, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator or a seed (``None``: fresh entropy).

    Parameters
    ----------
    rng : Generator, int, SeedSequence, BitGenerator, RandomState or None
        A generator is used as it is (and advanced); a non-negative integer
        (or a list of them), a ``SeedSequence``, a ``BitGenerator`` or a legacy
        ``RandomState`` (whose bit generator is shared) gives one, as
        ``numpy.random.default_rng`` does.
    name : str
        The argument's name, for the message.

    Returns
    -------
    Generator

    Raises
    ------
    ArgumentError
        For anything else: floats, strings, booleans, negative integers.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, _SEEDLIKE) or is_seed(rng):
        return np.random.default_rng(rng)
    if isinstance(rng, (list, tuple)) and rng and all(is_seed(v) for v in rng):
        return np.random.default_rng([int(v) for v in rng])
    raise ArgumentError(f"{name} must be a numpy random Generator, a non-negative integer seed "
                        f"or None, got {describe(rng)}")


def block_draws(block: Block, theta: np.ndarray, sigma: float, nsim: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Z_b b* for ``nsim`` new draws b* ~ N(0, σ²Λ_bΛ_bᵀ) per level, shape (nsim, n)."""
    lam = block.lam(theta)
    b = sigma * rng.standard_normal((nsim, block.nlevels, block.q)) @ lam.T
    return np.einsum("ij,sij->si", block.Z, b[:, block.codes, :])


def simulate_responses(X: np.ndarray, blocks: tuple[Block, ...], sol: PLSSolution,
                       sigma: float, nsim: int, rng: np.random.Generator,
                       conditional_mean: np.ndarray | None = None,
                       offset: np.ndarray | None = None,
                       weights: np.ndarray | None = None) -> np.ndarray:
    """Draw ``nsim`` response vectors.

    Parameters
    ----------
    X, blocks, sol, sigma
        Design and estimates of the fitted model.
    nsim : int
        Number of simulated responses.
    rng : Generator
        Source of randomness.
    conditional_mean : ndarray, optional
        When given (the fitted values Xβ̂ + Zb̂), simulate conditionally on the
        BLUPs: only new residuals are drawn.
    offset, weights : ndarray, optional
        A known part of the mean, and prior weights (residual SD σ/√wᵢ).

    Returns
    -------
    ndarray of shape (nsim, n)
    """
    nsim = as_count(nsim, "nsim")
    n = X.shape[0]
    if conditional_mean is not None:
        mean = np.broadcast_to(conditional_mean, (nsim, n))
    else:
        fixed = X @ sol.beta if offset is None else offset + X @ sol.beta
        mean = np.broadcast_to(fixed, (nsim, n)).copy()
        for block in blocks:
            mean += block_draws(block, sol.theta, sigma, nsim, rng)
    scale = sigma if weights is None else sigma / np.sqrt(weights)
    return mean + scale * rng.standard_normal((nsim, n))
