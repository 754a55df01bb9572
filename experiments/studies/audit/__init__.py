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

The package: :mod:`.world` (configuration, worlds), :mod:`.actions` (the cosmetic
actions), :mod:`.runs` (paired honest and gaming runs), :mod:`.summary` (verdicts,
:func:`run_audit`), :mod:`.report` (files), :mod:`.entry` (the catalogue experiment).
"""

from __future__ import annotations

from experiments.studies.audit.actions import (
    ACTION_NAMES,
    ACTIONS,
    Action,
    apply_close_reopen,
    apply_margin_topup,
    apply_sybil_split,
    apply_wash_trade,
    sybil_candidates,
    undo_margin_topup,
)
from experiments.studies.audit.entry import (
    Audit,
)
from experiments.studies.audit.report import (
    CSV_COLUMNS,
    config_dict,
    format_markdown,
    write_report,
)
from experiments.studies.audit.runs import (
    GamedRun,
    RunOutcome,
    audit_policies,
    audit_seed,
    gamed_run,
    honest_run,
    pair_outcome,
    run_world,
)
from experiments.studies.audit.summary import (
    COST_NOISE,
    G_RANGE,
    AuditResult,
    reading,
    run_audit,
    summarise,
)
from experiments.studies.audit.world import (
    READINGS,
    SHIFT_TYPES,
    ActionRefused,
    AuditConfig,
    World,
    build_world,
    default_policies,
    eligibility_for,
    parse_names,
)

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
    "Audit",
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
