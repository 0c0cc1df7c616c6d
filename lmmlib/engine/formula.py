"""Stage 1: split an lme4-style formula into its fixed part and random terms.

The fixed part is handed, as a string, to :mod:`formulaic`; this module only
finds the parenthesised bar terms ``(expr | group)`` and expands lme4's
shorthands:

* ``(x || g)``   becomes ``(1 | g) + (0 + x | g)`` (uncorrelated effects);
* ``(1 | a/b)``  becomes ``(1 | a) + (1 | b:a)`` (nested factors, named as lme4 does);
* ``(1 | a:b)``  is one term whose grouping factor is the interaction of a and b.

R's ``I(x^2)`` is accepted and rewritten to Python's ``I(x**2)``.  R's ``.``
(all other columns) is expanded by :func:`expand_dot` once the data's columns
are known.  Names in
backticks (`` `body mass` ``, `` `x.1` ``) may hold any character; the splitting
below ignores what is inside backticks and string literals.

Formulas are code: formulaic evaluates their terms as Python, as R evaluates
formulas.  lmmlib evaluates nothing of a formula itself; never pass formulas
from untrusted input.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from ..errors import FormulaError
from .names import alias_text, mask_quoted, strip_quotes

__all__ = ["ParsedFormula", "RandomTerm", "expand_dot", "parse_formula", "split_top_level"]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``.

    Attributes
    ----------
    expr : str
        Right-hand side of the bar, a formulaic formula such as ``"1 + x"``.
    factors : tuple of str
        Columns whose interaction defines the grouping factor.
    """

    expr: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """Name of the grouping factor as lme4 prints it (``"a:b"``)."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into response, fixed part and random terms."""

    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    text: str

    @property
    def is_mixed(self) -> bool:
        """Whether the formula has at least one random term."""
        return len(self.random) > 0


def _r_powers_to_python(text: str) -> str:
    """Rewrite ``^`` inside ``I(...)`` to ``**`` (R's power inside the identity)."""
    out, i = [], 0
    while i < len(text):
        m = re.compile(r"\bI\(").search(text, i)
        if m is None:
            out.append(text[i:])
            break
        out.append(text[i : m.end()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        out.append(text[m.end() : j].replace("^", "**"))
        i = j
    return "".join(out)


def split_top_level(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` where it is not inside parentheses or quotes."""
    parts, depth, start = [], 0, 0
    masked = mask_quoted(text)
    i = 0
    while i < len(text):
        ch = masked[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced parentheses in formula part {text!r}")
        elif depth == 0 and masked.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    if depth != 0:
        raise FormulaError(f"unbalanced parentheses in formula part {text!r}")
    parts.append(text[start:])
    return parts


def signed_terms(rhs: str) -> list[tuple[str, str]]:
    """Split a right-hand side into (sign, term) pairs at top-level + and -."""
    terms, depth, start, sign = [], 0, 0, "+"
    for i, ch in enumerate(mask_quoted(rhs)):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and ch in "+-":
            # a sign directly after an operator or at the start is unary
            prev = rhs[start:i].strip()
            if prev:
                terms.append((sign, prev))
            sign, start = ch, i + 1
    last = rhs[start:].strip()
    if last:
        terms.append((sign, last))
    return terms


def _bar_term(term: str) -> tuple[str, str, bool] | None:
    """Return (expr, group, double_bar) when ``term`` is ``(expr | group)``."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    inner = term[1:-1]
    for sep, double in (("||", True), ("|", False)):
        parts = split_top_level(inner, sep)
        if len(parts) == 2:
            return parts[0].strip(), parts[1].strip(), double
        if len(parts) > 2:
            raise FormulaError(f"random term {term!r} has more than one bar")
    return None


def _group_factors(group: str, term: str) -> list[tuple[str, ...]]:
    """Expand a grouping expression: ``a`` | ``a:b`` | ``a/b`` (nested)."""
    if not group.strip():
        raise FormulaError(f"random term {term!r} has no grouping factor")
    nested = [[_factor_name(f, term) for f in split_top_level(part, ":")]
              for part in split_top_level(group, "/")]
    if len(nested) > 1:
        if any(len(names) > 1 for names in nested):
            raise FormulaError(f"random term {term!r} mixes / and : in its grouping factor")
        # lme4 names the inner factors innermost first: a/b -> a, b:a
        levels = [names[0] for names in nested]
        return [tuple(reversed(levels[: i + 1])) for i in range(len(levels))]
    return [tuple(nested[0])]


_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


def _factor_name(text: str, term: str) -> str:
    """One column of a grouping factor: a plain name or a backtick-quoted one."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return strip_quotes(text)
    if not _NAME.fullmatch(text):
        raise FormulaError(f"grouping factor {text!r} of {term!r} must be a column name "
                           "(in backticks if it is not a plain name, e.g. `my group`)")
    return text


def _squash_spaces(text: str) -> str:
    """Runs of white space become one space, except inside backticks and quotes."""
    parts = re.split(r"(`[^`]*`|'[^']*'|\"[^\"]*\")", text)
    return "".join(p if i % 2 else " ".join(p.split()) for i, p in enumerate(parts)).strip()


def _uncorrelated(expr: str, term: str) -> list[str]:
    """Split the expression of a ``||`` term into one expression per effect."""
    intercept = True
    pieces = []
    for sign, t in signed_terms(expr):
        if t == "0" or (t == "1" and sign == "-"):
            intercept = False
            continue
        if t == "1":
            continue
        if sign == "-":
            raise FormulaError(f"cannot remove {t!r} inside {term!r}")
        pieces.append(f"0 + {t}")
    return (["1"] if intercept else []) + pieces


def _random_terms(expr: str, group: str, double: bool, term: str) -> list[RandomTerm]:
    if not expr:
        raise FormulaError(f"random term {term!r} has an empty left-hand side")
    exprs = _uncorrelated(expr, term) if double else [expr]
    return [
        RandomTerm(expr=e, factors=f) for f in _group_factors(group, term) for e in exprs
    ]


_DOUBLE_OPERATOR = re.compile(r"[~+\-*/:^|(]\s*[*/:^|)]|[*/:^]\s*[+~]|[+\-*/:^~]\s*$")


def _check_operators(text: str, formula: str) -> None:
    """Refuse operator typos such as ``x +* z`` or a dangling ``+``."""
    masked = mask_quoted(text).replace("**", "^").replace("||", "|")
    m = _DOUBLE_OPERATOR.search(masked)
    if m is not None:
        near = text[max(m.start() - 6, 0): m.end() + 6].strip()
        raise FormulaError(f"formula {formula!r} has an operator without a term near "
                           f"{near!r}; check for a typo such as '+*' or a trailing '+'")


def _unparenthesised(term: str, response: str, terms: list[tuple[str, str]],
                     formula: str) -> FormulaError:
    """The error for a bar term without parentheses, showing the corrected formula."""
    fixed = [f"({t})" if t == term else t for _, t in terms]
    signs = [s for s, _ in terms]
    rhs = fixed[0] if signs[0] == "+" else f"- {fixed[0]}"
    rhs += "".join(f" {s} {t}" for s, t in zip(signs[1:], fixed[1:], strict=True))
    return FormulaError(
        f"random term {term!r} in {formula!r} needs parentheses: write '({term})', "
        f"i.e. '{response} ~ {rhs}'; without them '|' takes everything on its left "
        "(R reads 'x + 1 | g' as '(x + 1) | g', a random slope with no fixed effects)")


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _as_term(column: str) -> str:
    """A column as a formula term: backticks unless it is a plain name."""
    if _PLAIN.fullmatch(column) and not keyword.iskeyword(column):
        return column
    if "`" in column:
        raise FormulaError(f"column {column!r} contains a backtick: rename it to use '.'")
    return f"`{column}`"


def expand_dot(parsed: ParsedFormula, columns: Iterable[str]) -> ParsedFormula:
    """Replace the fixed-part term ``.`` by every column not otherwise used.

    As R's ``.`` in a model formula, ``.`` stands for the data's columns other
    than those of the response (and a column holding the response itself, as
    a model frame does for ``log(y)``); the grouping factors of the random terms are
    left out as well (lme4 would also put them in the fixed part, where they
    duplicate the random intercepts).  Columns keep the data's order.

    Parameters
    ----------
    parsed : ParsedFormula
        Output of :func:`parse_formula`.
    columns : iterable of str
        The data's columns.

    Returns
    -------
    ParsedFormula
        ``parsed`` itself when it has no ``.`` term.

    Raises
    ------
    FormulaError
        When ``.`` is subtracted, or no column is left for it (other uses of
        ``.``, inside a term or a random term, are refused when the pieces are
        built).

    Examples
    --------
    >>> p = expand_dot(parse_formula("y ~ . + (1 | g)"), ["y", "x", "body mass", "g"])
    >>> p.fixed
    'x + `body mass`'
    """
    terms = signed_terms(parsed.fixed)
    if not any(t == "." for _, t in terms):
        return parsed
    columns = [str(c) for c in columns]
    taken = set(alias_text(parsed.response, columns).columns) | {strip_quotes(parsed.response)}
    taken |= {f for t in parsed.random for f in t.factors}
    rest = [c for c in columns if c not in taken]
    if any(t == "." and s == "-" for s, t in terms):
        raise FormulaError(f"'- .' in {parsed.text!r} removes every column; list the "
                           "predictors instead")
    if not rest:
        raise FormulaError(f"'.' in {parsed.text!r} stands for no column: the data have no "
                           "columns besides the response and the grouping factors")
    dot = " + ".join(_as_term(c) for c in rest)
    fixed = " + ".join(dot if t == "." else (t if s == "+" else f"- {t}") for s, t in terms)
    fixed = fixed.replace("+ -", "-")
    return replace(parsed, fixed=fixed)


@lru_cache(maxsize=256)
def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4-style model formula.

    Parameters
    ----------
    formula : str
        For example ``"y ~ x + (1 + x | g) + (1 | h)"``.

    Returns
    -------
    ParsedFormula
        Response name, fixed-effects formula (a formulaic right-hand side) and
        the expanded random-effects terms.

    Raises
    ------
    FormulaError
        If the formula has no ``~``, no response, or malformed bar terms.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string, got {type(formula).__name__}")
    text = _squash_spaces(_r_powers_to_python(formula))
    _check_operators(text, formula)
    sides = split_top_level(text, "~")
    if len(sides) != 2 or not sides[0].strip():
        raise FormulaError(f"formula {formula!r} must look like 'response ~ terms'")
    response, rhs = sides[0].strip(), sides[1].strip()
    if not rhs:
        raise FormulaError(f"formula {formula!r} has an empty right-hand side")
    fixed: list[str] = []
    random: list[RandomTerm] = []
    terms = signed_terms(rhs)
    for sign, term in terms:
        bar = _bar_term(term)
        if bar is None and len(split_top_level(term, "|")) > 1:
            raise _unparenthesised(term, response, terms, formula)
        if bar is None:
            fixed.append(term if sign == "+" else f"- {term}")
        elif sign == "-":
            raise FormulaError(f"random term {term!r} cannot be subtracted")
        else:
            random.extend(_random_terms(*bar, term))
    fixed_text = " + ".join(fixed).replace("+ -", "-") or "1"
    if fixed_text.startswith("- "):
        fixed_text = "1 " + fixed_text
    return ParsedFormula(response, fixed_text, tuple(random), formula)
