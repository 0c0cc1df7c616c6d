"""The one way a design is fitted: minimise its PLS criterion over θ.

``lmer``, refits to a new response, ML refits of REML fits and refits of a
modified design all go through :func:`fit_theta`, which holds BLAS at one
thread and hands the criterion θ ↦ REML criterion or deviance to BOBYQA.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..checks import as_bool, as_start
from ..errors import ConvergenceWarning, DataError
from .control import LmerControl
from .design import Design
from .optimize import OptSummary, minimize_theta
from .pls import PLS
from .threads import blas_threads

__all__ = ["fit_theta", "response_like", "start_theta", "theta_labels", "warm_start"]

#: A warm start moves bounded components of θ at least this far off their bound of 0,
#: so that BOBYQA's first steps can move them.
WARM_OFFSET = 1e-2


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
                out.append(f"{term.label}.{cols[i]}" if i == j
                           else f"{term.label}.{cols[i]}.{cols[j]}")
    return out


def start_theta(design: Design, start: object, name: str = "start") -> np.ndarray:
    """A user's starting θ for ``design``, checked (length, finite, bounds) by name."""
    return as_start(start, design.lower(), theta_labels(design), name)


def warm_start(design: Design, theta: object) -> np.ndarray:
    """Another fit's θ̂ as a start for ``design``: checked, bounded parts moved off zero."""
    lower = design.lower()
    return np.maximum(start_theta(design, theta), np.where(np.isfinite(lower), WARM_OFFSET,
                                                           -np.inf))


def response_like(y: Any, n: int) -> np.ndarray:
    """A new response for a refit: ``n`` finite numbers, else a DataError."""
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"new response y must be {n} numbers: {exc}") from exc
    if y.shape != (n,) or not np.all(np.isfinite(y)):
        raise DataError(f"new response must be {n} finite values, got shape {y.shape}")
    return y


def fit_theta(pls: PLS, reml: bool, start: np.ndarray | None = None, *,
              control: LmerControl | None = None, quiet: bool = False) -> OptSummary:
    """Minimise the REML criterion (``reml``) or the deviance of ``pls`` over θ.

    Parameters
    ----------
    pls : PLS
        The design's cross-products (:class:`lmmlib.engine.pls.PLS`).
    reml : bool
        REML criterion or ML deviance.
    start : ndarray, optional
        Starting θ, already checked (default: lme4's Λ = I).
    control : LmerControl, optional
        Optimiser settings (default :class:`lmmlib.LmerControl()`).
    quiet : bool
        Silence convergence warnings (refits inside a bootstrap).

    Returns
    -------
    OptSummary
    """
    reml = as_bool(reml, "reml")
    design = pls.design
    theta0 = design.theta0() if start is None else np.asarray(start, dtype=float)
    with blas_threads(1), warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", ConvergenceWarning)
        return minimize_theta(lambda th: pls.objective(th, reml), theta0, design.lower(),
                              control)
