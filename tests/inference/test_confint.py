"""Confidence intervals against lme4's confint(m) and confint(m, method = "Wald").

Fixtures: tests/reference/fixtures/confint/*.json, written by
tests/reference/lme4_confint.R (lme4 1.1-31).
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, CurvatureBound, fitted, lme4_fixture, profiled_at, reference_names
from conftest import reference as lme4_reference
from scipy.stats import norm

from lmmlib import LmmlibError
from lmmlib.inference.confint import confint, percent_labels

MODELS = reference_names("confint")
reference = partial(lme4_reference, "confint")  # one lme4 confint fixture


def _table(block: dict) -> np.ndarray:
    """(lower, upper) columns of a fixture's interval table, null as NaN."""
    return np.array([[np.nan if v is None else v for v in block[k]] for k in ("lower", "upper")],
                    dtype=float).T


@cache
def profile_ci(name: str) -> pd.DataFrame:
    return confint(fitted(name), method="profile")


def test_fixtures_present():
    # the models lme4_confint.R writes
    assert {"pig_reml", "pig_ml", "nepal_ri", "nepal_slope", "pulp_reml",
            "sleepstudy_reml"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_profile_intervals_match_lme4(name):
    # lme4 confint(m): spline-inverted profile of the ML deviance; 1e-3 absolute,
    # relative for values above 1 (lme4's own interpolation and optimiser error is
    # of that order: nepal_slope's .sig02 used linear interpolation in lme4; seen ≤ 0.24
    # of the tolerance).  lmmlib's own part is tiny: each profile point is re-optimised
    # to within OPT_GAP, which moves ζ by OPT_GAP/(2ζ) and a limit by ~1e-8 SE
    fx = reference(name)["confint_profile"]
    ci = profile_ci(name)
    assert list(ci.index) == fx["rows"]
    assert list(ci.columns) == fx["columns"] == ["2.5 %", "97.5 %"]
    ref = _table(fx)
    np.testing.assert_allclose(ci.to_numpy(), ref, rtol=1e-3, atol=1e-3)


def test_boundary_limits_are_the_bound():
    # lme4: pulp's operator SD profile reaches 0 before zeta = -1.96, and the singular
    # Dyestuff2 fit (theta = 0) starts on the bound; the lower limit is then exactly 0
    assert profile_ci("pulp_reml").loc[".sig01", "2.5 %"] == 0.0
    assert reference("pulp_reml")["confint_profile"]["lower"][0] == 0.0
    assert profile_ci("dyestuff2").loc[".sig01", "2.5 %"] == 0.0
    assert reference("dyestuff2")["confint_profile"]["lower"][0] == 0.0


def test_reml_fit_is_profiled_by_ml():
    # lme4 profiles the ML deviance (devfun2 calls refitML): REML and ML fits of the
    # pig model give identical profile intervals in the fixtures, and here
    # (R: the same computation, equal to rounding; here the REML fit's ML refit and the
    # ML fit are two optima of one criterion, each within OPT_GAP, which moves ζ² and so
    # the limits by ~OPT_GAP·SE/(2·1.96) ≈ 1e-8 SE; seen 7e-13 relative)
    np.testing.assert_allclose(_table(reference("pig_reml")["confint_profile"]),
                               _table(reference("pig_ml")["confint_profile"]), rtol=1e-8)
    np.testing.assert_allclose(profile_ci("pig_reml"), profile_ci("pig_ml"), rtol=1e-7)


@pytest.mark.parametrize("name", MODELS)
def test_wald_intervals(name):
    # lme4 confint(m, method = "Wald"): NA for the variance parameters, beta +- z SE
    m = fitted(name)
    ci = confint(m, method="wald")
    fx = reference(name)["confint_wald"]
    ref = _table(fx)
    assert list(ci.index) == fx["rows"]
    np.testing.assert_array_equal(np.isnan(ci.to_numpy()), np.isnan(ref))
    z = norm.ppf(0.975)
    beta, se = m.fixef.to_numpy(), m.se.to_numpy()
    fixed = ci.loc[list(m.fixef.index)].to_numpy()
    # the same formula with the same numbers: exact
    np.testing.assert_array_equal(fixed, np.column_stack([beta - z * se, beta + z * se]))
    # against lme4's numbers: as close as the two fits' β and SE are.  lme4's default
    # optimiser stops early (θ 6e-4 off in nepal_slope, 1.3e-6 above the minimum), so
    # each limit β(θ) ± z·se(θ) is within its curvature bound for lme4's gap plus
    # lmmlib's OPT_GAP (3.5e-4 SE for nepal_slope, ≤ 2e-4 SE elsewhere; seen 2.2e-4 SE for
    # nepal_slope, where lme4's default fit stopped, the same on every kernel), plus
    # rounding
    fx = lme4_fixture(name)
    gap = max(fx["objective"] - fx["objective_tight"], 0.0)

    def limits(theta):
        at = profiled_at(m, theta)
        return np.column_stack([at["beta"] - z * at["se"], at["beta"] + z * at["se"]]).ravel()

    tol = CurvatureBound(m, 1.0)(limits) * (np.sqrt(OPT_GAP) + np.sqrt(gap))
    diff = np.abs(fixed - ref[-len(beta):]).ravel()
    np.testing.assert_array_less(diff, tol + 1e-9 * np.abs(fixed).ravel())


def test_percent_labels_as_r():
    # R: stats:::format.perc(c(a, 1 - a), 3) for a = (1 - level) / 2
    assert percent_labels(0.95) == ["2.5 %", "97.5 %"]
    assert percent_labels(0.9) == ["5 %", "95 %"]
    assert percent_labels(0.99) == ["0.5 %", "99.5 %"]
    assert percent_labels(0.999) == ["0.05 %", "99.95 %"]
    assert percent_labels(0.975) == ["1.25 %", "98.75 %"]


def test_level_and_parm():
    m = fitted("sleepstudy_reml")
    ci90 = confint(m, method="wald", level=0.9, parm="beta_")
    assert list(ci90.index) == ["(Intercept)", "Days"]
    assert list(ci90.columns) == ["5 %", "95 %"]
    # a narrower level gives a narrower profile interval inside the 95 % one
    ci95 = profile_ci("sleepstudy_reml").loc[".sigma"]
    ci80 = confint(m, level=0.8, parm=[".sigma"]).loc[".sigma"]
    assert ci95.iloc[0] < ci80.iloc[0] < m.sigma < ci80.iloc[1] < ci95.iloc[1]


def test_errors_name_the_problem():
    m = fitted("pulp_reml")
    with pytest.raises(LmmlibError, match="method"):
        confint(m, method="bayes")
    with pytest.raises(LmmlibError, match="'.sig09'"):
        confint(m, method="wald", parm=[".sig09"])
    with pytest.raises(LmmlibError, match="level"):
        confint(m, level=95)


def test_bootstrap_smoke():
    # parametric bootstrap percentile intervals: reproducible with a seed, contain
    # the fit's estimates (of the REML fit itself, as lme4's bootMer refits)
    m = fitted("pulp_reml")
    a = confint(m, method="boot", nsim=40, rng=np.random.default_rng(2024))
    b = confint(m, method="boot", nsim=40, rng=np.random.default_rng(2024))
    c = confint(m, method="boot", nsim=40, rng=np.random.default_rng(7))
    pd.testing.assert_frame_equal(a, b)  # the same seed through the same code: bit-identical
    assert not a.equals(c)
    # an integer seed is numpy's default_rng(seed): the same draws
    pd.testing.assert_frame_equal(a, confint(m, method="boot", nsim=40, rng=2024))
    assert list(a.index) == [".sig01", ".sigma", "(Intercept)"]
    est = [np.sqrt(m.varcorr["vcov"].iloc[0]), m.sigma, m.fixef.iloc[0]]
    assert np.all(a["2.5 %"].to_numpy() <= est) and np.all(est <= a["97.5 %"].to_numpy())
    assert np.all(a["2.5 %"] >= [0, 0, -np.inf])
