"""The ``compare`` experiment: every policy on the same crisis sequences, paired against
pro-rata; with ``venues``, every venue preset (:mod:`experiments.game.venues`) on the same
crises, paired against Hyperliquid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from experiments.game.scenario import Scenario, to_dict
from experiments.game.venues import VENUES, venue_overrides
from experiments.studies.experiment import Experiment, check_seeds
from experiments.studies.verdict_book import verdict_lines


@dataclass(frozen=True)
class Compare(Experiment):
    """Every game policy on the default scenario, same seeds; paired against pro-rata.

    Attributes:
        venues: play every venue preset instead (its rule, backstop kind and fees on the
            base world), paired against the Hyperliquid venue.
    """

    name: ClassVar[str] = "compare"
    description: ClassVar[str] = (
        "every policy on the same crisis sequences (paired seeds): all headline metrics, "
        "differences against pro_rata"
    )

    venues: bool = False

    def __post_init__(self) -> None:
        if self.venues:  # a frozen dataclass: the venue comparison's baseline is Hyperliquid
            object.__setattr__(self, "baseline", "hyperliquid")

    def policy_names(self) -> list[str]:
        """The policies played: every venue's own rule with ``venues``."""
        if self.venues:
            return [VENUES[v][0]["adl.policy"] for v in VENUES]
        return super().policy_names()

    def specs(self, seeds: int, base: Scenario) -> list[Any]:
        """Per venue (with ``venues``): its preset on ``base``, its own rule, seeds 1..N."""
        if not self.venues:
            return super().specs(seeds, base)
        from experiments.runs.runner import RunSpec

        n = check_seeds(seeds)
        out = []
        for venue in VENUES:
            over = venue_overrides(venue)
            sc = to_dict(base.replace(**over))
            for seed in range(1, n + 1):
                out.append(
                    RunSpec(
                        scenario=sc,
                        policy=over["adl.policy"],
                        severity=base.adl.severity,
                        seed=seed,
                        cell={},
                        tags={"experiment": self.name, "venue": venue},
                    )
                )
        return out

    def _report_lines(self, rows: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
        """The shared report, then each behavioural comparison with its robustness verdict
        (the venue comparison: what each venue preset sets)."""
        lines = super()._report_lines(rows, summary)
        if self.venues:
            from experiments.game.venues import FEE_NOTE

            body = [
                f"- **{v}** (`{o['adl.policy']}`): {text}; backstop {o['backstop.kind']}, "
                f"taker {o['market.taker_fee']:.4%}, maker {o['market.maker_fee']:.4%}"
                for v, (o, text) in VENUES.items()
            ]
            return [
                *lines,
                "",
                "## The venues",
                "",
                "Each venue is the base scenario (same traders, prices and crises for every "
                "venue and seed) with its own rule, backstop kind and fees; differences are "
                "against the Hyperliquid venue.  Fees: " + FEE_NOTE + ".",
                "",
                *body,
            ]
        digest = rows.attrs.get("scenario_digest", "")
        pols = [p for p in dict.fromkeys(rows.get("policy", [])) if p != self.baseline]
        return [*lines, *verdict_lines(pols, digest, self.baseline or "pro_rata")]
