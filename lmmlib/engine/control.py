"""Optimiser settings of a fit, as lme4's ``lmerControl`` and ``glmerControl``.

One object holds what used to be scattered constants: BOBYQA's stopping
rules, the evaluation budget, the restart and gradient checks after it stops,
and the tolerance below which a variance is reported as on the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..checks import as_bool, as_count, as_float

__all__ = ["GlmerControl", "LmerControl"]


@dataclass(frozen=True)
class LmerControl:
    """Settings of the θ optimisation of :func:`lmmlib.lmer`.

    Parameters
    ----------
    ftol_abs, xtol_abs : float
        BOBYQA's absolute stopping tolerances on the criterion and on θ
        (lme4's ``optCtrl``; tighter than lme4's 1e-8 by default).
    maxeval : int
        Most criterion evaluations (lme4's ``maxfun``).
    restart : bool
        Restart BOBYQA once from its optimum when the finite-difference check
        finds a Newton step that is not small.
    grad_tol : float
        Largest scaled gradient (Newton step) accepted as converged (lme4's
        ``check.conv.grad`` tolerance, 2e-3).
    restart_tol : float
        A Newton step above this share of θ triggers the restart.
    boundary_tol : float
        θ within this distance of its bound is on the boundary (lme4's
        ``boundary.tol`` and ``isSingular`` tolerance, 1e-4).

    Examples
    --------
    >>> LmerControl(ftol_abs=1e-12).ftol_abs
    1e-12
    """

    ftol_abs: float = 1e-10
    xtol_abs: float = 1e-10
    maxeval: int = 100_000
    restart: bool = True
    grad_tol: float = 2e-3
    restart_tol: float = 1e-4
    boundary_tol: float = 1e-4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float):
                checked = as_float(value, f.name, positive=True)
            elif f.type in ("int", int):
                checked = as_count(value, f.name)
            elif f.type in ("bool", bool):
                checked = as_bool(value, f.name)
            else:  # pragma: no cover - every field has one of the types above
                checked = value
            object.__setattr__(self, f.name, checked)


@dataclass(frozen=True)
class GlmerControl(LmerControl):
    """Settings of :func:`lmmlib.glmer`: the outer optimisation and its first stage.

    Parameters
    ----------
    stage1_tol : float
        Stopping tolerance of the rough first stage (lme4's ``nAGQ = 0`` pass
        that gives the start of the full optimisation).
    ftol_abs, xtol_abs : float
        BOBYQA's tolerances in the full (θ, β) optimisation, 1e-6: Newton steps
        on the finite-difference Hessian then finish it (to ~1e-10 in the
        deviance), more cheaply than BOBYQA's last iterations would; the
        gradient check (``grad_tol``) is made after them.
    (the others)
        As :class:`LmerControl`, for the full (θ, β) optimisation.
    """

    ftol_abs: float = 1e-6
    xtol_abs: float = 1e-6
    stage1_tol: float = 1e-6
