"""The fitted generalised linear mixed model: accessors (lme4 names) and its summary."""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_bool, as_choice, as_count, as_level
from ..engine.differences import richardson_jacobian
from ..engine.optimize import optinfo
from ..engine.simulate import as_generator, block_draws
from ..engine.varcomp import VarPars, varcorr_frame
from ..errors import ConvergenceWarning, LmmlibWarning
from ..inference.bootstrap import bootstrap
from ..inference.confint import percent_labels, profile_intervals
from ..inference.profile import profile
from ..kinds import GeneralizedMixedFit
from ..models.accessors import DataAccessors
from ..models.criteria import InformationCriteria
from ..models.effects import RandomEffectsMixin
from ..models.readonly import cached_copy
from .summary import GlmmSummary

if TYPE_CHECKING:
    from .fit import GlmmFit

__all__ = ["GeneralizedLinearMixedModel"]


class GeneralizedLinearMixedModel(GeneralizedMixedFit, RandomEffectsMixin, InformationCriteria,
                                  DataAccessors):
    """A GLMM fitted by :func:`lmmlib.glmer`.

    Names follow lme4: ``fixef``, ``se``, ``vcov``, ``theta``, ``varcorr``,
    ``ranef()``, ``coef()``, ``fitted`` (the means μ), ``residuals`` (deviance
    residuals), ``resid(type)``, ``predict()``, ``simulate()``, ``refit()``,
    ``confint(method="wald")``, ``varpar_se()``, ``optinfo``, ``loglik``,
    ``aic``, ``bic``, ``deviance`` (−2 log L, as the deviance in lme4's summary;
    lme4's ``deviance()`` function instead returns the sum of squared deviance
    residuals), ``summary()``.
    """

    sigma = 1.0  # no scale parameter (as lme4's sigma() for these families)
    reml = False

    def __init__(self, fit: GlmmFit) -> None:
        self.fit = fit
        self.design = fit.problem.design
        self.family = fit.problem.family
        self.opt = fit.opt
        self.nagq = fit.nagq
        self._sol = fit.problem.solution(fit.mode)

    # -- parameters --------------------------------------------------------
    @property
    def formula(self) -> str:
        """The model formula as given."""
        return self.design.formula.text

    @property
    def theta(self) -> np.ndarray:
        """Relative covariance parameters (= SDs of scalar random effects), lme4's order."""
        return self.fit.mode.theta.copy()

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates β̂ (link scale)."""
        return pd.Series(self.fit.mode.beta, index=list(self.design.xnames), name="Estimate")

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.design.nobs

    @cached_property
    def _cov_full(self) -> np.ndarray:
        """2 H⁻¹ over (θ, β); NaN if the Hessian is not positive definite."""
        H = self.fit.hessian
        if np.all(np.isfinite(H)) and np.all(np.linalg.eigvalsh(H) > 0):
            return 2.0 * np.linalg.inv(H)
        return np.full(H.shape, np.nan)

    @cached_copy
    def vcov(self) -> pd.DataFrame:
        """Covariance of β̂ — the β block of 2H⁻¹, H the Hessian of the deviance in (θ, β).

        Falls back to :meth:`vcov_pirls` (with a warning) when H is not positive
        definite, as lme4 does.
        """
        nth, names = self.theta.size, list(self.design.xnames)
        if self.nagq == 0:  # lme4's nAGQ = 0 has no Hessian: the penalised IRLS factor
            return self.vcov_pirls()
        V = self._cov_full[nth:, nth:]
        if not np.all(np.isfinite(V)):
            why = ("the fit is separated (some estimates diverge), so the Hessian is not "
                   "used" if getattr(self.fit, "separation", None) is not None else
                   "the finite-difference Hessian is not positive definite")
            warnings.warn(f"{why}; vcov falls back to the penalised IRLS approximation "
                          "(theta fixed)", ConvergenceWarning, stacklevel=2)
            return self.vcov_pirls()
        return pd.DataFrame(V, index=names, columns=names)

    def vcov_pirls(self) -> pd.DataFrame:
        """(L_X L_Xᵀ)⁻¹ from the penalised IRLS at the optimum (lme4's ``use.hessian=FALSE``)."""
        LX = self.fit.problem.joint_factor(self.fit.mode)
        inv = np.linalg.inv(LX)
        names = list(self.design.xnames)
        return pd.DataFrame(inv.T @ inv, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="Std. Error")

    def varpar_se(self, scale: str = "sd") -> pd.DataFrame:
        """Standard deviations and correlations of the random effects with Hessian SEs.

        The same table as :meth:`lmmlib.LinearMixedModel.varpar_se` (without
        ``.sigma``: these families have no residual scale).  The SEs come from
        the θ block of 2H⁻¹, H the Hessian of the deviance in (θ, β), by the
        delta method (for a scalar random effect θ is its SD).  Wald intervals
        on this scale are poor near zero; prefer profile or bootstrap intervals.

        Parameters
        ----------
        scale : {"sd", "logsd"}
            SDs and correlations, or the logarithm of the SDs (delta method).

        Returns
        -------
        DataFrame
            Columns ``par`` (``.sig01``, ...), ``kind`` (sd, cor), ``estimate``,
            ``se`` and ``scale``.
        """
        scale = as_choice(scale, "scale", ("sd", "logsd"))
        vp = VarPars.of(self.design.reterms)
        theta = self.theta

        def v_of(th: np.ndarray) -> np.ndarray:
            return vp.from_theta(th, 1.0)[:-1]

        v = v_of(theta)
        J = richardson_jacobian(v_of, theta).T  # d(SDs, correlations)/dθ
        cov = J @ self._cov_full[: theta.size, : theta.size] @ J.T
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        kinds = np.array(vp.kinds[:-1])
        if scale == "logsd":
            logged = kinds != "cor"
            se = np.where(logged, se / np.where(v > 0, v, np.nan), se)
            v = np.where(logged, np.log(np.where(v > 0, v, np.nan)), v)
        return pd.DataFrame({"par": list(vp.names[:-1]), "kind": list(kinds), "estimate": v,
                             "se": se, "scale": scale})

    # -- likelihood --------------------------------------------------------
    @cached_property
    def deviance(self) -> float:
        """−2 log L at the optimum (Laplace or AGQ), including all constants."""
        p = self.fit.problem
        return p.laplace(self.fit.mode) if self.nagq <= 1 else p.agq(self.fit.mode, self.nagq)

    @property
    def objective(self) -> float:
        """The criterion minimised: :attr:`deviance`."""
        return self.deviance

    @property
    def loglik(self) -> float:
        """Approximate marginal log-likelihood.

        For ``nAGQ > 1`` this is the full log-likelihood too (comparable with the
        Laplace fit); lme4 1.1 reports it minus the saturated log-likelihood
        (lme4 issue #161), available here as :attr:`saturated_loglik`.
        """
        return -0.5 * self.deviance

    def deviance_at(self, theta: np.ndarray, beta: np.ndarray, nAGQ: int | None = None) -> float:
        """The approximate deviance −2 log L at any (θ, β), e.g. to profile by hand.

        ``nAGQ`` defaults to the fit's; nAGQ > 1 needs a single scalar random effect.
        """
        nagq = self.fit.problem.check_nagq(self.nagq if nAGQ is None else nAGQ)
        return self.fit.problem.deviance(np.asarray(theta, float), np.asarray(beta, float),
                                         nagq, u0=self.fit.mode.u)

    @property
    def saturated_loglik(self) -> float:
        """Σ log p(y | μ = y), the log-likelihood of the saturated model."""
        return self.fit.problem.saturated

    @property
    def npar(self) -> int:
        """Number of parameters: θ and β (no scale parameter)."""
        return self.theta.size + len(self.design.xnames)

    # -- variance components and random effects ----------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as ``as.data.frame(VarCorr(m))`` (no residual row)."""
        vc = varcorr_frame(self.theta, 1.0, self.design.reterms)
        return vc[vc["group"] != "Residual"].reset_index(drop=True)

    # -- fitted values, residuals and prediction -------------------------------
    @property
    def linear_predictor(self) -> pd.Series:
        """η̂ = Xβ̂ + ZΛû."""
        return pd.Series(self.fit.mode.eta, index=self.design.frame.index, name="eta")

    @property
    def fitted(self) -> pd.Series:
        """Fitted means μ̂ (response scale, as lme4's ``fitted``)."""
        mu = self.family.linkinv(self.fit.mode.eta)
        return pd.Series(mu, index=self.design.frame.index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        """Deviance residuals (lme4's default ``residuals(m)``); others by :meth:`resid`."""
        return self.resid("deviance")

    def resid(self, type: str = "deviance") -> pd.Series:
        """Residuals (lme4's ``residuals(m, type)``).

        ``"deviance"`` (the default) sign(y − μ̂)√dᵢ; ``"pearson"``
        (y − μ̂)√(w/V(μ̂)); ``"response"`` y − μ̂; ``"working"`` (y − μ̂)/μ′(η̂),
        the residual of the working response of the IRLS.

        Raises
        ------
        ArgumentError
            For another ``type``.
        """
        type = as_choice(type, "type", ("deviance", "pearson", "response", "working"))
        y, wt, eta = self.design.y, self.fit.problem.wt, self.fit.mode.eta
        mu = self.family.linkinv(eta)
        if type == "deviance":
            r = np.sign(y - mu) * np.sqrt(np.maximum(self.family.dev_resid(y, eta, wt), 0))
        elif type == "pearson":
            r = (y - mu) * np.sqrt(wt / self.family.variance(mu))
        elif type == "response":
            r = y - mu
        else:  # (y − μ) dη/dμ, as R's working residuals
            r = (y - mu) / self.family.mu_eta(eta)
        return pd.Series(r, index=self.design.frame.index, name="residuals")

    # -- refitting, optimiser record and intervals --------------------------------
    def refit(self, y: Any) -> GeneralizedLinearMixedModel:
        """Fit the same model to a new response (lme4's ``refit``).

        Same design, family, prior weights, nAGQ and control; the optimisation
        starts from (θ̂, β̂) of this fit and skips the first (θ-only) stage.

        Parameters
        ----------
        y : array_like
            New response, ``nobs`` values possible under the family (counts;
            0/1 or proportions of the weights for a binomial model).

        Raises
        ------
        DataError
            If ``y`` is not ``nobs`` finite numbers or impossible under the family.
        """
        return self.fit.refit(y)

    @property
    def optinfo(self) -> dict:
        """What the optimiser did (lme4's ``m@optinfo``), a new dict.

        Keys as :attr:`lmmlib.LinearMixedModel.optinfo` for the final joint
        optimisation in (θ, β) (``feval``, ``val``, ``conv``, ``message``...),
        plus ``stage1_feval``: the evaluations of the first stage (θ only, β
        inside PIRLS, lme4's ``nAGQ = 0``), ``None`` when it was skipped.
        """
        info = optinfo(self.opt)
        stage1 = self.fit.opt_stage1
        info["stage1_feval"] = None if stage1 is None else int(stage1.feval)
        return info

    def profile(self, **kwargs: Any) -> pd.DataFrame:
        """Profile of the deviance over each parameter (lme4's ``profile``).

        See :func:`lmmlib.inference.profile.profile` for the options and the
        result; the variance parameters are the SDs and correlations of the
        random effects (``.sig01``, ...).
        """
        return profile(self, **kwargs)

    def confint(self, method: str = "profile", level: float = 0.95, *, nsim: int = 500,
                rng: np.random.Generator | int | None = None,
                progress: bool | None = None) -> pd.DataFrame:
        """Confidence intervals for the SDs/correlations and the fixed effects.

        Parameters
        ----------
        method : {"profile", "wald", "boot"}
            Profile likelihood of the deviance (lme4's default), Wald intervals
            estimate ± z·SE, or parametric-bootstrap percentile intervals of
            ``nsim`` refits.  lme4 gives no Wald interval for the variance
            parameters (its rows are NA); here they are given from
            :meth:`varpar_se`, but they are poor near zero.
        level : float
            Confidence level.
        nsim, rng, progress
            Bootstrap replicates, seed or Generator, and progress bar
            (``method="boot"``).

        Returns
        -------
        DataFrame
            One row per parameter (``.sig01``, ..., then the fixed effects);
            columns named from ``level`` as R names them.

        Examples
        --------
        >>> rng = np.random.default_rng(1)
        >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "x": rng.normal(size=200)})
        >>> d["y"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + rng.normal(0, 0.5, 20)[d.g]))
        >>> m = lmmlib.glmer("y ~ x + (1 | g)", d, "poisson")
        >>> m.confint().round(2)
                     2.5 %  97.5 %
        .sig01        0.32    0.71
        (Intercept)   0.17    0.67
        x             0.20    0.43
        """
        method = as_choice(method, "method", ("profile", "wald", "boot"))
        level = as_level(level)
        vp = self.varpar_se()
        names = list(vp["par"]) + list(self.design.xnames)
        if method == "profile":
            prof = profile(self, level_max=max(0.99, (1 + level) / 2))
            return profile_intervals(prof, level, names)
        if method == "boot":
            est = self._boot_estimates(as_count(nsim, "nsim"), rng, progress)
            q = [(1 - level) / 2, (1 + level) / 2]
            return pd.DataFrame(est.quantile(q).T.to_numpy(), index=names,
                                columns=percent_labels(level))
        est = np.concatenate([vp["estimate"].to_numpy(), self.fixef.to_numpy()])
        se = np.concatenate([vp["se"].to_numpy(), self.se.to_numpy()])
        z = scipy.stats.norm.ppf((1 + level) / 2)
        return pd.DataFrame(np.column_stack([est - z * se, est + z * se]), index=names,
                            columns=percent_labels(level))

    def _boot_estimates(self, nsim: int, rng: Any, progress: bool | None) -> pd.DataFrame:
        """SDs/correlations and β of ``nsim`` parametric-bootstrap refits (failed: dropped)."""
        vp = VarPars.of(self.design.reterms)

        def estimates(fit: GeneralizedLinearMixedModel) -> np.ndarray:
            return np.concatenate([vp.from_theta(fit.theta, 1.0)[:-1], fit.fixef.to_numpy()])

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmmlibWarning)
            boot = bootstrap(self, estimates, nsim=nsim, rng=rng, progress=progress)
        return boot.replicates.dropna()

    def predict(self, newdata: Any = None, type: str = "link", re: bool = True,
                allow_new_levels: bool = False, *, re_form: object = None,
                se_fit: bool = False, interval: str = "none",
                level: float = 0.95) -> pd.Series | pd.DataFrame:
        """Predictions on the link (default, as lme4) or response scale.

        Parameters
        ----------
        newdata : DataFrame, optional
            Defaults to the data of the fit.
        type : {"link", "response"}
            Scale of the predictions.
        re : bool
            Include the conditional modes (``False``: population predictions).
        allow_new_levels : bool
            Levels not seen in the fit get the population prediction (``True``)
            or are an error (``False``, lme4's default); a missing grouping
            value always gives the population prediction.
        re_form : str, optional
            lme4's ``re.form``: ``"~0"`` for none of the random effects, or some
            of the model's terms (``"~ (1 | g)"``); overrides ``re``.
        se_fit, interval, level
            Standard errors and normal confidence limits of the population
            predictions, as :meth:`lmmlib.LinearMixedModel.predict`; on the
            response scale by the delta method (limits: the link-scale limits
            transformed).

        Returns
        -------
        Series, or DataFrame with ``se_fit`` or ``interval``.
        """
        type = as_choice(type, "type", ("link", "response"))
        out = self._predict(newdata, re, allow_new_levels, re_form, se_fit, interval, level,
                            self.fit.problem.offset)
        if type == "link":
            return out
        if isinstance(out, pd.Series):
            return pd.Series(self.family.linkinv(out.to_numpy()), index=out.index,
                             name="predicted")
        table = out.copy()
        table["fit"] = self.family.linkinv(out["fit"].to_numpy())
        slope = np.abs(self.family.mu_eta(out["fit"].to_numpy()))  # delta method
        table["se_fit"] = out["se_fit"].to_numpy() * slope
        for col in ("lwr", "upr"):
            if col in table:
                table[col] = self.family.linkinv(out[col].to_numpy())
        if "lwr" in table:  # a decreasing link (inverse) swaps the limits
            lo, hi = np.minimum(table.lwr, table.upr), np.maximum(table.lwr, table.upr)
            table["lwr"], table["upr"] = lo, hi
        return table

    def simulate(self, nsim: int = 1, rng: np.random.Generator | int | None = None,
                 use_u: bool = False) -> np.ndarray:
        """Simulate ``nsim`` responses (lme4's ``simulate``).

        Parameters
        ----------
        nsim : int
            Number of simulated response vectors.
        rng : Generator or int
            Random generator or seed (explicit, for reproducibility).
        use_u : bool
            ``False``: new random effects for every simulation (lme4's default);
            ``True``: keep the conditional modes, draw only the responses.

        Returns
        -------
        ndarray of shape (nsim, nobs)
            Counts (poisson) or proportions of the prior weights (binomial).
        """
        rng, nsim = as_generator(rng), as_count(nsim, "nsim")
        if as_bool(use_u, "use_u"):
            eta = np.broadcast_to(self.fit.mode.eta, (nsim, self.nobs)).copy()
        else:
            eta = np.broadcast_to(self.fit.problem.offset + self.design.X @ self.fit.mode.beta,
                                  (nsim, self.nobs)).copy()
            for block in self.design.blocks:
                eta += block_draws(block, self.theta, 1.0, nsim, rng)
        return self.family.sample(self.family.linkinv(eta), self.fit.problem.wt, rng)

    # -- display -------------------------------------------------------------
    def summary(self) -> GlmmSummary:
        """lme4-style summary (text, and HTML in notebooks)."""
        return GlmmSummary(self)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
