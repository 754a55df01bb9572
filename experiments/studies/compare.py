"""The ``compare`` experiment: every policy on the same crisis sequences, paired against
pro-rata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from experiments.studies.experiment import (
    Experiment,
)
from experiments.studies.verdict_book import verdict_lines


@dataclass(frozen=True)
class Compare(Experiment):
    """Every game policy on the default scenario, same seeds; paired against pro-rata."""

    name: ClassVar[str] = "compare"
    description: ClassVar[str] = (
        "every policy on the same crisis sequences (paired seeds): all headline metrics, "
        "differences against pro_rata"
    )



    def _report_lines(self, rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
        """The shared report, then each behavioural comparison with its robustness verdict."""
        lines = super()._report_lines(rows, summary)
        digest = rows.attrs.get("scenario_digest", "")
        pols = [p for p in dict.fromkeys(rows.get("policy", [])) if p != self.baseline]
        return [*lines, *verdict_lines(pols, digest, self.baseline or "pro_rata")]
