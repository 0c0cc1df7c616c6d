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
    assert re.search(r"Estimate\s+Std\. Error\s+t value", text)


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
