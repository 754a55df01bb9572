"""The gameability audit behind ``adlgame audit``.

For one ADL policy and one cosmetic action, the audit asks: how much of its ADL burden does an
account shed by taking the action just before the ranking snapshot, compared with an honest
twin holding the same economic exposure at the same instant?

Method (paired worlds, common random numbers):

1. A world per seed: an :class:`~market.exchange.Exchange` with a synthetic population
   (:func:`market.population.seed_population`; the top ``whale_share`` of accounts by notional
   are labelled whales, the rest passive, in ``exchange.acc.kind``), an insurance fund too
   small for the crash, and a scripted crash (:func:`market.prices.crash_path`).  The world is
   stepped without an ADL policy up to the step *before* the first step whose deficit outruns
   the backstop (found by stepping a copy one step ahead): that is the state ``pre`` just before
   the first ADL wave.  Nothing before the first wave depends on the ADL rule, so every policy
   starts from the same ``pre``.
2. For each policy: the honest world ``H`` is ``pre`` with the policy, stepped through the same
   ``horizon`` marks (the wave step, and more when ``horizon > 1``).  ``m`` targets are drawn
   (from the seed's ``target`` stream) among the accounts that paid ADL in ``H``.
3. For each target and action: the gaming world ``G`` is a fresh copy of ``pre`` with the
   policy, the target takes the action, and ``G`` steps through the same marks.  The action is
   the only difference between ``H`` and ``G``.  An action with several variants (the Sybil
   split) is applied for every variant on its own copy and the adversary keeps the variant
   with the lowest group burden, judged ex ante on rehearsal paths (the crash script with
   fresh noise): an adversary who picked on the realised path would also harvest lot-rounding
   luck that nobody can know before the snapshot (``rehearsals=0`` gives that clairvoyant
   adversary).  A gaming account may also do nothing, and does unless acting lowers its
   burden on the rehearsals (closing and reopening a position that was under water raises a
   score built on entry price); ``G_forced`` reports the always-act measure beside ``G``.
4. ``burden`` is what the target's owner (its whole group, for Sybil splits) paid in ADL
   haircuts over the horizon (``log.adl``).  ``G_target = (b_H - b_G) / b_H``; a seed's ``G``
   is the burden-weighted mean over its targets, ``sum(b_H - b_G) / sum(b_H)`` (the plain
   mean is reported as ``G_unweighted``: a target paying one lot has a G dominated by lot
   granularity); the table reports the mean over seeds and an interval that keeps G <= 1
   (:func:`experiments.metrics.confidence_interval`).  The action's own cost (fees, spread,
   impact, as a share of the honest burden) is subtracted into ``G_net = G - cost``, and the
   verdict "pays" / "does not pay" (:func:`reading`) is decided on ``G_net``: shedding a
   burden by paying more than it in fees is not gaming that pays.
5. Where the shed burden lands: for every other account, ``b_G,i - b_H,i``, summed by agent
   type, plus the change in residual bad debt and in lot-rounding overshoot (which goes to
   the fund), all as fractions of the target's honest burden, so that
   ``G = sum(shift_*)`` (``shift_other`` holds what the horizon's other effects, such as a
   changed deficit, leave over).

Every random number comes from one :class:`numpy.random.SeedSequence` per seed, spawned into
named streams (population, prices, target); seeds are independent, so the rows are the same
whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from agents.base import PASSIVE, TYPE_NAMES, WHALE
from experiments.game.scenario import Scenario
from experiments.metrics import MIN_INFORMATIVE_N, UNBOUNDED, confidence_interval
from experiments.studies.experiment import (
    Experiment,
    check_seeds,
)
from experiments.studies.report import (
    FigureWriter,
    seed_text,
)
from market import margin as mg
from market.adl import POLICIES, Eligibility, get_policy
from market.adl.base import ADLPolicy
from market.adl.eligibility import CAP_RULES
from market.errors import require
from market.exchange import BackstopConfig, Exchange
from market.population import PopulationSpec, seed_population
from market.prices import crash_path
from market.spec import MarketSpec

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "COST_NOISE",
    "CSV_COLUMNS",
    "G_RANGE",
    "READINGS",
    "SHIFT_TYPES",
    "Action",
    "ActionRefused",
    "AuditConfig",
    "AuditResult",
    "GamedRun",
    "RunOutcome",
    "World",
    "apply_close_reopen",
    "apply_margin_topup",
    "apply_sybil_split",
    "apply_wash_trade",
    "audit_policies",
    "audit_seed",
    "build_world",
    "config_dict",
    "default_policies",
    "eligibility_for",
    "format_markdown",
    "gamed_run",
    "honest_run",
    "pair_outcome",
    "parse_names",
    "reading",
    "run_audit",
    "run_world",
    "summarise",
    "sybil_candidates",
    "undo_margin_topup",
    "write_report",
]

#: The verdicts of :func:`reading`.
READINGS = ("pays", "does not pay", "inconclusive")

#: Names of the agent types used for the ``shift_<type>`` columns, in code order.
SHIFT_TYPES = tuple(TYPE_NAMES[c] for c in sorted(TYPE_NAMES))


class ActionRefused(RuntimeError):
    """The exchange refused part of an action (margin); the target is skipped for it."""


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit depends on (with the seeds, it fixes every number).

    Attributes:
        accounts: trader accounts in each synthetic world.
        whale_share: share of accounts, largest by notional, labelled whales.
        mark: starting mark price.
        lot_size: base units per lot.
        depth: book depth of the market (dollars at which the marginal impact is 1 %).
        fund_per_account: insurance fund capital per trader account, dollars (too small for
            the crash on purpose; the fund scales with the population).
        drop: fall of the crash, in (0, 1).
        crash_steps: steps the fall takes.
        noise: log noise of the crash path (drawn from the seed's price stream).
        horizon: steps measured from the first ADL wave (1 = the wave step only).
        targets: targets per seed and policy (fewer when fewer accounts pay).
        sybil_accounts: accounts of a Sybil owner after the split (k >= 2).
        safe_levels: leverage of the safe accounts of a Sybil split, as fractions of the
            target's leverage; one candidate split per level and shape.
        decoy_leverage: leverage of the sacrificial (decoy) accounts as a fraction of the
            venue maximum ``1 / initial_margin``.
        topup_fraction: the margin top-up deposits this multiple of the target's equity.
        rehearsals: how the adversary picks among an action's variants.  ``R >= 1``: ex ante,
            by the mean group burden over ``R`` rehearsal paths (the crash script with fresh
            noise drawn from the target stream: the adversary knows the script and the noise
            level, not the realisation); ``0``: ex post, by the burden on the realised path
            (a clairvoyant adversary, who also harvests lot-rounding luck).
        abstain: the adversary may also do nothing, and does unless acting lowers its
            burden on the same rehearsals (a gaming account does not take an action it expects
            to raise its burden); the always-act measure is reported as ``G_forced``.
        cap: eligibility cap rule, or ``"auto"``: the policy's declared ``default_cap``
            (``"gains"`` for the seniority ledger, ``"pnl"`` profits only for most rules).
        level: confidence level of the interval over seeds.
        threshold: materiality threshold of :func:`reading` (share of the honest burden).
        first_seed: seeds are ``first_seed, first_seed + 1, ...``.
    """

    accounts: int = 3000
    whale_share: float = 0.02
    mark: float = 100.0
    lot_size: float = 0.1
    depth: float = 5e6
    fund_per_account: float = 3.0
    drop: float = 0.3
    crash_steps: int = 10
    noise: float = 0.003
    horizon: int = 1
    targets: int = 5
    sybil_accounts: int = 4
    safe_levels: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    decoy_leverage: float = 0.8
    topup_fraction: float = 1.0
    rehearsals: int = 3
    abstain: bool = True
    cap: str = "auto"
    level: float = 0.95
    threshold: float = 0.05
    first_seed: int = 1

    def __post_init__(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        require(
            is_int(self.accounts) and self.accounts >= 10,
            "audit.accounts",
            "an integer >= 10",
            self.accounts,
        )
        require(0 <= self.whale_share < 1, "audit.whale_share", "in [0, 1)", self.whale_share)
        require(self.mark > 0, "audit.mark", "> 0", self.mark)
        require(self.lot_size > 0, "audit.lot_size", "> 0", self.lot_size)
        require(self.depth > 0, "audit.depth", "> 0", self.depth)
        require(
            self.fund_per_account >= 0,
            "audit.fund_per_account",
            ">= 0",
            self.fund_per_account,
        )
        require(0 < self.drop < 1, "audit.drop", "in (0, 1)", self.drop)
        require(
            is_int(self.crash_steps) and self.crash_steps >= 1,
            "audit.crash_steps",
            "an integer >= 1",
            self.crash_steps,
        )
        require(self.noise >= 0, "audit.noise", ">= 0", self.noise)
        require(
            is_int(self.horizon) and self.horizon >= 1,
            "audit.horizon",
            "an integer >= 1",
            self.horizon,
        )
        require(
            is_int(self.targets) and self.targets >= 1,
            "audit.targets",
            "an integer >= 1",
            self.targets,
        )
        require(
            is_int(self.sybil_accounts) and self.sybil_accounts >= 2,
            "audit.sybil_accounts",
            "an integer >= 2",
            self.sybil_accounts,
        )
        require(
            len(self.safe_levels) >= 1 and all(0 < x < 1 for x in self.safe_levels),
            "audit.safe_levels",
            "one or more fractions in (0, 1)",
            self.safe_levels,
        )
        require(
            0 < self.decoy_leverage < 1, "audit.decoy_leverage", "in (0, 1)", self.decoy_leverage
        )
        require(self.topup_fraction > 0, "audit.topup_fraction", "> 0", self.topup_fraction)
        require(
            is_int(self.rehearsals) and self.rehearsals >= 0,
            "audit.rehearsals",
            "an integer >= 0",
            self.rehearsals,
        )
        require(isinstance(self.abstain, bool), "audit.abstain", "True or False", self.abstain)
        require(
            self.cap == "auto" or self.cap in CAP_RULES,
            "audit.cap",
            f"auto or one of {', '.join(CAP_RULES)}",
            self.cap,
        )
        require(0 < self.level < 1, "audit.level", "in (0, 1)", self.level)
        require(0 <= self.threshold < 1, "audit.threshold", "in [0, 1)", self.threshold)
        require(is_int(self.first_seed) and self.first_seed >= 0, "audit.first_seed", ">= 0")

    def seeds(self, n: int) -> list[int]:
        """The ``n`` seeds of an audit."""
        return list(range(self.first_seed, self.first_seed + int(n)))


def default_policies() -> list[str]:
    """Every registered policy except the exact-small-only ones (too slow for these worlds)."""
    return [name for name, cls in POLICIES.items() if not getattr(cls, "exact_small_only", False)]


def eligibility_for(policy: ADLPolicy, cap: str = "auto") -> Eligibility:
    """The eligibility a policy is audited under (see :attr:`AuditConfig.cap`)."""
    return Eligibility(cap=policy.default_cap if cap == "auto" else cap)


def parse_names(text: str, allowed: Sequence[str], flag: str, every: Sequence[str]) -> list[str]:
    """Comma-separated names or ``all`` (meaning ``every``), checked against ``allowed``.

    Raises:
        InputError: naming ``flag`` and the allowed values, for an empty list or an unknown name.
    """
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    allowed_text = f"all or comma-separated names from: {', '.join(allowed)}"
    require(bool(names), flag, allowed_text, text)
    if names == ["all"]:
        return list(every)
    for name in names:
        require(name in allowed, flag, allowed_text, name)
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- the world
@dataclass
class World:
    """One seed's world just before the first ADL wave.

    Attributes:
        seed: the seed.
        pre: the exchange (no ADL policy) after the step before the first wave; None if the
            crash never outran the backstop.
        marks: the marks of the measured steps, ``(horizon, K)``.
        script: the crash script (without noise) over the same steps, ``(horizon, K)``.
        wave_step: the step number of the first wave.
        target_seq: the seed's target stream (spawned per policy).
    """

    seed: int
    pre: Exchange | None
    marks: np.ndarray
    script: np.ndarray
    wave_step: int
    target_seq: np.random.SeedSequence


def _label_kinds(ex: Exchange, rows: np.ndarray, whale_share: float) -> None:
    """Label ``rows`` whale (top ``whale_share`` by notional) or passive in ``acc.kind``."""
    nt = ex.notional()[rows].sum(axis=1)
    n_whale = math.floor(whale_share * rows.size)
    kind = np.full(rows.size, PASSIVE, dtype=np.int16)
    if n_whale > 0:
        order = np.lexsort((rows, -nt))  # largest first, ties by account id
        kind[order[:n_whale]] = WHALE
    ex.acc.kind[rows] = kind


def build_world(cfg: AuditConfig, seed: int) -> World:
    """The seed's world, stepped without ADL up to the step before the first ADL wave."""
    root = np.random.SeedSequence(int(seed))
    pop_ss, price_ss, target_ss = root.spawn(3)
    spec = MarketSpec(name="M0", lot_size=cfg.lot_size, depth=cfg.depth)
    ex = Exchange(
        (spec,),
        cfg.mark,
        backstop=BackstopConfig(kind="fund", capital=cfg.fund_per_account * cfg.accounts),
        capacity=cfg.accounts + 64,
    )
    rows = seed_population(ex, PopulationSpec(accounts=cfg.accounts), np.random.default_rng(pop_ss))
    _label_kinds(ex, rows, cfg.whale_share)
    steps = cfg.crash_steps + cfg.horizon
    shape = {"drop": cfg.drop, "start": 0, "duration": cfg.crash_steps}
    path = crash_path(
        cfg.mark, steps, rng=np.random.default_rng(price_ss), noise=cfg.noise, **shape
    )
    script = crash_path(cfg.mark, steps, **shape)
    for t in range(1, cfg.crash_steps + 1):
        ahead = ex.clone()
        rep = ahead.step(path[t])
        if rep.deficit - rep.backstop_used > 1e-9 * max(1.0, rep.deficit):
            window = slice(t, t + cfg.horizon)
            return World(int(seed), ex, path[window].copy(), script[window].copy(), t, target_ss)
        ex = ahead
    empty = np.zeros((0, 1))
    return World(int(seed), None, empty, empty, -1, target_ss)


# --------------------------------------------------------------------------- actions
def _positions(ex: Exchange, target: int) -> list[tuple[int, int]]:
    """(market, signed lots) of every open position of ``target``."""
    return [(k, int(ex.acc.pos[target, k])) for k in range(ex.K) if ex.acc.pos[target, k] != 0]


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
    pos = ex.acc.pos[target]
    want = np.abs(pos)[None, :] * fractions[:, None]
    lots = np.floor(want + 1e-9).astype(np.int64)
    left = np.abs(pos) - lots.sum(axis=0)
    rank = np.argsort(-(want - lots), axis=0, kind="stable")
    extra = (np.arange(lots.shape[0])[:, None] < left[None, :]).astype(np.int64)
    np.put_along_axis(lots, rank, np.take_along_axis(lots, rank, axis=0) + extra, axis=0)
    signed = lots * np.sign(pos)[None, :]
    up = mg.upnl(signed, np.broadcast_to(ex.acc.entry[target], signed.shape), ex.marks, ex.lot)
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
    nt = float(ex.notional()[target].sum())
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
    nt = float(ex.notional()[target].sum())
    up = float(ex.upnl()[target].sum())
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
    if not (ex.acc.pos[target] != 0).any():
        raise ActionRefused(f"account {target} holds no position to split")
    eq = float(ex.equity()[target])
    if eq <= 0:
        raise ActionRefused(f"account {target} has no positive equity to split")
    l_max = decoy_leverage / max(s.initial_margin for s in ex.specs)
    frac, equity = _plan_for(ex, target, shape, int(accounts), level, l_max)
    lots, cash = _split_plan(ex, target, frac, equity)
    group = int(ex.acc.group[target])
    kind = int(ex.acc.kind[target])
    for chunks in (1, 8, 64):
        trial = ex.clone()
        new = trial.open_accounts(int(accounts) - 1, 0.0, kind=kind, group=np.array([group]))
        if _move_in_chunks(trial, target, new, lots, cash, chunks):
            new = ex.open_accounts(int(accounts) - 1, 0.0, kind=kind, group=np.array([group]))
            if not _move_in_chunks(ex, target, new, lots, cash, chunks):  # pragma: no cover
                raise ActionRefused("split refused on replay")  # deterministic: cannot happen
            return
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


# --------------------------------------------------------------------------- paired runs
@dataclass
class RunOutcome:
    """What one world did over the measured steps.

    Attributes:
        burden: ADL haircut paid per account over the steps, (N,).
        lots: lots force-closed by ADL per account over the steps, (N,).
        residual: bad debt written off over the steps.
        overshoot: lot-rounding overshoot over the steps (paid into the fund).
        kind: agent-type label per account, (N,).
        group: owner id per account, (N,).
        cost: what the acting owner lost to the action itself (fees, spread), dollars.
    """

    burden: np.ndarray
    lots: np.ndarray
    residual: float
    overshoot: float
    kind: np.ndarray
    group: np.ndarray
    cost: float = 0.0


def run_world(
    ex: Exchange,
    marks: np.ndarray,
    *,
    after: Callable[[Exchange], None] | None = None,
    cost: float = 0.0,
) -> RunOutcome:
    """Step ``ex`` through ``marks`` (``after`` runs after the first step); what it paid."""
    start = ex.step_no
    bad0 = ex.bad_debt
    for t, m in enumerate(marks):
        ex.step(m)
        if t == 0 and after is not None:
            after(ex)
    adl = ex.log.adl.to_array()
    adl = adl[adl["step"] > start]
    waves = ex.log.waves.to_array()
    waves = waves[waves["step"] > start]
    burden = np.bincount(adl["account"], weights=adl["haircut"], minlength=ex.n_accounts)
    lots = np.bincount(adl["account"], weights=adl["lots"], minlength=ex.n_accounts)
    return RunOutcome(
        burden=burden.astype(np.float64),
        lots=lots.astype(np.float64),
        residual=float(ex.bad_debt - bad0),
        overshoot=float(waves["overshoot"].sum()),
        kind=ex.acc.kind.copy(),
        group=ex.acc.group.copy(),
        cost=float(cost),
    )


def honest_run(
    pre: Exchange, marks: np.ndarray, policy: ADLPolicy, cap: str = "auto"
) -> RunOutcome:
    """The honest world: ``pre`` under ``policy``, nobody acting, stepped through ``marks``."""
    ex = pre.clone(policy=policy)
    ex.eligibility = eligibility_for(policy, cap)
    return run_world(ex, marks)


def _act(
    pre: Exchange,
    policy: ADLPolicy,
    cap: str,
    target: int,
    action: Action,
    params: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[Exchange, float] | None:
    """A copy of ``pre`` under ``policy`` after the action, and the action's cost to the owner.

    None when the exchange refused the action.  The cost is the owner's (group's) equity lost
    to the action itself, net of deposits and withdrawals: fees, spread and impact.
    """
    ex = pre.clone(policy=policy)
    ex.eligibility = eligibility_for(policy, cap)
    group = int(ex.acc.group[target])
    eq0 = float(ex.equity()[ex.acc.group == group].sum())
    ext0 = ex.external
    try:
        action.apply(ex, target, rng, **params)
    except ActionRefused:
        return None
    cost = eq0 + (ex.external - ext0) - float(ex.equity()[ex.acc.group == group].sum())
    return ex, cost


def _after_hook(action: Action, target: int, params: dict[str, Any]):
    """The action's after-the-wave hook bound to its target and parameters (or None)."""
    if action.after is None:
        return None
    hook = action.after

    def after(e: Exchange) -> None:
        hook(e, target, **params)

    return after


def _group_burden(run: RunOutcome, target: int) -> float:
    return float(run.burden[run.group == int(run.group[target])].sum())


@dataclass
class GamedRun:
    """The gaming world of one target for one action.

    Attributes:
        outcome: what the adversary's choice did on the realised path (the honest world
            itself when it abstained).
        params: the chosen variant's parameters, or None when the adversary abstained.
        variants: how many variants of the action there were.
        forced: what the best acting variant did on the realised path (the always-act
            measure, ``G_forced``).
        forced_params: that variant's parameters.
    """

    outcome: RunOutcome
    params: dict[str, Any] | None
    variants: int
    forced: RunOutcome
    forced_params: dict[str, Any]


def gamed_run(
    world: World,
    policy: ADLPolicy,
    target: int,
    action: Action,
    cfg: AuditConfig,
    rng: np.random.Generator,
) -> GamedRun | None:
    """The gaming world of ``target`` on the realised marks, with the adversary's choice.

    Every variant of the action is applied on its own copy of ``world.pre``.  The adversary
    keeps the variant with the lowest group burden plus what the action costs it (fees,
    spread), and, when ``cfg.abstain``, does nothing unless that variant lowers its burden by
    more than its cost; it judges on ``cfg.rehearsals`` rehearsal paths
    (the crash script with fresh noise), or on the realised path when ``rehearsals == 0`` or
    there is nothing to choose.  Ties go to abstaining, then to the earlier variant.  Returns
    None when the exchange refused every variant.
    """
    pre = world.pre
    assert pre is not None
    variants = action.candidates(pre, target, cfg)
    acted = []
    for params in variants:
        done = _act(pre, policy, cfg.cap, target, action, params, rng)
        if done is not None:
            acted.append((params, *done))
    if not acted:
        return None
    choice = len(acted) > 1 or cfg.abstain
    if not choice or cfg.rehearsals == 0 or cfg.noise == 0:
        paths = [world.marks]
    else:
        eps = rng.standard_normal((cfg.rehearsals, *world.script.shape))
        paths = list(world.script[None] * np.exp(cfg.noise * eps))

    def judge(ex: Exchange, hook, cost: float) -> tuple[float, RunOutcome | None]:
        burdens, real = [], None
        for path in paths:
            run = run_world(ex.clone(), path, after=hook, cost=cost)
            burdens.append(_group_burden(run, target))
            if path is world.marks:
                real = run
        return float(np.mean(burdens)), real

    def tol(b: float) -> float:
        return 1e-9 * max(1.0, abs(b))

    best: tuple[float, int, RunOutcome | None] | None = None
    for v, (params, ex, cost) in enumerate(acted):
        b, real = judge(ex, _after_hook(action, target, params), cost)
        b += cost  # what acting loses: the burden and the action's own cost
        if best is None or b < best[0] - tol(best[0]):
            best = (b, v, real)
    assert best is not None
    b_act, v, forced = best
    params, ex, cost = acted[v]
    if forced is None:
        forced = run_world(
            ex.clone(), world.marks, after=_after_hook(action, target, params), cost=cost
        )
    if cfg.abstain:
        base = pre.clone(policy=policy)
        base.eligibility = eligibility_for(policy, cfg.cap)
        b_none, still = judge(base, None, 0.0)
        if b_none <= b_act + tol(b_none):
            if still is None:
                still = run_world(base, world.marks)
            return GamedRun(still, None, len(variants), forced, params)
    return GamedRun(forced, params, len(variants), forced, params)


def pair_outcome(honest: RunOutcome, gamed: RunOutcome, target: int) -> dict[str, float]:
    """Compare the honest and gaming worlds for ``target``'s owner.

    Returns ``b_honest``, ``b_gamed`` (dollars), ``lots_honest`` (lots closed in the honest
    world), ``G``, ``cost`` (as a share of ``b_honest``), and
    ``shift_<type>``, ``shift_residual``, ``shift_rounding``, ``shift_other``: where the shed
    burden went, as shares of ``b_honest`` (they add up to ``G``).
    """
    n_h = honest.burden.size
    group = int(honest.group[target])
    in_group_h = honest.group == group
    in_group_g = gamed.group == group
    b_h = float(honest.burden[in_group_h].sum())
    b_g = float(gamed.burden[in_group_g].sum())
    out: dict[str, float] = {
        "b_honest": b_h,
        "b_gamed": b_g,
        "lots_honest": float(honest.lots[in_group_h].sum()),
    }
    if not b_h > 0:
        out["G"] = math.nan
        return out
    others = ~in_group_h
    delta = (gamed.burden[:n_h] - honest.burden)[others]
    by_kind = np.bincount(
        honest.kind[others].astype(np.int64), weights=delta, minlength=max(TYPE_NAMES) + 1
    )
    g = (b_h - b_g) / b_h
    out["G"] = g
    out["cost"] = gamed.cost / b_h
    for code in sorted(TYPE_NAMES):
        out[f"shift_{TYPE_NAMES[code]}"] = float(by_kind[code]) / b_h
    out["shift_residual"] = (gamed.residual - honest.residual) / b_h
    out["shift_rounding"] = -(gamed.overshoot - honest.overshoot) / b_h
    # what the labelled columns do not explain (unlabelled rows, a changed deficit, ...)
    explained = sum(float(by_kind[c]) for c in TYPE_NAMES) / b_h
    out["shift_other"] = g - explained - out["shift_residual"] - out["shift_rounding"]
    return out


#: Per-target columns averaged into the table.
_MEAN_COLS = (
    "G",
    "cost",
    *(f"shift_{t}" for t in SHIFT_TYPES),
    "shift_residual",
    "shift_rounding",
    "shift_other",
)


def audit_policies(
    world: World, policies: Sequence[str], actions: Sequence[str], cfg: AuditConfig
) -> list[dict[str, Any]]:
    """Per-target records of one world for every policy and action (empty without a wave)."""
    records: list[dict[str, Any]] = []
    if world.pre is None:
        return records
    slot = {name: i for i, name in enumerate(POLICIES)}
    for name in policies:
        policy = get_policy(name)
        honest = honest_run(world.pre, world.marks, policy, cfg.cap)
        pick_ss, act_ss = _child(world.target_seq, slot[name]).spawn(2)
        payers = np.flatnonzero(honest.burden > 0)
        payers = payers[payers < world.pre.n_accounts]
        m = min(cfg.targets, payers.size)
        chosen = np.sort(np.random.default_rng(pick_ss).choice(payers, size=m, replace=False))
        act_seqs = act_ss.spawn(max(m, 1))
        for j, target in enumerate(chosen.tolist()):
            for action_name in actions:
                action = ACTIONS[action_name]
                rng = np.random.default_rng(act_seqs[j])
                got = gamed_run(world, policy, target, action, cfg, rng)
                rec: dict[str, Any] = {
                    "seed": world.seed,
                    "policy": name,
                    "action": action_name,
                    "target": int(target),
                    "kind": TYPE_NAMES.get(int(world.pre.acc.kind[target]), "unlabelled"),
                    "wave_step": world.wave_step,
                }
                if got is None:
                    rec.update(status="refused", G=math.nan, b_honest=math.nan)
                else:
                    rec.update(
                        status="ok",
                        variant="abstain" if got.params is None else _variant_label(got.params),
                        variants=got.variants,
                        acted=float(got.params is not None),
                    )
                    rec.update(pair_outcome(honest, got.outcome, target))
                    rec["G_forced"] = pair_outcome(honest, got.forced, target)["G"]
                records.append(rec)
    return records


def _child(ss: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """Child ``i`` of ``ss``, the same however often it is asked for (unlike ``spawn``)."""
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, int(i)))


def _variant_label(params: dict[str, Any]) -> str:
    """A short label of an action's variant for the per-target file."""
    if "shape" in params:
        lv = params.get("level")
        return params["shape"] + ("" if lv is None else f"@{lv:g}")
    if "amount" in params:
        return f"amount={params['amount']:.2f}"
    return "-"


def audit_seed(
    cfg: AuditConfig, seed: int, policies: Sequence[str], actions: Sequence[str]
) -> list[dict[str, Any]]:
    """Build the seed's world and return its per-target records."""
    return audit_policies(build_world(cfg, seed), policies, actions, cfg)


def _seed_job(job: tuple[AuditConfig, int, tuple[str, ...], tuple[str, ...]]) -> list[dict]:
    cfg, seed, policies, actions = job
    return audit_seed(cfg, seed, policies, actions)


# --------------------------------------------------------------------------- summary
def reading(g: float, low: float, high: float, threshold: float = 0.05) -> str:
    """The verdict on one (policy, action) row from its interval (give it G net of cost).

    ``"pays"`` when the interval lies above 0 and the mean above ``threshold``;
    ``"does not pay"`` when the interval lies below ``threshold`` (a material gain is ruled
    out; this includes actions that backfire); ``"inconclusive"`` otherwise or without an
    interval (fewer than two seeds).  :func:`summarise` passes ``G_net``, the burden shed
    minus what the action cost (fees, spread, impact): an action whose saving its own cost
    eats does not pay.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > 0 and g > threshold:
        return "pays"
    if high < threshold:
        return "does not pay"
    return "inconclusive"


#: Range of G = (b_H - b_G) / b_H: at most 1 (the burden cannot go below 0), unbounded below.
G_RANGE = (-math.inf, 1.0)

#: An action's cost (a share of the honest burden) smaller than this in magnitude is float
#: noise of equity sums (a Sybil split or a deposit costs nothing) and counts as 0 in G_net.
COST_NOISE = 1e-6


def summarise(
    records: Sequence[dict[str, Any]],
    policies: Sequence[str],
    actions: Sequence[str],
    cfg: AuditConfig,
) -> list[dict[str, Any]]:
    """One row per (policy, action): G and G net of cost with intervals, cost, burden shifts.

    A seed's G is the share of its targets' honest burden that gaming shed,
    ``sum(b_H - b_G) / sum(b_H)`` over the seed's targets (the mean of the targets' G weighted
    by their honest burden); the cost and shift columns are weighted the same way, so they
    still add up to G.  ``G_net = G - cost`` per seed is what the owner gained after paying
    for the action (fees, spread, impact), as a share of the honest burden; the verdict
    (:func:`reading`) is decided on it.  Rows report the mean over seeds and, for G
    (``ci_low``, ``ci_high``) and G_net (``G_net_low``, ``G_net_high``), intervals from
    :func:`experiments.metrics.confidence_interval` inside their range (G <= 1; G_net <= 1
    while no action earns money, else unbounded); ``seeds`` is their n.  ``G_forced`` is G
    when every target must act (its best variant), ``acted`` the share of targets whose
    adversary chose to act.  ``G_unweighted`` is the plain mean of the targets' G (the same
    per seed, then over seeds): a target that pays one lot in the honest world has a G
    dominated by lot granularity, which is why it is not the headline.  ``targets`` counts
    the targets measured, ``refused`` those where the exchange refused every variant.
    """
    rows = []
    for pol in policies:
        for act in actions:
            recs = [r for r in records if r["policy"] == pol and r["action"] == act]
            ok = [r for r in recs if r["status"] == "ok" and np.isfinite(r["G"])]
            seeds = sorted({r["seed"] for r in ok})
            extra = ("G_forced", "G_unweighted", "acted")
            per_seed: dict[str, list[float]] = {col: [] for col in (*_MEAN_COLS, *extra)}
            burden, lots = [], []
            for s in seeds:
                mine = [r for r in ok if r["seed"] == s]
                w = np.array([r["b_honest"] for r in mine])
                for col in (*_MEAN_COLS, "G_forced"):
                    per_seed[col].append(float(np.dot(w, [r[col] for r in mine]) / w.sum()))
                per_seed["G_unweighted"].append(float(np.mean([r["G"] for r in mine])))
                per_seed["acted"].append(float(np.mean([r["acted"] for r in mine])))
                burden.append(float(w.mean()))
                lots.append(float(np.mean([r["lots_honest"] for r in mine])))
            g_seed = np.array(per_seed["G"], dtype=np.float64)
            cost_seed = np.array(per_seed["cost"], dtype=np.float64)
            # a cost within float noise of zero (a split or a deposit costs nothing) is zero
            cost_seed = np.where(np.abs(cost_seed) < COST_NOISE, 0.0, cost_seed)
            net_seed = g_seed - cost_seed
            net_range = G_RANGE if bool((cost_seed >= 0).all()) else UNBOUNDED
            ci = confidence_interval(g_seed, cfg.level, G_RANGE)
            net = confidence_interval(net_seed, cfg.level, net_range)
            row: dict[str, Any] = {
                "policy": pol,
                "action": act,
                "G": ci.mean,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "G_net": net.mean,
                "G_net_low": net.low,
                "G_net_high": net.high,
                "seeds": ci.n,
                "targets": len(ok),
                "refused": len(recs) - len(ok),
                "honest_burden": float(np.mean(burden)) if burden else math.nan,
                "honest_lots": float(np.mean(lots)) if lots else math.nan,
            }
            for col in (*_MEAN_COLS[1:], *extra):
                row[col] = float(np.mean(per_seed[col])) if seeds else math.nan
            row["reading"] = reading(net.mean, net.low, net.high, cfg.threshold)
            rows.append(row)
    return rows


@dataclass
class AuditResult:
    """The audit's output: table rows, per-target records, and what produced them."""

    rows: list[dict[str, Any]]
    records: list[dict[str, Any]]
    config: AuditConfig
    policies: list[str]
    actions: list[str]
    seeds: list[int]
    meta: dict[str, Any] = field(default_factory=dict)


def run_audit(
    cfg: AuditConfig,
    policies: Sequence[str],
    actions: Sequence[str],
    n_seeds: int,
    workers: int | None = None,
) -> AuditResult:
    """Run the paired experiments over ``n_seeds`` seeds in ``workers`` processes.

    Seeds are independent and records are sorted by (seed, policy, action, target) order of
    the inputs, so the result does not depend on ``workers``.

    Raises:
        InputError: for an unknown policy or action, or a bad seed or worker count.
    """
    for p in policies:
        require(p in POLICIES, "policy", f"one of {', '.join(POLICIES)}", p)
    for a in actions:
        require(a in ACTIONS, "action", f"one of {', '.join(ACTIONS)}", a)
    require(
        isinstance(n_seeds, int | np.integer) and n_seeds >= 1, "seeds", "an integer >= 1", n_seeds
    )
    w = (os.cpu_count() or 1) if workers is None else workers
    require(isinstance(w, int | np.integer) and w >= 1, "workers", "an integer >= 1", w)
    seeds = cfg.seeds(int(n_seeds))
    jobs = [(cfg, s, tuple(policies), tuple(actions)) for s in seeds]
    if w == 1 or len(jobs) == 1:
        chunks = [_seed_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(int(w), len(jobs))) as pool:
            chunks = list(pool.map(_seed_job, jobs))
    records = [r for chunk in chunks for r in chunk]
    rows = summarise(records, policies, actions, cfg)
    return AuditResult(rows, records, cfg, list(policies), list(actions), seeds)


# --------------------------------------------------------------------------- output
#: Columns of gameability.csv, in order.
CSV_COLUMNS = (
    "policy",
    "action",
    "G",
    "ci_low",
    "ci_high",
    "G_net",
    "G_net_low",
    "G_net_high",
    "seeds",
    "targets",
    "refused",
    "honest_burden",
    "honest_lots",
    "cost",
    *(f"shift_{t}" for t in SHIFT_TYPES),
    "shift_residual",
    "shift_rounding",
    "shift_other",
    "G_forced",
    "acted",
    "G_unweighted",
    "reading",
)


def _fmt(x: Any, pct: bool = False) -> str:
    if isinstance(x, float):
        if not np.isfinite(x):
            return "n/a"
        return f"{x:+.1%}" if pct else f"{x:,.2f}"
    return str(x)


def format_markdown(result: AuditResult) -> str:
    """The audit as a markdown page: configuration, the table, and how to read it."""
    cfg = result.config
    shown = [
        t
        for t in SHIFT_TYPES
        if any(abs(r[f"shift_{t}"]) > 0 for r in result.rows if np.isfinite(r[f"shift_{t}"]))
    ] or ["passive"]
    audited = {r["seed"] for r in result.records}
    no_wave = [x for x in result.seeds if x not in audited]
    lines = [
        "# Gameability audit",
        "",
        f"Seeds {result.seeds[0]}..{result.seeds[-1]} ({len(result.seeds)}); "
        f"{cfg.accounts:,} accounts per world ({cfg.whale_share:.0%} labelled whales by "
        f"notional); crash of {cfg.drop:.0%} over {cfg.crash_steps} steps (noise "
        f"{cfg.noise:g}); insurance fund ${cfg.fund_per_account * cfg.accounts:,.0f}; "
        f"measured over {cfg.horizon} step(s) "
        f"from the first ADL wave; up to {cfg.targets} targets per seed and policy; Sybil "
        f"splits over {cfg.sybil_accounts} accounts; top-up {cfg.topup_fraction:g} x equity; "
        f"eligibility cap {cfg.cap!r}; {cfg.level:.0%} t-intervals over seeds on a scale that "
        "keeps G <= 1 (n = the seeds column).",
        "",
        f"Seeds without an ADL wave (the crash never outran the fund, nothing to audit): "
        f"{len(no_wave)} of {len(result.seeds)}"
        + (f" ({', '.join(map(str, no_wave))})" if no_wave else "")
        + "; they are in no row's n.",
        "",
    ]
    if len(audited) < MIN_INFORMATIVE_N:
        lines += [
            f"**{len(audited)} audited seed(s): these intervals are not yet informative** "
            f"(fewer than {MIN_INFORMATIVE_N}); run more seeds before reading a verdict.",
            "",
        ]
    lines += [
        "G is the share of its ADL burden a gaming account sheds against an honest twin with "
        "the same exposure in an otherwise identical world (1: escapes entirely, 0: no effect, "
        "< 0: pays more). Cost is what the action itself cost (fees, spread, impact), and the "
        "shift columns say who paid the shed burden instead, all as shares of the honest "
        "burden. G net = G - cost, what the owner keeps after paying for the action: the "
        "reading is decided on it.",
        "",
    ]
    head = [
        "policy",
        "action",
        "G",
        f"{cfg.level:.0%} CI",
        "G net",
        f"net {cfg.level:.0%} CI",
        "seeds",
        "targets",
        "honest burden ($)",
        "lots",
        "acted",
        "G if forced",
        "cost",
        *(f"to {t}" for t in shown),
        "to bad debt",
        "rounding",
        "reading",
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for r in result.rows:
        ci = f"[{_fmt(r['ci_low'], True)}, {_fmt(r['ci_high'], True)}]"
        ci_net = f"[{_fmt(r['G_net_low'], True)}, {_fmt(r['G_net_high'], True)}]"
        cells = [
            r["policy"],
            r["action"],
            _fmt(r["G"], True),
            ci,
            _fmt(r["G_net"], True),
            ci_net,
            str(r["seeds"]),
            str(r["targets"]),
            _fmt(r["honest_burden"]),
            _fmt(r["honest_lots"]),
            f"{r['acted']:.0%}" if np.isfinite(r["acted"]) else "n/a",
            _fmt(r["G_forced"], True),
            _fmt(r["cost"], True),
            *(_fmt(r[f"shift_{t}"], True) for t in shown),
            _fmt(r["shift_residual"], True),
            _fmt(r["shift_rounding"], True),
            r["reading"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = [n for n, c in POLICIES.items() if getattr(c, "exact_small_only", False)]
    caps = {p: eligibility_for(get_policy(p), cfg.cap).cap for p in result.policies}
    pick = (
        f"on {cfg.rehearsals} rehearsal path(s) (the crash script with fresh noise), ex ante"
        if cfg.rehearsals
        else "on the realised path (clairvoyant)"
    )
    lines += [
        "",
        "G per seed is burden-weighted over the seed's targets, sum(b_H - b_G) / sum(b_H); "
        "lots is the targets' mean honest burden in lots closed (when it is a few lots, G is "
        "dominated by lot granularity). Among an action's variants the adversary keeps the one "
        f"with the lowest group burden {pick}"
        + (
            ", and acts only if that lowers its burden (acted: share of targets that did; "
            "G if forced: every target takes its best variant)."
            if cfg.abstain
            else "; every target acts."
        ),
        "",
        f'Reading, on G net of the action\'s cost: "pays" when its interval lies above 0 and '
        f'G net above {cfg.threshold:.0%}; "does not pay" when the whole interval lies below '
        f'{cfg.threshold:.0%}; otherwise "inconclusive".',
        "",
        "Eligibility cap per policy: " + ", ".join(f"{p} = {c}" for p, c in caps.items()) + ".",
    ]
    if skipped and not set(skipped) & set(result.policies):
        lines.append(f'Not audited by "all": {", ".join(skipped)} (exact on small instances only).')
    lines.append("")
    lines.append(
        "Actions: " + "; ".join(f"{a}: {ACTIONS[a].description}" for a in result.actions) + "."
    )
    return "\n".join(lines) + "\n"


def write_report(result: AuditResult, out: str | Path) -> list[Path]:
    """Write gameability.csv, gameability.md and gameability_targets.csv into ``out``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    table = d / "gameability.csv"
    with table.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in result.rows:
            w.writerow(r)
    md = d / "gameability.md"
    md.write_text(format_markdown(result))
    detail = d / "gameability_targets.csv"
    cols = [
        "seed",
        "policy",
        "action",
        "target",
        "kind",
        "wave_step",
        "status",
        "variants",
        "variant",
        "b_honest",
        "b_gamed",
        "lots_honest",
        *_MEAN_COLS,
        "G_forced",
        "acted",
    ]
    with detail.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in result.records:
            w.writerow(r)
    return [table, md, detail]


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    """The configuration as a plain dict (for JSON)."""
    return asdict(cfg)


# =========================================================================== catalogue entry
@dataclass(frozen=True)
class Audit(Experiment):
    """The gameability audit (experiments.studies.audit) over every game policy and action."""

    name: ClassVar[str] = "audit"
    description: ClassVar[str] = (
        "the gameability audit: every policy x every cosmetic action, paired honest and "
        "gaming worlds"
    )
    game: ClassVar[bool] = False

    baseline: str | None = None

    def run(
        self,
        seeds: int,
        out: Path,
        *,
        base: Scenario,
        executor: str = "local",
        workers: int | None = None,
        quiet: bool = False,
        scale: str = "default",
        figures: FigureWriter | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
        """Run the audit, write its own files, and return its records and table."""
        n = check_seeds(seeds)
        cfg = (
            AuditConfig()
            if scale == "default"
            else AuditConfig(accounts=200, targets=2, rehearsals=1)
        )
        pols = default_policies() if self.policies is None else list(self.policies)
        result = run_audit(cfg, pols, list(ACTION_NAMES), n, workers=workers)
        paths = write_report(result, out)
        rows = pd.DataFrame(result.records)
        summary = pd.DataFrame(result.rows)
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- seeds {seed_text(result.seeds)}, {cfg.accounts} accounts per world, "
            f"{len(pols)} policies x {len(result.actions)} actions",
            "- G is the share of its honest ADL burden an account sheds by the action "
            "(burden-weighted over targets, mean over seeds, 95 % interval)",
            "- runs.parquet: one row per (seed, policy, action, target); summary.csv: one "
            "row per (policy, action); also gameability.csv / .md / _targets.csv"
            + (
                f"; the audit ran in its own process pool (executor {executor!r} unused)"
                if executor != "local"
                else ""
            ),
            "",
            format_markdown(result),
        ]
        return (
            rows,
            summary,
            "\n".join(lines) + "\n",
            {
                "files": [str(p) for p in paths],
                "rows": len(rows),
            },
        )


