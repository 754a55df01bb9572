"""The published files of 10 October 2025: what they hold, how they are read and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market.errors import InputError, require

#: Short description shown by ``adlgame experiment --list``.
DESCRIPTION = (
    "replay the 16 ADL waves of 10 Oct 2025 through every policy, beside the published results"
)

#: Files read by :func:`load_oct10` (the folder also holds the licence and PROVENANCE.md).
DATA_FILES = (
    "two_pass_equity_delta_by_wave_h0.csv",
    "bad_debt_loser_waves.csv",
    "policy_per_wave_metrics.csv",
    "eval_horizon_sweep_gap_ms=5000.csv",
    "headlines.json",
    "overshoot_robustness.json",
    "summary_totals.csv",
)

#: Per wave and coin: ADL'd quantity and gap per contract (:func:`load_coin_grid`, and
#: :func:`experiments.studies.oct10.game.gap_check`).
GAP_FILE = "two_pass_wave_coin_gap_per_contract_h0.csv"

#: Per coin and 5 s cluster: deficit and winners' capacity (read by :func:`coin_sizes` only).
COIN_FILE = "per_shock_metrics_queue.csv"

#: Number of global waves in the published analysis (5 s gap clustering).
N_WAVES = 16

_INT, _NUM, _OPT = "int", "num", "opt"  # integer; finite number; number or empty (NaN)

_TWO_PASS = {
    "wave": _INT,
    "t_start_ms": _INT,
    "t_end_ms": _INT,
    "deficit_usd": _NUM,
    "max_loss_usd": _NUM,
    "budget_needed_usd": _NUM,
    "budget_prod_usd": _NUM,
    "overshoot_prod_minus_needed_usd": _NUM,
    "max_prod_haircut_usd": _NUM,
    "winners_equity_start_usd": _NUM,
    "winners_pnl_start_usd": _NUM,
}
_LOSERS = {
    "wave": _INT,
    "t_start_ms": _INT,
    "t_end_ms": _INT,
    "n_rows": _INT,
    "unique_losers": _INT,
    "deficit_usd": _NUM,
    "max_loss_usd": _NUM,
}

#: Published benchmark suffix in policy_per_wave_metrics.csv -> what it is.
PUBLISHED_POLICIES = {
    "prod": "production queue (Hyperliquid, two-pass H at horizon 0)",
    "pr": "wealth pro-rata (continuous)",
    "pnl_pr": "PnL pro-rata (continuous)",
    "eq_pr": "equity pro-rata (continuous)",
    "vector": "vector mirror descent (per coin)",
    "contract_pr": "contract pro-rata (integer, per coin)",
    "fixed_point_ilp_integer": "min-max ILP (integer contracts)",
}
_METRIC_PREFIXES = ("budget", "overshoot", "max_pct", "ptsr", "pmr")
_POLICY_FILE = {"wave": _INT, "budget_needed": _NUM, "deficit_usd": _NUM, "total_cap": _NUM} | {
    f"{m}_{p}": (_NUM if m in ("budget", "overshoot") else _OPT)
    for m in _METRIC_PREFIXES
    for p in PUBLISHED_POLICIES
}
_HORIZONS = {
    "gap_ms": _INT,
    "eval_horizon_ms": _INT,
    "num_waves": _INT,
    "total_deficit_usd": _NUM,
    "total_budget_needed_usd": _NUM,
    "total_H_prod_usd": _NUM,
    "total_overshoot_prod_minus_needed_usd": _NUM,
}
_TOTALS = {"total_residual": _NUM, "total_overshoot": _NUM, "avg_participation": _NUM}

#: Replay label of the continuous (wealth-space, no lot rounding) pro-rata vector.
PRO_RATA_WEALTH = "pro_rata_wealth"

#: Replay label of the Hyperliquid queue asked for production's haircut H (real) instead of
#: B needed: its overshoot equals production's by construction; it shows the concentration.
HL_AT_PROD = "hyperliquid@prod_budget"

#: Game policy (or replay row) -> nearest published counterpart (suffix in the policy file).
COUNTERPARTS = {
    "hyperliquid": "prod",
    HL_AT_PROD: "prod",
    PRO_RATA_WEALTH: "pr",
    "pro_rata": "pr",
    "capped_pro_rata": "pr",
    "contract_pro_rata": "contract_pr",
    "min_max_ilp": "fixed_point_ilp_integer",
}


# =========================================================================== loading
@dataclass(frozen=True)
class Oct10Data:
    """The published 10 October 2025 figures, validated.

    Attributes:
        waves: one row per wave (16), sorted by wave id: ``wave``, ``t_start_ms``,
            ``t_end_ms``, ``deficit_usd``, ``max_loss_usd``, ``budget_needed_usd``,
            ``budget_prod_usd``, ``overshoot_prod_usd``, ``max_prod_haircut_usd``,
            ``winners_equity_start_usd``, ``winners_pnl_start_usd``, ``unique_losers``,
            ``loser_rows`` (all real).
        policies: policy_per_wave_metrics.csv as published (one row per wave).
        horizons: production overshoot by evaluation horizon (eval_horizon_sweep csv).
        headlines: headlines.json.
        robustness: overshoot_robustness.json.
        summary_totals: summary_totals.csv (the stylised queue replay).
        source: where the files were read from.
    """

    waves: pd.DataFrame
    policies: pd.DataFrame
    horizons: pd.DataFrame
    headlines: dict
    robustness: dict
    summary_totals: pd.DataFrame
    source: str

    @property
    def ratio_quantiles(self) -> dict[str, float]:
        """Winners' equity/PnL: median, p10, p90, trimmed mean and n (headlines.json, real)."""
        return dict(self.headlines["headline"]["winner_overcollateralization_equity_over_pnl"])

    @property
    def prod_overshoot(self) -> float:
        """Production overshoot vs needed at horizon 0, dollars (headlines.json, real)."""
        return float(self.headlines["headline"]["prod_overshoot_vs_needed_usd"])


def data_folder() -> Traversable:
    """The packaged copy of the data, ``experiments/data/oct10`` (works from an install)."""
    return resources.files("experiments") / "data" / "oct10"


def _where(folder: Traversable | Path, name: str) -> Traversable | Path:
    path = folder / name
    if not path.is_file():
        raise InputError("oct10 data", f"a folder holding {name} (see PROVENANCE.md)", str(folder))
    return path


def _read_csv(folder: Traversable | Path, name: str, spec: dict[str, str]) -> pd.DataFrame:
    """Read one csv and check that ``spec``'s columns exist and hold the right types."""
    path = _where(folder, name)
    try:
        with path.open("rb") as fh:
            df = pd.read_csv(fh)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"oct10 data {name}", "a readable csv file", str(exc)[:80]) from None
    missing = [c for c in spec if c not in df.columns]
    require(not missing, f"oct10 data {name}", f"a csv with the columns {list(spec)}", missing)
    for col, kind in spec.items():
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna() | (num.isna() if kind != _OPT else False)
        bad = bad | np.isinf(num.to_numpy(dtype=np.float64, na_value=np.nan))
        if kind == _INT:
            bad = bad | (num.notna() & (num.fillna(0) % 1 != 0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            allowed = {
                _INT: "whole numbers",
                _NUM: "finite numbers",
                _OPT: "finite numbers or empty",
            }[kind]
            raise InputError(
                f"oct10 data {name}: column {col}", allowed, f"{raw.iloc[row]!r} in row {row + 1}"
            )
        df[col] = num.astype(np.int64) if kind == _INT else num.astype(np.float64)
    return df


def _read_json(folder: Traversable | Path, name: str) -> dict:
    path = _where(folder, name)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"oct10 data {name}", "valid JSON", str(exc)[:80]) from None
    require(isinstance(data, dict), f"oct10 data {name}", "a JSON object", type(data).__name__)
    return data


def _number_at(data: dict, name: str, *keys: str) -> float:
    node: Any = data
    for k in keys:
        ok = isinstance(node, dict) and k in node
        require(ok, f"oct10 data {name}: {'.'.join(keys)}", "present", None)
        node = node[k]
    ok = isinstance(node, int | float) and not isinstance(node, bool) and np.isfinite(node)
    require(ok, f"oct10 data {name}: {'.'.join(keys)}", "a finite number", node)
    return float(node)


def _waves_ok(df: pd.DataFrame, name: str) -> pd.DataFrame:
    w = df["wave"].to_numpy()
    require(len(df) == N_WAVES, f"oct10 data {name}", f"{N_WAVES} wave rows", len(df))
    require(np.unique(w).size == w.size, f"oct10 data {name}: column wave", "unique ids", None)
    return df.sort_values("wave").reset_index(drop=True)


def load_oct10(folder: str | Path | Traversable | None = None) -> Oct10Data:
    """Load and validate the published files (default: the packaged copy).

    Checks every column this project reads: present, numeric (whole numbers for ids and
    times), finite; 16 unique waves in each per-wave file, the same wave ids and deficits
    (to 1e-6 relative) in the two files that both carry them, non-negative dollars, and
    ``p10 < median < p90`` for the winners' equity/PnL quantiles.

    Raises:
        InputError: naming the file (and column or key) and what was expected, for a
            missing file or column, text in a numeric column, a truncated file or
            inconsistent files.
    """
    src = data_folder() if folder is None else folder
    src = Path(src) if isinstance(src, str) else src
    two = _waves_ok(_read_csv(src, DATA_FILES[0], _TWO_PASS), DATA_FILES[0])
    los = _waves_ok(_read_csv(src, DATA_FILES[1], _LOSERS), DATA_FILES[1])
    pol = _waves_ok(_read_csv(src, DATA_FILES[2], _POLICY_FILE), DATA_FILES[2])
    for other, name in ((los, DATA_FILES[1]), (pol, DATA_FILES[2])):
        same = np.array_equal(other["wave"].to_numpy(), two["wave"].to_numpy())
        require(same, f"oct10 data {name}: column wave", f"the wave ids of {DATA_FILES[0]}", None)
        close = np.allclose(other["deficit_usd"], two["deficit_usd"], rtol=1e-6, atol=0.01)
        require(close, f"oct10 data {name}: column deficit_usd", f"equal to {DATA_FILES[0]}", None)
    dollars = [c for c, k in _TWO_PASS.items() if k == _NUM and "overshoot" not in c]
    neg = [c for c in dollars if (two[c] < 0).any()]
    require(not neg, f"oct10 data {DATA_FILES[0]}", "non-negative dollars", neg)
    hor = _read_csv(src, DATA_FILES[3], _HORIZONS)
    require(len(hor) >= 1, f"oct10 data {DATA_FILES[3]}", "at least one horizon row", 0)
    require(
        bool((hor["eval_horizon_ms"] == 0).any()),
        f"oct10 data {DATA_FILES[3]}: column eval_horizon_ms",
        "a row for horizon 0",
        None,
    )
    heads = _read_json(src, DATA_FILES[4])
    _number_at(heads, DATA_FILES[4], "headline", "prod_overshoot_vs_needed_usd")
    _number_at(heads, DATA_FILES[4], "headline", "queue_total_overshoot_usd")
    q = {
        k: _number_at(
            heads, DATA_FILES[4], "headline", "winner_overcollateralization_equity_over_pnl", k
        )
        for k in ("median", "p10", "p90", "trimmed_mean", "n_users")
    }
    require(
        1.0 <= q["p10"] < q["median"] < q["p90"],
        f"oct10 data {DATA_FILES[4]}: winner_overcollateralization_equity_over_pnl",
        "1 <= p10 < median < p90",
        (q["p10"], q["median"], q["p90"]),
    )
    rob = _read_json(src, DATA_FILES[5])
    for k in ("O0", "O_min_band", "O_max_band"):
        _number_at(rob, DATA_FILES[5], k)
    totals = _read_csv(src, DATA_FILES[6], _TOTALS)
    waves = pd.DataFrame(
        {
            "wave": two["wave"],
            "t_start_ms": two["t_start_ms"],
            "t_end_ms": two["t_end_ms"],
            "deficit_usd": two["deficit_usd"],
            "max_loss_usd": two["max_loss_usd"],
            "budget_needed_usd": two["budget_needed_usd"],
            "budget_prod_usd": two["budget_prod_usd"],
            "overshoot_prod_usd": two["overshoot_prod_minus_needed_usd"],
            "max_prod_haircut_usd": two["max_prod_haircut_usd"],
            "winners_equity_start_usd": two["winners_equity_start_usd"],
            "winners_pnl_start_usd": two["winners_pnl_start_usd"],
            "unique_losers": los["unique_losers"],
            "loser_rows": los["n_rows"],
        }
    )
    return Oct10Data(
        waves=waves,
        policies=pol,
        horizons=hor.sort_values("eval_horizon_ms").reset_index(drop=True),
        headlines=heads,
        robustness=rob,
        summary_totals=totals,
        source=str(src),
    )


def coin_sizes(folder: str | Path | Traversable | None = None) -> pd.Series:
    """Each coin's size in the event: the largest winners' capacity (open profit, dollars) over
    its 5 s ADL clusters, from the published per-coin file; 162 coins, largest first.

    Raises:
        InputError: for a missing file or column, a non-numeric or negative capacity.
    """
    src = data_folder() if folder is None else folder
    src = Path(src) if isinstance(src, str) else src
    df = _read_csv(src, COIN_FILE, {"cluster_id": _INT, "total_capacity_usd": _NUM})
    require("coin" in df.columns, f"oct10 data {COIN_FILE}", "a csv with a coin column", None)
    cap = df["total_capacity_usd"]
    require(bool((cap >= 0).all()), f"oct10 data {COIN_FILE}: total_capacity_usd", ">= 0", None)
    sizes = df.groupby(df["coin"].astype(str))["total_capacity_usd"].max()
    return sizes.sort_values(ascending=False, kind="stable")


def load_coin_grid(folder: str | Path | Any | None = None) -> pd.DataFrame:
    """The published per-wave, per-coin gap file (real), rows with a positive gap only.

    Columns: ``wave``, ``coin``, ``gap_usd`` (quantity x gap per contract, the coin's part of
    B needed) and ``gap_per_contract`` (dollars one contract hands over when closed).

    Raises:
        InputError: a missing file or column, or text where numbers belong.
    """
    src = data_folder() if folder is None else folder
    src = Path(src) if isinstance(src, str) else src
    df = _read_csv(
        src,
        GAP_FILE,
        {
            "wave": "int",
            "gap_usd_x_qty": "num",
            "qty_contracts": "num",
            "gap_per_contract_usd": "num",
        },
    )
    require("coin" in df.columns, f"oct10 data {GAP_FILE}", "a csv with a coin column", None)
    keep = (df["gap_usd_x_qty"] > 0) & (df["gap_per_contract_usd"] > 0)
    out = pd.DataFrame(
        {
            "wave": df.loc[keep, "wave"].astype(int),
            "coin": df.loc[keep, "coin"].astype(str),
            "gap_usd": df.loc[keep, "gap_usd_x_qty"].astype(float),
            "gap_per_contract": df.loc[keep, "gap_per_contract_usd"].astype(float),
        }
    )
    return out.reset_index(drop=True)
