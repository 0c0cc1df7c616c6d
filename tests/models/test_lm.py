"""LinearModel: Wald intervals (R's confint.lm), checked against statsmodels' OLS."""

from __future__ import annotations

import numpy as np
import pytest

import lmmlib

sm = pytest.importorskip("statsmodels.api")


def test_confint_is_confint_lm(pig):
    m = lmmlib.lm("weight ~ weeks", pig)
    ols = sm.OLS(m.response, m.model_matrix).fit()
    for level in (0.95, 0.8):
        ci = m.confint(level=level)
        # β̂ ± t_{n−p; (1+level)/2} SE: statsmodels' conf_int and R's confint.lm
        np.testing.assert_allclose(ci.to_numpy(), ols.conf_int(alpha=1 - level), rtol=1e-10)
    assert list(m.confint(level=0.8).columns) == ["10 %", "90 %"]
    with pytest.raises(lmmlib.ArgumentError, match="method"):
        m.confint(method="profile")
