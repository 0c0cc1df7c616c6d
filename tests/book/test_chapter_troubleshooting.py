"""Appendix "Troubleshooting": each mistake raises the lmmlib error the page names, and
the singular, unconverged and badly scaled fits behave as lme4's.

lme4 values: tests/reference/fixtures/pages/troubleshooting.json (book_pages.R,
R 4.2.2, lme4 1.1-31, tight nloptwrap tolerances) and the fixture nepal_slope.

Tolerances (tests/conftest.py): criteria of regular fits within OPT_GAP of lme4's;
a fit on the boundary has a criterion that rises linearly away from it, so two
optimisers that both stop at the boundary agree to the same OPT_GAP; a parameter
at the boundary is zero within lme4's singularity tolerance 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, lme4_fixture, reference
from test_chapters import executed, glued, number

ERRORS = {
    "misspelled_column": "FormulaError",
    "unbalanced_parentheses": "FormulaError",
    "random_term_without_parentheses": "FormulaError",
    "no_random_term": "FormulaError",
    "one_level_factor": "DataError",
    "missing_values_na_action_fail": "DataError",
    "new_level_in_predict": "DataError",
    "reml_as_a_string": "ArgumentError",
    "unknown_data_set": "DatasetError",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, str]:
    return glued(executed("troubleshooting"))


@pytest.fixture(scope="module")
def values(raw) -> dict[str, float]:
    out = {}
    for key, text in raw.items():
        try:
            out[key] = number(text)
        except AssertionError:  # the glued error class names are not numbers
            continue
    return out


@pytest.fixture(scope="module")
def lme4() -> dict:
    return reference("pages", "troubleshooting")


def test_each_mistake_raises_the_named_error(raw, values):
    # the page catches lmmlib.LmmlibError; a raw numpy/pandas error would escape the
    # except clause and fail the page, and a changed class shows up here
    assert values["n_errors"] == len(ERRORS)
    for key, cls in ERRORS.items():
        assert raw[f"err_{key}"].strip("'\"") == cls, key


def test_dropped_rows_and_text_columns(values):
    # nepal.csv: 5 visits without a weight (data/README.md); weeks as text is a factor
    # with 9 levels: intercept and 8 contrasts
    assert values["n_wt_dropped"] == 5
    assert values["n_text_fixef"] == 9


def test_two_level_factor_is_singular_as_in_lme4(raw, values, lme4):
    fx = lme4["nepal_sex"]
    assert fx["singular"] and fx["singular_default"]
    assert raw["sex_singular"] == "True"
    # lme4's sex SD is 6e-8 x sigma: zero within the singularity tolerance 1e-4
    assert fx["theta"][1] < 1e-4
    assert values["sex_var"] < 1e-8
    # with the variance at zero the criterion is the random-intercept model's, to the
    # two optimisers' gap
    assert values["sex_crit"] == pytest.approx(fx["objective"], abs=2 * OPT_GAP)
    assert values["ri_crit"] == pytest.approx(lme4["nepal_ri"]["objective"], abs=OPT_GAP)
    assert values["sex_crit_diff"] < 2 * OPT_GAP


def test_unsupported_random_slope_is_singular_as_in_lme4(raw, values, lme4):
    slope, int_only = lme4["soybean_slope"], lme4["soybean_int"]
    assert slope["singular"] and lme4["soybean_nocorr"]["singular"]
    assert not int_only["singular"]
    assert raw["slope_singular"] == "True" and raw["int_singular"] == "False"
    # lme4: correlation -1 (theta_3 = 0: a rank-one covariance); lmmlib the same to
    # rounding of the correlation of a rank-one matrix
    assert slope["varcorr"]["sdcor"][2] == pytest.approx(-1.0, abs=1e-10)
    assert values["slope_corr"] == pytest.approx(-1.0, abs=1e-10)
    # the slope SD: the boundary fit is flat along the boundary, so the SD is compared
    # at lme4's singularity tolerance on theta (1e-4) times sigma
    sigma = slope["varcorr"]["sdcor"][3]
    assert values["slope_sd"] == pytest.approx(slope["varcorr"]["sdcor"][1], abs=1e-4 * sigma)
    assert values["nocorr_slope_sd"] < 1e-4 * sigma
    # the likelihood-ratio statistic of ML refits: both deviances within OPT_GAP
    assert values["slope_lrt"] == pytest.approx(lme4["soybean_lrt"], abs=2 * OPT_GAP)
    assert values["n_geno"] == 41


def test_convergence_warning_and_restart(values):
    # the default fit and the restart reach lme4's optimum of nepal_slope (its tight
    # objective) within OPT_GAP; the stopped fit is well above it
    tight = lme4_fixture("nepal_slope")["objective_tight"]
    assert values["default_crit"] == pytest.approx(tight, abs=OPT_GAP)
    assert values["restart_crit_diff"] < SAME_OPTIMUM["abs"]
    assert values["short_crit"] - tight > 1e-3
    assert values["short_feval"] <= 21  # maxeval=20 plus the final evaluation
    assert values["default_feval"] > 21


def test_scaling_warning(values, lme4):
    # lme4 warns for the same covariate (book_pages.R)
    assert any("different scales" in n for n in lme4["pig_seconds_notes"])
    # the same model: the slope per week is the balanced closed form, to rounding
    assert values["seconds_slope_week"] == pytest.approx(values["weeks_slope"], rel=1e-8)
    # REML criteria differ by log|X'V^-1X|, i.e. 2 log(604800) for one column scaled by
    # 604800: an identity at the optimum; the two fits stop within OPT_GAP each (1e-7
    # together), and 1e-6 adds the rounding of log-determinants of size 30
    assert values["seconds_crit_diff"] == pytest.approx(2 * np.log(604800), abs=1e-6)
    assert values["two_log_factor"] == pytest.approx(2 * np.log(604800), rel=1e-12)
