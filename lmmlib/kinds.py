"""The kinds of fitted model, as base classes the layers below the models can name.

Inference (tests, intervals, the bootstrap) is written against what a fitted
model offers (``design``, ``objective``, ``refit``, ``simulate``...), not
against the model classes: it only needs to know which kind of fit it was
handed.  The model classes derive from these bases, so ``isinstance(m,
LinearMixedFit)`` is true of every ``lmer`` fit without importing the class.
"""

from __future__ import annotations

__all__ = ["FittedModel", "GeneralizedMixedFit", "LinearFit", "LinearMixedFit", "fit_kind"]


class FittedModel:
    """Base of every fitted model of lmmlib."""

    kind: str = "fitted model"


class LinearFit(FittedModel):
    """A linear model fitted by least squares (``lmmlib.models.lm``)."""

    kind = "lm"


class LinearMixedFit(FittedModel):
    """A linear mixed model (``lmmlib.lmer``)."""

    kind = "lmer"


class GeneralizedMixedFit(FittedModel):
    """A generalised linear mixed model (``lmmlib.glmer``)."""

    kind = "glmer"


def fit_kind(*kinds: type[FittedModel]) -> str:
    """How a message names the kinds of fit a function accepts: "a fit of lmmlib.lmer"."""
    return "a fit of " + " or ".join(f"lmmlib.{k.kind}" for k in kinds)
