"""lmmlib: linear mixed models, textbook-transparent and fast.

Fitting: :func:`lmer` (lme4-style mixed models), :func:`glmer` (Poisson and
binomial GLMMs), :func:`lm` (ordinary least squares).  Inference:
:func:`anova`, :func:`exact_rlrt`, :func:`bootstrap_lrt`, ``lmmlib.bootstrap(model,
stat, n, seed)`` (the module is callable),
:func:`prediction_interval`, Satterthwaite t-tests (``coef_table``),
profile likelihood and ``confint``, :func:`varpar_se`.  Textbook side:
:func:`gls`, :func:`marginal_covariance`, :func:`blup`, :func:`icc`,
:func:`shrinkage`, :func:`effective_df`, :func:`moment_estimator`.  Data:
:mod:`lmmlib.datasets`; plots: :mod:`lmmlib.plots` (imported on demand); data
cloning: :mod:`lmmlib.cloning`; the Neyman–Scott problem: :mod:`lmmlib.neyman_scott`.
"""

from . import bootstrap
from .anova import aic_table, anova, chisq_mixture_pvalue, drop_level_screen
from .aov import aov_table, moment_estimator
from .batch import batch_refit
from .bootstrap import BootstrapLRT, BootstrapResult, bootstrap_lrt
from .control import GlmerControl, LmerControl
from .errors import (
    ArgumentError,
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
from .glmm import glmer
from .glmm_family import FamilyError, SeparationWarning
from .glmm_laplace import FactorError
from .glmm_model import GeneralizedLinearMixedModel
from .gls import blup, gls, marginal_covariance
from .hessian import varpar_se
from .icc import icc
from .lm import LinearModel, lm
from .model import LinearMixedModel
from .predint import prediction_interval
from .rlrt import RLRTResult, exact_rlrt
from .shrinkage import effective_df, shrinkage, stratified_fit

__version__ = "0.1.0"

_LAZY = {"datasets", "plots"}


def __getattr__(name: str):
    # datasets and plots are imported on first use: `python -m lmmlib.datasets`
    # runs cleanly and matplotlib is not loaded with the library
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lmmlib' has no attribute {name!r}")


__all__ = [
    "ArgumentError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DatasetError",
    "FactorError",
    "FamilyError",
    "FormulaError",
    "GeneralizedLinearMixedModel",
    "GlmerControl",
    "LinearMixedModel",
    "LinearModel",
    "LmerControl",
    "LmmlibError",
    "LmmlibWarning",
    "BootstrapLRT",
    "BootstrapResult",
    "RLRTResult",
    "SeparationWarning",
    "SingularFitWarning",
    "aic_table",
    "anova",
    "aov_table",
    "batch_refit",
    "bootstrap",
    "bootstrap_lrt",
    "blup",
    "chisq_mixture_pvalue",
    "drop_level_screen",
    "effective_df",
    "exact_rlrt",
    "glmer",
    "gls",
    "icc",
    "lm",
    "lmer",
    "marginal_covariance",
    "moment_estimator",
    "prediction_interval",
    "shrinkage",
    "stratified_fit",
    "varpar_se",
]
