"""Shrinkage factors, effective degrees of freedom and the stratified fit.

References: BIOS 526 M2 (seed 001: BLUP = r_i (ȳ_i − x̄_i'β̂), EDF of the pig
random intercepts 48 · 9/(9 + σ²/τ²)), STAT 528 (seed 002: pulp BLUPs, effects
and their ratio 1.312117), the lme4 fixtures (variance components) and closed
forms.

Tolerances: identities and closed forms of the fit's own numbers are exact up to
rounding (1e-10); quantities that depend on θ̂ and are compared with course or
lme4 numbers get, on top of the printed rounding, their spread under lmmlib's
optimiser gap (``spread`` below: the curvature bound of tests/conftest.py, e.g.
1.6e-6 relative for the pig shrinkage factor, 6e-5 for the pulp ratio).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import (
    OPT_GAP,
    course_value,
    curvature_tolerance,
    fitted,
    lme4_fixture,
    optimum_spread,
)

import lmmlib
from lmmlib.course.gls import random_effects_design
from lmmlib.course.shrinkage import effective_df, shrinkage, stratified_fit
from lmmlib.errors import FormulaError


def spread(name: str, of_theta) -> float:
    """Spread of a scalar function of a one-variance fit's θ (τ/σ) under OPT_GAP."""
    return float(curvature_tolerance(fitted(name), lambda th: np.array([of_theta(th[0])]),
                                     OPT_GAP)[0])


def lme4_variances(name: str) -> tuple[float, float]:
    """(τ², σ²) of a random-intercept lme4 fixture."""
    vc = lme4_fixture(name)["varcorr"]
    return vc[0]["vcov"], vc[-1]["vcov"]


def test_pulp_blups_and_ratio():
    s = shrinkage(fitted("pulp_reml"))
    # STAT 528: model.tables effects -0.16 -0.34 0.22 0.28 (group means of one-decimal
    # data: exact up to rounding) and ranef(mmod) (7 decimals, plus each BLUP's spread)
    np.testing.assert_allclose(s["raw"], [-0.16, -0.34, 0.22, 0.28], atol=1e-12)
    for i, printed in enumerate([-0.1219403, -0.2591231, 0.1676679, 0.2133955]):
        assert s["blup"].iloc[i] == course_value(printed, 7,
                                                 optimum_spread("pulp_reml", "condval", i))
    # "estimated fixed effects divided by predicted random effects": 1.312117 for all;
    # the ratio is 1 + 1/(5θ²), whose spread is 8e-5
    ratio_spread = spread("pulp_reml", lambda t: 1 + 1 / (5 * t**2))
    for value in s["ratio"]:
        assert value == course_value(1.312117, 6, ratio_spread)
    # closed form: 1/r = 1 + σ²/(n τ²) with lme4's REML variances (lme4's pulp fit is at
    # its minimum to 6e-14, so lmmlib's spread is what is left; seen 1e-8 relative)
    tau2, sigma2 = lme4_variances("pulp_reml")
    assert s["ratio"].iloc[0] == pytest.approx(1 + sigma2 / (5 * tau2), abs=ratio_spread)
    assert s.attrs["group"] == "operator"


def test_pig_identity_balanced():
    m = fitted("pig_reml")
    s = shrinkage(m)
    assert (s["n"] == 9).all() and len(s) == 48
    # BLUP = r_i (ȳ_i − x̄_i'β̂) with r_i = τ²/(τ² + σ²/n_i) (BIOS 526 M2): an identity of
    # the fit's own numbers, rounding only
    np.testing.assert_allclose(s["blup"], s["factor"] * s["raw"], atol=1e-10)
    # closed form with lme4's variances (at its minimum to 6e-12): r = 9θ²/(9θ² + 1),
    # within its spread under lmmlib's gap (1.5e-6; seen 1.5e-10)
    tau2, sigma2 = lme4_variances("pig_reml")
    factor_spread = spread("pig_reml", lambda t: 9 * t**2 / (9 * t**2 + 1))
    np.testing.assert_allclose(s["factor"], tau2 / (tau2 + sigma2 / 9), rtol=0,
                               atol=factor_spread)
    # the BLUPs are lme4's: within their spread (≤ 1.4e-5; seen 1.4e-9)
    ref = [r["condval"] for r in lme4_fixture("pig_reml")["ranef"]]
    blup_spread = max(optimum_spread("pig_reml", "condval", i) for i in range(48))
    np.testing.assert_allclose(s["blup"], ref, atol=blup_spread)


def test_nepal_identity_unbalanced():
    s = shrinkage(fitted("nepal_ri"))
    assert s["n"].min() == 1 and s["n"].max() == 5 and s["n"].sum() == 882
    np.testing.assert_allclose(s["blup"], s["factor"] * s["raw"], atol=1e-10)  # identity
    # smaller groups shrink more
    by_n = s.groupby("n")["factor"].mean()
    assert by_n.is_monotonic_increasing and by_n.iloc[0] < by_n.iloc[-1]


def test_shrinkage_needs_a_random_intercept():
    with pytest.raises(FormulaError, match="single random intercept"):
        shrinkage(fitted("nepal_slope"))


def test_pig_edf_closed_form():
    m = fitted("pig_reml")
    tau2, sigma2 = lme4_variances("pig_reml")
    # BIOS 526 M2: EDF = 48 · 9 / (9 + σ²/τ²), about 46.5 with τ² = 15.1, σ² = 4.39: with
    # lme4's variances, so within the spread of 48·9/(9 + 1/θ²) (7e-5; seen 7e-9)
    expected = 48 * 9 / (9 + sigma2 / tau2)
    edf_spread = spread("pig_reml", lambda t: 48 * 9 / (9 + 1 / t**2))
    assert effective_df(m) == pytest.approx(expected, abs=edf_spread)
    assert effective_df(m) == course_value(46.50, 2, edf_spread)  # the course's 46.50


def test_nepal_edf_sum_over_groups():
    s = shrinkage(fitted("nepal_ri"))
    ratio = s.attrs["sigma2"] / s.attrs["tau2"]
    expected = float(np.sum(s["n"] / (s["n"] + ratio)))
    # identity of the fit's own numbers: rounding only
    assert effective_df(fitted("nepal_ri")) == pytest.approx(expected, rel=1e-10)


def test_whole_fit_edf_balanced_one_way():
    # fitted values ȳ.. + r(ȳ_i − ȳ..): tr H = 1 + r(a − 1); random part alone a·r
    m = fitted("pulp_reml")
    r = shrinkage(m)["factor"].iloc[0]
    # closed forms of the fit's own shrinkage factor: rounding only
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
    # the same trace from a dense 180 × 180 inverse: rounding amplified by cond(V)
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
    # least squares in closed form (R's lm and lmmlib's): rounding only
    assert sf.model.fixef["weeks"] == pytest.approx(slope, rel=1e-10)
    means = pig.groupby("id")["weight"].mean()
    np.testing.assert_allclose(sf.intercepts.to_numpy(), means.to_numpy() - 5 * slope,
                               rtol=1e-10)
    assert list(sf.intercepts.index) == [str(i) for i in range(1, 49)]


def test_stratified_fit_pulp_group_means(pulp):
    sf = stratified_fit("bright ~ 1", pulp, group="operator")
    # STAT 528: 60.40 + (-0.16, -0.34, 0.22, 0.28): means of one-decimal data, exact up
    # to rounding
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
    # an exact inequality of the shrinkage formula; 1e-9 absorbs rounding only
    assert np.all((mixed >= lo - 1e-9) & (mixed <= hi + 1e-9))
