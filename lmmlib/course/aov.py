"""Fixed-effects analysis of variance and the one-way moment estimator.

:func:`aov_table` is R's ``summary(aov(formula, data))``: sequential (type I)
sums of squares, terms in formula order.  With ``contrasts="sum"`` (the
STAT 528 choice, ``options(contrasts = c("contr.sum", "contr.poly"))``) the
coefficients, kept in ``table.attrs["coef"]``, are those R prints: the
intercept is the mean of the level means (in balanced data) and
``operator1, operator2, ...`` are the effects of all levels but the last.  The
sums of squares themselves do not depend on the coding.

:func:`moment_estimator` is the ANOVA (method-of-moments) estimator of the
between-group variance of a one-way random-effects model, and
:func:`group_effects` R's ``model.tables(aov(...))`` effects.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
from formulaic import model_matrix

from ..checks import describe
from ..engine.frame import as_frame
from ..errors import ArgumentError, DataError, FormulaError

__all__ = ["aov_table", "group_effects", "moment_estimator"]

COLUMNS = ["Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)"]


def _is_categorical(col: pd.Series) -> bool:
    return isinstance(col.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col))


def _categorical_in(rhs: str, frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if _is_categorical(frame[c])
            and re.search(rf"(?<![\w.]){re.escape(str(c))}(?![\w.(])", rhs)]


def _sum_coded(rhs: str, names: list[str]) -> str:
    """Wrap every categorical variable of the right-hand side in ``C(., contr.sum)``."""
    for name in names:
        rhs = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w.(])", f"C({name}, contr.sum)", rhs)
    return rhs


def _levels(col: pd.Series) -> list[str]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(v) for v in col.cat.categories]
    return sorted(str(v) for v in col.dropna().unique())


def _r_name(name: str, levels: dict[str, list[str]]) -> str:
    """formulaic's column/term name → R's (``C(g, contr.sum)[S.b]`` → ``g2``)."""
    if name == "Intercept":
        return "(Intercept)"

    def level_number(hit: re.Match) -> str:
        var, lev = hit.group(1), hit.group(2)
        return f"{var}{levels[var].index(lev) + 1}" if lev in levels.get(var, []) else hit.group(0)

    name = re.sub(r"C\((\w[\w.]*), contr\.sum\)\[S\.(.+?)\]", level_number, name)
    return re.sub(r"C\((\w[\w.]*), contr\.sum\)", r"\1", name)


def _rank_rss(X: np.ndarray, y: np.ndarray) -> tuple[int, float, np.ndarray]:
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    return int(rank), float(np.sum((y - X @ beta) ** 2)), beta


class AovTable(pd.DataFrame):
    """An ANOVA table that shows R's blanks (not NaN) for the residual F and p."""

    @property
    def _constructor(self) -> type:
        return AovTable

    def __str__(self) -> str:
        return pd.DataFrame(self).to_string(na_rep="", float_format=lambda v: f"{v:.6g}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return pd.DataFrame(self).to_html(na_rep="", float_format=lambda v: f"{v:.6g}")


def aov_table(formula: str, data: Any, contrasts: str = "sum") -> pd.DataFrame:
    """ANOVA table of a linear model with sequential sums of squares (R's ``aov``).

    Parameters
    ----------
    formula : str
        ``"response ~ terms"``, e.g. ``"bright ~ operator"`` or ``"y ~ a * b"``;
        non-numeric (or Categorical) columns are factors.
    data : DataFrame
        The data; rows with missing values in the used columns are dropped.
    contrasts : {"sum", "treatment"}
        Coding of the factors for the coefficients (the table is the same).

    Returns
    -------
    DataFrame
        Rows: terms in formula order then ``Residuals``; columns ``Df, Sum Sq,
        Mean Sq, F value, Pr(>F)``.  Terms that add no column beyond the
        earlier ones (aliased) are left out, as R does.
        ``attrs["coef"]`` holds the least-squares coefficients with R's names.

    Examples
    --------
    >>> aov_table("bright ~ operator", lmmlib.datasets.load("pulp"))
               Df  Sum Sq  Mean Sq  F value    Pr(>F)
    operator    3    1.34 0.446667  4.20392 0.0226089
    Residuals  16     1.7  0.10625
    """
    if not isinstance(contrasts, str) or contrasts not in ("sum", "treatment"):
        raise DataError(f"contrasts must be 'sum' or 'treatment', got {describe(contrasts)}")
    if not isinstance(formula, str):
        raise ArgumentError(f"formula must be a string such as 'y ~ g', got {describe(formula)}")
    if formula.count("~") != 1:
        raise FormulaError(f"formula {formula!r} must have the form 'response ~ terms'")
    frame = as_frame(data)
    lhs, rhs = (part.strip() for part in formula.split("~"))
    factors = _categorical_in(rhs, frame)
    if contrasts == "sum" and "C(" not in rhs:
        rhs = _sum_coded(rhs, factors)
    try:
        mm = model_matrix(f"{lhs} ~ {rhs}", frame, na_action="drop", context={})
    except Exception as exc:
        raise FormulaError(f"cannot build the model matrix of {formula!r}: {exc}") from exc
    y = np.asarray(mm.lhs, dtype=float).ravel()
    X = np.asarray(mm.rhs, dtype=float)
    levels = {f: _levels(frame[f]) for f in factors}
    rows, cols = [], []
    rank0, rss0 = 0, float(np.sum(y**2))
    for term, idx in mm.rhs.model_spec.term_indices.items():
        cols.extend(idx)
        rank, rss, _ = _rank_rss(X[:, cols], y)
        if str(term) != "1" and rank > rank0:
            rows.append((_r_name(str(term), levels), rank - rank0, rss0 - rss))
        rank0, rss0 = rank, rss
    df_res = len(y) - rank0
    if df_res <= 0:
        raise DataError(f"no residual degrees of freedom in {formula!r}")
    table = pd.DataFrame(rows + [("Residuals", df_res, rss0)], columns=["term", *COLUMNS[:2]])
    table = table.set_index("term").rename_axis(None)
    table["Mean Sq"] = table["Sum Sq"] / table["Df"]
    mse = table["Mean Sq"].iloc[-1]
    table["F value"] = np.append(table["Mean Sq"].iloc[:-1] / mse, np.nan)
    table["Pr(>F)"] = np.append(scipy.stats.f.sf(table["F value"].iloc[:-1],
                                                  table["Df"].iloc[:-1], df_res), np.nan)
    _, _, beta = _rank_rss(X, y)
    table = AovTable(table)
    table.attrs["coef"] = pd.Series(beta, index=[_r_name(c, levels) for c in mm.rhs.columns],
                                    name="coef")
    return table


def _groups(data: Any, response: str, group: str) -> pd.DataFrame:
    frame = as_frame(data)
    for name, col in (("response", response), ("group", group)):
        if not isinstance(col, str):
            raise ArgumentError(f"{name} must be a column name (a string), got {describe(col)}")
        if col not in frame.columns:
            raise DataError(f"column {col!r} not found in the data")
    frame = frame[[response, group]].dropna()
    stats = frame.groupby(group, observed=True)[response].agg(["size", "mean"])
    if len(stats) < 2:
        raise DataError(f"group {group!r} needs at least 2 levels, has {len(stats)}")
    return stats, frame


def group_effects(data: Any, response: str, group: str) -> pd.Series:
    """Estimated level effects ȳ_i − ȳ of a one-way layout (R's ``model.tables``).

    Parameters
    ----------
    data : DataFrame
    response, group : str
        Column names.

    Returns
    -------
    Series
        Indexed by level.  For balanced data these are the sum-contrast
        effects α̂_i (pulp: −0.16, −0.34, 0.22, 0.28).
    """
    stats, frame = _groups(data, response, group)
    grand = frame[response].mean()
    return (stats["mean"] - grand).rename("effect")


def moment_estimator(data: Any, response: str, group: str) -> pd.Series:
    """Method-of-moments (ANOVA) estimates of a one-way random-effects model.

    y_ij = μ + α_i + ε_ij, α_i ~ N(0, τ²), ε_ij ~ N(0, σ²).  Since
    E(MSE) = σ² and E(MSA) = σ² + n₀τ², the estimators are σ̂² = MSE and
    τ̂² = (MSA − MSE)/n₀, with n₀ = (N − Σn_i²/N)/(a − 1), which is the common
    group size n for balanced data.  τ̂² can be negative (it is reported as
    computed; REML would give 0).  For balanced data with τ̂² > 0 it equals
    the REML estimate.

    Parameters
    ----------
    data : DataFrame
    response, group : str
        Column names.

    Returns
    -------
    Series
        ``a`` (levels), ``N``, ``n0``, ``MSA``, ``MSE``, ``F``, ``tau2``,
        ``sigma2`` (= MSE) and ``balanced`` (1.0 or 0.0).

    Examples
    --------
    >>> pulp = lmmlib.datasets.load("pulp")
    >>> round(float(moment_estimator(pulp, "bright", "operator")["tau2"]), 6)
    0.068083
    """
    stats, frame = _groups(data, response, group)
    n_i, means = stats["size"].to_numpy(float), stats["mean"].to_numpy()
    a, N = len(n_i), n_i.sum()
    if N <= a:
        raise DataError(f"no within-group degrees of freedom: {int(N)} rows in {a} groups")
    y = frame[response].to_numpy(float)
    grand = y.mean()
    ssa = float(np.sum(n_i * (means - grand) ** 2))
    within = frame[response] - frame.groupby(group, observed=True)[response].transform("mean")
    sse = float(np.sum(within.to_numpy(float) ** 2))
    msa, mse = ssa / (a - 1), sse / (N - a)
    n0 = (N - np.sum(n_i**2) / N) / (a - 1)
    return pd.Series({"a": float(a), "N": float(N), "n0": n0, "MSA": msa, "MSE": mse,
                      "F": msa / mse, "tau2": (msa - mse) / n0, "sigma2": mse,
                      "balanced": float(np.all(n_i == n_i[0]))}, name=group)
