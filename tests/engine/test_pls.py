"""The profiled criterion itself, evaluated at lme4's own theta (fixture values).

No optimiser is involved: the same function at the same θ, computed by lme4 (R,
reference BLAS) and by lmmlib.  The values differ by rounding only, amplified by
the conditioning of the solves: seen ≤ 1e-14 relative (4e-11 absolute for disks), on
every BLAS kernel; CLOSED_FORM_RTOL leaves a wide margin.  lme4's θ is stored
to 15 digits, which moves the criterion by less than 1e-13.  A different
criterion (REML vs ML, a missing log-determinant) is off by O(1).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAME_OPTIMUM, fitted, fixture_names, lme4_fixture

from lmmlib.engine.pls import PLS

LMER = fixture_names("lmer")
CLOSED_FORM_RTOL = 1e-9


@pytest.mark.parametrize("name", LMER)
def test_criterion_at_lme4_theta_equals_lme4_objective(name):
    # independent of any optimiser: same theta in, same number out
    fx, m = lme4_fixture(name), fitted(name)
    value = m.pls.objective(np.asarray(fx["theta"], float), reml=fx["reml"])
    assert value == pytest.approx(fx["objective"], rel=CLOSED_FORM_RTOL, abs=1e-9)


@pytest.mark.parametrize("name", ["sleepstudy_reml", "penicillin", "pastes_nested", "pig_reml"])
def test_pls_pieces_match_lme4_devcomp(name):
    fx, m = lme4_fixture(name), fitted(name)
    sol = m.pls.solve(np.asarray(fx["theta"], float))
    dc = fx["devcomp"]
    assert sol.logdet_theta == pytest.approx(dc["ldL2"], rel=CLOSED_FORM_RTOL)
    # log|R_X|² can be near 0 (pastes: intercept only), hence the absolute floor
    assert sol.logdet_x == pytest.approx(dc["ldRX2"], rel=CLOSED_FORM_RTOL, abs=1e-9)
    assert sol.r2 == pytest.approx(dc["pwrss"], rel=CLOSED_FORM_RTOL)
    # ‖u‖² is the small difference of larger terms in lme4's update (pwrss minus the
    # weighted residual sum of squares): relative 1e-7 (seen 5e-15)
    assert float(sol.u @ sol.u) == pytest.approx(dc["ussq"], rel=1e-7)


def test_no_dense_n_by_n_in_fitting_path():
    m = fitted("disks_full")  # 7323 observations, 520 disks crossed with 205 plots
    n = m.nobs
    arrays = [v for v in vars(m.pls).values() if isinstance(v, np.ndarray)]
    assert max(a.size for a in arrays) < n * 100
    assert all(n not in a.shape[:1] or a.ndim == 1 or a.shape[1] < 100 for a in arrays)


def test_refit_with_new_response_reuses_design(pig):
    m = fitted("pig_reml")
    shifted = PLS(m.design, y=m.design.y + 100.0)
    # adding a constant moves only the intercept, the criterion is unchanged: closed
    # form at the same θ, rounding of y + 100 only (seen 5e-16 relative)
    assert shifted.objective(m.theta) == pytest.approx(m.objective, rel=1e-10)
    # (pytest's default rel 1e-6 for the shifted intercept; seen 5e-16)
    assert shifted.solve(m.theta).beta[0] == pytest.approx(m.fixef.iloc[0] + 100.0)


def test_crossed_scalar_factors_take_the_sparse_schur_path(monkeypatch):
    # penicillin (1|plate) + (1|sample): Z_R'Z_R is diagonal, so the Schur complement of
    # the remaining factor is written from the coupling's nonzeros only
    calls = []
    original = PLS._rest_matrix_sparse

    def spy(self, state, scales, scratch):
        calls.append(self.n_rest)
        return original(self, state, scales, scratch)

    monkeypatch.setattr(PLS, "_rest_matrix_sparse", spy)
    m = fitted("penicillin")
    pls = PLS(m.design)
    value = pls.objective(m.theta, m.reml)
    assert calls and calls[-1] == 6  # the 6 levels of sample beyond the 24 plates
    # and it is the criterion: lme4's tight optimum (fixture penicillin) at SAME_OPTIMUM
    assert value == pytest.approx(lme4_fixture("penicillin")["objective_tight"],
                                  **SAME_OPTIMUM)
