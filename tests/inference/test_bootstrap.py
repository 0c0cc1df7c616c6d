"""Parametric bootstrap: LRT p-value (course seed 002, pulp), reproducibility, any statistic."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import (
    OPT_GAP,
    SAME_OPTIMUM,
    course_value,
    fixture_data,
    lme4_fixture,
    optimum_spread,
)

import lmmlib
from lmmlib.inference.bootstrap import CHUNK, ZERO_TOL, bootstrap, bootstrap_lrt

PULP_ALT = "bright ~ 1 + (1 | operator)"

# RLRsim 3.1-8 exactLRT(smod, nullmod, nsim = 1e6, seed = 1) for the pulp test (R 4.2.2,
# lme4 1.1-31): the finite-sample null distribution of the LRT, which the parametric
# bootstrap estimates (y ~ N(mu, sigma^2) makes the LRT pivotal).  Its Monte Carlo error
# (~1.5e-4 and ~5e-4) is negligible next to the tolerances below.
RLRSIM_P = 0.022126
RLRSIM_SHARE_ZERO = 0.701889


@pytest.fixture(scope="module")
def pulp_models(pulp):
    return lmmlib.lm("bright ~ 1", pulp), lmmlib.lmer(PULP_ALT, pulp, reml=False)


@pytest.fixture(scope="module")
def pulp_reml(pulp):
    return lmmlib.lmer(PULP_ALT, pulp)


def _mc_se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n))


def test_observed_lrt_is_the_course_value(pulp_models):
    null, alt = pulp_models
    res = bootstrap_lrt(null, alt, nsim=10, rng=1)
    # course notes (seed 002): LRT 2.568371, pchisq(., 1, lower = FALSE) = 0.1090199; half
    # a printed unit plus the ML fit's criterion gap (tests/conftest.py)
    assert res.observed == course_value(2.568371, 6, OPT_GAP)
    assert res.df == 1
    assert res.p_chisq == course_value(0.1090199, 7, OPT_GAP)


def test_pulp_bootstrap_p_value_and_zero_share(pulp_models):
    null, alt = pulp_models
    n = 4000
    res = bootstrap_lrt(null, alt, nsim=n, rng=2002)
    se = _mc_se(RLRSIM_P, n)  # 0.0023
    # Within 3 Monte Carlo standard errors of RLRsim's exact finite-sample p-value ...
    assert abs(res.p_value - RLRSIM_P) < 3 * se
    # ... and of the course's B = 1000 estimate 0.026 (s.e. 0.005, both errors combined)
    assert abs(res.p_proportion - 0.026) < 3 * np.hypot(se, 0.005032296)
    # ~69% of the course's statistics are 0 (s.e. 0.015 at B = 1000); RLRsim: 70.2%
    assert abs(res.share_zero - RLRSIM_SHARE_ZERO) < 3 * _mc_se(0.7, n)
    assert abs(res.share_zero - 0.69) < 3 * np.hypot(_mc_se(0.7, n), _mc_se(0.69, 1000))
    # the reported quantities agree with each other (definitions in the docstrings): the
    # same integer counts and the same arithmetic, hence exact
    k = int(np.sum(res.statistics >= res.observed))
    assert res.n_extreme == k
    assert res.p_value == (1 + k) / (1 + n)
    assert res.p_proportion == k / n
    assert res.mc_se == pytest.approx(_mc_se(res.p_value, n))  # the same formula
    assert res.statistics.shape == (n,) and res.statistics.min() >= 0
    text = repr(res)
    assert "bootstrap p = " in text and f"{n} simulations" in text


def test_same_seed_same_statistics(pulp_models):
    null, alt = pulp_models
    a = bootstrap_lrt(null, alt, nsim=300, rng=7)
    b = bootstrap_lrt(null, alt, nsim=300, rng=7)
    c = bootstrap_lrt(null, alt, nsim=300, rng=8)
    # the same seed, code and data: bit-identical
    np.testing.assert_array_equal(a.statistics, b.statistics)
    assert not np.array_equal(a.statistics, c.statistics)
    # without a seed one is drawn and recorded, and it reproduces the run
    d = bootstrap_lrt(null, alt, nsim=60)
    np.testing.assert_array_equal(d.statistics, bootstrap_lrt(null, alt, nsim=60,
                                                              rng=d.seed).statistics)


def test_vectorised_path_equals_refit_loop(pulp_models):
    null, alt = pulp_models
    n = 2 * CHUNK + 7
    fast = bootstrap_lrt(null, alt, nsim=n, rng=11)
    loop = bootstrap_lrt(null, alt, nsim=n, rng=11, batch=False)
    # same simulated responses; the null fits (lm) are the same closed form, the ML refits
    # of the alternative the same optimum: batch_refit's exact one, refit()'s within
    # OPT_GAP of it (tests/conftest.py), hence statistics within 2·OPT_GAP
    np.testing.assert_allclose(fast.statistics, loop.statistics, atol=SAME_OPTIMUM["abs"])
    # so the counts agree, except for statistics within that of the thresholds (the
    # observed LRT for n_extreme, ZERO_TOL for the zeros): none in practice
    near = np.abs(fast.statistics - fast.observed) <= SAME_OPTIMUM["abs"]
    assert abs(fast.n_extreme - loop.n_extreme) <= near.sum()
    near = np.abs(fast.statistics - ZERO_TOL) <= SAME_OPTIMUM["abs"]
    assert abs(fast.share_zero - loop.share_zero) * n <= near.sum()


def test_lmer_null_uses_the_loop_when_alt_cannot_batch():
    # a random slope cannot be batched: per-replicate refits of both lmer fits
    data = fixture_data(lme4_fixture("sleepstudy_ml"))
    null = lmmlib.lmer("Reaction ~ Days + (1 | Subject)", data, reml=False)
    alt = lmmlib.lmer("Reaction ~ Days + (Days | Subject)", data, reml=False)
    res = bootstrap_lrt(null, alt, nsim=6, rng=3)
    # lme4 1.1-31: anova(m0, m1) on sleepstudy gives Chisq 42.139 on 2 Df (its own
    # optimum; printed to 3 decimals, 1e-3 is twice the half unit)
    assert res.observed == pytest.approx(42.1393, abs=1e-3)
    assert res.df == 2 and res.statistics.shape == (6,)
    assert res.p_value == pytest.approx(1 / 7)  # no simulated LRT comes near 42: (1+0)/(1+6)


def test_reml_fits_are_refitted_by_ml(pulp_models, pulp_reml):
    null, alt = pulp_models
    with pytest.warns(lmmlib.LmmlibWarning, match="refitted with reml=False"):
        res = bootstrap_lrt(null, pulp_reml, nsim=5, rng=1)
    # the ML refit of the REML fit and the ML fit `alt` are two optima of one criterion:
    # SAME_OPTIMUM (a REML criterion would be off by 2)
    assert res.observed == pytest.approx(null.objective - alt.objective, **SAME_OPTIMUM)


def test_bad_model_pairs_are_errors(pulp_models, pig):
    null, alt = pulp_models
    with pytest.raises(lmmlib.DataError, match="more parameters"):
        bootstrap_lrt(alt, null, nsim=5, rng=1)
    other = lmmlib.lm("weight ~ weeks", pig)
    with pytest.raises(lmmlib.DataError, match="same response"):
        bootstrap_lrt(other, alt, nsim=5, rng=1)
    with pytest.raises(lmmlib.LmmlibError, match="positive integer"):
        bootstrap_lrt(null, alt, nsim=0, rng=1)
    with pytest.raises(lmmlib.LmmlibError, match="seed"):
        bootstrap_lrt(null, alt, nsim=5, rng=-3)


def test_bootstrap_se_of_the_mean_is_the_closed_form(pulp_reml):
    # Balanced one-way design: beta* is the grand mean of y*, so without the BLUPs
    # (new effects) its s.d. is sqrt(s_b^2/4 + s^2/20), the model's own SE 0.1494
    # (course notes), and conditional on the BLUPs it is s/sqrt(20).
    n = 500
    new = bootstrap(pulp_reml, lambda m: m.fixef, nsim=n, rng=5)
    cond = bootstrap(pulp_reml, lambda m: m.fixef, nsim=n, rng=5, use_u=True)
    rel = 4 / np.sqrt(2 * (n - 1))  # 4 s.e. of a sample s.d., relative
    assert new.se["(Intercept)"] == pytest.approx(0.1494, rel=rel)
    assert cond.se["(Intercept)"] == pytest.approx(pulp_reml.sigma / np.sqrt(20), rel=rel)
    # percentile interval around 60.4 of half-width 1.96 s.e. (within MC error: each
    # 2.5 % quantile of 500 draws has SE sqrt(.025·.975/500)/φ(1.96) = 0.12 s.e., so the
    # half-width is 4.3 % uncertain; 15 % is 3.5 SE)
    lo, hi = new.ci(0.95).loc["(Intercept)"]
    assert lo < 60.4 < hi
    assert (hi - lo) / 2 == pytest.approx(1.96 * 0.1494, rel=0.15)
    assert abs(new.bias["(Intercept)"]) < 3 * 0.1494 / np.sqrt(n)  # 3 MC SEs of the mean
    assert list(new.ci(0.9).columns) == ["5 %", "95 %"]
    assert new.replicates.shape == (n, 1) and "conditional" in repr(cond)


def test_bootstrap_of_an_lm_simulates_with_the_residual_standard_error(pulp):
    # R's simulate.lm draws with sigma(fit) = sqrt(RSS/(n - p)); the mean of 20 such
    # draws has s.d. sigma/sqrt(20)
    fit = lmmlib.lm("bright ~ 1", pulp)
    res = bootstrap(fit, lambda m: m.fixef, nsim=1000, rng=9)
    assert res.se.iloc[0] == pytest.approx(fit.sigma / np.sqrt(20), rel=3 / np.sqrt(2 * 999))


def test_statistic_shapes_and_names(pulp_reml):
    def sigma(m):
        return m.sigma

    assert list(bootstrap(pulp_reml, sigma, nsim=3, rng=1).replicates.columns) == ["sigma"]
    arr = bootstrap(pulp_reml, lambda m: np.array([m.sigma, m.theta[0]]), nsim=3, rng=1)
    assert list(arr.replicates.columns) == [0, 1]
    blups = bootstrap(pulp_reml, lambda m: m.ranef_arrays()["operator"].iloc[:, 0], nsim=3,
                      rng=1)
    assert list(blups.observed.index) == ["a", "b", "c", "d"]
    # course notes: BLUP of operator a is -0.1219403 (half a unit of the 7th decimal plus
    # the BLUP's spread under the optimiser gap, optimum_spread)
    assert blups.observed["a"] == course_value(-0.1219403, 7, optimum_spread(
        "pulp_reml", "condval", 0))
    with pytest.raises(lmmlib.LmmlibError, match="values on a bootstrap refit"):
        bootstrap(pulp_reml, lambda m: m.fixef if m is pulp_reml else [1.0, 2.0], nsim=2, rng=1)


def test_failed_refits_are_nan_rows_with_a_warning(pulp_reml, monkeypatch):
    refit = pulp_reml.refit

    def flaky(y):
        if y[0] > 60.0:
            raise lmmlib.LmmlibError("no convergence")
        return refit(y)

    monkeypatch.setattr(pulp_reml, "refit", flaky)
    with pytest.warns(lmmlib.LmmlibWarning, match="bootstrap refits failed"):
        res = bootstrap(pulp_reml, lambda m: m.fixef, nsim=40, rng=2)
    failed = res.replicates.isna().all(axis=1)
    assert 0 < failed.sum() < 40
    assert np.isfinite(res.se.iloc[0]) and np.isfinite(res.ci().to_numpy()).all()
    # the interval is the quantiles of the successful replicates (the same computation)
    np.testing.assert_allclose(res.ci().iloc[0], np.quantile(res.replicates.dropna(), [.025, .975]))


def test_identical_for_any_n_jobs(pulp_models, pulp_reml):
    null, alt = pulp_models
    n = 2 * CHUNK + 3
    one = bootstrap_lrt(null, alt, nsim=n, rng=4, batch=False, n_jobs=1)
    two = bootstrap_lrt(null, alt, nsim=n, rng=4, batch=False, n_jobs=2)
    # bit-identical by construction: each chunk has its own random stream and is refitted
    # by the same code on the same data, wherever it runs (20-row fits: single-threaded
    # BLAS either way)
    np.testing.assert_array_equal(one.statistics, two.statistics)


def test_progress_bar_only_on_request(pulp_reml, capsys):
    bootstrap(pulp_reml, lambda m: m.sigma, nsim=4, rng=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err
    bootstrap(pulp_reml, lambda m: m.sigma, nsim=4, rng=1, progress=False)
    assert capsys.readouterr().err == ""


def test_dask_backend_gives_the_same_replicates(pulp_reml):
    pytest.importorskip("distributed")
    import joblib
    from distributed import Client, LocalCluster

    def stat(m):
        # second component: 1 when the refit ran in a Dask worker thread
        return [m.sigma, float("Dask" in threading.current_thread().name)]

    local = bootstrap(pulp_reml, stat, nsim=CHUNK + 10, rng=3)
    # two worker threads: with a single core joblib would run the chunks in-process
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        with joblib.parallel_config(backend="dask"):
            remote = bootstrap(pulp_reml, stat, nsim=CHUNK + 10, rng=3)
    assert local.replicates[1].sum() == 0 and remote.replicates[1].min() == 1
    # bit-identical by construction, as for n_jobs above
    np.testing.assert_array_equal(local.replicates[0], remote.replicates[0])


def test_lmmlib_bootstrap_is_callable_as_the_issue_names_it(pulp):
    # lmmlib.bootstrap(model, stat, n, seed) is the module's bootstrap(); the module's
    # other functions stay reachable as lmmlib.bootstrap.<name>
    m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp)
    via_module = lmmlib.bootstrap(m, lambda f: f.fixef, nsim=20, rng=3, progress=False)
    direct = bootstrap(m, lambda f: f.fixef, nsim=20, rng=3, progress=False)
    np.testing.assert_array_equal(via_module.replicates, direct.replicates)  # the same call
    assert lmmlib.inference.bootstrap.bootstrap_lrt is bootstrap_lrt


def test_rng_takes_a_seed_or_a_generator_and_records_the_root(pulp_models, pulp_reml):
    null, alt = pulp_models
    nsim = CHUNK + 3
    gen = bootstrap_lrt(null, alt, nsim=nsim, rng=np.random.default_rng(12), batch=False,
                        n_jobs=2)
    # a Generator gives the root: its first 63-bit integer (numpy's documented stream)
    assert gen.seed == int(np.random.default_rng(12).integers(0, 2**63))
    # the recorded root, as an integer seed, reproduces the run bit for bit, with any n_jobs
    again = bootstrap_lrt(null, alt, nsim=nsim, rng=gen.seed, batch=False, n_jobs=1)
    np.testing.assert_array_equal(gen.statistics, again.statistics)
    assert again.seed == gen.seed and again.nsim == nsim
    # an integer seed is the root itself
    assert bootstrap_lrt(null, alt, nsim=5, rng=7).seed == 7
    # the generator is advanced: two calls with one generator draw two roots
    g = np.random.default_rng(3)
    a = bootstrap(pulp_reml, lambda m: m.sigma, nsim=4, rng=g)
    b = bootstrap(pulp_reml, lambda m: m.sigma, nsim=4, rng=g)
    assert a.seed != b.seed
    c = bootstrap(pulp_reml, lambda m: m.sigma, nsim=4, rng=np.random.default_rng(3), n_jobs=2)
    assert c.seed == a.seed and c.replicates.equals(a.replicates)
