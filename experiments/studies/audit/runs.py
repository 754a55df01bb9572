"""Honest and gaming runs of one world, paired, over policies, actions and seeds."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import TYPE_NAMES
from experiments.studies.audit.actions import (
    ACTIONS,
    Action,
)
from experiments.studies.audit.world import (
    SHIFT_TYPES,
    ActionRefused,
    AuditConfig,
    World,
    build_world,
    eligibility_for,
)
from market.accounts import BOOK, VAULT
from market.adl import POLICIES, get_policy
from market.adl.base import ADLPolicy
from market.exchange import Exchange


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


def _slot(name: str, slot: dict[str, int]) -> int:
    """A policy's stream slot: its registry position, or for a plug-in a stable number from
    its name (the same in every process and run)."""
    if name in slot:
        return slot[name]
    return len(slot) + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def policy_streams(
    world: World, name: str
) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The (target-picking, acting) streams of policy ``name`` in ``world``'s target stream."""
    slot = {p: i for i, p in enumerate(POLICIES)}
    pick_ss, act_ss = _child(world.target_seq, _slot(name, slot)).spawn(2)
    return pick_ss, act_ss


def pick_targets(
    pre: Exchange, honest: RunOutcome, m: int, ss: np.random.SeedSequence
) -> np.ndarray:
    """Up to ``m`` trader accounts (not the book or the vault) that paid ADL in ``honest``,
    drawn without replacement from ``ss``, ascending."""
    payers = np.flatnonzero(honest.burden > 0)
    payers = payers[payers < pre.n_accounts]
    payers = payers[(pre.acc.flags[payers] & (BOOK | VAULT)) == 0]
    m = min(int(m), payers.size)
    return np.sort(np.random.default_rng(ss).choice(payers, size=m, replace=False))


def audit_policies(
    world: World, policies: Sequence[str], actions: Sequence[str], cfg: AuditConfig
) -> list[dict[str, Any]]:
    """Per-target records of one world for every policy and action (empty without a wave)."""
    records: list[dict[str, Any]] = []
    if world.pre is None:
        return records
    for name in policies:
        policy = get_policy(name)
        honest = honest_run(world.pre, world.marks, policy, cfg.cap)
        pick_ss, act_ss = policy_streams(world, name)
        chosen = pick_targets(world.pre, honest, cfg.targets, pick_ss)
        m = chosen.size
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
