"""``lmer`` on a Dask DataFrame equals ``lmer`` on the same rows in memory.

The partitioned fit sums the same cross-products in another order (partition by
partition), so its criterion at any θ equals the in-memory one up to rounding:
sums over n rows and the log-determinants agree to ~1e-13 relative, hence
CRITERION_RTOL = 1e-10 with a wide margin.  The two optimisations then follow the
same BOBYQA path up to that rounding, amplified by the optimiser: the optima are
compared as two fits of one criterion (conftest's SAME_OPTIMUM for the criterion,
SAME_OPTIMUM_SE standard errors for θ and β).  Per-level quantities (BLUPs, their
conditional SDs, predictions) are functions of θ̂ and β̂ and move with them, by at
most a few SAME_OPTIMUM_SE of their own scale: PARAM_RTOL covers them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_OPTIMUM_SE, same_optimum

import lmmlib
from lmmlib.errors import DataError, DataWarning, FormulaError

dd = pytest.importorskip("dask.dataframe")

from lmmlib.models.partitioned import (  # noqa: E402
    PASSES,
    PartitionedLinearMixedModel,
    lmer_partitioned,
)

CRITERION_RTOL = 1e-10  # the same sums in another order: rounding only (see above)
PARAM_RTOL = 1e-5  # parameters of two fits of one criterion, relative (see above)


def _crossed(n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 30, n)
    b = rng.integers(0, 12, n)
    x = rng.normal(size=n)
    f = rng.choice(["lo", "mid", "hi"], n)
    y = (1000 + 2 * x + (f == "hi") + rng.normal(0, 1, 30)[a] + rng.normal(0, 0.7, 30)[a] * x
         + rng.normal(0, 0.7, 12)[b] + rng.normal(0, 1, n))
    return pd.DataFrame({"y": y, "x": x, "f": f, "a": [f"s{i:02d}" for i in a], "b": b})


CASES = {
    "intercept": ("weight ~ weeks + (1 | id)", "pig"),
    "slope": ("weight ~ weeks + (weeks | id)", "pig"),
    "crossed": ("y ~ x + f + (1 | a) + (1 | b)", "crossed"),
    "crossed_slope": ("y ~ x + (x | a) + (1 | b)", "crossed"),
    "crossed_slope_second": ("y ~ x + (1 | a) + (x | b)", "crossed"),
    "no_fixed": ("I(y - 1000) ~ 0 + (1 | a) + (1 | b)", "crossed"),
}


def _data(which: str) -> pd.DataFrame:
    return _crossed() if which == "crossed" else lmmlib.datasets.load(which)


def _partitionings(df: pd.DataFrame, key: str):
    """Evenly split, one partition, and sorted by a grouping factor (partitions miss levels)."""
    yield dd.from_pandas(df, npartitions=5, sort=False)
    yield dd.from_pandas(df, npartitions=1, sort=False)
    yield dd.from_pandas(df.sort_values(key).reset_index(drop=True), npartitions=7, sort=False)


def _assert_same_fit(m, m0):
    assert m.objective == same_optimum(m0.objective)
    for th in (m0.theta, m0.theta * 0.5 + 0.1):  # the criterion itself, at fixed θ
        assert m.devfun(th) == pytest.approx(m0.devfun(th), rel=CRITERION_RTOL)
        assert m.devfun(th, reml=False) == pytest.approx(m0.devfun(th, reml=False),
                                                         rel=CRITERION_RTOL)
    se0 = m0.se.to_numpy()
    assert np.all(np.abs(m.fixef.to_numpy() - m0.fixef.to_numpy()) <= SAME_OPTIMUM_SE * se0)
    np.testing.assert_allclose(m.theta, m0.theta, rtol=PARAM_RTOL, atol=PARAM_RTOL)
    assert list(m.fixef.index) == list(m0.fixef.index)
    assert m.nobs == m0.nobs and m.npar == m0.npar
    assert m.sigma == pytest.approx(m0.sigma, rel=PARAM_RTOL)
    assert m.aic == same_optimum(m0.aic) and m.bic == same_optimum(m0.bic)
    np.testing.assert_allclose(m.vcov.to_numpy(), m0.vcov.to_numpy(), rtol=PARAM_RTOL)
    pd.testing.assert_frame_equal(m.varcorr, m0.varcorr, rtol=PARAM_RTOL)
    r, r0 = m.ranef(condvar=True), m0.ranef(condvar=True)
    pd.testing.assert_frame_equal(r[["grpvar", "term", "grp"]], r0[["grpvar", "term", "grp"]])
    np.testing.assert_allclose(r.condval, r0.condval, rtol=PARAM_RTOL,
                               atol=PARAM_RTOL * np.abs(r0.condval).max())
    np.testing.assert_allclose(r.condsd, r0.condsd, rtol=PARAM_RTOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dask_fit_equals_pandas_fit(case):
    formula, which = CASES[case]
    df = _data(which)
    m0 = lmmlib.lmer(formula, df)
    key = "a" if which == "crossed" else "id"
    for ddf in _partitionings(df, key):
        m = lmer_partitioned(formula, ddf)
        assert isinstance(m, PartitionedLinearMixedModel)
        _assert_same_fit(m, m0)


def test_ml_fit_and_refit_ml_equal_pandas():
    df = _crossed()
    formula = "y ~ x + (1 | a) + (1 | b)"
    m0 = lmmlib.lmer(formula, df, reml=False)
    ddf = dd.from_pandas(df, npartitions=4)
    _assert_same_fit(lmer_partitioned(formula, ddf, reml=False), m0)
    _assert_same_fit(lmer_partitioned(formula, ddf).refit_ml(), m0)


def test_predict_newdata_matches_pandas():
    df = _crossed()
    formula = "y ~ x + f + (x | a) + (1 | b)"
    m0 = lmmlib.lmer(formula, df)
    m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=3))
    new = df.iloc[:25]
    # predictions are linear in β̂ and b̂: they move with them (PARAM_RTOL of their scale)
    scale = np.abs(m0.predict(new)).max()
    np.testing.assert_allclose(m.predict(new), m0.predict(new), atol=PARAM_RTOL * scale)
    np.testing.assert_allclose(m.predict(new, re=False), m0.predict(new, re=False),
                               atol=PARAM_RTOL * scale)


def test_lazy_fitted_and_residuals_match_pandas():
    df = _crossed(200)
    formula = "y ~ x + (1 | a)"
    m0 = lmmlib.lmer(formula, df)
    m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=3))
    fitted = m.fitted_partitioned().compute()
    scale = np.abs(m0.fitted).max()
    np.testing.assert_allclose(fitted.sort_index(), m0.fitted, atol=PARAM_RTOL * scale)
    np.testing.assert_allclose(m.residuals_partitioned().compute().sort_index(), m0.residuals,
                               atol=PARAM_RTOL * scale)


def test_per_row_results_raise_naming_the_alternative():
    m = lmer_partitioned("weight ~ weeks + (1 | id)",
                         dd.from_pandas(lmmlib.datasets.load("pig"), npartitions=2))
    with pytest.raises(DataError, match="fitted_partitioned"):
        _ = m.fitted
    with pytest.raises(DataError, match="residuals_partitioned"):
        _ = m.residuals
    with pytest.raises(DataError, match="fitted_partitioned"):
        m.predict()
    with pytest.raises(DataError, match="Dask"):
        m.simulate(2, rng=1)
    with pytest.raises(DataError, match="Dask DataFrame"):
        m.refit(np.zeros(m.nobs))
    with pytest.raises(DataError, match="model.data"):
        _ = m.model_frame
    with pytest.raises(DataError, match="wald"):
        m.confint()
    with pytest.raises(DataError, match="Satterthwaite"):
        m.coef_table("kr")
    with pytest.raises(DataError, match="Satterthwaite"):
        m.anova(ddf="Kenward-Roger")
    assert m.confint("wald").shape[0] == m.npar
    assert "Scaled residuals" not in str(m.summary())
    assert "REML criterion at convergence" in str(m.summary())


def test_missing_values_dropped_and_counted_as_pandas():
    df = _crossed(300)
    df.loc[[3, 50, 51], "x"] = np.nan
    df.loc[[7, 50], "y"] = np.nan
    df["a"] = df["a"].astype(object)
    df.loc[[100], "a"] = None
    formula = "y ~ x + (1 | a)"
    with pytest.warns(DataWarning, match=r"dropped 5 of 300 rows .*y: 2, x: 3, a: 1") as rec:
        m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=4))
    with warnings.catch_warnings(record=True) as rec0:
        warnings.simplefilter("always")
        m0 = lmmlib.lmer(formula, df)
    assert [str(w.message) for w in rec if "dropped" in str(w.message)] == \
        [str(w.message) for w in rec0 if "dropped" in str(w.message)]
    assert m.nobs == m0.nobs == 295
    _assert_same_fit(m, m0)
    with pytest.raises(DataError, match="na_action='fail'"):
        lmer_partitioned(formula, dd.from_pandas(df, npartitions=4), na_action="fail")


def test_rank_deficient_column_dropped_as_pandas():
    df = _crossed(300)
    df["x2"] = 2 * df["x"]
    formula = "y ~ x + x2 + (1 | a)"
    with pytest.warns(DataWarning, match="dropping 1 column"):
        m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=3))
    with pytest.warns(DataWarning, match="dropping 1 column"):
        m0 = lmmlib.lmer(formula, df)
    assert list(m.fixef.index) == list(m0.fixef.index) == ["(Intercept)", "x"]
    _assert_same_fit(m, m0)


def test_categorical_levels_in_category_order():
    df = _crossed(300)
    df["f"] = pd.Categorical(df["f"], categories=["mid", "lo", "hi", "unused"])
    formula = "y ~ x + f + (1 | a)"
    m0 = lmmlib.lmer(formula, df)
    m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=3))
    assert list(m.fixef.index) == list(m0.fixef.index)  # reference level "mid"
    _assert_same_fit(m, m0)


def test_unknown_column_and_unsupported_formulas_are_errors():
    ddf = dd.from_pandas(_crossed(100), npartitions=2)
    with pytest.raises(FormulaError, match="nothere"):
        lmer_partitioned("y ~ nothere + (1 | a)", ddf)
    with pytest.raises(FormulaError, match="zz"):
        lmer_partitioned("y ~ x + (1 | zz)", ddf)
    with pytest.raises(FormulaError, match="combined column"):
        lmer_partitioned("y ~ x + (1 | a:b)", ddf)
    with pytest.raises(FormulaError, match="stateful"):
        lmer_partitioned("y ~ scale(x) + (1 | a)", ddf)
    with pytest.raises(FormulaError, match="offset"):
        lmer_partitioned("y ~ x + offset(x) + (1 | a)", ddf)
    with pytest.raises(lmmlib.errors.ArgumentError, match="weights"):
        lmer_partitioned("y ~ x + (1 | a)", ddf, weights="x")
    with pytest.raises(lmmlib.errors.ArgumentError, match="subset"):
        lmer_partitioned("y ~ x + (1 | a)", ddf, subset="x > 0")
    with pytest.raises(lmmlib.errors.ArgumentError, match="Dask DataFrame"):
        lmer_partitioned("y ~ x + (1 | a)", _crossed(100))


def test_two_passes_over_the_partitions():
    calls = []

    def counted(part):
        calls.append(len(part))
        return part

    df = _crossed(200)
    ddf = dd.from_pandas(df, npartitions=4).map_partitions(counted, meta=df.iloc[:0])
    calls.clear()
    lmer_partitioned("y ~ x + (1 | a)", ddf, scheduler="sync")
    assert PASSES == 2
    assert len([c for c in calls if c > 0]) == PASSES * 4


def test_local_cluster_fit_equals_pandas():
    distributed = pytest.importorskip("distributed")
    df = _crossed(300)
    formula = "y ~ x + (1 | a) + (1 | b)"
    m0 = lmmlib.lmer(formula, df)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=4))
    _assert_same_fit(m, m0)


def test_response_expression_drops_undefined_rows_as_pandas():
    df = _crossed(300)
    df["w"] = df["y"] - 1000  # about half the rows <= 0: log(w) undefined there
    formula = "log(w + 3) ~ x + (1 | a)"
    with warnings.catch_warnings(record=True) as rec0:
        warnings.simplefilter("always")
        m0 = lmmlib.lmer(formula, df)
    with pytest.warns(DataWarning, match="not finite") as rec:
        m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=3))
    assert [str(w.message) for w in rec if "finite" in str(w.message)] == \
        [str(w.message) for w in rec0 if "finite" in str(w.message)]
    assert m.nobs == m0.nobs < 300
    _assert_same_fit(m, m0)


def test_progress_bar_reports_both_passes(capsys):
    df = _crossed(100)
    lmer_partitioned("y ~ x + (1 | a)", dd.from_pandas(df, npartitions=2), progress=True)
    out = capsys.readouterr().out
    assert out.count("100% Completed") == PASSES  # dask's ProgressBar ends each pass at 100%


def test_lmer_dispatches_a_dask_frame_to_the_partitioned_fit():
    pig = lmmlib.datasets.load("pig")
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", dd.from_pandas(pig, npartitions=3))
    assert isinstance(m, lmmlib.PartitionedLinearMixedModel)
    # the same criterion as the in-memory fit: the same optimum (rounding of the sums)
    ref = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    assert m.devfun(ref.theta) == pytest.approx(ref.objective, rel=1e-10)
