"""Appendix "Reproducing the course's printed numbers": the tables are well formed, every
printed value is quoted verbatim from the course seeds, and the computed "our value"
column equals lme4's fits (or a closed form, or the chapters' own expectations).

lme4 fixtures (R 4.2.2, lme4 1.1-31): pig_lm, pig_reml, pig_ml, nepal_ri, nepal_lit,
nepal_slope, nepal_indep, nepal_ri_ml, nepal_slope_ml, pulp_reml, pulp_ml, pulp_lm,
disks_lm, disks_plot, disks_full, anova/anova_pulp, pages/diagnostics
(book_pages.R: the refit without children 57 and 105) and book/exercises
(sim_counts, the GLMM chapter's simulated counts).

Tolerances (tests/conftest.py): closed forms and lm fits are exact up to rounding;
what comes out of lmmlib's optimiser gets the curvature bound of its fixture's optimum
under OPT_GAP (``optimum_spread``), criteria OPT_GAP itself; Monte Carlo results are
compared within four Monte Carlo standard errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import OPT_GAP, course_data, lme4_fixture, optimum_spread, reference
from test_chapters import BOOK, executed, glued, number

from lmmlib.course.neyman_scott import simulate_oneway

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
CELL = re.compile(r"(?<!\\)\|")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    out = {}
    for key, text in glued(executed("reproduction")).items():
        try:
            out[key] = number(text)
        except AssertionError:  # the glued Markdown of the error class
            continue
    return out


def rows() -> list[list[str]]:
    """The table rows of the page, as lists of stripped cells."""
    lines = (BOOK / "reproduction.md").read_text().splitlines()
    return [[c.strip() for c in CELL.split(line)[1:-1]] for line in lines
            if re.match(r"^\| 00\d \|", line)]


def test_tables_are_well_formed():
    # seed | quantity | printed value | our value | where | why: six cells in every row,
    # none empty, and the our-value cell computed (glued) or explicitly marked
    table = rows()
    assert len(table) >= 50
    for cells in table:
        assert len(cells) == 6, cells[1]
        assert all(cells), cells[1]
        assert "{glue" in cells[3] or "{cite" in cells[3] or cells[3].startswith("—"), cells[1]
        assert "{ref}" in cells[4], cells[1]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the course seeds are not in this checkout")
def test_printed_values_are_verbatim_from_the_seeds():
    seeds = {p.name[:3]: p.read_text() for p in SEEDS.glob("0*.txt")}
    for cells in rows():
        missing = [t for t in NUMBER.findall(cells[2]) if t not in seeds[cells[0]]]
        assert not missing, f"{cells[1]}: {missing} not in seed {cells[0]}"


def test_clustered(values):
    # the fixed-effects MLE with m = 2: RSS/σ² ~ χ²_n, so σ̂²/σ² = χ²_n/(2n) has mean 1/2
    # and SD 1/sqrt(2n) = 0.01 for n = 5000: 4 SDs
    assert values["cl_n"] == 5000
    assert values["cl_ratio"] == pytest.approx(0.5, abs=4 / np.sqrt(2 * 5000))


def test_pig(values):
    lm, reml, ml = (lme4_fixture(n) for n in ("pig_lm", "pig_reml", "pig_ml"))
    # lm: closed form, rounding only
    assert values["pig_lm_b0"] == pytest.approx(lm["beta"]["values"][0], abs=1e-9)
    assert values["pig_lm_se_b0"] == pytest.approx(lm["se"][0], abs=1e-9)
    assert values["pig_lm_se_b1"] == pytest.approx(lm["se"][1], abs=1e-9)
    assert values["pig_lm_sigma"] == pytest.approx(lm["sigma"], abs=1e-9)
    # the stratified SE of the slope equals the random-intercept one (balanced design);
    # R lm(weight ~ weeks + factor(id) - 1): SE of a pig intercept 0.72556840
    assert values["pig_st_se_alpha"] == pytest.approx(0.72556840, abs=1e-7)
    assert values["pig_st_alpha1"] == pytest.approx(17.61719, abs=5e-6)  # seed 001
    assert values["pig_st_alpha48"] == pytest.approx(25.67274, abs=5e-6)  # seed 001
    # REML and ML fits: lme4's values plus the spread of lmmlib's optimum
    assert values["pig_reml_crit"] == pytest.approx(reml["objective"], abs=OPT_GAP)
    for fit, fx, tag in ((reml, "pig_reml", "reml"), (ml, "pig_ml", "ml")):
        vc = fit["varcorr"]
        assert values[f"pig_{tag}_tau2"] == pytest.approx(
            vc[0]["vcov"], abs=optimum_spread(fx, "vcov", 0))
        assert values[f"pig_{tag}_sigma2"] == pytest.approx(
            vc[1]["vcov"], abs=optimum_spread(fx, "vcov", 1))
        assert values[f"pig_{tag}_se_b0"] == pytest.approx(
            fit["se"][0], abs=optimum_spread(fx, "se", 0))
        assert values[f"pig_{tag}_se_b1"] == pytest.approx(
            fit["se"][1], abs=optimum_spread(fx, "se", 1))
    # identities of the fit's own numbers: rounding only
    tau2, sigma2 = values["pig_reml_tau2"], values["pig_reml_sigma2"]
    assert values["pig_icc"] == pytest.approx(tau2 / (tau2 + sigma2), rel=1e-9)
    assert values["pig_r"] == pytest.approx(tau2 / (tau2 + sigma2 / 9), rel=1e-9)
    assert values["pig_n_i"] == 9 and values["pig_nobs"] == 432 and values["pig_ngroups"] == 48


def test_nepal(values):
    # lme4's tight refits (*_tight: the optimum itself; the default fit of nepal_slope stops
    # 6e-4 short in θ, README of tests/reference) plus the spread of lmmlib's optimum
    fx = {n: lme4_fixture(n) for n in ("nepal_ri", "nepal_lit", "nepal_slope", "nepal_indep",
                                       "nepal_ri_ml", "nepal_slope_ml")}

    def check(key, name, i):
        expected = fx[name]["beta_tight"][i]
        assert values[key] == pytest.approx(expected, abs=1e-10 + optimum_spread(name, "beta", i))

    def check_var(key, name, i):
        # a variance (θ_i σ)² of a diagonal term, from the tight θ and σ
        expected = (fx[name]["theta_tight"][i] * fx[name]["sigma_tight"]) ** 2
        assert values[key] == pytest.approx(expected, abs=1e-10 + optimum_spread(name, "vcov", i))

    check("nep_ri_int", "nepal_ri", 0)
    check("nep_ri_age", "nepal_ri", 1)
    check("nep_lit", "nepal_lit", 2)
    check("nep_slope_int", "nepal_slope", 0)
    check("nep_slope_age", "nepal_slope", 1)
    check("nep_indep_int", "nepal_indep", 0)
    check("nep_indep_age", "nepal_indep", 1)
    check_var("nep_ri_tau2", "nepal_ri", 0)
    check_var("nep_indep_tau0sq", "nepal_indep", 0)
    assert values["nep_ri_age_se"] == pytest.approx(
        fx["nepal_ri"]["se"][0 + 1], abs=1e-9 + optimum_spread("nepal_ri", "se", 1))
    # AIC and the LRT from lme4's tight criteria (the default slope fit stops 1e-6 above
    # its optimum): within OPT_GAP of each
    slope_ml, ri_ml = fx["nepal_slope_ml"]["objective_tight"], fx["nepal_ri_ml"]["objective_tight"]
    assert values["nep_aic_slope"] == pytest.approx(slope_ml + 2 * 6, abs=OPT_GAP)
    assert values["nep_lrt"] == pytest.approx(ri_ml - slope_ml, abs=2 * OPT_GAP)
    # lme4 1.1-31's anova() prints 0.013 for this test (the chapter's admonition)
    assert values["nep_lrt_p"] == pytest.approx(0.013, abs=5e-4)
    # the refit without children 57 and 105: lme4 (book_pages.R) to 15 digits; seed 001
    # prints 13.949133 and 0.031182 (the test of the diagnostics chapter adds the spread)
    drop = reference("pages", "diagnostics")["nepal_drop_57_105"]["beta"]["values"]
    assert values["nep_drop_int"] == pytest.approx(drop[0], abs=5e-7)
    assert values["nep_drop_age"] == pytest.approx(drop[1], abs=5e-7)
    # the notes' table: the Nepal chapter's expectations (test_chapter_nepal.py)
    assert values["nep_notes_lit"] == pytest.approx(0.811968, abs=5e-5)
    assert values["nep_notes_sex"] == pytest.approx(0.024062, abs=5e-5)
    assert values["nep_notes_wt"] == pytest.approx(0.0098668, abs=1e-6)
    # one intercept per child: least squares by numpy (rounding only)
    nepal = course_data("nepal")
    X = np.column_stack([nepal["age"].to_numpy(float),
                         (nepal["id"].to_numpy()[:, None] == np.unique(nepal["id"])).astype(float)])
    coef = np.linalg.lstsq(X, nepal["arm"].to_numpy(float), rcond=None)[0]
    assert values["nep_fe_age"] == pytest.approx(coef[0], abs=1e-10)


def test_pulp(values):
    reml, ml, lm = (lme4_fixture(n) for n in ("pulp_reml", "pulp_ml", "pulp_lm"))
    assert values["pulp_reml_crit"] == pytest.approx(reml["objective"], abs=OPT_GAP)
    assert values["pulp_tau2_reml"] == pytest.approx(
        reml["varcorr"][0]["vcov"], abs=optimum_spread("pulp_reml", "vcov", 0))
    assert values["pulp_se"] == pytest.approx(reml["se"][0],
                                              abs=optimum_spread("pulp_reml", "se", 0))
    assert values["pulp_b0"] == pytest.approx(60.4, abs=1e-9)  # the grand mean (balanced)
    assert values["pulp_tau2_mom"] == pytest.approx((0.446666667 - 0.10625) / 5, abs=1e-9)
    table = reference("anova", "anova_pulp")["table"]["values"]
    assert values["pulp_lrt"] == pytest.approx(table["Chisq"][1], abs=OPT_GAP)
    assert values["pulp_lrt"] == pytest.approx(2 * (ml["loglik"] - lm["loglik"]), abs=OPT_GAP)
    # bootstrap: another stream than R's; two estimates of one p-value differ by sqrt(2)
    # MC standard errors (0.005 each); the zero share likewise (0.0145 each)
    assert values["pulp_boot_p"] == pytest.approx(0.026, abs=4 * np.sqrt(2) * 0.005)
    assert values["pulp_boot_zero"] == pytest.approx(0.69, abs=4 * np.sqrt(2) * 0.0145)
    # the ratio 1/r = (tau2 + sigma2/5)/tau2 at lme4's variances, plus the spread of tau2
    tau2, sigma2 = reml["varcorr"][0]["vcov"], reml["varcorr"][1]["vcov"]
    spread = (sigma2 / 5) / tau2**2 * optimum_spread("pulp_reml", "vcov", 0)
    assert values["pulp_ratio"] == pytest.approx((tau2 + sigma2 / 5) / tau2, abs=1e-9 + spread)
    # predictions: seed 002 prints 60.27806 and 60.61340 (the BLUPs move with θ by their
    # spread, far below the printed rounding)
    assert values["pulp_pred_a"] == pytest.approx(60.27806, abs=5e-6 + optimum_spread(
        "pulp_reml", "condval", 0))
    assert values["pulp_pred_d"] == pytest.approx(60.61340, abs=5e-6 + optimum_spread(
        "pulp_reml", "condval", 3))
    # prediction intervals: 2.5 % and 97.5 % quantiles of 1000 draws; the MC SE of such a
    # quantile is sqrt(p(1-p)/B)/density = 0.03 for these widths; R's and ours each
    # carry one: 4 sqrt(2) of them (0.17)
    for key, printed in (("pulp_pi_new_lo", 59.62780), ("pulp_pi_new_hi", 61.24264),
                         ("pulp_pi_a_lo", 59.60897), ("pulp_pi_a_hi", 60.97931)):
        assert values[key] == pytest.approx(printed, abs=4 * np.sqrt(2) * 0.03), key


def test_soybean_disks(values):
    # lme4 fixtures of the three disk-level fits: criteria within OPT_GAP, plus the
    # rounding of 7323-row sums (1e-11 relative of 21000: 2e-7)
    for key, name in (("lm", "disks_lm"), ("plot", "disks_plot"), ("full", "disks_full")):
        fx = lme4_fixture(name)
        assert values[f"soy_aic_{key}"] == pytest.approx(fx["aic"], abs=OPT_GAP + 3e-7)
        assert values[f"soy_bic_{key}"] == pytest.approx(fx["bic"], abs=OPT_GAP + 3e-7)


def test_glmm(values):
    # the GLMM chapter's simulated counts: 10 sites x 3; lme4's glmer on them
    # (book/exercises.json sim_counts); parameters within the suite's 1e-4 of lme4's
    assert values["glmm_nsites"] == 10 and values["glmm_per_site"] == 3
    assert values["glmm_nfixef"] == 1 and values["glmm_ntheta"] == 1
    tau = reference("book", "exercises")["sim_counts"]["varcorr"]["sdcor"][0]
    assert values["glmm_tau"] == pytest.approx(tau, abs=1e-4)


def test_cloning(values):
    # the m = 1 data: the chapter's simulation (seed 1234), its mean exactly
    data1 = simulate_oneway(n=100, m=1, mu=2.5, tau=0.5, sigma=0.2,
                            rng=np.random.default_rng(1234))
    y = data1["y"].to_numpy()
    assert values["dc_y_mean"] == pytest.approx(y.mean(), abs=1e-12)
    # 25 clones: the closed-form MLEs of a normal sample (as test_chapter_cloning.py: MC
    # error plus the O(1/K) prior pull)
    assert values["dc_sum_mu"] == pytest.approx(y.mean(), abs=0.005)
    assert values["dc_sum"] == pytest.approx(y.var(), rel=0.02)
    # the diagnostics flag the non-identified split, as the notes' run (seed 000)
    assert values["dc_lam_1"] / values["dc_lam_25"] < 3
    assert values["dc_rhat_25"] > values["dc_rhat_1"]
    assert values["dc_corr"] < -0.98
    assert values["dc_s2"] + values["dc_t2"] == pytest.approx(values["dc_sum"], rel=1e-9)
    # the prediction intervals of the 100 individuals
    assert values["dc_below"] + values["dc_inside"] + values["dc_above"] == 100


@pytest.mark.parametrize("chapter", ["glmm", "nepal", "pulp", "soybean"])
def test_chapter_rows_link_to_the_chapter(chapter):
    # the course's printed numbers sit in the chapter's section of this page, each row
    # linking to a label of that chapter where the number is computed; the chapter
    # keeps one sentence linking here and no "the notes print" asides
    page = (BOOK / "reproduction.md").read_text()
    section = page.split(f"(reproduction-{chapter})=")[1].split("\n(reproduction-")[0]
    targets = re.findall(r"\{ref\}`[^`<]*<([^>]+)>`", section)
    text = (BOOK / f"{chapter}.md").read_text()
    assert targets and all(f"({t})=" in text for t in targets)
    assert f"{{ref}}`reproduction-{chapter}`" in text
    for aside in ("(the notes:", "(notes:", "the notes print", "the values the notes print"):
        assert aside not in text
