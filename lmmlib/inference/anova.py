"""Likelihood-ratio tables between nested fits, as lme4's ``anova(m0, m1)``.

``anova`` orders the models by their number of parameters and tests each one
against the one above it: Chisq = deviance(smaller) − deviance(larger) on
Df = npar(larger) − npar(smaller) degrees of freedom.  Fits by REML are first
refitted by maximum likelihood (REML criteria of models with different fixed
effects are not comparable), as lme4 does with the message "refitting
model(s) with ML (instead of REML)".  :func:`lmmlib.lm` and
:func:`lmmlib.lmer` fits can be mixed (both expose ``objective``, ``npar``...).

When the larger model adds variance components, the null value lies on the
boundary of the parameter space and the χ² p-value is conservative (too
large): see :func:`chisq_mixture_pvalue` (Self & Liang, 1987), the exact
restricted LRT and the parametric bootstrap.
"""

from __future__ import annotations

import html
import inspect
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_bool, as_float, as_instance, describe
from ..errors import ArgumentError, DataError, LmmlibWarning
from ..kinds import FittedModel, LinearFit, LinearMixedFit

__all__ = [
    "AnovaTable",
    "BoundaryTestWarning",
    "RefitMLWarning",
    "aic_table",
    "anova",
    "as_ml",
    "check_nested",
    "chisq_mixture_pvalue",
    "drop_level_screen",
    "ml_fit",
]

COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
REFIT_NOTE = "refitting model(s) with ML (instead of REML)"
#: What anova and aic_table compare, and what they say when given something else.
FITS = FittedModel
FIT_KINDS = "a fitted model (lmmlib.lm, lmmlib.lmer or lmmlib.glmer)"
_LMFITS = (LinearFit, LinearMixedFit)
_LMKINDS = "a fit of lmmlib.lm or lmmlib.lmer"


class RefitMLWarning(LmmlibWarning):
    """REML fits were refitted by maximum likelihood before comparing them.

    This is informational (lme4 prints it as a message); silence it with
    ``warnings.simplefilter("ignore", lmmlib.inference.anova.RefitMLWarning)``.
    """


class BoundaryTestWarning(LmmlibWarning):
    """A likelihood-ratio test of variance components uses the naive χ² reference."""


class AnovaTable(pd.DataFrame):
    """A model-comparison table that prints its heading and notes as lme4 does.

    Attributes
    ----------
    heading : list of str
        ``"name: formula"`` for every model, in table order.
    notes : list of str
        Messages about the comparison (ML refits, boundary tests).
    """

    _metadata = ["heading", "notes"]

    @property
    def _constructor(self) -> type:
        return AnovaTable

    def __str__(self) -> str:
        lines = ["Models:", *getattr(self, "heading", [])]
        body = pd.DataFrame(self).to_string(na_rep="", float_format=lambda v: f"{v:.6g}")
        lines.append(body)
        lines.extend(f"Note: {n}" for n in getattr(self, "notes", []))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(h) for h in getattr(self, "heading", []))
        notes = "".join(f"<p><em>Note:</em> {html.escape(n)}</p>"
                        for n in getattr(self, "notes", []))
        table = pd.DataFrame(self).to_html(na_rep="", float_format=lambda v: f"{v:.6g}")
        return f"<p>Models:<br>{head}</p>{table}{notes}"


def ml_fit(model: Any) -> Any:
    """The maximum-likelihood version of a fit (warm-started at its θ̂).

    ML fits and :class:`~lmmlib.models.lm.LinearModel` fits are returned unchanged.
    """
    as_instance(model, "model", FITS, FIT_KINDS)
    if not model.reml:
        return model
    return model.refit_ml()


def as_ml(model: Any, role: str) -> Any:
    """``model`` itself, or its ML refit (with a warning) if it was fitted by REML."""
    if not model.reml:
        return model
    warnings.warn(f"the {role} model {model.formula!r} was fitted by REML; likelihood-ratio "
                  "tests compare ML fits, so it is refitted with reml=False", LmmlibWarning,
                  stacklevel=3)
    return ml_fit(model)


def check_nested(null: Any, alt: Any) -> int:
    """Degrees of freedom of ``null`` within ``alt``, after checking they share the response."""
    if null.nobs != alt.nobs or not np.array_equal(null.design.y, alt.design.y):
        raise DataError(f"null model {null.formula!r} and alternative {alt.formula!r} must be "
                        "fitted to the same response and rows")
    df = alt.npar - null.npar
    if df <= 0:
        raise DataError(f"the alternative {alt.formula!r} must have more parameters than the "
                        f"null {null.formula!r} ({alt.npar} vs {null.npar})")
    return df


def chisq_mixture_pvalue(stat: float, df: int) -> float:
    """p-value of a 50:50 mixture of χ²_{df−1} and χ²_{df} (Self & Liang, 1987).

    The asymptotic null distribution of the LRT when the larger model adds one
    variance (and ``df − 1`` covariances with the existing random effects);
    χ²₀ is a point mass at zero.  For a single variance (df = 1) the p-value
    is half the naive χ²₁ one.

    Parameters
    ----------
    stat : float
        Observed likelihood-ratio statistic (≥ 0).
    df : int
        Degrees of freedom of the larger component (≥ 1).

    Returns
    -------
    float

    Examples
    --------
    >>> round(chisq_mixture_pvalue(2.568371, 1), 4)  # pulp, STAT 528
    0.0545
    """
    if isinstance(df, (bool, np.bool_)) or not isinstance(df, (int, np.integer)) or df < 1:
        raise DataError(f"df of the chi-square mixture must be an integer >= 1, got "
                        f"{describe(df)}")
    stat = max(as_float(stat, "stat"), 0.0)
    low = float(stat <= 0) if df == 1 else scipy.stats.chi2.sf(stat, df - 1)
    return float(0.5 * low + 0.5 * scipy.stats.chi2.sf(stat, df))


def _check_fits(fits: dict[str, Any], where: list[str], caller: str) -> None:
    """Every value of ``fits`` is a fitted model; ``where`` names each one's position."""
    for m, pos in zip(fits.values(), where, strict=True):
        if isinstance(m, (list, tuple)) and m and all(isinstance(x, FITS) for x in m):
            raise ArgumentError(f"{caller}: {pos} is a {type(m).__name__} of models; pass "
                                f"them as separate arguments, {caller}(m1, m2, ...), or as "
                                "a dict name -> model")
        if not isinstance(m, FITS):
            raise ArgumentError(f"{caller}: {pos} is {describe(m)}, not {FIT_KINDS}")


def _caller_names(models: tuple, frame: Any) -> list[str] | None:
    """The caller's variable names of the models (as lme4 names rows by the call), or None.

    A model is named when exactly one local (or, failing that, global) variable of
    the calling frame holds it; otherwise, or when names would repeat, None.
    """
    if frame is None:
        return None
    labels = []
    for m in models:
        found = None
        for scope in (frame.f_locals, frame.f_globals):
            hits = [k for k, v in scope.items()
                    if v is m and k.isidentifier() and not k.startswith("_")]
            if hits:
                found = hits[0] if len(hits) == 1 else None
                break
        if found is None:
            return None
        labels.append(found)
    return labels if len(set(labels)) == len(labels) else None


def _named(models: tuple, names: Sequence[str] | None, named: Mapping[str, Any] | None = None,
           frame: Any = None) -> dict[str, Any]:
    named = dict(named or {})
    if len(models) == 1 and isinstance(models[0], Mapping) and not named:
        out = dict(models[0])
        where = [f"model {k!r} of the dict" for k in out]
    else:
        if names is not None and (isinstance(names, str) or not all(
                isinstance(n, str) for n in names)):
            raise ArgumentError(f"names must be a list of strings, got {describe(names)}")
        labels = list(names) if names is not None else [f"m{i + 1}" for i in range(len(models))]
        if len(labels) != len(models):
            raise ArgumentError(f"names has {len(labels)} names for {len(models)} models")
        if len(set(labels)) != len(labels):
            raise ArgumentError(f"names must be distinct, got {labels}")
        where = [f"argument {i + 1} ({label})" for i, label in enumerate(labels)]
        where += [f"model {k!r}" for k in named]
        _check_fits(dict(enumerate([*models, *named.values()])), where, "anova")
        caller = _caller_names(models, frame) if names is None and models else None
        if caller is not None and not set(caller) & set(named):
            labels = caller
        clash = sorted(set(labels) & set(named))
        if clash:
            raise ArgumentError(f"anova: the name(s) {clash} are given twice")
        out = dict(zip(labels, models, strict=True)) | named
    _check_fits(out, where, "anova")
    if len(out) < 2:
        raise DataError("anova needs at least two models to compare")
    return out


def _check_same_data(fits: dict[str, Any]) -> None:
    items = list(fits.items())
    name0, m0 = items[0]
    for name, m in items[1:]:
        if m.nobs != m0.nobs:
            raise DataError(f"models {name0!r} and {name!r} were fitted to different numbers "
                            f"of observations ({m0.nobs} and {m.nobs})")
        if not np.allclose(m.design.y, m0.design.y, rtol=1e-12, atol=0.0):
            raise DataError(f"models {name0!r} and {name!r} have different responses")


def _refit_ml(fits: dict[str, Any], refit: bool) -> tuple[dict[str, Any], list[str]]:
    reml = [n for n, m in fits.items() if m.reml]
    if not reml:
        return fits, []
    if not refit:
        xsets = {tuple(m.design.xnames) for m in fits.values()}
        if len(xsets) > 1 or len(reml) < len(fits):
            warnings.warn("comparing REML criteria of models with different fixed effects "
                          "(or with ML fits) is meaningless; use refit=True",
                          LmmlibWarning, stacklevel=3)
        return fits, []
    warnings.warn(REFIT_NOTE, RefitMLWarning, stacklevel=3)
    return {n: (ml_fit(m) if m.reml else m) for n, m in fits.items()}, [REFIT_NOTE]


def _variance_count(model: Any) -> int:
    return int(np.isfinite(model.design.lower()).sum())  # diagonal elements of Λ; 0 for lm


def _boundary_note(table: pd.DataFrame, fits: dict[str, Any]) -> list[str]:
    notes = []
    order = list(table.index)
    for small, large in zip(order[:-1], order[1:], strict=True):
        if _variance_count(fits[large]) > _variance_count(fits[small]):
            notes.append(
                f"{large!r} vs {small!r} tests variance components whose null value is on the "
                "boundary: the chi-square p-value is conservative (too large); use "
                "lmmlib.inference.anova.chisq_mixture_pvalue, lmmlib.inference.rlrt.exact_rlrt or "
                "lmmlib.inference.bootstrap.bootstrap_lrt")
    return notes


def anova(*models: Any, refit: bool = True, names: Sequence[str] | None = None,
          boundary_warning: bool = True, ddf: str = "Satterthwaite", type: Any = 3,
          **named_models: Any) -> Any:
    """Likelihood-ratio tests between nested models (lme4's ``anova(m0, m1, ...)``).

    Given a single ``lmer`` fit, the F table of its fixed-effect terms instead
    (lmerTest's ``anova(m, type, ddf)``; see :func:`lmmlib.inference.typeiii.anova_fixed`).

    Parameters
    ----------
    *models : LinearMixedModel or LinearModel, or one dict name → model
        Two or more fits to the same response.  Rows are named, as lme4 names
        them by the call, by the caller's variable names when every model is
        held by exactly one variable of the calling scope, and ``m1, m2, ...``
        otherwise.
    **named_models : fitted models
        Models given by name (``anova(small=m0, big=m1)``); the keyword is the
        row name.
    refit : bool
        Refit REML fits by maximum likelihood first (lme4's default).  With
        ``refit=False`` the REML criteria are compared, which is only valid for
        models with the same fixed effects.
    names : sequence of str, optional
        Row names of the positional models, in argument order.
    boundary_warning : bool
        Warn (:class:`BoundaryTestWarning`) when a test adds variance
        components, i.e. the null value is on the boundary.
    ddf : {"Satterthwaite", "Kenward-Roger"}
        For a single model only: the denominator df of its F tests.
    type : {3, 2, 1}
        For a single model only: Type III (default), II or I tests.

    Returns
    -------
    AnovaTable
        Rows sorted by ``npar`` (ties keep argument order) and columns
        ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)``.  The first
        row has no test.  ``Chisq`` is clipped at 0 as in lme4; ``Pr(>Chisq)``
        is missing when ``Df`` is 0.

    Raises
    ------
    ArgumentError
        When an argument is not a fitted model (its position and type are
        named), ``names`` do not match the models, or ``refit`` /
        ``boundary_warning`` are not booleans.
    DataError
        When fewer than two models are given or they were fitted to different data.

    Warns
    -----
    RefitMLWarning
        When REML fits were refitted (the table's ``notes`` say so too).
    BoundaryTestWarning
        See ``boundary_warning``.

    Examples
    --------
    >>> pulp = lmmlib.datasets.load("pulp")
    >>> table = anova(lmmlib.lm("bright ~ 1", pulp),
    ...               lmmlib.lmer("bright ~ 1 + (1|operator)", pulp, reml=False),
    ...               boundary_warning=False)
    >>> round(float(table["Chisq"].iloc[1]), 4)  # the pulp LRT (STAT 528: 2.568371)
    2.5684
    >>> null = lmmlib.lm("bright ~ 1", pulp)
    >>> alt = lmmlib.lmer("bright ~ 1 + (1|operator)", pulp, reml=False)
    >>> list(anova(null, alt, boundary_warning=False).index)  # the caller's names
    ['null', 'alt']
    >>> list(anova(small=null, big=alt, boundary_warning=False).index)
    ['small', 'big']
    """
    if len(models) == 1 and not named_models and isinstance(models[0], LinearMixedFit):
        from .typeiii import anova_fixed

        return anova_fixed(models[0], type=type, ddf=ddf)
    refit = as_bool(refit, "refit")
    boundary_warning = as_bool(boundary_warning, "boundary_warning")
    frame = inspect.currentframe()
    fits = _named(models, names, named_models, frame.f_back if frame is not None else None)
    del frame
    _check_same_data(fits)
    fits, notes = _refit_ml(fits, refit)
    rows = {n: [m.npar, m.aic, m.bic, m.loglik, m.objective] for n, m in fits.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS[:5])
    table = table.sort_values("npar", kind="stable")
    chisq = np.maximum(0.0, -np.diff(table["deviance"].to_numpy()))
    df = np.diff(table["npar"].to_numpy())
    with np.errstate(invalid="ignore"):
        pval = np.where(df > 0, scipy.stats.chi2.sf(chisq, np.maximum(df, 1)), np.nan)
    table["Chisq"] = np.concatenate([[np.nan], chisq])
    table["Df"] = np.concatenate([[np.nan], df.astype(float)])
    table["Pr(>Chisq)"] = np.concatenate([[np.nan], pval])
    table["npar"] = table["npar"].astype(int)
    boundary = _boundary_note(table, fits)
    if boundary and boundary_warning:
        warnings.warn(boundary[0] if len(boundary) == 1 else "; ".join(boundary),
                      BoundaryTestWarning, stacklevel=2)
    out = AnovaTable(table)
    out.heading = [f"{n}: {fits[n].formula}" for n in table.index]
    out.notes = notes + boundary
    return out


def aic_table(models: Mapping[str, Any] | Sequence[Any]) -> pd.DataFrame:
    """Information criteria of several fits side by side.

    Parameters
    ----------
    models : dict name → model, or list of models
        :func:`lmmlib.lm` and :func:`lmmlib.lmer` fits to the same data (a list
        is named ``m1, m2, ...``).

    Returns
    -------
    DataFrame
        Columns ``npar, logLik, AIC, BIC, ΔAIC, ΔBIC, REML`` in the given order;
        ΔAIC = AIC − min(AIC), likewise ΔBIC.  REML fits report the REML
        criterion (as lme4's ``AIC``), which is comparable only between fits
        with the same fixed effects.

    Warns
    -----
    LmmlibWarning
        When a REML fit is compared with a fit having other fixed effects or
        with an ML fit, and when the numbers of observations differ.
    """
    if isinstance(models, FITS) or isinstance(models, (str, bytes)) or not hasattr(
            models, "__iter__"):
        raise ArgumentError(f"aic_table: models must be a dict name -> model or a list of "
                            f"models, got {describe(models)}")
    fits = dict(models) if isinstance(models, Mapping) else {
        f"m{i + 1}": m for i, m in enumerate(models)}
    where = [f"model {k!r}" if isinstance(models, Mapping) else f"element {i + 1} ({k})"
             for i, k in enumerate(fits)]
    _check_fits(fits, where, "aic_table")
    if not fits:
        raise DataError("aic_table needs at least one model")
    if len({m.nobs for m in fits.values()}) > 1:
        warnings.warn("models were fitted to different numbers of observations; their "
                      "information criteria are not comparable", LmmlibWarning, stacklevel=2)
    if any(m.reml for m in fits.values()):
        xsets = {tuple(m.design.xnames) for m in fits.values()}
        if len(xsets) > 1 or not all(m.reml for m in fits.values()):
            warnings.warn("REML criteria are compared with fits having other fixed effects "
                          "(or with ML fits): refit with reml=False (model.refit_ml())",
                          LmmlibWarning, stacklevel=2)
    table = pd.DataFrame(
        {"npar": [m.npar for m in fits.values()], "logLik": [m.loglik for m in fits.values()],
         "AIC": [m.aic for m in fits.values()], "BIC": [m.bic for m in fits.values()]},
        index=list(fits))
    table["ΔAIC"] = table["AIC"] - table["AIC"].min()
    table["ΔBIC"] = table["BIC"] - table["BIC"].min()
    table["REML"] = [bool(m.reml) for m in fits.values()]
    return table


def _level_columns(xnames: Sequence[str], factor: str) -> dict[str, int]:
    """Column index of every non-reference level's indicator: ``factor[T.level]``."""
    pattern = re.compile(rf"^{re.escape(factor)}\[(?:T\.)?(.+)\]$")
    out = {}
    for j, name in enumerate(xnames):
        hit = pattern.match(name)
        if hit:
            out[hit.group(1)] = j
    if not out:
        raise DataError(f"no fixed-effect indicator columns of factor {factor!r} among "
                        f"{', '.join(xnames)}")
    return out


def _fit_without(model: Any, j: int) -> Any:
    design = model.design
    keep = np.arange(design.X.shape[1]) != j
    reduced = replace(design, X=design.X[:, keep],
                      xnames=tuple(n for n, k in zip(design.xnames, keep, strict=True) if k))
    return model.with_design(reduced, reml=False, start=getattr(model, "theta", None))


def drop_level_screen(model: Any, factor: str) -> pd.DataFrame:
    """Which levels of a factor differ from the reference? ΔAIC of merging each one.

    For every non-reference level ℓ of ``factor`` the model is refitted by ML
    without ℓ's treatment-contrast column, i.e. with ℓ merged with the
    reference level, and ΔAIC = AIC(full) − AIC(reduced) is reported: negative
    values mean the full model (ℓ different from the reference) is preferred.
    This is the STAT 528 soybean genotype screen.  The reduced fits reuse the
    full model's design and start at its θ̂.

    The course's printout (columns ``ID1, ID2, ...``) ran under the sum
    contrasts set for the pulp example, where removing a column equates the
    level with the average level instead; here, as the course's text intends,
    the comparison is with the reference level.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
        The full model; a REML fit is refitted by ML first.
    factor : str
        A categorical fixed effect of the model (main-effect columns
        ``factor[T.level]``).

    Returns
    -------
    DataFrame
        Indexed by level, sorted by ΔAIC: ``column``, ``estimate`` (difference
        from the reference in the full model), ``AIC`` of the reduced model,
        ``ΔAIC``, and the LRT ``Chisq`` (1 df) with ``Pr(>Chisq)``
        (Chisq = 2 − ΔAIC).  ``attrs`` holds the full model's AIC.
    """
    as_instance(model, "model", _LMFITS, _LMKINDS)
    as_instance(factor, "factor", str, "the name of a factor (a string)")
    if model.reml:
        warnings.warn(REFIT_NOTE, RefitMLWarning, stacklevel=2)
        model = ml_fit(model)
    cols = _level_columns(model.design.xnames, factor)
    rows = []
    for level, j in cols.items():
        reduced = _fit_without(model, j)
        rows.append((level, model.design.xnames[j], float(model.fixef.iloc[j]), reduced.aic,
                     model.aic - reduced.aic, max(0.0, reduced.objective - model.objective)))
    out = pd.DataFrame(rows, columns=["level", "column", "estimate", "AIC", "ΔAIC", "Chisq"])
    out["Pr(>Chisq)"] = scipy.stats.chi2.sf(out["Chisq"], 1)
    out = out.set_index("level").sort_values("ΔAIC", kind="stable")
    out.attrs["aic_full"] = model.aic
    return out
