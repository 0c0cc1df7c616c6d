"""Accessors shared by linear and generalised mixed models: the random effects.

Both model classes hold a design, a PLS solution at θ̂ (``_sol``), the optimiser
summary (``opt``) and a scale ``sigma`` (1 for GLMMs without a dispersion); the
random-effects tables and predictions below depend on nothing else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..checks import as_bool
from ..engine.design import block_rows
from ..engine.ranef import block_condvars, block_effects, ranef_frame
from ..engine.varcomp import term_covariances
from ..errors import DataError

__all__ = ["RandomEffectsMixin"]


class RandomEffectsMixin:
    """Random-effects accessors with lme4's names (``ranef``, ``coef``...)."""

    @property
    def ngroups(self) -> pd.Series:
        """Number of levels of each grouping factor."""
        return pd.Series({b.factor: b.nlevels for b in self.design.blocks}, name="ngroups")

    @property
    def is_singular(self) -> bool:
        """Whether θ is on the boundary (a variance 0 or a correlation ±1)."""
        return len(self.opt.boundary) > 0

    def covariances(self) -> dict[str, np.ndarray]:
        """Covariance matrix Σ_t of each term's random effects, keyed by group label."""
        covs = term_covariances(self._sol.theta, self.sigma, self.design.reterms)
        return {t.label: c for t, c in zip(self.design.reterms, covs, strict=True)}

    def ranef(self, condvar: bool = True) -> pd.DataFrame:
        """Conditional modes (BLUPs) as ``as.data.frame(ranef(m, condVar=TRUE))``."""
        return ranef_frame(self._sol, self.design.blocks, self.sigma, condvar)

    def ranef_arrays(self) -> dict[str, pd.DataFrame]:
        """Conditional modes as one wide DataFrame per grouping factor (levels × effects)."""
        effects = block_effects(self._sol, self.design.blocks)
        return {b.factor: pd.DataFrame(e, index=b.levels, columns=list(b.colnames))
                for b, e in zip(self.design.blocks, effects, strict=True)}

    def condvar_arrays(self) -> dict[str, np.ndarray]:
        """Conditional covariance matrices of the modes, (levels, q, q) per factor."""
        cv = block_condvars(self._sol, self.design.blocks, self.sigma)
        return {b.factor: v for b, v in zip(self.design.blocks, cv, strict=True)}

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-level coefficients: fixed effects plus that level's random effects."""
        out = {}
        for factor, eff in self.ranef_arrays().items():
            table = pd.DataFrame(np.tile(self._sol.beta, (len(eff), 1)), index=eff.index,
                                 columns=list(self.design.xnames))
            for col in eff.columns.intersection(table.columns):
                table[col] += eff[col]
            out[factor] = table
        return out

    def _zb(self, frame: pd.DataFrame, known: bool, allow_new_levels: bool = False) -> np.ndarray:
        """Z b̂ for the rows of ``frame``.

        Rows with a missing grouping value contribute 0 (the population
        prediction); so do levels not seen in the fit when ``allow_new_levels``
        is true, and otherwise they are an error naming the level, as in lme4.
        """
        total = np.zeros(len(frame))
        effects = block_effects(self._sol, self.design.blocks)
        allow = as_bool(allow_new_levels, "allow_new_levels")
        for block, eff in zip(self.design.blocks, effects, strict=True):
            if known:
                Z, codes = block.Z, block.codes
            else:
                Z, codes = block_rows(self.design, block, frame)
                new = codes == -2
                if new.any() and not allow:
                    factors = block.factor.split(":")
                    levels = frame.loc[new, factors].astype(str).agg(":".join, axis=1)
                    shown = ", ".join(map(repr, list(dict.fromkeys(levels))[:5]))
                    raise DataError(
                        f"new level(s) {shown} of {block.factor!r} in newdata; pass "
                        "allow_new_levels=True to predict them at the population level "
                        "(lme4's allow.new.levels)")
            hit = codes >= 0
            total[hit] += np.einsum("ij,ij->i", Z[hit], eff[codes[hit]])
        return total
