"""Stage 2b: random-effects terms → grouping factors, Z blocks and the θ layout.

Terms are ordered as lme4 orders them (by decreasing number of levels, ties in
formula order) and θ is laid out in that order, each term contributing the
lower triangle of its relative covariance factor column by column.

Terms that share a grouping factor, e.g. the two halves of ``(x || g)``, are
merged into one *block* whose relative covariance factor Λ_b is block-diagonal
with structural zeros.  A block stores, for every observation, its level code
and its ``q_b`` raw covariates; the sparse Z is never needed explicitly in the
fitting path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import DataError
from .codes import distinct_codes
from .formula import RandomTerm
from .terms import piece_matrix, simple_columns

__all__ = ["Block", "PendingLabels", "ReTerm", "build_blocks", "group_codes", "level_label",
           "level_labels", "new_level_codes", "term_matrix"]


@dataclass(frozen=True)
class ReTerm:
    """One random-effects term after expansion (as lme4's ``cnms`` entry)."""

    label: str  # name shown in tables ("g", or "g.1" for a repeated factor)
    factor: str  # grouping factor ("a:b" for an interaction)
    expr: str
    colnames: tuple[str, ...]
    theta: slice  # position of this term's parameters in θ
    block: int  # index of the block holding the term
    offset: int  # first column of the term inside its block

    @property
    def q(self) -> int:
        """Number of random effects per level."""
        return len(self.colnames)


class PendingLabels:
    """Labels of integer levels, made on first use (many levels: a fit needs none).

    Parameters
    ----------
    name : str
        The grouping factor (the labels' index name).
    values : ndarray
        The sorted distinct integer levels.

    Examples
    --------
    >>> labels = PendingLabels("g", np.array([3, 10]))
    >>> len(labels), labels.index().tolist()
    (2, ['3', '10'])
    """

    def __init__(self, name: str, values: np.ndarray) -> None:
        self.name, self.values = name, values

    def __len__(self) -> int:
        return len(self.values)

    def index(self) -> pd.Index:
        """The labels as the block's level index."""
        return pd.Index(level_labels(self.values), name=self.name)


@dataclass(frozen=True)
class Block:
    """All random effects that share one grouping factor.

    ``labels`` is the level index, or :class:`PendingLabels` that make it when
    :attr:`levels` is first read.
    """

    factor: str
    labels: pd.Index | PendingLabels
    codes: np.ndarray  # (n,) level code of each observation
    Z: np.ndarray  # (n, q) raw covariates of the block
    template: np.ndarray  # (q, q) index into θ, -1 for a structural zero
    colnames: tuple[str, ...] = field(default=())

    @cached_property
    def levels(self) -> pd.Index:
        """Labels of the grouping factor's levels (R's ``levels``), in code order."""
        labels = self.labels
        return labels.index() if isinstance(labels, PendingLabels) else labels

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.labels)

    @property
    def q(self) -> int:
        """Random effects per level."""
        return self.Z.shape[1]

    def lam(self, theta: np.ndarray) -> np.ndarray:
        """The q×q lower-triangular relative covariance factor Λ_b(θ)."""
        filled = np.where(self.template >= 0, theta[np.maximum(self.template, 0)], 0.0)
        return filled


def level_label(value: object) -> str:
    """A level's label as R's ``as.character``: ``1``, ``1.0`` and ``"1"`` are all ``"1"``.

    Examples
    --------
    >>> [level_label(v) for v in (1, 1.0, "1", 2.5, True)]
    ['1', '1', '1', '2.5', 'True']
    """
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return str(value.item())
    return str(value)


def level_labels(values: object) -> list[str]:
    """:func:`level_label` of many values, vectorised for numeric arrays.

    Examples
    --------
    >>> level_labels(np.array([1.0, 2.5, 10.0]))
    ['1', '2.5', '10']
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return list(map(str, arr.tolist()))
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.trunc(arr)) & (np.abs(arr) < 2.0**62)
        if whole.all():
            return list(map(str, arr.astype(np.int64).tolist()))
        return [str(int(v)) if w else str(v) for v, w in zip(arr.tolist(), whole, strict=True)]
    return [level_label(v) for v in arr.ravel()]


def _single_codes(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 and the sorted observed levels of one grouping column.

    Categorical columns keep their category order, others are sorted (numbers
    numerically, as R sorts factor levels).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        used, codes = np.unique(col.cat.codes.to_numpy(), return_inverse=True)
        return codes.astype(np.int64), np.asarray(col.cat.categories[used])
    values = col.to_numpy()
    if values.dtype.kind in "iu" and len(values):
        dense = distinct_codes(values)
        if dense is not None:
            return dense[1], dense[0]
    try:
        codes, uniques = pd.factorize(col, sort=True)
    except TypeError as exc:
        raise DataError(f"grouping column {col.name!r} mixes values of different types "
                        "that cannot be ordered; convert it to one type") from exc
    return codes.astype(np.int64), np.asarray(uniques)


def _labels(name: str, levels: np.ndarray) -> list[str]:
    labels = level_labels(levels)
    if np.asarray(levels).dtype.kind in "iub":  # distinct integers have distinct labels
        return labels
    repeated = pd.Index(labels).duplicated()
    if repeated.any():
        dup = sorted(set(np.asarray(labels, dtype=object)[repeated]))
        raise DataError(f"grouping column {name!r} has different values with the same label "
                        f"{', '.join(map(repr, dup[:5]))} (e.g. 1 and '1'); convert it to one "
                        "type")
    return labels


def group_codes(frame: pd.DataFrame,
                factors: tuple[str, ...]) -> tuple[np.ndarray, pd.Index | PendingLabels]:
    """Integer codes and level labels of a (possibly interacted) grouping factor."""
    if len(factors) == 1:
        codes, levels = _single_codes(frame[factors[0]])
        if levels.dtype.kind in "iu":  # distinct integers: distinct labels, made when needed
            return codes, PendingLabels(factors[0], levels)
        return codes, pd.Index(_labels(factors[0], levels), name=factors[0])
    codes = np.zeros(len(frame), dtype=np.int64)
    labels: list[list[str]] = [[]]
    for name in factors:
        c, levels = _single_codes(frame[name])
        codes = codes * len(levels) + c
        labels = [a + [b] for a in labels for b in _labels(name, levels)]
    used, codes = np.unique(codes, return_inverse=True)
    index = pd.Index([":".join(labels[u]) for u in used], name=":".join(factors))
    return codes.astype(np.int64), index


def new_level_codes(block: Block, frame: pd.DataFrame, factors: tuple[str, ...]) -> np.ndarray:
    """Codes of new rows in a fitted block: −1 for a missing value, −2 for an unseen level."""
    missing = np.zeros(len(frame), dtype=bool)
    parts = []
    for name in factors:
        col = frame[name]
        missing |= col.isna().to_numpy()
        parts.append(level_labels(col.to_numpy()))
    labels = [":".join(p) for p in zip(*parts, strict=True)]
    codes = block.levels.get_indexer(labels).astype(np.int64)
    codes[codes < 0] = -2
    codes[missing] = -1
    return codes


@dataclass(frozen=True)
class SimpleTermSpec:
    """Columns of a random term made only of an intercept and numeric columns.

    Such terms (``1``, ``x``, ``1 + x``, ``0 + x``) are by far the most common;
    building them directly skips formulaic's general machinery.
    """

    intercept: bool
    columns: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """lme4-style column names."""
        return ("(Intercept)",) * self.intercept + self.columns

    def get_model_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The term's covariates for the rows of ``frame``."""
        cols = [np.ones(len(frame))] * self.intercept
        cols += [frame[c].to_numpy(dtype=float) for c in self.columns]
        return np.column_stack(cols)

    def rows(self, frame: pd.DataFrame, what: str = "newdata") -> np.ndarray:
        """The covariates of new rows; a missing column or value is an error naming it."""
        for c in self.columns:
            if c not in frame.columns:
                raise DataError(f"{what} lacks the column {c!r}")
            if not _is_numeric(frame[c]) or frame[c].isna().any():
                raise DataError(f"{what}: column {c!r} must be numbers without missing values")
        return self.get_model_matrix(frame)

    @classmethod
    def parse(cls, expr: str, frame: pd.DataFrame) -> SimpleTermSpec | None:
        """The spec of ``expr`` if it is that simple, else ``None``."""
        simple = simple_columns(expr, frame)
        if simple is None or not (simple[0] or simple[1]):
            return None
        return cls(simple[0], tuple(simple[1]))


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def term_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], object]:
    """Raw covariates of a random term, their lme4-style names and a spec for new data."""
    simple = SimpleTermSpec.parse(expr, frame)
    if simple is not None:
        return simple.get_model_matrix(frame), simple.names, simple
    X, spec = piece_matrix(expr, frame, f"the random term ({expr} | ...)")
    if not spec.names:
        raise DataError(f"random term ({expr} | ...) has no columns")
    return X, spec.names, spec


def _check_levels(term: RandomTerm, nlev: int, q: int, n: int, residual: bool) -> None:
    name = term.group
    if nlev < 2:
        raise DataError(
            f"grouping factor {name!r} has a single level: its variance cannot be estimated"
        )
    if residual and (nlev >= n or nlev * q >= n):
        raise DataError(
            f"term {term}: {nlev} levels x {q} effects for {n} observations leaves no "
            f"residual information; the random-effect and residual variances are not "
            f"separately identifiable (as in the Neyman-Scott problem with one "
            f"observation per individual)"
        )


def _tri_template(q: int, start: int) -> np.ndarray:
    """θ indices of a full lower triangle filled column by column."""
    t = -np.ones((q, q), dtype=np.int64)
    k = start
    for j in range(q):
        for i in range(j, q):
            t[i, j] = k
            k += 1
    return t


def build_blocks(
    terms: tuple[RandomTerm, ...], frame: pd.DataFrame, residual: bool = True
) -> tuple[list[Block], list[ReTerm], dict[str, object]]:
    """Build blocks, expanded terms (lme4 order) and the formulaic specs of the terms.

    ``residual`` says the model has a residual variance (a Gaussian LMM): then a
    term with as many random effects as observations is refused, as it is
    confounded with the residual.  GLMMs allow observation-level effects.

    Returns
    -------
    blocks : list of Block
        One per grouping factor, the one with most levels first.
    reterms : list of ReTerm
        Terms in lme4's order (the order of θ).
    specs : dict
        Formulaic model specs of each term expression, to rebuild Z on new data.
    """
    n = len(frame)
    built = []
    for term in terms:
        codes, levels = group_codes(frame, term.factors)
        zt, names, spec = term_matrix(term.expr, frame)
        _check_levels(term, len(levels), zt.shape[1], n, residual)
        built.append((term, codes, levels, zt, names, spec))
    built.sort(key=lambda b: -len(b[2]))  # stable: ties keep formula order
    factors = list(dict.fromkeys(b[0].group for b in built))
    factors.sort(key=lambda f: -len(next(b[2] for b in built if b[0].group == f)))
    seen: dict[str, int] = {}
    reterms, cols, k = [], {f: [] for f in factors}, 0
    for term, _codes, _levels, zt, names, _spec in built:
        f = term.group
        label = f if f not in seen else f"{f}.{seen[f]}"
        seen[f] = seen.get(f, 0) + 1
        q = zt.shape[1]
        offset = sum(c.shape[1] for c, _ in cols[f])
        cols[f].append((zt, _tri_template(q, k)))
        reterms.append(ReTerm(label, f, term.expr, names, slice(k, k + q * (q + 1) // 2),
                              factors.index(f), offset))
        k += q * (q + 1) // 2
    blocks = []
    for f in factors:
        first = next(b for b in built if b[0].group == f)
        q = sum(c.shape[1] for c, _ in cols[f])
        template = -np.ones((q, q), dtype=np.int64)
        o = 0
        for zt, tri in cols[f]:
            template[o : o + zt.shape[1], o : o + zt.shape[1]] = tri
            o += zt.shape[1]
        colnames = tuple(nm for t in reterms if t.factor == f for nm in t.colnames)
        blocks.append(Block(f, first[2], first[1], np.hstack([c for c, _ in cols[f]]),
                            template, colnames))
    specs = {str(b[0]): b[5] for b in built}
    return blocks, reterms, specs
