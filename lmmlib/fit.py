"""``lmer``: the thin orchestrator over the stages formula → design → PLS → optimise → model."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from .checks import as_bool, as_float, as_instance, as_start
from .design import Design, build_design
from .errors import ConvergenceWarning, DataError, SingularFitWarning
from .model import LinearMixedModel
from .optimize import minimize_theta
from .pls import PLS
from .threads import blas_threads

__all__ = ["lmer", "refit", "start_theta", "theta_labels"]


def theta_labels(design: Design) -> list[str]:
    """lme4's names of the elements of θ: ``"g.(Intercept)"``, ``"g.x.(Intercept)"``...

    A diagonal element of a term's Λ is named ``group.column``, an element
    below the diagonal ``group.row.column``, in θ's (column-major) order.
    """
    out = []
    for term in design.reterms:
        q, cols = term.q, term.colnames
        for j in range(q):
            for i in range(j, q):
                out.append(f"{term.group}.{cols[i]}" if i == j
                           else f"{term.group}.{cols[i]}.{cols[j]}")
    return out


def start_theta(design: Design, start: object, name: str = "start") -> np.ndarray:
    """A user's starting θ for ``design``, checked (length, finite, bounds) by name."""
    return as_start(start, design.lower(), theta_labels(design), name)


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
        Must be a real boolean: ``reml="FALSE"`` is an error, not a REML fit.
    start : array_like, optional
        Starting θ (default: Λ = I, as lme4): one finite value per element of θ
        (in lme4's order, see :func:`theta_labels`), at least 0 for the
        diagonal elements of Λ.
    ftol_abs, xtol_abs : float
        BOBYQA stopping tolerances (positive).

    Returns
    -------
    LinearMixedModel

    Raises
    ------
    ArgumentError
        For a ``reml`` that is not a boolean, a ``start`` of the wrong length,
        not finite or negative where θ is bounded, or tolerances that are not
        positive numbers.

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
    reml = as_bool(reml, "reml")
    ftol_abs = as_float(ftol_abs, "ftol_abs", positive=True)
    xtol_abs = as_float(xtol_abs, "xtol_abs", positive=True)
    with blas_threads(1):
        design = build_design(formula, data)
        theta0 = design.theta0() if start is None else start_theta(design, start)
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

    Raises
    ------
    ArgumentError
        If ``model`` is not a fit of :func:`lmer`.
    DataError
        If ``y`` is not ``model.nobs`` finite numbers.
    """
    as_instance(model, "model", LinearMixedModel, "a mixed model fitted by lmmlib.lmer")
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"new response y must be {model.nobs} numbers: {exc}") from exc
    if y.shape != (model.nobs,) or not np.all(np.isfinite(y)):
        raise DataError(f"new response must be {model.nobs} finite values, got shape {y.shape}")
    design = model.design
    with blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pls = model.pls.with_response(y)
        start = np.maximum(model.theta, np.where(np.isfinite(design.lower()), 1e-2, -np.inf))
        opt = minimize_theta(lambda th: pls.objective(th, model.reml), start, design.lower())
        return LinearMixedModel(replace(design, y=y), pls, opt, model.reml)
