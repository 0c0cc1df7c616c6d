"""The GLM without random effects by IRLS: the starting values of a GLMM fit."""

from __future__ import annotations

import numpy as np

from .family import MAX_DETA, MAX_HALVINGS, Family

__all__ = ["glm_irls"]


def glm_irls(X: np.ndarray, y: np.ndarray, wt: np.ndarray, family: Family,
             maxit: int = 50, offset: np.ndarray | float = 0.0) -> np.ndarray | None:
    """β of the GLM without random effects, by IRLS from the family's starting means.

    As R's glm.fit, with its safeguards: μ clamped by the family, no weighted
    least-squares problem that is not finite reaches LAPACK, and a step that
    makes the deviance non-finite or larger is halved (after being shortened
    to a change of at most ``MAX_DETA`` in any η).  Under separation the
    estimates grow until the deviance stops changing.

    Returns
    -------
    ndarray or None
        None if not even the first weighted least-squares fit is finite.
    """
    def devsum(beta: np.ndarray) -> float:
        return float(family.dev_resid(y, offset + X @ beta, wt).sum())

    mu = family.mustart(y, wt)
    eta = family.linkfun(mu)
    beta, dev = None, np.inf
    for _ in range(maxit):
        _, w, score = family.irls(y, eta, wt)
        sw = np.sqrt(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            A, b = sw[:, None] * X, sw * (eta - offset) + score / sw
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            break
        new = np.linalg.lstsq(A, b, rcond=None)[0]
        if beta is None:
            dev_new = devsum(new)
        else:  # shorten, then halve while the deviance is not finite or grows
            step = new - beta
            deta = float(np.abs(X @ step).max())
            t, new = (MAX_DETA / deta if deta > MAX_DETA else 1.0), None
            for _ in range(MAX_HALVINGS):
                dev_new = devsum(beta + t * step)
                if np.isfinite(dev_new) and dev_new <= dev * (1.0 + 1e-12):
                    new = beta + t * step
                    break
                t *= 0.5
        if new is None or not np.isfinite(dev_new):
            break
        done = abs(dev - dev_new) < 1e-10 * (abs(dev_new) + 0.1)
        beta, dev = new, dev_new
        eta = offset + X @ beta
        mu = family.linkinv(eta)
        if done:
            break
    return beta
