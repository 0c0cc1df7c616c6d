"""The GLMM on the engine: offsets (lme4 fixture) and the shared sparse PLS path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, SAME_OPTIMUM_SE, fixture_data, reference

import lmmlib
from lmmlib.engine.pls import PLS
from lmmlib.errors import DataError


@pytest.fixture(scope="module")
def cbpp_offset():
    fx = reference("weights", "cbpp_offset")
    data = fixture_data(fx)
    data["period"] = pd.Categorical(data["period"])  # R's factor (stored as text)
    return fx, data, lmmlib.glmer(fx["python_formula"], data, "poisson", offset=fx["offset"])


def test_offset_fit_matches_lme4(cbpp_offset):
    fx, data, m = cbpp_offset
    # the Laplace deviance at lmmlib's optimum: no higher than lme4's tight one (beyond
    # the optimiser's gap), and the same optimum
    assert m.deviance <= fx["objective_tight"] + OPT_GAP
    assert m.deviance == pytest.approx(fx["objective_tight"], **SAME_OPTIMUM)
    # parameters within the optimum's spread, in standard errors (conftest's rule)
    se = np.asarray(fx["se_tight"], float)
    assert np.all(np.abs(m.fixef.to_numpy() - fx["beta_tight"]) <= SAME_OPTIMUM_SE * se)
    np.testing.assert_allclose(m.theta, np.atleast_1d(fx["theta_tight"]), rtol=1e-4)
    # standard errors from the finite-difference Hessian: 1e-4 relative (lme4's
    # own Hessian is a finite difference too)
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=1e-4)


def test_offset_enters_predictions_and_simulations(cbpp_offset):
    fx, data, m = cbpp_offset
    off = data[fx["offset"]].to_numpy(float)
    pop = m.predict(re=False).to_numpy()
    # the population linear predictor is offset + Xβ (closed form)
    np.testing.assert_allclose(pop - off, np.asarray(m.model_matrix) @ m.fixef.to_numpy(),
                               rtol=1e-12, atol=1e-12)
    # newdata takes the offset from its own column: the same rows give the same values
    np.testing.assert_allclose(m.predict(newdata=data, re=False).to_numpy(), pop, rtol=1e-12)
    with pytest.raises(DataError, match="offset column 'lsize'"):
        m.predict(newdata=data.drop(columns="lsize"))
    # means of simulated counts follow exp(offset + Xβ + Zb): with use_u the mean of
    # 4000 draws per row is within 5 Monte-Carlo SDs of μ̂
    sims = m.simulate(nsim=4000, rng=1, use_u=True)
    mu = m.fitted.to_numpy()
    assert np.all(np.abs(sims.mean(axis=0) - mu) <= 5 * np.sqrt(mu / 4000))


def test_offset_given_as_numbers_refuses_new_data(cbpp_offset):
    fx, data, _ = cbpp_offset
    m = lmmlib.glmer(fx["python_formula"], data, "poisson",
                     offset=data[fx["offset"]].to_numpy())
    with pytest.raises(DataError, match="offset given as numbers"):
        m.predict(newdata=data)
    with pytest.raises(DataError, match="offset has 3 values"):
        lmmlib.glmer(fx["python_formula"], data, "poisson", offset=[1.0, 2.0, 3.0])


def crossed_counts(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, ka, kb = 600, 60, 12
    a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.4 * x + rng.normal(scale=0.6, size=ka)[a] + rng.normal(scale=0.4, size=kb)[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})


def test_crossed_glmm_steps_take_the_sparse_schur_path(monkeypatch):
    calls = []
    original = PLS._rest_matrix_sparse

    def spy(self, state, scales, scratch):
        calls.append(self.weights is not None)
        return original(self, state, scales, scratch)

    monkeypatch.setattr(PLS, "_rest_matrix_sparse", spy)
    m = lmmlib.glmer("y ~ x + (1 | a) + (1 | b)", crossed_counts(), "poisson")
    # every penalised IRLS step of the crossed model is a reweighted engine solve on
    # the sparse coupling (the spy sees the working weights)
    assert len(calls) > 50 and all(calls)
    # and the Laplace deviance there is that of the independent dense formula at the
    # mode (closed form: rounding of a 73×73 system only)
    mode = m.fit.mode
    prob = m.fit.problem
    w = prob.wt * prob.family.variance(prob.family.linkinv(mode.eta))
    Z = np.hstack([(b.codes[:, None] == np.arange(b.nlevels)) * b.lam(mode.theta)[0, 0]
                   for b in prob.design.blocks])
    _, logdet = np.linalg.slogdet(Z.T @ (w[:, None] * Z) + np.eye(Z.shape[1]))
    dense = mode.devsum - 2 * prob.saturated + mode.u @ mode.u + logdet
    assert m.deviance == pytest.approx(dense, rel=1e-12)


def test_offset_term_in_a_glmer_formula(cbpp_offset):
    fx, data, m = cbpp_offset
    term = lmmlib.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", data, "poisson")
    # offset(log(size)) is the fixture's lsize column (R's log): the same optimum
    assert term.deviance == pytest.approx(m.deviance, **SAME_OPTIMUM)
    np.testing.assert_allclose(term.predict(newdata=data, re=False).to_numpy(),
                               m.predict(newdata=data, re=False).to_numpy(), rtol=1e-6)
    # (predictions of two fits of one optimum: they move with β inside its spread, ~1e-8)
