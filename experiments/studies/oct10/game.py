"""Production's overshoot: why the replay cannot measure it, and the oct10 game that does."""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.studies.oct10.data import (
    DATA_FILES,
    GAP_FILE,
    _where,
    data_folder,
)
from market.errors import require

#: The oct10 scenario's rules measured in :func:`game_overshoot`: the production queue in
#: its venue's position execution, and pro-rata asked for the need.
GAME_POLICIES = ("hyperliquid", "pro_rata")


def gap_check(data_folder_path: Traversable | Path | None = None) -> float | None:
    """Largest |sum over coins of qty x gap per contract - B needed| over the waves, dollars.

    Reads ``two_pass_wave_coin_gap_per_contract_h0.csv`` (real); None when the file is not
    packaged.  A value at float noise shows that the published B needed *is* the liquidated
    quantity priced at the gap, so a queue closing those quantities at that gap raises exactly
    B needed: the replay cannot measure production's overshoot.
    """
    folder = data_folder_path or data_folder()
    src = _where(folder, GAP_FILE)
    try:
        with src.open("r") as fh:
            gaps = pd.read_csv(fh)
        with _where(folder, DATA_FILES[0]).open("r") as fh:
            waves = pd.read_csv(fh)
    except (FileNotFoundError, OSError):
        return None
    per = gaps.groupby("wave")["gap_usd_x_qty"].sum()
    b = waves.set_index("wave")["budget_needed_usd"]
    return float((per.reindex(b.index).fillna(0.0) - b).abs().max())


def game_overshoot(seeds: int = 2, traders: int | None = None) -> pd.DataFrame:
    """The oct10 scenario played with agents, two-pass H at horizon 0 against B needed.

    For each of :data:`GAME_POLICIES` and seeds ``1..seeds``, plays ``adlgame run --scenario
    oct10`` (``traders`` overrides the scenario's count) with the policy's default execution
    (Hyperliquid: position, as the venue; pro-rata: budget) and pools its two-pass table over
    the ADL steps: ``B_needed`` (what the deficit needed after the backstop), ``H0`` (what ADL
    took from the winners, with vs without ADL, at horizon 0), ``overshoot = H0 - B_needed``
    with its ``over`` and ``under`` parts, and ``ratio = H0 / B_needed`` (synthetic: the game's
    dollars are not the event's, so compare ratios).
    """
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import RunResult

    require(isinstance(seeds, int) and seeds >= 1, "oct10 game seeds", "an integer >= 1", seeds)
    sc = load_scenario("oct10")
    if traders is not None:
        sc = sc.replace(**{"run.traders": int(traders)})
    rows = []
    for policy in GAME_POLICIES:
        for seed in range(1, seeds + 1):
            game = ADLGame(sc, seed=seed, policy=policy)
            game.run()
            result = RunResult.from_game(game)
            tp = result.frames["two_pass"]
            b = float(tp["B_needed"].sum()) if len(tp) else 0.0
            h0 = float(tp["H_0"].sum()) if len(tp) else 0.0
            rows.append(
                {
                    "policy": policy,
                    "seed": seed,
                    "execution": game.exchange.execution,
                    "adl_steps": len(tp),
                    "B_needed": b,
                    "H0": h0,
                    "overshoot": result["overshoot"],
                    "over": result["overshoot_over"],
                    "under": result["overshoot_under"],
                    "ratio": h0 / b if b > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)
