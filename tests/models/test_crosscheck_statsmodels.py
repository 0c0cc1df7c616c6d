"""lmmlib against an independent implementation: statsmodels' ``MixedLM``.

Every reference value in this file is computed at test time by
``statsmodels.regression.mixed_linear_model.MixedLM`` (statsmodels 0.15.0, pinned
in pyproject.toml), fitted to the same course data (:mod:`lmmlib.datasets`).
statsmodels shares no code with lmmlib: it maximises the profiled
(restricted) log-likelihood over the covariance parameters with scipy's
general-purpose optimisers and the marginal covariance V = Z G Z' + σ² I,
whereas lmmlib minimises lme4's penalised-least-squares criterion over θ with
BOBYQA.  Agreement of the two at the optimum is therefore a check of the
objective, of the fixed-effect solve and of the parameter conversions.

statsmodels' optimisers stop loosely by default (and ``lbfgs`` ignores the
tolerances that ``MixedLM.fit`` accepts), so each model is fitted with several
methods at tight settings and the fit with the highest log-likelihood is used.
Its ConvergenceWarnings (boundary, "Hessian not positive definite", "retrying
with ...") concern its own optimiser and are not test failures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, curvature_tolerance, profiled_at

import lmmlib
from lmmlib.datasets import load

sm_formula = pytest.importorskip("statsmodels.formula.api")

# Log-likelihoods at the optimum: both sides maximise the same (restricted) likelihood
# tightly; lmmlib's criterion is within OPT_GAP (conftest) of its minimum, i.e. its
# logLik within OPT_GAP/2, and statsmodels' best-of-three is as close (seen ≤ 2e-10
# apart on every BLAS kernel tried; 1e-11 relative).  A REML/ML mix-up or a constant
# convention would be O(1).
LLF_ATOL = OPT_GAP
# Both optima are then within GAP of the minimum criterion (−2 logLik): lmmlib's by
# OPT_GAP, statsmodels' because its llf is within LLF_ATOL of lmmlib's (asserted below).
GAP = OPT_GAP + 2 * LLF_ATOL
# Fixed effects and variance components are compared at what that gap allows, from
# the curvature of lmmlib's criterion: each side can be curvature_tolerance(GAP) away
# from the optimum.  That is 1e-5 to 5e-4 relative for the variances (the residual best
# determined, pulp's 4 operators least), 8e-4 for the nepal_slope intercept-slope
# covariance, which lies in the criterion's flat direction (lmmlib on Haswell's and on
# the AVX-512 kernel stops 2.7e-5 relative apart there; seen ≤ 4 % of the tolerance).
# Fitting ML against REML misses by 50x to 650x the tolerance.
# Quantities that do not move with θ at all (β of the balanced pig design, where GLS
# is OLS) get the rounding floor ROUNDING_RTOL.
ROUNDING_RTOL = 1e-10


def _tolerance(m, quantity) -> np.ndarray:
    """Allowed |lmmlib − statsmodels| for ``quantity(θ)``: both sides within GAP."""
    value = np.abs(np.asarray(quantity(m.theta), dtype=float))
    return 2.0 * curvature_tolerance(m, quantity, GAP) + ROUNDING_RTOL * value


@dataclass(frozen=True)
class Case:
    dataset: str
    lmer_formula: str      # lme4 syntax, for lmmlib
    fixed: str             # statsmodels mean formula
    group: str             # statsmodels `groups`
    re_formula: str | None  # statsmodels random-effects formula (None: intercept)
    reml: bool


CASES: dict[str, Case] = {
    "pig_reml": Case("pig", "weight ~ weeks + (1|id)", "weight ~ weeks", "id", None, True),
    "pig_ml": Case("pig", "weight ~ weeks + (1|id)", "weight ~ weeks", "id", None, False),
    "nepal_ri": Case("nepal", "arm ~ age + (1|id)", "arm ~ age", "id", None, True),
    "nepal_slope": Case("nepal", "arm ~ ageC + (ageC|id)", "arm ~ ageC", "id", "~ageC", True),
    "pulp_reml": Case("pulp", "bright ~ 1 + (1|operator)", "bright ~ 1", "operator", None, True),
}

# statsmodels optimisers tried for every model; the best log-likelihood wins.
# MixedLM.fit passes only gtol/ftol/maxiter/... through, so: bfgs stops on the
# gradient norm (gtol), powell on the relative change of the objective (ftol),
# lbfgs runs with scipy's defaults (it accepts none of these tolerances).
SM_METHODS: dict[str, dict] = {
    "lbfgs": {"maxiter": 10_000},
    "bfgs": {"gtol": 1e-10, "maxiter": 10_000},
    "powell": {"ftol": 1e-14, "maxiter": 10_000},
}


@cache
def _data(name: str) -> pd.DataFrame:
    df = load(name)
    if name == "nepal":
        df = df.assign(ageC=df["age"] - 36)  # as in the course and the lme4 fixtures
    return df


@cache
def lmmlib_fit(case: str) -> lmmlib.LinearMixedModel:
    c = CASES[case]
    return lmmlib.lmer(c.lmer_formula, _data(c.dataset), reml=c.reml)


@cache
def statsmodels_fit(case: str):
    """Best of the SM_METHODS fits of statsmodels MixedLM (highest llf)."""
    c = CASES[case]
    df = _data(c.dataset)
    model = sm_formula.mixedlm(c.fixed, df, groups=df[c.group], re_formula=c.re_formula)
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels ConvergenceWarning and friends
        for method, settings in SM_METHODS.items():
            try:
                res = model.fit(reml=c.reml, method=[method], **settings)
            except np.linalg.LinAlgError:
                continue  # e.g. lbfgs steps to a singular covariance on pulp
            if np.isfinite(res.llf) and (best is None or res.llf > best.llf):
                best = res
    assert best is not None, f"{case}: no statsmodels method produced a fit"
    return best


def _sm_variance_components(res) -> dict[tuple[str, str], float]:
    """statsmodels cov_re and scale keyed like lmmlib's varcorr (var1, var2)."""
    cov = res.cov_re
    name = {"Group": "(Intercept)"}  # statsmodels' name for the random intercept
    out = {}
    cols = list(cov.columns)
    for i, a in enumerate(cols):
        for b in cols[i:]:
            key = (name.get(a, a), name.get(b, b)) if a != b else (name.get(a, a), "")
            out[key] = float(cov.loc[a, b])
    out[("Residual", "")] = float(res.scale)
    return out


def _lmmlib_variance_components(m) -> dict[tuple[str, str], float]:
    out = {}
    for row in m.varcorr.itertuples(index=False):
        var2 = "" if pd.isna(row.var2) else row.var2
        key = ("Residual", "") if row.group == "Residual" else (row.var1, var2)
        out[key] = float(row.vcov)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_effects_match_statsmodels(case):
    m, ref = lmmlib_fit(case), statsmodels_fit(case)
    # statsmodels names the intercept "Intercept", lmmlib "(Intercept)"; same order
    assert len(m.fixef) == len(ref.fe_params)
    tol = _tolerance(m, lambda theta: profiled_at(m, theta)["beta"])
    np.testing.assert_array_less(np.abs(m.fixef.to_numpy() - ref.fe_params.to_numpy()), tol,
                                 err_msg=case)


@pytest.mark.parametrize("case", list(CASES))
def test_variance_components_match_statsmodels(case):
    m, ref = lmmlib_fit(case), statsmodels_fit(case)
    ours = _lmmlib_variance_components(m)
    theirs = _sm_variance_components(ref)
    assert set(ours) == set(theirs), (case, sorted(ours), sorted(theirs))
    keys = list(ours)  # varcorr's row order, which profiled_at's varcorr keeps
    tol = dict(zip(keys, _tolerance(
        m, lambda theta: profiled_at(m, theta)["varcorr"]["vcov"].to_numpy()), strict=True))
    for key, value in theirs.items():
        assert abs(ours[key] - value) < tol[key], (
            f"{case} {key}: {ours[key]!r} vs statsmodels {value!r} (tol {tol[key]:.2e})")


@pytest.mark.parametrize("case", list(CASES))
def test_loglik_matches_statsmodels(case):
    # Constants: for ML statsmodels' llf is the full Gaussian log-likelihood, as
    # lmmlib's.  For REML, MixedLM.loglike (reml branch) returns
    #   -1/2 [log|V| + log|X'V^-1 X| + (n-p)(1 + log(2*pi*qf/(n-p)))]
    # with V the covariance relative to sigma^2 and qf the GLS residual quadratic
    # form.  That is lme4's REML criterion / -2 term by term (|V| = |L_theta|^2,
    # X'V^-1 X = R_X'R_X, qf = pwrss); neither adds Harville's +1/2 log|X'X|.  The
    # constants agree, so the values are compared directly.
    m, ref = lmmlib_fit(case), statsmodels_fit(case)
    assert m.loglik == pytest.approx(ref.llf, abs=LLF_ATOL)
    # and lmmlib's optimum is not worse than the best statsmodels found (by more than
    # lmmlib's own optimiser gap)
    assert m.loglik >= ref.llf - LLF_ATOL
    assert m.objective == pytest.approx(-2 * ref.llf, abs=2 * LLF_ATOL)  # −2 logLik


@pytest.mark.parametrize("case", list(CASES))
def test_statsmodels_loglike_at_lmmlib_estimates(case):
    # The same comparison with statsmodels' optimiser taken out of the picture:
    # statsmodels' (restricted) log-likelihood evaluated at lmmlib's variance
    # components (fixed effects and sigma^2 profiled out, as in lmmlib) equals
    # lmmlib's log-likelihood.  A different constant convention would show up
    # here as an offset of order 1.
    m, ref = lmmlib_fit(case), statsmodels_fit(case)
    vc = _lmmlib_variance_components(m)
    names = ["(Intercept)" if c == "Group" else c for c in ref.cov_re.columns]
    k = len(names)
    g = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            key = (names[i], "") if i == j else (names[i], names[j])
            g[i, j] = g[j, i] = vc[key]
    g /= vc[("Residual", "")]
    # statsmodels' packed parameters: the lower-triangular Cholesky factor of
    # cov_re / scale, row-major (MixedLMParams.from_packed with use_sqrt=True)
    packed = np.linalg.cholesky(g)[np.tril_indices(k)]
    # the same function at the same point, computed two ways (dense V vs PLS): rounding
    # only, ~1e-15 relative of a logLik of ~1000 (seen ≤ 7e-13); LLF_ATOL is 2e-11 relative
    assert ref.model.loglike(packed) == pytest.approx(m.loglik, abs=LLF_ATOL)
