"""Parametric bootstrap: simulate from a fit, refit, collect a statistic.

:func:`bootstrap_lrt` is the bootstrap likelihood-ratio test, the remedy for χ²
reference distributions that fail on the boundary (a variance tested against
zero); :func:`bootstrap` gives the bootstrap distribution of any statistic of a
fit (percentile intervals, standard errors of BLUPs...).

Reproducibility: the replicates are cut into chunks of fixed size
(:data:`CHUNK`, whatever ``n_jobs``), chunk ``i`` draws from the ``i``-th child
of ``numpy.random.SeedSequence(root)`` and runs with one BLAS thread, so results
are bit-identical for any ``n_jobs`` or joblib backend.  The root is the ``rng``
argument when it is an integer seed, 63 bits drawn from it when it is a
``numpy.random.Generator`` (which it advances), fresh OS entropy when it is
``None``; results record it as ``seed``, and ``rng=result.seed`` reproduces them.

Parallelism: chunks are dispatched with :mod:`joblib` — ``n_jobs=2`` for local
processes; inside ``joblib.parallel_config(backend="dask")`` with a
``dask.distributed.Client`` (leave ``n_jobs=None``) they run on the Dask
cluster, the way to go beyond one machine (a cluster of one core runs them
in-process).  Models with a single scalar random effect and ``lm`` nulls need
none of this: :func:`lmmlib.inference.batch.batch_refit` refits all replicates at once.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from tqdm import tqdm

from ..checks import (
    as_bool,
    as_instance,
    as_level,
    as_n_jobs,
    as_optional_bool,
    as_replicates,
    as_seed,
    as_values,
    callable_label,
    describe,
    is_seed,
)
from ..engine.simulate import as_generator
from ..engine.threads import blas_threads
from ..errors import ArgumentError, LmmlibError, LmmlibWarning
from ..kinds import GeneralizedMixedFit, LinearFit, LinearMixedFit
from .anova import as_ml, check_nested
from .batch import refit_deviances, vectorised

__all__ = ["CHUNK", "BootstrapLRT", "BootstrapResult", "bootstrap", "bootstrap_lrt",
           "check_fit", "check_replicates", "chunk_streams", "percentile_interval", "refit_fit",
           "root_seed", "run_chunks", "simulate_fit"]

#: Replicates per chunk (one random stream each); fixed so results do not depend on n_jobs.
CHUNK = 50
#: Bootstrap LRT statistics below this are counted as zero (boundary fits).
ZERO_TOL = 1e-8


# -- chunked, reproducible execution -----------------------------------------------
def root_seed(rng: np.random.Generator | int | None) -> int:
    """The root seed of the replicate streams, recorded in results as ``seed``.

    An integer seed is the root itself; ``None`` gives fresh entropy from the
    OS; a ``numpy.random.Generator`` (or anything else
    ``lmmlib.engine.simulate.as_generator`` accepts) gives 63 bits drawn
    from it, so the same generator state gives the same root.  Passing the
    returned root as ``rng`` reproduces the replicates.

    Raises :class:`~lmmlib.errors.ArgumentError` for anything else (floats,
    strings, booleans, negative integers).
    """
    if rng is None or is_seed(rng):
        return int(np.random.SeedSequence(as_seed(rng, "rng")).entropy)
    return int(as_generator(rng).integers(0, 2**63))


def _show_progress(progress: bool | None) -> bool:
    progress = as_optional_bool(progress, "progress")
    return sys.stderr.isatty() if progress is None else progress


def run_chunks(task: Callable[[int, np.random.SeedSequence], Any], nsim: int, seed: int,
               n_jobs: int | None = None, progress: bool | None = None,
               desc: str = "bootstrap") -> list:
    """Run ``task(size, seed_sequence)`` on the fixed-size chunks of ``nsim`` replicates.

    ``task`` must be picklable; ``n_jobs=None`` uses joblib's active setting (1
    outside a ``parallel_config`` context); ``progress=None`` shows a tqdm bar
    only when stderr is a terminal.  Returns the chunk results in chunk order.
    """
    n_jobs = as_n_jobs(n_jobs)
    plan = chunk_streams(nsim, seed)
    results = []
    with tqdm(total=nsim, desc=desc, disable=not _show_progress(progress)) as bar:
        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(task)(size, ss) for size, ss in plan)
        for (size, _), res in zip(plan, jobs, strict=True):
            results.append(res)
            bar.update(size)
    return results


def chunk_streams(nsim: int, seed: int) -> list[tuple[int, np.random.SeedSequence]]:
    """The (size, SeedSequence) of every chunk, as :func:`run_chunks` hands them out."""
    sizes = [min(CHUNK, nsim - start) for start in range(0, nsim, CHUNK)]
    return list(zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes)), strict=True))


#: ``nsim`` as an int if it is a valid number of replicates (:func:`lmmlib.checks.as_replicates`).
check_replicates = as_replicates
_FITS = (LinearMixedFit, LinearFit, GeneralizedMixedFit)


def check_fit(model: Any, name: str = "model") -> Any:
    """``model`` itself if it is an ``lmer``, ``glmer`` or ``lm`` fit (the kinds refitted)."""
    return as_instance(model, name, _FITS, "a fit of lmmlib.lmer, lmmlib.glmer or lmmlib.lm")


# -- simulation and refits of either kind of fit ------------------------------------
def simulate_fit(model, size: int, rng: np.random.Generator, use_u: bool = False) -> np.ndarray:
    """``size`` responses simulated from a fitted ``lmer`` or ``lm`` model, shape (size, n).

    For an ``lm`` fit the draws are Xβ̂ + σ̂ε with σ̂ the residual standard error
    √(RSS/(n − p)), as R's ``simulate.lm``.
    """
    return model.simulate(size, rng, use_u=as_bool(use_u, "use_u"))


def refit_fit(model, y: np.ndarray):
    """``model`` refitted to the response ``y`` (``lm`` fits included)."""
    return model.refit(y)


# -- likelihood-ratio test -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BootstrapLRT:
    """A parametric bootstrap likelihood-ratio test.

    Attributes
    ----------
    observed : float
        LRT statistic 2(log L_alt − log L_null) of the data (ML fits).
    df : int
        Difference in the number of parameters (for the naive χ² p-value).
    statistics : ndarray
        The ``nsim`` statistics simulated under the null (optimiser noise below 0 set to 0).
    nsim : int
        Number of replicates.
    seed : int
        Root seed of the replicate streams (see :func:`root_seed`): ``rng=seed``
        gives the same statistics, whatever ``rng`` was given.
    """

    observed: float
    df: int
    statistics: np.ndarray
    nsim: int
    seed: int

    @property
    def n_extreme(self) -> int:
        """Number of bootstrap statistics at least as large as the observed one."""
        return int(np.sum(self.statistics >= self.observed - ZERO_TOL))

    @property
    def p_value(self) -> float:
        """Bootstrap p-value (1 + #{T* ≥ T}) / (1 + nsim).

        The observed data count as one draw from the null, which keeps the test
        at its level for any nsim (Davison & Hinkley 1997, eq. 4.11; pbkrtest's
        ``p.PB.all`` up to ties).  The plain proportion #{T* ≥ T}/nsim, the
        course's ``mean(lrtstat > T)``, is :attr:`p_proportion`.  Unlike
        pbkrtest's ``p.PB``, zero statistics are not discarded: they are
        genuine draws of the null distribution.
        """
        return (1 + self.n_extreme) / (1 + self.nsim)

    @property
    def p_proportion(self) -> float:
        """The plain proportion #{T* ≥ T}/nsim of bootstrap statistics reaching T."""
        return self.n_extreme / self.nsim

    @property
    def mc_se(self) -> float:
        """Monte Carlo standard error √(p(1 − p)/nsim) of :attr:`p_value`."""
        p = self.p_value
        return float(np.sqrt(p * (1 - p) / self.nsim))

    @property
    def p_chisq(self) -> float:
        """The naive χ²(df) p-value, for comparison."""
        return float(stats.chi2.sf(self.observed, self.df))

    @property
    def share_zero(self) -> float:
        """Fraction of bootstrap statistics that are 0 (within 1e-8): boundary fits."""
        return float(np.mean(self.statistics < ZERO_TOL))

    def __repr__(self) -> str:
        return "\n".join([
            f"Parametric bootstrap LRT ({self.nsim} simulations from the null fit, "
            f"seed {self.seed})",
            f"  LRT = {self.observed:.4f} on {self.df} df;  naive chi-square p = "
            f"{self.p_chisq:.4g}",
            f"  bootstrap p = {self.p_value:.4f}  (MC s.e. {self.mc_se:.4f}; "
            f"{self.n_extreme}/{self.nsim} simulated LRT >= observed, "
            f"proportion {self.p_proportion:.4f})",
            f"  {100 * self.share_zero:.1f}% of simulated statistics are 0 (boundary fits)",
        ])


def _lrt_chunk(null, alt, batch: bool, size: int, ss: np.random.SeedSequence) -> np.ndarray:
    """Bootstrap LRT statistics of one chunk (simulate under the null, refit both)."""
    with blas_threads(1):
        Y = simulate_fit(null, size, np.random.default_rng(ss))
        return refit_deviances(null, Y, batch) - refit_deviances(alt, Y, batch)


def bootstrap_lrt(null, alt, nsim: int = 1000, rng: np.random.Generator | int | None = None,
                  n_jobs: int | None = None, progress: bool | None = None,
                  batch: bool | None = None) -> BootstrapLRT:
    """Parametric bootstrap likelihood-ratio test of ``null`` within ``alt``.

    Responses are simulated from the (ML) null fit, both models are refitted
    to each, and the observed statistic is compared with the simulated ones.

    Parameters
    ----------
    null : LinearModel or LinearMixedModel
        The smaller model (an ``lm`` fit is fine).
    alt : LinearMixedModel or LinearModel
        The larger model, fitted to the same response.
    nsim : int
        Number of bootstrap replicates.
    rng : int or Generator, optional
        Integer seed or ``numpy.random.Generator`` (advanced by one draw) for the
        root of the replicate streams; ``None`` draws fresh entropy.  The root
        is stored as ``result.seed``.
    n_jobs : int, optional
        joblib workers for the one-by-one refits (``None``: joblib's active
        setting, 1 by default; ``-1``: all CPUs); ignored by the vectorised path.
    progress : bool, optional
        Progress bar (default: only when stderr is a terminal).
    batch : bool, optional
        ``None`` (default): refit all replicates at once when both models
        allow it (``lm`` or a single scalar random effect), else one by one;
        ``False``: always one by one; ``True``: require the vectorised path.

    Returns
    -------
    BootstrapLRT

    Raises
    ------
    ArgumentError
        If ``null`` or ``alt`` is not an ``lm`` or ``lmer`` fit, or an option
        has the wrong type or value (``nsim=2.5``, ``n_jobs=0``, ``batch="yes"``).

    Warns
    -----
    LmmlibWarning
        When a REML fit is refitted by ML for the test.
    """
    null, alt = check_fit(null, "null"), check_fit(alt, "alt")
    nsim, seed = check_replicates(nsim), root_seed(rng)
    n_jobs = as_n_jobs(n_jobs)
    progress = as_optional_bool(progress, "progress")
    batch = as_optional_bool(batch, "batch")
    null, alt = as_ml(null, "null"), as_ml(alt, "alternative")
    df = check_nested(null, alt)
    observed = float(null.objective - alt.objective)
    fast = vectorised(null) and vectorised(alt)
    if batch and not fast:
        raise LmmlibError("batch=True needs lm fits or a single scalar random effect in both "
                          f"models ({null.formula!r}, {alt.formula!r})")
    if fast and batch is not False:
        with blas_threads(1):
            Y = np.vstack([simulate_fit(null, size, np.random.default_rng(ss))
                           for size, ss in chunk_streams(nsim, seed)])
            raw = refit_deviances(null, Y, True) - refit_deviances(alt, Y, True)
    else:
        task = partial(_lrt_chunk, null, alt, batch is not False)
        raw = np.concatenate(run_chunks(task, nsim, seed, n_jobs, progress, "bootstrap LRT"))
    if raw.min() < -1e-4:
        warnings.warn(f"{np.sum(raw < -1e-4)} bootstrap LRT statistics are negative (down to "
                      f"{raw.min():.3g}): are the models nested?", LmmlibWarning, stacklevel=2)
    return BootstrapLRT(observed, df, np.maximum(raw, 0.0), nsim, seed)


# -- any statistic -------------------------------------------------------------------
def _names(stat: Callable, value: Any) -> list:
    if isinstance(value, pd.Series):
        return list(value.index)
    if np.ndim(value) == 0:
        name = getattr(stat, "__name__", "statistic")
        return ["statistic" if name == "<lambda>" else name]
    return list(range(np.size(value)))


def _stat_chunk(model, stat: Callable, use_u: bool, width: int, size: int,
                ss: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """``stat`` of the refits to one chunk, shape (size, width), and which refits failed.

    Failed refits give NaN rows; a statistic of the wrong kind or length is an error.
    """
    out = np.full((size, width), np.nan)
    failed = np.zeros(size, dtype=bool)
    label = callable_label(stat)
    with blas_threads(1):
        Y = simulate_fit(model, size, np.random.default_rng(ss), use_u)
        for i, y in enumerate(Y):
            try:
                fit = refit_fit(model, y)
            except (LmmlibError, np.linalg.LinAlgError):
                failed[i] = True
                continue
            row = as_values(stat(fit), label, "on a bootstrap refit")
            if row.size != width:
                raise ArgumentError(f"{label} returned {row.size} values on a bootstrap "
                                    f"refit but {width} on the fitted model")
            out[i] = row
    return out, failed


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap distribution of a statistic.

    Attributes
    ----------
    observed : Series
        The statistic of the fitted model.
    replicates : DataFrame
        One row per bootstrap refit (NaN if it failed), one column per component,
        the values as the statistic returned them.
    nsim : int
        Number of replicates.
    seed : int
        Root seed of the replicate streams (see :func:`root_seed`): ``rng=seed``
        gives the same replicates, whatever ``rng`` was given.
    use_u : bool
        Whether responses were simulated conditionally on the BLUPs.

    Notes
    -----
    ``se``, ``bias`` and ``ci`` use the finite replicates of each component:
    failed refits and values the statistic returned as NaN or ±inf are left out
    (:func:`bootstrap` warns when there are any).
    """

    observed: pd.Series
    replicates: pd.DataFrame
    nsim: int
    seed: int
    use_u: bool = False

    @property
    def finite(self) -> pd.DataFrame:
        """The replicates with non-finite values (failed refits, NaN, ±inf) set to NaN."""
        return self.replicates.where(np.isfinite(self.replicates))

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard errors (standard deviation of the finite replicates)."""
        return self.finite.std(ddof=1).rename("se")

    @property
    def bias(self) -> pd.Series:
        """Mean of the finite replicates minus the observed statistic."""
        return (self.finite.mean() - self.observed).rename("bias")

    def ci(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals (R's default quantile type 7), columns as lme4's ``confint``."""
        level = as_level(level)
        a = (1 - level) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a component with no finite value
            q = np.nanquantile(self.finite.to_numpy(), [a, 1 - a], axis=0)
        cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
        return pd.DataFrame(q.T, index=self.replicates.columns, columns=cols)

    def summary(self) -> pd.DataFrame:
        """Observed value, bias, standard error and 95% percentile interval."""
        return pd.concat([self.observed.rename("observed"), self.bias, self.se, self.ci()],
                         axis=1)

    def __repr__(self) -> str:
        kind = "conditional on the BLUPs" if self.use_u else "new random effects"
        head = f"Parametric bootstrap ({self.nsim} refits, {kind}, seed {self.seed})"
        return f"{head}\n{self.summary().to_string(float_format=lambda v: f'{v:.5g}')}"


def _observed(model, stat: Callable) -> pd.Series:
    """The statistic of the fitted model, checked: numbers, all finite."""
    if not callable(stat):
        raise ArgumentError(f"stat must be a function of a fitted model, got {describe(stat)}")
    label = callable_label(stat)
    value = stat(model)
    values = as_values(value, label, "on the fitted model")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        names = _names(stat, value)
        shown = ", ".join(f"{names[i]!r}: {values[i]}" for i in bad[:5])
        raise ArgumentError(f"{label} returned non-finite values on the fitted model ({shown}); "
                            "the bootstrap needs a statistic that is finite on the data")
    return pd.Series(values, index=_names(stat, value), name="observed")


def bootstrap(model, stat: Callable[[Any], Any], nsim: int = 1000,
              rng: np.random.Generator | int | None = None,
              n_jobs: int | None = None, progress: bool | None = None,
              use_u: bool = False) -> BootstrapResult:
    """Parametric bootstrap of any statistic of a fitted model.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
        The fit to simulate from and refit.
    stat : callable
        ``stat(fit)`` returning a float, a 1-d array or a Series (named
        components) of numbers, e.g. ``lambda m: m.fixef`` or
        ``lambda m: m.ranef_arrays()["id"].iloc[:, 0]``; finite on ``model``
        and of the same length on every refit.
    nsim : int
        Number of replicates.
    rng : int or Generator, optional
        Integer seed or ``numpy.random.Generator`` (advanced by one draw) for the
        root of the replicate streams; ``None`` draws fresh entropy.  The root
        is stored as ``result.seed``.
    n_jobs : int, optional
        joblib workers (``None``: joblib's active setting, 1 by default;
        ``-1``: all CPUs).
    progress : bool, optional
        Progress bar (default: only when stderr is a terminal).
    use_u : bool
        Simulate conditionally on the BLUPs (lme4's ``use.u = TRUE``).

    Returns
    -------
    BootstrapResult
        With ``ci(level)``, ``se``, ``bias`` and the ``replicates``.

    Raises
    ------
    ArgumentError
        For a bad argument, and when ``stat`` returns something that is not
        numbers (None, a string, a model...), non-finite values on ``model``,
        or another number of values on a refit than on ``model``.
    LmmlibError
        When every refit fails.

    Warns
    -----
    LmmlibWarning
        When refits fail (their rows are NaN), and when ``stat`` returns NaN or
        ±inf on some refits: the warning counts them, ``replicates`` keeps
        them as returned and ``se``, ``bias`` and ``ci`` leave them out.
    """
    model = check_fit(model)
    nsim, seed = check_replicates(nsim), root_seed(rng)
    n_jobs = as_n_jobs(n_jobs)
    progress = as_optional_bool(progress, "progress")
    use_u = as_bool(use_u, "use_u")
    observed = _observed(model, stat)
    task = partial(_stat_chunk, model, stat, use_u, observed.size)
    chunks = run_chunks(task, nsim, seed, n_jobs, progress, "bootstrap")
    rows = np.vstack([c[0] for c in chunks])
    failed = int(np.concatenate([c[1] for c in chunks]).sum())
    if failed == nsim:
        raise LmmlibError("all bootstrap refits failed")
    if failed:
        warnings.warn(f"{failed} of {nsim} bootstrap refits failed; their rows are NaN and left "
                      "out of se and ci", LmmlibWarning, stacklevel=2)
    nonfinite = int((~np.isfinite(rows)).any(axis=1).sum()) - failed
    if nonfinite:
        warnings.warn(f"{callable_label(stat)} returned NaN or infinite values on {nonfinite} "
                      f"of {nsim} bootstrap refits; they are left out of se, bias and ci",
                      LmmlibWarning, stacklevel=2)
    replicates = pd.DataFrame(rows, columns=observed.index)
    return BootstrapResult(observed, replicates, nsim, seed, use_u)


def percentile_interval(draws: np.ndarray, level: float) -> np.ndarray:
    """Type-7 percentile limits of ``draws`` along axis 0, shape (2, ...)."""
    level = as_level(level)
    a = (1 - level) / 2
    return np.quantile(draws, [a, 1 - a], axis=0)
