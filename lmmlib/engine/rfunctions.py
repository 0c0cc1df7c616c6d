"""R's formula functions that formulaic lacks or computes differently.

The fixed part and the random terms of a formula are evaluated by formulaic,
with this module's :data:`CONTEXT` in front of formulaic's own transforms:

* ``sqrt``, ``abs``, ``log1p``, ``expm1``, ``sin``, ``cos``, ``tan``, ``round``,
  ``floor``, ``ceiling``, ``trunc``, ``sign`` are numpy's functions under R's names
  (``log``, ``exp`` and ``I`` are formulaic's own and agree with R's);
* ``scale(x)`` is R's: centred at the mean and divided by the standard deviation
  with n − 1, both over the values that are not missing (``scale(x, center=False)``
  divides by the root mean square, as R's; numbers may be given for either);
* ``center(x)`` (formulaic's) is ``scale(x, scale=False)``, missing values ignored
  as well.

``poly(x, k)`` is formulaic's, which is R's orthogonal polynomial basis (the
monic three-term recurrence that R's ``predict.poly`` uses, so the same signs);
:mod:`lmmlib.engine.terms` renames its columns as R does.  ``scale``, ``center``
and ``poly`` are stateful: their centre, scale or recurrence coefficients are
learned once, on the data (before ``subset`` and the removal of incomplete rows,
as R's model frame evaluates them), and reused for new data in ``predict``, as
R's ``makepredictcall`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from formulaic.utils.stateful_transforms import stateful_transform

__all__ = ["CONTEXT", "R_FUNCTIONS", "center", "scale"]


def _statistic(value: Any, default: Any) -> np.ndarray | None:
    """A user-given centre or scale (a number), the computed default (True) or none."""
    if isinstance(value, bool | np.bool_):
        return default() if value else None
    return np.asarray(value, dtype=float)


@stateful_transform
def scale(data: Any, center: Any = True, scale: Any = True, ddof: float = 1,  # noqa: B006
          _state: dict = {}) -> np.ndarray:  # noqa: B006 - formulaic replaces the default
    """R's ``scale``: ``(x - mean) / sd`` over the non-missing values (sd with n − 1).

    Examples
    --------
    >>> scale(np.array([1.0, 2.0, np.nan, 3.0])).round(3).tolist()
    [-1.0, 0.0, nan, 1.0]
    """
    x = np.array(data, dtype=float)
    ok = ~np.isnan(x)
    if "center" not in _state:
        _state["center"] = _statistic(center, lambda: np.mean(x[ok], axis=0))
    if _state["center"] is not None:
        x = x - _state["center"]
    if "scale" not in _state:
        n = max(int(ok.sum()) - ddof, 1)
        _state["scale"] = _statistic(scale, lambda: np.sqrt(np.sum(x[ok] ** 2, axis=0) / n))
    if _state["scale"] is not None:
        x = x / _state["scale"]
    return x


@stateful_transform
def center(data: Any, _state: dict = {}) -> np.ndarray:  # noqa: B006 - replaced by formulaic
    """``x - mean(x)`` over the non-missing values (formulaic's ``center``).

    Examples
    --------
    >>> center(np.array([1.0, 2.0, 6.0])).tolist()
    [-2.0, -1.0, 3.0]
    """
    return scale(data, scale=False, _state=_state)


#: R's names of numpy functions.
R_FUNCTIONS = {
    "sqrt": np.sqrt, "abs": np.abs, "log1p": np.log1p, "expm1": np.expm1,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "floor": np.floor, "ceiling": np.ceil,
    "trunc": np.trunc, "sign": np.sign, "round": np.round,
}

#: What formula terms are evaluated with, in front of formulaic's transforms.
CONTEXT: dict[str, Any] = {**R_FUNCTIONS, "scale": scale, "center": center}
