"""``lmer``: the thin orchestrator over the stages formula → design → PLS → optimise → model."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from .design import build_design
from .errors import ConvergenceWarning, DataError, SingularFitWarning
from .model import LinearMixedModel
from .optimize import minimize_theta
from .pls import PLS
from .threads import blas_threads

__all__ = ["lmer", "refit"]


def lmer(formula: str, data: Any, reml: bool = True, *, start: np.ndarray | None = None,
         ftol_abs: float = 1e-10, xtol_abs: float = 1e-10) -> LinearMixedModel:
    """Fit a linear mixed model with lme4's formula syntax.

    Parameters
    ----------
    formula : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.  Random terms:
        ``(1|g)``, ``(x|g)``, ``(1+x|g)``, ``(0+x|g)``, ``(x||g)``, crossed
        ``(1|a) + (1|b)``, nested ``(1|a/b)`` and ``(1|a:b)``.
    data : DataFrame
        The data.  Pandas ``Categorical`` columns keep their category order, the
        first category being the reference level of treatment contrasts.
    reml : bool
        Restricted maximum likelihood (default, as lme4) or maximum likelihood.
    start : ndarray, optional
        Starting θ (default: Λ = I, as lme4).
    ftol_abs, xtol_abs : float
        BOBYQA stopping tolerances.

    Returns
    -------
    LinearMixedModel

    Warns
    -----
    SingularFitWarning
        When the optimum is on the boundary (a variance estimated as zero).
    DataWarning
        When rows with missing values or rank-deficient columns are dropped.

    Examples
    --------
    >>> m = lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))  # doctest: +SKIP
    """
    with blas_threads(1):
        design = build_design(formula, data)
        theta0 = design.theta0() if start is None else np.asarray(start, dtype=float)
        pls = PLS(design)
        opt = minimize_theta(lambda th: pls.objective(th, reml), theta0, design.lower(),
                             ftol_abs=ftol_abs, xtol_abs=xtol_abs)
        model = LinearMixedModel(design, pls, opt, reml)
    if model.is_singular:
        warnings.warn("boundary (singular) fit: a variance component is estimated as zero "
                      "or a correlation as +-1; see model.varcorr", SingularFitWarning,
                      stacklevel=2)
    return model


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
    """
    y = np.asarray(y, dtype=float)
    if y.shape != (model.nobs,) or not np.all(np.isfinite(y)):
        raise DataError(f"new response must be {model.nobs} finite values, got shape {y.shape}")
    design = model.design
    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pls = model.pls.with_response(y)
        start = np.maximum(model.theta, np.where(np.isfinite(design.lower()), 1e-2, -np.inf))
        opt = minimize_theta(lambda th: pls.objective(th, model.reml), start, design.lower())
        return LinearMixedModel(replace(design, y=y), pls, opt, model.reml)
