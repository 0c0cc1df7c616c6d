"""Inference on glmer fits: profile and bootstrap intervals, the bootstrap, varpar_se.

Profile intervals are checked against lme4's ``confint(m)`` on fits of lme4's
cbpp data and of simulated counts (tests/reference/lme4_glmer_confint.R).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fixture_data, reference

import lmmlib


def fixture_fit(name: str):
    fx = reference("glmer_confint", name)
    data = fixture_data(fx)
    for col in ("period", "herd", "g"):
        if col in data:
            data[col] = pd.Categorical(data[col])  # R's factors (stored as text)
    return fx, lmmlib.glmer(fx["python_formula"], data, fx["family"], weights=fx["weights"])


@pytest.fixture(scope="module")
def counts():
    return fixture_fit("counts")


@pytest.mark.parametrize("name", ["cbpp", "counts"])
def test_profile_intervals_match_lme4(name):
    fx, m = fixture_fit(name)
    ci = m.confint()
    ref = pd.DataFrame(fx["profile"]).set_index("par")
    # the same parameters in lme4's order (lmmlib names factor columns period[T.2] where
    # R writes period2, see the README's table)
    assert len(ci) == len(ref) and list(ci.index[:1]) == list(ref.index[:1]) == [".sig01"]
    # lme4's spline-inverted profile of the Laplace deviance: 1e-3 absolute or relative,
    # as for lmer fits (test_confint.py: lme4's interpolation and optimiser error is of
    # that order; each lmmlib point is re-optimised to ~1e-10 in the deviance)
    np.testing.assert_allclose(ci.to_numpy(), ref[["lower", "upper"]].to_numpy(),
                               rtol=1e-3, atol=1e-3)
    if name == "cbpp":
        # and lme4's Wald intervals of the fixed effects (β̂ ± z·SE, both within 1e-4
        # relative of lme4's).  Not for "counts": there lme4's own tight refit stops with
        # max|grad| = 0.006 and its finite-difference Hessian gives SEs 13x too small
        # (its Wald interval of the intercept excludes the profile's centre)
        wald = pd.DataFrame(fx["wald"]).set_index("par").dropna()
        np.testing.assert_allclose(m.confint("wald").iloc[1:].to_numpy(),
                                   wald[["lower", "upper"]].to_numpy(), rtol=1e-3, atol=1e-4)


def test_profile_is_a_signed_root_of_the_deviance(counts):
    _, m = counts
    prof = m.profile(which="x")
    row = prof.iloc[len(prof) // 3]
    # ζ² is the deviance re-minimised at the fixed x, minus the optimum (definition): at
    # the point's own (θ, β) the deviance is exactly that
    theta, beta = np.array([row[".sig01"]]), row[["(Intercept)", "x"]].to_numpy(float)
    assert m.deviance_at(theta, beta) - m.deviance == pytest.approx(row.zeta**2, rel=1e-6)
    assert prof.attrs["criterion"] == "deviance (Laplace)"


def test_bootstrap_of_a_glmer_fit(counts):
    _, m = counts
    boot = lmmlib.bootstrap(m, lambda f: f.fixef, nsim=60, rng=7)
    # reproducible from the seed, and the replicate SDs estimate the Hessian SEs: with 60
    # replicates an SD is within ±3·SE/√(2·59) ≈ ±28% of the truth (normal theory)
    again = lmmlib.bootstrap(m, lambda f: f.fixef, nsim=60, rng=7)
    pd.testing.assert_frame_equal(boot.replicates, again.replicates)
    ratio = boot.se / m.se
    assert np.all((ratio > 0.72) & (ratio < 1.28))
    ci = m.confint("boot", nsim=60, rng=7)
    assert list(ci.index) == [".sig01", "(Intercept)", "x"]
    assert np.all(ci.iloc[:, 0] < ci.iloc[:, 1])


def test_bootstrap_lrt_of_glmer_fits(counts):
    fx, m = counts
    data = fixture_data(fx)
    null = lmmlib.glmm.fit.glmer("y ~ 1 + (1 | g)", data, "poisson")
    res = lmmlib.bootstrap_lrt(null, m, nsim=19, rng=3)
    # the observed statistic is the deviance difference of the two fits (definition)
    assert res.observed == pytest.approx(null.deviance - m.deviance, rel=1e-12)
    assert res.df == 1 and len(res.statistics) == 19 and np.all(res.statistics >= 0)


def test_varpar_se_table_is_that_of_lmer(counts):
    fx, m = counts
    data = fixture_data(fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = lmmlib.lmer("y ~ x + (1 | g)", data)
    glmm_table, lmm_table = lmmlib.varpar_se(m), lmmlib.varpar_se(lmm)
    assert list(glmm_table.columns) == list(lmm_table.columns)
    assert list(glmm_table["par"]) == [".sig01"]  # no .sigma for a Poisson GLMM
    # for a scalar term θ is the SD: the SE is the θ block of 2H⁻¹ itself
    assert glmm_table["se"].iloc[0] == pytest.approx(np.sqrt(m._cov_full[0, 0]), rel=1e-8)
    log = m.varpar_se(scale="logsd")
    # delta method: SE(log sd) = SE(sd)/sd (closed form)
    assert log["se"].iloc[0] == pytest.approx(glmm_table["se"].iloc[0] / m.theta[0], rel=1e-12)


def test_prediction_interval_of_a_glmer_fit(counts):
    fx, m = counts
    new = pd.DataFrame({"x": [0.0, 1.0]})
    pi = lmmlib.prediction_interval(m, new, nsim=200, rng=4, use_u=False)
    # the mean of a new group is exp(β0 + β1 x) times the lognormal mean of its effect;
    # the interval holds counts, so its limits are whole numbers around that mean
    assert np.all(pi["lower"] <= pi["fit"]) and np.all(pi["fit"] <= pi["upper"])
    np.testing.assert_allclose(pi["fit"], np.exp(m.fixef.iloc[0] + m.fixef.iloc[1] * new.x),
                               rtol=1e-12)
    assert np.all(pi[["lower", "upper"]].to_numpy() % 1 == 0)
    again = lmmlib.prediction_interval(m, new, nsim=200, rng=4, use_u=False)
    pd.testing.assert_frame_equal(pi, again)  # reproducible from the seed
