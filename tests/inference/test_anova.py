"""Model comparison: lme4's anova() tables, the chi-square mixture, AIC tables, level screen.

References: tests/reference/fixtures/anova/*.json, written by
tests/reference/anova.R (R 4.2.2, lme4 1.1-31), and the course notes
(seed 001 BIOS 526 M2 Nepal slides; seed 002 STAT 528 pulp and soybean).

Every number in these tables is a criterion (AIC, BIC, logLik, deviance), a
difference of two criteria (Chisq, ΔAIC) or a p-value of one.  lmmlib's criteria
are within OPT_GAP (tests/conftest.py) of their minima; lme4's within its default
fit's gap (1.1e-6 for the Nepal slope model, ~1e-12 for pulp).  So R's tables are
matched to the sum of the two gaps (absolute) plus the rounding of the criteria
(relative), and course numbers to half a unit of the printed digit plus the gaps;
p-values move by the χ² density (< 0.5 here) times as much.  A REML criterion
in place of the ML one, or a wrong df, is off by O(1).
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.special
from conftest import OPT_GAP, course_value, reference

import lmmlib
from lmmlib.errors import DataError, LmmlibWarning
from lmmlib.inference.anova import (
    REFIT_NOTE,
    AnovaTable,
    BoundaryTestWarning,
    RefitMLWarning,
    aic_table,
    anova,
    chisq_mixture_pvalue,
    drop_level_screen,
    ml_fit,
)

r_fixture = partial(reference, "anova")  # one R anova/aov fixture


def r_table(part: dict) -> pd.DataFrame:
    cols = {c: [np.nan if v is None else v for v in part["values"][c]] for c in part["columns"]}
    return pd.DataFrame(cols, index=part["rows"], dtype=float)


def assert_table(ours: pd.DataFrame, ref: pd.DataFrame, rtol: float, atol: float = 0.0) -> None:
    assert list(ours.columns) == list(ref.columns)
    assert list(ours.index) == list(ref.index)
    np.testing.assert_allclose(ours.to_numpy(float), ref.to_numpy(float), rtol=rtol, atol=atol,
                               equal_nan=True)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmmlibWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def nepal_fits(nepal):
    ri = lmmlib.lmer("arm ~ ageC + (1|id)", nepal)
    slope = lmmlib.lmer("arm ~ ageC + (ageC|id)", nepal)
    return ri, slope


def test_pulp_lrt_lm_against_ml_lmer(pulp):
    null = lmmlib.lm("bright ~ 1", pulp)
    smod = lmmlib.lmer("bright ~ 1 + (1|operator)", pulp, reml=False)
    with pytest.warns(BoundaryTestWarning, match="conservative"):
        tab = anova(smod, null, names=["smod", "nullmod"])
    assert isinstance(tab, AnovaTable)
    # STAT 528 (seed 002): 2*(logLik(smod) - logLik(nullmod)) = 2.568371, p = 0.1090199
    assert tab.loc["smod", "Chisq"] == course_value(2.568371, 6, OPT_GAP)
    assert tab.loc["smod", "Pr(>Chisq)"] == course_value(0.1090199, 7, OPT_GAP)
    # the whole table as lme4's anova(smod, nullmod) (rows sorted by npar)
    assert_table(tab, r_table(r_fixture("anova_pulp")["table"]), rtol=1e-10, atol=OPT_GAP)
    assert tab.notes and "boundary" in tab.notes[0]
    assert "nullmod: bright ~ 1" in str(tab)


def test_nepal_ml_comparison_matches_course_and_lme4(nepal_fits):
    ri, slope = (ml_fit(m) for m in nepal_fits)
    tab = quiet(anova, ri, slope, names=["ri", "slope"])
    # BIOS 526 M2 (seed 001): AIC 1807.26 (random intercept), 1802.58 (slope), Chisq 8.6854
    # on 2; the true values 1807.2645, 1802.5790 and 8.685444 are ≥ 5.6e-6 inside their
    # rounding intervals, 50x the spread of a difference of two criteria (2·OPT_GAP)
    assert tab.loc["ri", "AIC"] == course_value(1807.26, 2, OPT_GAP)
    assert tab.loc["slope", "AIC"] == course_value(1802.58, 2, OPT_GAP)
    assert tab.loc["slope", "Chisq"] == course_value(8.6854, 4, 2 * OPT_GAP)
    assert tab.loc["slope", "Df"] == 2
    # the slide's p-value reads 0.015; chi2_2 gives exp(-8.6854/2) = 0.0130, as lme4 prints;
    # closed form at the statistic truncated to 8.68544 (4.4e-6 off: p moves by half of
    # that, relative), hence 1e-5
    assert tab.loc["slope", "Pr(>Chisq)"] == pytest.approx(np.exp(-8.68544 / 2), rel=1e-5)
    # lme4 anova(ri, slope): its default ML fit of the slope model stops 1.1e-6 above the
    # minimum (fixture nepal_slope_ml), which every criterion column carries; 2e-5 is 18x
    # that (a REML criterion would be off by 13)
    assert_table(tab, r_table(r_fixture("anova_nepal")["ml"]), rtol=1e-8, atol=2e-5)


def test_reml_fits_are_refitted_with_ml(nepal_fits):
    ri, slope = nepal_fits
    with pytest.warns(RefitMLWarning, match="refitting model"):
        tab = anova(slope, ri, names=["slope_reml", "ri_reml"], boundary_warning=False)
    ref = r_fixture("anova_nepal")["reml_refitted"]
    assert ref["messages"] == REFIT_NOTE  # lme4's own message
    assert tab.notes[0] == REFIT_NOTE
    assert_table(tab, r_table(ref), rtol=1e-8, atol=2e-5)  # as above: lme4's default gap


def test_refit_false_compares_reml_criteria(nepal_fits):
    ri, slope = nepal_fits
    with warnings.catch_warnings():
        warnings.simplefilter("error", RefitMLWarning)
        tab = quiet(anova, ri, slope, refit=False, names=["ri_reml", "slope_reml"])
    # lme4 anova(ri_reml, slope_reml, refit = FALSE): REML criteria, lme4's default REML
    # fit 1.3e-6 above its minimum (fixture nepal_slope); 2e-5 as above
    assert_table(tab, r_table(r_fixture("anova_nepal")["reml_norefit"]), rtol=1e-8, atol=2e-5)


def test_refit_false_warns_for_different_fixed_effects(nepal):
    a = lmmlib.lmer("arm ~ age + (1|id)", nepal)
    b = lmmlib.lmer("arm ~ age + lit + (1|id)", nepal)
    with pytest.warns(LmmlibWarning, match="meaningless"):
        anova(a, b, refit=False)


def test_fixed_effect_comparison_gives_no_boundary_warning(nepal):
    a = lmmlib.lmer("arm ~ age + (1|id)", nepal, reml=False)
    b = lmmlib.lmer("arm ~ age + lit + (1|id)", nepal, reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundaryTestWarning)
        tab = anova(a, b)
    assert tab.notes == []
    # closed form: Chisq is the deviance difference (the same numbers), p its chi2_1 tail
    # (scipy's erfc against lmmlib's χ² tail: rounding of special functions, 1e-10)
    chisq = a.objective - b.objective
    assert tab["Chisq"].iloc[1] == pytest.approx(chisq, rel=1e-12)
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(scipy.special.erfc(np.sqrt(chisq / 2)),
                                                      rel=1e-10)


def test_models_must_share_the_response(pulp, pig):
    m = lmmlib.lm("bright ~ 1", pulp)
    with pytest.raises(DataError, match="different numbers of observations"):
        anova(m, lmmlib.lm("weight ~ weeks", pig))
    other = pulp.assign(bright=pulp["bright"] + 1)
    with pytest.raises(DataError, match="different responses"):
        anova(m, lmmlib.lm("bright ~ 1", other))
    with pytest.raises(DataError, match="at least two"):
        anova(m)


def test_chisq_mixture_closed_forms():
    x = 2.568371
    # 50:50 chi2_0 / chi2_1: half the naive p-value (Self & Liang 1987); pulp: 0.1090199 / 2
    # (the course prints 7 decimals; x itself is rounded to 6: p moves by 5e-7·0.047)
    assert chisq_mixture_pvalue(x, 1) == pytest.approx(0.1090199 / 2, abs=1e-7)
    # chi2_1 tail = erfc(sqrt(x/2)), chi2_2 tail = exp(-x/2)
    y = 8.68544436068987
    expected = 0.5 * scipy.special.erfc(np.sqrt(y / 2)) + 0.5 * np.exp(-y / 2)
    # closed form of special functions at the same argument: rounding only
    assert chisq_mixture_pvalue(y, 2) == pytest.approx(expected, rel=1e-10)
    assert chisq_mixture_pvalue(0.0, 1) == 1.0
    with pytest.raises(DataError):
        chisq_mixture_pvalue(1.0, 0)


def test_aic_table_mixes_lm_and_lmer(pulp):
    null = lmmlib.lm("bright ~ 1", pulp)
    smod = lmmlib.lmer("bright ~ 1 + (1|operator)", pulp, reml=False)
    tab = aic_table({"lm": null, "lmer": smod})
    # lme4/R: AIC 23.0800461654694 (lm) and 22.5116748007169 (lmer ML), anova_pulp.json
    ref = r_table(r_fixture("anova_pulp")["table"])
    # lm: closed form, rounding only; lmer: lmmlib's ML optimum within OPT_GAP of R's
    assert tab.loc["lm", "AIC"] == pytest.approx(ref.loc["nullmod", "AIC"], rel=1e-10)
    assert tab.loc["lmer", "AIC"] == pytest.approx(ref.loc["smod", "AIC"], rel=1e-11, abs=OPT_GAP)
    assert tab.loc["lm", "ΔAIC"] == pytest.approx(23.0800461654694 - 22.5116748007169,
                                                  abs=OPT_GAP + 1e-12)
    assert tab.loc["lmer", "ΔAIC"] == 0.0
    assert tab.loc["lm", "ΔBIC"] == 0.0  # BIC prefers the smaller model
    assert list(tab.columns) == ["npar", "logLik", "AIC", "BIC", "ΔAIC", "ΔBIC", "REML"]


def test_aic_table_warns_for_reml_with_other_fixed_effects(nepal):
    a = lmmlib.lmer("arm ~ age + (1|id)", nepal)
    b = lmmlib.lmer("arm ~ age + lit + (1|id)", nepal)
    with pytest.warns(LmmlibWarning, match="REML criteria"):
        aic_table([a, b])


@pytest.fixture(scope="module")
def soybean_full():
    from conftest import course_data

    formula = ("mAqE ~ ID + Date_num + I(Date_num^2) + Precip_cum + Precip_7day + Ta_7day"
               " + Fsd_7day + (1|plot_number_year)")
    return lmmlib.lmer(formula, course_data("soybean"), reml=False)


def test_drop_level_screen_matches_lme4(soybean_full):
    ref = r_fixture("drop_level_soybean")
    screen = drop_level_screen(soybean_full, "ID")
    # R: AIC(full) - AIC(lmer(mAqE ~ -1 + M[, -j] + (1|plot_number_year))), every genotype;
    # each of the 41 ML optima within OPT_GAP here and within lme4's default gap in R
    # (5e-12 for the full model, fixture soybean_full): 1e-6 and 1e-5 leave a wide margin
    # over 41·2·OPT_GAP (seen ≤ 1.1e-11);
    # dropping the wrong column moves ΔAIC by O(1)
    assert screen.attrs["aic_full"] == pytest.approx(ref["aic_full"], abs=1e-6)
    expected = pd.Series(ref["delta_aic"], index=ref["levels"])
    assert set(screen.index) == set(expected.index) and len(screen) == 40
    np.testing.assert_allclose(screen["ΔAIC"], expected[screen.index], atol=1e-5)
    assert screen["ΔAIC"].is_monotonic_increasing
    # Chisq = 2 - ΔAIC for a one-column difference (identity of the same numbers)
    np.testing.assert_allclose(screen["Chisq"], 2 - screen["ΔAIC"], atol=1e-9)
    assert screen.index[0] == "NAM24"  # the clearest difference from aRC in the R run


def test_drop_level_screen_bad_factor(soybean_full):
    with pytest.raises(DataError, match="Date"):
        drop_level_screen(soybean_full, "Date")


def test_drop_level_screen_for_lm(pulp):
    full = lmmlib.lm("bright ~ operator", pulp)
    screen = drop_level_screen(full, "operator")
    # closed form: merging level l with the reference a is lm(bright ~ indicators without l)
    for level in ["b", "c", "d"]:
        keep = [lv for lv in ["b", "c", "d"] if lv != level]
        d = pulp.assign(**{f"is_{lv}": (pulp["operator"] == lv).astype(float) for lv in keep})
        red = lmmlib.lm("bright ~ " + " + ".join(f"is_{lv}" for lv in keep), d)
        # lm: closed forms, rounding only
        assert screen.loc[level, "ΔAIC"] == pytest.approx(full.aic - red.aic, rel=1e-10)
