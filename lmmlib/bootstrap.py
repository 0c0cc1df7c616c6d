"""Parametric bootstrap: simulate from a fit, refit, collect a statistic.

:func:`bootstrap_lrt` is the bootstrap likelihood-ratio test, the remedy for χ²
reference distributions that fail on the boundary (a variance tested against
zero); :func:`bootstrap` gives the bootstrap distribution of any statistic of a
fit (percentile intervals, standard errors of BLUPs...).

Reproducibility: the replicates are cut into chunks of fixed size
(:data:`CHUNK`, whatever ``n_jobs``), chunk ``i`` draws from the ``i``-th child
of ``numpy.random.SeedSequence(seed)`` and runs with one BLAS thread, so results
are bit-identical for any ``n_jobs`` or joblib backend.

Parallelism: chunks are dispatched with :mod:`joblib` — ``n_jobs=2`` for local
processes; inside ``joblib.parallel_config(backend="dask")`` with a
``dask.distributed.Client`` (leave ``n_jobs=None``) they run on the Dask
cluster, the way to go beyond one machine (a cluster of one core runs them
in-process).  Models with a single scalar random effect and ``lm`` nulls need
none of this: :func:`lmmlib.batch.batch_refit` refits all replicates at once.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from tqdm import tqdm

from .batch import batch_refit, supports_batch
from .errors import DataError, LmmlibError, LmmlibWarning
from .lm import LinearModel
from .threads import blas_threads

__all__ = ["CHUNK", "BootstrapLRT", "BootstrapResult", "bootstrap", "bootstrap_lrt",
           "check_replicates", "chunk_streams", "percentile_interval", "refit_fit", "root_seed",
           "run_chunks", "simulate_fit"]

#: Replicates per chunk (one random stream each); fixed so results do not depend on n_jobs.
CHUNK = 50
#: Bootstrap LRT statistics below this are counted as zero (boundary fits).
ZERO_TOL = 1e-8


# -- chunked, reproducible execution -----------------------------------------------
def root_seed(seed: int | None) -> int:
    """The seed itself, or fresh entropy from the OS (to be recorded) when ``seed`` is None."""
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise LmmlibError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(np.random.SeedSequence(seed).entropy)


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


def run_chunks(task: Callable[[int, np.random.SeedSequence], Any], n: int, seed: int,
               n_jobs: int | None = None, progress: bool | None = None,
               desc: str = "bootstrap") -> list:
    """Run ``task(size, seed_sequence)`` on the fixed-size chunks of ``n`` replicates.

    ``task`` must be picklable; ``n_jobs=None`` uses joblib's active setting (1
    outside a ``parallel_config`` context); ``progress=None`` shows a tqdm bar
    only when stderr is a terminal.  Returns the chunk results in chunk order.
    """
    plan = chunk_streams(n, seed)
    results = []
    with tqdm(total=n, desc=desc, disable=not _show_progress(progress)) as bar:
        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(task)(size, ss) for size, ss in plan)
        for (size, _), res in zip(plan, jobs, strict=True):
            results.append(res)
            bar.update(size)
    return results


def chunk_streams(n: int, seed: int) -> list[tuple[int, np.random.SeedSequence]]:
    """The (size, SeedSequence) of every chunk, as :func:`run_chunks` hands them out."""
    sizes = [min(CHUNK, n - start) for start in range(0, n, CHUNK)]
    return list(zip(sizes, np.random.SeedSequence(seed).spawn(len(sizes)), strict=True))


def check_replicates(n: int) -> int:
    """``n`` as an int, if it is a valid number of replicates."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise LmmlibError(f"the number of bootstrap replicates must be a positive integer, "
                          f"got {n!r}")
    return int(n)


# -- simulation and refits of either kind of fit ------------------------------------
def simulate_fit(model, size: int, rng: np.random.Generator, use_u: bool = False) -> np.ndarray:
    """``size`` responses simulated from a fitted ``lmer`` or ``lm`` model, shape (size, n).

    For a :class:`~lmmlib.lm.LinearModel` the draws are Xβ̂ + σ̂ε with σ̂ the
    residual standard error √(RSS/(n − p)), as R's ``simulate.lm``.
    """
    if isinstance(model, LinearModel):
        mean = model.design.X @ model.fixef.to_numpy()
        return mean + model.sigma * rng.standard_normal((size, model.nobs))
    return model.simulate(size, rng, use_u=use_u)


def refit_fit(model, y: np.ndarray):
    """``model`` refitted to the response ``y`` (``lm`` fits included)."""
    if isinstance(model, LinearModel):
        return LinearModel(replace(model.design, y=np.asarray(y, dtype=float)))
    return model.refit(y)


def _lm_deviances(model: LinearModel, Y: np.ndarray) -> np.ndarray:
    """ML deviance of ``model``'s design refitted to each row of ``Y`` (closed form)."""
    Q = np.linalg.qr(model.design.X)[0]
    R = Y - (Y @ Q) @ Q.T
    n = model.nobs
    return n * (1.0 + np.log(2.0 * np.pi * np.einsum("bi,bi->b", R, R) / n))


def _vectorised(model) -> bool:
    return isinstance(model, LinearModel) or supports_batch(model)


def _deviances(model, Y: np.ndarray, batch: bool) -> np.ndarray:
    """ML deviances of ``model`` refitted to each row of ``Y``."""
    if isinstance(model, LinearModel):
        return _lm_deviances(model, Y)
    if batch and supports_batch(model):
        return batch_refit(model, Y).objective
    return np.array([model.refit(y).objective for y in Y])


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
        The ``n`` statistics simulated under the null (optimiser noise below 0 set to 0).
    n, seed : int
        Number of replicates and root seed (the same seed gives the same statistics).
    """

    observed: float
    df: int
    statistics: np.ndarray
    n: int
    seed: int

    @property
    def n_extreme(self) -> int:
        """Number of bootstrap statistics at least as large as the observed one."""
        return int(np.sum(self.statistics >= self.observed - ZERO_TOL))

    @property
    def p_value(self) -> float:
        """Bootstrap p-value (1 + #{T* ≥ T}) / (1 + n).

        The observed data count as one draw from the null, which keeps the test
        at its level for any n (Davison & Hinkley 1997, eq. 4.11; pbkrtest's
        ``p.PB.all`` up to ties).  The plain proportion #{T* ≥ T}/n, the
        course's ``mean(lrtstat > T)``, is :attr:`p_proportion`.  Unlike
        pbkrtest's ``p.PB``, zero statistics are not discarded: they are
        genuine draws of the null distribution.
        """
        return (1 + self.n_extreme) / (1 + self.n)

    @property
    def p_proportion(self) -> float:
        """The plain proportion #{T* ≥ T}/n of bootstrap statistics reaching T."""
        return self.n_extreme / self.n

    @property
    def mc_se(self) -> float:
        """Monte Carlo standard error √(p(1 − p)/n) of :attr:`p_value`."""
        p = self.p_value
        return float(np.sqrt(p * (1 - p) / self.n))

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
            f"Parametric bootstrap LRT ({self.n} simulations from the null fit, seed {self.seed})",
            f"  LRT = {self.observed:.4f} on {self.df} df;  naive chi-square p = "
            f"{self.p_chisq:.4g}",
            f"  bootstrap p = {self.p_value:.4f}  (MC s.e. {self.mc_se:.4f}; "
            f"{self.n_extreme}/{self.n} simulated LRT >= observed, "
            f"proportion {self.p_proportion:.4f})",
            f"  {100 * self.share_zero:.1f}% of simulated statistics are 0 (boundary fits)",
        ])


def _as_ml(model, role: str):
    """``model`` itself, or its ML refit (with a warning) if it was fitted by REML."""
    if not model.reml:
        return model
    from .anova import ml_fit

    warnings.warn(f"the {role} model {model.formula!r} was fitted by REML; likelihood-ratio "
                  "tests compare ML fits, so it is refitted with reml=False", LmmlibWarning,
                  stacklevel=3)
    return ml_fit(model)


def _check_nested(null, alt) -> int:
    if null.nobs != alt.nobs or not np.array_equal(null.design.y, alt.design.y):
        raise DataError(f"null model {null.formula!r} and alternative {alt.formula!r} must be "
                        "fitted to the same response and rows")
    df = alt.npar - null.npar
    if df <= 0:
        raise DataError(f"the alternative {alt.formula!r} must have more parameters than the "
                        f"null {null.formula!r} ({alt.npar} vs {null.npar})")
    return df


def _lrt_chunk(null, alt, batch: bool, size: int, ss: np.random.SeedSequence) -> np.ndarray:
    """Bootstrap LRT statistics of one chunk (simulate under the null, refit both)."""
    with blas_threads(1):
        Y = simulate_fit(null, size, np.random.default_rng(ss))
        return _deviances(null, Y, batch) - _deviances(alt, Y, batch)


def bootstrap_lrt(null, alt, n: int = 1000, seed: int | None = None,
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
    n : int
        Number of bootstrap replicates.
    seed : int, optional
        Root seed; ``None`` draws one (stored in the result).
    n_jobs : int, optional
        joblib workers for the one-by-one refits (``None``: joblib's active
        setting, 1 by default); ignored by the vectorised path.
    progress : bool, optional
        Progress bar (default: only when stderr is a terminal).
    batch : bool, optional
        ``None`` (default): refit all replicates at once when both models
        allow it (``lm`` or a single scalar random effect), else one by one;
        ``False``: always one by one; ``True``: require the vectorised path.

    Returns
    -------
    BootstrapLRT

    Warns
    -----
    LmmlibWarning
        When a REML fit is refitted by ML for the test.
    """
    n, seed = check_replicates(n), root_seed(seed)
    null, alt = _as_ml(null, "null"), _as_ml(alt, "alternative")
    df = _check_nested(null, alt)
    observed = float(null.objective - alt.objective)
    fast = _vectorised(null) and _vectorised(alt)
    if batch and not fast:
        raise LmmlibError("batch=True needs lm fits or a single scalar random effect in both "
                          f"models ({null.formula!r}, {alt.formula!r})")
    if fast and batch is not False:
        with blas_threads(1):
            Y = np.vstack([simulate_fit(null, size, np.random.default_rng(ss))
                           for size, ss in chunk_streams(n, seed)])
            raw = _deviances(null, Y, True) - _deviances(alt, Y, True)
    else:
        task = partial(_lrt_chunk, null, alt, batch is not False)
        raw = np.concatenate(run_chunks(task, n, seed, n_jobs, progress, "bootstrap LRT"))
    if raw.min() < -1e-4:
        warnings.warn(f"{np.sum(raw < -1e-4)} bootstrap LRT statistics are negative (down to "
                      f"{raw.min():.3g}): are the models nested?", LmmlibWarning, stacklevel=2)
    return BootstrapLRT(observed, df, np.maximum(raw, 0.0), n, seed)


# -- any statistic -------------------------------------------------------------------
def _as_values(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float)).ravel()


def _names(stat: Callable, value: Any) -> list:
    if isinstance(value, pd.Series):
        return list(value.index)
    if np.ndim(value) == 0:
        name = getattr(stat, "__name__", "statistic")
        return ["statistic" if name == "<lambda>" else name]
    return list(range(np.size(value)))


def _stat_chunk(model, stat: Callable, use_u: bool, width: int, size: int,
                ss: np.random.SeedSequence) -> np.ndarray:
    """``stat`` of the refits to one chunk, shape (size, width); NaN rows for failed refits."""
    out = np.full((size, width), np.nan)
    with blas_threads(1):
        Y = simulate_fit(model, size, np.random.default_rng(ss), use_u)
        for i, y in enumerate(Y):
            try:
                fit = refit_fit(model, y)
            except (LmmlibError, np.linalg.LinAlgError):
                continue
            row = _as_values(stat(fit))
            if row.size != width:
                raise LmmlibError(f"the statistic returned {row.size} values on a bootstrap "
                                  f"refit but {width} on the fitted model")
            out[i] = row
    return out


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap distribution of a statistic.

    Attributes
    ----------
    observed : Series
        The statistic of the fitted model.
    replicates : DataFrame
        One row per bootstrap refit (NaN if it failed), one column per component.
    n, seed : int
        Number of replicates and root seed (the same seed gives the same replicates).
    use_u : bool
        Whether responses were simulated conditionally on the BLUPs.
    """

    observed: pd.Series
    replicates: pd.DataFrame
    n: int
    seed: int
    use_u: bool = False

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard errors (standard deviation of the replicates)."""
        return self.replicates.std(ddof=1).rename("se")

    @property
    def bias(self) -> pd.Series:
        """Mean of the replicates minus the observed statistic."""
        return (self.replicates.mean() - self.observed).rename("bias")

    def ci(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals (R's default quantile type 7), columns as lme4's ``confint``."""
        q = percentile_interval(self.replicates.dropna(how="all").to_numpy(), level)
        a = (1 - level) / 2
        cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
        return pd.DataFrame(q.T, index=self.replicates.columns, columns=cols)

    def summary(self) -> pd.DataFrame:
        """Observed value, bias, standard error and 95% percentile interval."""
        return pd.concat([self.observed.rename("observed"), self.bias, self.se, self.ci()],
                         axis=1)

    def __repr__(self) -> str:
        kind = "conditional on the BLUPs" if self.use_u else "new random effects"
        head = f"Parametric bootstrap ({self.n} refits, {kind}, seed {self.seed})"
        return f"{head}\n{self.summary().to_string(float_format=lambda v: f'{v:.5g}')}"


def bootstrap(model, stat: Callable[[Any], Any], n: int = 1000, seed: int | None = None,
              n_jobs: int | None = None, progress: bool | None = None,
              use_u: bool = False) -> BootstrapResult:
    """Parametric bootstrap of any statistic of a fitted model.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
        The fit to simulate from and refit.
    stat : callable
        ``stat(fit)`` returning a float, a 1-d array or a Series (named
        components), e.g. ``lambda m: m.fixef`` or
        ``lambda m: m.ranef_arrays()["id"].iloc[:, 0]``.
    n : int
        Number of replicates.
    seed : int, optional
        Root seed; ``None`` draws one (stored in the result).
    n_jobs : int, optional
        joblib workers (``None``: joblib's active setting, 1 by default).
    progress : bool, optional
        Progress bar (default: only when stderr is a terminal).
    use_u : bool
        Simulate conditionally on the BLUPs (lme4's ``use.u = TRUE``).

    Returns
    -------
    BootstrapResult
        With ``ci(level)``, ``se``, ``bias`` and the ``replicates``.
    """
    n, seed = check_replicates(n), root_seed(seed)
    value = stat(model)
    observed = pd.Series(_as_values(value), index=_names(stat, value), name="observed")
    task = partial(_stat_chunk, model, stat, bool(use_u), observed.size)
    rows = np.vstack(run_chunks(task, n, seed, n_jobs, progress, "bootstrap"))
    failed = int(np.isnan(rows).all(axis=1).sum())
    if failed == n:
        raise LmmlibError("all bootstrap refits failed")
    if failed:
        warnings.warn(f"{failed} of {n} bootstrap refits failed; their rows are NaN and left "
                      "out of se and ci", LmmlibWarning, stacklevel=2)
    replicates = pd.DataFrame(rows, columns=observed.index)
    return BootstrapResult(observed, replicates, n, seed, bool(use_u))


def percentile_interval(draws: np.ndarray, level: float) -> np.ndarray:
    """Type-7 percentile limits of ``draws`` along axis 0, shape (2, ...)."""
    if not 0 < level < 1:
        raise LmmlibError(f"level must be between 0 and 1, got {level!r}")
    a = (1 - level) / 2
    return np.quantile(draws, [a, 1 - a], axis=0)



class _CallableModule(types.ModuleType):
    """``lmmlib.bootstrap`` is this module and, when called, :func:`bootstrap`.

    So ``lmmlib.bootstrap(model, stat, n, seed)`` works as well as
    ``lmmlib.bootstrap.bootstrap_lrt(...)``.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> BootstrapResult:
        return bootstrap(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
