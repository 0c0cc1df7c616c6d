"""Benchmark: a crossed Poisson GLMM, lmmlib against R's lme4 (``glmer``), interleaved.

Run with ``python tests/benchmarks/bench_glmm.py`` (``--quick`` for a smoke run
on a small data set that writes to a temporary folder).  Not a test module.

Model: ``y ~ x + (1 | a) + (1 | b)``, Poisson with the log link, Laplace
approximation, on 40,000 simulated rows with 2,000 levels of ``a`` crossed
with 400 levels of ``b`` (seeded).  Rounds alternate lmmlib (in this process)
and lme4 (one ``Rscript`` per round, the fit timed inside R with
``system.time``, so R's start-up is not counted), so both see the same machine
load.  Each tool's −2 log L is reported and lmmlib's must not exceed lme4's by
more than 1e-6 relative (the benchmark exits with status 1 otherwise).

Threads: one BLAS thread for lmmlib (threadpoolctl; lmmlib never raises it);
R uses the BLAS it was built with.

A second section times two small course GLMMs, ``cbpp`` (binomial,
``cbind(incidence, size - incidence) ~ period + (1 | herd)``) and ``grouseticks``
(Poisson, ``TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)``), on the data
of the lme4 fixtures: per round the median of five fits of each tool (lme4's
inside one ``Rscript``), rounds alternating.

Writes tests/benchmarks/glmm_results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import lmmlib

HERE = Path(__file__).resolve().parent
FORMULA = "y ~ x + (1 | a) + (1 | b)"
SEED = 20261202
R_SCRIPT = r"""
suppressMessages(library(lme4)); library(jsonlite)
d <- read.csv(commandArgs(TRUE)[1], colClasses = c(a = "character", b = "character"))
d$a <- factor(d$a); d$b <- factor(d$b)
secs <- system.time(m <- glmer(y ~ x + (1 | a) + (1 | b), data = d, family = poisson))
cat(toJSON(list(seconds = secs[["elapsed"]], objective = -2 * as.numeric(logLik(m)),
                theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
                lme4 = as.character(packageVersion("lme4")), R = R.version.string),
           digits = NA, auto_unbox = TRUE))
"""


COURSE = {
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "grouseticks": ("TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson"),
}
R_COURSE = r"""
suppressMessages(library(lme4)); library(jsonlite)
a <- commandArgs(TRUE)
d <- read.csv(a[1], colClasses = "character")
for (v in strsplit(a[4], ",")[[1]]) d[[v]] <- factor(d[[v]])
for (v in setdiff(names(d), strsplit(a[4], ",")[[1]])) d[[v]] <- as.numeric(d[[v]])
f <- as.formula(a[2]); fam <- get(a[3])
m <- glmer(f, data = d, family = fam)
secs <- vapply(1:5, function(i) system.time(m <<- glmer(f, data = d, family = fam))[["elapsed"]], 0)
cat(toJSON(list(seconds = median(secs), objective = -2 * as.numeric(logLik(m))),
           digits = NA, auto_unbox = TRUE))
"""


def course_data(name: str) -> tuple[pd.DataFrame, list[str]]:
    """The data of an lme4 glmer fixture, factors as strings."""
    fx = json.loads((HERE.parent / "reference" / "fixtures" / "glmer" / f"{name}.json")
                    .read_text())
    data = pd.DataFrame(fx["data"])
    for c in fx["factors"]:
        data[c] = data[c].astype(str)
    return data, list(fx["factors"])


def course_section(rounds: int) -> list[dict]:
    """Median-of-five fit times of lmmlib and lme4 on the course GLMMs, alternating."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "course.R"
        script.write_text(R_COURSE)
        for name, (formula, family) in COURSE.items():
            data, factors = course_data(name)
            csv = Path(tmp) / f"{name}.csv"
            data.to_csv(csv, index=False)
            lm_times, r_times, lm_obj, r_obj = [], [], None, None
            for _ in range(rounds):
                with threadpool_limits(1), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lmmlib.glmer(formula, data, family)
                    times = []
                    for _ in range(5):
                        t = time.perf_counter()
                        m = lmmlib.glmer(formula, data, family)
                        times.append(time.perf_counter() - t)
                lm_times.append(statistics.median(times))
                lm_obj = -2.0 * float(m.loglik)
                try:
                    res = subprocess.run(["Rscript", str(script), str(csv), formula, family,
                                          ",".join(factors)], text=True, capture_output=True,
                                         check=True, timeout=600)
                    out = json.loads(res.stdout.strip().splitlines()[-1])
                    r_times.append(out["seconds"])
                    r_obj = out["objective"]
                except (FileNotFoundError, subprocess.CalledProcessError,
                        subprocess.TimeoutExpired) as exc:
                    print(f"lme4 not run: {exc}", file=sys.stderr)
            row = {"model": name, "formula": formula, "lmmlib": statistics.median(lm_times),
                   "lmmlib_rounds": lm_times, "lmmlib_objective": lm_obj,
                   "lme4": statistics.median(r_times) if r_times else None,
                   "lme4_rounds": r_times, "lme4_objective": r_obj}
            print(row)
            rows.append(row)
    return rows


def course_markdown(rows: list[dict]) -> str:
    lines = ["", "## Course GLMMs", "",
             "Median of five fits per round and tool, median over the rounds (lme4 timed "
             "inside R, 1 ms resolution).", "",
             "| model | lmmlib s | lme4 s | lme4 / lmmlib | −2 log L lmmlib | −2 log L lme4 |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        r4 = r["lme4"]
        ratio = f"{r4 / r['lmmlib']:.2f}" if r4 else "n/a"
        r4_text = f"{r4:.3f}" if r4 else "n/a"
        r4_obj = f"{r['lme4_objective']:.6f}" if r["lme4_objective"] is not None else "n/a"
        formula = r["formula"].replace("|", "\\|")  # a pipe inside a table cell
        lines.append(f"| {r['model']} `{formula}` | {r['lmmlib']:.3f} | {r4_text} | "
                     f"{ratio} | {r['lmmlib_objective']:.6f} | {r4_obj} |")
    return "\n".join(lines) + "\n"


def crossed_counts(n: int, ka: int, kb: int, seed: int = SEED) -> pd.DataFrame:
    """Poisson counts with crossed random intercepts (SDs 0.5 and 0.3), seeded."""
    rng = np.random.default_rng(seed)
    a, b, x = rng.integers(0, ka, n), rng.integers(0, kb, n), rng.normal(size=n)
    eta = 0.2 + 0.3 * x + rng.normal(scale=0.5, size=ka)[a] + rng.normal(scale=0.3, size=kb)[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x,
                         "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})


def fit_lmmlib(data: pd.DataFrame) -> dict:
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        m = lmmlib.glmer(FORMULA, data, "poisson")
        secs = time.perf_counter() - t
    return {"seconds": secs, "objective": float(m.deviance), "theta": m.theta.tolist(),
            "beta": m.fixef.tolist(), "evals": int(m.opt.feval)}


def fit_lme4(csv: Path, script: Path) -> dict | None:
    try:
        res = subprocess.run(["Rscript", str(script), str(csv)], text=True, capture_output=True,
                             check=True, timeout=600)
    except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"lme4 not run: {exc}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], n: int, ka: int, kb: int, rounds: int) -> str:
    lm = [r["lmmlib"] for r in rows]
    r4 = [r["lme4"] for r in rows if r["lme4"] is not None]
    t_lm = statistics.median(x["seconds"] for x in lm)
    lines = [
        "# Crossed GLMM benchmark", "",
        f"Generated by `tests/benchmarks/bench_glmm.py` (`make bench`) on "
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs. Poisson `{FORMULA}`, Laplace, {n:,} rows, "
        f"{ka:,} × {kb:,} crossed levels (seed {SEED}). {rounds} interleaved rounds; "
        "lmmlib timed in-process from formula and DataFrame to the fitted model (one BLAS "
        "thread), lme4's `glmer` timed inside R with `system.time` (R's BLAS). "
        "Load: the 1-minute load average before and after.", "",
        "| round | lmmlib s | lme4 s | lmmlib / lme4 |", "|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rows, 1):
        t4 = r["lme4"]["seconds"] if r["lme4"] else float("nan")
        lines.append(f"| {i} | {r['lmmlib']['seconds']:.2f} | {t4:.2f} | "
                     f"{r['lmmlib']['seconds'] / t4:.2f} |")
    if r4:
        t_r4 = statistics.median(x["seconds"] for x in r4)
        lines += ["", f"Median: lmmlib {t_lm:.2f} s, lme4 {t_r4:.2f} s, "
                      f"ratio **{t_lm / t_r4:.2f}**."]
    lines += ["", "## Optimum reached", "", "| tool | −2 log L | θ | β | evaluations |",
              "|---|---:|---|---|---:|",
              f"| lmmlib {lmmlib.__version__} | {lm[-1]['objective']:.8f} | "
              f"{np.round(lm[-1]['theta'], 6).tolist()} | {np.round(lm[-1]['beta'], 6).tolist()} "
              f"| {lm[-1]['evals']} (stage 2) |"]
    if r4:
        lines.append(f"| lme4 {r4[-1]['lme4']} | {r4[-1]['objective']:.8f} | "
                     f"{np.round(r4[-1]['theta'], 6).tolist()} | "
                     f"{np.round(r4[-1]['beta'], 6).tolist()} | |")
    lines += ["", f"Load: {rows[0]['load'][0]:.2f} → {rows[-1]['load'][1]:.2f}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small data, temporary output")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    n, ka, kb = (4_000, 200, 40) if args.quick else (40_000, 2_000, 400)
    rounds = 1 if args.quick else args.rounds
    data = crossed_counts(n, ka, kb)
    out_dir = Path(tempfile.mkdtemp()) if args.quick else HERE
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "crossed.csv", Path(tmp) / "glmer.R"
        data.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        fit_lmmlib(data.head(2000))  # warm-up (imports, first calls)
        for i in range(rounds):
            before = os.getloadavg()[0]
            lm = fit_lmmlib(data)
            r4 = fit_lme4(csv, script)
            rows.append({"lmmlib": lm, "lme4": r4, "load": (before, os.getloadavg()[0])})
            print(f"round {i + 1}: lmmlib {lm['seconds']:.2f} s (−2 log L {lm['objective']:.6f})"
                  + (f", lme4 {r4['seconds']:.2f} s (−2 log L {r4['objective']:.6f})" if r4
                     else ""))
            if r4 and lm["objective"] > r4["objective"] * (1 + 1e-6):
                ok = False
    text = markdown(rows, n, ka, kb, rounds) + course_markdown(course_section(rounds))
    (out_dir / "glmm_results.md").write_text(text)
    print(f"wrote {out_dir / 'glmm_results.md'}")
    if not ok:
        print("lmmlib's optimum is above lme4's by more than 1e-6 relative", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
