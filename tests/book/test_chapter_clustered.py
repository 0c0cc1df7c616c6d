"""Chapter 1 (book/clustered.md): the exercise solutions' key numbers.

The chapter's simulations are reproduced here from their seeds with
``simulate_oneway`` and the closed forms of the balanced one-way layout are
computed with numpy, independently of the fits the chapter makes.

Tolerances (tests/conftest.py): closed forms and identities of the same numbers
are exact up to rounding (1e-12 relative for sums over at most 1000 values);
what comes out of lmmlib's REML optimiser also gets its curvature bound under
OPT_GAP (``model_spread``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_spread, profiled_at
from test_chapters import executed, glued, number

import lmmlib
from lmmlib.course.neyman_scott import simulate_oneway


@pytest.fixture(scope="module")
def values() -> dict[str, float]:
    return {k: number(v) for k, v in glued(executed("clustered")).items()}


def within_ss(data) -> float:
    """Within-cluster sum of squares of a one-way layout (numpy, from the raw column)."""
    y = data["y"].to_numpy(float)
    codes = data["id"].cat.codes.to_numpy()
    means = np.bincount(codes, weights=y) / np.bincount(codes)
    return float(np.sum((y - means[codes]) ** 2))


def test_neyman_scott_bias_needs_21_measurements(values):
    # relative bias of RSS/(nm) is 1/m: below 0.05 first at m = 21 (closed form, exact)
    assert values["ex_bias_m"] == 21


def test_design_effect_by_hand(values):
    # rho = 0.25/0.29 and 1 + 7 rho for tau = 0.5, sigma = 0.2, m = 8: closed forms,
    # double-precision rounding only
    rho = 0.25 / 0.29
    assert values["ex_deff_rho"] == pytest.approx(rho, rel=1e-12)
    assert values["ex_deff"] == pytest.approx(1 + 7 * rho, rel=1e-12)
    assert values["ex_deff_sqrt"] == pytest.approx(np.sqrt(1 + 7 * rho), rel=1e-12)


def test_fixed_effects_mle_is_half_of_reml(values):
    data = simulate_oneway(n=500, m=2, rng=np.random.default_rng(7))
    ssw = within_ss(data)
    # fixed-effects MLE = SSW / (nm): the same sum of squares, rounding only
    assert values["ex_ns_fixed"] == pytest.approx(ssw / 1000, rel=1e-12)
    # balanced one-way REML (MSA > MSE here): sigma2 = SSW / (n(m-1)) at the exact
    # optimum; lmmlib's optimum within OPT_GAP moves it by its curvature bound
    fit = lmmlib.lmer("y ~ 1 + (1 | id)", data)
    spread = float(model_spread(fit, lambda th: np.array([profiled_at(fit, th)["sigma"] ** 2]))[0])
    assert values["ex_ns_reml"] == pytest.approx(ssw / 500, abs=1e-12 + spread)
    # the ratio is 1/2 within the same bound, taken relative to sigma2
    assert values["ex_ns_ratio"] == pytest.approx(0.5, abs=1e-12 + spread / (ssw / 500))


def test_fixed_cluster_effects_se(values):
    # the chapter's pseudo-replication data (seed 20240611): the average of 30 cluster
    # means has variance MSE / N with MSE = SSW / (N - n), a closed form of lm (rounding)
    data = simulate_oneway(n=30, m=8, mu=2.5, tau=0.5, sigma=0.2,
                           rng=np.random.default_rng(20240611))
    mse = within_ss(data) / (240 - 30)
    assert values["ex_fixed_se"] == pytest.approx(np.sqrt(mse / 240), rel=1e-10)
    # ... and it is the smallest of the three standard errors (the chapter's point)
    assert values["ex_fixed_se"] < values["ps_se_naive"] < values["ps_se_mixed"]


def test_within_mean_square_is_consistent(values):
    # the within-cluster mean square is SS_W/(n(m-1)) = 2 x the fixed-effects MLE for m = 2
    # (the chapter derives it from the same replicates: rounding only)
    assert values["ns_within_big"] == pytest.approx(2 * values["ns_fixed_big"], rel=1e-12)
    # Monte Carlo: 20 replicates of n = 3000 clusters; SS_W/(sigma2 n) is chi2_n / n, so
    # the mean of 20 has SD sigma2 sqrt(2 / (20 n)); 4 SDs bound the gap to the truth
    sd = 0.04 * np.sqrt(2 / (20 * 3000))
    assert abs(values["ns_within_big"] - 0.04) < 4 * sd
    # ... while the MLE sits at sigma2 / 2 (the Neyman-Scott limit), within the same bound
    assert abs(values["ns_fixed_big"] - 0.02) < 4 * sd / 2
    # the random-effects ML and REML estimates equal the within mean square in every
    # replicate whose tau2 estimate is positive (here all: tau2 = 0.25 >> sigma2 / 2),
    # up to the optimiser's tolerance, far below the Monte Carlo SD
    assert values["ns_ml_big"] == pytest.approx(values["ns_within_big"], abs=sd / 10)
    assert values["ns_reml_big"] == pytest.approx(values["ns_within_big"], abs=sd / 10)


def test_identifiability_error_is_a_short_message():
    # the m = 1 cell prints the lmmlib error as one line, with no traceback
    nb = executed("clustered")
    cell = next(c for c in nb.cells if c.cell_type == "code" and "except lmmlib" in c.source)
    text = "".join(out.get("text", "") for out in cell.outputs)
    assert text.startswith("DataError: ") and "not separately identifiable" in text
    assert "Traceback" not in text and not any(o.output_type == "error" for o in cell.outputs)
