"""One run's results: the :class:`RunResult` of a finished game, its tables and files
(``adlgame run`` writes them to a results folder)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

#: Scalar headline metrics of a :class:`RunResult` that experiments summarise over runs, each
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


#: Scalar figures of a run beyond the headline metrics: the two-pass overshoot's parts, the
#: wave log's own overshoot, where a shortfall went, and the conservation check.
EXTRA_METRICS = (
    "gaming_shelter",
    "overshoot_over",
    "overshoot_under",
    "overshoot_wave_log",
    "undershoot",
    "written_off",
    "carried_debt",
    "venue_paid",
    "socialised",
    "withdrawal_cut",
    "conservation_error",
)


def run_metric_names() -> tuple[str, ...]:
    """Every scalar figure of a :class:`RunResult`, in order: the headline metrics,
    :data:`EXTRA_METRICS`, then the two-pass overshoot per default horizon
    (``overshoot_h0``, ``overshoot_h1``, ...).  Runner rows have exactly these columns."""
    from experiments.game.twopass import DEFAULT_HORIZONS

    return (*HEADLINE_METRICS, *EXTRA_METRICS, *(f"overshoot_h{h}" for h in DEFAULT_HORIZONS))


@dataclass(frozen=True)
class RunResult:
    """What one finished run reports, computed once from its logs.

    The one definition of a run's figures: ``adlgame demo`` prints them, ``summary.json``
    holds them (:meth:`summary`), the runner's rows are :meth:`row`, reports summarise those
    rows and the dashboard shows them at the end of a run.  Totals count every step (calm
    steps' liquidations too), from the step series.

    Attributes:
        scenario: the scenario's name; scenario_config its full configuration.
        seed, policy, severity: what was played (``policy`` None: no ADL).
        package_version: the installed adlgame version.
        shortfall_bearer: who carried what neither the backstop nor ADL covered.
        metrics: every scalar figure, keys :func:`run_metric_names` in that order (NaN where
            undefined, e.g. fairness in a run without an ADL wave).
        curves: the two-pass curves by horizon: ``overshoot``, ``over``, ``under``.
        crises: one record per crisis (the game's :class:`~experiments.game.model.CrisisRecord`).
        frames: every table of the run (:func:`run_frames`); not part of equality.
    """

    scenario: str
    scenario_config: dict[str, Any]
    seed: int
    policy: str | None
    severity: str | None
    package_version: str
    shortfall_bearer: str
    metrics: dict[str, float]
    curves: dict[str, dict[str, float]]
    crises: list[dict[str, Any]]
    frames: dict[str, pd.DataFrame] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_game(cls, game: ADLGame) -> RunResult:
        """The result of a finished game (its logs read once)."""
        from experiments import metrics
        from experiments.game.twopass import DEFAULT_HORIZONS
        from market.invariants import check_invariants

        frames = run_frames(game)
        ts = frames["timeseries"]
        head = metrics.headline(
            ts, frames["agents"], frames["adl_events"], frames["waves"], frames["bankruptcies"]
        )
        tp = frames["two_pass"]
        curves: dict[str, dict[str, float]] = {"overshoot": {}, "over": {}, "under": {}}
        for name, curve in curves.items():
            for h in DEFAULT_HORIZONS:  # 0.0 where no wave was measured
                col = f"{name}_{h}"
                curve[str(h)] = float(tp[col].sum()) if col in tp.columns else 0.0
        ex = game.exchange
        vals: dict[str, float] = {
            **head,
            "total_deficit": head["deficit"],
            "residual_bad_debt": head["residual"],
            "overshoot": curves["overshoot"]["0"],
            "overshoot_over": curves["over"]["0"],
            "overshoot_under": curves["under"]["0"],
            "overshoot_wave_log": float(frames["waves"]["overshoot"].sum())
            if len(frames["waves"])
            else 0.0,
            "undershoot": float(ts["undershoot"].sum()) if "undershoot" in ts else 0.0,
            "written_off": float(ex.bad_debt),
            "carried_debt": float(ex.debt),
            "venue_paid": float(ex.venue_paid),
            "socialised": float(ex.socialised),
            "withdrawal_cut": float(ex.withdrawal_cut),
            "traders_active_end": float(len(game.traders())),
            "traders_churned": float(game.churned_total),
            "fee_revenue": float(ex.fee_revenue),
            "conservation_error": float(check_invariants(ex).conservation_error),
            "gaming_shelter": gaming_shelter(game.crises),
        }
        for h, v in curves["overshoot"].items():
            vals[f"overshoot_h{h}"] = v
        names = run_metric_names()
        return cls(
            scenario=game.scenario.name,
            scenario_config=to_dict(game.scenario),
            seed=int(game.seed),
            policy=game.policy_name,
            severity=game.severity_name,
            package_version=package_version(),
            shortfall_bearer=ex.shortfall,
            metrics={k: float(vals.get(k, np.nan)) for k in names},
            curves=curves,
            crises=[dict(c.__dict__) for c in game.crises],
            frames=frames,
        )

    def __getitem__(self, name: str) -> float:
        """One figure by name (``result["adl_raised"]``)."""
        try:
            return self.metrics[name]
        except KeyError:
            raise InputError("metric", f"one of {', '.join(self.metrics)}", name) from None

    def row(self) -> dict[str, float]:
        """The scalar figures, as a runner row holds them."""
        return dict(self.metrics)

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: identity, configuration, every figure, the curves by
        horizon (``overshoot_by_horizon``, ``over_by_horizon``, ``under_by_horizon``) and the
        crises."""
        return {
            "scenario": self.scenario,
            "scenario_config": self.scenario_config,
            "seed": self.seed,
            "policy": self.policy,
            "severity": self.severity,
            "package_version": self.package_version,
            "shortfall_bearer": self.shortfall_bearer,
            **self.metrics,
            "overshoot_by_horizon": self.curves["overshoot"],
            "over_by_horizon": self.curves["over"],
            "under_by_horizon": self.curves["under"],
            "crises": self.crises,
        }


#: Agent types that game the ranking (reset their entry, split their accounts) and those that
#: do not; :func:`gaming_shelter` compares the haircuts they bear.
GAMING_TYPES = ("flipper", "sybil")
HONEST_TYPES = ("passive", "entrant")


def gaming_shelter(crises: list[Any]) -> float:
    """How much the gaming traders are sheltered from ADL, in [-1, 1].

    ``(r_honest - r_gaming) / (r_honest + r_gaming)``, where ``r`` is a group's ADL haircuts
    over its gross notional at each crisis start (its exposure, so leverage alone does not
    count as gaming), summed over crises: flippers and Sybil owners against passive traders
    and entrants.  0: gaming buys nothing; 1: gamers bear no haircut while honest traders
    do; -1: the reverse.  Bounded, so one run where a group bears almost nothing cannot
    dominate an average.  NaN when neither group bore a haircut or a group held no position.
    """

    def rate(types: tuple[str, ...]) -> float:
        h = sum(c.haircut_by_type.get(t, 0.0) for c in crises for t in types)
        e = sum(c.notional_by_type.get(t, 0.0) for c in crises for t in types)
        return h / e if e > 0 else float("nan")

    rg, rh = rate(GAMING_TYPES), rate(HONEST_TYPES)
    if not (np.isfinite(rg) and np.isfinite(rh)) or rg + rh <= 0:
        return float("nan")
    return (rh - rg) / (rh + rg)


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
    """Write the result files atomically (into a temporary folder, then moved in); returns
    the summary written (:meth:`RunResult.summary` with ``extra``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    result = RunResult.from_game(game)
    summary = {**result.summary(), **(extra or {})}
    tmp = Path(tempfile.mkdtemp(prefix=".adlgame-", dir=out.parent))
    try:
        for name, frame in result.frames.items():
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
