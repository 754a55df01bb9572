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
from experiments.game.model import ADLGame
from experiments.game.scenario import Scenario, to_dict
from market.accounts import BOOK, VAULT
from market.errors import InputError
from market.exchange import Exchange

OUTPUT_FILES = ("timeseries.parquet", "agents.parquet", "adl_events.parquet", "summary.json")
_INF = float("inf")
_NONNEG = (0.0, _INF)
_UNIT = (0.0, 1.0)

#: Scalar headline metrics of :func:`run_summary` that experiments summarise over runs, each
#: with the range its values can take, ``(low, high)``: every interval over runs
#: (:func:`experiments.metrics.confidence_interval`) stays inside it.  Fairness metrics name
#: their denominator: ``_base`` the eligibility base (price-rule independent), ``_capacity``
#: the wave's capacity (priced at the rule's price), ``_equity`` equity.  The keys of
#: :data:`experiments.metrics.WAVE_KEYS` are NaN in a run without any ADL wave (``adl_waves``
#: = 0); the others count such a run as it is.
HEADLINE_RANGES: dict[str, tuple[float, float]] = {
    "total_deficit": _NONNEG,
    "backstop_used": _NONNEG,
    "adl_raised": _NONNEG,
    "residual_bad_debt": _NONNEG,
    "overshoot": (-_INF, _INF),  # two-pass: ADL taken minus the budget needed, either sign
    "adl_waves": _NONNEG,
    "accounts_touched": _NONNEG,
    "max_haircut_base_frac": _UNIT,
    "max_haircut_capacity_frac": _UNIT,
    "max_haircut_equity_frac": _NONNEG,  # a gains-ledger cap may exceed equity
    "gini_haircut_base": _UNIT,
    "gini_haircut_capacity": _UNIT,
    "ptsr_base": _NONNEG,
    "ptsr_base_median": _NONNEG,
    "ptsr_base_weighted": _NONNEG,
    "ptsr_capacity": _NONNEG,
    "pmr_base": _NONNEG,
    "pmr_base_median": _NONNEG,
    "pmr_base_weighted": _NONNEG,
    "pmr_capacity": _NONNEG,
    "externality_ratio": _NONNEG,  # ADL overshoot can pay more than the losses
    "leverage_drift": (-_INF, _INF),
    "retention": _UNIT,
    "ltv_lost_per_deficit_dollar": _NONNEG,  # as fee_revenue
    "inversion_rate": _UNIT,
    "rank_correlation": (-1.0, 1.0),
    "refill_steps": _NONNEG,
    "recovery_steps": _NONNEG,
    "traders_active_end": _NONNEG,
    "traders_churned": _NONNEG,
    "fee_revenue": _NONNEG,  # with non-negative fee rates (the spec allows rebates)
}
#: The headline metric names, in report order.
HEADLINE_METRICS = tuple(HEADLINE_RANGES)


def metric_range(name: str) -> tuple[float, float]:
    """The declared range of a headline metric; the whole real line for any other name."""
    return HEADLINE_RANGES.get(name, (-_INF, _INF))


#: Further files written beside them, so every metric can be recomputed from the folder.
EXTRA_FILES = ("waves.parquet", "bankruptcies.parquet", "two_pass.parquet", "accounts.parquet")


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
    df = pd.DataFrame({name: adl[name] for name in adl.dtype.names})
    df["agent_type"] = account_types(game.exchange)[adl["account"]]
    df["group"] = game.exchange.acc.group[adl["account"]]
    layer = np.where(
        adl["from_principal"] > 0, np.where(adl["from_gains"] > 0, "mixed", "principal"), "gains"
    )
    df["layer"] = layer
    df["dollars"] = df.pop("haircut")
    df["crisis"] = np.array([game.crisis_of_step(int(s)) for s in adl["step"]], dtype=np.int64)
    del waves
    return df


def account_types(exchange: Exchange) -> np.ndarray:
    """The agent type name of every account: :data:`agents.TYPE_NAMES` of its ``kind``
    label, "book" and "vault" for the exchange's own rows, "other" for an unlabelled row."""
    acc = exchange.acc
    kinds = acc.kind.astype(np.int64)
    codes = np.array(sorted(TYPE_NAMES), dtype=np.int64)
    names = np.array([TYPE_NAMES[c] for c in codes] + ["other"], dtype=object)
    pos = np.searchsorted(codes, kinds)
    hit = (pos < codes.size) & (codes[np.minimum(pos, codes.size - 1)] == kinds)
    agent_type = names[np.where(hit, pos, codes.size)]
    agent_type[(acc.flags & BOOK) != 0] = "book"
    agent_type[(acc.flags & VAULT) != 0] = "vault"
    return agent_type.astype(str)


def accounts_frame(game: ADLGame) -> pd.DataFrame:
    """One row per account ever opened: agent type name, owner group, owner uid and flags.

    ``agent_type`` is :data:`agents.TYPE_NAMES` of the account's ``kind`` label ("book" and
    "vault" for the exchange's own rows, "other" for an unlabelled row); ``owner`` is the uid
    of the agent holding the account at the end of the run (-1 for none); ``flags`` the
    account's final flag bits (:mod:`market.accounts`).
    """
    acc = game.exchange.acc
    agent_type = account_types(game.exchange)
    owner = np.full(acc.n, -1, dtype=np.int64)
    owners = game._account_agent
    if owners:
        rows = np.fromiter(owners.keys(), dtype=np.int64, count=len(owners))
        uids = np.fromiter((a.uid for a in owners.values()), dtype=np.int64, count=len(owners))
        ok = rows < acc.n
        owner[rows[ok]] = uids[ok]
    return pd.DataFrame(
        {
            "account": np.arange(acc.n, dtype=np.int64),
            "agent_type": agent_type,
            "group": acc.group.astype(np.int64),
            "owner": owner,
            "flags": acc.flags.astype(np.uint8),
        }
    )


def run_frames(game: ADLGame) -> dict[str, pd.DataFrame]:
    """Every table of a finished run, as data frames (what :func:`write_results` writes)."""
    log = game.exchange.log
    panel = game.panel
    return {
        "timeseries": game.datacollector.get_model_vars_dataframe().reset_index(drop=True),
        "agents": pd.concat([pd.DataFrame(p) for p in panel], ignore_index=True)
        if panel
        else pd.DataFrame(),
        "adl_events": adl_events_frame(game),
        "waves": pd.DataFrame(log.waves.to_array()),
        "bankruptcies": pd.DataFrame(log.bankruptcies.to_array()),
        "two_pass": game.two_pass.frame() if game.two_pass is not None else pd.DataFrame(),
        "accounts": accounts_frame(game),
    }


def run_summary(game: ADLGame, frames: dict[str, pd.DataFrame] | None = None) -> dict:
    """Scenario, seed, policy, version and every headline figure of a finished run.

    Totals come from the step series (calm-step liquidations included); fairness, moral
    hazard and attrition from :func:`experiments.metrics.headline`; ``overshoot`` is the
    two-pass figure at horizon 0 (what ADL took minus the deficit it needed after the
    backstop), ``overshoot_over`` / ``overshoot_under`` its parts summed wave by wave, with
    the horizon curves in ``overshoot_by_horizon``, ``over_by_horizon``, ``under_by_horizon``.
    """
    from experiments import metrics

    frames = frames or run_frames(game)
    head = metrics.headline(
        frames["timeseries"],
        frames["agents"],
        frames["adl_events"],
        frames["waves"],
        frames["bankruptcies"],
    )
    tp = frames["two_pass"]
    curves: dict[str, dict[str, float]] = {"overshoot": {}, "over": {}, "under": {}}
    if len(tp):
        for col in tp.columns:
            for name, curve in curves.items():
                if col.startswith(f"{name}_"):
                    curve[col.removeprefix(f"{name}_")] = float(tp[col].sum())
    by_h = curves["overshoot"]
    head["overshoot"] = by_h.get("0", 0.0)
    head["overshoot_over"] = curves["over"].get("0", 0.0)
    head["overshoot_under"] = curves["under"].get("0", 0.0)
    head["overshoot_wave_log"] = (
        float(frames["waves"]["overshoot"].sum()) if len(frames["waves"]) else 0.0
    )
    inv = game.summary()
    return {
        "scenario": game.scenario.name,
        "scenario_config": to_dict(game.scenario),
        "seed": game.seed,
        "policy": game.policy_name,
        "severity": game.severity_name,
        "package_version": package_version(),
        "crises": [c.__dict__ for c in game.crises],
        "total_deficit": head["deficit"],
        "backstop_used": head["backstop_used"],
        "adl_raised": head["adl_raised"],
        "residual_bad_debt": head["residual"],
        "overshoot_by_horizon": by_h,
        "over_by_horizon": curves["over"],
        "under_by_horizon": curves["under"],
        **{k: v for k, v in head.items() if k not in ("deficit", "residual")},
        "traders_active_end": inv["traders_active_end"],
        "traders_churned": inv["traders_churned"],
        "fee_revenue": inv["fee_revenue"],
        "conservation_error": inv["conservation_error"],
    }


def json_safe(obj: object) -> object:
    """``obj`` with numpy scalars made plain and non-finite floats made None (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_results(game: ADLGame, out: Path, extra: dict | None = None) -> dict:
    """Write the result files atomically (into a temporary folder, then moved in)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = run_frames(game)
    summary = {**run_summary(game, frames), **(extra or {})}
    tmp = Path(tempfile.mkdtemp(prefix=".adlgame-", dir=out.parent))
    try:
        for name, frame in frames.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(json_safe(summary), indent=2, sort_keys=True))
        out.mkdir(parents=True, exist_ok=True)
        for name in (*OUTPUT_FILES, *EXTRA_FILES):
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
