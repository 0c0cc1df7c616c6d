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
* rows with missing values are dropped and counted, and a response
  expression such as ``log(y)`` that is undefined on some rows drops those
  rows with a counted warning, as R's model frame does.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, DataWarning, FormulaError
from .formula import ParsedFormula
from .names import alias_text, strip_quotes
from .terms import evaluate_piece

__all__ = ["as_frame", "model_frame", "normalise_columns", "required_columns",
           "response_vector"]


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
    cols = {c: _plain_column(c, frame[c], c in grouping) for c in frame.columns}
    if all(cols[c] is frame[c] for c in frame.columns):
        return frame
    return pd.DataFrame(cols, index=frame.index)


def _drop_missing(frame: pd.DataFrame, total: int) -> pd.DataFrame:
    bad = frame.isna()
    rows = bad.any(axis=1)
    if rows.any():
        counts = ", ".join(f"{c}: {int(n)}" for c, n in bad.sum().items() if n)
        warnings.warn(
            f"dropped {int(rows.sum())} of {total} rows with missing values ({counts})",
            DataWarning,
            stacklevel=5,
        )
        frame = frame.loc[~rows]
    if frame.empty:
        raise DataError(f"no complete rows left after dropping missing values (of {total})")
    return frame


def _drop_unused_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """Remove categories with no rows (R's droplevels): no empty dummy columns."""
    unused = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
              and len(frame[c].cat.categories) > frame[c].nunique()]
    if not unused:
        return frame
    frame = frame.copy()
    for c in unused:
        frame[c] = frame[c].cat.remove_unused_categories()
    return frame


def _response_expression(frame: pd.DataFrame, response: str) -> pd.DataFrame:
    """Evaluate a response such as ``log(y)`` and drop the rows where it is undefined."""
    y = evaluate_piece(response, frame)
    bad = ~np.isfinite(y)
    if bad.any():
        warnings.warn(f"dropped {int(bad.sum())} of {len(frame)} rows where the response "
                      f"{response!r} is not finite (e.g. a log of a value <= 0)",
                      DataWarning, stacklevel=5)
        frame, y = frame.loc[~bad], y[~bad]
        if frame.empty:
            raise DataError(f"the response {response!r} is not finite on any row")
    return frame.assign(**{response: y})


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


def model_frame(parsed: ParsedFormula, data: Any) -> pd.DataFrame:
    """Select the columns a formula needs and drop incomplete rows.

    Parameters
    ----------
    parsed : ParsedFormula
        Output of :func:`lmmlib.engine.formula.parse_formula`.
    data : DataFrame or mapping
        The user's data.

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
    data = as_frame(data)
    if len(data) == 0:
        raise DataError("the data have 0 rows")
    names = required_columns(parsed, data.columns)
    _check_duplicates(data, names)
    grouping = {f for t in parsed.random for f in t.factors}
    frame = normalise_columns(data.loc[:, names], grouping)
    frame = _drop_unused_levels(_drop_missing(frame, len(data)))
    if strip_quotes(parsed.response) not in frame.columns:
        frame = _response_expression(frame, parsed.response)
    if len(frame) < 2:
        raise DataError(f"only {len(frame)} complete row: a model needs several observations")
    return frame
