"""Benchmarks that print figures (``adlgame bench``); never timed unit tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from market.adl import POLICIES, get_policy
from market.adl.reference import reference_pro_rata, reference_queue
from market.adl.strategies import large_snapshot

#: Policies compared against the plain-Python queue reference (same ranking, same consumption).
QUEUE_LIKE = ("hyperliquid", "bitmex", "binance")
#: Policies compared against the plain-Python pro-rata reference.
PRO_RATA_LIKE = ("pro_rata", "capped_pro_rata")
#: Exact rules only timed at small N.
SMALL_ONLY_N = 200


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def bench_policies(sizes: Sequence[int], repeat: int = 3, seed: int = 0) -> list[dict]:
    """Allocation time of every policy at each N (budget = 30 % of capacity).

    The speed-up over the plain-Python reference is measured at N = 1e5 (or the largest N
    below it) for the queues (reference_queue on the policy's own scores) and the pro-rata
    rules (reference_pro_rata).  Returns one record per (policy, N).
    """
    rows: list[dict] = []
    rng = np.random.default_rng(seed)
    snaps = {n: large_snapshot(int(n), rng) for n in [*sizes, SMALL_ONLY_N]}
    ref_n = max([n for n in sizes if n <= 100_000], default=None)
    ref_time: dict[str, float] = {}
    if ref_n is not None:
        snap = snaps[ref_n]
        budget = 0.3 * float(snap.capacity.sum())
        ref_time["pro_rata"] = _best(lambda: reference_pro_rata(snap.capacity, budget), 1)
        for name in QUEUE_LIKE:
            score = get_policy(name).score(snap)
            ref_time[name] = _best(lambda s=score: reference_queue(snap.capacity, s, budget), 1)
    for name in POLICIES:
        pol = get_policy(name)
        for n in [SMALL_ONLY_N] if pol.exact_small_only else sizes:
            snap = snaps[n]
            budget = 0.3 * float(snap.capacity.sum())
            secs = _best(lambda p=pol, s=snap, b=budget: p(s, b), repeat)
            ref_key = name if name in QUEUE_LIKE else "pro_rata" if name in PRO_RATA_LIKE else None
            speedup = None
            if ref_key is not None and n == ref_n and ref_key in ref_time:
                speedup = ref_time[ref_key] / secs
            rows.append(
                {
                    "policy": name,
                    "n": int(n),
                    "seconds": secs,
                    "speedup_vs_reference": speedup,
                    "cores": os.cpu_count(),
                }
            )
    return rows


def format_policy_table(rows: list[dict]) -> str:
    """A plain-text table: one line per policy, one column per N, speed-up at the end."""
    sizes = sorted({r["n"] for r in rows})
    names = list(dict.fromkeys(r["policy"] for r in rows))
    cell = {(r["policy"], r["n"]): r for r in rows}
    cores = rows[0]["cores"] if rows else os.cpu_count()
    head = (
        f"{'policy':<18}"
        + "".join(f"{'N=' + format(n, '.0e'):>12}" for n in sizes)
        + f"{'vs ref':>10}"
    )
    lines = [f"ADL allocation time (best of repeats), {cores} cores", head, "-" * len(head)]
    for name in names:
        line = f"{name:<18}"
        sp = None
        for n in sizes:
            r = cell.get((name, n))
            line += f"{(format(r['seconds'] * 1e3, '.2f') + ' ms') if r else '-':>12}"
            if r and r["speedup_vs_reference"]:
                sp = r["speedup_vs_reference"]
        line += f"{(format(sp, '.0f') + 'x') if sp else '-':>10}"
        lines.append(line)
    lines.append("'vs ref': speed-up over the plain-Python reference at N=1e5 (queues, pro-rata).")
    return "\n".join(lines)
