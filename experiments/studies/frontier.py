"""The ``frontier`` experiment: policies x severities, Pareto-efficient pairs marked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from experiments.game.scenario import Scenario
from experiments.studies.experiment import (
    Experiment,
)
from experiments.studies.report import (
    fmt,
    md_table,
    pareto_efficient,
)
from market.adl import SEVERITIES
from market.errors import require


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
                    *(fmt(pts[i, j]) for j in range(len(self.OBJECTIVES))),
                    "yes" if r["pareto"] else "",
                ]
            )
        lines += md_table(
            ["policy", "severity", *(m for m, _ in self.OBJECTIVES), "Pareto-efficient"], body
        )
        lines += [
            "",
            "A (policy, severity) pair is Pareto-efficient when no other pair has a mean at "
            "least as good on all three objectives and better on one. Means only: see the "
            "intervals above before reading a close call.",
        ]
        return summary, "\n".join(lines) + "\n"
