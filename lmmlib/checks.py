"""Validation of user arguments: booleans, counts, job numbers, levels, choices, models.

Python's truthiness turns the string ``"FALSE"`` into ``True``; every option
documented as a boolean therefore goes through :func:`as_bool`, and every count
through :func:`as_count`, so that a wrong type is an error that names the
argument instead of a silently different model.  The other helpers do the same
for the arguments that would otherwise reach numpy, joblib or nlopt unchecked:
job numbers (:func:`as_n_jobs`), seeds (:func:`as_seed`), real numbers
(:func:`as_float`), confidence levels (:func:`as_level`), options chosen from a
list (:func:`as_choice`), parameter names (:func:`as_names`), fitted models
(:func:`as_instance`) and starting values of θ (:func:`as_start`).

All of them raise :class:`~lmmlib.errors.ArgumentError`, whose message names
the argument and shows what was given (:func:`describe`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .errors import ArgumentError

__all__ = ["as_bool", "as_choice", "as_count", "as_float", "as_instance", "as_level",
           "as_n_jobs", "as_names", "as_optional_bool", "as_replicates", "as_seed", "as_start",
           "as_values", "callable_label", "describe", "is_seed"]

_SHORT = 60  # longest repr shown in a message


def _type_name(value: Any) -> str:
    """``str``, ``pandas.DataFrame``, ``statsmodels...RegressionResultsWrapper``."""
    tp = type(value)
    module = tp.__module__
    if module == "builtins":
        return tp.__qualname__
    top = module.split(".")[0]
    if getattr(sys.modules.get(top), tp.__qualname__, None) is tp:
        return f"{top}.{tp.__qualname__}"
    return f"{module}.{tp.__qualname__}"


def describe(value: Any) -> str:
    """What was given, for a message: a short repr and the type, or the type alone.

    Examples
    --------
    >>> describe("FALSE")
    "'FALSE' (str)"
    >>> import pandas as pd
    >>> describe(pd.DataFrame({"a": [1, 2]}))
    'a pandas.DataFrame'
    """
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = ""
    name = _type_name(value)
    if text and len(text) <= _SHORT and "\n" not in text and " at 0x" not in text:
        return f"{text} ({name})"
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def as_bool(value: Any, name: str) -> bool:
    """``value`` if it is a real boolean (``True``/``False``, numpy's included).

    Parameters
    ----------
    value : object
        The argument as given.
    name : str
        The argument's name, for the message.

    Returns
    -------
    bool

    Raises
    ------
    ArgumentError
        For anything else, strings such as ``"FALSE"`` and the numbers 0 and 1
        included.

    Examples
    --------
    >>> as_bool(False, "reml")
    False
    >>> as_bool("FALSE", "reml")
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: reml must be True or False, got 'FALSE' (str)
    """
    if _is_bool(value):
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, got {describe(value)}")


def as_optional_bool(value: Any, name: str) -> bool | None:
    """Like :func:`as_bool`, but ``None`` (meaning "decide for me") passes through."""
    if value is None or _is_bool(value):
        return None if value is None else bool(value)
    raise ArgumentError(f"{name} must be True, False or None, got {describe(value)}")


def as_count(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least ``minimum``.

    Examples
    --------
    >>> as_count(200, "nsim")
    200
    >>> as_count(2.5, "nsim")
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: nsim must be an integer >= 1, got 2.5 (float)
    """
    if _is_bool(value) or not isinstance(value, Integral) or value < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}, got {describe(value)}")
    return int(value)


def as_replicates(value: Any, name: str = "nsim") -> int:
    """A number of bootstrap replicates: an integer >= 1, not a bool."""
    if _is_bool(value) or not isinstance(value, Integral) or value < 1:
        raise ArgumentError(f"{name}, the number of bootstrap replicates, must be a positive "
                            f"integer, got {describe(value)}")
    return int(value)


def as_n_jobs(value: Any, name: str = "n_jobs") -> int | None:
    """A joblib number of workers: ``None``, a positive or a negative integer, not 0.

    As in joblib, ``None`` uses the active ``parallel_config`` (1 outside one),
    ``-1`` all CPUs and ``-k`` all but ``k - 1``.

    Examples
    --------
    >>> as_n_jobs(-1)
    -1
    >>> as_n_jobs(0)
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: n_jobs must be None, a positive number of workers or a \
negative integer (-1: all CPUs, -2: all but one...), got 0 (int)
    """
    if value is None:
        return None
    if _is_bool(value) or not isinstance(value, Integral) or value == 0:
        raise ArgumentError(f"{name} must be None, a positive number of workers or a negative "
                            f"integer (-1: all CPUs, -2: all but one...), got {describe(value)}")
    return int(value)


def is_seed(value: Any) -> bool:
    """Whether ``value`` is an integer seed: a non-negative integer, not a bool."""
    return not _is_bool(value) and isinstance(value, Integral) and value >= 0


def as_seed(value: Any, name: str = "seed") -> int | None:
    """A root seed: ``None`` or a non-negative integer (not a bool)."""
    if value is None:
        return None
    if _is_bool(value) or not isinstance(value, Integral) or value < 0:
        raise ArgumentError(f"{name} must be a non-negative integer or None, got "
                            f"{describe(value)}")
    return int(value)


def _real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (numpy scalars and 0-d arrays too)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if _is_bool(value) or not isinstance(value, Real):
        return None
    return float(value)


def as_float(value: Any, name: str, *, positive: bool = False,
             finite: bool = True) -> float:
    """``value`` as a float, if it is a real number (finite unless ``finite=False``).

    Parameters
    ----------
    value : object
        The argument as given.
    name : str
        Its name, for the message.
    positive : bool
        Require a value > 0.
    finite : bool
        Reject NaN and infinities.

    Returns
    -------
    float

    Examples
    --------
    >>> as_float(1e-8, "ftol_abs", positive=True)
    1e-08
    >>> as_float("1e-8", "ftol_abs")
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: ftol_abs must be a finite real number, got '1e-8' (str)
    """
    x = _real(value)
    kind = "a positive" if positive else "a"
    kind += " finite real number" if finite else " real number"
    if x is None or (finite and not np.isfinite(x)) or np.isnan(x) or (positive and not x > 0):
        raise ArgumentError(f"{name} must be {kind}, got {describe(value)}")
    return x


def as_level(value: Any, name: str = "level") -> float:
    """A confidence level or probability strictly between 0 and 1.

    Examples
    --------
    >>> as_level(0.9)
    0.9
    >>> as_level(95)
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: level must be a number between 0 and 1 (exclusive), \
such as 0.95, got 95 (int)
    """
    x = _real(value)
    if x is None or not 0 < x < 1:
        raise ArgumentError(f"{name} must be a number between 0 and 1 (exclusive), such as "
                            f"0.95, got {describe(value)}")
    return x


def as_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (compared case-insensitively), returned in lower case.

    Examples
    --------
    >>> as_choice("Wald", "method", ("profile", "wald", "boot"))
    'wald'
    """
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise ArgumentError(f"{name} must be one of {', '.join(map(repr, choices))}, got "
                        f"{describe(value)}")


def as_names(value: Any, name: str) -> list[str] | None:
    """``None``, or a name or a sequence of names (strings) as a list.

    Examples
    --------
    >>> as_names(".sigma", "parm")
    ['.sigma']
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if hasattr(value, "__iter__") and not isinstance(value, (bytes, Mapping)):
        names = list(value)
        if all(isinstance(v, str) for v in names):
            return names
    raise ArgumentError(f"{name} must be a parameter name or a list of names, got "
                        f"{describe(value)}")


def as_instance(value: Any, name: str, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` itself if it is an instance of ``types``; ``what`` says what was expected.

    Examples
    --------
    >>> as_instance("m", "model", (int,), "a fitted model")
    Traceback (most recent call last):
    ...
    lmmlib.errors.ArgumentError: model must be a fitted model, got 'm' (str)
    """
    if isinstance(value, types):
        return value
    raise ArgumentError(f"{name} must be {what}, got {describe(value)}")


def as_start(value: Any, lower: np.ndarray, labels: Sequence[str] | None = None,
             name: str = "start") -> np.ndarray:
    """A starting θ: as many finite numbers as θ has, none below its lower bound.

    Parameters
    ----------
    value : array_like
        The starting value as given (a scalar is fine when θ has one element).
    lower : ndarray
        Lower bounds of θ (0 for the diagonal of Λ, −inf elsewhere).
    labels : sequence of str, optional
        Names of θ's elements (lme4's ``names(getME(m, "theta"))``), for the message.
    name : str
        The argument's name.

    Returns
    -------
    ndarray of float

    Raises
    ------
    ArgumentError
        Naming ``name``, the expected length and the bounded entries.
    """
    lower = np.asarray(lower, dtype=float)
    k = lower.size
    labels = list(labels) if labels is not None else [f"theta[{i}]" for i in range(k)]
    bounded = [f"{i} ({labels[i]})" for i in np.flatnonzero(np.isfinite(lower))]
    layout = (f"theta has {k} element(s); "
              + (f"entries {', '.join(bounded)} are standard-deviation factors bounded below "
                 "by 0, the others are unbounded" if bounded else "none is bounded"))
    try:
        raw = np.asarray(value)
        ok = raw.dtype.kind in "iuf"
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentError(f"{name} must be a sequence of {k} numbers ({layout}), got "
                            f"{describe(value)}")
    start = np.atleast_1d(raw.astype(float))
    if start.ndim != 1 or start.size != k:
        raise ArgumentError(f"{name} must have {k} value(s), one per element of theta "
                            f"({layout}), got shape {raw.shape}")
    bad = np.flatnonzero(~np.isfinite(start))
    if bad.size:
        shown = ", ".join(f"{i} ({labels[i]}) = {start[i]}" for i in bad)
        raise ArgumentError(f"{name} must be finite; entries {shown} are not ({layout})")
    below = np.flatnonzero(start < lower)
    if below.size:
        shown = ", ".join(f"{i} ({labels[i]}) = {start[i]:g}" for i in below)
        raise ArgumentError(f"{name} has negative values at bounded entries: {shown} ({layout})")
    return start


def callable_label(fn: Any, name: str = "stat") -> str:
    """How a message names a user's function: ``stat 'sigma'`` or ``stat (a lambda)``."""
    label = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None)
    if label is None:
        return f"{name} ({_type_name(fn)})"
    return f"{name} (a lambda)" if label == "<lambda>" else f"{name} {label!r}"


_EXPECTED = "a number, a 1-d array of numbers or a Series of numbers"


def as_values(value: Any, label: str, where: str) -> np.ndarray:
    """What a statistic returned, as a flat float array, or an error saying what it was.

    Parameters
    ----------
    value : object
        The statistic's return value.
    label : str
        The statistic as :func:`callable_label` names it.
    where : str
        ``"on the fitted model"`` or ``"on a bootstrap refit"``, for the message.

    Returns
    -------
    ndarray of float, at least one element (booleans count as 0/1)

    Raises
    ------
    ArgumentError
        For ``None``, strings, objects that are not numbers (a model, a dict),
        complex numbers and empty results.
    """
    what = f"{label} returned {describe(value)} {where}; it must return {_EXPECTED}"
    if value is None or isinstance(value, (str, bytes)):
        raise ArgumentError(what)
    try:
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(what) from exc
    if arr.dtype.kind not in "biuf":
        raise ArgumentError(f"{what} (got values of dtype {arr.dtype})")
    if arr.size == 0:
        raise ArgumentError(f"{label} returned no values {where}; it must return {_EXPECTED}")
    return np.atleast_1d(arr.astype(float)).ravel()


def unweighted(model: Any, what: str) -> Any:
    """``model`` itself if it has no prior weights and no offset (``what`` needs neither).

    Examples
    --------
    >>> class Fit:
    ...     class design:
    ...         weights = None
    ...         offset = None
    >>> unweighted(Fit, "exact_rlrt") is Fit
    True
    """
    design = getattr(model, "design", None)
    if getattr(design, "weights", None) is not None or getattr(design, "offset", None) is not None:
        raise ArgumentError(f"{what} is not available for a model with prior weights or an "
                            "offset; fit it without them to use it")
    return model
