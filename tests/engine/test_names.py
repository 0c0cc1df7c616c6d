"""Column names in formula text: aliases for formulaic and the errors for unknown names."""

from __future__ import annotations

import pytest

from lmmlib import FormulaError
from lmmlib.engine.names import alias_text, mask_quoted, restore_names, strip_quotes

COLUMNS = ["y", "x.1", "dose (mg)", "C", "f", "np"]


@pytest.mark.parametrize(("piece", "text", "used"), [
    ("x.1 + C", "_lmm1_ + _lmm3_", ("x.1", "C")),
    ("`dose (mg)`:f", "_lmm2_:_lmm4_", ("dose (mg)", "f")),
    ("C(f, contr.treatment)", "C(_lmm4_, contr.treatment)", ("f",)),
    ("np.log(`dose (mg)`) + np", "np.log(_lmm2_) + _lmm5_", ("dose (mg)", "np")),
    ("poly(x.1, degree=2)", "poly(_lmm1_, degree=2)", ("x.1",)),
    ("I(y ** 2 - 1.5e-3)", "I(_lmm0_ ** 2 - 1.5e-3)", ("y",)),
    ("C(f, levels=['a', 'x.1'])", "C(_lmm4_, levels=['a', 'x.1'])", ("f",)),
])
def test_columns_become_aliases_and_functions_stay(piece, text, used):
    got = alias_text(piece, COLUMNS)
    assert (got.text, got.columns) == (text, used)


def test_restore_names_undoes_the_aliases():
    names = ["Intercept", "C(_lmm4_)[T.b]", "_lmm1_:_lmm2_", "np.log(_lmm2_ + 1)"]
    assert restore_names(names, COLUMNS) == (
        "Intercept", "C(f)[T.b]", "x.1:dose (mg)", "np.log(dose (mg) + 1)")


@pytest.mark.parametrize(("piece", "message"), [
    ("factor(x.1)", r"factor\(\) .* R function .* C\(x\)"),
    ("ns(x.1, 3)", r"cr\(x, df=\.\.\.\)"),
    ("mystery(x.1)", r"unknown function mystery\(\)"),
    ("x1", r"unknown column 'x1'.*did you mean 'x.1'"),
    ("`dose`", r"unknown column 'dose'"),
    (".", r"'\.' shorthand"),
])
def test_unknown_names_are_errors_with_a_hint(piece, message):
    with pytest.raises(FormulaError, match=message):
        alias_text(piece, COLUMNS)


def test_masking_keeps_positions():
    text = "y ~ `a+b|c` + \"x~y\" + (1 | `g g`)"
    masked = mask_quoted(text)
    assert len(masked) == len(text)
    assert masked.count("+") == 2 and "|" not in masked.replace("(1 |", "")
    assert strip_quotes(" `g g` ") == "g g" and strip_quotes("g") == "g"
