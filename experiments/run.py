"""``adlgame run``: one game, written to a results folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from agents import TYPE_NAMES
from experiments.game import ADLGame
from experiments.scenario import Scenario, to_dict
from market.errors import InputError

OUTPUT_FILES = ("timeseries.parquet", "agents.parquet", "adl_events.parquet", "summary.json")


def package_version() -> str:
    """The installed adlgame version (or 'unknown' when run from a bare checkout)."""
    try:
        from importlib.metadata import version

        return version("adlgame")
    except Exception:  # pragma: no cover - only without an install
        return "unknown"


def check_out_dir(out: str | Path, force: bool) -> Path:
    """Refuse an existing non-empty folder unless ``force`` (nothing is written here)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError("--out", "a folder path (not an existing file)", str(path))
    if path.is_dir() and any(path.iterdir()) and not force:
        raise InputError(
            "--out", "an empty or new folder (or pass --force to overwrite)", str(path)
        )
    return path


def adl_events_frame(game: ADLGame) -> pd.DataFrame:
    """Every ADL fill with the agent type of the account that paid and the layer it came from."""
    adl = game.exchange.log.adl.to_array()
    waves = game.exchange.log.waves.to_array()
    kinds = game.exchange.acc.kind
    df = pd.DataFrame({name: adl[name] for name in adl.dtype.names})
    df["agent_type"] = [TYPE_NAMES.get(int(k), "other") for k in kinds[adl["account"]]]
    df["group"] = game.exchange.acc.group[adl["account"]]
    layer = np.where(
        adl["from_principal"] > 0, np.where(adl["from_gains"] > 0, "mixed", "principal"), "gains"
    )
    df["layer"] = layer
    df["dollars"] = df.pop("haircut")
    df["crisis"] = np.array([game.crisis_of_step(int(s)) for s in adl["step"]], dtype=np.int64)
    del waves
    return df


def write_results(game: ADLGame, out: Path, extra: dict | None = None) -> dict:
    """Write the four result files atomically (into a temporary folder, then moved)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adlgame-", dir=out.parent))
    try:
        ts = game.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        ts.to_parquet(tmp / "timeseries.parquet", index=False)
        panel = (
            pd.concat([pd.DataFrame(p) for p in game.panel], ignore_index=True)
            if game.panel
            else pd.DataFrame()
        )
        panel.to_parquet(tmp / "agents.parquet", index=False)
        adl_events_frame(game).to_parquet(tmp / "adl_events.parquet", index=False)
        summary = {
            "scenario": game.scenario.name,
            "scenario_config": to_dict(game.scenario),
            "seed": game.seed,
            "policy": game.policy_name,
            "severity": game.severity_name,
            "package_version": package_version(),
            "crises": [c.__dict__ for c in game.crises],
            **game.summary(),
            **(extra or {}),
        }
        (tmp / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True, default=float)
        )
        out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUT_FILES:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def run_game(
    scenario: Scenario,
    *,
    seed: int,
    policy: str | None,
    severity: str | None,
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Build the game, run it to the end, write the results; returns the summary."""
    game = ADLGame(scenario, seed=seed, policy=policy, severity=severity)
    game.run(progress)
    return write_results(game, out)
