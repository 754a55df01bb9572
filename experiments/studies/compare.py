"""The ``compare`` experiment: every policy on the same crisis sequences, paired against
pro-rata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from experiments.studies.experiment import (
    Experiment,
)


@dataclass(frozen=True)
class Compare(Experiment):
    """Every game policy on the default scenario, same seeds; paired against pro-rata."""

    name: ClassVar[str] = "compare"
    description: ClassVar[str] = (
        "every policy on the same crisis sequences (paired seeds): all headline metrics, "
        "differences against pro_rata"
    )


