"""Figures: each function draws what it should on the Axes it returns (Agg backend).

The plotted data are checked against the model quantities they show (lme4
fixture fits from tests/conftest.py); the figures themselves were inspected by eye.
These are the same numbers passed to matplotlib (which stores them as float64):
identities up to rounding, compared at numpy's default rtol 1e-7 or as stated.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import fitted  # noqa: E402

from lmmlib import plots  # noqa: E402
from lmmlib.course.shrinkage import shrinkage  # noqa: E402
from lmmlib.errors import DataError  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_caterpillar_sorted_with_intervals():
    m = fitted("pig_reml")
    ax = plots.caterpillar(m, level=0.95)
    points = np.asarray(ax.lines[0].get_xdata(), dtype=float)
    re = m.ranef()
    np.testing.assert_allclose(points, np.sort(re["condval"]))
    # ±1.96 cond. sd bars
    seg = ax.collections[0].get_segments()
    widths = np.array([s[1, 0] - s[0, 0] for s in seg], dtype=float)
    # 1.959964 is qnorm(0.975) = 1.95996398 rounded: 1e-8 relative, and the width is a
    # difference of two plotted endpoints (rounding 1e-15 of the BLUP): rtol 1e-6
    np.testing.assert_allclose(widths, 2 * 1.959964 * re.sort_values("condval")["condsd"],
                               rtol=1e-6)
    assert "id" in ax.get_ylabel() and "1.96" in ax.get_xlabel()
    assert len(ax.get_yticklabels()) == 48


def test_caterpillar_slope_term_and_errors():
    m = fitted("nepal_slope")
    ax = plots.caterpillar(m, term="ageC")
    assert "ageC" in ax.get_xlabel()
    assert len(ax.lines[0].get_xdata()) == 197
    with pytest.raises(DataError, match="nosuch"):
        plots.caterpillar(m, factor="nosuch")
    with pytest.raises(DataError, match="weeks"):
        plots.caterpillar(m, term="weeks")


def test_shrinkage_plot_joins_means_to_blups():
    m = fitted("nepal_ri")
    s = shrinkage(m)
    ax = plots.shrinkage_plot(s)
    with pytest.raises(DataError, match=r"shrinkage_plot\(lmmlib.shrinkage\(model\)\)"):
        plots.shrinkage_plot(m)
    segs = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(segs) == 197
    starts = np.sort([line.get_ydata()[0] for line in segs])
    ends = np.sort([line.get_ydata()[1] for line in segs])
    np.testing.assert_allclose(starts, np.sort(s["raw"]))
    np.testing.assert_allclose(ends, np.sort(s["blup"]))
    assert "arm" in ax.get_ylabel()


def test_residuals_vs_fitted_and_qq():
    m = fitted("pig_reml")
    fig, (a1, a2, a3) = plt.subplots(1, 3)
    assert plots.residuals_vs_fitted(m, ax=a1) is a1
    offsets = a1.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], m.fitted)
    np.testing.assert_allclose(offsets[:, 1], m.residuals)
    assert a1.get_xlabel() == "fitted value" and a1.get_ylabel() == "residual"
    plots.qq(m, ax=a2)
    y = a2.collections[0].get_offsets()[:, 1]
    np.testing.assert_allclose(y, np.sort(m.residuals / m.sigma))
    plots.qq(m, which="ranef", ax=a3)
    assert len(a3.collections[0].get_offsets()) == 48
    with pytest.raises(DataError, match="which"):
        plots.qq(m, which="fitted")


def test_bootstrap_hist_point_mass_and_pvalue():
    rng = np.random.default_rng(13)
    sample = np.where(rng.random(500) < 0.6, 0.0, rng.chisquare(1, 500))
    ax = plots.bootstrap_hist(sample, 2.568371, chisq_df=1, xlabel="LRT")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    p = np.mean(sample >= 2.568371)
    assert any(f"{p:.3f}" in t for t in labels)
    zero = np.abs(sample) < 1e-6  # the default zero_tol
    assert any(f"point mass at 0: {zero.mean():.0%}" in t for t in labels)
    # bars: the non-zero part has area equal to its fraction of the sample
    area = sum(b.get_width() * b.get_height() for b in ax.patches)
    # closed form of a density histogram: exact up to the rounding of ~30 products
    assert area == pytest.approx(1 - zero.mean(), rel=1e-9)
    assert ax.get_xlabel() == "LRT"
    with pytest.raises(DataError):
        plots.bootstrap_hist([np.nan], 1.0)


def test_profile_zeta_panels():
    v = np.linspace(-2, 2, 9)
    prof = pd.concat([pd.DataFrame({"par": "sigma", "value": 1 + 0.1 * v, "zeta": v}),
                      pd.DataFrame({"par": "(Intercept)", "value": 5 + v, "zeta": v})])
    axes = plots.profile_zeta(prof)
    assert len(axes) == 2
    assert [a.get_xlabel() for a in axes] == ["sigma", "(Intercept)"]
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), v)
    one = plots.profile_zeta(prof, par="sigma")
    assert one.get_ylabel() == "ζ"
    with pytest.raises(DataError, match="zeta"):
        plots.profile_zeta(prof.drop(columns="zeta"))
    with pytest.raises(DataError, match="nosuch"):
        plots.profile_zeta(prof, par="nosuch")


def test_spaghetti(pig, nepal):
    ax = plots.spaghetti(pig, "weeks", "weight", "id")
    assert len(ax.lines) == 48 + 1  # one curve per pig and the weekly mean
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), pig.groupby("weeks")["weight"].mean())
    ax2 = plots.spaghetti(nepal, "age", "arm", "id", max_groups=20, rng=1)
    assert len(ax2.lines) == 20  # continuous age: no mean curve
    assert ax2.get_xlabel() == "age" and ax2.get_ylabel() == "arm"
    with pytest.raises(DataError, match="height"):
        plots.spaghetti(pig, "weeks", "height", "id")
