"""theta <-> variance components conversions (closed forms)."""

from __future__ import annotations

import numpy as np
from conftest import fitted

from lmmlib.engine.varcomp import term_covariances, term_lambda, theta_from_covariances


def test_theta_is_the_column_major_lower_triangle():
    m = fitted("sleepstudy_reml")
    lam = term_lambda(m.theta, m.design.reterms[0])
    # the same numbers placed in a matrix: exact
    np.testing.assert_array_equal(lam, [[m.theta[0], 0], [m.theta[1], m.theta[2]]])


def test_round_trip_between_theta_and_covariances():
    m = fitted("sleepstudy_reml")
    covs = term_covariances(m.theta, m.sigma, m.design.reterms)
    # closed form there and back (a product, then LAPACK's Cholesky of a 2x2 with
    # condition ~20): rounding only; 1e-10 relative
    np.testing.assert_allclose(theta_from_covariances(covs, m.sigma), m.theta, rtol=1e-10)
    # the SDs and the correlation by hand from Σ = σ²ΛΛ' (closed form, 2×2):
    # sd_1 = σ θ_1, sd_2 = σ √(θ_2² + θ_3²), ρ = θ_2 / √(θ_2² + θ_3²); rounding only
    t1, t2, t3 = m.theta
    sd = m.sigma * np.array([t1, np.hypot(t2, t3)])
    np.testing.assert_allclose(np.sqrt(np.diag(covs[0])), sd, rtol=1e-12)
    vc = m.varcorr
    np.testing.assert_allclose(vc["sdcor"].iloc[:2], sd, rtol=1e-12)
    np.testing.assert_allclose(vc["sdcor"].iloc[2], t2 / np.hypot(t2, t3), rtol=1e-12)
