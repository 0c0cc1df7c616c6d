"""The bounded optimiser wrapper on functions with known minima (closed form)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import course_data

import lmmlib
from lmmlib.engine.differences import finite_gradient
from lmmlib.engine.optimize import minimize_theta
from lmmlib.errors import ConvergenceWarning


def test_interior_minimum():
    f = lambda x: (x[0] - 2.0) ** 2 + 3 * (x[1] + 1.0) ** 2 + 5.0  # noqa: E731
    opt = minimize_theta(f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]))
    # BOBYQA stops within ~1e-10 (ftol_abs) of the minimum value; the curvature (2 and
    # 6) turns that into sqrt(2·1e-10/2) = 1e-5 in x at most
    np.testing.assert_allclose(opt.theta, [2.0, -1.0], atol=1e-5)
    assert opt.fval == pytest.approx(5.0) and opt.converged and opt.boundary == ()


def test_boundary_minimum_is_reported():
    f = lambda x: (x[0] + 1.0) ** 2  # noqa: E731  minimum outside the bound x >= 0
    opt = minimize_theta(f, np.array([1.0]), np.array([0.0]))
    # at the bound f rises linearly (slope 2): a gap of 1e-10 allows 5e-11 in x
    assert opt.theta[0] == pytest.approx(0.0, abs=1e-8)
    assert opt.boundary == (0,)


def test_non_convergence_warns():
    f = lambda x: float(np.sum((x - 3.0) ** 2))  # noqa: E731
    with pytest.warns(ConvergenceWarning):
        opt = minimize_theta(f, np.array([1.0, 1.0]), np.array([0.0, 0.0]), maxeval=5)
    assert not opt.converged


def test_finite_gradient_of_a_quadratic():
    g, h = finite_gradient(lambda x: float(x @ x), np.array([1.0, -2.0]), np.full(2, -np.inf))
    # central differences are exact for a quadratic up to rounding: ε·f/h ≈ 1e-12 in the
    # gradient, ε·f/h² ≈ 1e-8 in the second derivative (step h = 1e-4·max(1, |x|))
    np.testing.assert_allclose(g, [2.0, -4.0], rtol=1e-6)
    np.testing.assert_allclose(h, [2.0, 2.0], rtol=1e-4)


def test_control_settings_reach_the_optimiser():
    # a budget of 5 evaluations stops BOBYQA early: the fit reports it (lme4's maxfun)
    pulp = course_data("pulp")
    with pytest.warns(lmmlib.ConvergenceWarning, match="maximum evaluations"):
        m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp,
                        control=lmmlib.LmerControl(maxeval=5, restart=False))
    assert m.opt.feval <= 5 + 2 * m.theta.size + 1  # the budget plus the gradient check
    assert m.opt.settings["maxeval"] == 5
    tight = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp,
                        control=lmmlib.LmerControl(ftol_abs=1e-14, xtol_abs=1e-14))
    assert tight.opt.settings["ftol_abs"] == 1e-14


def test_boundary_tolerance_decides_singularity():
    # θ̂ of the pulp fit is 0.58 (lme4): above a tolerance of 1e-4, below one of 1
    pulp = course_data("pulp")
    assert not lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp).is_singular
    with pytest.warns(lmmlib.SingularFitWarning):
        m = lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp,
                        control=lmmlib.LmerControl(boundary_tol=1.0))
    assert m.is_singular
