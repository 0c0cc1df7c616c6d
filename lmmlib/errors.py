"""Exception and warning classes raised by :mod:`lmmlib`.

Every error a user can cause derives from :class:`LmmlibError`, so
``except lmmlib.LmmlibError`` catches all of them.  The messages name the
offending column, level or file.
"""

from __future__ import annotations


class LmmlibError(Exception):
    """Base class of all errors raised by lmmlib."""


class FormulaError(LmmlibError, ValueError):
    """The model formula cannot be parsed or refers to unknown columns."""


class DataError(LmmlibError, ValueError):
    """The data cannot support the requested model (bad values, too few levels...)."""


class ArgumentError(LmmlibError, ValueError):
    """An argument has the wrong type or value (a string for a boolean, ``n_jobs=0``...)."""


class DatasetError(LmmlibError, OSError):
    """A course dataset is missing, corrupted or cannot be downloaded."""


class LmmlibWarning(UserWarning):
    """Base class of warnings issued by lmmlib."""


class DataWarning(LmmlibWarning):
    """Rows or columns were dropped or altered before fitting."""


class ConvergenceWarning(LmmlibWarning):
    """The optimiser stopped without clear convergence."""


class SingularFitWarning(LmmlibWarning):
    """The fit is on the boundary: a variance is zero or a correlation is ±1."""
