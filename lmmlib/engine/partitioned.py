"""Designs of partitioned (Dask) data: the levels pass and the template design.

A linear mixed model needs only cross-products of its model matrices
(:mod:`lmmlib.engine.pls`), which are sums over rows.  Data held as a Dask
DataFrame are therefore fitted in two passes over the partitions, none of
which holds more than one partition's rows at a time:

1. :func:`scan_levels` cleans every partition as the in-memory model frame
   does (the formula's columns, plain numpy dtypes, incomplete rows dropped
   and counted) and collects the observed values of every grouping factor
   and factor column, the response's range and the number of rows;
2. :func:`lmmlib.engine.partsums.partition_products` builds each partition's
   X and Z blocks against the levels of step 1 (:mod:`lmmlib.engine.partrows`,
   straight from the numeric arrays where the formula allows) and sums their
   cross-products.

Between the two, :func:`template_design` builds the :class:`PartitionedDesign`
from a small *template* frame in which every observed level appears: its
model-matrix specs (contrasts, term columns) and grouping factors (levels in
lme4's order, blocks, θ layout) are those of the in-memory fit of all rows.
The design holds no per-observation arrays (X, y, Z have zero rows); its
``nobs`` is the number of rows used, and its ``plan`` the direct route of
pass 2 (:func:`lmmlib.engine.partrows.make_plan`) when there is one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, DataWarning, FormulaError
from .design import Design, fixed_matrix, split_offsets
from .formula import ParsedFormula, expand_dot, parse_formula
from .frame import required_columns
from .names import strip_quotes
from .partrows import CleanRule, check_finite, clean_partition, make_plan
from .reterms import Block, build_blocks
from .rows import as_na_action
from .threads import blas_threads

__all__ = ["CleanRule", "PartitionedDesign", "clean_partition", "is_dask_frame",
           "scan_levels", "template_design"]


def is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing Dask).

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame({"y": [1.0]}))
    False
    """
    return (type(data).__module__.startswith("dask.") and hasattr(data, "map_partitions")
            and hasattr(data, "npartitions") and hasattr(data, "columns"))


@dataclass(frozen=True)
class PartitionedDesign(Design):
    """A :class:`~lmmlib.engine.design.Design` without per-observation arrays.

    ``frame``, ``y``, ``X`` and the blocks' ``codes`` and ``Z`` have no rows;
    ``n_obs`` is the number of observations the cross-products were summed over.
    """

    n_obs: int = 0
    nparts: int = 0
    group_values: dict = field(default_factory=dict, repr=False)
    plan: Any = field(default=None, repr=False, compare=False)  # partrows.FastPlan or None

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.n_obs


# -- pass 1: levels ------------------------------------------------------------------

def _column_kind(col: pd.Series) -> str:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return "ordered" if col.dtype.ordered else "categorical"
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_numeric_dtype(col):
        return "numeric"
    return "object"


#: Largest value range of an integer column whose distinct values are found by counting,
#: relative to its rows (wider ranges are hashed).
COUNT_SPREAD = 8


def _dense_range(arrays: list[np.ndarray]) -> tuple[int, int] | None:
    """The value range of integer arrays if it is dense enough to count over, else None."""
    if not arrays or arrays[0].dtype.kind not in "iu" or any(a.dtype != arrays[0].dtype
                                                             for a in arrays):
        return None
    sized = [a for a in arrays if a.size]
    if not sized:
        return None
    low = min(int(a.min()) for a in sized)
    high = max(int(a.max()) for a in sized)
    if high - low >= COUNT_SPREAD * sum(a.size for a in sized) + 1024 or low <= -2**62 \
            or high >= 2**62:
        return None
    return low, high


def distinct_values(*arrays: np.ndarray) -> np.ndarray:
    """The distinct values of arrays: by marking a range for dense integers, else by hashing.

    Dense integers come out sorted, other values in order of first appearance
    (levels are sorted later in either case).

    Examples
    --------
    >>> distinct_values(np.array([7, 3, 7, 5])).tolist()
    [3, 5, 7]
    >>> distinct_values(np.array([4, 3]), np.array([5, 3])).tolist()
    [3, 4, 5]
    >>> distinct_values(np.array([2.5, 1.0, 2.5])).tolist()
    [2.5, 1.0]
    """
    span = _dense_range(list(arrays))
    if span is None:
        return pd.unique(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])
    low, high = span
    seen = np.zeros(high - low + 1, dtype=bool)
    for a in arrays:
        seen[a.astype(np.int64, copy=False) - low] = True
    return (np.flatnonzero(seen) + low).astype(arrays[0].dtype)


def _numeric_levels(part: pd.DataFrame, rule: CleanRule) -> dict | None:
    """:func:`partition_levels` from the arrays, if all columns are numpy numbers (else None)."""
    name = strip_quotes(rule.response)
    if name not in rule.names:
        return None
    cols = {}
    for c in rule.names:
        dtype = part[c].dtype
        if not (isinstance(dtype, np.dtype) and dtype.kind in "fiu"):
            return None
        cols[c] = part[c].to_numpy()
    missing, bad = {}, None
    for c, values in cols.items():
        if values.dtype.kind == "f":
            nan = np.isnan(values)
            count = int(np.count_nonzero(nan))
            if count:
                missing[c] = count
                bad = nan if bad is None else bad | nan
    if bad is not None:
        cols = {c: v[~bad] for c, v in cols.items()}
    y = cols[name]
    check_finite(name, y)
    return {"rows": len(part), "missing": missing,
            "dropped": 0 if bad is None else int(np.count_nonzero(bad)), "bad_response": 0,
            "kinds": dict.fromkeys(rule.names, "numeric"),
            "levels": {c: distinct_values(cols[c]) for c in rule.grouping}, "categories": {},
            "used": len(y), "ymin": float(y.min()) if len(y) else np.inf,
            "ymax": float(y.max()) if len(y) else -np.inf}


def partition_levels(part: pd.DataFrame, rule: CleanRule) -> dict:
    """Pass-1 summary of one partition: counts, column kinds, observed levels, y range."""
    fast = _numeric_levels(part, rule)
    if fast is not None:
        return fast
    frame, y, info = clean_partition(part, rule)
    kinds, levels, categories = {}, {}, {}
    for c in frame.columns:
        col = frame[c]
        kinds[c] = _column_kind(col)
        if kinds[c] != "numeric" or c in rule.grouping:
            if kinds[c] in ("categorical", "ordered"):
                categories[c] = tuple(col.cat.categories)
                levels[c] = np.asarray(col.cat.categories[np.unique(col.cat.codes)])
            else:
                levels[c] = pd.unique(col.to_numpy())
    info.update(kinds=kinds, levels=levels, categories=categories, used=len(y),
                ymin=float(y.min()) if len(y) else np.inf,
                ymax=float(y.max()) if len(y) else -np.inf)
    return info


def combine_levels(*parts: dict) -> dict:
    """Merge pass-1 summaries (an associative reduction)."""
    out = parts[0]
    out = {**out, "missing": dict(out["missing"]), "levels": dict(out["levels"]),
           "categories": dict(out["categories"]),
           "kinds": {k: {v} if isinstance(v, str) else set(v) for k, v in out["kinds"].items()}}
    for p in parts[1:]:
        for key in ("rows", "dropped", "bad_response", "used"):
            out[key] += p[key]
        for c, v in p["missing"].items():
            out["missing"][c] = out["missing"].get(c, 0) + v
        for c, v in p["levels"].items():
            old = out["levels"].get(c)
            out["levels"][c] = v if old is None else distinct_values(old, v)
        for c, v in p["kinds"].items():
            out["kinds"].setdefault(c, set()).update({v} if isinstance(v, str) else v)
        for c, v in p["categories"].items():
            if out["categories"].get(c, v) != v:
                out["categories"][c] = None  # categories differ: sorted union
            else:
                out["categories"][c] = v
        out["ymin"], out["ymax"] = min(out["ymin"], p["ymin"]), max(out["ymax"], p["ymax"])
    return out


def tree_reduce(delayed_parts: list, combine: Any, split_every: int = 4) -> Any:
    """Combine a list of Dask delayed values by a tree of ``combine`` calls.

    A small ``split_every`` keeps few partitions' summaries in memory at once
    (each holds arrays over the levels of the first grouping factor).
    """
    import dask

    parts = list(delayed_parts)
    while len(parts) > 1:
        parts = [dask.delayed(combine)(*parts[i : i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _compute(value: Any, progress: bool, scheduler: Any) -> Any:
    """Compute a pass, with one BLAS thread (the partitions are the parallelism)."""
    import dask

    kwargs = {} if scheduler is None else {"scheduler": scheduler}
    with blas_threads(1):
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                return dask.compute(value, **kwargs)[0]
        return dask.compute(value, **kwargs)[0]


def _partitions(ddf: Any) -> list:
    return list(ddf.to_delayed())


def scan_levels(ddf: Any, rule: CleanRule, progress: bool = False, scheduler: Any = None) -> dict:
    """Pass 1 over a Dask DataFrame: :func:`partition_levels` of every partition, merged."""
    import dask

    rule_d = dask.delayed(rule, traverse=False)
    leaves = [dask.delayed(partition_levels)(p, rule_d) for p in _partitions(ddf)]
    return combine_levels(_compute(tree_reduce(leaves, combine_levels), progress, scheduler))


def report_dropped(summary: dict, rule: CleanRule) -> None:
    """Warn (or, for ``na_action="fail"``, raise) about incomplete rows, as the model frame."""
    total = summary["rows"]
    if summary["dropped"]:
        counts = ", ".join(f"{c}: {summary['missing'][c]}" for c in rule.names
                           if c in summary["missing"])
        if rule.na_action == "fail":
            shown = ", ".join(repr(c) for c in rule.names if c in summary["missing"])
            raise DataError(f"missing values in column(s) {shown} ({counts} of {total} rows) "
                            "and na_action='fail'; drop or fill them, or use na_action='omit'")
        warnings.warn(f"dropped {summary['dropped']} of {total} rows with missing values "
                      f"({counts})", DataWarning, stacklevel=4)
    if summary["bad_response"]:
        if rule.na_action == "fail":
            raise DataError(f"the response {rule.response!r} is not finite on "
                            f"{summary['bad_response']} rows and na_action='fail'")
        warnings.warn(f"dropped {summary['bad_response']} of {total - summary['dropped']} rows "
                      f"where the response {rule.response!r} is not finite (e.g. a log of a "
                      "value <= 0)", DataWarning, stacklevel=4)
    if summary["used"] < 2:
        raise DataError(f"only {summary['used']} complete row(s) of {total}: a model needs "
                        "several observations")
    if summary["ymin"] == summary["ymax"]:
        raise DataError(f"response {strip_quotes(rule.response)!r} is constant "
                        f"({summary['ymin']!r}); nothing to model")


# -- the template design -----------------------------------------------------------

_STATEFUL = "stateful transforms such as scale() or poly() learn from all rows"


def _sorted_levels(name: str, values: np.ndarray, categories: tuple | None) -> np.ndarray:
    if categories is not None:
        seen = set(values.tolist())
        return np.asarray([c for c in categories if c in seen], dtype=object)
    try:
        return np.asarray(pd.Index(values).sort_values())
    except TypeError as exc:
        raise DataError(f"column {name!r} mixes values of different types that cannot be "
                        "ordered; convert it to one type") from exc


def _template_column(name: str, summary: dict, m: int, rng: np.random.Generator) -> Any:
    kinds = summary["kinds"].get(name, {"numeric"})
    if len(kinds) > 1:
        raise DataError(f"column {name!r} has different types in different partitions "
                        f"({', '.join(sorted(kinds))}); convert it to one type")
    kind = next(iter(kinds))
    if name not in summary["levels"]:
        return rng.uniform(1.0, 2.0, m)
    cats = summary["categories"].get(name) if kind in ("categorical", "ordered") else None
    levels = _sorted_levels(name, summary["levels"][name], cats)
    if len(levels) == 0:
        raise DataError(f"column {name!r} has no values in the complete rows")
    values = levels[np.arange(m) % len(levels)]
    if kind in ("categorical", "ordered"):
        return pd.Categorical(values, categories=levels, ordered=kind == "ordered")
    if kind in ("bool", "numeric"):
        return values.astype(bool if kind == "bool" else np.asarray(list(levels)).dtype)
    return values.astype(object)


def template_frame(summary: dict, rule: CleanRule) -> pd.DataFrame:
    """A small frame in which every observed level of every factor appears."""
    m = max([2, *(len(v) for v in summary["levels"].values())])
    rng = np.random.default_rng(0)
    return pd.DataFrame({c: _template_column(c, summary, m, rng) for c in rule.names})


def _has_state(spec: Any) -> bool:
    inner = getattr(spec, "spec", None)
    return bool(getattr(inner, "transform_state", None))


def _check_sizes(design: Design, n: int) -> None:
    for t in design.reterms:
        b = design.blocks[t.block]
        if b.nlevels < 2:
            raise DataError(f"grouping factor {b.factor!r} has a single level: its variance "
                            "cannot be estimated")
        if b.nlevels * t.q >= n:
            raise DataError(f"term ({t.expr} | {t.factor}): {b.nlevels} levels x {t.q} effects "
                            f"for {n} observations leaves no residual information")
    if len(design.xnames) >= n:
        raise DataError(f"{len(design.xnames)} fixed effects for {n} observations: too few data")


def parse_for_partitions(formula: Any, columns: Any) -> ParsedFormula:
    """The parsed formula, refusing what the partitioned fit cannot do."""
    if isinstance(formula, ParsedFormula):
        parsed = formula
    elif isinstance(formula, str):
        parsed = parse_formula(formula)
    else:
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    if not parsed.is_mixed:
        raise FormulaError(f"formula {parsed.text!r} has no random-effects term such as "
                           "(1 | group)")
    parsed = expand_dot(parsed, [str(c) for c in columns])
    if split_offsets(parsed)[1]:
        raise FormulaError(f"formula {parsed.text!r}: offset() terms are not available for Dask "
                           "data; subtract the offset from the response first")
    for t in parsed.random:
        if len(t.factors) > 1:
            raise FormulaError(
                f"the grouping factor {t.group!r} of ({t.expr} | {t.group}) combines several "
                "columns, which the Dask fit does not support; add the combined column first, "
                "e.g. ddf['a_b'] = ddf['a'].astype(str) + ':' + ddf['b'].astype(str)")
    return parsed


def make_rule(parsed: ParsedFormula, columns: Any, na_action: str) -> CleanRule:
    """The cleaning rule of a formula on data with these columns."""
    na_action = as_na_action(na_action)
    if na_action == "exclude":
        raise FormulaError("na_action='exclude' is not available for Dask data (it pads "
                           "per-row results); use 'omit' or 'fail'")
    columns = [str(c) for c in columns]
    names = tuple(required_columns(parsed, columns))
    dup = [c for c in names if columns.count(c) > 1]
    if dup:
        raise DataError(f"the data have several columns named {', '.join(map(repr, dup))}")
    grouping = tuple(dict.fromkeys(f for t in parsed.random for f in t.factors))
    return CleanRule(names, grouping, parsed.response, na_action)


def _group_values(template: pd.DataFrame, blocks: list[Block]) -> dict[str, pd.Index]:
    """The raw values of each grouping factor's levels, in level order (a fast lookup).

    Codes of a partition's values are then found by value, not through their
    labels; only plain numeric and string values are looked up this way.
    """
    out = {}
    for b in blocks:
        col = template[b.factor]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(col):
            continue
        first = np.unique(b.codes, return_index=True)[1]  # a template row of every level
        out[b.factor] = pd.Index(col.to_numpy()[first])
    return out


def template_design(parsed: ParsedFormula, summary: dict, rule: CleanRule,
                    nparts: int) -> PartitionedDesign:
    """The design of all rows, built on the template frame (see the module notes).

    The design has all the fixed-effects columns of the formula; dependent
    ones are dropped once their cross-products are known.
    """
    template = template_frame(summary, rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        X, names, spec = fixed_matrix(parsed.fixed, template)
        blocks, reterms, specs = build_blocks(parsed.random, template, residual=False)
    if _has_state(spec) or any(_has_state(s) for s in specs.values()):
        raise FormulaError(f"formula {parsed.text!r}: {_STATEFUL} of the data, which the Dask "
                           "fit does not support; add the transformed column first")
    empty = [Block(b.factor, b.levels, np.zeros(0, np.int64), np.zeros((0, b.q)), b.template,
                   b.colnames) for b in blocks]
    design = PartitionedDesign(parsed, template.iloc[:0], np.zeros(0), np.zeros((0, X.shape[1])),
                               tuple(names), tuple(empty), tuple(reterms), spec, specs, (),
                               None, n_obs=int(summary["used"]), nparts=nparts,
                               group_values=_group_values(template, blocks))
    _check_sizes(design, design.n_obs)
    return replace(design, plan=make_plan(rule, template, design, X, blocks))
