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
from lmmlib.engine.ranef import block_effects, ranef_frame
from lmmlib.engine.varcomp import varcorr_frame
from lmmlib.inference.hessian import hessian

FIXTURES = Path(__file__).parent / "reference" / "fixtures"

if "LMMLIB_DATA_MIRROR" not in os.environ:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if shared.is_dir():
        os.environ["LMMLIB_DATA_MIRROR"] = str(shared)

# -- tolerances shared by the test files ------------------------------------------

# How far above its minimum an lmmlib optimum can stop.  BOBYQA stops on ftol_abs =
# xtol_abs = 1e-10: a last step that changes the criterion by less than 1e-10.  That
# leaves it much further above the minimum only along a flat direction of the
# criterion (small curvature λ), where lmmlib's acceptance rule still lets it stop:
# without a restart it keeps the point when every free θ_i is within a
# finite-difference Newton step of 1e-4·|θ_i| (RESTART_TOL, lmmlib/optimize.py), a gap
# of up to ½λ(1e-4·θ_i)², ~3e-8 for θ of order 3 and λ ≈ 1.  Seen over this suite's
# fits on the Haswell, AVX-512 and Sandybridge OpenBLAS kernels: ≤ 1.05e-8 (the
# relabelled-groups reproducer of test_properties.py, λ = 0.7), 6e-9 (a pulp bootstrap
# refit, 7e-5 short in θ), 3.5e-10 (nepal_slope), usually < 1e-10.  Hence, for regular
# (not boundary) fits, with a margin of 5:
OPT_GAP = 5e-8  # absolute, on the −2 log L scale
# Two fits of one criterion (the same data in another row order, level coding or
# dtype, refit() against a fresh fit, the vectorised batch against the refit loop):
# their criteria differ by at most 2·OPT_GAP, plus the rounding of f itself (sums over
# n rows and log-determinants, ~1e-12 relative; 1e-11 covers the 7323-row disks fits).
# A real difference (REML vs ML, a wrong constant or df, a lost row) is O(0.1) or more.
SAME_OPTIMUM = {"abs": 2 * OPT_GAP, "rel": 1e-11}
# ... and their parameters differ by at most 2·sqrt(OPT_GAP) ≈ 4.5e-4 standard errors
# (the curvature bound above; for β the conditional SE of vcov() serves, since β and θ
# are orthogonal in the Fisher information of a linear mixed model).
SAME_OPTIMUM_SE = 2 * np.sqrt(OPT_GAP)


def same_optimum(expected: float):
    """``pytest.approx`` for the criterion of a second fit of the same problem."""
    return pytest.approx(expected, **SAME_OPTIMUM)


def profiled_at(model, theta: np.ndarray) -> dict:
    """The profiled fit at any θ, as lmmlib forms it at θ̂: β̂(θ), their standard errors,
    σ̂(θ), the variance components, the BLUPs (one levels × effects array per grouping
    factor), the ranef table with conditional SDs and the fitted values."""
    theta = np.asarray(theta, dtype=float)
    sol = model.pls.solve(theta)
    design = model.design
    nu = model.nobs - (len(model.fixef) if model.reml else 0)
    sigma = float(np.sqrt(sol.r2 / nu))
    blups = block_effects(sol, design.blocks)
    fitted = design.X @ sol.beta
    for block, eff in zip(design.blocks, blups, strict=True):
        fitted = fitted + np.einsum("ij,ij->i", block.Z, eff[block.codes])
    inv = np.linalg.inv(sol.LX)
    return {"beta": np.asarray(sol.beta, dtype=float), "sigma": sigma,
            "se": sigma * np.sqrt(np.einsum("ij,ij->j", inv, inv)),
            "varcorr": varcorr_frame(theta, sigma, design.reterms),
            "blups": [np.asarray(e, dtype=float) for e in blups], "fitted": fitted,
            "ranef": ranef_frame(sol, design.blocks, sigma, True)}


class CurvatureBound:
    """How far functions of θ can move while the criterion stays within ``gap`` of θ̂'s.

    For a quantity q(θ) the largest |J δ| over ½ δᵀHδ ≤ gap is
    sqrt(2·gap·diag(J H⁻¹ Jᵀ)): H is the central-difference Hessian of the profiled
    criterion at θ̂ over the free (off-boundary) coordinates, J the central-difference
    Jacobian of q (β̂, σ̂, the BLUPs and the fitted values are functions of θ, see
    :func:`profiled_at`).  A θ on its bound stays there: the fits compared are both at
    the bound (the criterion rises linearly away from it, not quadratically).
    """

    def __init__(self, model, gap: float, step: float = 1e-4) -> None:
        self.model, self.gap = model, float(gap)
        self.theta = np.asarray(model.theta, dtype=float)
        lower = model.design.lower()
        self.free = ~(np.isfinite(lower) & (self.theta - lower < 1e-4))
        self.h = step * np.maximum(np.abs(self.theta[self.free]), 1e-2)
        if self.free.any():
            H = hessian(lambda sub: model.pls.objective(self._embed(sub), model.reml),
                        self.theta[self.free], step=self.h)
            self.Hinv = np.linalg.inv(H)

    def _embed(self, sub: np.ndarray) -> np.ndarray:
        th = self.theta.copy()
        th[self.free] = sub
        return th

    def __call__(self, quantity) -> np.ndarray:
        """The bound for each entry of ``quantity(θ)`` (an array-valued function)."""
        q0 = np.atleast_1d(np.asarray(quantity(self.theta), dtype=float)).ravel()
        if not self.free.any():
            return np.zeros_like(q0)
        J = np.empty((q0.size, self.h.size))
        for i, hi in enumerate(self.h):
            e = np.zeros(self.h.size)
            e[i] = hi
            up = np.asarray(quantity(self._embed(self.theta[self.free] + e)), float).ravel()
            down = np.asarray(quantity(self._embed(self.theta[self.free] - e)), float).ravel()
            J[:, i] = (up - down) / (2.0 * hi)
        spread = np.einsum("ij,jk,ik->i", J, self.Hinv, J)
        return np.sqrt(2.0 * self.gap * np.maximum(spread, 0.0))


def curvature_tolerance(model, quantity, gap: float) -> np.ndarray:
    """:class:`CurvatureBound` of one quantity (a function of θ returning an array)."""
    return CurvatureBound(model, gap)(quantity)


def course_value(printed: float, decimals: int, spread: float = 0.0):
    """``pytest.approx`` for a number printed (course notes, R output) to ``decimals``.

    Half a unit of the last printed digit, plus ``spread`` for a value that comes out
    of an optimiser: how far an lmmlib optimum can move it (:func:`optimum_spread`).
    Without the spread a value that lies near a rounding boundary (the ML pig
    variance 14.81749 printed as 14.817) would depend on where BOBYQA stops.
    """
    return pytest.approx(printed, abs=0.5 * 10.0 ** (-decimals) + spread)


@cache
def _fixture_bound(name: str) -> CurvatureBound:
    return CurvatureBound(fitted(name), OPT_GAP)


def model_spread(model, quantity) -> np.ndarray:
    """:func:`optimum_spread` for any lmer fit: the curvature bound (OPT_GAP) of
    ``quantity(θ)``, a function of θ (see :func:`profiled_at`)."""
    return CurvatureBound(model, OPT_GAP)(quantity)


def optimum_spread(name: str, what: str, index: int = 0) -> float:
    """How far an lmmlib optimum (within OPT_GAP of the minimum) can move entry ``index``
    of quantity ``what`` of the lme4 fixture model ``name``: its curvature bound.

    ``what`` is a key of :func:`profiled_at` ("beta", "se", "sigma", "fitted"), or
    "vcov"/"sdcor" (rows of varcorr), "condval"/"condsd" (rows of the ranef table), or
    "theta".
    """
    m = fitted(name)

    def quantity(theta):
        fit = profiled_at(m, theta)
        if what in ("vcov", "sdcor"):
            return fit["varcorr"][what].to_numpy()
        if what in ("condval", "condsd"):
            return fit["ranef"][what].to_numpy()
        if what == "theta":
            return np.asarray(theta, dtype=float)
        return np.atleast_1d(fit[what])

    return float(_fixture_bound(name)(quantity)[index])


def theta_curvature_tolerance(model, gap: float) -> np.ndarray:
    """:func:`curvature_tolerance` of θ itself; a θ on its bound gets lme4's singularity
    tolerance 1e-4 instead (the criterion is flat there to within the optimiser's gap,
    and lmmlib reports the fit singular anywhere below it)."""
    bound = CurvatureBound(model, gap)
    return np.where(bound.free, bound(lambda theta: theta), 1e-4)


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


@cache
def three_fits() -> dict:
    """An lm, an lmer and a glmer fit of one small simulated data set (for accessor tests)."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=g.size)
    y = 1 + x + rng.normal(size=15)[g] + rng.normal(size=g.size)
    d = pd.DataFrame({"y": y, "x": x, "g": g, "k": rng.poisson(np.exp(0.3 + 0.2 * x))})
    return {"lmer": lmmlib.lmer("y ~ x + (1|g)", d), "lm": lmmlib.lm("y ~ x", d),
            "glmer": lmmlib.glmer("k ~ x + (1|g)", d, "poisson")}
