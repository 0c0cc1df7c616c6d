"""Pass 2 of a partitioned fit: cross-products summed over partitions, and their PLS.

Every partition is cleaned as in pass 1 and its X and Z blocks are built
against the fit's levels and specs (:mod:`lmmlib.engine.partrows`); it
contributes X'X, Z'[X y], Z₀ᵢ'Z₀ᵢ per level, the sparse coupling Z₀'Z_R and
Z_R'Z_R (:mod:`lmmlib.engine.partkernels`); these are sums, so partitions
combine in any order (a tree reduction).

The response enters the PLS centred by its least-squares fit on X (as in
:class:`lmmlib.engine.pls.PLS`, so that r² is free of cancellation when y has a
large mean).  The centred residual sum of squares is combined exactly from
each partition's own least-squares fit b_k: for any b,
‖y − Xb‖² = Σ_k ‖y_k − X_k b_k‖² + (b_k − b)'X_k'X_k(b_k − b), since X_k'(y_k − X_k b_k) = 0.
The R factor of X (for the rank check) is combined as a tall-skinny QR; one
QR of each partition's [X y] gives both its R factor and its b_k.

:class:`PartitionedPLS` is a :class:`~lmmlib.engine.pls.PLS` whose
cross-products are these sums: the θ ↦ criterion code is the in-memory one.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, DataWarning
from .coupling import make_coupling
from .design import RANK_TOL
from .partitioned import PartitionedDesign, _compute, _partitions, tree_reduce
from .partkernels import assemble_levels, combine_products, products
from .partrows import (
    CleanRule,
    aligned,
    block_covariates,
    group_codes,
    partition_rows,
    piece_rows,
)
from .pls import PLS

__all__ = ["PartitionedPLS", "combine_products", "linear_predictor", "partition_products",
           "sum_products"]


def linear_predictor(frame: pd.DataFrame, design: PartitionedDesign, beta: np.ndarray,
                     effects: list[np.ndarray]) -> np.ndarray:
    """X β + Z b for a partition's clean rows (``effects``: b per block, (levels, q))."""
    keep = [i for i, name in enumerate(design.fixed_spec.names) if name in design.xnames]
    frame = aligned(frame, design)
    eta = piece_rows(design.fixed_spec, frame)[:, keep] @ beta
    for b, eff in zip(design.blocks, effects, strict=True):
        codes = group_codes(design, b, frame[b.factor])
        eta += np.einsum("ij,ij->i", block_covariates(design, b, frame), eff[codes])
    return eta


def partition_products(part: pd.DataFrame, rule: CleanRule, design: PartitionedDesign) -> dict:
    """Cross-products of one partition (``None`` when it has no complete rows)."""
    rows = partition_rows(part, rule, design)
    return products(rows) if rows.n else None


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

        m = keep.size + 1
        self.ZtZ0, Z0tXy = assemble_levels(sums["ZtZ0"], sums["Z0tXy"], self.k0, self.q0, m)
        self.ZtXy0 = centred(Z0tXy).reshape(self.k0, self.q0, self.p + 1)
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
            self.ZRtXy = centred(np.vstack([assemble_levels(None, v, b.nlevels, b.q, m)[1]
                                            for b, v in zip(self.rest, sums["ZRtXy"],
                                                            strict=True)]))

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
