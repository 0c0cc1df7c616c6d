"""Stage 4: minimise the profiled criterion over θ with bounds.

BOBYQA (Powell's bound-constrained quadratic-model method, through nlopt) is
what lme4 uses by default.  After convergence the gradient and Hessian are
approximated by finite differences, as lme4's convergence checks do, and the
result is recorded in an :class:`OptSummary`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import nlopt
import numpy as np

from ..checks import as_start
from ..errors import ConvergenceWarning
from .control import LmerControl
from .differences import finite_gradient

__all__ = ["OptSummary", "bobyqa", "minimize_theta", "optinfo"]


@dataclass(frozen=True)
class OptSummary:
    """What the optimiser did (cf. lme4's ``optinfo`` and MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    algorithm : str
        Name of the optimiser.
    theta0, theta : ndarray
        Starting value and optimum.
    fval0, fval : float
        Criterion at the start and at the optimum.
    feval : int
        Number of criterion evaluations.
    gradient : ndarray
        Central finite-difference gradient at the optimum (free coordinates).
    converged : bool
        Whether the optimiser stopped on a tolerance and the gradient is small.
    boundary : tuple of int
        Indices of θ at (or within 1e-4 of) a lower bound.
    message : str
        The optimiser's stopping reason and any convergence remark.
    """

    algorithm: str
    theta0: np.ndarray
    theta: np.ndarray
    fval0: float
    fval: float
    feval: int
    gradient: np.ndarray
    converged: bool
    boundary: tuple[int, ...]
    message: str
    settings: dict = field(default_factory=dict)


def optinfo(opt: OptSummary) -> dict:
    """An :class:`OptSummary` as a new dict with lme4's ``optinfo`` names.

    ``optimizer``, ``feval``, ``val`` (the criterion at the optimum), ``conv``
    (converged), ``message``, ``boundary`` and ``theta0`` (the start).
    """
    return {"optimizer": opt.algorithm, "feval": int(opt.feval), "val": float(opt.fval),
            "conv": bool(opt.converged), "message": opt.message,
            "boundary": tuple(opt.boundary), "theta0": np.array(opt.theta0, dtype=float)}


@dataclass(frozen=True)
class _Check:
    """Finite-difference check of a candidate optimum."""

    gradient: np.ndarray
    boundary: tuple[int, ...]
    worst: float  # largest Newton step |g/h| of a free parameter (lme4's scaled gradient)
    suspicious: bool  # a Newton step not small relative to its parameter


def _check(f: Callable[[np.ndarray], float], theta: np.ndarray, lower: np.ndarray,
           fval: float, control: LmerControl) -> _Check:
    at_bound = np.isfinite(lower) & (theta - lower < control.boundary_tol)
    boundary = tuple(int(i) for i in np.flatnonzero(at_bound))
    free = ~at_bound
    grad, hdiag = finite_gradient(f, theta, lower, f0=fval)
    # lme4 judges the gradient scaled by the curvature (a Newton step); the
    # diagonal of the Hessian is used here, from the same evaluations
    step = np.where(hdiag > 0, np.abs(grad) / np.where(hdiag > 0, hdiag, 1.0), np.abs(grad))
    worst = float(np.max(step[free])) if free.any() else 0.0
    near_bound = np.isfinite(lower) & (theta - lower < 1e-2)
    suspicious = bool(np.any((step > control.restart_tol * np.maximum(np.abs(theta), 1e-3))
                             & free)
                      or np.any(near_bound & free))
    return _Check(grad, boundary, worst, suspicious)


def bobyqa(fn: Callable[[np.ndarray, np.ndarray], float], x0: np.ndarray, lower: np.ndarray,
           *, upper: np.ndarray | None = None, ftol_abs: float = 1e-10,
           xtol_abs: float | None = None, xtol_rel: float | None = None,
           maxeval: int = 100_000, step: np.ndarray | None = None) -> tuple[int | None, str]:
    """One run of nlopt's BOBYQA on ``fn(x, grad)``: lmmlib's only call into nlopt.

    Returns nlopt's result code (``None`` when it stopped by an exception, such as
    its round-off limit) and a message; the caller keeps the best point it saw.
    """
    opt = nlopt.opt(nlopt.LN_BOBYQA, max(x0.size, 1))
    opt.set_min_objective(fn)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    if upper is not None:
        opt.set_upper_bounds(upper)
    opt.set_ftol_abs(ftol_abs)
    if xtol_abs is not None:
        opt.set_xtol_abs(xtol_abs)
    if xtol_rel is not None:
        opt.set_xtol_rel(xtol_rel)
    opt.set_maxeval(maxeval)
    if step is not None:
        opt.set_initial_step(step)
    try:
        opt.optimize(x0.copy())
    except (nlopt.RoundoffLimited, RuntimeError, ValueError) as exc:
        return None, f"stopped early: {type(exc).__name__}"
    code = opt.last_optimize_result()
    return code, _RESULTS.get(code, f"nlopt code {code}")


_RESULTS = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
}


def minimize_theta(
    f: Callable[[np.ndarray], float],
    theta0: np.ndarray,
    lower: np.ndarray,
    control: LmerControl | None = None,
    **overrides: Any,
) -> OptSummary:
    """Minimise ``f`` over θ ≥ lower with BOBYQA.

    Parameters
    ----------
    f : callable
        The profiled criterion θ ↦ float.
    theta0 : ndarray
        Starting value (lme4: 1 on the diagonals of Λ, 0 elsewhere).
    lower : ndarray
        Lower bounds (0 or −inf).
    control : LmerControl, optional
        Stopping rules, evaluation budget, restart and gradient checks
        (default: :class:`lmmlib.LmerControl()`).
    **overrides
        Fields of ``control`` to change for this call (``restart=False`` for
        callers with their own polish).

    Returns
    -------
    OptSummary

    Raises
    ------
    ArgumentError
        If ``theta0`` does not match ``lower`` in length, is not finite or is
        below a bound (nlopt would only say "invalid argument"), or a setting
        is invalid (a stopping rule that is not a positive number...).
    """
    lower = np.asarray(lower, dtype=float)
    theta0 = as_start(theta0, lower, name="theta0")
    control = replace(control or LmerControl(), **overrides)
    ftol_abs, xtol_abs, maxeval = control.ftol_abs, control.xtol_abs, control.maxeval
    restart = control.restart
    n = theta0.size
    count = [0]
    best = [np.inf, theta0.copy()]

    def wrapped(x: np.ndarray, grad: np.ndarray) -> float:
        count[0] += 1
        val = f(x)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val if np.isfinite(val) else 1e300

    fval0 = f(theta0)
    code, message = bobyqa(wrapped, theta0, lower, ftol_abs=ftol_abs, xtol_abs=xtol_abs,
                           maxeval=maxeval)
    check = _check(f, best[1], lower, best[0], control)
    if restart and code is not None and n > 0 and check.suspicious:
        # BOBYQA can stop on its f-tolerance while its quadratic model is still
        # coarse (the stopping point then depends on row order): restart from the
        # optimum with a small trust region, which costs about 2k + 3 evaluations
        start = best[1].copy()
        step = np.maximum(1e-3 * np.abs(start), 1e-4)
        code, message = bobyqa(wrapped, start, lower, ftol_abs=ftol_abs, xtol_abs=xtol_abs,
                               maxeval=max(maxeval - count[0], 1), step=step)
        check = _check(f, best[1], lower, best[0], control)
    theta, fval = best[1], float(best[0])
    feval = count[0]
    converged = code in (nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.XTOL_REACHED)
    if check.worst > control.grad_tol:
        converged = False
        message += f"; scaled gradient {check.worst:.2g} at the optimum"
    if not converged:
        warnings.warn(f"model may not have converged: {message}", ConvergenceWarning, stacklevel=3)
    grad, boundary = check.gradient, check.boundary
    settings = {"ftol_abs": ftol_abs, "xtol_abs": xtol_abs, "maxeval": maxeval}
    return OptSummary("NLOPT_LN_BOBYQA", theta0, theta, fval0, fval, feval, grad, converged,
                      boundary, message, settings)
