"""The GLMM deviance by the Laplace approximation and adaptive Gauss–Hermite quadrature.

With spherical random effects u ~ N(0, I) and b = Λ(θ)u the linear predictor
is η = Xβ + ZΛu.  For given (θ, β) the *inner* problem finds the conditional
mode û, the minimiser of the penalised deviance

    −2 log p(y | u) + ‖u‖²,

by penalised IRLS: Newton's method (= Fisher scoring for canonical links)
with step halving.  Each step is the engine's weighted penalised
least-squares problem (:meth:`lmmlib.engine.pls.PLS.reweight`) for the
working weights W = diag(wt · V(μ)) and the working response, so it is
solved with the same blocked Cholesky factor L of

    Λ'Z'WZΛ + I

as a linear mixed model, the sparse coupling of crossed factors included.

The Laplace approximation to −2 log L(θ, β) is then

    −2 log p(y | û) + ‖û‖² + log|L|²,

lme4's ``nAGQ = 1`` deviance with the full log-likelihood (log y!, log C(n, k))
included.  No n × n matrix is ever formed.

Stage 1 (lme4's ``nAGQ = 0``) also updates β inside the Newton iterations; its
joint factor gives L_X, used to scale β for the outer optimiser.

Hard data (separation, a start with |η| ≈ 50, huge counts) must not turn
into LAPACK errors: the families clamp μ (see :mod:`lmmlib.glmm.family`), no
matrix reaches a factorisation unless it is finite, every Newton step is
shortened so that no η moves by more than ``MAX_DETA`` and is halved while the
penalised deviance is not finite or increases (as R's glm.fit), and a
factorisation that fails makes the criterion ``inf`` for that (θ, β), so the
optimiser steps back.  Only a mode that cannot be factored at the optimum
itself is an error (:class:`FactorError`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import scipy.linalg
from numpy.polynomial.hermite import hermgauss
from scipy.special import logsumexp

from ..checks import as_count
from ..engine.design import Design
from ..engine.pls import PLS, PLSSolution
from ..errors import DataError
from .family import MAX_DETA, MAX_HALVINGS, Family
from .glm import glm_irls

__all__ = ["FactorError", "GlmmProblem", "Mode"]

DEC_TOL = 1e-20  # Newton decrement g'A⁻¹g (deviance units) at which PIRLS stops
MAX_ITER = 60
MAX_NAGQ = 100
GLM_MAXIT = 50


class FactorError(DataError):
    """The penalised IRLS cannot factor its system at the optimum (non-finite or not PD)."""


class _NotFinite(np.linalg.LinAlgError):
    """A matrix about to be factored has non-finite entries (caught as a failed evaluation)."""


def _finite(name: str, *arrays: np.ndarray) -> None:
    """Raise :class:`_NotFinite` unless every entry is finite (checked before LAPACK)."""
    for a in arrays:
        if not np.isfinite(np.sum(a)):  # NaN and ±inf propagate (an overflowing sum fails too)
            raise _NotFinite(f"{name} has non-finite entries")


@dataclass(frozen=True)
class Mode:
    """The conditional mode at (θ, β) and what the approximations need there."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    factor: PLSSolution  # the weighted PLS solve at the last iterate (T not formed)
    devsum: float  # Σ deviance residuals at û
    LX: np.ndarray | None = None  # joint (stage-1) factor of the β block, if computed
    converged: bool = True

    @property
    def ussq(self) -> float:
        """‖û‖²."""
        return float(self.u @ self.u)


class GlmmProblem:
    """A GLMM's data and its approximate deviance as a function of (θ, β).

    Parameters
    ----------
    design : Design
        From :func:`lmmlib.engine.design.build_design`.
    family : Family
        Response distribution (canonical link).
    wt : ndarray
        Prior weights (binomial: numbers of trials).
    """

    def __init__(self, design: Design, family: Family, wt: np.ndarray,
                 offset: np.ndarray | None = None) -> None:
        self.design, self.family = design, family
        self.X, self.y, self.wt = design.X, design.y, np.asarray(wt, dtype=float)
        self.n, self.p = self.X.shape
        self.offset = np.zeros(self.n) if offset is None else np.asarray(offset, dtype=float)
        self.blocks = design.blocks
        b0 = self.blocks[0]
        self.k0, self.q0 = b0.nlevels, b0.q
        self._idx0 = b0.codes[:, None] * self.q0 + np.arange(self.q0)  # (n, q0)
        self.rest = self.blocks[1:]
        self.pls = PLS(design)  # the engine's problem, reweighted at every step
        self.n_rest = self.pls.n_rest
        self._colsR = self.pls.pattern.colsR if self.rest else None  # (n, Σ q_b)
        self.nu = self.k0 * self.q0 + self.n_rest
        self.saturated = family.saturated_loglik(self.y, self.wt)
        self._deviance = family.deviance_function(self.y, self.wt)
        self.u_last = np.zeros(self.nu)

    def check_nagq(self, nagq: object) -> int:
        """``nagq`` as an int, if valid for this model (0, 1, or AGQ: one scalar term only).

        Raises
        ------
        ArgumentError
            If ``nagq`` is not an integer (a float, a bool, a string).
        DataError
            If it is outside 1..MAX_NAGQ, or > 1 for a model AGQ cannot handle.
        """
        if (isinstance(nagq, Integral) and not isinstance(nagq, (bool, np.bool_))
                and not 0 <= nagq <= MAX_NAGQ):
            raise DataError(f"nAGQ must be a whole number from 0 to {MAX_NAGQ}, got {nagq!r}")
        nagq = as_count(nagq, "nAGQ", minimum=0)
        if nagq > 1 and self.family.has_dispersion:
            raise DataError(f"nAGQ > 1 is not available for the {self.family.name} family "
                            "(its likelihood has a dispersion); use nAGQ = 1 (Laplace)")
        if nagq > 1 and (self.rest or self.q0 > 1):
            raise DataError("nAGQ > 1 is only available for a single scalar random-effects "
                            "term such as (1 | g); use nAGQ = 1 (Laplace)")
        return int(nagq)

    def theta_names(self) -> list[str]:
        """lme4's names of θ: ``factor.column``, ``factor.row.column`` off the diagonal."""
        return [f"{t.factor}.{t.colnames[i]}" + (f".{t.colnames[j]}" if i != j else "")
                for t in self.design.reterms for j in range(t.q) for i in range(j, t.q)]

    # -- ZΛ and its products -------------------------------------------------
    def re_matrix(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Rows of ZΛ per observation: the first block's (n, q0), the others' (n, Σ q_b); θ.

        Row i of a block's part is z_iᵀΛ_b; with the level codes this is ZΛ
        without forming the sparse n × q matrix.
        """
        theta = np.asarray(theta, dtype=float)
        U0 = self.blocks[0].Z @ self.blocks[0].lam(theta)
        UR = np.hstack([b.Z @ b.lam(theta) for b in self.rest]) if self.rest else None
        return U0, UR, theta

    def _re_eta(self, U, u: np.ndarray) -> np.ndarray:
        """ZΛu."""
        U0, UR, _ = U
        n0 = self.k0 * self.q0
        eta = np.einsum("ij,ij->i", U0, u[self._idx0])
        if UR is not None:
            eta += np.einsum("ij,ij->i", UR, u[n0:][self._colsR])
        return eta

    # -- penalised IRLS --------------------------------------------------------
    def _devsum(self, eta: np.ndarray) -> float:
        return self._deviance(eta)

    def working(self, eta: np.ndarray) -> PLS:
        """The engine's weighted PLS problem of a penalised IRLS step at η.

        The family's working weights w and the weighted working response
        w·(η − o) + score (W z with z = η − o + score/w, written without the
        division: finite where a weight underflows); for a canonical link
        w = wt·V(μ) and score = wt·(y − μ).
        """
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: caught as non-finite
            _, w, score = self.family.irls(self.y, eta, self.wt)
            wy = w * (eta - self.offset) + score
        _finite("the working weights", w, wy)
        return self.pls.reweight(w, wy)

    def _newton(self, U, eta: np.ndarray, u: np.ndarray, beta: np.ndarray, joint: bool):
        """The weighted PLS solve at (u, β) and the step (du, dβ) with its decrement.

        The decrement du'A du (A = Λ'Z'WZΛ + I, with the β block if ``joint``) is
        the decrease of the penalised deviance the quadratic model predicts.
        """
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: caught as non-finite
            return self._newton_step(U, eta, u, beta, joint)

    def _newton_step(self, U, eta, u, beta, joint):
        theta = U[2]
        work = self.working(eta)
        w = work.weights
        if joint:
            try:
                sol = work.solve(theta, full=False)
            except np.linalg.LinAlgError:
                sol = None
            if sol is not None and np.all(np.isfinite(sol.beta)):
                du, dbeta = sol.u - u, sol.beta - beta
                step = self.X @ dbeta + self._re_eta(U, du)
                return sol, du, dbeta, float(w @ step**2 + du @ du), sol.LX
        sol = work.solve(theta, beta=beta, full=False)
        du = sol.u - u
        dec = float(w @ self._re_eta(U, du) ** 2 + du @ du)
        if not joint:
            return sol, du, np.zeros(self.p), dec, None
        # huge weights (|η| ≫ 1 under the log link) cancel X'WX - C'C below rounding:
        # a block step (u given β, β given u) still descends
        XtWX = self.X.T @ (w[:, None] * self.X)
        _finite("X'WX", XtWX)
        Lw = scipy.linalg.cholesky(XtWX, lower=True, check_finite=False)
        score = self.family.irls(self.y, eta, self.wt)[2]
        zb = scipy.linalg.solve_triangular(Lw, self.X.T @ score, lower=True, check_finite=False)
        dbeta = scipy.linalg.solve_triangular(Lw.T, zb, lower=False, check_finite=False)
        return sol, du, dbeta, dec + float(zb @ zb), None

    def _line_search(self, U, u: np.ndarray, beta: np.ndarray, eta: np.ndarray,
                     du: np.ndarray, dbeta: np.ndarray, pdev: float, dec: float,
                     lenient: bool):
        """(u, β, η, penalised deviance) after the step (du, dβ), or None if none is found.

        The step is first shortened so that no η moves by more than MAX_DETA
        (where the working weights underflow, under separation or at |η| ≈ 50,
        the Newton step is huge), then halved until the penalised deviance is
        finite and not larger (``lenient``: or finite, near the mode, where
        rounding dominates).  A full step that lowers the deviance by more than
        the quadratic model's ``dec`` (1.1 dec, far from the mode) is doubled
        while that keeps lowering it: from far above, Newton's method for
        exp(η) only moves η by about 1 per step.
        """
        def trial(t: float):
            u_new, b_new = u + t * du, beta + t * dbeta
            eta_new = self.offset + self.X @ b_new + self._re_eta(U, u_new)
            return u_new, b_new, eta_new, self._devsum(eta_new) + u_new @ u_new

        best = trial(1.0)
        deta = float(np.abs(best[2] - eta).max())
        if deta <= MAX_DETA:
            t = 1.0
        else:  # also for a non-finite trial η
            t = MAX_DETA / deta if np.isfinite(deta) else 0.5
        for _ in range(MAX_HALVINGS):
            best = best if t == 1.0 else trial(t)
            if np.isfinite(best[3]) and (best[3] <= pdev or lenient):
                break
            t *= 0.5
        else:
            return None
        if t == 1.0 and dec > 1.0 and pdev - best[3] > 1.1 * dec:
            while 2.0 * t * deta <= MAX_DETA:
                more = trial(2.0 * t)
                if not (np.isfinite(more[3]) and more[3] < best[3]):
                    break
                best, t = more, 2.0 * t
        return best

    def mode(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray | None = None,
             joint: bool = False) -> Mode:
        """Conditional mode û at (θ, β) by penalised IRLS (``joint``: also β̂, stage 1).

        Parameters
        ----------
        theta, beta : ndarray
            Covariance parameters and fixed effects (the start for β if ``joint``).
        u0 : ndarray, optional
            Starting u (default: the last mode found, a warm start).
        joint : bool
            Maximise the penalised likelihood over β too.

        Returns
        -------
        Mode
        """
        U = self.re_matrix(theta)
        u = (self.u_last if u0 is None else u0).copy()
        beta = np.asarray(beta, dtype=float).copy()
        eta = self.offset + self.X @ beta + self._re_eta(U, u)
        pdev = self._devsum(eta) + u @ u
        if not np.isfinite(pdev):
            u = np.zeros(self.nu)
            eta = self.offset + self.X @ beta
            pdev = self._devsum(eta)
        prev, converged = np.inf, False
        for _ in range(MAX_ITER):
            F, du, dbeta, dec, LX = self._newton(U, eta, u, beta, joint)
            block = joint and LX is None  # a block step: not a Newton decrement
            if not block and (dec < DEC_TOL or (dec < 1e-12 and dec > 0.25 * prev)):
                converged = True
                break
            prev = np.inf if block else dec
            step = self._line_search(U, u, beta, eta, du, dbeta, pdev, dec,
                                     lenient=not block and dec < 1e-8)
            if step is None:
                break
            u, beta, eta, pdev = step
        else:  # iterations exhausted: factor at the last iterate
            F, *_, LX = self._newton(U, eta, u, beta, joint)
        if np.isfinite(pdev):
            self.u_last = u
        return Mode(np.asarray(theta, float), beta, u, eta, F, self._devsum(eta), LX, converged)

    def mode_at_optimum(self, theta: np.ndarray, beta: np.ndarray,
                        u0: np.ndarray | None = None, joint: bool = False) -> Mode:
        """:meth:`mode` where a failure is the user's error, not an infinite criterion.

        Raises
        ------
        FactorError
            If the penalised IRLS system cannot be factored at (θ, β).
        """
        try:
            mode = self.mode(theta, beta, u0, joint=joint)
        except np.linalg.LinAlgError as exc:
            raise FactorError(
                f"the penalised IRLS cannot factor its system at theta = {np.round(theta, 6)}, "
                f"fixef = {np.round(beta, 6)} ({exc}); the data may not support the random "
                "effects or the fixed effects (separation, extreme covariates)") from None
        if not np.isfinite(mode.devsum):
            raise FactorError(f"the deviance is not finite at theta = {np.round(theta, 6)}, "
                              f"fixef = {np.round(beta, 6)}")
        return mode

    def solution(self, mode: Mode) -> PLSSolution:
        """The blocked factor at a mode with the dense coupling T (for conditional variances)."""
        try:
            sol = self.working(mode.eta).solve(mode.theta, beta=mode.beta, full=True)
        except np.linalg.LinAlgError as exc:
            raise FactorError(f"the penalised IRLS system cannot be factored at the mode "
                              f"({exc})") from None
        return replace(sol, u=mode.u, beta=mode.beta)

    def joint_factor(self, mode: Mode) -> np.ndarray:
        """L_X of the joint (u, β) system at a mode, without moving it.

        Raises
        ------
        FactorError
            If X'WX − C'C is not finite or not positive definite there.
        """
        U = self.re_matrix(mode.theta)
        try:
            LX = self._newton(U, mode.eta, mode.u, mode.beta, joint=True)[4]
        except np.linalg.LinAlgError as exc:
            raise FactorError(f"the penalised IRLS system cannot be factored at the mode "
                              f"({exc})") from None
        if LX is None:
            raise FactorError("the fixed-effects block X'WX - C'C of the penalised IRLS is not "
                              "positive definite at the mode (weights too large or too small "
                              "for double precision)")
        return LX

    # -- approximate deviances -------------------------------------------------
    def laplace(self, mode: Mode) -> float:
        """−2 log L by the Laplace approximation at a conditional mode."""
        m2ll = self.family.m2loglik(mode.devsum, self.saturated, self.y, mode.eta, self.wt)
        return m2ll + mode.ussq + mode.factor.logdet_theta

    def agq(self, mode: Mode, nagq: int) -> float:
        """−2 log L by adaptive Gauss–Hermite quadrature with ``nagq`` nodes per group.

        Only for one scalar random-effects term: the integral then factorises
        into one-dimensional integrals over the groups, each centred at û_i and
        scaled by the conditional SD 1/L_ii.
        """
        block = self.blocks[0]
        lam = block.lam(mode.theta)[0, 0]
        codes, z = block.codes, block.Z[:, 0]
        sd = 1.0 / mode.factor.L0[:, 0, 0]
        x, w = hermgauss(int(nagq))
        fixed = self.offset + self.X @ mode.beta
        nodes = mode.u[None, :] + np.sqrt(2.0) * sd[None, :] * x[:, None]  # (m, k)
        eta = fixed[None, :] + z[None, :] * lam * nodes[:, codes]
        dr = self.family.dev_resid(self.y[None, :], eta, self.wt[None, :])
        dev = np.stack([np.bincount(codes, d, minlength=self.k0) for d in dr]) + nodes**2
        dev0 = np.bincount(codes, self.family.dev_resid(self.y, mode.eta, self.wt),
                           minlength=self.k0) + mode.u**2
        logsum = logsumexp(np.log(w)[:, None] + x[:, None] ** 2 - 0.5 * (dev - dev0), axis=0)
        per_group = dev0 - 2.0 * np.log(sd) - 2.0 * (logsum - 0.5 * np.log(np.pi))
        return float(per_group.sum()) - 2.0 * self.saturated

    def deviance(self, theta: np.ndarray, beta: np.ndarray, nagq: int = 1,
                 u0: np.ndarray | None = None) -> float:
        """Approximate −2 log L(θ, β) (``inf`` where the inner problem fails)."""
        try:
            mode = self.mode(theta, beta, u0)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        val = self.laplace(mode) if nagq <= 1 else self.agq(mode, nagq)
        return val if np.isfinite(val) else np.inf

    def stage1(self, theta: np.ndarray, beta0: np.ndarray) -> tuple[float, Mode | None]:
        """lme4's nAGQ = 0 criterion: Laplace deviance at the joint mode (û, β̂)."""
        try:
            mode = self.mode(theta, beta0, joint=True)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf, None
        val = self.laplace(mode)
        return (val, mode) if np.isfinite(val) else (np.inf, None)

    def glm_start(self, maxit: int = GLM_MAXIT) -> np.ndarray:
        """β of the GLM without random effects (:func:`~lmmlib.glmm.glm.glm_irls`).

        Raises
        ------
        FactorError
            If not even the first weighted least-squares fit is finite.
        """
        beta = glm_irls(self.X, self.y, self.wt, self.family, maxit, self.offset)
        if beta is None:
            raise FactorError("the GLM without random effects (the starting values) cannot be "
                              "fitted: its first weighted least-squares step is not finite")
        return beta
