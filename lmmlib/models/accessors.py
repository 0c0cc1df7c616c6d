"""The data of a fit, as copies: ``model_frame``, ``model_matrix``, ``response``.

Shared by the three fitted-model classes (``lm``, ``lmer``, ``glmer``), which all
carry a :class:`~lmmlib.engine.design.Design`; R's ``model.frame``,
``model.matrix`` and ``model.response``.  Every access returns a new copy, so
changing it cannot change the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import as_bool, as_choice

__all__ = ["DataAccessors", "RESIDUAL_TYPES", "gaussian_resid"]

#: Residual types of ``resid(type=)``, as lme4's ``residuals(m, type=)``.
RESIDUAL_TYPES = ("response", "pearson", "deviance", "working")


class DataAccessors:
    """``model_frame``, ``model_matrix`` and ``response`` of a fit with a ``design``."""

    @property
    def model_frame(self) -> pd.DataFrame:
        """The rows and columns used in the fit (R's ``model.frame``), a copy."""
        return self.design.frame.copy()

    @property
    def model_matrix(self) -> np.ndarray:
        """The fixed-effects model matrix X (R's ``model.matrix``), a copy.

        Its columns are named by ``fixef.index``.
        """
        return self.design.X.copy()

    @property
    def response(self) -> np.ndarray:
        """The response vector y of the fit (R's ``model.response``), a copy."""
        return self.design.y.copy()


def gaussian_resid(model, type: str = "response", scaled: bool = False) -> pd.Series:
    """Residuals of a Gaussian fit (``lm`` or ``lmer``): lme4's ``residuals(m, type, scaled)``.

    The response and working residuals are y − fitted; the Pearson and deviance
    residuals are √wᵢ (y − fitted) with prior weights wᵢ (the same without
    weights); ``scaled=True`` divides them by σ̂.
    """
    type = as_choice(type, "type", RESIDUAL_TYPES)
    r = model.residuals
    weights = getattr(model.design, "weights", None)
    if weights is not None and type in ("pearson", "deviance"):
        r = r * model.design.pad(np.sqrt(weights)).to_numpy()
    return r / model.sigma if as_bool(scaled, "scaled") else r
