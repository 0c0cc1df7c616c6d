"""update(), lmList() and anova()'s row names against lme4.

Reference values: ``tests/reference/fixtures/lmertest_parity/update_sleepstudy.json``
and ``lmlist_sleepstudy.json`` (lme4 1.1.31, tight nloptwrap fits; written by
``tests/reference/lmertest_parity.R``).

Tolerances: refit criteria are optima, compared at the same-optimum rule of
tests/conftest.py (lmmlib's and lme4's optimisers both stop within OPT_GAP);
fixed effects within SAME_OPTIMUM_SE standard errors.  lmList fits are least
squares (closed form): rounding only, 1e-10 relative.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
from conftest import SAME_OPTIMUM_SE, fixture_data, reference, same_optimum

import lmmlib
from lmmlib.errors import ArgumentError, DataError, FormulaError
from lmmlib.models.update import update_formula

fixture = partial(reference, "lmertest_parity")


@pytest.fixture(scope="module")
def sleep():
    return fixture_data(fixture("update_sleepstudy"))


@pytest.fixture(scope="module")
def fm1(sleep):
    return lmmlib.lmer("Reaction ~ Days + (Days | Subject)", sleep)


CALLS = {
    "minus_days": lambda m, d: lmmlib.update(m, ". ~ . - Days"),
    "plus_square": lambda m, d: lmmlib.update(m, ". ~ . + I(Days^2)"),
    "new_random": lambda m, d: lmmlib.update(m, ". ~ . - (Days | Subject) + (1 | Subject)"),
    "ml": lambda m, d: lmmlib.update(m, reml=False),
    "new_data": lambda m, d: lmmlib.update(m, data=d[d["Days"] > 0]),
    "new_response": lambda m, d: lmmlib.update(m, "np.log(.) ~ ."),
    "lm_plus": lambda m, d: lmmlib.update(lmmlib.lm("Reaction ~ Days", d), ". ~ . + I(Days^2)"),
}


@pytest.mark.parametrize("key", list(CALLS))
def test_update_matches_lme4(fm1, sleep, key):
    ref = fixture("update_sleepstudy")["updates"][key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        new = CALLS[key](fm1, sleep)
    assert new.nobs == ref["nobs"] and new.reml == ref["reml"]
    assert new.objective == same_optimum(ref["objective"])
    r_names = [n.replace("^", " ** ") for n in ref["beta_names"]]
    assert list(new.fixef.index) == r_names
    np.testing.assert_array_less(np.abs(new.fixef.to_numpy() - ref["beta"]),
                                 SAME_OPTIMUM_SE * new.se.to_numpy() + 1e-10)


def test_update_formula_algebra():
    assert update_formula("y ~ x + (x | g)", ". ~ . - (x | g) + (1 | g)") == "y ~ x + (1 | g)"
    assert update_formula("y ~ a*b", ". ~ . - a:b") == "y ~ a + b"
    assert update_formula("y ~ a:b + c", ". ~ . - b:a") == "y ~ c"  # interactions as sets
    assert update_formula("y ~ x", ". ~ . - 1") == "y ~ x - 1"
    assert update_formula("y ~ x", ". ~ . - x") == "y ~ 1"
    assert update_formula("y ~ x", "z ~ .") == "z ~ x"
    assert update_formula("y ~ x", ". ~ . + x") == "y ~ x"  # no duplicates
    with pytest.raises(FormulaError, match="one '~'"):
        update_formula("y ~ x", ". - x")


def test_update_needs_data_for_new_columns(fm1, sleep):
    with pytest.raises(ArgumentError, match="pass data="):
        lmmlib.update(fm1, ". ~ . + Other")
    more = sleep.assign(Other=np.arange(len(sleep)) % 3)
    assert "Other" in lmmlib.update(fm1, ". ~ . + Other", data=more).fixef.index
    with pytest.raises(ArgumentError, match="reml does not apply"):
        lmmlib.update(lmmlib.lm("Reaction ~ Days", sleep), reml=True)
    with pytest.raises(ArgumentError, match="model must be"):
        lmmlib.update("Reaction ~ Days")


def test_update_arguments(fm1, sleep):
    with pytest.raises(ArgumentError, match="lmer takes no argument.*'family'"):
        lmmlib.update(fm1, family="poisson")
    with pytest.raises(ArgumentError, match="formula must be a string"):
        lmmlib.update(fm1, 3)
    dotted = lmmlib.lm("Reaction ~ .", sleep[["Reaction", "Days"]])
    with pytest.raises(ArgumentError, match="uses '.'"):
        lmmlib.update(dotted, ". ~ . + I(Days^2)")
    # lm's own arguments pass through: the subset's 162 rows, as lme4's new_data
    sub = lmmlib.update(lmmlib.lm("Reaction ~ Days", sleep), subset=sleep["Days"] > 0)
    assert sub.nobs == 162


def test_update_warnings_point_at_the_caller(pig):
    # without weeks the pig model is a boundary fit; the warning names this file
    m = lmmlib.lmer("weight ~ weeks + (1|id)", pig)
    with pytest.warns(lmmlib.SingularFitWarning) as caught:
        lmmlib.update(m, ". ~ . - weeks")
    assert caught[0].filename == __file__


# -- lmList -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def ll():
    fx = fixture("lmlist_sleepstudy")
    return lmmlib.lmList("Reaction ~ Days | Subject", fixture_data(fx)), fx


def test_lmlist_coef(ll):
    fits, fx = ll
    cf = fits.coef()
    assert [str(g) for g in cf.index] == fx["groups"]
    np.testing.assert_allclose(cf["(Intercept)"], fx["coef"]["(Intercept)"], rtol=1e-10)
    np.testing.assert_allclose(cf["Days"], fx["coef"]["Days"], rtol=1e-10)
    s, df = fits.pooled_sd
    assert df == fx["pooled_df"] and s == pytest.approx(fx["pooled_sd"], rel=1e-10)


@pytest.mark.parametrize("pool, key", [(True, "confint_pooled"), (False, "confint_separate")])
def test_lmlist_confint(ll, pool, key):
    fits, fx = ll
    ci = fits.confint(pool=pool) if pool else fits.confint()
    for name, ref in fx[key].items():
        np.testing.assert_allclose(ci[(name, "2.5 %")], ref["lower"], rtol=1e-10)
        np.testing.assert_allclose(ci[(name, "97.5 %")], ref["upper"], rtol=1e-10)


def test_lmlist_errors(sleep):
    small = sleep[(sleep["Subject"].astype(str) != "308") | (sleep["Days"] < 2)]
    with pytest.raises(DataError, match="group '308' of 'Subject' has 2 row"):
        lmmlib.lmList("Reaction ~ Days | Subject", small)
    with pytest.raises(FormulaError, match="y ~ x \\| group"):
        lmmlib.lmList("Reaction ~ Days", sleep)
    with pytest.raises(DataError, match="'Nope' is not in the data"):
        lmmlib.lmList("Reaction ~ Days | Nope", sleep)


# -- anova's row names --------------------------------------------------------------
def test_anova_rows_named_by_the_caller(fm1):
    small = lmmlib.update(fm1, reml=False)
    big = lmmlib.update(small, ". ~ . + I(Days^2)")
    tab = lmmlib.anova(small, big)
    assert list(tab.index) == ["small", "big"]
    assert tab.heading[0].startswith("small: ")
    assert list(lmmlib.anova(a=small, b=big).index) == ["a", "b"]
    assert list(lmmlib.anova(small, b=big).index) == ["small", "b"]
    assert list(lmmlib.anova(small, big, names=["x", "y"]).index) == ["x", "y"]
    # an expression that no single variable holds: lme4-like fallback m1, m2
    tab = lmmlib.anova(small, lmmlib.update(big))
    assert list(tab.index) == ["m1", "m2"]
    assert list(lmmlib.anova(small, m1=big).index) == ["small", "m1"]
    with pytest.raises(ArgumentError, match="given twice"):
        lmmlib.anova(small, names=["a"], a=big)
