"""Pass 2 of a partitioned fit: cross-products summed over partitions, and their PLS.

Every partition is cleaned as in pass 1 (:func:`lmmlib.engine.partitioned.clean_partition`),
its X and Z blocks are built against the fit's levels and specs, and it
contributes Z₀ᵢ'Z₀ᵢ per level, Z'[X y], the sparse coupling Z₀'Z_R, Z_R'Z_R and
X'X; these are sums, so partitions combine in any order (a tree reduction).

The response enters the PLS centred by its least-squares fit on X (as in
:class:`lmmlib.engine.pls.PLS`, so that r² is free of cancellation when y has a
large mean).  The centred residual sum of squares is combined exactly from
each partition's own least-squares fit b_k: for any b,
‖y − Xb‖² = Σ_k ‖y_k − X_k b_k‖² + (b_k − b)'X_k'X_k(b_k − b), since X_k'(y_k − X_k b_k) = 0.
The R factor of X (for the rank check) is combined as a tall-skinny QR.

:class:`PartitionedPLS` is a :class:`~lmmlib.engine.pls.PLS` whose
cross-products are these sums: the θ ↦ criterion code is the in-memory one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from ..errors import DataError, DataWarning
from .coupling import make_coupling
from .crossprod import z_matrix
from .design import RANK_TOL
from .names import alias_of
from .partitioned import (
    CleanRule,
    PartitionedDesign,
    _compute,
    _partitions,
    clean_partition,
    tree_reduce,
)
from .pls import PLS
from .reterms import Block, level_labels
from .rfunctions import CONTEXT
from .terms import MatrixSpec

__all__ = ["PartitionedPLS", "combine_products", "linear_predictor", "partition_products",
           "sum_products"]


def _codes(design: PartitionedDesign, block: Block, col: pd.Series) -> np.ndarray:
    """Codes of a partition's grouping values among the fit's levels."""
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


def _matrix(spec: Any, frame: pd.DataFrame) -> np.ndarray:
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


def _covariates(design: PartitionedDesign, block: Block, frame: pd.DataFrame) -> np.ndarray:
    return np.hstack([_matrix(design.term_specs[f"({t.expr} | {t.factor})"], frame)
                      for t in design.reterms if t.factor == block.factor])


def _aligned(frame: pd.DataFrame, design: PartitionedDesign) -> pd.DataFrame:
    """Categorical columns recoded to the fit's categories (those with rows, in order)."""
    out = {}
    for c in design.frame.columns:
        dtype = design.frame[c].dtype
        if isinstance(dtype, pd.CategoricalDtype) and frame[c].dtype != dtype:
            out[c] = frame[c].cat.set_categories(dtype.categories)
    return frame.assign(**out) if out else frame


def linear_predictor(frame: pd.DataFrame, design: PartitionedDesign, beta: np.ndarray,
                     effects: list[np.ndarray]) -> np.ndarray:
    """X β + Z b for a partition's clean rows (``effects``: b per block, (levels, q))."""
    keep = [i for i, name in enumerate(design.fixed_spec.names) if name in design.xnames]
    frame = _aligned(frame, design)
    eta = _matrix(design.fixed_spec, frame)[:, keep] @ beta
    for b, eff in zip(design.blocks, effects, strict=True):
        codes = _codes(design, b, frame[b.factor])
        eta += np.einsum("ij,ij->i", _covariates(design, b, frame), eff[codes])
    return eta


def partition_products(part: pd.DataFrame, rule: CleanRule, design: PartitionedDesign) -> dict:
    """Cross-products of one partition (``None`` when it has no complete rows)."""
    frame, y, _ = clean_partition(part, rule)
    n = len(y)
    if n == 0:
        return None
    frame = _aligned(frame, design)
    X = _matrix(design.fixed_spec, frame)
    Xy = np.column_stack([X, y])
    blocks = [Block(b.factor, b.levels, _codes(design, b, frame[b.factor]),
                    _covariates(design, b, frame), b.template, b.colnames)
              for b in design.blocks]
    b_k = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ b_k
    XtX = X.T @ X
    out = {"n": n, "XtXy": Xy.T @ Xy, "local": [(b_k, float(r @ r), XtX)],
           "R": scipy.linalg.qr(X, mode="r", check_finite=False)[0][: X.shape[1]],
           "ymean": float(y.mean()), "yM2": float(((y - y.mean()) ** 2).sum())}
    b0 = blocks[0]
    Z0 = z_matrix(b0)
    out["ZtZ0"] = np.stack([np.stack([np.bincount(b0.codes, b0.Z[:, a] * b0.Z[:, c],
                                                  minlength=b0.nlevels)
                                      for c in range(b0.q)], axis=1)
                            for a in range(b0.q)], axis=1)
    out["Z0tXy"] = np.asarray(Z0.T @ Xy)
    if len(blocks) > 1:
        ZR = sp.hstack([z_matrix(b) for b in blocks[1:]]).tocsr()
        out["ZRtXy"] = np.asarray(ZR.T @ Xy)
        out["M"] = (Z0.T @ ZR).tocsr()
        out["ZRtZR"] = (ZR.T @ ZR).tocsr()
    return out


def combine_products(*parts: dict | None) -> dict | None:
    """Sum partitions' cross-products (an associative reduction; ``None`` is empty)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    out = dict(parts[0])
    for p in parts[1:]:
        n_a, n_b = out["n"], p["n"]
        delta = p["ymean"] - out["ymean"]
        out["yM2"] = out["yM2"] + p["yM2"] + delta**2 * n_a * n_b / (n_a + n_b)
        out["ymean"] = out["ymean"] + delta * n_b / (n_a + n_b)
        out["n"] = n_a + n_b
        out["local"] = out["local"] + p["local"]
        R = scipy.linalg.qr(np.vstack([out["R"], p["R"]]), mode="r", check_finite=False)[0]
        out["R"] = R[: R.shape[1]]
        for key in ("XtXy", "ZtZ0", "Z0tXy", "ZRtXy", "M", "ZRtZR"):
            if key in out:
                out[key] = out[key] + p[key]
    return out


def sum_products(ddf: Any, rule: CleanRule, design: PartitionedDesign, progress: bool = False,
                 scheduler: Any = None) -> dict:
    """Pass 2 over a Dask DataFrame: the summed cross-products of the design."""
    import dask

    rule_d = dask.delayed(rule, traverse=False)
    design_d = dask.delayed(design, traverse=False)
    leaves = [dask.delayed(partition_products)(p, rule_d, design_d) for p in _partitions(ddf)]
    sums = _compute(tree_reduce(leaves, combine_products), progress, scheduler)
    if sums is None or sums["n"] != design.n_obs:
        raise DataError("the data changed between the passes over the partitions")
    return sums


def independent_columns(sums: dict) -> np.ndarray:
    """Mask of fixed-effects columns not spanned by those before them (as in-memory fits)."""
    R, XtX = sums["R"], sums["XtXy"][:-1, :-1]
    norms = np.sqrt(np.maximum(np.diag(XtX), 0.0))
    diag = np.abs(np.diag(R)) if R.size else np.zeros(0)
    keep = np.zeros(XtX.shape[0], dtype=bool)
    keep[: diag.size] = diag > RANK_TOL * np.maximum(norms[: diag.size], 1e-300)
    return keep & (norms > 0)


class PartitionedPLS(PLS):
    """The PLS problem of a :class:`PartitionedDesign` from its summed cross-products.

    Only the constructor differs from :class:`~lmmlib.engine.pls.PLS`: it
    takes the cross-products instead of computing them from X, y and Z.  A
    new response or weights need the rows again, so :meth:`with_response`
    and :meth:`reweight` are refused.

    Parameters
    ----------
    design : PartitionedDesign
        The design, its dependent fixed-effects columns already dropped.
    sums : dict
        Output of :func:`sum_products` (all the formula's fixed-effects columns).
    keep : ndarray of bool
        Which of those columns the design keeps.
    """

    def __init__(self, design: PartitionedDesign, sums: dict, keep: np.ndarray) -> None:
        self.design = design
        self.n, self.p = design.n_obs, int(keep.sum())
        self.blocks = design.blocks
        self.pattern = None
        self.k0, self.q0 = self.blocks[0].nlevels, self.blocks[0].q
        self.rest = self.blocks[1:]
        self.n_rest = sum(b.nlevels * b.q for b in self.rest)
        self._rest_scalar = all(b.q == 1 for b in self.rest)
        self._rest_sizes = [b.nlevels for b in self.rest]
        self._xpinv = None
        self.offset = None
        self.log_weights = 0.0
        self.weights = None
        self.response_mean, self.response_ss = sums["ymean"], sums["yM2"]
        cols = np.append(np.flatnonzero(keep), keep.size)  # kept X columns, then y
        XtX = sums["XtXy"][np.ix_(cols[:-1], cols[:-1])]
        Xty = sums["XtXy"][cols[:-1], -1]
        b = np.linalg.solve(XtX, Xty) if self.p else np.zeros(0)
        b_full = np.zeros(keep.size)
        b_full[keep] = b
        rss = sum(r2 + (bk - b_full) @ XtXk @ (bk - b_full) for bk, r2, XtXk in sums["local"])
        self.beta_offset = b
        self.XytXy = np.empty((self.p + 1, self.p + 1))
        self.XytXy[: self.p, : self.p] = XtX
        self.XytXy[: self.p, self.p] = self.XytXy[self.p, : self.p] = Xty - XtX @ b
        self.XytXy[self.p, self.p] = rss

        def centred(ZtXy: np.ndarray) -> np.ndarray:
            out = ZtXy[:, cols]
            out[:, -1] -= out[:, :-1] @ b
            return out

        self.ZtZ0 = sums["ZtZ0"]
        self.ZtXy0 = centred(sums["Z0tXy"]).reshape(self.k0, self.q0, self.p + 1)
        self._zrtzr = self._zrtzr_diag = self._base_coupling = None
        if self.rest:
            M = sums["M"].tocsr()
            M.sum_duplicates()
            M.sort_indices()
            self._base_coupling = self.coupling = make_coupling(M, self.k0, self.q0)
            ZRtZR = sums["ZRtZR"]
            if len(self.rest) == 1 and self.rest[0].q == 1:
                self._zrtzr_diag = np.asarray(ZRtZR.diagonal(), dtype=float)
            else:
                self._zrtzr = ZRtZR.toarray()
            self.ZRtXy = centred(sums["ZRtXy"])

    @property
    def zrtzr(self) -> np.ndarray:
        """Z_R'Z_R of the blocks after the first, dense."""
        if self._zrtzr is None:
            self._zrtzr = np.diag(self._zrtzr_diag)
        return self._zrtzr

    def with_response(self, y: np.ndarray) -> PLS:
        """Not available: a new response needs the rows (refit the Dask data)."""
        raise DataError("a partitioned fit holds cross-products only: a new response needs "
                        "a new pass over the data (fit lmer on the Dask DataFrame again)")

    def reweight(self, weights: np.ndarray, wy: np.ndarray) -> PLS:
        """Not available: new weights need the rows."""
        raise DataError("a partitioned fit holds cross-products only: reweighting needs the "
                        "rows")


def drop_dependent(design: PartitionedDesign, sums: dict) -> tuple[PartitionedDesign, np.ndarray]:
    """The design without its dependent fixed-effects columns (warned, as in-memory fits)."""
    from dataclasses import replace

    keep = independent_columns(sums)
    if keep.all():
        return design, keep
    names = design.xnames
    dropped = tuple(nm for nm, k in zip(names, keep, strict=True) if not k)
    warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                  f"column(s): {', '.join(dropped)}", DataWarning, stacklevel=3)
    kept = tuple(nm for nm, k in zip(names, keep, strict=True) if k)
    return replace(design, X=np.zeros((0, len(kept))), xnames=kept, dropped=dropped), keep
