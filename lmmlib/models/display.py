"""Stage 6: summaries in lme4's layout, as text and as HTML.  All formatting lives here."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MixedSummary", "LinearSummary", "fixed_table", "random_table"]


def format_number(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.{digits - 1}e}"


def fixed_table(model: Any) -> pd.DataFrame:
    """Estimate, Std. Error and t value of the fixed effects."""
    est, se = model.fixef, model.se
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se})


def _pval(p: float) -> str:
    """A p-value as R's ``format.pval``: three digits, ``< 2e-16`` below machine epsilon."""
    if np.isnan(p):
        return "NA"
    return "< 2e-16" if p < np.finfo(float).eps else f"{p:.3g}"


def _fixed_formatters() -> dict[str, Any]:
    """Column formats of lmerTest's fixed-effects table."""
    fmt = {c: (lambda x: format_number(x, 5)) for c in ("Estimate", "Std. Error", "t value")}
    fmt["df"] = lambda x: f"{x:.2f}"
    fmt["Pr(>|t|)"] = _pval
    return fmt


def _fixed_text(table: pd.DataFrame) -> str:
    """lmerTest's fixed-effects table with a note on the df method."""
    if table.empty:
        return "(no fixed effects)"
    return (table.to_string(formatters=_fixed_formatters())
            + "\nt-tests use Satterthwaite's method for the df")


def random_table(model: Any) -> pd.DataFrame:
    """lme4's printed random-effects table: Groups, Name, Variance, Std.Dev., Corr."""
    rows = []
    for t, cov in model.covariances().items():
        term = next(r for r in model.design.reterms if r.label == t)
        sd = np.sqrt(np.diag(cov))
        for i, name in enumerate(term.colnames):
            corr = [cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    for j in range(i)]
            rows.append({"Groups": t if i == 0 else "", "Name": name, "Variance": cov[i, i],
                         "Std.Dev.": sd[i], "Corr": " ".join(f"{c:5.2f}" for c in corr)})
    rows.append({"Groups": "Residual", "Name": "", "Variance": model.sigma**2,
                 "Std.Dev.": model.sigma, "Corr": ""})
    return pd.DataFrame(rows)


def _text_table(rows: list[list[str]], left: int) -> str:
    """Columns padded to width; the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if j < left else c.rjust(w)
                 for j, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append(" " + " ".join(cells).rstrip())
    return "\n".join(out)


def random_text(table: pd.DataFrame) -> str:
    rows = [["Groups", "Name", "Variance", "Std.Dev.", "Corr"]]
    for _, r in table.iterrows():
        rows.append([r["Groups"], r["Name"], format_number(r["Variance"]),
                     format_number(r["Std.Dev."]), r["Corr"]])
    return _text_table(rows, left=2)


def abbreviate(name: str) -> str:
    return "(Intr)" if name == "(Intercept)" else name[:6]


def residual_quantiles(x: np.ndarray) -> pd.Series:
    q = np.quantile(x, [0, 0.25, 0.5, 0.75, 1.0])
    return pd.Series(q, index=["Min", "1Q", "Median", "3Q", "Max"])


def fixef_correlation(model: Any) -> pd.DataFrame:
    v = model.vcov.to_numpy()
    d = np.sqrt(np.diag(v))
    return pd.DataFrame(v / np.outer(d, d), index=model.vcov.index, columns=model.vcov.index)


def correlation_lines(model: Any) -> list[str]:
    """lme4's "Correlation of Fixed Effects" block (empty for a single coefficient)."""
    if len(model.fixef) < 2:
        return []
    corr = fixef_correlation(model).iloc[1:, :-1]
    corr.columns = [abbreviate(c) for c in corr.columns]
    tri = corr.where(np.tril(np.ones(corr.shape, dtype=bool))).map(
        lambda x: "" if np.isnan(x) else f"{x:.3f}")
    return ["\nCorrelation of Fixed Effects:", tri.to_string()]


def status_lines(model: Any) -> list[str]:
    """Closing remarks: boundary fit, convergence problems."""
    lines = []
    if model.is_singular:
        lines.append("\nboundary (singular) fit: see model.varcorr")
    if not model.opt.converged:
        lines.append(f"\nconvergence: {model.opt.message}")
    return lines


def _header(model: Any) -> list[str]:
    crit = "REML" if model.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {crit}", f"Formula: {model.formula}"]
    if model.reml:
        lines.append(f"\nREML criterion at convergence: {model.objective:.4f}")
    else:
        info = pd.DataFrame([[model.aic, model.bic, model.loglik, model.objective,
                              model.df_resid]],
                            columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
        lines.append("\n" + info.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return lines


class MixedSummary:
    """Printable summary of a :class:`~lmmlib.models.lmm.LinearMixedModel`."""

    def __init__(self, model: Any) -> None:
        from ..inference.satterthwaite import coef_table

        self.model = model
        self.fixed = coef_table(model)  # lmerTest's columns, Satterthwaite df
        self.random = random_table(model)

    def _groups_line(self) -> str:
        groups = ", ".join(f"{k}, {v}" for k, v in self.model.ngroups.items())
        return f"Number of obs: {self.model.nobs}, groups:  {groups}"

    def __str__(self) -> str:
        m = self.model
        scaled = residual_quantiles(m.residuals.to_numpy() / m.sigma)
        lines = _header(m) + [
            "\nScaled residuals:",
            scaled.to_frame().T.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
            "\nRandom effects:",
            random_text(self.random),
            self._groups_line(),
            "\nFixed effects:",
            _fixed_text(self.fixed),
        ]
        lines += correlation_lines(m) + status_lines(m)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        m = self.model
        head = "<br>".join(html.escape(s.strip()) for s in _header(m)[:2])
        crit = (f"REML criterion {m.objective:.4f}" if m.reml else
                f"AIC {m.aic:.4f} · BIC {m.bic:.4f} · logLik {m.loglik:.4f} · "
                f"deviance {m.objective:.4f}")
        flag = "<p><b>boundary (singular) fit</b></p>" if m.is_singular else ""
        fmt = {"Variance": format_number, "Std.Dev.": format_number}
        return (
            f"<div class='lmmlib-summary'><p>{head}<br>{html.escape(crit)}</p>"
            f"<p><b>Random effects</b></p>{self.random.to_html(index=False, formatters=fmt)}"
            f"<p>{html.escape(self._groups_line())}</p>"
            f"<p><b>Fixed effects</b> (t-tests with Satterthwaite's df)</p>"
            f"{self.fixed.to_html(formatters=_fixed_formatters())}{flag}</div>"
        )


class LinearSummary:
    """Printable summary of a :class:`~lmmlib.models.lm.LinearModel`."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.fixed = fixed_table(model)

    def __str__(self) -> str:
        m = self.model
        return "\n".join([
            "Linear model fit by least squares",
            f"Formula: {m.formula}",
            "\nCoefficients:",
            self.fixed.to_string(float_format=lambda x: format_number(x, 5)),
            f"\nResidual standard error: {format_number(m.sigma, 5)} on {m.df_resid} "
            "degrees of freedom",
            f"logLik {m.loglik:.4f}, AIC {m.aic:.4f}, BIC {m.bic:.4f}",
        ])

    def _repr_html_(self) -> str:
        m = self.model
        return (f"<div class='lmmlib-summary'><p>{html.escape(m.formula)}</p>"
                f"{self.fixed.to_html(float_format=lambda x: format_number(x, 5))}"
                f"<p>σ = {format_number(m.sigma, 5)} on {m.df_resid} df; logLik {m.loglik:.4f}, "
                f"AIC {m.aic:.4f}, BIC {m.bic:.4f}</p></div>")
