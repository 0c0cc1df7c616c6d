"""What a GLMM profile re-optimises: the Laplace (or AGQ) deviance in (SDs/correlations, β).

As lme4's ``profile.merMod`` for a ``glmer`` fit, the deviance −2 log L of the
fit's approximation is profiled over each standard deviation or correlation of
the random effects (``.sig01``, ...; a GLMM of these families has no residual
scale) and each fixed effect; at every value all the other parameters are
re-optimised.  Only the model's public ``deviance_at(θ, β)``, its estimates and
standard errors are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.varcomp import VarPars
from .profile_walk import minimize_bounded, signed_root

__all__ = ["GlmmProfileProblem", "glmm_problem"]


@dataclass
class GlmmProfileProblem:
    """The deviance of a GLMM in profile coordinates, and its estimates."""

    model: Any
    vp: VarPars  # with a σ fixed at 1, dropped from the coordinates
    v_hat: np.ndarray  # SDs and correlations at the estimates
    beta_hat: np.ndarray
    se_beta: np.ndarray
    base: float  # the deviance at the optimum
    names: tuple[str, ...]
    xnames: tuple[str, ...]
    criterion: str = "deviance (Laplace)"

    @property
    def nvp(self) -> int:
        return self.v_hat.size

    @property
    def estimates(self) -> np.ndarray:
        return np.concatenate([self.v_hat, self.beta_hat])

    @property
    def lower(self) -> np.ndarray:
        return self.vp.lower[:-1]

    @property
    def upper(self) -> np.ndarray:
        return self.vp.upper[:-1]

    def deviance(self, x: np.ndarray) -> float:
        """The deviance at x = (SDs/correlations, β)."""
        theta, _ = self.vp.to_theta(np.concatenate([x[: self.nvp], [1.0]]))
        return float(self.model.deviance_at(theta, x[self.nvp:]))

    def _scale(self) -> np.ndarray:
        """Typical sizes, for the optimiser's first steps."""
        kinds = np.array(self.vp.kinds[:-1])
        sd = np.where(kinds == "cor", 1.0, np.maximum(self.v_hat, 0.05))
        return np.concatenate([sd, np.where(np.isfinite(self.se_beta), self.se_beta, 1.0)])

    def zeta(self, w: int) -> Callable[[float, np.ndarray], np.ndarray]:
        """ζ of parameter ``w``: the deviance re-optimised over all the others."""
        size = self.nvp + self.beta_hat.size
        free = np.delete(np.arange(size), w)
        lower = np.concatenate([self.lower, np.full(self.beta_hat.size, -np.inf)])[free]
        upper = np.concatenate([self.upper, np.full(self.beta_hat.size, np.inf)])[free]
        step = 0.1 * self._scale()[free]
        est = self.estimates[w]

        def zeta(value: float, start: np.ndarray) -> np.ndarray:
            x = np.empty(size)
            x[w] = value

            def f(z: np.ndarray) -> float:
                x[free] = z
                return self.deviance(x)

            z, fval = minimize_bounded(f, start[1:][free], lower, upper, step)
            x[free] = z
            return np.concatenate([[signed_root(value - est, fval - self.base)], x])

        return zeta


def glmm_problem(model: Any) -> GlmmProfileProblem:
    """The profile problem of a ``glmer`` fit."""
    design = model.design
    vp = VarPars.of(design.reterms)
    v_hat = vp.from_theta(model.theta, 1.0)[:-1]
    names = tuple(vp.names[:-1]) + tuple(design.xnames)
    crit = "deviance (Laplace)" if model.nagq == 1 else f"deviance (AGQ, {model.nagq} nodes)"
    return GlmmProfileProblem(model, vp, v_hat, model.fixef.to_numpy(), model.se.to_numpy(),
                              float(model.deviance), names, tuple(design.xnames), crit)
