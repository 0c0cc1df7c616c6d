"""Appendix "From lme4 to lmmlib": the translated pulp script gives lme4's numbers.

The page translates the STAT 528 pulp script (course seed 002) and glues its
results; they are compared here with the lme4 fixtures pulp_reml, pulp_ml and
pulp_lm (R 4.2.2, lme4 1.1-31) and anova/anova_pulp.json, and with the ANOVA
closed forms.  The page's own self-test (every lmmlib spelling in its tables
exists and takes the keywords written next to it) must report no failure.

Tolerances (tests/conftest.py): closed forms are exact up to rounding; values
that come out of lmmlib's optimiser get the spread of their fixture's optimum
under OPT_GAP (``optimum_spread``), the criteria OPT_GAP itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OPT_GAP, course_data, lme4_fixture, optimum_spread, reference
from scipy import stats
from test_chapters import executed, glued, number


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {key: number(text) for key, text in glued(executed("crosswalk")).items()}


def test_every_spelling_in_the_tables_exists(values):
    # the page checks each lmmlib / m. / g. / fits. spelling with getattr and
    # inspect.signature; a renamed or removed name makes n_missing positive
    assert values["n_spellings"] > 80
    assert values["n_missing"] == 0


def test_anova_and_moment_estimator(values):
    # closed forms of the balanced one-way layout (4 operators x 5 sheets), rounding only
    pulp = course_data("pulp")
    y, g = pulp["bright"].to_numpy(float), pulp["operator"].to_numpy()
    means = pulp.groupby("operator")["bright"].mean()
    msa = 5 * float(((means - y.mean()) ** 2).sum()) / 3
    mse = float(sum(((y[g == k] - y[g == k].mean()) ** 2).sum() for k in means.index)) / 16
    assert values["pulp_F"] == pytest.approx(msa / mse, rel=1e-10)
    assert values["pulp_p_aov"] == pytest.approx(stats.f.sf(msa / mse, 3, 16), rel=1e-8)
    assert values["pulp_tau2_mom"] == pytest.approx((msa - mse) / 5, rel=1e-10)


def test_reml_fit_equals_lme4(values):
    fx = lme4_fixture("pulp_reml")
    # the criterion within OPT_GAP of lme4's (lme4 is at its minimum here)
    assert values["pulp_reml_crit"] == pytest.approx(fx["objective"], abs=OPT_GAP)
    # variances, SE and BLUPs: lme4's values plus the spread of lmmlib's optimum
    vc = {row["group"]: row["vcov"] for row in fx["varcorr"]}
    assert values["pulp_tau2_reml"] == pytest.approx(
        vc["operator"], abs=optimum_spread("pulp_reml", "vcov", 0))
    assert values["pulp_sigma2_reml"] == pytest.approx(
        vc["Residual"], abs=optimum_spread("pulp_reml", "vcov", 1))
    assert values["pulp_se_reml"] == pytest.approx(
        fx["se"][0], abs=optimum_spread("pulp_reml", "se", 0))
    condval = {row["grp"]: row["condval"] for row in fx["ranef"]}
    assert values["pulp_ranef_a"] == pytest.approx(
        condval["a"], abs=optimum_spread("pulp_reml", "condval", 0))
    assert values["pulp_ranef_d"] == pytest.approx(
        condval["d"], abs=optimum_spread("pulp_reml", "condval", 3))


def test_ratio_of_fixed_effects_to_blups(values):
    # balanced one-way design: BLUP = r * (group mean - grand mean) with one shrinkage
    # factor r = tau2 / (tau2 + sigma2 / 5), so the four ratios are 1/r, equal to rounding;
    # 1/r from lme4's variances, plus the spread of 1/r at lmmlib's optimum (the spread of
    # tau2 scaled by d(1/r)/d(tau2) = (sigma2/5)/tau2^2)
    vc = {row["group"]: row["vcov"] for row in lme4_fixture("pulp_reml")["varcorr"]}
    tau2, sigma2 = vc["operator"], vc["Residual"]
    inv_r = (tau2 + sigma2 / 5) / tau2
    s_tau2, s_sigma2 = (optimum_spread("pulp_reml", "vcov", i) for i in range(2))
    spread = (sigma2 / 5) / tau2**2 * s_tau2 + s_sigma2 / (5 * tau2)
    assert values["pulp_ratio"] == pytest.approx(inv_r, abs=1e-9 + spread)
    assert values["pulp_ratio_spread"] < 1e-10


def test_likelihood_ratio_test_equals_lme4(values):
    # anova/anova_pulp.json: lme4's anova(nullmod, smod); the ML deviance within OPT_GAP
    # of lme4's and the lm log-likelihood a closed form, so the statistic within OPT_GAP
    table = reference("anova", "anova_pulp")["table"]["values"]
    assert values["pulp_lrt"] == pytest.approx(table["Chisq"][1], abs=OPT_GAP)
    # p-value: the chi-square density at 2.57 is 0.06, so OPT_GAP moves it by < 1e-8
    assert values["pulp_p_chisq"] == pytest.approx(table["Pr(>Chisq)"][1], abs=1e-8)
    # the same statistic from the two lme4/lm fixtures
    lrt = 2 * (lme4_fixture("pulp_ml")["loglik"] - lme4_fixture("pulp_lm")["loglik"])
    assert values["pulp_lrt"] == pytest.approx(lrt, abs=OPT_GAP + 1e-12)


def test_bootstrap_is_a_monte_carlo_estimate_of_the_same_p_value(values):
    # seed 002 prints p = 0.026 from R's set.seed(13), B = 1000; lmmlib's stream differs.
    # Two independent estimates of one p-value differ by sqrt(2) MC standard errors each
    # (se = sqrt(p(1-p)/1000) = 0.005); 4 of those keeps a false alarm below 1e-4
    assert values["pulp_boot_p"] == pytest.approx(0.026, abs=4 * np.sqrt(2) * 0.005)
    assert values["pulp_boot_mcse"] == pytest.approx(
        np.sqrt(values["pulp_boot_p"] * (1 - values["pulp_boot_p"]) / 1000), rel=0.05)
    # seed 002: 0.69 of R's statistics are below 1e-5; a proportion of 1000 draws near 0.7
    # has MC se 0.0145, and the two differ by sqrt(2) of that: 4 of those
    assert values["pulp_boot_zero"] == pytest.approx(0.69, abs=4 * np.sqrt(2) * 0.0145)
