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


def fit(folder: Path, compare: bool) -> dict:
    """Fit the dataset in ``folder`` (run in the child process)."""
    import dask.dataframe as dd

    import lmmlib
    from lmmlib.models.partitioned import lmer_partitioned

    t_read = time.perf_counter()
    dd.read_parquet(str(folder))[["y", "x", "z"]].sum().compute()  # one plain read pass
    read_seconds = time.perf_counter() - t_read
    base = peak_rss_mb()
    t0 = time.perf_counter()
    ddf = dd.read_parquet(str(folder))
    m = lmer_partitioned("y ~ x + z + (1 | g)", ddf)
    seconds = time.perf_counter() - t0
    out = {"rows": m.nobs, "partitions": ddf.npartitions, "groups": int(m.ngroups.iloc[0]),
           "seconds": round(seconds, 2), "read_pass_seconds": round(read_seconds, 2),
           "peak_rss_mb": round(peak_rss_mb(), 1),
           "rss_before_mb": round(base, 1), "evaluations": m.optinfo["feval"],
           "objective": m.objective, "fixef": m.fixef.round(5).tolist(),
           "sd": m.varcorr["sdcor"].round(5).tolist()}
    if compare:
        t1 = time.perf_counter()
        m0 = lmmlib.lmer("y ~ x + z + (1 | g)", ddf.compute())
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
    parser.add_argument("--fit", type=Path, help=argparse.SUPPRESS)  # the child's mode
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name(
        "partitioned_results.json"), help="where to store the result (JSON)")
    args = parser.parse_args()
    if args.fit is not None:
        print(json.dumps(fit(args.fit, args.compare)))
        return
    with tempfile.TemporaryDirectory(prefix="lmmlib-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_dataset(folder, int(args.rows), args.partitions, int(args.groups))
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(f"wrote {int(args.rows):,} rows in {args.partitions} files ({size:.0f} MB parquet, "
              f"{args.rows * 32 / 2**20:.0f} MB as float64 columns) in "
              f"{time.perf_counter() - t0:.1f} s")
        cmd = [sys.executable, __file__, "--fit", str(folder)] + ["--compare"] * args.compare
        child = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    import os
    import platform

    result.update({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                   "machine": platform.processor() or platform.machine(),
                   "load_after": round(os.getloadavg()[0], 2)})
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
