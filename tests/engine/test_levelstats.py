"""The single-factor criterion from per-level sufficient statistics.

Reference: the blocked factorisation of the same problem (``PLS._factor``:
Cholesky factors of every level's block), which the lme4 fixtures check in
test_pls.py.  Both are the same algebra in a different order, so they agree to
rounding of sums over the levels: 1e-11 relative for criteria of size 10²–10⁴
(sums of ~10⁵ terms each exact to ~1e-16 relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmlib.engine.design import build_design
from lmmlib.engine.levelstats import LevelStats
from lmmlib.engine.pls import PLS

RTOL = 1e-11  # rounding of two summation orders (see the module notes)


def _data(kind: str, rng: np.random.Generator) -> tuple[str, pd.DataFrame]:
    if kind == "balanced_slope":  # every subject at the same days: one pattern
        subj = np.repeat(np.arange(300), 6)
        days = np.tile(np.arange(6.0), 300)
        y = 3 + 0.5 * days + rng.normal(0, 1, 300)[subj] + rng.normal(0, .3, 300)[subj] * days
        return "y ~ days + (days | subj)", pd.DataFrame(
            {"y": y + rng.normal(size=y.size), "days": days, "subj": subj})
    g = rng.integers(0, 200, 1500)
    x = rng.normal(size=1500)
    y = 1 + x + rng.normal(0, 1, 200)[g] + rng.normal(size=1500)
    formula = {"intercept": "y ~ x + (1 | g)", "slope": "y ~ x + (x | g)",
               "slope_only": "y ~ x + (0 + x | g)"}[kind]
    return formula, pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize("kind", ["balanced_slope", "intercept", "slope", "slope_only"])
def test_criterion_equals_the_blocked_factorisation(kind):
    rng = np.random.default_rng(11)
    formula, data = _data(kind, rng)
    pls = PLS(build_design(formula, data))
    q = pls.blocks[0].q
    for _ in range(5):
        theta = rng.uniform(0.05, 3.0, q * (q + 1) // 2)
        if q == 2:
            theta[1] -= 1.5  # the correlation parameter may be negative
        for reml in (True, False):
            f = pls._factor(theta, full=False, want_l0=False)
            blocked = pls._criterion(f.r2, f.logdet, f.logdet_x, reml)
            assert pls.objective(theta, reml) == pytest.approx(blocked, rel=RTOL)
    # the objective took the sufficient-statistics route (removing it fails here)
    assert isinstance(pls._level_stats, LevelStats)


def test_balanced_levels_are_merged_into_one_pattern():
    formula, data = _data("balanced_slope", np.random.default_rng(2))
    pls = PLS(build_design(formula, data))
    pls.objective(np.array([1.0, 0.1, 0.5]))
    assert pls._level_stats.nlevels == 1  # 300 subjects, one Z_i'Z_i


def test_group_sizes_are_merged_for_a_random_intercept():
    ztz = np.array([[[2.0]], [[3.0]]] * 8)  # 16 levels, two distinct sizes
    ztxy = np.random.default_rng(0).normal(size=(16, 1, 3))
    merged = LevelStats(ztz, ztxy)
    assert merged.nlevels == 2
    lam = np.array([[0.7]])
    C, logdet = merged.schur_terms(lam)
    # closed form: Σ_i λ²/(λ²m_i + 1) v_i v_iᵀ and Σ_i log(λ²m_i + 1)
    g = 0.49 / (0.49 * ztz[:, 0, 0] + 1.0)
    v = ztxy[:, 0, :]
    np.testing.assert_allclose(C, (g[:, None, None] * v[:, :, None] * v[:, None, :]).sum(0),
                               rtol=1e-13)
    assert logdet == pytest.approx(np.log(0.49 * ztz[:, 0, 0] + 1.0).sum(), rel=1e-13)


def test_larger_blocks_are_refused():
    with pytest.raises(ValueError, match="2 x 2"):
        LevelStats(np.zeros((4, 3, 3)), np.zeros((4, 3, 2)))
