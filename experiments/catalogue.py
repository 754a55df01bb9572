"""The experiment catalogue behind ``adlgame experiment NAME``.

Each named experiment is an :class:`Experiment`: game-based ones build a list of run specs
(:meth:`Experiment.specs`) that :func:`experiments.runner.run_specs` executes (locally or on a
cluster, resumable), and summarise the runs' rows (:meth:`Experiment.summarise`) into a table of
means with 95 % intervals that stay inside each metric's declared range
(:func:`experiments.metrics.confidence_interval`), their n, and paired differences against a
baseline policy on the same seeds.  The others wrap code that does not play the game
(``bounds``), or that plays its own worlds (``audit``, ``oct10``).  :func:`run_experiment`
runs one by name and writes, into its results folder:

* ``runs.parquet`` -- one row per run: parameters, seed, every headline metric, status;
* ``summary.csv`` -- mean, 95 % interval and n per policy (or per cell) and metric, the runs
  without an ADL wave, paired differences against the baseline policy where it applies, and
  ``coincides_with`` (a policy whose numbers repeat an earlier one's on every seed);
* ``report.md`` -- the tables a reader needs, with seeds, scenario and sizes;
* with a figure writer (``figures=``, e.g. ``viz.figures.write_figures``): its PNG and SVG
  files, linked from a ``## Figures`` section of the report.  This package never imports
  ``viz``: the writer is handed in (:data:`FigureWriter`, :class:`FigureRef`).

Common random numbers: every policy runs on seeds ``1..N``, and a game's randomness (traders,
prices, crises) depends only on its scenario and seed, so the runs of two policies on one seed
see the same crisis sequence; the paired differences use exactly those pairs.

``min_max_ilp`` is exact on small snapshots only and is left out of every game experiment (it
is in ``bounds``, whose instances are small, and in ``oct10``, on subsamples).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from experiments.metrics import (
    MIN_INFORMATIVE_N,
    Interval,
    PairedDifference,
    confidence_interval,
    interval_method,
    paired_difference,
)
from experiments.run import HEADLINE_METRICS, json_safe, metric_range
from experiments.scenario import Scenario, load_scenario, to_dict
from market.adl import POLICIES, SEVERITIES
from market.errors import InputError, require

__all__ = [
    "CATALOGUE",
    "LEVEL",
    "OCT10_RANGES",
    "SCALES",
    "TINY_OVERRIDES",
    "Attrition",
    "Audit",
    "Bounds",
    "Compare",
    "Experiment",
    "FigureRef",
    "FigureWriter",
    "Frontier",
    "MoralHazard",
    "Oct10",
    "base_scenario",
    "coincidence_lines",
    "coinciding",
    "describe",
    "figure_context",
    "figure_section",
    "game_policies",
    "get_experiment",
    "interval_lines",
    "interval_table",
    "list_lines",
    "no_wave_lines",
    "ok_rows",
    "pareto_efficient",
    "run_experiment",
]

#: Size presets: ``default`` is the built-in default scenario; ``tiny`` is for tests and
#: smoke runs (a hidden ``--scale`` option of the command line).
SCALES = ("default", "tiny")

#: Overrides of the default scenario at the ``tiny`` scale.
TINY_OVERRIDES = {
    "run.traders": 200,
    "run.crises": 2,
    "run.calm_steps": 5,
    "run.crisis_steps": 4,
}

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


def game_policies() -> list[str]:
    """Every registered policy that can play the game (exact-small-only rules left out)."""
    return [name for name, cls in POLICIES.items() if not cls.exact_small_only]


def base_scenario(scale: str = "default") -> Scenario:
    """The scenario game experiments start from at ``scale`` (see :data:`SCALES`)."""
    require(scale in SCALES, "--scale", f"one of {', '.join(SCALES)}", scale)
    sc = load_scenario()
    return sc.replace(**TINY_OVERRIDES) if scale == "tiny" else sc


def _check_seeds(seeds: Any) -> int:
    require(
        isinstance(seeds, int | np.integer) and not isinstance(seeds, bool) and seeds >= 1,
        "--seeds",
        "an integer >= 1",
        seeds,
    )
    return int(seeds)


# =========================================================================== summaries
def _fmt(x: Any, digits: int = 4) -> str:
    """A number for a Markdown table: 4 significant digits, thousands separated."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    x = float(x)
    if abs(x) < 1e-9:  # float noise of sums that are zero (dollars, fractions)
        return "0"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _ci_text(mean: float, low: float, high: float) -> str:
    """``mean [low, high]``; an interval within 1e-6 of zero everywhere is float noise: ``0``."""
    if not np.isfinite(low):
        return _fmt(mean)
    if max(abs(float(mean)), abs(float(low)), abs(float(high))) < 1e-6:
        return "0 [0, 0]"
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def _text(v: Any) -> str:
    """``v`` as text, with None and NaN as ``""``."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def ok_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that finished (``status == "ok"``; every row when there is no status)."""
    if "status" not in rows.columns:
        return rows
    return rows[rows["status"] == "ok"]


def _metric_interval(
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


def _paired(
    a: np.ndarray, b: np.ndarray, bounds: tuple[float, float], level: float
) -> PairedDifference:
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
    :func:`experiments.run.metric_range`; unknown metrics are unbounded), by
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
            ci, method = _metric_interval(vals, bounds, level)
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
                    d = _paired(a, z, bounds, level)
                    rec.update(
                        diff_mean=d.mean,
                        diff_low=d.low,
                        diff_high=d.high,
                        diff_n=d.n,
                        diff_p=d.p_value,
                    )
                else:
                    rec.update(
                        diff_mean=np.nan,
                        diff_low=np.nan,
                        diff_high=np.nan,
                        diff_n=0,
                        diff_p=np.nan,
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


def _pick(summary: pd.DataFrame, metric: str, **cell: Any) -> pd.Series | None:
    s = summary[summary["metric"] == metric]
    for k, v in cell.items():
        s = s[s[k] == v]
    return None if s.empty else s.iloc[0]


def _failures(rows: pd.DataFrame) -> list[str]:
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


def coincidence_lines(summary: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """Report lines naming every group whose numbers repeat an earlier policy's on every seed."""
    if summary.empty or "coincides_with" not in summary.columns:
        return []
    same = summary[summary["coincides_with"].map(_text) != ""]
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


# =========================================================================== experiments
@dataclass(frozen=True)
class Experiment:
    """One named experiment (scikit-learn habit: the fields are its parameters).

    Game-based experiments implement :meth:`specs` and :meth:`summarise`; the rest override
    :meth:`run`.

    Attributes:
        policies: policy names to play (``None``: every game policy, :func:`game_policies`).
        baseline: the policy every other is paired against (same seeds), or ``None``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    game: ClassVar[bool] = True

    policies: tuple[str, ...] | None = None
    baseline: str | None = "pro_rata"

    def policy_names(self) -> list[str]:
        """The policies this experiment plays, validated against the registry."""
        names = game_policies() if self.policies is None else list(self.policies)
        for p in names:
            require(p in POLICIES, "policy", f"one of {', '.join(POLICIES)}", p)
        return names

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """Scenario overrides by dotted name, one dict per cell (one empty cell by default)."""
        return [{}]

    def severities(self, base: Scenario) -> list[str]:
        """Severity controllers to play (the scenario's own by default)."""
        return [base.adl.severity]

    def specs(self, seeds: int, base: Scenario) -> list[Any]:
        """One :class:`experiments.runner.RunSpec` per (cell, severity, policy, seed).

        Seeds are ``1..seeds`` for every policy and cell (common random numbers).
        """
        from experiments.runner import RunSpec

        n = _check_seeds(seeds)
        out = []
        for cell in self.cells(base):
            sc = to_dict(base.replace(**cell) if cell else base)
            for severity in self.severities(base):
                for policy in self.policy_names():
                    for seed in range(1, n + 1):
                        out.append(
                            RunSpec(
                                scenario=sc,
                                policy=policy,
                                severity=severity,
                                seed=seed,
                                cell=dict(cell),
                                tags={"experiment": self.name},
                            )
                        )
        return out

    def group_by(self) -> list[str]:
        """Columns the summary groups the runs by."""
        return ["policy"]

    def metrics(self) -> tuple[str, ...]:
        """The metrics summarised."""
        return HEADLINE_METRICS

    def report_metrics(self) -> tuple[str, ...]:
        """The metrics shown in the report's tables (a readable subset)."""
        return (
            "residual_bad_debt",
            "overshoot",
            "accounts_touched",
            "max_haircut_base_frac",
            "gini_haircut_base",
            "ptsr_base",
            "ptsr_base_weighted",
            "pmr_base",
            "retention",
            "fee_revenue",
        )

    def table(self, rows: pd.DataFrame) -> pd.DataFrame:
        """:func:`interval_table` of the runs, with a ``coincides_with`` column.

        ``coincides_with`` names the earlier policy whose numbers a group repeats on every
        seed (:func:`coinciding` over every summarised metric), ``""`` otherwise.
        """
        by = self.group_by()
        summary = interval_table(rows, by, self.metrics(), baseline=self.baseline)
        same = coinciding(rows, by, self.metrics())
        if len(summary):
            keys = zip(*(summary[c] for c in by), strict=True)
            summary["coincides_with"] = [same.get(tuple(k), "") for k in keys]
        return summary

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """Summary table and the report's Markdown for the rows of this experiment's runs."""
        summary = self.table(rows)
        return summary, "\n".join(self._report_lines(rows, summary)) + "\n"

    # -- report pieces ---------------------------------------------------------------------
    def _header(self, rows: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[str]:
        ok = ok_rows(rows)
        seeds = sorted({int(s) for s in rows["seed"]}) if "seed" in rows.columns else []
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- runs: {len(rows)} ({len(ok)} finished), seeds {_seed_text(seeds)} for every "
            "policy (common random numbers: one seed, one crisis sequence)",
            f"- policies: {', '.join(dict.fromkeys(rows['policy']))}"
            if "policy" in rows.columns
            else "- policies: -",
        ]
        if "scenario_name" in rows.attrs:
            lines.append(f"- scenario: {rows.attrs['scenario_name']}")
        lines += interval_lines(len(seeds), self.baseline)
        lines += no_wave_lines(ok)
        lines += [
            "- fairness on `_base`: haircuts over the eligibility base before the lot and "
            "fairness caps (max(PnL, 0) under the profits-only cap), which does not depend on "
            "the ADL price rule, so rules closing at the previous mark and at the bankruptcy "
            "price compare; the `_capacity` variants (over the wave's capacity, priced at the "
            "rule's price) are in summary.csv; Gini over rows with positive capacity only",
            "- every figure is in summary.csv (all headline metrics), every run in runs.parquet",
            "",
        ]
        return lines

    def _metric_table(
        self, summary: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], diff: bool
    ) -> list[str]:
        """Rows = groups, columns = metrics: ``mean [low, high]`` or the paired difference.

        Column ``n`` is the group's finished runs; a cell computed from fewer values (a metric
        undefined in some runs, or fewer pairs) says ``(n=k)``.  Groups that coincide with an
        earlier policy (``coincides_with``) are left out; :func:`coincidence_lines` names them.
        """
        if summary.empty:
            return ["(no finished runs)"]
        metrics = [m for m in metrics if m in set(summary["metric"])]
        groups = summary[list(keys)].drop_duplicates()
        body = []
        for _, g in groups.iterrows():
            cell = {k: g[k] for k in keys}
            if diff and cell.get("policy") == self.baseline:
                continue
            first = _pick(summary, summary["metric"].iloc[0], **cell)
            if first is not None and _text(first.get("coincides_with")):
                continue
            runs = int(first["runs"]) if first is not None and "runs" in first else None
            cells = [str(g[k]) for k in keys] + ["-" if runs is None else str(runs)]
            for m in metrics:
                r = _pick(summary, m, **cell)
                if r is None:
                    cells.append("-")
                    continue
                if diff:
                    text, n = _ci_text(r["diff_mean"], r["diff_low"], r["diff_high"]), r["diff_n"]
                else:
                    text, n = _ci_text(r["mean"], r["ci_low"], r["ci_high"]), r["n"]
                if runs is not None and int(n) < runs:
                    text += f" (n={int(n)})"
                cells.append(text)
            body.append(cells)
        return _md_table([*keys, "n", *metrics], body)

    def _report_lines(self, rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
        keys = self.group_by()
        lines = [*self._header(rows, summary), "## Mean [95 % interval] per policy", ""]
        lines += self._metric_table(summary, keys, self.report_metrics(), diff=False)
        lines += coincidence_lines(summary, keys)
        if self.baseline and "diff_mean" in summary.columns:
            lines += ["", f"## Paired difference against {self.baseline} (same seeds)", ""]
            lines += self._metric_table(summary, keys, self.report_metrics(), diff=True)
        lines += _failures(rows)
        return lines

    # -- running ---------------------------------------------------------------------------
    def _in_catalogue_order(self, rows: pd.DataFrame, base: Scenario) -> pd.DataFrame:
        """Rows ordered by cell, policy (registry order), severity (as played), then seed."""
        if rows.empty:
            return rows.reset_index(drop=True)
        cells = [c for c in rows.columns if "." in c and not c.startswith("tag.")]
        rank_p = {p: i for i, p in enumerate(self.policy_names())}
        rank_s = {s: i for i, s in enumerate(self.severities(base))}
        key = rows.assign(
            _p=rows["policy"].map(rank_p).fillna(len(rank_p)),
            _s=rows["severity"].map(rank_s).fillna(len(rank_s)),
        )
        key = key.sort_values([*cells, "_p", "_s", "seed"], kind="mergesort")
        return key.drop(columns=["_p", "_s"]).reset_index(drop=True)

    def run(
        self,
        seeds: int,
        out: Path,
        *,
        base: Scenario,
        executor: str = "local",
        workers: int | None = None,
        quiet: bool = False,
        scale: str = "default",
        figures: FigureWriter | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
        """Run the specs through the runner; returns (rows, summary, report, info)."""
        from experiments.runner import run_specs

        specs = self.specs(seeds, base)
        rows = run_specs(specs, out / "runs", executor=executor, workers=workers, quiet=quiet)
        rows = self._in_catalogue_order(rows, base)
        rows.attrs["scenario_name"] = base.name + ("" if scale == "default" else f" ({scale})")
        summary, report = self.summarise(rows)
        failed = int((rows["status"] != "ok").sum()) if "status" in rows.columns else 0
        return rows, summary, report, {"runs": len(rows), "runs_failed": failed}


def _seed_text(seeds: Sequence[int]) -> str:
    if not seeds:
        return "-"
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}..{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(map(str, seeds))


@dataclass(frozen=True)
class Compare(Experiment):
    """Every game policy on the default scenario, same seeds; paired against pro-rata."""

    name: ClassVar[str] = "compare"
    description: ClassVar[str] = (
        "every policy on the same crisis sequences (paired seeds): all headline metrics, "
        "differences against pro_rata"
    )


@dataclass(frozen=True)
class MoralHazard(Experiment):
    """Leverage drift and externality ratio per policy, and PTSR/PMR against participation n.

    Attributes:
        trader_fractions: ``run.traders`` values as fractions of the base scenario's (the
            default 2000 gives n = 250, 500, 1000, 2000).
    """

    name: ClassVar[str] = "moral-hazard"
    description: ClassVar[str] = (
        "leverage drift and externality ratio per policy; PTSR/PMR against participation n "
        "(log-log slope)"
    )

    trader_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)

    #: The ratios fitted against n (C3's PTSR and PMR on the eligibility base).
    SCALED: ClassVar[tuple[str, str]] = ("ptsr_base", "pmr_base")

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """One cell per trader count."""
        ns = sorted({max(10, round(base.run.traders * f)) for f in self.trader_fractions})
        return [{"run.traders": n} for n in ns]

    def group_by(self) -> list[str]:
        """Per trader count and policy."""
        return ["run.traders", "policy"]

    def metrics(self) -> tuple[str, ...]:
        """Moral-hazard metrics first, then the rest of the headline."""
        first = ("leverage_drift", "externality_ratio", *self.SCALED)
        return (*first, *(m for m in HEADLINE_METRICS if m not in first))

    def report_metrics(self) -> tuple[str, ...]:
        """The report shows the four moral-hazard metrics."""
        return ("leverage_drift", "externality_ratio", *self.SCALED)

    def scaling(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per policy and metric (PTSR, PMR): least-squares slope of log(metric) on log(n).

        Fitted on every finished run with a positive finite value
        (:func:`scipy.stats.linregress`); the interval is ``slope +- t * stderr``.  A slope of
        ``b`` means the metric scales like ``n^b``.
        """
        ok = ok_rows(rows)
        out = []
        for policy, g in ok.groupby("policy", sort=False):
            n = pd.to_numeric(g["run.traders"], errors="coerce").to_numpy(float)
            for m in self.SCALED:
                if m not in g.columns:
                    continue
                y = pd.to_numeric(g[m], errors="coerce").to_numpy(float)
                keep = np.isfinite(y) & (y > 0) & np.isfinite(n) & (n > 0)
                rec: dict[str, Any] = {
                    "run.traders": "all",
                    "policy": policy,
                    "metric": f"{m}_loglog_slope",
                    "n": int(keep.sum()),
                }
                if keep.sum() >= 3 and np.unique(n[keep]).size >= 2:
                    fit = stats.linregress(np.log(n[keep]), np.log(y[keep]))
                    half = float(stats.t.ppf(0.5 + LEVEL / 2, keep.sum() - 2) * fit.stderr)
                    rec.update(
                        mean=float(fit.slope),
                        ci_low=float(fit.slope - half),
                        ci_high=float(fit.slope + half),
                        r_value=float(fit.rvalue),
                        intercept=float(fit.intercept),
                    )
                else:
                    rec.update(mean=np.nan, ci_low=np.nan, ci_high=np.nan)
                out.append(rec)
        return pd.DataFrame(out)

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """Interval table per (n, policy) plus the log-log slope rows (``run.traders = all``)."""
        table = self.table(rows)
        slopes = self.scaling(rows)
        summary = pd.concat([table, slopes], ignore_index=True) if len(slopes) else table
        if "run.traders" in summary.columns:
            summary["run.traders"] = summary["run.traders"].astype(str)
        lines = self._report_lines(rows, table)
        lines += ["", "## PTSR and PMR against participation n", ""]
        ns = sorted(pd.to_numeric(ok_rows(rows)["run.traders"]).unique()) if len(rows) else []
        body = []
        for policy in dict.fromkeys(ok_rows(rows)["policy"]):
            cells = [policy]
            for m in self.SCALED:
                for n in ns:
                    r = _pick(table, m, policy=policy, **{"run.traders": n})
                    cells.append("-" if r is None else _fmt(r["mean"]))
                s = slopes[(slopes["policy"] == policy) & (slopes["metric"] == f"{m}_loglog_slope")]
                r = s.iloc[0] if len(s) else None
                cells.append(
                    "-"
                    if r is None
                    else f"{_ci_text(r['mean'], r['ci_low'], r['ci_high'])} (n={int(r['n'])})"
                )
            body.append(cells)
        header = ["policy"]
        for m in self.SCALED:
            header += [f"{m} n={int(n)}" for n in ns] + [f"{m} slope"]
        lines += _md_table(header, body)
        lines += [
            "",
            "Slope: least-squares fit of log(metric) on log(n) over every run with a positive "
            "value (scipy.stats.linregress; n = those runs: runs without a wave have no PTSR), "
            "with a 95 % interval; PTSR ~ n^slope. The theory "
            "(adl-papers.md §4) has PTSR ~ b_n / (theta_n n): a negative slope means the "
            "largest survivor shrinks relative to the deficit as participation grows.",
        ]
        return summary, "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Attrition(Experiment):
    """Retention, fee revenue and LTV lost over many crises.

    Attributes:
        crises: ``run.crises`` of every run (20 by default).
    """

    name: ClassVar[str] = "attrition"
    description: ClassVar[str] = (
        "retention, fee revenue and LTV lost per deficit dollar over 20 crises"
    )

    crises: int = 20

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """One cell: ``run.crises``."""
        return [{"run.crises": int(self.crises)}]

    def metrics(self) -> tuple[str, ...]:
        """Attrition metrics first, then the rest of the headline."""
        first = (
            "retention",
            "fee_revenue",
            "ltv_lost_per_deficit_dollar",
            "traders_churned",
            "traders_active_end",
            "recovery_steps",
        )
        return (*first, *(m for m in HEADLINE_METRICS if m not in first))

    def report_metrics(self) -> tuple[str, ...]:
        """The report shows the attrition metrics and the deficit they are measured against."""
        return (
            "retention",
            "fee_revenue",
            "ltv_lost_per_deficit_dollar",
            "traders_churned",
            "traders_active_end",
            "total_deficit",
        )


@dataclass(frozen=True)
class Frontier(Experiment):
    """Solvency, fairness and revenue across policies and severity controllers.

    Attributes:
        severity_names: controllers to cross with the policies (``None``: every one).
    """

    name: ClassVar[str] = "frontier"
    description: ClassVar[str] = (
        "the solvency-fairness-revenue trade-off across policies and severity controllers, "
        "Pareto-efficient pairs marked"
    )

    severity_names: tuple[str, ...] | None = None

    #: (metric, maximise?) defining the frontier: solvency, fairness, revenue.
    OBJECTIVES: ClassVar[tuple[tuple[str, bool], ...]] = (
        ("residual_bad_debt", False),
        ("max_haircut_base_frac", False),
        ("fee_revenue", True),
    )

    def severities(self, base: Scenario) -> list[str]:
        """Every severity controller (or those named)."""
        names = list(SEVERITIES) if self.severity_names is None else list(self.severity_names)
        for s in names:
            require(s in SEVERITIES, "severity", f"one of {', '.join(SEVERITIES)}", s)
        return names

    def group_by(self) -> list[str]:
        """Per (policy, severity)."""
        return ["policy", "severity"]

    def report_metrics(self) -> tuple[str, ...]:
        """Solvency, fairness and revenue metrics."""
        return (
            "residual_bad_debt",
            "max_haircut_base_frac",
            "gini_haircut_base",
            "fee_revenue",
            "retention",
        )

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """Interval table per (policy, severity) with a ``pareto`` column on the means."""
        summary = self.table(rows)
        pairs = summary[["policy", "severity"]].drop_duplicates().reset_index(drop=True)
        pts = np.full((len(pairs), len(self.OBJECTIVES)), np.nan)
        for j, (m, _) in enumerate(self.OBJECTIVES):
            sub = summary[summary["metric"] == m].set_index(["policy", "severity"])["mean"]
            idx = pd.MultiIndex.from_frame(pairs)
            pts[:, j] = sub.reindex(idx).to_numpy(dtype=float)
        eff = pareto_efficient(pts, [mx for _, mx in self.OBJECTIVES]) if len(pairs) else []
        pairs["pareto"] = eff
        if len(pairs):
            summary = summary.merge(pairs, on=["policy", "severity"], how="left")
        lines = self._report_lines(rows, summary)
        lines += [
            "",
            "## Frontier: solvency (residual bad debt, lower is better), fairness (largest "
            "haircut fraction, lower), revenue (fee revenue, higher)",
            "",
        ]
        body = []
        for i, r in pairs.iterrows():
            body.append(
                [
                    r["policy"],
                    r["severity"],
                    *(_fmt(pts[i, j]) for j in range(len(self.OBJECTIVES))),
                    "yes" if r["pareto"] else "",
                ]
            )
        lines += _md_table(
            ["policy", "severity", *(m for m, _ in self.OBJECTIVES), "Pareto-efficient"], body
        )
        lines += [
            "",
            "A (policy, severity) pair is Pareto-efficient when no other pair has a mean at "
            "least as good on all three objectives and better on one. Means only: see the "
            "intervals above before reading a close call.",
        ]
        return summary, "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Bounds(Experiment):
    """design.md §1's lower bounds checked on generated instances (no game).

    Attributes:
        n_min, n_max: accounts per instance (``min_max_ilp`` is exact at these sizes).
    """

    name: ClassVar[str] = "bounds"
    description: ClassVar[str] = (
        "the lower bounds of design.md §1 checked for every policy on generated instances (no game)"
    )
    game: ClassVar[bool] = False

    baseline: str | None = None
    n_min: int = 20
    n_max: int = 150

    def run(
        self,
        seeds: int,
        out: Path,
        *,
        base: Scenario,
        executor: str = "local",
        workers: int | None = None,
        quiet: bool = False,
        scale: str = "default",
        figures: FigureWriter | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
        """Check every policy on instances of seeds ``1..seeds``."""
        from experiments.catalogue_bounds import run_bounds, summarise_bounds

        n = _check_seeds(seeds)
        n_max = self.n_max if scale == "default" else min(self.n_max, 60)
        rows = run_bounds(range(1, n + 1), n_min=min(self.n_min, n_max), n_max=n_max)
        summary, report = summarise_bounds(rows)
        fails = rows[~rows["passed"]]
        return (
            rows,
            summary,
            report,
            {
                "rows": len(rows),
                "failed_rows": len(fails),
                "failed_facts": int((fails["kind"] == "fact").sum()),
            },
        )


@dataclass(frozen=True)
class Audit(Experiment):
    """The gameability audit (experiments.audit) over every game policy and action."""

    name: ClassVar[str] = "audit"
    description: ClassVar[str] = (
        "the gameability audit: every policy x every cosmetic action, paired honest and "
        "gaming worlds"
    )
    game: ClassVar[bool] = False

    baseline: str | None = None

    def run(
        self,
        seeds: int,
        out: Path,
        *,
        base: Scenario,
        executor: str = "local",
        workers: int | None = None,
        quiet: bool = False,
        scale: str = "default",
        figures: FigureWriter | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
        """Run the audit, write its own files, and return its records and table."""
        from experiments import audit as au

        n = _check_seeds(seeds)
        cfg = (
            au.AuditConfig()
            if scale == "default"
            else au.AuditConfig(accounts=200, targets=2, rehearsals=1)
        )
        pols = au.default_policies() if self.policies is None else list(self.policies)
        result = au.run_audit(cfg, pols, list(au.ACTION_NAMES), n, workers=workers)
        paths = au.write_report(result, out)
        rows = pd.DataFrame(result.records)
        summary = pd.DataFrame(result.rows)
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- seeds {_seed_text(result.seeds)}, {cfg.accounts} accounts per world, "
            f"{len(pols)} policies x {len(result.actions)} actions",
            "- G is the share of its honest ADL burden an account sheds by the action "
            "(burden-weighted over targets, mean over seeds, 95 % interval)",
            "- runs.parquet: one row per (seed, policy, action, target); summary.csv: one "
            "row per (policy, action); also gameability.csv / .md / _targets.csv"
            + (
                f"; the audit ran in its own process pool (executor {executor!r} unused)"
                if executor != "local"
                else ""
            ),
            "",
            au.format_markdown(result),
        ]
        return (
            rows,
            summary,
            "\n".join(lines) + "\n",
            {
                "files": [str(p) for p in paths],
                "rows": len(rows),
            },
        )


@dataclass(frozen=True)
class Oct10(Experiment):
    """The 10 October 2025 replay (experiments.oct10), in the catalogue's file format."""

    name: ClassVar[str] = "oct10"
    description: ClassVar[str] = ""  # read from experiments.oct10.DESCRIPTION
    game: ClassVar[bool] = False

    baseline: str | None = None

    def run(
        self,
        seeds: int,
        out: Path,
        *,
        base: Scenario,
        executor: str = "local",
        workers: int | None = None,
        quiet: bool = False,
        scale: str = "default",
        figures: FigureWriter | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
        """Replay and write oct10's files; rows are the per (wave, seed, policy) replay rows.

        ``figures`` is handed to :func:`experiments.oct10.write_report`, which links them.
        """
        from experiments import oct10

        n = _check_seeds(seeds)
        cfg = None if scale == "default" else oct10.ReplayConfig(ilp_rows=20, max_accounts=200)
        bar, progress = _progress_bar(quiet, "wave", f"adlgame experiment {self.name}")
        try:
            info = oct10.run_experiment(
                out,
                n,
                cfg=cfg,
                progress=progress,
                figures=figures,
                context=figure_context(self, n, base, scale),
            )
        finally:
            if bar is not None:
                bar.close()
        rows = pd.read_csv(out / "runs.csv")
        totals = oct10.run_totals(rows)
        metrics = [m for m in oct10.METRICS if m in totals.columns]
        summary = interval_table(totals, ["policy"], metrics, ranges=OCT10_RANGES)
        report = (out / "report.md").read_text()
        return rows, summary, report, info


#: Ranges of the oct10 replay's per-run totals (experiments.oct10.METRICS), for their
#: intervals: dollar sums, counts and ratios are non-negative, the largest haircut over
#: capacity is a fraction, the overshoot has either sign.
OCT10_RANGES: dict[str, tuple[float, float]] = {
    "budget": (0.0, np.inf),
    "raised": (0.0, np.inf),
    "overshoot": (-np.inf, np.inf),
    "residual": (0.0, np.inf),
    "touched": (0.0, np.inf),
    "max_pct_equity": (0.0, np.inf),
    "max_pct_capacity": (0.0, 1.0),
    "ptsr": (0.0, np.inf),
    "pmr": (0.0, np.inf),
    "ptsr_pubdef": (0.0, np.inf),
    "pmr_pubdef": (0.0, np.inf),
}


def _progress_bar(
    quiet: bool, unit: str, desc: str
) -> tuple[Any, Callable[[int, int], None] | None]:
    """A tqdm bar on stderr and its ``progress(done, total)`` callback (None, None if quiet)."""
    if quiet:
        return None, None
    import sys

    from tqdm import tqdm

    bar = tqdm(total=1, unit=unit, desc=desc, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


#: The catalogue: name -> experiment with its default parameters, in listing order.
CATALOGUE: dict[str, Experiment] = {
    e.name: e
    for e in (
        Compare(),
        Audit(),
        MoralHazard(),
        Attrition(),
        Frontier(),
        Bounds(),
        Oct10(),
    )
}


def describe(name: str) -> str:
    """The one-line description of an experiment."""
    if name == "oct10":
        from experiments.oct10 import DESCRIPTION

        return DESCRIPTION
    return CATALOGUE[name].description


def list_lines() -> list[str]:
    """``NAME  description`` for every experiment (what ``--list`` prints)."""
    width = max(len(n) for n in CATALOGUE) + 2
    return [f"{name:<{width}}{describe(name)}" for name in CATALOGUE]


def get_experiment(name: str | Experiment) -> Experiment:
    """An experiment by name (an instance is returned as it is)."""
    if isinstance(name, Experiment):
        return name
    if name not in CATALOGUE:
        raise InputError("experiment", f"one of {', '.join(CATALOGUE)} (or --list)", name)
    return CATALOGUE[name]


def _as_text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict | list | tuple):
        return json.dumps(json_safe(v), sort_keys=True)
    return str(v)


def _parquet_ready(rows: pd.DataFrame) -> pd.DataFrame:
    """A copy Parquet can store: object columns holding mixed types become text (JSON)."""
    df = rows.copy()
    df.attrs = {}
    for col in df.columns:
        if df[col].dtype == object and df[col].map(type).nunique() > 1:
            df[col] = df[col].map(_as_text)
    return df


def figure_context(
    exp: Experiment, seeds: int, base: Scenario, scale: str, rows: pd.DataFrame | None = None
) -> dict[str, Any]:
    """What a figure writer needs to caption an experiment's figures.

    Keys: ``experiment``, ``seeds`` (count), ``seed_list``, ``scale``, ``scenario`` (name,
    with the scale when not default), ``traders``, ``crises``, ``calm_steps``,
    ``crisis_steps`` (an int, or the sorted list of values when the cells vary it),
    ``policies``, ``severities``, ``baseline``, ``cells`` (scenario overrides per cell) and,
    for the frontier, ``objectives`` ((metric, maximise) pairs).
    """
    cells = exp.cells(base) if exp.game else [{}]
    ctx: dict[str, Any] = {
        "experiment": exp.name,
        "seeds": int(seeds),
        "seed_list": list(range(1, int(seeds) + 1)),
        "scale": scale,
        "scenario": base.name + ("" if scale == "default" else f" ({scale})"),
        "baseline": exp.baseline,
        "cells": [dict(c) for c in cells],
    }
    for key in ("traders", "crises", "calm_steps", "crisis_steps"):
        vals = sorted({int(c.get(f"run.{key}", getattr(base.run, key))) for c in cells})
        ctx[key] = vals[0] if len(vals) == 1 else vals
    if rows is not None and "policy" in rows.columns and len(rows):
        ctx["policies"] = list(dict.fromkeys(str(p) for p in rows["policy"]))
    elif exp.game or exp.policies is not None:
        ctx["policies"] = exp.policy_names()
    else:
        ctx["policies"] = []
    ctx["severities"] = exp.severities(base) if exp.game else []
    if isinstance(exp, Frontier):
        ctx["objectives"] = [list(o) for o in exp.OBJECTIVES]
    return ctx


def run_experiment(
    name: str | Experiment,
    seeds: int,
    out: str | Path,
    executor: str = "local",
    workers: int | None = None,
    quiet: bool = False,
    *,
    base: Scenario | None = None,
    scale: str = "default",
    figures: FigureWriter | None = None,
) -> pd.DataFrame:
    """Run one experiment and write ``runs.parquet``, ``summary.csv`` and ``report.md``.

    ``base`` is the scenario game experiments start from (default: :func:`base_scenario` at
    ``scale``).  Game runs go through :func:`experiments.runner.run_specs`, which keeps
    resumable shards in ``out/runs/`` beside ``runs.parquet``: running again into the same
    folder reuses finished runs.  Returns the summary table; ``summary.attrs["info"]`` holds
    the paths written, the wall time and experiment-specific figures (what the command line
    prints as JSON).

    ``figures`` (e.g. ``viz.figures.write_figures``) is called after the runs with (name,
    out, rows, summary, :func:`figure_context`); the figures it returns are linked from a
    ``## Figures`` section of ``report.md`` and listed in ``info["figures"]``.  Without it the
    report has no figure section and no image is written.

    Raises:
        InputError: for an unknown experiment, a bad seed count or scale.
    """
    exp = get_experiment(name)
    n = _check_seeds(seeds)
    require(scale in SCALES, "--scale", f"one of {', '.join(SCALES)}", scale)
    t0 = time.perf_counter()
    base = base if base is not None else base_scenario(scale)
    if exp.game:
        exp.specs(n, base)  # validates policies, severities and cells before anything is written
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    rows, summary, report, info = exp.run(
        n,
        path,
        base=base,
        executor=executor,
        workers=workers,
        quiet=quiet,
        scale=scale,
        figures=figures,
    )
    _parquet_ready(rows).to_parquet(path / "runs.parquet", index=False)
    summary.to_csv(path / "summary.csv", index=False)
    if exp.name != "oct10":  # oct10 writes its own report.md (and its own figure section)
        if figures is not None:
            ctx = figure_context(exp, n, base, scale, rows)
            refs = list(figures(exp.name, path, rows, summary, ctx))
            report = report.rstrip("\n") + "\n" + "\n".join(figure_section(refs))
            info = {**info, "figures": [r.stem for r in refs]}
        (path / "report.md").write_text(report)
    seconds = time.perf_counter() - t0
    summary.attrs["info"] = json_safe(
        {
            **info,
            "experiment": exp.name,
            "seeds": n,
            "runs_parquet": str(path / "runs.parquet"),
            "summary_csv": str(path / "summary.csv"),
            "report": str(path / "report.md"),
            "seconds": seconds,
        }
    )
    return summary
