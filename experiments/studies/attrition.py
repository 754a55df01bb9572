"""The ``attrition`` experiment: retention and revenue over many crises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from experiments.game.scenario import Scenario
from experiments.runs.results import HEADLINE_METRICS
from experiments.studies.experiment import (
    Experiment,
)


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
