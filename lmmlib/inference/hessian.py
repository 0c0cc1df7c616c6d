"""Hessian-based standard errors of the variance parameters.

The variance parameters are taken on lme4's profiling scale: for every
random-effects term the standard deviations and correlations of its effects
(in the order of θ, named ``.sig01``, ``.sig02``, ...), then the residual
standard deviation ``.sigma``.  :class:`VarPars` converts between that vector
and (θ, σ), so that the criterion (REML criterion or deviance, profiled over β
only) can be evaluated as a function of it.

The standard errors follow the recipe of the course notes (seed 003): the
observed information is the Hessian of −log L at the optimum, its inverse the
approximate covariance matrix of the estimates.  As the criterion is −2 log L,
the covariance matrix is ``2 H⁻¹``.  On the log scale the standard error of
log(SD) is SE(SD)/SD (the delta method, which at the optimum is the same as
differentiating in log SD directly since the gradient vanishes).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..engine.differences import hessian
from ..engine.varcomp import VarPars
from ..errors import LmmlibError, SingularFitWarning
from ..kinds import GeneralizedMixedFit

__all__ = ["hessian", "varpar_se"]


def _steps(v: np.ndarray, kinds: Sequence[str], rel: float) -> np.ndarray:
    """Finite-difference steps: relative for SDs and σ, absolute for correlations."""
    return np.array([rel if k == "cor" else rel * abs(x) for x, k in zip(v, kinds, strict=True)])


def varpar_se(model, scale: str = "sd", rel_step: float = 1e-3) -> pd.DataFrame:
    """Hessian-based standard errors of the variance parameters.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model; the Hessian is that of its own criterion (REML
        criterion for REML fits, deviance for ML fits) at its estimates.
    scale : {"sd", "logsd"}
        ``"sd"``: standard deviations, correlations and σ.  ``"logsd"``: the
        logarithm of the standard deviations and of σ (correlations stay as
        they are), with standard errors by the delta method.
    rel_step : float
        Relative finite-difference step (absolute for correlations).

    Returns
    -------
    DataFrame
        Columns ``par`` (``.sig01``, ..., ``.sigma``), ``kind`` (sd, cor,
        sigma), ``estimate``, ``se`` and ``scale``.  Parameters on the
        boundary (an SD of zero, a correlation of ±1) get a missing SE, as do
        the correlations of a term with a zero SD.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1 | id)", lmmlib.datasets.load("pig"))
    >>> varpar_se(m)[["par", "kind"]].to_numpy().tolist()
    [['.sig01', 'sd'], ['.sigma', 'sigma']]
    >>> varpar_se(m)["estimate"].round(3).tolist()  # √15.14 and √4.39 (lme4)
    [3.891, 2.096]
    """
    if scale not in ("sd", "logsd"):
        raise LmmlibError(f"scale must be 'sd' or 'logsd', got {scale!r}")
    if isinstance(model, GeneralizedMixedFit):  # the Hessian of the fit's own deviance
        return model.varpar_se(scale=scale)
    vp = VarPars.of(model.design.reterms)
    v = vp.from_theta(model.theta, model.sigma)
    free = _interior(v, vp)
    if not free.all():
        bad = ", ".join(n for n, ok in zip(vp.names, free, strict=True) if not ok)
        warnings.warn(f"{bad} on the boundary of the parameter space: no Hessian-based SE",
                      SingularFitWarning, stacklevel=2)
    crit = vp.criterion(model.pls, model.reml)
    idx = np.flatnonzero(free)

    def sub(x: np.ndarray) -> float:
        full = v.copy()
        full[idx] = x
        return crit(full)

    H = hessian(sub, v[idx], _steps(v[idx], [vp.kinds[i] for i in idx], rel_step))
    se = np.full(vp.size, np.nan)
    try:
        cov = 2.0 * np.linalg.inv(H)
        se[idx] = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        warnings.warn("singular Hessian of the criterion: no SEs", SingularFitWarning,
                      stacklevel=2)
    est = v.copy()
    if scale == "logsd":
        logged = np.array([k != "cor" for k in vp.kinds])
        se = np.where(logged, se / np.where(v > 0, v, np.nan), se)
        est = np.where(logged, np.log(np.where(v > 0, v, np.nan)), v)
    return pd.DataFrame({"par": list(vp.names), "kind": list(vp.kinds), "estimate": est,
                         "se": se, "scale": scale})


def _interior(v: np.ndarray, vp: VarPars, tol: float = 1e-4) -> np.ndarray:
    """Parameters away from their bounds (and correlations of terms with no zero SD).

    An SD counts as zero below ``tol`` σ (lme4's singularity tolerance on θ).
    """
    kinds = np.array(vp.kinds)
    scale = np.where(kinds == "cor", 1.0, v[-1])
    ok = (v - vp.lower > tol * scale) & (vp.upper - v > tol * scale)
    for t in vp.terms:
        pos = np.arange(t.theta.start, t.theta.stop)
        if not ok[pos][kinds[pos] == "sd"].all():
            ok[pos[kinds[pos] == "cor"]] = False
    return ok
