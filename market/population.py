"""Synthetic trader populations for crash experiments (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.arrays import searchsorted_unit, stable_argsort, unique_sorted
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
        positions_tail: with several markets, the number of markets an account trades is
            ``min(K, floor(Pareto(positions_tail)))``: with 1.5 about 65 % trade one market,
            88 % at most three and 2 % twelve or more (an assumption shaped like a venue:
            most accounts hold a few positions, a few hold dozens).  0: one market each.
        market_zipf: market popularity ``p_k ~ (k + 1) ** -market_zipf`` (1: market 0 is the
            most traded, the way a venue's BTC and ETH books dwarf its long tail); 0: uniform.
            Positions drawn twice in one market for one account merge into one.
    """

    accounts: int = 10_000
    size_alpha: float = 1.5
    min_notional: float = 1_000.0
    max_notional: float = 5e7
    leverage_min: float = 1.0
    leverage_max: float = 50.0
    long_share: float = 0.5
    entry_spread: float = 0.05
    positions_tail: float = 1.5
    market_zipf: float = 1.0

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
        require(
            self.positions_tail == 0 or self.positions_tail > 0.5,
            "population.positions_tail",
            "0 (one position per account) or > 0.5",
            self.positions_tail,
        )
        require(0 <= self.market_zipf <= 5, "population.market_zipf", "in [0, 5]", self.market_zipf)


def _positions(
    spec: PopulationSpec, n: int, k_markets: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(account, market) of every position: a heavy-tailed count of markets per account, each
    market drawn by popularity; duplicates within an account merged.  Sorted by account."""
    if spec.positions_tail == 0:
        count = np.ones(n, dtype=np.int64)
    else:
        u = rng.random(n)
        count = np.minimum(np.floor((1.0 - u) ** (-1.0 / spec.positions_tail)), k_markets)
        count = count.astype(np.int64)
    owner = np.repeat(np.arange(n), count)
    weight = (np.arange(k_markets) + 1.0) ** -spec.market_zipf
    cdf = np.cumsum(weight / weight.sum())
    market = np.minimum(searchsorted_unit(cdf, rng.random(owner.size)), k_markets - 1)
    key = unique_sorted(owner * k_markets + market)  # merge repeats, sorted by account
    return key // k_markets, key % k_markets


def seed_population(ex: Exchange, spec: PopulationSpec, rng: np.random.Generator) -> np.ndarray:
    """Open ``spec.accounts`` funded accounts with their positions; returns their indices.

    With one market every account holds one position in it.  With several, each account
    trades a heavy-tailed number of markets chosen by popularity (``positions_tail``,
    ``market_zipf``).  Each position is Pareto-sized at its account's log-uniform leverage,
    and the account is funded so that its equity at the mark equals its total notional /
    leverage.  Positions are genesis fills against the book at the entry price, without
    fees, so the exchange starts balanced (long open interest = short open interest).
    Leverage is capped by the markets' initial margin.
    """
    n = spec.accounts
    if ex.K == 1 or (spec.positions_tail == 0 and spec.market_zipf == 0):
        # one position per account in a uniform market: the draws of the earlier population
        owner = np.arange(n)
        market = rng.integers(0, ex.K, size=n)
    else:
        owner, market = _positions(spec, n, ex.K, rng)
    m = owner.size
    u = rng.random(m)
    notional = np.minimum(
        spec.min_notional * (1.0 - u) ** (-1.0 / spec.size_alpha), spec.max_notional
    )
    lev_acc = np.exp(rng.uniform(np.log(spec.leverage_min), np.log(spec.leverage_max), size=n))
    im = np.array([s.initial_margin for s in ex.specs])
    # an account's leverage is capped by the strictest initial margin among its markets
    worst = np.full(n, 0.0)
    np.maximum.at(worst, owner, im[market])
    lev_acc = np.minimum(lev_acc, 0.999 / np.where(worst > 0, worst, 1.0))
    side = np.where(rng.random(m) < spec.long_share, 1, -1)
    entry_shift = rng.normal(0.0, spec.entry_spread, size=m)
    mark = ex.marks[market]
    lot = ex.lot[market]
    lots = np.maximum(np.rint(notional / (mark * lot)), 1).astype(np.int64)
    entry = mark * np.exp(entry_shift)
    upnl = side * lots * lot * (mark - entry)
    target_eq = lots * lot * mark / lev_acc[owner]
    cash_pos = np.maximum(target_eq - upnl, 0.01 * target_eq)
    cash = np.bincount(owner, weights=cash_pos, minlength=n)
    idx = ex.open_accounts(n, cash)
    by_market = stable_argsort(market)  # market by market, accounts in order
    bounds = np.concatenate([[0], np.cumsum(np.bincount(market, minlength=ex.K))])
    signed = side * lots
    for k in range(ex.K):
        mk = by_market[bounds[k] : bounds[k + 1]]
        if mk.size == 0:
            continue
        # genesis fills at each account's own entry price, in order of price (the arrays
        # are built here, so the exchange need not check them again)
        order = stable_argsort(entry[mk])
        sel = mk[order]
        ex.trade_genesis(idx[owner[sel]], k, signed[sel], entry[sel], check_input=False)
    return idx
