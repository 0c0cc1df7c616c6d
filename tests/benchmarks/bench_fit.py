"""Fitting benchmark: lmmlib against statsmodels' MixedLM and the PyPI package mixedlm.

Run with ``make bench`` (or ``python tests/benchmarks/bench_fit.py``).  The file
is not a test module and pytest does not collect it.

For each model every tool is timed end to end, from formula and DataFrame to a
fitted model, in this one process, with the same thread settings:

* BLAS is limited to one thread for every tool (threadpoolctl, as lmmlib does
  inside its own fits); otherwise statsmodels and mixedlm would run a
  multi-threaded BLAS on small matrices while lmmlib does not.
* mixedlm's Rust backend parallelises with rayon, which has no run-time switch:
  ``RAYON_NUM_THREADS`` is set to 1 before the first fit unless it is already
  set in the environment.

lmmlib and mixedlm get one warm-up fit and then ``--repeats`` timed fits,
interleaved (lmmlib, mixedlm, lmmlib, ...) so that load from other processes
affects both alike; statsmodels gets one warm-up and ``--sm-repeats`` fits.
The crossed soybean-disk model runs under statsmodels in a child process (same
interpreter, environment and thread limit) so that a fit slower than
``--sm-timeout`` seconds can be stopped; it is then reported as "n/a (too slow)".

Every tool runs with its default optimiser settings, so the objective each
reaches is reported next to the timings.  The lme4 columns are not measured
here: they are read from the reference fixtures
(``tests/reference/fixtures/*.json``, field ``fit_seconds``; R lme4 1.1.31,
median of 11 default fits, see tests/reference/README.md).

Results are printed as markdown and written to tests/benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "reference" / "fixtures"
THREAD_ENV = ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"]
ENV_AT_START = {k: os.environ.get(k) for k in THREAD_ENV}


@dataclass(frozen=True)
class Model:
    key: str
    label: str
    dataset: str
    reml: bool
    lmer: str                 # lme4 syntax for lmmlib
    mixedlm: str              # mixedlm's parser has no `^`, so I(days**2) there
    sm_fixed: str             # statsmodels mean formula
    sm_kwargs: dict = field(default_factory=dict)
    fixture: str = ""         # lme4 reference fixture with the same model


_DISK_FIXED = "AqE ~ ID + days + I(days**2) + Precip + Precip_7day"
MODELS = [
    Model("pig", r"pig `weight ~ weeks + (1\|id)`", "pig", True,
          "weight ~ weeks + (1|id)", "weight ~ weeks + (1|id)", "weight ~ weeks",
          {"groups": "id"}, "pig_reml"),
    Model("nepal", r"Nepal `arm ~ ageC + (ageC\|id)`", "nepal", True,
          "arm ~ ageC + (ageC|id)", "arm ~ ageC + (ageC|id)", "arm ~ ageC",
          {"groups": "id", "re_formula": "~ageC"}, "nepal_slope"),
    # crossed: statsmodels needs one all-covering group and variance components
    Model("disks", r"soybean disks, crossed `(1\|plot_number) + (1\|disk)`", "soybean_disks", False,
          "AqE ~ ID + days + I(days^2) + Precip + Precip_7day + (1|plot_number) + (1|disk)",
          _DISK_FIXED + " + (1|plot_number) + (1|disk)", _DISK_FIXED,
          {"groups": "one_group", "re_formula": "0",
           "vc_formula": {"plot_number": "0 + C(plot_number)", "disk": "0 + C(disk)"}},
          "disks_full"),
]
SM_IN_CHILD = {"disks"}  # statsmodels fits that run in a child process with a timeout


def load_data(dataset: str) -> pd.DataFrame:
    from lmmlib.datasets import load

    df = load(dataset)
    if dataset == "nepal":
        df = df.assign(ageC=df["age"] - 36)  # as in the course and the lme4 fixtures
    if dataset == "soybean_disks":
        df = df.assign(one_group=1)
    return df


# --------------------------------------------------------------------------- fits
# Each returns (-2 log-likelihood, criterion evaluations) of one fit.

def fit_lmmlib(m: Model, df: pd.DataFrame) -> tuple[float, str]:
    import lmmlib

    fit = lmmlib.lmer(m.lmer, df, reml=m.reml)
    return fit.objective, str(fit.opt.feval)


def fit_mixedlm(m: Model, df: pd.DataFrame) -> tuple[float, str]:
    import mixedlm

    fit = mixedlm.lmer(m.mixedlm, df, REML=m.reml)
    return -2.0 * float(fit.logLik()), f"{fit.function_evals} ({fit.optimizer})"


def fit_statsmodels(m: Model, df: pd.DataFrame, count: bool = False) -> tuple[float, str]:
    import statsmodels.formula.api as smf

    md = smf.mixedlm(m.sm_fixed, df, **m.sm_kwargs)
    calls = {"f": 0, "g": 0}
    if count:  # count objective and gradient calls (untimed fits only)
        loglike, score = md.loglike, md.score

        def counted_loglike(*a, **k):
            calls["f"] += 1
            return loglike(*a, **k)

        def counted_score(*a, **k):
            calls["g"] += 1
            return score(*a, **k)

        md.loglike, md.score = counted_loglike, counted_score
    res = md.fit(reml=m.reml)  # defaults: bfgs, then lbfgs and cg if not converged
    evals = f"{calls['f']} f + {calls['g']} grad" if count else ""
    return -2.0 * float(res.llf), evals


def timed(fn: Callable[..., tuple[float, str]], *args, **kwargs) -> tuple[float, float, str]:
    gc.collect()
    t0 = time.perf_counter()
    objective, evals = fn(*args, **kwargs)
    return time.perf_counter() - t0, objective, evals


# ---------------------------------------------------------- statsmodels child process

def child_main(key: str, repeats: int) -> None:
    """Fit one model with statsmodels ``repeats`` times; one JSON line per fit."""
    import statsmodels.formula.api  # noqa: F401  (load scipy's BLAS before limiting it)

    warnings.simplefilter("ignore")

    m = next(x for x in MODELS if x.key == key)
    df = load_data(m.dataset)
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(repeats):
            seconds, objective, evals = timed(fit_statsmodels, m, df, count=i == 0)
            print(json.dumps({"seconds": seconds, "objective": objective, "evals": evals}),
                  flush=True)


def statsmodels_in_child(m: Model, repeats: int, timeout: float) -> dict:
    """Run child_main in a subprocess; give up when one fit takes over ``timeout`` s."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-statsmodels", m.key,
           "--sm-repeats", str(repeats)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    out: dict = {"times": [], "objective": None, "evals": "", "timed_out": False}
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            proc.kill()
            proc.wait()
            out["timed_out"] = True
            break
        if line is None:
            break
        rec = json.loads(line)
        out["times"].append(rec["seconds"])
        out["objective"] = rec["objective"]
        out["evals"] = out["evals"] or rec["evals"]
    if proc.wait() != 0 and not out["timed_out"]:
        raise RuntimeError(f"statsmodels child for {m.key} failed (exit {proc.returncode})")
    return out


# ------------------------------------------------------------------------- driver

def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import lmmlib

    with threadpool_limits(limits=1, user_api="blas"):
        blas = "; ".join(f"{i['internal_api']} {i['version']} ({i['prefix']}): "
                         f"{i['num_threads']} thread(s)" for i in threadpool_info()
                         if i["user_api"] == "blas")
    env = ", ".join(f"{k}={ENV_AT_START[k] if ENV_AT_START[k] is not None else 'unset'}"
                    for k in THREAD_ENV)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "CPU": cpu,
        "CPU count": f"{os.cpu_count()} (usable by this process: {len(os.sched_getaffinity(0))})",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": version("scipy"),
        "pandas": pd.__version__,
        "lmmlib": f"{lmmlib.__version__} ({git_revision()})",
        "statsmodels": version("statsmodels"),
        "mixedlm": version("mixedlm"),
        "thread env at start": env,
        "thread env during the run": f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}",
        "BLAS during timed fits": blas,
    }


def git_revision() -> str:
    """Commit of the checkout being benchmarked, and whether lmmlib/ has local edits."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "lmmlib"], cwd=ROOT, text=True, capture_output=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "git revision unknown"
    return f"git {rev}" + (", lmmlib/ has uncommitted changes" if dirty else "")


def fixture(name: str) -> dict | None:
    path = FIXTURES / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:.1f}"


def med_min(times: list[float]) -> str:
    return f"{ms(statistics.median(times))} [{ms(min(times))}]"


def run(args: argparse.Namespace) -> str:
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    # import everything before the BLAS limit is applied
    import mixedlm  # noqa: F401
    import statsmodels.formula.api  # noqa: F401

    import lmmlib  # noqa: F401

    # convergence/scale chatter from all three tools; after the imports, as
    # statsmodels sets its ConvergenceWarning to "always" when imported
    warnings.simplefilter("ignore")

    info = machine_info()
    rows = []
    for m in MODELS:
        print(f"[bench] {m.key}: loading data", file=sys.stderr, flush=True)
        df = load_data(m.dataset)
        rec: dict = {"model": m, "nobs": len(df), "load0": os.getloadavg()[0]}
        with threadpool_limits(limits=1, user_api="blas"):
            _, rec["lmmlib_obj"], rec["lmmlib_evals"] = timed(fit_lmmlib, m, df)
            _, rec["mixedlm_obj"], rec["mixedlm_evals"] = timed(fit_mixedlm, m, df)
            t_lmm, t_mix = [], []
            for _ in range(args.repeats):
                t_lmm.append(timed(fit_lmmlib, m, df)[0])
                t_mix.append(timed(fit_mixedlm, m, df)[0])
            rec["lmmlib_t"], rec["mixedlm_t"] = t_lmm, t_mix
            print(f"[bench] {m.key}: lmmlib {ms(statistics.median(t_lmm))} ms, "
                  f"mixedlm {ms(statistics.median(t_mix))} ms", file=sys.stderr, flush=True)
            if m.key in SM_IN_CHILD:
                child = statsmodels_in_child(m, args.sm_repeats, args.sm_timeout)
                rec["sm_t"], rec["sm_obj"], rec["sm_evals"] = (
                    child["times"], child["objective"], child["evals"])
                rec["sm_timed_out"] = child["timed_out"]
            else:
                _, rec["sm_obj"], rec["sm_evals"] = timed(fit_statsmodels, m, df, count=True)
                rec["sm_t"] = [timed(fit_statsmodels, m, df)[0]
                               for _ in range(args.sm_repeats)]
                rec["sm_timed_out"] = False
        print(f"[bench] {m.key}: statsmodels "
              f"{'timed out' if rec['sm_timed_out'] else ms(statistics.median(rec['sm_t']))}",
              file=sys.stderr, flush=True)
        rec["fixture"] = fixture(m.fixture)
        rec["load"] = os.getloadavg()[0]
        rows.append(rec)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return report(rows, info, args)


def _optimum_cell(value: float | None, best: float, evals: str) -> str:
    if value is None:
        return "n/a (timed out)"
    return f"{value:.8f} (+{value - best:.1e}); evals: {evals or 'n/a'}"


def report(rows: list[dict], info: dict, args: argparse.Namespace) -> str:
    out = ["# Fitting benchmark", "",
           "Generated by `tests/benchmarks/bench_fit.py` (`make bench`). Median wall time "
           f"(`time.perf_counter`) per fit, in ms: lmmlib and mixedlm over {args.repeats} fits "
           f"after one warm-up, statsmodels over {args.sm_repeats} fits. Formula and DataFrame "
           "to fitted model, one process, one BLAS thread for every tool. In brackets: the "
           "fastest fit. Ratios are of the medians. Load: the 1-minute load average before "
           "and after the model's fits (2 CPUs; above 1, other processes competed).", "",
           "| model | n | fit | lmmlib | mixedlm | statsmodels | mixedlm / lmmlib "
           "| statsmodels / lmmlib | lme4, from the reference fixtures | load |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        m = r["model"]
        t_lmm = statistics.median(r["lmmlib_t"])
        t_mix = statistics.median(r["mixedlm_t"])
        if r["sm_timed_out"] or not r["sm_t"]:
            sm_cell, sm_ratio = f"n/a (too slow: no fit within {args.sm_timeout:.0f} s)", "n/a"
        else:
            t_sm = statistics.median(r["sm_t"])
            sm_cell, sm_ratio = med_min(r["sm_t"]), f"{t_sm / t_lmm:.1f}"
        fx = r["fixture"]
        lme4 = f"{1000 * fx['fit_seconds']:.0f}" if fx else "no fixture"
        out.append(f"| {m.label} | {r['nobs']} | {'REML' if m.reml else 'ML'} "
                   f"| {med_min(r['lmmlib_t'])} | {med_min(r['mixedlm_t'])} | {sm_cell} "
                   f"| {t_mix / t_lmm:.2f} | {sm_ratio} | {lme4} "
                   f"| {r['load0']:.1f} → {r['load']:.1f} |")
    out += ["", "The lme4 column is not measured by this script: it is `fit_seconds` from "
            "`tests/reference/fixtures/{pig_reml,nepal_slope,disks_full}.json` (R 4.2.2, "
            "lme4 1.1.31, median of 11 default fits, timed with `system.time`, reported by R "
            "in 1 ms steps), on the machine that generated the fixtures.", "",
            "## Optimum reached", "",
            "-2 log-likelihood (REML criterion for REML fits, deviance for ML) of the fit "
            "each tool returns with its defaults, and the criterion evaluations of one fit.",
            "", "| model | lmmlib | mixedlm | statsmodels | lme4 default / tight (fixture) |",
            "|---|---|---|---|---|"]
    for r in rows:
        objs = [r["lmmlib_obj"], r["mixedlm_obj"], r["sm_obj"]]
        best = min(v for v in objs if v is not None)
        cells = [_optimum_cell(v, best, e) for v, e in
                 zip(objs, [r["lmmlib_evals"], r["mixedlm_evals"], r["sm_evals"]], strict=True)]
        fx = r["fixture"]
        lme4 = (f"{fx['objective']:.8f} / {fx['objective_tight']:.8f}; "
                f"evals: {fx['optinfo']['feval']}") if fx else "no fixture"
        out.append(f"| {r['model'].label} | {' | '.join(cells)} | {lme4} |")
    out += ["", "(+x): excess over the lowest value among the three Python tools.", "",
            "## Settings and caveats", "",
            "- lmmlib: `lmmlib.lmer(formula, df, reml=...)` with defaults (BOBYQA, "
            "ftol_abs = xtol_abs = 1e-10). evals = BOBYQA evaluations (`fit.opt.feval`), as "
            "lme4's optinfo; the start value and the finite-difference convergence check "
            "add 2 + 2k more (k = number of θ).",
            "- mixedlm: `mixedlm.lmer(formula, df, REML=...)` with defaults (\"auto\": "
            "L-BFGS-B on the analytic gradient from its Rust backend, COBYQA fallback). "
            "evals = `function_evals`; each one also computes the gradient. Its formula parser "
            "has no `^`, so `I(days**2)` is used.",
            "- statsmodels: `smf.mixedlm(...).fit(reml=...)` with defaults (bfgs; lbfgs and cg "
            "only if bfgs reports failure). evals = calls of `MixedLM.loglike` and "
            "`MixedLM.score` in an untimed warm-up fit. The crossed model uses one group "
            "holding every row and `vc_formula` for plot_number and disk (dense "
            "random-effects design), and runs in a child process with a "
            f"{args.sm_timeout:.0f} s limit per fit.",
            "- One BLAS thread for all tools (threadpoolctl); `RAYON_NUM_THREADS=1` for "
            "mixedlm unless set beforehand: in a trial run on this 2-core machine, rayon's "
            "default pool made mixedlm's Nepal fit about 3 times slower.",
            "- The machine is shared: compare the load column before reading much into "
            "small differences; the interleaved lmmlib/mixedlm ratio is the most robust "
            "number, statsmodels (timed separately, fewer fits) the least.", "",
            "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="timed lmmlib and mixedlm fits")
    p.add_argument("--sm-repeats", type=int, default=3, help="timed statsmodels fits")
    p.add_argument("--sm-timeout", type=float, default=120.0,
                   help="seconds allowed for one statsmodels fit of the crossed model")
    p.add_argument("--output", type=Path, default=HERE / "results.md")
    p.add_argument("--child-statsmodels", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_statsmodels:
        child_main(args.child_statsmodels, args.sm_repeats)
        return 0
    text = run(args)
    print(text)
    args.output.write_text(text)
    print(f"[bench] written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
