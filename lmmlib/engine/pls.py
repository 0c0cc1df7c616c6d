"""Stage 3: the profiled deviance / REML criterion by penalised least squares.

For a relative covariance factor Λ(θ) the random effects are b = Λu with
u ~ N(0, σ²I).  Given θ, β and u solve the penalised least-squares problem

    min ‖W^½(y − o − Xβ − ZΛu)‖² + ‖u‖²,

(observation weights W = diag(w), offset o; unweighted W = I) whose normal
equations have the blocked Cholesky factor

    [ L_θ    0  ]  with  L_θ L_θ' = Λ'Z'WZΛ + I.
    [ C'    L_X ]

The profiled deviance is ``log|L_θ|² − Σ log wᵢ + n (1 + log(2π r²/n))`` and
the REML criterion ``log|L_θ|² + log|L_X|² − Σ log wᵢ + (n−p)(1 + log(2π
r²/(n−p)))``, r² being the penalised weighted residual sum of squares (Bates
et al., 2015, *J. Stat. Softw.*).  A GLMM's penalised IRLS solves the same
problem with its working weights (:meth:`PLS.reweight`), so the LMM and the
GLMM share this factorisation, its sparse coupling included.

Everything here works on cross-products computed once, so one evaluation costs
O(levels · q²·p) for the first grouping factor plus a dense Cholesky of the
remaining factors' random effects; no N×N matrix is ever formed.
The first block (the factor with most levels) is block-diagonal and is
factored level by level in a batched fashion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dpotrf, dtrtrs

from .batched import factor_first, solve_lower_batched, solve_upper_batched
from .coupling import make_coupling, symmetrize_lower
from .crossprod import ZPattern, z_matrix
from .design import Design
from .levelstats import LevelStats
from .observations import obs_vector, offset_beta
from .scratch import square_buffer

__all__ = ["PLS", "PLSSolution", "z_matrix"]

LOG2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class PLSSolution:
    """Everything the penalised least-squares solve at one θ produced."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray  # spherical random effects, block after block, level-major
    r2: float  # penalised residual sum of squares
    logdet_theta: float  # log|L_θ|²
    logdet_x: float  # log|L_X|²
    L0: np.ndarray  # (k0, q0, q0) Cholesky factors of the first block
    T: np.ndarray | None  # (k0·q0, Q_R) coupling of the first block with the rest
    L_rest: np.ndarray | None  # (Q_R, Q_R) Cholesky factor of the remaining blocks
    LX: np.ndarray | None  # (p, p) factor of the Schur complement for X (None: β given)


class _Factors(NamedTuple):
    """The blocked factor at one θ (``state``: the coupling's, for products with T).

    From the per-level statistics (the criterion only) L0 and cd are ``None``.
    """

    L0: np.ndarray | None
    T: np.ndarray | None
    state: object
    L_rest: np.ndarray | None
    cd: np.ndarray | None  # L⁻¹Λ'Z'W[X y], (q, p+1)
    LX: np.ndarray | None  # (p, p) Cholesky factor of the Schur complement for X
    lx: np.ndarray | None  # L_X⁻¹ of the Schur complement's response column
    r2: float
    logdet: float
    logdet_x: float


class PLS:
    """Cross-products of a design and the PLS solve as a function of θ.

    The response is carried as an extra column of X, so that one Cholesky
    factor of the (p+1)×(p+1) Schur complement yields L_X, the solution for β
    and the penalised residual sum of squares r² (its last pivot squared).

    With observation weights w the problem is the weighted one,
    min ‖W^½(y − o − Xβ − ZΛu)‖² + ‖u‖² (o an offset): prior weights of a
    weighted LMM (residual variance σ²/wᵢ, as lme4's ``weights``; the
    criterion then includes −Σ log wᵢ as lme4's), or, through
    :meth:`reweight`, the working weights of a GLMM's penalised IRLS step.

    Parameters
    ----------
    design : Design
        Output of :func:`lmmlib.engine.design.build_design`.
    y : ndarray, optional
        A response to use instead of the design's (same X and Z).
    weights : ndarray, optional
        Positive prior weights, one per observation (default: the design's).
    offset : ndarray, optional
        A known part of the linear predictor, one value per observation
        (default: the design's).

    Examples
    --------
    >>> import lmmlib
    >>> from lmmlib.engine.design import build_design
    >>> d = lmmlib.datasets.load("pulp")
    >>> pls = PLS(build_design("bright ~ 1 + (1 | operator)", d))
    >>> round(pls.objective([0.6], reml=True), 4)
    18.8546
    """

    _level_stats: LevelStats | None = None  # made on the first criterion evaluation

    def __init__(self, design: Design, y: np.ndarray | None = None,
                 weights: np.ndarray | None = None, offset: np.ndarray | None = None) -> None:
        self.design = design
        self.n, self.p = design.X.shape
        self.blocks = design.blocks
        self.pattern = ZPattern(self.blocks)
        self.k0, self.q0 = self.blocks[0].nlevels, self.blocks[0].q
        self.rest = self.blocks[1:]
        self.n_rest = self.pattern.n_rest
        self._rest_scalar = all(b.q == 1 for b in self.rest)
        self._rest_sizes = [b.nlevels for b in self.rest]
        self._base_coupling = None
        if self.rest:
            self._base_coupling = make_coupling(self.pattern.coupling_matrix(None), self.k0,
                                                self.q0)
        self._xtx = None
        offset = design.offset if offset is None else offset
        weights = design.weights if weights is None else weights
        self.offset = (np.zeros(self.n) if offset is None
                       else obs_vector(offset, self.n, "offset", positive=False))
        w = None if weights is None else obs_vector(weights, self.n, "weights", positive=True)
        self.log_weights = 0.0 if w is None else float(np.log(w).sum())
        self._set_weights(w)
        self._set_response(design.y if y is None else y)

    # -- cross-products ------------------------------------------------------------
    def _set_weights(self, w: np.ndarray | None) -> None:
        """Compute the cross-products of Z and X that involve the weights."""
        self.weights = w
        self.ZtZ0 = self.pattern.ztz0(w)
        self._zrtzr = None
        if self.rest:
            base = self._base_coupling
            self.coupling = base if w is None else base.reweighted(self.pattern.coupling_data(w))
            self._zrtzr_diag = self.pattern.zrtzr_diag(w) if self.pattern.rest_diagonal else None

    @property
    def zrtzr(self) -> np.ndarray:
        """Z_R'WZ_R of the blocks after the first, dense (formed on first use)."""
        if self._zrtzr is None:
            self._zrtzr = self.pattern.zrtzr(self.weights)
        return self._zrtzr

    def _set_response(self, y: np.ndarray | None, wy: np.ndarray | None = None) -> None:
        """Compute the cross-products that involve the response (or only W·y, ``wy``)."""
        X, w = self.design.X, self.weights
        self._level_stats = None  # they hold Z'W[X y]: made again on the next evaluation
        if y is not None:
            y = np.asarray(y, dtype=float)
            if y.shape != (self.n,):
                raise ValueError(f"response must have shape ({self.n},), got {y.shape}")
            y = y - self.offset
        # an offset β from least squares keeps r² free of cancellation when y has a
        # large mean (the problem is then solved for β − β_offset)
        if w is None:
            if self._xtx is None:  # the parts that do not involve y, once per design
                self._xtx = X.T @ X
                self._ztx0 = self.pattern.z0t(X)
                self._zrtx = self.pattern.zrt(X) if self.rest else None
            self.beta_offset = offset_beta(X, self._xtx, y)
            r = y - X @ self.beta_offset
            Xtr = X.T @ r
            self.XytXy = np.empty((self.p + 1, self.p + 1))
            self.XytXy[: self.p, : self.p] = self._xtx
            self.XytXy[: self.p, self.p] = self.XytXy[self.p, : self.p] = Xtr
            self.XytXy[self.p, self.p] = r @ r
            self.ZtXy0 = np.concatenate([self._ztx0, self.pattern.z0t(r[:, None])], axis=2)
            if self.rest:
                self.ZRtXy = np.hstack([self._zrtx, self.pattern.zrt(r[:, None])])
            return
        WX = X * w[:, None]
        wy = w * y if wy is None else wy
        if y is None:  # a penalised IRLS step: no r², so no centring is needed
            self.beta_offset = np.zeros(self.p)
        else:
            self.beta_offset = np.linalg.lstsq(X.T @ WX, X.T @ wy, rcond=None)[0]
        wr = wy - WX @ self.beta_offset
        WXy = np.column_stack([WX, wr])
        self.XytXy = np.empty((self.p + 1, self.p + 1))
        self.XytXy[:, : self.p] = WXy.T @ X
        self.XytXy[: self.p, self.p] = self.XytXy[self.p, : self.p]
        self.XytXy[self.p, self.p] = ((y - X @ self.beta_offset) @ wr if y is not None
                                      else np.nan)
        self.ZtXy0 = self.pattern.z0t(WXy)
        if self.rest:
            self.ZRtXy = self.pattern.zrt(WXy)

    def with_response(self, y: np.ndarray) -> PLS:
        """The same problem for a new response: X, Z and Z'WZ are reused."""
        new = copy.copy(self)
        new._set_response(y)
        return new

    def reweight(self, weights: np.ndarray, wy: np.ndarray) -> PLS:
        """The problem with observation weights w and weighted response W·y.

        A GLMM's penalised IRLS step is this weighted problem for its working
        weights and working response; passing W·y rather than y keeps it
        finite where a weight underflows.  The symbolic work (where every
        product lands, the coupling's pattern) is reused, so a reweighting
        costs a few passes over the observations.  The penalised residual sum
        of squares is not available (NaN): :meth:`solve` gives β̂ and û.

        Parameters
        ----------
        weights : ndarray
            Non-negative weights, one per observation.
        wy : ndarray
            The weights times the response (its offset already removed).

        Returns
        -------
        PLS
        """
        new = copy.copy(self)
        new._set_weights(np.asarray(weights, dtype=float))
        new._set_response(None, np.asarray(wy, dtype=float))
        return new

    # -- Λ for the blocks after the first, applied without forming it ------------
    def _rest_scales(self, theta: np.ndarray) -> np.ndarray | None:
        """Diagonal of Λ_R when every remaining block is scalar, else ``None``."""
        if not self._rest_scalar:
            return None
        return np.repeat([b.lam(theta)[0, 0] for b in self.rest], self._rest_sizes)

    def _rmul_rest(self, M: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """M Λ_R, where the last axis of M runs over the remaining random effects."""
        scales = self._rest_scales(theta)
        if scales is not None:
            return M * scales
        out, o = np.empty_like(M), 0
        for b in self.rest:
            w = b.nlevels * b.q
            lam = b.lam(theta)
            part = M[..., o : o + w].reshape(*M.shape[:-1], b.nlevels, b.q)
            out[..., o : o + w] = (part @ lam).reshape(*M.shape[:-1], w)
            o += w
        return out

    def _lmul_rest(self, v: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Λ_R v for a vector v over the remaining random effects."""
        scales = self._rest_scales(theta)
        if scales is not None:
            return v * scales
        out, o = np.empty_like(v), 0
        for b in self.rest:
            w = b.nlevels * b.q
            out[o : o + w] = (v[o : o + w].reshape(b.nlevels, b.q) @ b.lam(theta).T).ravel()
            o += w
        return out

    def _rest_matrix(self, theta: np.ndarray, state, scratch: bool = False) -> np.ndarray:
        """Λ_Rᵀ(Z_RᵀWZ_R)Λ_R + I − TᵀT; only the lower triangle is guaranteed.

        ``scratch``: the matrix may live in this thread's work buffer (its factor
        is not kept beyond the current evaluation).
        """
        coupling, rmul = self.coupling, self._rmul_rest
        scales = self._rest_scales(theta)
        if not coupling.scaled and scales is not None and self._zrtzr_diag is not None:
            return self._rest_matrix_sparse(state, scales, scratch)
        gram = coupling.gram(state, theta, rmul)
        if coupling.scaled:
            A = rmul(rmul(self.zrtzr, theta).T, theta) - gram
        elif scales is not None:
            A = self.zrtzr - gram
            A *= scales[:, None]
            A *= scales[None, :]
        else:
            A = rmul(rmul(self.zrtzr - symmetrize_lower(gram), theta).T, theta)
        A[np.diag_indices_from(A)] += 1.0
        return A

    def _rest_matrix_sparse(self, state, scales: np.ndarray, scratch: bool) -> np.ndarray:
        """The same matrix when Z_RᵀWZ_R is diagonal: only MᵀWM's nonzeros are written."""
        coupling = self.coupling
        A = square_buffer(self.n_rest) if scratch else np.zeros((self.n_rest, self.n_rest))
        if len(self.rest) == 1:  # one scale λ for all remaining effects
            A.ravel()[coupling.positions] = coupling.values(state) * -(scales[0] ** 2)
        else:
            rows, cols = coupling.position_rows, coupling.position_cols
            A.ravel()[coupling.positions] = -coupling.values(state) * scales[rows] * scales[cols]
        A[np.diag_indices_from(A)] += self._zrtzr_diag * scales**2 + 1.0
        return A

    def _rest_factor(self, theta, lam0, L0, cd0, full, scratch=False):
        """Factor the remaining blocks given the first one (Schur complement)."""
        rmul, coupling = self._rmul_rest, self.coupling
        state = coupling.state(theta, lam0, L0, rmul, solve_lower_batched)
        A = self._rest_matrix(theta, state, scratch)
        if not np.isfinite(np.sum(A)):  # NaN and inf never reach LAPACK
            raise np.linalg.LinAlgError("Schur complement of the remaining blocks not finite")
        L_rest = scipy.linalg.cholesky(A, lower=True, check_finite=False, overwrite_a=True)
        rhs = rmul(self.ZRtXy.T, theta).T - coupling.tmul(state, cd0, theta, rmul)
        cdR = scipy.linalg.solve_triangular(L_rest, rhs, lower=True, check_finite=False)
        T = coupling.dense(state, theta, rmul) if full else None
        return state, T, L_rest, cdR

    def _criterion_factors(self, theta: np.ndarray) -> _Factors:
        """What the criterion needs at θ (r², log-determinants), by the quickest route.

        One grouping factor with scalar or 2 × 2 blocks: from its per-level
        sufficient statistics (:class:`~lmmlib.engine.levelstats.LevelStats`),
        without factoring the levels.  Otherwise the blocked factorisation.
        """
        if self.rest or self.q0 > 2:
            return self._factor(theta, full=False, want_l0=False, scratch=True)
        if self._level_stats is None:
            self._level_stats = LevelStats(self.ZtZ0, self.ZtXy0)
        C, logdet = self._level_stats.schur_terms(self.blocks[0].lam(theta))
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("first block not positive definite")
        LX, lx, r2, logdet_x = self._x_part(self.XytXy - C)
        return _Factors(None, None, None, None, None, LX, lx, r2, logdet, logdet_x)

    def _x_part(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """L_X, L_X⁻¹s, r² and log|L_X|² from the Schur complement S of [X y]."""
        # L_X from its X block, then the response's column by one triangular solve
        # and r² as the last pivot squared
        p = self.p
        LX, lx = np.zeros((0, 0)), np.zeros(0)
        if p:
            LX, info = dpotrf(S[:p, :p], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("fixed-effects Schur complement not positive definite")
            lx, info = dtrtrs(LX, S[:p, p], lower=1)  # LAPACK directly: p is small
            if info != 0:
                raise np.linalg.LinAlgError("fixed-effects factor singular")
        r2 = float(S[p, p] - lx @ lx)
        logdet_x = 2.0 * np.log(np.diagonal(LX)).sum()
        return LX, lx, r2, logdet_x

    def _factor(self, theta: np.ndarray, full: bool = True, x_factor: bool = True,
                want_l0: bool = True, scratch: bool = False) -> _Factors:
        lam0 = self.blocks[0].lam(theta)
        L0, parts, logdet = factor_first(lam0, self.ZtZ0, self.ZtXy0, want_l0 or bool(self.rest))
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("first block not positive definite")
        T = L_rest = state = None
        p = self.p
        cd = parts[0] if len(parts) == 1 else np.stack(parts, axis=1).reshape(-1, p + 1)
        S = self.XytXy - cd.T @ cd
        if self.rest:
            state, T, L_rest, cdR = self._rest_factor(theta, lam0, L0, cd, full, scratch)
            S -= cdR.T @ cdR
            cd = np.vstack([cd, cdR])
            logdet += 2.0 * np.log(np.diag(L_rest)).sum()
        if not x_factor:
            return _Factors(L0, T, state, L_rest, cd, None, None, np.nan, logdet, np.nan)
        LX, lx, r2, logdet_x = self._x_part(S)
        return _Factors(L0, T, state, L_rest, cd, LX, lx, r2, logdet, logdet_x)

    def objective(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled REML criterion (``reml=True``) or deviance −2 log L at θ.

        Parameters
        ----------
        theta : ndarray
            Relative covariance parameters in lme4's order.
        reml : bool
            REML criterion or ML deviance.

        Returns
        -------
        float
            ``inf`` where the factorisation fails.
        """
        try:
            f = self._criterion_factors(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        return self._criterion(f.r2, f.logdet, f.logdet_x, reml)

    def _criterion(self, r2: float, logdet: float, logdet_x: float, reml: bool) -> float:
        if not r2 > 0:
            return np.inf
        nu = self.n - self.p if reml else self.n
        dev = logdet - self.log_weights + nu * (1.0 + LOG2PI + np.log(r2 / nu))
        return float(dev + logdet_x) if reml else float(dev)

    def deviance_at(self, theta: np.ndarray, sigma: float, reml: bool = True) -> float:
        """REML criterion or deviance at (θ, σ), profiled over β only.

        ``log|L_θ|² [+ log|L_X|²] − Σ log wᵢ + ν log(2πσ²) + r²(θ)/σ²`` with
        ν = n − p for REML and n for ML.  Minimising over σ gives
        :meth:`objective`; derivatives with respect to (θ, σ) give
        Satterthwaite's degrees of freedom and Hessian-based standard errors of
        the variance parameters.

        Parameters
        ----------
        theta : ndarray
            Relative covariance parameters.
        sigma : float
            Residual standard deviation (> 0).
        reml : bool
            REML criterion or ML deviance.

        Returns
        -------
        float
        """
        try:
            f = self._criterion_factors(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        if not sigma > 0:
            return np.inf
        nu = self.n - self.p if reml else self.n
        dev = (f.logdet - self.log_weights + nu * (LOG2PI + 2.0 * np.log(sigma))
               + f.r2 / sigma**2)
        return float(dev + f.logdet_x) if reml else float(dev)

    def solve(self, theta: np.ndarray, beta: np.ndarray | None = None,
              full: bool = True) -> PLSSolution:
        """Solution at θ: β̂ and the spherical random effects û, with the factors.

        Parameters
        ----------
        theta : ndarray
            Relative covariance parameters.
        beta : ndarray, optional
            Fixed effects to condition on: û is then the minimiser for this β
            (the fixed-effects block is not factored; r², L_X are not computed).
        full : bool
            Form the dense coupling T of the first block with the rest (for
            conditional variances); without it products with T are sparse.

        Returns
        -------
        PLSSolution
        """
        theta = np.asarray(theta, dtype=float)
        f = self._factor(theta, full=full, x_factor=beta is None)
        p = self.p
        if beta is None:
            beta_c = scipy.linalg.solve_triangular(f.LX.T, f.lx, lower=False, check_finite=False)
        else:
            beta_c = np.asarray(beta, dtype=float) - self.beta_offset
        w = f.cd[:, p] - f.cd[:, :p] @ beta_c
        n0 = self.k0 * self.q0
        parts = []
        if f.L_rest is not None:
            uR = scipy.linalg.solve_triangular(f.L_rest.T, w[n0:], lower=False, check_finite=False)
            Tu = (f.T @ uR if f.T is not None
                  else self.coupling.matvec(f.state, uR, theta, self._lmul_rest))
            w0 = w[:n0] - Tu
            parts.append(uR)
        else:
            w0 = w[:n0]
        u0 = solve_upper_batched(f.L0, w0.reshape(self.k0, self.q0, 1)).ravel()
        u = np.concatenate([u0, *parts])
        return PLSSolution(theta, beta_c + self.beta_offset, u, float(f.r2), float(f.logdet),
                           float(f.logdet_x), f.L0, f.T, f.L_rest, f.LX)
