"""``predict(newdata)`` of lm, lmer and glmer: levels, missing values, new levels.

The expected predictions are written out from the fitted coefficients (closed
form: Xβ̂ plus the BLUP of the row's level), so they agree with ``predict`` to
rounding; ``EXACT`` (1e-12 relative) allows for the order of summation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import fitted, fixture_data, reference

import lmmlib
from lmmlib import DataError

EXACT = 1e-12  # the same few products and sums, in another order


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(1, 11), 6)
    x = rng.normal(size=g.size)
    f = np.tile(["lo", "mid", "hi"], g.size // 3)
    y = 2 + x + (f == "hi") + rng.normal(size=10)[g - 1] + rng.normal(scale=0.5, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": g})


@pytest.fixture(scope="module")
def model(data):
    return lmmlib.lmer("y ~ x + f + (1 | g)", data)


def _by_hand(m, rows: pd.DataFrame, blup: bool) -> np.ndarray:
    beta = m.fixef
    eta = beta["(Intercept)"] + beta["x"] * rows.x.to_numpy()
    for level in ("lo", "mid"):  # "hi" is the reference level (sorted first)
        eta = eta + beta[f"f[T.{level}]"] * (rows.f.to_numpy() == level)
    if blup:
        re = m.ranef_arrays()["g"]["(Intercept)"]
        eta = eta + np.array([re.get(str(int(v)), 0.0) if pd.notna(v) else 0.0 for v in rows.g])
    return eta


def test_predict_known_levels_equals_the_formula(model, data):
    rows = data.iloc[[0, 7, 20]]
    np.testing.assert_allclose(model.predict(rows), _by_hand(model, rows, True), rtol=EXACT)
    np.testing.assert_allclose(model.predict(rows, re=False), _by_hand(model, rows, False),
                               rtol=EXACT)


@pytest.mark.parametrize("missing", [np.nan, None, pd.NA])
def test_missing_grouping_value_gives_the_population_prediction(model, data, missing):
    rows = data.iloc[[0, 7, 20]].astype({"g": object})
    rows.iloc[1, rows.columns.get_loc("g")] = missing
    got = model.predict(rows)
    np.testing.assert_allclose(got.iloc[[0, 2]], _by_hand(model, rows.iloc[[0, 2]], True),
                               rtol=EXACT)
    assert got.iloc[1] == pytest.approx(_by_hand(model, rows.iloc[[1]], False)[0], rel=EXACT)


@pytest.mark.parametrize("convert", [lambda g: g.astype(float), lambda g: g.astype(str),
                                     lambda g: g.astype("Int64"), lambda g: g.astype(object)])
def test_levels_match_by_value(model, data, convert):
    rows = data.iloc[[0, 7, 20, 59]]
    np.testing.assert_allclose(model.predict(rows.assign(g=convert(rows.g))),
                               model.predict(rows), rtol=EXACT)


def test_float_fitted_levels_match_integer_newdata(data):
    m = lmmlib.lmer("y ~ x + (1 | g)", data.assign(g=data.g.astype(float)))
    rows = data.iloc[[3, 40]]
    ref = m.predict(rows.assign(g=rows.g.astype(float)))
    np.testing.assert_allclose(m.predict(rows), ref, rtol=EXACT)
    assert list(m.ranef_arrays()["g"].index[:2]) == ["1", "2"]  # R's labels for 1.0, 2.0


def test_new_grouping_level_is_an_error_unless_allowed(model, data):
    rows = data.iloc[[0, 1]].assign(g=[1, 99])
    with pytest.raises(DataError, match=r"new level\(s\) '99' of 'g'.*allow_new_levels=True"):
        model.predict(rows)
    got = model.predict(rows, allow_new_levels=True)
    assert got.iloc[1] == pytest.approx(_by_hand(model, rows.iloc[[1]], False)[0], rel=EXACT)
    with pytest.raises(lmmlib.ArgumentError, match="allow_new_levels"):
        model.predict(rows, allow_new_levels="yes")
    with pytest.raises(lmmlib.ArgumentError, match="re must be True or False"):
        model.predict(rows, re="FALSE")


def test_interaction_grouping_factor_matches_and_refuses_new_combinations(data):
    d = data.assign(h=np.tile([1, 2], len(data) // 2))
    m = lmmlib.lmer("y ~ x + (1 | g:h)", d)
    rows = d.iloc[[0, 1]]
    np.testing.assert_allclose(m.predict(rows.assign(h=rows.h.astype(float))), m.predict(rows),
                               rtol=EXACT)
    with pytest.raises(DataError, match=r"'1:7' of 'g:h'"):
        m.predict(rows.assign(h=[7, 7]))


@pytest.mark.parametrize("fit", [
    lambda d: lmmlib.lmer("y ~ x + f + (1 | g)", d),
    lambda d: lmmlib.lm("y ~ x + f", d),
    lambda d: lmmlib.glmer("k ~ x + f + (1 | g)", d.assign(k=(d.y > d.y.median()) * 1.0),
                           "binomial"),
])
def test_unseen_fixed_effect_level_is_an_error_naming_it(data, fit):
    m = fit(data)
    rows = data.iloc[[0, 1]].assign(f=["lo", "extra"])
    with pytest.raises(DataError, match=r"new level\(s\) 'extra' of 'f'"):
        m.predict(rows)


@pytest.mark.parametrize("fit", [
    lambda d: lmmlib.lmer("y ~ x + f + (1 | g)", d),
    lambda d: lmmlib.lm("y ~ x + f", d),
])
def test_newdata_without_a_column_or_with_missing_covariates(data, fit):
    m = fit(data)
    with pytest.raises(DataError, match=r"lacks the column\(s\) 'x'"):
        m.predict(data.drop(columns="x").iloc[:3])
    rows = data.iloc[:3].assign(x=[0.0, np.nan, 1.0])
    with pytest.raises(DataError, match=r"column 'x' has 1 missing value.*rows \[1\]"):
        m.predict(rows)
    with pytest.raises(DataError, match="0 rows"):
        m.predict(data.iloc[:0])


def test_lm_prediction_equals_the_formula(data):
    m = lmmlib.lm("y ~ x + f", data)
    rows = data.iloc[[2, 9]].assign(f=pd.Categorical(["mid", "hi"]))
    beta = m.fixef
    expected = beta["(Intercept)"] + beta["x"] * rows.x + beta["f[T.mid]"] * (rows.f == "mid")
    np.testing.assert_allclose(m.predict(rows), expected, rtol=EXACT)


@pytest.mark.parametrize("fit", [
    lambda d: lmmlib.lmer("y ~ x + x2 + (1 | g)", d),
    lambda d: lmmlib.lm("y ~ x + x2", d),
    lambda d: lmmlib.glmer("k ~ x + x2 + (1 | g)", d.assign(k=(d.y > d.y.median()) * 1.0),
                           "binomial"),
])
def test_predict_drops_the_rank_deficient_column_as_the_fit_did(data, fit):
    # x2 = 2x is dropped from the fit (with a warning); new rows must drop it too, so
    # predictions of the fitted rows equal the fitted linear predictor (rounding only)
    d = data.assign(x2=2 * data.x)
    with pytest.warns(lmmlib.DataWarning, match="rank deficient .*x2"):
        m = fit(d)
    assert "x2" not in m.fixef.index
    rows = d.iloc[[0, 13, 40]]
    expected = (m.linear_predictor if hasattr(m, "linear_predictor") else m.fitted).iloc[
        [0, 13, 40]]
    np.testing.assert_allclose(m.predict(rows), expected, rtol=EXACT)


def test_re_form_selects_random_terms_as_lme4():
    m = fitted("penicillin")  # (1 | plate) + (1 | sample)
    data = m.model_frame
    full = m.predict(data).to_numpy()
    plate_only = m.predict(data, re_form="~ (1 | plate)").to_numpy()
    none = m.predict(data, re_form="~0").to_numpy()
    re = m.ranef()
    b_sample = re[re.grpvar == "sample"].set_index("grp")["condval"]
    b_plate = re[re.grpvar == "plate"].set_index("grp")["condval"]
    # closed forms: each term adds its own conditional modes (rounding only)
    np.testing.assert_allclose(full - plate_only,
                               b_sample.loc[data["sample"].astype(str)].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(plate_only - none,
                               b_plate.loc[data["plate"].astype(str)].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(none, m.predict(data, re=False).to_numpy(), rtol=1e-14)
    with pytest.raises(lmmlib.ArgumentError, match=r"re_form term \(1 \| batch\)"):
        m.predict(data, re_form="~ (1 | batch)")


def test_se_fit_and_confidence_interval_of_population_predictions():
    m = fitted("pig_reml")
    new = pd.DataFrame({"weeks": [0.0, 5.0, 9.0], "id": [1, 1, 1]})
    table = m.predict(new, re=False, se_fit=True, interval="confidence", level=0.9)
    V = m.vcov.to_numpy()
    X = np.column_stack([np.ones(3), new.weeks])
    # closed form: se = sqrt(x' V x), limits fit -/+ z se (normal, 90%)
    np.testing.assert_allclose(table.se_fit, np.sqrt(np.einsum("ij,jk,ik->i", X, V, X)),
                               rtol=1e-12)
    z = 1.6448536269514722
    np.testing.assert_allclose(table.upr - table.fit, z * table.se_fit, rtol=1e-12)
    assert list(table.columns) == ["fit", "se_fit", "lwr", "upr"]
    with pytest.raises(lmmlib.ArgumentError, match="population"):
        m.predict(new, se_fit=True)


def test_re_form_predictions_match_lme4():
    fx = reference("predict", "penicillin")
    data = fixture_data(fx)
    m = lmmlib.lmer(fx["formula"], data)
    # lme4's predict(re.form = ...) at its tight fit, the same optimum: 1e-6 relative
    # (predictions move with θ along the flat directions by ~1e-8)
    for key, form in [("pred_all", None), ("pred_plate", "~ (1 | plate)"),
                      ("pred_sample", "~(1|sample)"), ("pred_none", "~0")]:
        np.testing.assert_allclose(m.predict(data, re_form=form).to_numpy(), fx[key],
                                   rtol=1e-6)
