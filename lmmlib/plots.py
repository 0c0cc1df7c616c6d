"""Figures for the course: random effects, shrinkage, diagnostics, bootstrap, profiles.

Every function draws on the Axes passed as ``ax`` (a new figure sized for the
book's text width otherwise) and returns it; nothing is shown or saved, so
the caller decides (``fig.savefig``, or the notebook displays the figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from .engine.frame import as_frame
from .errors import DataError

__all__ = ["bootstrap_hist", "caterpillar", "profile_zeta", "qq", "residuals_vs_fitted",
           "shrinkage_plot", "spaghetti"]

FIGSIZE = (6.0, 4.0)
MAX_LABELS = 50  # more levels than this: no tick labels


def _axes(ax: Any, figsize: tuple[float, float] = FIGSIZE) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, layout="constrained")[1]


def _ranef_rows(model: Any, factor: str | None, term: str | None) -> pd.DataFrame:
    re = model.ranef(condvar=True)
    factor = re["grpvar"].iloc[0] if factor is None else factor
    rows = re[re["grpvar"] == factor]
    if rows.empty:
        raise DataError(f"no random effects for grouping factor {factor!r}; "
                        f"available: {', '.join(re['grpvar'].unique())}")
    term = rows["term"].iloc[0] if term is None else term
    rows = rows[rows["term"] == term]
    if rows.empty:
        raise DataError(f"grouping factor {factor!r} has no random effect {term!r}")
    return rows


def caterpillar(model: Any, factor: str | None = None, level: float = 0.95,
                term: str | None = None, ax: Any = None) -> Any:
    """Sorted BLUPs with ±z·(conditional sd) intervals (lme4's ``dotplot(ranef)``).

    Parameters
    ----------
    model : LinearMixedModel
    factor : str, optional
        Grouping factor (default: the first, as in ``ranef``).
    level : float
        Coverage of the intervals, z = Φ⁻¹((1 + level)/2).
    term : str, optional
        Which random effect of that factor (default the first, e.g. the intercept).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    rows = _ranef_rows(model, factor, term).sort_values("condval")
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    k = len(rows)
    ax = _axes(ax, (6.0, min(8.0, max(3.0, 0.16 * k + 1))))
    pos = np.arange(k)
    ax.errorbar(rows["condval"], pos, xerr=z * rows["condsd"], fmt="o", ms=3, lw=1,
                color="C0", ecolor="0.55", capsize=0)
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    if k <= MAX_LABELS:
        ax.set_yticks(pos, rows["grp"], fontsize=8 if k > 25 else 9)
    else:
        ax.set_yticks([])
    ax.set_ylim(-1, k)
    ax.set_xlabel(f"conditional mode of {rows['term'].iloc[0]} (±{z:.2f} cond. sd)")
    ax.set_ylabel(f"{rows['grpvar'].iloc[0]} (sorted)")
    return ax


def shrinkage_plot(table: Any, ax: Any = None) -> Any:
    """Group mean deviations (no pooling) joined to their BLUPs (partial pooling).

    Left: ȳ_i − x̄_i'β̂ for every group; right: its BLUP r_i(ȳ_i − x̄_i'β̂);
    the dashed line at 0 is the population line (complete pooling).  Line
    colour shows n_i: small groups are pulled further towards the line.

    Parameters
    ----------
    table : DataFrame
        The table of :func:`lmmlib.course.shrinkage` for a random-intercept model:
        ``lmmlib.plots.shrinkage_plot(lmmlib.shrinkage(m))``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    if not isinstance(table, pd.DataFrame) or not {"raw", "blup", "n"} <= set(table.columns):
        raise DataError(f"shrinkage_plot draws the table of lmmlib.shrinkage(model), got "
                        f"{type(table).__name__}; call shrinkage_plot(lmmlib.shrinkage(model))")
    s = table
    ax = _axes(ax)
    n = s["n"].to_numpy()
    norm = Normalize(vmin=n.min() - 0.5, vmax=n.max() + 0.5)
    cmap = colormaps["viridis"]
    order = np.argsort(-n, kind="stable")  # small groups drawn last, on top
    for raw, blup, ni in zip(s["raw"].iloc[order], s["blup"].iloc[order], n[order], strict=True):
        ax.plot([0, 1], [raw, blup], color=cmap(norm(ni)), lw=0.9, alpha=0.8)
    ax.scatter(np.zeros(len(s)), s["raw"], s=12, color="0.35", zorder=3)
    ax.scatter(np.ones(len(s)), s["blup"], s=12, color="C3", zorder=3)
    ax.axhline(0.0, color="0.2", lw=1, ls="--")
    ax.set_xticks([0, 1], ["group mean\n(no pooling)", "BLUP\n(partial pooling)"])
    ax.set_xlim(-0.25, 1.25)
    ax.set_ylabel(f"deviation from x'β̂ ({s.attrs.get('response', 'response')})")
    ax.set_title(f"Shrinkage of {s.attrs['group']} intercepts "
                 "(dashed: population line, complete pooling)", fontsize=10)
    if n.min() != n.max():
        from matplotlib.cm import ScalarMappable

        ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label="group size $n_i$")
    return ax


def residuals_vs_fitted(model: Any, ax: Any = None, smooth: bool = True) -> Any:
    """Residuals against fitted values, with a lowess smoother.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
    ax : matplotlib Axes, optional
    smooth : bool
        Add a lowess curve (statsmodels), which should stay near 0.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    fit, res = model.fitted.to_numpy(), model.residuals.to_numpy()
    ax.scatter(fit, res, s=8, alpha=0.5, color="C0", edgecolors="none")
    ax.axhline(0.0, color="0.3", lw=0.8, ls="--")
    if smooth and len(fit) > 10:
        from statsmodels.nonparametric.smoothers_lowess import lowess

        curve = lowess(res, fit, frac=2 / 3)
        ax.plot(curve[:, 0], curve[:, 1], color="C3", lw=1.5)
    ax.set_xlabel("fitted value")
    ax.set_ylabel("residual")
    return ax


def qq(model: Any, which: str = "residuals", factor: str | None = None,
       term: str | None = None, ax: Any = None) -> Any:
    """Normal quantile-quantile plot of the residuals or of the BLUPs.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
    which : {"residuals", "ranef"}
        Residuals scaled by σ̂, or the conditional modes of one random effect.
    factor, term : str, optional
        For ``which="ranef"``: grouping factor and effect (default the first).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        With the line through the quartiles (R's ``qqline``).
    """
    if which == "residuals":
        values = model.residuals.to_numpy() / model.sigma
        label = "standardised residual"
    elif which == "ranef":
        rows = _ranef_rows(model, factor, term)
        values = rows["condval"].to_numpy()
        label = f"BLUP of {rows['term'].iloc[0]} | {rows['grpvar'].iloc[0]}"
    else:
        raise DataError(f"which must be 'residuals' or 'ranef', got {which!r}")
    ax = _axes(ax, (4.5, 4.5))
    values = np.sort(values)
    n = values.size
    theo = scipy.stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    ax.scatter(theo, values, s=10, color="C0", alpha=0.7, edgecolors="none")
    q1, q3 = np.quantile(values, [0.25, 0.75])
    z1, z3 = scipy.stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (z3 - z1)
    ax.axline((z1, q1), slope=slope, color="C3", lw=1)
    ax.set_xlabel("standard normal quantile")
    ax.set_ylabel(label)
    return ax


def bootstrap_hist(sample: Sequence[float], observed: float, ax: Any = None, bins: int = 40,
                   chisq_df: float | None = None, xlabel: str = "statistic",
                   zero_tol: float = 1e-6) -> Any:
    """Histogram of a bootstrap (or null) distribution with the observed value marked.

    Likelihood-ratio statistics of variance components have a point mass at 0
    (STAT 528 pulp: 69% of the bootstrap LRTs).  Values below ``zero_tol`` are
    therefore counted separately and reported in the legend, and the
    histogram of the others is scaled so that its area is their fraction.

    Parameters
    ----------
    sample : array-like
        Simulated statistics.
    observed : float
        The statistic on the data; the legend gives the fraction of the
        sample at least as large (the bootstrap p-value).
    ax : matplotlib Axes, optional
    bins : int
    chisq_df : float, optional
        Overlay the χ² density with these degrees of freedom (the naive
        reference distribution of an LRT).
    xlabel : str
    zero_tol : float
        Values below this are treated as exact zeros.

    Returns
    -------
    matplotlib Axes
    """
    x = np.asarray(sample, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise DataError("bootstrap sample has no finite values")
    ax = _axes(ax)
    pval = float(np.mean(x >= observed))
    zero = np.abs(x) < zero_tol
    rest = x[~zero]
    top = 0.0
    if rest.size:
        edges = np.histogram_bin_edges(rest, bins=bins)
        weights = np.full(rest.size, 1.0 / (x.size * np.diff(edges)[0]))
        heights = ax.hist(rest, bins=edges, weights=weights, color="C0", alpha=0.6,
                          edgecolor="white", label="simulated")[0]
        top = float(np.max(heights))
    ax.axvline(observed, color="C3", lw=2,
               label=f"observed {observed:.4g}: P(T ≥ obs) = {pval:.3f} (B = {x.size})")
    if zero.any():
        ax.plot([0.0], [0.0], marker="|", ms=14, mew=3, color="C0", ls="none", clip_on=False,
                label=f"point mass at 0: {zero.mean():.0%} of the sample")
    if chisq_df is not None:
        hi = max(float(x.max()), observed) * 1.05
        grid = np.linspace(hi / 400, hi, 400)
        ax.plot(grid, scipy.stats.chi2.pdf(grid, chisq_df), color="0.2", lw=1.2,
                label=f"$\\chi^2_{{{chisq_df:g}}}$ density")
    if top > 0:
        ax.set_ylim(0, 1.6 * top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return ax


def _zeta_panel(part: pd.DataFrame, name: str, z: float, ax: Any) -> None:
    part = part.sort_values("value")
    ax.plot(part["value"], part["zeta"], color="C0", lw=1.5)
    for h in (-z, z):
        ax.axhline(h, color="0.5", lw=0.8, ls="--")
    ax.axhline(0.0, color="0.8", lw=0.6)
    ax.set_xlabel(name)
    ax.set_ylabel("ζ")


def profile_zeta(profile_df: pd.DataFrame, par: str | Sequence[str] | None = None,
                 level: float = 0.95, ax: Any = None) -> Any:
    """Profile ζ = sign(p − p̂)√(deviance change) against each parameter.

    A straight line means the likelihood is quadratic in that parameter (Wald
    intervals are fine); the dashed lines at ±z cut the profile at the limits
    of the ``level`` profile confidence interval.

    Parameters
    ----------
    profile_df : DataFrame
        Long format with columns ``par, value, zeta`` (as returned by
        :func:`lmmlib.inference.profile.profile`).
    par : str or list of str, optional
        Parameters to draw (default all, in order of appearance).
    level : float
        Confidence level of the reference lines.
    ax : Axes or sequence of Axes, optional
        One Axes per parameter.  By default one figure with a panel each.

    Returns
    -------
    matplotlib Axes, or ndarray of Axes when several parameters are drawn
    """
    missing = {"par", "value", "zeta"} - set(profile_df.columns)
    if missing:
        raise DataError(f"profile_df lacks column(s) {', '.join(sorted(missing))}")
    names = list(dict.fromkeys(profile_df["par"])) if par is None else (
        [par] if isinstance(par, str) else list(par))
    unknown = [p for p in names if p not in set(profile_df["par"])]
    if unknown:
        raise DataError(f"parameter(s) {', '.join(map(str, unknown))} not in the profile")
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    if ax is None:
        import matplotlib.pyplot as plt

        ncol = 2 if len(names) == 4 else min(3, len(names))
        nrow = -(-len(names) // ncol)
        _, axes = plt.subplots(nrow, ncol, figsize=(2.4 * ncol + 0.6, 2.3 * nrow + 0.3),
                               sharey=True, layout="constrained", squeeze=False)
        for extra in axes.ravel()[len(names):]:
            extra.set_visible(False)
        axes = axes.ravel()[: len(names)]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if axes.size != len(names):
            raise DataError(f"{axes.size} Axes for {len(names)} parameters")
    for name, a in zip(names, axes, strict=True):
        _zeta_panel(profile_df[profile_df["par"] == name], str(name), z, a)
    return axes[0] if len(names) == 1 else axes


def spaghetti(data: Any, x: str, y: str, group: str, ax: Any = None, mean: bool = True,
              max_groups: int | None = None, rng: np.random.Generator | int | None = None,
              alpha: float = 0.35) -> Any:
    """One line per group: growth curves (pig weights, Nepal arm circumference).

    Parameters
    ----------
    data : DataFrame
    x, y, group : str
        Column names; each group's points are joined in order of ``x``.
    ax : matplotlib Axes, optional
    mean : bool
        Overlay the mean of ``y`` at each ``x`` value (drawn only when ``x``
        has at most 30 distinct values, e.g. weeks).
    max_groups : int, optional
        Draw a random subset of this many groups.
    rng : Generator or int, optional
        Random generator or seed for the subset (explicit, reproducible).
    alpha : float
        Transparency of the group lines.

    Returns
    -------
    matplotlib Axes
    """
    frame = as_frame(data)
    for col in (x, y, group):
        if col not in frame.columns:
            raise DataError(f"column {col!r} not found in the data")
    frame = frame[[x, y, group]].dropna()
    groups = pd.unique(frame[group])
    if max_groups is not None and max_groups < len(groups):
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        groups = gen.choice(groups, size=max_groups, replace=False)
        frame = frame[frame[group].isin(groups)]
    ax = _axes(ax)
    for _, part in frame.groupby(group, observed=True, sort=False):
        part = part.sort_values(x)
        ax.plot(part[x], part[y], color="C0", lw=0.8, alpha=alpha, marker="o", ms=2)
    if mean and frame[x].nunique() <= 30:
        avg = frame.groupby(x)[y].mean()
        ax.plot(avg.index, avg.to_numpy(), color="C3", lw=2.5, label="mean")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{len(groups)} {group} curves", fontsize=10)
    return ax
