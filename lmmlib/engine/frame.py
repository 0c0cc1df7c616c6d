"""The model frame: the columns a formula needs, checked and cleaned.

All input validation that can be done on the raw data lives here, so that the
later stages only ever see finite numbers and well-formed grouping factors:

* any pandas frame, a mapping of equal-length columns, or a frame with a
  ``to_pandas()`` method (polars, pyarrow) is accepted;
* pandas' extension dtypes (``string``, ``string[pyarrow]``, nullable
  ``Int64``/``Float64``/``boolean``, as from ``DataFrame.convert_dtypes()``)
  become plain numpy columns, their missing values NaN;
* dates, durations and complex numbers are refused as covariates, numbers
  stored as text are reported, and a column mixing numbers with strings is
  refused (``1`` and ``"1"`` would be two different levels);
* ``subset`` (a boolean mask or a query string, R's ``subset`` argument)
  selects rows first;
* rows with missing values are dropped and counted, and a response
  expression such as ``log(y)`` that is undefined on some rows drops those
  rows with a counted warning, as R's model frame does with ``na.omit``;
  ``na_action="fail"`` refuses them instead (R's ``na.fail``) and
  ``na_action="exclude"`` (R's ``na.exclude``) drops them but records where
  the rows used sit among the data's (:class:`lmmlib.engine.rows.Exclusion`), so that fitted
  values and residuals can be padded with NaN back to the data's rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, DataWarning, FormulaError
from .formula import ParsedFormula
from .names import alias_text, strip_quotes
from .rows import Exclusion, as_na_action, subset_mask
from .terms import evaluate_piece

__all__ = ["ModelFrame", "as_frame", "build_frame", "model_frame", "normalise_columns",
           "required_columns", "response_vector"]


def as_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame, a mapping of columns, or a frame with ``to_pandas()``.

    Examples
    --------
    >>> as_frame({"y": [1, 2], "g": ["a", "b"]}).shape
    (2, 2)
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        lengths = {str(k): np.size(v) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise DataError(f"the columns of data must have equal lengths, got {shown}")
        frame = pd.DataFrame(dict(data))
    elif hasattr(data, "to_pandas"):  # polars, pyarrow tables
        frame = data.to_pandas()
    else:
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    return frame


def required_columns(parsed: ParsedFormula, columns: Iterable[str]) -> list[str]:
    """All data columns a parsed formula refers to, response first."""
    columns = [str(c) for c in columns]
    names: list[str] = []
    pieces = [parsed.response, parsed.fixed, *(t.expr for t in parsed.random)]
    groups = [list(alias_text(p, columns).columns) for p in pieces]
    for t in parsed.random:
        for f in t.factors:
            if f not in columns:
                alias_text(f"`{f}`", columns)  # raises the unknown-column error
        groups.append(list(t.factors))
    for group in groups:
        names.extend(n for n in group if n not in names)
    return names


def _check_duplicates(data: pd.DataFrame, names: Iterable[str]) -> None:
    if data.columns.is_unique:
        return
    counts = pd.Index(data.columns).value_counts()
    dup = [n for n in names if counts.get(n, 0) > 1]
    if dup:
        raise DataError(f"the data have several columns named {', '.join(map(repr, dup))}; "
                        "rename them so that each name is used once")


_NUMBERS = {"integer", "floating", "mixed-integer-float", "decimal"}


def _object_column(name: str, col: pd.Series, grouping: bool) -> pd.Series:
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind in ("mixed-integer", "mixed") and {"string"} <= {
            pd.api.types.infer_dtype([v]) for v in col.dropna().unique()[:1000]}:
        raise DataError(f"column {name!r} mixes numbers and strings (for example 1 and '1' "
                        "would be different levels); convert it to one type, e.g. "
                        f"data[{name!r}].astype(str)")
    if kind == "boolean":
        return col.astype(bool) if col.notna().all() else col
    if kind in _NUMBERS and not grouping:
        return pd.to_numeric(col).astype(float)
    if kind == "string" and not grouping:
        as_num = pd.to_numeric(col, errors="coerce")
        if as_num.notna().sum() == col.notna().sum():
            warnings.warn(f"column {name!r} holds numbers stored as text: it is used as a "
                          f"factor with {col.nunique()} levels; convert it with "
                          f"pd.to_numeric(data[{name!r}]) to use it as a number",
                          DataWarning, stacklevel=6)
    return col


def _plain_column(name: str, col: pd.Series, grouping: bool) -> pd.Series:
    """One column as a numpy-backed Series formulaic and the engine understand."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return col
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"column {name!r} holds complex numbers; use its real part "
                        f"(np.real) or modulus (np.abs)")
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype) \
            or isinstance(dtype, pd.PeriodDtype):
        if grouping:
            return col.astype(str).where(col.notna(), np.nan)
        raise DataError(f"column {name!r} holds dates or durations ({dtype}); use a number, "
                        f"e.g. days since the first: (data[{name!r}] - data[{name!r}].min())"
                        " / pd.Timedelta(days=1)")
    if isinstance(dtype, pd.BooleanDtype):
        return col.astype(object).where(col.notna(), np.nan) if col.isna().any() \
            else col.astype(bool)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return col
        return pd.Series(col.to_numpy(dtype=float, na_value=np.nan), index=col.index, name=name)
    if pd.api.types.is_bool_dtype(dtype):
        return col
    if isinstance(dtype, pd.StringDtype) or pd.api.types.is_string_dtype(dtype):
        col = pd.Series(col.to_numpy(dtype=object, na_value=np.nan), index=col.index, name=name)
    return _object_column(name, col, grouping)


def normalise_columns(frame: pd.DataFrame, grouping: Iterable[str] = ()) -> pd.DataFrame:
    """Every column of ``frame`` as a plain numpy column (see the module notes)."""
    grouping = set(grouping)
    original = {c: frame[c] for c in frame.columns}
    cols = {c: _plain_column(c, col, c in grouping) for c, col in original.items()}
    if all(cols[c] is original[c] for c in original):
        return frame
    return pd.DataFrame(cols, index=frame.index)


def _missing_rows(frame: pd.DataFrame, total: int, na_action: str) -> np.ndarray:
    """Mask of the rows with a missing value (an error for ``na_action="fail"``)."""
    rows = np.zeros(len(frame), dtype=bool)
    for c in frame.columns:  # column by column: no n × columns boolean frame
        col = frame[c]
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iub":
            continue  # numpy integers and booleans cannot be missing
        if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
            rows |= np.isnan(col.to_numpy())
        else:
            rows |= col.isna().to_numpy()
    if rows.any():
        bad = frame.isna()
        counts = ", ".join(f"{c}: {int(n)}" for c, n in bad.sum().items() if n)
        if na_action == "fail":
            shown = ", ".join(map(repr, bad.columns[bad.any()]))
            raise DataError(f"missing values in column(s) {shown} ({counts} of {total} rows) "
                            "and na_action='fail'; drop or fill them, or use "
                            "na_action='omit' or 'exclude'")
        warnings.warn(
            f"dropped {int(rows.sum())} of {total} rows with missing values ({counts})",
            DataWarning,
            stacklevel=6,
        )
    if rows.all():
        raise DataError(f"no complete rows left after dropping missing values (of {total})")
    return rows


def _drop_unused_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """Remove categories with no rows (R's droplevels): no empty dummy columns."""
    unused = [c for c, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)
              and len(dtype.categories) > frame[c].nunique()]
    if not unused:
        return frame
    frame = frame.copy()
    for c in unused:
        frame[c] = frame[c].cat.remove_unused_categories()
    return frame


def _response_expression(frame: pd.DataFrame, response: str,
                         na_action: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Evaluate a response such as ``log(y)``; also the mask of rows where it is undefined."""
    y = evaluate_piece(response, frame)
    bad = ~np.isfinite(y)
    if bad.any():
        if na_action == "fail":
            raise DataError(f"the response {response!r} is not finite on {int(bad.sum())} of "
                            f"{len(frame)} rows (e.g. a log of a value <= 0) and "
                            "na_action='fail'")
        warnings.warn(f"dropped {int(bad.sum())} of {len(frame)} rows where the response "
                      f"{response!r} is not finite (e.g. a log of a value <= 0)",
                      DataWarning, stacklevel=6)
        if bad.all():
            raise DataError(f"the response {response!r} is not finite on any row")
    return frame.assign(**{response: y}).loc[~bad], bad


def response_vector(frame: pd.DataFrame, response: str) -> np.ndarray:
    """The response as a float vector; a non-numeric or constant response is an error."""
    name = strip_quotes(response)
    if name not in frame.columns:
        raise FormulaError(f"the response {response!r} is not in the model frame")
    col = frame[name]
    if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
        raise DataError(f"response {name!r} must be numeric, it has dtype {col.dtype}")
    y = col.to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise DataError(f"response {name!r} has {int((~np.isfinite(y)).sum())} "
                        "infinite or undefined values")
    if np.ptp(y) == 0:
        raise DataError(f"response {name!r} is constant ({float(y[0])!r}); nothing to model")
    return y


@dataclass(frozen=True)
class ModelFrame:
    """The model frame and what the later stages need besides it.

    Attributes
    ----------
    frame : DataFrame
        The rows and columns of the fit (see :func:`model_frame`).
    state : DataFrame
        The needed columns on every row of the data, before ``subset`` and the
        removal of incomplete rows: where stateful transforms (``scale``,
        ``poly``) learn their parameters, as in R.
    exclusion : Exclusion or None
        For ``na_action="exclude"``: where the frame's rows sit among the data's.
    """

    frame: pd.DataFrame
    state: pd.DataFrame
    exclusion: Exclusion | None = None


def build_frame(parsed: ParsedFormula, data: Any, subset: Any = None,
                na_action: str = "omit") -> ModelFrame:
    """The model frame of a formula on data, with ``subset`` and ``na_action`` as in R.

    Parameters
    ----------
    parsed : ParsedFormula
        Output of :func:`lmmlib.engine.formula.parse_formula` (``.`` expanded).
    data : DataFrame or mapping
        The user's data.
    subset : array_like, Series or str, optional
        The rows to use (see :func:`lmmlib.engine.rows.subset_mask`).
    na_action : {"omit", "fail", "exclude"}
        Rows with missing values are dropped (``"omit"``, ``"exclude"``) or an
        error (``"fail"``).

    Returns
    -------
    ModelFrame

    Examples
    --------
    >>> from lmmlib.engine.formula import parse_formula
    >>> d = pd.DataFrame({"y": [1.0, None, 3.0, 4.0, 2.0], "x": [1, 2, 3, 4, 5]})
    >>> mf = build_frame(parse_formula("y ~ x"), d, subset="x > 1", na_action="exclude")
    >>> mf.frame.index.tolist(), mf.exclusion.index.tolist(), mf.exclusion.kept.tolist()
    ([2, 3, 4], [1, 2, 3, 4], [1, 2, 3])
    """
    na_action = as_na_action(na_action)
    data = as_frame(data)
    if len(data) == 0:
        raise DataError("the data have 0 rows")
    names = required_columns(parsed, data.columns)
    _check_duplicates(data, names)
    grouping = {f for t in parsed.random for f in t.factors}
    # a dict of the columns: cheaper than .loc for the many small fits
    state = normalise_columns(pd.DataFrame({c: data[c] for c in names}, copy=False), grouping)
    mask = subset_mask(data, subset)
    frame = state if mask is None else state.loc[mask]
    index = frame.index
    dropped = _missing_rows(frame, len(frame), na_action)
    frame = _drop_unused_levels(frame.loc[~dropped] if dropped.any() else frame)
    if strip_quotes(parsed.response) not in frame.columns:
        frame, bad = _response_expression(frame, parsed.response, na_action)
        kept = np.flatnonzero(~dropped)[~bad]
        frame = _drop_unused_levels(frame) if bad.any() else frame
    else:
        kept = np.flatnonzero(~dropped)
    if len(frame) < 2:
        raise DataError(f"only {len(frame)} complete row: a model needs several observations")
    exclusion = Exclusion(index, kept) if na_action == "exclude" else None
    return ModelFrame(frame, state, exclusion)


def model_frame(parsed: ParsedFormula, data: Any, subset: Any = None,
                na_action: str = "omit") -> pd.DataFrame:
    """Select the columns a formula needs and drop incomplete rows.

    Parameters
    ----------
    parsed : ParsedFormula
        Output of :func:`lmmlib.engine.formula.parse_formula`.
    data : DataFrame or mapping
        The user's data.
    subset : array_like, Series or str, optional
        The rows to use, as R's ``subset`` (see :func:`lmmlib.engine.rows.subset_mask`).
    na_action : {"omit", "fail", "exclude"}
        What to do with rows with missing values (see :func:`build_frame`).

    Returns
    -------
    DataFrame
        Only the needed columns (plain numpy dtypes), complete rows, original
        index kept.  A response expression such as ``log(y)`` is added as a
        column of that name.

    Warns
    -----
    DataWarning
        When rows with missing values are dropped (the message counts them),
        when the response expression is undefined on some rows, and for
        numbers stored as text.

    Notes
    -----
    Categories of pandas ``Categorical`` columns without any (remaining) row are
    dropped, as R's factors drop unused levels; the first remaining category
    is the reference level.
    """
    return build_frame(parsed, data, subset, na_action).frame
