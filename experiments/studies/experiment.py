"""The :class:`Experiment` contract of the catalogue: specs of game runs, a summary table
and a report; sizes, seeds and the progress bar every study shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from experiments.game.scenario import Scenario, load_scenario, scenario_digest, to_dict
from experiments.runs.results import HEADLINE_METRICS
from experiments.studies.report import (
    FigureWriter,
    cell_text,
    ci_text,
    coincidence_lines,
    coinciding,
    failure_lines,
    interval_lines,
    interval_table,
    md_table,
    no_wave_lines,
    ok_rows,
    pick,
    power_lines,
    seed_text,
)
from market.adl import POLICIES, policy_class
from market.errors import require

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


def game_policies() -> list[str]:
    """Every registered policy that can play the game (exact-small-only rules left out)."""
    return [name for name, cls in POLICIES.items() if not cls.exact_small_only]


def base_scenario(scale: str = "default") -> Scenario:
    """The scenario game experiments start from at ``scale`` (see :data:`SCALES`)."""
    require(scale in SCALES, "--scale", f"one of {', '.join(SCALES)}", scale)
    sc = load_scenario()
    return sc.replace(**TINY_OVERRIDES) if scale == "tiny" else sc


def check_seeds(seeds: Any) -> int:
    """``seeds`` as an int, or InputError naming ``--seeds`` unless it is an integer >= 1."""
    require(
        isinstance(seeds, int | np.integer) and not isinstance(seeds, bool) and seeds >= 1,
        "--seeds",
        "an integer >= 1",
        seeds,
    )
    return int(seeds)


def progress_bar(
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
    #: Seeds when the command line does not say, without and with ``--quick``.
    default_seeds: ClassVar[int] = 5
    quick_seeds: ClassVar[int] = 3

    policies: tuple[str, ...] | None = None
    baseline: str | None = "pro_rata"

    def policy_names(self) -> list[str]:
        """The policies this experiment plays, validated against the registry."""
        names = game_policies() if self.policies is None else list(self.policies)
        for p in names:
            policy_class(p)  # a built-in, a plug-in or an installed entry point
        return names

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """Scenario overrides by dotted name, one dict per cell (one empty cell by default)."""
        return [{}]

    def severities(self, base: Scenario) -> list[str]:
        """Severity controllers to play (the scenario's own by default)."""
        return [base.adl.severity]

    def specs(self, seeds: int, base: Scenario) -> list[Any]:
        """One :class:`experiments.runs.runner.RunSpec` per (cell, severity, policy, seed).

        Seeds are ``1..seeds`` for every policy and cell (common random numbers).
        """
        from experiments.runs.runner import RunSpec

        n = check_seeds(seeds)
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
            f"- runs: {len(rows)} ({len(ok)} finished), seeds {seed_text(seeds)} for every "
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
            first = pick(summary, summary["metric"].iloc[0], **cell)
            if first is not None and cell_text(first.get("coincides_with")):
                continue
            runs = int(first["runs"]) if first is not None and "runs" in first else None
            cells = [str(g[k]) for k in keys] + ["-" if runs is None else str(runs)]
            for m in metrics:
                r = pick(summary, m, **cell)
                if r is None:
                    cells.append("-")
                    continue
                if diff:
                    text, n = ci_text(r["diff_mean"], r["diff_low"], r["diff_high"]), r["diff_n"]
                else:
                    text, n = ci_text(r["mean"], r["ci_low"], r["ci_high"]), r["n"]
                if runs is not None and int(n) < runs:
                    text += f" (n={int(n)})"
                cells.append(text)
            body.append(cells)
        return md_table([*keys, "n", *metrics], body)

    def _report_lines(self, rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
        keys = self.group_by()
        lines = [*self._header(rows, summary), "## Mean [95 % interval] per policy", ""]
        lines += self._metric_table(summary, keys, self.report_metrics(), diff=False)
        lines += coincidence_lines(summary, keys)
        if self.baseline and "diff_mean" in summary.columns:
            lines += ["", f"## Paired difference against {self.baseline} (same seeds)", ""]
            lines += self._metric_table(summary, keys, self.report_metrics(), diff=True)
            seeds = rows["seed"].nunique() if "seed" in rows.columns else 0
            lines += power_lines(summary, self.report_metrics(), int(seeds))
        lines += failure_lines(rows)
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
        from experiments.runs.runner import run_specs

        specs = self.specs(seeds, base)
        rows = run_specs(specs, out / "runs", executor=executor, workers=workers, quiet=quiet)
        rows = self._in_catalogue_order(rows, base)
        rows.attrs["scenario_name"] = base.name + ("" if scale == "default" else f" ({scale})")
        rows.attrs["scenario_digest"] = scenario_digest(base)
        summary, report = self.summarise(rows)
        failed = int((rows["status"] != "ok").sum()) if "status" in rows.columns else 0
        extra = self.write_outputs(out, summary)
        return rows, summary, report, {"runs": len(rows), "runs_failed": failed, **extra}

    def write_outputs(self, out: Path, summary: pd.DataFrame) -> dict[str, Any]:
        """Files an experiment writes beside the common ones, after its runs; returns what
        they add to the run's info (none by default)."""
        return {}
