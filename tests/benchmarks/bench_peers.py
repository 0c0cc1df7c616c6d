"""lmmlib against every Python peer, in one interleaved run: the speed table.

Run with ``python tests/benchmarks/bench_peers.py`` (``make bench``; ``--quick``
for a smoke run into a temporary folder).  Not a test module.

Peers: mixedlm, mixedlm-rs, lme-python, interlace-lme and statsmodels (the
bench extra).  For every model each tool is fitted once to warm up, then in
``--rounds`` rounds of A B C … (the order rotated each round, so that load
on this shared machine hits every tool alike); a round times ``reps`` fits
of each tool and keeps their median (a tool whose first fit takes more than
``SLOW_SECONDS`` is timed by that fit alone).  Each tool's objective (−2 log L, or the
REML criterion) is compared with lmmlib's: a peer more than 1e-6 relative
above it stopped at a worse optimum and does not count as the fastest peer
(one below it would mean lmmlib stopped early, and is reported).

The 10⁶-row model runs every fit in a child process (one per tool and round)
that reports its peak resident memory (VmHWM).  The load test times lmmlib
and mixedlm on InstEval on an idle machine and with one competing CPU-bound
process, interleaved, and reports each tool's slow-down.

Threads: one BLAS thread for every tool (threadpoolctl), and
``RAYON_NUM_THREADS=1`` for the Rust peers unless set beforehand.  The machine's
BLAS kernel settings (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are used as
set; InstEval is also timed once in a child with both unset (the CPU's native
kernel) and reported beside.

Writes tests/benchmarks/peers_results.json and peers_results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_scale  # noqa: E402
from peer_fits import FITTERS, TOOLS, Problem  # noqa: E402

OBJECTIVE_RTOL = 1e-6  # a peer this far above lmmlib's objective is at another optimum
SEED = 20261202
SLOW_SECONDS = 20.0  # a tool whose first fit takes longer is timed by that fit alone


# ------------------------------------------------------------------------ problems

def sleep_data(subjects: int = 50_000, days: int = 10) -> pd.DataFrame:
    """sleepstudy-like: every subject on days 0..9, correlated intercepts and slopes."""
    rng = np.random.default_rng([SEED, subjects])
    subj = np.repeat(np.arange(subjects), days)
    day = np.tile(np.arange(days, dtype=float), subjects)
    b = rng.multivariate_normal([0.0, 0.0], [[600.0, 10.0], [10.0, 35.0]], size=subjects)
    y = 250.0 + 10.0 * day + b[subj, 0] + b[subj, 1] * day + rng.normal(0.0, 25.0, len(day))
    return pd.DataFrame({"y": y, "days": day, "subj": subj})


def problems(quick: bool) -> list[Problem]:
    from lmmlib.datasets import load

    nepal = load("nepal")
    nepal = nepal.assign(ageC=nepal["age"] - 36)  # as in the course and the lme4 fixtures
    disks = load("soybean_disks")
    small = 20_000 if quick else 200_000
    out = [
        Problem("pig", "pig `weight ~ weeks + (1|id)`", "weight ~ weeks + (1|id)",
                load("pig"), True, 30),
        Problem("nepal", "Nepal `arm ~ ageC + (ageC|id)`", "arm ~ ageC + (ageC|id)",
                nepal[["arm", "ageC", "id"]].dropna(), True, 20),
        Problem("disks", "soybean disks crossed `(1|plot_number) + (1|disk)`",
                "AqE ~ ID + days + I(days^2) + Precip + Precip_7day + (1|plot_number) "
                "+ (1|disk)", disks, False, 5),
        Problem("insteval", "InstEval `y ~ service + (1|s) + (1|d)`", bench_scale.INSTEVAL,
                bench_scale.insteval(), False, 1),
        Problem("slope", f"`y ~ x + (x|g)`, {small:,} rows, {small // 10:,} groups",
                "y ~ x + (x|g)", bench_scale.slope_data(small), False, 3),
        Problem("sleep", "`y ~ days + (days|subj)`, 50k subjects × 10 days",
                "y ~ days + (days|subj)", sleep_data(5_000 if quick else 50_000), True, 3),
        Problem("pulp_boot", "pulp bootstrap LRT, B = 1000", "bright ~ 1 + (1|operator)",
                load("pulp"), False, 3, nsim=1000),
    ]
    if quick:
        out = [p for p in out if p.key != "insteval"]
    return out


# ------------------------------------------------------------------------ timing

def one_round(tool: str, problem: Problem, fitter: Callable) -> tuple[float, float]:
    """Median seconds of ``problem.reps`` fits and the objective of the last."""
    times, objective = [], np.nan
    for _ in range(problem.reps):
        gc.collect()
        t0 = time.perf_counter()
        objective = fitter(problem)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), objective


def interleaved(problem: Problem, tools: list[str], rounds: int) -> dict:
    """Warm up each tool, then ``rounds`` rounds with the tool order rotated."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for t in tools:
            try:
                t0 = time.perf_counter()
                objective = FITTERS[t](problem)
                seconds = time.perf_counter() - t0
                out[t] = {"status": "ok", "times": [], "objective": float(objective)}
                if seconds > SLOW_SECONDS:  # timed once: rounds would take many minutes
                    out[t].update(status="ok (one fit, slow)", times=[seconds])
            except Exception as exc:  # noqa: BLE001 - a peer that cannot fit the model
                out[t] = {"status": f"n/a ({type(exc).__name__}: {str(exc)[:120]})"}
        live = [t for t in tools if out[t]["status"] == "ok"]
        for r in range(rounds):
            for t in live[r % len(live):] + live[: r % len(live)]:
                seconds, objective = one_round(t, problem, FITTERS[t])
                out[t]["times"].append(seconds)
                out[t]["objective"] = float(objective)
    for t in tools:
        if out[t].get("times"):
            out[t]["median"] = statistics.median(out[t]["times"])
    return out


def judge(res: dict) -> None:
    """Mark each peer's optimum against lmmlib's and find the fastest correct peer."""
    ref = res["lmmlib"]["objective"]
    for t, r in res.items():
        if t == "lmmlib" or r.get("median") is None:
            continue
        excess = (r["objective"] - ref) / abs(ref)
        r["excess"] = excess
        r["correct"] = bool(excess <= OBJECTIVE_RTOL)
    peers = {t: r for t, r in res.items() if t != "lmmlib" and r.get("correct")}
    if peers:
        best = min(peers, key=lambda t: peers[t]["median"])
        res["fastest_peer"] = {"tool": best, "median": peers[best]["median"],
                               "ratio": res["lmmlib"]["median"] / peers[best]["median"]}


# ------------------------------------------------------------------ child processes

def child_main(tool: str, n: int) -> None:
    """Fit the 10⁶-row model once (after a small warm-up); print seconds and peak memory."""
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")
    df = bench_scale.intercept_data(n)
    small = Problem("w", "", bench_scale.INTERCEPT, bench_scale.intercept_data(1000), False, 1)
    big = Problem("million", "", bench_scale.INTERCEPT, df, False, 1)
    with threadpool_limits(limits=1, user_api="blas"):
        if tool != "none":
            FITTERS[tool](small)
            t0 = time.perf_counter()
            objective = FITTERS[tool](big)
            seconds = time.perf_counter() - t0
        else:
            objective = seconds = None
    print(json.dumps({"seconds": seconds, "objective": objective,
                      "peak_rss_mb": bench_scale.peak()}), flush=True)


def run_child(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
    if res.returncode or not lines:
        first = next(iter(res.stderr.strip().splitlines()), f"exit code {res.returncode}")
        return {"status": f"failed: {first[:160]}"}
    return {"status": "ok", **json.loads(lines[-1])}


def million(tools: list[str], rounds: int, n: int) -> dict:
    """The 10⁶-row fit of every tool in child processes, interleaved over rounds."""
    base = run_child(["none", str(n)])
    out: dict = {"baseline_rss_mb": base.get("peak_rss_mb")}
    for t in tools:
        out[t] = {"status": "ok", "times": [], "peak_rss_mb": []}
    for r in range(rounds):
        for t in tools[r % len(tools):] + tools[: r % len(tools)]:
            rec = run_child([t, str(n)])
            if rec["status"] != "ok":
                out[t]["status"] = rec["status"]
                continue
            out[t]["times"].append(rec["seconds"])
            out[t]["peak_rss_mb"].append(rec["peak_rss_mb"])
            out[t]["objective"] = rec["objective"]
    for t in tools:
        if out[t]["times"]:
            out[t]["median"] = statistics.median(out[t]["times"])
            out[t]["peak_rss_mb"] = max(out[t]["peak_rss_mb"])
        else:
            out[t]["median"] = None
    return out


def native_kernel(problem_key: str) -> dict:
    """lmmlib on InstEval in a child with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return run_child(["native", problem_key], env=env, timeout=900)


def native_main(problem_key: str) -> None:
    """Three lmmlib InstEval fits after a warm-up, for :func:`native_kernel`."""
    from threadpoolctl import threadpool_limits

    problem = Problem(problem_key, "", bench_scale.INSTEVAL, bench_scale.insteval(), False, 1)
    with threadpool_limits(limits=1, user_api="blas"):
        FITTERS["lmmlib"](problem)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            objective = FITTERS["lmmlib"](problem)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(times), "times": times,
                      "objective": objective}), flush=True)


# ------------------------------------------------------------------------ load test

def load_test(problem: Problem, rounds: int) -> dict:
    """lmmlib and mixedlm idle and beside one CPU-bound process, interleaved."""
    out = {"idle": {}, "loaded": {}}
    burner = [sys.executable, "-c", "while True: pass"]
    for _ in range(rounds):
        for state in ("idle", "loaded"):
            proc = subprocess.Popen(burner) if state == "loaded" else None
            try:
                time.sleep(0.5 if proc else 0.0)
                res = interleaved(problem, ["lmmlib", "mixedlm"], 1)
            finally:
                if proc:
                    proc.kill()
                    proc.wait()
            for t in ("lmmlib", "mixedlm"):
                out[state].setdefault(t, []).extend(res[t].get("times", []))
    summary = {}
    for t in ("lmmlib", "mixedlm"):
        idle, loaded = (statistics.median(out[s][t]) for s in ("idle", "loaded"))
        summary[t] = {"idle": idle, "loaded": loaded, "slowdown": loaded / idle,
                      "idle_times": out["idle"][t], "loaded_times": out["loaded"][t]}
    summary["passes"] = summary["lmmlib"]["slowdown"] <= summary["mixedlm"]["slowdown"]
    return summary


# --------------------------------------------------------------------------- report

def machine_info() -> dict:
    from importlib.metadata import version

    from threadpoolctl import threadpool_info

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor())
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=HERE).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "git": git,
        "versions": {p: version(p) for p in ("numpy", "scipy", "pandas", "lmmlib", "mixedlm",
                                             "mixedlm-rs", "lme-python", "interlace-lme",
                                             "statsmodels")},
        "blas": [f"{i['internal_api']} {i['version']} ({i.get('architecture')}, "
                 f"{i['num_threads']} threads)" for i in threadpool_info()
                 if i["user_api"] == "blas"],
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "RAYON_NUM_THREADS")},
    }


def _cell(r: dict) -> str:
    if r.get("median") is None:
        return r.get("status", "n/a")
    ms = r["median"] * 1e3
    text = f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1e3:.2f} s"
    if "correct" in r and not r["correct"]:
        text += f" (worse optimum, +{r['excess']:.1e})"
    return text


def markdown(results: dict) -> str:
    tools = list(TOOLS)
    lines = ["# lmmlib and its Python peers", "",
             "Generated by `tests/benchmarks/bench_peers.py` (`make bench`): median wall "
             "time per fit, formula and DataFrame to fitted model, one BLAS thread for every "
             "tool, tools interleaved round by round.  A peer whose objective is more than "
             "1e-6 relative above lmmlib's is marked and not counted.", "",
             "| model | " + " | ".join(tools) + " | fastest correct peer | lmmlib / fastest |",
             "|---|" + "---:|" * (len(tools) + 2)]
    for res in results["models"].values():
        best = res.get("fastest_peer")
        ratio = f"{best['ratio']:.2f}" if best else "n/a"
        label = res["label"].replace("|", "\\|")  # a pipe inside a table cell
        lines.append(f"| {label} | " + " | ".join(_cell(res.get(t, {})) for t in tools)
                     + f" | {best['tool'] if best else 'n/a'} | {ratio} |")
    mil = results.get("million")
    if mil:
        lines += ["", f"10⁶ rows, `{bench_scale.INTERCEPT}`, 10⁵ groups, ML (child processes; "
                  f"baseline: data alone {mil['baseline_rss_mb']:.0f} MB peak):", "",
                  "| tool | time | peak memory |", "|---|---:|---:|"]
        for t in (t for t in tools if t in mil):
            r = mil[t]
            peak = f"{r['peak_rss_mb']:.0f} MB" if r.get("median") is not None else ""
            lines.append(f"| {t} | {_cell(r)} | {peak} |")
    load = results.get("load")
    if load:
        lines += ["", "Load test (InstEval; one competing CPU-bound process):", "",
                  "| tool | idle | loaded | slow-down |", "|---|---:|---:|---:|"]
        for t in ("lmmlib", "mixedlm"):
            r = load[t]
            lines.append(f"| {t} | {r['idle']:.2f} s | {r['loaded']:.2f} s | "
                         f"{r['slowdown']:.2f} |")
    nat = results.get("native_kernel")
    if nat and nat.get("status") == "ok":
        lines += ["", f"InstEval, lmmlib with the CPU's native BLAS kernel (OPENBLAS_CORETYPE "
                  f"and OPENBLAS_L2_SIZE unset, child process): {nat['seconds']:.2f} s."]
    m = results["machine"]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in m.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data, one round, temp folder")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="model keys to run (and million, load)")
    ap.add_argument("--out", type=Path, help="folder for the results (default: this one)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child[0] == "native":
            native_main(args.child[1])
        else:
            child_main(args.child[0], int(args.child[1]))
        return 0
    warnings.simplefilter("ignore")
    rounds = 1 if args.quick else args.rounds
    results: dict = {"machine": machine_info(), "load_start": os.getloadavg(), "models": {}}
    for problem in problems(args.quick and not (args.only and "insteval" in args.only)):
        if args.only and problem.key not in args.only:
            continue
        tools = [t for t in TOOLS if problem.key in FITTERS[t].models]
        load = os.getloadavg()[0]
        res = interleaved(problem, tools, rounds)
        judge(res)
        res.update(label=problem.label, nobs=len(problem.data), load=[load, os.getloadavg()[0]])
        results["models"][problem.key] = res
        print(problem.key, {t: _cell(r) for t, r in res.items() if isinstance(r, dict)
                            and "status" in r}, flush=True)
    if not args.only or "million" in args.only:
        n = 10**5 if args.quick else 10**6
        results["million"] = million([t for t in TOOLS if "million" in FITTERS[t].models],
                                     rounds, n)
        print("million", {t: _cell(r) for t, r in results["million"].items()
                          if isinstance(r, dict)}, flush=True)
    if not args.quick and (not args.only or "load" in args.only):
        results["load"] = load_test(next(p for p in problems(False) if p.key == "insteval"), 3)
        results["native_kernel"] = native_kernel("insteval")
    results["load_end"] = os.getloadavg()
    folder = args.out or (Path(tempfile.mkdtemp()) if args.quick else HERE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "peers_results.json").write_text(json.dumps(results, indent=1, default=float))
    (folder / "peers_results.md").write_text(markdown(results))
    print(f"wrote {folder / 'peers_results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
