"""The experiment catalogue behind ``adlgame experiment NAME``.

Each named experiment is an :class:`Experiment`: game-based ones build a list of run specs
(:meth:`Experiment.specs`) that :func:`experiments.runs.runner.run_specs` executes (locally or on a
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from experiments.game.scenario import Scenario
from experiments.runs.results import json_safe
from experiments.studies.attrition import Attrition
from experiments.studies.audit import Audit
from experiments.studies.bounds import Bounds
from experiments.studies.calibrate import Calibrate
from experiments.studies.compare import Compare
from experiments.studies.experiment import (
    SCALES,
    Experiment,
    base_scenario,
    check_seeds,
    progress_bar,
)
from experiments.studies.frontier import Frontier
from experiments.studies.moral_hazard import MoralHazard
from experiments.studies.report import (
    FigureWriter,
    figure_section,
    interval_table,
)
from experiments.studies.robustness import Robustness
from market.errors import InputError, require


@dataclass(frozen=True)
class Oct10(Experiment):
    """The 10 October 2025 replay (experiments.studies.oct10), in the catalogue's file format."""

    name: ClassVar[str] = "oct10"
    description: ClassVar[str] = ""  # read from experiments.studies.oct10.DESCRIPTION
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

        ``figures`` is handed to :func:`experiments.studies.oct10.write_report`, which links them.
        """
        from experiments.studies import oct10

        n = check_seeds(seeds)
        cfg = None if scale == "default" else oct10.ReplayConfig(ilp_rows=20, max_accounts=200)
        bar, progress = progress_bar(quiet, "wave", f"adlgame experiment {self.name}")
        try:
            info = oct10.run_experiment(
                out,
                n,
                cfg=cfg,
                progress=progress,
                figures=figures,
                context=figure_context(self, n, base, scale),
                game_seeds=2 if scale == "default" else 1,
                game_traders=None if scale == "default" else 1000,
                market_seeds=3 if scale == "default" else 1,
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


#: Ranges of the oct10 replay's per-run totals (experiments.studies.oct10.METRICS), for their
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
        Robustness(),
        Calibrate(),
        Oct10(),
    )
}


def describe(name: str) -> str:
    """The one-line description of an experiment."""
    if name == "oct10":
        from experiments.studies.oct10 import DESCRIPTION

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
    ``scale``).  Game runs go through :func:`experiments.runs.runner.run_specs`, which keeps
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
    n = check_seeds(seeds)
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
