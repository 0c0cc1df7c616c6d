"""Response distributions of generalised linear mixed models (canonical links only).

A family supplies what the penalised IRLS and the Laplace approximation need,
written in terms of the linear predictor η so that log(0) never appears:

- the inverse link μ(η) and the variance function V(μ) (for a canonical link
  the IRLS working weights are ``wt · V(μ)``, and Newton's method on u equals
  Fisher scoring);
- the deviance residuals, whose sum is −2 × (log-likelihood − saturated
  log-likelihood);
- the saturated log-likelihood Σ wt log p(y | μ = y), the constant that turns
  the deviance into the full −2 log-likelihood that lme4 reports (with the
  log y! and log C(n, k) terms, as R's ``family()$aic``).

For the binomial family the response is the proportion of successes and the
prior weights the numbers of trials, as in R's ``glm(y/n ~ ..., weights = n)``.

Numerical safeguards, as R's ``binomial()`` and ``poisson()`` families: the
inverse link keeps μ within ``MU_EPS`` (DBL_EPSILON) of 0 and 1, so that the
IRLS weights wt·V(μ) never underflow to 0 and η(μ) stays finite; for the log
link η is capped at ``ETA_MAX`` before exponentiating, so that the weights
never overflow.  Both clamps act only where ``|η| > 36``, far from any fitted
value of a model whose estimates are finite.  The deviance residuals use η
itself (``logaddexp`` for the binomial) and may be ``inf`` for an absurd η
(an overflowing exp(η)), which the callers treat as a failed step.

Separation is detected in :mod:`lmmlib.glmm.separation`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

import numpy as np
import scipy.stats
from scipy.special import expit, gammaln, logit, xlogy

from ..errors import DataError, DataWarning, LmmlibError
from .links import LINKS

__all__ = ["Binomial", "Family", "FamilyError", "Gamma", "NegativeBinomial", "Poisson",
           "binomial", "gamma", "get_family", "negative_binomial", "poisson"]

MU_EPS = np.finfo(float).eps  # R's clamp of binomial()$linkinv and poisson()$linkinv
ETA_MAX = 300.0  # log link: exp(η) beyond this would make wt·μ·z² overflow in the factor
MAX_DETA = 10.0  # largest change of any η in one (P)IRLS step (longer steps are shortened)
MAX_HALVINGS = 30


class FamilyError(LmmlibError, ValueError):
    """An unknown or unsupported response family."""


class Family(ABC):
    """A response distribution with its link (canonical unless ``canonical`` is False)."""

    name: str = ""
    link: str = ""
    canonical: bool = True
    has_dispersion: bool = False  # a scale in the likelihood (Gamma), estimated from the deviance

    @abstractmethod
    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """Linear predictor η(μ)."""

    @abstractmethod
    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """Mean μ(η)."""

    @abstractmethod
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function V(μ) (= dμ/dη for the canonical link)."""

    @abstractmethod
    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Squared deviance residuals, wt × 2 (log p(y|y) − log p(y|μ(η)))."""

    @abstractmethod
    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ log p(y | μ = y), weighted as the log-likelihood."""

    @abstractmethod
    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Starting means, as R's ``family()$initialize``."""

    @abstractmethod
    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Raise :class:`DataError` if the response is impossible for the family."""

    @abstractmethod
    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw responses with means ``mu`` (proportions for the binomial)."""

    @abstractmethod
    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """+1 / −1 where η → +∞ / −∞ fits y exactly (y at the top / bottom of its range), else 0."""

    def numerically_boundary(self, mu: np.ndarray) -> np.ndarray:
        """Fitted means within 10·eps of a boundary of their range (glm.fit's test)."""
        return mu < 10.0 * MU_EPS

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη (= V(μ) for the canonical link)."""
        return self.variance(self.linkinv(eta))

    def irls(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray):
        """μ, the IRLS working weights and the weighted score at η (Fisher scoring).

        Working weights w = wt (dμ/dη)² / V(μ) and score wt (y − μ)(dμ/dη) / V(μ),
        so that the working response is z = η + score / w; for the canonical
        link these are wt V(μ) and wt (y − μ) (and Fisher scoring is Newton's
        method), as R's glm.fit and lme4's PIRLS compute them.
        """
        mu = self.linkinv(eta)
        if self.canonical:
            return mu, wt * self.variance(mu), wt * (y - mu)
        d, v = self.mu_eta(eta), self.variance(mu)
        return mu, wt * d * d / v, wt * (y - mu) * d / v

    def m2loglik(self, devsum: float, saturated: float, y: np.ndarray, eta: np.ndarray,
                 wt: np.ndarray) -> float:
        """−2 log p(y | η) from the deviance sum (R's ``family()$aic`` without 2·rank)."""
        return devsum - 2.0 * saturated

    def deviance_function(self, y: np.ndarray, wt: np.ndarray):
        """η ↦ Σ deviance residuals for fixed data (what penalised IRLS evaluates most)."""
        return lambda eta: float(self.dev_resid(y, eta, wt).sum())

    def loglik(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> float:
        """Full conditional log-likelihood Σ log p(y | μ(η))."""
        return self.saturated_loglik(y, wt) - 0.5 * float(self.dev_resid(y, eta, wt).sum())

    def __repr__(self) -> str:
        return f"{self.name}({self.link})"


class Poisson(Family):
    """Poisson counts with the log link."""

    name, link = "poisson", "log"

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η = log μ (μ floored at ``MU_EPS``)."""
        return np.log(np.maximum(mu, MU_EPS))

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = exp(η), η capped at ``ETA_MAX`` and μ floored at ``MU_EPS`` (as R's pmax)."""
        return np.maximum(np.exp(np.minimum(eta, ETA_MAX)), MU_EPS)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ."""
        return mu

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """2 wt (y log(y/μ) − (y − μ)); ``inf`` where exp(η) overflows."""
        with np.errstate(over="ignore", invalid="ignore"):
            return 2.0 * wt * (xlogy(y, y) - y * eta - y + np.exp(eta))

    def deviance_function(self, y: np.ndarray, wt: np.ndarray):
        """η ↦ Σ 2 wt (y log y − y η − y + e^η), y log y computed once.

        The same operations in the same order as :meth:`dev_resid` (the same
        rounding), so that the small changes the penalised IRLS compares are
        not lost to cancellation.
        """
        ylogy = xlogy(y, y)

        def devsum(eta: np.ndarray) -> float:
            with np.errstate(over="ignore", invalid="ignore"):
                return float((2.0 * wt * (ylogy - y * eta - y + np.exp(eta))).sum())

        return devsum

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ wt (y log y − y − log y!)."""
        return float(np.sum(wt * (xlogy(y, y) - y - gammaln(y + 1.0))))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """y + 0.1."""
        return y + 0.1

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Counts must be non-negative; non-integers only warn (as R)."""
        if np.any(y < 0):
            raise DataError(f"response {response!r} has negative values: "
                            "not possible for the poisson family")
        if np.any(np.abs(y - np.round(y)) > 1e-8):
            warnings.warn(f"response {response!r} has non-integer values for the poisson "
                          "family", DataWarning, stacklevel=4)

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Poisson draws."""
        return rng.poisson(mu).astype(float)

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """−1 for zero counts (μ → 0 fits them), 0 for the others."""
        return np.where(y == 0, -1.0, 0.0)


class Binomial(Family):
    """Proportions of successes out of ``wt`` trials; logit (default), probit or cloglog link.

    Parameters
    ----------
    link : {"logit", "probit", "cloglog"}
        The link, as R's ``binomial(link = ...)``.
    """

    name = "binomial"

    def __init__(self, link: str = "logit") -> None:
        if link not in ("logit", "probit", "cloglog"):
            raise FamilyError(f"binomial link must be 'logit', 'probit' or 'cloglog', got {link!r}")
        self.link, self.canonical = link, link == "logit"
        self._link = LINKS.get(link)

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η(μ), μ kept within ``MU_EPS`` of 0 and 1 (logit: log(μ / (1 − μ)))."""
        mu = np.clip(mu, MU_EPS, 1.0 - MU_EPS)
        return logit(mu) if self.canonical else self._link.linkfun(mu)

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ(η), kept within ``MU_EPS`` of 0 and 1 (R's binomial clamp)."""
        if self.canonical:
            return np.clip(expit(eta), MU_EPS, 1.0 - MU_EPS)
        return np.clip(self._link.linkinv(eta), MU_EPS, 1.0 - MU_EPS)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη as R's link."""
        return super().mu_eta(eta) if self.canonical else self._link.mu_eta(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ(1 − μ): at least about ``MU_EPS`` for the μ of :meth:`linkinv`."""
        return mu * (1.0 - mu)

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """2 wt (y log(y/μ) + (1 − y) log((1 − y)/(1 − μ)))."""
        ent = xlogy(y, y) + xlogy(1.0 - y, 1.0 - y)
        if self.canonical:
            return 2.0 * wt * (ent - y * eta + np.logaddexp(0.0, eta))
        mu = self.linkinv(eta)
        return 2.0 * wt * (ent - xlogy(y, mu) - xlogy(1.0 - y, 1.0 - mu))

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ log C(n, k) + Σ wt (y log y + (1 − y) log(1 − y)), k = round(n y)."""
        n = np.round(wt)
        k = np.round(wt * y)
        choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        ent = xlogy(y, y) + xlogy(1.0 - y, 1.0 - y)
        return float(np.sum(choose + wt * ent))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """(wt y + 0.5) / (wt + 1)."""
        return (wt * y + 0.5) / (wt + 1.0)

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Proportions in [0, 1]; warn when wt·y is not a whole number of successes."""
        if np.any((y < 0) | (y > 1)):
            raise DataError(
                f"response {response!r} must be 0/1 or a proportion in [0, 1] for the "
                "binomial family (give the numbers of trials as weights=)")
        if np.any(np.abs(wt * y - np.round(wt * y)) > 1e-6):
            warnings.warn(f"non-integer numbers of successes: {response!r} x weights is not "
                          "a whole number", DataWarning, stacklevel=4)

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Binomial draws out of ``wt`` trials, returned as proportions."""
        n = np.round(wt).astype(np.int64)
        return rng.binomial(n, mu) / np.maximum(n, 1)

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """+1 where all trials succeed, −1 where none does, 0 for proportions in (0, 1)."""
        return np.where(y == 1, 1.0, np.where(y == 0, -1.0, 0.0))

    def numerically_boundary(self, mu: np.ndarray) -> np.ndarray:
        """Fitted probabilities within 10·eps of 0 or 1 (glm.fit's test)."""
        return (mu < 10.0 * MU_EPS) | (mu > 1.0 - 10.0 * MU_EPS)


class Gamma(Family):
    """Positive responses with variance ∝ μ²; inverse (R's default) or log link.

    As lme4's ``glmer(family = Gamma)``, the conditional −2 log-likelihood is
    R's ``Gamma()$aic`` with the dispersion estimated by the mean deviance
    (Σ deviance residuals / Σ wt), plus 2.
    """

    name, canonical, has_dispersion = "Gamma", False, True

    def __init__(self, link: str = "inverse") -> None:
        if link not in ("inverse", "log"):
            raise FamilyError(f"Gamma link must be 'inverse' or 'log', got {link!r}")
        self.link, self._link = link, LINKS[link]

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η(μ)."""
        return self._link.linkfun(mu)

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ(η)."""
        return self._link.linkinv(eta)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη."""
        return self._link.mu_eta(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ²."""
        return mu * mu

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """−2 wt (log(y/μ) − (y − μ)/μ); ``inf`` where μ is not positive."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mu = self.linkinv(eta)
            out = -2.0 * wt * (np.log(y / mu) - (y - mu) / mu)
        return np.where(mu > 0, out, np.inf)

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Not used: the dispersion enters the likelihood (see :meth:`m2loglik`)."""
        return 0.0

    def m2loglik(self, devsum: float, saturated: float, y: np.ndarray, eta: np.ndarray,
                 wt: np.ndarray) -> float:
        """R's ``Gamma()$aic``: −2 Σ wt log dgamma(y; 1/φ, μφ) + 2, φ = devsum / Σ wt."""
        disp = devsum / float(np.sum(wt))
        mu = self.linkinv(eta)
        logpdf = scipy.stats.gamma.logpdf(y, a=1.0 / disp, scale=mu * disp)
        return float(-2.0 * np.sum(wt * logpdf) + 2.0)

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """y."""
        return y.copy()

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Responses must be positive."""
        if np.any(y <= 0):
            raise DataError(f"response {response!r} has values <= 0: not possible for the "
                            "Gamma family")

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Not available: the dispersion is not a parameter of the family object."""
        raise FamilyError("simulating from a Gamma GLMM is not available")

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """No response is at a boundary of a continuous positive range."""
        return np.zeros_like(y)


class NegativeBinomial(Family):
    """Counts with variance μ + μ²/θ for a known θ (MASS's ``negative.binomial``), log link.

    Parameters
    ----------
    theta : float
        The shape θ > 0 (the Poisson limit is θ → ∞); :func:`lmmlib.glmer_nb`
        estimates it.
    """

    name, link, canonical = "negative binomial", "log", False

    def __init__(self, theta: float) -> None:
        theta = float(theta)
        if not (np.isfinite(theta) and theta > 0):
            raise FamilyError(f"negative binomial theta must be a positive number, got {theta}")
        self.theta, self._link = theta, LINKS["log"]

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η = log μ."""
        return np.log(np.maximum(mu, MU_EPS))

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = exp(η), η capped at ``ETA_MAX`` and μ floored at ``MU_EPS``."""
        return np.maximum(np.exp(np.minimum(eta, ETA_MAX)), MU_EPS)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη = μ."""
        return self.linkinv(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ + μ²/θ."""
        return mu + mu * mu / self.theta

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """2 wt (y log(y/μ) − (y + θ) log((y + θ)/(μ + θ)))."""
        th = self.theta
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(eta)
            return 2.0 * wt * (xlogy(y, y) - y * eta - (y + th) * (np.log(y + th)
                                                                 - np.log(mu + th)))

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ wt log NB(y | μ = y, θ)."""
        th = self.theta
        ll = (gammaln(y + th) - gammaln(th) - gammaln(y + 1.0) + th * np.log(th / (th + y))
              + xlogy(y, y / (th + y)))
        return float(np.sum(wt * ll))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """y + 1/6 where y = 0 (R's negative.binomial initialize)."""
        return y + (y == 0) / 6.0

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Counts must be non-negative."""
        if np.any(y < 0):
            raise DataError(f"response {response!r} has negative values: not possible for the "
                            "negative binomial family")

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Negative binomial draws with mean μ and shape θ."""
        return rng.negative_binomial(self.theta, self.theta / (self.theta + mu)).astype(float)

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """−1 for zero counts (μ → 0 fits them), 0 for the others."""
        return np.where(y == 0, -1.0, 0.0)

    def __repr__(self) -> str:
        return f"Negative Binomial({self.theta:.4g})(log)"


def binomial(link: str = "logit") -> Binomial:
    """The binomial family with a link, as R's ``binomial(link = ...)``.

    Examples
    --------
    >>> binomial("probit")
    binomial(probit)
    """
    return Binomial(link)


def poisson(link: str = "log") -> Poisson:
    """The Poisson family (log link), as R's ``poisson()``."""
    if link != "log":
        raise FamilyError(f"poisson link must be 'log', got {link!r}")
    return Poisson()


def gamma(link: str = "inverse") -> Gamma:
    """The Gamma family, as R's ``Gamma(link = ...)`` (inverse or log link)."""
    return Gamma(link)


def negative_binomial(theta: float) -> NegativeBinomial:
    """The negative binomial family for a known θ, as MASS's ``negative.binomial(theta)``."""
    return NegativeBinomial(theta)


_FAMILIES = {"poisson": Poisson, "binomial": Binomial, "gamma": Gamma}


def get_family(family: str | Family) -> Family:
    """The family named ``family`` ("poisson", "binomial", "Gamma"), or ``family`` itself.

    A name gets the family's default link (log, logit, inverse); pass a family
    object for another one, e.g. :func:`binomial` ``("probit")``.

    Raises
    ------
    FamilyError
        For any other name, e.g. ``"gaussian"`` (use :func:`lmmlib.lmer`).
    """
    if isinstance(family, Family):
        return family
    key = str(family).strip().lower() if isinstance(family, str) else None
    if key in _FAMILIES:
        return _FAMILIES[key]()
    hint = " (for a Gaussian response use lmmlib.lmer)" if key in ("gaussian", "normal") else ""
    raise FamilyError(f"unknown family {family!r}: glmer supports 'poisson', 'binomial' and "
                      f"'Gamma' (other links: lmmlib.binomial('probit'), lmmlib.gamma('log'); "
                      f"negative binomial: lmmlib.glmer_nb){hint}")
