"""One fit of a benchmark problem by each tool, returning the tool's objective.

Used by bench_peers.py.  Every fitter takes a :class:`Problem` and returns the
criterion the tool minimised, on lme4's scale: the REML criterion for REML
fits and the deviance −2 log L for ML fits (for the bootstrap problem, the
observed likelihood-ratio statistic, which every tool must reproduce).  Each
fitter lists the problems it can fit in ``models``; the others are not run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Problem:
    key: str
    label: str
    formula: str  # lme4 syntax (``I(days^2)``; tools with Python parsers get ``**``)
    data: pd.DataFrame = field(repr=False)
    reml: bool
    reps: int  # fits per round (their median is the round's time)
    nsim: int = 0  # bootstrap replicates (the bootstrap problem only)


TOOLS = ("lmmlib", "mixedlm", "mixedlm-rs", "lme-python", "interlace", "statsmodels")
LMM = ("pig", "nepal", "disks", "insteval", "slope", "sleep", "million")


class Fitter:
    """A tool's fit function and the problems it runs."""

    def __init__(self, fit: Callable[[Problem], float], models: tuple[str, ...]) -> None:
        self.fit, self.models = fit, models

    def __call__(self, problem: Problem) -> float:
        return float(self.fit(problem))


def _split(formula: str) -> tuple[str, list[str]]:
    """Fixed part and the bar terms ``(expr | group)`` of an lme4 formula."""
    bars = re.findall(r"\(([^()|]+)\|([^()|]+)\)", formula)
    fixed = re.sub(r"\s*\+\s*\([^()|]+\|[^()|]+\)", "", formula).strip()
    return fixed, [f"({e.strip()} | {g.strip()})" for e, g in bars]


# ---------------------------------------------------------------------------- lmmlib

def _lmmlib(p: Problem) -> float:
    import lmmlib

    if p.nsim:
        null = lmmlib.lm("bright ~ 1", p.data)
        alt = lmmlib.lmer(p.formula, p.data, reml=False)
        return lmmlib.bootstrap_lrt(null, alt, nsim=p.nsim, rng=1).observed
    return lmmlib.lmer(p.formula, p.data, reml=p.reml).objective


# --------------------------------------------------------------------------- mixedlm

def _mixedlm(p: Problem) -> float:
    import mixedlm

    fit = mixedlm.lmer(p.formula.replace("^", "**"), p.data, REML=p.reml)  # no ^ in its parser
    return -2.0 * float(fit.logLik())


# ------------------------------------------------------------- statsmodels-like APIs

def _one_factor(p: Problem) -> tuple[str, str, str | None]:
    fixed, bars = _split(p.formula)
    (bar,) = bars
    expr, group = (s.strip() for s in bar.strip("()").split("|"))
    slope = [t.strip() for t in expr.split("+") if t.strip() not in ("1", "")]
    return fixed, group, ("~" + " + ".join(slope)) if slope else None


def _mixedlm_rs(p: Problem) -> float:
    import mixedlm_rs

    fixed, group, re_formula = _one_factor(p)
    kw = {"re_formula": re_formula} if re_formula else {}
    return -2.0 * float(mixedlm_rs.mixedlm(fixed, p.data, groups=group, **kw)
                        .fit(reml=p.reml).llf)


def _statsmodels(p: Problem) -> float:
    import statsmodels.formula.api as smf

    fixed, group, re_formula = _one_factor(p)
    kw = {"re_formula": re_formula} if re_formula else {}
    return -2.0 * float(smf.mixedlm(fixed, p.data, groups=group, **kw).fit(reml=p.reml).llf)


# ------------------------------------------------------------------------ lme-python

def _lme_python(p: Problem) -> float:
    import lme_python

    if p.nsim:
        return _lme_python_boot(p)
    fit = lme_python.lmer(p.formula, p.data, reml=p.reml)
    return float(fit.reml_criterion if p.reml else fit.deviance)


def _lme_python_boot(p: Problem) -> float:
    """The parametric bootstrap LRT as a loop of prepared fits (lme-python has no
    bootstrap of a random-effect test): simulate from the ML null fit, refit."""
    import lme_python

    y = p.data["bright"].to_numpy(dtype=float)
    n = len(y)

    def null_deviance(v: np.ndarray) -> float:
        rss = float(((v - v.mean()) ** 2).sum())
        return n * (1.0 + np.log(2.0 * np.pi * rss / n))

    prepared = lme_python.prepare_lmer(p.formula, p.data)
    observed = null_deviance(y) - lme_python.fit_prepared(prepared, False, y=y).deviance
    rng = np.random.default_rng(1)
    sd = np.sqrt(((y - y.mean()) ** 2).mean())
    stats = np.empty(p.nsim)
    for i in range(p.nsim):
        ystar = y.mean() + sd * rng.standard_normal(n)
        stats[i] = null_deviance(ystar) - lme_python.fit_prepared(prepared, False, y=ystar).deviance
    return max(observed, 0.0) if stats.size else observed


# ------------------------------------------------------------------------- interlace

def _interlace(p: Problem) -> float:
    import interlace

    fixed, bars = _split(p.formula.replace("^", "**"))  # a patsy formula
    fit = interlace.fit(fixed, p.data, random=bars, method="REML" if p.reml else "ML")
    return -2.0 * float(fit.llf)


FITTERS: dict[str, Fitter] = {
    "lmmlib": Fitter(_lmmlib, (*LMM, "pulp_boot")),
    "mixedlm": Fitter(_mixedlm, LMM),
    "mixedlm-rs": Fitter(_mixedlm_rs, ("pig", "nepal", "slope", "sleep", "million")),
    "lme-python": Fitter(_lme_python, (*LMM, "pulp_boot")),
    "interlace": Fitter(_interlace, LMM),
    "statsmodels": Fitter(_statsmodels, ("pig",)),
}
