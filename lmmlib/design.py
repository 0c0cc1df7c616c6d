"""Stage 2: data + parsed formula → response, fixed-effects matrix X and Z blocks.

The fixed part goes through :mod:`formulaic` (treatment contrasts; the first
category of a pandas ``Categorical`` is the reference level, as R's first
factor level).  Rank-deficient columns are dropped the way R's ``lm`` and
lme4 drop them: a column that is (numerically) a linear combination of the
columns before it goes, with a warning that names it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from formulaic import Formula, model_matrix

from .errors import DataError, DataWarning, FormulaError
from .formula import ParsedFormula, parse_formula
from .frame import model_frame, response_vector
from .reterms import Block, ReTerm, build_blocks, group_codes

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
    fixed_spec: Any
    term_specs: dict[str, Any]
    dropped: tuple[str, ...] = ()

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


def _rename(col: str) -> str:
    return "(Intercept)" if col == "Intercept" else str(col)


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Mask of columns not (numerically) spanned by the columns before them."""
    norms = np.linalg.norm(X, axis=0)
    r = scipy.linalg.qr(X, mode="r", check_finite=False)[0]
    diag = np.abs(np.diag(r)) if r.size else np.zeros(0)
    keep = np.zeros(X.shape[1], dtype=bool)
    keep[: diag.size] = diag > RANK_TOL * np.maximum(norms[: diag.size], 1e-300)
    return keep & (norms > 0)


@lru_cache(maxsize=256)
def _formula(fixed: str) -> Formula:
    """The parsed formulaic formula (parsing is the slow part of small fits)."""
    return Formula(fixed)


def fixed_matrix(fixed: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], Any]:
    """Fixed-effects model matrix, its lme4-style column names and formulaic spec."""
    try:
        mm = model_matrix(_formula(fixed), frame, na_action="raise")
    except Exception as exc:
        raise FormulaError(f"cannot build the fixed-effects matrix for {fixed!r}: {exc}") from exc
    X = np.asarray(mm, dtype=float)
    names = tuple(_rename(c) for c in mm.columns)
    bad = [n for n, ok in zip(names, np.isfinite(X).all(axis=0), strict=True) if not ok]
    if bad:
        raise DataError(f"fixed-effects column(s) {', '.join(bad)} contain inf or NaN values")
    return X, names, mm.model_spec


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
    sds = {n: float(np.std(v, ddof=1)) for n, v in columns.items()
           if v.size > 1 and not np.all(np.isin(v, (0.0, 1.0))) and np.ptp(v) > 0}
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
                 residual: bool = True) -> Design:
    """Build the design of a (mixed) linear model.

    Parameters
    ----------
    formula : str or ParsedFormula
        lme4-style formula.
    data : DataFrame
        The data; only the columns named in the formula are used.
    require_random : bool
        Raise if the formula has no random term (as ``lmer`` does).
    residual : bool
        The model has a residual variance (Gaussian); ``False`` for GLMMs,
        which may have one random effect per observation.

    Returns
    -------
    Design
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
    frame = model_frame(parsed, data)
    y = response_vector(frame, parsed.response)
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
    return Design(parsed, frame, y, X, names, tuple(blocks), tuple(reterms), spec, specs, dropped)


def fixed_rows(design: Design, frame: pd.DataFrame) -> np.ndarray:
    """Fixed-effects model matrix of new rows, with the fitted design's columns."""
    spec = design.fixed_spec
    try:
        X = np.asarray(spec.get_model_matrix(frame), dtype=float)
    except Exception as exc:
        raise DataError(f"cannot build the fixed effects for newdata: {exc}") from exc
    keep = [i for i, name in enumerate(spec.column_names) if _rename(name) in design.xnames]
    return X[:, keep]


def block_covariates(design: Design, block: Block, frame: pd.DataFrame) -> np.ndarray:
    """Random-effects covariates of new rows for one block (its Z columns, per row)."""
    parts = []
    for t in design.reterms:
        if t.factor == block.factor:
            spec = design.term_specs[f"({t.expr} | {t.factor})"]
            try:
                parts.append(np.asarray(spec.get_model_matrix(frame), dtype=float))
            except Exception as exc:
                raise DataError(f"cannot build ({t.expr} | {t.factor}) for newdata: {exc}") from exc
    return np.hstack(parts)


def block_rows(design: Design, block: Block, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Random-effects covariates of new rows for one block and their level codes.

    Levels not seen in the fit get code −1 (their effect is taken as 0).
    """
    factors = tuple(block.factor.split(":"))
    missing = [f for f in factors if f not in frame.columns]
    if missing:
        raise DataError(f"newdata lacks the grouping column(s) {', '.join(missing)}; "
                        "use re=False for population predictions")
    codes, labels = group_codes(frame, factors)
    return block_covariates(design, block, frame), block.levels.get_indexer(labels)[codes]
