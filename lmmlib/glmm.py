"""``glmer``: generalised linear mixed models by the Laplace approximation or AGQ.

The stages are those of :func:`lmmlib.lmer` (formula → design → optimise →
model) with the GLMM deviance of :mod:`lmmlib.glmm_laplace` as the criterion,
optimised in two stages as lme4 does:

1. over θ only, β being updated with u inside the penalised IRLS (lme4's
   ``nAGQ = 0``), from Λ = I and the GLM's β;
2. over (θ, β) jointly with the Laplace (or AGQ) deviance, from stage 1's
   optimum.  BOBYQA sees β whitened by stage 1's factor L_X (β = β₁ + L_X⁻ᵀδ),
   so that badly scaled covariates (e.g. an uncentred altitude) do not stall it.

Standard errors come from the finite-difference Hessian H of the deviance in
(θ, β) at the optimum: cov(θ̂, β̂) = 2H⁻¹, as lme4's default ``use.hessian``.
The same H gives a final Newton step from BOBYQA's optimum, which pins it down
to ~1e-8 in the deviance at the cost of 2m more evaluations (m = dim θ + dim β).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .design import build_design
from .errors import ConvergenceWarning, DataError, SingularFitWarning
from .formula import parse_formula
from .frame import as_frame
from .glmm_family import Family, get_family
from .glmm_laplace import GlmmProblem, Mode
from .glmm_model import GeneralizedLinearMixedModel
from .hessian import hessian
from .optimize import BOUNDARY_TOL, OptSummary, minimize_theta
from .threads import blas_threads

__all__ = ["GlmmFit", "glmer", "scaled_steps"]

HESS_STEP = 1e-3  # pilot central-difference step in (θ, whitened β)
STEP_FRACTION = 1e-2  # final steps, in units of each coordinate's curvature scale


@dataclass(frozen=True)
class GlmmFit:
    """What :func:`glmer` produced, the input of :class:`GeneralizedLinearMixedModel`."""

    problem: GlmmProblem
    mode: Mode  # conditional mode at (θ̂, β̂)
    opt: OptSummary  # stage 2, in (θ, β)
    opt_stage1: OptSummary | None  # stage 1 (θ only), None when started from (θ, β)
    nagq: int
    hessian: np.ndarray  # of the deviance in (θ, β)
    weights_name: str | None = None


def scaled_steps(f: Callable[[np.ndarray], float], x: np.ndarray,
                 pilot: np.ndarray) -> np.ndarray:
    """Steps of 1/100 of each coordinate's curvature scale √(2/f″), from pilot differences.

    A fixed step is too coarse for a θ whose SE is small (a slope SD of 0.02)
    and needlessly fine for one with a large SE.
    """
    f0 = f(x)
    steps = np.empty_like(x)
    for i, h in enumerate(pilot):
        e = np.zeros_like(x)
        e[i] = h
        curv = (f(x + e) - 2.0 * f0 + f(x - e)) / h**2
        steps[i] = STEP_FRACTION * np.sqrt(2.0 / curv) if curv > 0 else h
    return np.clip(steps, 1e-6, 0.1)


def _prior_weights(weights: Any, data: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """Prior weights for the rows of the model frame (a column name or an array)."""
    if weights is None:
        return np.ones(len(frame))
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"weights column {weights!r} is not in the data")
        wt = pd.to_numeric(data.loc[frame.index, weights], errors="coerce").to_numpy(float)
        label = f"weights column {weights!r}"
    else:
        wt = np.asarray(weights, dtype=float).ravel()
        if wt.size != len(data):
            raise DataError(f"weights has {wt.size} values for {len(data)} rows of data")
        wt = wt[data.index.get_indexer(frame.index)]
        label = "weights"
    if not np.all(np.isfinite(wt)) or np.any(wt < 0):
        raise DataError(f"{label} must be finite and non-negative")
    if not np.any(wt > 0):
        raise DataError(f"{label} are all zero")
    return wt


def _bool_response_as_float(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """A True/False response column becomes 1/0 (the frame stage wants numbers)."""
    response = parse_formula(formula).response if isinstance(formula, str) else None
    if response in data.columns and pd.api.types.is_bool_dtype(data[response]):
        return data.assign(**{response: data[response].astype(float)})
    return data


def _start(start: Any, problem: GlmmProblem) -> tuple[np.ndarray, np.ndarray | None]:
    """Starting θ (and β if given) from ``start``: θ array or {"theta":..., "fixef":...}."""
    design = problem.design
    theta, beta = design.theta0(), None
    if isinstance(start, dict):
        if "theta" in start:
            theta = np.asarray(start["theta"], dtype=float)
        if "fixef" in start:
            beta = np.asarray(start["fixef"], dtype=float)
    elif start is not None:
        theta = np.asarray(start, dtype=float)
    if theta.shape != (design.ntheta,):
        raise DataError(f"start theta must have {design.ntheta} values, got {theta.size}")
    if beta is not None and beta.shape != (problem.p,):
        raise DataError(f"start fixef must have {problem.p} values, got {beta.size}")
    return np.maximum(theta, design.lower()), beta


def _stage1(problem: GlmmProblem, theta0: np.ndarray):
    """θ with β inside PIRLS (nAGQ = 0): returns the optimum's mode."""
    beta = [problem.glm_start()]

    def crit(theta: np.ndarray) -> float:
        val, mode = problem.stage1(theta, beta[0])
        if mode is not None:
            beta[0] = mode.beta
        return val

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        opt = minimize_theta(crit, theta0, problem.design.lower(), ftol_abs=1e-6,
                             xtol_abs=1e-6, restart=False)  # a rough start for stage 2
    _, mode = problem.stage1(opt.theta, beta[0])
    return opt, mode


@dataclass(frozen=True)
class Outer:
    """Stage-2 coordinates x = (θ, δ) with β = β₁ + Mδ, and the deviance in them.

    M = L_X⁻ᵀ from stage 1 makes δ roughly uncorrelated with unit scale.
    """

    problem: GlmmProblem
    beta1: np.ndarray
    M: np.ndarray
    nagq: int

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(θ, β) of x."""
        nth = self.problem.design.ntheta
        return x[:nth], self.beta1 + self.M @ x[nth:]

    def to_x(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """x of (θ, β)."""
        return np.concatenate([theta, np.linalg.solve(self.M, beta - self.beta1)])

    def crit(self, x: np.ndarray, u0: np.ndarray | None = None) -> float:
        """Approximate deviance at x (PIRLS from ``u0``, default a warm start)."""
        return self.problem.deviance(*self.split(x), self.nagq, u0=u0)

    @property
    def lower(self) -> np.ndarray:
        """Bounds of x: θ's, and none for δ."""
        return np.concatenate([self.problem.design.lower(), np.full(self.problem.p, -np.inf)])

    def jacobian(self) -> np.ndarray:
        """d(θ, β)/dx."""
        nth = self.problem.design.ntheta
        J = np.eye(nth + self.problem.p)
        J[nth:, nth:] = self.M
        return J


def _gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: np.ndarray) -> np.ndarray:
    E = np.diag(h)
    return np.array([(f(x + E[i]) - f(x - E[i])) / (2.0 * h[i]) for i in range(x.size)])


def _polish(f: Callable[[np.ndarray], float], x: np.ndarray, H: np.ndarray, h: np.ndarray,
            lower: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One Newton step from BOBYQA's optimum on the free coordinates (kept if f drops).

    Returns the point, the central-difference gradient there and f.
    """
    f0, g = f(x), _gradient(f, x, h)
    free = ~(np.isfinite(lower) & (x - lower < BOUNDARY_TOL))
    dx = np.zeros_like(x)
    try:
        dx[free] = -np.linalg.solve(H[np.ix_(free, free)], g[free])
    except np.linalg.LinAlgError:
        return x, g, f0
    x1 = np.maximum(x + dx, lower)
    f1 = f(x1)
    if f1 < f0:
        return x1, _gradient(f, x1, h), f1
    return x, g, f0


def _stage2(outer: Outer, theta1: np.ndarray) -> tuple[OptSummary, Mode, np.ndarray]:
    """(θ, β) jointly from stage 1: BOBYQA, the Hessian there and a Newton polish.

    Returns the OptSummary in (θ, β), the mode at the optimum and the Hessian
    of the deviance in (θ, β).
    """
    problem, nth = outer.problem, theta1.size
    opt = minimize_theta(outer.crit, np.concatenate([theta1, np.zeros(problem.p)]),
                         outer.lower, restart=False)  # polished by a Newton step below
    x = opt.theta
    u_hat = problem.mode(*outer.split(x), np.zeros(problem.nu)).u

    def f(z: np.ndarray) -> float:
        return outer.crit(z, u0=u_hat)

    pilot = np.concatenate([HESS_STEP * np.maximum(np.abs(x[:nth]), 1e-2),
                            np.full(problem.p, HESS_STEP)])
    h = scaled_steps(f, x, pilot)
    Hx = hessian(f, x, h)
    x, g, fval = _polish(f, x, Hx, h, outer.lower)
    theta, beta = outer.split(x)
    Jinv = np.linalg.inv(outer.jacobian())
    opt = replace(opt, theta0=np.concatenate([theta1, outer.beta1]),
                  theta=np.concatenate([theta, beta]), fval=fval, gradient=Jinv.T @ g)
    return opt, problem.mode(theta, beta, u_hat), Jinv.T @ Hx @ Jinv


def glmer(formula: str, data: Any, family: str | Family, weights: Any = None,
          nAGQ: int = 1, start: Any = None) -> GeneralizedLinearMixedModel:
    """Fit a generalised linear mixed model with lme4's formula syntax.

    Parameters
    ----------
    formula : str
        For example ``"TICKS ~ YEAR + (1 | BROOD)"``; random terms as in
        :func:`lmmlib.lmer`.
    data : DataFrame
        The data.
    family : {"poisson", "binomial"}
        Response distribution, with its canonical link (log, logit).  A binomial
        response is 0/1 (or True/False), or a proportion with the numbers of
        trials as ``weights`` (R's ``cbind(k, n - k)`` is ``k/n`` with
        ``weights = n``).
    weights : str or array-like, optional
        Prior weights: a column of ``data`` or one value per row.
    nAGQ : int
        1: Laplace approximation (lme4's default).  > 1: adaptive Gauss–Hermite
        quadrature with that many nodes (one scalar random-effects term only).
    start : array or dict, optional
        Starting θ, or ``{"theta": ..., "fixef": ...}``; with both, stage 1 is skipped.

    Returns
    -------
    GeneralizedLinearMixedModel

    Raises
    ------
    FamilyError
        For an unknown family.
    DataError
        For a response impossible under the family, bad weights or nAGQ.

    Examples
    --------
    >>> m = glmer("prop ~ period + (1 | herd)", cbpp, "binomial", weights="size")  # doctest: +SKIP
    """
    fam = get_family(family)
    data = _bool_response_as_float(formula, as_frame(data))
    design = build_design(formula, data, residual=False)
    wt = _prior_weights(weights, data, design.frame)
    fam.check(design.y, wt, design.formula.response)
    with blas_threads(1):
        problem = GlmmProblem(design, fam, wt)
        nagq = problem.check_nagq(nAGQ)
        theta0, beta0 = _start(start, problem)
        if beta0 is None:
            opt1, mode1 = _stage1(problem, theta0)
            if mode1 is None:
                raise DataError("the penalised IRLS failed at the stage-1 optimum")
            theta1, beta1, LX = opt1.theta, mode1.beta, mode1.LX
        else:
            opt1, theta1, beta1 = None, theta0, beta0
            LX = problem.mode(theta1, beta1, joint=True).LX
        outer = Outer(problem, beta1, np.linalg.inv(LX).T, nagq)
        opt, mode, hess = _stage2(outer, theta1)
        fit = GlmmFit(problem, mode, opt, opt1, nagq, hess, weights if isinstance(weights, str)
                      else None)
        model = GeneralizedLinearMixedModel(fit)
    if model.is_singular:
        warnings.warn("boundary (singular) fit: a variance component is estimated as zero "
                      "or a correlation as +-1; see model.varcorr", SingularFitWarning,
                      stacklevel=2)
    return model
