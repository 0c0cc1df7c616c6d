"""Chapter "Checking a mixed model": leverages, Cook's distances, refits and simulation
checks, against closed forms and lme4.

lme4 values: tests/reference/fixtures/pages/diagnostics.json (book_pages.R, R 4.2.2,
lme4 1.1-31, tight nloptwrap tolerances): hatvalues and cooks.distance of
``arm ~ ageC + (ageC | id)``, the refit without children 57 and 105, the ML random
intercept and the pig random-slope model.  Course values: seed 001 (the refit without
children 57 and 105).

The closed form of the leverages is dense and independent of lmmlib's sparse code:
with V/σ² = I + ZΛΛ'Z' (a function of θ only), H = I − σ²P and
σ²P = (V/σ²)⁻¹ − (V/σ²)⁻¹X(X'(V/σ²)⁻¹X)⁻¹X'(V/σ²)⁻¹.

Tolerances (tests/conftest.py): the same closed form at the same θ agrees to
rounding; lmmlib's optimum against lme4's moves a function of θ by its curvature bound
under OPT_GAP (``model_spread``); simulated means within four Monte Carlo standard
errors plus the small-sample bias of Pearson's r, |E r − ρ| ≤ ρ(1 − ρ²)/(2(n − 1)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import course_data, course_value, model_spread, profiled_at, reference
from test_chapters import executed, glued, number

import lmmlib

SLOPE = "arm ~ ageC + (ageC | id)"


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {key: number(text) for key, text in glued(executed("diagnostics")).items()}


@pytest.fixture(scope="module")
def lme4() -> dict:
    return reference("pages", "diagnostics")


@pytest.fixture(scope="module")
def nepal():
    return course_data("nepal")


def slope_design(data):
    """X, y, the child codes and ageC of the Nepal random-slope model."""
    age = data["ageC"].to_numpy(float)
    X = np.column_stack([np.ones(len(data)), age])
    codes = data["id"].astype("category").cat.codes.to_numpy()
    return X, data["arm"].to_numpy(float), codes, age


def hat_and_residuals(theta, data):
    """Dense leverages and conditional residuals of the random-slope model at θ."""
    X, y, codes, age = slope_design(data)
    n, k = len(y), codes.max() + 1
    Z = np.zeros((n, 2 * k))
    Z[np.arange(n), 2 * codes] = 1.0
    Z[np.arange(n), 2 * codes + 1] = age
    lam = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    ZL = Z @ np.kron(np.eye(k), lam)
    W = np.linalg.inv(np.eye(n) + ZL @ ZL.T)             # (V/σ²)⁻¹
    WX = W @ X
    P = W - WX @ np.linalg.solve(X.T @ WX, WX.T)          # σ²P
    return 1.0 - np.diag(P), P @ y                         # h, y − Hy


def cooks(theta, sigma, data):
    h, r = hat_and_residuals(theta, data)
    return (r / (1 - h)) ** 2 * h / (sigma**2 * 2)


@pytest.fixture(scope="module")
def slope_fit(nepal):
    return lmmlib.lmer(SLOPE, nepal)


def test_dense_closed_form_reproduces_lme4(lme4, nepal):
    # lme4's hatvalues and cooks.distance at lme4's θ and σ: the same formulas, rounding
    # of an 882 x 882 solve only (1e-9)
    fx = lme4["nepal_slope"]
    sigma = fx["varcorr"]["sdcor"][-1]
    h, _ = hat_and_residuals(fx["theta"], nepal)
    assert h == pytest.approx(np.array(lme4["hatvalues"]), abs=1e-9)
    assert h.sum() == pytest.approx(lme4["hat_sum"], abs=1e-8)
    d = cooks(fx["theta"], sigma, nepal)
    assert d == pytest.approx(np.array(lme4["cooks_distance"]), rel=1e-7, abs=1e-10)


def test_leverages_and_cooks_distances(values, lme4, nepal, slope_fit):
    # at lmmlib's own θ and σ: the dense closed form, rounding only
    theta, sigma = slope_fit.theta, slope_fit.sigma
    h, r = hat_and_residuals(theta, nepal)
    assert values["hat_sum"] == pytest.approx(h.sum(), abs=1e-8)
    assert 2 < values["hat_sum"] < values["hat_hi"] == 394
    d = cooks(theta, sigma, nepal)
    per_child = pd_sum(d, nepal["id"])
    assert values["top_child"] == per_child.idxmax() == 162
    assert values["top_child_d"] == pytest.approx(per_child.max(), rel=1e-8)
    # lme4's sum for the same child, plus how far lmmlib's optimum can move it
    lme4_child = pd_sum(np.array(lme4["cooks_distance"]), lme4["id"])
    spread = model_spread(slope_fit, lambda th: np.array([pd_sum(
        cooks(th, profiled_at(slope_fit, th)["sigma"], nepal), nepal["id"])[162]]))[0]
    assert values["top_child_d"] == pytest.approx(lme4_child[162], abs=1e-9 + spread)
    # the course's children 57 and 105 rank 4th and 5th by lme4's Cook's distances too
    ranking = list(lme4_child.sort_values(ascending=False).index)
    assert values["rank_57"] == ranking.index(57) + 1 == 4
    assert values["rank_105"] == ranking.index(105) + 1 == 5
    # the extreme BLUPs (intercept lowest, slope highest) are the course's children 105
    # and 57 (seed 001 drops them)
    assert values["low_int_child"] == 105
    assert values["fast_child"] == 57
    # scaled conditional residuals beyond ±3: the dense residuals / σ̂
    assert values["n_big_res"] == int((np.abs(r / sigma) > 3).sum())


def pd_sum(d, ids) -> pd.Series:
    """Sum of per-observation values by child."""
    return pd.Series(np.asarray(d), index=np.asarray(ids)).groupby(level=0).sum()


def test_simulation_check_of_the_random_intercept(values):
    # observed: Pearson correlation of the week-1 and week-9 columns (closed form)
    pig = course_data("pig")
    wide = pig.pivot(index="id", columns="weeks", values="weight")
    assert values["sim_observed"] == pytest.approx(np.corrcoef(wide[1], wide[9])[0, 1],
                                                   abs=1e-12)
    # simulated: E r = ICC = τ²/(τ² + σ²) of the fit (pig_reml: 0.77505) up to the bias
    # of r with 48 pigs (ρ(1 − ρ²)/94 = 0.0033) and 4 MC standard errors (sd/√1000)
    icc = values["sim_icc"]
    assert icc == pytest.approx(15.1418485 / (15.1418485 + 4.3947089), abs=1e-5)
    bias = icc * (1 - icc**2) / (2 * 47)
    mcse = values["sim_sd"] / np.sqrt(values["sim_n"])
    assert values["sim_mean"] == pytest.approx(icc, abs=bias + 4 * mcse)
    # the observed value lies 3.4 simulated SDs below the mean: even r's left skew puts
    # well under 1 % there; 0.02 leaves room for the MC error of 1000 draws
    assert (values["sim_mean"] - values["sim_observed"]) / values["sim_sd"] > 3
    assert values["sim_p"] < 0.02


# -- exercises ----------------------------------------------------------------------


def test_exercise_leverage_of_single_visits(values, nepal, slope_fit):
    h, _ = hat_and_residuals(slope_fit.theta, nepal)
    once = (nepal.groupby("id")["id"].transform("size") == 1).to_numpy()
    assert values["ex_n_once"] == once.sum() == 7
    # dense closed form at the same θ: rounding only
    assert values["ex_lev_once"] == pytest.approx(h[once].mean(), abs=1e-9)
    # the linear model: h = 1/n + (x - x̄)²/Sxx, rounding only
    age = nepal["ageC"].to_numpy(float)
    h_lm = 1 / len(age) + (age - age.mean()) ** 2 / ((age - age.mean()) ** 2).sum()
    assert values["ex_lev_once_lm"] == pytest.approx(h_lm[once].mean(), rel=1e-10)


def test_exercise_em_identity(values, lme4, nepal):
    # lme4's ML τ² of arm ~ ageC + (1 | id) (tight fit); the identity τ² = mean(b̂² +
    # var(b|y)) is the stationarity condition, exact at the optimum: both sides within
    # the curvature spread of τ² at lmmlib's optimum (first order in θ)
    fit = lmmlib.lmer("arm ~ ageC + (1 | id)", nepal, reml=False)
    spread = model_spread(fit, lambda th: profiled_at(fit, th)["varcorr"]["vcov"].to_numpy()[:1])[0]
    tau2 = lme4["nepal_ri_ml"]["varcorr"]["vcov"][0]
    assert values["ex_tau2_ml"] == pytest.approx(tau2, abs=1e-10 + spread)
    assert values["ex_em"] == pytest.approx(tau2, abs=1e-10 + 2 * spread)
    assert values["ex_em_diff"] < 2 * spread
    assert values["ex_blup_msq"] < values["ex_tau2_ml"]


def test_exercise_refit_without_children_57_and_105(values, lme4, nepal):
    # seed 001 prints 13.949133 and 0.031182 for the refit without children 57 and 105;
    # lme4 (book_pages.R) to 15 digits; lmmlib's optimum moves β̂ by its spread
    fit = lmmlib.lmer(SLOPE, nepal[~nepal["id"].isin([57, 105])])
    s_int, s_age = model_spread(fit, lambda th: profiled_at(fit, th)["beta"])
    assert values["ex_drop_int"] == course_value(13.949133, 6, s_int)
    assert values["ex_drop_age"] == course_value(0.031182, 6, s_age)
    beta = lme4["nepal_drop_57_105"]["beta"]["values"]
    assert values["ex_drop_int"] == pytest.approx(beta[0], abs=1e-10 + s_int)
    assert values["ex_drop_age"] == pytest.approx(beta[1], abs=1e-10 + s_age)
    assert values["ex_drop_shift_se"] < 1
    assert values["ex_top_shift_se"] < 1


def test_exercise_random_slope_simulation_check(values, lme4):
    # implied corr(y_1, y_9) from lme4's variance components of weight ~ weeks +
    # (weeks | id): cov = τ0² + τ01 (1 + 9) + τ1² · 9, var_t = τ0² + 2 τ01 t + τ1² t² + σ²
    t0, t1, t01, s2 = lme4["pig_slope"]["varcorr"]["vcov"]

    def var(t):
        return t0 + 2 * t01 * t + t1 * t**2 + s2

    implied = (t0 + 10 * t01 + 9 * t1) / np.sqrt(var(1) * var(9))
    # lmmlib's optimum moves the correlation (a function of θ: V/σ² = I + ZΛΛ'Z')
    fit = lmmlib.lmer("weight ~ weeks + (weeks | id)", course_data("pig"))

    def corr(th):
        lam = np.array([[th[0], 0.0], [th[1], th[2]]])
        g = lam @ lam.T
        z1, z9 = np.array([1.0, 1.0]), np.array([1.0, 9.0])
        return np.array([z1 @ g @ z9 / np.sqrt((z1 @ g @ z1 + 1) * (z9 @ g @ z9 + 1))])

    assert corr(lme4["pig_slope"]["theta"])[0] == pytest.approx(implied, abs=1e-9)
    spread = model_spread(fit, corr)[0]
    assert values["ex_slope_implied"] == pytest.approx(implied, abs=1e-9 + spread)
    # simulations: 4 MC standard errors plus the bias of r with 48 pigs
    rho = values["ex_slope_implied"]
    bias = rho * (1 - rho**2) / (2 * 47)
    mcse = values["ex_slope_sim_sd"] / np.sqrt(1000)
    assert values["ex_slope_sim_mean"] == pytest.approx(rho, abs=bias + 4 * mcse)
    # the observed correlation is an ordinary value under this model
    assert 0.05 < values["ex_slope_p"] < 0.95
