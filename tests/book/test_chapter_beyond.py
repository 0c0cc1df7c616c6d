"""Appendix "Beyond one machine": the out-of-core fit is the in-memory fit.

The chapter fits a million-row study from parquet files through a Dask
LocalCluster and the same rows in memory; the partial sums of the cross-products
are only added in another order, so the criteria agree to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_chapters import executed, glued, number

from lmmlib.benchmarks import stored_results


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {key: number(text) for key, text in glued(executed("beyond")).items()
            if key.startswith("beyond_")
            and key not in ("beyond_rows", "beyond_groups", "beyond_n", "beyond_subjects")}


def test_partitioned_fit_equals_the_in_memory_fit(values):
    # the same criterion from sums added in another order: rounding of a million-row sum
    # (seen 1e-15); the fixed effects within the optimiser's spread of one problem
    assert values["beyond_obj_diff"] < 1e-10
    assert values["beyond_beta_diff"] < 1e-6


def test_stored_benchmark_fits_in_memory_budget(values):
    # the benchmark's study (2e7 rows) stays under the 1.5 GB the design promises
    assert values["beyond_peak"] < 1500


def test_pass_costs_are_the_stored_benchmark_medians(values):
    part = stored_results().partitioned
    for name in ("read", "levels", "products"):
        rounds = part["rounds"][name]
        # the stored figures are the medians of the stored rounds, rounded to 0.01 s
        assert part[f"{name}_pass_seconds"] == pytest.approx(np.median(rounds["wall"]),
                                                             abs=0.005 + 1e-9)
        # ... and per row: seconds / rows, rounded to 0.1 ns (half a step, and the binary
        # representation of a value that ends in 5)
        assert part[f"{name}_ns_per_row"] == pytest.approx(
            np.median(rounds["wall"]) * 1e9 / part["rows"], abs=0.05 + 1e-9)
    # the glued ratio is the stored pass over the stored read, per row (glue's rounding)
    assert values["beyond_pass_ratio"] == pytest.approx(
        part["products_ns_per_row"] / part["read_ns_per_row"], rel=1e-9)
    assert values["beyond_pass_ns"] == part["products_ns_per_row"]
    assert values["beyond_rounds"] == len(part["rounds"]["read"]["wall"]) >= 3
    assert part["direct_route"]  # the benchmark's formula takes the direct route
