"""Type III F-tests of the fixed-effect terms of one mixed model, as lmerTest's ``anova(m)``.

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
``Sum Sq`` = NumDF × Mean Sq.  With treatment contrasts and no term contained in
another (main effects and covariates, ``I(x^2)`` being its own term) the
Type III contrast of a term is the selection of its columns; models with
interactions whose lower-order terms are also in the model are refused (their
Type III contrasts need lmerTest's orthogonalisation, not implemented here).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..checks import as_choice, as_instance
from ..engine.design import Design
from ..engine.names import restore_names
from ..errors import ArgumentError
from ..kinds import LinearMixedFit
from .kenward_roger import KRParts, kr_parts, kr_test
from .satterthwaite import SatterthwaiteParts, _model_parts, satterthwaite_parts

__all__ = ["FTable", "anova_type3", "contrast_table", "ddf_method", "fixed_terms",
           "marginal_contrasts", "satterthwaite_ftest", "type3_contrasts"]

COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "kr": "Kenward-Roger"}
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


def _r_label(label: str) -> str:
    """A term label as R writes it: ``I(x ** 2)`` → ``I(x^2)``."""
    return re.sub(r"\s*\*\*\s*", "^", label)


def fixed_terms(design: Design) -> dict[str, np.ndarray]:
    """Columns of the model matrix (after rank drops) of every fixed-effect term.

    Returns
    -------
    dict
        R-style term label (``"ID"``, ``"I(Date_num^2)"``, ``"a:b"``) → column
        indices in ``design.xnames``; the intercept is left out, and so are
        terms whose columns were all dropped.
    """
    spec = design.fixed_spec
    position = {name: j for j, name in enumerate(design.xnames)}
    out: dict[str, np.ndarray] = {}
    for term, idx in spec.spec.term_indices.items():
        if str(term) == "1":
            continue
        cols = [position[spec.names[i]] for i in idx if spec.names[i] in position]
        if cols:
            out[_r_label(restore_names([str(term)], spec.columns)[0])] = np.array(cols)
    return out


def _term_factors(design: Design) -> dict[str, frozenset]:
    spec = design.fixed_spec
    return {_r_label(restore_names([str(t)], spec.columns)[0]):
            frozenset(str(f) for f in t.factors)
            for t in spec.spec.term_indices if str(t) != "1"}


def containing_terms(design: Design) -> dict[str, list[str]]:
    """For every term, the terms that contain it (its variables and more)."""
    factors = _term_factors(design)
    return {a: [b for b, fb in factors.items() if fa < fb] for a, fa in factors.items()}


def type3_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Type III contrast matrix of every term (rows: the term's columns).

    Raises
    ------
    ArgumentError
        When a term is contained in another (e.g. ``a + b + a:b``).
    """
    contained = {t: c for t, c in containing_terms(design).items() if c}
    if contained:
        first = next(iter(contained))
        raise ArgumentError(
            f"Type III tests of terms contained in interactions ({first!r} in "
            f"{', '.join(map(repr, contained[first]))}) are not implemented; test the "
            "interaction itself with anova(m0, m1) of nested fits")
    p = len(design.xnames)
    eye = np.eye(p)
    return {label: eye[cols] for label, cols in fixed_terms(design).items()}


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


def f_table(design: Design, beta: np.ndarray, sigma: float, contrasts: dict[str, np.ndarray],
            method: str, parts: SatterthwaiteParts | KRParts) -> pd.DataFrame:
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
    key = as_choice(str(ddf).lower() if isinstance(ddf, str) else ddf, "ddf",
                    tuple(DDF))
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
        Kenward–Roger on an ML fit, or terms contained in interactions.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> tab = anova_type3(m)  # lmerTest's anova(m): F 25271 on 1 and 383 df
    >>> round(float(tab.loc["weeks", "F value"]), 1), int(tab.loc["weeks", "DenDF"])
    (25271.5, 383)
    """
    # (the table's body is contrast_table, below)
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    method = ddf_method(ddf)
    out = FTable(contrast_table(model, type3_contrasts(model.design), method, at))
    out.heading = [f"Type III Analysis of Variance Table with {method}'s method"]
    return out


def marginal_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Contrasts of the terms contained in no other term: the selection of their columns.

    For such a term the Type II and Type III hypotheses are the same: its
    coefficients are zero, all other terms kept (lmerTest's marginal contrasts).
    """
    contained = containing_terms(design)
    eye = np.eye(len(design.xnames))
    return {label: eye[cols] for label, cols in fixed_terms(design).items()
            if not contained.get(label)}


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
        theta, sigma = np.asarray(at[0], dtype=float), float(at[1])
        beta = model.pls.solve(theta).beta
    if method == "Satterthwaite":
        parts = (_model_parts(model) if at is None else
                 satterthwaite_parts(model.pls, theta, sigma, model.reml))
    else:
        parts = kr_parts(model.design, theta, sigma)
    return f_table(model.design, beta, sigma, contrasts, method, parts)
