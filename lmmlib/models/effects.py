"""Accessors shared by linear and generalised mixed models: the random effects.

Both model classes hold a design, a PLS solution at θ̂ (``_sol``), the optimiser
summary (``opt``) and a scale ``sigma`` (1 for GLMMs without a dispersion); the
random-effects tables and predictions below depend on nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..checks import as_bool, as_choice, as_level
from ..engine.design import Design, block_rows, fixed_rows, newdata_frame, newdata_offset
from ..engine.formula import parse_formula
from ..engine.ranef import block_condvars, block_effects, ranef_frame
from ..engine.varcomp import term_covariances
from ..errors import ArgumentError, DataError

__all__ = ["RandomEffectsMixin", "prediction_table", "re_form_columns"]


def _normal(expr: str) -> str:
    return "".join(expr.split())


def re_form_columns(design: Design, re_form: object) -> list[np.ndarray] | None:
    """Which random-effect columns of each block a prediction includes (lme4's ``re.form``).

    ``None``: all of them; ``"~0"``, ``"NA"`` or ``False``: none; a formula such
    as ``"~ (1 | g)"``: the model's terms it names (each must be one of the
    model's own terms).

    Raises
    ------
    ArgumentError
        For a term the model does not have, or another kind of value.

    Examples
    --------
    >>> from lmmlib.engine.design import build_design
    >>> d = lmmlib.datasets.load("pig")
    >>> design = build_design("weight ~ weeks + (1 | id)", d)
    >>> re_form_columns(design, "~0")[0].tolist(), re_form_columns(design, None)
    ([False], None)
    """
    if re_form is None:
        return None
    if re_form is False or (isinstance(re_form, str) and _normal(re_form) in ("~0", "NA", "~-1")):
        return [np.zeros(b.q, dtype=bool) for b in design.blocks]
    if not isinstance(re_form, str):
        raise ArgumentError(f"re_form must be None, '~0' or a formula of random terms such as "
                            f"'~ (1 | g)', got {re_form!r}")
    rhs = re_form.split("~", 1)[-1]
    wanted = parse_formula(f"_re_form_ ~ 0 + {rhs}").random
    masks = [np.zeros(b.q, dtype=bool) for b in design.blocks]
    for term in wanted:
        key = (":".join(term.factors), _normal(term.expr))
        hits = [t for t in design.reterms if (t.factor, _normal(t.expr)) == key]
        if not hits:
            have = ", ".join(f"({t.expr} | {t.factor})" for t in design.reterms)
            raise ArgumentError(f"re_form term ({term.expr} | {':'.join(term.factors)}) is not a "
                                f"random term of the model (its terms: {have})")
        for t in hits:
            masks[t.block][t.offset : t.offset + t.q] = True
    return masks


def prediction_table(fit: np.ndarray, X: np.ndarray, vcov: np.ndarray, index: pd.Index,
                     interval: str, level: float) -> pd.DataFrame:
    """Population predictions with their standard errors √(xᵢ' V xᵢ) (V = vcov of β̂).

    ``interval="confidence"`` adds ``lwr``/``upr`` = fit ∓ z·se (normal quantile,
    as for Wald intervals of β̂); the uncertainty of θ̂ is not included.
    """
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, vcov, X))
    out = pd.DataFrame({"fit": fit, "se_fit": se}, index=index)
    if interval == "confidence":
        z = scipy.stats.norm.ppf((1 + level) / 2)
        out["lwr"], out["upr"] = fit - z * se, fit + z * se
    return out


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

    def _predict(self, newdata: Any, re: bool, allow_new_levels: bool, re_form: object,
                 se_fit: bool, interval: str, level: float, offset: np.ndarray):
        """Linear predictor for :meth:`predict` of either model kind (see there).

        Returns the linear predictor, or the table of :func:`prediction_table`
        for ``se_fit`` / ``interval`` (population predictions only).
        """
        re = as_bool(re, "re")
        se_fit = as_bool(se_fit, "se_fit")
        interval = as_choice(interval, "interval", ("none", "confidence"))
        level = as_level(level)
        columns = re_form_columns(self.design, re_form if re_form is not None
                                  else (None if re else "~0"))
        if newdata is None:
            frame, X, known = self.design.frame, self.design.X, True
        else:
            frame = newdata_frame(self.design, newdata)
            X, known = fixed_rows(self.design, frame), False
            offset = newdata_offset(self.design, newdata, frame)
        eta = offset + X @ self._sol.beta
        if columns is None or any(c.any() for c in columns):
            if se_fit or interval != "none":
                raise ArgumentError("se_fit and interval are for the population (fixed-effects) "
                                    "predictions: use re=False or re_form='~0'")
            eta = eta + self._zb(frame, known, allow_new_levels, columns)
        if se_fit or interval != "none":
            return prediction_table(eta, X, self.vcov.to_numpy(), frame.index, interval, level)
        return pd.Series(eta, index=frame.index, name="predicted")

    def _zb(self, frame: pd.DataFrame, known: bool, allow_new_levels: bool = False,
            columns: list[np.ndarray] | None = None) -> np.ndarray:
        """Z b̂ for the rows of ``frame`` (only the random-effect ``columns`` of each block).

        Rows with a missing grouping value contribute 0 (the population
        prediction); so do levels not seen in the fit when ``allow_new_levels``
        is true, and otherwise they are an error naming the level, as in lme4.
        """
        total = np.zeros(len(frame))
        effects = block_effects(self._sol, self.design.blocks)
        allow = as_bool(allow_new_levels, "allow_new_levels")
        for i, (block, eff) in enumerate(zip(self.design.blocks, effects, strict=True)):
            use = None if columns is None else columns[i]
            if use is not None and not use.any():
                continue
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
            if use is not None:
                Z, eff = Z[:, use], eff[:, use]
            total[hit] += np.einsum("ij,ij->i", Z[hit], eff[codes[hit]])
        return total
