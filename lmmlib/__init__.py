"""lmmlib: linear mixed models, textbook-transparent and fast.

The main entry points are :func:`lmer` (lme4-style mixed models), :func:`lm`
(ordinary least squares), :func:`icc`, the textbook :func:`gls` and the course
data in :mod:`lmmlib.datasets`.
"""

from .errors import (
    ConvergenceWarning,
    DataError,
    DatasetError,
    DataWarning,
    FormulaError,
    LmmlibError,
    LmmlibWarning,
    SingularFitWarning,
)
from .fit import lmer
from .gls import blup, gls, marginal_covariance
from .icc import icc
from .lm import LinearModel, lm
from .model import LinearMixedModel

__version__ = "0.1.0"


def __getattr__(name: str):
    # datasets is imported lazily so that `python -m lmmlib.datasets` runs cleanly
    if name == "datasets":
        import importlib

        return importlib.import_module(".datasets", __name__)
    raise AttributeError(f"module 'lmmlib' has no attribute {name!r}")

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DatasetError",
    "FormulaError",
    "LinearMixedModel",
    "LinearModel",
    "LmmlibError",
    "LmmlibWarning",
    "SingularFitWarning",
    "blup",
    "datasets",
    "gls",
    "icc",
    "lm",
    "lmer",
    "marginal_covariance",
]
