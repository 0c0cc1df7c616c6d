"""Intraclass correlation of a random-intercept model."""

from __future__ import annotations

import pandas as pd

from ..checks import as_instance
from ..errors import LmmlibError
from ..models.lmm import LinearMixedModel

__all__ = ["icc"]


def icc(model: LinearMixedModel) -> float | pd.Series:
    """Intraclass correlation τ² / (τ² + σ²) of a random-intercept model.

    It is the correlation of two observations sharing a level of the grouping
    factor, and the share of the total variance between groups.

    Parameters
    ----------
    model : LinearMixedModel
        A fit whose random terms are all scalar intercepts ``(1 | g)``.

    Returns
    -------
    float or Series
        A float for one grouping factor; with several (crossed or nested
        intercepts), a Series with the share of each factor.

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit: for a ``glmer`` fit the residual
        variance is not σ² (it depends on the family and link), so τ²/(τ² + σ²)
        would not be its intraclass correlation.
    LmmlibError
        If a random term has slopes, for which the correlation depends on the
        covariates.
    """
    as_instance(model, "model", LinearMixedModel,
                "a linear mixed model fitted by lmmlib.lmer (glmer fits have no residual "
                "variance on the response scale)")
    terms = model.design.reterms
    if any(t.colnames != ("(Intercept)",) for t in terms):
        raise LmmlibError(
            "icc() needs a random-intercept model; with random slopes the intraclass "
            "correlation depends on the covariate values"
        )
    vc = model.varcorr
    taus = vc.loc[vc["group"] != "Residual"].set_index("group")["vcov"]
    total = taus.sum() + model.sigma**2
    shares = taus / total
    return float(shares.iloc[0]) if len(shares) == 1 else shares.rename("icc")
