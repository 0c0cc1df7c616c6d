"""``lmer`` on a Dask DataFrame: a linear mixed model fitted out of core.

:func:`lmer_partitioned` makes two passes over the partitions (their levels,
then their summed cross-products, :mod:`lmmlib.engine.partitioned` and
:mod:`lmmlib.engine.partsums`) and optimises θ exactly as an in-memory fit.
The result is a :class:`PartitionedLinearMixedModel`: everything computed from
the cross-products (``fixef``, ``vcov``, ``theta``, ``sigma``, ``loglik``,
``aic``, ``bic``, ``varcorr``, ``ranef()``, ``coef()``, ``predict(newdata)``,
``devfun``, ``refit_ml()``, ``coef_table()``) is as for the in-memory fit;
per-row results are lazy Dask Series (:meth:`~PartitionedLinearMixedModel.fitted_partitioned`,
:meth:`~PartitionedLinearMixedModel.residuals_partitioned`), and what needs all
rows in memory (``fitted``, ``residuals``, ``simulate``, ``refit``, the model
frame and matrices, influence measures) raises a :class:`~lmmlib.errors.DataError`
naming the alternative.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..checks import as_bool, as_instance
from ..engine.control import LmerControl
from ..engine.fitting import fit_theta, start_theta, warm_start
from ..engine.partitioned import (
    clean_partition,
    is_dask_frame,
    make_rule,
    parse_for_partitions,
    report_dropped,
    scan_levels,
    template_design,
)
from ..engine.partsums import PartitionedPLS, drop_dependent, linear_predictor, sum_products
from ..engine.ranef import block_effects
from ..errors import ArgumentError, DataError, SingularFitWarning
from .display import (
    MixedSummary,
    _fixed_text,
    _header,
    correlation_lines,
    random_text,
    status_lines,
)
from .lmm import EXACT_FIT_TOL, FREE_SCALE, SUSPECT_SIGMA, LinearMixedModel

__all__ = ["PartitionedLinearMixedModel", "is_dask_frame", "lmer_partitioned"]

#: Number of passes over the partitions a fit makes (levels, then cross-products).
PASSES = 2


def _per_row(name: str, instead: str) -> DataError:
    return DataError(f"{name} needs every row in memory, and this model was fitted from a "
                     f"Dask DataFrame; use {instead}")


def _no_kr(ddf: Any) -> None:
    if isinstance(ddf, str) and ddf.lower() in ("kenward-roger", "kr"):
        raise _per_row("Kenward-Roger's df", "ddf='Satterthwaite'")


def _partition_values(part: pd.DataFrame, model: PartitionedLinearMixedModel,
                      residual: bool) -> pd.Series:
    frame, y, _ = clean_partition(part, model.rule)
    if len(frame) == 0:
        return pd.Series(np.zeros(0), index=frame.index, dtype=float,
                         name="residuals" if residual else "fitted")
    mu = linear_predictor(frame, model.design, model._sol.beta,
                          block_effects(model._sol, model.design.blocks))
    values = y - mu if residual else mu
    return pd.Series(values, index=frame.index, name="residuals" if residual else "fitted")


class PartitionedLinearMixedModel(LinearMixedModel):
    """A :class:`~lmmlib.models.lmm.LinearMixedModel` fitted from a Dask DataFrame.

    It holds the design's cross-products, not its rows (see the module notes).
    """

    def __init__(self, design: Any, pls: PartitionedPLS, opt: Any, reml: bool, data: Any,
                 rule: Any) -> None:
        self.data = data
        self.rule = rule
        super().__init__(design, pls, opt, reml)

    def _check_residual(self) -> None:
        """As the in-memory check, from the response's summed squares."""
        spread = float(np.sqrt(self.pls.response_ss / self.nobs))
        if self.sigma > SUSPECT_SIGMA * spread:
            return
        free = self.pls.solve(self.design.theta0() * FREE_SCALE)
        if free.r2 > EXACT_FIT_TOL * self.pls.response_ss:
            return
        factors = ", ".join(repr(b.factor) for b in self.design.blocks)
        raise DataError(f"the response is exactly determined by the fixed effects and the "
                        f"random effects of {factors}: no residual variance is left to estimate")

    # -- per-row results: lazy, or refused --------------------------------------
    def fitted_partitioned(self) -> Any:
        """Fitted values X β̂ + Z b̂ as a lazy Dask Series over the rows of the fit."""
        return self.data.map_partitions(_partition_values, self, False,
                                        meta=pd.Series(dtype=float, name="fitted"))

    def residuals_partitioned(self) -> Any:
        """Response minus fitted values as a lazy Dask Series over the rows of the fit."""
        return self.data.map_partitions(_partition_values, self, True,
                                        meta=pd.Series(dtype=float, name="residuals"))

    @property
    def fitted(self) -> pd.Series:
        """Not available in memory: see :meth:`fitted_partitioned`."""
        raise _per_row("fitted", "model.fitted_partitioned() (a lazy Dask Series)")

    @property
    def residuals(self) -> pd.Series:
        """Not available in memory: see :meth:`residuals_partitioned`."""
        raise _per_row("residuals", "model.residuals_partitioned() (a lazy Dask Series)")

    def predict(self, newdata: Any = None, re: bool = True,
                allow_new_levels: bool = False) -> pd.Series:
        """Predictions for new (pandas) data; see :meth:`LinearMixedModel.predict`."""
        if newdata is None:
            raise _per_row("predict() without newdata", "model.fitted_partitioned()")
        if is_dask_frame(newdata):
            raise ArgumentError("predict(newdata) takes a pandas DataFrame; for Dask data use "
                                "newdata.map_partitions(model.predict)")
        return super().predict(newdata, re=re, allow_new_levels=allow_new_levels)

    def simulate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """Not available: simulated responses have one value per row."""
        raise _per_row("simulate()", "an in-memory fit of a sample (lmmlib.lmer on pandas data)")

    def refit(self, y: Any) -> LinearMixedModel:
        """Not available: a new response needs a new pass over the data."""
        raise _per_row("refit()", "lmer on a Dask DataFrame holding the new response")

    def refit_ml(self) -> LinearMixedModel:
        """The maximum-likelihood fit from the same cross-products, warm-started."""
        if not self.reml:
            return self
        opt = fit_theta(self.pls, False, warm_start(self.design, self.theta), quiet=True)
        return PartitionedLinearMixedModel(self.design, self.pls, opt, False, self.data,
                                           self.rule)

    def with_design(self, *args: Any, **kwargs: Any) -> LinearMixedModel:
        """Not available: a modified design needs the rows."""
        raise _per_row("a modified design", "lmer on the Dask DataFrame with another formula")

    @property
    def model_frame(self) -> pd.DataFrame:
        """Not available in memory: the data are the Dask DataFrame ``model.data``."""
        raise _per_row("model_frame", "model.data (the Dask DataFrame)")

    @property
    def model_matrix(self) -> np.ndarray:
        """Not available in memory."""
        raise _per_row("model_matrix", "model.data (the Dask DataFrame)")

    @property
    def response(self) -> np.ndarray:
        """Not available in memory."""
        raise _per_row("response", "model.data (the Dask DataFrame)")

    def hatvalues(self) -> pd.Series:
        """Not available: leverages have one value per row."""
        raise _per_row("hatvalues()", "an in-memory fit")

    def cooks_distance(self) -> pd.Series:
        """Not available: Cook's distances have one value per row."""
        raise _per_row("cooks_distance()", "an in-memory fit")

    def profile(self, **kwargs: Any) -> pd.DataFrame:
        """Not available: profiling refits modified designs, which need the rows."""
        raise _per_row("profile()", "confint(method='wald') or varpar_se()")

    def confint(self, method: str = "profile", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Wald intervals; profile and bootstrap intervals need the rows (an error)."""
        if isinstance(method, str) and method.lower() in ("profile", "boot"):
            raise _per_row(f"confint(method={method!r})", "confint(method='wald')")
        return super().confint(method=method, level=level, **kwargs)

    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Fixed-effects t-tests with Satterthwaite's df (Kenward-Roger's needs the rows)."""
        _no_kr(ddf)
        return super().coef_table(ddf=ddf)

    def anova(self, type: Any = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """F tests of the fixed terms with Satterthwaite's df (Kenward-Roger's needs the rows)."""
        _no_kr(ddf)
        return super().anova(type=type, ddf=ddf)

    def drop1(self, test: str = "F", ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Single-term deletions with Satterthwaite's df (Kenward-Roger's needs the rows)."""
        _no_kr(ddf)
        return super().drop1(test=test, ddf=ddf)

    def summary(self) -> Any:
        """lme4-style summary, without the scaled residuals (they need every row)."""
        return PartitionedSummary(self)


class PartitionedSummary(MixedSummary):
    """The summary of a :class:`PartitionedLinearMixedModel` (no residual quantiles)."""

    def __str__(self) -> str:
        m = self.model
        lines = _header(m) + [
            f"\nFitted out of core from {m.design.nparts} partitions "
            "(scaled residuals: model.residuals_partitioned()).",
            "\nRandom effects:",
            random_text(self.random),
            self._groups_line(),
            "\nFixed effects:",
            _fixed_text(self.fixed),
        ]
        return "\n".join(lines + correlation_lines(m) + status_lines(m))


def lmer_partitioned(formula: str, data: Any, reml: bool = True, *, weights: Any = None,
                     offset: Any = None, subset: Any = None,
                     na_action: str = "omit", start: Any = None,
                     control: LmerControl | None = None, progress: bool = False,
                     scheduler: Any = None) -> PartitionedLinearMixedModel:
    """Fit a linear mixed model to a Dask DataFrame, out of core.

    Two passes over the partitions (their levels, then their cross-products);
    no more than one partition's rows are held by a task at a time.  The
    criterion, and so the estimates, are those of :func:`lmmlib.lmer` on the
    same rows in memory.

    Parameters
    ----------
    formula : str
        As for :func:`lmmlib.lmer`; grouping factors must be single columns
        (random intercepts and slopes of one factor, crossed factors), and
        stateful transforms (``scale(x)``, ``poly(x, 2)``) are refused.
    data : dask.dataframe.DataFrame
        The data.  Grouping levels are sorted as in memory (a categorical's
        category order when all partitions share it).
    reml : bool
        REML (default) or maximum likelihood.
    weights, offset : None
        Not available for Dask data (an error if given).
    subset : None
        Not available: filter the Dask DataFrame first (``ddf[ddf.x > 2]``).
    na_action : {"omit", "fail"}
        Rows with missing values are dropped and counted, or an error.
    start : array_like, optional
        Starting θ, as for :func:`lmmlib.lmer`.
    control : LmerControl, optional
        Optimiser settings.
    progress : bool
        Show Dask's progress bar for each pass (local schedulers).
    scheduler : optional
        Passed to ``dask.compute`` (default: the active scheduler or client).

    Returns
    -------
    PartitionedLinearMixedModel

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> pig = lmmlib.datasets.load("pig")
    >>> m = lmer_partitioned("weight ~ weeks + (1 | id)", dd.from_pandas(pig, npartitions=4))
    >>> m.fixef.round(3).tolist()  # as lmer on the pandas frame (lme4: 19.356, 6.210)
    [19.356, 6.21]
    """
    if not is_dask_frame(data):
        raise ArgumentError(f"data must be a Dask DataFrame, got {type(data).__name__}; use "
                            "lmmlib.lmer for in-memory data")
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None:
            raise ArgumentError(f"{name} is not available for Dask data; fit without it")
    if subset is not None:
        raise ArgumentError("subset is not available for Dask data; filter the DataFrame "
                            "first, e.g. ddf[ddf['x'] > 2]")
    reml = as_bool(reml, "reml")
    progress = as_bool(progress, "progress")
    control = as_instance(LmerControl() if control is None else control, "control",
                          LmerControl, "an lmmlib.LmerControl")
    parsed = parse_for_partitions(formula, data.columns)
    rule = make_rule(parsed, data.columns, na_action)
    summary = scan_levels(data, rule, progress, scheduler)
    report_dropped(summary, rule)
    design = template_design(parsed, summary, rule, data.npartitions)
    sums = sum_products(data, rule, design, progress, scheduler)
    design, keep = drop_dependent(design, sums)
    theta0 = None if start is None else start_theta(design, start)
    pls = PartitionedPLS(design, sums, keep)
    opt = fit_theta(pls, reml, theta0, control=control)
    model = PartitionedLinearMixedModel(design, pls, opt, reml, data, rule)
    if model.is_singular:
        warnings.warn("boundary (singular) fit: a variance component is estimated as zero "
                      "or a correlation as +-1; see model.varcorr", SingularFitWarning,
                      stacklevel=2)
    return model
