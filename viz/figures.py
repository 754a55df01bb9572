"""Report figures of the experiment catalogue (PNG and SVG, greyscale-safe, captioned).

:func:`write_figures` is the :data:`experiments.studies.report.FigureWriter` the ``adlgame``
console script hands to :func:`experiments.studies.catalogue.run_experiment`: it draws an
experiment's figures from its rows and summary into the results folder and returns one
:class:`experiments.studies.report.FigureRef` per figure (the report links them, with a caption
naming the seeds and the configuration).  It reads results and writes nothing back into them.

Each ``draw_*`` function takes plain frames and returns a matplotlib Figure (``None`` when the
data cannot support it) whose every Axes has a title and axis labels with units; nothing is
saved until :func:`viz.style.save`.  Series are told apart by marker, line style and fill
(:func:`viz.style.series_style`), heat maps use a grey-safe map with each cell's number
printed on it.

Per experiment (what each draws when its data is there):

* ``compare``: policy intervals per headline metric, Lorenz curves of haircut fractions,
  retention and revenue across crises, overshoot against the two-pass horizon;
* ``attrition``: retention and revenue across crises, attrition metrics' intervals;
* ``frontier``: the solvency-fairness-revenue frontier, Pareto-efficient pairs marked;
* ``moral-hazard``: leverage drift and externality ratio across crises, PTSR/PMR against
  participation n on log-log axes with the fitted lines;
* ``audit``: the gameability heat map (policy x action, G and its interval printed);
* ``bounds``: the pass-rate heat map (policy x check);
* ``oct10``: overshoot per wave, cumulative overshoot, the horizon curve, and the game
  beside the published totals per policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments.metrics import MIN_INFORMATIVE_N, UNBOUNDED, confidence_interval
from experiments.runs.results import metric_range
from experiments.studies.report import FigureRef, ok_rows
from viz.style import annotate_cells, new_figure, save, series_style, styled

__all__ = [
    "ATTRITION_METRICS",
    "COMPARE_METRICS",
    "DRAWERS",
    "EXTERNALITY",
    "LEVERAGE",
    "LOGLOG_METRICS",
    "METRIC_LABELS",
    "RETENTION",
    "REVENUE",
    "caption",
    "draw_crisis_curves",
    "draw_frontier",
    "draw_gameability",
    "draw_loglog",
    "draw_lorenz",
    "draw_oct10_cumulative",
    "draw_oct10_horizon",
    "draw_oct10_per_wave",
    "draw_oct10_vs_published",
    "draw_overshoot_horizon",
    "draw_pass_rates",
    "draw_policy_intervals",
    "draw_scaling",
    "draw_sensitivity",
    "draw_verdicts",
    "interval_words",
    "write_figures",
]

#: metric -> (axis label with its unit, factor applied to the values before plotting).
METRIC_LABELS: dict[str, tuple[str, float]] = {
    "total_deficit": ("deficit D, $", 1.0),
    "backstop_used": ("backstop used, $", 1.0),
    "adl_raised": ("ADL raised, $", 1.0),
    "residual_bad_debt": ("residual bad debt, $", 1.0),
    "overshoot": ("overshoot (two-pass, h = 0), $", 1.0),
    "accounts_touched": ("accounts touched, accounts", 1.0),
    "adl_waves": ("ADL waves, waves", 1.0),
    "max_haircut_base_frac": ("largest haircut, % of eligibility base", 100.0),
    "max_haircut_capacity_frac": ("largest haircut, % of capacity", 100.0),
    "max_haircut_equity_frac": ("largest haircut, % of equity", 100.0),
    "gini_haircut_base": ("Gini of haircut / base, index (0-1)", 1.0),
    "gini_haircut_capacity": ("Gini of haircut / capacity, index (0-1)", 1.0),
    "ptsr_base": ("PTSR on base (mean over waves), ratio", 1.0),
    "ptsr_base_median": ("PTSR on base (median over waves), ratio", 1.0),
    "ptsr_base_weighted": ("PTSR on base (deficit-weighted), ratio", 1.0),
    "ptsr_capacity": ("PTSR on capacity (mean over waves), ratio", 1.0),
    "pmr_base": ("PMR on base (mean over waves), ratio", 1.0),
    "pmr_base_median": ("PMR on base (median over waves), ratio", 1.0),
    "pmr_base_weighted": ("PMR on base (shortfall-weighted), ratio", 1.0),
    "pmr_capacity": ("PMR on capacity (mean over waves), ratio", 1.0),
    "externality_ratio": ("externality ratio, share of losses", 1.0),
    "leverage_drift": ("whale leverage drift, x", 1.0),
    "retention": ("retention, % of first-crisis traders", 100.0),
    "ltv_lost_per_deficit_dollar": ("LTV lost per deficit dollar, $/$", 1.0),
    "traders_churned": ("traders churned, traders", 1.0),
    "traders_active_end": ("traders active at the end, traders", 1.0),
    "fee_revenue": ("fee revenue, $", 1.0),
    "recovery_steps": ("revenue recovery, steps", 1.0),
    "refill_steps": ("backstop refill, steps", 1.0),
}
#: Headline metrics of the compare experiment's interval panels.
COMPARE_METRICS = (
    "adl_raised",
    "overshoot",
    "max_haircut_base_frac",
    "gini_haircut_base",
    "retention",
    "fee_revenue",
)
#: The ratios the moral-hazard figure plots against n (as the experiment fits them).
LOGLOG_METRICS = ("ptsr_base", "pmr_base")
#: Interval panels of the attrition experiment.
ATTRITION_METRICS = (
    "retention",
    "traders_churned",
    "fee_revenue",
    "ltv_lost_per_deficit_dollar",
)

#: (column, axis label with unit, factor) of the per-crisis curves in runs.parquet.
RETENTION = ("retention_by_crisis", "retention, % of first-crisis traders", 100.0)
REVENUE = ("revenue_by_crisis", "fee revenue per crisis cycle, $", 1.0)
LEVERAGE = ("leverage_drift_by_crisis", "whale mean target leverage - first crisis, x", 1.0)
EXTERNALITY = ("externality_by_crisis", "externality ratio, share of losses", 1.0)

Draw = tuple[str, str, str, Figure | None]


# =========================================================================== helpers
def _label(metric: str) -> tuple[str, float]:
    return METRIC_LABELS.get(metric, (f"{metric.replace('_', ' ')}, value", 1.0))


def _seed_text(seeds: Sequence[int]) -> str:
    s = sorted(int(x) for x in seeds)
    if not s:
        return "-"
    if s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}..{s[-1]}" if len(s) > 1 else str(s[0])
    return ", ".join(map(str, s))


def _sizes(ctx: dict) -> str:
    parts = []
    for key, unit in (("traders", "traders"), ("crises", "crises")):
        v = ctx.get(key)
        if v is None:
            continue
        parts.append(f"{'/'.join(map(str, v)) if isinstance(v, list) else v} {unit}")
    if ctx.get("calm_steps") is not None and ctx.get("crisis_steps") is not None:
        parts.append(f"{ctx['calm_steps']} calm + {ctx['crisis_steps']} crisis steps per cycle")
    return ", ".join(parts)


def caption(ctx: dict, what: str, *, policies: Iterable[str] | None = None) -> str:
    """One caption line: ``what``, then the seeds, scenario, sizes, policies and severities."""
    pols = list(policies) if policies is not None else list(ctx.get("policies") or [])
    sev = list(ctx.get("severities") or [])
    parts = [
        what.rstrip("."),
        f"seeds {_seed_text(ctx.get('seed_list') or range(1, int(ctx.get('seeds', 0)) + 1))}",
    ]
    scen = f"scenario {ctx.get('scenario', '-')}"
    size = _sizes(ctx)
    parts.append(f"{scen} ({size})" if size else scen)
    if pols:
        parts.append(f"policies {', '.join(pols)}")
    if sev:
        parts.append(f"severity {', '.join(sev)}")
    return "; ".join(parts) + "."


def _vectors(rows: pd.DataFrame, column: str) -> np.ndarray:
    """The JSON-list column of ``rows`` as a 2-D array (rows x longest list), NaN-padded."""
    lists = [json.loads(v) if isinstance(v, str) and v else [] for v in rows[column]]
    width = max((len(v) for v in lists), default=0)
    out = np.full((len(lists), width), np.nan)
    for i, v in enumerate(lists):  # one row per run (tens)
        out[i, : len(v)] = np.array([np.nan if x is None else x for x in v], dtype=np.float64)
    return out


def _mean_ci(
    values: np.ndarray, bounds: tuple[float, float] = UNBOUNDED, level: float = 0.95
) -> tuple[np.ndarray, ...]:
    """Per column of a (seeds x points) array: mean, interval ends and n (NaN-skipping).

    Each column's interval is :func:`experiments.metrics.confidence_interval` inside
    ``bounds`` (the one interval of the project; a few columns, so a loop).
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nan)
    cis = [confidence_interval(v[:, j], level, bounds) for j in range(v.shape[1])]
    out = np.array([[c.mean, c.low, c.high, c.n] for c in cis]).reshape(-1, 4).T
    return out[0], out[1], out[2], out[3].astype(int)


def interval_words(ctx: dict) -> str:
    """Caption words for intervals over seeds, with the not-yet-informative warning."""
    seeds = int(ctx.get("seeds") or 0)
    text = (
        "mean over seeds with 95 % intervals kept inside each metric's range "
        f"(n = {seeds} seeds unless marked)"
    )
    if seeds < MIN_INFORMATIVE_N:
        text += f"; with fewer than {MIN_INFORMATIVE_N} seeds the intervals are not yet informative"
    return text


def _policies(rows: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(str(p) for p in rows["policy"])) if "policy" in rows else []


def _legend_right(fig: Figure, ax: Any, ncol: int = 1) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=ncol)


def _symlog(ax: Any, values: np.ndarray, axis: str = "y", linthresh: float | None = None) -> None:
    """Symlog scale on ``axis`` with at most ~8 labelled decades (every other one if wider)."""
    from matplotlib.ticker import SymmetricalLogLocator

    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v) & (v > 0)]
    t = linthresh if linthresh is not None else max(float(np.quantile(v, 0.1)), 1e-9)
    raw = np.asarray(values, dtype=np.float64)
    sides = 1 + int(bool((raw[np.isfinite(raw)] < 0).any()))
    decades = sides * max(np.log10(max(float(v.max()) if v.size else t, t) / t), 1.0)
    (ax.set_yscale if axis == "y" else ax.set_xscale)("symlog", linthresh=t)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(
        SymmetricalLogLocator(linthresh=t, base=10 if decades <= 8 else 100, subs=[1.0])
    )


def _symlog_if_wide(ax: Any, values: np.ndarray, axis: str = "y") -> bool:
    """Symlog scale (linear within max(1, 10 % quantile of |v|)) when |values| span > 3 decades.

    Values below 1e-6 of the largest count as zero (float noise of sums that are zero).
    """
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    v = v[v > 1e-6 * v.max(initial=0.0)]  # float noise around 0 is 0, not a decade
    if v.size < 2 or v.max() / max(v.min(), 1e-12) < 1e3:
        return False
    _symlog(ax, values, axis, linthresh=max(float(np.quantile(v, 0.1)), 1.0))
    return True


# =========================================================================== drawings
@styled
def draw_policy_intervals(
    summary: pd.DataFrame, metrics: Sequence[str], *, title: str, ncols: int = 3
) -> Figure | None:
    """Dot and 95 % interval per policy, one panel per metric (a long summary table).

    ``summary`` has columns policy, metric, mean, ci_low, ci_high (the catalogue's
    ``summary.csv``); groups other than policy must already be filtered out.  With its ``n``
    and ``runs`` columns, an interval computed from fewer values than the policy's runs is
    marked ``n=k`` beside its dot; with ``coincides_with``, a policy repeating another's
    numbers is labelled ``policy (= other)``.
    """
    if summary is None or summary.empty or "metric" not in summary:
        return None
    metrics = [m for m in metrics if m in set(summary["metric"])]
    if not metrics:
        return None
    pols = list(dict.fromkeys(summary["policy"]))
    labels = list(pols)
    if "coincides_with" in summary:
        same = summary.drop_duplicates("policy").set_index("policy")["coincides_with"]
        labels = [
            f"{p} (= {same[p]})" if isinstance(same.get(p), str) and same.get(p) else p
            for p in pols
        ]
    nrows = int(np.ceil(len(metrics) / ncols))
    ncol = min(ncols, len(metrics))
    size = (3.6 * ncol, 0.25 * len(pols) * nrows + 1.2 * nrows + 0.6)
    fig, axes = new_figure(nrows, ncol, size=size, sharey=True)
    y = np.arange(len(pols))
    for k, m in enumerate(metrics):
        ax = axes.flat[k]
        label, f = _label(m)
        s = summary[summary["metric"] == m].set_index("policy").reindex(pols)
        mean = s["mean"].to_numpy(float) * f
        lo, hi = s["ci_low"].to_numpy(float) * f, s["ci_high"].to_numpy(float) * f
        err = np.vstack([mean - lo, hi - mean])
        err = np.where(np.isfinite(err), np.maximum(err, 0.0), 0.0)
        short = np.zeros(len(pols), dtype=bool)
        if {"n", "runs"} <= set(s.columns):
            n, runs = s["n"].to_numpy(float), s["runs"].to_numpy(float)
            short = np.isfinite(n) & np.isfinite(runs) & (n < runs)
        for i in range(len(pols)):
            st = series_style(i, len(pols))
            ax.errorbar(
                mean[i],
                y[i],
                xerr=err[:, i : i + 1],
                marker=st["marker"],
                fillstyle=st["fillstyle"],
                color="black",
                ecolor="0.35",
                capsize=2,
                linestyle="none",
            )
            if short[i] and np.isfinite(mean[i]):
                ax.annotate(
                    f"n={int(n[i])}",
                    (mean[i], y[i]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=6,
                )
        ax.set_yticks(y, labels)
        ax.set_xlabel(label)
        ax.set_ylabel("policy")
        ax.set_title(m.replace("_", " "))
    axes[0, 0].invert_yaxis()  # shared: the first policy on top in every panel
    for ax in list(axes.flat)[len(metrics) :]:
        ax.remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def draw_lorenz(rows: pd.DataFrame, *, title: str = "Lorenz curves of haircuts") -> Figure | None:
    """Mean Lorenz curve of haircut fractions per policy (runs' ``lorenz_haircut`` column).

    x: share of (wave, account with positive capacity) pairs, poorest first; y: their share of
    the summed haircut fractions h/base.  The diagonal is equal fractions (pure pro-rata
    within a wave).
    """
    if "lorenz_haircut" not in rows or rows.empty:
        return None
    pols = _policies(rows)
    fig, axes = new_figure(size=(7.5, 5.0))
    ax = axes[0, 0]
    ax.plot([0, 100], [0, 100], color="0.6", linestyle="-", lw=0.8, label="equal fractions")
    drawn = 0
    for i, p in enumerate(pols):
        v = _vectors(rows[rows["policy"] == p], "lorenz_haircut")
        if v.shape[1] < 2 or not np.isfinite(v).any():
            continue
        mean = _mean_ci(v, (0.0, 1.0))[0]
        x = np.linspace(0, 100, v.shape[1])
        ax.plot(x, 100 * mean, markevery=2, lw=1.2, label=p, **series_style(i, len(pols)))
        drawn += 1
    if not drawn:
        return None
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("(wave, account with positive capacity) pairs, poorest first, %")
    ax.set_ylabel("cumulative share of haircut fractions h/base, %")
    ax.set_title(title)
    _legend_right(fig, ax)
    fig.tight_layout()
    return fig


@styled
def draw_crisis_curves(
    rows: pd.DataFrame,
    panels: Sequence[tuple[str, str, float]] = (RETENTION, REVENUE),
    *,
    title: str = "Across crises",
) -> Figure | None:
    """Mean over seeds of per-crisis curves (runs' JSON columns), one panel per column."""
    panels = [p for p in panels if p[0] in rows]
    if rows.empty or not panels:
        return None
    pols = _policies(rows)
    fig, axes = new_figure(1, len(panels), size=(5.0 * len(panels) + 1.5, 4.2))
    drawn = 0
    for k, (col, label, f) in enumerate(panels):
        ax = axes[0, k]
        for i, p in enumerate(pols):
            v = _vectors(rows[rows["policy"] == p], col)
            if not v.size or not np.isfinite(v).any():
                continue
            mean = _mean_ci(v)[0]
            x = np.arange(v.shape[1])
            ax.plot(x, f * mean, lw=1.1, label=p, **series_style(i, len(pols)))
            drawn += 1
        ax.set_xlabel("crisis, index (0 = first)")
        ax.set_ylabel(label)
        ax.set_title(label.split(",")[0])
        ax.xaxis.get_major_locator().set_params(integer=True)
    if not drawn:
        return None
    _legend_right(fig, axes[0, 0])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def draw_overshoot_horizon(
    rows: pd.DataFrame, *, title: str = "Overshoot against the two-pass horizon"
) -> Figure | None:
    """Mean two-pass overshoot (``overshoot_h<h>`` columns) per policy against the horizon h."""
    cols = sorted(
        (c for c in rows.columns if c.startswith("overshoot_h") and c[11:].isdigit()),
        key=lambda c: int(c[11:]),
    )
    if rows.empty or not cols:
        return None
    hs = np.array([int(c[11:]) for c in cols], dtype=float)
    pols = _policies(rows)
    fig, axes = new_figure(size=(7.5, 4.8))
    ax = axes[0, 0]
    width = 0.5 * (np.diff(hs).min() if len(hs) > 1 else 1.0)
    allv = []
    for i, p in enumerate(pols):
        v = rows.loc[rows["policy"] == p, cols].to_numpy(dtype=float)
        mean, lo, hi, _n = _mean_ci(v, metric_range("overshoot"))
        shift = width * ((i + 0.5) / len(pols) - 0.5)
        err = np.where(np.isfinite(lo), np.vstack([mean - lo, hi - mean]), 0.0)
        ax.errorbar(
            hs + shift, mean, yerr=err, capsize=2, lw=1, label=p, **series_style(i, len(pols))
        )
        allv.append(mean)
    _symlog_if_wide(ax, np.concatenate(allv))
    ax.set_xticks(hs, [str(int(h)) for h in hs])
    ax.set_xlabel("horizon after the wave, steps")
    ax.set_ylabel("overshoot (ADL taken - budget needed), $")
    ax.set_title(title)
    _legend_right(fig, ax)
    fig.tight_layout()
    return fig


@styled
def draw_frontier(
    summary: pd.DataFrame,
    objectives: Sequence[Sequence[Any]] = (
        ("residual_bad_debt", False),
        ("max_haircut_base_frac", False),
        ("fee_revenue", True),
    ),
    *,
    title: str = "Trilemma frontier",
) -> Figure | None:
    """Scatter of (policy, severity) means on two objective planes; Pareto pairs filled.

    ``summary`` is the frontier summary (policy, severity, metric, mean, pareto).  Marker =
    severity controller; filled black = Pareto-efficient on all three objectives (labelled
    with the policy), hollow grey = dominated.
    """
    need = {"policy", "severity", "metric", "mean"}
    if summary is None or summary.empty or not need <= set(summary.columns):
        return None
    names = [str(m) for m, _ in objectives]
    piv = summary[summary["metric"].isin(names)].pivot_table(
        index=["policy", "severity"], columns="metric", values="mean", aggfunc="first"
    )
    if piv.empty or not set(names) <= set(piv.columns):
        return None
    if "pareto" in summary:
        eff = summary.drop_duplicates(["policy", "severity"]).set_index(["policy", "severity"])
        piv["pareto"] = eff["pareto"].reindex(piv.index).fillna(False).astype(bool)
    else:
        piv["pareto"] = False
    sevs = list(dict.fromkeys(summary["severity"]))
    planes = [(names[0], names[1]), (names[1], names[2])]
    fig, axes = new_figure(1, 2, size=(12.0, 5.0))
    for k, (mx, my) in enumerate(planes):
        ax = axes[0, k]
        (lx, fx), (ly, fy) = _label(mx), _label(my)
        for j, s in enumerate(sevs):
            sub = piv.xs(s, level="severity")
            mk = series_style(j)["marker"]
            good = sub["pareto"].to_numpy(bool)
            x, y = sub[mx].to_numpy(float) * fx, sub[my].to_numpy(float) * fy
            ax.scatter(
                x[~good],
                y[~good],
                marker=mk,
                facecolors="none",
                edgecolors="0.5",
                label=f"{s} (dominated)",
            )
            ax.scatter(x[good], y[good], marker=mk, color="black", label=f"{s} (Pareto-efficient)")
            for pol, xi, yi in zip(sub.index[good], x[good], y[good], strict=True):
                ax.annotate(pol, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=6)
        _symlog_if_wide(ax, piv[mx].to_numpy(float) * fx, "x")
        ax.set_xlabel(lx + (" (lower is better)" if mx != "fee_revenue" else " (higher is better)"))
        ax.set_ylabel(ly + (" (lower is better)" if my != "fee_revenue" else " (higher is better)"))
        ax.set_title(f"{mx.replace('_', ' ')} vs {my.replace('_', ' ')}")
    _legend_right(fig, axes[0, 0])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@styled
def _heatmap(
    values: pd.DataFrame,
    texts: Sequence[Sequence[str]],
    *,
    xlabel: str,
    ylabel: str,
    cbar: str,
    title: str,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """A grey-safe heat map of ``values`` (rows x columns) with ``texts`` printed in the cells."""
    from viz.style import HEATMAP_CMAP

    v = values.to_numpy(dtype=np.float64)
    h, w = v.shape
    fig, axes = new_figure(size=(1.9 * w + 3.0, 0.42 * h + 1.8))
    ax = axes[0, 0]
    img = ax.imshow(np.ma.masked_invalid(v), cmap=HEATMAP_CMAP, aspect="auto", vmin=vmin, vmax=vmax)
    annotate_cells(ax, v, texts, img)
    ax.set_xticks(np.arange(w), [str(c) for c in values.columns])
    ax.set_yticks(np.arange(h), [str(i) for i in values.index])
    ax.grid(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(img, ax=ax, label=cbar)
    fig.tight_layout()
    return fig


def draw_gameability(summary: pd.DataFrame, *, title: str = "Gameability G") -> Figure | None:
    """Heat map policy x action of the audit's G net of cost, cells printed ``G [low, high]``.

    G net of the action's cost (``G_net``, ``G_net_low``, ``G_net_high``: what the audit's
    verdict reads) when the summary has it, else gross G (``G``, ``ci_low``, ``ci_high``).
    """
    need = {"policy", "action", "G"}
    if summary is None or summary.empty or not need <= set(summary.columns):
        return None
    net = {"G_net", "G_net_low", "G_net_high"} <= set(summary.columns)
    col, lo_col, hi_col = (
        ("G_net", "G_net_low", "G_net_high") if net else ("G", "ci_low", "ci_high")
    )
    g = summary.pivot_table(index="policy", columns="action", values=col, aggfunc="first")
    g = g.reindex(index=list(dict.fromkeys(summary["policy"])))
    g = g[[a for a in dict.fromkeys(summary["action"]) if a in g.columns]]
    lo = summary.pivot_table(index="policy", columns="action", values=lo_col, aggfunc="first")
    hi = summary.pivot_table(index="policy", columns="action", values=hi_col, aggfunc="first")
    lo, hi = lo.reindex_like(g), hi.reindex_like(g)

    def cell(p: str, a: str) -> str:
        m = g.loc[p, a]
        if not np.isfinite(m):
            return "n/a"
        if np.isfinite(lo.loc[p, a]):
            return f"{m:.2f}\n[{lo.loc[p, a]:.2f}, {hi.loc[p, a]:.2f}]"
        return f"{m:.2f}"

    texts = [[cell(p, a) for a in g.columns] for p in g.index]
    return _heatmap(
        g,
        texts,
        xlabel="cosmetic action",
        ylabel="policy",
        cbar=("G net of the action's cost" if net else "G")
        + ", share of honest ADL burden shed (1 = all)",
        title=title,
    )


def _grid(
    df: pd.DataFrame, index: str, columns: str, values: str, aggfunc: str = "first"
) -> pd.DataFrame:
    """``df`` pivoted to index x columns, both in order of first appearance."""
    v = df.pivot_table(index=index, columns=columns, values=values, aggfunc=aggfunc, dropna=False)
    v = v.reindex(index=list(dict.fromkeys(df[index])))
    return v[[c for c in dict.fromkeys(df[columns]) if c in v.columns]]


def draw_verdicts(summary: pd.DataFrame, *, title: str = "Verdicts") -> Figure | None:
    """Heat map policy x metric of the robustness verdicts: the colour is the signed sign share
    (+: the policy beats the baseline in that share of cells, -: it trails), cells printed
    ``verdict`` and the share; a rule that coincides with the baseline is blank."""
    need = {"policy", "metric", "verdict", "sign_share", "conclusion"}
    if summary is None or summary.empty or not need <= set(summary.columns):
        return None
    from experiments.studies.verdict_book import direction

    way = [direction(r) for r in summary.to_dict("records")]
    sign = np.where(np.array(way) == "beats", 1.0, -1.0)
    val = np.where(summary["verdict"] == "coincides", np.nan, sign * summary["sign_share"])
    df = summary.assign(_v=val, way_=way)
    v = _grid(df, "policy", "metric", "_v")
    word = {(r.policy, r.metric): (r.verdict, r.sign_share, r.way_) for r in df.itertuples()}

    def cell(p: str, m: str) -> str:
        if (p, m) not in word:
            return "n/a"
        verdict, share, goes = word[(p, m)]
        if verdict == "coincides":
            return "coincides"
        return f"{verdict}\n{goes} {share:.0%}"

    texts = [[cell(p, m) for m in v.columns] for p in v.index]
    return _heatmap(
        v,
        texts,
        xlabel="metric (each against the baseline, better direction applied)",
        ylabel="policy",
        cbar="share of cells with the majority sign (+ beats, - trails)",
        title=title,
        vmin=-1.0,
        vmax=1.0,
    )


def draw_sensitivity(
    sens: pd.DataFrame, *, title: str = "What moves the conclusions"
) -> Figure | None:
    """Heat map factor x metric of the robustness indices, averaged over the policies: the
    Morris mu* share of each factor, and for ``churn.family`` its eta squared."""
    need = {"factor", "metric", "share"}
    if sens is None or sens.empty or not need <= set(sens.columns):
        return None
    v = _grid(sens, "factor", "metric", "share", aggfunc="mean")
    texts = [[("n/a" if not np.isfinite(x) else f"{x:.2f}") for x in row] for row in v.to_numpy()]
    return _heatmap(
        v,
        texts,
        xlabel="metric (difference policy - baseline)",
        ylabel="factor",
        cbar="Morris mu* share (churn.family: eta squared), mean over policies",
        title=title,
        vmin=0.0,
        vmax=1.0,
    )


def draw_pass_rates(summary: pd.DataFrame, *, title: str = "Bound checks") -> Figure | None:
    """Heat map policy x check of the bounds experiment's pass rates, in % (printed)."""
    need = {"policy", "check", "pass_rate"}
    if summary is None or summary.empty or not need <= set(summary.columns):
        return None
    r = 100.0 * _grid(summary, "policy", "check", "pass_rate")
    texts = [[("n/a" if not np.isfinite(x) else f"{x:.0f}%") for x in row] for row in r.to_numpy()]
    return _heatmap(
        r,
        texts,
        xlabel="check (allocation lower bounds)",
        ylabel="policy",
        cbar="instances passing, %",
        title=title,
        vmin=0.0,
        vmax=100.0,
    )


@styled
def draw_loglog(
    rows: pd.DataFrame, summary: pd.DataFrame, *, title: str = "PTSR and PMR against n"
) -> Figure | None:
    """PTSR and PMR means per (policy, n) on log-log axes with each policy's fitted line.

    The lines are ``exp(intercept) n^slope`` from the summary rows ``<m>_loglog_slope``
    (moral-hazard's least-squares fit over every run); the legend gives the slope.
    """
    if rows.empty or "run.traders" not in rows:
        return None
    pols = _policies(rows)
    fig, axes = new_figure(1, 2, size=(12.0, 4.8))
    drawn = 0
    for k, m in enumerate(LOGLOG_METRICS):
        ax = axes[0, k]
        if m not in rows:
            continue
        for i, p in enumerate(pols):
            g = rows[rows["policy"] == p]
            n = pd.to_numeric(g["run.traders"], errors="coerce")
            y = pd.to_numeric(g[m], errors="coerce").where(lambda s: s > 0)
            mean = y.groupby(n).mean().dropna()
            if mean.empty:
                continue
            st = series_style(i, len(pols))
            fit = summary[(summary["policy"] == p) & (summary["metric"] == f"{m}_loglog_slope")]
            lab = p
            if len(fit) and np.isfinite(fit["mean"].iloc[0]) and "intercept" in fit:
                b, a = float(fit["mean"].iloc[0]), float(fit["intercept"].iloc[0])
                xs = np.geomspace(mean.index.min(), mean.index.max(), 20)
                ax.plot(xs, np.exp(a) * xs**b, linestyle=st["linestyle"], color=st["color"], lw=1)
                lab = f"{p} (slope {b:.2f})"
            ax.plot(
                mean.index,
                mean.to_numpy(),
                linestyle="none",
                marker=st["marker"],
                fillstyle=st["fillstyle"],
                color=st["color"],
                label=lab,
            )
            drawn += 1
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("participation n, traders (log)")
        name = m.split("_")[0].upper()
        ax.set_ylabel(f"{name} on the eligibility base, ratio (log)")
        ax.set_title(f"{name} against n, fitted log-log line")
        ax.legend(fontsize=6)
    if not drawn:
        return None
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- oct10
def _oct10_mean(runs: pd.DataFrame, waves: pd.DataFrame) -> pd.DataFrame:
    mean = runs.groupby(["policy", "wave"])["overshoot"].mean().unstack("wave")
    return mean[[w for w in waves["wave"].to_list() if w in mean.columns]]


_PUB_STYLES = (("pr", "s"), ("vector", "^"), ("contract_pr", "v"), ("fixed_point_ilp_integer", "d"))


@styled
def _oct10_waves(
    runs: pd.DataFrame,
    data: Any,
    published: dict[str, str],
    hidden: Sequence[str],
    *,
    cumulative: bool,
    title: str,
) -> Figure:
    w, pol = data.waves, data.policies
    mean = _oct10_mean(runs, w)
    names = [p for p in mean.index if p not in hidden]
    acc = np.cumsum if cumulative else np.asarray
    x = np.arange(len(w))
    fig, axes = new_figure(size=(11.0, 6.0))
    ax = axes[0, 0]
    ax.plot(
        x,
        acc(w["overshoot_prod_usd"]),
        color="black",
        marker="o",
        lw=2.5,
        label="production, published (real)",
    )
    for suffix, mk in _PUB_STYLES[: 4 if cumulative else 3]:
        ax.plot(
            x,
            acc(pol[f"overshoot_{suffix}"]),
            color="0.45",
            marker=mk,
            linestyle="--",
            fillstyle="none",
            label=f"{published[suffix]}, published (real)",
        )
    for i, p in enumerate(names):
        ax.plot(
            x,
            acc(mean.loc[p].to_numpy()),
            lw=1,
            ms=4,
            label=f"{p} (synthetic)",
            **series_style(i + 1, len(names) + 1),
        )
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks(x, [str(v) for v in w["wave"]])
    ax.set_xlabel("wave, index")
    ax.set_ylabel(
        ("cumulative overshoot" if cumulative else "overshoot vs budget needed") + ", $ (symlog)"
    )
    ax.set_title(title)
    ax.legend(fontsize=6.5, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def draw_oct10_per_wave(
    runs: pd.DataFrame, data: Any, published: dict[str, str], hidden: Sequence[str] = ()
) -> Figure:
    """Overshoot per wave: the published production and benchmarks beside the game's policies
    (mean over seeds), symlog dollars.  ``data`` is :class:`experiments.studies.oct10.Oct10Data`."""
    return _oct10_waves(
        runs,
        data,
        published,
        hidden,
        cumulative=False,
        title="Overshoot per wave: published production vs the game's policies",
    )


def draw_oct10_cumulative(
    runs: pd.DataFrame, data: Any, published: dict[str, str], hidden: Sequence[str] = ()
) -> Figure:
    """Cumulative overshoot over the waves, published and replayed (symlog dollars)."""
    return _oct10_waves(
        runs,
        data,
        published,
        hidden,
        cumulative=True,
        title="Cumulative overshoot over the waves",
    )


@styled
def draw_oct10_horizon(runs: pd.DataFrame, data: Any, hidden: Sequence[str] = ()) -> Figure:
    """Production's published two-pass overshoot against the evaluation horizon, beside the
    largest total overshoot of any replayed policy (the replay has no price path)."""
    h = data.horizons
    tot = runs.groupby(["policy", "seed"])["overshoot"].sum().groupby("policy").mean()
    fig, axes = new_figure(size=(8.0, 5.0))
    ax = axes[0, 0]
    secs = h["eval_horizon_ms"] / 1000.0
    ax.plot(
        secs,
        h["total_overshoot_prod_minus_needed_usd"] / 1e6,
        color="black",
        marker="o",
        lw=2.5,
        label="production O(horizon), published (real)",
    )
    replayed = tot.drop(list(hidden), errors="ignore")
    if len(replayed):
        worst = replayed.abs().idxmax()
        ax.axhline(
            float(replayed[worst]) / 1e6,
            color="0.4",
            ls="--",
            label=f"every replayed policy at B needed (largest: {worst}, "
            f"${float(replayed[worst]) / 1e6:.3g}M; synthetic, no price path)",
        )
    ax.set_xlabel("evaluation horizon after the wave, s")
    ax.set_ylabel("total overshoot vs needed, $M")
    ax.set_title("Horizon curve: production's two-pass overshoot vs the replay")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@styled
def draw_oct10_vs_published(
    table: pd.DataFrame, counterparts: dict[str, str], published: dict[str, str]
) -> Figure | None:
    """The game beside the published totals, per policy with a published counterpart.

    ``table`` is oct10's ``waves.csv`` table; its ``total`` rows give the game's mean and
    interval over seeds (``synthetic_*``) and the published totals (``derived_published_*``).
    One row per game policy, filled dot = game (95 % interval), hollow square = published.
    """
    if table is None or table.empty or "wave" not in table:
        return None
    tot = table[table["wave"].astype(str) == "total"].set_index("policy")
    pols = [p for p in tot.index if p in counterparts]
    if not pols:
        return None
    panels = (
        ("overshoot", "overshoot", "total overshoot vs needed, $ (symlog)", 1.0),
        ("max_pct_equity", "max_pct", "largest haircut, % of equity", 100.0),
        ("ptsr_pubdef", "ptsr", "PTSR (published definition), ratio (symlog if wide)", 1.0),
    )
    fig, axes = new_figure(1, 3, size=(14.0, 0.38 * len(pols) + 2.2), sharey=True)
    y = np.arange(len(pols))
    for k, (gm, pm, label, f) in enumerate(panels):
        ax = axes[0, k]
        mean = tot.loc[pols, f"synthetic_{gm}_mean"].to_numpy(float) * f
        lo = tot.loc[pols, f"synthetic_{gm}_low"].to_numpy(float) * f
        hi = tot.loc[pols, f"synthetic_{gm}_high"].to_numpy(float) * f
        err = np.where(np.isfinite(lo), np.vstack([mean - lo, hi - mean]), 0.0)
        ax.errorbar(
            mean,
            y,
            xerr=np.maximum(err, 0.0),
            marker="o",
            color="black",
            linestyle="none",
            capsize=2,
            label="game (synthetic, 95 % interval)",
        )
        col = f"derived_published_{pm}"
        pub = tot.loc[pols, col].to_numpy(float) * f if col in tot else np.full(len(pols), np.nan)
        ax.plot(
            pub,
            y,
            marker="s",
            fillstyle="none",
            color="0.35",
            linestyle="none",
            ms=8,
            label="published counterpart (real/derived)",
        )
        both = np.concatenate([lo, hi, mean, pub])
        if gm == "overshoot":
            _symlog(ax, both, "x", linthresh=1.0)
        else:
            _symlog_if_wide(ax, both, "x")
        ax.set_yticks(y, [f"{p} vs {counterparts[p]}" for p in pols])
        ax.set_xlabel(label)
        ax.set_ylabel("game policy vs published rule")
        ax.set_title(label.split(",")[0])
    axes[0, 0].invert_yaxis()
    _legend_right(fig, axes[0, 0])
    fig.suptitle("Game vs published totals over the 16 waves, per policy")
    fig.tight_layout()
    return fig


# =========================================================================== per experiment
def _only(summary: pd.DataFrame, **cell: Any) -> pd.DataFrame:
    s = summary
    for k, v in cell.items():
        if k in s:
            s = s[s[k].astype(str) == str(v)]
    return s


def _compare(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    ok = ok_rows(rows)
    base = ctx.get("baseline")
    ci = interval_words(ctx)
    return [
        (
            "policy_intervals",
            "Headline metrics per policy",
            caption(
                ctx, f"Headline metrics per policy, {ci} (paired against {base} in the tables)"
            ),
            draw_policy_intervals(summary, COMPARE_METRICS, title="Headline metrics per policy"),
        ),
        (
            "lorenz_haircuts",
            "Lorenz curves of haircut fractions",
            caption(
                ctx,
                "Lorenz curves of haircut fractions h/base (eligibility base) over every "
                "(wave, account with positive capacity) pair, untouched accounts as zeros, "
                "mean over seeds",
            ),
            draw_lorenz(ok, title="Lorenz curves of haircut fractions per policy"),
        ),
        _retention_revenue(ok, ctx),
        (
            "overshoot_horizon",
            "Overshoot against the horizon",
            caption(ctx, f"Two-pass overshoot at horizons h = 0, 1, 2, 5 steps, {ci}"),
            draw_overshoot_horizon(ok),
        ),
    ]


def _retention_revenue(ok: pd.DataFrame, ctx: dict) -> Draw:
    """Retention and fee revenue per crisis cycle (compare and attrition draw the same)."""
    return (
        "retention_revenue",
        "Retention and fee revenue across crises",
        caption(
            ctx,
            "Retention of the first crisis' traders and fee revenue per crisis "
            "cycle (calm period + crisis; last = calm after the last crisis), "
            "mean over seeds",
        ),
        draw_crisis_curves(
            ok, (RETENTION, REVENUE), title="Retention and fee revenue across crises"
        ),
    )


def _attrition(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    ok = ok_rows(rows)
    return [
        _retention_revenue(ok, ctx),
        (
            "attrition_intervals",
            "Attrition metrics per policy",
            caption(
                ctx,
                "Retention, churn, fee revenue and LTV lost per deficit dollar per "
                f"policy, {interval_words(ctx)}",
            ),
            draw_policy_intervals(
                summary, ATTRITION_METRICS, ncols=2, title="Attrition metrics per policy"
            ),
        ),
    ]


def _frontier(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    obj = ctx.get("objectives") or [
        ("residual_bad_debt", False),
        ("max_haircut_base_frac", False),
        ("fee_revenue", True),
    ]
    return [
        (
            "frontier",
            "Solvency-fairness-revenue frontier",
            caption(
                ctx,
                "Means over seeds per (policy, severity): residual bad debt vs "
                "largest haircut fraction, and largest haircut fraction vs fee "
                "revenue; filled = Pareto-efficient on all three",
            ),
            draw_frontier(summary, obj, title="Trilemma frontier: policies x severity controllers"),
        )
    ]


def _moral_hazard(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    ok = ok_rows(rows)
    refs: list[Draw] = []
    if "run.traders" in ok and len(ok):
        n_max = pd.to_numeric(ok["run.traders"], errors="coerce").max()
        big = ok[pd.to_numeric(ok["run.traders"], errors="coerce") == n_max]
        refs.append(
            (
                "leverage_externality",
                "Leverage drift and externality ratio across crises",
                caption(
                    {**ctx, "traders": int(n_max)},
                    "Whales' mean target leverage minus the first crisis', and the share "
                    "of bankrupt accounts' losses paid by others, per crisis, mean over "
                    f"seeds at n = {int(n_max)}",
                ),
                draw_crisis_curves(
                    big,
                    (LEVERAGE, EXTERNALITY),
                    title=f"Moral hazard across crises (n = {int(n_max)})",
                ),
            )
        )
    refs.append(
        (
            "ptsr_pmr_loglog",
            "PTSR and PMR against participation n",
            caption(
                ctx,
                "PTSR and PMR means per (policy, n) on log-log axes with the "
                "least-squares line of log(metric) on log(n) over every run",
            ),
            draw_loglog(ok, summary, title="PTSR and PMR against participation n"),
        )
    )
    return refs


def _audit(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    pols = list(dict.fromkeys(summary["policy"])) if "policy" in summary else None
    return [
        (
            "gameability",
            "Gameability heat map",
            caption(
                {**ctx, "traders": None, "crises": None},
                "Gameability G net of the action's cost per policy and cosmetic action "
                "(burden-weighted share of the honest twin's ADL burden shed, minus fees, "
                f"spread and impact paid; {interval_words(ctx)}), paired honest and gaming "
                "worlds",
                policies=pols,
            ),
            draw_gameability(summary, title="Gameability G net of cost: policy x action"),
        )
    ]


def draw_exploitability(table: pd.DataFrame, *, title: str = "Exploitability") -> Figure | None:
    """Heat map policy x move: each scripted action's G net of cost and the searched
    exploitability (columns ``policy``, ``move``, ``value``, ``low``, ``high``), cells
    printed ``value [low, high]``."""
    need = {"policy", "move", "value", "low", "high"}
    if table is None or table.empty or not need <= set(table.columns):
        return None
    v = table.pivot_table(index="policy", columns="move", values="value", aggfunc="first")
    v = v.reindex(index=list(dict.fromkeys(table["policy"])))
    v = v[[m for m in dict.fromkeys(table["move"]) if m in v.columns]]
    lo = table.pivot_table(index="policy", columns="move", values="low", aggfunc="first")
    hi = table.pivot_table(index="policy", columns="move", values="high", aggfunc="first")
    lo, hi = lo.reindex_like(v), hi.reindex_like(v)

    def cell(p: str, m: str) -> str:
        x = v.loc[p, m]
        if not np.isfinite(x):
            return "n/a"
        if np.isfinite(lo.loc[p, m]) and np.isfinite(hi.loc[p, m]):
            return f"{x:.2f}\n[{lo.loc[p, m]:.2f}, {hi.loc[p, m]:.2f}]"
        return f"{x:.2f}"

    texts = [[cell(p, m) for m in v.columns] for p in v.index]
    return _heatmap(
        v,
        texts,
        xlabel="scripted action, or the searched best response",
        ylabel="policy",
        cbar="net gain, share of the honest ADL burden",
        title=title,
    )


@styled
def draw_search_curves(
    curve: pd.DataFrame, *, title: str = "Best-response search"
) -> Figure | None:
    """Best training gain found so far against strategies evaluated, one line per policy."""
    if curve is None or curve.empty or not {"policy", "evaluations", "best"} <= set(curve):
        return None
    fig, axes = new_figure()
    ax = axes[0, 0]
    for i, (pol, grp) in enumerate(curve.groupby("policy", sort=False)):
        ax.step(grp["evaluations"], grp["best"], where="post", label=pol, **series_style(i))
    ax.set_xlabel("strategies evaluated")
    ax.set_ylabel("best net gain so far (training seeds)")
    ax.set_title(title)
    _legend_right(fig, ax)
    return fig


def _search(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    pols = list(dict.fromkeys(summary["policy"])) if "policy" in summary else None
    return [
        (
            "exploitability",
            "Scripted and searched exploitability",
            caption(
                {**ctx, "traders": None, "crises": None},
                "Net gain of each scripted action and of the searched best response per "
                "policy (share of the honest twin's ADL burden, net of fees, spread, impact "
                f"and exposure given up; {interval_words(ctx)}), on held-out seeds",
                policies=pols,
            ),
            draw_exploitability(summary, title="Exploitability: scripted actions and search"),
        ),
        (
            "search_curves",
            "Search curves",
            "Best net gain found so far on the training seeds against strategies evaluated "
            "(CMA-ES), per policy.",
            draw_search_curves(rows),
        ),
    ]


def _bounds(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    pols = list(dict.fromkeys(summary["policy"])) if "policy" in summary else None
    return [
        (
            "pass_rates",
            "Bound checks pass rate",
            caption(
                {
                    **ctx,
                    "scenario": "generated instances (no game)",
                    "traders": None,
                    "crises": None,
                    "calm_steps": None,
                },
                "Share of generated instances on which each policy meets each bound of "
                "the allocation lower bounds",
                policies=pols,
            ),
            draw_pass_rates(summary, title="Bound checks: pass rate per policy and check"),
        )
    ]


def _robustness(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    pols = list(dict.fromkeys(summary["policy"])) if "policy" in summary else None
    cells = len(ctx.get("cells") or [])
    sizes = {**ctx, "crises": ctx.get("crises")}
    return [
        (
            "verdicts",
            "Robustness verdicts",
            caption(
                sizes,
                f"Verdict per policy and metric against {ctx.get('baseline') or 'pro_rata'} "
                f"over {cells} cells of the behavioural design (robust: the sign holds in "
                ">= 90 % of cells and the pooled 95 % interval excludes zero)",
                policies=pols,
            ),
            draw_verdicts(summary, title="Robustness: verdict per policy and metric"),
        ),
        (
            "sensitivity",
            "Sensitivity indices",
            caption(
                sizes,
                "Morris mu* share of each behavioural factor in the paired difference against "
                "the baseline, and the churn family's eta squared, averaged over policies",
                policies=pols,
            ),
            draw_sensitivity(summary.attrs.get("sensitivity"), title="What moves the verdicts"),
        ),
    ]


def draw_scaling(rows: pd.DataFrame, *, title: str = "Crash wave cost") -> Figure | None:
    """Wave step time against accounts, one line per market count and shape (left), and
    against markets for the same open positions, with the 1.5x target (right); log-log,
    markers and line styles (greyscale-safe)."""
    need = {"accounts", "markets", "shape", "step_seconds"}
    if rows is None or rows.empty or not need <= set(rows.columns):
        return None
    done = rows[rows["step_seconds"].notna()]
    if "kind" in done.columns:
        done = done[done["kind"] == "wave"]
    if done.empty:
        return None
    fig, axes = new_figure(1, 2, size=(10.0, 4.4))
    ax = axes[0, 0]
    for i, ((shape, k), g) in enumerate(done.groupby(["shape", "markets"], sort=True)):
        g = g.sort_values("accounts")
        if len(g) < 2:
            continue
        ax.plot(g["accounts"], g["step_seconds"], label=f"{k} markets, {shape}", **series_style(i))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("accounts")
    ax.set_ylabel("one wave step, s")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    one = done[done["shape"] == "one"]
    counts = one.groupby("accounts")["markets"].nunique()
    if not counts.empty and counts.max() >= 2:
        n = int(counts[counts == counts.max()].index.max())
        g = one[one["accounts"] == n].sort_values("markets")
        ax.plot(g["markets"], g["step_seconds"], label=f"{n:,} accounts", **series_style(0))
        base = g.loc[g["markets"] == 1, "step_seconds"]
        if not base.empty:
            ax.axhline(
                1.5 * float(base.iloc[0]), color="0.4", ls="--", lw=1, label="1.5x one market"
            )
        ax.set_xscale("log")
        ax.set_xlabel("markets (one position per account)")
        ax.set_ylabel("one wave step, s")
        ax.set_title("The same open positions over more markets")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _scaling(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    return [
        (
            "scaling",
            "Crash wave cost against accounts and markets",
            "One waterfall step through a 30 % drop (liquidations, fund, ADL under the "
            "Hyperliquid queue), by accounts, market count and population shape (one: one "
            "position per account; venue: a heavy-tailed count of markets per account).",
            draw_scaling(rows, title="One crash wave: time against accounts"),
        )
    ]


def _oct10(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    data = ctx.get("data")
    if data is None:
        from experiments.studies.oct10 import load_oct10

        data = load_oct10()
    published = ctx.get("published_policies") or {}
    counterparts = ctx.get("counterparts") or {}
    hl_prod = ctx.get("hl_at_prod", "hyperliquid@prod_budget")
    hidden = ("min_max_ilp", hl_prod)
    base = {
        **ctx,
        "scenario": "oct10 replay of the 16 published waves (synthetic winners)",
        "traders": None,
        "crises": None,
        "calm_steps": None,
    }
    return [
        (
            "overshoot_per_wave",
            "Overshoot per wave",
            caption(
                base,
                "Overshoot vs budget needed per wave: published production and "
                "benchmarks (real) beside the game's policies (synthetic, mean over "
                "seeds)",
            ),
            draw_oct10_per_wave(rows, data, published, hidden),
        ),
        (
            "cumulative_overshoot",
            "Cumulative overshoot",
            caption(
                base,
                "Cumulative overshoot over the 16 waves, published (real) and "
                "replayed (synthetic, mean over seeds)",
            ),
            draw_oct10_cumulative(rows, data, published, hidden),
        ),
        (
            "horizon_curve",
            "Horizon curve",
            caption(
                base,
                "Production's published two-pass overshoot against the evaluation "
                "horizon (real) beside the largest replayed total (synthetic)",
            ),
            draw_oct10_horizon(rows, data, hidden),
        ),
        (
            "game_vs_published",
            "Game vs published, per policy",
            caption(
                base,
                "Totals over the 16 waves per game policy (mean over seeds, 95 % "
                "interval) beside its published counterpart: overshoot, largest "
                "haircut, PTSR (published definition)",
            ),
            draw_oct10_vs_published(summary, counterparts, published),
        ),
    ]


#: experiment name -> function (rows, summary, context) -> [(stem, title, caption, Figure)].
@styled
def draw_design_front(front: pd.DataFrame, builtins: pd.DataFrame, ctx: dict) -> Figure | None:
    """The design's front on its first two objectives (search-seed means with the first's 95 %
    interval), the recommended rule starred, and the built-ins that meet the constraints at
    their fresh-seed means (grey crosses, named)."""
    objs = list(ctx.get("objectives") or [])
    if len(objs) < 2 or front.empty or objs[0][0] not in front or objs[1][0] not in front:
        return None
    (a, sa), (b, sb) = objs[0], objs[1]
    fig, axes = new_figure(size=(7.0, 4.8))
    ax = axes[0, 0]
    x, y = front[a].to_numpy(float), front[b].to_numpy(float)
    lo = np.clip(x - front[f"{a}.ci_low"].to_numpy(float), 0, None)
    hi = np.clip(front[f"{a}.ci_high"].to_numpy(float) - x, 0, None)
    ax.errorbar(
        x,
        y,
        xerr=[lo, hi],
        fmt="o",
        color=series_style(0)["color"],
        ecolor="0.7",
        capsize=2,
        label="front (search seeds, 95 % interval)",
    )
    rec = front["recommended"].astype(bool).to_numpy() if "recommended" in front else None
    if rec is not None and rec.any():
        ax.plot(
            x[rec],
            y[rec],
            marker="*",
            markersize=16,
            linestyle="none",
            color=series_style(3)["color"],
            label="recommended",
        )
    if not builtins.empty and a in builtins and b in builtins:
        ok = builtins[builtins["feasible"].astype(bool)] if "feasible" in builtins else builtins
        ax.plot(
            ok[a],
            ok[b],
            marker="x",
            linestyle="none",
            color="0.45",
            label="built-ins meeting the constraints (fresh seeds)",
        )
        for _, r in ok.iterrows():
            ax.annotate(
                str(r["policy"]),
                (r[a], r[b]),
                fontsize=7,
                color="0.35",
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xlabel(f"{a} ({'lower' if sa == 'min' else 'higher'} is better)")
    ax.set_ylabel(f"{b} ({'lower' if sb == 'min' else 'higher'} is better)")
    ax.set_title(ctx.get("title", "Design: the front"))
    ax.legend(loc="best", fontsize=8)
    return fig


def _design(rows: pd.DataFrame, summary: pd.DataFrame, ctx: dict) -> list[Draw]:
    return [
        (
            "front",
            "The design's front",
            f"Non-dominated candidates of `adlgame design {ctx.get('name', '')}` on its first "
            f"two objectives (means over {ctx.get('seeds', '?')} search seeds), the "
            "recommended rule, and the built-in rules at their default parameters that meet "
            f"the constraints, at their means over {ctx.get('fresh', '?')} fresh runs.",
            draw_design_front(rows, summary, ctx),
        )
    ]


DRAWERS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, dict], list[Draw]]] = {
    "compare": _compare,
    "attrition": _attrition,
    "frontier": _frontier,
    "moral-hazard": _moral_hazard,
    "audit": _audit,
    "bounds": _bounds,
    "oct10": _oct10,
    "robustness": _robustness,
    "scaling": _scaling,
    "search": _search,
    "design": _design,
}


def write_figures(
    experiment: str, out: Path, rows: pd.DataFrame, summary: pd.DataFrame, info: dict
) -> list[FigureRef]:
    """Draw ``experiment``'s figures into ``out`` (PNG + SVG each) and return their refs.

    ``info`` is the context of :func:`experiments.studies.catalogue.figure_context` (seeds,
    scenario, sizes, policies, severities; oct10 adds its published data).  Figures the data cannot
    support are skipped; an unknown experiment gives ``[]``.
    """
    draw = DRAWERS.get(str(experiment))
    if draw is None:
        return []
    refs = []
    for stem, title, cap, fig in draw(rows, summary, dict(info or {})):
        if fig is None:
            continue
        save(fig, out, stem)
        refs.append(FigureRef(stem=stem, title=title, caption=cap))
    return refs
