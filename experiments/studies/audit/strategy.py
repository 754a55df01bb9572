"""The strategy space of one strategic trader: a vector of numbers is a strategy.

A strategy is what one owner (one account, or the accounts it splits into) does around the
first ADL wave of an audit world, with every action priced by the exchange as for anyone
(taker fees, the book's spread and impact, margin checks, funding while it holds):

* ``lead``: how many steps before the wave it acts (0 = just before the ranking snapshot);
* ``exit``: the share of each position it closes through the book before the snapshot and
  reopens through the book after the wave step (a partial exit: it gives up the exposure
  for the wave, and pays the round trip);
* ``reset``: the share of each remaining position it closes and reopens at once, through the
  book (``reset_mode = "book"``) or crossed with a sibling at the mark (``"cross"``, fees
  only): the entry price is reset, the exposure kept;
* ``split``: the number of accounts it spreads over (1 = no split), with ``split_share`` of
  the notional and ``split_equity`` of the equity in the original account and the rest shared
  equally by the others (moved at the entry price, cash by transfer, within initial margin);
* ``margin``: collateral deposited (> 0) or withdrawn (< 0) before the snapshot as a multiple
  of equity (leverage down or up), reversed after the wave step.

Exposure is kept through the wave except by ``exit``; every move changes only the owner's
accounts.  :func:`decode` maps ``[0, 1]^8`` onto this space (each move has a dead zone
around "do nothing", so doing nothing has weight for a derivative-free search), and
:data:`MOVES` names which coordinates a restricted search may vary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from experiments.studies.audit.actions import _positions, _split_plan, move_split
from experiments.studies.audit.world import ActionRefused
from market.accounts import ACTIVE
from market.errors import InputError, require
from market.exchange import Exchange

#: The coordinates of a strategy vector, in order.
COORDS = ("lead", "exit", "reset", "reset_mode", "split", "split_share", "split_equity", "margin")

#: The moves a search may vary, and the coordinates each one owns.
MOVES: dict[str, tuple[str, ...]] = {
    "timing": ("lead",),
    "exit": ("exit",),
    "reset": ("reset", "reset_mode"),
    "split": ("split", "split_share", "split_equity"),
    "margin": ("margin",),
}

#: Where each coordinate sits when its move is not searched (every move off).
IDLE = {
    "lead": 0.0,
    "exit": 0.0,
    "reset": 0.0,
    "reset_mode": 0.0,
    "split": 0.0,
    "split_share": 0.5,
    "split_equity": 0.5,
    "margin": 0.5,
}

#: Width of the "do nothing" zone of the exit, reset and margin coordinates.
DEAD = 0.1


@dataclass(frozen=True)
class Strategy:
    """One point of the strategy space (see the module docstring for each field)."""

    lead: int = 0
    exit: float = 0.0
    reset: float = 0.0
    reset_mode: str = "book"
    split: int = 1
    split_share: float = 0.5
    split_equity: float = 0.5
    margin: float = 0.0

    def __post_init__(self) -> None:
        require(isinstance(self.lead, int) and self.lead >= 0, "strategy.lead", "an integer >= 0")
        require(0 <= self.exit <= 1, "strategy.exit", "in [0, 1]", self.exit)
        require(0 <= self.reset <= 1, "strategy.reset", "in [0, 1]", self.reset)
        require(
            self.reset_mode in ("book", "cross"),
            "strategy.reset_mode",
            "book or cross",
            self.reset_mode,
        )
        require(
            isinstance(self.split, int) and self.split >= 1, "strategy.split", "an integer >= 1"
        )
        require(0 < self.split_share < 1, "strategy.split_share", "in (0, 1)", self.split_share)
        require(0 < self.split_equity < 1, "strategy.split_equity", "in (0, 1)")
        require(self.margin > -1, "strategy.margin", "> -1 (a multiple of equity)", self.margin)

    @property
    def idle(self) -> bool:
        """True when the strategy does nothing (the honest twin)."""
        return self.exit == 0 and self.reset == 0 and self.split == 1 and self.margin == 0

    def as_dict(self) -> dict[str, float | int | str]:
        """The fields as a plain dict (for CSV and JSON)."""
        return asdict(self)

    def describe(self) -> str:
        """The strategy in words."""
        if self.idle:
            return "do nothing"
        when = (
            "just before the snapshot"
            if self.lead == 0
            else f"{self.lead} step(s) before the wave (at most the crash's age)"
        )
        parts = []
        if self.exit > 0:
            parts.append(f"close {self.exit:.0%} of the position and reopen it after the wave")
        if self.reset > 0:
            how = "through the book" if self.reset_mode == "book" else "crossed at the mark"
            parts.append(f"close and reopen {self.reset:.0%} of the rest {how} (entry reset)")
        if self.split > 1:
            parts.append(
                f"split over {self.split} accounts, {self.split_share:.0%} of the notional "
                f"and {self.split_equity:.0%} of the equity left in the first"
            )
        if self.margin > 0:
            parts.append(f"deposit {self.margin:.0%} of equity, withdraw it after the wave")
        elif self.margin < 0:
            parts.append(f"withdraw {-self.margin:.0%} of equity, return it after the wave")
        return f"{when}: " + "; ".join(parts)


def _dead(x: float) -> float:
    """[0, 1] -> [0, 1] with [0, DEAD] mapped to 0."""
    return float(np.clip((x - DEAD) / (1 - DEAD), 0.0, 1.0))


def decode(x: np.ndarray, *, max_lead: int = 2, max_split: int = 4) -> Strategy:
    """The strategy at ``x`` in ``[0, 1]^8`` (coordinates in :data:`COORDS` order; clipped).

    ``margin`` maps ``[0, 0.5 - DEAD/2]`` onto withdrawals of 90 % to 0 % of equity, the middle
    ``DEAD`` to nothing, and ``[0.5 + DEAD/2, 1]`` onto deposits of 0 to 2x equity.
    """
    v = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    if v.shape != (len(COORDS),):
        raise InputError("strategy vector", f"{len(COORDS)} numbers in [0, 1]", v.shape)
    d = dict(zip(COORDS, v.tolist(), strict=True))
    lo, hi = 0.5 - DEAD / 2, 0.5 + DEAD / 2
    m = d["margin"]
    margin = -0.9 * (lo - m) / lo if m < lo else (2.0 * (m - hi) / (1 - hi) if m > hi else 0.0)
    return Strategy(
        lead=min(int(d["lead"] * (max_lead + 1)), max_lead),
        exit=_dead(d["exit"]),
        reset=_dead(d["reset"]),
        reset_mode="cross" if d["reset_mode"] >= 0.5 else "book",
        split=min(1 + int(d["split"] * max_split), max_split),
        split_share=min(0.05 + 0.9 * d["split_share"], 0.95),
        split_equity=min(0.05 + 0.9 * d["split_equity"], 0.95),
        margin=float(margin),
    )


def moves_mask(moves: tuple[str, ...]) -> np.ndarray:
    """Which coordinates the named moves own (a boolean mask in :data:`COORDS` order)."""
    for m in moves:
        require(m in MOVES, "--moves", f"comma-separated names from: {', '.join(MOVES)}", m)
    owned = {c for m in moves for c in MOVES[m]}
    return np.array([c in owned for c in COORDS])


def embed(free: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A full vector: ``free`` on the searched coordinates, :data:`IDLE` elsewhere."""
    x = np.array([IDLE[c] for c in COORDS])
    x[mask] = free
    return x


# --------------------------------------------------------------------------- applying it
@dataclass
class Applied:
    """What applying a strategy left to do after the wave, and what it moved in and out.

    Attributes:
        accounts: the owner's accounts (the original first).
        reopen: signed lots per market to reopen on the original account after the wave.
        margin_in: collateral deposited (> 0) or withdrawn (< 0) before the snapshot.
    """

    accounts: np.ndarray
    reopen: list[tuple[int, int]]
    margin_in: float


def _share(q: int, f: float) -> int:
    """Whole lots of ``f`` of a position of ``q`` lots (rounded, sign kept)."""
    return int(math.copysign(round(abs(q) * f), q))


def apply(ex: Exchange, target: int, s: Strategy) -> Applied:
    """Carry out the pre-snapshot part of ``s`` for ``target`` (exit, reset, split, margin).

    Raises:
        ActionRefused: where the exchange refuses a leg that the strategy needs (a reopening
            leg or a split past initial margin); the caller discards the world.
    """
    reopen: list[tuple[int, int]] = []
    if s.exit > 0:
        for k, q in _positions(ex, target):
            dq = _share(q, s.exit)
            if dq and ex.trade(target, k, -dq)[0]:
                reopen.append((k, dq))
    if s.reset > 0:
        for k, q in _positions(ex, target):
            dq = _share(q, s.reset)
            if not dq:
                continue
            px = float(ex.marks[k]) if s.reset_mode == "cross" else None
            ex.trade(target, k, -dq, price=px)
            if not ex.trade(target, k, dq, price=px)[0]:
                raise ActionRefused(f"reset reopen of {dq} lots refused for account {target}")
    accounts = np.array([target], dtype=np.int64)
    if s.split > 1 and _positions(ex, target):
        eq = float(ex.equity()[target])
        if eq <= 0:
            raise ActionRefused(f"account {target} has no positive equity to split")
        k = s.split
        frac = np.append([s.split_share], np.full(k - 1, (1 - s.split_share) / (k - 1)))
        equity = eq * np.append([s.split_equity], np.full(k - 1, (1 - s.split_equity) / (k - 1)))
        lots, cash = _split_plan(ex, target, frac, equity)
        new = move_split(ex, target, lots, cash)
        accounts = np.append(accounts, new)
    margin_in = 0.0
    if s.margin != 0:
        eq = ex.equity(accounts)
        if s.margin > 0:
            amount = s.margin * np.maximum(eq, 0.0)
            rows = accounts[amount > 0]
            if rows.size:
                ex.deposit(rows, amount[amount > 0])
                margin_in = float(amount.sum())
        else:
            free = ex.free_collateral(accounts)
            amount = np.minimum(-s.margin * np.maximum(eq, 0.0), free)
            rows = accounts[amount > 0]
            if rows.size:
                ex0 = ex.external
                ex.withdraw(rows, amount[amount > 0])
                margin_in = ex.external - ex0
    return Applied(accounts, reopen, margin_in)


def _halved(lots: int) -> int:
    """Half of a signed lot count, rounded toward zero (``-1 // 2`` is -1: a short order
    halved by floor division never reaches 0)."""
    return -(-lots // 2) if lots < 0 else lots // 2


def after_wave(ex: Exchange, target: int, done: Applied) -> None:
    """Undo what ``s`` only needed for the wave: reopen the exit, reverse the margin move.

    The exit reopens as much as initial margin allows (lots the exchange refuses stay closed,
    as they would for anyone); a deposit is withdrawn up to the free collateral and a
    withdrawal is returned in full, spread over the owner's accounts by equity.
    """
    for k, dq in done.reopen:
        if not (ex.acc.flags[target] & ACTIVE):
            break
        if not ex.trade(target, k, dq)[0]:  # as much as margin allows, halving the order
            q = _halved(dq)
            while q and not ex.trade(target, k, q)[0]:
                q = _halved(q)
    if done.margin_in > 0:
        free = ex.free_collateral(done.accounts)
        share = done.margin_in * _weights(ex, done.accounts)  # a withdrawal of 0 is skipped
        take = np.minimum(share, free)
        rows = done.accounts[take > 0]
        if rows.size:
            ex.withdraw(rows, take[take > 0])
    elif done.margin_in < 0:
        active = done.accounts[(ex.acc.flags[done.accounts] & ACTIVE) != 0]
        if active.size:
            back = -done.margin_in * _weights(ex, active)
            ex.deposit(active[back > 0], back[back > 0])


def _weights(ex: Exchange, rows: np.ndarray) -> np.ndarray:
    """Shares of ``rows`` by positive equity (equal when none has any)."""
    eq = np.maximum(ex.equity(rows), 0.0)
    total = float(eq.sum())
    return eq / total if total > 0 else np.full(rows.size, 1.0 / max(rows.size, 1))
