"""The trader base class and the type codes shared by the game and the exchange's labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import mesa
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game import ADLGame

#: Agent-type codes stored in the exchange's per-account ``kind`` label.
PASSIVE, WHALE, FLIPPER, SYBIL, ENTRANT = 1, 2, 3, 4, 5
TYPE_NAMES = {
    PASSIVE: "passive",
    WHALE: "whale",
    FLIPPER: "flipper",
    SYBIL: "sybil",
    ENTRANT: "entrant",
}


class Trader(mesa.Agent):
    """A trader owning one or more exchange accounts.

    Behaviour is written once per type as class methods over arrays of members (vectorised:
    every trader of a type decides in one numpy pass), so a population of 100,000 traders
    costs a few array operations per step.  Each agent keeps its identity, accounts and
    parameters; per-step random draws come from the game's common-random-number table by the
    agent's ``uid`` (creation order), so two runs with different ADL policies draw the same
    numbers for the same trader.

    Attributes:
        uid: creation index, the column of the game's random tables.
        accounts: exchange account indices (one, or several for a Sybil owner).
        market: the market this trader trades.
        side: +1 long, -1 short (the trader's current view).
        leverage: target leverage.
    """

    type_code: ClassVar[int] = PASSIVE

    def __init__(
        self,
        model: ADLGame,
        uid: int,
        accounts: np.ndarray,
        market: int,
        side: int,
        leverage: float,
    ) -> None:
        super().__init__(model)
        self.uid = int(uid)
        self.accounts = np.asarray(accounts, dtype=np.int64)
        self.market = int(market)
        self.side = int(side)
        self.leverage = float(leverage)
        self.joined_step = model.steps

    @property
    def account(self) -> int:
        """The main account."""
        return int(self.accounts[0])

    @property
    def type_name(self) -> str:
        """The agent type's name."""
        return TYPE_NAMES[self.type_code]

    def step(self) -> None:
        """Per-agent stepping is not used: the game calls the type's vectorised ``act``."""

    # -- vectorised behaviour (overridden per type) ---------------------------------------
    @classmethod
    def act(cls, model: ADLGame, members: Members, phase: str) -> None:
        """What every member of this type does this step (phase: 'calm' or 'crisis')."""

    @classmethod
    def after_crisis(cls, model: ADLGame, members: Members) -> None:
        """Adaptation after a crisis (learning, re-arranging)."""


class Members:
    """The members of one agent type as arrays (rebuilt when membership or targets change).

    Attributes:
        agents: the agent objects, in creation order.
        uid, account, market, side, leverage: one entry per member.
    """

    def __init__(self, agents: list[Trader]) -> None:
        self.agents = agents
        n = len(agents)
        self.uid = np.fromiter((a.uid for a in agents), dtype=np.int64, count=n)
        self.account = np.fromiter((a.account for a in agents), dtype=np.int64, count=n)
        self.market = np.fromiter((a.market for a in agents), dtype=np.int64, count=n)
        self.side = np.fromiter((a.side for a in agents), dtype=np.int64, count=n)
        self.leverage = np.fromiter((a.leverage for a in agents), dtype=np.float64, count=n)

    def __len__(self) -> int:
        return len(self.agents)


def target_orders(
    model: ADLGame, accounts: np.ndarray, market: np.ndarray, side: np.ndarray, leverage: np.ndarray
) -> None:
    """Trade each account towards ``side * leverage * equity`` of notional in its market.

    Vectorised per market; orders that would break initial margin are refused by the
    exchange and change nothing.
    """
    ex = model.exchange
    eq = ex.equity()[accounts]
    for k in np.unique(market):
        m = market == k
        acc = accounts[m]
        price = ex.marks[k] * ex.lot[k]
        want = np.floor(np.maximum(eq[m], 0.0) * leverage[m] / price).astype(np.int64) * side[m]
        delta = want - ex.acc.pos[acc, k]
        go = delta != 0
        if go.any():
            ex.trade(acc[go], int(k), delta[go])
