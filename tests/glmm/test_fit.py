"""glmer's optimisation: the Newton polish after BOBYQA and the boundary warning.

``POLISHED_GRAD`` bounds the deviance's gradient after the polish: seen 1.2e-7 (the
central-difference error at the final point) against 0.05 from BOBYQA alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fixture_data, reference

import lmmlib
from lmmlib.glmm import fit as glmm_fit

POLISHED_GRAD = 1e-4  # per SE: the deviance within ½g² ≈ 5e-9 of its minimum, < OPT_GAP


def _grouse():
    fx = reference("glmer", "grouseticks")
    return fx, fixture_data(fx)


def _fit(fx, data):
    return lmmlib.glmer(fx["python_formula"], data, fx["family"], weights=fx["weights"],
                        nAGQ=fx["nAGQ"])


def _scaled_gradient(m) -> np.ndarray:
    """The deviance's gradient in (θ, β) times each parameter's standard error.

    The change of the deviance for a move of one SE: independent of the units of
    the covariates (grouseticks' HEIGHT is uncentred, so its raw gradient is
    large for any tiny residual slope in the optimiser's whitened coordinates).
    """
    scale = np.concatenate([m.varpar_se()["se"].to_numpy(), m.se.to_numpy()])
    return np.abs(m.opt.gradient) * scale


def test_newton_polish_leaves_a_small_gradient(monkeypatch):
    # grouseticks (2 random intercepts, 4 fixed effects): where BOBYQA stops (at its
    # 1e-6 tolerance) the largest gradient component of the deviance, per SE, was 8e-3;
    # after the Newton polish 2.5e-5.  Without the polish the fit stops where BOBYQA did.
    fx, data = _grouse()
    polished = _fit(fx, data)
    assert np.max(_scaled_gradient(polished)) < POLISHED_GRAD
    monkeypatch.setattr(glmm_fit, "_polish",
                        lambda f, x, H, h, *_: (x, glmm_fit.central_gradient(f, x, h), f(x)))
    rough = _fit(fx, data)
    # where BOBYQA stops depends on its path (seen 8e-5 to 5e-3 per SE); the polish
    # lowers it by orders of magnitude
    assert np.max(_scaled_gradient(rough)) > 100 * np.max(_scaled_gradient(polished))
    assert rough.deviance >= polished.deviance - 1e-9  # the polish only goes down


def test_boundary_fit_warns_as_lmer_does():
    # counts with no group effect at all: θ̂ = 0, lme4's "boundary (singular) fit"
    rng = np.random.default_rng(8)
    d = pd.DataFrame({"g": np.repeat(np.arange(30), 10), "x": rng.normal(size=300)})
    d["y"] = rng.poisson(np.exp(0.5 + 0.3 * d.x))
    with pytest.warns(lmmlib.SingularFitWarning, match="boundary"):
        m = lmmlib.glmer("y ~ x + (1 | g)", d, "poisson")
    assert m.is_singular and m.theta[0] < 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error", lmmlib.SingularFitWarning)
        lmmlib.glmer("y ~ x + (1 | g)", d.assign(y=rng.poisson(np.exp(
            0.5 + 0.3 * d.x + rng.normal(scale=0.8, size=30)[d.g]))), "poisson")
