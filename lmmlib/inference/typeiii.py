"""F-tests of the fixed-effect terms of one mixed model, as lmerTest's ``anova(m)``.

Type III by default (:func:`anova_type3`), Types II and I with
:func:`anova_fixed`; the contrasts are lmerTest's
(:mod:`lmmlib.inference.contrasts`).

Every term of the fixed part is tested by the F statistic of its contrast
matrix L (one row per model-matrix column of the term):

* **Satterthwaite** (lmerTest's default): L V̂ L' = P D P' is decomposed, the
  q = rank(L) rotated contrasts P'L are independent t-tests with Satterthwaite
  df ν_m (:mod:`lmmlib.inference.satterthwaite`), F = Σ t_m²/q, and the
  denominator df come from matching the first moment of Σ t_m², that is
  2E/(E − q) with E = Σ ν_m/(ν_m − 2) (2 if any ν_m ≤ 2; the mean of the ν_m
  when they are equal), lmerTest's ``get_Fstat_ddf``.
* **Kenward–Roger**: the Wald statistic with the adjusted covariance Φ_A,
  scaled and with the df of :mod:`lmmlib.inference.kenward_roger`; only for
  REML fits (as lmerTest).

As in lmerTest, ``Mean Sq`` = F σ̂² (the unscaled F for Kenward–Roger) and
``Sum Sq`` = NumDF × Mean Sq.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..checks import as_choice, as_instance
from ..errors import ArgumentError
from ..kinds import LinearMixedFit
from .contrasts import (
    fixed_terms,
    marginal_contrasts,
    type1_contrasts,
    type2_contrasts,
    type3_contrasts,
)
from .kenward_roger import KRParts, kr_parts, kr_test
from .satterthwaite import SatterthwaiteParts, _model_parts, satterthwaite_parts

__all__ = ["FTable", "anova_fixed", "anova_type3", "contrast_table", "ddf_method", "fixed_terms",
           "marginal_contrasts", "satterthwaite_ftest", "type3_contrasts"]

COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "kr": "Kenward-Roger"}
TYPES = {"3": 3, "iii": 3, "2": 2, "ii": 2, "1": 1, "i": 1}
ROMAN = {1: "I", 2: "II", 3: "III"}
#: lmerTest's eps: eigenvalues of L V L' below eps × the largest are zero.
_RANK_EPS = np.sqrt(np.finfo(float).eps)


class FTable(pd.DataFrame):
    """An F-test table that prints its heading as lmerTest does."""

    _metadata = ["heading"]

    @property
    def _constructor(self) -> type:
        return FTable

    def __str__(self) -> str:
        body = pd.DataFrame(self).to_string(na_rep="", float_format=lambda v: f"{v:.6g}")
        return "\n".join([*getattr(self, "heading", []), body])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(h) for h in getattr(self, "heading", []))
        table = pd.DataFrame(self).to_html(na_rep="", float_format=lambda v: f"{v:.6g}")
        return f"<p>{head}</p>{table}"


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of a sum of q independent t² statistics."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - nu.size)


def satterthwaite_ftest(parts: SatterthwaiteParts, beta: np.ndarray,
                        L: np.ndarray) -> tuple[float, int, float]:
    """F statistic, NumDF and DenDF of L β = 0 with Satterthwaite's df (lmerTest's contestMD)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 1:
        var = float(L[0] @ parts.vcov_beta @ L[0])
        return float((L[0] @ beta) ** 2 / var), 1, float(parts.df(L)[0])
    d, P = np.linalg.eigh(L @ parts.vcov_beta @ L.T)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    pos = d > max(_RANK_EPS * d[0], 0.0)
    q = int(pos.sum())
    PtL = (P.T @ L)[:q]
    t2 = (PtL @ beta) ** 2 / d[:q]
    nu = parts.df(PtL)
    return float(np.sum(t2) / q), q, _fstat_ddf(nu)


def _row(F: float, ndf: int, ddf: float, sigma: float, scale: float = 1.0) -> list[float]:
    ms = F * sigma**2
    F_scaled = F * scale
    return [ms * ndf, ms, float(ndf), ddf, F_scaled, float(stats.f.sf(F_scaled, ndf, ddf))]


def f_table(beta: np.ndarray, sigma: float, contrasts: dict[str, np.ndarray], method: str,
            parts: SatterthwaiteParts | KRParts) -> pd.DataFrame:
    """The F table of the given contrasts with the given pieces (at one (θ, σ))."""
    rows = {}
    for label, L in contrasts.items():
        if method == "Satterthwaite":
            F, ndf, ddf = satterthwaite_ftest(parts, beta, L)
            rows[label] = _row(F, ndf, ddf, sigma)
        else:
            res = kr_test(parts, L, beta)
            rows[label] = _row(res["F_unscaled"], res["ndf"], res["ddf"], sigma,
                               res["scaling"])
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    table["NumDF"] = table["NumDF"].astype(int)
    return table


def ddf_method(ddf: Any) -> str:
    """The method's name as lmerTest spells it, from any accepted spelling of ``ddf``."""
    key = as_choice(ddf, "ddf", tuple(DDF))
    return DDF[key]


def anova_type3(model: Any, ddf: str = "Satterthwaite", at: tuple | None = None) -> FTable:
    """Type III F-tests of a mixed model's fixed terms (lmerTest's ``anova(m)``).

    Parameters
    ----------
    model : LinearMixedModel
        A fit of :func:`lmmlib.lmer`.
    ddf : {"Satterthwaite", "Kenward-Roger"}
        Denominator df (case-insensitive; ``"KR"`` too).  Kenward–Roger needs a
        REML fit and forms n × q dense products (course-size data).
    at : (theta, sigma), optional
        Evaluate everything at these variance parameters instead of the fit's
        (e.g. another program's estimates, to compare the methods at one point).

    Returns
    -------
    FTable
        One row per term: ``Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)``.

    Raises
    ------
    ArgumentError
        For a model that is not an ``lmer`` fit, an unknown ``ddf``,
        Kenward–Roger on an ML fit, or terms contained in interactions with
        a factor not coded by treatment contrasts.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> tab = anova_type3(m)  # lmerTest's anova(m): F 25271 on 1 and 383 df
    >>> round(float(tab.loc["weeks", "F value"]), 1), round(float(tab.loc["weeks", "DenDF"]))
    (25271.5, 383)
    """
    return anova_fixed(model, 3, ddf, at)


def anova_fixed(model: Any, type: Any = 3, ddf: str = "Satterthwaite",
                at: tuple | None = None) -> FTable:
    """F-tests of a mixed model's fixed terms of Type I, II or III (lmerTest's ``anova(m, type)``).

    Parameters
    ----------
    model : LinearMixedModel
        A fit of :func:`lmmlib.lmer`.
    type : {3, 2, 1, "III", "II", "I"}
        Type III (lmerTest's default), II (each term after all terms that do
        not contain it) or I (sequential, in the order of the model matrix).
    ddf, at
        As in :func:`anova_type3`.

    Returns
    -------
    FTable

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> anova_fixed(m, type=1).heading[0]
    "Type I Analysis of Variance Table with Satterthwaite's method"
    """
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    kind = as_choice(str(type) if isinstance(type, int) and not isinstance(type, bool)
                     else type, "type", tuple(TYPES))
    number = TYPES[kind]
    method = ddf_method(ddf)
    contrasts = {1: type1_contrasts, 2: type2_contrasts, 3: type3_contrasts}[number]
    out = FTable(contrast_table(model, contrasts(model.design), method, at))
    out.heading = [f"Type {ROMAN[number]} Analysis of Variance Table with {method}'s method"]
    return out


def _point(at: Any, ntheta: int) -> tuple[np.ndarray, float]:
    """``at`` as (θ, σ): ``ntheta`` finite values and a positive σ."""
    try:
        theta, sigma = at
        theta = np.asarray(theta, dtype=float).ravel()
        sigma = float(sigma)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"at must be a pair (theta, sigma), got {at!r}") from exc
    if theta.size != ntheta or not np.isfinite(theta).all() or not sigma > 0:
        raise ArgumentError(f"at must be (theta, sigma) with {ntheta} finite theta value(s) "
                            f"and sigma > 0, got {at!r}")
    return theta, sigma


def contrast_table(model: Any, contrasts: dict[str, np.ndarray], ddf: str,
                   at: tuple | None = None) -> pd.DataFrame:
    """F tests of the given contrasts of an ``lmer`` fit (rows in the dict's order).

    ``ddf`` is ``"Satterthwaite"`` or ``"Kenward-Roger"`` (any spelling
    :func:`anova_type3` accepts); ``at`` as there.
    """
    method = ddf_method(ddf)
    if method == "Kenward-Roger" and not model.reml:
        raise ArgumentError("Kenward-Roger's method is only available for REML fits "
                            "(refit with reml=True)")
    if at is None:
        theta, sigma, beta = model.theta, model.sigma, model.fixef.to_numpy()
    else:
        theta, sigma = _point(at, model.design.ntheta)
        beta = model.pls.solve(theta).beta
    if method == "Satterthwaite":
        parts = (_model_parts(model) if at is None else
                 satterthwaite_parts(model.pls, theta, sigma, model.reml))
    else:
        parts = kr_parts(model.design, theta, sigma)
    return f_table(beta, sigma, contrasts, method, parts)
