"""The audit configuration and its worlds: a seeded population on a fresh exchange."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.base import PASSIVE, TYPE_NAMES, WHALE
from market.adl import POLICIES, Eligibility
from market.adl.base import ADLPolicy
from market.adl.eligibility import CAP_RULES
from market.errors import require
from market.exchange import BackstopConfig, Exchange
from market.population import PopulationSpec, seed_population
from market.prices import crash_path
from market.spec import MarketSpec

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
        before: the exchange ``L`` steps before ``pre`` for ``L = 1 ..`` (``keep_before`` of
            :func:`build_world`; fewer when the crash is younger).
        before_marks: the marks from each of those states through the measured steps (the
            wave step is index ``L``).
    """

    seed: int
    pre: Exchange | None
    marks: np.ndarray
    script: np.ndarray
    wave_step: int
    target_seq: np.random.SeedSequence
    before: list[Exchange] = field(default_factory=list)
    before_marks: list[np.ndarray] = field(default_factory=list)


def _label_kinds(ex: Exchange, rows: np.ndarray, whale_share: float) -> None:
    """Label ``rows`` whale (top ``whale_share`` by notional) or passive in ``acc.kind``."""
    nt = ex.account_notional(np.asarray(rows, dtype=np.int64))
    n_whale = math.floor(whale_share * rows.size)
    kind = np.full(rows.size, PASSIVE, dtype=np.int16)
    if n_whale > 0:
        order = np.lexsort((rows, -nt))  # largest first, ties by account id
        kind[order[:n_whale]] = WHALE
    ex.acc.kind[rows] = kind


def build_world(cfg: AuditConfig, seed: int, keep_before: int = 0) -> World:
    """The seed's world, stepped without ADL up to the step before the first ADL wave.

    ``keep_before`` also keeps the states of up to that many steps earlier (``World.before``).
    """
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
    history: list[Exchange] = []
    for t in range(1, cfg.crash_steps + 1):
        ahead = ex.clone()
        rep = ahead.step(path[t])
        if rep.deficit - rep.backstop_used > 1e-9 * max(1.0, rep.deficit):
            window = slice(t, t + cfg.horizon)
            before = history[::-1]
            before_marks = [
                path[t - lead : t + cfg.horizon].copy() for lead in range(1, len(before) + 1)
            ]
            return World(
                int(seed),
                ex,
                path[window].copy(),
                script[window].copy(),
                t,
                target_ss,
                before,
                before_marks,
            )
        if keep_before > 0:
            history = [*history, ex.clone(with_log=False)][-keep_before:]
        ex = ahead
    empty = np.zeros((0, 1))
    return World(int(seed), None, empty, empty, -1, target_ss)
