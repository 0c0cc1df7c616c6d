"""Type III F tables (Satterthwaite, Kenward–Roger), drop1 and influence against R.

Reference values: ``tests/reference/fixtures/lmertest_parity/*.json``, written by
``tests/reference/lmertest_parity.R`` (lmerTest 3.1.3, pbkrtest 0.5.2, lme4 1.1.31;
tight nloptwrap fits, whose θ and σ each fixture records).

Tolerances.  At R's own (θ, σ) the tables depend on no optimiser: the KR pieces are
closed-form linear algebra (agreement seen: 1e-11 relative), the Satterthwaite df come
from the same Richardson differences as numDeriv's (agreement seen: 1.5e-8, the
difference noise of the 2321-row soybean fit), so F and df are compared at 1e-6
relative there (more than 50x the noise, far below any real difference: KR and
Satterthwaite df differ by 0.7 to 4 %).  At lmmlib's own θ̂ the numbers also move with
θ̂ within the optimiser gap: F, df and p at 1e-4 relative, the brief's parity level,
which covers the curvature bound of OPT_GAP on F and df (≤ 3e-5 relative for these
fits, cf. DF_SPREAD in test_satterthwaite.py).  Very small p-values (1e-27) are
compared at the same relative level through their logarithm.
"""

from __future__ import annotations

import warnings
from functools import cache, partial

import numpy as np
import pandas as pd
import pytest
from conftest import OPT_GAP, CurvatureBound, fixture_data, profiled_at, reference

import lmmlib
from lmmlib.errors import ArgumentError
from lmmlib.inference import influence
from lmmlib.inference.contrasts import containing_terms, fixed_terms, type3_contrasts
from lmmlib.inference.influence import _hat_diagonal, cooks_distance, hatvalues
from lmmlib.inference.kenward_roger import kr_parts, kr_test, lambda_z
from lmmlib.inference.typeiii import anova_fixed, anova_type3

fixture = partial(reference, "lmertest_parity")
AT_R_RTOL = 1e-6  # same point, same formulas: numerical noise only (see module docstring)
OWN_RTOL = 1e-4  # lmmlib's θ̂: plus the optimiser's spread (see module docstring)


def parity_data(fx: dict) -> pd.DataFrame:
    """The fixture's data: nepal without the rows missing bf, bf (0, 1, 2) and fsex (sex:
    1, 2) factors."""
    if fx["dataset"] == "nepal":
        d = lmmlib.datasets.load("nepal")
        d = d[d["bf"].notna()]
        return d.assign(bf=pd.Categorical(d["bf"].astype(int)), fsex=pd.Categorical(d["sex"]))
    return fixture_data(fx)


@cache
def parity_fit(name: str):
    fx = fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        return lmmlib.lmer(fx["formula"], parity_data(fx), reml=fx["reml"]), fx


def r_table(part: dict) -> pd.DataFrame:
    return pd.DataFrame({c: [np.nan if v is None else v for v in part["values"][c]]
                         for c in part["columns"]}, index=part["rows"], dtype=float)


def assert_ftable(ours: pd.DataFrame, ref: pd.DataFrame, rtol: float) -> None:
    assert list(ours.columns) == list(ref.columns)
    assert list(ours.index) == list(ref.index)
    np.testing.assert_array_equal(ours["NumDF"], ref["NumDF"])
    cols = ["Sum Sq", "Mean Sq", "DenDF", "F value"]
    np.testing.assert_allclose(ours[cols].to_numpy(float), ref[cols].to_numpy(float), rtol=rtol)
    np.testing.assert_allclose(np.log(ours["Pr(>F)"]), np.log(ref["Pr(>F)"]),
                               rtol=rtol, atol=rtol)


NAMES = ["anova_soybean", "anova_nepal", "anova_nepal_int", "anova_nepal_ff",
         "anova_nepal_single", "anova_sleep_slope", "anova_sleep_indep"]


@pytest.mark.parametrize("name", NAMES)
def test_fit_reaches_rs_optimum(name):
    m, fx = parity_fit(name)
    assert m.nobs == fx["nobs"]
    assert m.objective == pytest.approx(fx["objective"], abs=OPT_GAP, rel=1e-11)


@pytest.mark.parametrize("key, ddf", [("satterthwaite", "Satterthwaite"),
                                      ("kenward_roger", "Kenward-Roger")])
@pytest.mark.parametrize("name", NAMES)
def test_type3_at_r_estimates(name, key, ddf):
    m, fx = parity_fit(name)
    tab = anova_type3(m, ddf=ddf, at=(fx["theta"], fx["sigma"]))
    assert_ftable(tab, r_table(fx[key]), AT_R_RTOL)


@pytest.mark.parametrize("key, kind, ddf", [("type2", 2, "Satterthwaite"), ("type1", "I", "S"),
                                            ("type2_kr", "II", "Kenward-Roger")])
@pytest.mark.parametrize("name", NAMES)
def test_types_1_and_2_at_r_estimates(name, key, kind, ddf):
    m, fx = parity_fit(name)
    if ddf == "S":
        ddf = "satterthwaite"
    tab = anova_fixed(m, type=kind, ddf=ddf, at=(fx["theta"], fx["sigma"]))
    assert_ftable(tab, r_table(fx[key]), AT_R_RTOL)
    assert tab.heading[0].startswith(f"Type {'I' if kind == 'I' else 'II'} Analysis")


@pytest.mark.parametrize("key, ddf", [("satterthwaite", "Satterthwaite"),
                                      ("kenward_roger", "KR")])
@pytest.mark.parametrize("name", NAMES)
def test_anova_single_model(name, key, ddf):
    m, fx = parity_fit(name)
    tab = lmmlib.anova(m, ddf=ddf)
    assert tab.heading[0].startswith("Type III Analysis of Variance Table")
    assert_ftable(tab, r_table(fx[key]), OWN_RTOL)


def test_table_prints_its_heading():
    m, _ = parity_fit("anova_nepal")
    tab = lmmlib.anova(m)
    assert str(tab).startswith("Type III Analysis of Variance Table with Satterthwaite's")
    assert "Kenward-Roger&#x27;s method" in m.anova(ddf="KR")._repr_html_()
    assert str(m.drop1()).startswith("Single term deletions using Satterthwaite's method:")


@pytest.mark.parametrize("name", NAMES)
def test_kr_coefficient_table(name):
    # lmerTest's summary(m, ddf = "Kenward-Roger"): SEs of Φ_A and the KR df, at
    # lmmlib's θ̂ (OWN_RTOL; estimates and t as in test_satterthwaite.py's bounds)
    m, fx = parity_fit(name)
    tab = m.coef_table(ddf="Kenward-Roger")
    ref = fx["coef_kr"]["values"]
    np.testing.assert_allclose(tab["Std. Error"], ref["Std. Error"], rtol=OWN_RTOL)
    np.testing.assert_allclose(tab["df"], ref["df"], rtol=OWN_RTOL)
    np.testing.assert_allclose(tab["t value"], ref["t value"], rtol=OWN_RTOL, atol=1e-6)


def test_kr_and_satterthwaite_differ():
    # the two methods give different df (lmerTest: 352.95 vs 368.03 for soybean's ID),
    # so the KR test above cannot pass by returning the Satterthwaite table
    m, fx = parity_fit("anova_soybean")
    s = anova_type3(m, at=(fx["theta"], fx["sigma"]))
    k = anova_type3(m, ddf="kenward-roger", at=(fx["theta"], fx["sigma"]))
    assert abs(k.loc["ID", "DenDF"] / s.loc["ID", "DenDF"] - 1) > 0.01


def test_kr_adjusted_covariance_exceeds_phi():
    # Φ_A − Φ = 2ΦUΦ is positive semi-definite here (KR 1997: the adjustment inflates
    # the variance for balanced designs); diag(Φ) equals vcov() (closed form, rounding)
    m, _ = parity_fit("anova_nepal")
    parts = kr_parts(m.design, m.theta, m.sigma)
    np.testing.assert_allclose(np.diag(parts.vcov_beta), m.se**2, rtol=1e-10)
    assert np.all(np.diag(parts.vcov_adjusted) >= np.diag(parts.vcov_beta))
    one = kr_test(parts, np.eye(len(m.fixef))[[1]], m.fixef.to_numpy())
    assert one["ndf"] == 1 and one["scaling"] == pytest.approx(1.0, abs=1e-12)  # q = 1


def test_kr_needs_reml(pig):
    m = lmmlib.lmer("weight ~ weeks + (1|id)", pig, reml=False)
    with pytest.raises(ArgumentError, match="only available for REML"):
        anova_type3(m, ddf="Kenward-Roger")
    with pytest.raises(ArgumentError, match="only available for REML"):
        m.coef_table(ddf="kr")
    with pytest.raises(ArgumentError, match="ddf"):
        anova_type3(m, ddf="lme4")


def test_containment_as_lmertest(nepal):
    # lmerTest's containment: the same variables and more, and the same numeric ones
    m, _ = parity_fit("anova_nepal_int")
    assert containing_terms(m.design) == {"age": ["age:bf"], "bf": [], "sex": [],
                                          "age:bf": []}
    m, _ = parity_fit("anova_nepal_ff")
    assert containing_terms(m.design)["bf"] == ["bf:fsex"]
    # age contained in age:sex by variables, not by numerics: identity contrasts
    both = lmmlib.lmer("arm ~ age * sex + (1|id)", nepal)
    assert all(not c for c in containing_terms(both.design).values())
    L = type3_contrasts(both.design)
    np.testing.assert_array_equal(L["age"], np.eye(4)[[1]])


def test_type3_of_contained_terms_is_not_the_selection():
    # the orthogonalised contrast of age (contained in age:bf) has entries on the
    # interaction's columns: a plain column selection would test another hypothesis
    m, _ = parity_fit("anova_nepal_int")
    L = type3_contrasts(m.design)["age"]
    cols = fixed_terms(m.design)["age:bf"]
    assert L.shape[0] == 1 and np.abs(L[0, cols]).max() > 0.1


def test_interaction_test_is_invariant_to_centring(nepal):
    # "equal age slopes in every bf group" does not depend on the origin or scale of
    # age: the age:bf row with scale(age) (learned on all rows) equals that with age
    # (the same hypothesis in another basis of X; two fits of one model, each within
    # the optimiser's spread: OWN_RTOL)
    m, _ = parity_fit("anova_nepal_int")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        scaled = lmmlib.lmer("arm ~ scale(age) * bf + sex + (1|id)", parity_data(
            fixture("anova_nepal_int")))
    a, b = anova_type3(m), anova_type3(scaled)
    assert list(b.index) == ["scale(age)", "bf", "sex", "scale(age):bf"]
    for col in ("F value", "DenDF"):
        assert b.loc["scale(age):bf", col] == pytest.approx(a.loc["age:bf", col],
                                                            rel=OWN_RTOL)


def test_non_treatment_contrasts_with_containment_are_refused(nepal):
    d = nepal[nepal["bf"].notna()]
    d = d.assign(bf=pd.Categorical(d["bf"].astype(int), ordered=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        m = lmmlib.lmer("arm ~ age * bf + (1|id)", d)
    with pytest.raises(ArgumentError, match="treatment contrasts"):
        anova_type3(m)


def test_drop1_f_of_an_interaction_is_its_t_test(nepal):
    # only the interaction can be dropped (R's drop.scope); a 1-df F is the
    # Satterthwaite t² with its df
    m = lmmlib.lmer("arm ~ age * sex + (1|id)", nepal)
    tab = lmmlib.drop1(m)
    assert list(tab.index) == ["age:sex"]
    coef = m.coef_table().loc["age:sex"]
    # the same numbers computed two ways: rounding only
    assert tab.loc["age:sex", "F value"] == pytest.approx(coef["t value"] ** 2, rel=1e-10)
    assert tab.loc["age:sex", "DenDF"] == pytest.approx(coef["df"], rel=1e-10)
    assert tab.loc["age:sex", "Pr(>F)"] == pytest.approx(coef["Pr(>|t|)"], rel=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        chisq = lmmlib.drop1(m, test="Chisq")
    assert list(chisq.index) == ["<none>", "age:sex"]
    assert list(lmmlib.drop1(m.refit_ml(), test="none").columns) == ["npar", "AIC"]


def test_term_columns(nepal):
    m, _ = parity_fit("anova_soybean")
    terms = fixed_terms(m.design)
    assert list(terms) == ["ID", "Date_num", "I(Date_num^2)"]
    assert len(terms["ID"]) == 40  # 41 genotypes, treatment contrasts


# -- drop1 -------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_drop1_chisq(name):
    m, fx = parity_fit(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmmlib.LmmlibWarning)
        tab = lmmlib.drop1(m, test="Chisq")
    ref = r_table(fx["drop1_chisq"])
    assert list(tab.index) == list(ref.index) and list(tab.columns) == list(ref.columns)
    np.testing.assert_array_equal(tab["npar"].iloc[1:], ref["npar"].iloc[1:])
    # AIC and LRT are differences of ML optima: each within 2 OPT_GAP of lme4's tight
    # refits (lme4 starts its refits elsewhere, the criteria are the same)
    np.testing.assert_allclose(tab["AIC"], ref["AIC"], rtol=0, atol=4 * OPT_GAP)
    np.testing.assert_allclose(tab["LRT"].iloc[1:], ref["LRT"].iloc[1:], rtol=0,
                               atol=4 * OPT_GAP)
    np.testing.assert_allclose(np.log(tab["Pr(Chi)"].iloc[1:]),
                               np.log(ref["Pr(Chi)"].iloc[1:]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_drop1_f_is_lmertest(name):
    m, fx = parity_fit(name)
    assert_ftable(lmmlib.drop1(m), r_table(fx["drop1_f"]), OWN_RTOL)


# -- influence ----------------------------------------------------------------------
INFLUENCE = ["influence_sleepstudy", "influence_sleepstudy_ml"]


@cache
def influence_fit(name: str):
    fx = fixture(name)
    return lmmlib.lmer(fx["formula"], fixture_data(fx), reml=fx["reml"]), fx


@pytest.mark.parametrize("name", INFLUENCE)
def test_hatvalues_at_r_theta(name):
    # same θ, same linear algebra: rounding only (seen: 4e-12)
    m, fx = influence_fit(name)
    _, U = lambda_z(m.design, np.asarray(fx["theta"]))
    h = _hat_diagonal(U, m.design.X)
    np.testing.assert_allclose(h, fx["hatvalues"], rtol=1e-9)
    assert h.sum() == pytest.approx(fx["hat_sum"], rel=1e-9)
    # Cook's distance from the profiled fit at R's θ, with lme4's formula
    fit = profiled_at(m, np.asarray(fx["theta"]))
    r = m.design.y - fit["fitted"]
    cooks = (r / (1 - h)) ** 2 * h / (fit["sigma"] ** 2 * m.design.X.shape[1])
    np.testing.assert_allclose(cooks, fx["cooks_distance"], rtol=1e-7)


@pytest.mark.parametrize("name", INFLUENCE)
def test_influence_at_own_fit(name):
    m, fx = influence_fit(name)
    bound = CurvatureBound(m, OPT_GAP)
    h_tol = bound(lambda th: _hat_diagonal(lambda_z(m.design, th)[1], m.design.X))
    h = m.hatvalues()
    assert isinstance(h, pd.Series) and h.index.equals(m.model_frame.index)
    # lmmlib's θ̂ vs lme4's tight one: the curvature bound of the optimiser gap, plus
    # rounding (1e-9 relative)
    np.testing.assert_array_less(np.abs(h - fx["hatvalues"]), 2 * h_tol + 1e-9 * h)
    c = m.cooks_distance()
    assert c.equals(cooks_distance(m)) and hatvalues(m).equals(h)
    c_tol = bound(lambda th: _cooks_at(m, th))
    np.testing.assert_array_less(np.abs(c - fx["cooks_distance"]), 2 * c_tol + 1e-7 * c)
    assert c.sum() == pytest.approx(fx["cooks_sum"], rel=1e-4)


def _cooks_at(m, theta):
    fit = profiled_at(m, theta)
    h = _hat_diagonal(lambda_z(m.design, theta)[1], m.design.X)
    r = m.design.y - fit["fitted"]
    return (r / (1 - h)) ** 2 * h / (fit["sigma"] ** 2 * m.design.X.shape[1])


def test_influence_refuses_other_fits(pig):
    with pytest.raises(ArgumentError, match="model"):
        hatvalues(lmmlib.lm("weight ~ weeks", pig))


def test_sparse_factor_and_chunks_agree_with_dense(monkeypatch):
    # the sparse LU path (large q) and row chunks give the dense Cholesky's leverages
    # (the same linear system solved two ways: rounding, 1e-10)
    m, _ = influence_fit("influence_sleepstudy")
    dense = m.hatvalues().to_numpy()
    monkeypatch.setattr(influence, "DENSE_MAX", 0)
    monkeypatch.setattr(influence, "CHUNK", 7)
    np.testing.assert_allclose(m.hatvalues().to_numpy(), dense, rtol=1e-10)


def test_pls_fitted_values_are_the_models():
    # H y is the PLS fit: the model's fitted values (same θ̂, rounding only)
    m, _ = influence_fit("influence_sleepstudy")
    _, fitted = influence._leverage(lambda_z(m.design, m.theta)[1], m.design.X, m.design.y)
    np.testing.assert_allclose(fitted, m.fitted.to_numpy(), rtol=1e-10)


def test_influence_padded_with_na_exclude():
    # lme4's napredict: rows left out for a missing value get NA; the others are those
    # of the fit without the row (the same fit: rounding only)
    fx = fixture("influence_sleepstudy_ml")
    d = fixture_data(fx)
    d.loc[d.index[5], "Reaction"] = np.nan
    with pytest.warns(lmmlib.DataWarning, match="missing"):
        m = lmmlib.lmer(fx["formula"], d, reml=False, na_action="exclude")
    h, c = m.hatvalues(), m.cooks_distance()
    assert len(h) == len(d) and np.isnan(h.iloc[5]) and np.isnan(c.iloc[5])
    omit = lmmlib.lmer(fx["formula"], d.dropna(), reml=False)
    np.testing.assert_allclose(h.dropna(), omit.hatvalues(), rtol=1e-10)
    np.testing.assert_allclose(c.dropna(), omit.cooks_distance(), rtol=1e-8)


@pytest.mark.parametrize("call, match", [
    (lambda m: lmmlib.anova(m, ddf="lme4"), "ddf must be one of"),
    (lambda m: lmmlib.drop1(m, test="LRT"), "test must be one of"),
    (lambda m: lmmlib.drop1("m"), "model"),
    (lambda m: anova_type3(m, ddf=3), "ddf must be one of"),
    (lambda m: anova_type3(m, at=([1.0], 2.0)), "3 finite theta"),
    (lambda m: anova_type3(m, at=(m.theta, -1.0)), "sigma > 0"),
    (lambda m: anova_type3(m, at=5), "pair"),
    (lambda m: lmmlib.anova(m, type=4), "type must be one of"),
    (lambda m: anova_fixed(m, type=True), "type must be one of"),
])
def test_bad_arguments(call, match):
    m, _ = influence_fit("influence_sleepstudy")
    with pytest.raises(ArgumentError, match=match):
        call(m)
