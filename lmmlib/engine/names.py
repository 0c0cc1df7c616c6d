"""Column names inside formula text: quoting, aliases for formulaic, clear errors.

R formulas refer to columns by name, with backticks around names that are not
syntactic (`` `body mass` ``); R names may contain dots (``x.1``).  formulaic
evaluates formula terms as Python, where ``x.1`` is an attribute, a space ends
a name, and names such as ``C``, ``I``, ``log`` or ``np`` are its own
functions.  So before a formula piece reaches formulaic, every column it
names is replaced by an alias that is a plain identifier (``_lmm0_``, ...), and
the frame handed to formulaic holds only those aliases.  The columns' real
names come back in the model-matrix column names.  As a side effect the
evaluation sees nothing but the data and formulaic's own transforms.

Anything in the text that is neither a column nor one of formulaic's
functions is an error here, with a hint for the R functions that formulaic
knows under another name.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from formulaic.transforms import TRANSFORMS

from ..errors import FormulaError
from .rfunctions import CONTEXT

__all__ = ["Aliased", "alias_text", "mask_quoted", "r_names", "restore_names", "strip_quotes"]

#: Names formula evaluation provides: formulaic's (``np``, ``log``, ``C``, ``poly``...),
#: R's functions of :mod:`lmmlib.engine.rfunctions` (``sqrt``, ``abs``...), constants.
# "offset" is R's offset(x) term, taken out of the fixed part by the design stage
KNOWN = frozenset(TRANSFORMS) | frozenset(CONTEXT) | {"True", "False", "None", "offset"}

#: R functions formulaic does not know by that name, with what to write instead.
R_HINTS = {
    "factor": "C({arg})",
    "as.factor": "C({arg})",
    "ordered": "C({arg})",
    "as.numeric": "the column itself (convert it in the data with pd.to_numeric)",
    "ns": "cr({arg}, df=...) (formulaic's natural cubic spline)",
    "cbind": ("lmmlib.glmer(..., 'binomial') for a cbind(successes, failures) response (or "
              "a proportion k/n with weights=n)"),
}

_TOKEN = re.compile(
    r"""(?P<quoted>`[^`]*`)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_.][A-Za-z0-9_.]*)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_ALIAS = re.compile(r"_lmm(\d+)_")


def alias_of(i: int) -> str:
    """The formulaic-safe alias of the i-th column of a model."""
    return f"_lmm{i}_"


def mask_quoted(text: str) -> str:
    """``text`` with the inside of backticks and string literals blanked out.

    Positions are kept, so splitting decisions made on the mask (at ``+``,
    ``|``, ``~``, parentheses) apply to the original text.

    Examples
    --------
    >>> mask_quoted("y ~ `a+b` + (1 | `g g`)")
    'y ~ `___` + (1 | `___`)'
    """
    out = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if m.lastgroup in ("quoted", "string"):
            tok = tok[0] + "_" * (len(tok) - 2) + tok[-1]
        out.append(tok)
    return "".join(out)


def strip_quotes(name: str) -> str:
    """A column name without its backticks and surrounding spaces."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1]
    return name


@dataclass(frozen=True)
class Aliased:
    """A formula piece rewritten for formulaic.

    Attributes
    ----------
    text : str
        The piece with every column replaced by its alias.
    columns : tuple of str
        The columns it uses, in order of first appearance.
    """

    text: str
    columns: tuple[str, ...]


def _next_char(text: str, pos: int) -> str:
    rest = text[pos:].lstrip()
    return rest[:2] if rest else ""


def _unknown(name: str, piece: str, columns: Sequence[str]) -> FormulaError:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(map(str, list(columns)[:20]))
    return FormulaError(f"unknown column {name!r} in {piece!r}{hint}; the data have: {shown}")


def _function_error(name: str, piece: str) -> FormulaError:
    if name in R_HINTS:
        return FormulaError(f"{name}() in {piece!r} is an R function formulaic does not know; "
                            f"write {R_HINTS[name].format(arg='x')} instead")
    return FormulaError(
        f"unknown function {name}() in {piece!r}; formula functions are numpy's (np.sqrt, "
        f"np.abs...) and formulaic's ({', '.join(sorted(n for n in TRANSFORMS if n != 'np'))})")


@lru_cache(maxsize=1024)
def _alias(piece: str, columns: tuple[str, ...], index: tuple[tuple[str, int], ...]) -> Aliased:
    position = dict(index)
    out: list[str] = []
    used: list[str] = []

    def use(col: str) -> str:
        if col not in used:
            used.append(col)
        return alias_of(position[col])

    for m in _TOKEN.finditer(piece):
        tok, kind = m.group(0), m.lastgroup
        if kind == "quoted":
            name = tok[1:-1]
            if name not in position:
                raise _unknown(name, piece, columns)
            out.append(use(name))
            continue
        if kind != "name":
            out.append(tok)
            continue
        if tok == ".":
            raise FormulaError(
                f"the '.' shorthand for 'all other columns' in {piece!r} can only be added "
                "as a term of its own to the fixed part, e.g. 'y ~ . + (1 | g)'; list the "
                "predictors where they are combined otherwise, e.g. 'y ~ (a + b)^2'")
        after = _next_char(piece, m.end())
        root, _, rest = tok.partition(".")
        if after.startswith("("):  # a call
            if tok in KNOWN or (rest and root in KNOWN):
                out.append(tok)
            elif rest and root in position and tok not in R_HINTS:
                out.append(use(root) + "." + rest)  # a method of a column, x.clip(0)
            else:
                raise _function_error(tok, piece)
        elif tok in position:
            out.append(use(tok))
        elif keyword.iskeyword(tok) or (after.startswith("=") and not after.startswith("==")):
            out.append(tok)  # a Python keyword or a keyword argument (degree=2)
        elif rest and root in position:
            out.append(use(root) + "." + rest)
        elif tok in KNOWN or (rest and root in KNOWN):
            out.append(tok)  # np.pi, contr.treatment
        else:
            raise _unknown(tok, piece, columns)
    return Aliased("".join(out), tuple(used))


def alias_text(piece: str, columns: Sequence[str]) -> Aliased:
    """Replace the columns named in ``piece`` by their aliases.

    Parameters
    ----------
    piece : str
        A formula piece: a right-hand side, a random-term expression or a
        response expression, with optional backtick-quoted names.
    columns : sequence of str
        The data's columns; the alias of column ``columns[i]`` is ``_lmm{i}_``.

    Returns
    -------
    Aliased

    Raises
    ------
    FormulaError
        For an unknown column or function (R functions get a hint), or the
        ``.`` shorthand.

    Examples
    --------
    >>> alias_text("log(`body mass`) + x.1:C(f)", ["x.1", "f", "body mass"]).text
    'log(_lmm2_) + _lmm0_:C(_lmm1_)'
    """
    columns = tuple(str(c) for c in columns)
    index = tuple((c, i) for i, c in enumerate(columns))
    return _alias(piece, columns, index)


def restore_names(names: Iterable[str], columns: Sequence[str]) -> tuple[str, ...]:
    """Model-matrix column names with the aliases replaced by the real column names."""
    cols = [str(c) for c in columns]
    return tuple(_ALIAS.sub(lambda m: cols[int(m.group(1))], str(n)) for n in names)


_POLY_CONTRAST = re.compile(r"C\((_lmm\d+_), contr\.poly\)\[([^\]]*)\]")
_POLY_BASIS = re.compile(r"(\bpoly\((?:[^()]|\([^()]*\))*\))\[(\d+)\]")


def wrap_ordered(text: str, ordered: Iterable[int]) -> str:
    """Give the ordered factors among the aliases R's default polynomial contrasts.

    Every bare use of the alias of an ordered factor becomes
    ``C(alias, contr.poly)``; a factor already inside ``C(...)`` keeps the
    contrasts written there.

    Examples
    --------
    >>> wrap_ordered("_lmm0_ + _lmm1_:_lmm2_ + C(_lmm1_, contr.sum)", [1])
    '_lmm0_ + C(_lmm1_, contr.poly):_lmm2_ + C(_lmm1_, contr.sum)'
    """
    wanted = {alias_of(i) for i in ordered}
    if not wanted:
        return text

    def wrap(m: re.Match) -> str:
        if m.group(0) not in wanted or re.search(r"\bC\(\s*$", text[: m.start()]):
            return m.group(0)
        return f"C({m.group(0)}, contr.poly)"

    return _ALIAS.sub(wrap, text)


def r_names(names: Iterable[str]) -> list[str]:
    """formulaic's names of polynomial columns as R names them (still aliased).

    ``C(a, contr.poly)[.L]`` → ``a.L`` and ``[^4]`` → ``a^4`` (R's ``contr.poly``
    columns; the full-rank coding of a term without intercept keeps ``a[level]``
    like formulaic's other factors); ``poly(a, 2)[1]`` → ``poly(a, 2)1``.

    Examples
    --------
    >>> r_names(["C(_lmm0_, contr.poly)[.L]", "poly(_lmm1_, 2)[2]:C(_lmm0_, contr.poly)[^4]"])
    ['_lmm0_.L', 'poly(_lmm1_, 2)2:_lmm0_^4']
    """
    def contrast(m: re.Match) -> str:
        label = m.group(2)
        return m.group(1) + (label if label[:1] in (".", "^") else f"[{label}]")

    return [_POLY_BASIS.sub(r"\1\2", _POLY_CONTRAST.sub(contrast, str(n))) for n in names]
