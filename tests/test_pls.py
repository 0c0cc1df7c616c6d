"""The profiled criterion itself, evaluated at lme4's own theta (fixture values)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import fitted, fixture_names, lme4_fixture

from lmmlib.pls import PLS, batched_cholesky

LMER = fixture_names("lmer")


@pytest.mark.parametrize("name", LMER)
def test_criterion_at_lme4_theta_equals_lme4_objective(name):
    # independent of any optimiser: same theta in, same number out
    fx, m = lme4_fixture(name), fitted(name)
    value = m.pls.objective(np.asarray(fx["theta"], float), reml=fx["reml"])
    assert value == pytest.approx(fx["objective"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", ["sleepstudy_reml", "penicillin", "pastes_nested", "pig_reml"])
def test_pls_pieces_match_lme4_devcomp(name):
    fx, m = lme4_fixture(name), fitted(name)
    sol = m.pls.solve(np.asarray(fx["theta"], float))
    dc = fx["devcomp"]
    assert sol.logdet_theta == pytest.approx(dc["ldL2"], rel=1e-9)
    assert sol.logdet_x == pytest.approx(dc["ldRX2"], rel=1e-9, abs=1e-9)
    assert sol.r2 == pytest.approx(dc["pwrss"], rel=1e-9)
    assert float(sol.u @ sol.u) == pytest.approx(dc["ussq"], rel=1e-7)


def test_no_dense_n_by_n_in_fitting_path():
    m = fitted("disks_full")  # 7323 observations, 520 disks crossed with 205 plots
    n = m.nobs
    arrays = [v for v in vars(m.pls).values() if isinstance(v, np.ndarray)]
    assert max(a.size for a in arrays) < n * 100
    assert all(n not in a.shape[:1] or a.ndim == 1 or a.shape[1] < 100 for a in arrays)


def test_batched_cholesky_matches_numpy():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(50, 3, 3))
    A = B @ np.swapaxes(B, 1, 2) + np.eye(3)
    np.testing.assert_allclose(batched_cholesky(A), np.linalg.cholesky(A), rtol=1e-12)


def test_refit_with_new_response_reuses_design(pig):
    m = fitted("pig_reml")
    shifted = PLS(m.design, y=m.design.y + 100.0)
    # adding a constant moves only the intercept, the criterion is unchanged
    assert shifted.objective(m.theta) == pytest.approx(m.objective, rel=1e-12)
    assert shifted.solve(m.theta).beta[0] == pytest.approx(m.fixef.iloc[0] + 100.0)
