"""model_frame, model_matrix, response and resid(type=) on lm, lmer and glmer fits.

Sources: R's model.frame / model.matrix / model.response; lme4's
residuals(m, type) (for a Gaussian model without weights every type is y − μ̂,
and scaled = TRUE divides by sigma(m)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmlib


@pytest.fixture(scope="module")
def fits(pig):
    rng = np.random.default_rng(4)
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 8), "x": rng.normal(size=96)})
    d["k"] = rng.poisson(np.exp(0.4 + 0.3 * d.x + rng.normal(scale=0.5, size=12)[d.g]))
    return {"lm": lmmlib.lm("weight ~ weeks", pig),
            "lmer": lmmlib.lmer("weight ~ weeks + (1 | id)", pig),
            "glmer": lmmlib.glmer("k ~ x + (1 | g)", d, "poisson")}


@pytest.mark.parametrize("kind", ["lm", "lmer", "glmer"])
def test_data_accessors_are_copies_of_the_fit_data(fits, kind):
    m = fits[kind]
    X, y, frame = m.model_matrix, m.response, m.model_frame
    np.testing.assert_array_equal(X, m.design.X)
    np.testing.assert_array_equal(y, m.design.y)
    pd.testing.assert_frame_equal(frame, m.design.frame)
    assert X.shape == (m.nobs, len(m.fixef)) and y.shape == (m.nobs,)
    # X β̂ is the population prediction
    np.testing.assert_allclose(X @ m.fixef.to_numpy(), m.predict(re=False) if kind != "lm"
                               else m.fitted, rtol=1e-12)
    X[:] = 0
    y[:] = 0
    frame.iloc[:, 0] = 0
    assert np.any(m.model_matrix != 0) and np.any(m.response != 0)
    assert not (m.model_frame.iloc[:, 0] == 0).all()


@pytest.mark.parametrize("kind", ["lm", "lmer"])
def test_gaussian_resid_types(fits, kind):
    m = fits[kind]
    raw = m.response - m.fitted.to_numpy()
    for type in ("response", "pearson", "deviance", "working"):
        np.testing.assert_array_equal(m.resid(type), raw)
    np.testing.assert_allclose(m.resid(scaled=True), raw / m.sigma, rtol=1e-14)
    with pytest.raises(lmmlib.ArgumentError, match="type"):
        m.resid("partial")


def test_theta_of_lm_is_empty(fits):
    assert fits["lm"].theta.shape == (0,)
    # properties common to the three classes
    for m in fits.values():
        for name in ("fixef", "vcov", "se", "fitted", "residuals", "sigma", "loglik", "aic",
                     "bic", "nobs", "theta"):
            getattr(m, name)
