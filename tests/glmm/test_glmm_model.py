"""GeneralizedLinearMixedModel accessors: residuals, resid(type), refit, simulate(use_u),
optinfo and Wald confint.

Sources: lme4's residuals.glmResp (deviance residuals sign(y − μ)√dᵢ by default,
Pearson (y − μ)/√V(μ), working (y − μ)/μ′(η)); lme4's refit (same model, new
response); simulate(use.u = TRUE) draws given the conditional modes; lme4's
confint(method = "Wald") is estimate ± z·SE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import lmmlib


@pytest.fixture(scope="module")
def pois():
    rng = np.random.default_rng(11)
    d = pd.DataFrame({"g": np.repeat(np.arange(15), 10), "x": rng.normal(size=150)})
    d["k"] = rng.poisson(np.exp(0.5 + 0.3 * d.x + rng.normal(scale=0.6, size=15)[d.g]))
    return lmmlib.glmer("k ~ x + (1 | g)", d, "poisson")


def test_residuals_is_the_deviance_residual_property(pois):
    y, mu = pois.response, pois.fitted.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 2 * (np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))  # Poisson deviance
    np.testing.assert_allclose(pois.residuals, np.sign(y - mu) * np.sqrt(d), rtol=1e-10)
    np.testing.assert_array_equal(pois.residuals, pois.resid())
    np.testing.assert_allclose(pois.resid("pearson"), (y - mu) / np.sqrt(mu), rtol=1e-12)
    np.testing.assert_allclose(pois.resid("response"), y - mu, rtol=1e-12)
    np.testing.assert_allclose(pois.resid("working"), (y - mu) / mu, rtol=1e-12)  # log link
    with pytest.raises(lmmlib.ArgumentError, match="type"):
        pois.resid("raw")


def test_refit_to_its_own_response_reproduces_the_fit(pois):
    again = pois.refit(pois.response)
    # started at the optimum, the optimiser stays there: the deviance within its
    # tolerance (ftol_abs 1e-6 of lme4's glmerControl), θ and β within the SEs' 1e-3
    assert again.deviance == pytest.approx(pois.deviance, abs=1e-6)
    assert abs(again.theta[0] - pois.theta[0]) < 1e-3 * pois.varpar_se()["se"].iloc[0]
    np.testing.assert_array_less(np.abs(again.fixef - pois.fixef), 1e-3 * pois.se)
    assert again.optinfo["stage1_feval"] is None and pois.optinfo["stage1_feval"] > 0
    assert again.nagq == pois.nagq and again.family.name == pois.family.name


def test_refit_to_a_simulated_response_is_the_glmer_fit(pois):
    y = pois.simulate(1, rng=5)[0]
    frame = pois.model_frame.assign(k=y)
    direct = lmmlib.glmer("k ~ x + (1 | g)", frame, "poisson")
    refitted = pois.refit(y)
    # two runs of the optimiser on the same surface from different starts
    assert refitted.deviance == pytest.approx(direct.deviance, abs=1e-5)
    np.testing.assert_allclose(refitted.fixef, direct.fixef, atol=1e-3 * pois.se.min())
    with pytest.raises(lmmlib.DataError):
        pois.refit(np.full(pois.nobs, -1.0))


def test_simulate_use_u_keeps_the_conditional_modes(pois):
    cond = pois.simulate(4000, rng=2, use_u=True)
    # E[y | û] = μ̂ (fitted means); Monte Carlo SE √(μ/4000) per observation
    z = (cond.mean(axis=0) - pois.fitted.to_numpy()) / np.sqrt(pois.fitted.to_numpy() / 4000)
    assert np.abs(z).max() < 5
    np.testing.assert_array_equal(pois.simulate(3, rng=1, use_u=True),
                                  pois.simulate(3, rng=np.random.default_rng(1), use_u=True))
    with pytest.raises(lmmlib.ArgumentError, match="use_u"):
        pois.simulate(2, rng=1, use_u="yes")


def test_wald_confint(pois):
    ci = pois.confint("wald", level=0.9)
    z = scipy.stats.norm.ppf(0.95)
    vp = pois.varpar_se()
    np.testing.assert_allclose(ci.loc[list(pois.fixef.index)].to_numpy(),
                               np.column_stack([pois.fixef - z * pois.se,
                                                pois.fixef + z * pois.se]), rtol=1e-13)
    np.testing.assert_allclose(ci.iloc[0], [vp["estimate"].iloc[0] - z * vp["se"].iloc[0],
                                            vp["estimate"].iloc[0] + z * vp["se"].iloc[0]])
    assert list(ci.columns) == ["5 %", "95 %"]
    with pytest.raises(lmmlib.ArgumentError, match="method"):
        pois.confint(method="Wald!")


def test_optinfo_has_both_stages(pois):
    info = pois.optinfo
    assert info["feval"] == pois.opt.feval and info["conv"] is True
    assert info["stage1_feval"] == pois.fit.opt_stage1.feval
