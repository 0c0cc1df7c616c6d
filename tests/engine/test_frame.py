"""Bad input is refused with lmmlib errors that name the culprit (issue: bad input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmlib
from lmmlib import DataError, DataWarning, FormulaError, LmmlibError


@pytest.fixture
def toy():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(10), 5)
    x = rng.normal(size=50)
    y = 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(scale=0.5, size=50)
    return pd.DataFrame({"y": y, "x": x, "g": g, "s": np.where(x > 0, "hi", "lo")})


def test_unknown_column_is_named(toy):
    with pytest.raises(FormulaError, match="'xx'.*did you mean 'x'"):
        lmmlib.lmer("y ~ xx + (1|g)", toy)
    with pytest.raises(FormulaError, match="'h'"):
        lmmlib.lmer("y ~ x + (1|h)", toy)


def test_non_numeric_response(toy):
    with pytest.raises(DataError, match="response 's' must be numeric"):
        lmmlib.lmer("s ~ x + (1|g)", toy)


def test_missing_values_are_dropped_with_a_count(toy):
    bad = toy.copy()
    bad.loc[[0, 1, 2], "x"] = np.nan
    bad.loc[3, "y"] = np.nan
    with pytest.warns(DataWarning, match=r"dropped 4 of 50 rows .*\(y: 1, x: 3\)"):
        m = lmmlib.lmer("y ~ x + (1|g)", bad)
    assert m.nobs == 46


def test_single_level_grouping_factor(toy):
    with pytest.raises(DataError, match="'g' has a single level"):
        lmmlib.lmer("y ~ x + (1|g)", toy.assign(g=1))


def test_as_many_levels_as_observations_is_not_identifiable(toy):
    # Neyman-Scott with one observation per individual: tau^2 and sigma^2 are confounded
    with pytest.raises(DataError, match="not separately identifiable"):
        lmmlib.lmer("y ~ x + (1|row)", toy.assign(row=np.arange(50)))
    with pytest.raises(DataError, match="no residual information"):
        lmmlib.lmer("y ~ x + (x|g)", toy.iloc[:20].assign(g=np.repeat(np.arange(10), 2)))


def test_rank_deficient_columns_are_dropped_and_named(toy):
    with pytest.warns(DataWarning, match="dropping 1 column.*x2"):
        m = lmmlib.lmer("y ~ x + x2 + (1|g)", toy.assign(x2=2 * toy["x"]))
    assert list(m.fixef.index) == ["(Intercept)", "x"]
    ref = lmmlib.lmer("y ~ x + (1|g)", toy)
    np.testing.assert_allclose(m.fixef, ref.fixef)


def test_constant_response(toy):
    with pytest.raises(DataError, match="response 'y' is constant"):
        lmmlib.lmer("y ~ x + (1|g)", toy.assign(y=3.0))


def test_infinite_values_after_model_matrix(toy):
    with pytest.raises(DataError, match=r"np.log\(z\)"):
        lmmlib.lmer("y ~ np.log(z) + (1|g)", toy.assign(z=np.abs(toy["x"]).where(toy.x > 0, 0)))
    with pytest.raises(DataError, match="infinite"):
        lmmlib.lmer("y ~ x + (1|g)", toy.assign(y=np.where(toy.x > 1, np.inf, toy.y)))


def test_no_random_term_and_non_frame_data(toy):
    with pytest.raises(FormulaError, match="no random-effects term"):
        lmmlib.lmer("y ~ x", toy)
    with pytest.raises(DataError, match="DataFrame"):
        lmmlib.lmer("y ~ x + (1|g)", [1, 2, 3])
    with pytest.raises(FormulaError):
        lmmlib.lmer(42, toy)


def test_all_errors_share_the_lmmlib_base_class():
    for cls in (DataError, FormulaError, lmmlib.DatasetError):
        assert issubclass(cls, LmmlibError)
