"""glmer on hard but legitimate data: separation, underflowing or overflowing
weights, factorisations that fail, bad arguments; never a numpy/LAPACK error.

Expected values come from limits that hold exactly, not from another program:

- quasi-complete separation by a factor level (or by the ties of a rounded
  covariate): as the separated coefficient goes to -inf (or +inf), the
  separated observations contribute exactly 0 to the deviance and their
  working weights go to 0, so the other parameters converge to the fit of the
  data without those observations (R's glm behaves the same: its finite
  coefficients are those of the reduced data);
- observations whose fitted probability is within 1e-15 of 0 or 1 contribute
  less than 1e-14 to the deviance, so adding them leaves the fit unchanged;
- a fit started far away (|eta| = 50) must reach the optimum of the default fit;
- the Laplace deviance of a random-intercept GLMM is a sum of one-dimensional
  Laplace integrals, recomputed here by Newton's method group by group.

Tolerances (see tests/conftest.py): two optima of one criterion agree within
SAME_OPTIMUM on the -2 log L scale; each stops at most OPT_GAP above its
minimum, so a parameter p of the two fits can differ by up to
2 sqrt(OPT_GAP) SE(p) (PARAM_SE below, ~4.5e-4 SE).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM
from scipy.special import expit

import lmmlib
from lmmlib.errors import ArgumentError, ConvergenceWarning, DataError
from lmmlib.glmm.family import MU_EPS, Binomial, Poisson
from lmmlib.glmm.fit import glmer
from lmmlib.glmm.laplace import FactorError
from lmmlib.glmm.separation import (
    SEPARATED_ETA,
    SeparationWarning,
    _certified_unseparated,
    find_separation,
)

PARAM_SE = 2.0 * np.sqrt(OPT_GAP)  # parameter tolerance in units of its SE


def quiet_fit(capfd, *args, **kwargs):
    """glmer with numpy's RuntimeWarnings as errors and nothing allowed on stderr.

    Returns the model and the lmmlib warnings it issued (the vcov fallback of a
    separated fit included, since ``se`` is evaluated here).
    """
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.simplefilter("error", RuntimeWarning)  # overflow, invalid value...
        model = glmer(*args, **kwargs)
        assert np.all(np.isfinite(model.se))
        assert np.isfinite(model.deviance)
    assert capfd.readouterr().err == ""  # no LAPACK "** On entry to DLASCL ..." noise
    return model, record


def messages(record, category=SeparationWarning) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, category)]


def close_params(m, ref, names):
    """θ and the named fixed effects of m equal those of ref within PARAM_SE standard errors.

    θ's SE is NaN on the boundary (θ = 0); there its scale is taken as 1.
    """
    diff = np.abs(m.fixef[names].to_numpy() - ref.fixef[names].to_numpy())
    tol = PARAM_SE * ref.se[names].to_numpy()
    assert np.all(diff <= tol), (names, diff, tol)
    th_se = np.nan_to_num(ref.varpar_se()["se"].to_numpy(), nan=1.0)
    diff, tol = np.abs(m.theta - ref.theta), PARAM_SE * th_se
    assert np.all(diff <= tol), ("theta", diff, tol)


def groups(n: int, k: int) -> list[str]:
    return [f"g{i}" for i in np.repeat(np.arange(k), n // k)]


# -- data ---------------------------------------------------------------------------

def level_data(seed: int = 2, n: int = 200, k: int = 10) -> pd.DataFrame:
    """Random intercept (SD 0.7) and treatments a, b, c; every response under c is 0."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(k), n // k)
    trt = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    eta = -0.3 + 0.8 * (trt == "b") + rng.normal(0, 0.7, k)[g]
    y = rng.binomial(1, expit(eta)).astype(float)
    y[trt == "c"] = 0.0
    return pd.DataFrame({"y": y, "trt": trt, "g": groups(n, k)})


def without(data: pd.DataFrame, column: str, level: str) -> pd.DataFrame:
    """The rows whose ``column`` is not ``level``, that level dropped from the categories."""
    keep = data[data[column] != level].copy()
    keep[column] = pd.Categorical(keep[column], categories=sorted(set(keep[column])))
    return keep


def slope_data(seed: int, n: int = 200, k: int = 20, slope: float = 1.0,
               intercept: float = -0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(k), n // k)
    x = rng.standard_normal(n)
    eta = intercept + slope * x + rng.normal(0, 0.8, k)[g]
    y = rng.binomial(1, expit(eta)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": groups(n, k)})


def poisson_data(seed: int = 6, n: int = 200, k: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(k), n // k)
    x = rng.standard_normal(n)
    y = rng.poisson(np.exp(1.0 + 0.5 * x + rng.normal(0, 0.5, k)[g])).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": groups(n, k)})


def with_far_rows(data: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """data plus rows at covariate values x with responses y, spread over its groups."""
    extra = pd.DataFrame({"y": y, "x": x, "g": data["g"].iloc[np.arange(len(x))].to_numpy()})
    return pd.concat([data, extra], ignore_index=True)


# -- 1. separation ----------------------------------------------------------------------

def test_separation_by_a_factor_level_gives_the_fit_without_that_level(capfd):
    data = level_data()
    m, record = quiet_fit(capfd, "y ~ trt + (1 | g)", data, "binomial")
    ref, _ = quiet_fit(capfd, "y ~ trt + (1 | g)", without(data, "trt", "c"), "binomial")
    text = messages(record)
    assert len(text) == 1
    assert text[0].startswith("quasi-complete separation is likely: the fixed effect(s) "
                              "'trt[T.c]' separate 63 of 200 observations")
    assert m.fit.separation.columns == ("trt[T.c]",)
    # the limit: the other parameters are those of the fit without level c
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "trt[T.b]"])
    assert m.theta[0] == pytest.approx(1.134257, abs=1e-5)  # not a boundary fit
    # the diverging coefficient is reported where the largest fitted probability of
    # the level-c observations is 10 eps: logit = -33.7 (glm.fit's "numerically 0")
    eta_c = m.linear_predictor[data["trt"] == "c"]
    assert eta_c.max() == pytest.approx(-SEPARATED_ETA, abs=1e-6)
    assert m.fixef["trt[T.c]"] < -SEPARATED_ETA + 5
    assert m.se["trt[T.c]"] > 1e5 * m.se["trt[T.b]"]  # meaningless, but finite
    # the SEs of the finite coefficients fall back to the PIRLS approximation
    # (theta held fixed), which agrees with the Hessian-based ones to a few per cent
    np.testing.assert_allclose(m.se[["(Intercept)", "trt[T.b]"]],
                               ref.se[["(Intercept)", "trt[T.b]"]], rtol=0.05)


def test_vcov_of_a_separated_fit_says_why_it_falls_back():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        m = glmer("y ~ trt + (1 | g)", level_data(), "binomial")
    with pytest.warns(ConvergenceWarning, match=r"the fit is separated .* penalised IRLS"):
        se = m.se
    assert np.isfinite(se).all()


def test_separation_under_adaptive_quadrature(capfd):
    data = level_data()
    m, record = quiet_fit(capfd, "y ~ trt + (1 | g)", data, "binomial", nAGQ=7)
    ref, _ = quiet_fit(capfd, "y ~ trt + (1 | g)", without(data, "trt", "c"), "binomial",
                       nAGQ=7)
    assert "'trt[T.c]'" in messages(record)[0]
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "trt[T.b]"])


def test_two_separated_levels_are_both_named(capfd):
    data = level_data()
    data.loc[data["trt"] == "b", "y"] = 1.0  # b all successes, c all failures
    m, record = quiet_fit(capfd, "y ~ trt + (1 | g)", data, "binomial")
    assert "the fixed effect(s) 'trt[T.b]', 'trt[T.c]' separate" in messages(record)[0]
    assert m.fixef["trt[T.b]"] > SEPARATED_ETA - 5 and m.fixef["trt[T.c]"] < 5 - SEPARATED_ETA
    # in the limit only level a is left: its intercept and theta
    ref, _ = quiet_fit(capfd, "y ~ 1 + (1 | g)", data[data["trt"] == "a"], "binomial")
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)"])


def test_separated_proportions_with_trials_as_weights(capfd):
    # a level where every trial succeeds: +inf, named; the rest is the reduced fit
    rng = np.random.default_rng(3)
    n, k = 90, 15
    g = np.repeat(np.arange(k), n // k)
    trt = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    size = rng.integers(3, 10, n)
    succ = rng.binomial(size, expit(0.2 + 0.5 * (trt == "b") + rng.normal(0, 0.6, k)[g]))
    succ[trt == "c"] = size[trt == "c"]
    data = pd.DataFrame({"p": succ / size, "n": size, "trt": trt, "g": groups(n, k)})
    m, record = quiet_fit(capfd, "p ~ trt + (1 | g)", data, "binomial", weights="n")
    ref, _ = quiet_fit(capfd, "p ~ trt + (1 | g)", without(data, "trt", "c"), "binomial",
                       weights="n")
    assert "'trt[T.c]'" in messages(record)[0]
    assert m.fixef["trt[T.c]"] > 0
    # the saturated log-likelihood (log C(n, k)) of the level-c rows is 0: n choose n
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "trt[T.b]"])


def test_poisson_level_with_only_zero_counts(capfd):
    data = poisson_data()
    data["f"] = np.array(["a", "b", "z"])[np.random.default_rng(1).integers(0, 3, len(data))]
    data.loc[data["f"] == "z", "y"] = 0.0
    m, record = quiet_fit(capfd, "y ~ x + f + (1 | g)", data, "poisson")
    ref, _ = quiet_fit(capfd, "y ~ x + f + (1 | g)", without(data, "f", "z"), "poisson")
    text = messages(record)[0]
    assert "'f[T.z]'" in text and "fitted means numerically 0" in text
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "x", "f[T.b]"])


def test_complete_separation_by_a_continuous_predictor(capfd):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(120)
    data = pd.DataFrame({"y": (x > 0).astype(float), "x": x, "g": groups(120, 12)})
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, "binomial")
    text = messages(record)[0]
    assert text.startswith("complete separation is likely: the fixed effect(s) "
                           "'(Intercept)', 'x' separate 120 of 120 observations")
    assert m.fit.separation.complete
    # every observation is fitted exactly in the limit: deviance -> 0 (0/1 data have
    # a saturated log-likelihood of 0), and the fitted boundary -b0/b1 lies in the gap
    # between the largest x with y = 0 and the smallest with y = 1
    assert 0 <= m.deviance < 1e-10
    b0, b1 = m.fixef
    assert x[x < 0].max() < -b0 / b1 < x[x > 0].min()
    margin = np.where(data["y"] == 1, 1, -1) * m.linear_predictor
    assert margin.min() == pytest.approx(SEPARATED_ETA, abs=1e-6)
    # R's glm stops after 25 IRLS iterations with "fitted probabilities numerically 0
    # or 1 occurred" and a slope of a few hundred: any large value is as good


def test_quasi_separation_by_the_ties_of_a_covariate(capfd):
    # y = 1 above 0, 0 below, mixed at x = 0: the slope diverges and the intercept and
    # theta are those of the observations at x = 0 alone
    rng = np.random.default_rng(5)
    n, k = 150, 10
    x = rng.integers(-2, 3, n).astype(float)
    g = np.repeat(np.arange(k), n // k)
    y = (x > 0).astype(float)
    tie = x == 0
    y[tie] = rng.binomial(1, expit(0.4 + rng.normal(0, 1.5, k)[g[tie]]))
    data = pd.DataFrame({"y": y, "x": x, "g": groups(n, k)})
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, "binomial")
    ref, _ = quiet_fit(capfd, "y ~ 1 + (1 | g)", data[tie], "binomial")
    assert "quasi-complete separation is likely: the fixed effect(s) 'x' separate " \
           f"{int((~tie).sum())} of {n}" in messages(record)[0]
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)"])
    assert m.fixef["x"] > SEPARATED_ETA - 5


def _laplace_by_group(data: pd.DataFrame, beta: np.ndarray, sd: float) -> float:
    """-2 log L of y ~ x + (1 | g), binomial, by the Laplace formula of each group."""
    total = 0.0
    for _, grp in data.groupby("g"):
        y, off = grp["y"].to_numpy(), beta[0] + beta[1] * grp["x"].to_numpy()
        b = 0.0
        for _ in range(100):  # Newton on sum dev + b^2 (penalised deviance, b spherical)
            mu = expit(off + sd * b)
            b -= (sd * np.sum(mu - y) + b) / (sd**2 * np.sum(mu * (1 - mu)) + 1)
        eta = off + sd * b
        mu = expit(eta)
        dev = 2 * np.sum(np.logaddexp(0, eta) - y * eta)
        total += dev + b * b + np.log(sd**2 * np.sum(mu * (1 - mu)) + 1)
    return total


def test_groups_whose_responses_are_all_zero_or_all_one(capfd):
    # the random intercept is penalised, so a group with responses all 0 (or all 1)
    # does not separate: no warning, finite estimates (as lme4), and the deviance is
    # the sum of the groups' Laplace integrals at the optimum, which is a minimum
    data = slope_data(3, n=160, k=16, slope=0.5, intercept=0.2)
    data.loc[data["g"] == "g0", "y"] = 0.0
    data.loc[data["g"] == "g1", "y"] = 1.0
    assert find_separation(np.column_stack([np.ones(160), data["x"]]), data["y"].to_numpy(),
                           np.ones(160), Binomial(), ["(Intercept)", "x"]) is None
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, "binomial")
    assert messages(record) == []
    beta, sd = m.fixef.to_numpy(), m.theta[0]
    assert m.deviance == pytest.approx(_laplace_by_group(data, beta, sd), abs=1e-8)
    for d_beta, d_sd in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert _laplace_by_group(data, beta + [d_beta, 0], sd + d_sd) > m.deviance
    modes = m.ranef_arrays()["g"]["(Intercept)"]
    assert modes.idxmin() == "g0" and modes.idxmax() == "g1"


def test_every_group_all_zero_or_all_one(capfd):
    # the groups themselves separate the response: theta grows large (its estimate
    # is infinite for the Laplace deviance), the fit completes without noise
    data = slope_data(5)
    data["y"] = (data["g"].str[1:].astype(int) % 2).astype(float)
    m, _ = quiet_fit(capfd, "y ~ 1 + (1 | g)", data, "binomial")
    assert 10 < m.theta[0] < 1e3


# -- 2. weights that underflow or overflow ------------------------------------------

@pytest.mark.parametrize("family, fixef", [("binomial", [50.0, 0.0]),
                                           ("binomial", [-50.0, 10.0]),
                                           ("binomial", [0.0, 40.0]),
                                           ("poisson", [50.0, 0.0]),
                                           ("poisson", [-50.0, 0.0])])
def test_start_with_a_huge_linear_predictor_reaches_the_ordinary_fit(capfd, family, fixef):
    # at eta = 50 mu(1 - mu) = 2e-22 (binomial) and mu = 5e21 (poisson): the weights
    # underflow or overflow, and the joint (u, beta) system loses positive
    # definiteness to rounding; clamped and step-halved, PIRLS still gets there
    data = slope_data(5) if family == "binomial" else poisson_data()
    ref, _ = quiet_fit(capfd, "y ~ x + (1 | g)", data, family)
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, family,
                          start={"theta": [1.0], "fixef": fixef})
    assert messages(record, Warning) == []
    assert m.fit.opt_stage1 is None
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "x"])


def test_far_out_observations_leave_the_binomial_fit_unchanged(capfd):
    # 20 observations at |x| = 30..60 on the side of their response: fitted
    # probabilities within 1e-20 of 0 or 1 (mu(1 - mu) underflows below eps), less
    # than 1e-14 of deviance; glmer used to raise numpy's "SVD did not converge" here
    base = slope_data(8, slope=1.5, intercept=0.3)
    far = np.linspace(30, 60, 10)
    data = with_far_rows(base, np.r_[far, -far], np.r_[np.ones(10), np.zeros(10)])
    assert find_separation(np.column_stack([np.ones(len(data)), data["x"]]),
                           data["y"].to_numpy(), np.ones(len(data)), Binomial(),
                           ["(Intercept)", "x"]) is None
    ref, _ = quiet_fit(capfd, "y ~ x + (1 | g)", base, "binomial")
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, "binomial")
    assert messages(record) == ["fitted probabilities numerically 0 or 1 occurred for 20 "
                                "of 220 observations; no combination of the fixed effects "
                                "separates the response, so this comes from very large "
                                "effects or from random effects that separate groups whose "
                                "responses are all at a boundary (see model.ranef())"]
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "x"])


def test_far_out_zero_counts_leave_the_poisson_fit_unchanged(capfd):
    # zero counts at x = -80..-150: mu = exp(1 + 0.5 x) < 1e-17, floored at eps
    base = poisson_data()
    data = with_far_rows(base, -np.linspace(80, 150, 10), np.zeros(10))
    ref, _ = quiet_fit(capfd, "y ~ x + (1 | g)", base, "poisson")
    m, record = quiet_fit(capfd, "y ~ x + (1 | g)", data, "poisson")
    assert messages(record)[0].startswith("fitted means numerically 0 occurred for 10 of 210")
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
    close_params(m, ref, ["(Intercept)", "x"])


def test_families_clamp_without_floating_point_warnings():
    eta = np.array([-800.0, -50.0, 0.0, 50.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is harmless
        mu = Binomial().linkinv(eta)
        assert mu.min() == MU_EPS and mu.max() == 1 - MU_EPS  # R's binomial clamp
        assert np.all(Binomial().variance(mu) >= MU_EPS * (1 - MU_EPS))
        assert np.all(np.isfinite(Binomial().linkfun(np.array([0.0, 1.0]))))
        y = np.array([0.0, 1.0, 0.0, 1.0, 0.0])
        dev = Binomial().dev_resid(y, eta, np.ones(5))
        assert dev[0] == 0 and dev[4] == 1600.0  # exact, from eta (not from clamped mu)
        mu = Poisson().linkinv(eta)
        assert mu[0] == MU_EPS and mu[4] == np.exp(300.0)  # eta capped for the weights
        assert Poisson().linkfun(np.array([0.0]))[0] == np.log(MU_EPS)
        dev = Poisson().dev_resid(np.full(5, 2.0), eta, np.ones(5))
        assert dev[4] == np.inf and np.all(np.isfinite(dev[:4]))  # overflow is inf


def test_start_whose_deviance_overflows_is_an_argument_error(capfd):
    with pytest.raises(ArgumentError, match=r"start fixef gives a linear predictor up to 800 "
                       r"at which the poisson deviance is not finite"):
        glmer("y ~ x + (1 | g)", poisson_data(), "poisson",
              start={"theta": [1.0], "fixef": [800.0, 0.0]})
    assert capfd.readouterr().err == ""


# -- 3. factorisations that fail ------------------------------------------------------

def test_a_factor_that_cannot_be_formed_is_an_infinite_criterion(capfd):
    m, _ = quiet_fit(capfd, "y ~ x + (1 | g)", slope_data(5), "binomial")
    problem, beta = m.fit.problem, m.fixef.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        # theta = 1e200: Lambda'Z'WZ Lambda overflows; the optimiser sees inf and steps back
        assert problem.deviance(np.array([1e200]), beta) == np.inf
        assert m.deviance_at([1e200], beta) == np.inf
        assert problem.stage1(np.array([1e200]), beta) == (np.inf, None)
        with pytest.raises(FactorError, match="cannot factor its system at theta"):
            problem.mode_at_optimum(np.array([1e200]), beta)
        # the failures leave the warm start alone: the optimum is unchanged
        assert m.deviance_at(m.theta, beta) == pytest.approx(m.deviance, abs=1e-9)
    assert capfd.readouterr().err == ""


def test_joint_system_lost_to_rounding_takes_block_steps():
    # poisson at eta = 50: X'WX - C'C cancels below rounding (not positive definite);
    # PIRLS steps in u and beta separately until the joint factor exists again
    data = poisson_data()
    m = glmer("y ~ x + (1 | g)", data, "poisson")
    problem = m.fit.problem
    theta = m.theta
    good = problem.mode(theta, m.fixef.to_numpy(), np.zeros(problem.nu), joint=True)
    far = problem.mode(theta, np.array([50.0, 0.0]), np.zeros(problem.nu), joint=True)
    assert far.converged and far.LX is not None
    np.testing.assert_allclose(far.beta, good.beta, rtol=0, atol=1e-9)  # one convex optimum
    np.testing.assert_allclose(far.u, good.u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(problem.joint_factor(far), good.LX, rtol=1e-8)


def test_random_slopes_with_separation_and_crossed_factors(capfd):
    data = level_data()
    rng = np.random.default_rng(4)
    data["x"] = rng.standard_normal(len(data))
    data["h"] = [f"h{i}" for i in rng.integers(0, 6, len(data))]
    for formula in ["y ~ trt + (1 + x | g)", "y ~ trt + (1 | g) + (1 | h)"]:
        m, record = quiet_fit(capfd, formula, data, "binomial")
        ref, _ = quiet_fit(capfd, formula, without(data, "trt", "c"), "binomial")
        assert "'trt[T.c]'" in messages(record)[0]
        assert m.deviance == pytest.approx(ref.deviance, abs=1e-6)  # boundary fits: looser


# -- 4. arguments ----------------------------------------------------------------------

@pytest.mark.parametrize("nagq", [2.0, True, "5", None, 1.5])
def test_nagq_must_be_an_integer(nagq):
    with pytest.raises(ArgumentError, match="nAGQ must be an integer >= 0"):
        glmer("y ~ x + (1 | g)", poisson_data(), "poisson", nAGQ=nagq)


def test_nagq_out_of_range_and_numpy_integers():
    with pytest.raises(DataError, match="nAGQ must be a whole number from 0 to 100"):
        glmer("y ~ x + (1 | g)", poisson_data(), "poisson", nAGQ=101)
    m = glmer("y ~ x + (1 | g)", poisson_data(), "poisson", nAGQ=np.int64(3))
    assert m.nagq == 3 and isinstance(m.nagq, int)


@pytest.mark.parametrize("start, message", [
    ([1.0, 2.0], r"start theta must have 1 value\(s\) \(g.\(Intercept\)\), got 2"),
    ([np.nan], r"start theta must be finite, got nan for g.\(Intercept\)"),
    ([-0.5], r"start theta must respect the lower bounds \[0.0\].*g.\(Intercept\) = -0.5"),
    ({"theta": [1.0], "fixef": [0.0]}, r"start fixef must have 2 value\(s\) "
                                       r"\(\(Intercept\), x\), got 1"),
    ({"fixef": [0.0, np.inf]}, r"start fixef must be finite, got inf for x"),
    ({"theta": [1.0], "beta": [0.0, 0.0]}, r"start has unknown key\(s\) \['beta'\]"),
    (["one"], r"start theta must be numbers"),
    ([[1.0]], r"start theta must be a flat sequence of 1 value\(s\), got an array of shape"),
])
def test_bad_start_is_an_argument_error_naming_start(start, message):
    with pytest.raises(ArgumentError, match=message):
        glmer("y ~ x + (1 | g)", poisson_data(), "poisson", start=start)


def test_start_on_the_boundary_is_allowed():
    m = glmer("y ~ x + (1 | g)", poisson_data(), "poisson", start=[0.0])
    ref = glmer("y ~ x + (1 | g)", poisson_data(), "poisson")
    assert m.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)


def test_glm_score_certifies_that_nothing_separates():
    # the LP is skipped when the GLM's score proves that its optimum would be below
    # its threshold; under separation the proof fails and the LP finds the level
    fam = Binomial()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        fits = [(glmer("y ~ x + (1 | g)", slope_data(5), fam), False),
                (glmer("y ~ trt + (1 | g)", level_data(), fam), True)]
    for m, separated in fits:
        problem = m.fit.problem
        X, y, wt, names = problem.X, problem.y, problem.wt, problem.design.xnames
        beta, s = problem.glm_start(), fam.boundary_signs(y)
        proof = _certified_unseparated(X, X / np.abs(X).max(axis=0), y, wt, fam, s, s != 0,
                                       beta)
        assert proof is not separated
        assert (find_separation(X, y, wt, fam, names, beta) is None) is not separated
        assert (find_separation(X, y, wt, fam, names) is None) is not separated


def test_glmer_control_is_checked_and_used():
    data = level_data()
    with pytest.raises(ArgumentError, match="^control must be an lmmlib.GlmerControl"):
        glmer("y ~ trt + (1 | g)", data, "binomial", control={"maxeval": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = glmer("y ~ x + (1 | g)", data.assign(x=np.arange(len(data)) % 7), "binomial",
                  control=lmmlib.GlmerControl(maxeval=7))
    assert m.opt.settings["maxeval"] == 7
