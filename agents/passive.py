"""Passive traders: take a position, hold, rarely rebalance; churn after losses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.base import ENTRANT, PASSIVE, Members, Trader, target_orders
from market.arrays import any_true

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame


class PassiveTrader(Trader):
    """Holds a position at moderate leverage; resets it with a small chance per calm step."""

    type_code = PASSIVE

    @classmethod
    def act(cls, model: ADLGame, members: Members, phase: str) -> None:
        """In calm steps, each member rebalances to its target with ``rebalance_prob``."""
        if phase != "calm" or not len(members):
            return
        go = model.draw("rebalance", members.uid) < model.scenario.passive.rebalance_prob
        if any_true(go):
            target_orders(
                model,
                members.account[go],
                members.market[go],
                members.side[go],
                members.leverage[go],
            )


class Entrant(PassiveTrader):
    """A passive trader who arrived after a crisis (tracked separately for retention)."""

    type_code = ENTRANT
