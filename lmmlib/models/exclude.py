"""Fits with ``na_action="exclude"`` (R's ``na.exclude``): per-row results padded with NaN.

The fit itself is that of ``na_action="omit"``; only ``fitted``, ``residuals``
(and so ``resid()``) and ``predict()`` without new data are padded back to the
rows of the data (after ``subset``), NaN where a row was left out for a
missing value, as R's ``naresid`` and ``napredict`` do.  Everything else
(simulations, summaries, refits, the model frame and matrices) works on the
rows of the fit, as in R.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .lmm import LinearMixedModel

__all__ = ["ExcludedLinearMixedModel", "ExcludedRows"]


class ExcludedRows:
    """Mixin padding a fit's per-row results; the class defines :meth:`_plain`.

    ``_plain()`` returns the same fit as its unpadded class, which supplies the
    values (the mixin goes first in the bases).
    """

    design: Any

    def _plain(self) -> Any:  # pragma: no cover - defined by the classes
        raise NotImplementedError

    @property
    def fitted(self) -> pd.Series:
        """Fitted values, NaN on the rows left out for missing values."""
        return self.design.pad(self._plain().fitted.to_numpy(), "fitted")

    @property
    def residuals(self) -> pd.Series:
        """Response minus fitted values, NaN on the rows left out for missing values."""
        return self.design.pad(self._plain().residuals.to_numpy(), "residuals")

    def predict(self, newdata: Any = None, *args: Any, **kwargs: Any) -> pd.Series:
        """Predictions; without ``newdata`` padded to the data's rows as ``fitted``."""
        out = self._plain().predict(newdata, *args, **kwargs)
        if newdata is not None:
            return out
        if isinstance(out, pd.DataFrame):
            return pd.DataFrame({c: self.design.pad(out[c].to_numpy(), c) for c in out.columns})
        return self.design.pad(out.to_numpy(), "predicted")

    def simulate(self, *args: Any, **kwargs: Any) -> Any:
        """Simulated responses for the rows of the fit (not padded)."""
        return self._plain().simulate(*args, **kwargs)

    def summary(self) -> Any:
        """The summary of the fit (residual quantiles over the rows of the fit)."""
        return self._plain().summary()


class ExcludedLinearMixedModel(ExcludedRows, LinearMixedModel):
    """A :class:`~lmmlib.models.lmm.LinearMixedModel` fitted with ``na_action="exclude"``."""

    def _plain(self) -> LinearMixedModel:
        plain = self.__dict__.get("_plain_fit")
        if plain is None:
            plain = LinearMixedModel(self.design, self.pls, self.opt, self.reml, self.data_name)
            self.__dict__["_plain_fit"] = plain
        return plain

    def refit(self, y: Any) -> ExcludedLinearMixedModel:
        """The same model fitted to a new response (one value per row of the fit)."""
        m = self._plain().refit(y)
        return ExcludedLinearMixedModel(m.design, m.pls, m.opt, m.reml, m.data_name)
