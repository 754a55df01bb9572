"""Sybil owners: one economic exposure spread over several accounts to sit low in a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import SYBIL, Members, Trader
from market.arrays import unique_sorted

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame


def sybil_split(
    equity: float, leverage: float, parts: int, safe_leverage: float, max_leverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Equity and notional per account for an owner hiding from a leverage-based score.

    The owner wants total notional ``leverage * equity``.  ``parts - 1`` accounts run at
    ``safe_leverage`` (low in a notional/equity ranking); one sacrificial account carries the
    rest of the notional at ``max_leverage`` with as little equity as that needs.  If the
    owner's leverage is already at or below the safe level, the parts are equal.

    Returns:
        (equity per account, notional per account), each of length ``parts``; the sums are
        ``equity`` and ``leverage * equity``.
    """
    total_n = leverage * equity
    if leverage <= safe_leverage or parts == 1:
        return np.full(parts, equity / parts), np.full(parts, total_n / parts)
    e_x = (total_n - safe_leverage * equity) / (max_leverage - safe_leverage)
    e_x = min(max(e_x, 0.0), equity)
    e_safe = (equity - e_x) / (parts - 1)
    eq = np.append(np.full(parts - 1, e_safe), e_x)
    notional = np.append(
        np.full(parts - 1, safe_leverage * e_safe), total_n - safe_leverage * (equity - e_x)
    )
    return eq, notional


class SybilOwner(Trader):
    """Holds one exposure over ``k`` accounts (one exchange group), arranged by :func:`sybil_split`.

    The safe level is the population's median leverage, so the safe accounts sit mid-queue
    under a leverage-based score; the sacrificial account is small.  Under a rule that looks
    at the group's total (pro-rata on profit) the split changes nothing.
    """

    type_code = SYBIL

    @classmethod
    def arrange(cls, model: ADLGame, agent: SybilOwner) -> None:
        """Open (or re-open) the owner's positions over its accounts (:meth:`arrange_all` of
        this owner alone)."""
        cls.arrange_all(model, [agent])

    @classmethod
    def arrange_all(cls, model: ADLGame, agents: list[SybilOwner]) -> None:
        """:meth:`arrange` every owner in ``agents`` at once, through the exchange's public API.

        Three stages, each batched over every owner: every open position of the owners'
        accounts is closed (one order per market, owners in order); the cash of each owner's
        other accounts goes to its first account and out again to match :func:`sybil_split`;
        the new orders go in (one per market).  With a book of unlimited depth the result
        equals :meth:`arrange` owner by owner, up to floating-point order; with a finite book
        the orders walk it in another sequence (all closes before all openings) and fill at
        other prices.
        """
        if not agents:
            return
        ex = model.exchange
        parts = np.array([a.accounts.size for a in agents], dtype=np.int64)
        flat = np.concatenate([a.accounts for a in agents]).astype(np.int64)
        owner = np.repeat(np.arange(len(agents)), parts)
        start = np.zeros(len(agents), dtype=np.int64)
        np.cumsum(parts[:-1], out=start[1:])
        j = np.arange(flat.size) - start[owner]  # position within the owner's accounts
        market = np.array([a.market for a in agents], dtype=np.int64)
        side = np.array([a.side for a in agents], dtype=np.int64)
        lev = np.array([a.leverage for a in agents], dtype=np.float64)
        # 1. close every open position of the owners' accounts, market by market (owners in
        # order, accounts in order within one)
        ex.close_all(flat)
        # 2. the split of each owner's cash and notional (sybil_split, vectorised)
        cash = ex.acc.cash[flat].copy()
        total = cash[start].copy()  # each owner's cash, added account after account
        for jj in range(1, int(parts.max())):
            who = np.flatnonzero(parts > jj)
            total[who] += cash[start[who] + jj]
        safe = model.scenario.passive.leverage_median
        max_lev = 0.9 / np.array([ex.specs[k].initial_margin for k in market.tolist()])
        total_n = lev * total
        equal = (lev <= safe) | (parts == 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            e_x = np.clip((total_n - safe * total) / (max_lev - safe), 0.0, total)
            e_safe = np.where(parts > 1, (total - e_x) / np.maximum(parts - 1, 1), total)
        last = j == parts[owner] - 1
        o_eq = np.where(
            equal[owner], (total / parts)[owner], np.where(last, e_x[owner], e_safe[owner])
        )
        o_nt = np.where(
            equal[owner],
            (total_n / parts)[owner],
            np.where(last, (total_n - safe * (total - e_x))[owner], safe * e_safe[owner]),
        )
        # 3. cash to each owner's first account, then out again to the split
        head = flat[start][owner]
        rest = j > 0
        give = rest & (cash > 0)
        if give.any():
            ex.transfer_many(flat[give], head[give], cash[give])
        # each owner's accounts after the first take their share in turn from what is left
        out = np.zeros(flat.size)
        left = total.copy()
        for jj in range(1, int(parts.max())):
            who = np.flatnonzero(parts > jj)
            at = start[who] + jj
            out[at] = np.where(o_eq[at] > 0, np.minimum(o_eq[at], left[who]), 0.0)
            left[who] -= out[at]
        send = rest & (out > 0)
        if send.any():
            ex.transfer_many(head[send], flat[send], out[send])
        # 4. the new orders, market by market
        mk = market[owner]
        lots = np.floor(o_nt / (ex.marks[mk] * ex.lot[mk])).astype(np.int64) * side[owner]
        for k in unique_sorted(mk).tolist():
            go = (mk == k) & (lots != 0)
            if go.any():
                ex.trade(flat[go], k, lots[go])

    @classmethod
    def after_crisis(cls, model: ADLGame, members: Members) -> None:
        """Re-arrange every owner after the crisis (ranks moved)."""
        cls.arrange_all(model, members.agents)
