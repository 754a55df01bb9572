"""The audit as a catalogue experiment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from experiments.game.scenario import Scenario
from experiments.studies.audit.actions import (
    ACTION_NAMES,
)
from experiments.studies.audit.report import (
    format_markdown,
    write_report,
)
from experiments.studies.audit.summary import (
    run_audit,
)
from experiments.studies.audit.world import (
    AuditConfig,
    default_policies,
)
from experiments.studies.experiment import (
    Experiment,
    check_seeds,
)
from experiments.studies.report import (
    FigureWriter,
    seed_text,
)


# =========================================================================== catalogue entry
@dataclass(frozen=True)
class Audit(Experiment):
    """The gameability audit (experiments.studies.audit) over every game policy and action."""

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
        n = check_seeds(seeds)
        cfg = (
            AuditConfig()
            if scale == "default"
            else AuditConfig(accounts=200, targets=2, rehearsals=1)
        )
        pols = default_policies() if self.policies is None else list(self.policies)
        result = run_audit(cfg, pols, list(ACTION_NAMES), n, workers=workers)
        paths = write_report(result, out)
        rows = pd.DataFrame(result.records)
        summary = pd.DataFrame(result.rows)
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- seeds {seed_text(result.seeds)}, {cfg.accounts} accounts per world, "
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
            format_markdown(result),
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
