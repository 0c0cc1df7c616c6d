"""Which rows of the data a fit uses: R's ``subset`` and ``na.action`` arguments.

``subset`` selects rows before anything else (a boolean mask or a condition
on the columns); ``na_action`` says what happens to the rows with missing
values: dropped (``"omit"``, R's ``na.omit``), an error (``"fail"``,
``na.fail``), or dropped with a record of where the fit's rows sit among the
data's (``"exclude"``, ``na.exclude``: an :class:`Exclusion`), so that fitted
values and residuals can be padded with NaN back to the data's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..checks import as_choice
from ..errors import ArgumentError, DataError

__all__ = ["row_values", "NA_ACTIONS", "Exclusion", "as_na_action", "subset_mask"]

#: Values of ``na_action``, as R's ``na.omit``, ``na.fail`` and ``na.exclude``.
NA_ACTIONS = ("omit", "fail", "exclude")


@dataclass(frozen=True)
class Exclusion:
    """Where the rows of a fit sit among the data's rows (R's ``na.exclude``).

    Attributes
    ----------
    index : pandas.Index
        The rows of the data (after ``subset``).
    kept : ndarray of int
        Positions in ``index`` of the rows the fit used, in their order.
    """

    index: pd.Index
    kept: np.ndarray

    def pad(self, values: Any, name: str | None = None) -> pd.Series:
        """One value per row of the fit, as a Series over the data's rows (NaN elsewhere).

        Examples
        --------
        >>> e = Exclusion(pd.Index([10, 11, 12]), np.array([0, 2]))
        >>> e.pad([1.0, 3.0]).tolist()
        [1.0, nan, 3.0]
        """
        values = np.asarray(values, dtype=float)
        if values.shape[0] != self.kept.size:
            raise DataError(f"{values.shape[0]} values for the {self.kept.size} rows of the fit")
        out = np.full((len(self.index),) + values.shape[1:], np.nan)
        out[self.kept] = values
        return pd.Series(out, index=self.index, name=name)


def as_na_action(value: Any) -> str:
    """``na_action`` as one of :data:`NA_ACTIONS` (R's ``"na.omit"`` spellings accepted).

    Examples
    --------
    >>> as_na_action("na.exclude")
    'exclude'
    """
    if isinstance(value, str) and value.startswith("na."):
        value = value[3:]
    return as_choice(value, "na_action", NA_ACTIONS)


def subset_mask(data: pd.DataFrame, subset: Any) -> np.ndarray | None:
    """The rows ``subset`` selects, as a boolean mask over the rows of ``data``.

    ``subset`` is ``None`` (every row), a boolean array or Series of one value
    per row (a Series is aligned by the data's index), or a string: a condition
    on the data's columns, evaluated by :meth:`pandas.DataFrame.eval`
    (``"Days > 2 and Subject != '308'"``; names that are not plain in
    backticks).  As in R, a missing value in the condition leaves the row out.

    Raises
    ------
    ArgumentError
        For a mask of another length or index, a non-boolean mask, or a
        condition that cannot be evaluated.

    Examples
    --------
    >>> subset_mask(pd.DataFrame({"x": [1, 2, 3]}), "x > 1").tolist()
    [False, True, True]
    """
    if subset is None:
        return None
    if isinstance(subset, str):
        try:
            value = data.eval(subset, engine="python")
        except Exception as exc:  # pandas raises many types on bad expressions
            raise ArgumentError(f"cannot evaluate subset={subset!r} on the data: {exc}") from exc
        if np.ndim(value) == 0:
            raise ArgumentError(f"subset={subset!r} gives one value, not one per row")
        subset = value
    if isinstance(subset, pd.Series):
        if not subset.index.equals(data.index):
            if subset.index.has_duplicates or not subset.index.isin(data.index).all() \
                    or data.index.has_duplicates:
                raise ArgumentError("subset is a Series whose index is not the data's; "
                                    "pass subset.to_numpy() to select by position")
            subset = subset.reindex(data.index)
        subset = subset.astype(object).where(subset.notna(), False).to_numpy()
    mask = np.asarray(subset)
    if mask.ndim != 1 or mask.shape[0] != len(data):
        raise ArgumentError(f"subset must have one value per row of the data ({len(data)}), "
                            f"got shape {mask.shape}")
    if mask.dtype != bool:
        values = [v for v in mask.tolist() if not pd.isna(v)] if mask.dtype == object else mask
        if mask.dtype != object or not all(isinstance(v, bool) for v in values):
            raise ArgumentError("subset must be boolean (True for the rows to use), got "
                                f"values of dtype {mask.dtype}")
        mask = np.array([v is True for v in mask.tolist()])
    if not mask.any():
        raise DataError("subset selects no rows of the data")
    return mask


def row_values(values: Any, data: pd.DataFrame, frame: pd.DataFrame, what: str) -> np.ndarray:
    """One number per row of the model frame: a column name of ``data`` or an array.

    For prior weights and offsets: a column is read at the model frame's rows, an
    array (one value per row of ``data``) is aligned to them.

    Raises
    ------
    DataError
        For an unknown column, an array of the wrong length or non-finite values,
        naming ``what``.
    """
    if isinstance(values, str):
        if values not in data.columns:
            raise DataError(f"{what} column {values!r} is not in the data")
        out = pd.to_numeric(data.loc[frame.index, values], errors="coerce").to_numpy(float)
        label = f"{what} column {values!r}"
    else:
        out = np.asarray(values, dtype=float).ravel()
        if out.size != len(data):
            raise DataError(f"{what} has {out.size} values for {len(data)} rows of data")
        out = out[data.index.get_indexer(frame.index)]
        label = what
    if not np.all(np.isfinite(out)):
        raise DataError(f"{label} must be finite")
    return out
