"""Other families and links, nAGQ = 0, cbind responses and glmer_nb against lme4.

Fixtures from tests/reference/lme4_families.R: cbpp with probit and cloglog
links and with nAGQ = 0, simulated Gamma responses (log and inverse links) and
negative binomial counts (glmer.nb), all fitted by lme4 with tight settings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, SAME_OPTIMUM, fixture_data, reference

import lmmlib
from lmmlib.glmm.family import FamilyError
from lmmlib.glmm.links import LINKS

LAPLACE = ["cbpp_probit", "cbpp_cloglog", "gamma_log", "gamma_inverse"]


def data_of(fx: dict) -> pd.DataFrame:
    d = fixture_data(fx)
    for col in ("period", "herd", "g"):
        if col in d:
            d[col] = pd.Categorical(d[col])  # R's factors (stored as text)
    return d


def family_of(fx: dict):
    if fx["family"] == "binomial":
        return lmmlib.binomial(fx["link"])
    if fx["family"] == "Gamma":
        return lmmlib.gamma(fx["link"])
    return lmmlib.negative_binomial(fx["nb_theta"])


def fit(name: str, formula_key: str = "formula"):
    fx = reference("families", name)
    formula = fx[formula_key] if fx["family"] == "binomial" else fx["python_formula"]
    return fx, lmmlib.glmer(formula, data_of(fx), family_of(fx), nAGQ=fx["nAGQ"])


# lme4's reported deviance is the Laplace value at a mode found to its PIRLS
# tolerance; for non-canonical links (Fisher scoring converges linearly) that mode
# is off enough to move the value by up to 1e-4 either way: lme4's number minus
# lmmlib's exact value at lme4's own (θ, β) was +9.2e-5 (Gamma inverse), +1e-5
# (Gamma log), -2.1e-6 (negative binomial).  Hence 2e-7 relative for the value.
LME4_VALUE_RTOL = 2e-7


def assert_matches(fx: dict, m, se_rtol: float) -> None:
    # the optimum: on lmmlib's own (exact) criterion, no higher than at lme4's estimates
    # beyond lmmlib's optimiser gap; and lme4's reported value within its PIRLS error
    at_lme4 = m.deviance_at(np.atleast_1d(fx["theta"]), np.asarray(fx["beta"]["values"]))
    assert m.deviance <= at_lme4 + OPT_GAP
    assert m.deviance == pytest.approx(fx["deviance"], rel=LME4_VALUE_RTOL)
    # parameters at 1e-4, the brief's parameter tolerance (seen ≤ 3e-6)
    np.testing.assert_allclose(m.theta, np.atleast_1d(fx["theta"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.fixef.to_numpy(), fx["beta"]["values"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.se.to_numpy(), fx["se"], rtol=se_rtol)


@pytest.mark.parametrize("name", LAPLACE)
def test_links_and_gamma_match_lme4(name):
    fx, m = fit(name)
    # SEs from finite-difference Hessians on both sides: 1e-4 relative, 5e-4 for the
    # Gamma inverse link whose curvature in β is steep (seen 2e-4)
    assert_matches(fx, m, se_rtol=5e-4 if name == "gamma_inverse" else 1e-4)
    assert m.family.link == fx["link"]


def test_cbind_response_is_the_proportion_with_trials_as_weights():
    fx = reference("families", "cbpp_probit")
    data = data_of(fx)
    _, by_cbind = fit("cbpp_probit")
    by_weights = lmmlib.glmer(fx["python_formula"], data, lmmlib.binomial("probit"),
                              weights="size")
    # the same model written two ways: the same optimum (the proportions are computed
    # in two ways, so the optimiser may stop elsewhere within its gap: SAME_OPTIMUM)
    assert by_cbind.deviance == pytest.approx(by_weights.deviance, **SAME_OPTIMUM)
    assert by_cbind.formula == fx["formula"]  # shown as written
    with pytest.raises(lmmlib.ArgumentError, match="either through cbind"):
        lmmlib.glmer(fx["formula"], data, "binomial", weights="size")
    with pytest.raises(lmmlib.FormulaError, match="two expressions"):
        lmmlib.glmer("cbind(incidence) ~ period + (1 | herd)", data, "binomial")


def test_nagq0_is_lme4s_first_stage():
    fx, m = fit("cbpp_nagq0")
    # nAGQ = 0 stops at the first stage's optimum (θ only, tolerance GlmerControl's
    # stage1_tol, lme4's 1e-6-ish): the deviance within 1e-6 relative, parameters within
    # 1e-4 relative of lme4's nAGQ = 0 fit (seen 1e-4 absolute in θ's 0.64)
    assert m.deviance == pytest.approx(fx["deviance"], rel=1e-6)
    np.testing.assert_allclose(m.theta, np.atleast_1d(fx["theta"]), rtol=2e-4)
    np.testing.assert_allclose(m.fixef.to_numpy(), fx["beta"]["values"], rtol=1e-4)
    # its SEs come from the penalised IRLS factor (no Hessian), as lme4's
    np.testing.assert_allclose(m.se.to_numpy(), fx["se"], rtol=1e-4)
    laplace = lmmlib.glmer(fx["formula"], data_of(fx), "binomial")
    assert laplace.deviance < m.deviance  # the full optimisation goes further


def test_glmer_nb_estimates_theta_as_lme4():
    fx = reference("families", "negbin")
    m = lmmlib.glmer_nb(fx["python_formula"], data_of(fx))
    # θ of the negative binomial: lme4 optimises log θ to 5e-5; 1e-4 relative
    assert m.family.theta == pytest.approx(fx["nb_theta"], rel=1e-4)
    # the deviance at lme4's θ and lmmlib's: the same optimum (lme4's value within its
    # PIRLS error, LME4_VALUE_RTOL; seen 2.5e-9)
    assert m.deviance == pytest.approx(fx["deviance"], rel=LME4_VALUE_RTOL)
    np.testing.assert_allclose(m.fixef.to_numpy(), fx["beta"]["values"], rtol=1e-4)
    np.testing.assert_allclose(m.se.to_numpy(), fx["se"], rtol=1e-4)
    # at a fixed θ the family is MASS's negative.binomial(θ): the fit at lme4's θ is
    # the fit glmer_nb ends with (the same optimum of the same function)
    _, fixed = fit("negbin")
    assert fixed.deviance == pytest.approx(m.deviance, **SAME_OPTIMUM)


def test_link_functions_are_consistent():
    # closed forms: linkinv inverts linkfun, and mu_eta is its derivative (central
    # differences, error ~h² ≈ 1e-10 relative)
    eta = np.linspace(-3, 2, 11)
    for name, link in LINKS.items():
        e = np.abs(eta) + 0.5 if name == "inverse" else eta
        np.testing.assert_allclose(link.linkfun(link.linkinv(e)), e, rtol=1e-9)
        h = 1e-5
        fd = (link.linkinv(e + h) - link.linkinv(e - h)) / (2 * h)
        np.testing.assert_allclose(link.mu_eta(e), fd, rtol=1e-8)


def test_bad_families_and_links_are_named():
    with pytest.raises(FamilyError, match="binomial link must be"):
        lmmlib.binomial("identity")
    with pytest.raises(FamilyError, match="Gamma link must be"):
        lmmlib.gamma("sqrt")
    with pytest.raises(FamilyError, match="theta must be a positive"):
        lmmlib.negative_binomial(-1.0)
    fx = reference("families", "gamma_log")
    with pytest.raises(lmmlib.DataError, match="not available for the Gamma family"):
        lmmlib.glmer(fx["python_formula"], data_of(fx), lmmlib.gamma("log"), nAGQ=5)


def test_glmer_subset_and_na_action_as_lmer():
    fx = reference("families", "cbpp_probit")
    data = data_of(fx)
    keep = data["period"] != "4"
    sub = lmmlib.glmer(fx["formula"], data, "binomial", subset=keep)
    pre = lmmlib.glmer(fx["formula"], data[keep], "binomial")
    # the same rows: the same fit (the same problem, rounding only)
    assert sub.nobs == pre.nobs == int(keep.sum())
    assert sub.deviance == pytest.approx(pre.deviance, **SAME_OPTIMUM)
    with pytest.raises(lmmlib.DataError, match="incidence"):
        lmmlib.glmer(fx["formula"], data.assign(incidence=data["incidence"].where(
            data.index != 3)), "binomial", na_action="fail")


def test_residual_types_of_a_probit_fit_match_lme4():
    fx = reference("predict", "cbpp_probit")
    data = data_of(fx)
    m = lmmlib.glmer(fx["formula"], data, lmmlib.binomial("probit"))
    # lme4's residuals(m, type) at the same optimum: they move with (θ, β) inside the
    # optimum's spread (β within ~3e-6 relative) and lme4's PIRLS tolerance, so 1e-4
    # relative with a 1e-5 absolute floor for residuals near zero (seen 3.5e-5, 1.6e-6)
    for kind, values in fx["residuals"].items():
        np.testing.assert_allclose(m.resid(kind).to_numpy(), values, rtol=1e-4, atol=1e-5)


def test_update_refits_a_glmer_fit_with_its_family_and_weights():
    fx = reference("families", "cbpp_probit")
    data = data_of(fx)
    m = lmmlib.glmer(fx["python_formula"], data, lmmlib.binomial("probit"), weights="size")
    # the same formula, family, weights and nAGQ: the same fit (rounding of one problem)
    again = lmmlib.update(m)
    assert again.deviance == pytest.approx(m.deviance, **SAME_OPTIMUM)
    assert again.family.link == "probit"
    smaller = lmmlib.update(m, ". ~ . - period")
    assert smaller.formula == "prop ~ (1 | herd)"
    # removing period costs deviance (it is a strong effect in cbpp): nested, so higher
    assert smaller.deviance > m.deviance + 10
    logit = lmmlib.update(m, family="binomial")
    ref = lmmlib.glmer(fx["python_formula"], data, "binomial", weights="size")
    assert logit.deviance == pytest.approx(ref.deviance, **SAME_OPTIMUM)
