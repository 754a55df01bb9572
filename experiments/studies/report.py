"""The shared report writer of every study: number formats, Markdown tables, intervals
over runs with their n, paired differences, coinciding rules, figure sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.metrics import (
    MIN_INFORMATIVE_N,
    Interval,
    PairedDifference,
    confidence_interval,
    interval_method,
    paired_difference,
    seeds_needed,
)
from experiments.runs.results import metric_range
from market.errors import InputError, require

#: Confidence level of every interval in the catalogue.
LEVEL = 0.95


@dataclass(frozen=True)
class FigureRef:
    """One figure a figure writer drew into a results folder.

    Attributes:
        stem: file name without suffix; ``<stem>.png`` and ``<stem>.svg`` exist in the folder.
        title: the figure's title (the image's alt text in the report).
        caption: one line: what it shows, the seeds and the configuration.
    """

    stem: str
    title: str
    caption: str


#: ``writer(experiment, out, rows, summary, context) -> [FigureRef, ...]``: draws an
#: experiment's figures into ``out`` (see :func:`figure_context` for ``context``).
FigureWriter = Callable[[str, Path, pd.DataFrame, pd.DataFrame, dict], list[FigureRef]]


def figure_section(refs: Sequence[FigureRef], heading: str = "## Figures") -> list[str]:
    """Markdown lines of a report's figure section (empty when there are no figures).

    For each figure: ``![title](stem.png)``, then its caption and a link to ``stem.svg``.
    """
    if not refs:
        return []
    lines = ["", heading, ""]
    for r in refs:
        lines += [f"![{r.title}]({r.stem}.png)", "", f"{r.caption} ([SVG]({r.stem}.svg))", ""]
    return lines


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a Markdown table: 4 significant digits, thousands separated."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    x = float(x)
    if abs(x) < 1e-9:  # float noise of sums that are zero (dollars, fractions)
        return "0"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ci_text(mean: float, low: float, high: float) -> str:
    """``mean [low, high]``; an interval within 1e-6 of zero everywhere is float noise: ``0``."""
    if not np.isfinite(low):
        return fmt(mean)
    if max(abs(float(mean)), abs(float(low)), abs(float(high))) < 1e-6:
        return "0 [0, 0]"
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def cell_text(v: Any) -> str:
    """``v`` as text, with None and NaN as ``""``."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown lines of a table with ``header`` and ``rows`` of cell text."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def ok_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that finished (``status == "ok"``; every row when there is no status)."""
    if "status" not in rows.columns:
        return rows
    return rows[rows["status"] == "ok"]


def metric_interval(
    vals: np.ndarray, bounds: tuple[float, float], level: float
) -> tuple[Interval, str]:
    """The interval of one metric and its method; out-of-range values fall back, flagged.

    Values outside the declared range (possible only for a range that holds under default
    parameters, such as fee revenue with non-negative fee rates) get the plain t interval and
    the method ``"t (values outside [lo, hi])"``, which the summary and report show.
    """
    try:
        return confidence_interval(vals, level, bounds), interval_method(bounds)
    except InputError:
        lo, hi = bounds
        return confidence_interval(vals, level), f"t (values outside [{lo:g}, {hi:g}])"


def paired(
    a: np.ndarray, b: np.ndarray, bounds: tuple[float, float], level: float
) -> PairedDifference:
    """Paired difference ``a - b`` inside ``bounds``; unbounded when values fall outside."""
    try:
        return paired_difference(a, b, level, bounds)
    except InputError:
        return paired_difference(a, b, level)


def interval_table(
    rows: pd.DataFrame,
    by: Sequence[str],
    metrics: Sequence[str],
    *,
    baseline: str | None = None,
    level: float = LEVEL,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Long table: one row per (group, metric) with the mean, its interval and its n.

    ``by`` names the grouping columns (``policy`` among them when ``baseline`` is given).
    Each metric's interval stays inside its range (``ranges``, default the headline ranges of
    :func:`experiments.runs.results.metric_range`; unknown metrics are unbounded), by
    :func:`experiments.metrics.confidence_interval`; the column ``interval`` names the
    method.  ``runs`` counts the group's finished runs, ``n`` those where the metric is
    defined, ``no_wave`` those without any ADL wave (``adl_waves == 0``; NaN when the rows do
    not say).  With a ``baseline`` policy, each group other than the baseline's also gets the
    paired difference ``group - baseline`` over the seeds both ran, within the same values of
    the other ``by`` columns: ``diff_mean``, ``diff_low``, ``diff_high`` (an interval inside
    the range of differences), ``diff_n`` and ``diff_p``.  Failed runs are left out; metrics
    missing from ``rows`` are skipped.
    """
    ok = ok_rows(rows)
    metrics = [m for m in metrics if m in ok.columns]
    by = list(by)
    others = [c for c in by if c != "policy"]
    out: list[dict[str, Any]] = []
    if ok.empty:
        return pd.DataFrame(
            columns=[*by, "metric", "mean", "ci_low", "ci_high", "n", "runs", "no_wave"]
        )

    def bounds_of(m: str) -> tuple[float, float]:
        return tuple(ranges[m]) if ranges is not None and m in ranges else metric_range(m)

    base_idx: dict[tuple, pd.DataFrame] = {}
    if baseline is not None:
        require("policy" in by, "by", "a list naming 'policy' when a baseline is given", by)
        base = ok[ok["policy"] == baseline]
        for key, g in base.groupby(others, sort=False, dropna=False) if others else [((), base)]:
            k = key if isinstance(key, tuple) else (key,)
            base_idx[k] = g.set_index("seed")
    for key, g in ok.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        cell = dict(zip(by, key, strict=True))
        other_key = tuple(cell[c] for c in others)
        b = base_idx.get(other_key) if baseline is not None else None
        pair = baseline is not None and cell.get("policy") != baseline and b is not None
        if pair:
            mine = g.set_index("seed")
            seeds = mine.index.intersection(b.index)
        waves = pd.to_numeric(g.get("adl_waves"), errors="coerce") if "adl_waves" in g else None
        no_wave = float((waves == 0).sum()) if waves is not None and waves.notna().all() else np.nan
        for m in metrics:
            vals = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=np.float64)
            bounds = bounds_of(m)
            ci, method = metric_interval(vals, bounds, level)
            rec: dict[str, Any] = {
                **cell,
                "metric": m,
                "mean": ci.mean,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "n": ci.n,
                "runs": len(g),
                "no_wave": no_wave,
                "interval": method,
            }
            if baseline is not None:
                rec["baseline"] = baseline
                if pair and len(seeds):
                    a = pd.to_numeric(mine.loc[seeds, m], errors="coerce").to_numpy(float)
                    z = pd.to_numeric(b.loc[seeds, m], errors="coerce").to_numpy(float)
                    d = paired(a, z, bounds, level)
                    rec.update(
                        diff_mean=d.mean,
                        diff_low=d.low,
                        diff_high=d.high,
                        diff_n=d.n,
                        diff_p=d.p_value,
                        seeds_needed=seeds_needed(a, z, level=level),
                    )
                else:
                    rec.update(
                        diff_mean=np.nan,
                        diff_low=np.nan,
                        diff_high=np.nan,
                        diff_n=0,
                        diff_p=np.nan,
                        seeds_needed=np.nan,
                    )
            out.append(rec)
    return pd.DataFrame(out)


def coinciding(
    rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], rtol: float = 1e-9
) -> dict[tuple, str]:
    """Groups whose runs repeat an earlier policy's numbers: group key -> that policy.

    Within the same values of the other ``by`` columns, policy P coincides with an earlier
    policy Q (in row order) when both ran the same seeds and every metric of ``metrics`` is
    the same on every seed (equal within ``rtol`` of the larger magnitude, or 1e-9 absolute;
    NaN equals NaN): at these parameters the two rules are one rule.  Finished runs only;
    keys are tuples of the ``by`` values.
    """
    ok = ok_rows(rows)
    by = list(by)
    metrics = [m for m in metrics if m in ok.columns]
    if ok.empty or "policy" not in by or not metrics:
        return {}
    others = [c for c in by if c != "policy"]
    out: dict[tuple, str] = {}
    groups = ok.groupby(others, sort=False, dropna=False) if others else [((), ok)]
    for okey, g in groups:
        okey = okey if isinstance(okey, tuple) else (okey,)
        seen: list[tuple[str, pd.Index, np.ndarray]] = []
        for pol, gp in g.groupby("policy", sort=False):
            gp = gp.sort_values("seed")
            vals = gp[metrics].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
            seeds = pd.Index(gp["seed"])
            for q, qseeds, qvals in seen:
                if not seeds.equals(qseeds):
                    continue
                same_nan = np.isnan(vals) == np.isnan(qvals)
                with np.errstate(invalid="ignore"):
                    tol = np.maximum(rtol * np.maximum(np.abs(vals), np.abs(qvals)), 1e-9)
                    close = np.isnan(vals) | (np.abs(vals - qvals) <= tol)
                if bool((same_nan & close).all()):
                    cell = dict(zip(others, okey, strict=True)) | {"policy": pol}
                    out[tuple(cell[c] for c in by)] = q
                    break
            else:
                seen.append((str(pol), seeds, vals))
    return out


def pareto_efficient(
    points: np.ndarray, maximise: Sequence[bool], rtol: float = 1e-6
) -> np.ndarray:
    """Boolean mask of the rows of ``points`` (k x m) that no other row dominates.

    Row ``j`` dominates row ``i`` when it is at least as good on every objective and better on
    one (``maximise[k]`` says which direction is better).  Differences smaller than ``rtol``
    times an objective's range over the rows count as ties (a residual of $0.07 against one
    of $0 is float noise, not a better rule).  Rows with a NaN objective are never efficient
    and never dominate.  Vectorised over pairs (k is small: policies x severities).
    """
    p = np.asarray(points, dtype=np.float64)
    sign = np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)
    q = p * sign  # every objective to be minimised
    finite = np.all(np.isfinite(q), axis=1)
    if not finite.any():
        return finite
    span = np.nanmax(q[finite], axis=0) - np.nanmin(q[finite], axis=0)
    tol = rtol * span
    diff = q[:, None, :] - q[None, :, :]  # diff[j, i] = q_j - q_i
    le = np.all(diff <= tol, axis=2)  # j at least as good as i everywhere (within tol)
    lt = np.any(diff < -tol, axis=2)  # and better somewhere (beyond tol)
    dom = le & lt & finite[:, None] & finite[None, :]
    return finite & ~dom.any(axis=0)


def pick(summary: pd.DataFrame, metric: str, **cell: Any) -> pd.Series | None:
    """The summary row of ``metric`` in the group ``cell`` (None when absent)."""
    s = summary[summary["metric"] == metric]
    for k, v in cell.items():
        s = s[s[k] == v]
    return None if s.empty else s.iloc[0]


def failure_lines(rows: pd.DataFrame) -> list[str]:
    """Report lines listing the failed runs (at most 20), empty when none failed."""
    if "status" not in rows.columns:
        return []
    bad = rows[rows["status"] != "ok"]
    if bad.empty:
        return []
    lines = ["", f"## Failed runs ({len(bad)} of {len(rows)}; left out of every figure)", ""]
    for _, r in bad.head(20).iterrows():
        err = str(r.get("error", "")).splitlines()[0][:160] if r.get("error") else ""
        lines.append(f"- {r.get('policy')} seed {r.get('seed')}: {r.get('status')} {err}")
    return lines


def interval_lines(seeds: int, baseline: str | None = None) -> list[str]:
    """Report lines saying how the intervals are drawn, and when they are not yet informative."""
    lines = [
        "- intervals: 95 % over seeds, Student-t on a scale that keeps each metric in its "
        "range (log for non-negative metrics, logit for bounded ones such as fractions; "
        "summary.csv column `interval`); n = runs where the metric is defined"
    ]
    if baseline:
        lines.append(
            f"- paired differences: policy - {baseline} on the same seeds, their interval "
            "inside the range of a difference (+-1 for a fraction)"
        )
    if seeds < MIN_INFORMATIVE_N:
        lines.append(
            f"- **{seeds} seed{'s' if seeds != 1 else ''}: these intervals are not yet "
            f"informative** (fewer than {MIN_INFORMATIVE_N}; the t quantile alone is 12.7 at "
            f"2 seeds): run --seeds {MIN_INFORMATIVE_N} or more before reading a difference"
        )
    return lines


def no_wave_lines(ok: pd.DataFrame) -> list[str]:
    """Report line counting the finished runs without any ADL wave, and how metrics treat them."""
    if "adl_waves" not in ok.columns or ok.empty:
        return ["- runs with no ADL wave: not recorded in these rows (no `adl_waves` column)"]
    waves = pd.to_numeric(ok["adl_waves"], errors="coerce")
    none = ok[waves == 0]
    text = f"- runs with no ADL wave: {len(none)} of {len(ok)}"
    if len(none) and "policy" in ok.columns:
        per = none.groupby("policy", sort=False).size()
        text += " (" + ", ".join(f"{p} {k}" for p, k in per.items()) + ")"
    return [
        text + "; such a run counts as 0 in dollars and counts, while the fairness metrics "
        "(largest haircut, Gini, PTSR, PMR, inversions, rank correlation) are undefined in it "
        "and left out of their n"
    ]


def power_lines(summary: pd.DataFrame, metrics: Sequence[str], seeds: int) -> list[str]:
    """Report lines on power: per metric, how many paired seeds would detect the observed
    difference against the baseline with 80 % power (median over policies), and which
    metrics this run's seeds fall short on."""
    if summary.empty or "seeds_needed" not in summary.columns:
        return []
    rows = []
    short = []
    for m in metrics:
        need = pd.to_numeric(summary.loc[summary["metric"] == m, "seeds_needed"], errors="coerce")
        need = need[np.isfinite(need)]
        if need.empty:
            continue
        med = float(need.median())
        rows.append([m, f"{med:,.0f}", f"{float(need.max()):,.0f}"])
        if med > seeds:
            short.append(m)
    if not rows:
        return []
    lines = [
        "",
        "## Power: paired seeds to detect the observed differences (80 %, 95 % level)",
        "",
        *md_table(["metric", "median over policies", "largest"], rows),
        "",
        "Estimated from this run's own spread of paired differences (rough with few seeds); "
        "summary.csv column `seeds_needed` has it per policy.",
    ]
    if short:
        lines.append(
            f"With {seeds} seeds this run is short for: {', '.join(short)} (the median "
            "difference there would need more seeds to be told from zero)."
        )
    return lines


def coincidence_lines(summary: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Report lines naming every group whose numbers repeat an earlier policy's on every seed."""
    if summary.empty or "coincides_with" not in summary.columns:
        return []
    same = summary[summary["coincides_with"].map(cell_text) != ""]
    same = same.drop_duplicates(list(keys))
    lines = []
    for _, r in same.iterrows():
        where = ", ".join(f"{k}={r[k]}" for k in keys if k != "policy")
        lines.append(
            f"- {r['policy']} coincides with {r['coincides_with']} on every seed at these "
            f"parameters{' (' + where + ')' if where else ''}: every summarised metric is the "
            "same, so its row is left out here (it is in summary.csv, column coincides_with)"
        )
    return ["", *lines] if lines else []


def seed_text(seeds: Sequence[int]) -> str:
    """Seeds as ``1..5`` when consecutive, else comma-separated; ``-`` for none."""
    if not seeds:
        return "-"
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}..{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(str, seeds))
