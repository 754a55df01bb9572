"""Verdicts and intervals over seeds, and the whole audit (run_audit)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.metrics import UNBOUNDED, confidence_interval
from experiments.studies.audit.actions import (
    ACTIONS,
)
from experiments.studies.audit.runs import (
    _MEAN_COLS,
    _seed_job,
)
from experiments.studies.audit.world import (
    AuditConfig,
)
from market.adl import policy_class
from market.errors import require


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
        policy_class(p)  # a built-in, a plug-in or an installed entry point
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
