"""Finite differences on functions whose derivatives are known in closed form."""

from __future__ import annotations

import numpy as np

from lmmlib.engine.differences import central_gradient, curvature_steps, hessian

A = np.array([[3.0, 1.0], [1.0, 2.0]])


def quadratic(x: np.ndarray) -> float:
    return float(0.5 * x @ A @ x + x[0])


def test_central_differences_of_a_quadratic_are_exact():
    # central differences are exact for a quadratic up to rounding: gradient A x + e1,
    # Hessian A; 1e-8 absolute allows for the cancellation in f(x+h) − f(x−h) at h = 1e-3
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(central_gradient(quadratic, x, np.full(2, 1e-3)),
                               A @ x + [1.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(hessian(quadratic, x, 1e-3), A, atol=1e-6)


def test_curvature_steps_are_a_fraction_of_the_curvature_scale():
    # f'' = A_ii, so the scale √(2/f'') is √(2/3) and 1: steps 1e-2 of those (closed form)
    steps = curvature_steps(quadratic, np.zeros(2), np.full(2, 1e-3), fraction=1e-2)
    np.testing.assert_allclose(steps, 1e-2 * np.sqrt(2.0 / np.diag(A)), rtol=1e-6)
