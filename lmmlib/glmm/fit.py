"""``glmer``: generalised linear mixed models by the Laplace approximation or AGQ.

The stages are those of :func:`lmmlib.lmer` (formula → design → optimise →
model) with the GLMM deviance of :mod:`lmmlib.glmm.laplace` as the criterion,
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

Separation.  Before fitting, a linear programme
(:func:`lmmlib.glmm.separation.find_separation`) checks whether a direction d of
the fixed effects fits some responses exactly (complete or quasi-complete
separation: a factor level whose responses are all 0, a covariate that splits
the 0s from the 1s).  The maximum-likelihood estimate is then infinite along
d, so d is taken out of stage 2: β = β₁ + Bδ with B spanning a complement of
d, and β₁ placed along d where the separated observations' fitted values are
10·eps from their boundary (|η| = 33.7, glm.fit's "numerically 0 or 1").  The
other parameters are then those of the limit (for a separated factor level,
the fit without that level's observations), a :class:`SeparationWarning` names
the diverging columns, and the Hessian is not defined (all NaN: the standard
errors fall back to the penalised IRLS approximation, as lme4's do).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..checks import as_instance
from ..engine.control import GlmerControl
from ..engine.design import build_design
from ..engine.differences import central_gradient, curvature_steps, hessian
from ..engine.fitting import response_like
from ..engine.frame import as_frame
from ..engine.optimize import OptSummary, minimize_theta
from ..engine.threads import blas_threads
from ..errors import ConvergenceWarning, SingularFitWarning
from .arguments import (
    bool_response_as_float,
    cbind_response,
    prior_weights,
    row_values,
    start_values,
)
from .family import Family, get_family
from .laplace import GlmmProblem, Mode
from .model import GeneralizedLinearMixedModel
from .separation import SEPARATED_ETA, Separation, SeparationWarning, find_separation

__all__ = ["GlmmFit", "SeparationWarning", "glmer"]

HESS_STEP = 1e-3  # pilot central-difference step in (θ, whitened β)
STEP_FRACTION = 1e-2  # final steps, in units of each coordinate's curvature scale
POLISH_STEPS = 5  # Newton steps on the finite-difference Hessian after BOBYQA
POLISH_DEC = 1e-10  # a predicted decrease below this ends them (deviance rounding)
HESS_REFRESH = 1e-4  # a polish moving x (unit scale) further re-evaluates the Hessian


@dataclass(frozen=True)
class GlmmFit:
    """What :func:`glmer` produced, the input of :class:`GeneralizedLinearMixedModel`."""

    problem: GlmmProblem
    mode: Mode  # conditional mode at (θ̂, β̂)
    opt: OptSummary  # stage 2, in (θ, β)
    opt_stage1: OptSummary | None  # stage 1 (θ only), None when started from (θ, β)
    nagq: int
    hessian: np.ndarray  # of the deviance in (θ, β); all NaN for a separated fit
    weights_name: str | None = None
    separation: Separation | None = None  # the direction of infinite estimates, if any
    control: GlmerControl | None = None  # the settings of the fit, reused by refit

    def refit(self, y: Any) -> GeneralizedLinearMixedModel:
        """The model fitted to a new response ``y``, started from this fit's (θ̂, β̂).

        Same design, family, prior weights, nAGQ and control; the first stage
        (θ only) is skipped, as with ``glmer(start={"theta": ..., "fixef": ...})``.
        """
        p = self.problem
        design = replace(p.design, y=response_like(y, p.design.nobs))
        p.family.check(design.y, p.wt, design.formula.response)
        control = GlmerControl() if self.control is None else self.control
        with blas_threads(1):
            problem = GlmmProblem(design, p.family, p.wt, p.offset)
            theta1, beta1 = self.mode.theta.copy(), self.mode.beta.copy()
            sep = find_separation(problem.X, problem.y, p.wt, p.family, design.xnames, None)
            LX = problem.mode_at_optimum(theta1, beta1, joint=True).LX
            if sep is not None:
                beta1 = _place_separated(problem, sep, theta1, beta1, None)
            outer = Outer(problem, beta1, _whitening(problem, LX, sep), self.nagq)
            opt, mode, hess = _stage2(outer, theta1, sep, control)
            fit = replace(self, problem=problem, mode=mode, opt=opt, opt_stage1=None, hessian=hess,
                          separation=sep, control=control)
            return GeneralizedLinearMixedModel(fit)


def _stage1(problem: GlmmProblem, theta0: np.ndarray, beta_glm: np.ndarray,
            control: GlmerControl):
    """θ with β inside PIRLS (nAGQ = 0) from the GLM's β: returns the optimum's mode."""
    beta = [beta_glm]

    def crit(theta: np.ndarray) -> float:
        val, mode = problem.stage1(theta, beta[0])
        if mode is not None:
            beta[0] = mode.beta
        return val

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        opt = minimize_theta(crit, theta0, problem.design.lower(), control,
                             ftol_abs=control.stage1_tol, xtol_abs=control.stage1_tol,
                             restart=False)  # a rough start for stage 2
    return opt, problem.mode_at_optimum(opt.theta, beta[0], joint=True)


@dataclass(frozen=True)
class Outer:
    """Stage-2 coordinates x = (θ, δ) with β = β₁ + Mδ, and the deviance in them.

    M = L_X⁻ᵀ from stage 1 makes δ roughly uncorrelated with unit scale.  For a
    separated fit M is p × (p − 1): δ spans a complement of the separating
    direction, which stays where β₁ puts it.
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
        """x of (θ, β) (least squares if M is not square)."""
        return np.concatenate([theta, np.linalg.lstsq(self.M, beta - self.beta1, rcond=None)[0]])

    def crit(self, x: np.ndarray, u0: np.ndarray | None = None) -> float:
        """Approximate deviance at x (PIRLS from ``u0``, default a warm start)."""
        return self.problem.deviance(*self.split(x), self.nagq, u0=u0)

    @property
    def lower(self) -> np.ndarray:
        """Bounds of x: θ's, and none for δ."""
        return np.concatenate([self.problem.design.lower(), np.full(self.M.shape[1], -np.inf)])

    def jacobian(self) -> np.ndarray:
        """d(θ, β)/dx, of shape (dim θ + p, dim x)."""
        nth = self.problem.design.ntheta
        J = np.zeros((nth + self.problem.p, nth + self.M.shape[1]))
        J[:nth, :nth] = np.eye(nth)
        J[nth:, nth:] = self.M
        return J


def _x_scaling(X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """B with columns scaled so that a unit step moves η by 1 (root mean square)."""
    rms = np.sqrt(np.mean((X @ B) ** 2, axis=0))
    return B / np.where(rms > 0, rms, 1.0)


def _whitening(problem: GlmmProblem, LX: np.ndarray | None,
               sep: Separation | None) -> np.ndarray:
    """M of :class:`Outer`: L_X⁻ᵀ, restricted to a complement of the separating direction.

    Falls back to scaling by the spread of Xβ when L_X is not usable (not
    finite, singular, or no information left once the direction is removed).
    """
    X, p = problem.X, problem.p
    if sep is None:
        try:
            _check_finite(LX)
            M = np.linalg.inv(LX).T
            _check_finite(M)
            return M
        except (np.linalg.LinAlgError, TypeError, ValueError):
            return _x_scaling(X, np.eye(p))
    d = sep.direction / np.linalg.norm(sep.direction)
    B = np.linalg.svd(np.eye(p) - np.outer(d, d))[0][:, : p - 1]  # orthonormal basis of d⊥
    if p == 1:
        return B
    try:
        _check_finite(LX)
        SB = B.T @ LX @ LX.T @ B
        ev = np.linalg.eigvalsh(SB)
        if ev[0] <= 1e-10 * ev[-1]:
            raise np.linalg.LinAlgError("no information left")
        return B @ np.linalg.inv(np.linalg.cholesky(SB)).T
    except (np.linalg.LinAlgError, TypeError, ValueError):
        return _x_scaling(X, B)


def _check_finite(a: np.ndarray | None) -> None:
    if a is None or not np.all(np.isfinite(a)):
        raise np.linalg.LinAlgError("not finite")


def _place_separated(problem: GlmmProblem, sep: Separation, theta: np.ndarray,
                     beta: np.ndarray, u: np.ndarray | None) -> np.ndarray:
    """β moved along the separating direction so that min s_i·η_i (separated rows) = 33.7.

    Only the separated observations' η change (the others have x_iᵀd = 0), so
    the deviance changes by at most ~1e-14 per separated observation.
    """
    mode = problem.mode_at_optimum(theta, beta, u)
    for _ in range(3):  # u follows β only through weights ~1e-15: one pass is enough
        gap = sep.signs[sep.rows] * mode.eta[sep.rows] - SEPARATED_ETA
        t = float(np.min(gap / sep.margins(problem.X)))
        beta = beta - t * sep.direction
        mode = problem.mode_at_optimum(theta, beta, mode.u)
        if abs(t) < 1e-8:
            break
    return beta


def _polish(f: Callable[[np.ndarray], float], x: np.ndarray, H: np.ndarray, h: np.ndarray,
            lower: np.ndarray, boundary_tol: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Newton steps from BOBYQA's optimum on the free coordinates, each kept if f drops.

    The Hessian is the finite-difference one at BOBYQA's point; each step takes
    a new central-difference gradient; after the first, the steps stop once one
    predicts a decrease below POLISH_DEC (the criterion's rounding) or fails to
    lower f.
    Coordinates within ``boundary_tol`` of their bound are tried at the bound.

    Returns the point, the central-difference gradient there and f.
    """
    fx, g = f(x), central_gradient(f, x, h)
    near = np.isfinite(lower) & (x - lower < boundary_tol)
    if near.any():  # a variance that BOBYQA left just above zero
        at_bound = np.where(near, lower, x)
        f_bound = f(at_bound)
        if f_bound <= fx:
            x, fx, g = at_bound, f_bound, central_gradient(f, at_bound, h)
    free = ~near
    for step in range(POLISH_STEPS):
        dx = np.zeros_like(x)
        try:
            dx[free] = -np.linalg.solve(H[np.ix_(free, free)], g[free])
        except np.linalg.LinAlgError:
            break
        if step and -0.5 * float(dx[free] @ g[free]) < POLISH_DEC:  # the model's gain
            break
        x1 = np.maximum(x + dx, lower)
        f1 = f(x1)
        if not f1 < fx:
            break
        x, fx, g = x1, f1, central_gradient(f, x1, h)
    return x, g, fx


def _stage2(outer: Outer, theta1: np.ndarray, sep: Separation | None,
            control: GlmerControl) -> tuple[OptSummary, Mode, np.ndarray]:
    """(θ, β) jointly from stage 1: BOBYQA, the Hessian there and a Newton polish.

    Returns the OptSummary in (θ, β), the mode at the optimum and the Hessian
    of the deviance in (θ, β) (all NaN for a separated fit, where it does not
    exist in the limit).
    """
    problem, nth = outer.problem, theta1.size
    with warnings.catch_warnings():  # the gradient is checked after the Newton polish
        warnings.simplefilter("ignore", ConvergenceWarning)
        opt = minimize_theta(outer.crit, np.concatenate([theta1, np.zeros(outer.M.shape[1])]),
                             outer.lower, control, restart=False, grad_tol=1e300)
    x = opt.theta
    u_hat = problem.mode_at_optimum(*outer.split(x), np.zeros(problem.nu)).u

    def f(z: np.ndarray) -> float:
        return outer.crit(z, u0=u_hat)

    pilot = np.concatenate([HESS_STEP * np.maximum(np.abs(x[:nth]), 1e-2),
                            np.full(x.size - nth, HESS_STEP)])
    h = curvature_steps(f, x, pilot, STEP_FRACTION)
    Hx = hessian(f, x, h)
    x0 = x
    x, g, fval = _polish(f, x, Hx, h, outer.lower, control.boundary_tol)
    if sep is None and np.max(np.abs(x - x0)) > HESS_REFRESH:
        Hx = hessian(f, x, h)  # the standard errors' curvature at the optimum itself
    converged = _check_polished(Hx, g, x, outer.lower, control)
    theta, beta = outer.split(x)
    J = outer.jacobian()
    Jinv = np.linalg.inv(J) if J.shape[0] == J.shape[1] else np.linalg.pinv(J)
    if sep is not None:
        beta = _place_separated(problem, sep, theta, beta, u_hat)
        H = np.full((nth + problem.p, nth + problem.p), np.nan)
    else:
        H = Jinv.T @ Hx @ Jinv
    mode = problem.mode_at_optimum(theta, beta, u_hat)
    fval = problem.laplace(mode) if outer.nagq == 1 else problem.agq(mode, outer.nagq)
    opt = replace(opt, theta0=np.concatenate([theta1, outer.beta1]),
                  theta=np.concatenate([theta, beta]), fval=fval, gradient=Jinv.T @ g,
                  converged=opt.converged and converged)
    return opt, mode, H


def _check_polished(H: np.ndarray, g: np.ndarray, x: np.ndarray, lower: np.ndarray,
                    control: GlmerControl) -> bool:
    """lme4's convergence check after the polish: the Newton step |H⁻¹g| is small.

    Warns (ConvergenceWarning) when a free coordinate's step exceeds ``grad_tol``.
    """
    free = ~(np.isfinite(lower) & (x - lower < control.boundary_tol))
    if not free.any() or not np.all(np.isfinite(H)):
        return True
    try:
        step = np.abs(np.linalg.solve(H[np.ix_(free, free)], g[free]))
    except np.linalg.LinAlgError:
        return True
    worst = float(step.max())
    if worst > control.grad_tol:
        warnings.warn(f"model may not have converged: scaled gradient {worst:.2g} after the "
                      "Newton polish", ConvergenceWarning, stacklevel=4)
        return False
    return True


def _stage1_fit(problem: GlmmProblem, opt1: OptSummary,
                mode1: Mode) -> tuple[OptSummary, Mode, np.ndarray]:
    """lme4's nAGQ = 0 fit: θ from the first stage, β from its penalised IRLS; no Hessian."""
    size = mode1.theta.size + problem.p
    opt = replace(opt1, theta0=np.concatenate([opt1.theta0, mode1.beta]),
                  theta=np.concatenate([mode1.theta, mode1.beta]), fval=problem.laplace(mode1),
                  gradient=np.full(size, np.nan))
    return opt, mode1, np.full((size, size), np.nan)


def _warn_boundary(model: GeneralizedLinearMixedModel, sep: Separation | None) -> None:
    """glm.fit's warnings: separation (named columns), or fitted values numerically 0 or 1."""
    fam = model.family
    if sep is not None:
        warnings.warn(sep.message(fam, model.nobs), SeparationWarning, stacklevel=3)
        return
    at = fam.numerically_boundary(model.fitted.to_numpy()) & (model.fit.problem.wt > 0)
    if at.any():
        what = ("fitted probabilities numerically 0 or 1" if fam.name == "binomial"
                else "fitted means numerically 0")
        warnings.warn(f"{what} occurred for {int(at.sum())} of {model.nobs} observations; "
                      "no combination of the fixed effects separates the response, so this "
                      "comes from very large effects or from random effects that separate "
                      "groups whose responses are all at a boundary (see model.ranef())",
                      SeparationWarning, stacklevel=3)


def glmer(formula: str, data: Any, family: str | Family, weights: Any = None,
          nAGQ: int = 1, start: Any = None, control: GlmerControl | None = None,
          offset: Any = None, *, subset: Any = None,
          na_action: str = "omit") -> GeneralizedLinearMixedModel:
    """Fit a generalised linear mixed model with lme4's formula syntax.

    Parameters
    ----------
    formula : str
        For example ``"TICKS ~ YEAR + (1 | BROOD)"``; random terms as in
        :func:`lmmlib.lmer`.
    data : DataFrame
        The data.
    family : {"poisson", "binomial", "Gamma"} or Family
        Response distribution with its default link (log, logit, inverse), or
        a family object for another link: ``lmmlib.binomial("probit")``,
        ``lmmlib.binomial("cloglog")``, ``lmmlib.gamma("log")``,
        ``lmmlib.negative_binomial(theta)`` (see :func:`lmmlib.glmer_nb` to
        estimate θ).  A binomial response is 0/1 (or True/False), a proportion
        with the numbers of trials as ``weights``, or lme4's
        ``cbind(successes, failures) ~ ...``.
    weights : str or array-like, optional
        Prior weights: a column of ``data`` or one value per row.
    nAGQ : int
        1: Laplace approximation (lme4's default).  > 1: adaptive Gauss–Hermite
        quadrature with that many nodes (one scalar random-effects term only).
        0: lme4's fast fit, the first stage only (θ optimised with β inside the
        penalised IRLS; standard errors from that factor).
    start : array or dict, optional
        Starting θ, or ``{"theta": ..., "fixef": ...}``; with both, stage 1 is skipped.
        θ must respect its lower bounds (0 for a standard-deviation factor).
    control : GlmerControl, optional
        Optimiser settings, as lme4's ``glmerControl`` (the tolerances of the
        full optimisation and of its rough first stage, evaluation budget,
        gradient and boundary checks).
    offset : str or array-like, optional
        A known part of the linear predictor (lme4's ``offset``): a column of
        ``data`` or one value per row, e.g. the log exposure of counts.
    subset, na_action
        Rows to use and the treatment of missing values, as in :func:`lmmlib.lmer`.

    Returns
    -------
    GeneralizedLinearMixedModel

    Raises
    ------
    FamilyError
        For an unknown family.
    ArgumentError
        For an nAGQ that is not an integer, or a ``start`` of the wrong length,
        not finite or below the lower bounds of θ.
    DataError
        For a response impossible under the family, bad weights or an nAGQ out
        of range; :class:`~lmmlib.glmm.laplace.FactorError` (a DataError) if
        the penalised IRLS cannot be factored at the optimum.

    Warns
    -----
    SeparationWarning
        When the fixed effects separate the response (complete or
        quasi-complete separation, e.g. a factor level whose responses are all
        0): the warning names the columns whose estimates diverge; they are
        reported where the separated fitted values are 10·eps from 0 or 1, the
        other estimates are those of the limit, and the standard errors fall
        back to the penalised IRLS approximation.  Also when fitted values are
        numerically 0 or 1 without separation (as R's glm.fit).
    SingularFitWarning
        For a boundary fit.

    Notes
    -----
    Formulas are code: formulaic evaluates their terms as Python (as R
    evaluates formulas), so never pass formulas from untrusted input.

    Examples
    --------
    Counts with a group effect of SD 0.5 and a slope of 0.3 on the log scale:

    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "x": rng.normal(size=200)})
    >>> d["y"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + rng.normal(scale=0.5, size=20)[d.g]))
    >>> m = glmer("y ~ x + (1 | g)", d, "poisson")
    >>> m.fixef.round(2).tolist(), m.theta.round(2).tolist()
    ([0.43, 0.31], [0.47])

    A binomial response as a proportion with the numbers of trials as weights
    (lme4's ``cbind(k, n - k)``): ``glmer("k / n ~ x + (1 | g)", d, "binomial",
    weights="n")``.
    """
    control = as_instance(GlmerControl() if control is None else control, "control",
                          GlmerControl, "an lmmlib.GlmerControl")
    fam = get_family(family)
    text = formula
    formula, data, weights = cbind_response(formula, as_frame(data), weights, na_action)
    data = bool_response_as_float(formula, data)
    design = build_design(formula, data, residual=False, subset=subset, na_action=na_action)
    if formula != text:  # a cbind() response: shown as given
        design = replace(design, formula=replace(design.formula, text=text))
    wt = prior_weights(weights, data, design.frame)
    if offset is not None:
        design = design.with_offset(row_values(offset, data, design.frame, "offset"),
                                    f"`{offset}`" if isinstance(offset, str) else None,
                                    argument=True)
    fam.check(design.y, wt, design.formula.response)
    with blas_threads(1):
        problem = GlmmProblem(design, fam, wt, design.offset)
        nagq = problem.check_nagq(nAGQ)
        theta0, beta0 = start_values(start, problem)
        beta_glm = problem.glm_start() if beta0 is None else None
        sep = find_separation(problem.X, problem.y, wt, fam, design.xnames, beta_glm)
        if beta0 is None:
            opt1, mode1 = _stage1(problem, theta0, beta_glm, control)
            theta1, beta1, LX = opt1.theta, mode1.beta, mode1.LX
        else:
            opt1, theta1, beta1 = None, theta0, beta0
            LX = problem.mode_at_optimum(theta1, beta1, joint=True).LX
        if sep is not None:
            beta1 = _place_separated(problem, sep, theta1, beta1, None)
        if nagq == 0 and opt1 is not None:  # lme4's nAGQ = 0: the first stage is the fit
            opt, mode, hess = _stage1_fit(problem, opt1, mode1)
        else:
            outer = Outer(problem, beta1, _whitening(problem, LX, sep), nagq)
            opt, mode, hess = _stage2(outer, theta1, sep, control)
        fit = GlmmFit(problem, mode, opt, opt1, nagq, hess,
                      weights if isinstance(weights, str) else None, sep, control)
        model = GeneralizedLinearMixedModel(fit)
    _warn_boundary(model, sep)
    if model.is_singular:
        warnings.warn("boundary (singular) fit: a variance component is estimated as zero "
                      "or a correlation as +-1; see model.varcorr", SingularFitWarning,
                      stacklevel=2)
    return model
