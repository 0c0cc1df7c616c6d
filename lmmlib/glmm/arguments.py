"""The arguments of ``glmer``: prior weights, offsets, ``cbind`` responses and starts."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..engine.formula import parse_formula, split_top_level
from ..engine.rows import row_values
from ..errors import ArgumentError, DataError, FormulaError
from .laplace import GlmmProblem

__all__ = ["bool_response_as_float", "cbind_response", "prior_weights", "row_values",
           "start_values"]

_CBIND = re.compile(r"^\s*cbind\s*\((?P<inner>.*)\)\s*~(?P<rhs>.*)$", re.DOTALL)
CBIND_COLUMN = "_cbind_proportion_"


def cbind_response(formula: str, data: pd.DataFrame, weights: Any, na_action: str = "omit"):
    """lme4's ``cbind(successes, failures) ~ ...`` as a proportion with trials as weights.

    Returns the formula, data and weights to fit: unchanged without ``cbind``;
    otherwise the response is the proportion successes / (successes +
    failures), a new column, and the prior weights are the numbers of trials
    (R's binomial family does the same).

    Raises
    ------
    FormulaError
        If ``cbind`` does not hold two expressions, or they cannot be evaluated.
    ArgumentError
        If ``weights`` are also given.
    DataError
        If the counts are negative, or missing with ``na_action="fail"``.

    Examples
    --------
    >>> d = pd.DataFrame({"k": [1, 3], "n": [4, 5]})
    >>> f, d2, w = cbind_response("cbind(k, n - k) ~ 1", d, None)
    >>> f, d2[CBIND_COLUMN].tolist(), w.tolist()
    ('_cbind_proportion_ ~ 1', [0.25, 0.6], [4.0, 5.0])
    """
    match = _CBIND.match(formula) if isinstance(formula, str) else None
    if match is None:
        return formula, data, weights
    args = [a.strip() for a in split_top_level(match["inner"], ",")]
    if len(args) != 2 or not all(args):
        raise FormulaError(f"cbind() in {formula!r} needs two expressions: the numbers of "
                           "successes and of failures, e.g. cbind(k, n - k)")
    if weights is not None:
        raise ArgumentError("give the numbers of trials either through cbind(successes, "
                            "failures) or as weights with a proportion response, not both")
    counts = []
    for expr in args:
        try:
            value = data.eval(expr)
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise FormulaError(f"cannot evaluate {expr!r} of cbind() on the data: {exc}") from None
        counts.append(pd.to_numeric(pd.Series(value, index=data.index), errors="coerce"))
    k, f = (c.to_numpy(float) for c in counts)
    present = np.isfinite(k) & np.isfinite(f)
    if not present.all() and str(na_action).replace("na.", "") == "fail":
        raise DataError(f"missing values in cbind({args[0]}, {args[1]}) ({int((~present).sum())} "
                        f"of {present.size} rows) and na_action='fail'; drop or fill them, or use "
                        "na_action='omit' or 'exclude'")
    if np.any((k[present] < 0) | (f[present] < 0)):
        raise DataError(f"cbind({args[0]}, {args[1]}) has negative counts")
    n = k + f
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = np.where(n > 0, k / np.where(n > 0, n, 1.0), 0.0)
    prop[~present] = np.nan
    out = data.assign(**{CBIND_COLUMN: prop})
    return f"{CBIND_COLUMN} ~{match['rhs']}", out, np.where(present, n, 0.0)


def prior_weights(weights: Any, data: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """Prior weights for the rows of the model frame (a column name or an array)."""
    if weights is None:
        return np.ones(len(frame))
    wt = row_values(weights, data, frame, "weights")
    label = f"weights column {weights!r}" if isinstance(weights, str) else "weights"
    if np.any(wt < 0):
        raise DataError(f"{label} must be finite and non-negative")
    if not np.any(wt > 0):
        raise DataError(f"{label} are all zero")
    return wt


def bool_response_as_float(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """A True/False response column becomes 1/0 (the frame stage wants numbers)."""
    response = parse_formula(formula).response if isinstance(formula, str) else None
    if response in data.columns and pd.api.types.is_bool_dtype(data[response]):
        return data.assign(**{response: data[response].astype(float)})
    return data


def _start_array(value: Any, what: str, size: int, names: list[str]) -> np.ndarray:
    """``value`` as a finite float vector of ``size`` values (``start`` names the argument)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"start {what} must be numbers, got {value!r}") from None
    if arr.ndim > 1:
        raise ArgumentError(f"start {what} must be a flat sequence of {size} value(s), got an "
                            f"array of shape {arr.shape}")
    if arr.size != size:
        raise ArgumentError(f"start {what} must have {size} value(s) ({', '.join(names)}), "
                            f"got {arr.size}")
    arr = arr.reshape(size)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ArgumentError(f"start {what} must be finite, got {arr[i]} for {names[i]}")
    return arr


def start_values(start: Any, problem: GlmmProblem) -> tuple[np.ndarray, np.ndarray | None]:
    """Starting θ (and β if given) from ``start``: θ array or {"theta":..., "fixef":...}.

    Raises
    ------
    ArgumentError
        For unknown keys, a wrong length, a non-finite value or a θ below its
        lower bound (0 for the diagonal of Λ).
    """
    design = problem.design
    theta, beta = design.theta0(), None
    names = problem.theta_names()
    if isinstance(start, dict):
        unknown = sorted(set(map(str, start)) - {"theta", "fixef"})
        if unknown:
            raise ArgumentError(f"start has unknown key(s) {unknown}: use 'theta' and 'fixef'")
        if "theta" in start:
            theta = _start_array(start["theta"], "theta", design.ntheta, names)
        if "fixef" in start:
            beta = _start_array(start["fixef"], "fixef", problem.p, list(design.xnames))
    elif start is not None:
        theta = _start_array(start, "theta", design.ntheta, names)
    lower = design.lower()
    below = theta < lower
    if below.any():
        i = int(np.flatnonzero(below)[0])
        raise ArgumentError(f"start theta must respect the lower bounds {lower.tolist()} "
                            f"(0 for a standard-deviation factor): {names[i]} = {theta[i]}")
    if beta is not None:  # as glm.fit: no valid starting values if the deviance overflows
        eta = problem.offset + problem.X @ beta
        if not np.isfinite(problem.family.dev_resid(problem.y, eta, problem.wt).sum()):
            raise ArgumentError(f"start fixef gives a linear predictor up to "
                                f"{np.max(np.abs(eta)):.3g} at which the {problem.family.name} "
                                "deviance is not finite (exp overflows): give smaller values")
    return theta, beta
