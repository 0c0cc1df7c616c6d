"""Parsing of lme4-style formulas (expected expansions from lme4's documentation)."""

from __future__ import annotations

import pytest

from lmmlib.engine.formula import RandomTerm, parse_formula
from lmmlib.errors import FormulaError


def _terms(formula):
    return [(t.expr, t.group) for t in parse_formula(formula).random]


def test_fixed_and_random_parts_are_split():
    p = parse_formula("y ~ x + z + (1 | g)")
    assert (p.response, p.fixed) == ("y", "x + z")
    assert _terms("y ~ x + z + (1 | g)") == [("1", "g")]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("y ~ x + (x | g)", [("x", "g")]),
        ("y ~ x + (1 + x | g)", [("1 + x", "g")]),
        ("y ~ x + (0 + x | g)", [("0 + x", "g")]),
        ("y ~ x + (x || g)", [("1", "g"), ("0 + x", "g")]),
        ("y ~ x + (0 + x || g)", [("0 + x", "g")]),
        ("y ~ (1 | a) + (1 | b)", [("1", "a"), ("1", "b")]),
        ("y ~ (1 | a/b)", [("1", "a"), ("1", "b:a")]),
        ("y ~ (1 | a:b)", [("1", "a:b")]),
    ],
)
def test_random_terms_expand_like_lme4(formula, expected):
    assert _terms(formula) == expected


def test_r_power_inside_identity_becomes_python_power():
    assert parse_formula("y ~ x + I(x^2) + (1|g)").fixed == "x + I(x**2)"


def test_intercept_removal_is_kept_in_fixed_part():
    assert parse_formula("y ~ 0 + x + (1|g)").fixed == "0 + x"
    assert parse_formula("y ~ x - 1 + (1|g)").fixed == "x - 1"
    assert parse_formula("y ~ (1|g)").fixed == "1"


def test_random_term_string_form():
    assert str(RandomTerm("1", ("a", "b"))) == "(1 | a:b)"


@pytest.mark.parametrize("bad", ["y", "~ x", "y ~ ", "y ~ (1 | g", "y ~ x + (1 | )",
                                 "y ~ x - (1 | g)", "y ~ (1 | a | b)"])
def test_malformed_formulas_raise_formula_error(bad):
    with pytest.raises(FormulaError):
        parse_formula(bad)
