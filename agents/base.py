"""The trader base class and the type codes shared by the game and the exchange's labels."""

from __future__ import annotations

from itertools import compress
from operator import attrgetter
from typing import TYPE_CHECKING, ClassVar

import mesa
import numpy as np

from market.arrays import any_true, unique_sorted

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame

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
    def accounts(self) -> np.ndarray:
        """Exchange account indices (one, or several for a Sybil owner)."""
        return self._accounts

    @accounts.setter
    def accounts(self, value: np.ndarray) -> None:
        self._accounts = np.asarray(value, dtype=np.int64)
        self._account = int(self._accounts[0]) if self._accounts.size else -1

    @property
    def account(self) -> int:
        """The main account."""
        return self._account

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


_MEMBER_COLUMNS = attrgetter("uid", "_account", "market", "side", "leverage", "unique_id")
_ACCOUNTS = attrgetter("_accounts")


class Members:
    """The members of one agent type as arrays (rebuilt when membership or targets change).

    Attributes:
        agents: the agent objects, in creation order.
        uid, account, market, side, leverage, unique_id: one entry per member.
    """

    def __init__(self, agents: list[Trader]) -> None:
        self.agents = agents
        n = len(agents)
        # one C-level pass over the agents; integers below 2**53 survive float64 exactly
        cols = np.array(list(map(_MEMBER_COLUMNS, agents)), dtype=np.float64).reshape(n, 6)
        self.uid = cols[:, 0].astype(np.int64)
        self.account = cols[:, 1].astype(np.int64)
        self.market = cols[:, 2].astype(np.int64)
        self.side = cols[:, 3].astype(np.int64)
        self.leverage = cols[:, 4].copy()
        self.unique_id = cols[:, 5].astype(np.int64)
        self._layout: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.agents)

    def layout(self) -> tuple[np.ndarray, np.ndarray]:
        """(accounts per member, every account member by member), computed once per table."""
        if self._layout is None:
            lists = list(map(_ACCOUNTS, self.agents))
            lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            if lengths.size and bool((lengths == 1).all()):
                flat = self.account.copy()  # one account each: the main account
            elif lengths.size:
                flat = np.concatenate(lists).astype(np.int64, copy=False)
            else:
                flat = np.zeros(0, dtype=np.int64)
            self._layout = (lengths, flat)
        return self._layout

    def without(self, leave: np.ndarray) -> Members:
        """The table with the members where ``leave`` is True dropped (same order otherwise).

        Equal to rebuilding the table from the remaining agents (Mesa keeps an agent set in
        insertion order, and removing agents does not reorder the others).
        """
        keep = ~np.asarray(leave, dtype=bool)
        out = Members.__new__(Members)
        out.agents = list(compress(self.agents, keep.tolist()))
        for name in ("uid", "account", "market", "side", "leverage", "unique_id"):
            setattr(out, name, getattr(self, name)[keep])
        out._layout = None
        if self._layout is not None:
            lengths, flat = self._layout
            out._layout = (lengths[keep], flat[np.repeat(keep, lengths)])
        return out

    def plus(self, other: Members) -> Members:
        """This table with ``other``'s members appended (agents that joined the type after)."""
        out = Members.__new__(Members)
        out.agents = self.agents + other.agents
        for name in ("uid", "account", "market", "side", "leverage", "unique_id"):
            setattr(out, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        out._layout = None
        if self._layout is not None:  # the other's (a few newcomers) is cheap to lay out
            lengths, flat = other.layout()
            out._layout = (
                np.concatenate([self._layout[0], lengths]),
                np.concatenate([self._layout[1], flat]),
            )
        return out


def target_orders(
    model: ADLGame, accounts: np.ndarray, market: np.ndarray, side: np.ndarray, leverage: np.ndarray
) -> None:
    """Trade each account towards ``side * leverage * equity`` of notional in its market.

    Vectorised per market; orders that would break initial margin are refused by the
    exchange and change nothing.
    """
    ex = model.exchange
    eq = ex.equity(accounts)  # the rows only: equal to equity()[accounts], bit for bit
    for k, m in market_groups(ex.K, market):
        acc = accounts[m]
        price = ex.marks[k] * ex.lot[k]
        want = np.floor(np.maximum(eq[m], 0.0) * leverage[m] / price).astype(np.int64) * side[m]
        delta = want - ex.acc.positions.lots_of(acc, k)
        go = delta != 0
        if any_true(go):
            ex.trade(acc[go], k, delta[go])


def market_groups(n_markets: int, market: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """Each market present in ``market`` (ascending) with the selector of its entries.

    The selector is the mask ``market == k``, or every entry (``slice(None)``, a view) on an
    exchange of ``n_markets == 1``, where ``market`` can only hold 0.
    """
    if n_markets == 1:
        return [(0, slice(None))] if market.size else []
    return [(k, market == k) for k in unique_sorted(market).tolist()]
