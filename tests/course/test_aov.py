"""ANOVA tables with sum contrasts and the one-way moment estimator.

References: tests/reference/fixtures/anova/aov_tables.json (R 4.2.2
``summary(aov())`` and ``coef()`` with ``contr.sum``, written by
tests/reference/anova.R), STAT 528 (seed 002: pulp table, coefficients,
(MSA − MSE)/n = 0.0681 equal to the REML estimate) and closed forms.

ANOVA tables are closed forms (least squares): against R they differ by rounding
only, amplified by the conditioning of the unbalanced designs (1e-9 relative; seen
≤ 3e-13).  Course numbers: half a unit of the printed digit.  Where an estimate
comes out of an optimiser (lmmlib's REML fit), its spread (optimum_spread,
tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import fitted, lme4_fixture, optimum_spread, reference

from lmmlib.course.aov import aov_table, group_effects, moment_estimator
from lmmlib.errors import DataError, FormulaError

REF = reference("anova", "aov_tables")


def assert_matches_r(table: pd.DataFrame, ref: dict) -> None:
    assert list(table.index) == ref["rows"]
    assert list(table.columns) == ref["columns"]
    for col in ref["columns"]:
        expected = [np.nan if v is None else v for v in ref["values"][col]]
        np.testing.assert_allclose(table[col].to_numpy(float), expected, rtol=1e-9,
                                   equal_nan=True, err_msg=col)
    coef = table.attrs["coef"]
    assert list(coef.index) == list(ref["coef"])
    np.testing.assert_allclose(coef.to_numpy(), list(ref["coef"].values()), rtol=1e-9,
                               atol=1e-12)


@pytest.fixture(scope="module")
def nepal_factors(nepal):
    return nepal.assign(sexf=pd.Categorical(nepal["sex"].astype(str)),
                        litf=pd.Categorical(nepal["lit"].astype(str)))


def test_pulp_one_way(pulp):
    tab = aov_table("bright ~ operator", pulp)
    # STAT 528: Df 3/16, Sum Sq 1.34/1.70, Mean Sq 0.4467/0.1062, F 4.204, p 0.0226 (half a
    # unit of the printed digit)
    assert tab["Df"].tolist() == [3, 16]
    assert tab.loc["operator", "F value"] == pytest.approx(4.204, abs=5e-4)
    assert tab.loc["operator", "Pr(>F)"] == pytest.approx(0.0226, abs=5e-5)
    # coef(lmod): 60.40 -0.16 -0.34 0.22: group means of one-decimal data, exact up to
    # rounding
    np.testing.assert_allclose(tab.attrs["coef"], [60.40, -0.16, -0.34, 0.22], atol=1e-12)
    assert_matches_r(tab, REF["pulp"])


def test_two_way_unbalanced_sequential(nepal_factors):
    assert_matches_r(aov_table("arm ~ sexf * litf", nepal_factors), REF["nepal_sex_lit"])
    assert_matches_r(aov_table("arm ~ litf + age", nepal_factors), REF["nepal_lit_age"])


def test_treatment_contrasts_same_table(nepal_factors):
    summ = aov_table("arm ~ sexf * litf", nepal_factors)
    treat = aov_table("arm ~ sexf * litf", nepal_factors, contrasts="treatment")
    # the same sequential sums of squares in another coding: rounding only
    pd.testing.assert_frame_equal(summ, treat, check_exact=False, rtol=1e-10)
    # treatment coding: the intercept is the mean of the reference cell (sex 1, lit 0);
    # closed form, rounding of a least-squares solve on a saturated cell design
    cell = nepal_factors.query("sex == 1 and lit == 0")["arm"].mean()
    assert treat.attrs["coef"]["(Intercept)"] == pytest.approx(cell, rel=1e-10)


def test_aov_errors(pulp):
    with pytest.raises(DataError, match="contrasts"):
        aov_table("bright ~ operator", pulp, contrasts="helmert")
    with pytest.raises(FormulaError):
        aov_table("bright operator", pulp)
    with pytest.raises(FormulaError):
        aov_table("bright ~ nosuchcolumn", pulp)


def test_moment_estimator_pulp_equals_reml(pulp):
    est = moment_estimator(pulp, "bright", "operator")
    # STAT 528: (0.4467 - 0.1062)/5 = 0.0681 (printed to 4 decimals)
    assert est["tau2"] == pytest.approx(0.0681, abs=5e-5)
    assert est["n0"] == 5 and est["balanced"] == 1.0
    # SSA = 1.34 exactly for these one-decimal data: closed form, rounding only
    assert est["MSA"] == pytest.approx(1.34 / 3, rel=1e-10)
    # balanced and positive: REML equals the moment estimator (lme4 0.06808, 0.10625).
    # lme4's optimum (its default fit = its tight refit for pulp, 6e-14 apart in the
    # criterion) reproduces the closed form to 4e-8 (seen); 1e-6 relative
    tau2_lme4, sigma2_lme4 = (r["vcov"] for r in lme4_fixture("pulp_reml")["varcorr"])
    assert est["tau2"] == pytest.approx(tau2_lme4, rel=1e-6)
    assert est["sigma2"] == pytest.approx(sigma2_lme4, rel=1e-6)
    # lmmlib's optimum: within its spread (2.3e-4 and 3e-5 relative; seen 1e-9)
    model = fitted("pulp_reml")
    assert est["tau2"] == pytest.approx(model.covariances()["operator"][0, 0],
                                        abs=optimum_spread("pulp_reml", "vcov", 0))
    assert est["sigma2"] == pytest.approx(model.sigma**2,
                                          abs=optimum_spread("pulp_reml", "vcov", 1))


def test_moment_estimator_unbalanced(pulp):
    data = pulp.drop(index=[0, 1, 7])  # operators with 3, 4, 5, 5 rows
    est = moment_estimator(data, "bright", "operator")
    n = np.array([3, 4, 5, 5])
    N = n.sum()
    # closed forms of the group sizes and of the estimator's own numbers: rounding only
    assert est["n0"] == pytest.approx((N - (n**2).sum() / N) / 3, rel=1e-12)
    assert est["balanced"] == 0.0
    # mean squares agree with the one-way ANOVA table (two closed forms: rounding)
    tab = aov_table("bright ~ operator", data)
    assert est["MSA"] == pytest.approx(tab.loc["operator", "Mean Sq"], rel=1e-10)
    assert est["MSE"] == pytest.approx(tab.loc["Residuals", "Mean Sq"], rel=1e-10)
    assert est["tau2"] == pytest.approx((est["MSA"] - est["MSE"]) / est["n0"], rel=1e-12)


def test_moment_estimator_errors(pulp):
    with pytest.raises(DataError, match="nosuch"):
        moment_estimator(pulp, "nosuch", "operator")
    with pytest.raises(DataError, match="at least 2 levels"):
        moment_estimator(pulp.assign(g="x"), "bright", "g")


def test_group_effects_pulp(pulp):
    # STAT 528 model.tables(lmod): a -0.16, b -0.34, c 0.22, d 0.28
    eff = group_effects(pulp, "bright", "operator")
    # differences of means of one-decimal data: exact up to rounding
    np.testing.assert_allclose(eff, [-0.16, -0.34, 0.22, 0.28], atol=1e-12)
    assert list(eff.index) == ["a", "b", "c", "d"]
