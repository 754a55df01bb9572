"""Benchmarks that print figures (``adlgame bench``); never timed unit tests.

:func:`bench_policies` times every registered ADL policy on snapshots from
:func:`market.adl.strategies.large_snapshot` with the budget at 30 % of capacity, twice per
(policy, N):

* ``kernel_seconds``: the wealth-space rule alone, ``policy.allocate_wealth(snap, B)``;
* ``seconds``: the full call ``policy(snap, B)``, which adds input checks and the shared lot
  execution :func:`market.adl.base.execute`.

At the reference size (N = 1e5, or the largest N below it) the queues and the pro-rata family
are also timed against the plain-Python definitions in :mod:`market.adl.reference`, and
``speedup_vs_reference`` is the reference time over the kernel time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from market.adl import POLICIES, get_policy
from market.adl.base import ADLPolicy, Snapshot
from market.adl.reference import reference_pro_rata, reference_queue
from market.adl.strategies import large_snapshot

__all__ = [
    "BUDGET_SHARE",
    "PRO_RATA_LIKE",
    "QUEUE_LIKE",
    "REFERENCE_N",
    "SMALL_ONLY_N",
    "bench_policies",
    "format_policy_table",
    "reference_call",
    "reference_n",
]

#: Policies compared against the plain-Python queue reference, run on the policy's own scores.
QUEUE_LIKE = ("hyperliquid", "bitmex", "binance", "dydx")
#: Policies compared against the plain-Python capped pro-rata reference with their own weights.
PRO_RATA_LIKE = ("pro_rata", "capped_pro_rata", "contract_pro_rata", "drift", "rap")
#: Size at which the speed-up over the references is measured (or the largest size below it).
REFERENCE_N = 100_000
#: Exact rules (``exact_small_only``) are only timed at this N.
SMALL_ONLY_N = 200
#: Budget of every timed call, as a share of the snapshot's total capacity.
BUDGET_SHARE = 0.3


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn``, seconds."""
    best = np.inf
    for _ in range(max(int(repeat), 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def reference_n(sizes: Sequence[int]) -> int | None:
    """The size the references are timed at: the largest of ``sizes`` up to 1e5 (None if none)."""
    return max((int(n) for n in sizes if int(n) <= REFERENCE_N), default=None)


def _queue_scores(policy: ADLPolicy, snap: Snapshot) -> np.ndarray:
    """Scores that make :func:`reference_queue` walk the policy's own queue.

    Ranked queues give their venue score; dYdX (not ranked) gives minus the position of each
    row along its cyclic account-id order.
    """
    score = getattr(policy, "score", None)
    if callable(score):
        return np.asarray(score(snap), dtype=np.float64)
    order = np.asarray(policy.priority(snap))
    s = np.empty(snap.n, dtype=np.float64)
    s[order] = -np.arange(order.size, dtype=np.float64)
    return s


def reference_call(
    name: str, policy: ADLPolicy, snap: Snapshot, budget: float
) -> Callable[[], np.ndarray] | None:
    """A zero-argument call of the plain-Python reference for ``policy``, or None if it has none.

    Inputs (scores, weights, caps) are computed here, outside the returned call, so that only
    the reference's own loop is timed:

    * queues (:data:`QUEUE_LIKE`): ``reference_queue(capacity, policy scores, B)``;
    * ``pro_rata``: ``reference_pro_rata(capacity, B)``;
    * ``capped_pro_rata``: ``reference_pro_rata(caps(snap), B, weights=capacity)``;
    * ``contract_pro_rata``: weights ``lots * lot_value``; ``drift``: weights
      ``lots * lot_size``; ``rap``: caps ``caps(snap)`` and the policy's risk weights
      (``None`` when those weights overflow float64).
    """
    cap = [float(x) for x in snap.capacity]
    if name in QUEUE_LIKE:
        score = [float(x) for x in _queue_scores(policy, snap)]
        return lambda: reference_queue(cap, score, budget)
    if name == "pro_rata":
        return lambda: reference_pro_rata(cap, budget)
    weights: np.ndarray
    limit = snap.capacity
    if name == "capped_pro_rata":
        limit, weights = policy.caps(snap), snap.capacity
    elif name == "contract_pro_rata":
        weights = snap.lots * snap.lot_value
    elif name == "drift":
        weights = snap.lots * snap.lot_size
    elif name == "rap":
        limit = policy.caps(snap)
        weights = policy.risk_weights(snap)  # type: ignore[attr-defined]
        if not np.all(np.isfinite(weights)):
            return None
    else:
        return None
    lim = [float(x) for x in limit]
    w = [float(x) for x in weights]
    return lambda: reference_pro_rata(lim, budget, weights=w)


def bench_policies(sizes: Sequence[int], repeat: int = 3, seed: int = 0) -> list[dict]:
    """Time every registered policy at each N (budget = 30 % of capacity).

    Returns one record per (policy, N) with keys ``policy``, ``n``, ``seconds`` (full call
    ``policy(snap, B)``, best of ``repeat``), ``kernel_seconds`` (``allocate_wealth`` alone,
    best of ``repeat``), ``reference_seconds`` and ``speedup_vs_reference`` (reference time /
    kernel time, at :func:`reference_n` for the policies with a reference, else None) and
    ``cores``.  Exact small-instance rules are timed at N = 200 only.  Snapshots come from
    ``large_snapshot(n, default_rng(seed))`` drawn in order of the sizes.
    """
    rows: list[dict] = []
    rng = np.random.default_rng(seed)
    wanted = sorted({int(n) for n in sizes} | {SMALL_ONLY_N})
    snaps = {n: large_snapshot(n, rng) for n in wanted}
    ref_n = reference_n(sizes)
    for name in POLICIES:
        pol = get_policy(name)
        for n in [SMALL_ONLY_N] if pol.exact_small_only else [int(x) for x in sizes]:
            snap = snaps[n]
            budget = BUDGET_SHARE * float(snap.capacity.sum())
            kernel = _best(lambda p=pol, s=snap, b=budget: p.allocate_wealth(s, b), repeat)
            secs = _best(lambda p=pol, s=snap, b=budget: p(s, b), repeat)
            ref_secs = speedup = None
            if n == ref_n:
                call = reference_call(name, pol, snap, budget)
                if call is not None:
                    ref_secs = _best(call, 1)
                    speedup = ref_secs / kernel if kernel > 0 else None
            rows.append(
                {
                    "policy": name,
                    "n": n,
                    "seconds": secs,
                    "kernel_seconds": kernel,
                    "reference_seconds": ref_secs,
                    "speedup_vs_reference": speedup,
                    "cores": os.cpu_count(),
                }
            )
    return rows


def _ms(seconds: float) -> str:
    """Milliseconds with three significant figures at most (``0.412``, ``41.2``, ``412``)."""
    ms = seconds * 1e3
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def format_policy_table(rows: list[dict]) -> str:
    """A plain-text table: one line per policy, one ``kernel/full`` ms cell per N, speed-up last.

    Rows without ``kernel_seconds`` (older records) show the full time only.
    """
    sizes = sorted({r["n"] for r in rows})
    names = list(dict.fromkeys(r["policy"] for r in rows))
    cell = {(r["policy"], r["n"]): r for r in rows}
    cores = rows[0]["cores"] if rows else os.cpu_count()
    width = 16
    head = (
        f"{'policy':<18}"
        + "".join(f"{'N=' + format(n, '.0e'):>{width}}" for n in sizes)
        + f"{'vs ref':>9}"
    )
    lines = [
        f"ADL allocation time in ms, kernel/full (best of repeats), {cores} cores",
        head,
        "-" * len(head),
    ]
    for name in names:
        line = f"{name:<18}"
        sp = None
        for n in sizes:
            r = cell.get((name, n))
            if r is None:
                text = "-"
            elif r.get("kernel_seconds") is None:
                text = _ms(r["seconds"])
            else:
                text = f"{_ms(r['kernel_seconds'])}/{_ms(r['seconds'])}"
            line += f"{text:>{width}}"
            if r and r.get("speedup_vs_reference"):
                sp = r["speedup_vs_reference"]
        line += f"{(format(sp, '.0f') + 'x') if sp else '-':>9}"
        lines.append(line)
    ref_sizes = sorted({r["n"] for r in rows if r.get("speedup_vs_reference")})
    at = format(ref_sizes[-1], ".0e").replace("e+0", "e") if ref_sizes else "1e5"
    lines.append("kernel: allocate_wealth alone; full: policy(snap, B) with lot execution.")
    lines.append(f"'vs ref': plain-Python reference time / kernel time at N={at}.")
    return "\n".join(lines)
