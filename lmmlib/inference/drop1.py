"""Single-term deletions of a mixed model's fixed effects: lme4's and lmerTest's ``drop1``.

* ``test="Chisq"`` (lme4's ``drop1(m, test = "Chisq")``): every droppable term
  (one whose variables are not all in another term, R's ``drop.scope``) is
  removed, the smaller model is fitted by maximum likelihood, and the table
  gives ``npar`` (parameters removed), ``AIC`` of the ML fits and the
  likelihood-ratio test ``LRT`` with ``Pr(Chi)``.
  The reduced fits use the full model's rows and columns (the term's columns
  removed), warm-started at θ̂, so "the number of rows in use" cannot change.
* ``test="none"``: the same without the test.
* ``test="F"`` (lmerTest's ``drop1``): the F test of every droppable term (its
  coefficients zero, all other terms kept) with Satterthwaite or Kenward–Roger
  df; without interactions these are the Type III tests
  (:func:`lmmlib.inference.typeiii.anova_type3`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_choice, as_instance
from ..kinds import LinearMixedFit
from .anova import REFIT_NOTE, RefitMLWarning, ml_fit
from .contrasts import droppable_terms, fixed_terms, marginal_contrasts
from .typeiii import FTable, contrast_table, ddf_method

__all__ = ["drop1"]


def _without(model: Any, cols: np.ndarray) -> Any:
    design = model.design
    keep = np.ones(design.X.shape[1], dtype=bool)
    keep[cols] = False
    reduced = replace(design, X=design.X[:, keep],
                      xnames=tuple(n for n, k in zip(design.xnames, keep, strict=True) if k))
    return model.with_design(reduced, reml=False, start=model.theta)


def drop1(model: Any, test: str = "F", ddf: str = "Satterthwaite") -> pd.DataFrame:
    """Tests of dropping each fixed-effect term (lme4's and lmerTest's ``drop1``).

    Parameters
    ----------
    model : LinearMixedModel
        A fit of :func:`lmmlib.lmer`.
    test : {"F", "Chisq", "none"}
        ``"F"``: lmerTest's F tests (columns ``Sum Sq, Mean Sq, NumDF, DenDF,
        F value, Pr(>F)``); ``"Chisq"``: lme4's likelihood-ratio tests of ML
        refits (``npar, AIC, LRT, Pr(Chi)``, first row ``<none>``); ``"none"``:
        ``npar, AIC`` only.
    ddf : {"Satterthwaite", "Kenward-Roger"}
        Denominator df of the F tests.

    Returns
    -------
    DataFrame

    Warns
    -----
    RefitMLWarning
        With ``test="Chisq"`` or ``"none"`` on a REML fit (the AICs are those of
        ML fits, as lme4's ``extractAIC`` refits by ML).

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"), reml=False)
    >>> tab = drop1(m, test="Chisq")
    >>> list(tab.index), list(tab.columns)
    (['<none>', 'weeks'], ['npar', 'AIC', 'LRT', 'Pr(Chi)'])
    """
    as_instance(model, "model", LinearMixedFit, "a mixed model fitted by lmmlib.lmer")
    test = as_choice(test, "test", ("f", "chisq", "none"))
    scope = set(droppable_terms(model.design))
    terms = {t: c for t, c in fixed_terms(model.design).items() if t in scope}
    if test == "f":
        out = FTable(contrast_table(model, marginal_contrasts(model.design), ddf))
        out.heading = [f"Single term deletions using {ddf_method(ddf)}'s method:"]
        return out
    if model.reml:
        warnings.warn(REFIT_NOTE, RefitMLWarning, stacklevel=2)
    full = ml_fit(model)
    rows = [("<none>", np.nan, full.aic, np.nan)]
    for label, cols in terms.items():
        reduced = _without(full, cols)
        rows.append((label, float(len(cols)), reduced.aic,
                     max(0.0, reduced.objective - full.objective)))
    out = pd.DataFrame(rows, columns=["term", "npar", "AIC", "LRT"]).set_index("term")
    out.index.name = None
    if test == "none":
        return out[["npar", "AIC"]]
    with np.errstate(invalid="ignore"):
        out["Pr(Chi)"] = scipy.stats.chi2.sf(out["LRT"], out["npar"])
    return out
