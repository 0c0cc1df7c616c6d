"""lmmlib's fits against R lme4 1.1-31 reference fits (tests/reference/fixtures).

Tolerances: objective 1e-7 relative; θ, β, SEs, σ 1e-4 relative (θ may differ
legitimately at ~1e-5 between good optimisers: where lme4's default optimum is
looser than its tight refit, lmmlib is compared with the tight one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import fitted, fixture_names, lme4_fixture

LMER = fixture_names("lmer")
LM = fixture_names("lm")


def _close(actual, expected, rtol=1e-4, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", LMER)
def test_objective_matches_lme4(name):
    fx, m = lme4_fixture(name), fitted(name)
    # never worse than lme4's own default fit, and equal to its tight refit
    assert m.objective <= fx["objective"] + 1e-9 * abs(fx["objective"])
    _close(m.objective, fx["objective_tight"], rtol=1e-7, atol=0)
    _close(m.loglik, -fx["objective_tight"] / 2, rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", LMER)
def test_parameters_match_lme4(name):
    fx, m = lme4_fixture(name), fitted(name)
    assert list(m.fixef.index) == fx["beta"]["names"] or len(m.fixef) == len(fx["beta"]["names"])
    _close(m.fixef, fx["beta_tight"], atol=1e-7)
    _close(m.se, fx["se"], atol=1e-7)
    _close(m.theta, fx["theta_tight"], atol=2e-5)
    _close(m.sigma, fx["sigma_tight"])
    _close(m.aic, fx["aic"], rtol=1e-7)
    _close(m.bic, fx["bic"], rtol=1e-7)
    assert m.nobs == fx["nobs"]
    assert m.npar == fx["df"]
    assert dict(m.ngroups) == fx["ngroups"]
    assert m.is_singular == fx["singular"]


@pytest.mark.parametrize("name", LMER)
def test_varcorr_matches_lme4(name):
    fx, m = lme4_fixture(name), fitted(name)
    ref = pd.DataFrame(fx["varcorr"])
    ours = m.varcorr
    assert list(ours["group"]) == list(ref["group"])
    assert list(ours["var1"].fillna("-")) == list(ref["var1"].fillna("-"))
    assert list(ours["var2"].fillna("-")) == list(ref["var2"].fillna("-"))
    _close(ours["vcov"], ref["vcov"], atol=1e-6)
    _close(ours["sdcor"], ref["sdcor"], atol=2e-4)


@pytest.mark.parametrize("name", LMER)
def test_ranef_matches_lme4(name):
    fx, m = lme4_fixture(name), fitted(name)
    key = ["grpvar", "term", "grp"]
    ref = pd.DataFrame(fx["ranef"]).astype({"grp": str}).set_index(key).sort_index()
    ours = m.ranef(condvar=True).set_index(key).sort_index()
    assert ours.index.equals(ref.index)
    scale = max(ref["condval"].abs().max(), 1e-8)
    _close(ours["condval"] / scale, ref["condval"] / scale, atol=1e-4)
    _close(ours["condsd"], ref["condsd"], atol=1e-5 * max(ref["condsd"].max(), 1))


@pytest.mark.parametrize("name", LMER)
def test_fitted_match_lme4(name):
    fx, m = lme4_fixture(name), fitted(name)
    _close(m.fitted, fx["fitted"], rtol=1e-5, atol=1e-6)
    _close(m.residuals + m.fitted, m.design.y, rtol=1e-12)


@pytest.mark.parametrize("name", LM)
def test_lm_matches_r(name):
    fx, m = lme4_fixture(name), fitted(name)
    _close(m.fixef, fx["beta"]["values"], rtol=1e-8, atol=1e-10)
    _close(m.se, fx["se"], rtol=1e-8)
    _close(m.sigma, fx["sigma"], rtol=1e-10)
    _close(m.loglik, fx["loglik"], rtol=1e-10)
    _close(m.aic, fx["aic"], rtol=1e-10)
    _close(m.bic, fx["bic"], rtol=1e-10)
