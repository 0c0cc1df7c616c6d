"""``lmer``: the thin orchestrator over the stages formula → design → PLS → optimise → model."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from ..checks import as_bool, as_instance
from ..engine.control import LmerControl
from ..engine.design import Design, build_design
from ..engine.fitting import fit_theta, start_theta, theta_labels
from ..engine.frame import as_frame
from ..engine.pls import PLS
from ..engine.rows import row_values
from ..errors import DataError, SingularFitWarning
from .exclude import ExcludedLinearMixedModel
from .lmm import LinearMixedModel, fit_design
from .partitioned import is_dask_frame, lmer_partitioned

__all__ = ["fit_design", "lmer", "refit", "start_theta", "theta_labels"]


def lmer(formula: str, data: Any, reml: bool = True, *, weights: Any = None,
         offset: Any = None, subset: Any = None, na_action: str = "omit",
         start: np.ndarray | None = None,
         control: LmerControl | None = None) -> LinearMixedModel:
    """Fit a linear mixed model with lme4's formula syntax.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.  Random terms:
        ``(1|g)``, ``(x|g)``, ``(1+x|g)``, ``(0+x|g)``, ``(x||g)``, crossed
        ``(1|a) + (1|b)``, nested ``(1|a/b)`` and ``(1|a:b)``.  R's functions
        ``log``, ``exp``, ``sqrt``, ``abs``, ``I()``, ``poly(x, k)`` and
        ``scale(x)`` work as in R, in the fixed part and in the random terms;
        ``y ~ . + (1 | g)`` uses every other column except the grouping factors.
    data : DataFrame
        The data: any pandas or polars frame, or a Dask DataFrame, fitted out of
        core from two passes over its partitions
        (:func:`lmmlib.models.partitioned.lmer_partitioned`).  Pandas
        ``Categorical`` columns keep their category order, the first category
        being the reference level of treatment contrasts; ordered
        ones get polynomial contrasts (R's ``contr.poly``: ``f.L``, ``f.Q``...).
    reml : bool
        Restricted maximum likelihood (default, as lme4) or maximum likelihood.
        Must be a real boolean: ``reml="FALSE"`` is an error, not a REML fit.
    weights : str or array_like, optional
        Prior weights, as lme4's ``weights``: observation i has residual
        variance σ²/wᵢ (a column of ``data`` or one positive value per row).
        The criterion includes −Σ log wᵢ, as lme4's.
    offset : str or array_like, optional
        A known part of the linear predictor, as lme4's ``offset`` (a column
        of ``data`` or one value per row); fitted values and predictions
        include it, ``predict(newdata)`` reads the column from newdata.
    subset : array_like, Series or str, optional
        The rows to fit, as R's ``subset``: a boolean mask (one value per row; a
        Series is aligned by index) or a condition on the columns such as
        ``"Days > 2"`` (evaluated by ``DataFrame.eval``).
    na_action : {"omit", "fail", "exclude"}
        Rows with missing values in the columns the formula uses are dropped
        (``"omit"``, R's ``na.omit``), an error naming the columns (``"fail"``),
        or dropped with ``fitted``, ``residuals`` and ``predict()`` padded with
        NaN back to the data's rows (``"exclude"``, R's ``na.exclude``).
    start : array_like, optional
        Starting θ (default: Λ = I, as lme4): one finite value per element of θ
        (in lme4's order, see :func:`theta_labels`), at least 0 for the
        diagonal elements of Λ.
    control : LmerControl, optional
        Optimiser settings, as lme4's ``lmerControl`` (tolerances, evaluation
        budget, restart and gradient checks).

    Returns
    -------
    LinearMixedModel

    Raises
    ------
    ArgumentError
        For a ``reml`` that is not a boolean, a ``start`` of the wrong length,
        not finite or negative where θ is bounded, or a ``control`` that is not
        an :class:`LmerControl`.

    Notes
    -----
    Formulas are code: formulaic evaluates their terms as Python (as R
    evaluates formulas), so never pass formulas from untrusted input; the same
    holds for a ``subset`` string.

    As in R, ``scale(x)`` and ``poly(x, k)`` are computed on the whole data,
    before ``subset`` and the removal of incomplete rows, and ``predict`` on
    new data reuses their centre, scale and polynomial coefficients.

    Warns
    -----
    SingularFitWarning
        When the optimum is on the boundary (a variance estimated as zero).
    DataWarning
        When rows with missing values or rank-deficient columns are dropped.

    Examples
    --------
    >>> m = lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))
    >>> m.fixef.round(3).tolist()  # lme4: 19.356, 6.210
    [19.356, 6.21]
    >>> pig = lmmlib.datasets.load("pig")
    >>> m = lmer("weight ~ poly(weeks, 2) + (1 | id)", pig, subset="weeks > 1")
    >>> list(m.fixef.index)
    ['(Intercept)', 'poly(weeks, 2)1', 'poly(weeks, 2)2']
    """
    if is_dask_frame(data):  # out of core: two passes over the partitions
        return lmer_partitioned(formula, data, reml, weights=weights, offset=offset,
                                subset=subset, na_action=na_action, start=start,
                                control=control)
    reml = as_bool(reml, "reml")
    control = as_instance(LmerControl() if control is None else control, "control",
                          LmerControl, "an lmmlib.LmerControl")
    design = build_design(formula, data, subset=subset, na_action=na_action)
    design = with_weights_offset(design, as_frame(data), weights, offset)
    theta0 = None if start is None else start_theta(design, start)
    pls = PLS(design)
    opt = fit_theta(pls, reml, theta0, control=control)
    kind = LinearMixedModel if design.exclusion is None else ExcludedLinearMixedModel
    model = kind(design, pls, opt, reml)
    if model.is_singular:
        warnings.warn("boundary (singular) fit: a variance component is estimated as zero "
                      "or a correlation as +-1; see model.varcorr", SingularFitWarning,
                      stacklevel=2)
    return model


def with_weights_offset(design: Design, data: Any, weights: Any, offset: Any) -> Design:
    """The design with lmer's prior weights and offset for its rows (checked)."""
    if weights is not None:
        w = row_values(weights, data, design.frame, "weights")
        if np.any(w <= 0):
            label = f"weights column {weights!r}" if isinstance(weights, str) else "weights"
            raise DataError(f"{label} must be positive (residual variance sigma^2 / w)")
        design = replace(design, weights=w)
    if offset is not None:
        o = row_values(offset, data, design.frame, "offset")
        design = design.with_offset(o, f"`{offset}`" if isinstance(offset, str) else None,
                                    argument=True)
    return design


def refit(model: LinearMixedModel, y: np.ndarray) -> LinearMixedModel:
    """Fit ``model``'s design to a new response, starting from its θ̂.

    The model matrices, grouping structure and the θ-independent cross-products
    are reused; only those involving y are recomputed.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model.
    y : ndarray
        New response, same length and order as the model's observations.

    Returns
    -------
    LinearMixedModel

    Raises
    ------
    ArgumentError
        If ``model`` is not a fit of :func:`lmer`.
    DataError
        If ``y`` is not ``model.nobs`` finite numbers.
    """
    as_instance(model, "model", LinearMixedModel, "a mixed model fitted by lmmlib.lmer")
    return model.refit(y)
