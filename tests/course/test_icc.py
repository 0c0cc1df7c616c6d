"""Intraclass correlation: tau^2 / (tau^2 + sigma^2) from the fitted components."""

from __future__ import annotations

import pytest
from conftest import optimum_spread

import lmmlib


def test_pig_icc(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    # course values (seed 001): 15.1418 / (15.1418 + 4.3947) = 0.775.  Tolerance: the
    # two variances printed to 4 decimals (±5e-5) and lmmlib's spread of each
    # (optimum_spread), propagated through icc = τ²/(τ² + σ²): ∂icc/∂τ² = σ²/s², ∂icc/∂σ² = −τ²/s²
    tau2, sigma2 = 15.1418, 4.3947
    s2 = (tau2 + sigma2) ** 2
    tol = (sigma2 * (5e-5 + optimum_spread("pig_reml", "vcov", 0))
           + tau2 * (5e-5 + optimum_spread("pig_reml", "vcov", 1))) / s2
    assert lmmlib.icc(m) == pytest.approx(tau2 / (tau2 + sigma2), abs=tol)


def test_icc_of_crossed_intercepts_is_per_factor():
    from conftest import fitted, lme4_fixture

    m = fitted("penicillin")
    shares = lmmlib.icc(m)
    assert list(shares.index) == ["plate", "sample"]
    # each factor's share of the total variance from lme4's variances (fixture penicillin:
    # plate 0.7169, sample 3.7311, residual 0.3024).  These come from lme4's default fit,
    # which stops short of the optimum of this crossed model (its θ is 3e-5 relative off
    # its own tight refit, tests/reference/README.md); the shares moved 4.9e-5: 3e-4
    # allows six times that, while a wrong denominator (no residual) is off by 6 %
    vc = {row["group"]: row["vcov"] for row in lme4_fixture("penicillin")["varcorr"]}
    total = sum(vc.values())
    assert shares["plate"] == pytest.approx(vc["plate"] / total, rel=3e-4)
    assert shares["sample"] == pytest.approx(vc["sample"] / total, rel=3e-4)


def test_icc_refuses_random_slopes(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    with pytest.raises(lmmlib.LmmlibError, match="random-intercept"):
        lmmlib.icc(m)
