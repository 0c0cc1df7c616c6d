"""Shrinkage of random intercepts: the textbook quantities behind the BLUPs.

For the random-intercept model y_ij = x_ij'β + b_i + ε_ij with
b_i ~ N(0, τ²) and ε_ij ~ N(0, σ²), the BLUP (conditional mode) given β̂ is

    b̂_i = r_i (ȳ_i − x̄_i'β̂),    r_i = τ² / (τ² + σ²/n_i),

a weighted average of the group's own mean deviation (weight r_i, the
"no pooling" estimate) and the population value 0 (complete pooling).  Small
groups and a large noise-to-signal ratio σ²/τ² shrink more (BIOS 526 M2,
slides "Shrinkage and Random Effects"; STAT 528's pulp ratio 1.312 is 1/r).

The effective degrees of freedom of the random intercepts,
tr[Z (Z'Z + σ²/τ² I)⁻¹ Z'] = Σ_i n_i / (n_i + σ²/τ²), lie between 0 (all
intercepts equal) and the number of groups (one free intercept per group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..checks import as_bool, as_instance, describe
from ..engine.formula import parse_formula
from ..engine.frame import as_frame
from ..engine.pls import z_matrix
from ..errors import ArgumentError, FormulaError
from ..models.lm import LinearModel, lm
from ..models.lmm import LinearMixedModel

__all__ = ["StratifiedFit", "effective_df", "shrinkage", "stratified_fit"]


def _check_model(model: Any) -> None:
    as_instance(model, "model", LinearMixedModel, "a mixed model fitted by lmmlib.lmer")


def _intercept_block(model: Any):
    _check_model(model)
    blocks = model.design.blocks
    if len(blocks) != 1 or blocks[0].colnames != ("(Intercept)",):
        terms = " + ".join(f"({t.expr} | {t.factor})" for t in model.design.reterms) or "none"
        raise FormulaError("shrinkage quantities need a model with a single random intercept "
                           f"(1 | group); this model's random terms: {terms}")
    return blocks[0]


def shrinkage(model: Any) -> pd.DataFrame:
    """Per-group shrinkage of a random-intercept model.

    Parameters
    ----------
    model : LinearMixedModel
        A fit with exactly one random term ``(1 | group)`` (REML or ML).

    Returns
    -------
    DataFrame
        Indexed by group level (as ``ranef``), with columns

        - ``n``: number of observations n_i;
        - ``ybar``: group mean of the response ȳ_i;
        - ``xbeta``: group mean of the fixed part, x̄_i'β̂;
        - ``raw``: ȳ_i − x̄_i'β̂, the group mean of the marginal residual
          y − Xβ̂ (the group's deviation with no pooling);
        - ``factor``: r_i = τ̂²/(τ̂² + σ̂²/n_i);
        - ``blup``: the conditional mode b̂_i (equal to r_i · raw);
        - ``ratio``: raw / blup = 1/r_i (NaN where the BLUP is 0);
        - ``condsd``: conditional standard deviation of b̂_i.

        ``attrs`` holds ``tau2``, ``sigma2``, the group factor's name and the
        response's (for :func:`lmmlib.plots.shrinkage_plot`).

    Examples
    --------
    >>> m = lmmlib.lmer("bright ~ 1 + (1|operator)", lmmlib.datasets.load("pulp"))
    >>> shrinkage(m)["ratio"].round(4).unique().tolist()  # STAT 528: 1.312117 for all
    [1.3121]
    """
    block = _intercept_block(model)
    y, X = model.design.y, model.design.X
    xbeta = X @ model.fixef.to_numpy()
    k = block.nlevels
    n = np.bincount(block.codes, minlength=k).astype(float)
    ybar = np.bincount(block.codes, weights=y, minlength=k) / n
    xbar = np.bincount(block.codes, weights=xbeta, minlength=k) / n
    cov = next(iter(model.covariances().values()))
    tau2, sigma2 = float(cov[0, 0]), model.sigma**2
    factor = tau2 / (tau2 + sigma2 / n)
    blup = model.ranef_arrays()[block.factor].iloc[:, 0].to_numpy()
    condsd = np.sqrt(model.condvar_arrays()[block.factor][:, 0, 0])
    raw = ybar - xbar
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(blup != 0, raw / blup, np.nan)
    out = pd.DataFrame({"n": n.astype(int), "ybar": ybar, "xbeta": xbar, "raw": raw,
                        "factor": factor, "blup": blup, "ratio": ratio, "condsd": condsd},
                       index=pd.Index(block.levels.astype(str), name=block.factor))
    out.attrs.update(tau2=tau2, sigma2=sigma2, group=block.factor,
                     response=model.design.formula.response)
    return out


def _z_lambda(model: Any) -> sp.csr_matrix:
    """ZΛ(θ̂) as a sparse n × Q matrix (blocks side by side, level-major columns)."""
    parts = []
    for b in model.design.blocks:
        lam = sp.kron(sp.identity(b.nlevels), sp.csr_matrix(b.lam(model.theta)))
        parts.append(z_matrix(b) @ lam)
    return sp.hstack(parts).tocsr()


def effective_df(model: Any, fixed: bool = False) -> float:
    """Effective degrees of freedom of the random effects (or of the whole fit).

    The course's definition (BIOS 526 M2, β treated as known) is
    EDF = tr[Z (Z'Z + σ²/τ² I)⁻¹ Z'], for a random intercept
    Σ_i n_i/(n_i + σ²/τ²); for the balanced pig data 48 · 9/(9 + σ²/τ²).
    In general it is computed as tr[ZΛ(Λ'Z'ZΛ + I)⁻¹Λ'Z'] = Q − tr[(Λ'Z'ZΛ + I)⁻¹]
    at θ̂, which covers any random-effects structure.

    With ``fixed=True`` the fixed effects are estimated too and the result is
    the trace of the hat matrix H of the fitted values Xβ̂ + Zb̂ (y ↦ ŷ at the
    estimated variance ratios): Hodges & Sargent's (2001) degrees of freedom
    of the whole fit, between p and p + number of random effects.

    Parameters
    ----------
    model : LinearMixedModel
    fixed : bool
        Include the fixed effects (trace of the full hat matrix).

    Returns
    -------
    float

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit or ``fixed`` is not a boolean.
    """
    _check_model(model)
    fixed = as_bool(fixed, "fixed")
    ZL = _z_lambda(model)
    Q = ZL.shape[1]
    if not fixed:
        A = (ZL.T @ ZL).toarray() + np.eye(Q)
        return float(Q - np.trace(np.linalg.inv(A)))
    X = model.design.X
    M = np.hstack([X, ZL.toarray()])
    p = X.shape[1]
    A = M.T @ M
    A[p:, p:] += np.eye(Q)
    inv = np.linalg.inv(A)
    return float(p + Q - np.trace(inv[p:, p:]))


@dataclass(frozen=True)
class StratifiedFit:
    """One intercept per group by least squares (the course's "approach 2").

    Attributes
    ----------
    model : LinearModel
        The fit of ``response ~ fixed terms + group - 1``.
    intercepts : Series
        The per-group intercepts, indexed by level (as strings).
    group : str
        The grouping column.
    """

    model: LinearModel
    intercepts: pd.Series
    group: str


def stratified_fit(formula: str, data: Any, group: str | None = None) -> StratifiedFit:
    """Fit a separate intercept for every group, the slopes being common.

    Parameters
    ----------
    formula : str
        Either a fixed-effects formula (``"weight ~ weeks"``, then ``group`` is
        required) or a random-intercept formula (``"weight ~ weeks + (1|id)"``),
        whose grouping factor is used when ``group`` is not given.
    data : DataFrame
    group : str, optional
        The grouping column; it is treated as categorical (levels sorted).

    Returns
    -------
    StratifiedFit
        Compare ``intercepts`` with the pooled ``lm`` intercept (complete
        pooling) and with ``model.coef()`` of the random-intercept fit
        (partial pooling).
    """
    if not isinstance(formula, str):
        raise ArgumentError(f"formula must be a string, got {describe(formula)}")
    if group is not None and not isinstance(group, str):
        raise ArgumentError(f"group must be a column name (a string), got {describe(group)}")
    parsed = parse_formula(formula)
    if group is None:
        if len(parsed.random) != 1 or len(parsed.random[0].factors) != 1:
            raise FormulaError(f"formula {formula!r} has no single random term (1 | g); "
                               "give group=")
        group = parsed.random[0].factors[0]
    frame = as_frame(data).copy()
    if group not in frame.columns:
        raise FormulaError(f"grouping column {group!r} not found in the data")
    if not isinstance(frame[group].dtype, pd.CategoricalDtype):
        frame[group] = pd.Categorical(frame[group])
    frame[group] = frame[group].cat.remove_unused_categories()
    model = lm(f"{parsed.response} ~ {parsed.fixed} + {group} - 1", frame)
    prefix = f"{group}["
    names = [n for n in model.design.xnames if n.startswith(prefix) and n.endswith("]")]
    intercepts = model.fixef[names]
    intercepts.index = pd.Index([n[len(prefix):-1] for n in names], name=group)
    return StratifiedFit(model, intercepts.rename("intercept"), group)
