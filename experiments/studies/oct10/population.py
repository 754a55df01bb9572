"""One population of winners for the whole event, and the per-wallet moments it must match.

In the event the same large wallets were ADL'd wave after wave.  The model here: a population
of ``population`` winning wallets, each with a size ``s ~ Pareto(tail)`` (``s >= 1``); every
ADL fill of the event lands on a wallet drawn in proportion to its size, the fills of a wave
in proportion to the wave's PnL.  A wave's eligible winners are the wallets it fills, with PnL
in proportion to their size (:func:`wave_members`).

The two parameters are fitted by ``adlgame experiment calibrate`` to real per-wallet moments
(:func:`observed_moments`): fills per wallet over the event, and how the fills of the 789
wallets with at least 5 ADL fills that the published behavioural classification covers are
spread (their mean, the share with 10 and 20 or more, the top 10 and top 100 wallets' share).
The classified wallets are taken as a random subset (by behaviour, not size) of all wallets
with 5 or more fills, so the model's moments subsample them to the same count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pandas as pd

from market.errors import InputError, require

__all__ = [
    "MOMENTS",
    "PER_WALLET_FILES",
    "WalletLaw",
    "WalletTargets",
    "draw_sizes",
    "fill_counts",
    "load_wallet_targets",
    "model_moments",
    "observed_moments",
    "wave_fills",
    "wave_members",
]

#: The per-wallet files (ADL fill counts of the classified wallets) and the report with totals.
PER_WALLET_FILES = ("passive_accounts.csv", "strategic_accounts.csv")
TWO_TIME_REPORT = "two_time_report.md"
#: The least ADL fills of a classified wallet.
MIN_FILLS = 5

#: Moment name -> what it is (fit.csv's ``moment`` column uses these names).
MOMENTS: dict[str, str] = {
    "fills_per_wallet": "ADL fills per ADL'd wallet over the event",
    "mean_fills_5plus": "mean ADL fills of the classified wallets (5 or more fills)",
    "share_10plus": "share of the classified wallets with 10 or more fills",
    "share_20plus": "share of the classified wallets with 20 or more fills",
    "top10_share": "the top 10 classified wallets' share of the classified wallets' fills",
    "top100_share": "the top 100 classified wallets' share of the classified wallets' fills",
}


@dataclass(frozen=True)
class WalletLaw:
    """The persistent winner population: its size and the Pareto tail of wallet sizes."""

    population: int
    tail: float

    def __post_init__(self) -> None:
        require(self.population >= 1, "population", "a whole number >= 1", self.population)
        require(0.05 <= self.tail <= 20, "tail", "a Pareto tail index in [0.05, 20]", self.tail)


@dataclass(frozen=True)
class WalletTargets:
    """The real figures the population is fitted to.

    Attributes:
        fills: winner-side ADL fills of the event (two_time_report.md).
        wallets: ADL'd wallets ("per-user reaction rows", two_time_report.md).
        counts: ADL fills of each classified wallet (the per-wallet files).
    """

    fills: int
    wallets: int
    counts: np.ndarray


def _report_number(text: str, label: str, name: str) -> int:
    m = re.search(rf"\*\*{re.escape(label)}\*\*:\s*([\d,]+)", text)
    if m is None:
        raise InputError(f"oct10 data {name}", f"a line '**{label}**: <number>'", None)
    return int(m.group(1).replace(",", ""))


def load_wallet_targets(folder: str | Path | Traversable | None = None) -> WalletTargets:
    """Read the targets from the packaged files (or ``folder``), checked.

    Raises:
        InputError: naming the file and what was expected.
    """
    from experiments.studies.oct10.data import data_folder

    src = data_folder() if folder is None else folder
    src = Path(src) if isinstance(src, str) else src
    counts = []
    for name in PER_WALLET_FILES:
        path = src / name
        require(path.is_file(), "oct10 data", f"a folder holding {name}", str(src))
        with path.open("rb") as fh:
            df = pd.read_csv(fh)
        require("n_adl_events" in df.columns, f"oct10 data {name}", "a column n_adl_events", None)
        c = pd.to_numeric(df["n_adl_events"], errors="coerce").to_numpy(dtype=np.float64)
        ok = np.isfinite(c).all() and (c >= MIN_FILLS).all() and (c % 1 == 0).all()
        require(bool(ok), f"oct10 data {name}: column n_adl_events", "whole numbers >= 5", None)
        counts.append(c.astype(np.int64))
    path = src / TWO_TIME_REPORT
    require(path.is_file(), "oct10 data", f"a folder holding {TWO_TIME_REPORT}", str(src))
    text = path.read_text()
    fills = _report_number(text, "ADL fills (winner-side)", TWO_TIME_REPORT)
    wallets = _report_number(text, "Per-user reaction rows", TWO_TIME_REPORT)
    require(fills >= wallets > 0, f"oct10 data {TWO_TIME_REPORT}", "fills >= wallets > 0", None)
    return WalletTargets(fills=fills, wallets=wallets, counts=np.concatenate(counts))


def _spread(classified: np.ndarray) -> dict[str, float]:
    """The spread moments of a set of classified wallets' fill counts."""
    c = np.sort(classified)[::-1].astype(np.float64)
    if c.size == 0:
        return dict.fromkeys(list(MOMENTS)[1:], np.nan)
    total = c.sum()
    return {
        "mean_fills_5plus": float(c.mean()),
        "share_10plus": float((c >= 10).mean()),
        "share_20plus": float((c >= 20).mean()),
        "top10_share": float(c[:10].sum() / total),
        "top100_share": float(c[:100].sum() / total),
    }


def observed_moments(targets: WalletTargets) -> dict[str, float]:
    """The real moments (:data:`MOMENTS`)."""
    return {"fills_per_wallet": targets.fills / targets.wallets, **_spread(targets.counts)}


def draw_sizes(u: np.ndarray, tail: float) -> np.ndarray:
    """Pareto(``tail``) sizes (>= 1) from uniforms ``u`` in [0, 1)."""
    return (1.0 - np.asarray(u, dtype=np.float64)) ** (-1.0 / tail)


def fill_counts(sizes: np.ndarray, u_fills: np.ndarray) -> np.ndarray:
    """Fills per wallet when each fill (one uniform of ``u_fills``) lands on a wallet drawn in
    proportion to ``sizes`` (inverse-CDF sampling, so common uniforms give smooth fits)."""
    cdf = np.cumsum(sizes)
    hit = np.searchsorted(cdf, np.asarray(u_fills) * cdf[-1], side="right")
    return np.bincount(np.minimum(hit, sizes.size - 1), minlength=sizes.size)


def model_moments(
    law: WalletLaw,
    fills: int,
    classified: int,
    u_size: np.ndarray,
    u_fills: np.ndarray,
    u_pick: np.ndarray,
) -> dict[str, float]:
    """The model's moments under ``law`` with common uniforms (``u_size`` at least
    ``population`` long, ``u_fills`` ``fills`` long, ``u_pick`` one key per wallet at least).

    ``classified`` of the wallets with 5 or more fills are picked (those with the smallest
    ``u_pick`` keys); ``n_5plus`` is how many there were (fewer than ``classified`` cannot
    reproduce the real subset).
    """
    n = int(law.population)
    counts = fill_counts(draw_sizes(u_size[:n], law.tail), u_fills[:fills])
    hit = int(np.count_nonzero(counts))
    many = np.flatnonzero(counts >= MIN_FILLS)
    pick = many[np.argsort(u_pick[many], kind="stable")[:classified]]
    return {
        "fills_per_wallet": fills / max(hit, 1),
        **_spread(counts[pick]),
        "n_5plus": float(many.size),
    }


def wave_fills(pnl: np.ndarray, fills: int) -> np.ndarray:
    """The event's fills split over waves in proportion to their PnL (largest remainders)."""
    share = np.asarray(pnl, dtype=np.float64) / float(np.sum(pnl)) * fills
    out = np.floor(share).astype(np.int64)
    rest = int(fills - out.sum())
    if rest > 0:
        out[np.argsort(-(share - out), kind="stable")[:rest]] += 1
    return np.maximum(out, 1)


def wave_members(
    sizes: np.ndarray, fills: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The wallets one wave fills (``fills`` draws in proportion to size) and their sizes."""
    counts = fill_counts(sizes, rng.random(int(fills)))
    members = np.flatnonzero(counts)
    return members, sizes[members]
