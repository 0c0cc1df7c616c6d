"""Log-likelihood and information criteria from a fit's −2 log L.

Every fitted model class (``lm``, ``lmer``, ``glmer``) exposes ``objective``
(−2 log L, the REML criterion for REML fits), ``npar`` and ``nobs``; the
criteria follow from these as lme4 and R define them (for REML fits lme4 also
reports AIC and BIC on the REML criterion).
"""

from __future__ import annotations

import numpy as np

__all__ = ["InformationCriteria"]


class InformationCriteria:
    """``loglik``, ``aic``, ``bic`` and ``df_resid`` from ``objective``, ``npar``, ``nobs``."""

    @property
    def loglik(self) -> float:
        """Maximised log-likelihood (restricted log-likelihood for REML fits)."""
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        """Akaike's criterion: −2 log L + 2 npar."""
        return self.objective + 2 * self.npar

    @property
    def bic(self) -> float:
        """Schwarz's criterion: −2 log L + log(n) npar."""
        return self.objective + np.log(self.nobs) * self.npar

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom, n minus the number of parameters."""
        return self.nobs - self.npar
