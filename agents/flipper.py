"""Flippers: watch the venue's ADL indicator and close-and-reopen to escape it."""

from __future__ import annotations

from itertools import compress
from typing import TYPE_CHECKING

import numpy as np

from agents.base import FLIPPER, Members, Trader, market_groups
from market.arrays import unique_sorted

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame


class Flipper(Trader):
    """A trader who resets a score built on entry price when the venue lights them up.

    During a crisis the flipper reads the indicator the venue publishes (quantile lights 0-4,
    updated every ``lag`` steps, so possibly stale).  When its light is at least
    ``threshold``, its position is in profit, and the cost of flipping (two taker fees and the
    book's spread for the round trip) is at most ``cost_tolerance`` times the haircut it
    expects to avoid (``light / 4`` of its unrealised profit), it closes and reopens the same
    position ``delay`` steps later.  Reopening at the mark sets entry = mark, which drops a
    Hyperliquid or BitMEX/Binance score and moves unrealised profit into the realised-gains
    ledger (so a profits-only cap on unrealised PnL no longer sees it).

    Attributes:
        flips: number of close-and-reopen round trips done.
        cost_paid: fees and spread paid for them, dollars.
        due: step at which a decided flip is carried out (-1: none pending).
    """

    type_code = FLIPPER

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.flips = 0
        self.cost_paid = 0.0
        self.due = -1

    @classmethod
    def act(cls, model: ADLGame, members: Members, phase: str) -> None:
        """Decide on flips from the published lights; carry out the ones that are due."""
        if phase != "crisis" or not len(members):
            return
        spec = model.scenario.flipper
        ex = model.exchange
        acc, mk = members.account, members.market
        agents = members.agents
        pos = np.zeros(acc.size, dtype=np.int64)
        entry = np.zeros(acc.size)
        for k, sel in market_groups(ex.K, mk):
            pos[sel], entry[sel] = ex.acc.positions.get(k, acc[sel])
        upnl = pos * ex.lot[mk] * (ex.marks[mk] - entry)  # upnl()[acc, mk], bit for bit
        lights = model.published_lights[acc]
        due = np.fromiter((a.due for a in agents), dtype=np.int64, count=len(agents))
        notional = np.abs(pos) * ex.lot[mk] * ex.marks[mk]
        fee = ex.spec_field("taker_fee")[mk]
        spread = ex.spec_field("impact")[mk] * 0.1
        cost = 2.0 * notional * (fee + spread)
        expected = (lights / 4.0) * np.maximum(upnl, 0.0)
        want = (due < 0) & (pos != 0) & (lights >= spec.threshold) & (upnl > 0)
        want &= cost <= spec.cost_tolerance * expected
        if want.any():
            due_at = model.t + spec.delay
            for agent in compress(agents, want.tolist()):
                agent.due = due_at
            due = np.where(want, due_at, due)
        go = (due >= 0) & (due <= model.t) & (pos != 0)
        for k in unique_sorted(mk[go]):
            sel = np.flatnonzero(go & (mk == k))
            rows, q = acc[sel], pos[sel]
            eq_before = ex.equity(rows)
            closed = ex.trade(rows, int(k), -q)
            reopened = np.zeros_like(closed)
            if closed.any():
                reopened[closed] = ex.trade(rows[closed], int(k), q[closed])
            paid = eq_before - ex.equity(rows)  # fees and spread of the round trip
            for j, i in enumerate(sel):
                if closed[j] and reopened[j]:
                    agents[i].flips += 1
                    agents[i].cost_paid += float(paid[j])
        for agent in compress(agents, go.tolist()):
            agent.due = -1
