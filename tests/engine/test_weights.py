"""Prior weights and offsets in the engine's penalised least squares (lme4 fixtures).

The fixtures (tests/reference/lme4_weights.R) are lme4 fits of lme4's example
data with deterministic weight and offset columns.  At lme4's own θ the
criterion is a closed form of the data, so lmmlib must reproduce lme4's
objective to rounding (CLOSED_FORM_RTOL, as in test_pls.py); minimised, it must
reach lme4's tight optimum at the same-optimum rule of conftest.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, fixture_data, reference, reference_names

from lmmlib.engine.design import build_design
from lmmlib.engine.fitting import fit_theta
from lmmlib.engine.pls import PLS
from lmmlib.errors import DataError

LMER = [n for n in reference_names("weights") if reference("weights", n)["kind"] == "lmer"]
CLOSED_FORM_RTOL = 1e-9  # the same criterion at the same θ: rounding only (see test_pls.py)


def weighted_pls(name: str) -> tuple[dict, PLS]:
    fx = reference("weights", name)
    data = fixture_data(fx)
    design = build_design(fx["python_formula"], data)
    w = None if fx["weights"] is None else data[fx["weights"]].to_numpy(float)
    o = None if fx["offset"] is None else data[fx["offset"]].to_numpy(float)
    return fx, PLS(design, weights=w, offset=o)


@pytest.mark.parametrize("name", LMER)
def test_weighted_criterion_at_lme4_theta_is_lme4_objective(name):
    fx, pls = weighted_pls(name)
    value = pls.objective(np.atleast_1d(np.asarray(fx["theta"], float)), reml=fx["reml"])
    assert value == pytest.approx(fx["objective"], rel=CLOSED_FORM_RTOL)
    # without the weights (or the offset) it is another criterion, off by O(1) or more
    design = pls.design
    assert abs(PLS(design).objective(np.atleast_1d(np.asarray(fx["theta"], float)), fx["reml"])
               - fx["objective"]) > 1.0


@pytest.mark.parametrize("name", LMER)
def test_weighted_fit_reaches_lme4_tight_optimum(name):
    fx, pls = weighted_pls(name)
    opt = fit_theta(pls, fx["reml"])
    # lmmlib's optimum is no higher than lme4's tight one (beyond lmmlib's own gap)
    assert opt.fval <= fx["objective_tight"] + OPT_GAP
    assert opt.fval == pytest.approx(fx["objective_tight"], **SAME_OPTIMUM)
    sol = pls.solve(opt.theta)
    # β̂ at the optimum: lme4's β moves with θ by at most ~1e-6 relative along the flat
    # directions of the criterion (seen 4e-8); 1e-5 relative
    np.testing.assert_allclose(sol.beta, fx["beta_tight"], rtol=1e-5)


def test_weights_scale_the_residual_variance():
    # closed form: weights c·w are the same model with σ² → σ²/c and, as Var(b) = σ²ΛΛ'
    # is unchanged, Λ → Λ/√c; the criterion moves by −n log c (weights) + n log c (r²) = 0
    fx, pls = weighted_pls("sleep_weights_ml")
    w = fixture_data(fx)["w"].to_numpy(float)
    theta = np.asarray(fx["theta"], float)
    scaled = PLS(pls.design, weights=4.0 * w)
    assert scaled.objective(theta / 2.0, reml=False) == pytest.approx(
        pls.objective(theta, reml=False), rel=CLOSED_FORM_RTOL)
    # (β̂ is the same least-squares solution: rounding only)
    np.testing.assert_allclose(scaled.solve(theta / 2.0).beta, pls.solve(theta).beta,
                               rtol=1e-10)


def test_reweight_solves_the_weighted_normal_equations():
    # the GLMM's step: W·y given instead of y; the solution of min ‖W½(y − Xβ − ZΛu)‖² +
    # ‖u‖² for crossed factors against dense normal equations (closed form; rounding
    # of a well-conditioned 31×31 system only)
    fx, pls = weighted_pls("penicillin_weights")
    rng = np.random.default_rng(3)
    w = rng.uniform(0.2, 3.0, pls.n)
    theta = np.array([1.3, 2.1])
    sol = pls.reweight(w, w * pls.design.y).solve(theta)
    X, y = pls.design.X, pls.design.y
    Z = np.hstack([b.Z[:, :1] * (b.codes[:, None] == np.arange(b.nlevels)) * b.lam(theta)[0, 0]
                   for b in pls.design.blocks])
    A = np.hstack([Z, X])
    P = np.diag(np.r_[np.ones(Z.shape[1]), np.zeros(X.shape[1])])
    coef = np.linalg.solve(A.T @ (w[:, None] * A) + P, A.T @ (w * y))
    np.testing.assert_allclose(sol.beta, coef[Z.shape[1]:], rtol=1e-10)
    np.testing.assert_allclose(sol.u, coef[: Z.shape[1]], rtol=1e-9, atol=1e-12)
    # and for a given β the minimiser over u only
    beta = np.array([20.0])
    u = pls.reweight(w, w * y).solve(theta, beta=beta).u
    u_ref = np.linalg.solve(Z.T @ (w[:, None] * Z) + np.eye(Z.shape[1]),
                            Z.T @ (w * (y - X @ beta)))
    np.testing.assert_allclose(u, u_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bad, match", [(np.zeros(144), "positive"),
                                        (np.ones(10), "one value per observation")])
def test_bad_weights_are_named(bad, match):
    fx, pls = weighted_pls("penicillin_weights")
    with pytest.raises(DataError, match=f"weights.*{match}|weights must have {match}"):
        PLS(pls.design, weights=bad)
