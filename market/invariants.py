"""Invariants of the exchange, as a function users and tests can call at any time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.exchange import Exchange


@dataclass(frozen=True)
class InvariantReport:
    """The state of every invariant.

    Attributes:
        conservation_error: ``|sum(cash) + sum(upnl) + fund + fee_revenue - bad_debt - debt -
            external|`` (``debt``: the shortfall the exchange carries) divided by
            ``max(external, 1)``: relative to the money traders and the
            backstop brought in.
        oi_imbalance: long lots minus short lots per market (must be all zero).
        whole_lots: positions are integers.
        negative_fund: the insurance fund is below zero (must be False).
        book_solvent: the liquidity providers' losses on the book stay within their capital.
    """

    conservation_error: float
    oi_imbalance: np.ndarray
    whole_lots: bool
    negative_fund: bool
    book_solvent: bool = True

    @property
    def ok(self) -> bool:
        """True when every invariant holds (conservation within 1e-9 relative)."""
        return (
            self.conservation_error <= 1e-9
            and not np.any(self.oi_imbalance)
            and self.whole_lots
            and not self.negative_fund
        )


def money_total(ex: Exchange) -> float:
    """Money inside the exchange: cash + unrealised PnL + fund + fee revenue - bad debt - debt.

    ``debt`` is a carried shortfall (fund debt, or awaiting socialisation): the holes it filled
    hold money the exchange owes, so it is subtracted like bad debt.
    """
    _, c, q, e = ex.acc.positions.entries()  # open positions only
    up = q * ex.lot[c] * (ex.marks[c] - e)
    # sum in a fixed order (sorted) for stability at 1e6 accounts
    parts = np.concatenate([ex.acc.cash, up])
    return float(np.sum(np.sort(parts))) + ex.fund + ex.fee_revenue - ex.bad_debt - ex.debt


def check_invariants(ex: Exchange) -> InvariantReport:
    """Compute every invariant of ``ex`` (does not raise; see :attr:`InvariantReport.ok`)."""
    scale = max(abs(ex.external), 1.0)
    err = abs(money_total(ex) - ex.external) / scale
    long_, short_ = ex.open_interest()
    return InvariantReport(
        conservation_error=float(err),
        oi_imbalance=(long_ - short_).astype(np.int64),
        whole_lots=all(q.dtype.kind in "iu" for q in ex.acc.positions.lots),
        negative_fund=ex.fund < -1e-9 * max(1.0, abs(ex.external)),
        book_solvent=float(ex.equity(np.array([ex.book]))[0]) >= -ex.book_capital,
    )
