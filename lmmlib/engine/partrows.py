"""A partition's rows as model-matrix inputs: through the model frame, or straight.

Both passes of a partitioned fit (:mod:`lmmlib.engine.partitioned`) read a
partition as model-frame rows: the formula's columns, complete rows only, the
response as floats (:func:`clean_partition`, the same rule in every pass).  The
cross-product pass then needs, for the complete rows, the matrix [X y] and
every grouping factor's codes and covariates (:class:`PartitionRows`).

There are two routes to them, with the same result:

* the general one (:func:`general_rows`) cleans a pandas frame as the
  in-memory model frame does and builds X and Z with the fit's formulaic
  specs, for any formula the partitioned fit accepts;
* the direct one (:func:`fast_rows`), for the common formulas whose fixed
  part and random-term covariates are an intercept and plain numeric columns
  (``y ~ x + z + (1 + x | g)``): the columns are taken from the partition's
  numpy arrays as they are, missing values found by one ``isnan`` per float
  column, and integer grouping values turned into codes by indexing a table
  (:class:`CodeTable`) instead of hashing.

Which route applies is decided once per fit (:func:`make_plan`), and only
after the direct columns have been checked to equal formulaic's on the
template frame; a partition whose columns are not plain numpy numbers (an
extension dtype, say) takes the general route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .frame import normalise_columns
from .names import alias_of, strip_quotes
from .reterms import Block, level_labels
from .rfunctions import CONTEXT
from .terms import MatrixSpec, evaluate_piece

if TYPE_CHECKING:
    from .partitioned import PartitionedDesign

__all__ = ["CleanRule", "CodeTable", "FastPlan", "PartitionRows", "check_finite", "clean_partition",
           "fast_rows", "general_rows", "group_codes", "make_plan", "partition_rows",
           "piece_rows"]

INTERCEPT = "(Intercept)"
#: Largest code table, relative to the number of levels (sparser integer ids are hashed).
TABLE_SPREAD = 8
_NUMBERS = "fiu"  # numpy kinds used as numbers as they are


@dataclass(frozen=True)
class CleanRule:
    """How a partition becomes model-frame rows (the same rule in every pass)."""

    names: tuple[str, ...]  # the formula's columns, response first
    grouping: tuple[str, ...]
    response: str  # the response as written (a column or an expression)
    na_action: str


def clean_partition(part: pd.DataFrame, rule: CleanRule) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The complete rows of one partition, its response and what was dropped.

    Returns the cleaned frame, the response (floats) and a dict with the
    partition's row count ``rows``, missing values per column ``missing``,
    incomplete rows ``dropped`` and rows where a response expression is not
    finite ``bad_response``.

    Examples
    --------
    >>> rule = CleanRule(("y", "g"), ("g",), "y", "omit")
    >>> part = pd.DataFrame({"y": [1.0, np.nan, 3.0], "g": ["a", "b", "b"]})
    >>> frame, y, info = clean_partition(part, rule)
    >>> y.tolist(), info["dropped"], info["missing"]
    ([1.0, 3.0], 1, {'y': 1})
    """
    # no warnings.catch_warnings here: partitions run in threads, and it is not thread-safe
    frame = normalise_columns(part.loc[:, list(rule.names)], rule.grouping)
    bad = frame.isna()
    missing = {c: int(v) for c, v in bad.sum().items() if v}
    rows = bad.any(axis=1).to_numpy()
    info = {"rows": len(part), "missing": missing, "dropped": int(rows.sum()), "bad_response": 0}
    if rows.any():
        frame = frame.loc[~rows]
    name = strip_quotes(rule.response)
    if name in frame.columns:
        col = frame[name]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise DataError(f"response {name!r} must be numeric, it has dtype {col.dtype}")
        y = col.to_numpy(dtype=float)
        check_finite(name, y)
    else:
        y = evaluate_piece(rule.response, frame) if len(frame) else np.zeros(0)
        finite = np.isfinite(y)
        if not finite.all():
            info["bad_response"] = int((~finite).sum())
            frame, y = frame.loc[finite], y[finite]
    return frame, y, info


def check_finite(name: str, y: np.ndarray) -> None:
    """Refuse a response column with infinite values (missing ones are dropped before)."""
    finite = np.isfinite(y)
    if not finite.all():
        raise DataError(f"response {name!r} has {int((~finite).sum())} "
                        "infinite or undefined values")


@dataclass(frozen=True)
class PartitionRows:
    """A partition's complete rows as the cross-product pass needs them.

    ``columns`` are the columns of [X y] (floats, each contiguous; ``None``
    for an intercept, all ones), ``blocks`` the grouping factors' codes and
    covariates for these rows, and ``z_unit`` says which columns of each
    block's Z are all ones, so that their products need no multiplication.
    """

    columns: tuple[np.ndarray | None, ...]
    blocks: tuple[Block, ...]
    z_unit: tuple[tuple[bool, ...], ...]

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.columns[-1])


# -- the general route: model frame and formulaic --------------------------------------

def piece_rows(spec: Any, frame: pd.DataFrame) -> np.ndarray:
    """A piece's columns for a partition's (clean, complete) rows.

    As ``MatrixSpec.rows`` without its checks, which pass 1 has made (every
    level was seen, no value is missing), and without ``warnings.catch_warnings``,
    which is not thread-safe and partitions run in threads.
    """
    if isinstance(spec, MatrixSpec):
        position = {c: i for i, c in enumerate(spec.columns)}
        safe = frame[list(spec.used)].set_axis([alias_of(position[c]) for c in spec.used],
                                               axis=1)
        return np.asarray(spec.spec.get_model_matrix(safe, context=CONTEXT), dtype=float)
    return spec.get_model_matrix(frame)


def group_codes(design: PartitionedDesign, block: Block, col: pd.Series) -> np.ndarray:
    """Codes of a partition's grouping values among the fit's levels (by hashing)."""
    local, uniques = pd.factorize(col)
    values = design.group_values.get(block.factor)
    where = None
    if values is not None and np.asarray(uniques).dtype.kind in "iufO":
        where = values.get_indexer(np.asarray(uniques))
    if where is None or (where < 0).any():  # by label: 1, 1.0 and "1" are one level
        where = block.levels.get_indexer(level_labels(np.asarray(uniques)))
    if (where < 0).any():  # cannot happen: pass 1 saw every value
        raise DataError(f"grouping column {block.factor!r} changed between passes over the data")
    return where[local].astype(np.int64)


def block_covariates(design: PartitionedDesign, block: Block, frame: pd.DataFrame) -> np.ndarray:
    """The covariates of one grouping factor's terms for a partition's clean rows."""
    return np.hstack([piece_rows(design.term_specs[f"({t.expr} | {t.factor})"], frame)
                      for t in design.reterms if t.factor == block.factor])


def aligned(frame: pd.DataFrame, design: PartitionedDesign) -> pd.DataFrame:
    """Categorical columns recoded to the fit's categories (those with rows, in order)."""
    out = {}
    for c in design.frame.columns:
        dtype = design.frame[c].dtype
        if isinstance(dtype, pd.CategoricalDtype) and frame[c].dtype != dtype:
            out[c] = frame[c].cat.set_categories(dtype.categories)
    return frame.assign(**out) if out else frame


def general_rows(part: pd.DataFrame, rule: CleanRule, design: PartitionedDesign) -> PartitionRows:
    """:class:`PartitionRows` through the model frame and the fit's formulaic specs."""
    frame, y, _ = clean_partition(part, rule)
    frame = aligned(frame, design)
    X = piece_rows(design.fixed_spec, frame) if len(y) else np.zeros((0, len(design.xnames)))
    X = np.asfortranarray(X, dtype=float)
    if not len(y):
        blocks = tuple(Block(b.factor, b.levels, np.zeros(0, np.int64), np.zeros((0, b.q)),
                             b.template, b.colnames) for b in design.blocks)
    else:
        blocks = tuple(Block(b.factor, b.levels, group_codes(design, b, frame[b.factor]),
                             np.asfortranarray(block_covariates(design, b, frame)), b.template,
                             b.colnames) for b in design.blocks)
    return PartitionRows((*(X[:, j] for j in range(X.shape[1])), np.ascontiguousarray(y)),
                         blocks, tuple((False,) * b.q for b in blocks))


# -- the direct route -------------------------------------------------------------------

@dataclass(frozen=True)
class CodeTable:
    """Codes of integer grouping values by indexing: ``table[value - low]``.

    Examples
    --------
    >>> t = CodeTable.of(pd.Index([10, 30, 20]))  # levels 10, 30, 20 have codes 0, 1, 2
    >>> t.codes(np.array([20, 10, 20, 30])).tolist()
    [2, 0, 2, 1]
    >>> t.codes(np.array([15])) is None  # not a level: looked up the general way
    True
    >>> CodeTable.of(pd.Index([1, 2, 3])).codes(np.array([3, 1]))  # ids 1..3: no table
    array([2, 0])
    """

    low: int
    table: np.ndarray  # code of low - 1 + i, -1 for no level (also at both ends)
    consecutive: int = 0  # > 0: the levels are low, low + 1, ... (this many), no table

    @classmethod
    def of(cls, values: pd.Index | None) -> CodeTable | None:
        """The table of levels with these raw values (``None`` unless dense integers)."""
        if values is None or len(values) == 0 or values.dtype.kind not in "iu":
            return None
        raw = values.to_numpy()
        low, high = int(raw.min()), int(raw.max())
        if high - low + 1 > TABLE_SPREAD * len(raw) + 1024 or high >= 2**62 or low <= -2**62:
            return None
        if np.array_equal(raw, np.arange(low, high + 1)):  # the code is value - low
            return cls(low, np.zeros(0, np.int64), high - low + 1)
        table = np.full(high - low + 3, -1, dtype=np.int64)
        table[raw.astype(np.int64) - (low - 1)] = np.arange(len(raw))
        return cls(low, table)

    def codes(self, values: np.ndarray) -> np.ndarray | None:
        """Codes of integer ``values``, or ``None`` if one of them is not a level."""
        if values.dtype.kind not in "iu":
            return None
        if values.size == 0:
            return np.zeros(0, np.int64)
        if self.consecutive:
            if int(values.min()) < self.low or int(values.max()) >= self.low + self.consecutive:
                return None
            codes = values.astype(np.int64, copy=False)
            return codes - self.low if self.low else codes
        # values outside the table's range land on its -1 ends (an int64 wrap-around
        # lands at least 2**62 away, outside too)
        where = values.astype(np.int64, copy=False) - (self.low - 1)
        codes = self.table.take(where, mode="clip")
        return None if codes.min() < 0 else codes


@dataclass(frozen=True)
class FastPlan:
    """Which data column is which model-matrix column, for :func:`fast_rows`.

    ``fixed`` and each entry of ``covariates`` name a numeric data column per
    model-matrix column, ``None`` for an intercept; ``tables`` has a
    :class:`CodeTable` per block (``None``: codes by hashing).
    """

    response: str
    fixed: tuple[str | None, ...]
    covariates: tuple[tuple[str | None, ...], ...]
    tables: tuple[CodeTable | None, ...]

    @property
    def numeric(self) -> frozenset[str]:
        """The columns used as numbers."""
        used = [self.response, *self.fixed, *(c for cols in self.covariates for c in cols)]
        return frozenset(c for c in used if c is not None)


def _is_number(col: pd.Series) -> bool:
    return isinstance(col.dtype, np.dtype) and col.dtype.kind in _NUMBERS


def _direct(names: tuple[str, ...], template: pd.DataFrame) -> tuple[str | None, ...] | None:
    out = []
    for nm in names:
        if nm == INTERCEPT:
            out.append(None)
        elif nm in template.columns and _is_number(template[nm]):
            out.append(nm)
        else:
            return None
    return tuple(out)


def _floats(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=float)


def _columns(names: tuple[str | None, ...], arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The named columns side by side (``None``: ones; only intercepts: no memory)."""
    if all(c is None for c in names):
        return np.broadcast_to(1.0, (n, len(names)))
    out = np.empty((n, len(names)), order="F")
    for j, c in enumerate(names):
        out[:, j] = 1.0 if c is None else arrays[c]
    return out


def make_plan(rule: CleanRule, template: pd.DataFrame, design: PartitionedDesign,
              X: np.ndarray, blocks: list[Block]) -> FastPlan | None:
    """The direct route for a design, if its columns are an intercept and numeric columns.

    ``template`` is the template frame of the design, ``X`` and ``blocks``
    its fixed-effects matrix and blocks built by formulaic: the direct
    columns must equal them exactly, or there is no plan.
    """
    response = strip_quotes(rule.response)
    if response not in template.columns or not _is_number(template[response]):
        return None
    fixed = _direct(tuple(design.fixed_spec.names), template)
    covariates = [_direct(b.colnames, template) for b in blocks]
    if fixed is None or any(c is None for c in covariates):
        return None
    arrays = {c: template[c].to_numpy() for c in template.columns if _is_number(template[c])}
    n = len(template)
    if not np.array_equal(_columns(fixed, arrays, n), X) or not all(
            np.array_equal(_columns(c, arrays, n), b.Z)
            for c, b in zip(covariates, blocks, strict=True)):
        return None
    tables = tuple(CodeTable.of(design.group_values.get(b.factor)) for b in blocks)
    return FastPlan(response, fixed, tuple(covariates), tables)


def fast_rows(part: pd.DataFrame, rule: CleanRule,
              design: PartitionedDesign) -> PartitionRows | None:
    """:class:`PartitionRows` from the partition's arrays (``None``: use :func:`general_rows`).

    The rows dropped, the response check and the codes are those of
    :func:`general_rows`; the values of X, y and Z are the same numbers.
    """
    plan = design.plan
    if plan is None:
        return None
    numeric = plan.numeric
    arrays: dict[str, Any] = {}
    bad = None
    for c in rule.names:
        col = part[c]
        if _is_number(col) or (c not in numeric and col.dtype == bool):
            values = col.to_numpy()
            missing = np.isnan(values) if values.dtype.kind == "f" else None
        elif c in numeric:
            return None
        else:  # a grouping column of another type: cleaned as in the model frame
            values = normalise_columns(part[[c]], rule.grouping)[c]
            missing = values.isna().to_numpy()
        if missing is not None and missing.any():
            bad = missing if bad is None else bad | missing
        arrays[c] = values
    if bad is not None:
        keep = ~bad
        arrays = {c: v[keep] for c, v in arrays.items()}
    y = arrays[plan.response]
    check_finite(plan.response, y)
    n = len(y)
    columns = (*(None if c is None else _floats(arrays[c]) for c in plan.fixed), _floats(y))
    blocks = []
    for b, cols, table in zip(design.blocks, plan.covariates, plan.tables, strict=True):
        raw = arrays[b.factor]
        codes = None
        if table is not None and isinstance(raw, np.ndarray):
            codes = table.codes(raw)
        if codes is None:
            codes = group_codes(design, b, raw if isinstance(raw, pd.Series) else pd.Series(raw))
        blocks.append(Block(b.factor, b.levels, codes, _columns(cols, arrays, n), b.template,
                            b.colnames))
    return PartitionRows(columns, tuple(blocks),
                         tuple(tuple(c is None for c in cols) for cols in plan.covariates))


def partition_rows(part: pd.DataFrame, rule: CleanRule, design: PartitionedDesign) -> PartitionRows:
    """A partition's :class:`PartitionRows`, by the direct route where the fit has one."""
    rows = fast_rows(part, rule, design)
    return general_rows(part, rule, design) if rows is None else rows
