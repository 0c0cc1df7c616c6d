"""Confidence intervals for all parameters of a linear mixed model (lme4's ``confint``).

Three methods, with lme4's rows (``.sig01``, ..., ``.sigma``, then the fixed
effects) and R's column names (``"2.5 %"``, ``"97.5 %"``):

``"profile"``
    Inverts the profile ζ (see :func:`lmmlib.inference.profile.profile`) at
    ±qnorm((1 + level)/2).  As lme4, ζ(value) is interpolated by a natural
    cubic spline and inverted by splines' ``backSpline`` construction (a
    monotone piecewise cubic in ζ); where the profile stops at a bound before
    reaching the cut-off (an SD of 0, a correlation of ±1) the limit is that
    bound.  Like lme4 the profile is that of the ML deviance, also for REML fits.
``"wald"``
    β̂ ± z·SE for the fixed effects; missing for the variance parameters, as
    lme4's ``method = "Wald"``.
``"boot"``
    Parametric bootstrap percentile intervals: ``nsim`` responses simulated
    from the fit, each refitted (by the fit's own criterion, as lme4's
    ``bootMer``); the percentiles are numpy's default (linear) quantiles, where
    R's ``boot.ci`` interpolates on the normal scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.stats import norm
from tqdm import tqdm

from ..checks import (
    as_choice,
    as_count,
    as_instance,
    as_level,
    as_names,
    as_optional_bool,
    describe,
)
from ..engine.simulate import as_generator
from ..engine.varcomp import VarPars
from ..errors import ArgumentError, LmmlibError, LmmlibWarning
from ..kinds import LinearMixedFit

__all__ = ["confint", "percent_labels"]

METHODS = ("profile", "wald", "boot")
_KIND = "a mixed model fitted by lmmlib.lmer"


def percent_labels(level: float) -> list[str]:
    """R's ``format.perc`` column names, e.g. ``["2.5 %", "97.5 %"]`` for 0.95.

    Both numbers get the decimals the one needing most takes at 3 significant
    digits, as R's ``format`` does for a vector.
    """
    level = as_level(level)
    a = np.array([(1 - level) / 2, (1 + level) / 2]) * 100
    decimals = 0
    for x in a:
        rounded = float(f"{x:.3g}")
        for d in range(15):
            if abs(round(rounded, d) - rounded) < 1e-12 * max(1.0, abs(rounded)):
                decimals = max(decimals, d)
                break
    return [f"{x:.{decimals}f} %" for x in a]


def _back_spline(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Coefficients of splines' ``backSpline`` of the natural spline through (x, z).

    Returns the knots (in ζ) and an (nk, 4) array of polynomial coefficients
    in powers of (ζ − knot), or ``None`` when ζ is not strictly increasing in
    x (the spline has no monotone inverse).
    """
    fwd = CubicSpline(x, z, bc_type="natural")
    slope = fwd(x, 1)
    adiff, kdiff = np.diff(z), np.diff(x)
    if not np.all(adiff > 0) or np.any(slope == 0):
        return None
    nk = x.size
    b = np.zeros((nk, 4))
    b[:, 0], b[:, 1] = x, 1.0 / slope
    for i in range(nk - 1):  # cubic Hermite pieces: values and slopes at both ends
        h = adiff[i]
        A = np.array([[h * h, h**3], [2 * h, 3 * h * h]])
        rhs = np.array([kdiff[i] - h * b[i, 1], b[i + 1, 1] - b[i, 1]])
        b[i, 2:] = np.linalg.solve(A, rhs)
    if nk > 2:  # first and last pieces are quadratic (natural ends)
        h0, hl = adiff[0], adiff[-1]
        b[0, 3] = b[nk - 2, 3] = 0.0
        b[0, 1:3] = np.linalg.solve(np.array([[h0, h0 * h0], [1.0, 2 * h0]]),
                                    np.array([kdiff[0], b[1, 1]]))
        b[nk - 2, 2] = (kdiff[-1] - hl * b[nk - 2, 1]) / hl**2
    if b[0, 2] > 0:
        b[0, 2], b[0, 1] = 0.0, kdiff[0] / adiff[0]
    if b[nk - 2, 2] < 0:
        b[nk - 2, 2], b[nk - 2, 1] = 0.0, kdiff[-1] / adiff[-1]
    return z, b


def _predict_back(knots: np.ndarray, coef: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """Evaluate a back-spline; NaN outside the range of its knots (as R's predict)."""
    out = np.full(zeta.shape, np.nan)
    inside = (zeta >= knots[0]) & (zeta <= knots[-1])
    i = np.clip(np.searchsorted(knots, zeta[inside], side="left") - 1, 0, knots.size - 2)
    d = zeta[inside] - knots[i]
    c = coef[i]
    out[inside] = c[:, 0] + d * (c[:, 1] + d * (c[:, 2] + d * c[:, 3]))
    return out


def _invert_profile(x: np.ndarray, z: np.ndarray, zq: np.ndarray, name: str) -> np.ndarray:
    """Values at which the profile of one parameter has ζ = ``zq``."""
    ok = np.isfinite(z) & np.isfinite(x)
    x, z = x[ok], z[ok]
    x, idx = np.unique(x, return_index=True)
    z = z[idx]
    if x.size < 2:
        return np.full(zq.shape, np.nan)
    back = _back_spline(x, z)
    if back is not None:
        return _predict_back(*back, zq)
    if np.any(np.diff(z) < -1e-2):
        warnings.warn(f"non-monotonic profile for {name}", LmmlibWarning, stacklevel=4)
        return np.full(zq.shape, np.nan)
    warnings.warn(f"bad spline fit for {name}: falling back to linear interpolation",
                  LmmlibWarning, stacklevel=4)
    zu, first = np.unique(z, return_index=True)
    return np.interp(zq, zu, x[first], left=np.nan, right=np.nan)


def profile_intervals(prof: pd.DataFrame, level: float = 0.95,
                      parm: Sequence[str] | None = None) -> pd.DataFrame:
    """Profile confidence intervals from a profile (lme4's ``confint(profile(m))``).

    Parameters
    ----------
    prof : DataFrame
        Output of :func:`lmmlib.inference.profile.profile`.
    level : float
        Confidence level.
    parm : sequence of str, optional
        Parameters (default: all that were profiled).

    Returns
    -------
    DataFrame

    Raises
    ------
    ArgumentError
        If ``prof`` is not a profile, ``level`` is not in (0, 1) or the
        profile does not reach that level (it was computed with a smaller
        ``level_max``).
    """
    _check_profile(prof, level)
    zq = norm.ppf([(1 - level) / 2, (1 + level) / 2])
    parm = as_names(parm, "parm")
    names = list(dict.fromkeys(prof["par"])) if parm is None else parm
    lower, upper = prof.attrs.get("lower", {}), prof.attrs.get("upper", {})
    rows = []
    for name in names:
        pts = prof[prof["par"] == name]
        if pts.empty:
            raise LmmlibError(f"parameter {name!r} was not profiled")
        lim = _invert_profile(pts["value"].to_numpy(float), pts["zeta"].to_numpy(float), zq,
                              name)
        if np.isnan(lim[0]):
            lim[0] = lower.get(name, np.nan)
        if np.isnan(lim[1]):
            lim[1] = upper.get(name, np.nan)
        rows.append(lim)
    return pd.DataFrame(rows, index=names, columns=percent_labels(level))


def _check_profile(prof: object, level: float) -> None:
    """``prof`` is a profile reaching far enough for intervals at ``level``."""
    level = as_level(level)
    if not isinstance(prof, pd.DataFrame) or not {"par", "value", "zeta"} <= set(prof.columns):
        raise ArgumentError("prof must be a profile computed by lmmlib.inference.profile.profile "
                            f"(columns par, value, zeta), got {describe(prof)}")
    cutoff = prof.attrs.get("cutoff")
    needed = float(norm.ppf((1 + level) / 2))
    if cutoff is not None and cutoff < needed - 1e-12:
        reach = 2 * norm.cdf(cutoff) - 1
        raise ArgumentError(
            f"prof reaches |zeta| = {cutoff:.4g} (level_max = {reach:.4g}), not the "
            f"{needed:.4g} of level = {level:g}: profile again with level_max >= {level:g}")


def _param_names(model) -> list[str]:
    return list(VarPars.of(model.design.reterms).names) + list(model.design.xnames)


def _wald(model, level: float) -> pd.DataFrame:
    z = norm.ppf((1 + level) / 2)
    nvp = len(_param_names(model)) - len(model.design.xnames)
    beta, se = model.fixef.to_numpy(), model.se.to_numpy()
    lo = np.concatenate([np.full(nvp, np.nan), beta - z * se])
    hi = np.concatenate([np.full(nvp, np.nan), beta + z * se])
    return pd.DataFrame({"lo": lo, "hi": hi}, index=_param_names(model))


def boot_estimates(model, nsim: int = 500, rng: np.random.Generator | int | None = None,
                   progress: bool | None = None) -> pd.DataFrame:
    """Parameter estimates of ``nsim`` parametric-bootstrap refits (one row each).

    Columns are lme4's parameter names; refits that fail give a row of NaN.
    ``progress=None`` shows a tqdm bar only when writing to a terminal (so not in
    logs, CI or executed notebooks); pass ``progress=True`` to force it.
    """
    as_instance(model, "model", LinearMixedFit, _KIND)
    nsim = as_count(nsim, "nsim")
    progress = as_optional_bool(progress, "progress")
    vp = VarPars.of(model.design.reterms)
    ys = model.simulate(nsim, as_generator(rng))
    out = np.full((nsim, len(_param_names(model))), np.nan)
    disable = None if progress is None else not progress
    for i in tqdm(range(nsim), desc="bootstrap", disable=disable, leave=False):
        try:
            fit = model.refit(ys[i])
        except (LmmlibError, np.linalg.LinAlgError, ValueError):
            continue
        out[i] = np.concatenate([vp.from_theta(fit.theta, fit.sigma), fit.fixef.to_numpy()])
    return pd.DataFrame(out, columns=_param_names(model))


def _boot(model, level: float, nsim: int, rng, progress) -> pd.DataFrame:
    est = boot_estimates(model, nsim, rng, progress)
    failed = int(est.isna().all(axis=1).sum())
    if failed == len(est):
        raise LmmlibError("all bootstrap refits failed")
    if failed:
        warnings.warn(f"{failed} of {len(est)} bootstrap refits failed and were dropped",
                      LmmlibWarning, stacklevel=3)
    q = [(1 - level) / 2, (1 + level) / 2]
    lim = est.quantile(q).T
    return pd.DataFrame({"lo": lim[q[0]].to_numpy(), "hi": lim[q[1]].to_numpy()},
                        index=est.columns)


def confint(model, method: str = "profile", level: float = 0.95,
            parm: str | Sequence[str] | None = None, *, nsim: int = 500,
            rng: np.random.Generator | int | None = None, progress: bool | None = None,
            prof: pd.DataFrame | None = None) -> pd.DataFrame:
    """Confidence intervals for the variance parameters and fixed effects.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model.
    method : {"profile", "wald", "boot"}
        Profile likelihood (lme4's default), Wald, or parametric bootstrap
        percentile intervals.
    level : float
        Confidence level.
    parm : str or sequence of str, optional
        Parameter names (``".sig01"``, ``".sigma"``, ``"(Intercept)"``...), or
        ``"theta_"`` / ``"beta_"``; default all, in lme4's order.
    nsim : int
        Bootstrap replicates (``method="boot"``).
    rng : Generator or int
        Random generator or seed for the bootstrap (explicit, for reproducibility).
    progress : bool, optional
        Bootstrap progress bar; by default shown only on a terminal.
    prof : DataFrame, optional
        A profile already computed by :func:`lmmlib.inference.profile.profile`, reused
        instead of profiling again (``method="profile"``).

    Returns
    -------
    DataFrame
        One row per parameter; columns named from ``level`` as R names them.

    Raises
    ------
    ArgumentError
        If ``model`` is not an ``lmer`` fit, ``method`` is unknown, ``level``
        is not a number in (0, 1), ``parm`` is not a name or list of names,
        ``nsim``, ``rng`` or ``progress`` are invalid, or ``prof`` is not a
        profile of this model reaching ``level``.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))
    >>> m.confint().loc[[".sig01", ".sigma"]].round(2)  # lme4's confint(m): profile intervals
            2.5 %  97.5 %
    .sig01   3.17    4.80
    .sigma   1.95    2.25
    """
    as_instance(model, "model", LinearMixedFit, _KIND)
    method = as_choice(method, "method", METHODS)
    level = as_level(level)
    nsim = as_count(nsim, "nsim")
    progress = as_optional_bool(progress, "progress")
    rng = as_generator(rng)
    names = _param_names(model)
    chosen = _chosen(parm, names, len(names) - len(model.design.xnames))
    if prof is not None:
        _check_profile(prof, level)
        if set(prof.attrs.get("estimates", names)) != set(names):
            raise ArgumentError("prof is the profile of another model: its parameters are "
                                f"{', '.join(prof.attrs['estimates'])}, the model's "
                                f"{', '.join(names)}")
    if method == "profile":
        if prof is None:
            from .profile import profile

            level_max = max(0.99, (1 + level) / 2)
            prof = profile(model, which=chosen, level_max=level_max)
        return profile_intervals(prof, level, chosen)
    table = _wald(model, level) if method == "wald" else _boot(model, level, nsim, rng, progress)
    table.columns = percent_labels(level)
    return table.loc[chosen]


def _chosen(parm: str | Sequence[str] | None, names: list[str], nvp: int) -> list[str]:
    """Parameter names selected by ``parm``, in lme4's order."""
    wanted = as_names(parm, "parm")
    if wanted is None:
        return names
    picked = set()
    for p in wanted:
        if p == "theta_":
            picked.update(names[:nvp])
        elif p == "beta_":
            picked.update(names[nvp:])
        elif p in names:
            picked.add(p)
        else:
            raise ArgumentError(f"parm: unknown parameter {p!r}; the model's parameters are "
                                f"{', '.join(names)}")
    return [n for n in names if n in picked]
