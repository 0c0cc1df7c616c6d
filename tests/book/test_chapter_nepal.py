"""Chapter 3 (book/nepal.md): the glued numbers reproduce the course and lme4.

The tests at the end check the key number of each exercise solution against
closed forms of the data or the lme4 fixtures, with the same tolerance rules.

Sources: BIOS 526 M2 notes (course seed 001, Nepal slides), data/SOURCES.md
(cleaning counts) and lme4 1.1-31 / lmerTest runs of the same models.

Tolerances (tests/conftest.py): half a unit of the last printed digit
(``course_value``), plus, for numbers that come out of an optimiser, how far
lmmlib's optimum can move them (``optimum_spread`` of the matching lme4 fixture,
or ``model_spread`` of the same fit).  The notes' random-slope numbers come from
lme4 fits with default tolerances, which for this model stop 1.3e-6 above the
minimum (fixture nepal_slope): that allows sqrt(1.3e-6 / OPT_GAP) = 5.1 times
lmmlib's spread (NOTES_SLOPE).  Counts are exact; lm fits are closed forms.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import scipy.stats
from conftest import (
    OPT_GAP,
    course_data,
    course_value,
    curvature_tolerance,
    fitted,
    lme4_fixture,
    model_spread,
    optimum_spread,
    profiled_at,
)
from test_chapters import executed, glued, number

import lmmlib

NOTES_SLOPE = 1 + np.sqrt(1.3e-6 / OPT_GAP)  # lmmlib's spread plus that of lme4's default fit


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("nepal")).items()}


def spread(name: str, what: str, index: int = 0, notes: bool = False) -> float:
    """Spread of a fixture's quantity; ``notes``: plus an lme4 default fit's (slope model)."""
    return optimum_spread(name, what, index) * (NOTES_SLOPE if notes else 1.0)


@cache
def drop_fit():
    """The chapter's random-slope fit without children 57 and 105."""
    nepal = course_data("nepal")
    return lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal[~nepal["id"].isin([57, 105])])


def drop_spread() -> dict[str, float]:
    """Spreads of the glued drop_* numbers (β, SDs, correlation) under OPT_GAP."""
    m = drop_fit()

    def glued_numbers(theta):
        at = profiled_at(m, theta)
        sd = at["varcorr"]["sdcor"].to_numpy()
        return np.array([*at["beta"], sd[0], sd[1], sd[2]])

    keys = ["drop_int", "drop_age", "drop_tau0", "drop_tau1", "drop_rho"]
    return dict(zip(keys, model_spread(m, glued_numbers) * NOTES_SLOPE, strict=True))


def test_cleaning_counts(values):
    # SOURCES.md: 1000 rows; arm 99.9 (108 rows) and 88.8 (10 rows) dropped
    # -> 882 rows, 197 children
    assert values["n_raw_rows"] == 1000
    assert values["n_code_999"] == 108
    assert values["n_code_888"] == 10
    assert values["n_rows"] == 882
    assert values["n_children"] == 197


def test_pooled_and_dummy_fits(values):
    # seed 001: lm(arm ~ age) 12.838182, 0.029789, residual SE 0.9849 (lm: closed form,
    # so the printed rounding alone)
    assert values["lm_int"] == course_value(12.838182, 6)
    assert values["lm_age"] == course_value(0.029789, 6)
    assert values["lm_sigma"] == course_value(0.9849, 4)
    # seed 001: fixed-effects (dummy) model slope 0.0313 (truncated: a whole unit), SE
    # 0.00307, t = 10.20
    assert values["fe_age"] == pytest.approx(0.0313, abs=1e-4)
    assert values["fe_age_se"] == course_value(0.00307, 5)
    assert values["fe_t"] == course_value(10.20, 2)


def test_random_intercept_fit(values):
    # seed 001 / SOURCES.md: lmer(arm ~ age + (1|id)) REML (fixture nepal_ri)
    assert values["ri_int"] == course_value(12.753789, 6, spread("nepal_ri", "beta", 0))
    assert values["ri_age"] == course_value(0.031697, 6, spread("nepal_ri", "beta", 1))
    assert values["ri_tau2"] == course_value(0.780733, 6, spread("nepal_ri", "vcov", 0))
    assert values["ri_sigma2"] == course_value(0.248067, 6, spread("nepal_ri", "vcov", 1))
    # seed 001 t value, shrinkage slide σ²/τ² = 0.32 and ICC = 0.76: two decimals, far
    # coarser than any spread (< 1e-4 relative)
    assert values["ri_t"] == course_value(13.45, 2)
    assert values["ri_ratio"] == course_value(0.32, 2)
    assert values["ri_icc"] == course_value(0.76, 2)


def test_literacy(values):
    # lme4 1.1-31: lit 0.9302447 (the notes print 0.930247); seed 001: intercept 12.710555,
    # t 2.94; fixture nepal_lit
    assert values["lit_coef"] == course_value(0.9302447, 7, spread("nepal_lit", "beta", 2))
    assert values["lit_int"] == course_value(12.710555, 6, spread("nepal_lit", "beta", 0))
    assert values["lit_t"] == course_value(2.94, 2)
    # seed 001 prints σ² = 0.24824 (5 decimals): a whole unit, as the notes round it
    assert values["lit_sigma2"] == pytest.approx(
        0.24824, abs=5e-6 + spread("nepal_lit", "vcov", 1))


def test_shrinkage_factors(values):
    # closed form tau^2 / (tau^2 + sigma^2 / n) with the seed-001 REML variances, each
    # printed to 6 decimals (±5e-7, i.e. ±5e-7 in r), against the chapter's factors from
    # lmmlib's θ̂ (r = θ²/(θ² + 1/n), spread from the curvature bound)
    tau2, sigma2 = 0.780733, 0.248067
    m = lmmlib.lmer("arm ~ age + (1 | id)", course_data("nepal"))
    r_spread = model_spread(m, lambda th: np.array([th[0]**2 / (th[0]**2 + 1),
                                                    th[0]**2 / (th[0]**2 + 1 / 5)]))
    assert values["shrink_r1"] == pytest.approx(tau2 / (tau2 + sigma2), abs=1e-6 + r_spread[0])
    assert values["shrink_r5"] == pytest.approx(tau2 / (tau2 + sigma2 / 5),
                                                abs=1e-6 + r_spread[1])


def test_random_slope(values):
    # seed 001: fixed effects 13.943962 (printed truncated as 13.9439) and 0.032527
    # (fixture nepal_slope; NOTES_SLOPE: the notes' lme4 fit stopped short)
    assert values["slope_int"] == course_value(13.943962, 6,
                                               spread("nepal_slope", "beta", 0, notes=True))
    assert values["slope_age"] == course_value(0.032527, 6,
                                               spread("nepal_slope", "beta", 1, notes=True))
    # seed 001: variances 0.71937746, 0.00043572, correlation 0.090, residual 0.22657451
    assert values["slope_tau0sq"] == course_value(0.71937746, 8,
                                                  spread("nepal_slope", "vcov", 0, notes=True))
    assert values["slope_tau1sq"] == course_value(0.00043572, 8,
                                                  spread("nepal_slope", "vcov", 1, notes=True))
    assert values["slope_rho"] == course_value(0.090, 3,
                                               spread("nepal_slope", "sdcor", 2, notes=True))
    assert values["slope_sigma2"] == course_value(0.22657451, 8,
                                                  spread("nepal_slope", "vcov", 3, notes=True))
    # seed 001 (ageC || id): variances 0.7170990, 0.0004122, 0.2279327; lme4 1.1-31
    # gives 0.7170907 for the first (as lmmlib), so the notes' sixth digit is a slip.
    # lme4 1.1-31's values for fixture nepal_indep are at the minimum (its default fit
    # is 8e-11 from the tight one), so lmmlib's spread alone
    assert values["indep_tau0sq"] == course_value(0.7170907, 7, spread("nepal_indep", "vcov", 0))
    assert values["indep_tau1sq"] == course_value(0.0004122, 7, spread("nepal_indep", "vcov", 1))
    assert values["indep_sigma2"] == course_value(0.2279327, 7, spread("nepal_indep", "vcov", 2))
    # lme4 1.1-31: (ageC || id) fixed effects 13.94277, 0.03225124
    assert values["indep_int"] == course_value(13.94277, 5, spread("nepal_indep", "beta", 0))
    assert values["indep_age"] == course_value(0.03225124, 8, spread("nepal_indep", "beta", 1))


def test_model_comparison(values):
    # seed 001: AIC 1807.26 (random intercept) and 1802.58 (random slope), ML: criteria
    # plus integers, within OPT_GAP of the minimum
    assert values["aic_ri"] == course_value(1807.26, 2, OPT_GAP)
    assert values["aic_slope"] == course_value(1802.58, 2, OPT_GAP)
    # seed 001: Chisq 8.6854 on 2 df (a difference of two criteria); lme4 1.1-31 anova
    # prints p = 0.013 (notes: 0.015)
    assert values["lrt_chisq"] == course_value(8.6854, 4, 2 * OPT_GAP)
    assert values["lrt_df"] == 2
    assert values["lrt_p"] == course_value(0.0130, 4)
    # closed form: 0.5 * P(chi2_1 > 8.68545) + 0.5 * P(chi2_2 > 8.68545) = 0.0081043, from
    # the statistic rounded to 5 decimals (p moves by ~5e-6·0.0045): 1e-6
    assert values["mix_p"] == pytest.approx(0.0081043, abs=1e-6)


def test_bootstrap_lrt(values):
    # the bootstrap p-value (1 + k)/(1 + n) lies below the naive chi-square one, with its MC
    # s.e. (definitions: the same arithmetic, pytest's default rel 1e-6 for the glued text)
    n, k = values["boot_n"], values["boot_exceed"]
    assert values["boot_p"] == pytest.approx((1 + k) / (1 + n))
    p = values["boot_p"]
    assert values["boot_se"] == pytest.approx((p * (1 - p) / n) ** 0.5)
    assert values["boot_p"] < values["lrt_p"]
    # the bootstrap estimates the null tail probability that the 50:50 chi-square
    # mixture approximates (p 0.0081): within 4 Monte Carlo standard errors of it
    mc_se = (values["mix_p"] * (1 - values["mix_p"]) / n) ** 0.5
    assert abs(values["boot_p"] - values["mix_p"]) < 4 * mc_se


def test_sensitivity_without_57_and_105(values):
    # seed 001: intercept 13.949133, ageC 0.031182, sds 0.816880 (printed; 0.816850 by the
    # printed variance 0.66724471: 5e-5 apart, allowed as such) and 0.017264, correlation
    # 0.123.  The notes' fit is an lme4 default fit of the nepal_slope model on 195 of its
    # children: spreads of the same fit here (model_spread) times NOTES_SLOPE.
    s = drop_spread()
    assert values["drop_int"] == course_value(13.949133, 6, s["drop_int"])
    assert values["drop_age"] == course_value(0.031182, 6, s["drop_age"])
    assert values["drop_tau0"] == course_value(0.81685, 5, 5e-5 + s["drop_tau0"])
    assert values["drop_tau1"] == course_value(0.017264, 6, s["drop_tau1"])
    assert values["drop_rho"] == course_value(0.123, 3, s["drop_rho"])


def test_cross_level_model_as_in_the_notes(values):
    # seed 001 (weight missing codes left in, 882 rows): lit 0.811968, sex2 0.024062,
    # lit:ageC 0.007405; lme4 1.1-31 wt 0.0098668 (notes print 0.009967).  The notes'
    # sex effect is 1.1e-5 from lmmlib's (0.0240513), far more than either optimiser
    # moves it (lmmlib's spread 6.8e-7, lit's 7.4e-6): the notes' own fit differs, and
    # 5e-5 (100 printed units) allows that
    assert values["notes_nobs"] == 882
    assert values["notes_lit"] == pytest.approx(0.811968, abs=5e-5)
    assert values["notes_sex"] == pytest.approx(0.024062, abs=5e-5)
    # lme4 1.1-31's wt (a default fit of this random-slope model): 7 printed decimals
    # plus NOTES_SLOPE times lmmlib's spread of it (4.6e-8)
    assert values["notes_wt"] == course_value(0.0098668, 7, NOTES_SLOPE * 4.6e-8)
    # lmerTest 3.1 (cleaned weight, 877 rows): wtC 0.7104, lit 0.5203.  lme4 warns of
    # non-convergence there and stops 2.7e-4 and 1.1e-4 away from lmmlib's optimum,
    # whose REML criterion is lower (lmmlib's own spread ≤ 2.5e-6): 5e-4
    assert values["cross_nobs"] == 877
    assert values["cross_wt"] == pytest.approx(0.7104, abs=5e-4)
    assert values["cross_lit"] == pytest.approx(0.5203, abs=5e-4)


# -- exercises ----------------------------------------------------------------------


def vcov_of(name: str) -> list[float]:
    """The vcov column of an lme4 fixture's varcorr table."""
    return [row["vcov"] for row in lme4_fixture(name)["varcorr"]]


def slope_covariance(theta, sigma) -> np.ndarray:
    """Σ = σ² Λ Λ' of (ageC | id) from lme4's θ = (Λ11, Λ21, Λ22)."""
    lam = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    return sigma**2 * lam @ lam.T


def correlation_at(S: np.ndarray, shift: float) -> float:
    """Intercept-slope correlation after moving the origin of age by ``shift`` months."""
    var0 = S[0, 0] + 2 * shift * S[0, 1] + shift**2 * S[1, 1]
    return float((S[0, 1] + shift * S[1, 1]) / np.sqrt(var0 * S[1, 1]))


def test_exercise_literacy_share_of_tau2(values):
    # 1 - tau2(lit) / tau2 with fixtures nepal_lit / nepal_ri (at their minimum); each
    # lmmlib τ² within its spread, propagated to first order through the ratio
    t_ri, t_lit = vcov_of("nepal_ri")[0], vcov_of("nepal_lit")[0]
    s_ri, s_lit = spread("nepal_ri", "vcov", 0), spread("nepal_lit", "vcov", 0)
    tol = 1e-12 + s_lit / t_ri + t_lit * s_ri / t_ri**2
    assert values["ex_lit_share"] == pytest.approx(1 - t_lit / t_ri, abs=tol)


def test_exercise_visits_for_ninety_percent(values):
    # n >= 9 sigma2/tau2 with fixture nepal_ri's variances: 2.8596, 0.14 from the next
    # integer, far outside the 1e-4-relative spread of the variance ratio, so the count is
    # exact; the bound itself within the propagated spreads
    tau2, sigma2 = vcov_of("nepal_ri")
    bound = 9 * sigma2 / tau2
    tol = 9 * (spread("nepal_ri", "vcov", 1) / tau2
               + sigma2 * spread("nepal_ri", "vcov", 0) / tau2**2)
    assert values["ex_visits_bound"] == pytest.approx(bound, abs=1e-12 + tol)
    assert values["ex_visits"] == int(np.ceil(bound)) == 3
    assert values["ex_visits_w"] >= 0.9


def test_exercise_child57_growth_rate(values):
    # fixture nepal_slope: beta(ageC) + the ageC BLUP of child 57 (lme4's coef()); lme4's
    # default fit stops 1.3e-6 above the minimum, lmmlib within OPT_GAP: NOTES_SLOPE times
    # the curvature bound of that sum (the same convention as the chapter's slope numbers)
    fx = lme4_fixture("nepal_slope")
    blup = next(r["condval"] for r in fx["ranef"] if r["grp"] == "57" and r["term"] == "ageC")
    m = fitted("nepal_slope")
    k = list(m.ranef_arrays()["id"].index).index("57")
    bound = curvature_tolerance(
        m, lambda th: np.array([profiled_at(m, th)["beta"][1]
                                + profiled_at(m, th)["blups"][0][k, 1]]), OPT_GAP)[0]
    assert values["ex_rate57"] == pytest.approx(fx["beta"]["values"][1] + blup,
                                                abs=1e-9 + NOTES_SLOPE * bound)
    # the child's own least-squares line through its visits (numpy, rounding only)
    nepal = course_data("nepal")
    own = nepal[nepal["id"] == 57]
    assert values["ex_rate57_own"] == pytest.approx(
        np.polyfit(own["age"] - 36, own["arm"], 1)[0], abs=1e-10)
    assert values["ex_visits57"] == 5
    assert values["ex_rate_max"] == pytest.approx(values["ex_rate57"], abs=1e-12)
    assert values["ex_rate_negative"] == 0


def test_exercise_centring_at_twelve_months(values):
    # the correlation at age 12 is a closed-form function of the ageC covariance (shift
    # -24 months); fixture nepal_slope's tight optimum (θ_tight, σ_tight).  The chapter's
    # age12 fit is a reparametrised optimum within OPT_GAP: its correlation moves by the
    # curvature bound of the same function of the ageC fit's θ (the criterion is invariant)
    fx = lme4_fixture("nepal_slope")
    rho12 = correlation_at(slope_covariance(fx["theta_tight"], fx["sigma_tight"]), -24.0)
    m = fitted("nepal_slope")
    bound = curvature_tolerance(m, lambda th: np.array([correlation_at(
        slope_covariance(th, profiled_at(m, th)["sigma"]), -24.0)]), OPT_GAP)[0]
    assert values["ex_rho12"] == pytest.approx(rho12, abs=1e-9 + bound)
    # the REML criterion is unchanged by the shift: fixture's tight objective within OPT_GAP
    assert values["ex_crit12"] == pytest.approx(fx["objective_tight"], abs=OPT_GAP + 1e-9)
    # population share of negative growth rates, 100 Φ(-β1/τ1), at the tight fixture's
    # optimum; lmmlib's value within the curvature bound of the same function of θ
    S = slope_covariance(fx["theta_tight"], fx["sigma_tight"])
    share = 100 * scipy.stats.norm.cdf(-fx["beta_tight"][1] / np.sqrt(S[1, 1]))

    def share_at(th):
        at = profiled_at(m, th)
        tau1 = np.sqrt(slope_covariance(th, at["sigma"])[1, 1])
        return np.array([100 * scipy.stats.norm.cdf(-at["beta"][1] / tau1)])

    bound = curvature_tolerance(m, share_at, OPT_GAP)[0]
    assert values["ex_pop_below"] == pytest.approx(share, abs=1e-9 + bound)


# -- within and between children ----------------------------------------------------


def test_within_between_slopes_match_lme4(values):
    # lme4 1.1-31, tests/reference/book_nepal_centring.R (fixtures/book/nepal_centring.json):
    # lmer(arm ~ age_within + age_between + (1 | id)), REML, tight control
    from conftest import reference

    fx = reference("book", "nepal_centring")["within_between"]
    beta = dict(zip(fx["beta"]["names"], fx["beta"]["values"], strict=True))
    se = dict(zip(fx["se"]["names"], fx["se"]["values"], strict=True))
    # fixed effects and SEs at lmmlib's optimum: within its spread of the random-intercept
    # fit (≤ 1e-6 relative, fixture nepal_ri), so 1e-5 relative
    assert values["wb_within"] == pytest.approx(beta["age_within"], rel=1e-5)
    assert values["wb_between"] == pytest.approx(beta["age_between"], rel=1e-5)
    assert values["wb_within_se"] == pytest.approx(se["age_within"], rel=1e-5)
    assert values["wb_between_se"] == pytest.approx(se["age_between"], rel=1e-5)
    # the contextual form is a reparametrisation: its age_between is between - within
    # (the same optimum; the difference of two estimates carries both spreads: 1e-5
    # relative to the slopes, 1e-6 absolute)
    assert values["wb_diff"] == pytest.approx(beta["age_between"] - beta["age_within"],
                                              abs=1e-6)


def test_within_slope_is_the_fixed_effects_slope(values):
    # closed form (Mundlak 1978): with the child mean of age in the model, the
    # within slope equals the slope of arm ~ age + C(id); both are computed by
    # least squares on the same within-child deviations: rounding only
    nepal = course_data("nepal")
    dev_age = nepal["age"] - nepal.groupby("id")["age"].transform("mean")
    dev_arm = nepal["arm"] - nepal.groupby("id")["arm"].transform("mean")
    slope = float((dev_age * dev_arm).sum() / (dev_age**2).sum())
    assert values["wb_within"] == pytest.approx(slope, rel=1e-9)
    assert values["fe_age"] == pytest.approx(slope, rel=1e-9)
    assert values["wb_fe_gap"] < 1e-10
    # the child mean ages: SD over the 197 children (data fact; rounding only)
    means = nepal.groupby("id")["age"].mean()
    assert values["wb_mean_age_sd"] == pytest.approx(float(means.std()), rel=1e-12)
