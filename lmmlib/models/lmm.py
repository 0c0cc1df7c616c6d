"""Stage 5: the fitted linear mixed model and its accessors (lme4 names)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..checks import as_bool, as_count
from ..engine.design import Design
from ..engine.fitting import fit_theta, response_like, warm_start
from ..engine.optimize import OptSummary, optinfo
from ..engine.pls import PLS, PLSSolution
from ..engine.simulate import as_generator, simulate_responses
from ..engine.varcomp import varcorr_frame
from ..errors import ArgumentError, DataError
from ..kinds import LinearMixedFit
from .accessors import DataAccessors, gaussian_resid
from .criteria import InformationCriteria
from .effects import RandomEffectsMixin
from .readonly import cached_copy

__all__ = ["DevComp", "LinearMixedModel", "fit_design"]

#: Fits with σ below this fraction of the response's SD are checked for an exact fit.
SUSPECT_SIGMA = 1e-3
#: Scale of Λ that makes the penalty negligible (its share of r² is ~1/FREE_SCALE²).
FREE_SCALE = 1e6
#: Least-squares residual below this share of the total sum of squares: an exact fit.
EXACT_FIT_TOL = 1e-10


@dataclass(frozen=True)
class DevComp:
    """The penalised least-squares solution at one θ (cf. lme4's ``getME(m, "devcomp")``).

    Attributes
    ----------
    theta : ndarray
        The θ it was computed at.
    beta : Series
        β̂(θ), the generalised least-squares estimate given θ.
    pwrss : float
        r²(θ), the penalised residual sum of squares ``‖y − Xβ̂ − ZΛû‖² + ‖û‖²``.
    logdet_theta : float
        log|L_θ|², the log-determinant of Λ'Z'ZΛ + I (= log|V_θ|; lme4's ``ldL2``).
    logdet_x : float
        log|L_X|², the log-determinant of X'V_θ⁻¹X (lme4's ``ldRX2``).
    deviance, reml_criterion : float
        The profiled deviance and REML criterion at θ (``devfun(theta, reml=...)``;
        lme4's ``dev`` and ``REML``).
    sigma_ml, sigma_reml : float
        √(r²/n) and √(r²/(n − p)), the σ that minimise them.
    """

    theta: np.ndarray
    beta: pd.Series
    pwrss: float
    logdet_theta: float
    logdet_x: float
    deviance: float
    reml_criterion: float
    sigma_ml: float
    sigma_reml: float


class LinearMixedModel(LinearMixedFit, RandomEffectsMixin, InformationCriteria, DataAccessors):
    """A linear mixed model fitted by :func:`lmmlib.lmer`.

    The object is read-only; refits return new objects.  Names follow lme4:
    ``fixef``, ``vcov``, ``theta``, ``sigma``, ``varcorr``, ``ranef()``,
    ``coef()``, ``fitted``, ``residuals``, ``resid()``, ``predict()``,
    ``loglik``, ``aic``, ``bic``, ``summary()``, ``devfun()``, ``optinfo``,
    ``model_frame``, ``model_matrix``, ``response``.
    """

    def __init__(self, design: Design, pls: PLS, opt: OptSummary, reml: bool,
                 data_name: str | None = None) -> None:
        self.design = design
        self.pls = pls
        self.opt = opt
        self.reml = bool(reml)
        self.data_name = data_name
        self._sol: PLSSolution = pls.solve(opt.theta)
        self._check_residual()

    def _check_residual(self) -> None:
        """Refuse a response that the fixed and random effects reproduce exactly.

        Then the likelihood is unbounded: σ → 0 while θ → ∞.  A fit whose σ is
        small is checked by solving the penalised least-squares problem with
        a practically free Λ = 10⁶ I: its residual sum of squares is then the
        least-squares residual of y on [X Z].
        """
        y = self.design.y - self.pls.offset
        w = self.design.weights
        spread = float(np.std(y) if w is None else
                       np.sqrt(np.average((y - np.average(y, weights=w)) ** 2, weights=w)))
        if self.sigma > SUSPECT_SIGMA * spread:
            return
        w = np.ones_like(y) if w is None else w
        free = self.pls.solve(self.design.theta0() * FREE_SCALE)
        if free.r2 > EXACT_FIT_TOL * float(np.sum(w * (y - np.average(y, weights=w)) ** 2)):
            return
        factors = ", ".join(repr(b.factor) for b in self.design.blocks)
        raise DataError(
            f"the response is exactly determined by the fixed effects and the random "
            f"effects of {factors}: no residual variance is left to estimate (e.g. the "
            f"response is constant within every level of a grouping factor)")

    # -- parameters ----------------------------------------------------------
    @property
    def formula(self) -> str:
        """The model formula as given."""
        return self.design.formula.text

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance parameters in lme4's order."""
        return self._sol.theta.copy()

    @property
    def nobs(self) -> int:
        """Number of observations used in the fit."""
        return self.design.nobs

    @cached_property
    def sigma(self) -> float:
        """Residual standard deviation (REML or ML estimate)."""
        nu = self.nobs - len(self.design.xnames) if self.reml else self.nobs
        return float(np.sqrt(self._sol.r2 / nu))

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates β̂ in the column order of the model matrix."""
        return pd.Series(self._sol.beta, index=list(self.design.xnames), name="Estimate")

    @cached_copy
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂: σ² (X'V⁻¹X)⁻¹ with V in units of σ²."""
        LX = self._sol.LX
        inv = np.linalg.inv(LX)
        names = list(self.design.xnames)
        return pd.DataFrame(self.sigma**2 * inv.T @ inv, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="Std. Error")

    # -- likelihood ----------------------------------------------------------
    @cached_property
    def objective(self) -> float:
        """REML criterion (REML fits) or deviance −2 log L (ML fits) at the optimum."""
        return self.pls.objective(self._sol.theta, self.reml)

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, θ and σ."""
        return len(self.design.xnames) + self.theta.size + 1

    def _reml(self, reml: bool | None) -> bool:
        return self.reml if reml is None else as_bool(reml, "reml")

    def devfun(self, theta: Any, reml: bool | None = None) -> float:
        """The criterion ``lmer`` minimises, at any θ (lme4's ``devfun``).

        θ ↦ the profiled REML criterion (REML fits) or deviance −2 log L (ML
        fits), β and σ profiled out: ``m.devfun(m.theta) == m.objective``.
        ``reml`` overrides the fit's choice (``reml=False`` on a REML fit gives
        the ML deviance at θ).  ``inf`` where the factorisation fails.
        """
        return self.pls.objective(_theta(theta, self.design.ntheta), self._reml(reml))

    def deviance_at(self, theta: Any, sigma: float, reml: bool | None = None) -> float:
        """The REML criterion or deviance at (θ, σ), profiled over β only.

        ``log|L_θ|² [+ log|L_X|²] + ν log(2πσ²) + r²(θ)/σ²``, ν = n − p for REML
        and n for ML; its minimum over σ is :meth:`devfun` at θ.  ``reml``
        overrides the fit's choice.
        """
        return self.pls.deviance_at(_theta(theta, self.design.ntheta), sigma,
                                    self._reml(reml))

    def devcomp(self, theta: Any = None) -> DevComp:
        """The pieces of the PLS solve at θ (default θ̂): see :class:`DevComp`."""
        theta = self.theta if theta is None else _theta(theta, self.design.ntheta)
        sol = self.pls.solve(theta)
        n, p = self.nobs, len(self.design.xnames)
        return DevComp(sol.theta.copy(), pd.Series(sol.beta, index=list(self.design.xnames),
                                                    name="Estimate"),
                       sol.r2, sol.logdet_theta, sol.logdet_x,
                       self.pls.objective(theta, False), self.pls.objective(theta, True),
                       float(np.sqrt(sol.r2 / n)), float(np.sqrt(sol.r2 / (n - p))))

    @property
    def optinfo(self) -> dict:
        """What the optimiser did (lme4's ``m@optinfo``), a new dict.

        Keys: ``optimizer``, ``feval`` (criterion evaluations), ``val`` (the
        criterion at the optimum), ``conv`` (whether it converged), ``message``,
        ``boundary`` (indices of θ at a lower bound), ``theta0`` (the start).
        """
        return optinfo(self.opt)

    # -- variance components and random effects ---------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as ``as.data.frame(VarCorr(m))``."""
        return varcorr_frame(self._sol.theta, self.sigma, self.design.reterms)

    # -- fitted values and prediction --------------------------------------
    @cached_copy
    def fitted(self) -> pd.Series:
        """Fitted values o + X β̂ + Z b̂ (o the offset, if any)."""
        mu = (self.pls.offset + self.design.X @ self._sol.beta
              + self._zb(self.design.frame, known=True))
        return pd.Series(mu, index=self.design.frame.index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        """Response minus fitted values."""
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.fitted.index,
                         name="residuals")

    def resid(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals of a ``type`` (lme4's ``residuals(m, type, scaled)``).

        ``"response"``, ``"pearson"``, ``"deviance"`` and ``"working"`` are all
        y − fitted for a Gaussian model without weights; ``scaled=True``
        divides by σ̂.
        """
        return gaussian_resid(self, type, scaled)

    def predict(self, newdata: Any = None, re: bool = True, allow_new_levels: bool = False,
                *, re_form: object = None, se_fit: bool = False, interval: str = "none",
                level: float = 0.95) -> pd.Series | pd.DataFrame:
        """Predictions (lme4's ``predict``), for the data of the fit or new data.

        Parameters
        ----------
        newdata : DataFrame, optional
            Defaults to the data used in the fit.
        re : bool
            Include the BLUPs (``re.form = NULL`` in lme4); ``False`` gives the
            population predictions o + X β̂.
        allow_new_levels : bool
            Levels of a grouping factor not seen in the fit get the population
            prediction (``True``) or are an error (``False``, lme4's default).
            A missing grouping value always gives the population prediction.
        re_form : str, optional
            lme4's ``re.form``: ``"~0"`` (or ``"NA"``) for none of the random
            effects, or some of the model's terms, e.g. ``"~ (1 | g)"``;
            overrides ``re``.
        se_fit : bool
            Also return the standard errors of the population predictions,
            √(xᵢ'V xᵢ) with V = ``vcov`` (θ̂ taken as known).
        interval : {"none", "confidence"}
            Add normal confidence limits ``lwr``, ``upr`` at ``level``.
        level : float
            Confidence level.

        Returns
        -------
        Series, or DataFrame (``fit``, ``se_fit``[, ``lwr``, ``upr``]) with
        ``se_fit`` or ``interval``.

        Raises
        ------
        DataError
            When newdata lacks a column, has missing covariates, or has a level
            of a fixed-effect factor that the fit did not see.
        ArgumentError
            For a ``re_form`` term the model does not have, or ``se_fit`` with
            random effects included.

        Examples
        --------
        >>> m = lmmlib.lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))
        >>> new = pd.DataFrame({"weeks": [1, 9], "id": [1, 1]})
        >>> m.predict(new, re_form="~0", se_fit=True).round(2)
             fit  se_fit
        0  25.57    0.59
        1  75.24    0.59
        """
        return self._predict(newdata, re, allow_new_levels, re_form, se_fit, interval, level,
                             self.pls.offset)

    # -- simulation and refitting -------------------------------------------
    def simulate(self, nsim: int = 1, rng: np.random.Generator | int | None = None,
                 use_u: bool = False) -> np.ndarray:
        """Simulate ``nsim`` responses from the fitted model (lme4's ``simulate``).

        Parameters
        ----------
        nsim : int
            Number of simulated response vectors.
        rng : Generator or int
            Random generator or seed (explicit, for reproducibility).
        use_u : bool
            ``False``: new random effects for every simulation (lme4's default);
            ``True``: keep the BLUPs and draw new residuals only.

        Returns
        -------
        ndarray of shape (nsim, nobs)
        """
        nsim = as_count(nsim, "nsim")
        cond = self.fitted.to_numpy() if as_bool(use_u, "use_u") else None
        return simulate_responses(self.design.X, self.design.blocks, self._sol, self.sigma,
                                  nsim, as_generator(rng), cond, self.pls.offset,
                                  self.design.weights)

    def refit(self, y: np.ndarray) -> LinearMixedModel:
        """Fit the same model to a new response (design reused, warm-started at θ̂).

        The model matrices, grouping structure and the θ-independent
        cross-products are reused; only those involving y are recomputed.

        Parameters
        ----------
        y : array_like
            New response, same length and order as the model's observations.

        Returns
        -------
        LinearMixedModel

        Raises
        ------
        DataError
            If ``y`` is not ``nobs`` finite numbers.
        """
        y = response_like(y, self.nobs)
        pls = self.pls.with_response(y)
        opt = fit_theta(pls, self.reml, warm_start(self.design, self.theta), quiet=True)
        return LinearMixedModel(replace(self.design, y=y), pls, opt, self.reml)

    def refit_ml(self) -> LinearMixedModel:
        """The maximum-likelihood fit of the same model (lme4's ``refitML``), warm-started.

        An ML fit is returned as it is.
        """
        if not self.reml:
            return self
        return self.with_design(self.design, reml=False, start=self.theta)

    def with_design(self, design: Design, reml: bool | None = None,
                    start: Any = None) -> LinearMixedModel:
        """Fit a modified design (e.g. with columns of X removed), warm-started at ``start``.

        Accessors that rebuild X from the formula (``predict(newdata)``) follow
        the original formula, not the modified X.
        """
        return fit_design(design, self.reml if reml is None else reml, start, quiet=True)

    # -- inference (implemented in their own modules) ------------------------
    def profile(self, **kwargs: Any) -> pd.DataFrame:
        """Profile likelihood of every parameter; see :func:`lmmlib.inference.profile.profile`.

        As in lme4, the profile is that of the ML deviance, also for REML fits.
        """
        from ..inference.profile import profile

        return profile(self, **kwargs)

    def confint(self, method: str = "profile", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Confidence intervals (``"profile"``, ``"wald"`` or ``"boot"``), lme4's row order.

        Profile intervals use the ML deviance, as lme4 does, also for REML fits.
        See :func:`lmmlib.inference.confint.confint`.
        """
        from ..inference.confint import confint

        return confint(self, method=method, level=level, **kwargs)

    def varpar_se(self, scale: str = "sd", rel_step: float = 1e-3) -> pd.DataFrame:
        """Hessian-based standard errors of the variance parameters.

        The same as :func:`lmmlib.varpar_se` (``scale="sd"`` or ``"logsd"``).
        """
        from ..inference.hessian import varpar_se

        return varpar_se(self, scale=scale, rel_step=rel_step)

    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Fixed-effects table with t-tests (lmerTest's columns).

        See :func:`lmmlib.inference.satterthwaite.coef_table`; ``ddf="Kenward-Roger"``
        (or ``"kr"``) gives :func:`lmmlib.inference.kenward_roger.kr_coef_table`.
        """
        from ..inference.kenward_roger import kr_coef_table
        from ..inference.satterthwaite import coef_table

        if isinstance(ddf, str) and ddf.lower() in ("kenward-roger", "kr"):
            return kr_coef_table(self)
        return coef_table(self, ddf=ddf)

    def anova(self, type: Any = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """F tests of the fixed terms; see :func:`lmmlib.inference.typeiii.anova_fixed`."""
        from ..inference.typeiii import anova_fixed

        return anova_fixed(self, type=type, ddf=ddf)

    def drop1(self, test: str = "F", ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Single-term deletions; see :func:`lmmlib.inference.drop1.drop1`."""
        from ..inference.drop1 import drop1

        return drop1(self, test=test, ddf=ddf)

    def hatvalues(self) -> pd.Series:
        """Leverages of the PLS fit; see :func:`lmmlib.inference.influence.hatvalues`."""
        from ..inference.influence import hatvalues

        return hatvalues(self)

    def cooks_distance(self) -> pd.Series:
        """Cook's distances; see :func:`lmmlib.inference.influence.cooks_distance`."""
        from ..inference.influence import cooks_distance

        return cooks_distance(self)

    # -- display -----------------------------------------------------------
    def summary(self) -> Any:
        """lme4-style summary (prints as text, renders as HTML in notebooks)."""
        from .display import MixedSummary

        return MixedSummary(self)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _theta(theta: Any, size: int) -> np.ndarray:
    """``theta`` as a float vector of ``size`` values (an error otherwise)."""
    arr = np.asarray(theta, dtype=float).ravel()
    if arr.size != size:
        raise ArgumentError(f"theta must have {size} value(s), got {arr.size}")
    return arr


def fit_design(design: Design, reml: bool, start: Any = None,
               quiet: bool = False) -> LinearMixedModel:
    """Fit a mixed model to a ready-made design (e.g. one with columns of X removed).

    Parameters
    ----------
    design : Design
        As built by :func:`lmmlib.engine.design.build_design`, possibly modified with
        ``dataclasses.replace(design, X=..., xnames=...)``.
    reml : bool
        REML or ML (a real boolean).
    start : ndarray, optional
        Starting θ (a warm start such as another fit's θ̂), checked as lmer's
        ``start``; bounded components are moved off zero so that the
        optimiser can move them.
    quiet : bool
        Silence convergence warnings (refits of modified designs inside a screen).

    Returns
    -------
    LinearMixedModel
        Accessors that rebuild X from the formula (``predict(newdata)``) follow
        the original formula, not the modified X.
    """
    reml = as_bool(reml, "reml")
    pls = PLS(design)
    opt = fit_theta(pls, reml, None if start is None else warm_start(design, start),
                    quiet=quiet)
    return LinearMixedModel(design, pls, opt, reml)
