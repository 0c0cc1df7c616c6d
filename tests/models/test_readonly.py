"""Fitted models are read-only: writing into what an accessor returns changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import three_fits

import lmmlib
from lmmlib.models.readonly import cached_copy


@pytest.fixture(scope="module")
def fits():
    return three_fits()


ACCESSORS = ["fixef", "vcov", "se", "fitted", "residuals", "theta", "varcorr", "ngroups"]


def _values(m, name):
    v = getattr(m, name, None)
    if v is None or callable(v):
        return None
    return np.array(v, dtype=float) if not isinstance(v, pd.DataFrame) else \
        v.select_dtypes("number").to_numpy(dtype=float, copy=True)


CLASSES = {"lmer": lmmlib.LinearMixedModel, "lm": lmmlib.LinearModel,
           "glmer": lmmlib.GeneralizedLinearMixedModel}
CASES = [(kind, name) for kind, cls in CLASSES.items() for name in ACCESSORS
         if isinstance(getattr(cls, name, None), property | cached_copy)]


def test_every_class_has_the_common_accessors():
    # the quantities every fitted model offers (the rest are mixed-model ones)
    for kind in CLASSES:
        assert {(k, n) for k, n in CASES if k == kind} >= {
            (kind, n) for n in ("fixef", "vcov", "se", "fitted", "residuals")}, kind


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_writing_into_an_accessor_does_not_change_the_model(fits, kind, name):
    m = fits[kind]
    before = _values(m, name)
    got = getattr(m, name)
    if isinstance(got, pd.DataFrame):
        for c in got.select_dtypes("number").columns:
            got[c] = -1.0e6
    elif isinstance(got, pd.Series):
        got.iloc[:] = -1.0e6
    else:
        np.asarray(got)[...] = -1.0e6
    np.testing.assert_array_equal(_values(m, name), before)  # bit-identical: nothing changed
    if name == "fitted" and kind != "glmer":  # residuals still add up (rounding only)
        np.testing.assert_allclose(m.residuals + m.fitted, m.design.y, rtol=1e-12, atol=1e-12)


def test_cached_copy_computes_once():
    calls = []

    class Fit:
        @cached_copy
        def table(self):
            calls.append(1)
            return pd.Series([1.0, 2.0])

    f = Fit()
    table = f.table
    table.iloc[0] = 9.0
    assert f.table.tolist() == [1.0, 2.0]
    assert len(calls) == 1

