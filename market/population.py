"""Synthetic trader populations for crash experiments (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.errors import require
from market.exchange import Exchange


@dataclass(frozen=True)
class PopulationSpec:
    """How a synthetic population is drawn.

    Attributes:
        accounts: number of trader accounts.
        size_alpha: Pareto tail index of position notional (smaller = heavier tail).
        min_notional: smallest position notional, dollars.
        max_notional: cap on a single position's notional, dollars.
        leverage_min, leverage_max: leverage is log-uniform in this range.
        long_share: probability that an account is long.
        entry_spread: log-normal spread of entry prices around the mark (so some positions
            start in profit and some at a loss).
    """

    accounts: int = 10_000
    size_alpha: float = 1.5
    min_notional: float = 1_000.0
    max_notional: float = 5e7
    leverage_min: float = 1.0
    leverage_max: float = 50.0
    long_share: float = 0.5
    entry_spread: float = 0.05

    def __post_init__(self) -> None:
        require(self.accounts >= 1, "population.accounts", "an integer >= 1", self.accounts)
        require(self.size_alpha > 1, "population.size_alpha", "> 1", self.size_alpha)
        require(
            0 < self.min_notional < self.max_notional,
            "population.min_notional",
            "in (0, max_notional)",
            self.min_notional,
        )
        require(
            1 <= self.leverage_min <= self.leverage_max,
            "population.leverage_min",
            "in [1, leverage_max]",
            self.leverage_min,
        )
        require(0 <= self.long_share <= 1, "population.long_share", "in [0, 1]", self.long_share)
        require(
            0 <= self.entry_spread < 1, "population.entry_spread", "in [0, 1)", self.entry_spread
        )


def seed_population(ex: Exchange, spec: PopulationSpec, rng: np.random.Generator) -> np.ndarray:
    """Open ``spec.accounts`` funded accounts with one position each; returns their indices.

    Each account trades one market (uniformly), holds a Pareto-sized position at a
    log-uniform leverage, and is funded so that its equity at the mark equals notional /
    leverage.  Positions are genesis fills against the book at the entry price, without
    fees, so the exchange starts balanced (long open interest = short open interest).
    Leverage is capped by the market's initial margin.
    """
    n = spec.accounts
    market = rng.integers(0, ex.K, size=n)
    u = rng.random(n)
    notional = np.minimum(
        spec.min_notional * (1.0 - u) ** (-1.0 / spec.size_alpha), spec.max_notional
    )
    lev = np.exp(rng.uniform(np.log(spec.leverage_min), np.log(spec.leverage_max), size=n))
    max_lev = 1.0 / np.array([s.initial_margin for s in ex.specs])[market]
    lev = np.minimum(lev, max_lev * 0.999)
    side = np.where(rng.random(n) < spec.long_share, 1, -1)
    entry_shift = rng.normal(0.0, spec.entry_spread, size=n)
    mark = ex.marks[market]
    lot = ex.lot[market]
    lots = np.maximum(np.rint(notional / (mark * lot)), 1).astype(np.int64)
    entry = mark * np.exp(entry_shift)
    upnl = side * lots * lot * (mark - entry)
    target_eq = lots * lot * mark / lev
    cash = np.maximum(target_eq - upnl, 0.01 * target_eq)
    idx = ex.open_accounts(n, cash)
    for k in range(ex.K):
        mk = market == k
        rows = idx[mk]
        if rows.size == 0:
            continue
        # genesis fills at each account's own entry price, in groups of one price per call
        order = np.argsort(entry[mk], kind="stable")
        rows, q, px = rows[order], (side * lots)[mk][order], entry[mk][order]
        ex.trade_genesis(rows, k, q, px)
    return idx
