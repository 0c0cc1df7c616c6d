"""Summaries follow lme4's printed layout."""

from __future__ import annotations

import re

from conftest import fitted


def test_reml_summary_layout():
    text = str(fitted("sleepstudy_reml").summary())
    assert text.startswith("Linear mixed model fit by REML")
    assert "REML criterion at convergence: 1743.6283" in text
    for section in ("Scaled residuals:", "Random effects:", "Fixed effects:",
                    "Correlation of Fixed Effects:"):
        assert section in text
    assert re.search(r"Subject\s+\(Intercept\)\s+612\.1\s+24\.74", text)
    assert re.search(r"Days\s+35\.07\s+5\.922\s+0\.07", text)
    assert "Number of obs: 180, groups:  Subject, 18" in text
    # lmerTest's columns (its summary(): Satterthwaite df)
    assert re.search(r"Estimate\s+Std\. Error\s+df\s+t value\s+Pr\(>\|t\|\)", text)


def test_fixed_effects_show_lmertest_t_tests():
    # lmerTest 3.1.3 summary(lmer(Reaction ~ Days + (Days|Subject), sleepstudy)):
    # (Intercept) 251.405 6.825 17.000 36.838 < 2e-16; Days 10.467 1.546 17.000 6.771 3.26e-06
    text = str(fitted("sleepstudy_reml").summary())
    assert re.search(r"\(Intercept\)\s+251\.41\s+6\.8246\s+17\.00\s+36\.838\s+< 2e-16", text)
    assert re.search(r"Days\s+10\.467\s+1\.5458\s+17\.00\s+6\.7715\s+3\.26e-06", text)
    assert "Satterthwaite" in text
    # lmerTest on Penicillin: df 5.4865924 (lme4's default fit), p 3.62e-07
    html = fitted("penicillin")._repr_html_()
    assert "<th>df</th>" in html and "5.49" in html and "3.62e-07" in html


def test_ml_summary_shows_information_criteria():
    text = str(fitted("pig_ml").summary())
    assert "maximum likelihood" in text
    assert re.search(r"AIC\s+BIC\s+logLik\s+deviance\s+df.resid", text)
    assert "2037.8536" in text


def test_html_representation():
    html = fitted("penicillin")._repr_html_()
    assert html.startswith("<div") and "<table" in html and "plate" in html and "sample" in html


def test_lm_summary():
    text = str(fitted("pig_lm").summary())
    assert "Residual standard error" in text and "weeks" in text
    assert re.search(r"Estimate\s+Std\. Error\s+t value\n", text)
