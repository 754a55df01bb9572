"""The remaining production mechanisms: Bybit, OKX, Aevo, Lighter, GMX, Paradex and Deribit.

Each follows its venue's own documents or code as digested in the project's venue notes; what
the public sources leave open is a parameter, and the policy's ``source`` says UNVERIFIED.

Ranked queues (:class:`~market.adl.queues.RankedQueue`: whole capacities in score order):

* :class:`BybitQueue` -- "highest profit and effective leverage": ``PNL% * EffLev`` (the
  published formula is cut off; the BitMEX form is the assumption), at the bankruptcy price.
* :class:`OkxQueue` -- ``PnL% * effective leverage``; at the mark while the fund is healthy,
  at the bankruptcy price when it is nearly depleted, which is when this exchange's ADL runs
  (after the backstop), so the bankruptcy price.
* :class:`AevoQueue` -- the legacy Binance ``PNL% * MarginRatio`` at the mark; markets listed
  in ``exclude`` (Aevo's majors) are never deleveraged.
* :class:`LighterQueue` -- unrealised PnL with leverage as the secondary key (UNVERIFIED),
  after the LLP strategy is exhausted, at the bankruptcy price.
* :class:`GmxProfitCap` -- GMX v2 reduces profitable positions at the oracle price; which
  positions is the keeper's choice (largest PnL first here), and only profit can be taken.

Rules with no ranked ADL (they raise nothing in a wave and name the shortfall bearer that
carries the loss instead, :attr:`ADLPolicy.default_shortfall`):

* :class:`ParadexWithdrawalLoss` -- the loss stays with the exchange and every withdrawal
  while it is bankrupt is cut by the socialised loss factor (bearer ``withdrawals``): leavers
  pay it.
* :class:`DeribitSessionLoss` -- a depleted fund's bankruptcies are socialised among the
  session's winners at settlement, pro rata to their profit (bearer ``socialised``).

Mark-price execution (OKX while its fund is healthy, Aevo) moves positions without moving
money: the bankrupt side's loss beyond the mark is not covered by the winners.  Here a wave's
budget is what the backstop left, so these rules close at the price that covers it
(``prev_mark`` for Aevo and GMX, whose oracle price lags the crash by a step; ``bankruptcy``
for OKX); each docstring says where that departs from the venue.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from market.adl.base import ADLPolicy, Allocation, Snapshot, execute
from market.adl.ordering import checked_budget
from market.adl.queues import (
    RankedQueue,
    _effective_leverage,
    _finish_score,
    _require_prices,
    leverage_pnl_score,
    profit_leverage_score,
)
from market.errors import require

__all__ = [
    "AevoQueue",
    "BybitQueue",
    "DeribitSessionLoss",
    "GmxProfitCap",
    "LighterQueue",
    "OkxQueue",
    "ParadexWithdrawalLoss",
]


class BybitQueue(RankedQueue):
    """Bybit's ADL queue, closed at the bankruptcy price of the liquidated order.

    Bybit ranks "in order of highest profit and effective leverage"; its current formula is
    cut off in every public copy, so the BitMEX form it descends from is the assumption::

        score = PNL% * EffLev if PNL% > 0 else PNL% / EffLev,
        PNL% = upnl / notional,  EffLev = notional / equity.

    Not modelled: the 2025 grouped-insurance-pool trigger (ADL when the symbol's PnL drawdown
    against its 8-hour maximum passes a threshold, stopping at a stop ratio), the maker and
    taker fees charged on ADL fills, and the unverified switch to the mark price when the
    bankruptcy price is more than 5 % away.
    """

    name: ClassVar[str] = "bybit"
    description: ClassVar[str] = (
        "Bybit queue: profit x effective leverage (BitMEX form, UNVERIFIED), at the bankruptcy "
        "price"
    )
    source: ClassVar[str] = (
        "Bybit help, Auto-Deleveraging; v5 API adl-alert "
        "(https://bybit-exchange.github.io/docs/v5/market/adl-alert); formula UNVERIFIED"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        """``PNL% * EffLev`` in profit, ``PNL% / EffLev`` otherwise (PNL% on notional)."""
        _require_prices(snap)
        return profit_leverage_score(snap)


class OkxQueue(RankedQueue):
    """OKX's ADL queue: "leverage PnL% = position's PnL% x effective leverage", highest first.

    OKX executes at the mark price at matching unless the security fund is "nearly depleted",
    then at the bankruptcy price.  This exchange runs ADL only for what the backstop could not
    pay, i.e. when the fund is depleted, so the bankruptcy price applies; the fund-threshold
    trigger (ADL starting while the fund still holds money) is not modelled.  PnL% and
    effective leverage are not defined in the public text (UNVERIFIED): ``upnl / notional``
    and ``notional / equity``.
    """

    name: ClassVar[str] = "okx"
    description: ClassVar[str] = (
        "OKX queue: PnL% x effective leverage, at the bankruptcy price once the fund is depleted"
    )
    source: ClassVar[str] = (
        "OKX help, Introduction to auto-deleveraging "
        "(https://www.okx.com/help/iv-introduction-to-auto-deleveraging-adl); PnL% and "
        "leverage definitions UNVERIFIED"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        """``PnL% * EffLev`` for every row (the text gives no loser branch)."""
        _require_prices(snap)
        notional = snap.notional
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = snap.upnl / notional * _effective_leverage(snap, notional)
        return _finish_score(raw, snap)


class AevoQueue(RankedQueue):
    """Aevo's ADL queue: ``PNL% * MarginRatio`` (the legacy Binance form), majors excluded.

    Aevo's docs::

        PNL%        = UPNL / max(1, Balance)
        MarginRatio = MM / (Balance + UPNL)   if PNL% > 0, else 0
        score       = PNL% * MarginRatio

    Both sides trade at the mark.  A fill at the current mark moves no money, so here the
    rows close at the previous mark (what the oracle showed when the liquidation was
    triggered), which covers the wave's budget; that is the departure from the venue.

    Args:
        exclude: market indices never deleveraged (Aevo excludes BTC, ETH, SOL and options);
            their rows have no capacity, so a wave there is left to the shortfall's bearer.
    """

    name: ClassVar[str] = "aevo"
    description: ClassVar[str] = (
        "Aevo queue: PNL% x margin ratio, near the mark (previous mark); excluded markets exempt"
    )
    source: ClassVar[str] = (
        "Aevo docs, Auto-Deleveraging (https://docs.aevo.xyz/aevo-products/aevo-exchange/"
        "technical-architecture/auto-deleveraging-adl)"
    )
    price_rule: ClassVar[str] = "prev_mark"

    def __init__(self, exclude: tuple[int, ...] = ()) -> None:
        self.exclude = exclude

    def _excluded(self, snap: Snapshot) -> bool:
        ex = self.exclude
        require(
            isinstance(ex, tuple | list) and all(isinstance(m, int) and m >= 0 for m in ex),
            "aevo.exclude",
            "a tuple of market indices (ints >= 0)",
            ex,
        )
        return int(snap.market) in ex

    def caps(self, snap: Snapshot) -> np.ndarray:
        """No capacity in an excluded market; the capacity elsewhere."""
        return np.zeros(snap.n) if self._excluded(snap) else snap.capacity

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Nothing in an excluded market; the queue's whole capacities elsewhere."""
        if self._excluded(snap):
            checked_budget(budget)
            return np.zeros(snap.n)
        return super().allocate_wealth(snap, budget)

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """The queue, or nothing at all in an excluded market."""
        if self._excluded(snap):
            grid = snap.with_capacity(np.zeros(snap.n))
            return execute(grid, budget, np.zeros(snap.n), price_rule=self.price_rule)
        return super().allocate(snap, budget)

    def score(self, snap: Snapshot) -> np.ndarray:
        """``UPNL / max(1, cash) * MM / equity`` in profit, 0 otherwise."""
        _require_prices(snap)
        return leverage_pnl_score(snap)


class LighterQueue(RankedQueue):
    """Lighter: ADL once an LLP strategy (an isolated shard of the insurance fund) is exhausted.

    Lighter liquidates partially at the "zero price" (which keeps account value over
    maintenance constant), lets the LLP take over accounts below the close-out margin, and
    deleverages when the LLP strategy holding them runs dry.  The ranking is not in its docs;
    a secondary wiki gives "unrealised PnL, leverage as the secondary key" (UNVERIFIED).
    Here::

        key 1: upnl (descending by default; ``pnl_order="ascending"`` for the wiki's literal
               reading), key 2: notional / equity (descending)

    folded into one score ``rank(upnl) + leverage_share`` where ``leverage_share`` in [0, 1)
    orders rows of equal PnL.  Closed at the bankruptcy price (UNVERIFIED).

    Args:
        pnl_order: ``"descending"`` (most profit first) or ``"ascending"``.
    """

    name: ClassVar[str] = "lighter"
    description: ClassVar[str] = (
        "Lighter queue after the LLP is exhausted: unrealised PnL, then leverage (UNVERIFIED)"
    )
    source: ClassVar[str] = (
        "Lighter docs, Liquidations and insurance fund (https://docs.lighter.xyz/"
        "perpetual-futures/liquidations-and-insurance-fund); ranking UNVERIFIED"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    ORDERS: ClassVar[tuple[str, ...]] = ("descending", "ascending")

    def __init__(self, pnl_order: str = "descending") -> None:
        self.pnl_order = pnl_order

    def score(self, snap: Snapshot) -> np.ndarray:
        """Dense rank of unrealised PnL plus a leverage tie-breaker in [0, 1)."""
        require(
            self.pnl_order in self.ORDERS,
            "lighter.pnl_order",
            f"one of {', '.join(self.ORDERS)}",
            self.pnl_order,
        )
        _require_prices(snap)
        pnl = snap.upnl if self.pnl_order == "descending" else -snap.upnl
        rank = np.unique(pnl, return_inverse=True)[1].reshape(-1).astype(np.float64)
        lev = _effective_leverage(snap)
        lev = np.where(np.isfinite(lev), lev, np.finfo(np.float64).max)
        tie = lev / (1.0 + lev)  # in [0, 1), increasing in leverage
        tie = np.where(np.isfinite(tie), tie, 1.0 - 1e-12)
        return _finish_score(rank + np.minimum(tie, 1.0 - 1e-12), snap)


class GmxProfitCap(RankedQueue):
    """GMX v2: ADL as a profit cap, reducing profitable positions at the oracle price.

    On GMX the pool is every trader's counterparty: when the pool's PnL-to-pool ratio on a
    side passes ``MAX_PNL_FACTOR_FOR_ADL``, keepers may reduce profitable positions at the
    oracle price until it falls to ``MIN_PNL_FACTOR_AFTER_ADL``.  Which positions is the
    keeper's off-chain choice; here the largest unrealised profit first (an assumption), and
    only profit can be taken (the profits-only cap).  The oracle price lags the crash, so the
    reduction happens at the previous mark.  Not modelled: the pool ratio as the trigger (here
    the wave's budget decides how much profit is cut) and ``MAX_PNL_FACTOR_FOR_TRADERS``'s
    scaling of realised profit.
    """

    name: ClassVar[str] = "gmx"
    description: ClassVar[str] = (
        "GMX v2 profit cap: largest profits reduced first at the oracle (previous mark), "
        "profits only"
    )
    source: ClassVar[str] = (
        "GMX synthetics, AdlUtils / MAX_PNL_FACTOR_FOR_ADL (https://github.com/gmx-io/"
        "gmx-synthetics); keeper's choice of positions UNVERIFIED"
    )
    price_rule: ClassVar[str] = "prev_mark"
    default_cap: ClassVar[str] = "pnl"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        """Unrealised profit (rows without profit last)."""
        _require_prices(snap)
        raw = np.where(snap.upnl > 0, snap.upnl, -np.inf)
        return _finish_score(raw.astype(np.float64), snap)


class _NoRankedADL(ADLPolicy):
    """Base of the venues without a ranked ADL: a wave raises nothing; the loss goes to the
    shortfall bearer the venue uses (:attr:`default_shortfall`)."""

    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale"})
    price_rule: ClassVar[str] = "none"
    default_cap: ClassVar[str] = "equity"

    def __init__(self) -> None:
        pass

    def caps(self, snap: Snapshot) -> np.ndarray:
        """Nothing is taken in a wave."""
        return np.zeros(snap.n)

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Zero for every row."""
        checked_budget(budget)
        return np.zeros(snap.n)


class ParadexWithdrawalLoss(_NoRankedADL):
    """Paradex: the exchange's bankruptcy is socialised on withdrawals only.

    ``ExchangeBankruptcy = max(0, sum of account bankruptcies - insurance fund)``; while it is
    positive a Socialized Loss Factor cuts every withdrawal, so only those who withdraw pay.
    Here the shortfall is carried (bearer ``withdrawals``) and every withdrawal or leaver's
    payout is cut by ``min(1, debt / active traders' positive equity)``, the cut repaying the
    debt; the game counts it in churn and LTV, since it falls on leavers.
    """

    name: ClassVar[str] = "paradex"
    description: ClassVar[str] = (
        "Paradex: no ADL; the loss is carried and cut from every withdrawal (leavers pay)"
    )
    source: ClassVar[str] = (
        "Paradex docs, Socialized losses (https://docs.paradex.trade/risk-system/"
        "socialized-losses); the factor's denominator UNVERIFIED"
    )
    default_shortfall: ClassVar[str] = "withdrawals"


class DeribitSessionLoss(_NoRankedADL):
    """Deribit: no ranked ADL; a depleted fund's bankruptcies are socialised among the day's
    winning traders.

    "Bankruptcies would be socialized among the winning traders for that day"; the formula is
    not published (UNVERIFIED: pro rata to session profit, what this models).  Here the
    shortfall is carried through the session and charged at settlement (the end of a crisis
    in the game) to the accounts in profit, pro rata to that profit and at most their equity
    (bearer ``socialised``).
    """

    name: ClassVar[str] = "deribit"
    description: ClassVar[str] = (
        "Deribit: no ranked ADL; the session's bankruptcies socialised among its winners at "
        "settlement"
    )
    source: ClassVar[str] = (
        "Deribit support, Insurance Fund (https://support.deribit.com/hc/en-us/articles/"
        "25944777576477-Insurance-Fund); socialisation formula UNVERIFIED"
    )
    default_shortfall: ClassVar[str] = "socialised"
