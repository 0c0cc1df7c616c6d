"""The textbook formulas (dense V, GLS, BLUP = G Z' V^-1 (y - X beta)) equal the PLS engine.

Closed forms at the fit's own θ and σ: only rounding differs, amplified by the
inversion of the dense n × n V (n = 432 and 882; cond(V) ≤ ~1e3): seen ≤ 4e-14
relative; the tolerances (1e-9 for β, 1e-8 for SEs, 1e-7 for the BLUPs, whose
formula subtracts nearly equal terms) are far above that and far below any real
difference, such as a REML/ML mix-up (1e-3 relative).
"""

from __future__ import annotations

import numpy as np
import pytest

import lmmlib
from lmmlib.errors import DataError


@pytest.mark.parametrize(
    ("data", "formula"),
    [("pig", "weight ~ weeks + (1 | id)"), ("nepal", "arm ~ age + (1 | id)"),
     ("nepal", "arm ~ ageC + (ageC | id)")],
)
def test_gls_and_blup_equal_engine(request, data, formula):
    df = request.getfixturevalue(data)
    m = lmmlib.lmer(formula, df)
    V = lmmlib.marginal_covariance(m)
    fit = lmmlib.gls(m.design.X, m.design.y, V)
    np.testing.assert_allclose(fit.beta, m.fixef, rtol=1e-9)
    np.testing.assert_allclose(fit.se, m.se, rtol=1e-8)
    blups = lmmlib.blup(m)
    ref = m.ranef(condvar=False)
    assert blups[["grpvar", "term", "grp"]].equals(ref[["grpvar", "term", "grp"]])
    np.testing.assert_allclose(blups["condval"], ref["condval"], rtol=1e-7, atol=1e-10)


def test_compound_symmetry_for_random_intercept(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    V = lmmlib.marginal_covariance(m)
    tau2, sigma2 = m.varcorr["vcov"]
    # one pig's 9x9 block: tau^2 + sigma^2 on the diagonal, tau^2 off it (closed form,
    # numpy's default rtol 1e-7); zero across pigs, exactly (no term contributes there)
    np.testing.assert_allclose(np.diag(V)[:9], tau2 + sigma2)
    np.testing.assert_allclose(V[0, 1:9], tau2)
    assert np.all(V[:9, 9:] == 0)


def test_gls_checks_shapes():
    with pytest.raises(DataError, match="shapes"):
        lmmlib.gls(np.ones((3, 1)), np.ones(3), np.eye(4))
    with pytest.raises(DataError, match="positive definite"):
        lmmlib.gls(np.ones((2, 1)), np.ones(2), -np.eye(2))
