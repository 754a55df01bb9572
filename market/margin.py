"""Vectorised margin arithmetic: PnL, equity, margin requirements, bankruptcy prices."""

from __future__ import annotations

import numpy as np

from market.spec import MarketSpec


def notional(pos: np.ndarray, marks: np.ndarray, lot: np.ndarray) -> np.ndarray:
    """Absolute position notional at the marks, dollars, (N, K)."""
    return np.abs(pos) * (lot * marks)


def upnl(pos: np.ndarray, entry: np.ndarray, marks: np.ndarray, lot: np.ndarray) -> np.ndarray:
    """Unrealised PnL per position, ``lots * lot_size * (mark - entry)``, (N, K)."""
    return pos * lot * (marks - entry)


def equity(
    cash: np.ndarray, pos: np.ndarray, entry: np.ndarray, marks: np.ndarray, lot: np.ndarray
) -> np.ndarray:
    """Account equity: cash plus the sum of unrealised PnL over markets, (N,)."""
    return cash + upnl(pos, entry, marks, lot).sum(axis=1)


def tiered_requirement(notional_k: np.ndarray, spec: MarketSpec) -> np.ndarray:
    """Maintenance requirement of one market's positions, with Binance-style tiers."""
    if not spec.tiers:
        return notional_k * spec.maintenance_margin
    floors, rates, ded = spec.tier_arrays()
    tier = np.searchsorted(floors, notional_k, side="right") - 1
    return notional_k * rates[tier] - ded[tier]


def maintenance(pos: np.ndarray, marks: np.ndarray, specs: tuple[MarketSpec, ...]) -> np.ndarray:
    """Cross-margin maintenance requirement per account (sum over markets), (N,)."""
    lot = np.array([s.lot_size for s in specs])
    return maintenance_from_notional(notional(pos, marks, lot), specs)


def initial(pos: np.ndarray, marks: np.ndarray, specs: tuple[MarketSpec, ...]) -> np.ndarray:
    """Cross-margin initial requirement per account, (N,)."""
    lot = np.array([s.lot_size for s in specs])
    rates = np.array([s.initial_margin for s in specs])
    return notional(pos, marks, lot) @ rates


def bankruptcy_price(
    pos: np.ndarray, marks: np.ndarray, lot: np.ndarray, eq: np.ndarray
) -> np.ndarray:
    """Price of each market at which the account's equity is zero, others held fixed.

    ``p_bk = mark - equity / (lots * lot_size)``; nan where flat.  (N, K)
    """
    q = pos * lot
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pos != 0, marks - eq[:, None] / q, np.nan)


def liquidation_price(
    pos: np.ndarray,
    marks: np.ndarray,
    specs: tuple[MarketSpec, ...],
    eq: np.ndarray,
    mm: np.ndarray,
) -> np.ndarray:
    """Price of each market at which equity meets maintenance, others held fixed (first tier).

    Solves ``E + q (p - m) = MM_other + |q| p r`` for p, with q = lots * lot_size and
    r the first-tier maintenance rate; nan where flat or where no such price exists.
    """
    lot = np.array([s.lot_size for s in specs])
    r = np.array([s.maintenance_margin for s in specs])
    q = pos * lot
    mm_own = np.abs(q) * marks * r
    mm_other = mm[:, None] - mm_own
    denom = q - np.abs(q) * r
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (q * marks + mm_other - eq[:, None]) / denom
    return np.where((pos != 0) & (p > 0), p, np.nan)


# --------------------------------------------------------------------------- row sums
def row_sum(cols: list[np.ndarray]) -> np.ndarray:
    """The sum of equally long columns, row by row, without an (n, K) temporary."""
    out = cols[0] + 0.0
    for c in cols[1:]:
        out += c
    return out


def weighted_row_sum(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w`` for an (n, K) array, as K column multiply-adds (no BLAS call: no threads
    left spinning after it, and the same cost per row whatever n)."""
    out = a[:, 0] * w[0]
    for k in range(1, a.shape[1]):
        out += a[:, k] * w[k]
    return out


def maintenance_from_notional(nt: np.ndarray, specs: tuple[MarketSpec, ...]) -> np.ndarray:
    """Maintenance requirement per account from the (n, K) notional (flat or tiered rates)."""
    if not any(s.tiers for s in specs):
        rates = np.array([s.maintenance_margin for s in specs])
        return weighted_row_sum(nt, rates)
    out = np.zeros(nt.shape[0])
    for k, spec in enumerate(specs):
        out += tiered_requirement(nt[:, k], spec)
    return out
