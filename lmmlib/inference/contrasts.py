"""Hypothesis matrices of the fixed-effect terms: Type III and marginal contrasts, as lmerTest.

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
selection of its columns, whatever the coding.
"""

from __future__ import annotations

import re

import numpy as np
from formulaic import Formula, ModelSpec

from ..engine.design import Design
from ..engine.names import alias_of, restore_names
from ..engine.rfunctions import CONTEXT
from ..errors import ArgumentError, DataError

__all__ = ["containing_terms", "droppable_terms", "fixed_terms", "marginal_contrasts",
           "type3_contrasts"]


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
    eye = np.eye(len(design.xnames))
    return {label: eye[cols] for label, cols in fixed_terms(design).items() if label in keep}


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
    contained = containing_terms(design)
    p = len(design.xnames)
    if not any(contained.get(t) for t in terms) or len(terms) <= 1:
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
