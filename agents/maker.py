"""Market makers: the liquidity behind the book, withdrawn under stress."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame


class MarketMaker(mesa.Agent):
    """Supplies the book the exchange's liquidations hit (the exchange's book account).

    Before each step's waterfall the maker sees the step's move and sets the depth it
    offers: in a crisis it withdraws ``withdraw * stress`` of its depth (stress = the
    absolute log return over the market's ``stress_ref``, capped at 1); in calm steps it
    restores ``recover`` of the missing depth.  Thinner depth is what makes liquidations slip
    past bankruptcy prices and open holes.
    """

    def __init__(self, model: ADLGame, withdraw: float, recover: float) -> None:
        super().__init__(model)
        self.withdraw = float(withdraw)
        self.recover = float(recover)

    def quote(self, new_marks: np.ndarray, phase: str) -> None:
        """Set the exchange's depth scale for the coming step."""
        ex = self.model.exchange
        ret = np.abs(np.log(new_marks / ex.marks))
        stress = np.minimum(ret / ex.spec_field("stress_ref"), 1.0)
        if phase == "crisis":
            ex.depth_scale[:] = np.minimum(
                ex.depth_scale, np.maximum(1.0 - self.withdraw * stress, 0.05)
            )
        else:
            ex.depth_scale[:] += self.recover * (1.0 - ex.depth_scale)


class BackstopLP(mesa.Agent):
    """Liquidity providers of the backstop: refill part of the gap to its target after a crisis."""

    def __init__(self, model: ADLGame, target: float, topup: float) -> None:
        super().__init__(model)
        self.target = float(target)
        self.topup = float(topup)
        self.added = 0.0

    def refill(self) -> float:
        """Add ``topup`` of the gap between the backstop's capital and its target."""
        ex = self.model.exchange
        if ex.backstop.kind == "none" or self.topup <= 0:
            return 0.0
        gap = self.target - ex.backstop_capital()
        amount = self.topup * gap
        if amount > 0:
            ex.fund_deposit(amount)
            self.added += amount
            return amount
        return 0.0
