"""Profile likelihood of every parameter of a linear mixed model (lme4's ``profile``).

For one parameter p at a time, p is fixed at a sequence of values on both sides
of its estimate p̂ and the deviance is minimised over all the other
parameters.  The result is reported as lme4's signed square root

    ζ(p) = sign(p − p̂) √(dev(p) − dev(p̂)),

which is a straight line of slope 1/SE when the likelihood is quadratic.

As in lme4 (``profile.merMod`` → ``devfun2`` → ``refitML``) the *ML deviance*
is profiled, also for models fitted by REML: the profile is centred on the ML
estimates.  The variance parameters are profiled on the scale of standard
deviations and correlations (``.sig01``, ...) and of σ (``.sigma``), see
:class:`lmmlib.engine.varcomp.VarPars`; a fixed effect β_j is profiled by moving
``X_j β_j`` into an offset and refitting the model without column j.

The values are chosen as lme4 chooses them: each step aims at a change of
``delta`` in ζ, extrapolating from the last two points, and is at most ten
times the previous step; a direction ends when ``|ζ|`` passes the cut-off, at a
bound (an SD of 0, a correlation of ±1) or where ζ stops growing (the
parameter no longer changes the fit, e.g. a correlation once an SD is 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import chi2

from ..checks import as_count, as_instance, as_level, describe
from ..engine.fitting import fit_theta
from ..engine.pls import PLS
from ..engine.threads import blas_threads
from ..engine.varcomp import VarPars
from ..errors import ArgumentError
from ..kinds import GeneralizedMixedFit, LinearMixedFit
from .profile_glmm import glmm_problem
from .profile_walk import minimize_bounded, profile_points, select, signed_root

__all__ = ["profile", "zeta_at"]


@dataclass
class _MLProblem:
    """The ML fit that lme4 profiles, and the pieces every profile needs."""

    pls: PLS
    vp: VarPars
    lower_theta: np.ndarray
    v_hat: np.ndarray  # SDs/correlations and σ at the ML estimates
    beta_hat: np.ndarray
    se_beta: np.ndarray
    base: float  # ML deviance at the optimum
    theta_hat: np.ndarray
    names: tuple[str, ...]
    xnames: tuple[str, ...]
    criterion: str = "ML deviance"

    @property
    def nvp(self) -> int:
        return self.vp.size

    @property
    def estimates(self) -> np.ndarray:
        return np.concatenate([self.v_hat, self.beta_hat])

    @property
    def lower(self) -> np.ndarray:
        return self.vp.lower

    @property
    def upper(self) -> np.ndarray:
        return self.vp.upper

    def zeta(self, w: int) -> Callable[[float, np.ndarray], np.ndarray]:
        """ζ of parameter ``w`` as a function of its value and a starting row."""
        return _var_zeta(self, w) if w < self.nvp else _fixed_zeta(self, w - self.nvp)

    def var_scale(self) -> np.ndarray:
        """Typical size of each variance parameter, for the optimiser's first steps."""
        sd = np.where(self.v_hat > 0, self.v_hat, 0.1 * self.v_hat[-1])
        return np.where(np.array(self.vp.kinds) == "cor", 1.0, sd)


def _ml_problem(model) -> _MLProblem:
    """Refit ``model`` by ML (as lme4's ``refitML``) unless it already is an ML fit."""
    design, pls = model.design, model.pls
    theta = model.theta
    if model.reml:
        theta = fit_theta(pls, False, theta, quiet=True).theta
    sol = pls.solve(theta)
    n = design.nobs
    sigma = float(np.sqrt(sol.r2 / n))
    vp = VarPars.of(design.reterms)
    LXinv = np.linalg.inv(sol.LX)
    se = sigma * np.sqrt(np.sum(LXinv**2, axis=0))
    return _MLProblem(pls, vp, design.lower(), vp.from_theta(theta, sigma),
                      sol.beta, se, pls.objective(theta, False), theta,
                      vp.names + tuple(design.xnames), tuple(design.xnames))


def _var_zeta(prob: _MLProblem, w: int) -> Callable[[float, np.ndarray], np.ndarray]:
    """ζ of variance parameter ``w``: the other SDs/correlations and σ re-optimised."""
    crit = prob.vp.criterion(prob.pls, reml=False)
    free = np.delete(np.arange(prob.nvp), w)
    lower, upper = prob.vp.lower[free], prob.vp.upper[free]
    step = 0.1 * prob.var_scale()[free]
    est = prob.v_hat[w]

    def zeta(x: float, start: np.ndarray) -> np.ndarray:
        v = np.empty(prob.nvp)
        v[w] = x

        def f(u: np.ndarray) -> float:
            v[free] = u
            return crit(v)

        u, fval = minimize_bounded(f, start[1:][free], lower, upper, step)
        v[free] = u
        theta, sigma = prob.vp.to_theta(v)
        beta = prob.pls.solve(theta).beta if np.isfinite(fval) else np.full(prob.beta_hat.size,
                                                                            np.nan)
        return np.concatenate([[signed_root(x - est, fval - prob.base)], v, beta])

    return zeta


def _fixed_zeta(prob: _MLProblem, j: int) -> Callable[[float, np.ndarray], np.ndarray]:
    """ζ of fixed effect ``j``: X_j β_j as an offset, θ re-optimised without column j."""
    design = prob.pls.design
    X = design.X
    Xj = X[:, j]
    reduced = replace(design, X=np.delete(X, j, axis=1),
                      xnames=tuple(n for i, n in enumerate(design.xnames) if i != j))
    base_pls = PLS(reduced)
    n, p = X.shape
    lower = prob.lower_theta
    upper = np.full(lower.size, np.inf)
    step = 0.1 * np.maximum(np.abs(prob.theta_hat), 0.1)
    est = prob.beta_hat[j]
    others = np.delete(np.arange(p), j)

    def zeta(b: float, start: np.ndarray) -> np.ndarray:
        pls = base_pls.with_response(design.y - Xj * b)
        theta0, _ = prob.vp.to_theta(start[1 : 1 + prob.nvp])
        theta, fval = minimize_bounded(lambda th: pls.objective(th, False), theta0, lower,
                                       upper, step)
        sol = pls.solve(theta)
        beta = np.empty(p)
        beta[j] = b
        beta[others] = sol.beta
        v = prob.vp.from_theta(theta, float(np.sqrt(sol.r2 / n)))
        return np.concatenate([[signed_root(b - est, fval - prob.base)], v, beta])

    return zeta


def _check_model(model: object) -> None:
    as_instance(model, "model", (LinearMixedFit, GeneralizedMixedFit),
                "a mixed model fitted by lmmlib.lmer or lmmlib.glmer")


def _problem(model):
    """What is profiled: the ML deviance of an LMM, the Laplace/AGQ deviance of a GLMM."""
    return glmm_problem(model) if isinstance(model, GeneralizedMixedFit) else _ml_problem(model)


def profile(model, which: str | Sequence[str] | None = None, level_max: float = 0.99,
            n_points: int = 12, maxpts: int = 100) -> pd.DataFrame:
    """Profile the ML deviance over each parameter (lme4's ``profile(m)``).

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model.  REML fits are refitted by ML first, as lme4 does.
    which : str or sequence of str, optional
        Parameters to profile, by name (``".sig01"``, ``".sigma"``,
        ``"(Intercept)"``...), or ``"theta_"`` (all variance parameters) or
        ``"beta_"`` (all fixed effects).  Default: all.
    level_max : float
        Each direction stops once ``|ζ|`` exceeds ``sqrt(qchisq(level_max, 1))``,
        enough for confidence intervals up to this level; in (0, 1).
    n_points : int
        Aimed-at number of points per side (an integer >= 2): the ζ step is
        cut-off / n_points (lme4 uses 8 steps of a cut-off on as many degrees
        of freedom as parameters).
    maxpts : int
        Maximum number of points per side (an integer >= 3: the estimate, the
        first step and at least one more).

    Returns
    -------
    DataFrame
        Long format, one row per point: ``par`` (the profiled parameter),
        ``value`` (its value), ``zeta``, then the value of every parameter at
        that point (the profiled one and the re-optimised others).  ``attrs``
        holds ``estimates``, ``lower`` and ``upper`` (bounds), ``cutoff`` and
        ``deviance`` (the ML deviance at the optimum).

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit, ``which`` names an unknown
        parameter, or ``level_max``, ``n_points`` or ``maxpts`` are out of range.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))
    >>> prof = m.profile()
    >>> sorted(prof.par.unique())  # one ζ curve per parameter, as lme4's profile()
    ['(Intercept)', '.sig01', '.sigma', 'weeks']
    """
    _check_model(model)
    level_max = as_level(level_max, "level_max")
    n_points = as_count(n_points, "n_points", minimum=2)
    maxpts = as_count(maxpts, "maxpts", minimum=3)
    with blas_threads(1):
        prob = _problem(model)
        chosen = select(which, prob.names, prob.nvp)
        cutoff = float(np.sqrt(chi2.ppf(level_max, 1)))
        delta = cutoff / n_points
        frames = []
        for w in chosen:
            pts = profile_points(prob, w, cutoff, delta, maxpts)
            df = pd.DataFrame(pts[:, 1:], columns=list(prob.names))
            df.insert(0, "zeta", pts[:, 0])
            df.insert(0, "value", pts[:, w + 1])
            df.insert(0, "par", prob.names[w])
            frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    bounds = np.concatenate([prob.lower, np.full(len(prob.xnames), -np.inf)])
    ubounds = np.concatenate([prob.upper, np.full(len(prob.xnames), np.inf)])
    out.attrs.update({
        "estimates": dict(zip(prob.names, prob.estimates.tolist(), strict=True)),
        "lower": dict(zip(prob.names, bounds.tolist(), strict=True)),
        "upper": dict(zip(prob.names, ubounds.tolist(), strict=True)),
        "cutoff": cutoff,
        "deviance": prob.base,
        "criterion": prob.criterion,
    })
    return out


def zeta_at(model, par: str, values: Sequence[float]) -> np.ndarray:
    """ζ of one parameter at given values (each point re-optimised from the estimates).

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model (profiled by ML, as :func:`profile`).
    par : str
        Parameter name, e.g. ``".sig01"`` or ``"Days"``.
    values : sequence of float
        Values of that parameter.

    Returns
    -------
    ndarray
        ζ at each value.

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit, ``par`` is not one parameter's
        name or ``values`` are not finite numbers.
    """
    _check_model(model)
    if not isinstance(par, str) or par in ("theta_", "beta_"):
        raise ArgumentError(f"par must be the name of one parameter, got {describe(par)}")
    try:
        values = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"values must be numbers, got {describe(values)}") from exc
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ArgumentError(f"values must be a 1-d sequence of finite numbers, got {values}")
    with blas_threads(1):
        prob = _problem(model)
        (w,) = select(par, prob.names, prob.nvp, "par")
        zeta = prob.zeta(w)
        start = np.concatenate([[0.0], prob.estimates])
        return np.array([zeta(float(x), start)[0] for x in values])
