"""R's formula functions and model-frame arguments in the engine.

Closed forms: R's ``scale`` (mean and n − 1 standard deviation), R's ``poly``
(the QR factor of the centred Vandermonde matrix, signed so that R's diagonal is
positive: R's own algorithm), R's ``contr.poly`` (the same for the level scores
1..k).  Values printed by R are compared at half a unit of their last printed
digit; closed forms computed here at rounding (1e-12).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lmmlib.engine.design import build_design
from lmmlib.engine.formula import expand_dot, parse_formula
from lmmlib.engine.frame import build_frame
from lmmlib.engine.names import r_names, wrap_ordered
from lmmlib.engine.rfunctions import center, scale
from lmmlib.engine.rows import as_na_action, subset_mask
from lmmlib.errors import ArgumentError, DataError, DataWarning, FormulaError

ROUNDING = 1e-12  # closed forms of the same few numbers: rounding only


def r_poly(x: np.ndarray, degree: int) -> np.ndarray:
    """R's poly(): QR of outer(x - mean, 0:degree, "^"), Q signed by diag(R), normalised."""
    q, r = np.linalg.qr(np.vander(x - x.mean(), degree + 1, increasing=True))
    z = q * np.sign(np.diag(r))
    return z[:, 1:] / np.linalg.norm(z[:, 1:], axis=0)


@pytest.fixture
def toy() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(8), 6)
    x = np.round(rng.uniform(1, 9, size=g.size), 1)
    y = 1 + 0.5 * x + rng.normal(size=8)[g] + rng.normal(size=g.size)
    band = pd.Categorical(np.array(["lo", "mid", "hi", "top"])[rng.integers(0, 4, g.size)],
                          categories=["lo", "mid", "hi", "top"], ordered=True)
    return pd.DataFrame({"y": y, "x": x, "z": rng.normal(size=g.size), "g": g, "band": band})


# -- scale, center, poly ----------------------------------------------------------------
def test_scale_is_r_scale_with_missing_values_ignored():
    x = np.array([1.0, 2.0, np.nan, 4.0, 8.0])
    ok = x[~np.isnan(x)]
    want = (x - ok.mean()) / ok.std(ddof=1)
    np.testing.assert_allclose(scale(x), want, rtol=ROUNDING)
    # center=False: divided by the root mean square with n - 1, as R's scale
    np.testing.assert_allclose(scale(x, center=False), x / np.sqrt(np.sum(ok**2) / 3),
                               rtol=ROUNDING)
    np.testing.assert_allclose(scale(x, center=2.0, scale=False), x - 2.0, rtol=ROUNDING)
    np.testing.assert_allclose(center(x), x - ok.mean(), rtol=ROUNDING)


def test_poly_is_r_poly():
    x = np.array([1.0, 2, 3, 4, 5, 7])
    m = build_design("y ~ poly(x, 2)", pd.DataFrame({"y": [1.0, 3, 2, 5, 4, 6], "x": x}),
                     require_random=False)
    assert m.xnames == ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")
    np.testing.assert_allclose(m.X[:, 1:], r_poly(x, 2), atol=ROUNDING)
    # R 4.2: print(poly(c(1, 2, 3, 4, 5, 7), 2)), 7 decimals shown
    printed = [[-0.55205245, 0.5455447], [-0.34503278, 0.0], [-0.13801311, -0.3273268],
               [0.06900656, -0.4364358], [0.27602622, -0.3273268], [0.69006556, 0.5455447]]
    np.testing.assert_allclose(m.X[:, 1:], printed, atol=5e-8)


def test_ordered_factors_get_contr_poly(toy):
    d = build_design("y ~ band", toy, require_random=False)
    assert d.xnames == ("(Intercept)", "band.L", "band.Q", "band.C")
    contr = r_poly(np.arange(1.0, 5.0), 3)  # R's contr.poly(4)
    np.testing.assert_allclose(d.X[:, 1:], contr[toy["band"].cat.codes], atol=ROUNDING)
    # unordered: treatment contrasts; C() keeps the contrasts written in it
    plain = build_design("y ~ band", toy.assign(band=toy.band.cat.as_ordered().cat.as_unordered()),
                         require_random=False)
    assert plain.xnames == ("(Intercept)", "band[T.mid]", "band[T.hi]", "band[T.top]")
    explicit = build_design("y ~ C(band)", toy, require_random=False)
    assert explicit.xnames == ("(Intercept)", "C(band)[T.mid]", "C(band)[T.hi]", "C(band)[T.top]")
    np.testing.assert_array_equal(explicit.X, plain.X)


def test_ordered_factor_in_new_data(toy):
    # new rows get the fit's contrasts whether the column is ordered, plain or text
    from lmmlib.engine.design import fixed_rows, newdata_frame

    d = build_design("y ~ band + x", toy, require_random=False)
    for column in (toy.band, toy.band.cat.as_unordered(), toy.band.astype(str)):
        new = toy.assign(band=column).iloc[::-1]
        np.testing.assert_array_equal(fixed_rows(d, newdata_frame(d, new)), d.X[::-1])


def test_contr_poly_names_beyond_the_cubic():
    levels = [f"l{i}" for i in range(6)]
    d = pd.DataFrame({"y": np.arange(12.0) % 5, "f": pd.Categorical(levels * 2, levels,
                                                                    ordered=True)})
    assert build_design("y ~ f", d, require_random=False).xnames == (
        "(Intercept)", "f.L", "f.Q", "f.C", "f^4", "f^5")


def test_ordered_factor_in_a_random_term(toy):
    d = build_design("y ~ x + (band | g)", toy)
    assert d.blocks[0].colnames == ("(Intercept)", "band.L", "band.Q", "band.C")


def test_names_helpers():
    assert wrap_ordered("_lmm1_ + C(_lmm1_)", [1]) == "C(_lmm1_, contr.poly) + C(_lmm1_)"
    assert r_names(["C(_lmm0_, contr.poly)[lo]"]) == ["_lmm0_[lo]"]  # full-rank coding


@pytest.mark.parametrize("fn", ["sqrt", "abs", "log", "exp", "log1p"])
def test_r_function_names(toy, fn):
    d = build_design(f"y ~ {fn}(x)", toy, require_random=False)
    assert d.xnames[1] == f"{fn}(x)"
    np.testing.assert_allclose(d.X[:, 1], getattr(np, fn)(toy["x"]), rtol=ROUNDING)


# -- stateful transforms learn on the data before subset and NA removal -------------------
def test_scale_and_poly_learn_on_all_rows(toy):
    data = toy.assign(y=toy.y.where(toy.index != 4))  # one missing response
    keep = (toy.x > 3).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        d = build_design("y ~ scale(x) + poly(z, 2) + (1 | g)", data, subset=keep)
    rows = keep & data.y.notna().to_numpy()
    x, z = toy.x.to_numpy(), toy.z.to_numpy()
    # R's model frame: scale() and poly() of the whole column, then the rows
    np.testing.assert_allclose(d.X[:, 1], ((x - x.mean()) / x.std(ddof=1))[rows], rtol=ROUNDING)
    np.testing.assert_allclose(d.X[:, 2:], r_poly(z, 2)[rows], atol=ROUNDING)
    # new data: the same centre and scale (R's makepredictcall)
    new = pd.DataFrame({"x": [2.0, 10.0], "z": [0.0, 1.0], "g": [0, 1]})
    from lmmlib.engine.design import fixed_rows, newdata_frame
    X = fixed_rows(d, newdata_frame(d, new))
    np.testing.assert_allclose(X[:, 1], (new.x - x.mean()) / x.std(ddof=1), rtol=ROUNDING)


def test_scale_of_a_column_with_missing_values(toy):
    # the rows without x are left out of the fit, and scale() uses the others (R's
    # scale(x) of the whole column: mean and sd with na.rm = TRUE)
    x = toy.x.where(toy.index % 10 != 0).to_numpy()
    with pytest.warns(DataWarning, match="dropped 5 of 48 rows"):
        d = build_design("y ~ scale(x) + (1 | g)", toy.assign(x=x))
    ok = ~np.isnan(x)
    np.testing.assert_allclose(d.X[:, 1], (x[ok] - x[ok].mean()) / x[ok].std(ddof=1),
                               rtol=ROUNDING)


def test_random_slope_transforms_learn_on_all_rows(toy):
    d = build_design("y ~ 1 + (scale(x) | g)", toy, subset="x > 3")
    x = toy.x.to_numpy()
    np.testing.assert_allclose(d.blocks[0].Z[:, 1], ((x - x.mean()) / x.std(ddof=1))[x > 3],
                               rtol=ROUNDING)
    assert d.blocks[0].colnames == ("(Intercept)", "scale(x)")


# -- the dot ---------------------------------------------------------------------------
def test_dot_is_every_other_column_but_the_grouping_factors():
    cols = ["y", "x", "body mass", "g", "h"]
    p = expand_dot(parse_formula("y ~ . + (x | g) + (1 | h)"), cols)
    assert p.fixed == "x + `body mass`"
    assert expand_dot(parse_formula("log(y) ~ . - x"), ["y", "x", "z"]).fixed == "x + z - x"
    assert expand_dot(parse_formula("y ~ x"), cols).fixed == "x"  # no dot: unchanged
    # a model frame holds the response expression as a column: not a predictor
    assert expand_dot(parse_formula("log(y) ~ ."), ["y", "x", "log(y)"]).fixed == "x"


def test_dot_fits_the_listed_columns(toy):
    a = build_design("y ~ . + (1 | g)", toy)
    b = build_design("y ~ x + z + band + (1 | g)", toy)
    assert a.xnames == b.xnames
    np.testing.assert_array_equal(a.X, b.X)


@pytest.mark.parametrize(("formula", "message"), [
    ("y ~ . - . + (1 | g)", r"'- \.' .* removes every column"),
    ("y ~ . + (1 | g)", r"stands for no column"),
    ("y ~ x + (. | g)", r"term of its own"),
    ("y ~ (. + x)^2 + (1 | g)", r"term of its own"),
])
def test_dot_mistakes(formula, message):
    with pytest.raises(FormulaError, match=message):
        build_design(formula, pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [1.0, 0, 2, 1],
                                            "g": [1, 1, 2, 2]}).drop(
            columns=["x"] if "stands for" in message else []))


def test_unparenthesised_bar_shows_the_corrected_formula():
    with pytest.raises(FormulaError, match=r"write '\(1 \| g\)', i.e. 'y ~ x \+ \(1 \| g\)'"):
        parse_formula("y ~ x + 1 | g")
    with pytest.raises(FormulaError, match=r"'y ~ x - z \+ \(1\|g\) \+ \(1\|h\)'"):
        parse_formula("y ~ x - z + 1|g + (1|h)")


# -- subset ----------------------------------------------------------------------------
def test_subset_forms_select_the_same_rows(toy):
    want = (toy.x > 3).to_numpy()
    shuffled = pd.Series(want, index=toy.index).sample(frac=1.0, random_state=1)
    for subset in (want, list(want), shuffled, "x > 3", pd.array(want, dtype="boolean")):
        np.testing.assert_array_equal(subset_mask(toy, subset), want)
    # a missing value in the condition leaves the row out, as R's subset
    mask = pd.array([True, None] + [True] * (len(toy) - 2), dtype="boolean")
    assert subset_mask(toy, mask)[:2].tolist() == [True, False]


@pytest.mark.parametrize(("subset", "error", "message"), [
    (np.ones(3, dtype=bool), ArgumentError, r"one value per row of the data \(48\)"),
    (np.arange(48), ArgumentError, r"must be boolean"),
    ("x >", ArgumentError, r"cannot evaluate subset='x >'"),
    ("x", ArgumentError, r"must be boolean"),
    ("x > 100", DataError, r"selects no rows"),
    (pd.Series([True] * 48, index=range(100, 148)), ArgumentError, r"index is not the data's"),
])
def test_subset_mistakes(toy, subset, error, message):
    with pytest.raises(error, match=message):
        build_design("y ~ x + (1 | g)", toy, subset=subset)


# -- na_action -------------------------------------------------------------------------
def test_na_action_values():
    assert as_na_action("na.exclude") == "exclude"
    with pytest.raises(ArgumentError, match="na_action"):
        as_na_action("drop")


def test_na_fail_names_the_column(toy):
    data = toy.assign(z=toy.z.where(toy.index > 2))
    with pytest.raises(DataError, match=r"missing values in column\(s\) 'z' \(z: 3 of 48"):
        build_design("y ~ x + z + (1 | g)", data, na_action="fail")
    build_design("y ~ x + (1 | g)", data, na_action="fail")  # z is not used: no error
    with pytest.raises(DataError, match=r"not finite on 1 of 48 rows.*na_action='fail'"):
        build_design("log(y) ~ x + (1 | g)", toy.assign(y=toy.y.where(toy.index != 5, -1.0)),
                     na_action="fail")


def test_na_exclude_records_the_rows(toy):
    data = toy.assign(y=toy.y.where(toy.index != 1), z=toy.z.where(toy.index != 7),
                      x=toy.x.where(toy.index != 9, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        mf = build_frame(parse_formula("np.log(y + 10) ~ z + np.log(x) + (1 | g)"), data,
                         subset="g != 0", na_action="exclude")
        d = build_design("log(x) ~ z + (1 | g)", data, subset="g != 0", na_action="exclude")
    # the rows of the data after the subset, the missing y and z left out
    assert list(mf.exclusion.index) == list(range(6, 48))
    assert 7 - 6 not in mf.exclusion.kept and len(mf.exclusion.kept) == 41
    # log(x) is -inf where x = 0: left out as R's na.exclude leaves out NaN
    assert 9 - 6 not in d.exclusion.kept and 7 - 6 not in d.exclusion.kept
    padded = d.pad(np.arange(d.nobs, dtype=float))
    assert len(padded) == 42 and padded.isna().sum() == 2
    assert build_design("y ~ x + (1 | g)", toy).exclusion is None  # omit: nothing recorded
