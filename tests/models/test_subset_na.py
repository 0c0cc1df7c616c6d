"""``subset=`` and ``na_action=`` of lmer and lm (R's subset, na.omit/na.fail/na.exclude).

The values against lme4 are in test_formulas_lme4.py; here the identities:
a subset fit is the fit of the pre-selected rows, an excluded fit is the
omitted fit with its per-row results padded, bit for bit where the same
computation runs twice (different optimiser paths are compared with the
same-optimum rule of tests/conftest.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import same_optimum

import lmmlib
from lmmlib.errors import ArgumentError, DataError, DataWarning


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(12), 7)
    x = rng.normal(size=g.size)
    y = 2 + x + rng.normal(size=12)[g] + 0.7 * rng.normal(size=g.size)
    d = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    d.loc[[3, 40], "y"] = np.nan
    d.loc[60, "x"] = np.nan
    return d


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("fn", [lmmlib.lmer, lmmlib.lm])
def test_subset_is_the_fit_of_the_selected_rows(data, fn):
    formula = "y ~ x + (1 | g)" if fn is lmmlib.lmer else "y ~ x"
    keep = (data.g != "3").to_numpy() & (data.x > -1.5).to_numpy()
    ref = quiet(fn, formula, data[keep])
    for subset in (keep, "g != '3' and x > -1.5", pd.Series(keep, index=data.index)):
        m = quiet(fn, formula, data, subset=subset)
        assert m.nobs == ref.nobs
        assert m.objective == same_optimum(ref.objective)
        np.testing.assert_array_equal(m.fitted.index, ref.fitted.index)


@pytest.mark.parametrize("fn", [lmmlib.lmer, lmmlib.lm])
def test_na_fail(data, fn):
    formula = "y ~ x + (1 | g)" if fn is lmmlib.lmer else "y ~ x"
    with pytest.raises(DataError, match=r"missing values in column\(s\) 'y', 'x'"):
        fn(formula, data, na_action="fail")
    with pytest.raises(ArgumentError, match="na_action"):
        fn(formula, data, na_action="pass")


@pytest.mark.parametrize("fn", [lmmlib.lmer, lmmlib.lm])
def test_na_exclude_pads_fitted_residuals_and_predict(data, fn):
    formula = "y ~ x + (1 | g)" if fn is lmmlib.lmer else "y ~ x"
    omit = quiet(fn, formula, data)
    m = quiet(fn, formula, data, na_action="exclude")
    assert m.objective == omit.objective  # the same fit
    missing = data.y.isna() | data.x.isna()
    for got, want in ((m.fitted, omit.fitted), (m.residuals, omit.residuals),
                      (m.resid(), omit.resid()), (m.predict(), omit.predict())):
        assert len(got) == len(data) and got.index.equals(data.index)
        np.testing.assert_array_equal(got.isna(), missing)
        np.testing.assert_array_equal(got[~missing], want)
    # predictions for new data and simulations are not padded (R's napredict pads only
    # the fitted rows; simulate draws the rows of the fit)
    new = data.dropna().head(4)
    np.testing.assert_array_equal(m.predict(new), omit.predict(new))
    assert m.simulate(2, rng=1).shape == (2, omit.nobs)
    assert str(m.summary()) == str(omit.summary())


def test_na_exclude_mixed_model_details(data):
    omit = quiet(lmmlib.lmer, "y ~ x + (1 | g)", data)
    m = quiet(lmmlib.lmer, "y ~ x + (1 | g)", data, na_action="exclude")
    missing = (data.y.isna() | data.x.isna()).to_numpy()
    np.testing.assert_array_equal(m.predict(re=False)[~missing], omit.predict(re=False))
    assert m.predict(re=False).isna().sum() == missing.sum()
    np.testing.assert_array_equal(m.resid("pearson", scaled=True)[~missing],
                                  omit.resid("pearson", scaled=True))
    # a refit keeps the padding
    refit = m.refit(omit.response)
    assert len(refit.fitted) == len(data)
    assert refit.objective == same_optimum(omit.objective)


def test_na_exclude_with_subset_pads_the_selected_rows(data):
    m = quiet(lmmlib.lm, "y ~ x", data, subset="g != '0'", na_action="exclude")
    rows = data[data.g != "0"]
    assert m.fitted.index.equals(rows.index)
    np.testing.assert_array_equal(m.fitted.isna(), rows.y.isna() | rows.x.isna())


def test_default_is_omit_with_a_warning(data):
    with pytest.warns(DataWarning, match="dropped 3 of 84 rows"):
        m = lmmlib.lm("y ~ x", data)
    assert len(m.fitted) == 81
