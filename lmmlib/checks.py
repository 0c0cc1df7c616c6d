"""Validation of user arguments: booleans, counts, job numbers.

Python's truthiness turns the string ``"FALSE"`` into ``True``; every option
documented as a boolean therefore goes through :func:`as_bool`, and every count
through :func:`as_count`, so that a wrong type is an error that names the
argument instead of a silently different model.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

from .errors import ArgumentError

__all__ = ["as_bool", "as_count", "as_optional_bool"]


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
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def as_optional_bool(value: Any, name: str) -> bool | None:
    """Like :func:`as_bool`, but ``None`` (meaning "decide for me") passes through."""
    return None if value is None else as_bool(value, name)


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
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < minimum:
        raise ArgumentError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    return int(value)
