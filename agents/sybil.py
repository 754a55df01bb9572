"""Sybil owners: one economic exposure spread over several accounts to sit low in a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import SYBIL, Members, Trader

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
        """Open (or re-open) the owner's positions over its accounts."""
        ex = model.exchange
        k = agent.market
        accounts = agent.accounts
        if (ex.acc.pos[accounts, k] != 0).any():
            ex.close_all(accounts[ex.acc.pos[accounts, k] != 0])
        cash = ex.acc.cash[accounts].copy()
        total = float(cash.sum())
        safe = model.scenario.passive.leverage_median
        max_lev = 0.9 / ex.specs[k].initial_margin
        eq, notional = sybil_split(total, agent.leverage, accounts.size, safe, max_lev)
        # move cash between the owner's own (now flat) accounts to match the split: all of it
        # to the first account, then out again to the others
        head = accounts[:1]
        rest, rest_cash = accounts[1:], cash[1:]
        give = rest_cash > 0
        if give.any():
            ex.transfer_many(rest[give], np.repeat(head, give.sum()), rest_cash[give])
        left = total
        out = np.zeros(rest.size)
        for j in range(rest.size):
            if eq[j + 1] > 0:
                out[j] = min(float(eq[j + 1]), left)
                left -= out[j]
        send = eq[1:] > 0
        if send.any():
            ex.transfer_many(np.repeat(head, send.sum()), rest[send], out[send])
        lots = np.floor(notional / (ex.marks[k] * ex.lot[k])).astype(np.int64) * agent.side
        go = lots != 0
        if go.any():
            ex.trade(accounts[go], k, lots[go])

    @classmethod
    def arrange_all(cls, model: ADLGame, agents: list[SybilOwner]) -> None:
        """:meth:`arrange` every owner in ``agents``, in order (each through the exchange's
        public order API: closes, transfers between its own accounts, new orders)."""
        for agent in agents:
            cls.arrange(model, agent)

    @classmethod
    def after_crisis(cls, model: ADLGame, members: Members) -> None:
        """Re-arrange every owner after the crisis (ranks moved)."""
        cls.arrange_all(model, members.agents)
