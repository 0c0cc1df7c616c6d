"""Bootstrap prediction intervals (course seed 002: pulp, new and known operator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAME_OPTIMUM_SE, course_value, fitted, lme4_fixture, optimum_spread

import lmmlib
from lmmlib.inference.bootstrap import CHUNK
from lmmlib.inference.predint import prediction_interval

# The course's loop (seed 002) run in R 4.2.2 / lme4 1.1-31 with B = 20000 and set.seed(2):
# y <- simulate(mmod, use.u = TRUE); bmod <- refit(mmod, y); then
#   new operator:   predict(bmod, re.form = ~0) + rnorm(1, sd = group.sd) + rnorm(1, sd = resid.sd)
#   operator "a":   predict(bmod, newdata = data.frame(operator = "a")) + rnorm(1, sd = resid.sd)
#   new, use.u = FALSE (Faraway's textbook version): as the first, simulating new effects.
# quantile(pv, c(0.025, 0.975)); Monte Carlo s.e. of each limit about 0.008.
R_NEW = (59.5694, 61.2444)
R_KNOWN = (59.6346, 60.9893)
R_NEW_FRESH_U = (59.5408, 61.2807)
# The course notes' printout (B = 1000): s.e. of each limit about 0.035
COURSE_NEW = (59.62780, 61.24264)
COURSE_KNOWN = (59.60897, 60.97931)


@pytest.fixture(scope="module")
def mmod(pulp):
    return lmmlib.lmer("bright ~ 1 + (1 | operator)", pulp)


def _limit_se(n: int, sd: float) -> float:
    """Monte Carlo s.e. of a 2.5% quantile of n normal draws with s.d. ``sd``."""
    density = np.exp(-0.5 * 1.96**2) / np.sqrt(2 * np.pi) / sd
    return float(np.sqrt(0.025 * 0.975 / n) / density)


def _close(limits, reference, tol) -> None:
    np.testing.assert_allclose(np.asarray(limits, dtype=float), reference, rtol=0, atol=tol)


@pytest.mark.parametrize(("group", "r_ref", "course", "fit", "sd"), [
    # fit: course notes, mu-hat 60.4 and fixef + ranef of operator a 60.27806;
    # sd: predictive s.d. sqrt(0.0681 + 0.1063 + 0.1063/20) and sqrt(0.1063 + ...)
    (None, R_NEW, COURSE_NEW, 60.4, 0.42),
    ("a", R_KNOWN, COURSE_KNOWN, 60.27806, 0.35),
])
def test_pulp_course_intervals(mmod, group, r_ref, course, fit, sd):
    n = 4000
    res = prediction_interval(mmod, group=group, nsim=n, rng=2002)
    # 60.4 is the grand mean (exact, rounding only); 60.27806 adds operator a's BLUP,
    # printed to 5 decimals and moved by the optimiser's spread of that BLUP (7.6e-6)
    spread = 0.0 if group is None else optimum_spread("pulp_reml", "condval", 0)
    assert res["fit"].iloc[0] == course_value(fit, 5, spread)
    limits = res[["lower", "upper"]].iloc[0]
    # within 3 combined Monte Carlo s.e. of R's B = 20000 run of the same procedure ...
    _close(limits, r_ref, 3 * np.hypot(_limit_se(n, sd), _limit_se(20000, sd)))
    # ... and of the numbers printed in the course notes (B = 1000)
    _close(limits, course, 3 * np.hypot(_limit_se(n, sd), _limit_se(1000, sd)))


def test_new_random_effects_in_the_simulation(mmod):
    n = 4000
    res = prediction_interval(mmod, nsim=n, rng=2002, use_u=False)
    sd = 0.443  # adds the variance of the intercept, 0.1494^2 (course notes)
    _close(res[["lower", "upper"]].iloc[0], R_NEW_FRESH_U,
           3 * np.hypot(_limit_se(n, sd), _limit_se(20000, sd)))
    assert res.attrs["use_u"] is False and res.attrs["nsim"] == n


@pytest.mark.parametrize("group", [None, "a"])
def test_vectorised_path_equals_refit_loop(mmod, group):
    fast = prediction_interval(mmod, group=group, nsim=CHUNK + 5, rng=8)
    loop = prediction_interval(mmod, group=group, nsim=CHUNK + 5, rng=8, batch=False)
    # same simulated responses and draws; batch_refit finds the exact optimum, each
    # refit() one within OPT_GAP of it, so every simulated prediction (β̂ plus a BLUP)
    # moves by at most SAME_OPTIMUM_SE of its standard error (< σ), and so do the
    # quantiles (seen 6e-9; one pulp refit stops 3e-5 short in θ on the Sandybridge
    # kernel, which moves operator a's BLUP by ~3e-6)
    tol = SAME_OPTIMUM_SE * mmod.sigma
    np.testing.assert_allclose(fast.to_numpy(), loop.to_numpy(), atol=tol)


def test_covariates_and_known_level_blups_in_the_vectorised_path(pig):
    m = lmmlib.lmer("weight ~ weeks + (1 | id)", pig)
    new = pd.DataFrame({"weeks": [1, 9]}, index=["first", "last"])
    for group in (None, 7):  # id labels are strings; 7 finds "7"
        fast = prediction_interval(m, new, group=group, nsim=CHUNK + 5, rng=4)
        loop = prediction_interval(m, new, group=group, nsim=CHUNK + 5, rng=4, batch=False)
        # as above: SAME_OPTIMUM_SE of the residual SD
        np.testing.assert_allclose(fast.to_numpy(), loop.to_numpy(),
                                   atol=SAME_OPTIMUM_SE * m.sigma)
        assert list(fast.index) == ["first", "last"]
    known = m.predict(new.assign(id="7"))
    # the point prediction is the fit's own prediction (another code path: rounding only)
    np.testing.assert_allclose(fast["fit"], known, rtol=1e-10)


def test_same_seed_same_interval(mmod):
    a = prediction_interval(mmod, nsim=300, rng=5)
    b = prediction_interval(mmod, nsim=300, rng=5)
    c = prediction_interval(mmod, nsim=300, rng=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert a.attrs == {"nsim": 300, "seed": 5, "level": 0.95, "use_u": True, "group": None}
    narrow = prediction_interval(mmod, nsim=300, rng=5, level=0.5)
    assert narrow["lower"].iloc[0] > a["lower"].iloc[0]
    assert narrow["upper"].iloc[0] < a["upper"].iloc[0]


def test_random_slopes_refit_one_by_one():
    m = fitted("sleepstudy_reml")
    fx = lme4_fixture("sleepstudy_reml")
    new = pd.DataFrame({"Days": [0, 9]})
    res = prediction_interval(m, new, group="308", nsim=12, rng=1)
    # lme4 fixture: fixef + ranef of Subject 308 at Days 0 and 9
    b0, b1 = fx["beta"]["values"]
    re = {r["term"]: r["condval"] for r in fx["ranef"] if r["grp"] == "308"}
    expected = [b0 + re["(Intercept)"], b0 + re["(Intercept)"] + 9 * (b1 + re["Days"])]
    # lme4's default fit: β does not move with θ here (balanced design), the BLUPs do:
    # lmmlib's spread of subject 308's BLUPs is 1e-3 (intercept) and 2e-4 (Days) and
    # lme4's default fit (1.5e-9 above its minimum) adds a sixth of that, so at most
    # 1.2e-3 at day 0 and 3.4e-3 at day 9; 1e-5 relative is 2.5e-3 and 4.3e-3 there
    np.testing.assert_allclose(res["fit"], expected, rtol=1e-5)
    assert np.all(res["lower"] < res["fit"]) and np.all(res["fit"] < res["upper"])


def test_crossed_factors_take_a_dict():
    m = fitted("penicillin")
    res = prediction_interval(m, group={"plate": "a"}, nsim=6, rng=1)
    assert res.shape == (1, 3)
    with pytest.raises(lmmlib.DataError, match="give group as a dict"):
        prediction_interval(m, group="a", nsim=6, rng=1)
    with pytest.raises(lmmlib.DataError, match="not grouping factors"):
        prediction_interval(m, group={"plates": "a"}, nsim=6, rng=1)


def test_bad_requests_are_errors(mmod, pulp):
    with pytest.raises(lmmlib.DataError, match="level 'z' of 'operator'"):
        prediction_interval(mmod, group="z", nsim=5, rng=1)
    with pytest.raises(lmmlib.LmmlibError, match="mixed model"):
        prediction_interval(lmmlib.lm("bright ~ 1", pulp), nsim=5, rng=1)
    with pytest.raises(lmmlib.LmmlibError, match="level must be"):
        prediction_interval(mmod, nsim=5, rng=1, level=95)
    with pytest.raises(lmmlib.DataError, match="no rows"):
        prediction_interval(mmod, pd.DataFrame({"x": []}), nsim=5, rng=1)


def test_rng_generator_and_its_recorded_root_agree(mmod):
    a = prediction_interval(mmod, nsim=CHUNK + 5, rng=np.random.default_rng(21), batch=False,
                            n_jobs=2)
    assert a.attrs["seed"] == int(np.random.default_rng(21).integers(0, 2**63))
    b = prediction_interval(mmod, nsim=CHUNK + 5, rng=a.attrs["seed"], batch=False, n_jobs=1)
    pd.testing.assert_frame_equal(a, b)
    assert b.attrs["nsim"] == CHUNK + 5
