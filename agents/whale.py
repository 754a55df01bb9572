"""Leveraged whales: heavy-tailed size, high leverage, learned between crises."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import WHALE, Members, Trader, target_orders

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame

#: Share of the choice probability spread uniformly over the grid (keeps exploring).
EXPLORE = 0.05
#: Floor on the per-period log utility, so one wipe-out does not erase a choice for ever.
UTILITY_FLOOR = -5.0


class Whale(Trader):
    """A large trader choosing its leverage from a grid by multiplicative weights.

    Each period the whale draws a side and a leverage from its weights, and after the crisis
    it scores the choice by the period's log return on equity, ADL haircuts and liquidation
    losses included: ``w[a] *= exp(eta * u)`` for the chosen arm ``a``.  A whale wiped out by
    liquidation comes back with fresh capital (the same stake; the exchange counts it as a
    deposit): with ``whale.ruin = "recapitalise"`` (the default so far) it keeps what it
    learned, with ``"replace"`` a newcomer takes its seat with uniform weights, so ruin ends
    that learner.
    """

    type_code = WHALE

    def __init__(self, *args, stake: float = 0.0, grid: tuple[float, ...] = (), **kw) -> None:
        super().__init__(*args, **kw)
        self.stake = float(stake)
        self.grid = np.asarray(grid, dtype=np.float64)
        self.weights = np.ones(self.grid.size) / max(self.grid.size, 1)
        self.choice = int(np.argmin(np.abs(self.grid - self.leverage))) if self.grid.size else 0
        self.period_equity = 0.0

    def probabilities(self) -> np.ndarray:
        """Choice probabilities over the leverage grid."""
        w = self.weights / self.weights.sum()
        return (1.0 - EXPLORE) * w + EXPLORE / w.size

    @classmethod
    def act(cls, model: ADLGame, members: Members, phase: str) -> None:
        """At the start of each calm period: choose side and leverage, trade to target."""
        if phase != "calm" or not len(members) or model.period_step != 0:
            return
        u_side = model.draw("whale_side", members.uid)
        u_lev = model.draw("whale_leverage", members.uid)
        eq = model.exchange.equity()
        agents = members.agents
        sizes = {a.grid.size for a in agents}
        if len(sizes) == 1 and (g := sizes.pop()) > 0:
            # every whale at once (one grid size): the entries of the running sum below the
            # draw count the arm, as searchsorted does per whale
            w = np.array([a.weights for a in agents]).reshape(len(agents), g)
            w = w / w.sum(axis=1, keepdims=True)
            p = (1.0 - EXPLORE) * w + EXPLORE / g
            below = (np.cumsum(p, axis=1) < u_lev[:, None]).sum(axis=1)
            choice = np.minimum(below, g - 1).tolist()
            side = np.where(u_side < 0.5, 1, -1).tolist()
            period_eq = eq[members.account].tolist()
            for agent, c, sd, pe in zip(agents, choice, side, period_eq, strict=True):
                agent.choice = c
                agent.leverage = agent.grid.item(c)
                agent.side = sd
                agent.period_equity = pe
        else:
            for agent, us, ul in zip(agents, u_side, u_lev, strict=True):
                p = agent.probabilities()
                agent.choice = int(min(np.searchsorted(np.cumsum(p), ul), p.size - 1))
                agent.leverage = float(agent.grid[agent.choice])
                agent.side = 1 if us < 0.5 else -1
                agent.period_equity = float(eq[agent.account])
        model.invalidate(cls)
        m = model.members(cls)
        target_orders(model, m.account, m.market, m.side, m.leverage)

    @classmethod
    def after_crisis(cls, model: ADLGame, members: Members) -> None:
        """Score the period's choice and recapitalise whales that were wiped out."""
        if not len(members):
            return
        eq = model.exchange.equity()
        eta = model.scenario.whale.learning_rate
        broke = []
        for agent in members.agents:
            start = max(agent.period_equity, 1e-9)
            end = float(eq[agent.account])
            u = max(np.log(max(end, 1e-12) / start), UTILITY_FLOOR)
            agent.weights[agent.choice] *= np.exp(eta * u)
            agent.weights /= agent.weights.sum()
            if end < 0.05 * agent.stake:
                broke.append(agent)
        if broke:
            if model.scenario.whale.ruin == "replace":
                for agent in broke:
                    agent.weights = np.ones(agent.grid.size) / max(agent.grid.size, 1)
            acc = np.array([a.account for a in broke], dtype=np.int64)
            model.exchange.deposit(acc, np.array([a.stake for a in broke]))
