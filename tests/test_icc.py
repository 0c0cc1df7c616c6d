"""Intraclass correlation: tau^2 / (tau^2 + sigma^2) from the fitted components."""

from __future__ import annotations

import pytest

import lmmlib


def test_pig_icc(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    # course values (seed 001): 15.1418 / (15.1418 + 4.3947) = 0.775
    assert lmmlib.icc(m) == pytest.approx(15.1418 / (15.1418 + 4.3947), abs=1e-5)


def test_icc_of_crossed_intercepts_is_per_factor():
    from conftest import fitted

    m = fitted("penicillin")
    shares = lmmlib.icc(m)
    vc = m.varcorr.set_index("group")["vcov"]
    assert list(shares.index) == ["plate", "sample"]
    assert shares["plate"] == pytest.approx(vc["plate"] / vc.sum())


def test_icc_refuses_random_slopes(nepal):
    m = lmmlib.lmer("arm ~ ageC + (ageC | id)", nepal)
    with pytest.raises(lmmlib.LmmlibError, match="random-intercept"):
        lmmlib.icc(m)
