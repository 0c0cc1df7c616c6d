"""Simulating responses from a fitted linear mixed model (parametric bootstrap)."""

from __future__ import annotations

import numpy as np

from .pls import PLSSolution
from .reterms import Block

__all__ = ["as_generator", "simulate_responses"]


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator or a seed (``None``: fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def block_draws(block: Block, theta: np.ndarray, sigma: float, nsim: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Z_b b* for ``nsim`` new draws b* ~ N(0, σ²Λ_bΛ_bᵀ) per level, shape (nsim, n)."""
    lam = block.lam(theta)
    b = sigma * rng.standard_normal((nsim, block.nlevels, block.q)) @ lam.T
    return np.einsum("ij,sij->si", block.Z, b[:, block.codes, :])


def simulate_responses(X: np.ndarray, blocks: tuple[Block, ...], sol: PLSSolution,
                       sigma: float, nsim: int, rng: np.random.Generator,
                       conditional_mean: np.ndarray | None = None) -> np.ndarray:
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

    Returns
    -------
    ndarray of shape (nsim, n)
    """
    n = X.shape[0]
    if conditional_mean is not None:
        mean = np.broadcast_to(conditional_mean, (nsim, n))
    else:
        mean = np.broadcast_to(X @ sol.beta, (nsim, n)).copy()
        for block in blocks:
            mean += block_draws(block, sol.theta, sigma, nsim, rng)
    return mean + sigma * rng.standard_normal((nsim, n))
