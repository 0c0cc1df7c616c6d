"""Shared test helpers: the lme4 reference fixtures and the fits they describe.

Fixtures come from ``tests/reference/lme4_goldens.R`` (R lme4, see
``tests/reference/README.md``).  The course datasets are loaded with
``lmmlib.datasets`` from ``$LMMLIB_DATA_MIRROR`` (no network in tests).

Tolerances.  Every numerical assertion in the suite says what it compares and
why its tolerance is what it is, next to it or in a named constant.  The
recurring reasons are named here, so that the suite holds on any x86-64 CPU
and BLAS kernel (results computed through an optimiser differ between kernels
by far more than their rounding, because the optimiser amplifies it):

* an optimum is compared through its *criterion* f (the REML criterion or the
  deviance, on the −2 log L scale), tightly;
* parameters are compared at what the curvature of f allows: where f is
  within δf of its minimum, a parameter p can be off by
  sqrt(2 δf (H⁻¹)_pp) = sqrt(δf)·SE(p) (H the Hessian of f, SE(p)² = 2 (H⁻¹)_pp),
  i.e. sqrt(2 δf / λ) for a curvature λ;
* closed forms and identities of the same numbers are exact up to rounding;
* simulations are compared within a few Monte Carlo standard errors;
* numbers printed in the course notes within half a unit of their last digit.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmlib
from lmmlib.datasets import load
from lmmlib.hessian import hessian
from lmmlib.varcomp import varcorr_frame

FIXTURES = Path(__file__).parent / "reference" / "fixtures"

# -- tolerances shared by the test files ------------------------------------------

# How far above its minimum an lmmlib optimum can stop.  BOBYQA stops on ftol_abs =
# xtol_abs = 1e-10 and lmmlib keeps the point without a restart when every free θ_i
# is within a finite-difference Newton step of 1e-4·|θ_i| of the minimum (RESTART_TOL,
# lmmlib/optimize.py).  Over this suite's fits the criterion ended at most 6e-9 above
# the minimum (a pulp bootstrap refit on OpenBLAS's Sandybridge kernel, 7e-5 short in
# θ; 3.5e-10 for nepal_slope on Haswell; usually < 1e-10), so with a 3x margin:
OPT_GAP = 2e-8  # absolute, on the −2 log L scale
# Two fits of one criterion (the same data in another row order, level coding or
# dtype, refit() against a fresh fit, the vectorised batch against the refit loop):
# their criteria differ by at most 2·OPT_GAP, plus the rounding of f itself (sums over
# n rows and log-determinants, ~1e-12 relative; 1e-11 covers the 7323-row disks fits).
# A real difference (REML vs ML, a wrong constant or df, a lost row) is O(0.1) or more.
SAME_OPTIMUM = {"abs": 2 * OPT_GAP, "rel": 1e-11}
# ... and their parameters differ by at most 2·sqrt(OPT_GAP) ≈ 3e-4 standard errors
# (the curvature bound above; for β the conditional SE of vcov() serves, since β and θ
# are orthogonal in the Fisher information of a linear mixed model).
SAME_OPTIMUM_SE = 2 * np.sqrt(OPT_GAP)


def same_optimum(expected: float):
    """``pytest.approx`` for the criterion of a second fit of the same problem."""
    return pytest.approx(expected, **SAME_OPTIMUM)


def profiled_at(model, theta: np.ndarray) -> dict:
    """β̂(θ), σ̂(θ) and the variance components at any θ (the profiled fit, as lmmlib's)."""
    theta = np.asarray(theta, dtype=float)
    sol = model.pls.solve(theta)
    nu = model.nobs - (len(model.fixef) if model.reml else 0)
    sigma = float(np.sqrt(sol.r2 / nu))
    return {"beta": np.asarray(sol.beta, dtype=float), "sigma": sigma,
            "varcorr": varcorr_frame(theta, sigma, model.design.reterms)}


def curvature_tolerance(model, quantity, gap: float, step: float = 1e-4) -> np.ndarray:
    """How far ``quantity(θ)`` can move while the criterion stays within ``gap`` of θ̂'s.

    The largest |J δ| over ½ δᵀHδ ≤ gap is sqrt(2·gap·diag(J H⁻¹ Jᵀ)): H is the
    central-difference Hessian of the profiled criterion at θ̂ over the free
    (off-boundary) coordinates, J the central-difference Jacobian of ``quantity`` (a
    function of θ returning an array; β̂ and σ̂ are functions of θ, see
    :func:`profiled_at`).  θ on a bound stays there: both fits being compared are at
    the bound (the criterion rises linearly away from it, not quadratically).
    """
    theta = np.asarray(model.theta, dtype=float)
    lower = model.design.lower()
    free = ~(np.isfinite(lower) & (theta - lower < 1e-4))
    q0 = np.atleast_1d(np.asarray(quantity(theta), dtype=float))
    if not free.any():
        return np.zeros_like(q0)
    h = step * np.maximum(np.abs(theta[free]), 1e-2)

    def embed(sub: np.ndarray) -> np.ndarray:
        th = theta.copy()
        th[free] = sub
        return th

    H = hessian(lambda sub: model.pls.objective(embed(sub), model.reml), theta[free], step=h)
    J = np.empty((q0.size, h.size))
    for i in range(h.size):
        e = np.zeros(h.size)
        e[i] = h[i]
        up = np.atleast_1d(quantity(embed(theta[free] + e)))
        down = np.atleast_1d(quantity(embed(theta[free] - e)))
        J[:, i] = (up - down) / (2.0 * h[i])
    spread = np.einsum("ij,jk,ik->i", J, np.linalg.inv(H), J)
    return np.sqrt(2.0 * gap * np.maximum(spread, 0.0))


def theta_curvature_tolerance(model, gap: float) -> np.ndarray:
    """:func:`curvature_tolerance` of θ itself (0 for a θ on its bound)."""
    return curvature_tolerance(model, lambda theta: theta, gap)

if "LMMLIB_DATA_MIRROR" not in os.environ:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if shared.is_dir():
        os.environ["LMMLIB_DATA_MIRROR"] = str(shared)


def fixture_names(kind: str | None = None) -> list[str]:
    """Names of the lme4 fixtures (optionally only ``"lmer"`` or ``"lm"`` ones)."""
    names = json.loads((FIXTURES / "index.json").read_text())["models"]
    return [n for n in names if kind is None or lme4_fixture(n)["kind"] == kind]


@cache
def reference(folder: str, name: str) -> dict:
    """One reference fixture of a folder of tests/reference/fixtures ("" for the lme4
    fits; "confint", "lmertest", "rlrsim", "anova", "glmer"); see its README."""
    return json.loads((FIXTURES / folder / f"{name}.json").read_text())


def reference_names(folder: str) -> list[str]:
    """Names of the fixtures of one reference folder."""
    return sorted(p.stem for p in (FIXTURES / folder).glob("*.json") if p.stem != "index")


def lme4_fixture(name: str) -> dict:
    """One lme4 lmer/lm fixture as a dict."""
    return reference("", name)


@cache
def course_data(name: str) -> pd.DataFrame:
    """A cleaned course dataset; Nepal gets ``ageC = age - 36`` as in the course."""
    df = load(name)
    if name == "nepal":
        df = df.assign(ageC=df["age"] - 36)
    return df


def fixture_data(fx: dict) -> pd.DataFrame:
    """The data a fixture was fitted to, with R's factor level order."""
    df = pd.DataFrame(fx["data"]) if fx["dataset"] == "inline" else course_data(fx["dataset"])
    df = df.copy()
    for col, levels in fx.get("factors", {}).items():
        df[col] = pd.Categorical(df[col].astype(str), categories=[str(v) for v in levels])
    return df


@cache
def fitted(name: str):
    """lmmlib's fit of the model a fixture describes (cached for the session)."""
    fx = lme4_fixture(name)
    data = fixture_data(fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.SingularFitWarning)
        if fx["kind"] == "lm":
            return lmmlib.lm(fx["formula"], data)
        return lmmlib.lmer(fx["formula"], data, reml=fx["reml"])


@pytest.fixture(scope="session")
def pig() -> pd.DataFrame:
    """Pig weights (48 pigs x 9 weeks)."""
    return course_data("pig")


@pytest.fixture(scope="session")
def nepal() -> pd.DataFrame:
    """Nepalese children, cleaned as in the course, with ageC."""
    return course_data("nepal")


@pytest.fixture(scope="session")
def pulp() -> pd.DataFrame:
    """Paper pulp brightness by operator."""
    return course_data("pulp")
