"""The profile walk shared by LMM and GLMM profiles (lme4's ``profile`` algorithm).

For one parameter at a time, values are chosen on both sides of its estimate
as lme4 chooses them: each step aims at a change of ``delta`` in the signed
root ζ, extrapolating from the last two points, and is at most ten times the
previous step; a direction ends when |ζ| passes the cut-off, at a bound or
where ζ stops growing.  At every value the other parameters are re-optimised
by bounded BOBYQA; the model kinds provide that re-optimisation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from ..checks import as_names
from ..engine.optimize import bobyqa
from ..errors import ArgumentError, ConvergenceWarning

__all__ = ["minimize_bounded", "next_value", "profile_points", "select", "signed_root", "walk"]

MAXMULT = 10.0  # lme4: a step is at most 10 times the previous one


def minimize_bounded(f: Callable[[np.ndarray], float], x0: np.ndarray, lower: np.ndarray,
            upper: np.ndarray, step: np.ndarray,
            ftol_abs: float = 1e-10) -> tuple[np.ndarray, float]:
    """Minimise ``f`` within bounds by BOBYQA; returns the best point seen and its value."""
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    if x0.size == 0:
        return x0, f(x0)
    best = [f(x0), x0.copy()]

    def wrapped(x: np.ndarray, grad: np.ndarray) -> float:
        val = f(x)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val if np.isfinite(val) else 1e300

    bobyqa(wrapped, x0.copy(), lower, upper=upper, ftol_abs=ftol_abs, xtol_rel=1e-9,
           maxeval=20_000, step=step)  # the best point seen is kept, however it stopped
    return best[1], float(best[0])


def signed_root(dx: float, ddev: float) -> float:
    """sign(p − p̂)·√(dev − dev_min), with tiny negative differences set to zero."""
    if not np.isfinite(ddev):
        return np.nan
    if ddev < -1e-6:
        warnings.warn(f"the profile found a deviance {-ddev:.3g} below the ML fit's; "
                      "the fit may not have converged", ConvergenceWarning, stacklevel=4)
    return float(np.sign(dx) * np.sqrt(max(ddev, 0.0)))


def next_value(rows: list[np.ndarray], col: int, delta: float, lowcut: float,
                upcut: float) -> float | None:
    """lme4's ``nextpar``: the value expected to move ζ by ``delta``; None if ζ stalls."""
    (z1, p1), (z2, p2) = ((r[0], r[col]) for r in rows[-2:])
    num, denom = p2 - p1, z2 - z1
    if not np.isfinite(denom) or denom == 0 or num / denom <= 0:
        return None
    step = min(delta * num / denom, MAXMULT * abs(num))
    return float(min(upcut, max(lowcut, p2 + np.sign(num) * step)))


def walk(zeta: Callable, first: list[np.ndarray], col: int, lowcut: float, upcut: float,
          cutoff: float, delta: float, maxpts: int) -> list[np.ndarray]:
    """Extend ``first`` (two rows) in its direction until |ζ| > cutoff or a bound."""
    rows = list(first)
    while len(rows) < maxpts:
        last = rows[-1]
        if not lowcut < last[col] < upcut or not abs(last[0]) <= cutoff:
            break
        x = next_value(rows, col, delta, lowcut, upcut)
        if x is None:
            break
        rows.append(zeta(x, last))
    return rows


def profile_points(prob, w: int, cutoff: float, delta: float, maxpts: int) -> np.ndarray:
    """All points of the profile of parameter ``w`` (rows ζ, then every parameter).

    ``prob`` provides ``estimates``, ``nvp`` (the variance parameters come
    first), ``lower``/``upper`` (their bounds), ``se_beta`` and ``zeta(w)``, a
    function (value, start row) ↦ row, the others re-optimised.
    """
    col = w + 1
    opt_row = np.concatenate([[0.0], prob.estimates])
    est = prob.estimates[w]
    zeta = prob.zeta(w)
    if w < prob.nvp:
        lowcut, upcut = prob.lower[w], prob.upper[w]
        shift = 1e-3 if est == 0 else est * 1.01
        if not lowcut <= shift <= upcut:
            shift = est - (shift - est)
    else:
        lowcut, upcut = -np.inf, np.inf
        shift = est + delta * prob.se_beta[w - prob.nvp]
    second = zeta(shift, opt_row)
    rows = walk(zeta, [opt_row, second], col, lowcut, upcut, cutoff, delta, maxpts)
    if lowcut < est < upcut:
        rows += walk(zeta, [second, opt_row], col, lowcut, upcut, cutoff, delta, maxpts)[2:]
    out = np.unique(np.array(rows), axis=0)
    return out[np.argsort(out[:, col], kind="stable")]


def select(which: str | Sequence[str] | None, names: Sequence[str], nvp: int,
            arg: str = "which") -> list[int]:
    """Indices of the parameters to profile (lme4's ``which``, incl. "theta_"/"beta_")."""
    wanted = as_names(which, arg)
    if wanted is None:
        return list(range(len(names)))
    out: set[int] = set()
    for name in wanted:
        if name == "theta_":
            out.update(range(nvp))
        elif name == "beta_":
            out.update(range(nvp, len(names)))
        elif name in names:
            out.add(list(names).index(name))
        else:
            raise ArgumentError(f"{arg}: unknown parameter {name!r}; the model's parameters "
                                f"are {', '.join(names)}")
    return sorted(out)
