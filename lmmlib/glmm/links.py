"""Link functions beyond the canonical ones, with R's numerical safeguards.

Each link gives η(μ), μ(η) and dμ/dη exactly as R's ``make.link`` and the
binomial family compute them, including their clamps (so that fits agree with
lme4 where the data push μ towards 0 or 1):

- ``probit``: η is clamped to ±8.1259 (= −qnorm(ε)) before Φ, and dμ/dη is at
  least ε;
- ``cloglog``: μ = 1 − exp(−exp(η)) kept within [ε, 1 − ε], and dμ/dη =
  exp(η − exp(η)) (η capped at 700) at least ε;
- ``log``: μ = exp(η) and dμ/dη at least ε;
- ``inverse``: μ = 1/η, dμ/dη = −1/η².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["LINKS", "Link"]

EPS = np.finfo(float).eps
PROBIT_THRESH = float(-ndtri(EPS))  # 8.1259: R's qnorm(.Machine$double.eps)


@dataclass(frozen=True)
class Link:
    """A link function: its name, η(μ), μ(η) and dμ/dη."""

    name: str

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η(μ)."""
        if self.name == "probit":
            return ndtri(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        if self.name == "log":
            return np.log(mu)
        return 1.0 / mu  # inverse

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ(η), clamped as R's."""
        with np.errstate(over="ignore", divide="ignore"):
            if self.name == "probit":
                return ndtr(np.clip(eta, -PROBIT_THRESH, PROBIT_THRESH))
            if self.name == "cloglog":
                return np.clip(-np.expm1(-np.exp(eta)), EPS, 1.0 - EPS)
            if self.name == "log":
                return np.maximum(np.exp(eta), EPS)
            return 1.0 / eta

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη, floored at ε as R's."""
        with np.errstate(over="ignore", divide="ignore"):
            if self.name == "probit":
                return np.maximum(np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi), EPS)
            if self.name == "cloglog":
                e = np.minimum(eta, 700.0)
                return np.maximum(np.exp(e) * np.exp(-np.exp(e)), EPS)
            if self.name == "log":
                return np.maximum(np.exp(eta), EPS)
            return -1.0 / (eta * eta)


LINKS = {name: Link(name) for name in ("probit", "cloglog", "log", "inverse")}
