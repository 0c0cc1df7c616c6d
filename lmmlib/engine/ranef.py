"""Conditional modes (BLUPs) of the random effects and their conditional variances.

With b = Λu, the conditional mode is b̂ = Λû and, as in lme4's
``ranef(condVar = TRUE)``, the conditional covariance of the effects of one
level is σ² Λ_b [(Λ'Z'ZΛ + I)⁻¹]_ii Λ_bᵀ (β held at β̂).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg

from .pls import PLSSolution
from .reterms import Block

__all__ = ["block_effects", "block_condvars", "ranef_frame"]


def block_effects(sol: PLSSolution, blocks: Sequence[Block]) -> list[np.ndarray]:
    """b̂ of every block as a (levels, q) array."""
    out, o = [], 0
    for b in blocks:
        w = b.nlevels * b.q
        u = sol.u[o : o + w].reshape(b.nlevels, b.q)
        out.append(u @ b.lam(sol.theta).T)
        o += w
    return out


def _unit_condvars(sol: PLSSolution, blocks: Sequence[Block]) -> list[np.ndarray]:
    """Diagonal blocks of (Λ'Z'ZΛ + I)⁻¹ per level, for every block."""
    L0 = sol.L0
    k0, q0 = L0.shape[0], L0.shape[1]
    L0inv = np.linalg.inv(L0)
    inner = np.broadcast_to(np.eye(q0), (k0, q0, q0)).copy()
    out = []
    if sol.L_rest is not None:
        W = scipy.linalg.solve_triangular(sol.L_rest, sol.T.T, lower=True, check_finite=False)
        Wl = W.reshape(W.shape[0], k0, q0).transpose(1, 2, 0)  # (k0, q0, Q_R)
        inner += Wl @ np.swapaxes(Wl, 1, 2)
    out.append(np.swapaxes(L0inv, 1, 2) @ inner @ L0inv)
    if sol.L_rest is not None:
        LRinv = scipy.linalg.solve_triangular(sol.L_rest, np.eye(sol.L_rest.shape[0]), lower=True)
        o = 0
        for b in blocks[1:]:
            cols = LRinv[:, o : o + b.nlevels * b.q].T.reshape(b.nlevels, b.q, -1)
            out.append(cols @ np.swapaxes(cols, 1, 2))
            o += b.nlevels * b.q
    return out


def block_condvars(sol: PLSSolution, blocks: Sequence[Block], sigma: float) -> list[np.ndarray]:
    """Conditional covariance of b̂ per level: (levels, q, q) for every block."""
    out = []
    for b, v in zip(blocks, _unit_condvars(sol, blocks), strict=True):
        lam = b.lam(sol.theta)
        out.append(sigma**2 * lam @ v @ lam.T)
    return out


def ranef_frame(sol: PLSSolution, blocks: Sequence[Block], sigma: float,
                condvar: bool = True) -> pd.DataFrame:
    """Random effects as lme4's ``as.data.frame(ranef(m, condVar=TRUE))``.

    Columns ``grpvar, term, grp, condval`` and, with ``condvar``, ``condsd``;
    one row per grouping factor, effect and level, in that nesting order.
    """
    effects = block_effects(sol, blocks)
    sds = ([np.sqrt(np.diagonal(v, axis1=1, axis2=2)) for v in block_condvars(sol, blocks, sigma)]
           if condvar else [None] * len(blocks))
    frames = []
    for b, eff, sd in zip(blocks, effects, sds, strict=True):
        for j, name in enumerate(b.colnames):
            part = {"grpvar": b.factor, "term": name, "grp": b.levels.astype(str),
                    "condval": eff[:, j]}
            if sd is not None:
                part["condsd"] = sd[:, j]
            frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)
