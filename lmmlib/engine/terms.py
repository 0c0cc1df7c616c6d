"""Model matrices of formula pieces, for the fit and for new data.

A piece (the fixed part, a random term's expression, a response expression)
is rewritten with :func:`lmmlib.engine.names.alias_text` and evaluated by formulaic
on a frame that holds only the aliased columns, with R's functions of
:mod:`lmmlib.engine.rfunctions` (``sqrt``, R's ``scale``) in scope.  As in R:

* ordered factors (pandas ordered ``Categorical``) get polynomial contrasts
  (``contr.poly``, columns ``f.L``, ``f.Q``, ``f.C``, ``f^4``...), other factors
  treatment contrasts;
* ``poly(x, 2)`` columns are named ``poly(x, 2)1``, ``poly(x, 2)2``;
* stateful transforms (``scale``, ``poly``, ``center``, splines) learn their
  parameters on the rows given by :func:`state_rows` when a fit sets them (the
  data before ``subset`` and before incomplete rows are dropped, where R's
  model frame evaluates them), otherwise on the model frame.

The :class:`MatrixSpec` a piece returns rebuilds the same columns for new
rows, and refuses, naming the column, what would otherwise be a silent wrong
answer: a missing column, a missing value, or a level of a factor that the fit
never saw (lme4's "new levels detected in newdata").
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula

from ..errors import DataError, FormulaError
from .formula import signed_terms
from .names import alias_of, alias_text, r_names, restore_names, strip_quotes, wrap_ordered
from .rfunctions import CONTEXT

__all__ = ["MatrixSpec", "evaluate_piece", "piece_matrix", "simple_columns", "state_rows"]

#: The rows on which stateful transforms learn their parameters (see state_rows).
_STATE_ROWS: ContextVar[pd.DataFrame | None] = ContextVar("lmmlib_state_rows", default=None)


@contextmanager
def state_rows(frame: pd.DataFrame | None) -> Iterator[None]:
    """Within this context, stateful transforms learn their parameters on ``frame``.

    R's model frame evaluates ``scale(x)`` and ``poly(x, 2)`` on the whole data,
    before ``subset`` and the removal of incomplete rows; ``frame`` holds those
    rows (with the model frame's columns).  ``None`` (the default) uses the
    rows of the matrix being built.

    Examples
    --------
    >>> data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 6.0]})
    >>> with state_rows(data):
    ...     X, spec = piece_matrix("0 + scale(x)", data.iloc[2:], "the example")
    >>> (X[:, 0] * data.x.std()).tolist()  # centred at the mean of all four rows, 3
    [0.0, 3.0]
    """
    token = _STATE_ROWS.set(frame)
    try:
        yield
    finally:
        _STATE_ROWS.reset(token)


@lru_cache(maxsize=512)
def _formula(text: str) -> Formula:
    """The parsed formulaic formula (parsing is the slow part of small fits)."""
    return Formula(text)


def _lme4_name(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def _aliased_frame(frame: pd.DataFrame, columns: tuple[str, ...],
                   used: tuple[str, ...]) -> pd.DataFrame:
    position = {c: i for i, c in enumerate(columns)}
    return frame[list(used)].set_axis([alias_of(position[c]) for c in used], axis=1)


def _is_factor(col: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


@dataclass(frozen=True)
class MatrixSpec:
    """How to rebuild a piece's model-matrix columns on new rows.

    Attributes
    ----------
    piece : str
        The formula piece as written.
    columns : tuple of str
        Columns of the model frame (the aliases are their positions).
    used : tuple of str
        Columns the piece uses.
    names : tuple of str
        Model-matrix column names with the real column names (lme4's
        ``(Intercept)``).
    model_spec : formulaic.ModelSpec or callable
        formulaic's state (levels, stateful transforms) from the fit, or a
        function returning it (made on first use of :attr:`spec`).
    levels : dict
        For each factor column used, the levels present in the fit.
    """

    piece: str
    columns: tuple[str, ...]
    used: tuple[str, ...]
    names: tuple[str, ...]
    model_spec: Any = field(repr=False)
    levels: dict[str, frozenset] = field(default_factory=dict, repr=False)

    @property
    def spec(self) -> Any:
        """formulaic's ``ModelSpec`` of the piece."""
        if callable(self.model_spec):
            object.__setattr__(self, "model_spec", self.model_spec())
        return self.model_spec

    def _check_newdata(self, frame: pd.DataFrame, what: str) -> None:
        missing = [c for c in self.used if c not in frame.columns]
        if missing:
            raise DataError(f"{what} lacks the column(s) {', '.join(map(repr, missing))} "
                            f"needed by {self.piece!r}")
        for c in self.used:
            bad = frame[c].isna().to_numpy()
            if bad.any():
                rows = list(frame.index[bad][:5])
                raise DataError(f"{what} column {c!r} has {int(bad.sum())} missing value(s) "
                                f"(rows {rows}); drop or fill them before predicting")
            if c in self.levels:
                new = sorted({str(v) for v in frame[c].unique()} - self.levels[c])
                if new:
                    raise DataError(
                        f"new level(s) {', '.join(map(repr, new[:5]))} of {c!r} in {what}: "
                        "the fixed effects of a level not seen in the fit are unknown")

    def rows(self, frame: pd.DataFrame, what: str = "newdata") -> np.ndarray:
        """The piece's columns for the rows of ``frame`` (new data)."""
        self._check_newdata(frame, what)
        safe = _aliased_frame(frame, self.columns, self.used)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # formulaic warns about unseen levels
            try:
                out = self.spec.get_model_matrix(safe, context=CONTEXT)
            except Exception as exc:
                raise DataError(f"cannot build {self.piece!r} for {what}: "
                                f"{_restore(str(exc), self.columns)}") from exc
        return np.asarray(out, dtype=float)


def _restore(message: str, columns: tuple[str, ...]) -> str:
    return restore_names([message], columns)[0]


def _is_ordered(col: pd.Series) -> bool:
    return isinstance(col.dtype, pd.CategoricalDtype) and bool(col.dtype.ordered)


def _relearn_state(mm: Any, text: str, safe: pd.DataFrame, columns: tuple[str, ...],
                   used: tuple[str, ...]) -> Any:
    """Rebuild ``mm`` with its stateful transforms learned on the state rows.

    The levels of the factors stay those of the model frame (R drops unused
    levels); only the transforms' parameters come from the larger set of rows.
    """
    full = _STATE_ROWS.get()
    if full is None or len(full) == len(safe) or not set(used) <= set(full.columns):
        return mm
    rows = _aliased_frame(full, columns, used)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            learned = _formula(text).get_model_matrix(rows, na_action="ignore", context=CONTEXT)
        except Exception:  # noqa: BLE001 - rows the fit does not use cannot fail it
            return mm
    spec = mm.model_spec.update(transform_state=learned.model_spec.transform_state)
    return spec.get_model_matrix(safe, context=CONTEXT)


def simple_columns(piece: str, frame: pd.DataFrame) -> tuple[bool, list[str]] | None:
    """(intercept, columns) when ``piece`` is only ``1``/``0`` and numeric columns, else None.

    Such pieces (``1 + x + z``, ``0 + x``, the fixed part or a random term's
    expression) are the common case; their matrix is the columns themselves,
    so formulaic's machinery can be skipped.  A repeated column, a factor, a
    logical column or any expression is left to formulaic; a piece without
    any column (``0``) gives ``(False, [])``.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]})
    >>> simple_columns("1 + x", frame), simple_columns("0 + x", frame), simple_columns("g", frame)
    ((True, ['x']), (False, ['x']), None)
    """
    intercept, columns = True, []
    for sign, tok in signed_terms(piece):
        name = strip_quotes(tok)
        if tok in ("0", "-1") or (tok == "1" and sign == "-"):
            intercept = False
        elif tok == "1" and sign == "+":
            continue
        elif (sign == "+" and name in frame.columns and name not in columns
              and not _is_factor(frame[name])):
            columns.append(name)
        else:
            return None
    return intercept, columns


def _simple_matrix(piece: str, frame: pd.DataFrame, simple: tuple[bool, list[str]],
                   columns: tuple[str, ...]) -> tuple[np.ndarray, MatrixSpec]:
    intercept, used = simple
    X = np.empty((len(frame), intercept + len(used)))
    if intercept:
        X[:, 0] = 1.0
    for j, c in enumerate(used, start=int(intercept)):
        X[:, j] = frame[c].to_numpy(dtype=float)
    names = ("(Intercept)",) * intercept + tuple(used)
    aliased = alias_text(piece, columns)
    text = aliased.text
    position = {c: i for i, c in enumerate(columns)}
    head = {alias_of(position[c]): frame[c].to_numpy()[:2] for c in aliased.columns}
    return X, MatrixSpec(piece, columns, aliased.columns, names, _SpecOnDemand(text, head), {})


@dataclass(frozen=True)
class _SpecOnDemand:
    """formulaic's spec of a simple piece, built when first asked for (picklable).

    Without factors or stateful transforms the spec does not depend on the
    rows, so two rows of the frame suffice.
    """

    text: str
    head: dict[str, np.ndarray]  # two rows of each used column, under its alias

    def __call__(self) -> Any:
        return _formula(self.text).get_model_matrix(pd.DataFrame(self.head), na_action="raise",
                                                    context=CONTEXT).model_spec


def piece_matrix(piece: str, frame: pd.DataFrame, what: str) -> tuple[np.ndarray, MatrixSpec]:
    """Model matrix of a formula piece on the model frame, and its spec for new data.

    Parameters
    ----------
    piece : str
        A formulaic right-hand side written with the data's column names
        (backticks for non-syntactic names).
    frame : DataFrame
        The model frame.
    what : str
        What the piece is, for messages ("the fixed effects", "(x | g)").

    Returns
    -------
    X : ndarray
    spec : MatrixSpec
    """
    columns = tuple(str(c) for c in frame.columns)
    simple = simple_columns(piece, frame)
    if simple is not None and (simple[0] or simple[1]):
        return _simple_matrix(piece, frame, simple, columns)
    aliased = alias_text(piece, columns)
    ordered = [i for i, c in enumerate(columns) if c in aliased.columns and _is_ordered(frame[c])]
    text = wrap_ordered(aliased.text, ordered)
    safe = _aliased_frame(frame, columns, aliased.columns)
    try:
        mm = _formula(text).get_model_matrix(safe, na_action="raise", context=CONTEXT)
        if mm.model_spec.transform_state:
            mm = _relearn_state(mm, text, safe, columns, aliased.columns)
    except FormulaError:
        raise
    except Exception as exc:  # formulaic raises many types on bad terms
        raise FormulaError(f"cannot build {what} from {piece!r}: "
                           f"{_restore(str(exc), columns)}") from exc
    names = restore_names(r_names(_lme4_name(str(n)) for n in mm.columns), columns)
    levels = {c: frozenset(str(v) for v in frame[c].unique())
              for c in aliased.columns if _is_factor(frame[c])}
    X = np.asarray(mm, dtype=float)
    return X, MatrixSpec(piece, columns, aliased.columns, names, mm.model_spec, levels)


def evaluate_piece(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate one expression (a response such as ``log(y)``) on the rows of ``frame``.

    Rows where a used column is missing give NaN; the result is one float per row.
    """
    columns = tuple(str(c) for c in frame.columns)
    aliased = alias_text(f"I({expr})", columns)
    safe = _aliased_frame(frame, columns, aliased.columns)
    try:
        with np.errstate(all="ignore"):
            mm = _formula(f"0 + {aliased.text}").get_model_matrix(safe, na_action="ignore",
                                                                  context=CONTEXT)
    except Exception as exc:
        raise FormulaError(f"cannot evaluate the response {expr!r}: "
                           f"{_restore(str(exc), columns)}") from exc
    values = np.asarray(mm, dtype=float)
    if values.ndim != 2 or values.shape[1] != 1:
        raise FormulaError(f"the response {expr!r} must be one numeric column")
    return values[:, 0]
