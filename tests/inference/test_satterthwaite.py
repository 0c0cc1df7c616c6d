"""Satterthwaite t-tests for fixed effects against R's lmerTest.

Reference values: ``tests/reference/fixtures/lmertest/*.json``, written by
``tests/reference/lmertest.R`` (lmerTest 3.1.3, lme4 1.1.31, numDeriv 2016.8-1.1;
``coef(summary(m))`` of fits with tight optimiser tolerances, plus lmerTest's
``vcov_varpar`` and the Jacobian of vcov(β) at its θ).

Tolerances.  Estimates, SEs and t values move with θ̂: against lmerTest's tight
fits they are compared at the curvature bound of lmmlib's optimiser gap
(tests/conftest.py), p-values at what those bounds and the df tolerance allow.
The df come from finite differences (Richardson extrapolation, as numDeriv)
whose rounding noise depends on the BLAS kernel: at lmerTest's own θ they agree
to 5e-7 relative for the 7323-row disks fit (1e-8 or better otherwise), compared
at SCHEME_RTOL; at lmmlib's θ̂ they also move with θ̂ (DF_SPREAD), compared at
DF_RTOL.
"""

from __future__ import annotations

import re
import warnings
from functools import cache, partial

import numpy as np
import pytest
from conftest import OPT_GAP, CurvatureBound, fixture_data, profiled_at, reference
from scipy import stats

import lmmlib
from lmmlib.engine.differences import richardson_hessian, richardson_jacobian
from lmmlib.errors import ConvergenceWarning, LmmlibError
from lmmlib.inference.satterthwaite import (
    _pseudo_inverse,
    coef_table,
    satterthwaite_parts,
)

lt_fixture = partial(reference, "lmertest")  # data set, factor levels, coefficient table
NAMES = lt_fixture("index")["models"]
SCHEME_RTOL = 1e-5  # df from the same differencing scheme at the same θ (20x its noise)
# df at lmmlib's own θ̂ move with θ̂: their curvature bound under OPT_GAP is ≤ 2.2e-4
# relative (penicillin; 1e-4 for sleepstudy), DF_SPREAD; compared at 1e-3
DF_SPREAD = 3e-4
DF_RTOL = 1e-3


@cache
def table_bounds(name: str) -> dict[str, np.ndarray]:
    """Curvature bounds (OPT_GAP) of the estimates, SEs and t values of a fixture's fit."""
    model, _, _ = lt_fit(name)
    bound = CurvatureBound(model, OPT_GAP)
    est = bound(lambda th: profiled_at(model, th)["beta"])
    se = bound(lambda th: profiled_at(model, th)["se"])
    t = bound(lambda th: profiled_at(model, th)["beta"] / profiled_at(model, th)["se"])
    return {"Estimate": est, "Std. Error": se, "t value": t}


@cache
def lt_fit(name: str):
    """lmmlib's fit of a fixture's model and its coef_table, with any warnings."""
    fx = lt_fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.SingularFitWarning)
        model = lmmlib.lmer(fx["formula"], fixture_data(fx), reml=fx["reml"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = coef_table(model)
    return model, table, [w.category for w in caught]


def r_name(name: str) -> str:
    """formulaic's coefficient name in R's spelling: ``ID[T.NAM2]`` -> ``IDNAM2``."""
    return re.sub(r"\[T\.(.*?)\]", r"\1", name).replace(" ** ", "^")


def _close(got, want, rtol: float, atol: float | np.ndarray = 0.0) -> None:
    """|got − want| ≤ atol + rtol·|want| elementwise (atol may be an array)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    excess = np.abs(got - want) - rtol * np.abs(want) - atol
    bad = np.argwhere(excess > 0)
    assert not bad.size, (f"{len(bad)} mismatches, first at {tuple(bad[0])}: "
                          f"got {got[tuple(bad[0])]!r}, want {want[tuple(bad[0])]!r}")


@pytest.mark.parametrize("name", NAMES)
def test_estimates_and_standard_errors_match_lmertest(name):
    fx = lt_fixture(name)
    _, table, _ = lt_fit(name)
    want = fx["coef"]
    assert [r_name(n) for n in table.index] == want["names"]
    se = np.asarray(want["se"])
    # lmerTest's tight fits sit at the minimum; lmmlib's within OPT_GAP of it: each column
    # within its curvature bound (2e-4 SE at most) plus rounding (1e-9 relative; seen
    # ≤ 3.4e-6 SE, nepal_slope)
    bounds = table_bounds(name)
    _close(table["Estimate"], want["estimate"], rtol=1e-9, atol=bounds["Estimate"] + 1e-12)
    _close(table["Std. Error"], se, rtol=1e-9, atol=bounds["Std. Error"])
    _close(table["t value"], want["t"], rtol=1e-9, atol=bounds["t value"] + 1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_df_and_p_values_match_lmertest(name):
    fx = lt_fixture(name)
    _, table, caught = lt_fit(name)
    assert ConvergenceWarning not in caught
    df = np.asarray(fx["coef"]["df"])
    _close(table["df"], df, rtol=DF_RTOL)  # seen ≤ 1.5e-6
    # p-values: as far as p moves within the t bound and DF_SPREAD (log p is steep in t
    # and df for large t: 13 % relative for nepal_slope's p = 4e-217, 0.2-3 % for the
    # others; seen ≤ 1 % of that); p-values below ~1e-300 underflow to 0 in R and scipy
    # alike (pig weeks)
    t, dt = np.abs(np.asarray(fx["coef"]["t"])), table_bounds(name)["t value"]
    corners = [2 * stats.t.sf(t + a * dt, df * (1 + b * DF_SPREAD))
               for a in (-1, 1) for b in (-1, 1)]
    p_tol = np.max(np.abs(np.array(corners) - np.asarray(fx["coef"]["p"])), axis=0)
    _close(table["Pr(>|t|)"], fx["coef"]["p"], rtol=1e-6, atol=p_tol + 1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_numerical_scheme_reproduces_lmertest_at_its_theta(name):
    # At lmerTest's own (θ, σ) only the differentiation scheme differs, if anything
    fx = lt_fixture(name)
    model, _, _ = lt_fit(name)
    parts = satterthwaite_parts(model.pls, np.array(fx["theta"]), fx["sigma"], fx["reml"])
    p = len(fx["coef"]["names"])
    _close(parts.df(np.eye(p)), fx["coef"]["df"], rtol=SCHEME_RTOL)
    A = np.array(fx["vcov_varpar"])
    # at θ = 0 (dyestuff2) numDeriv's step is an absolute 1e-4 and the extrapolated
    # second difference carries ~3e-5 relative rounding noise, in R and here alike;
    # elsewhere the noise is ≤ 6e-8 relative (seen), so 1e-6
    _close(parts.vcov_varpar, A, rtol=1e-4 if fx["singular"] else 1e-6,
           atol=1e-8 * np.abs(A).max())
    jac = np.array([np.diag(j) for j in parts.jacobian])
    want = np.array(fx["jacobian_diag"])
    # first differences extrapolated: noise ≤ 1.1e-6 relative (seen), 1e-4; entries that
    # vanish (e.g. ∂V/∂ of a tiny correlation parameter) are noise
    _close(jac, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_df_at_lme4_default_optimum():
    # lme4's default tolerances stop θ 6e-4 short in nepal_slope (lmerTest fixture
    # coef_default); the df there still follow from the same scheme
    fx = lt_fixture("nepal_slope")
    model, _, _ = lt_fit("nepal_slope")
    parts = satterthwaite_parts(model.pls, np.array(fx["theta_default"]),
                                fx["sigma_default"], fx["reml"])
    _close(parts.df(np.eye(2)), fx["coef_default"]["df"], rtol=SCHEME_RTOL)  # same θ


def test_boundary_fit_has_residual_df():
    # dyestuff2: θ = 0, the criterion is even in θ, so vcov(β) does not move with θ
    # to first order and df = n - p = 29 (lmerTest: 28.9999999994)
    model, table, _ = lt_fit("dyestuff2")
    assert model.theta[0] == 0.0
    parts = satterthwaite_parts(model.pls, model.theta, model.sigma, model.reml)
    # symmetric differences of an even function at 0: zero up to rounding
    assert abs(parts.jacobian[0, 0, 0]) < 1e-9 * abs(parts.jacobian[1, 0, 0])
    assert table["df"].iloc[0] == pytest.approx(29.0, rel=1e-9)  # closed form n − p


def test_residual_ddf_is_n_minus_p():
    model, _, _ = lt_fit("pig_reml")
    table = coef_table(model, ddf="residual")
    # closed form: 432 observations, 2 fixed effects
    assert list(table["df"]) == [430.0, 430.0]
    t = table["t value"].to_numpy()
    # the same closed form from the printed t values: rounding only
    _close(table["Pr(>|t|)"], 2 * stats.t.sf(np.abs(t), 430), rtol=1e-10)


def test_model_method_and_case_insensitive_ddf():
    model, table, _ = lt_fit("penicillin")
    assert model.coef_table().equals(table)
    assert coef_table(model, ddf="Satterthwaite").equals(table)


def test_unknown_ddf_is_an_lmmlib_error():
    model, _, _ = lt_fit("pig_reml")
    with pytest.raises(LmmlibError, match="kenward-roger"):
        coef_table(model, ddf="kenward-roger")


def test_richardson_hessian_closed_form():
    # f = exp(a) sin(b) + a² b³; the second component 0 gets numDeriv's absolute step
    def f(x):
        return np.exp(x[0]) * np.sin(x[1]) + x[0] ** 2 * x[1] ** 3

    for a, b in [(0.7, 1.3), (0.4, 0.0)]:
        want = np.array([
            [np.exp(a) * np.sin(b) + 2 * b**3, np.exp(a) * np.cos(b) + 6 * a * b**2],
            [np.exp(a) * np.cos(b) + 6 * a * b**2, -np.exp(a) * np.sin(b) + 6 * a**2 * b],
        ])
        # closed form; Richardson extrapolation (4 steps) leaves ~1e-9 relative
        _close(richardson_hessian(f, np.array([a, b])), want, rtol=1e-7, atol=1e-9)


def test_richardson_jacobian_closed_form():
    def f(x):
        return np.array([[x[0] * x[1], np.log(x[0])], [np.exp(x[1]), x[0] ** 3]])

    a, b = 2.0, -0.5
    J = richardson_jacobian(f, np.array([a, b]))
    want = np.array([[[b, 1 / a], [0.0, 3 * a**2]], [[a, 0.0], [np.exp(b), 0.0]]])
    # closed form; extrapolated first differences are accurate to ~1e-11
    _close(J, want, rtol=1e-9, atol=1e-12)


def test_pseudo_inverse_drops_and_reports_non_positive_directions():
    Q = np.linalg.qr(np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [2.0, 0.0, 1.0]]))[0]
    H = Q @ np.diag([4.0, -1.0, 0.0]) @ Q.T
    with pytest.warns(ConvergenceWarning) as record:
        inv = _pseudo_inverse(H)
    messages = " ".join(str(w.message) for w in record)
    assert "negative: -1.0e+00" in messages and "close to zero" in messages
    # only the eigenvalue 4 is inverted (closed form; an eigendecomposition of a 3x3:
    # rounding only)
    _close(inv, np.outer(Q[:, 0], Q[:, 0]) / 4.0, rtol=1e-10, atol=1e-12)
