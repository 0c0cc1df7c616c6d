"""Benchmark: ``lmer_partitioned`` on a parquet dataset larger than memory would like.

Run with ``python tests/benchmarks/bench_partitioned.py`` (options below; not a
test module, pytest does not collect it).  It writes a synthetic parquet
dataset, partition by partition (the whole table is never built), to a
temporary folder:

    y = 1 + 0.5 x + 0.3 z + b_g + e,   b_g ~ N(0, 0.8²), e ~ N(0, 1),

x and z standard normal, g uniform over the groups (so most partitions hold most
groups), then fits ``y ~ x + z + (1 | g)`` by REML from
``dask.dataframe.read_parquet`` in a child process, which reports the time of
each stage and its peak resident memory (``ru_maxrss``).  The sizes default to
2·10⁷ rows in 40 partitions and 5·10⁵ groups; ``--rows 2e6`` is a quicker run.
``--compare`` also fits the same rows in memory with ``lmmlib.lmer`` (in the
child, after the partitioned fit) and prints the differences.

After the fit, ``--rounds`` rounds (default 5) alternate a plain pass that
reads the formula's four columns and sums them, the fit's levels pass and its
cross-product pass, so that all three see the same load on a shared machine;
the medians are stored, per pass and per row, beside every round's times.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def write_dataset(folder: Path, rows: int, partitions: int, groups: int, seed: int = 1) -> None:
    """Write ``partitions`` parquet files of the synthetic model (one at a time)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    effects = rng.normal(0.0, 0.8, groups)
    bounds = np.linspace(0, rows, partitions + 1).astype(np.int64)
    for k in range(partitions):
        n = int(bounds[k + 1] - bounds[k])
        part_rng = np.random.default_rng([seed, k])
        g = part_rng.integers(0, groups, n)
        x, z = part_rng.normal(size=n), part_rng.normal(size=n)
        y = 1.0 + 0.5 * x + 0.3 * z + effects[g] + part_rng.normal(size=n)
        pd.DataFrame({"y": y, "x": x, "z": z, "g": g}).to_parquet(
            folder / f"part-{k:04d}.parquet", index=False)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


COLUMNS = ["y", "x", "z", "g"]  # the formula's columns: what any pass must read
FORMULA = "y ~ x + z + (1 | g)"


def read_pass(folder: Path) -> None:
    """One plain pass that reads the formula's columns and sums them."""
    import dask.dataframe as dd

    dd.read_parquet(str(folder), columns=COLUMNS).sum().compute()


def stage_passes(folder: Path) -> tuple:
    """The two passes of the fit, run separately: a function per stage, timed by the caller."""
    import dask.dataframe as dd

    from lmmlib.engine.partitioned import (
        make_rule,
        parse_for_partitions,
        scan_levels,
        template_design,
    )
    from lmmlib.engine.partsums import sum_products

    ddf = dd.read_parquet(str(folder))
    parsed = parse_for_partitions(FORMULA, ddf.columns)
    rule = make_rule(parsed, ddf.columns, "omit")
    state = {}

    def levels() -> None:
        state["summary"] = scan_levels(ddf, rule)

    def products() -> None:
        if "design" not in state:
            state["design"] = template_design(parsed, state["summary"], rule, ddf.npartitions)
        sum_products(ddf, rule, state["design"])

    return levels, products


def timed(stage: Any) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all threads of the process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    stage()
    return time.perf_counter() - t0, time.process_time() - c0


def fit(folder: Path, compare: bool, rounds_n: int) -> dict:
    """Fit the dataset in ``folder`` (run in the child process).

    One read pass warms the file cache; the fit is timed whole (its peak memory
    is the process's after it); then ``rounds_n`` rounds alternate a read pass,
    the levels pass and the cross-product pass, so that all see the same load
    (wall-clock and CPU seconds of each are stored, and their medians).
    """
    import dask.dataframe as dd

    import lmmlib
    from lmmlib.models.partitioned import lmer_partitioned

    first_read = timed(lambda: read_pass(folder))[0]
    base = peak_rss_mb()
    t0 = time.perf_counter()
    ddf = dd.read_parquet(str(folder))
    m = lmer_partitioned(FORMULA, ddf)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    levels, products = stage_passes(folder)
    rounds = {"read": [], "levels": [], "products": []}
    for _ in range(rounds_n):
        for name, stage in (("read", lambda: read_pass(folder)), ("levels", levels),
                            ("products", products)):
            rounds[name].append(timed(stage))
    ns = 1e9 / m.nobs
    out = {"rows": m.nobs, "partitions": ddf.npartitions, "groups": int(m.ngroups.iloc[0]),
           "seconds": round(seconds, 2), "first_read_pass_seconds": round(first_read, 2),
           "read_columns": COLUMNS}
    for name, times in rounds.items():
        wall, cpu = (float(np.median([t[i] for t in times])) for i in (0, 1))
        out[f"{name}_pass_seconds"] = round(wall, 2)
        out[f"{name}_pass_cpu_seconds"] = round(cpu, 2)
        out[f"{name}_ns_per_row"] = round(wall * ns, 1)
        out[f"{name}_cpu_ns_per_row"] = round(cpu * ns, 1)
    out["rounds"] = {name: {"wall": [round(t[0], 3) for t in times],
                            "cpu": [round(t[1], 3) for t in times]}
                     for name, times in rounds.items()}
    out.update({"peak_rss_mb": round(peak, 1), "rss_before_mb": round(base, 1),
                "direct_route": getattr(m.design, "plan", None) is not None,
                "evaluations": m.optinfo["feval"], "objective": m.objective,
                "fixef": m.fixef.round(5).tolist(),
                "sd": m.varcorr["sdcor"].round(5).tolist()})
    if compare:
        t1 = time.perf_counter()
        m0 = lmmlib.lmer(FORMULA, ddf.compute())
        out["in_memory_seconds"] = round(time.perf_counter() - t1, 2)
        out["in_memory_peak_rss_mb"] = round(peak_rss_mb(), 1)
        out["objective_rel_diff"] = abs(m.objective - m0.objective) / abs(m0.objective)
        out["theta_max_diff"] = float(np.abs(m.theta - m0.theta).max())
        out["fixef_max_diff"] = float(np.abs(m.fixef - m0.fixef).max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=float, default=2e7)
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--groups", type=float, default=5e5)
    parser.add_argument("--compare", action="store_true", help="also fit in memory")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of read pass, levels pass and cross-product pass")
    parser.add_argument("--data", type=Path, help="a folder to write the parquet files to "
                        "and keep (reused when it holds them) instead of a temporary one")
    parser.add_argument("--fit", type=Path, help=argparse.SUPPRESS)  # the child's mode
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "partitioned_results.json"), help="where to store the result (JSON)")
    args = parser.parse_args()
    if args.fit is not None:
        print(json.dumps(fit(args.fit, args.compare, args.rounds)))
        return
    import os

    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="lmmlib-bench-") as tmp:
        folder = Path(tmp) if args.data is None else args.data
        if not any(folder.glob("*.parquet")):
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            write_dataset(folder, int(args.rows), args.partitions, int(args.groups))
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            print(f"wrote {int(args.rows):,} rows in {args.partitions} files ({size:.0f} MB "
                  f"parquet, {args.rows * 32 / 2**20:.0f} MB as float64 columns) in "
                  f"{time.perf_counter() - t0:.1f} s")
        cmd = ([sys.executable, __file__, "--fit", str(folder), "--rounds", str(args.rounds)]
               + ["--compare"] * args.compare)
        child = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    import platform

    result.update({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                   "load_before": load_before,
                   "machine": platform.processor() or platform.machine(),
                   "load_after": round(os.getloadavg()[0], 2)})
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
