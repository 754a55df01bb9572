"""The ``robustness`` experiment: does a conclusion survive the behavioural assumptions?

Every headline comparison the catalogue makes (each game policy against ``pro_rata`` on
retention, fee revenue, LTV lost per deficit dollar, the externality ratio and the largest
haircut) is recomputed in every cell of a design over the behaviour: each churn hazard family
(:data:`agents.churn.CHURN_FAMILIES`) crossed with a Latin hypercube over the behavioural
parameters (:data:`PARAMETERS`), the same seeds in every cell and for every policy (paired).
Runs go through the run engine, so ``--executor dask://...`` works.

A conclusion (policy, metric) is the sign of the paired difference ``policy - pro_rata``.  It
is **robust** when that sign holds in at least 90 % of the cells (cell means over seeds) and the
interval of the difference pooled over every cell and seed excludes zero; otherwise it is
**fragile**, and ``flips_under`` names the churn families under which some cell's sign flips.
A policy whose numbers equal pro_rata's in every run **coincides** with it (no conclusion).
``verdicts.csv`` holds the verdicts; ``summary.csv`` the same table.

Gameability is the audit's own experiment (``adlgame audit``) and is not re-run here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.stats import qmc

from agents.churn import CHURN_FAMILIES
from experiments.game.scenario import Scenario
from experiments.metrics import confidence_interval
from experiments.studies.experiment import Experiment
from experiments.studies.report import FigureWriter, md_table, ok_rows, seed_text

__all__ = ["CONCLUSION_METRICS", "PARAMETERS", "Robustness", "verdicts"]

#: Behavioural parameters the design varies, with their ranges (dotted scenario names).
PARAMETERS: dict[str, tuple[float, float]] = {
    "churn.beta": (1.0, 20.0),
    "churn.surprise": (0.0, 5.0),
    "passive.liquidation_churn": (0.0, 0.6),
    "entry.sensitivity": (5.0, 50.0),
    "imitation.rate": (0.0, 0.3),
}
#: The metrics whose comparisons against pro-rata are judged, with the better direction.
CONCLUSION_METRICS: dict[str, str] = {
    "retention": "higher",
    "fee_revenue": "higher",
    "ltv_lost_per_deficit_dollar": "lower",
    "externality_ratio": "lower",
    "max_haircut_base_frac": "lower",
}
#: Share of the design a sign must hold in for a robust verdict.
ROBUST_SHARE = 0.9


def verdicts(rows: pd.DataFrame, baseline: str = "pro_rata", level: float = 0.95) -> pd.DataFrame:
    """One row per (policy, metric): the conclusion, its sign share over the design's cells,
    the pooled paired interval, the verdict and the churn families where its sign flips."""
    ok = ok_rows(rows)
    key = ["cell_id", "seed"]
    base = ok[ok["policy"] == baseline].set_index(key)
    out = []
    for policy, g in ok[ok["policy"] != baseline].groupby("policy", sort=False):
        g = g.set_index(key)
        both = g.index.intersection(base.index)
        for metric, better in CONCLUSION_METRICS.items():
            if metric not in g.columns:
                continue
            d = pd.to_numeric(g.loc[both, metric], errors="coerce") - pd.to_numeric(
                base.loc[both, metric], errors="coerce"
            )
            d = d.dropna()
            if d.empty:
                continue
            per_cell = d.groupby(level="cell_id").mean()
            scale = max(float(np.abs(base.loc[both, metric]).max()), 1e-12)
            same = bool((d.abs() <= 1e-9 * scale).all())
            majority = float(np.sign(per_cell.median())) or float(np.sign(per_cell.mean()))
            share = float((np.sign(per_cell) == majority).mean()) if majority else 0.0
            ci = confidence_interval(d.to_numpy(), level)
            excludes = ci.low > 0 or ci.high < 0
            good = (majority > 0) == (better == "higher")
            fam_of = g.reset_index().drop_duplicates("cell_id").set_index("cell_id")["churn.family"]
            flips = sorted({fam_of[c] for c in per_cell.index if np.sign(per_cell[c]) != majority})
            verdict = "robust" if share >= ROBUST_SHARE and excludes else "fragile"
            if same:
                verdict, flips = "coincides", []
            text = "equals" if same else ("beats" if good else "trails")
            out.append(
                {
                    "conclusion": f"{policy} {text} {baseline} on {metric} ({better} is better)",
                    "metric": metric,
                    "policy": policy,
                    "baseline": baseline,
                    "cells": int(per_cell.size),
                    "n": int(ci.n),
                    "mean_diff": ci.mean,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "sign_share": share,
                    "verdict": verdict,
                    "flips_under": ",".join(flips),
                }
            )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class Robustness(Experiment):
    """Each policy against pro_rata over churn families x a design over behaviour.

    Attributes:
        points: Latin-hypercube points per churn family (``quick``: 1).
        quick: a small design for a first look (one point per family).
    """

    name: ClassVar[str] = "robustness"
    description: ClassVar[str] = (
        "every policy against pro_rata across churn families and a behavioural design: "
        "which conclusions are robust"
    )

    points: int = 3
    quick: bool = False

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """Churn family x Latin-hypercube point, each a dict of overrides with a ``cell_id``."""
        n = 1 if self.quick else int(self.points)
        lo = np.array([r[0] for r in PARAMETERS.values()])
        hi = np.array([r[1] for r in PARAMETERS.values()])
        sample = qmc.LatinHypercube(d=len(PARAMETERS), seed=np.random.default_rng(7)).random(n)
        values = qmc.scale(sample, lo, hi)
        cells = []
        for family in CHURN_FAMILIES:
            for point in values:
                cell = {"churn.family": family}
                cell.update({k: float(v) for k, v in zip(PARAMETERS, point, strict=True)})
                cells.append(cell)
        return cells

    def group_by(self) -> list[str]:
        """Verdicts are per policy and metric (see :func:`verdicts`)."""
        return ["policy"]

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """The verdict table and the report."""
        rows = _with_cell_ids(rows)
        table = verdicts(rows)
        ok = ok_rows(rows)
        seeds = sorted({int(s) for s in ok["seed"]}) if "seed" in ok.columns else []
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- cells: {rows['cell_id'].nunique() if len(rows) else 0} (churn families "
            f"{', '.join(CHURN_FAMILIES)} x {1 if self.quick else self.points} Latin-hypercube "
            f"points over {', '.join(PARAMETERS)}), seeds {seed_text(seeds)} in every cell",
            f"- robust: the sign holds in >= {ROBUST_SHARE:.0%} of cells and the pooled 95 % "
            "interval of the paired difference excludes zero; otherwise fragile",
            "",
        ]
        if table.empty:
            return table, "\n".join([*lines, "(no finished runs)"]) + "\n"
        body = [
            [
                r["conclusion"],
                r["verdict"],
                f"{r['sign_share']:.0%}",
                f"{r['mean_diff']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}] (n={r['n']})",
                r["flips_under"] or "-",
            ]
            for _, r in table.iterrows()
        ]
        lines += md_table(
            ["conclusion", "verdict", "sign share", "mean diff [95 %]", "flips under"], body
        )
        return table, "\n".join(lines) + "\n"

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
        """The runs of the design; also writes ``verdicts.csv``."""
        rows, table, report, info = super().run(
            seeds,
            out,
            base=base,
            executor=executor,
            workers=workers,
            quiet=quiet,
            scale=scale,
            figures=figures,
        )
        table.to_csv(Path(out) / "verdicts.csv", index=False)
        robust = int((table["verdict"] == "robust").sum()) if len(table) else 0
        return rows, table, report, {**info, "verdicts": len(table), "robust": robust}


def _with_cell_ids(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a ``cell_id``: one id per distinct combination of the design's columns."""
    cols = [c for c in ("churn.family", *PARAMETERS) if c in rows.columns]
    if not cols or rows.empty:
        return rows.assign(cell_id=0)
    ids = rows[cols].astype(str).agg("|".join, axis=1)
    return rows.assign(cell_id=pd.factorize(ids)[0])
