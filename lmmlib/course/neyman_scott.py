"""The Neyman–Scott problem: one parameter per individual breaks maximum likelihood.

In the one-way layout ``Y_ij = μ + α_i + ε_ij`` (i = 1..n individuals, j = 1..m
replicates, ε_ij ~ N(0, σ²)) with the α_i treated as fixed parameters, the MLE
of σ² is ``Σ(Y_ij − Ȳ_i)² / (nm)``, whose limit is ``σ²(m − 1)/m`` — half of
σ² with two replicates — however many individuals are observed (Neyman & Scott,
1949, *Econometrica* 16:1–32).  Treating α_i as random, α_i ~ N(0, τ²), leaves
three parameters whatever n, and their ML and REML estimators are consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..engine.simulate import as_generator
from ..models.fit import lmer

__all__ = ["simulate_oneway", "fixed_effects_mle", "consistency_study"]


def simulate_oneway(n: int, m: int, mu: float = 2.5, tau: float = 0.5, sigma: float = 0.2,
                    rng: np.random.Generator | int | None = None) -> pd.DataFrame:
    """Simulate the one-way random-effects layout.

    Parameters
    ----------
    n, m : int
        Individuals and replicates per individual.
    mu, tau, sigma : float
        Mean, SD of the individual effects α_i and residual SD (the course's
        defaults: 2.5, 0.5 and 0.2).
    rng : Generator or int
        Random generator or seed.

    Returns
    -------
    DataFrame
        Columns ``id`` (categorical), ``y`` and ``alpha`` (the true effect).
    """
    rng = as_generator(rng)
    alpha = rng.normal(0.0, tau, size=n)
    ids = np.repeat(np.arange(1, n + 1), m)
    y = mu + alpha[ids - 1] + rng.normal(0.0, sigma, size=n * m)
    return pd.DataFrame({"id": pd.Categorical(ids), "y": y, "alpha": alpha[ids - 1]})


def fixed_effects_mle(data: pd.DataFrame, response: str = "y", group: str = "id") -> pd.Series:
    """MLE with one fixed effect per individual: μ̂, and σ̂² = RSS / (nm).

    Parameters
    ----------
    data : DataFrame
        One-way layout.
    response, group : str
        Column names.

    Returns
    -------
    Series
        ``mu`` and ``sigma2`` (the inconsistent MLE) and ``sigma2_unbiased``
        (RSS divided by the residual degrees of freedom nm − n).
    """
    y = data[response].to_numpy(float)
    means = data.groupby(group, observed=True)[response].transform("mean").to_numpy()
    rss = float(np.sum((y - means) ** 2))
    n_groups = data[group].nunique()
    return pd.Series({"mu": y.mean(), "sigma2": rss / len(y),
                      "sigma2_unbiased": rss / (len(y) - n_groups) if len(y) > n_groups
                      else np.nan})


def consistency_study(sizes: Sequence[int], m: int = 2, reps: int = 20, mu: float = 2.5,
                      tau: float = 0.5, sigma: float = 0.2,
                      rng: np.random.Generator | int | None = None,
                      progress: bool | None = None) -> pd.DataFrame:
    """Estimates of σ² as the number of individuals grows.

    For each n in ``sizes`` and each replicate, simulate the layout and estimate
    σ² by the fixed-effects MLE and by ML and REML with random α_i (``lmer``).

    Parameters
    ----------
    sizes : sequence of int
        Numbers of individuals n.
    m : int
        Replicates per individual (≥ 2; with m = 1 σ² and τ² are confounded).
    reps : int
        Simulations per size.
    mu, tau, sigma : float
        True parameters.
    rng : Generator or int
        Random generator or seed.
    progress : bool, optional
        Show a progress bar (default: only in interactive sessions).

    Returns
    -------
    DataFrame
        Long format: ``n, rep, estimator, sigma2``.
    """
    rng = as_generator(rng)
    rows = []
    todo = [(n, r) for n in sizes for r in range(reps)]
    for n, r in tqdm(todo, disable=not progress if progress is not None else None,
                     desc="Neyman-Scott"):
        data = simulate_oneway(n, m, mu, tau, sigma, rng)
        rows.append((n, r, "fixed-effects MLE", fixed_effects_mle(data)["sigma2"]))
        for reml, label in ((False, "random effects, ML"), (True, "random effects, REML")):
            fit = lmer("y ~ 1 + (1 | id)", data, reml=reml)
            rows.append((n, r, label, fit.sigma**2))
    return pd.DataFrame(rows, columns=["n", "rep", "estimator", "sigma2"])
