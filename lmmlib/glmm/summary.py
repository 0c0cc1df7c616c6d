"""The summary of a fitted GLMM in lme4's layout (text and HTML)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from ..models.display import (
    correlation_lines,
    format_number,
    random_table,
    random_text,
    residual_quantiles,
    status_lines,
)

if TYPE_CHECKING:
    from .model import GeneralizedLinearMixedModel

__all__ = ["GlmmSummary"]


class GlmmSummary:
    """Printable summary of a GLMM in lme4's ``summary(glmer)`` layout."""

    def __init__(self, model: GeneralizedLinearMixedModel) -> None:
        self.model = model
        est, se = model.fixef, model.se
        z = est / se
        self.fixed = pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": z,
                                   "Pr(>|z|)": 2.0 * scipy.stats.norm.sf(np.abs(z))})
        self.random = random_table(model).iloc[:-1]  # no residual row

    def _title(self) -> str:
        k = self.model.nagq
        how = ("Laplace Approximation" if k == 1
               else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {k}")
        return f"Generalized linear mixed model fit by maximum likelihood ({how})"

    def _header(self) -> list[str]:
        m = self.model
        lines = [self._title(), f" Family: {m.family.name}  ( {m.family.link} )",
                 f"Formula: {m.formula}"]
        if m.fit.weights_name:
            lines.append(f"Weights: {m.fit.weights_name}")
        info = pd.DataFrame([[m.aic, m.bic, m.loglik, m.deviance, m.df_resid]],
                            columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
        lines.append("\n" + info.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        return lines

    def _groups_line(self) -> str:
        groups = ", ".join(f"{k}, {v}" for k, v in self.model.ngroups.items())
        return f"Number of obs: {self.model.nobs}, groups:  {groups}"

    def _fixed_text(self) -> str:
        fmt = {c: (lambda x: format_number(x, 5)) for c in ("Estimate", "Std. Error", "z value")}
        fmt["Pr(>|z|)"] = lambda x: "< 2e-16" if x < 2e-16 else f"{x:.3g}"
        return self.fixed.to_string(formatters=fmt)

    def __str__(self) -> str:
        m = self.model
        lines = self._header() + [
            "\nScaled residuals:",
            residual_quantiles(m.resid("pearson").to_numpy()).to_frame().T.to_string(
                index=False, float_format=lambda x: f"{x:.4f}"),
            "\nRandom effects:", random_text(self.random), self._groups_line(),
            "\nFixed effects:", self._fixed_text()]
        lines += correlation_lines(m)
        if m.nagq > 1:
            lines.append(f"\nlogLik includes the saturated-model constant; lme4 1.1 reports "
                         f"logLik - ({m.saturated_loglik:.4f}) for nAGQ > 1")
        lines += status_lines(m)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        m = self.model
        head = "<br>".join(html.escape(s.strip()) for s in self._header()[:-1])
        crit = (f"AIC {m.aic:.4f} · BIC {m.bic:.4f} · logLik {m.loglik:.4f} · "
                f"deviance {m.deviance:.4f} · df.resid {m.df_resid}")
        flag = "<p><b>boundary (singular) fit</b></p>" if m.is_singular else ""
        fmt = {"Variance": format_number, "Std.Dev.": format_number}
        return (f"<div class='lmmlib-summary'><p>{head}<br>{html.escape(crit)}</p>"
                f"<p><b>Random effects</b></p>{self.random.to_html(index=False, formatters=fmt)}"
                f"<p>{html.escape(self._groups_line())}</p><p><b>Fixed effects</b></p>"
                f"{self.fixed.to_html(float_format=lambda x: format_number(x, 5))}{flag}</div>")
