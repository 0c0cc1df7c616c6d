"""Quick routes through the design set-up give what the general routes give.

Each shortcut is checked against the general computation it replaces
(pandas' sorted factorize, eager level labels, the QR rank test, least
squares), on data built to reach both the shortcut and its fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_OPTIMUM_SE

import lmmlib
from lmmlib.engine import design as design_module
from lmmlib.engine.codes import distinct_codes
from lmmlib.engine.design import _clearly_independent, _independent_columns, build_design
from lmmlib.engine.observations import offset_beta as _offset_beta
from lmmlib.engine.reterms import PendingLabels, group_codes


@pytest.mark.parametrize("values", [np.array([5, 3, 3, 9, 5, 4]), np.array([-2, 7, -2, 0]),
                                    np.arange(1000)[::-1] % 37])
def test_dense_integer_codes_equal_sorted_factorize(values):
    levels, codes = distinct_codes(values)
    ref_codes, ref_levels = pd.factorize(pd.Series(values), sort=True)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(levels, ref_levels)


def test_sparse_integer_ids_take_the_general_route():
    assert distinct_codes(np.array([1, 10**9])) is None


def test_integer_levels_get_their_labels_when_first_read():
    frame = pd.DataFrame({"g": [10, 2, 2, 33]})
    codes, labels = group_codes(frame, ("g",))
    assert isinstance(labels, PendingLabels)
    assert labels.index().tolist() == ["2", "10", "33"] and labels.index().name == "g"
    np.testing.assert_array_equal(codes, [1, 0, 0, 2])


def test_lazy_labels_reach_ranef_as_eager_ones_would():
    rng = np.random.default_rng(4)
    g = rng.integers(0, 30, 300)
    data = pd.DataFrame({"y": rng.normal(size=300) + g * 0.1, "g": g})
    as_text = lmmlib.lmer("y ~ 1 + (1 | g)", data.assign(g=data["g"].astype(str)))
    as_int = lmmlib.lmer("y ~ 1 + (1 | g)", data)
    # string levels sort as text ("10" < "2"), integer levels as numbers: same labels
    a = as_int.ranef().set_index("grp").sort_index()
    b = as_text.ranef().set_index("grp").sort_index()
    assert a.index.tolist() == b.index.tolist()
    # one optimum reached from two level orders: the conftest rule SAME_OPTIMUM_SE,
    # in conditional standard deviations of each BLUP
    np.testing.assert_array_less(np.abs(a["condval"] - b["condval"]).to_numpy(),
                                 SAME_OPTIMUM_SE * b["condsd"].to_numpy())


def test_rank_shortcut_agrees_with_qr():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(200), rng.normal(size=200), rng.normal(size=200) * 1e6])
    assert _clearly_independent(X)
    dependent = np.column_stack([X, X[:, 1] * 2 + X[:, 2] * 1e-6])
    assert not _clearly_independent(dependent)
    np.testing.assert_array_equal(_independent_columns(dependent), [True, True, True, False])


def test_rank_deficient_design_still_drops_the_column(monkeypatch):
    calls = []
    real = design_module._clearly_independent
    monkeypatch.setattr(design_module, "_clearly_independent",
                        lambda X: calls.append(1) or real(X))
    data = pd.DataFrame({"y": np.arange(8.0), "a": np.arange(8.0), "g": [0, 1] * 4})
    with pytest.warns(lmmlib.DataWarning, match="dropping 1"):
        d = build_design("y ~ a + I(2 * a) + (1 | g)", data)
    assert d.xnames == ("(Intercept)", "a") and calls


def test_offset_beta_is_least_squares_for_badly_scaled_columns():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(500), rng.normal(size=500) * 1e6, rng.normal(size=500) * 1e-6])
    y = X @ [100.0, 2e-6, 3e5] + rng.normal(size=500)
    b = _offset_beta(X, X.T @ X, y)
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    # relative to each coefficient's scale: the refined normal equations are exact
    # to about cond(scaled X)² · eps ≈ 1e-15 here
    np.testing.assert_allclose(b, ref, rtol=1e-9)


@pytest.mark.parametrize("piece", ["x + z", "1 + x", "0 + x + z", "x - 1", "1", "`a b` + x"])
def test_plain_numeric_pieces_skip_formulaic_with_the_same_matrix(piece, monkeypatch):
    from lmmlib.engine import terms

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=6), "z": np.arange(6), "g": list("aabbcc"),
                          "a b": rng.normal(size=6)})
    fast, spec = terms.piece_matrix(piece, frame, "the example")
    assert isinstance(spec.model_spec, terms._SpecOnDemand)  # the shortcut was taken
    monkeypatch.setattr(terms, "simple_columns", lambda piece, frame: None)
    general, ref = terms.piece_matrix(piece, frame, "the example")
    np.testing.assert_array_equal(fast, general)
    assert spec.names == ref.names and spec.used == ref.used
    # the spec made on demand rebuilds the same columns for new rows
    np.testing.assert_array_equal(spec.rows(frame.iloc[2:]), ref.rows(frame.iloc[2:]))


def test_factor_pieces_take_formulaic():
    from lmmlib.engine import terms

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": list("abab")})
    assert terms.simple_columns("x + g", frame) is None
    assert terms.simple_columns("x + x", frame) is None  # formulaic keeps one column
