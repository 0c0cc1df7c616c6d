"""Numerical and data edge cases of the fitting engine.

Each case either gives the right answer, whose source is named next to the
assertion (a closed form, ``lm``, statsmodels MixedLM, or R lme4 1.1-31 run on
the same data), or a clear lmmlib warning or error.

Tolerances: closed forms evaluated at the fit's own numbers are exact up to
rounding (1e-10 relative, or 1e-8 where the closed form is lm's solve of the same
least-squares problem); two fits of the same problem in another representation
(dtype, missing rows, unused categories, scaled covariates) agree at the
optimiser's accuracy: SAME_OPTIMUM for the criterion, SAME_OPTIMUM_SE standard
errors for β, the curvature bound for θ and the BLUPs (tests/conftest.py).
Any of the mistakes these cases guard against (a dropped or duplicated level,
a lost row, a misscaled column) changes the criterion by O(1).
"""

from __future__ import annotations

import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import (
    OPT_GAP,
    SAME_OPTIMUM_SE,
    CurvatureBound,
    curvature_tolerance,
    profiled_at,
    same_optimum,
    theta_curvature_tolerance,
)

import lmmlib
from lmmlib.engine.varcomp import term_covariances

LMMLIB_WARNINGS = (lmmlib.ConvergenceWarning, lmmlib.DataWarning, lmmlib.SingularFitWarning)


def assert_same_fit(m, ref, blups: bool = False) -> None:
    """``m`` fits ``ref``'s problem (the same data in another representation)."""
    assert m.objective == same_optimum(ref.objective)
    np.testing.assert_array_less(np.abs(m.fixef.to_numpy() - ref.fixef.to_numpy()),
                                 SAME_OPTIMUM_SE * ref.se.to_numpy())
    np.testing.assert_array_less(np.abs(m.theta - ref.theta) - 1e-12,
                                 2 * theta_curvature_tolerance(ref, OPT_GAP))
    if blups:  # in the same (sorted or category) level order
        tol = 2 * CurvatureBound(ref, OPT_GAP)(lambda th: profiled_at(ref, th)["blups"][0])
        diff = np.abs(m.ranef_arrays()["g"].to_numpy().ravel()
                      - ref.ranef_arrays()["g"].to_numpy().ravel())
        np.testing.assert_array_less(diff - 1e-12, tol)


def fit_recording(formula: str, data: pd.DataFrame, reml: bool = True):
    """Fit and return the model with the list of lmmlib warning classes it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lmmlib.lmer(formula, data, reml=reml)
    return m, [w.category for w in caught if issubclass(w.category, LMMLIB_WARNINGS)]


def group_centred(values: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``values`` minus their group means."""
    return values - pd.Series(values).groupby(g).transform("mean").to_numpy()


def dense_criterion(X: np.ndarray, y: np.ndarray, V: np.ndarray, reml: bool) -> float:
    """−2 log L (or the REML criterion) of y ~ N(Xβ, V) at the GLS β̂, from dense V."""
    n, p = X.shape
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    r = y - X @ np.linalg.solve(XtViX, X.T @ Vi @ y)
    crit = np.linalg.slogdet(V)[1] + r @ Vi @ r + (n - p * reml) * np.log(2 * np.pi)
    return float(crit + (np.linalg.slogdet(XtViX)[1] if reml else 0.0))


# -- near-singular fits ---------------------------------------------------------------

def _no_between_variance(tau: float) -> pd.DataFrame:
    """Balanced data whose errors and x are centred within groups (+ tiny group effects)."""
    rng = np.random.default_rng(11)
    k, n_i = 8, 5
    g = np.repeat(np.arange(k), n_i)
    x = group_centred(rng.normal(size=k * n_i), g)
    e = group_centred(rng.normal(size=k * n_i), g)
    y = 2.0 + 3.0 * x + e + tau * rng.normal(size=k)[g]
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("tau", [0.0, 1e-6, 1e-3])
def test_vanishing_group_variance_is_a_singular_fit_equal_to_lm(tau, reml):
    # closed form: the between-group mean square (≤ 5·(1e-3)² ≈ 5e-6) is far
    # below the within one (~0.5), so τ̂² = 0 (REML and ML) and the fit is lm's
    data = _no_between_variance(tau)
    m, caught = fit_recording("y ~ x + (1 | g)", data, reml)
    ref = lmmlib.lm("y ~ x", data)
    assert lmmlib.SingularFitWarning in caught
    assert m.is_singular and m.opt.boundary == (0,)
    assert m.theta[0] < 1e-6
    assert m.varcorr["vcov"].iloc[0] < 1e-12 * m.sigma**2
    # at θ = 0 (lmmlib lands on the bound exactly here) the model is lm's: the same
    # least-squares solve by two code paths, rounding only (seen 4e-16); a θ of 1e-6
    # would change β by O(θ²) = 1e-12
    np.testing.assert_allclose(m.fixef, ref.fixef, rtol=1e-10, atol=1e-12)
    n, p = ref.nobs, len(ref.fixef)
    sigma = ref.sigma if reml else ref.sigma * np.sqrt((n - p) / n)  # RSS/(n−p) or RSS/n
    # closed forms from lm's RSS; 1e-8 is far below the REML/ML factor sqrt(38/40)
    assert m.sigma == pytest.approx(sigma, rel=1e-8)
    np.testing.assert_allclose(m.se, ref.se * sigma / ref.sigma, rtol=1e-8)
    if reml:  # REML criterion of lm: (n−p)(1 + log(2π RSS/(n−p))) + log|X'X|
        X = m.design.X
        rss = ref.sigma**2 * (n - p)
        closed = (n - p) * (1 + np.log(2 * np.pi * rss / (n - p))) + np.linalg.slogdet(X.T @ X)[1]
        assert m.objective == pytest.approx(closed, rel=1e-10)  # closed form, rounding only
    else:
        assert m.objective == pytest.approx(ref.objective, rel=1e-10)  # lm's deviance


# -- perfectly correlated random slopes ------------------------------------------------

def _perfectly_correlated(corr: int, seed: int = 0, k: int = 20, n_i: int = 6) -> pd.DataFrame:
    """Random intercept 2a and slope ±a (correlation ±1); errors orthogonal to each
    group's (1, x), so every group's least-squares line is exactly (1 + 2a, 0.5 ± a)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(k), n_i)
    x = np.tile(np.arange(n_i, dtype=float), k)
    a = rng.normal(size=k)
    B = np.column_stack([np.ones(n_i), np.arange(n_i, dtype=float)])
    e = (rng.normal(size=(k, n_i)) @ (np.eye(n_i) - B @ np.linalg.pinv(B))).ravel()
    y = 1.0 + 0.5 * x + 2.0 * a[g] + corr * a[g] * x + 0.5 * e
    return pd.DataFrame({"y": y, "x": x, "g": g, "a": a[g]})


# R lme4 1.1-31, lmer(y ~ x + (x | g), optCtrl xtol_abs = ftol_abs = 1e-12) on the
# same data (written to CSV from _perfectly_correlated): -2 logLik, all singular.
LME4_PERFECT_CORR = {(1, True): 268.8742240886, (1, False): 264.8674155249,
                     (-1, True): 231.0635599633, (-1, False): 225.0667164456}


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("corr", [1, -1])
def test_perfectly_correlated_random_slopes_hit_the_boundary(corr, reml):
    data = _perfectly_correlated(corr)
    m, caught = fit_recording("y ~ x + (x | g)", data, reml)
    assert lmmlib.SingularFitWarning in caught
    assert m.is_singular and m.opt.boundary == (2,)  # θ_22: Λ has rank 1
    sd_int, sd_x, r, _ = m.varcorr["sdcor"]  # lme4's row order: SDs, correlation, residual
    assert list(m.varcorr["var2"].fillna("")) == ["", "", "x", ""]
    # Λ of rank 1 has correlation ±1 exactly, up to rounding (θ_22 = 0, or 1e-7 for
    # one ML fit, whose effect on the correlation is O(θ_22²/θ_21²) = 1e-15)
    assert r == pytest.approx(corr, abs=1e-8)
    # closed form: the group lines lie on the line of direction (2, ±1), so the
    # slope SD is half the intercept SD; the optimiser reaches that ratio to within
    # the curvature bound of its gap (θ_11 and θ_21 are free; seen ≤ 3e-8)
    ratio_tol = curvature_tolerance(m, lambda th: [abs(th[1]) / th[0]], OPT_GAP)[0]
    assert sd_x / sd_int == pytest.approx(0.5, abs=ratio_tol + 1e-12)
    # β̂ is the mean line whatever θ (balanced design: GLS = OLS), so rounding only
    a_bar = data.groupby("g")["a"].first().mean()
    np.testing.assert_allclose(m.fixef, [1.0 + 2.0 * a_bar, 0.5 + corr * a_bar], rtol=1e-8)
    # lme4's tight refit, printed to 10 decimals (±5e-11): SAME_OPTIMUM (seen 3e-11)
    assert m.objective == same_optimum(LME4_PERFECT_CORR[corr, reml])


# -- tiny groups ----------------------------------------------------------------------

def _tiny_groups(slope: bool) -> pd.DataFrame:
    """30 groups of one row and 10 groups of six rows."""
    rng = np.random.default_rng(5)
    sizes = [1] * 30 + [6] * 10
    k = len(sizes)
    g = np.repeat(np.arange(k), sizes)
    x = rng.normal(size=g.size)
    b = rng.normal(size=(k, 2)) * [1.0, 0.5 * slope]
    y = 1.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + 0.7 * rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _statsmodels_fit(data: pd.DataFrame, re_formula: str | None, reml: bool):
    """statsmodels MixedLM, best log-likelihood over three optimisers (as in
    test_crosscheck_statsmodels.py)."""
    smf = pytest.importorskip("statsmodels.formula.api")
    model = smf.mixedlm("y ~ x", data, groups=data["g"], re_formula=re_formula)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, kw in (("lbfgs", {"maxiter": 10_000}),
                           ("bfgs", {"gtol": 1e-10, "maxiter": 10_000}),
                           ("powell", {"ftol": 1e-14, "maxiter": 10_000})):
            try:
                res = model.fit(reml=reml, method=[method], **kw)
            except np.linalg.LinAlgError:
                continue
            if np.isfinite(res.llf) and (best is None or res.llf > best.llf):
                best = res
    assert best is not None
    return best


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("slope", [False, True], ids=["intercept", "slope"])
def test_singleton_groups_mixed_with_larger_ones(slope, reml):
    data = _tiny_groups(slope)
    formula = "y ~ x + (x | g)" if slope else "y ~ x + (1 | g)"
    m, caught = fit_recording(formula, data, reml)
    assert caught == [] and m.opt.converged and not m.is_singular
    # reference 1: statsmodels MixedLM 0.15.0 (independent implementation), compared as
    # in test_crosscheck_statsmodels.py: log-likelihoods within OPT_GAP (both optimisers
    # tight; seen ≤ 2e-12), so both optima are within 3·OPT_GAP of the minimum criterion
    # and the estimates within twice the curvature bound of that gap, plus rounding:
    # 2e-4 relative for the random-intercept covariance, 2.5e-3 for the slope model's
    # (seen ≤ 0.2 % of the bound); ML against REML misses by far more
    res = _statsmodels_fit(data, "~x" if slope else None, reml)
    assert m.loglik == pytest.approx(res.llf, abs=OPT_GAP)
    bound = CurvatureBound(m, 3 * OPT_GAP)

    def matches(ours, theirs, quantity, what):
        tol = 2 * bound(quantity) + 1e-10 * np.abs(np.ravel(theirs))
        assert np.all(np.abs(np.ravel(ours) - np.ravel(theirs)) <= tol), (what, ours, theirs)

    matches(m.fixef.to_numpy(), res.fe_params.to_numpy(),
            lambda th: profiled_at(m, th)["beta"], "fixef")
    matches(m.covariances()["g"], res.cov_re.to_numpy(),
            lambda th: term_covariances(th, profiled_at(m, th)["sigma"], m.design.reterms)[0],
            "covariance of the random effects")
    matches(m.sigma**2, res.scale, lambda th: [profiled_at(m, th)["sigma"] ** 2], "sigma^2")
    # reference 2: closed form, the criterion from the dense V = Z Σ Z' + σ² I
    Z = (data["g"].to_numpy()[:, None] == np.arange(40)).astype(float)
    Zx = Z * data["x"].to_numpy()[:, None]
    S = m.covariances()["g"]
    V = S[0, 0] * Z @ Z.T + m.sigma**2 * np.eye(len(data))
    if slope:
        V += S[1, 1] * Zx @ Zx.T + S[0, 1] * (Z @ Zx.T + Zx @ Z.T)
    # the same criterion at the same parameters, from the dense 80x80 V: rounding only
    assert m.objective == pytest.approx(dense_criterion(m.design.X, m.design.y, V, reml),
                                        rel=1e-10)


def test_all_singleton_groups_are_refused():
    # one row per group: the group and residual variances are not identifiable
    data = _tiny_groups(False).drop_duplicates("g")
    with pytest.raises(lmmlib.DataError, match="30 levels|40 levels"):
        lmmlib.lmer("y ~ x + (1 | g)", data)


def test_no_residual_information_is_refused_or_warned():
    # 20 singleton groups and one pair: rank[X Z] = 21 levels + x = n = 22, so y is
    # interpolated exactly as θ -> ∞ and the ML deviance -> −∞ (closed form:
    # ≈ 2(k − n)·log θ).  lmmlib (like lme4 1.1-31) stops at θ = 1.32 (deviance
    # 67.46) although the deviance at θ = 1e6 is 48.74 (lme4's devfun: 48.74).
    rng = np.random.default_rng(5)
    sizes = [1] * 20 + [2]
    g = np.repeat(np.arange(21), sizes)
    x = rng.normal(size=22)
    y = 1.0 + 0.5 * x + rng.normal(size=21)[g] + 0.7 * rng.normal(size=22)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    try:
        m, caught = fit_recording("y ~ x + (1 | g)", data, reml=False)
    except lmmlib.DataError:
        return  # refusing is a right answer
    best, far = float(m.objective), m.pls.objective(np.array([1e6]), False)
    assert far < best - 10, (far, best)  # the deviance is unbounded below (67.46 vs 48.74)
    assert caught, f"no warning; deviance {best:.2f} at θ = {m.theta}, {far:.2f} at θ = 1e6"


# -- huge offsets in y ---------------------------------------------------------------

def _offset_data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    k, n_i = 12, 5
    g = np.repeat(np.arange(k), n_i)
    x = rng.normal(size=k * n_i)
    b = rng.normal(size=(k, 2)) * [1.0, 0.4]
    y = 0.5 * x + b[g, 0] + b[g, 1] * x + 0.3 * rng.normal(size=k * n_i)
    return pd.DataFrame({"y": y, "x": x, "g": g})


# relative agreement of the criterion: y + 1e8 is stored to ulp 1.5e-8, i.e. its
# noise (SD 0.3) only to ~5e-8 relative, which bounds what any fit can reproduce (seen
# 2.8e-9 at 1e8, 5e-11 at 1e6); SAME_OPTIMUM would not hold for the perturbed data
OFFSET_OBJ_RTOL = {1e6: 1e-9, 1e8: 1e-8}
# parameters: the rounded y moves the optimum by ~1e-8 relative of the noise, the
# optimisers by SAME_OPTIMUM_SE standard errors; 1e-6 relative (variances, σ) and 1e-6
# SE (β) cover both (seen ≤ 6e-8 relative, 2e-8 SE)
OFFSET_PAR_RTOL = 1e-6


@pytest.mark.parametrize("offset", list(OFFSET_OBJ_RTOL))
@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)"])
def test_huge_offset_in_y_moves_only_the_intercept(formula, offset):
    # closed form: y + c shifts the intercept by c and leaves θ, σ, the criterion unchanged
    data = _offset_data()
    ref = lmmlib.lmer(formula, data)
    m, caught = fit_recording(formula, data.assign(y=data["y"] + offset))
    assert caught == []
    shifted = m.fixef.to_numpy() - [offset, 0.0]
    np.testing.assert_allclose(shifted, ref.fixef.to_numpy(), rtol=0,
                               atol=OFFSET_PAR_RTOL * ref.se.max())
    np.testing.assert_allclose(m.varcorr["vcov"], ref.varcorr["vcov"], rtol=OFFSET_PAR_RTOL,
                               atol=OFFSET_PAR_RTOL * ref.sigma**2)
    assert m.sigma == pytest.approx(ref.sigma, rel=OFFSET_PAR_RTOL)
    assert m.objective == pytest.approx(ref.objective, rel=OFFSET_OBJ_RTOL[offset])


# -- badly scaled covariates ------------------------------------------------------------

@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("units", [(1e6, 1.0), (1e-6, 1.0), (1e6, 1e-6)],
                         ids=["x_e6", "x_e-6", "x_e6_x2_e-6"])
def test_badly_scaled_fixed_covariates(units, reml):
    # closed form: X -> X·D (D = diag(1, c1, c2)) scales β̂ by D⁻¹ and leaves the
    # fitted values, θ, σ and the deviance unchanged; the REML criterion gains
    # log|D|² = 2 log(c1·c2) through log|X'V⁻¹X|
    data = _offset_data()
    data["x2"] = np.random.default_rng(3).normal(size=len(data))
    data["y"] += 0.3 * data["x2"]
    c1, c2 = units
    formula = "y ~ x + x2 + (1 | g)"
    ref = lmmlib.lmer(formula, data, reml=reml)
    m, caught = fit_recording(formula, data.assign(x=data["x"] * c1, x2=data["x2"] * c2), reml)
    # the answer is exact, and the scales are flagged as lme4's checkScaleX does
    assert caught == [lmmlib.DataWarning]
    # the same optimum in other units, at the optimisers' accuracy: SAME_OPTIMUM_SE
    # standard errors for β and the fitted values, the curvature bound for the SEs
    # (8e-5 relative) and the variances (seen ≤ 4e-8 relative throughout; lmmlib's solves
    # are not hurt by the 1e±6 column scales)
    se_tol = SAME_OPTIMUM_SE * ref.se.to_numpy()
    np.testing.assert_array_less(np.abs(m.fixef.to_numpy() * [1.0, c1, c2]
                                        - ref.fixef.to_numpy()), se_tol)
    se_bound = 2 * curvature_tolerance(ref, lambda th: profiled_at(ref, th)["se"], OPT_GAP)
    np.testing.assert_array_less(np.abs(m.se.to_numpy() * [1.0, c1, c2] - ref.se.to_numpy()),
                                 se_bound + 1e-12)
    np.testing.assert_allclose(m.fitted, ref.fitted, rtol=0, atol=SAME_OPTIMUM_SE * ref.sigma)
    vcov_tol = 2 * curvature_tolerance(ref, lambda th: profiled_at(ref, th)["varcorr"]["vcov"]
                                       .to_numpy(), OPT_GAP)
    np.testing.assert_array_less(np.abs(m.varcorr["vcov"] - ref.varcorr["vcov"]) - 1e-12,
                                 vcov_tol)
    # closed form: the REML criterion gains log|D|² = 2 log(c1·c2); SAME_OPTIMUM
    shift = 2.0 * np.log(c1 * c2) if reml else 0.0
    assert m.objective == same_optimum(ref.objective + shift)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("c", [1e6, 1e-6], ids=["x_e6", "x_e-6"])
@pytest.mark.parametrize("formula", [
    "y ~ x + (x | g)",
    pytest.param("y ~ x + (x || g)", id="y ~ x + (x || g)"),
])
def test_badly_scaled_random_slope_is_right_or_warned(request, formula, c, reml):
    # closed form: the model for x·c is the same model (Λ's slope row scaled by
    # 1/c), so the criterion is the reference's (+ 2 log c for REML) and the fitted
    # values are the same.  R lme4 1.1-31 gets these wrong too, but warns "Some
    # predictor variables are on very different scales: consider rescaling".
    data = _offset_data()
    ref = lmmlib.lmer(formula, data, reml=reml)
    m, caught = fit_recording(formula, data.assign(x=data["x"] * c), reml)
    expected = ref.objective + (2.0 * np.log(c) if reml else 0.0)
    # "right" at a generous 1e-6 in the criterion (20x SAME_OPTIMUM) and 1e-4 σ in the
    # fitted values: a fit that misses is off by far more, and then must have warned
    right = (abs(m.objective - expected) < 1e-6
             and np.allclose(m.fitted, ref.fitted, rtol=0, atol=1e-4 * ref.sigma))
    warned = lmmlib.ConvergenceWarning in caught or lmmlib.DataWarning in caught
    assert right or warned, (f"criterion {m.objective:.6f} vs {expected:.6f}, "
                             f"warnings {caught}")


# -- grouping factor with as many levels as rows --------------------------------------

@pytest.mark.parametrize(("formula", "kind"), [
    ("y ~ x + (1 | id)", "int"), ("y ~ x + (1 | id)", "str"),
    ("y ~ x + (1 | id)", "categorical"), ("y ~ x + (x | id)", "int"),
    ("y ~ x + (1 | g) + (1 | id)", "int"),
])
def test_one_level_per_row_is_refused_quickly_and_cheaply(formula, kind):
    n = 200_000
    rng = np.random.default_rng(1)
    ids = np.arange(n)
    col = {"int": ids, "str": pd.Series(ids).astype(str).radd("s"),
           "categorical": pd.Categorical(ids)}[kind]
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "id": col,
                         "g": ids % 50})
    start = time.perf_counter()
    with pytest.raises(lmmlib.DataError, match="200000 levels"):
        lmmlib.lmer(formula, data)
    assert time.perf_counter() - start < 2.0  # seconds, loosely (a dense Z would take minutes)
    tracemalloc.start()
    try:
        with pytest.raises(lmmlib.DataError):
            lmmlib.lmer(formula, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB"


# -- missing grouping levels ---------------------------------------------------------

def _grouped(k: int = 10, n_i: int = 4, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(k), n_i)
    x = rng.normal(size=k * n_i)
    y = x + rng.normal(size=k)[g] + rng.normal(size=k * n_i)
    return pd.DataFrame({"y": y, "x": x, "g": g})


NAN_ROWS = [3, 17, 22]


def _with_missing(col: pd.Series, missing) -> pd.Series:
    col = col.copy()
    col.iloc[NAN_ROWS] = missing
    return col


GROUP_COLUMNS_WITH_NAN = {
    "float": lambda g: _with_missing(pd.Series(g, dtype=float), np.nan),
    "object_None": lambda g: _with_missing(pd.Series([f"g{v}" for v in g], dtype=object), None),
    "str": lambda g: _with_missing(pd.Series([f"g{v}" for v in g], dtype="str"), np.nan),
    "string": lambda g: _with_missing(pd.Series([f"g{v}" for v in g], dtype="string"), pd.NA),
    "categorical": lambda g: _with_missing(pd.Series(pd.Categorical(g)), np.nan),
    "Int64": lambda g: _with_missing(pd.Series(g, dtype="Int64"), pd.NA),
}


@pytest.mark.parametrize("kind", list(GROUP_COLUMNS_WITH_NAN))
def test_missing_group_level_drops_rows_with_a_warning(kind):
    data = _grouped()
    col = GROUP_COLUMNS_WITH_NAN[kind](data["g"].to_numpy())
    assert data.assign(g=col)["g"].isna().sum() == len(NAN_ROWS)
    with pytest.warns(lmmlib.DataWarning, match=r"dropped 3 of 40 rows .*g: 3"):
        m = lmmlib.lmer("y ~ x + (1 | g)", data.assign(g=col))  # keeps col's dtype
    # reference: the same model on the complete rows only
    ref = lmmlib.lmer("y ~ x + (1 | g)", data.drop(index=NAN_ROWS))
    assert m.nobs == 37 and m.ngroups["g"] == 10
    assert_same_fit(m, ref)


def test_level_whose_rows_are_all_dropped_disappears():
    data = _grouped()
    y = data["y"].where(data["g"] != 3)  # every row of group 3 has a missing response
    g = pd.Categorical(data["g"], categories=range(10))
    with pytest.warns(lmmlib.DataWarning, match="dropped 4 of 40 rows"):
        m = lmmlib.lmer("y ~ x + (1 | g)", data.assign(y=y, g=g))
    assert m.ngroups["g"] == 9 and "3" not in m.ranef_arrays()["g"].index
    ref = lmmlib.lmer("y ~ x + (1 | g)", data[data["g"] != 3])
    assert m.objective == same_optimum(ref.objective)


# -- unused categories ---------------------------------------------------------------

def _treatments() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    k, n_i = 10, 6
    g = np.repeat(np.arange(k), n_i)
    trt = np.tile(["a", "b", "c"], k * n_i // 3)
    effect = pd.Series({"a": 0.0, "b": 1.0, "c": -0.5})[trt].to_numpy()
    y = effect + rng.normal(size=k)[g] + rng.normal(size=k * n_i)
    return pd.DataFrame({"y": y, "trt": trt, "g": g})


def _fit_quietly(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.DataWarning)
        return lmmlib.lmer(formula, data)


def _fit_quietly_singular(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.SingularFitWarning)
        return lmmlib.lmer(formula, data)


@pytest.mark.parametrize("categories", [["a", "b", "c", "d"], ["a", "d", "b", "c"]])
def test_unused_category_leaves_the_fit_unchanged(categories):
    data = _treatments()
    ref = lmmlib.lmer("y ~ trt + (1 | g)", data)  # reference: no unused category
    m = _fit_quietly("y ~ trt + (1 | g)",
                     data.assign(trt=pd.Categorical(data["trt"], categories=categories)))
    assert (np.abs(m.design.X).sum(axis=0) > 0).all()  # no all-zero column left
    assert list(m.fixef.index) == list(ref.fixef.index)
    assert_same_fit(m, ref)


def test_unused_category_is_dropped_silently_as_in_lme4():
    # R lme4 1.1-31 drops unused levels first (model.frame, drop.unused.levels =
    # TRUE): no message, coefficients (Intercept), trtb, trtc
    data = _treatments()
    data["trt"] = pd.Categorical(data["trt"], categories=["a", "b", "c", "d"])
    m, caught = fit_recording("y ~ trt + (1 | g)", data)
    assert list(m.fixef.index) == ["(Intercept)", "trt[T.b]", "trt[T.c]"]
    assert caught == []


def test_unused_first_category_keeps_lme4s_reference_level():
    # R lme4 1.1-31 with factor(trt, levels = c("d", "a", "b", "c")) gives the
    # coefficients (Intercept), trtb, trtc: the first *used* level is the reference
    data = _treatments()
    ref = lmmlib.lmer("y ~ trt + (1 | g)", data)
    data["trt"] = pd.Categorical(data["trt"], categories=["d", "a", "b", "c"])
    m = _fit_quietly("y ~ trt + (1 | g)", data)
    assert list(m.fixef.index) == list(ref.fixef.index)
    assert_same_fit(m, ref)


def test_category_emptied_by_missing_values_is_dropped_silently():
    # R lme4 1.1-31: only the missing-value handling is reported; coefficients
    # (Intercept), trtb
    data = _treatments()
    data["trt"] = pd.Categorical(data["trt"])
    data.loc[data["trt"] == "c", "y"] = np.nan
    m, caught = fit_recording("y ~ trt + (1 | g)", data)
    assert list(m.fixef.index) == ["(Intercept)", "trt[T.b]"]
    assert caught == [lmmlib.DataWarning]  # the dropped rows, once


# -- dtype of the grouping column ----------------------------------------------------

GROUP_COLUMNS = {
    "int64": lambda g: g,
    "int8": lambda g: g.astype(np.int8),
    "uint16": lambda g: g.astype(np.uint16),
    "float": lambda g: g.astype(float),
    "Int64": lambda g: pd.array(g, dtype="Int64"),
    "str": lambda g: pd.Series([f"grp{v}" for v in g], dtype="str"),
    "object": lambda g: pd.Series([f"grp{v}" for v in g], dtype=object),
    "string": lambda g: pd.array([f"grp{v}" for v in g], dtype="string"),
    "categorical": lambda g: pd.Categorical(g),
    "categorical_str": lambda g: pd.Categorical([f"grp{v}" for v in g]),
}


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)"])
@pytest.mark.parametrize("kind", list(GROUP_COLUMNS))
def test_grouping_column_dtypes_give_identical_fits(kind, formula):
    # reference: the same fit with integer codes (the partition is all that matters)
    data = _grouped(k=8, n_i=5, seed=9)
    ref = _fit_quietly_singular(formula, data)
    m = _fit_quietly_singular(formula, data.assign(g=GROUP_COLUMNS[kind](data["g"].to_numpy())))
    assert m.ngroups["g"] == 8
    # after the factor coding the same problem (in practice bit-identical arrays and
    # fits, but not guaranteed so: another memory layout can change a BLAS kernel's
    # summation order), so at the optimiser's accuracy, BLUPs in the same level order
    assert_same_fit(m, ref, blups=True)


BOOL_COLUMNS = {
    "bool": lambda b: b,
    "boolean": lambda b: pd.array(b, dtype="boolean"),
    "int": lambda b: b.astype(int),
    "str": lambda b: np.where(b, "yes", "no"),
    "categorical": lambda b: pd.Categorical(b),
    "object": lambda b: pd.Series(list(b), dtype=object),
}


@pytest.mark.parametrize("kind", list(BOOL_COLUMNS))
def test_two_level_boolean_grouping_works_in_any_dtype(kind):
    data = _grouped(k=8, n_i=5, seed=9)
    b = (data["g"] % 2 == 0).to_numpy()
    ref = lmmlib.lmer("y ~ x + (1 | g)", data.assign(g=b.astype(int)))
    m = lmmlib.lmer("y ~ x + (1 | g)", data.assign(g=BOOL_COLUMNS[kind](b)))
    assert m.ngroups["g"] == 2
    # False < True, "no" < "yes": the level order, hence the BLUP order, is the same
    assert_same_fit(m, ref, blups=True)

