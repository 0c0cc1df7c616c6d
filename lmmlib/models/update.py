"""``update``: refit a model with a changed formula, data or REML flag (R's ``update``).

The formula may use R's dot notation: on the left ``.`` is the old response, on
the right ``.`` is the old right-hand side, random terms included, and terms
are added with ``+`` and removed with ``-``, as R's ``update.formula`` does
(``a*b`` on the old side counts as its terms ``a + b + a:b``; ``- 1`` removes
the intercept).  Without ``data`` the refit uses the model frame, which holds
only the columns of the old formula and its complete rows: a new formula that
needs another column, or rows that had missing values in a column being
dropped, needs ``data=``.
"""

from __future__ import annotations

import inspect
import re
import warnings
from itertools import combinations
from typing import Any

from ..checks import as_bool
from ..errors import ArgumentError, FormulaError
from ..kinds import GeneralizedMixedFit, LinearFit, LinearMixedFit

__all__ = ["update", "update_formula"]

#: A lone ``.`` (not part of a name or number): the old response.
_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


def _split_top(text: str, seps: str) -> list[tuple[str, str]]:
    """Split at top-level separators (not inside parentheses or backticks): (sep, piece)."""
    out, depth, tick, start, sign = [], 0, False, 0, "+"
    for i, ch in enumerate(text):
        if ch == "`":
            tick = not tick
        elif tick:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in seps and depth == 0:
            out.append((sign, text[start:i].strip()))
            sign, start = ch, i + 1
    out.append((sign, text[start:].strip()))
    return out


def _sides(formula: str) -> tuple[str, str]:
    parts = _split_top(formula, "~")
    if len(parts) != 2:
        raise FormulaError(f"formula {formula!r} must have one '~'")
    return parts[0][1], parts[1][1]


def _expand(term: str) -> list[str]:
    """A fixed term with a top-level ``*`` as its terms (``a*b`` → a, b, a:b)."""
    factors = [p for _, p in _split_top(term, "*")]
    if len(factors) == 1:
        return [term]
    return [":".join(c) for k in range(1, len(factors) + 1) for c in combinations(factors, k)]


def _key(term: str) -> Any:
    text = "".join(term.split())
    if text.startswith("("):
        return text
    return frozenset(p for _, p in _split_top(text, ":"))


def update_formula(old: str, new: str) -> str:
    """R's ``update.formula`` for lme4-style formulas.

    Examples
    --------
    >>> update_formula("y ~ x + (1|g)", ". ~ . + z")
    'y ~ x + (1|g) + z'
    >>> update_formula("y ~ x + (1|g)", "log(y) ~ . - x")
    'log(y) ~ (1|g)'
    >>> update_formula("y ~ a*b + (1|g)", ". ~ . - a:b")
    'y ~ a + b + (1|g)'
    >>> update_formula("y ~ x + (1|g)", "np.log(.) ~ . - 1")
    'np.log(y) ~ x + (1|g) - 1'
    """
    old_lhs, old_rhs = _sides(old)
    lhs, rhs = _sides(new)
    lhs = old_lhs if lhs == "" else _DOT.sub(lambda _: old_lhs, lhs)
    terms: list[str] = []
    intercept = True

    def add(sign: str, piece: str) -> None:
        nonlocal intercept
        if piece in ("", "."):
            return
        if piece in ("1", "0"):
            intercept = (sign == "+") == (piece == "1")
            return
        expanded = [piece] if piece.startswith("(") else _expand(piece)
        for t in expanded:
            keys = [_key(x) for x in terms]
            if sign == "+":
                if _key(t) not in keys:
                    terms.append(t)
            elif _key(t) in keys:
                terms.pop(keys.index(_key(t)))

    for sign, piece in _split_top(rhs, "+-"):
        if piece == ".":
            for s, p in _split_top(old_rhs, "+-"):
                add(s, p)
        else:
            add(sign, piece)
    body = " + ".join(terms) if terms else "1"
    if not intercept:
        body = f"{body} - 1" if terms else "0"
    return f"{lhs} ~ {body}"


def update(model: Any, formula: str | None = None, data: Any = None, reml: bool | None = None,
           **kwargs: Any) -> Any:
    """Refit a model with a changed formula, data or REML flag (R's ``update``).

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
        A fit of :func:`lmmlib.lmer` or :func:`lmmlib.lm` (not yet :func:`lmmlib.glmer`).
    formula : str, optional
        The new formula, in R's ``. ~ . + x`` / ``. ~ . - x`` notation or in full.
    data : DataFrame, optional
        New data (default: the model frame, i.e. the old formula's columns and
        complete rows).
    reml : bool, optional
        A new REML flag (``lmer`` fits only).
    **kwargs
        Further arguments of ``lmer`` or ``lm`` (``start``, ``control``,
        ``subset``, ``na_action``).

    Returns
    -------
    The refitted model, of the same kind.

    Raises
    ------
    ArgumentError
        When the model is not a fit of lmmlib, ``reml`` is given for a model
        without it, an argument is unknown to the fitting function, a column
        is missing from the model frame (pass ``data=``), the old formula uses
        ``.``, or the model is a ``glmer`` fit.

    Examples
    --------
    >>> m = lmmlib.lmer("weight ~ weeks + (1|id)", lmmlib.datasets.load("pig"))
    >>> m2 = update(m, ". ~ . + I(weeks^2)")
    >>> m2.formula
    'weight ~ weeks + (1|id) + I(weeks^2)'
    >>> update(m, reml=False).reml
    False
    """
    from .fit import lmer
    from .lm import lm

    if not isinstance(model, (LinearMixedFit, LinearFit, GeneralizedMixedFit)):
        raise ArgumentError(f"update: model must be a fit of lmmlib.lm, lmmlib.lmer or "
                            f"lmmlib.glmer, got {type(model).__name__}")
    if isinstance(model, GeneralizedMixedFit):
        raise ArgumentError("update: glmer fits cannot be updated yet; call lmmlib.glmer "
                            "with the new formula")
    if formula is not None and not isinstance(formula, str):
        raise ArgumentError(f"update: formula must be a string, got {type(formula).__name__}")
    if formula is not None and any(p == "." for _, p in _split_top(_sides(model.formula)[1],
                                                                    "+-")):
        raise ArgumentError(f"update: the model's formula {model.formula!r} uses '.'; "
                            "write its terms out to update it")
    new = model.formula if formula is None else update_formula(model.formula, formula)
    frame = model.design.frame if data is None else data
    design = model.design
    carried = {"weights": getattr(design, "weights", None),
               "offset": getattr(design, "offset_argument", None)}  # offset() terms stay
    for arg, value in carried.items():
        if value is not None and arg not in kwargs:
            if data is not None:
                raise ArgumentError(f"update: the model was fitted with {arg}; pass {arg}= "
                                    "again for the new data")
            kwargs[arg] = value  # the model frame's rows, in order
    if isinstance(model, LinearMixedFit):
        reml = model.reml if reml is None else as_bool(reml, "reml")
        fit, fixed = lmer, {"reml": reml}
    elif reml is not None:
        raise ArgumentError(f"update: reml does not apply to a {model.kind} fit")
    else:
        fit, fixed = lm, {}
    allowed = set(inspect.signature(fit).parameters) - {"formula", "data", "reml"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ArgumentError(f"update: {fit.__name__} takes no argument(s) "
                            f"{', '.join(map(repr, unknown))}")

    def refit() -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fit(new, frame, **fixed, **kwargs)
        for w in caught:  # shown at the caller of update, not here
            warnings.warn(w.message, w.category, stacklevel=3)
        return out

    try:
        return refit()
    except FormulaError as exc:
        if data is None:
            cols = ", ".join(map(str, model.design.frame.columns))
            raise ArgumentError(f"update: cannot fit {new!r} to the model frame (columns "
                                f"{cols}): {exc}; pass data= with the columns it needs"
                                ) from exc
        raise
