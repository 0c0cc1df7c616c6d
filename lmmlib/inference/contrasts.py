"""Hypothesis matrices of the fixed-effect terms: Types I, II and III, as lmerTest.

Type I contrasts are the rows of the Doolittle factor of X'X (each term given
the terms before it); Type II test a term contained in others after every
term that does not contain it.

A term's Type III hypothesis with treatment contrasts (lmerTest's
``extract_contrasts_type3``): with rdX the rank-deficient ("complete") design,
every term coded with indicators of all its factors' levels, the basic contrasts
are L = (X⁺ rdX)', one row per column of rdX.  Working from the highest-order
terms down, the columns of L of a term that is contained in other terms are
replaced by their residuals after least squares on the columns of the
containing terms; the rows of L that are columns of X then give each term's
contrasts.  A term is contained in another when the other has all its
variables and more, and the same numeric variables (lmerTest's
``containment``: ``x`` is contained in ``x:f`` for a factor ``f``, but not in
``x:z`` for a numeric ``z``).  Without containment every term's contrast is the
selection of its columns; with a single term, lmerTest's Type I contrasts.

The F statistic depends only on the rows' span, but Satterthwaite's DenDF
also on the basis (lmerTest combines the df of the t-tests along the
eigenvectors of L V̂ L'), so the bases are lmerTest's.  One exception: for a factor with
other than treatment contrasts (an ordered factor's ``contr.poly``) in a model
without containment, lmerTest maps the treatment-coded selection to the
model's coding, while here the model's own columns are selected: the F values
agree, the DenDF of such a term can differ slightly.
"""

from __future__ import annotations

import re

import numpy as np
from formulaic import Formula, ModelSpec

from ..engine.design import Design
from ..engine.names import alias_of, restore_names
from ..engine.rfunctions import CONTEXT
from ..errors import ArgumentError, DataError

__all__ = ["containing_terms", "doolittle", "droppable_terms", "fixed_terms",
           "marginal_contrasts", "type1_contrasts", "type2_contrasts", "type3_contrasts"]


def _r_label(label: str) -> str:
    """A term label as R writes it: ``I(x ** 2)`` → ``I(x^2)``."""
    return re.sub(r"\s*\*\*\s*", "^", label)


def _terms(design: Design) -> list:
    return [t for t in design.fixed_spec.spec.term_indices if str(t) != "1"]


def _label(design: Design, term: object) -> str:
    return _r_label(restore_names([str(term)], design.fixed_spec.columns)[0])


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
    for term in _terms(design):
        idx = spec.spec.term_indices[term]
        cols = [position[spec.names[i]] for i in idx if spec.names[i] in position]
        if cols:
            out[_label(design, term)] = np.array(cols)
    return out


def _categorical(design: Design) -> set[str]:
    return {str(f) for f in design.fixed_spec.spec.factor_contrasts}


def containing_terms(design: Design) -> dict[str, list[str]]:
    """For every term, the terms that contain it (lmerTest's ``containment``)."""
    factors = _categorical(design)
    variables = {_label(design, t): frozenset(str(f) for f in t.factors) for t in _terms(design)}
    numerics = {k: frozenset(v - factors) for k, v in variables.items()}
    return {a: [b for b in variables if variables[a] < variables[b] and numerics[a] == numerics[b]]
            for a in variables}


def droppable_terms(design: Design) -> list[str]:
    """Terms whose variables are not all in another term (R's ``drop.scope``)."""
    variables = {_label(design, t): frozenset(str(f) for f in t.factors) for t in _terms(design)}
    return [a for a in variables if not any(variables[a] < v for v in variables.values())]


def marginal_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Contrasts of the droppable terms (R's ``drop.scope``): the selection of their columns.

    For such a term the Type II and Type III hypotheses are the same: its
    coefficients are zero, all other terms kept (lmerTest's marginal contrasts).
    """
    keep = set(droppable_terms(design))
    if _single(design):
        return {k: v for k, v in type1_contrasts(design).items() if k in keep}
    eye = np.eye(len(design.xnames))
    return {label: eye[cols] for label, cols in fixed_terms(design).items() if label in keep}


def _single(design: Design) -> bool:
    """At most one column or one term: lmerTest then uses the Type I contrasts."""
    return len(design.xnames) <= 1 or len(_terms(design)) <= 1


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx == 0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _complete_design(design: Design) -> np.ndarray:
    """rdX: intercept and every term with indicators of all levels (no contrasts).

    Stateful transforms (``scale(x)``, ``poly(x, 2)``) keep the parameters they
    learned for the fit.
    """
    spec = design.fixed_spec
    position = {c: i for i, c in enumerate(spec.columns)}
    safe = design.frame[list(spec.used)].set_axis([alias_of(position[c]) for c in spec.used],
                                                  axis=1)
    parts = [np.ones((len(safe), 1))] if "1" in {str(t) for t in spec.spec.term_indices} else []
    for term in _terms(design):
        one = ModelSpec(formula=Formula(f"0 + {term}"), ensure_full_rank=False,
                        transform_state=spec.spec.transform_state)
        parts.append(np.asarray(one.get_model_matrix(safe, context=CONTEXT), dtype=float))
    return np.hstack(parts)


def _is_treatment(design: Design) -> bool:
    return all(type(state.contrasts).__name__ == "TreatmentContrasts"
               for state in design.fixed_spec.spec.factor_contrasts.values())


def type3_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Type III contrast matrix of every term (lmerTest's ``get_contrasts_type3``).

    Raises
    ------
    ArgumentError
        When a term is contained in another and a factor is not coded by
        treatment contrasts (e.g. an ordered factor's polynomial contrasts).
    """
    terms = fixed_terms(design)
    if _single(design):
        return type1_contrasts(design)
    contained = containing_terms(design)
    p = len(design.xnames)
    if not any(contained.get(t) for t in terms):
        eye = np.eye(p)
        return {label: eye[cols] for label, cols in terms.items()}
    if not _is_treatment(design):
        raise ArgumentError("Type III tests of terms contained in interactions need "
                            "treatment contrasts for every factor of the model")
    X = design.X
    rdX = _complete_design(design)
    L = _zapsmall((np.linalg.pinv(X) @ rdX).T)
    size = {_label(design, t): len(t.factors) for t in _terms(design)}
    order = sorted(terms, key=lambda t: -size[t])  # highest order first, stable
    for term in order:
        within = [c for c in contained.get(term, []) if c in terms]
        if within:
            cols = terms[term]
            basis = L[:, np.concatenate([terms[c] for c in within])]
            coef = np.linalg.lstsq(basis, L[:, cols], rcond=None)[0]
            L[:, cols] = _zapsmall(L[:, cols] - basis @ coef)
    rows = []
    for j in range(p):
        hit = np.flatnonzero(np.all(rdX == X[:, [j]], axis=0))
        if hit.size == 0:
            raise DataError(f"cannot match column {design.xnames[j]!r} of the model matrix "
                            "with the complete design of its term")
        rows.append(hit[0])
    L = L[rows]
    out = {}
    for label, cols in terms.items():
        Lt = L[:, cols].T
        out[label] = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
    return out


def doolittle(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Unit lower-triangular L of the Doolittle factorisation x = L U (lmerTest's ``doolittle``).

    As lmerTest, a pivot below ``eps`` gives a zero column and entries below
    ``eps`` in absolute value are set to zero.
    """
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i] = x[i] - L[i, :i] @ U[:i]
        if i + 1 < n:
            col = x[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
            L[i + 1:, i] = 0.0 if abs(U[i, i]) < eps else col / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


def _type1_rows(X: np.ndarray) -> np.ndarray:
    """t(L) of the Doolittle factorisation of X'X: row j tests column j given those before."""
    return doolittle(X.T @ X).T if X.shape[1] > 1 else np.ones((1, 1))


def type1_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Type I (sequential) contrasts of every term (lmerTest's ``get_contrasts_type1``)."""
    Lt = _type1_rows(design.X)
    return {label: Lt[cols] for label, cols in fixed_terms(design).items()}


def type2_contrasts(design: Design) -> dict[str, np.ndarray]:
    """Type II contrasts (lmerTest's ``get_contrasts_type2_unfolded``).

    A term contained in others is tested after all terms that do not contain
    it (the Type I contrast with the columns reordered as [unrelated, term,
    containing terms]); any other term by its marginal contrast.
    """
    terms = fixed_terms(design)
    if _single(design):
        return type1_contrasts(design)
    contained = containing_terms(design)
    eye = np.eye(len(design.xnames))
    out = {}
    for label, cols in terms.items():
        within = [c for c in contained.get(label, []) if c in terms]
        if not within:
            out[label] = eye[cols]
            continue
        last = np.concatenate([cols] + [terms[c] for c in within])
        order = np.concatenate([np.setdiff1d(np.arange(eye.shape[0]), last), last])
        Lt = _type1_rows(design.X[:, order])
        rows = Lt[np.isin(order, cols)]
        back = np.empty_like(rows)
        back[:, order] = rows
        out[label] = back
    return out
