"""Summaries follow lme4's printed layout.

The layout is matched literally; the numbers in it are parsed and compared with
what lme4 / lmerTest print for the same fits, to half a unit of the last
printed digit plus how far lmmlib's optimum can move them (``course_value`` and
``optimum_spread``, tests/conftest.py): a value within that of a rounding
boundary (penicillin's p-value 3.6192e-07, shown as 3.62e-07) may legitimately
print one digit differently, and would make a literal match depend on where
the optimiser stops.
"""

from __future__ import annotations

import re

import numpy as np
from conftest import OPT_GAP, course_value, fitted, optimum_spread

NUM = r"(-?[0-9.]+(?:e[-+]?\d+)?)"


def shown(pattern: str, text: str) -> list[float]:
    """The numbers captured by ``pattern`` (layout matched literally around them)."""
    match = re.search(pattern, text)
    assert match, f"layout {pattern!r} not found in:\n{text}"
    return [float(g) for g in match.groups()]


def test_reml_summary_layout():
    text = str(fitted("sleepstudy_reml").summary())
    assert text.startswith("Linear mixed model fit by REML")
    (crit,) = shown(rf"REML criterion at convergence: {NUM}\n", text)
    assert crit == course_value(1743.6283, 4, OPT_GAP)  # lme4: 1743.6283
    for section in ("Scaled residuals:", "Random effects:", "Fixed effects:",
                    "Correlation of Fixed Effects:"):
        assert section in text
    # lme4 prints Subject (Intercept) 612.1 24.74, Days 35.07 5.922 0.07
    var0, sd0 = shown(rf"Subject\s+\(Intercept\)\s+{NUM}\s+{NUM}\n", text)
    assert var0 == course_value(612.1, 1, optimum_spread("sleepstudy_reml", "vcov", 0))
    assert sd0 == course_value(24.74, 2, optimum_spread("sleepstudy_reml", "sdcor", 0))
    var1, sd1, cor = shown(rf"\n\s+Days\s+{NUM}\s+{NUM}\s+{NUM}\n", text)
    assert var1 == course_value(35.07, 2, optimum_spread("sleepstudy_reml", "vcov", 1))
    assert sd1 == course_value(5.922, 3, optimum_spread("sleepstudy_reml", "sdcor", 1))
    assert cor == course_value(0.07, 2, optimum_spread("sleepstudy_reml", "sdcor", 2))
    assert "Number of obs: 180, groups:  Subject, 18" in text
    # lmerTest's columns (its summary(): Satterthwaite df)
    assert re.search(r"Estimate\s+Std\. Error\s+df\s+t value\s+Pr\(>\|t\|\)", text)


# Spreads of the Satterthwaite df, t values and p-values under OPT_GAP (the curvature
# bound of lmerTest's quantities as functions of θ, computed once for these fits):
# sleepstudy df 1.7e-3, t 1.3e-3 (intercept) and 2.5e-4 (Days), p 3.2e-9 (Days);
# penicillin df 1.2e-3, t 1.9e-3, p 1.05e-9
SPREAD = {"df": 2e-3, "t_int": 1.5e-3, "t_days": 3e-4, "p_days": 4e-9,
          "pen_df": 1.5e-3, "pen_p": 1.2e-9}


def test_fixed_effects_show_lmertest_t_tests():
    # lmerTest 3.1.3 summary(lmer(Reaction ~ Days + (Days|Subject), sleepstudy)):
    # (Intercept) 251.405 6.825 17.000 36.838 < 2e-16; Days 10.467 1.546 17.000 6.771 3.26e-06
    text = str(fitted("sleepstudy_reml").summary())
    est, se, df, t = shown(rf"\(Intercept\)\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+< 2e-16", text)
    # (β̂ of the balanced sleepstudy design does not move with θ: rounding only)
    assert est == course_value(251.41, 2)
    assert se == course_value(6.8246, 4, optimum_spread("sleepstudy_reml", "se", 0))
    assert df == course_value(17.00, 2, SPREAD["df"])
    assert t == course_value(36.838, 3, SPREAD["t_int"])
    est, se, df, t, p = shown(rf"\nDays\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\n", text)
    assert est == course_value(10.467, 3)
    assert se == course_value(1.5458, 4, optimum_spread("sleepstudy_reml", "se", 1))
    assert df == course_value(17.00, 2, SPREAD["df"])
    assert t == course_value(6.7715, 4, SPREAD["t_days"])
    assert p == course_value(3.26e-06, 8, SPREAD["p_days"])
    assert "Satterthwaite" in text
    # lmerTest on Penicillin: df 5.4865924 (lme4's default fit), p 3.62e-07
    html = fitted("penicillin")._repr_html_()
    assert "<th>df</th>" in html
    cells = [float(c) for c in re.findall(r"<td>([^<]+)</td>", html.split("<th>df</th>")[1])]
    df, p = cells[2], cells[4]  # Estimate, Std. Error, df, t value, Pr(>|t|)
    assert df == course_value(5.49, 2, SPREAD["pen_df"])
    assert p == course_value(3.62e-07, 9, SPREAD["pen_p"])
    assert np.isfinite(cells).all()


def test_ml_summary_shows_information_criteria():
    text = str(fitted("pig_ml").summary())
    assert "maximum likelihood" in text
    assert re.search(r"AIC\s+BIC\s+logLik\s+deviance\s+df.resid", text)
    # lme4: AIC 2037.8536 (−2 logL + 8; the criterion is within OPT_GAP of its minimum)
    (aic,) = shown(rf"AIC\s+BIC\s+logLik\s+deviance\s+df.resid\s+{NUM}\s", text)
    assert aic == course_value(2037.8536, 4, OPT_GAP)


def test_html_representation():
    html = fitted("penicillin")._repr_html_()
    assert html.startswith("<div") and "<table" in html and "plate" in html and "sample" in html


def test_lm_summary():
    text = str(fitted("pig_lm").summary())
    assert "Residual standard error" in text and "weeks" in text
    assert re.search(r"Estimate\s+Std\. Error\s+t value\n", text)
