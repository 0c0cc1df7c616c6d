"""Response distributions of generalised linear mixed models (canonical links only).

A family supplies what the penalised IRLS and the Laplace approximation need,
written in terms of the linear predictor η so that log(0) never appears:

- the inverse link μ(η) and the variance function V(μ) (for a canonical link
  the IRLS working weights are ``wt · V(μ)``, and Newton's method on u equals
  Fisher scoring);
- the deviance residuals, whose sum is −2 × (log-likelihood − saturated
  log-likelihood);
- the saturated log-likelihood Σ wt log p(y | μ = y), the constant that turns
  the deviance into the full −2 log-likelihood that lme4 reports (with the
  log y! and log C(n, k) terms, as R's ``family()$aic``).

For the binomial family the response is the proportion of successes and the
prior weights the numbers of trials, as in R's ``glm(y/n ~ ..., weights = n)``.

Numerical safeguards, as R's ``binomial()`` and ``poisson()`` families: the
inverse link keeps μ within ``MU_EPS`` (DBL_EPSILON) of 0 and 1, so that the
IRLS weights wt·V(μ) never underflow to 0 and η(μ) stays finite; for the log
link η is capped at ``ETA_MAX`` before exponentiating, so that the weights
never overflow.  Both clamps act only where |η| > 36, far from any fitted
value of a model whose estimates are finite.  The deviance residuals use η
itself (``logaddexp`` for the binomial) and may be ``inf`` for an absurd η
(an overflowing exp(η)), which the callers treat as a failed step.

:func:`find_separation` solves the linear programme that says whether the
fixed effects separate the response (R's glm.fit warns "fitted probabilities
numerically 0 or 1 occurred" when they do) and which coefficients diverge.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.special import expit, gammaln, logit, xlogy

from ..errors import ConvergenceWarning, DataError, DataWarning, LmmlibError

__all__ = ["Binomial", "Family", "FamilyError", "Poisson", "Separation", "SeparationWarning",
           "find_separation", "get_family", "glm_irls"]

MU_EPS = np.finfo(float).eps  # R's clamp of binomial()$linkinv and poisson()$linkinv
ETA_MAX = 300.0  # log link: exp(η) beyond this would make wt·μ·z² overflow in the factor
SEPARATED_ETA = float(-np.log(10.0 * MU_EPS))  # 33.7: μ = 10·eps, glm.fit's "numerically 0"
LP_TOL = 1e-7  # margins of the separation LP (columns scaled to max |x| = 1)
MAX_DETA = 10.0  # largest change of any η in one (P)IRLS step (longer steps are shortened)
MAX_HALVINGS = 30


class FamilyError(LmmlibError, ValueError):
    """An unknown or unsupported response family."""


class SeparationWarning(ConvergenceWarning):
    """The fixed effects separate the response: some estimates are infinite.

    Issued by :func:`lmmlib.glmer` when a linear combination of the fixed
    effects is ≥ 0 wherever the response is 1 (all successes), ≤ 0 wherever it
    is 0, and 0 elsewhere (complete or quasi-complete separation): the
    likelihood then keeps increasing as the coefficients of the columns the
    warning names go to ±∞.  Also issued, as R's glm.fit does, when fitted
    probabilities (or Poisson means) are numerically 0 or 1 at the optimum
    without such a combination.
    """


class Family(ABC):
    """A response distribution with its canonical link."""

    name: str = ""
    link: str = ""

    @abstractmethod
    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """Linear predictor η(μ)."""

    @abstractmethod
    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """Mean μ(η)."""

    @abstractmethod
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function V(μ) (= dμ/dη for the canonical link)."""

    @abstractmethod
    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Squared deviance residuals, wt × 2 (log p(y|y) − log p(y|μ(η)))."""

    @abstractmethod
    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ log p(y | μ = y), weighted as the log-likelihood."""

    @abstractmethod
    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Starting means, as R's ``family()$initialize``."""

    @abstractmethod
    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Raise :class:`DataError` if the response is impossible for the family."""

    @abstractmethod
    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw responses with means ``mu`` (proportions for the binomial)."""

    @abstractmethod
    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """+1 / −1 where η → +∞ / −∞ fits y exactly (y at the top / bottom of its range), else 0."""

    def numerically_boundary(self, mu: np.ndarray) -> np.ndarray:
        """Fitted means within 10·eps of a boundary of their range (glm.fit's test)."""
        return mu < 10.0 * MU_EPS

    def deviance_function(self, y: np.ndarray, wt: np.ndarray):
        """η ↦ Σ deviance residuals for fixed data (what penalised IRLS evaluates most)."""
        return lambda eta: float(self.dev_resid(y, eta, wt).sum())

    def loglik(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> float:
        """Full conditional log-likelihood Σ log p(y | μ(η))."""
        return self.saturated_loglik(y, wt) - 0.5 * float(self.dev_resid(y, eta, wt).sum())

    def __repr__(self) -> str:
        return f"{self.name}({self.link})"


class Poisson(Family):
    """Poisson counts with the log link."""

    name, link = "poisson", "log"

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η = log μ (μ floored at ``MU_EPS``)."""
        return np.log(np.maximum(mu, MU_EPS))

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = exp(η), η capped at ``ETA_MAX`` and μ floored at ``MU_EPS`` (as R's pmax)."""
        return np.maximum(np.exp(np.minimum(eta, ETA_MAX)), MU_EPS)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ."""
        return mu

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """2 wt (y log(y/μ) − (y − μ)); ``inf`` where exp(η) overflows."""
        with np.errstate(over="ignore", invalid="ignore"):
            return 2.0 * wt * (xlogy(y, y) - y * eta - y + np.exp(eta))

    def deviance_function(self, y: np.ndarray, wt: np.ndarray):
        """η ↦ Σ 2 wt (y log y − y η − y + e^η), y log y computed once.

        The same operations in the same order as :meth:`dev_resid` (the same
        rounding), so that the small changes the penalised IRLS compares are
        not lost to cancellation.
        """
        ylogy = xlogy(y, y)

        def devsum(eta: np.ndarray) -> float:
            with np.errstate(over="ignore", invalid="ignore"):
                return float((2.0 * wt * (ylogy - y * eta - y + np.exp(eta))).sum())

        return devsum

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ wt (y log y − y − log y!)."""
        return float(np.sum(wt * (xlogy(y, y) - y - gammaln(y + 1.0))))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """y + 0.1."""
        return y + 0.1

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Counts must be non-negative; non-integers only warn (as R)."""
        if np.any(y < 0):
            raise DataError(f"response {response!r} has negative values: "
                            "not possible for the poisson family")
        if np.any(np.abs(y - np.round(y)) > 1e-8):
            warnings.warn(f"response {response!r} has non-integer values for the poisson "
                          "family", DataWarning, stacklevel=4)

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Poisson draws."""
        return rng.poisson(mu).astype(float)

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """−1 for zero counts (μ → 0 fits them), 0 for the others."""
        return np.where(y == 0, -1.0, 0.0)


class Binomial(Family):
    """Proportions of successes out of ``wt`` trials, logit link."""

    name, link = "binomial", "logit"

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η = log(μ / (1 − μ)), μ kept within ``MU_EPS`` of 0 and 1."""
        return logit(np.clip(mu, MU_EPS, 1.0 - MU_EPS))

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = 1 / (1 + exp(−η)), kept within ``MU_EPS`` of 0 and 1 (R's binomial clamp)."""
        return np.clip(expit(eta), MU_EPS, 1.0 - MU_EPS)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(μ) = μ(1 − μ): at least about ``MU_EPS`` for the μ of :meth:`linkinv`."""
        return mu * (1.0 - mu)

    def dev_resid(self, y: np.ndarray, eta: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """2 wt (y log(y/μ) + (1 − y) log((1 − y)/(1 − μ)))."""
        ent = xlogy(y, y) + xlogy(1.0 - y, 1.0 - y)
        return 2.0 * wt * (ent - y * eta + np.logaddexp(0.0, eta))

    def saturated_loglik(self, y: np.ndarray, wt: np.ndarray) -> float:
        """Σ log C(n, k) + Σ wt (y log y + (1 − y) log(1 − y)), k = round(n y)."""
        n = np.round(wt)
        k = np.round(wt * y)
        choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        ent = xlogy(y, y) + xlogy(1.0 - y, 1.0 - y)
        return float(np.sum(choose + wt * ent))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """(wt y + 0.5) / (wt + 1)."""
        return (wt * y + 0.5) / (wt + 1.0)

    def check(self, y: np.ndarray, wt: np.ndarray, response: str) -> None:
        """Proportions in [0, 1]; warn when wt·y is not a whole number of successes."""
        if np.any((y < 0) | (y > 1)):
            raise DataError(
                f"response {response!r} must be 0/1 or a proportion in [0, 1] for the "
                "binomial family (give the numbers of trials as weights=)")
        if np.any(np.abs(wt * y - np.round(wt * y)) > 1e-6):
            warnings.warn(f"non-integer numbers of successes: {response!r} x weights is not "
                          "a whole number", DataWarning, stacklevel=4)

    def sample(self, mu: np.ndarray, wt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Binomial draws out of ``wt`` trials, returned as proportions."""
        n = np.round(wt).astype(np.int64)
        return rng.binomial(n, mu) / np.maximum(n, 1)

    def boundary_signs(self, y: np.ndarray) -> np.ndarray:
        """+1 where all trials succeed, −1 where none does, 0 for proportions in (0, 1)."""
        return np.where(y == 1, 1.0, np.where(y == 0, -1.0, 0.0))

    def numerically_boundary(self, mu: np.ndarray) -> np.ndarray:
        """Fitted probabilities within 10·eps of 0 or 1 (glm.fit's test)."""
        return (mu < 10.0 * MU_EPS) | (mu > 1.0 - 10.0 * MU_EPS)


@dataclass(frozen=True)
class Separation:
    """A direction of the fixed effects along which the likelihood increases forever.

    Attributes
    ----------
    direction : ndarray
        d (in the units of β) with s_i·x_iᵀd ≥ 0 for every observation, > 0 for
        the separated ones and = 0 for those whose response is not at a
        boundary (s_i from :meth:`Family.boundary_signs`).
    rows : ndarray of bool
        The separated observations: fitted exactly (μ → 0 or 1) as β → β + t·d, t → ∞.
    signs : ndarray
        s_i of every observation.
    columns : tuple of str
        The fixed effects whose coefficient moves along some separating direction.
    complete : bool
        Every observation with a positive weight is separated.
    """

    direction: np.ndarray
    rows: np.ndarray
    signs: np.ndarray
    columns: tuple[str, ...]
    complete: bool

    def margins(self, X: np.ndarray) -> np.ndarray:
        """s_i·x_iᵀd of the separated rows (all > 0)."""
        return self.signs[self.rows] * (X[self.rows] @ self.direction)

    def message(self, family: Family, nobs: int) -> str:
        """The warning of :func:`lmmlib.glmer`, naming the diverging fixed effects."""
        kind = "complete" if self.complete else "quasi-complete"
        cols = ", ".join(repr(c) for c in self.columns)
        what = ("fitted probabilities numerically 0 or 1" if family.name == "binomial"
                else "fitted means numerically 0")
        return (f"{kind} separation is likely: the fixed effect(s) {cols} separate "
                f"{int(self.rows.sum())} of {nobs} observations (whose responses are at 0 or "
                f"at their maximum) from the others, so the estimates of {cols} diverge "
                f"to +-infinity ({what}, as glm.fit warns); they are reported where those "
                f"fitted values reach 10*eps (|eta| = {SEPARATED_ETA:.1f}), their standard "
                "errors are meaningless, and the other estimates are those of the limit. "
                "Remove or merge the columns (levels), or use a penalised fit")


def _separating_lp(Xs: np.ndarray, s: np.ndarray, ineq: np.ndarray, eq: np.ndarray,
                   target: np.ndarray) -> np.ndarray | None:
    """max Σ_target s_i x_iᵀd over |d_j| ≤ 1, s_i x_iᵀd ≥ 0 (ineq), x_iᵀd = 0 (eq)."""
    c = -(s[target, None] * Xs[target]).sum(axis=0)
    a_ub = -(s[ineq, None] * Xs[ineq])
    a_eq = Xs[eq] if eq.any() else None
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), A_eq=a_eq,
                  b_eq=None if a_eq is None else np.zeros(a_eq.shape[0]),
                  bounds=(-1.0, 1.0), method="highs")
    if res.status != 0 or -res.fun <= LP_TOL:
        return None
    return np.asarray(res.x, dtype=float)


def _certified_unseparated(X: np.ndarray, Xs: np.ndarray, y: np.ndarray, wt: np.ndarray,
                           family: Family, s: np.ndarray, ineq: np.ndarray,
                           beta: np.ndarray) -> bool:
    """Whether the GLM score at β (after one more IRLS step) proves the LP would find nothing.

    With λ_i = wt_i s_i (y_i − μ_i) > 0 on the rows of ``ineq`` and
    g = Xsᵀ wt (y − μ), any feasible d of the LP (|d_j| ≤ 1, x_iᵀd = 0 off
    ``ineq``) has Σ_ineq s_i x_iᵀd ≤ g·d / min λ ≤ ‖g‖₁ / min λ; below LP_TOL the
    LP's optimum cannot exceed its threshold.  A GLM whose estimates are finite
    has g ≈ 0, which spares the LP on large data.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mu = family.linkinv(X @ beta)
        w = wt * family.variance(mu)
        A = X.T @ (w[:, None] * X)
        b = X.T @ (wt * (y - mu))
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            return False
        try:
            beta = beta + np.linalg.solve(A, b)
        except np.linalg.LinAlgError:
            return False
        mu = family.linkinv(X @ beta)
        resid = wt * (y - mu)
        lam = s[ineq] * resid[ineq]
        g = np.abs(Xs.T @ resid).sum()
    return bool(np.all(np.isfinite(lam)) and lam.min() > 0 and g <= LP_TOL * lam.min())


def find_separation(X: np.ndarray, y: np.ndarray, wt: np.ndarray, family: Family,
                    names: Sequence[str], beta: np.ndarray | None = None) -> Separation | None:
    """Whether the columns of X separate the response (Konis's linear programme).

    A direction d with s_i·x_iᵀd ≥ 0 for all observations (and = 0 where
    s_i = 0) and > 0 for some exists if and only if the likelihood of the GLM
    (and, for fixed θ, of the GLMM) has no finite maximiser: moving β along d
    fits the observations with s_i·x_iᵀd > 0 ever better and leaves the others
    unchanged.  Each linear programme maximises the total margin of the
    observations not yet separated, over |d_j| ≤ 1 on columns scaled to
    max |x| = 1; the directions found are added up until no more observations
    separate.  X must have full column rank (as the design ensures).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix.
    y, wt : ndarray
        Response and prior weights (observations with weight 0 are ignored).
    family : Family
        Gives the boundary signs s_i.
    names : sequence of str
        Column names of X, for :attr:`Separation.columns`.
    beta : ndarray, optional
        The GLM's estimates, if known: when its score proves that no direction
        separates (see :func:`_certified_unseparated`), the LP is skipped.

    Returns
    -------
    Separation or None
        None when the response is not separated.
    """
    s = family.boundary_signs(np.asarray(y, dtype=float))
    use = np.asarray(wt) > 0
    ineq, eq = use & (s != 0), use & (s == 0)
    if not ineq.any() or X.shape[1] == 0:
        return None
    scale = np.abs(X[use]).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    if beta is not None and _certified_unseparated(X, Xs, np.asarray(y, dtype=float),
                                                   np.asarray(wt, dtype=float), family, s,
                                                   ineq, np.asarray(beta, dtype=float)):
        return None
    found, total = np.zeros(len(s), dtype=bool), np.zeros(X.shape[1])
    support = np.zeros(X.shape[1], dtype=bool)
    for _ in range(X.shape[1]):  # each round separates more observations, or stops
        d = _separating_lp(Xs, s, ineq, eq, ineq & ~found)
        if d is None:
            break
        sep = ineq & (s * (Xs @ d) > LP_TOL)
        if not (sep & ~found).any():
            break
        found |= sep
        support |= np.abs(d) > LP_TOL
        total += d
        if not (ineq & ~found).any():
            break
    if not found.any():
        return None
    columns = tuple(n for n, k in zip(names, support, strict=True) if k)
    return Separation(total / scale, found, s, columns, bool(found[use].all()))


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
        v = family.variance(mu)
        sw = np.sqrt(wt * v)
        A, b = sw[:, None] * X, sw * (eta - offset + (y - mu) / v)
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


_FAMILIES = {"poisson": Poisson, "binomial": Binomial}


def get_family(family: str | Family) -> Family:
    """The family named ``family`` (``"poisson"`` or ``"binomial"``), or ``family`` itself.

    Raises
    ------
    FamilyError
        For any other name, e.g. ``"gaussian"`` (use :func:`lmmlib.lmer`).
    """
    if isinstance(family, Family):
        return family
    key = str(family).strip().lower() if isinstance(family, str) else None
    if key in _FAMILIES:
        return _FAMILIES[key]()
    hint = " (for a Gaussian response use lmmlib.lmer)" if key in ("gaussian", "normal") else ""
    raise FamilyError(f"unknown family {family!r}: glmer supports "
                      f"{' and '.join(repr(k) for k in _FAMILIES)}{hint}")
