"""Parametric bootstrap prediction intervals for a new observation.

The procedure of the STAT 528 notes (pulp, after Faraway's *Extending the
Linear Model with R*, §10.5): for each of ``n`` replicates

1. simulate a response from the fitted model — conditionally on the BLUPs
   (``use_u=True``, lme4's ``simulate(m, use.u = TRUE)``) as in the notes;
2. refit the model to it, giving β̂* and the BLUPs b̂*;
3. predict the new observation as x'β̂* plus, for every grouping factor,
   z'b̂* of the known level or z'b with a new effect b ~ N(0, Σ̂) for a new
   level, plus a new residual ε ~ N(0, σ̂²).

Σ̂ and σ̂ of the new effect and residual are those of the original fit, as in
the notes.  The interval is given by the percentiles of the ``n`` predictions.
Without the new effect and residual it would be an interval for the mean
prediction only.

Models with a single scalar random effect are refitted all at once
(:func:`lmmlib.inference.batch.batch_refit`, BLUPs in closed form); the others one by
one, in fixed-size chunks that joblib may run in parallel (see
:mod:`lmmlib.inference.bootstrap` for the reproducibility guarantees).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..checks import as_bool, as_instance, as_level, as_n_jobs, as_optional_bool, unweighted
from ..engine.design import block_covariates, fixed_rows
from ..engine.frame import as_frame
from ..engine.threads import blas_threads
from ..errors import DataError, LmmlibError
from ..kinds import GeneralizedMixedFit, LinearMixedFit
from .batch import batch_refit, supports_batch
from .bootstrap import (
    check_replicates,
    chunk_streams,
    percentile_interval,
    root_seed,
    run_chunks,
)

__all__ = ["prediction_interval"]


@dataclass(frozen=True)
class _Target:
    """What a replicate needs to predict the new rows (picklable, model-free)."""

    X: np.ndarray  # (rows, p) fixed-effects rows
    Z: tuple[np.ndarray, ...]  # per block, (rows, q) random-effects rows
    known: tuple[int, ...]  # per block, level code of a known group or -1 for a new one
    scale: tuple[np.ndarray, ...]  # per block, σ̂Λ̂_b: a new effect is scale @ N(0, I)
    sigma: float  # residual standard deviation of the original fit


def _known_codes(model: LinearMixedFit, group: Any) -> tuple[int, ...]:
    """Level code of the known group of every block (-1: a new group)."""
    factors = [b.factor for b in model.design.blocks]
    if group is None:
        wanted: dict = {}
    elif isinstance(group, Mapping):
        wanted = dict(group)
    elif len(factors) == 1:
        wanted = {factors[0]: group}
    else:
        raise DataError(f"the model has grouping factors {factors}: give group as a dict "
                        "{factor: level}")
    unknown = sorted(set(wanted) - set(factors))
    if unknown:
        raise DataError(f"{unknown} are not grouping factors of the model ({factors})")
    codes = []
    for block in model.design.blocks:
        if block.factor not in wanted:
            codes.append(-1)
            continue
        level = wanted[block.factor]
        idx = block.levels.get_indexer([str(level)])[0]  # labels are strings, as lme4
        if idx < 0:
            raise DataError(f"level {level!r} of {block.factor!r} is not in the fitted data; "
                            f"use group=None to predict for a new {block.factor}")
        codes.append(int(idx))
    return tuple(codes)


def _target(model: LinearMixedFit, newdata: Any, group: Any) -> tuple[_Target, pd.Index]:
    frame = pd.DataFrame(index=[0]) if newdata is None else as_frame(newdata)
    if len(frame) == 0:
        raise DataError("newdata has no rows")
    blocks = model.design.blocks
    Z = tuple(block_covariates(model.design, b, frame) for b in blocks)
    scale = tuple(model.sigma * b.lam(model.theta) for b in blocks)
    target = _Target(fixed_rows(model.design, frame), Z, _known_codes(model, group), scale,
                     model.sigma)
    return target, frame.index


def _noise(target: _Target, size: int, rng: np.random.Generator,
           residual: bool = True) -> np.ndarray:
    """New random effects of new groups plus (``residual``) new residuals, (size, rows)."""
    rows = target.X.shape[0]
    total = np.zeros((size, rows))
    for Z, code, scale in zip(target.Z, target.known, target.scale, strict=True):
        if code < 0:
            b = rng.standard_normal((size, rows, Z.shape[1])) @ scale.T
            total += np.einsum("rq,srq->sr", Z, b)
    if not residual:
        return total
    return total + target.sigma * rng.standard_normal((size, rows))


def _predict(fit: LinearMixedFit, target: _Target) -> np.ndarray:
    """x'β̂ + z'b̂ of the known groups for each new row, from one fit."""
    eta = target.X @ fit.fixef.to_numpy()
    effects = list(fit.ranef_arrays().values())
    for Z, code, eff in zip(target.Z, target.known, effects, strict=True):
        if code >= 0:
            eta = eta + Z @ eff.to_numpy()[code]
    return eta


def _chunk(model: LinearMixedFit, target: _Target, use_u: bool, size: int,
           ss: np.random.SeedSequence) -> np.ndarray:
    """Bootstrap predictions of one chunk, refitting one response at a time."""
    rng = np.random.default_rng(ss)
    with blas_threads(1):
        Y = model.simulate(size, rng, use_u=use_u)
        if isinstance(model, GeneralizedMixedFit):  # new responses drawn from the family
            eta = np.vstack([_predict(model.refit(y), target) for y in Y])
            mu = model.family.linkinv(eta + _noise(target, size, rng, residual=False))
            return model.family.sample(mu, np.ones_like(mu), rng)
        noise = _noise(target, size, rng)
        return np.vstack([_predict(model.refit(y), target) for y in Y]) + noise


def _batched(model: LinearMixedFit, target: _Target, use_u: bool, nsim: int,
             seed: int) -> np.ndarray:
    """All bootstrap predictions at once for a single scalar random effect."""
    Ys, noises = [], []
    with blas_threads(1):
        for size, ss in chunk_streams(nsim, seed):
            rng = np.random.default_rng(ss)
            Ys.append(model.simulate(size, rng, use_u=use_u))
            noises.append(_noise(target, size, rng))
        Y = np.vstack(Ys)
        fit = batch_refit(model, Y)
    eta = fit.beta @ target.X.T
    code = target.known[0]
    if code >= 0:
        # b̂_j = θ² z_j'r / (θ² z_j'z_j + 1) for level j, r = y − Xβ̂ (scalar Λ = θI)
        block = model.design.blocks[0]
        z = np.where(block.codes == code, block.Z[:, 0], 0.0)
        zr = (Y - fit.beta @ model.design.X.T) @ z
        t2 = fit.theta**2
        blup = t2 * zr / (t2 * (z @ z) + 1.0)
        eta = eta + blup[:, None] * target.Z[0][:, 0][None, :]
    return eta + np.vstack(noises)


def prediction_interval(model: LinearMixedFit, newdata: Any = None, group: Any = None,
                        nsim: int = 1000, rng: np.random.Generator | int | None = None,
                        level: float = 0.95,
                        n_jobs: int | None = None, progress: bool | None = None,
                        use_u: bool = True, batch: bool | None = None) -> pd.DataFrame:
    """Parametric bootstrap prediction interval for a new observation.

    For a ``glmer`` fit the new observation is drawn from the family at the
    refitted mean (a count, or a 0/1 outcome for the binomial), so the limits
    are percentiles of responses and ``fit`` is the estimated mean.

    Parameters
    ----------
    model : LinearMixedModel
        The fitted model.
    newdata : DataFrame, optional
        Covariates of the new observations (one interval per row).  May be
        omitted when the fixed and random parts are intercepts only.  Its
        grouping columns are ignored: ``group`` says which groups are known.
    group : str or dict, optional
        ``None`` (default): the observation comes from a new group of every
        grouping factor.  A level (for a model with one grouping factor) or a
        dict ``{factor: level}``: that known group, whose BLUP is re-estimated
        in every replicate; factors left out are new groups.
    nsim : int
        Number of bootstrap replicates.
    rng : int or Generator, optional
        Integer seed or ``numpy.random.Generator`` (advanced by one draw) for the
        root of the replicate streams (see
        :func:`lmmlib.inference.bootstrap.root_seed`); ``None`` draws fresh
        entropy.  The root is stored in ``result.attrs["seed"]``.
    level : float
        Coverage of the interval.
    n_jobs : int, optional
        joblib workers for one-by-one refits (``None``: joblib's active
        setting, 1 by default; ``-1``: all CPUs).
    progress : bool, optional
        Progress bar (default: only when stderr is a terminal).
    use_u : bool
        Simulate the responses conditionally on the BLUPs (the notes'
        ``use.u = TRUE``, default); ``False`` draws new random effects, which
        adds the between-group variation of β̂* (Faraway's choice for a new
        group).
    batch : bool, optional
        ``None``: refit all at once when the model has a single scalar random
        effect; ``False``: one by one.

    Returns
    -------
    DataFrame
        Columns ``fit`` (x'β̂, plus z'b̂ of known groups), ``lower`` and
        ``upper``, indexed as ``newdata``; ``attrs`` records ``nsim``, ``seed``,
        ``level``, ``use_u`` and ``group``.

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit, or an option has the wrong type
        or value (``nsim=2.5``, ``level=95``, ``n_jobs=0``, ``use_u="yes"``...).
    DataError
        For ``newdata`` without rows or a ``group`` the model does not know.
    """
    unweighted(model, "prediction_interval")
    as_instance(model, "model", (LinearMixedFit, GeneralizedMixedFit),
                "a mixed model fitted by lmmlib.lmer or lmmlib.glmer (prediction_interval "
                "needs random effects)")
    nsim, seed = check_replicates(nsim), root_seed(rng)
    level = as_level(level)
    n_jobs = as_n_jobs(n_jobs)
    progress = as_optional_bool(progress, "progress")
    use_u = as_bool(use_u, "use_u")
    batch = as_optional_bool(batch, "batch")
    target, index = _target(model, newdata, group)
    if batch and not supports_batch(model):
        raise LmmlibError(f"batch=True needs a single scalar random effect ({model.formula!r})")
    if supports_batch(model) and batch is not False:
        draws = _batched(model, target, use_u, nsim, seed)
    else:
        task = partial(_chunk, model, target, use_u)
        draws = np.vstack(run_chunks(task, nsim, seed, n_jobs, progress,
                                     "prediction interval"))
    lower, upper = percentile_interval(draws, level)
    fit = _predict(model, target)
    if isinstance(model, GeneralizedMixedFit):
        fit = model.family.linkinv(fit)  # the mean; the limits are observable responses
        q = [(1 - level) / 2, (1 + level) / 2]
        lower, upper = np.quantile(draws, q, axis=0, method="inverted_cdf")
    out = pd.DataFrame({"fit": fit, "lower": lower, "upper": upper}, index=index)
    out.attrs.update(nsim=nsim, seed=seed, level=level, use_u=use_u, group=group)
    return out
