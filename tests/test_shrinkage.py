"""Shrinkage factors, effective degrees of freedom and the stratified fit.

References: BIOS 526 M2 (seed 001: BLUP = r_i (ȳ_i − x̄_i'β̂), EDF of the pig
random intercepts 48 · 9/(9 + σ²/τ²)), STAT 528 (seed 002: pulp BLUPs, effects
and their ratio 1.312117), the lme4 fixtures (variance components) and closed
forms.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import fitted, lme4_fixture

import lmmlib
from lmmlib.errors import FormulaError
from lmmlib.gls import random_effects_design
from lmmlib.shrinkage import effective_df, shrinkage, stratified_fit


def lme4_variances(name: str) -> tuple[float, float]:
    """(τ², σ²) of a random-intercept lme4 fixture."""
    vc = lme4_fixture(name)["varcorr"]
    return vc[0]["vcov"], vc[-1]["vcov"]


def test_pulp_blups_and_ratio():
    s = shrinkage(fitted("pulp_reml"))
    # STAT 528: model.tables effects -0.16 -0.34 0.22 0.28 and ranef(mmod)
    np.testing.assert_allclose(s["raw"], [-0.16, -0.34, 0.22, 0.28], atol=1e-12)
    np.testing.assert_allclose(s["blup"], [-0.1219403, -0.2591231, 0.1676679, 0.2133955],
                               atol=5e-7)
    # "estimated fixed effects divided by predicted random effects": 1.312117 for all
    np.testing.assert_allclose(s["ratio"], 1.312117, atol=2e-6)
    # closed form: 1/r = 1 + σ²/(n τ²) with lme4's REML variances
    tau2, sigma2 = lme4_variances("pulp_reml")
    assert s["ratio"].iloc[0] == pytest.approx(1 + sigma2 / (5 * tau2), rel=1e-6)
    assert s.attrs["group"] == "operator"


def test_pig_identity_balanced():
    m = fitted("pig_reml")
    s = shrinkage(m)
    assert (s["n"] == 9).all() and len(s) == 48
    # BLUP = r_i (ȳ_i − x̄_i'β̂) with r_i = τ²/(τ² + σ²/n_i) (BIOS 526 M2)
    np.testing.assert_allclose(s["blup"], s["factor"] * s["raw"], atol=1e-10)
    tau2, sigma2 = lme4_variances("pig_reml")
    np.testing.assert_allclose(s["factor"], tau2 / (tau2 + sigma2 / 9), rtol=1e-6)
    # the BLUPs are lme4's
    ref = [r["condval"] for r in lme4_fixture("pig_reml")["ranef"]]
    np.testing.assert_allclose(s["blup"], ref, atol=1e-5)


def test_nepal_identity_unbalanced():
    s = shrinkage(fitted("nepal_ri"))
    assert s["n"].min() == 1 and s["n"].max() == 5 and s["n"].sum() == 882
    np.testing.assert_allclose(s["blup"], s["factor"] * s["raw"], atol=1e-10)
    # smaller groups shrink more
    by_n = s.groupby("n")["factor"].mean()
    assert by_n.is_monotonic_increasing and by_n.iloc[0] < by_n.iloc[-1]


def test_shrinkage_needs_a_random_intercept():
    with pytest.raises(FormulaError, match="single random intercept"):
        shrinkage(fitted("nepal_slope"))


def test_pig_edf_closed_form():
    m = fitted("pig_reml")
    tau2, sigma2 = lme4_variances("pig_reml")
    # BIOS 526 M2: EDF = 48 · 9 / (9 + σ²/τ²), about 46.5 with τ² = 15.1, σ² = 4.39
    expected = 48 * 9 / (9 + sigma2 / tau2)
    assert effective_df(m) == pytest.approx(expected, rel=1e-6)
    assert effective_df(m) == pytest.approx(46.50, abs=0.005)


def test_nepal_edf_sum_over_groups():
    s = shrinkage(fitted("nepal_ri"))
    ratio = s.attrs["sigma2"] / s.attrs["tau2"]
    expected = float(np.sum(s["n"] / (s["n"] + ratio)))
    assert effective_df(fitted("nepal_ri")) == pytest.approx(expected, rel=1e-10)


def test_whole_fit_edf_balanced_one_way():
    # fitted values ȳ.. + r(ȳ_i − ȳ..): tr H = 1 + r(a − 1); random part alone a·r
    m = fitted("pulp_reml")
    r = shrinkage(m)["factor"].iloc[0]
    assert effective_df(m, fixed=True) == pytest.approx(1 + 3 * r, rel=1e-10)
    assert effective_df(m) == pytest.approx(4 * r, rel=1e-10)


def test_edf_general_structure_against_textbook_formula():
    # random slope model: tr(ZGZ'V⁻¹) (β known) and tr of the GLS + BLUP hat matrix
    m = fitted("sleepstudy_reml")
    Z, G = random_effects_design(m)
    Zd = Z.toarray()
    V = Zd @ G @ Zd.T + m.sigma**2 * np.eye(m.nobs)
    Vinv = np.linalg.inv(V)
    S = Zd @ G @ Zd.T @ Vinv
    assert effective_df(m) == pytest.approx(np.trace(S), rel=1e-8)
    X = m.design.X
    P = X @ np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv)
    H = P + S @ (np.eye(m.nobs) - P)
    assert effective_df(m, fixed=True) == pytest.approx(np.trace(H), rel=1e-8)


def test_stratified_fit_pig(pig):
    sf = stratified_fit("weight ~ weeks + (1|id)", pig)
    assert sf.group == "id" and len(sf.intercepts) == 48
    # balanced weeks: the common slope is the pooled one (lm fixture 6.20990) and each
    # intercept is the pig's mean weight minus slope · mean week (5)
    slope = lme4_fixture("pig_lm")["beta"]["values"][1]
    assert sf.model.fixef["weeks"] == pytest.approx(slope, rel=1e-10)
    means = pig.groupby("id")["weight"].mean()
    np.testing.assert_allclose(sf.intercepts.to_numpy(), means.to_numpy() - 5 * slope,
                               rtol=1e-10)
    assert list(sf.intercepts.index) == [str(i) for i in range(1, 49)]


def test_stratified_fit_pulp_group_means(pulp):
    sf = stratified_fit("bright ~ 1", pulp, group="operator")
    # STAT 528: 60.40 + (-0.16, -0.34, 0.22, 0.28)
    np.testing.assert_allclose(sf.intercepts, [60.24, 60.06, 60.62, 60.68], atol=1e-12)
    with pytest.raises(FormulaError):
        stratified_fit("bright ~ 1", pulp)


def test_random_intercepts_lie_between_pooled_and_stratified(pig):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        m = lmmlib.lmer("weight ~ weeks + (1|id)", pig)
    strat = stratified_fit("weight ~ weeks + (1|id)", pig).intercepts.to_numpy()
    mixed = m.coef()["id"]["(Intercept)"].to_numpy()
    pooled = lmmlib.lm("weight ~ weeks", pig).fixef["(Intercept)"]
    lo, hi = np.minimum(strat, pooled), np.maximum(strat, pooled)
    assert np.all((mixed >= lo - 1e-9) & (mixed <= hi + 1e-9))
