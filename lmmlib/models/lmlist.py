"""``lmList``: one least-squares fit per group (lme4's ``lmList``).

``lmList("y ~ x | g", data)`` fits ``lm("y ~ x")`` separately to the rows of
every level of ``g`` (in the factor's level order).  As lme4, the fits can share
a pooled residual standard deviation s = √(Σ RSS_g / Σ df_g) on Σ df_g degrees of
freedom, which ``confint(pool=True)`` uses.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_bool, as_level
from ..engine.frame import as_frame
from ..errors import DataError, DataWarning, FormulaError
from ..inference.confint import percent_labels
from .lm import LinearModel, lm
from .update import _split_top

__all__ = ["LmList", "lmList"]


class LmList:
    """Per-group linear fits from :func:`lmList`.

    Attributes
    ----------
    fits : dict
        Group level → :class:`~lmmlib.models.lm.LinearModel`.
    formula : str
        The per-group formula (``"y ~ x"``).
    group : str
        The grouping column.
    pool : bool
        The ``pool`` given to :func:`lmList` (see :meth:`confint`).
    """

    def __init__(self, fits: dict[Any, LinearModel], formula: str, group: str,
                 pool: bool) -> None:
        self.fits, self.formula, self.group, self.pool = fits, formula, group, pool
        names: list[str] = []
        for f in fits.values():
            names += [n for n in f.fixef.index if n not in names]
        self._names = names

    def __len__(self) -> int:
        return len(self.fits)

    def __getitem__(self, level: Any) -> LinearModel:
        return self.fits[level]

    def coef(self) -> pd.DataFrame:
        """Coefficients, one row per group (lme4's ``coef(lmList)``; NaN where dropped)."""
        rows = {g: f.fixef.reindex(self._names) for g, f in self.fits.items()}
        out = pd.DataFrame(rows).T
        out.index.name = self.group
        return out

    @property
    def pooled_sd(self) -> tuple[float, int]:
        """(s, df): the pooled residual SD and its degrees of freedom (lme4's ``pooledSD``)."""
        rss = sum(f.sigma**2 * f.df_resid for f in self.fits.values())
        df = sum(f.df_resid for f in self.fits.values())
        return float(np.sqrt(rss / df)), int(df)

    def confint(self, level: float = 0.95, pool: bool = False) -> pd.DataFrame:
        """t intervals of every group's coefficients (lme4's ``confint(lmList)``).

        ``pool=True``: β̂ ± s·√[(X'X)⁻¹]_jj · t_{Σdf} with the pooled SD s
        (lme4's ``confint(l, pool = TRUE)``); ``pool=False`` (default): each
        group's own ``confint``.  The default is lme4's in effect: its
        ``confint`` looks the list's ``pool`` up as ``object$pool``, which is
        NULL for an ``lmList4``, so it gives per-group intervals.

        Returns
        -------
        DataFrame
            Rows: groups; columns: (coefficient, bound) pairs.
        """
        level = as_level(level)
        pool = as_bool(pool, "pool")
        labels = percent_labels(level)
        cols = pd.MultiIndex.from_product([self._names, labels])
        out = pd.DataFrame(np.nan, index=pd.Index(list(self.fits), name=self.group),
                           columns=cols)
        if pool:
            s, df = self.pooled_sd
            t = scipy.stats.t.ppf((1 + level) / 2, df)
        for g, f in self.fits.items():
            if pool:
                half = t * s * f.se / f.sigma
                ci = pd.DataFrame({labels[0]: f.fixef - half, labels[1]: f.fixef + half})
            else:
                ci = f.confint(level=level)
            for name in ci.index:
                out.loc[g, (name, labels[0])] = ci.loc[name, labels[0]]
                out.loc[g, (name, labels[1])] = ci.loc[name, labels[1]]
        return out

    def __repr__(self) -> str:
        return f"lmList of {self.formula!r} by {self.group!r}\n{self.coef()}"


def lmList(formula: str, data: Any, pool: bool = True) -> LmList:  # noqa: N802 (lme4's name)
    """Separate least-squares fits per group (lme4's ``lmList``).

    Parameters
    ----------
    formula : str
        ``"y ~ x | g"``: the model ``y ~ x`` fitted within every level of ``g``.
    data : DataFrame
        The data.
    pool : bool
        Recorded as lme4's ``pool`` (default True); :meth:`LmList.confint`
        takes its own ``pool``, as lme4's does in effect.

    Returns
    -------
    LmList

    Raises
    ------
    FormulaError
        When the formula has no ``| group`` part.
    DataError
        When the grouping column is missing, or a group has no more complete
        rows than coefficients (the message names the group).

    Examples
    --------
    >>> fits = lmList("weight ~ weeks | id", lmmlib.datasets.load("pig"))
    >>> fits.coef().shape
    (48, 2)
    """
    pool = as_bool(pool, "pool")
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    parts = _split_top(formula, "|")
    if len(parts) != 2 or not parts[1][1]:
        raise FormulaError(f"lmList needs a formula 'y ~ x | group', got {formula!r}")
    model, group = parts[0][1], parts[1][1].strip("` ")
    frame = as_frame(data)
    if group not in frame.columns:
        raise DataError(f"lmList: the grouping column {group!r} is not in the data")
    key = frame[group]
    if not isinstance(key.dtype, pd.CategoricalDtype):
        key = pd.Categorical(key, categories=sorted(key.dropna().unique()))
    key = pd.Series(key, index=frame.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        p = len(lm(model, frame).fixef)
    fits: dict[Any, LinearModel] = {}
    for level in key.cat.categories:
        rows = frame.loc[key == level]
        if len(rows) == 0:
            continue
        if len(rows) <= p:
            raise DataError(f"lmList: group {level!r} of {group!r} has {len(rows)} row(s) "
                            f"for {p} coefficients: no residual degrees of freedom")
        try:
            fits[level] = lm(model, rows)
        except DataError as exc:
            raise DataError(f"lmList: group {level!r} of {group!r}: {exc}") from exc
    return LmList(fits, model, group, pool)
