"""lmmlib: linear mixed models, textbook-transparent and fast.

Fitting: :func:`lmer` (lme4-style mixed models), :func:`glmer` (Poisson,
binomial and Gamma GLMMs; families :func:`binomial`, :func:`poisson`,
:func:`gamma`, :func:`negative_binomial`), :func:`glmer_nb` (negative binomial
with θ estimated), :func:`lm` (ordinary least squares).  Inference:
:func:`anova`, :func:`exact_rlrt`, :func:`bootstrap_lrt`, :func:`bootstrap`,
:func:`prediction_interval`, :func:`batch_refit`, Satterthwaite t-tests
(``coef_table``), profile likelihood and ``confint``, :func:`varpar_se`,
:func:`hessian` (central differences).  Textbook side:
:func:`gls`, :func:`marginal_covariance`, :func:`blup`, :func:`icc`,
:func:`shrinkage`, :func:`effective_df`, :func:`moment_estimator`,
:func:`aov_table`, :func:`group_effects`.  Data:
:mod:`lmmlib.datasets`; plots: :mod:`lmmlib.plots` (imported on demand); data
cloning: :mod:`lmmlib.course.cloning`; the Neyman–Scott problem: :mod:`lmmlib.course.neyman_scott`.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # what the names below resolve to, for readers and type checkers
    from .course.aov import aov_table, group_effects, moment_estimator
    from .course.gls import blup, gls, marginal_covariance
    from .course.icc import icc
    from .course.shrinkage import effective_df, shrinkage, stratified_fit
    from .engine.control import GlmerControl, LmerControl
    from .glmm.family import FamilyError, binomial, gamma, negative_binomial, poisson
    from .glmm.fit import glmer
    from .glmm.laplace import FactorError
    from .glmm.model import GeneralizedLinearMixedModel
    from .glmm.negbin import glmer_nb
    from .glmm.separation import SeparationWarning
    from .glmm.update import update
    from .inference.anova import aic_table, anova, chisq_mixture_pvalue, drop_level_screen
    from .inference.batch import batch_refit
    from .inference.bootstrap import BootstrapLRT, BootstrapResult, bootstrap, bootstrap_lrt
    from .inference.drop1 import drop1
    from .inference.hessian import hessian, varpar_se
    from .inference.influence import cooks_distance, hatvalues
    from .inference.predint import prediction_interval
    from .inference.rlrt import RLRTResult, exact_rlrt
    from .inference.typeiii import anova_type3
    from .models.fit import lmer
    from .models.lm import LinearModel, lm
    from .models.lmlist import LmList, lmList
    from .models.lmm import LinearMixedModel
    from .models.partitioned import PartitionedLinearMixedModel, lmer_partitioned

# The public API is imported on first use (PEP 562): ``import lmmlib`` itself loads
# only the exceptions, so a script or a worker process starts quickly and pays
# for pandas, scipy and formulaic only when it fits a model.
_EXPORTS = {
    "BootstrapLRT": ".inference.bootstrap",
    "BootstrapResult": ".inference.bootstrap",
    "FactorError": ".glmm.laplace",
    "FamilyError": ".glmm.family",
    "GeneralizedLinearMixedModel": ".glmm.model",
    "GlmerControl": ".engine.control",
    "LinearMixedModel": ".models.lmm",
    "LinearModel": ".models.lm",
    "LmList": ".models.lmlist",
    "LmerControl": ".engine.control",
    "PartitionedLinearMixedModel": ".models.partitioned",
    "RLRTResult": ".inference.rlrt",
    "SeparationWarning": ".glmm.separation",
    "aic_table": ".inference.anova",
    "anova": ".inference.anova",
    "anova_type3": ".inference.typeiii",
    "aov_table": ".course.aov",
    "batch_refit": ".inference.batch",
    "binomial": ".glmm.family",
    "blup": ".course.gls",
    "bootstrap": ".inference.bootstrap",
    "bootstrap_lrt": ".inference.bootstrap",
    "chisq_mixture_pvalue": ".inference.anova",
    "cooks_distance": ".inference.influence",
    "drop1": ".inference.drop1",
    "drop_level_screen": ".inference.anova",
    "effective_df": ".course.shrinkage",
    "exact_rlrt": ".inference.rlrt",
    "gamma": ".glmm.family",
    "glmer": ".glmm.fit",
    "glmer_nb": ".glmm.negbin",
    "gls": ".course.gls",
    "group_effects": ".course.aov",
    "hatvalues": ".inference.influence",
    "hessian": ".inference.hessian",
    "icc": ".course.icc",
    "lm": ".models.lm",
    "lmList": ".models.lmlist",
    "lmer": ".models.fit",
    "lmer_partitioned": ".models.partitioned",
    "marginal_covariance": ".course.gls",
    "moment_estimator": ".course.aov",
    "negative_binomial": ".glmm.family",
    "poisson": ".glmm.family",
    "prediction_interval": ".inference.predint",
    "shrinkage": ".course.shrinkage",
    "stratified_fit": ".course.shrinkage",
    "update": ".glmm.update",
    "varpar_se": ".inference.hessian",
}

__version__ = "0.1.0"

_LAZY = {"datasets", "plots"}


def __getattr__(name: str):
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value
    # datasets and plots are submodules imported on first use: `python -m
    # lmmlib.datasets` runs cleanly and matplotlib is not loaded with the library
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lmmlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _LAZY)


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
    "LmList",
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
    "anova_type3",
    "aov_table",
    "batch_refit",
    "binomial",
    "bootstrap",
    "bootstrap_lrt",
    "blup",
    "chisq_mixture_pvalue",
    "cooks_distance",
    "drop1",
    "drop_level_screen",
    "effective_df",
    "exact_rlrt",
    "glmer",
    "gls",
    "group_effects",
    "hatvalues",
    "hessian",
    "icc",
    "lm",
    "lmList",
    "lmer",
    "marginal_covariance",
    "moment_estimator",
    "prediction_interval",
    "shrinkage",
    "stratified_fit",
    "update",
    "varpar_se",
    "gamma",
    "glmer_nb",
    "negative_binomial",
    "poisson",
    "PartitionedLinearMixedModel",
    "lmer_partitioned",
]
