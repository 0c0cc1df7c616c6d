"""Formula and model-frame features against R's lme4 and lm (tests/reference/lme4_formulas.R).

Fixtures in tests/reference/fixtures/formulas: an ordered factor (contr.poly),
``poly(Days, 2)`` in the fixed part and as a random slope, ``scale(Days)`` as a
random slope, ``log``/``sqrt``/``exp`` transforms, ``.`` for an lmer and an lm
fit, a ``subset=`` fit (``scale`` computed before the subset, as R's model
frame does) and ``na.exclude`` fits of lmer and lm (fitted values and
residuals padded with NA).

Tolerances (see tests/conftest.py and tests/models/test_model_lme4.py):

* lmer objectives against lme4's tight refit within SAME_OPTIMUM (lmmlib stops
  within OPT_GAP of the minimum, the tight refit at it);
* θ, β, SEs, σ against the tight refit, fitted values, residuals and predictions
  against the default fit, within the curvature bound of the optima's gaps
  (OPT_GAP for lmmlib plus lme4's default gap for default-fit values), plus
  REF_RTOL for the reference's run-to-run noise;
* lm fits are least squares in closed form on both sides: rounding only,
  1e-10 relative (X is well conditioned here).
"""

from __future__ import annotations

import json
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, OPT_GAP, SAME_OPTIMUM, CurvatureBound, profiled_at

import lmmlib

FOLDER = FIXTURES / "formulas"
NAMES = json.loads((FOLDER / "index.json").read_text())["models"]
LMER = [n for n in NAMES if json.loads((FOLDER / f"{n}.json").read_text())["kind"] == "lmer"]
LM = [n for n in NAMES if n not in LMER]

REF_RTOL = 2e-6  # lme4's run-to-run noise in tight parameters (tests/reference/README.md)
LM_RTOL = 1e-10  # closed-form least squares on both sides: rounding of well-conditioned X


@cache
def fixture(name: str) -> dict:
    return json.loads((FOLDER / f"{name}.json").read_text())


def fixture_frame(fx: dict, key: str = "data") -> pd.DataFrame:
    """The fixture's data with R's factor levels (ordered factors as ordered Categoricals)."""
    data = pd.DataFrame({c: pd.Series(v, dtype=float if c not in fx["factors"] else object)
                         for c, v in fx[key].items()})
    for col, levels in fx["factors"].items():
        if col in data:
            data[col] = pd.Categorical(data[col], categories=levels,
                                       ordered=col in fx["ordered"])
    return data


@cache
def fit(name: str):
    fx = fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.DataWarning)  # the dropped NA rows
        fn = lmmlib.lmer if fx["kind"] == "lmer" else lmmlib.lm
        return fn(fx["python_formula"], fixture_frame(fx), **(fx["python_args"] or {}))


def r_name(name: str) -> str:
    """R deparses ``exp(Days/10)`` without the spaces formulaic prints around operators."""
    return name.replace(" / ", "/")


def gap(fx: dict) -> float:
    """How far lme4's default fit stopped above its tight refit."""
    return max(fx["objective"] - fx["objective_tight"], 0.0)


@cache
def unit_bound(name: str) -> CurvatureBound:
    return CurvatureBound(fit(name), 1.0)


def assert_within_curvature(name: str, actual, expected, quantity, default: bool) -> None:
    """lmmlib at θ̂ against lme4 within the curvature bound of both optima's gaps."""
    fx = fixture(name)
    want = np.asarray(expected, dtype=float)
    unit = unit_bound(name)(quantity)
    tol = unit * (np.sqrt(OPT_GAP) + np.sqrt(gap(fx) if default else 0.0)) \
        + REF_RTOL * np.abs(want) + 1e-12 * np.abs(want).max()
    np.testing.assert_array_less(np.abs(np.asarray(actual, dtype=float) - want), tol)


def at_theta(name: str, what: str):
    m = fit(name)

    def quantity(theta):
        out = profiled_at(m, np.asarray(theta, dtype=float))
        if what == "theta":
            return np.asarray(theta, dtype=float)
        if what == "fitted":
            return out["fitted"]
        if what == "residuals":
            return m.design.y - out["fitted"]
        return np.atleast_1d(out[what])
    return quantity


def present(values) -> tuple[np.ndarray, np.ndarray]:
    """R's vector with nulls (na.exclude) as floats and the mask of its values."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    return arr, ~np.isnan(arr)


@pytest.mark.parametrize("name", LMER)
def test_lmer_matches_lme4(name):
    fx, m = fixture(name), fit(name)
    assert m.nobs == fx["nobs"]
    assert [r_name(n) for n in m.fixef.index] == fx["beta"]["names"]
    assert m.objective == pytest.approx(fx["objective_tight"], **SAME_OPTIMUM)
    assert_within_curvature(name, m.theta, fx["theta_tight"], at_theta(name, "theta"), False)
    assert_within_curvature(name, m.fixef, fx["beta_tight"], at_theta(name, "beta"), False)
    assert_within_curvature(name, m.se, fx["se_tight"], at_theta(name, "se"), False)
    assert_within_curvature(name, [m.sigma], [fx["sigma_tight"]], at_theta(name, "sigma"), False)
    # the random-effect columns are named as lme4 names them (poly(Days, 2)1, scale(Days))
    vc = pd.DataFrame(fx["varcorr"])
    assert m.varcorr["var1"].fillna("").tolist() == vc["var1"].fillna("").tolist()


@pytest.mark.parametrize("name", LMER)
def test_lmer_fitted_and_residuals_match_lme4(name):
    fx, m = fixture(name), fit(name)
    want, rows = present(fx["fitted"])
    got = m.fitted.to_numpy()
    assert got.shape == want.shape  # na.exclude: one value per row of the data
    np.testing.assert_array_equal(np.isnan(got), ~rows)  # NaN exactly where R has NA
    assert_within_curvature(name, got[rows], want[rows], at_theta(name, "fitted"), True)
    res, _ = present(fx["residuals"])
    assert_within_curvature(name, m.resid().to_numpy()[rows], res[rows],
                            at_theta(name, "residuals"), True)
    np.testing.assert_array_equal(m.predict().to_numpy(), got)  # predict() = fitted


PREDICTED = [n for n in LMER if "predict_newdata" in fixture(n)]


@pytest.mark.parametrize("name", PREDICTED)
def test_predict_newdata_reuses_the_training_transforms(name):
    # scale(), poly() and sqrt() on new rows with the fit's centre, scale and
    # polynomial coefficients (R's makepredictcall): lme4's predictions
    fx, m = fixture(name), fit(name)
    new = pd.DataFrame(fx["predict_newdata"]["data"])
    pred = fx["predict_newdata"]
    for re, key in ((False, "fixed"), (True, "re")):
        got = m.predict(new, re=re).to_numpy()
        assert_within_curvature(name, got, pred[key],
                                lambda th, re=re: _predicted(m, new, th, re), True)


def _predicted(m, new, theta, re: bool) -> np.ndarray:
    """lmmlib's predictions for new rows at any θ: X β̂(θ) (+ Z b̂(θ))."""
    from lmmlib.engine.design import block_rows, fixed_rows, newdata_frame

    frame = newdata_frame(m.design, new)
    fit_at = profiled_at(m, theta)
    eta = fixed_rows(m.design, frame) @ fit_at["beta"]
    if re:
        for block, effects in zip(m.design.blocks, fit_at["blups"], strict=True):
            rows, codes = block_rows(m.design, block, frame)
            eta = eta + np.einsum("ij,ij->i", rows, effects[codes])
    return eta


@pytest.mark.parametrize("name", LM)
def test_lm_matches_r(name):
    fx, m = fixture(name), fit(name)
    assert m.nobs == fx["nobs"]
    assert list(m.fixef.index) == fx["beta"]["names"]
    assert m.objective == pytest.approx(fx["objective"], rel=LM_RTOL)
    np.testing.assert_allclose(m.fixef, fx["beta"]["values"], rtol=LM_RTOL)
    np.testing.assert_allclose(m.se, fx["se"], rtol=LM_RTOL)
    want, rows = present(fx["fitted"])
    got = m.fitted.to_numpy()
    np.testing.assert_array_equal(np.isnan(got), ~rows)
    np.testing.assert_allclose(got[rows], want[rows], rtol=LM_RTOL)
    res, _ = present(fx["residuals"])
    np.testing.assert_allclose(m.residuals.to_numpy()[rows], res[rows],
                               rtol=LM_RTOL, atol=LM_RTOL * np.abs(want[rows]).max())
