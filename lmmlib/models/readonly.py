"""Fitted models are read-only: accessors hand out copies of what they cache.

A user who writes into ``m.vcov`` or ``m.fitted`` changes their copy, not the
model (whose residuals, standard errors and predictions are derived from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["cached_copy"]

T = TypeVar("T")


class cached_copy(Generic[T]):  # noqa: N801 - used like functools.cached_property
    """Like :class:`functools.cached_property`, but every access returns a copy.

    Examples
    --------
    >>> import numpy as np
    >>> class Fit:
    ...     @cached_copy
    ...     def values(self):
    ...         return np.zeros(2)
    >>> f = Fit()
    >>> f.values[0] = 5.0
    >>> f.values
    array([0., 0.])
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.key = f"_cached_{func.__name__}"

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_cached_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        cache = obj.__dict__
        if self.key not in cache:
            cache[self.key] = self.func(obj)
        return cache[self.key].copy()
