"""``lm``: ordinary least squares with the accessors of a mixed model.

It is the baseline of the course (pooled regression, or one intercept per
group as the "stratified" fit), and shares names with
:class:`~lmmlib.models.lmm.LinearMixedModel` so that likelihood-ratio tests and
AIC tables can mix both kinds of fit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.stats

from ..checks import as_bool, as_choice, as_count, as_level
from ..engine.design import Design, build_design, fixed_rows, newdata_frame
from ..engine.fitting import response_like
from ..engine.simulate import as_generator
from ..engine.threads import blas_threads
from ..errors import DataError, FormulaError
from ..inference.confint import percent_labels
from ..kinds import LinearFit
from .accessors import DataAccessors, gaussian_resid
from .criteria import InformationCriteria
from .readonly import cached_copy

__all__ = ["LinearModel", "lm"]


class LinearModel(LinearFit, InformationCriteria, DataAccessors):
    """A linear model fitted by least squares (R's ``lm``).

    Accessors as the mixed models': ``fixef``, ``vcov``, ``se``, ``fitted``,
    ``residuals``, ``resid()``, ``sigma``, ``loglik``, ``aic``, ``bic``, ``nobs``,
    ``theta`` (empty), ``predict()``, ``simulate()``, ``refit()``, ``confint()``,
    ``model_frame``, ``model_matrix``, ``response``.
    """

    reml = False

    def __init__(self, design: Design) -> None:
        self.design = design
        q, r = np.linalg.qr(design.X)
        self._r = r
        self._beta = scipy.linalg.solve_triangular(r, q.T @ design.y)
        self._rss = float(np.sum((design.y - design.X @ self._beta) ** 2))
        if self.nobs <= self.design.X.shape[1]:
            raise DataError("no residual degrees of freedom")

    @property
    def formula(self) -> str:
        """The model formula as given."""
        return self.design.formula.text

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom n − p."""
        return self.nobs - len(self.design.xnames)

    @property
    def theta(self) -> np.ndarray:
        """No covariance parameters: an empty array (for parity with the mixed models)."""
        return np.empty(0)

    @property
    def fixef(self) -> pd.Series:
        """Least-squares coefficients."""
        return pd.Series(self._beta, index=list(self.design.xnames), name="Estimate")

    @property
    def sigma(self) -> float:
        """Residual standard error √(RSS/(n − p))."""
        return float(np.sqrt(self._rss / self.df_resid))

    @cached_copy
    def vcov(self) -> pd.DataFrame:
        """σ² (X'X)⁻¹."""
        rinv = np.linalg.inv(self._r)
        names = list(self.design.xnames)
        return pd.DataFrame(self.sigma**2 * rinv @ rinv.T, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the coefficients."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index,
                         name="Std. Error")

    @property
    def npar(self) -> int:
        """Coefficients plus σ."""
        return len(self.design.xnames) + 1

    @property
    def objective(self) -> float:
        """Deviance −2 log L at the ML estimate of σ."""
        n = self.nobs
        return float(n * (1 + np.log(2 * np.pi * self._rss / n)))

    @property
    def fitted(self) -> pd.Series:
        """Fitted values Xβ̂ (with ``na_action="exclude"``: NaN on the rows left out)."""
        return self.design.pad(self.design.X @ self._beta, "fitted")

    @property
    def residuals(self) -> pd.Series:
        """Response minus fitted values (with ``na_action="exclude"``: NaN on the rows left out)."""
        return self.design.pad(self.design.y - self.design.X @ self._beta, "residuals")

    def resid(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals of a ``type`` (R's ``residuals(m, type)``); all are y − fitted here.

        ``"response"``, ``"pearson"``, ``"deviance"`` and ``"working"`` agree for
        least squares without weights; ``scaled=True`` divides by σ̂.
        """
        return gaussian_resid(self, type, scaled)

    def predict(self, newdata: Any = None) -> pd.Series:
        """Predictions Xβ̂ for new data (default: the fitted values, padded as they are).

        Raises
        ------
        DataError
            When newdata lacks a column, has missing values in one, or has a
            factor level that the fit did not see.
        """
        if newdata is None:
            return self.fitted.copy()
        frame = newdata_frame(self.design, newdata)
        return pd.Series(fixed_rows(self.design, frame) @ self._beta, index=frame.index,
                         name="predicted")

    def confint(self, method: str = "wald", level: float = 0.95) -> pd.DataFrame:
        """Intervals β̂ ± t_{n−p} SE (R's ``confint.lm``); only ``method="wald"``.

        Columns named from ``level`` as R names them.
        """
        as_choice(method, "method", ("wald",))
        level = as_level(level)
        t = scipy.stats.t.ppf((1 + level) / 2, self.df_resid)
        est, se = self.fixef.to_numpy(), self.se.to_numpy()
        return pd.DataFrame(np.column_stack([est - t * se, est + t * se]),
                            index=self.fixef.index, columns=percent_labels(level))

    def refit(self, y: Any) -> LinearModel:
        """The same least-squares fit to a new response (same rows and X)."""
        return LinearModel(replace(self.design, y=response_like(y, self.nobs)))

    def refit_ml(self) -> LinearModel:
        """The fit itself: least squares is the maximum-likelihood fit."""
        return self

    def with_design(self, design: Design, reml: bool | None = None,
                    start: Any = None) -> LinearModel:
        """Least squares on a modified design (``reml`` and ``start`` do not apply)."""
        return LinearModel(design)

    def simulate(self, nsim: int = 1, rng: Any = None, use_u: bool = False) -> np.ndarray:
        """``nsim`` responses Xβ̂ + σ̂ε, σ̂ the residual standard error (R's ``simulate.lm``).

        ``rng`` is a seed or a ``numpy.random.Generator``; ``use_u`` is accepted
        for parity with the mixed models and changes nothing (no random effects).

        Returns
        -------
        ndarray of shape (nsim, nobs)
        """
        nsim, rng = as_count(nsim, "nsim"), as_generator(rng)
        as_bool(use_u, "use_u")
        mean = self.design.X @ self._beta
        return mean + self.sigma * rng.standard_normal((nsim, self.nobs))

    def summary(self) -> Any:
        """R-style coefficient table."""
        from .display import LinearSummary

        return LinearSummary(self)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def lm(formula: str, data: Any, *, subset: Any = None, na_action: str = "omit") -> LinearModel:
    """Fit a linear model by ordinary least squares.

    Parameters
    ----------
    formula : str
        A formula without random terms, e.g. ``"weight ~ weeks"``; categorical
        columns get treatment contrasts, ordered ones polynomial contrasts (R's
        ``contr.poly``).  R's ``log``, ``sqrt``, ``poly(x, k)``, ``scale(x)``,
        ``I()`` and ``y ~ .`` work as in R (see :func:`lmmlib.lmer`).
    data : DataFrame
        The data.
    subset : array_like, Series or str, optional
        The rows to fit, as R's ``subset`` (see :func:`lmmlib.lmer`).
    na_action : {"omit", "fail", "exclude"}
        Rows with missing values, as R's ``na.omit``, ``na.fail`` and
        ``na.exclude`` (see :func:`lmmlib.lmer`).

    Returns
    -------
    LinearModel

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"y": [1.0, 2.1, None, 3.9, 5.2], "x": [1, 2, 3, 4, 5]})
    >>> m = lm("y ~ x", d, na_action="exclude")
    >>> m.fitted.round(2).tolist()
    [1.01, 2.03, nan, 4.07, 5.09]
    """
    with blas_threads(1):
        design = build_design(formula, data, require_random=False, subset=subset,
                              na_action=na_action)
        if design.formula.is_mixed:
            raise DataError(f"formula {formula!r} has random terms; use lmmlib.lmer")
        if design.offset is not None:
            raise FormulaError(f"lm does not take offset() terms ({formula!r}): subtract the "
                               "offset from the response, or use lmmlib.lmer")
        return LinearModel(design)
