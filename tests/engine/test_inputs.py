"""Unusual but legitimate inputs give the right answer or a clear lmmlib error.

Most checks here compare two fits of *the same model written two ways* (a
column renamed, a dtype converted, a response transformed beforehand).  Where
the two ways give the optimiser the same numbers in the same order the fits
agree to rounding; where they reorder the levels (string labels sort "10"
before "2") BOBYQA may stop at another point within its tolerance.  So the
criteria are compared at ``SAME_OPTIMUM`` (twice the optimiser's gap), β within
``SAME_OPTIMUM_SE`` standard errors and θ within the curvature bound of that
gap: far below what a wrong model changes (the first digits).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, SAME_OPTIMUM_SE, theta_curvature_tolerance

import lmmlib
from lmmlib import DataError, DataWarning, FormulaError

SAME = 1e-10  # identical arithmetic (the same columns in the same order): rounding only


@pytest.fixture(scope="module")
def toy() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(12), 6)
    x = rng.normal(size=g.size)
    f = np.tile(["a", "b", "c"], g.size // 3)
    y = 5 + 0.8 * x + (f == "b") + rng.normal(size=12)[g] + rng.normal(scale=0.6, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": g})


def _same_fit(a, b) -> None:
    assert a.objective == pytest.approx(b.objective, **SAME_OPTIMUM)
    assert np.all(np.abs(a.fixef.to_numpy() - b.fixef.to_numpy())
                  <= SAME_OPTIMUM_SE * b.se.to_numpy())
    assert np.all(np.abs(a.theta - b.theta) <= theta_curvature_tolerance(b, 2 * OPT_GAP))


# -- the left-hand side is an expression -----------------------------------------------
@pytest.mark.parametrize(("lhs", "transform"), [
    ("y - 1", lambda y: y - 1),
    ("log(y)", np.log),
    ("np.sqrt(y)", np.sqrt),
    ("I(y / 2)", lambda y: y / 2),
    ("I(2 * y + x)", None),
])
def test_response_expression_models_that_expression(toy, lhs, transform):
    data = toy.assign(y=toy.y - toy.y.min() + 1.0)  # positive, for log and sqrt
    new = 2 * data.y + data.x if transform is None else transform(data.y)
    ref = lmmlib.lmer("z ~ x + (1 | g)", data.assign(z=new))
    _same_fit(lmmlib.lmer(f"{lhs} ~ x + (1 | g)", data), ref)


def test_shifted_response_changes_only_the_intercept(toy):
    # y - 1 ~ x: the intercept drops by exactly 1, the slope and θ stay (closed form)
    a, b = lmmlib.lmer("y ~ x + (1|g)", toy), lmmlib.lmer("y - 1 ~ x + (1|g)", toy)
    # (the two criteria differ only by rounding, so the optima at SAME_OPTIMUM_SE)
    se = a.se
    shift = b.fixef["(Intercept)"] - (a.fixef["(Intercept)"] - 1)
    assert abs(shift) <= SAME_OPTIMUM_SE * se.iloc[0]
    assert abs(b.fixef["x"] - a.fixef["x"]) <= SAME_OPTIMUM_SE * se["x"]


def test_log_of_non_positive_response_drops_those_rows_with_a_count(toy):
    data = toy.assign(y=toy.y - toy.y.quantile(0.25))
    bad = int((data.y <= 0).sum())
    with pytest.warns(DataWarning, match=rf"dropped {bad} of {len(data)} rows .*'log\(y\)'"):
        m = lmmlib.lmer("log(y) ~ x + (1|g)", data)
    assert m.nobs == len(data) - bad
    ref = lmmlib.lmer("z ~ x + (1|g)", data[data.y > 0].assign(z=np.log(data.y[data.y > 0])))
    _same_fit(m, ref)


# -- column names ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Intercept", "C", "log", "np", "I", "poly", "center"])
def test_columns_named_like_formula_functions_are_columns(toy, name):
    data = toy.assign(**{name: toy.x})
    m = lmmlib.lmer(f"y ~ {name} + (1 | g)", data)
    assert list(m.fixef.index) == ["(Intercept)", name]
    _same_fit(m, lmmlib.lmer("y ~ x + (1 | g)", toy))


def test_intercept_column_does_not_replace_the_intercept_in_lm(toy):
    m = lmmlib.lm("y ~ Intercept", toy.assign(Intercept=toy.x))
    ref = lmmlib.lm("y ~ x", toy)
    assert list(m.fixef.index) == ["(Intercept)", "Intercept"]
    np.testing.assert_allclose(m.fixef.to_numpy(), ref.fixef.to_numpy(), rtol=SAME)


@pytest.mark.parametrize(("xname", "gname", "formula"), [
    ("x.1", "g.id", "y ~ x.1 + (1 | g.id)"),
    ("x.1", "g.id", "y ~ `x.1` + (1 | `g.id`)"),
    ("x 1", "g g", "y ~ `x 1` + (1 | `g g`)"),
    ("x  1", "g:g", "y ~ `x  1` + (`x  1` | `g:g`)"),
    ("x+1", "g/g", "y ~ `x+1` + (1 + `x+1` | `g/g`)"),
])
def test_dotted_and_quoted_names_in_fixed_and_random_parts(toy, xname, gname, formula):
    data = toy.rename(columns={"x": xname, "g": gname})
    plain = formula.replace(f"`{xname}`", "x").replace(f"`{gname}`", "g")
    plain = plain.replace(xname, "x").replace(gname, "g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.SingularFitWarning)
        m, ref = lmmlib.lmer(formula, data), lmmlib.lmer(plain, toy)
    _same_fit(m, ref)
    assert xname in m.fixef.index
    assert list(m.ngroups.index) == [gname]
    assert m.ranef_arrays()[gname].shape == ref.ranef_arrays()["g"].shape


def test_quoted_names_inside_functions_and_interactions(toy):
    data = toy.rename(columns={"x": "dose (mg)", "f": "arm.type"})
    m = lmmlib.lmer("y ~ np.exp(`dose (mg)` / 4) * `arm.type` + (1|g)", data)
    ref = lmmlib.lmer("y ~ np.exp(x / 4) * f + (1|g)", toy)
    _same_fit(m, ref)
    assert "np.exp(dose (mg) / 4):arm.type[T.b]" in m.fixef.index


@pytest.mark.parametrize(("formula", "message"), [
    ("y ~ ns(x, 3) + (1|g)", r"ns\(\).*cr\(x"),
    ("y ~ factor(g) + (1|g)", r"factor\(\).*C\(x\)"),
    ("cbind(y, y) ~ x + (1|g)", r"cbind\(\).*weights"),
    ("y ~ frobnicate(x) + (1|g)", r"unknown function frobnicate\(\)"),
    ("y ~ .:x + (1|g)", r"'\.' shorthand.*term of its own"),
    ("y ~ x +* (1|g)", r"operator without a term"),
    ("y ~ x + (1|g) +", r"operator without a term"),
    ("y ~ x * : f + (1|g)", r"operator without a term"),
    ("y ~ x + 1|g", r"needs parentheses: write '\(1\|g\)'"),
    ("y ~ xx + (1|g)", r"unknown column 'xx'.*did you mean 'x'"),
    ("y ~ `x y` + (1|g)", r"unknown column 'x y'"),
    ("y ~ x + (1|g h)", r"grouping factor 'g h'.*backticks"),
])
def test_formula_mistakes_get_a_message_with_the_fix(toy, formula, message):
    with pytest.raises(FormulaError, match=message):
        lmmlib.lmer(formula, toy)


def test_formulaic_transforms_still_work(toy):
    # center(x) equals x - mean(x): the same model as a centred column (closed form)
    m = lmmlib.lmer("y ~ center(x) + (1|g)", toy)
    _same_fit(m, lmmlib.lmer("y ~ xc + (1|g)", toy.assign(xc=toy.x - toy.x.mean())))
    assert list(m.fixef.index) == ["(Intercept)", "center(x)"]


# -- dtypes ----------------------------------------------------------------------------
@pytest.mark.parametrize("convert", [
    lambda d: d.assign(f=d.f.astype("string")),
    lambda d: d.assign(f=d.f.astype("string[pyarrow]")),
    lambda d: d.assign(f=d.f.astype("category")),
    lambda d: d.convert_dtypes(),
    lambda d: d.assign(g=d.g.astype("Int64"), x=d.x.astype("Float64")),
    lambda d: d.assign(g=d.g.astype(str)),
    lambda d: d.assign(g=d.g.astype(float)),
    lambda d: d.assign(x=d.x.astype(object)),
])
def test_extension_dtypes_give_the_same_fit(toy, convert):
    pytest.importorskip("pyarrow")
    _same_fit(lmmlib.lmer("y ~ x + f + (1|g)", convert(toy)),
              lmmlib.lmer("y ~ x + f + (1|g)", toy))


def test_polars_and_dict_input(toy):
    pl = pytest.importorskip("polars")
    ref = lmmlib.lmer("y ~ x + f + (1|g)", toy)
    _same_fit(lmmlib.lmer("y ~ x + f + (1|g)", pl.from_pandas(toy)), ref)
    _same_fit(lmmlib.lmer("y ~ x + f + (1|g)", toy.to_dict("list")), ref)


def test_missing_values_in_extension_dtypes_are_dropped(toy):
    data = toy.convert_dtypes()
    data.loc[[0, 5], "f"] = pd.NA
    with pytest.warns(DataWarning, match=r"dropped 2 of 72 rows .*f: 2"):
        m = lmmlib.lmer("y ~ x + f + (1|g)", data)
    _same_fit(m, lmmlib.lmer("y ~ x + f + (1|g)", toy.drop(index=[0, 5])))


@pytest.mark.parametrize(("column", "message"), [
    (lambda d: pd.date_range("2020-01-01", periods=len(d)), r"'t' holds dates.*pd.Timedelta"),
    (lambda d: pd.to_timedelta(np.arange(len(d)), "D"), r"'t' holds dates or durations"),
    (lambda d: d.x + 1j, r"'t' holds complex numbers"),
    (lambda d: np.where(d.index % 2, d.g, d.g.astype(str)).astype(object), r"'t' mixes numbers"),
])
def test_unusable_column_types_are_named(toy, column, message):
    with pytest.raises(DataError, match=message):
        lmmlib.lmer("y ~ t + (1|g)", toy.assign(t=column(toy)))


def test_dates_are_fine_as_grouping_levels(toy):
    days = pd.Series(pd.date_range("2021-03-01", periods=12)).to_numpy()[toy.g]
    m = lmmlib.lmer("y ~ x + (1|day)", toy.assign(day=days))
    _same_fit(m, lmmlib.lmer("y ~ x + (1|g)", toy))
    assert m.ranef_arrays()["day"].index[0].startswith("2021-03-01")


def test_grouping_column_mixing_one_and_text_one_is_refused(toy):
    g = toy.g.astype(object).where(toy.index % 2 == 0, toy.g.astype(str))
    with pytest.raises(DataError, match=r"'g' mixes numbers and strings"):
        lmmlib.lmer("y ~ x + (1|g)", toy.assign(g=g))


def test_numbers_stored_as_text_are_reported(toy):
    data = toy.assign(x=toy.x.round(1).astype(str))
    with pytest.warns(DataWarning, match=r"'x' holds numbers stored as text.*pd.to_numeric"):
        m = lmmlib.lm("y ~ x", data)
    assert len(m.fixef) > 2  # it is a factor, as the warning says


@pytest.mark.parametrize(("data", "message"), [
    (lambda d: d.iloc[:0], r"0 rows"),
    (lambda d: d.iloc[:1], r"only 1 complete row"),
    (lambda d: pd.concat([d, d[["x"]]], axis=1), r"several columns named 'x'"),
    (lambda d: {"y": [1.0, 2.0, 3.0], "x": [1.0, 2.0], "g": [1, 1, 2]}, r"equal lengths.*x: 2"),
    (lambda d: d.to_numpy(), r"must be a pandas DataFrame"),
])
def test_bad_frames_are_refused_clearly(toy, data, message):
    for fit in (lambda dd: lmmlib.lmer("y ~ x + (1|g)", dd), lambda dd: lmmlib.lm("y ~ x", dd)):
        with pytest.raises(DataError, match=message):
            fit(data(toy))


def test_response_determined_by_the_grouping_factor_is_named(toy):
    with pytest.raises(DataError, match=r"exactly determined .* 'g'.*constant within"):
        lmmlib.lmer("y ~ 1 + (1|g)", toy.assign(y=toy.g * 1.5))
    with pytest.raises(DataError, match=r"exactly determined"):
        lmmlib.lmer("y ~ x + (1|g)", toy.assign(y=toy.g * 1.5 + 2 * toy.x))
