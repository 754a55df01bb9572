"""The ``bounds`` experiment: the lower bounds of ADL allocation checked on generated instances.

No game is played.  For every seed one instance is drawn (:func:`make_instance`): a snapshot of
``n`` eligible winners with Pareto-distributed capacities that are whole multiples of their lot
value (so the lot grid can raise exactly ``sum(c)`` and residuals are exact), a gains layer
below each capacity, and positions large enough to hold the capacity.  Each check then draws
its own budget(s) from the seed's budget stream and runs every policy on the instance:

``infeasible``
    ``B > sum(c)``: the allocation must take everything (``raised == sum(c)``) and report the
    residual ``B - sum(c)``.  Margin: ``-|residual - (B - sum(c))|``.
``fairness_cap``
    ``alpha * sum(c) < B <= sum(c)``: no allocation with ``h_i <= alpha c_i`` covers ``B``, so
    every rule's largest fraction ``max h_i / c_i`` exceeds ``alpha``.  Margin:
    ``max h_i / c_i - alpha``.  The row ``capped_pro_rata@alpha`` (capped pro-rata with
    ``max_fraction = alpha``) checks the other direction: it covers a budget
    ``B <= alpha sum(c)`` within the cap, and below the cap it raises ``alpha sum(c)`` and
    reports the rest as residual.
``profits_only``
    ``sum(g) < B <= sum(c)``: at least ``B - sum(g)`` comes from principal under any rule
    (margin: principal taken minus that).  Rules claiming ``principal_protect`` must also take
    no principal at a budget ``B <= sum(g)`` (wealth space; lot rounding is granularity).
``concentration``
    With capacities sorted descending, the top ``k`` accounts give at least
    ``B - sum_{j>k} c_(j)`` for ``k`` in 1, 2, 5, 10 and n/4.  Margin: the smallest slack.
``granularity``
    On the lot grid, ``B <= sum(h) < B + Delta`` with ``Delta`` the largest lot value of the
    instance (or ``sum(h) == B`` for rules that close no lots).  Margin: the smaller of
    ``sum(h) - B`` and ``Delta - (sum(h) - B)``.

``infeasible``, ``fairness_cap``, ``profits_only`` and ``concentration`` are facts: any
allocation that covers ``min(B, sum(c))`` within the capacities satisfies them, so a failing row
is a broken rule.  ``c`` is what the rule may take in the wave, its
:meth:`~market.adl.base.ADLPolicy.wave_caps` (the capacity for every built-in rule but dYdX,
whose walk skips accounts an offset would bankrupt and stops after ``max_iterate`` visits; the
rest of its budget is a residual by design, and the facts are checked on what it may take).
The upper half of ``granularity`` is a guarantee of the lot rounding in
:func:`market.adl.execute`, not a fact: a rule with its own integer objective could
overshoot by more than one lot (``min_max_ilp`` minimises the overshoot second, so it keeps
the guarantee).  Rows carry ``kind`` = ``fact`` or ``guarantee`` accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from experiments.game.scenario import Scenario
from experiments.studies.experiment import (
    Experiment,
    check_seeds,
)
from experiments.studies.report import (
    FigureWriter,
)
from market.adl import POLICIES, ADLPolicy, Snapshot, get_policy
from market.adl.prorata import CappedProRata
from market.errors import require

#: The checks, in report order, with their kind.
CHECKS: dict[str, str] = {
    "infeasible": "fact",
    "fairness_cap": "fact",
    "profits_only": "fact",
    "concentration": "fact",
    "granularity": "guarantee",
}

#: Label of the capped pro-rata row that checks the attainable side of the fairness cap.
CAPPED_AT_ALPHA = "capped_pro_rata@alpha"

#: Columns of one check row.
ROW_COLUMNS = (
    "policy",
    "check",
    "kind",
    "seed",
    "n",
    "passed",
    "margin",
    "budget",
    "total_capacity",
    "bound",
    "value",
    "detail",
)

_SS_TAG = 0xB0_0D5  # spawn key of the bounds streams, so they differ from any game stream


@dataclass(frozen=True)
class Instance:
    """One generated ADL wave: the snapshot and what the checks need to know about it.

    Attributes:
        seed: the seed it was drawn from.
        snap: the snapshot (capacities are whole multiples of the lot values).
        gains: the gains layer per row, ``min(capacity, snap.gains_layer)``.
        delta: the execution granularity, the largest lot value.
        budget_seq: the seed sequence of the checks' budgets (the same budgets for every
            policy: :func:`check_budgets` starts a fresh generator from it each time).
    """

    seed: int
    snap: Snapshot
    gains: np.ndarray
    delta: float
    budget_seq: np.random.SeedSequence


def make_instance(seed: int, n_min: int = 20, n_max: int = 150) -> Instance:
    """Draw the instance of ``seed`` from its own :class:`numpy.random.SeedSequence`.

    ``n`` is uniform in ``[n_min, n_max]``; capacities ``c_i = k_i v_i`` with
    ``k_i = 1 + floor(scale * Pareto(alpha))`` (tail index alpha in [1.1, 2.5]); lot values
    ``v_i`` are one shared value on even seeds and one of ``{v/2, v, 2v}`` per row on odd seeds;
    gains are a uniform share in (0.1, 0.9) of capacity, split between positive unrealised PnL
    and the three ledger columns; positions hold ``k_i`` to ``3 k_i`` lots.
    """
    require(
        isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0,
        "seed",
        "an integer >= 0",
        seed,
    )
    require(1 <= n_min <= n_max, "n_min", f"an integer in [1, n_max={n_max}]", n_min)
    inst_ss, budget_ss = np.random.SeedSequence(int(seed), spawn_key=(_SS_TAG,)).spawn(2)
    rng = np.random.default_rng(inst_ss)
    n = int(rng.integers(n_min, n_max + 1))
    alpha = float(rng.uniform(1.1, 2.5))
    scale = float(rng.uniform(1.0, 8.0))
    k = 1 + np.floor(scale * rng.pareto(alpha, n)).astype(np.int64)
    v0 = float(rng.choice([0.1, 0.5, 1.0, 2.5]))
    v = np.full(n, v0) if seed % 2 == 0 else v0 * rng.choice([0.5, 1.0, 2.0], n)
    cap = k * v
    share = rng.uniform(0.1, 0.9, n)
    g = cap * share
    split = rng.dirichlet(np.ones(4), n)  # upnl, recent, older, settled
    lots = k * rng.integers(1, 4, n)
    equity = cap * rng.uniform(1.0, 3.0, n) + g
    snap = Snapshot.build(
        cap,
        lots=lots,
        lot_value=v,
        upnl=g * split[:, 0],
        gains=g[:, None] * split[:, 1:],
        equity=equity,
        mark=100.0,
        lot_size=0.1,
    )
    gains = np.minimum(cap, snap.gains_layer)
    return Instance(int(seed), snap, gains, float(v.max()), budget_ss)


def _tol(*scales: float) -> float:
    return 1e-7 * max(1.0, *(abs(s) for s in scales))


def _row(
    policy: str,
    check: str,
    inst: Instance,
    margin: float,
    budget: float,
    bound: float,
    value: float,
    detail: str = "",
) -> dict[str, Any]:
    total = float(inst.snap.capacity.sum())
    tol = _tol(total, budget)
    return {
        "policy": policy,
        "check": check,
        "kind": CHECKS[check],
        "seed": inst.seed,
        "n": inst.snap.n,
        "passed": bool(np.isfinite(margin) and margin >= -tol),
        "margin": float(margin),
        "budget": float(budget),
        "total_capacity": total,
        "bound": float(bound),
        "value": float(value),
        "detail": detail,
    }


def _max_fraction(h: np.ndarray, c: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(c > 0, h / np.where(c > 0, c, 1.0), 0.0)
    return float(frac.max(initial=0.0))


def _reach(policy: ADLPolicy, snap: Snapshot, budget: float) -> np.ndarray:
    """What ``policy`` may take per row in a wave of ``budget``: its wave caps, within capacity."""
    caps = np.asarray(policy.wave_caps(snap, budget), dtype=np.float64)
    return np.clip(caps, 0.0, snap.capacity)


def _principal(h: np.ndarray, g: np.ndarray) -> float:
    return float(np.maximum(h - g, 0.0).sum())


def check_budgets(inst: Instance) -> dict[str, Any]:
    """Every budget the checks use, drawn in a fixed order (the same for every policy)."""
    r = np.random.default_rng(inst.budget_seq)
    total = float(inst.snap.capacity.sum())
    sum_g = float(inst.gains.sum())
    alpha = float(r.uniform(0.2, 0.9))
    up = float(r.uniform(0.02, min(0.5, 1.0 / alpha - 1.0)))
    return {
        "infeasible": total * (1.0 + float(r.uniform(0.01, 0.5))),
        "alpha": alpha,
        "cap_hi": alpha * total * (1.0 + up),
        "cap_lo": alpha * total * (1.0 - float(r.uniform(0.0, 0.5))),
        "profit_hi": sum_g + float(r.uniform(0.05, 0.95)) * (total - sum_g),
        "profit_lo": sum_g * float(r.uniform(0.1, 0.95)),
        "concentration": total * float(r.uniform(0.05, 0.95)),
        "granularity": total * float(r.uniform(0.05, 0.95)),
    }


def check_policy(name: str, policy: ADLPolicy, inst: Instance) -> list[dict[str, Any]]:
    """The five check rows of one policy on one instance.

    A policy that raises an exception fails every check, with the error in ``detail``.
    """
    b = check_budgets(inst)
    snap, g = inst.snap, inst.gains
    total = float(snap.capacity.sum())
    rows = []
    try:
        # infeasible: take everything, report the rest
        c = _reach(policy, snap, b["infeasible"])
        reach = float(c.sum())
        a = policy(snap, b["infeasible"])
        want = b["infeasible"] - reach
        err = abs(a.residual - want) + abs(a.raised - reach)
        rows.append(
            _row(name, "infeasible", inst, -err, b["infeasible"], want, a.residual, "residual")
        )
        # fairness cap: infeasible => the largest fraction exceeds alpha
        c = _reach(policy, snap, b["cap_hi"])
        w = policy(snap, b["cap_hi"]).wealth
        mf = _max_fraction(w, c)
        margin = mf - b["alpha"]
        detail = f"max h/c at B > alpha*sum(c), alpha={b['alpha']:.3f}"
        if b["cap_hi"] <= b["alpha"] * float(c.sum()):  # the rule's own reach: nothing forced
            margin, detail = 0.0, detail + " (vacuous: B <= alpha * what the rule may take)"
        elif float(c.sum()) <= 0:  # a rule that takes nothing in a wave covers no B
            margin, detail = 0.0, detail + " (vacuous: the rule takes nothing in a wave)"
        rows.append(_row(name, "fairness_cap", inst, margin, b["cap_hi"], b["alpha"], mf, detail))
        # profits only: B > sum(g) => principal >= B - sum(g); claimants protect principal
        c = _reach(policy, snap, b["profit_hi"])
        w = policy(snap, b["profit_hi"]).wealth
        need = min(b["profit_hi"], float(c.sum())) - float(np.minimum(g, c).sum())
        p_hi = _principal(w, g)
        margin, detail = p_hi - need, "principal taken at B > sum(g)"
        if "principal_protect" in policy.properties:
            p_lo = _principal(policy(snap, b["profit_lo"]).wealth, g)
            margin = min(margin, -p_lo)
            detail += f"; principal at B <= sum(g): {p_lo:.6g}"
        rows.append(_row(name, "profits_only", inst, margin, b["profit_hi"], need, p_hi, detail))
        # forced concentration
        c = _reach(policy, snap, b["concentration"])
        bc = min(b["concentration"], float(c.sum()))
        w = policy(snap, b["concentration"]).wealth
        order = np.argsort(-c, kind="stable")
        top_h = np.cumsum(w[order])
        tail_c = float(c.sum()) - np.cumsum(c[order])
        ks = sorted({k for k in (1, 2, 5, 10, max(1, snap.n // 4)) if k <= snap.n})
        idx = np.asarray(ks) - 1
        slack = top_h[idx] - (bc - tail_c[idx])
        j = int(np.argmin(slack))
        rows.append(
            _row(
                name,
                "concentration",
                inst,
                float(slack[j]),
                bc,
                float(bc - tail_c[idx[j]]),
                float(top_h[idx[j]]),
                f"tightest k={ks[j]}",
            )
        )
        # granularity on the lot grid
        a = policy(snap, b["granularity"])
        bg = min(b["granularity"], float(_reach(policy, snap, b["granularity"]).sum()))
        over = a.raised - bg
        delta = inst.delta if policy.price_rule != "none" else 0.0
        margin = min(over, delta - over) if delta > 0 else -abs(over)
        if delta > 0 and over >= delta:
            margin = min(margin, -_tol(total, bg) * 10)  # strict: sum(h) < B + Delta
        rows.append(_row(name, "granularity", inst, margin, bg, delta, over, "overshoot vs Delta"))
    except Exception as exc:  # a broken rule fails the rest of its checks
        done = {r["check"] for r in rows}
        for check in CHECKS:
            if check not in done:
                rows.append(
                    _row(name, check, inst, np.nan, np.nan, np.nan, np.nan, f"error: {exc!r}")
                )
    return rows


def check_capped_at_alpha(inst: Instance) -> dict[str, Any]:
    """The attainable side of the fairness cap: capped pro-rata with ``max_fraction = alpha``.

    At ``B <= alpha sum(c)`` it covers ``B`` with ``max h_i / c_i <= alpha``; at
    ``B > alpha sum(c)`` it raises exactly ``alpha sum(c)`` (wealth space) and leaves the rest.
    """
    b = check_budgets(inst)
    c, alpha = inst.snap.capacity, b["alpha"]
    total = float(c.sum())
    pol = CappedProRata(max_fraction=alpha)
    lo = pol(inst.snap, b["cap_lo"]).wealth
    hi = pol(inst.snap, b["cap_hi"]).wealth
    margin = min(
        -abs(float(lo.sum()) - b["cap_lo"]),
        alpha - _max_fraction(lo, c),
        -abs(float(hi.sum()) - alpha * total),
        alpha - _max_fraction(hi, c),
    )
    return _row(
        CAPPED_AT_ALPHA,
        "fairness_cap",
        inst,
        margin,
        b["cap_hi"],
        alpha * total,
        float(hi.sum()),
        f"alpha={alpha:.3f}; covers B<=alpha*sum(c), raises alpha*sum(c) above",
    )


def bounds_policies() -> dict[str, ADLPolicy]:
    """Every registered policy with default parameters (min_max_ilp included: n is small)."""
    return {name: get_policy(name) for name in POLICIES}


def run_bounds(
    seeds: Sequence[int],
    policies: Mapping[str, ADLPolicy] | None = None,
    *,
    n_min: int = 20,
    n_max: int = 150,
) -> pd.DataFrame:
    """One row per (policy, check, seed), plus the ``capped_pro_rata@alpha`` row per seed."""
    pols = bounds_policies() if policies is None else dict(policies)
    rows: list[dict[str, Any]] = []
    for seed in seeds:  # a loop over instances and policies, each call vectorised
        inst = make_instance(int(seed), n_min, n_max)
        for name, pol in pols.items():
            rows.extend(check_policy(name, pol, inst))
        if policies is None:
            rows.append(check_capped_at_alpha(inst))
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def summarise_bounds(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Pass rates per (policy, check) and a report naming every failing row."""
    grp = rows.groupby(["policy", "check"], sort=False)
    summary = grp.agg(
        kind=("kind", "first"),
        seeds=("seed", "nunique"),
        passed=("passed", "sum"),
        pass_rate=("passed", "mean"),
        min_margin=("margin", "min"),
    ).reset_index()
    pivot = summary.pivot(index="policy", columns="check", values="pass_rate")
    pivot = pivot.reindex(index=list(dict.fromkeys(rows["policy"])))
    pivot = pivot[[c for c in CHECKS if c in pivot.columns]]
    lines = [
        "# Experiment bounds: the lower bounds of ADL allocation on generated instances",
        "",
        f"Seeds: {rows['seed'].nunique()} (instances of {int(rows['n'].min())} to "
        f"{int(rows['n'].max())} accounts, Pareto capacities on the lot grid). A row per "
        "(policy, check, seed); the table shows the pass rate per policy and check.",
        "",
        "Facts (`infeasible`, `fairness_cap`, `profits_only`, `concentration`) hold for any "
        "allocation covering min(B, sum c) within the capacities: a failure is a broken rule. "
        "`granularity`'s upper half (sum h < B + Delta) is what `execute`'s lot rounding "
        "guarantees, the bound at best; a rule with its own integer objective may exceed it.",
        "",
        "| policy | " + " | ".join(pivot.columns) + " |",
        "|---|" + "---:|" * len(pivot.columns),
    ]
    for pol, r in pivot.iterrows():
        cells = ["" if pd.isna(x) else f"{x:.0%}" for x in r]
        lines.append(f"| {pol} | " + " | ".join(cells) + " |")
    failed = rows[~rows["passed"]]
    lines += ["", f"Failing rows: {len(failed)}."]
    if len(failed):
        lines += [
            "",
            "| policy | check | kind | seed | margin | detail |",
            "|---|---|---|---:|---:|---|",
        ]
        for _, r in failed.head(50).iterrows():
            lines.append(
                f"| {r['policy']} | {r['check']} | {r['kind']} | {r['seed']} | "
                f"{r['margin']:.6g} | {r['detail']} |"
            )
        if len(failed) > 50:
            lines.append(f"\n({len(failed) - 50} more in runs.parquet)")
    return summary, "\n".join(lines) + "\n"


# =========================================================================== catalogue entry
@dataclass(frozen=True)
class Bounds(Experiment):
    """the lower bounds of ADL allocation checked on generated instances (no game).

    Attributes:
        n_min, n_max: accounts per instance (``min_max_ilp`` is exact at these sizes).
    """

    name: ClassVar[str] = "bounds"
    description: ClassVar[str] = (
        "the lower bounds of ADL allocation checked for every policy on generated instances "
        "(no game)"
    )
    game: ClassVar[bool] = False

    baseline: str | None = None
    n_min: int = 20
    n_max: int = 150

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
        """Check every policy on instances of seeds ``1..seeds``."""
        n = check_seeds(seeds)
        n_max = self.n_max if scale == "default" else min(self.n_max, 60)
        rows = run_bounds(range(1, n + 1), n_min=min(self.n_min, n_max), n_max=n_max)
        summary, report = summarise_bounds(rows)
        fails = rows[~rows["passed"]]
        return (
            rows,
            summary,
            report,
            {
                "rows": len(rows),
                "failed_rows": len(fails),
                "failed_facts": int((fails["kind"] == "fact").sum()),
            },
        )
