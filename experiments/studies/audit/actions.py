"""The cosmetic actions a gaming account may take before a wave, and their plans."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.studies.audit.world import (
    ActionRefused,
    AuditConfig,
)
from market import margin as mg
from market.errors import require
from market.exchange import Exchange


# --------------------------------------------------------------------------- actions
def _positions(ex: Exchange, target: int) -> list[tuple[int, int]]:
    """(market, signed lots) of every open position of ``target``."""
    _, ks, qs, _ = ex.acc.positions.entries(np.array([target]))
    return [(int(k), int(q)) for k, q in zip(ks, qs, strict=True)]


def apply_close_reopen(ex: Exchange, target: int, rng: np.random.Generator | None = None) -> None:
    """Close every position of ``target`` through the book, then reopen it through the book.

    Both legs walk the book (spread and impact are paid) and pay the taker fee; the position
    ends the same size with its entry reset near the mark (unrealised PnL realised into cash and
    the gains ledger).

    Raises:
        ActionRefused: if the exchange refuses the reopening leg (initial margin).
    """
    for k, q in _positions(ex, target):
        ex.trade(target, k, -q)
        if not ex.trade(target, k, q)[0]:
            raise ActionRefused(f"reopen of {q} lots refused for account {target}")


def apply_wash_trade(ex: Exchange, target: int, rng: np.random.Generator | None = None) -> None:
    """Cross the position with a sibling at the mark: entry reset, no book walk, fees paid.

    Modelled as two fee-paying fills of the target at the mark (``trade(price=mark)``): sell
    the position, buy it back.  The book stands in for the owner's sibling account, whose two
    legs cancel (same size, same price), so the group's net position, the open interest and
    the book's inventory are unchanged; the sibling's own fees are not charged (they would
    only add to the action's cost, never to its ADL burden).

    Raises:
        ActionRefused: if the exchange refuses the buy-back leg (initial margin).
    """
    for k, q in _positions(ex, target):
        mark = float(ex.marks[k])
        ex.trade(target, k, -q, price=mark)
        if not ex.trade(target, k, q, price=mark)[0]:
            raise ActionRefused(f"wash buy-back of {q} lots refused for account {target}")


def apply_margin_topup(
    ex: Exchange,
    target: int,
    rng: np.random.Generator | None = None,
    *,
    amount: float | None = None,
    fraction: float = 1.0,
) -> None:
    """Deposit extra collateral before the snapshot (``amount``, or ``fraction`` x equity).

    Raises:
        ActionRefused: if the account has no positive equity to scale the deposit by.
    """
    if amount is None:
        amount = fraction * float(ex.equity()[target])
    if not amount > 0:
        raise ActionRefused(f"no positive top-up for account {target}")
    ex.deposit(target, amount)


def undo_margin_topup(
    ex: Exchange,
    target: int,
    *,
    amount: float | None = None,
    fraction: float = 1.0,
) -> None:
    """After the wave: withdraw the top-up (as much of it as free collateral allows)."""
    if amount is None or amount <= 0:
        return
    free = float(ex.free_collateral(np.array([target]))[0])
    take = min(float(amount), free)
    if take > 0:
        ex.withdraw(target, take)


def _split_plan(
    ex: Exchange, target: int, fractions: np.ndarray, equity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lots (k, K) and cash (k,) per account for notional shares and equity targets.

    Lots are the shares of each position rounded by largest remainder (ties to the lower row),
    so they add up to the position.  Cash is the equity target less the unrealised PnL the lots
    carry, floored at zero and rescaled so that it adds up to the target's cash.
    """
    pos_row, entry_row = ex.acc.positions.dense(ex.acc.n, np.array([target]))
    pos = pos_row[0]
    want = np.abs(pos)[None, :] * fractions[:, None]
    lots = np.floor(want + 1e-9).astype(np.int64)
    left = np.abs(pos) - lots.sum(axis=0)
    rank = np.argsort(-(want - lots), axis=0, kind="stable")
    extra = (np.arange(lots.shape[0])[:, None] < left[None, :]).astype(np.int64)
    np.put_along_axis(lots, rank, np.take_along_axis(lots, rank, axis=0) + extra, axis=0)
    signed = lots * np.sign(pos)[None, :]
    up = mg.upnl(signed, np.broadcast_to(entry_row[0], signed.shape), ex.marks, ex.lot)
    cash = np.maximum(equity - up.sum(axis=1), 0.0)
    total = float(ex.acc.cash[target])
    s = float(cash.sum())
    cash = cash * (total / s) if s > 0 else np.full(cash.size, total / cash.size)
    return signed, cash


def sybil_candidates(ex: Exchange, target: int, cfg: AuditConfig) -> list[dict[str, Any]]:
    """The split variants the adversary tries (each a keyword set for :func:`apply_sybil_split`).

    * ``equal``: k accounts with equal shares of the lots and the cash;
    * ``sacrificial`` at each safe level l: k - 1 safe accounts at l x the target's leverage
      share the bulk of the position, one decoy account at ``decoy_leverage`` of the venue
      maximum takes the rest;
    * ``concentrated`` at each level: the mirror: the bulk of the position and its profit in
      one safe account at l x leverage (the least ranked under leverage-based scores), the rest
      spread over k - 1 decoys.

    Decoys run at ``decoy_leverage`` of the venue maximum, or lower when the unrealised PnL
    their lots carry already makes up more equity than that (a split moves lots at the entry
    price, profit included, and cash cannot go negative); the safe share is the largest the
    owner's equity allows (see ``_plan_for``).
    """
    k = cfg.sybil_accounts
    out: list[dict[str, Any]] = [{"shape": "equal", "accounts": k}]
    eq = float(ex.equity()[target])
    nt = float(ex.account_notional(np.array([target]))[0])
    if eq <= 0 or nt <= 0:
        return out
    lev = nt / eq
    l_max = cfg.decoy_leverage / max(s.initial_margin for s in ex.specs)
    if lev >= l_max:
        return out
    for level in cfg.safe_levels:
        for shape in ("sacrificial", "concentrated"):
            out.append({"shape": shape, "accounts": k, "level": float(level)})
    return out


def _plan_for(
    ex: Exchange, target: int, shape: str, k: int, level: float | None, l_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Notional shares and equity targets per account (row 0 = the target) of one variant.

    Safe accounts run at ``level`` x the target's leverage ``L``; decoys hold the rest at the
    highest leverage they can: ``l_max``, or less when the unrealised PnL their lots carry
    already exceeds ``notional / l_max`` (cash cannot go below zero).  With ``m`` the decoys'
    equity per dollar of notional share, ``max(N / l_max, u)``, the safe share is the largest
    the owner's equity allows: ``s = (E - m) / (N / (level L) - m)``.
    """
    eq = float(ex.equity()[target])
    if shape == "equal":
        return np.full(k, 1.0 / k), np.full(k, eq / k)
    nt = float(ex.account_notional(np.array([target]))[0])
    up = float(ex.account_upnl(np.array([target]))[0])
    lv = float(level) * nt / eq
    m = max(nt / l_max, up, 0.0)
    s = float(np.clip((eq - m) / (nt / lv - m), 0.0, 1.0)) if nt / lv > m else 0.0
    e_safe = s * nt / lv
    e_decoy = max(eq - e_safe, 0.0)
    if shape == "sacrificial":  # k - 1 safe (the target among them), one decoy
        frac = np.append(np.full(k - 1, s / (k - 1)), 1.0 - s)
        equity = np.append(np.full(k - 1, e_safe / (k - 1)), e_decoy)
    else:  # one safe (the target), k - 1 decoys
        frac = np.append([s], np.full(k - 1, (1.0 - s) / (k - 1)))
        equity = np.append([e_safe], np.full(k - 1, e_decoy / (k - 1)))
    return frac, equity


def _move_in_chunks(
    ex: Exchange, target: int, new: np.ndarray, lots: np.ndarray, cash: np.ndarray, chunks: int
) -> bool:
    """Move lots and cash from ``target`` to ``new`` accounts in ``chunks`` interleaved rounds.

    Margin is linear in (cash, lots) at fixed prices, so when the start and the end both meet
    initial margin, small enough rounds keep every intermediate state within it.  A loop over
    the few accounts of one owner (not over the population).
    """
    for m in range(chunks):
        for j, acc in enumerate(new, start=1):
            c = cash[j] * (m + 1) / chunks - cash[j] * m / chunks
            if c > 0 and not ex.transfer(target, int(acc), float(c)):
                return False
            for k in range(ex.K):
                q = int(abs(lots[j, k]))
                dq = (q * (m + 1)) // chunks - (q * m) // chunks
                if dq > 0 and not ex.move_position(target, int(acc), k, dq):
                    return False
    return True


def apply_sybil_split(
    ex: Exchange,
    target: int,
    rng: np.random.Generator | None = None,
    *,
    shape: str = "equal",
    accounts: int = 4,
    level: float | None = None,
    decoy_leverage: float = 0.8,
) -> None:
    """Split ``target``'s position and cash over ``accounts`` accounts of its owner (group).

    Opens ``accounts - 1`` accounts in the target's group (``acc.group``, same ``kind``), then
    moves lots with :meth:`Exchange.move_position` (at the entry price: the split looks as if it
    had always existed) and cash with :meth:`Exchange.transfer`, following the variant's plan
    (see :func:`sybil_candidates`).  The group's total position and cash are unchanged.

    Raises:
        ActionRefused: if no round count keeps every move within initial margin.
    """
    require(
        shape in ("equal", "sacrificial", "concentrated"),
        "sybil.shape",
        "one of equal, sacrificial, concentrated",
        shape,
    )
    require(
        isinstance(accounts, int | np.integer) and accounts >= 2,
        "sybil.accounts",
        "an integer >= 2",
        accounts,
    )
    require(shape == "equal" or level is not None, "sybil.level", "given unless shape='equal'")
    if not ex.acc.positions.entries(np.array([target]))[0].size:
        raise ActionRefused(f"account {target} holds no position to split")
    eq = float(ex.equity()[target])
    if eq <= 0:
        raise ActionRefused(f"account {target} has no positive equity to split")
    l_max = decoy_leverage / max(s.initial_margin for s in ex.specs)
    frac, equity = _plan_for(ex, target, shape, int(accounts), level, l_max)
    lots, cash = _split_plan(ex, target, frac, equity)
    move_split(ex, target, lots, cash)


def move_split(ex: Exchange, target: int, lots: np.ndarray, cash: np.ndarray) -> np.ndarray:
    """Open ``len(cash) - 1`` accounts in ``target``'s group and move a split plan into them.

    ``lots`` (k, K) and ``cash`` (k,) are the plan of :func:`_split_plan` (row 0 stays with
    the target).  The moves are tried in 1, 8 and 64 interleaved rounds on a copy first, so a
    refused plan changes nothing.  Returns the new accounts.

    Raises:
        ActionRefused: if no round count keeps every move within initial margin.
    """
    group = int(ex.acc.group[target])
    kind = int(ex.acc.kind[target])
    n_new = int(cash.size) - 1
    for chunks in (1, 8, 64):
        trial = ex.clone(with_log=False)
        new = trial.open_accounts(n_new, 0.0, kind=kind, group=np.array([group]))
        if _move_in_chunks(trial, target, new, lots, cash, chunks):
            new = ex.open_accounts(n_new, 0.0, kind=kind, group=np.array([group]))
            if not _move_in_chunks(ex, target, new, lots, cash, chunks):  # pragma: no cover
                raise ActionRefused("split refused on replay")  # deterministic: cannot happen
            return new
    raise ActionRefused(f"split of account {target} refused by initial margin")


@dataclass(frozen=True)
class Action:
    """A cosmetic action of the audit.

    Attributes:
        name: registry name.
        description: one line for the report.
        apply: ``apply(exchange, target, rng, **params)``, before the snapshot.
        candidates: ``candidates(exchange, target, cfg) -> [params, ...]``: the variants the
            adversary tries (the one with the lowest group burden is kept).
        after: optional ``after(exchange, target, **params)`` run after the wave step.
    """

    name: str
    description: str
    apply: Callable[..., None]
    candidates: Callable[[Exchange, int, AuditConfig], list[dict[str, Any]]]
    after: Callable[..., None] | None = None


def _one(_ex: Exchange, _target: int, _cfg: AuditConfig) -> list[dict[str, Any]]:
    return [{}]


def _topup_params(ex: Exchange, target: int, cfg: AuditConfig) -> list[dict[str, Any]]:
    return [{"amount": cfg.topup_fraction * max(float(ex.equity()[target]), 0.0)}]


def _sybil_params(ex: Exchange, target: int, cfg: AuditConfig) -> list[dict[str, Any]]:
    return [{**c, "decoy_leverage": cfg.decoy_leverage} for c in sybil_candidates(ex, target, cfg)]


#: The actions, by registry name, in report order.
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "close_reopen",
            "close the position through the book and reopen it (fees and spread paid)",
            apply_close_reopen,
            _one,
        ),
        Action(
            "sybil_split",
            "split the position and cash over k accounts of one owner (adversarial split)",
            apply_sybil_split,
            _sybil_params,
        ),
        Action(
            "margin_topup",
            "deposit collateral before the snapshot, withdraw it after the wave",
            apply_margin_topup,
            _topup_params,
            undo_margin_topup,
        ),
        Action(
            "wash_trade",
            "cross the position with a sibling at the mark (entry reset, fees paid)",
            apply_wash_trade,
            _one,
        ),
    )
}

#: Action names in report order.
ACTION_NAMES = tuple(ACTIONS)
