"""Finite differences: the one place where lmmlib differentiates a criterion numerically.

* :func:`finite_gradient` — gradient and Hessian diagonal near lower bounds (the
  optimiser's convergence check, as lme4's);
* :func:`central_gradient`, :func:`hessian`, :func:`curvature_steps` — central
  differences at chosen steps (glmer's Newton polish and Hessian standard errors);
* :func:`richardson_hessian`, :func:`richardson_jacobian` — numDeriv's Richardson
  extrapolation, which lmerTest uses for Satterthwaite's degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..checks import as_count, as_float

__all__ = ["central_gradient", "curvature_steps", "finite_gradient", "hessian",
           "richardson_hessian", "richardson_jacobian"]

#: numDeriv's defaults: absolute step near zero, "zero" threshold, halvings.
_EPS = 1e-4
_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
_R = 4
#: Relative steps lmerTest ends up with: numDeriv::hessian uses d = 0.1 and
#: numDeriv::jacobian d = 1e-4.
_D_HESSIAN = 0.1
_D_JACOBIAN = 1e-4

def finite_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray,
                    h: float = 1e-4, f0: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference gradient and diagonal of the Hessian of ``f`` at ``x``.

    Central differences, forward ones where a lower bound is within reach;
    ``f0`` is ``f(x)`` when the caller already has it.
    """
    g, hd = np.zeros_like(x), np.full_like(x, np.nan)
    f0 = f(x) if f0 is None else f0
    for i in range(x.size):
        e = np.zeros_like(x)
        step = h * max(1.0, abs(x[i]))
        e[i] = step
        fp = f(x + e)
        if x[i] - step < lower[i]:
            g[i] = (fp - f0) / step
        else:
            fm = f(x - e)
            g[i] = (fp - fm) / (2 * step)
            hd[i] = (fp - 2 * f0 + fm) / step**2
    return g, hd


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
            step: float | np.ndarray = 1e-3) -> np.ndarray:
    """Central-difference Hessian of a scalar function.

    Parameters
    ----------
    f : callable
        Function of a 1-d array.
    x : ndarray
        Point at which to differentiate.
    step : float or ndarray
        Step in each coordinate (a scalar is used for all of them).

    Returns
    -------
    ndarray of shape (n, n)
        Second derivatives: ``(f(x+h_i) − 2f(x) + f(x−h_i))/h_i²`` on the
        diagonal; off it the symmetric formula
        ``(f(x+h_i+h_j) − f(x+h_i) − f(x+h_j) + 2f(x) − f(x−h_i) − f(x−h_j)
        + f(x−h_i−h_j)) / (2 h_i h_j)``, which reuses the diagonal's
        evaluations: 1 + 2n + n(n−1) evaluations in all, second-order
        accurate as the four-point formula (which needs 2n(n−1)).

    Examples
    --------
    >>> H = hessian(lambda v: v[0] ** 2 * v[1] + 3 * v[1] ** 2, np.array([1.0, 2.0]))
    >>> np.round(H, 6).tolist()
    [[4.0, 2.0], [2.0, 6.0]]
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    h = np.broadcast_to(np.asarray(step, dtype=float), (n,))
    E = np.diag(h)
    f0 = f(x)
    plus = np.array([f(x + E[i]) for i in range(n)])
    minus = np.array([f(x - E[i]) for i in range(n)])
    H = np.empty((n, n))
    for i in range(n):
        H[i, i] = (plus[i] - 2.0 * f0 + minus[i]) / h[i] ** 2
        for j in range(i):
            d = (f(x + E[i] + E[j]) - plus[i] - plus[j] + 2.0 * f0 - minus[i] - minus[j]
                 + f(x - E[i] - E[j]))
            H[i, j] = H[j, i] = d / (2.0 * h[i] * h[j])
    return H


def curvature_steps(f: Callable[[np.ndarray], float], x: np.ndarray, pilot: np.ndarray,
                    fraction: float = 1e-2) -> np.ndarray:
    """Steps of ``fraction`` of each coordinate's curvature scale √(2/f″), from pilot differences.

    A fixed step is too coarse for a θ whose SE is small (a slope SD of 0.02)
    and needlessly fine for one with a large SE.
    """
    f0 = f(x)
    steps = np.empty_like(x)
    for i, h in enumerate(pilot):
        e = np.zeros_like(x)
        e[i] = h
        curv = (f(x + e) - 2.0 * f0 + f(x - e)) / h**2
        steps[i] = fraction * np.sqrt(2.0 / curv) if curv > 0 else h
    return np.clip(steps, 1e-6, 0.1)


def central_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                     h: np.ndarray) -> np.ndarray:
    """Central-difference gradient with step ``h[i]`` in coordinate i."""
    E = np.diag(h)
    return np.array([(f(x + E[i]) - f(x - E[i])) / (2.0 * h[i]) for i in range(x.size)])


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    """Initial steps: relative ``d·|x|``, plus an absolute 1e-4 where x is ~0."""
    return np.abs(d * x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation along axis 0 of estimates at steps h, h/2, h/4, ..."""
    for m in range(1, a.shape[0]):
        a = (a[1:] * 4.0**m - a[:-1]) / (4.0**m - 1.0)
    return a[0]


def richardson_hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
                       d: float = _D_HESSIAN, r: int = _R) -> np.ndarray:
    """Hessian of a scalar function as ``numDeriv::hessian`` (method "Richardson").

    Parameters
    ----------
    f : callable
        Scalar function of a 1-D array.
    x : ndarray
        Point of evaluation.
    d : float
        Relative initial step (numDeriv's ``d``; 0.1 in ``numDeriv::hessian``).
    r : int
        Number of step halvings that are extrapolated.

    Returns
    -------
    ndarray of shape (n, n)
        Central second differences, extrapolated; the cross terms use the
        diagonal ones as numDeriv's ``genD``.
    """
    x = np.asarray(x, dtype=float)
    d, r = as_float(d, "d", positive=True), as_count(r, "r")
    n = x.size
    h0, f0 = _steps(x, d), f(x)
    scales = 0.5 ** np.arange(r)
    H = np.empty((n, n))

    def second(i: int, j: int) -> float:
        out = np.empty(r)
        for k, s in enumerate(scales):
            h = h0 * s
            step = np.zeros(n)
            step[i], step[j] = h[i], h[j]
            f1, f2 = f(x + step), f(x - step)
            if i == j:
                out[k] = (f1 - 2.0 * f0 + f2) / h[i] ** 2
            else:
                out[k] = ((f1 - 2.0 * f0 + f2 - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2)
                          / (2.0 * h[i] * h[j]))
        return float(_extrapolate(out))

    for i in range(n):
        H[i, i] = second(i, i)
    for i in range(n):
        for j in range(i):
            H[i, j] = H[j, i] = second(i, j)
    return H


def richardson_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                        d: float = _D_JACOBIAN, r: int = _R) -> np.ndarray:
    """Jacobian of an array-valued function as ``numDeriv::jacobian`` ("Richardson").

    Parameters
    ----------
    f : callable
        Function of a 1-D array returning an array of any shape S.
    x : ndarray
        Point of evaluation.
    d : float
        Relative initial step (numDeriv's default 1e-4).
    r : int
        Number of step halvings that are extrapolated.

    Returns
    -------
    ndarray of shape (n, *S)
        Derivative of f with respect to each element of x.
    """
    x = np.asarray(x, dtype=float)
    d, r = as_float(d, "d", positive=True), as_count(r, "r")
    h0 = _steps(x, d)
    cols = []
    for i in range(x.size):
        est = []
        for s in 0.5 ** np.arange(r):
            step = np.zeros(x.size)
            step[i] = h0[i] * s
            est.append((np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2.0 * step[i]))
        cols.append(_extrapolate(np.array(est)))
    return np.array(cols)
