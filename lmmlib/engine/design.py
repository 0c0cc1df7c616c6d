"""Stage 2: data + parsed formula → response, fixed-effects matrix X and Z blocks.

The fixed part goes through :mod:`formulaic` (treatment contrasts, the first
category of a pandas ``Categorical`` being the reference level, as R's first
factor level; polynomial contrasts for ordered ones, as R's ``contr.poly``).
Rank-deficient columns are dropped the way R's ``lm`` and lme4 drop them: a
column that is (numerically) a linear combination of the columns before it
goes, with a warning that names it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dpotrf

from ..errors import DataError, DataWarning, FormulaError
from .formula import ParsedFormula, expand_dot, parse_formula, split_top_level
from .frame import as_frame, build_frame, normalise_columns, response_vector
from .reterms import Block, ReTerm, build_blocks, new_level_codes
from .rows import Exclusion
from .terms import MatrixSpec, evaluate_piece, piece_matrix, state_rows

__all__ = ["Design", "block_covariates", "block_rows", "build_design", "fixed_matrix",
           "fixed_rows"]

RANK_TOL = 1e-7


@dataclass(frozen=True)
class Design:
    """Everything the fitting stages need, built once per model."""

    formula: ParsedFormula
    frame: pd.DataFrame
    y: np.ndarray
    X: np.ndarray
    xnames: tuple[str, ...]
    blocks: tuple[Block, ...]
    reterms: tuple[ReTerm, ...]
    fixed_spec: MatrixSpec
    term_specs: dict[str, Any]
    dropped: tuple[str, ...] = ()
    exclusion: Exclusion | None = None
    weights: np.ndarray | None = None  # prior weights (residual variance σ²/wᵢ), lmer's
    offset: np.ndarray | None = None  # a known part of the linear predictor (all its parts)
    offset_terms: tuple[str, ...] = ()  # expressions that give it on new data
    offset_numbers: bool = False  # part of it was given as numbers (not for new data)
    offset_argument: np.ndarray | None = None  # the part given as the offset= argument

    def with_offset(self, values: np.ndarray, term: str | None,
                    argument: bool = False) -> Design:
        """The design with ``values`` added to its offset (``term`` evaluates them on new data).

        ``argument``: the values are the fitting function's ``offset=`` (not a
        formula term), kept apart so that a refit with a new formula can pass
        them again.
        """
        total = values if self.offset is None else self.offset + values
        terms = self.offset_terms if term is None else self.offset_terms + (term,)
        arg = self.offset_argument
        if argument:
            arg = values if arg is None else arg + values
        return replace(self, offset=total, offset_terms=terms, offset_argument=arg,
                       offset_numbers=self.offset_numbers or term is None)

    def pad(self, values: Any, name: str | None = None) -> pd.Series:
        """Per-observation values as a Series over the fit's rows.

        With ``na_action="exclude"`` the Series covers the data's rows (after
        ``subset``), NaN where a row was left out for missing values (R's
        ``naresid``); otherwise it is indexed by the model frame's rows.

        Examples
        --------
        >>> d = pd.DataFrame({"y": [1.0, None, 3.0, 5.0], "x": [1.0, 2.0, 3.0, 4.0]})
        >>> design = build_design("y ~ x", d, require_random=False, na_action="exclude")
        >>> design.pad(design.y).tolist()
        [1.0, nan, 3.0, 5.0]
        """
        if self.exclusion is None:
            return pd.Series(np.asarray(values, dtype=float), index=self.frame.index, name=name)
        return self.exclusion.pad(values, name)

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return len(self.y)

    @property
    def ntheta(self) -> int:
        """Length of θ."""
        return self.reterms[-1].theta.stop if self.reterms else 0

    def lower(self) -> np.ndarray:
        """Lower bounds of θ: 0 on diagonals of Λ, unbounded elsewhere."""
        low = np.full(self.ntheta, -np.inf)
        for b in self.blocks:
            diag = np.diag(b.template)
            low[diag[diag >= 0]] = 0.0
        return low

    def theta0(self) -> np.ndarray:
        """lme4's starting value: Λ = I."""
        return np.where(np.isfinite(self.lower()), 1.0, 0.0)


# a scaled Gram matrix whose Cholesky pivots all exceed this has clearly independent
# columns: its pivots are R's squared diagonal (of the unit-norm columns) up to errors of
# about machine epsilon, far from RANK_TOL², so the QR factorisation would keep them all
CLEAR_PIVOT = 1e-8


def _clearly_independent(X: np.ndarray) -> bool:
    """All columns nonzero and far from collinear, decided from X'X (cheaper than QR)."""
    gram = X.T @ X
    norms2 = np.diag(gram)
    if not np.all(norms2 > 0) or not np.all(np.isfinite(norms2)):
        return False
    d = 1.0 / np.sqrt(norms2)
    L, info = dpotrf(gram * d[:, None] * d[None, :], lower=1)
    return info == 0 and float(np.min(np.diag(L))) ** 2 > CLEAR_PIVOT


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Mask of columns not (numerically) spanned by the columns before them."""
    if _clearly_independent(X):
        return np.ones(X.shape[1], dtype=bool)
    norms = np.linalg.norm(X, axis=0)
    r = np.linalg.qr(X, mode="r")  # the p × p factor only
    diag = np.abs(np.diag(r)) if r.size else np.zeros(0)
    keep = np.zeros(X.shape[1], dtype=bool)
    keep[: diag.size] = diag > RANK_TOL * np.maximum(norms[: diag.size], 1e-300)
    return keep & (norms > 0)


def fixed_matrix(fixed: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], MatrixSpec]:
    """Fixed-effects model matrix, its lme4-style column names and its spec for new data."""
    X, spec = piece_matrix(fixed, frame, "the fixed-effects matrix")
    bad = [n for n, ok in zip(spec.names, np.isfinite(X).all(axis=0), strict=True) if not ok]
    if bad:
        raise DataError(f"fixed-effects column(s) {', '.join(bad)} contain inf or NaN values")
    return X, spec.names, spec


def _drop_dependent(X: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, tuple, tuple]:
    if X.shape[1] == 0:
        return X, names, ()
    keep = _independent_columns(X)
    if keep.all():
        return X, names, ()
    dropped = tuple(n for n, k in zip(names, keep, strict=True) if not k)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
        f"column(s): {', '.join(dropped)}",
        DataWarning,
        stacklevel=4,
    )
    return X[:, keep], tuple(n for n, k in zip(names, keep, strict=True) if k), dropped


SCALE_TOL = 1e3  # lme4's checkScaleX tolerance
DENSE_RANK_MAX = 5000


def _check_scales(columns: dict[str, np.ndarray]) -> None:
    """Warn, as lme4 does, when continuous predictors have very different scales."""
    sds = {}
    for name, v in columns.items():
        if v.size < 2:
            continue
        low, high = float(v.min()), float(v.max())
        if high == low or (low == 0.0 and high == 1.0 and np.all((v == 0.0) | (v == 1.0))):
            continue  # constant, or a 0/1 indicator (lme4 skips both)
        sds[name] = float(np.std(v, ddof=1))
    if not sds:
        return
    logs = np.log(np.array(list(sds.values())))
    if np.max(np.abs(logs)) > np.log(SCALE_TOL) or np.ptp(logs) > np.log(SCALE_TOL):
        worst = sorted(sds, key=lambda n: -abs(np.log(sds[n])))[:3]
        warnings.warn(
            "some predictor variables are on very different scales "
            f"(standard deviations: {', '.join(f'{n} {sds[n]:.3g}' for n in worst)}): "
            "consider rescaling",
            DataWarning,
            stacklevel=4,
        )


def _check_exact_fit(X: np.ndarray, blocks: list[Block]) -> None:
    """Refuse designs whose fixed and random effects can reproduce y exactly.

    Then rank([X Z]) = n, the residual variance can go to 0 and the likelihood
    is unbounded.  Only possible when p + Σ levels·q ≥ n, which is checked first.
    """
    n, p = X.shape
    total = p + sum(b.nlevels * b.q for b in blocks)
    if total < n:
        return
    if n > DENSE_RANK_MAX:
        warnings.warn(f"{total} fixed and random effects for {n} observations: the "
                      "residual variance may not be identifiable", DataWarning, stacklevel=4)
        return
    cols = [X]
    for b in blocks:
        Zd = np.zeros((n, b.nlevels * b.q))
        for j in range(b.q):
            Zd[np.arange(n), b.codes * b.q + j] = b.Z[:, j]
        cols.append(Zd)
    if np.linalg.matrix_rank(np.hstack(cols)) >= n:
        raise DataError(
            f"the fixed and random effects can reproduce the response exactly "
            f"(rank of [X Z] = {n} observations): no residual information, the "
            "likelihood is unbounded"
        )


def build_design(formula: str | ParsedFormula, data: Any, *, require_random: bool = True,
                 residual: bool = True, subset: Any = None, na_action: str = "omit") -> Design:
    """Build the design of a (mixed) linear model.

    Parameters
    ----------
    formula : str or ParsedFormula
        lme4-style formula; a ``.`` term stands for the data's other columns
        (see :func:`lmmlib.engine.formula.expand_dot`).
    data : DataFrame
        The data; only the columns named in the formula are used.
    require_random : bool
        Raise if the formula has no random term (as ``lmer`` does).
    residual : bool
        The model has a residual variance (Gaussian); ``False`` for GLMMs,
        which may have one random effect per observation.
    subset : array_like, Series or str, optional
        The rows to use, as R's ``subset`` argument: a boolean mask (a Series
        aligned by index) or a condition such as ``"Days > 2"``; see
        :func:`lmmlib.engine.rows.subset_mask`.
    na_action : {"omit", "fail", "exclude"}
        Rows with missing values: dropped (``"omit"``, R's ``na.omit``), an
        error naming the columns (``"fail"``), or dropped with the data's rows
        recorded in ``Design.exclusion`` so that fitted values and residuals
        are padded with NaN (``"exclude"``, R's ``na.exclude``).

    Returns
    -------
    Design

    Notes
    -----
    Stateful transforms (``scale(x)``, ``poly(x, 2)``) learn their parameters
    on all rows of the data, before ``subset`` and the removal of incomplete
    rows, as R's model frame evaluates them; ``predict(newdata)`` reuses them.
    """
    if isinstance(formula, str):
        parsed = parse_formula(formula)
    elif isinstance(formula, ParsedFormula):
        parsed = formula
    else:
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    if require_random and not parsed.is_mixed:
        raise FormulaError(
            f"formula {parsed.text!r} has no random-effects term such as (1 | group); "
            "use lmmlib.lm for a model without random effects"
        )
    data = as_frame(data)
    parsed = expand_dot(parsed, data.columns)
    mf = build_frame(parsed, data, subset, na_action)  # offset() columns included, as R's
    parsed, offsets = split_offsets(parsed)
    frame = mf.frame
    y = response_vector(frame, parsed.response)
    with state_rows(mf.state):
        X, names, spec = fixed_matrix(parsed.fixed, frame)
        X, names, dropped = _drop_dependent(X, names)
        blocks, reterms, specs = build_blocks(parsed.random, frame, residual)
    for b in blocks:
        if not np.isfinite(b.Z).all():
            raise DataError(f"random-effect covariates of {b.factor!r} contain inf or NaN values")
    if residual:
        _check_exact_fit(X, blocks)
    columns = {n: X[:, j] for j, n in enumerate(names)}
    columns.update({f"{n} | {b.factor}": b.Z[:, j] for b in blocks
                    for j, n in enumerate(b.colnames)})
    _check_scales(columns)
    if X.shape[1] >= len(y):
        raise DataError(f"{X.shape[1]} fixed effects for {len(y)} observations: too few data")
    design = Design(parsed, frame, y, X, names, tuple(blocks), tuple(reterms), spec, specs,
                    dropped, mf.exclusion)
    for expr in offsets:  # R's offset(x) terms, on the model frame's rows
        design = design.with_offset(_offset_values(expr, frame), expr)
    return design


def split_offsets(parsed: ParsedFormula) -> tuple[ParsedFormula, list[str]]:
    """The formula without its ``offset(expr)`` terms, and the expressions.

    Examples
    --------
    >>> p, offs = split_offsets(parse_formula("y ~ x + offset(log(t)) + (1 | g)"))
    >>> p.fixed, offs
    ('x', ['log(t)'])
    """
    terms, offsets = [], []
    for term in split_top_level(parsed.fixed, "+"):
        m = re.fullmatch(r"\s*offset\s*\((.*)\)\s*", term, re.DOTALL)
        if m:
            offsets.append(m.group(1).strip())
        else:
            terms.append(term.strip())
    if not offsets:
        return parsed, []
    return replace(parsed, fixed=" + ".join(terms) if terms else "1"), offsets


def _offset_values(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """offset(expr) evaluated on ``frame`` (finite, or a DataError naming the term)."""
    values = evaluate_piece(expr, frame)
    if not np.all(np.isfinite(values)):
        raise DataError(f"offset({expr}) is missing or not finite for "
                        f"{int(np.sum(~np.isfinite(values)))} of {values.size} rows")
    return values


def newdata_frame(design: Design, newdata: Any) -> pd.DataFrame:
    """New data as a frame with the fit's column conventions (plain numpy dtypes)."""
    frame = as_frame(newdata)
    if len(frame) == 0:
        raise DataError("newdata has 0 rows")
    used = [c for c in design.frame.columns if c in frame.columns]
    grouping = {f for t in design.formula.random for f in t.factors}
    return normalise_columns(frame.loc[:, used], grouping) if used else frame


def newdata_offset(design: Design, newdata: Any, frame: pd.DataFrame) -> np.ndarray | float:
    """The offset of a fit for rows of new data, evaluated there as R evaluates it.

    Raises
    ------
    DataError
        If part of the fit's offset was given as numbers, or newdata lacks what
        an offset term or column needs.
    """
    if design.offset is None or not np.any(design.offset):
        return 0.0
    if design.offset_numbers:
        raise DataError("this model has an offset given as numbers: refit with the offset as "
                        "a column name (offset='...') or an offset() term to predict on new "
                        "data")
    data = as_frame(newdata).loc[frame.index]
    out = np.zeros(len(frame))
    for expr in design.offset_terms:
        name = expr.strip("`")
        if expr.startswith("`") and name not in data.columns:
            raise DataError(f"newdata has no offset column {name!r}")
        out += _offset_values(expr, data)
    return out


def fixed_rows(design: Design, frame: pd.DataFrame) -> np.ndarray:
    """Fixed-effects model matrix of new rows, with the fitted design's columns.

    Raises
    ------
    DataError
        When a needed column is missing, has missing values, or a factor has a
        level that the fit did not see (lme4: "new levels detected in newdata").
    """
    spec = design.fixed_spec
    X = spec.rows(frame)
    keep = [i for i, name in enumerate(spec.names) if name in design.xnames]
    return X[:, keep]


def block_covariates(design: Design, block: Block, frame: pd.DataFrame) -> np.ndarray:
    """Random-effects covariates of new rows for one block (its Z columns, per row)."""
    parts = []
    for t in design.reterms:
        if t.factor == block.factor:
            spec = design.term_specs[f"({t.expr} | {t.factor})"]
            parts.append(spec.rows(frame, f"newdata for ({t.expr} | {t.factor})"))
    return np.hstack(parts)


def block_rows(design: Design, block: Block, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Random-effects covariates of new rows for one block and their level codes.

    Levels are matched by value (``1``, ``1.0`` and ``"1"`` are one level, as
    R's factor labels); a missing grouping value gets code −1 and a level not
    seen in the fit code −2 (their effect is taken as 0 where allowed).
    """
    factors = tuple(block.factor.split(":"))
    missing = [f for f in factors if f not in frame.columns]
    if missing:
        raise DataError(f"newdata lacks the grouping column(s) {', '.join(missing)}; "
                        "use re=False for population predictions")
    codes = new_level_codes(block, frame, factors)
    rows = np.zeros((len(frame), block.q))
    known = codes >= 0
    if known.any():
        rows[known] = block_covariates(design, block, frame.loc[known])
    return rows, codes
