"""Bad arguments are lmmlib errors that name the argument; the valid forms still work.

Sections: booleans, lmer's ``start``, ``n_jobs``, counts and seeds, bootstrap statistics,
non-models, levels and options, other arguments.  ``c`` holds the fits the calls need.
"""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from conftest import course_data, fitted, fixture_data, lme4_fixture

import lmmlib
from lmmlib import ArgumentError, DataError, LmmlibError
from lmmlib.checks import as_count, as_level, as_n_jobs, as_optional_bool, as_start, describe
from lmmlib.course.cloning import clone_fit, dc_fit, dc_predict, dc_se, dcdiag, oneway_information
from lmmlib.course.mcmc import Priors, lambda_max, oneway_loglik
from lmmlib.course.shrinkage import effective_df, shrinkage
from lmmlib.engine.optimize import minimize_theta
from lmmlib.engine.simulate import as_generator
from lmmlib.inference.anova import chisq_mixture_pvalue, drop_level_screen
from lmmlib.inference.batch import batch_refit, supports_batch
from lmmlib.inference.bootstrap import bootstrap, bootstrap_lrt
from lmmlib.inference.confint import confint, percent_labels
from lmmlib.inference.predint import prediction_interval
from lmmlib.inference.profile import profile, zeta_at
from lmmlib.inference.rlrt import exact_rlrt, lambda_grid
from lmmlib.inference.satterthwaite import coef_table, satterthwaite_parts
from lmmlib.models.fit import fit_design, refit, theta_labels

PULP = "bright ~ 1 + (1 | operator)"
SLEEP = "Reaction ~ Days + (Days | Subject)"
CLONE = {"K": 1, "n_iter": 4, "burn": 0, "rng": 1}  # a tiny data-cloning run


def sigma(fit):
    return fit.sigma


@pytest.fixture(scope="module")
def c():
    rng, g = np.random.default_rng(4), np.repeat(np.arange(8), 4)
    counts = pd.DataFrame({"y": rng.poisson(np.exp(0.5 + rng.standard_normal(8))[g]), "g": g})
    pois = lmmlib.glmer("y ~ 1 + (1 | g)", counts.astype({"g": str}), "poisson")
    g = np.repeat(np.arange(6), 3)
    oneway = pd.DataFrame({"y": rng.normal(size=6)[g] + rng.normal(size=18), "id": g})
    m, pulp = fitted("pulp_reml"), course_data("pulp")
    bad = {"str": "m", "DataFrame": pd.DataFrame({"a": [1.0]}), "float": 3.0, "None": None,
           "statsmodels": smf.ols("bright ~ 1", pulp).fit(), "lm": fitted("pulp_lm"),
           "glmer": pois}  # things that are not lmer fits
    return SimpleNamespace(m=m, ml=fitted("pulp_ml"), lm=fitted("pulp_lm"), pois=pois,
                           oneway=oneway, pulp=pulp, bad=bad,
                           sleep=fixture_data(lme4_fixture("sleepstudy_reml")),
                           parts=satterthwaite_parts(m.pls, m.theta, m.sigma, reml=True))


def table(cases):
    """Parametrize a test over (id, call, ...) rows."""
    return pytest.mark.parametrize("call, match", [row[1:] for row in cases],
                                   ids=[row[0] for row in cases])


# -- 1. booleans ---------------------------------------------------------------------
BOOLEANS = {  # "function option": (call with the option set to v, whether None is allowed)
    "lmer reml": (lambda c, v: lmmlib.lmer(PULP, c.pulp, reml=v), False),
    "anova refit": (lambda c, v: lmmlib.anova(c.lm, c.m, refit=v), False),
    "anova boundary_warning": (lambda c, v: lmmlib.anova(c.lm, c.m, boundary_warning=v), False),
    "bootstrap use_u": (lambda c, v: bootstrap(c.m, sigma, nsim=2, rng=1, use_u=v), False),
    "bootstrap progress": (lambda c, v: bootstrap(c.m, sigma, nsim=2, rng=1, progress=v), True),
    "bootstrap_lrt progress": (lambda c, v: bootstrap_lrt(c.lm, c.ml, 2, 1, progress=v), True),
    "bootstrap_lrt batch": (lambda c, v: bootstrap_lrt(c.lm, c.ml, 2, 1, batch=v), True),
    "prediction_interval use_u": (lambda c, v: prediction_interval(c.m, nsim=2, use_u=v), False),
    "prediction_interval batch": (lambda c, v: prediction_interval(c.m, nsim=2, batch=v), True),
    "prediction_interval progress": (lambda c, v: prediction_interval(c.m, nsim=2, progress=v),
                                     True),
    "confint progress": (lambda c, v: confint(c.m, method="wald", progress=v), True),
    "effective_df fixed": (lambda c, v: effective_df(c.m, fixed=v), False),
    "clone_fit keep_alpha": (lambda c, v: clone_fit(c.oneway, **CLONE, keep_alpha=v), False),
    "fit_design reml": (lambda c, v: fit_design(c.m.design, reml=v), False),
    "satterthwaite_parts reml": (lambda c, v: satterthwaite_parts(c.m.pls, c.m.theta, 1.0, v),
                                 False),
    "minimize_theta restart": (lambda c, v: minimize_theta(lambda th: 0.0, np.ones(1),
                                                           np.zeros(1), restart=v), False),
}
BOOL_CASES = [(key, value) for key in BOOLEANS for value in ["FALSE", "no", 1, 0, 0.0, None]
              if value is not None or not BOOLEANS[key][1]]


@pytest.mark.parametrize("key, value", BOOL_CASES, ids=[f"{k}={v!r}" for k, v in BOOL_CASES])
def test_boolean_options_must_be_booleans(c, key, value):
    call, optional = BOOLEANS[key]
    allowed = "True, False or None" if optional else "True or False"
    match = f"^{key.split()[-1]} must be {allowed}, got {re.escape(describe(value))}$"
    with pytest.raises(ArgumentError, match=match):
        call(c, value)


def test_numpy_booleans_give_the_same_results(c):
    ml = lmmlib.lmer(PULP, c.pulp, reml=False)
    ml_np = lmmlib.lmer(PULP, c.pulp, reml=np.False_)
    assert ml_np.reml is False and ml_np.objective == ml.objective
    np.testing.assert_array_equal(ml_np.theta, ml.theta)
    assert lmmlib.lmer(PULP, c.pulp, reml=np.True_).objective == pytest.approx(c.m.objective)
    a = bootstrap(c.m, sigma, nsim=3, rng=2, use_u=np.True_, progress=None)
    b = bootstrap(c.m, sigma, nsim=3, rng=2, use_u=True, progress=np.False_)
    assert a.use_u is True and a.replicates.equals(b.replicates)
    assert effective_df(c.m, fixed=np.False_) == effective_df(c.m)
    assert as_optional_bool(None, "progress") is None


# -- 2. lmer's start -----------------------------------------------------------------
@pytest.mark.parametrize("start, match", [
    ([1.0, 0.0], r"start must have 3 value\(s\).*got shape \(2,\)"),
    ([1.0, 0.0, 1.0, 1.0], r"start must have 3 value\(s\)"),
    ([[1.0, 0.0, 1.0]], r"start must have 3 value\(s\)"),
    ([1.0, np.nan, 1.0], r"start must be finite; entries 1 \(Subject\.Days\.\(Intercept\)\)"),
    ([np.inf, 0.0, 1.0], r"start must be finite; entries 0 \(Subject\.\(Intercept\)\) = inf"),
    ([1.0, 0.0, -0.5], r"start has negative values at bounded entries: 2 \(Subject\.Days\)"),
    ([-1.0, 0.0, 1.0], r"entries 0 \(Subject\.\(Intercept\)\), 2 \(Subject\.Days\) are "
                       "standard-deviation factors bounded below by 0"),
    (["1", "0", "1"], r"start must be a sequence of 3 numbers"),
    ("abc", r"start must be a sequence of 3 numbers"),
    ([1.0, None, 1.0], r"start must be a sequence of 3 numbers"),
])
def test_bad_start_names_length_and_bounds(c, start, match):
    with pytest.raises(ArgumentError, match=match):
        lmmlib.lmer(SLEEP, c.sleep, start=start)


def test_valid_start_forms_give_the_same_fit(c):
    default = fitted("sleepstudy_reml")
    assert theta_labels(default.design) == ["Subject.(Intercept)", "Subject.Days.(Intercept)",
                                            "Subject.Days"]
    for start in ([1.0, 0.0, 1.0], (1, 0, 1), np.array([1.0, 0.0, 1.0]), pd.Series([1, 0, 1])):
        np.testing.assert_array_equal(lmmlib.lmer(SLEEP, c.sleep, start=start).theta,
                                      default.theta)
    # the off-diagonal element is unbounded: a negative start is fine
    neg = lmmlib.lmer(SLEEP, c.sleep, start=[1.0, -0.5, 1.0])
    assert neg.objective == pytest.approx(default.objective, abs=1e-6)
    # one element: a scalar is fine, as R's numeric of length 1
    np.testing.assert_allclose(lmmlib.lmer(PULP, c.pulp, start=1.0).theta, c.m.theta, rtol=1e-6)
    np.testing.assert_array_equal(as_start(np.int64(2), np.zeros(1)), [2.0])


@table([
    ("length", lambda c: minimize_theta(np.sum, np.ones(3), np.zeros(2)), r"^theta0 must have 2"),
    ("bound", lambda c: minimize_theta(np.sum, -np.ones(1), np.zeros(1)), r"^theta0 has negati"),
    ("maxeval", lambda c: minimize_theta(np.sum, np.ones(1), np.zeros(1), maxeval=9.5), "^maxev"),
    ("ftol_abs", lambda c: lmmlib.LmerControl(ftol_abs=-1e-8), "^ftol_abs must be a pos"),
    ("xtol_abs", lambda c: lmmlib.LmerControl(xtol_abs="1e-8"), "^xtol_abs must be a"),
    ("ftol_abs nan", lambda c: lmmlib.LmerControl(ftol_abs=np.nan), "^ftol_abs must"),
    ("xtol_abs 0", lambda c: lmmlib.LmerControl(xtol_abs=0), "^xtol_abs must be a pos"),
    ("restart", lambda c: lmmlib.LmerControl(restart="yes"), "^restart must be True or F"),
    ("control", lambda c: lmmlib.lmer(PULP, c.pulp, control={"ftol_abs": 1}), "^control must"),
    ("fit_design", lambda c: fit_design(c.m.design, True, start=[1, 1]), r"^start must have 1"),
])
def test_optimiser_start_and_tolerances(c, call, match):
    with pytest.raises(ArgumentError, match=match):
        call(c)


# -- 3. n_jobs -----------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 1.5, "2", True, np.float64(2.0)])
@pytest.mark.parametrize("call", [
    lambda c, v: bootstrap(c.m, sigma, nsim=2, rng=1, n_jobs=v),
    lambda c, v: bootstrap_lrt(c.lm, c.ml, nsim=2, rng=1, n_jobs=v),
    lambda c, v: prediction_interval(c.m, nsim=2, rng=1, n_jobs=v),
], ids=["bootstrap", "bootstrap_lrt", "prediction_interval"])
def test_n_jobs_is_none_or_a_nonzero_integer(c, call, value):
    with pytest.raises(ArgumentError, match=r"^n_jobs must be None, a positive number of "
                                            r"workers or a negative integer \(-1: all CPUs"):
        call(c, value)


def test_valid_n_jobs_give_identical_results(c):
    ref = bootstrap(c.m, sigma, nsim=4, rng=3)
    for n_jobs in (None, 1, np.int64(1)):
        assert bootstrap(c.m, sigma, nsim=4, rng=3, n_jobs=n_jobs).replicates.equals(ref.replicates)
    assert as_n_jobs(-1) == -1 and as_n_jobs(-2) == -2 and as_n_jobs(None) is None


# -- 4. numbers of replicates, seeds and generators ------------------------------------
@pytest.mark.parametrize("value", [2.5, "100", True, 0, -3, None, 10.0])
@table([
    ("bootstrap", lambda c, v: bootstrap(c.m, sigma, nsim=v), "^nsim, the number of bootstrap"),
    ("bootstrap_lrt", lambda c, v: bootstrap_lrt(c.lm, c.ml, nsim=v, rng=1), "^nsim, the number"),
    ("prediction_interval", lambda c, v: prediction_interval(c.m, nsim=v, rng=1), "^nsim, the num"),
    ("exact_rlrt", lambda c, v: exact_rlrt(c.m, nsim=v, rng=1), "^nsim must be an integer >= 1"),
    ("confint", lambda c, v: confint(c.m, method="boot", nsim=v, rng=1), "^nsim must be an"),
    ("clone_fit K", lambda c, v: clone_fit(c.oneway, **{**CLONE, "K": v}), "^K must be an int"),
    ("n_chains", lambda c, v: clone_fit(c.oneway, **CLONE, n_chains=v), "^n_chains must be an"),
    ("profile n_points", lambda c, v: profile(c.m, n_points=v), "^n_points must be an integer"),
    ("gridlength", lambda c, v: exact_rlrt(c.m, 10, 1, gridlength=v), "^gridlength must be an"),
])
def test_counts(c, call, match, value):
    with pytest.raises(ArgumentError, match=match):
        call(c, value)


@pytest.mark.parametrize("value", [True, -1, 1.5, "1"])
@table([
    ("bootstrap", lambda c, v: bootstrap(c.m, sigma, nsim=2, rng=v), "^rng must be a numpy random"),
    ("bootstrap_lrt", lambda c, v: bootstrap_lrt(c.lm, c.ml, nsim=2, rng=v), "^rng must be a"),
    ("prediction_interval", lambda c, v: prediction_interval(c.m, nsim=2, rng=v), "^rng must"),
    ("exact_rlrt", lambda c, v: exact_rlrt(c.m, nsim=10, rng=v), "^rng must be a numpy random"),
    ("confint", lambda c, v: confint(c.m, method="boot", nsim=2, rng=v), "^rng must be a nump"),
    ("clone_fit", lambda c, v: clone_fit(c.oneway, **{**CLONE, "rng": v}), "^rng must be a nu"),
])
def test_seeds_and_generators(c, call, match, value):
    with pytest.raises(ArgumentError, match=match):
        call(c, value)


@pytest.mark.parametrize("value", [[1, -2], object(), np.float64(3.0), "seed"])
def test_rng_that_numpy_would_refuse(value):
    with pytest.raises(ArgumentError, match="^rng must be a numpy random Generator, a non-neg"):
        as_generator(value)


def test_every_generator_form_numpy_accepts_still_works(c):
    draws = np.random.default_rng(3).normal(size=3)
    for rng in (3, np.int64(3), np.random.SeedSequence(3), np.random.PCG64(3), [3]):
        assert as_generator(rng).normal(size=3) == pytest.approx(draws)
    legacy = np.random.RandomState(0)
    assert as_generator(legacy).bit_generator is legacy._bit_generator
    gen = np.random.default_rng(1)
    assert as_generator(gen) is gen  # used as it is, not reseeded
    r1 = exact_rlrt(c.m, nsim=200, rng=np.random.default_rng(5))
    r2 = exact_rlrt(c.m, nsim=np.int64(200), rng=5)
    np.testing.assert_array_equal(r1.null_sample, r2.null_sample)
    pd.testing.assert_frame_equal(confint(c.m, method="boot", nsim=3, rng=np.random.default_rng(7)),
                                  confint(c.m, method="boot", nsim=3, rng=7))
    a = bootstrap(c.m, sigma, nsim=np.int64(3), rng=np.int64(4))
    assert a.nsim == 3 and a.replicates.equals(bootstrap(c.m, sigma, nsim=3, rng=4).replicates)
    assert as_count(np.int32(5), "n") == 5


# -- 5. bootstrap statistics -----------------------------------------------------------
def named_none(fit):
    return None


@pytest.mark.parametrize("stat, match", [
    (lambda f: "abc", r"stat \(a lambda\) returned 'abc' \(str\) on the fitted model; it must"),
    (named_none, r"stat 'named_none' returned None \(NoneType\) on the fitted model"),
    (lambda f: object(), r"stat \(a lambda\) returned an object on the fitted model"),
    (lambda f: {"a": 1.0}, r"returned \{'a': 1.0\} \(dict\) on the fitted model"),
    (lambda f: f, r"returned a lmmlib\..*LinearMixedModel on the fitted model"),
    (lambda f: [], r"stat \(a lambda\) returned no values on the fitted model"),
    (lambda f: 1 + 2j, r"returned \(1\+2j\) \(complex\) on the fitted model"),
    (lambda f: np.nan, r"returned non-finite values on the fitted model \('statistic': nan\)"),
    (lambda f: [f.sigma, np.inf], r"non-finite values on the fitted model \(1: inf\)"),
    (lambda f: ["1", "2"], r"returned \['1', '2'\] \(list\) on the fitted model"),
    ("sigma", r"^stat must be a function of a fitted model, got 'sigma' \(str\)"),
])
def test_bad_statistics_on_the_fitted_model(c, stat, match):
    with pytest.raises(ArgumentError, match=match):
        bootstrap(c.m, stat, nsim=2, rng=1)
    with pytest.raises(ArgumentError, match=match):
        lmmlib.bootstrap(c.m, stat, 2, 1)  # the callable module


@pytest.mark.parametrize("on_refit, match", [
    (lambda f: [1.0, 2.0], r"stat 'statistic' returned 2 values on a bootstrap refit but 1 on"),
    (lambda f: None, r"stat 'statistic' returned None \(NoneType\) on a bootstrap refit"),
    (lambda f: "x", r"returned 'x' \(str\) on a bootstrap refit"),
])
def test_bad_statistics_on_a_refit(c, on_refit, match):
    def statistic(fit):
        return fit.sigma if fit is c.m else on_refit(fit)

    with pytest.raises(ArgumentError, match=match):
        bootstrap(c.m, statistic, nsim=3, rng=1)


def test_non_finite_replicates_are_counted_and_left_out(c):
    odd = iter([None, np.nan, None, -np.inf, None, None])  # what some refits give instead

    def log_sd(fit):
        value = None if fit is c.m else next(odd)
        return fit.sigma if value is None else value

    with pytest.warns(lmmlib.LmmlibWarning,
                      match=r"stat 'log_sd' returned NaN or infinite values on 2 of 6"):
        res = bootstrap(c.m, log_sd, nsim=6, rng=3)
    col = res.replicates.iloc[:, 0]
    assert col.isna().sum() == 1 and np.isneginf(col).sum() == 1  # kept as returned
    finite = col[np.isfinite(col)]
    assert res.se.iloc[0] == pytest.approx(finite.std(ddof=1))
    np.testing.assert_allclose(res.ci().iloc[0], np.quantile(finite, [0.025, 0.975]))
    assert res.bias.iloc[0] == pytest.approx(finite.mean() - res.observed.iloc[0])


def test_valid_statistics_still_work(c):
    ref = bootstrap(c.m, sigma, nsim=3, rng=1)
    for stat in (lambda f: np.float64(f.sigma), lambda f: [f.sigma], lambda f: np.array([f.sigma]),
                 lambda f: pd.Series({"s": f.sigma})):
        res = bootstrap(c.m, stat, nsim=3, rng=1)
        np.testing.assert_array_equal(res.replicates.to_numpy(), ref.replicates.to_numpy())
    assert list(bootstrap(c.m, lambda f: f.is_singular, nsim=2, rng=1).observed) == [0.0]


# -- 6. things that are not fitted models ---------------------------------------------
@pytest.mark.parametrize("kind", ["str", "DataFrame", "float", "None", "statsmodels"])
def test_anova_names_the_argument_position_and_type(c, kind):
    bad = c.bad[kind]
    got = re.escape(describe(bad)) + ", not a fitted model"
    with pytest.raises(ArgumentError, match=r"^anova: argument 1 \(m1\) is " + got):
        lmmlib.anova(bad, c.m)
    with pytest.raises(ArgumentError, match=r"^anova: argument 2 \(m2\) is " + got):
        lmmlib.anova(c.lm, bad)
    with pytest.raises(ArgumentError, match=r"^anova: argument 3 \(c\) is " + got):
        lmmlib.anova(c.lm, c.m, bad, names=["a", "b", "c"])
    with pytest.raises(ArgumentError, match=r"^anova: model 'x' of the dict is " + got):
        lmmlib.anova({"lm": c.lm, "x": bad})
    with pytest.raises(ArgumentError, match=r"^aic_table: element 2 \(m2\) is " + got):
        lmmlib.aic_table([c.lm, bad])
    if kind == "statsmodels":
        assert "statsmodels.regression.linear_model.RegressionResultsWrapper" in describe(bad)


@table([
    ("list", lambda c: lmmlib.anova([c.lm, c.m]), r"argument 1 \(m1\) is a list of models; pass"),
    ("duplicate names", lambda c: lmmlib.anova(c.lm, c.m, names=["a", "a"]), "names must be dis"),
    ("names str", lambda c: lmmlib.anova(c.lm, c.m, names="ab"), "names must be a list of str"),
    ("names count", lambda c: lmmlib.anova(c.lm, c.m, names=list("abc")), "names has 3 names"),
    ("aic_table model", lambda c: lmmlib.aic_table(c.m), "aic_table: models must be a dict"),
])
def test_anova_lists_and_names(c, call, match):
    with pytest.raises(ArgumentError, match=match):
        call(c)


LMER_ONLY = [  # (id, call on a bad model, the message's start)
    ("exact_rlrt m", lambda c, b: exact_rlrt(b, nsim=10, rng=1), "m must be a mixed model"),
    ("exact_rlrt mA", lambda c, b: exact_rlrt(c.m, nsim=10, rng=1, mA=b, m0=c.m), "mA must be"),
    ("confint", lambda c, b: confint(b), "model must be a mixed model fitted by lmmlib.lmer"),
    ("coef_table", lambda c, b: coef_table(b), "model must be a mixed model"),
    ("shrinkage", lambda c, b: shrinkage(b), "model must be a mixed model"),
    ("effective_df", lambda c, b: effective_df(b), "model must be a mixed model"),
    ("icc", lambda c, b: lmmlib.icc(b), "model must be a linear mixed model fitted by lmmlib"),
    ("batch_refit", lambda c, b: batch_refit(b, np.zeros((1, 20))), "model must be a mixed"),
    ("refit", lambda c, b: refit(b, np.zeros(20)), "model must be a mixed model"),
]
LMER_OR_LM = [
    ("drop_level_screen", lambda c, b: drop_level_screen(b, "operator"), "model must be a fit"),
]
MIXED = [  # lmer and glmer fits
    ("prediction_interval", lambda c, b: prediction_interval(b, nsim=2, rng=1), "model must be a"),
    ("profile", lambda c, b: profile(b), "model must be a mixed model fitted by lmmlib.lmer or"),
    ("zeta_at", lambda c, b: zeta_at(b, ".sigma", [1.0]), "model must be a mixed model"),
]
ANY_FIT = [  # lmer, glmer and lm fits
    ("bootstrap_lrt null", lambda c, b: bootstrap_lrt(b, c.m, nsim=2, rng=1), "null must be a fit"),
    ("bootstrap_lrt alt", lambda c, b: bootstrap_lrt(c.lm, b, nsim=2, rng=1), "alt must be a fit"),
    ("bootstrap", lambda c, b: bootstrap(b, sigma, nsim=2, rng=1), "model must be a fit of lmmlib"),
]
KINDS = ["str", "DataFrame", "None", "statsmodels", "lm", "glmer"]
MODEL_CASES = ([(k, *row) for row in LMER_ONLY for k in KINDS]
               + [(k, *row) for row in LMER_OR_LM for k in KINDS if k != "lm"]
               + [(k, *row) for row in MIXED for k in KINDS if k != "glmer"]
               + [(k, *row) for row in ANY_FIT for k in KINDS if k not in ("lm", "glmer")])


@pytest.mark.parametrize("kind, call, match", [row[:1] + row[2:] for row in MODEL_CASES],
                         ids=[f"{row[1]}-{row[0]}" for row in MODEL_CASES])
def test_model_arguments_of_the_inference_functions(c, kind, call, match):
    bad = c.bad[kind]
    if bad is None and match.startswith("mA"):  # mA=None means "not given"
        with pytest.raises(LmmlibError, match="^give both mA"):
            call(c, bad)
        return
    with pytest.raises(ArgumentError, match=f"^{match}.*got {re.escape(describe(bad))}$"):
        call(c, bad)


def test_valid_models_give_the_same_tables(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        positional = lmmlib.anova(c.lm, c.m, names=("lm", "lmer"))
        as_dict = lmmlib.anova({"lm": c.lm, "lmer": c.m})
    pd.testing.assert_frame_equal(pd.DataFrame(positional), pd.DataFrame(as_dict))
    assert list(lmmlib.anova({"a": c.pois, "b": c.pois}).index) == ["a", "b"]  # glmer fits
    assert not supports_batch(c.pois)  # a glmer fit is never refitted as a linear model


# -- 7. levels, methods and profile options --------------------------------------------
@pytest.mark.parametrize("level", [1.5, 0, 1, -0.1, 95, "0.95", True, None, np.nan])
@pytest.mark.parametrize("call", [
    lambda c, v: confint(c.m, method="wald", level=v),
    lambda c, v: prediction_interval(c.m, nsim=2, rng=1, level=v),
    lambda c, v: bootstrap(c.m, sigma, nsim=2, rng=1).ci(v),
    lambda c, v: percent_labels(v),
    lambda c, v: dc_predict(clone_fit(c.oneway, **CLONE), level=v),
], ids=["confint", "prediction_interval", "BootstrapResult.ci", "percent_labels", "dc_predict"])
def test_levels(c, call, level):
    with pytest.raises(ArgumentError, match=r"^level must be a number between 0 and 1"):
        call(c, level)


@pytest.mark.parametrize("method", ["bogus", "", 5, None, "bootstrap"])
def test_methods(c, method):
    with pytest.raises(ArgumentError, match=r"^method must be one of 'profile', 'wald', 'boot'"):
        confint(c.m, method=method)


@pytest.mark.parametrize("kwargs, match", [
    ({"level_max": 1.5}, "^level_max must be a number between 0 and 1"),
    ({"level_max": "0.99"}, "^level_max must be"),
    ({"n_points": 1}, "^n_points must be an integer >= 2"),
    ({"maxpts": 2}, "^maxpts must be an integer >= 3"),
    ({"maxpts": 10.0}, "^maxpts must be an integer >= 3"),
    ({"which": 3}, "^which must be a parameter name or a list of names"),
    ({"which": ".sig09"}, r"^which: unknown parameter '\.sig09'"),
])
def test_profile_options(c, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        profile(c.m, **kwargs)


def test_confint_parm_and_a_profile_that_does_not_reach_the_level(c):
    with pytest.raises(ArgumentError, match="^parm must be a parameter name or a list"):
        confint(c.m, method="wald", parm=3)
    with pytest.raises(ArgumentError, match=r"^parm: unknown parameter '\.sig09'"):
        confint(c.m, method="wald", parm=[".sig09"])
    prof = profile(c.m, which=".sigma", level_max=0.9, n_points=4)
    with pytest.raises(ArgumentError, match=r"^prof reaches \|zeta\| = 1.645 \(level_max = "
                                            r"0.9\), not the 1.96 of level = 0.95"):
        confint(c.m, prof=prof, parm=".sigma")
    with pytest.raises(ArgumentError, match="^prof must be a profile"):
        confint(c.m, prof=pd.DataFrame({"a": [1]}))
    other = profile(fitted("pig_ml"), which=".sigma", n_points=4)
    with pytest.raises(ArgumentError, match="^prof is the profile of another model"):
        confint(c.m, prof=other, parm=".sigma")
    ok = confint(c.m, prof=prof, parm=".sigma", level=0.8)  # fine for the levels it reaches
    assert ok.loc[".sigma"].iloc[0] < c.m.sigma < ok.loc[".sigma"].iloc[1]


def test_valid_level_and_method_forms_agree(c):
    ref = confint(c.m, method="wald", level=0.9)
    pd.testing.assert_frame_equal(confint(c.m, method="WALD", level=np.float64(0.9)), ref)
    pd.testing.assert_frame_equal(confint(c.m, method="Wald", level=0.9, parm="beta_"),
                                  ref.loc[["(Intercept)"]])
    assert as_level(np.float32(0.5)) == 0.5
    assert coef_table(c.m, ddf="Residual").equals(coef_table(c.m, ddf="residual"))


# -- 8. other arguments that reached numpy, joblib, nlopt or scipy ----------------------
@table([
    ("log_grid order", lambda c: lambda_grid(10, (1.0, -1.0)), "^log_grid must be increasing"),
    ("log_grid str", lambda c: lambda_grid(10, "ab"), "^log_grid must be a pair"),
    ("log_grid number", lambda c: lambda_grid(10, 5), "^log_grid must be a pair"),
    ("log_grid inf", lambda c: lambda_grid(10, (0.0, np.inf)), r"^log_grid\[1\] must be a fin"),
    ("search", lambda c: exact_rlrt(c.m, 10, 1, search="local"), "^search must be one of 'asce"),
    ("quantile 1.5", lambda c: exact_rlrt(c.m, nsim=10, rng=1).quantile(1.5), "^q must be prob"),
    ("quantile str", lambda c: exact_rlrt(c.m, nsim=10, rng=1).quantile("a"), "^q must be prob"),
    ("batch Y shape", lambda c: batch_refit(c.m, np.zeros((2, 19))), r"^Y must be .*\(B, 20\)"),
    ("batch Y nan", lambda c: batch_refit(c.m, np.full((2, 20), np.nan)), "with non-finite"),
    ("batch Y str", lambda c: batch_refit(c.m, [["a"] * 20]), "^Y must be a matrix"),
    ("batch tol", lambda c: batch_refit(c.m, np.zeros((1, 20)), tol=0), "^tol must be a posit"),
    ("mixture stat", lambda c: chisq_mixture_pvalue("x", 1), "^stat must be a finite real"),
    ("mixture stat nan", lambda c: chisq_mixture_pvalue(np.nan, 1), "^stat must be a finite"),
    ("level screen factor", lambda c: drop_level_screen(c.lm, 1), "^factor must be the name"),
    ("ddf", lambda c: coef_table(c.m, ddf="kenward-roger"), "^ddf must be one of 'satterthwait"),
    ("contrasts L", lambda c: c.parts.df(np.ones((1, 2))), r"^L must be finite contrasts of sh"),
    ("prior str", lambda c: Priors(a_sigma="0.1"), "^prior parameter a_sigma must be a finite"),
    ("loglik params", lambda c: oneway_loglik([1.0, 2.0], c.oneway), "^params must be the thr"),
    ("information", lambda c: oneway_information([0, 1, 1], c.oneway, kind="x"), "^kind must be"),
    ("clone params", lambda c: clone_fit(c.oneway, **CLONE, params=[1, 2]), "^params must be"),
    ("inits", lambda c: clone_fit(c.oneway, **CLONE, inits=(np.ones(2), [1, 1])), r"^inits mus"),
    ("response", lambda c: clone_fit(c.oneway, **CLONE, response=["y"]), "^response must be a c"),
    ("n_clones", lambda c: dc_fit(c.oneway, n_clones=5, rng=1), "^n_clones must be a list"),
    ("n_clones each", lambda c: dc_fit(c.oneway, n_clones=[1, 2.5]), r"^n_clones \(each\) must"),
    ("dcdiag", lambda c: dcdiag([]), "^fits must be a CloneFit"),
    ("n_draws", lambda c: dc_predict(clone_fit(c.oneway, **CLONE), n_draws=1.5), "^n_draws mu"),
    ("dc_predict fit", lambda c: dc_predict("fit"), "^fit must be a CloneFit"),
    ("dc_se fit", lambda c: dc_se({"mu": 1.0}), "^fit must be a CloneFit"),
    ("draws", lambda c: lambda_max([["a", "b"], ["c", "d"]]), "^draws must be an array of num"),
    ("aov formula", lambda c: lmmlib.aov_table(["bright ~ operator"], c.pulp), "^formula must"),
    ("moments", lambda c: lmmlib.moment_estimator(c.pulp, "bright", ["operator"]), "^group mus"),
    ("stratified", lambda c: lmmlib.stratified_fit("bright ~ 1", c.pulp, group=1), "^group must"),
])
def test_other_arguments(c, call, match):
    with pytest.raises(ArgumentError, match=match):
        call(c)


def test_value_errors_that_stay_data_errors(c):
    # the existing error types of these checks are kept: a response and a df are data
    with pytest.raises(DataError, match="new response y must be 20 numbers"):
        refit(c.m, ["a"] * 20)
    for df in (True, 1.5, "1"):
        with pytest.raises(DataError, match="df of the chi-square mixture"):
            chisq_mixture_pvalue(1.0, df)
    with pytest.raises(LmmlibError, match="prior parameters must be positive: b_tau"):
        Priors(b_tau=-1.0)


def test_valid_forms_of_the_other_arguments(c):
    assert Priors(mu_var=np.inf).mu_var == np.inf  # a flat prior for mu
    assert clone_fit(c.oneway, **CLONE, params="mu").names == ("mu",)
    assert c.parts.df([1.0]).shape == (1,)
    res = exact_rlrt(c.m, nsim=50, rng=1)
    assert res.quantile(np.float64(0.5)) == np.quantile(res.null_sample, 0.5)
    assert chisq_mixture_pvalue(np.float64(2.568371), np.int64(1)) == pytest.approx(
        chisq_mixture_pvalue(2.568371, 1))
