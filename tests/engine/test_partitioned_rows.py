"""The direct route of the cross-product pass gives the general route's rows and sums.

For formulas whose fixed part and random-term covariates are an intercept and
numeric columns, a partition's [X y], codes and covariates are taken from its
numpy arrays (:func:`lmmlib.engine.partrows.fast_rows`) instead of a model
frame and formulaic (:func:`~lmmlib.engine.partrows.general_rows`).  The rows
are the same numbers, so they are compared exactly; the sums are then the same
arithmetic, compared at SUM_RTOL.  The per-partition kernels (the chunked QR,
the bincount level sums, the counting of distinct values) are checked against
plain numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_OPTIMUM_SE, same_optimum

import lmmlib
from lmmlib.engine import partitioned, partkernels, partrows
from lmmlib.engine.partitioned import (
    combine_levels,
    distinct_values,
    make_rule,
    parse_for_partitions,
    partition_levels,
    template_design,
)
from lmmlib.engine.partsums import combine_products, partition_products
from lmmlib.errors import DataError

dd = pytest.importorskip("dask.dataframe")

from lmmlib.models.partitioned import lmer_partitioned  # noqa: E402

# sums of a few thousand products accumulated in another order (chunks, partitions):
# rounding, ~1e-15 relative; 1e-12 leaves a wide margin and no room for a wrong sum
SUM_RTOL = 1e-12


def _data(n: int = 3000, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 40, n)
    h = rng.integers(0, 9, n)
    x, z = rng.normal(size=n), rng.normal(size=n)
    y = 50 + x - 0.5 * z + rng.normal(0, 1, 40)[g] + rng.normal(0, 0.5, 40)[g] * x \
        + rng.normal(0, 0.7, 9)[h] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": g, "sparse": g * 1000 + 7,
                         "s": [f"s{i}" for i in g], "h": h, "k": rng.integers(0, 5, n)})


def _design(formula: str, df: pd.DataFrame, nparts: int = 3):
    ddf = dd.from_pandas(df, npartitions=nparts, sort=False)
    parsed = parse_for_partitions(formula, ddf.columns)
    rule = make_rule(parsed, ddf.columns, "omit")
    summary = partitioned.scan_levels(ddf, rule, scheduler="sync")
    return rule, template_design(parsed, summary, rule, ddf.npartitions)


DIRECT = {
    "intercept": "y ~ x + z + (1 | g)",
    "slope": "y ~ x + (x | g)",
    "crossed": "y ~ x + z + (1 | g) + (1 | h)",
    "crossed_slope": "y ~ z + (1 | h) + (x + z | g)",
    "string_group": "y ~ x + (1 | s)",
    "sparse_ids": "y ~ x + (1 | sparse)",
    "no_intercept": "y ~ 0 + x + (1 | g)",
    "no_fixed": "y ~ 0 + (1 | g)",
}


@pytest.mark.parametrize("case", sorted(DIRECT))
def test_direct_rows_equal_general_rows(case):
    df = _data()
    df.loc[[5, 17], "x"] = np.nan
    df.loc[[17, 40], "y"] = np.nan
    rule, design = _design(DIRECT[case], df)
    assert design.plan is not None
    part = df.iloc[:1000]
    fast = partrows.fast_rows(part, rule, design)
    slow = partrows.general_rows(part, rule, design)
    # rows 5, 17 and 40 have a missing x or y (x only counts where the formula uses it)
    assert fast.n == slow.n == (998 if "x" not in DIRECT[case] else 997)
    assert len(fast.columns) == len(slow.columns)
    for a, b in zip(fast.columns, slow.columns, strict=True):  # the same numbers
        np.testing.assert_array_equal(np.ones(fast.n) if a is None else a, b)
    for a, b in zip(fast.blocks, slow.blocks, strict=True):
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(np.broadcast_to(a.Z, b.Z.shape), b.Z)
    sf, sg = partkernels.products(fast), partkernels.products(slow)
    for key in ("XtXy", "ymean", "yM2"):
        np.testing.assert_allclose(sf[key], sg[key], rtol=SUM_RTOL)
    np.testing.assert_allclose(np.abs(sf["R"]), np.abs(sg["R"]), rtol=SUM_RTOL, atol=1e-9)
    for key in ("ZtZ0", "Z0tXy"):
        for a, b in zip(sf[key], sg[key], strict=True):
            np.testing.assert_allclose(a, b, rtol=SUM_RTOL)
    if "M" in sf:
        assert abs(sf["M"] - sg["M"]).max() == 0 and abs(sf["ZRtZR"] - sg["ZRtZR"]).max() == 0


def test_which_formulas_take_the_direct_route():
    df = _data(600)
    assert _design("y ~ x + (1 | g)", df)[1].plan is not None
    for formula in ("y ~ x + s + (1 | g)",  # a factor: dummy columns from formulaic
                    "y ~ I(x ** 2) + (1 | g)",  # a transformed column
                    "y ~ x * z + (1 | g)",  # an interaction
                    "log(y) ~ x + (1 | g)",  # a response expression
                    "y ~ x + (I(2 * x) | g)"):  # a transformed covariate
        assert _design(formula, df)[1].plan is None, formula


def test_dask_fit_takes_the_direct_route_and_equals_pandas(monkeypatch):
    df = _data()
    formula = "y ~ x + z + (x | g) + (1 | h)"
    m0 = lmmlib.lmer(formula, df)

    def refused(*args, **kwargs):
        raise AssertionError("the general route was taken")

    monkeypatch.setattr(partrows, "general_rows", refused)
    for nparts in (1, 4, 9):
        m = lmer_partitioned(formula, dd.from_pandas(df, npartitions=nparts, sort=False),
                             scheduler="sync")
        assert m.objective == same_optimum(m0.objective)
        se0 = m0.se.to_numpy()
        assert np.all(np.abs(m.fixef.to_numpy() - m0.fixef.to_numpy()) <= SAME_OPTIMUM_SE * se0)
        # two fits of one criterion: θ within the optimiser's spread (as the model tests)
        np.testing.assert_allclose(m.theta, m0.theta, rtol=1e-5, atol=1e-5)


def test_partitions_of_other_dtypes_take_the_general_route():
    df = _data(1200)
    df.loc[[3, 700], "x"] = np.nan
    formula = "y ~ x + (1 | g)"
    parts = [df.iloc[:600], df.iloc[600:].astype({"x": "Float64"})]  # an extension dtype
    rule, design = _design(formula, df)
    assert partrows.fast_rows(parts[1], rule, design) is None
    sums = combine_products(*(partition_products(p, rule, design) for p in parts))
    whole = partition_products(df, rule, design)
    assert sums["n"] == whole["n"] == 1198
    np.testing.assert_allclose(sums["XtXy"], whole["XtXy"], rtol=SUM_RTOL)
    for a, b in zip(sums["Z0tXy"], whole["Z0tXy"], strict=True):
        np.testing.assert_allclose(a, b, rtol=SUM_RTOL)


def test_code_table_lookup_and_refusals():
    table = partrows.CodeTable.of(pd.Index([4, 9, 6]))
    assert table.codes(np.array([6, 4, 9, 9])).tolist() == [2, 0, 1, 1]
    assert table.codes(np.array([5])) is None  # inside the range, not a level
    assert table.codes(np.array([3])) is None and table.codes(np.array([10])) is None
    assert table.codes(np.array([-2**63, 4])) is None  # wrap-around lands outside
    assert table.codes(np.array([4.0])) is None  # floats: by hashing
    ids = partrows.CodeTable.of(pd.Index([7, 8, 9]))
    assert ids.consecutive == 3 and ids.codes(np.array([9, 7])).tolist() == [2, 0]
    assert ids.codes(np.array([10])) is None
    assert partrows.CodeTable.of(pd.Index([0, 10**9])) is None  # too sparse for a table
    assert partrows.CodeTable.of(pd.Index(["a", "b"])) is None


def test_a_value_unseen_in_pass_one_is_an_error():
    df = _data(600)
    rule, design = _design("y ~ x + (1 | g)", df)
    changed = df.iloc[:100].assign(g=99)
    with pytest.raises(DataError, match="changed between passes"):
        partition_products(changed, rule, design)


def test_gram_and_r_equal_numpy_in_chunks(monkeypatch):
    rng = np.random.default_rng(3)
    monkeypatch.setattr(partkernels, "QR_CHUNK", 64)  # many chunks, and a short last one
    for n in (2, 64, 65, 1000, 1027):
        x, y = rng.normal(size=n), 1e3 + rng.normal(size=n)
        G, R = partkernels.gram_and_r((None, x, y), n)
        A = np.column_stack([np.ones(n), x, y])
        ref = np.linalg.qr(A, mode="r")
        # Householder QR in another order of reflections: rounding of ‖A‖ (1e3 · √n)
        np.testing.assert_allclose(G, A.T @ A, rtol=SUM_RTOL)
        np.testing.assert_allclose(np.abs(R), np.abs(ref), rtol=1e-9, atol=1e-9 * 1e3 * n)


def test_local_fit_of_a_rank_deficient_partition_is_lstsq():
    rng = np.random.default_rng(4)
    n = 200
    x, y = rng.normal(size=n), rng.normal(size=n)
    columns = (None, x, np.full(n, 3.0), y)  # the third column is 3 × the intercept
    rows = partrows.PartitionRows(columns, (), ())
    G, R = partkernels.gram_and_r(columns, n)
    b, r2, _ = partkernels.local_fit(rows, R, G[:3, :3])
    X = np.column_stack([np.ones(n), x, np.full(n, 3.0)])
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    res = y - X @ ref
    np.testing.assert_allclose(b, ref, rtol=1e-10)  # the same minimum-norm solution
    assert r2 == pytest.approx(res @ res, rel=1e-12)


def test_level_sums_equal_dense_products():
    rng = np.random.default_rng(5)
    n, k = 500, 12
    codes = rng.integers(0, k, n)
    x, w = rng.normal(size=n), rng.normal(size=n)
    block = lmmlib.engine.reterms.Block("g", pd.Index(range(k)), codes,
                                        np.column_stack([np.ones(n), x]),
                                        np.array([[0, -1], [1, 2]]))
    gram, cross = partkernels.level_sums(block, (True, False), (None, w))
    ZtZ, ZtXy = partkernels.assemble_levels(gram, cross, k, 2, 2)
    Z = np.zeros((n, 2 * k))
    Z[np.arange(n), 2 * codes] = 1.0
    Z[np.arange(n), 2 * codes + 1] = x
    dense = Z.T @ Z
    for lev in range(k):
        np.testing.assert_allclose(ZtZ[lev], dense[2 * lev : 2 * lev + 2, 2 * lev : 2 * lev + 2],
                                   rtol=SUM_RTOL, atol=1e-12)
    np.testing.assert_allclose(ZtXy, Z.T @ np.column_stack([np.ones(n), w]), rtol=SUM_RTOL,
                               atol=1e-12)


def test_levels_pass_from_arrays_equals_the_model_frame_route(monkeypatch):
    df = _data(800)
    df.loc[[2, 9], "x"] = np.nan
    df.loc[[9, 30], "y"] = np.nan
    rule = make_rule(parse_for_partitions("y ~ x + (1 | g) + (1 | h)", df.columns),
                     df.columns, "omit")
    fast = partition_levels(df, rule)
    monkeypatch.setattr(partitioned, "_numeric_levels", lambda part, rule: None)
    slow = partition_levels(df, rule)
    assert {k: fast[k] for k in ("rows", "missing", "dropped", "used", "ymin", "ymax")} == \
        {k: slow[k] for k in ("rows", "missing", "dropped", "used", "ymin", "ymax")}
    assert fast["missing"] == {"y": 2, "x": 2} and fast["dropped"] == 3
    for c in ("g", "h"):
        assert sorted(fast["levels"][c].tolist()) == sorted(slow["levels"][c].tolist())
        assert fast["levels"][c].dtype == slow["levels"][c].dtype
    assert {c: {k} for c, k in fast["kinds"].items()} == \
        {c: {k} for c, k in slow["kinds"].items()}


def test_distinct_values_by_counting_and_by_hashing():
    a, b = np.array([5, 3, 5]), np.array([3, 9])
    assert distinct_values(a, b).tolist() == [3, 5, 9]
    assert distinct_values(a, b).dtype == a.dtype
    assert distinct_values(np.array([0, 10**12])).tolist() == [0, 10**12]  # sparse: hashed
    mixed = distinct_values(np.array([1, 2]), np.array([2.5]))  # int and float: hashed
    assert sorted(mixed.tolist()) == [1.0, 2.0, 2.5]
    s = np.array(["b", "a", "b"], dtype=object)
    assert sorted(distinct_values(s).tolist()) == ["a", "b"]
    merged = combine_levels(
        {"rows": 2, "dropped": 0, "bad_response": 0, "used": 2, "missing": {},
         "levels": {"g": np.array([4, 1])}, "categories": {}, "kinds": {"g": "numeric"},
         "ymin": 0.0, "ymax": 1.0},
        {"rows": 2, "dropped": 0, "bad_response": 0, "used": 2, "missing": {},
         "levels": {"g": np.array([2, 4])}, "categories": {}, "kinds": {"g": "numeric"},
         "ymin": -1.0, "ymax": 0.5})
    assert sorted(merged["levels"]["g"].tolist()) == [1, 2, 4] and merged["ymin"] == -1.0
