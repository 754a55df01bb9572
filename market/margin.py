"""Vectorised margin arithmetic: PnL, equity, margin requirements, bankruptcy prices."""

from __future__ import annotations

from itertools import pairwise

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
    return maintenance_from_notional(notional(pos, marks, lot), specs, blocked=False)


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


# --------------------------------------------------------------------------- wave fast paths
#: Rows per BLAS call in :func:`_matvec_rows`: few enough that OpenBLAS runs one thread.
_MATVEC_CELLS = 8192


def row_sum(cols: list[np.ndarray]) -> np.ndarray:
    """``np.stack(cols, axis=1).sum(axis=1)``, bit for bit, without the (n, K) temporary.

    numpy sums a row of fewer than 8 values left to right from +0.0 (its pairwise sum unrolls
    only from 8 on), so adding the columns one by one to ``0.0 + first`` gives the same bits
    (a row of -0.0 sums to +0.0); for 8 or more columns the stacked sum is used as it is.
    """
    if len(cols) >= 8:
        return np.stack(cols, axis=1).sum(axis=1)
    out = cols[0] + 0.0
    for c in cols[1:]:
        out += c
    return out


def _matvec_rows(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``a @ v`` for a C-contiguous (n, K) array, as one BLAS call over two or more rows gives it.

    The product runs in blocks of rows small enough that OpenBLAS keeps to one thread (its
    threads busy-wait after a call and cost CPU on a shared machine).  Each row's result does
    not depend on how many rows share a call, except for a call over a single row (numpy then
    takes another path): a lone row is computed beside a copy of itself, so every row gets
    the bits of a multi-row call.  That holds for K < 8 columns (OpenBLAS's kernels give a
    row's bits independent of its place in the call there); with 8 or more a row's bits
    depend on its place, so this is then one plain call, ``a @ v``.
    """
    a = np.ascontiguousarray(a)
    n = a.shape[0]
    if a.shape[1] >= 8:
        return a @ v
    if n == 1:
        return (np.concatenate([a, a]) @ v)[:1]
    block = max(2, _MATVEC_CELLS // max(a.shape[1], 1))
    if n <= block:
        return a @ v
    out = np.empty(n)
    bounds = [*range(0, n, block), n]
    if bounds[-1] - bounds[-2] == 1:  # no block of one row: the last one joins the one before
        del bounds[-2]
    for s, e in pairwise(bounds):
        np.matmul(a[s:e], v, out=out[s:e])
    return out


def maintenance_from_notional(
    nt: np.ndarray, specs: tuple[MarketSpec, ...], *, blocked: bool = True
) -> np.ndarray:
    """Maintenance requirement per account from the (n, K) notional.

    ``blocked`` (default): the flat-rate product through :func:`_matvec_rows` (one OpenBLAS
    thread, the multi-row bits of ``nt @ rates``), so it equals ``maintenance(pos, ...)`` bit
    for bit wherever that call covers two or more rows; ``blocked=False`` is the plain
    ``nt @ rates`` that :func:`maintenance` uses.
    """
    if not any(s.tiers for s in specs):
        rates = np.array([s.maintenance_margin for s in specs])
        return _matvec_rows(nt, rates) if blocked else nt @ rates
    out = np.zeros(nt.shape[0])
    for k, spec in enumerate(specs):
        out += tiered_requirement(nt[:, k], spec)
    return out
