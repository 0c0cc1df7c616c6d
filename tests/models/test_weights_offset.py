"""lmer(weights=, offset=) against lme4 (fixtures of tests/reference/lme4_weights.R)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, SAME_OPTIMUM_SE, fixture_data, reference

import lmmlib
from lmmlib.errors import DataError

LMER = [n for n in ("sleep_weights_reml", "sleep_weights_ml", "sleep_offset",
                    "penicillin_weights")]


def fit(name: str):
    fx = reference("weights", name)
    data = fixture_data(fx)
    return fx, data, lmmlib.lmer(fx["python_formula"], data, reml=fx["reml"],
                                 weights=fx["weights"], offset=fx["offset"])


@pytest.mark.parametrize("name", LMER)
def test_weighted_and_offset_fits_match_lme4(name):
    fx, _, m = fit(name)
    # lmmlib's optimum no higher than lme4's tight one (beyond its own gap), the same one
    assert m.objective <= fx["objective_tight"] + OPT_GAP
    assert m.objective == pytest.approx(fx["objective_tight"], **SAME_OPTIMUM)
    se = np.asarray(fx["se_tight"], float)
    # β within the optimum's spread in standard errors (conftest's rule); SEs and σ at
    # 1e-4 relative (they move with θ along the criterion's flat directions, seen 2e-6)
    assert np.all(np.abs(m.fixef.to_numpy() - fx["beta_tight"]) <= SAME_OPTIMUM_SE * se)
    np.testing.assert_allclose(m.se.to_numpy(), se, rtol=1e-4)
    np.testing.assert_allclose(m.theta, np.atleast_1d(fx["theta_tight"]), rtol=1e-3,
                               atol=1e-4)


def test_offset_enters_fitted_values_predictions_and_simulations():
    fx, data, m = fit("sleep_offset")
    off = data["off"].to_numpy()
    # fitted = offset + Xβ + Zb, so the residuals are those of the response minus the
    # offset fitted without it (closed form: the same PLS problem)
    plain = lmmlib.lmer(fx["python_formula"], data.assign(Reaction=data.Reaction - off))
    np.testing.assert_allclose(m.fitted.to_numpy() - off, plain.fitted.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(m.residuals.to_numpy(), plain.residuals.to_numpy(),
                               rtol=1e-6, atol=1e-6)
    pop = m.predict(re=False).to_numpy()
    np.testing.assert_allclose(pop - off, np.asarray(m.model_matrix) @ m.fixef.to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(m.predict(newdata=data, re=False).to_numpy(), pop, rtol=1e-12)
    with pytest.raises(DataError, match="offset column 'off'"):
        m.predict(newdata=data.drop(columns="off"))
    # simulated means follow the offset: 2000 draws per row within 5 Monte-Carlo SEs
    sims = m.simulate(nsim=2000, rng=2, use_u=True)
    assert np.all(np.abs(sims.mean(axis=0) - m.fitted.to_numpy()) <= 5 * m.sigma / np.sqrt(2000))


def test_weights_scale_the_simulated_residuals():
    fx, data, m = fit("sleep_weights_ml")
    w = data["w"].to_numpy()
    sims = m.simulate(nsim=4000, rng=3, use_u=True)
    # residual variance σ²/w: the SD of the draws per row against σ/√w (4000 draws:
    # relative SE of an SD ≈ 1/√8000 ≈ 1.1%; 5%)
    sd = sims.std(axis=0)
    np.testing.assert_allclose(sd, m.sigma / np.sqrt(w), rtol=0.05)
    # a refit keeps the weights: the same data give the same fit
    again = m.refit(np.asarray(m.response))
    assert again.objective == pytest.approx(m.objective, **SAME_OPTIMUM)


def test_bad_weights_and_offsets_are_named():
    fx = reference("weights", "sleep_weights_reml")
    data = fixture_data(fx)
    with pytest.raises(DataError, match="weights column 'w' must be positive"):
        lmmlib.lmer(fx["python_formula"], data.assign(w=0.0), weights="w")
    with pytest.raises(DataError, match="weights column 'nope' is not in the data"):
        lmmlib.lmer(fx["python_formula"], data, weights="nope")
    with pytest.raises(DataError, match="offset has 3 values"):
        lmmlib.lmer(fx["python_formula"], data, offset=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="offset column 'w' must be finite"):
        lmmlib.lmer(fx["python_formula"], data.assign(w=np.where(data.index == 2, np.inf,
                                                                  1.0)), offset="w")


def test_verbs_keep_or_refuse_the_weights():
    fx, data, m = fit("sleep_weights_reml")
    # update on the model frame carries the weights: the same formula refits to the same
    # optimum (the weights define the criterion, so an unweighted refit would differ)
    again = lmmlib.update(m, ". ~ .")
    assert again.objective == pytest.approx(m.objective, **SAME_OPTIMUM)
    for verb in (lmmlib.exact_rlrt, lmmlib.hatvalues, lmmlib.cooks_distance,
                 lmmlib.prediction_interval):
        with pytest.raises(lmmlib.ArgumentError, match="prior weights or an offset"):
            verb(m)
    with pytest.raises(lmmlib.ArgumentError, match="Kenward-Roger is not available"):
        lmmlib.anova(m, ddf="Kenward-Roger")
    # the ML refit of anova and the profile keep the weights: the ML fixture's optimum
    ml = reference("weights", "sleep_weights_ml")
    assert m.refit_ml().objective == pytest.approx(ml["objective_tight"], **SAME_OPTIMUM)


def test_offset_term_in_the_formula_equals_the_argument():
    fx, data, m = fit("sleep_offset")
    term = lmmlib.lmer("Reaction ~ Days + offset(off) + (1 | Subject)", data)
    # the same model written two ways (lme4 accepts both): the same optimum, and
    # predictions equal within its spread (they move with θ by ~1e-8 relative)
    assert term.objective == pytest.approx(m.objective, **SAME_OPTIMUM)
    np.testing.assert_allclose(term.predict(newdata=data).to_numpy(),
                               m.predict(newdata=data).to_numpy(), rtol=1e-6)
    # a transform inside offset() is evaluated as R does, on new data too
    halves = lmmlib.lmer("Reaction ~ Days + offset(2 * off) + (1 | Subject)",
                         data.assign(off=data.off / 2))
    assert halves.objective == pytest.approx(m.objective, **SAME_OPTIMUM)
    with pytest.raises(DataError, match=r"offset\(log\(off\)\) is missing or not finite"):
        lmmlib.lmer("Reaction ~ Days + offset(log(off)) + (1 | Subject)",
                    data.assign(off=data.off - 1000))


def test_residual_types_of_a_weighted_fit_match_lme4():
    fx = reference("predict", "sleep_weights")
    data = fixture_data(fx)
    m = lmmlib.lmer(fx["formula"], data, weights="w")
    # lme4's residuals(m, type) at its tight fit; lmmlib's fit is the same optimum, so
    # the residuals agree to the curvature of the fitted values in θ (seen 2e-6): 1e-4
    for kind, values in fx["residuals"].items():
        np.testing.assert_allclose(m.resid(kind).to_numpy(), values, rtol=1e-4, atol=1e-4)
