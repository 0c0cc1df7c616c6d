"""``update`` for every kind of fit, glmer fits included (R's ``update``).

:func:`lmmlib.models.update.update` refits ``lm`` and ``lmer`` fits; a GLMM is
refitted here, one layer up, with the same family, prior weights, offset
argument and nAGQ unless they are given again.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..kinds import GeneralizedMixedFit
from ..models.update import update as update_linear
from ..models.update import update_formula
from .fit import glmer

__all__ = ["update"]


def update(model: Any, formula: str | None = None, data: Any = None, reml: bool | None = None,
           **kwargs: Any) -> Any:
    """Refit a model with a changed formula, data or options (R's ``update``).

    Parameters
    ----------
    model : LinearMixedModel, LinearModel or GeneralizedLinearMixedModel
        A fit of :func:`lmmlib.lmer`, :func:`lmmlib.lm` or :func:`lmmlib.glmer`.
    formula : str, optional
        The new formula, in R's ``. ~ . + x`` / ``. ~ . - x`` notation or in full.
    data : DataFrame, optional
        New data (default: the model frame; a glmer fit with a ``cbind()``
        response needs the data that hold its counts).
    reml : bool, optional
        A new REML flag (``lmer`` fits only).
    **kwargs
        Further arguments of the fitting function (for glmer: ``family``,
        ``nAGQ``, ``weights``, ``offset``, ``control``...).

    Returns
    -------
    The refitted model, of the same kind.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "x": rng.normal(size=200)})
    >>> d["y"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + rng.normal(0, 0.5, 20)[d.g]))
    >>> m = lmmlib.glmer("y ~ x + (1 | g)", d, "poisson")
    >>> update(m, ". ~ . - x").formula
    'y ~ (1 | g)'
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _update(model, formula, data, reml, **kwargs)
    for w in caught:  # shown at the caller of update, not here
        warnings.warn(w.message, w.category, stacklevel=2)
    return out


def _update(model: Any, formula: str | None, data: Any, reml: bool | None,
            **kwargs: Any) -> Any:
    if not isinstance(model, GeneralizedMixedFit):
        return update_linear(model, formula, data, reml, **kwargs)
    if reml is not None:
        raise ArgumentError("update: reml does not apply to a glmer fit")
    if formula is not None and not isinstance(formula, str):
        raise ArgumentError(f"update: formula must be a string, got {type(formula).__name__}")
    new = model.formula if formula is None else update_formula(model.formula, formula)
    frame = model.design.frame if data is None else data
    options = {"family": model.family, "nAGQ": model.nagq, "control": model.fit.control}
    wt = model.fit.problem.wt
    if data is None and "weights" not in kwargs and not new.lstrip().startswith("cbind"):
        if not np.all(wt == 1.0):
            options["weights"] = wt  # the prior weights of the model frame's rows
    offset = model.design.offset_argument
    if offset is not None and "offset" not in kwargs:
        if data is not None:
            raise ArgumentError("update: the model was fitted with offset; pass offset= again "
                                "for the new data")
        options["offset"] = offset
    options.update(kwargs)
    return glmer(new, frame, **options)
