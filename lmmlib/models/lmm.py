"""Stage 5: the fitted linear mixed model and its accessors (lme4 names)."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..checks import as_bool, as_count
from ..engine.design import Design, fixed_rows, newdata_frame
from ..engine.fitting import fit_theta, response_like, warm_start
from ..engine.optimize import OptSummary
from ..engine.pls import PLS, PLSSolution
from ..engine.simulate import as_generator, simulate_responses
from ..engine.varcomp import varcorr_frame
from ..errors import DataError
from ..kinds import LinearMixedFit
from .criteria import InformationCriteria
from .effects import RandomEffectsMixin
from .readonly import cached_copy

__all__ = ["LinearMixedModel"]

#: Fits with σ below this fraction of the response's SD are checked for an exact fit.
SUSPECT_SIGMA = 1e-3
#: Scale of Λ that makes the penalty negligible (its share of r² is ~1/FREE_SCALE²).
FREE_SCALE = 1e6
#: Least-squares residual below this share of the total sum of squares: an exact fit.
EXACT_FIT_TOL = 1e-10


class LinearMixedModel(LinearMixedFit, RandomEffectsMixin, InformationCriteria):
    """A linear mixed model fitted by :func:`lmmlib.lmer`.

    The object is read-only; refits return new objects.  Names follow lme4:
    ``fixef``, ``vcov``, ``theta``, ``sigma``, ``varcorr``, ``ranef()``,
    ``coef()``, ``fitted``, ``residuals``, ``predict()``, ``loglik``, ``aic``,
    ``bic``, ``summary()``.
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
        y = self.design.y
        spread = float(np.std(y))
        if self.sigma > SUSPECT_SIGMA * spread:
            return
        free = self.pls.solve(self.design.theta0() * FREE_SCALE)
        if free.r2 > EXACT_FIT_TOL * float(np.sum((y - y.mean()) ** 2)):
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

    # -- variance components and random effects ---------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as ``as.data.frame(VarCorr(m))``."""
        return varcorr_frame(self._sol.theta, self.sigma, self.design.reterms)

    # -- fitted values and prediction --------------------------------------
    @cached_copy
    def fitted(self) -> pd.Series:
        """Fitted values X β̂ + Z b̂."""
        mu = self.design.X @ self._sol.beta + self._zb(self.design.frame, known=True)
        return pd.Series(mu, index=self.design.frame.index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        """Response minus fitted values."""
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.fitted.index,
                         name="residuals")

    def predict(self, newdata: Any = None, re: bool = True,
                allow_new_levels: bool = False) -> pd.Series:
        """Predictions for new data.

        Parameters
        ----------
        newdata : DataFrame, optional
            Defaults to the data used in the fit.
        re : bool
            Include the BLUPs (``re.form = NULL`` in lme4); ``False`` gives the
            population predictions X β̂.
        allow_new_levels : bool
            Levels of a grouping factor not seen in the fit get the population
            prediction (``True``) or are an error (``False``, lme4's default).
            A missing grouping value always gives the population prediction.

        Returns
        -------
        Series

        Raises
        ------
        DataError
            When newdata lacks a column, has missing covariates, or has a level
            of a fixed-effect factor that the fit did not see.
        """
        re = as_bool(re, "re")
        if newdata is None:
            return self.fitted.copy() if re else pd.Series(
                self.design.X @ self._sol.beta, index=self.design.frame.index)
        frame = newdata_frame(self.design, newdata)
        eta = fixed_rows(self.design, frame) @ self._sol.beta
        if re:
            eta = eta + self._zb(frame, known=False, allow_new_levels=allow_new_levels)
        return pd.Series(eta, index=frame.index, name="predicted")

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
                                  nsim, as_generator(rng), cond)

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
        reml = self.reml if reml is None else as_bool(reml, "reml")
        pls = PLS(design)
        opt = fit_theta(pls, reml, None if start is None else warm_start(design, start),
                        quiet=True)
        return LinearMixedModel(design, pls, opt, reml)

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

    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Fixed-effects table with t-tests (lmerTest's columns).

        See :func:`lmmlib.inference.satterthwaite.coef_table`.
        """
        from ..inference.satterthwaite import coef_table

        return coef_table(self, ddf=ddf)

    # -- display -----------------------------------------------------------
    def summary(self) -> Any:
        """lme4-style summary (prints as text, renders as HTML in notebooks)."""
        from .display import MixedSummary

        return MixedSummary(self)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
