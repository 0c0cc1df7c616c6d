"""``glmer_nb``: a negative binomial GLMM with its shape θ estimated, as lme4's ``glmer.nb``.

lme4 fits a Poisson GLMM, takes MASS's ``theta.ml`` of its fitted means as a
first θ, then minimises −2 log L over log θ within ±3 of that start, each value
of θ being a full GLMM fit (refitted from the previous one).  The same is done
here, with a tighter tolerance on log θ (1e-7 instead of lme4's 5e-5), so the
θ reported is the maximum-likelihood one to well within its standard error.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import digamma, polygamma

from ..errors import LmmlibWarning
from .family import NegativeBinomial
from .fit import glmer
from .model import GeneralizedLinearMixedModel

__all__ = ["glmer_nb", "theta_ml"]

LOG_THETA_TOL = 1e-7


def theta_ml(y: np.ndarray, mu: np.ndarray, wt: np.ndarray | None = None,
             maxit: int = 25) -> float:
    """Maximum-likelihood θ of negative binomial counts with known means (MASS's ``theta.ml``).

    Newton's method on the score in θ from the moment estimate n / Σ (y/μ − 1)².

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> mu = np.full(4000, 3.0)
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    >>> round(theta_ml(y, mu), 1)
    2.0
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    wt = np.ones_like(y) if wt is None else np.asarray(wt, float)
    theta = float(np.sum(wt) / np.sum(wt * (y / mu - 1.0) ** 2))
    for _ in range(maxit):
        score = np.sum(wt * (digamma(theta + y) - digamma(theta) + np.log(theta) + 1.0
                             - np.log(theta + mu) - (y + theta) / (mu + theta)))
        info = np.sum(wt * (-polygamma(1, theta + y) + polygamma(1, theta) - 1.0 / theta
                            + 2.0 / (mu + theta) - (y + theta) / (mu + theta) ** 2))
        step = score / info
        theta = max(theta + step, theta / 10.0)
        if abs(step) < 1e-10 * theta:
            break
    return float(theta)


def glmer_nb(formula: str, data: Any, weights: Any = None, offset: Any = None,
             **kwargs: Any) -> GeneralizedLinearMixedModel:
    """Fit a negative binomial GLMM and estimate its shape θ (lme4's ``glmer.nb``).

    Parameters
    ----------
    formula, data, weights, offset
        As for :func:`lmmlib.glmer` (the response are counts).
    **kwargs
        Further arguments of :func:`lmmlib.glmer` (``control``, ``subset``...).

    Returns
    -------
    GeneralizedLinearMixedModel
        With ``family`` the negative binomial at θ̂ (``model.family.theta``,
        lme4's ``getME(m, "glmer.nb.theta")``).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(25), 8), "x": rng.normal(size=200)})
    >>> mu = np.exp(0.8 + 0.4 * d.x + rng.normal(0, 0.4, 25)[d.g])
    >>> d["y"] = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    >>> m = lmmlib.glmer_nb("y ~ x + (1 | g)", d)
    >>> round(m.family.theta, 2), m.fixef.round(2).tolist()
    (2.07, [0.8, 0.28])
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmmlibWarning)
        pois = glmer(formula, data, "poisson", weights=weights, offset=offset, **kwargs)
    wt = pois.fit.problem.wt
    start = theta_ml(pois.design.y, pois.fitted.to_numpy(), wt)
    last = [pois]

    def deviance(log_theta: float) -> float:
        prev = last[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LmmlibWarning)
            fit = glmer(formula, data, NegativeBinomial(np.exp(log_theta)), weights=weights,
                        offset=offset, start={"theta": prev.theta, "fixef": prev.fixef},
                        **kwargs)
        last[0] = fit
        return fit.deviance

    res = minimize_scalar(deviance, bounds=(np.log(start) - 3.0, np.log(start) + 3.0),
                          method="bounded", options={"xatol": LOG_THETA_TOL})
    family = NegativeBinomial(np.exp(res.x))
    warm = glmer(formula, data, family, weights=weights, offset=offset,
                 start={"theta": last[0].theta, "fixef": last[0].fixef}, **kwargs)
    # the search refits from the previous θ's optimum; a fit from the default start at
    # the chosen θ guards against one of those warm starts having stopped elsewhere
    cold = glmer(formula, data, family, weights=weights, offset=offset, **kwargs)
    return cold if cold.deviance < warm.deviance else warm
