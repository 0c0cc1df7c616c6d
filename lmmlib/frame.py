"""The model frame: the columns a formula needs, checked and cleaned.

All input validation that can be done on the raw data lives here, so that the
later stages only ever see finite numbers and well-formed grouping factors.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula

from .errors import DataError, DataWarning, FormulaError
from .formula import ParsedFormula

__all__ = ["model_frame", "required_columns", "as_frame"]


def as_frame(data: Any) -> pd.DataFrame:
    """Accept a DataFrame or a mapping of columns; anything else is an error."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")


@lru_cache(maxsize=512)
def _variables(expr: str) -> frozenset[str]:
    """Column names used by a formulaic expression."""
    try:
        return frozenset(str(v) for v in Formula(expr).required_variables)
    except Exception as exc:  # formulaic raises many types on bad syntax
        raise FormulaError(f"cannot parse formula part {expr!r}: {exc}") from exc


def required_columns(parsed: ParsedFormula) -> list[str]:
    """All data columns a parsed formula refers to, response first."""
    names: list[str] = []
    for group in (
        _variables(parsed.response),
        _variables(parsed.fixed),
        *(_variables(t.expr) for t in parsed.random),
        *(set(t.factors) for t in parsed.random),
    ):
        names.extend(sorted(n for n in group if n not in names))
    return names


def _check_columns(data: pd.DataFrame, names: Iterable[str]) -> None:
    missing = [n for n in names if n not in data.columns]
    if not missing:
        return
    hints = []
    for n in missing:
        close = difflib.get_close_matches(n, [str(c) for c in data.columns], n=1)
        hints.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise FormulaError(
        f"unknown column{'s' if len(missing) > 1 else ''} {', '.join(hints)}; "
        f"the data have: {', '.join(map(str, data.columns[:20]))}"
    )


def _drop_missing(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.isna()
    rows = bad.any(axis=1)
    if rows.any():
        counts = ", ".join(f"{c}: {int(n)}" for c, n in bad.sum().items() if n)
        warnings.warn(
            f"dropped {int(rows.sum())} of {len(frame)} rows with missing values ({counts})",
            DataWarning,
            stacklevel=5,
        )
        frame = frame.loc[~rows]
    if frame.empty:
        raise DataError("no complete rows left after dropping missing values")
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


def response_vector(frame: pd.DataFrame, response: str) -> np.ndarray:
    """The response as a float vector; a non-numeric or constant response is an error."""
    if response in frame.columns:
        col = frame[response]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise DataError(
                f"response {response!r} must be numeric, it has dtype {col.dtype}"
            )
        y = col.to_numpy(dtype=float)
    else:
        from formulaic import model_matrix

        y = np.asarray(model_matrix(f"0 + {response}", frame), dtype=float)
        if y.ndim != 2 or y.shape[1] != 1:
            raise DataError(f"response {response!r} must be a single numeric column")
        y = y[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(f"response {response!r} has {int((~np.isfinite(y)).sum())} "
                        "infinite or undefined values")
    if np.ptp(y) == 0:
        raise DataError(f"response {response!r} is constant ({y[0]!r}); nothing to model")
    return y


def model_frame(parsed: ParsedFormula, data: Any) -> pd.DataFrame:
    """Select the columns a formula needs and drop incomplete rows.

    Parameters
    ----------
    parsed : ParsedFormula
        Output of :func:`lmmlib.formula.parse_formula`.
    data : DataFrame or mapping
        The user's data.

    Returns
    -------
    DataFrame
        Only the needed columns, complete rows, original index kept.

    Warns
    -----
    DataWarning
        When rows with missing values are dropped (the message counts them).

    Notes
    -----
    Categories of pandas ``Categorical`` columns without any (remaining) row are
    dropped, as R's factors drop unused levels; the first remaining category
    is the reference level.
    """
    data = as_frame(data)
    names = required_columns(parsed)
    _check_columns(data, names)
    return _drop_unused_levels(_drop_missing(data.loc[:, names]))
