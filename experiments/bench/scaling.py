"""How a crash wave's cost grows with accounts, markets and positions per account.

:func:`bench_scaling` builds a crash world per grid point (a synthetic population,
:mod:`market.population`, of one position per account or venue-shaped), times one waterfall
step through a 30 % drop (liquidations, backstop, ADL under the Hyperliquid queue) and traces
the peak memory the world and the step allocate (:mod:`tracemalloc`, which numpy reports to).
:func:`scaling_summary` fits log-log slopes of time on accounts per market count and reports
the markets overhead: the time at K markets over the time at one market for the same accounts
holding one position each, i.e. the same number of open positions.  With positions stored as
dense accounts x markets arrays that ratio grows with K; a layout that stores what is open
keeps it near 1 (the target: within 1.5x at 437,723 accounts x 162 markets).

Grid points whose dense arrays alone would pass :data:`MEMORY_CAP_MB` are skipped and listed.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np

from experiments.studies.crash import CrashConfig, crash_exchange
from market.adl import get_policy

__all__ = [
    "MEMORY_CAP_MB",
    "QUICK_SCALING_GRID",
    "SCALING_GRID",
    "bench_scaling",
    "scaling_summary",
]

#: Accounts, markets and population shapes of the full grid (``one``: one position per
#: account; ``venue``: the venue-shaped default of :class:`market.population.PopulationSpec`).
SCALING_GRID: dict[str, tuple] = {
    "accounts": (10_000, 100_000, 437_723),
    "markets": (1, 16, 162),
    "shapes": ("one", "venue"),
}
QUICK_SCALING_GRID: dict[str, tuple] = {
    "accounts": (5_000, 20_000),
    "markets": (1, 8),
    "shapes": ("one",),
}
#: Skip grid points whose dense position arrays (positions, entries) would pass this.
MEMORY_CAP_MB = 3_000.0


def _one_point(accounts: int, markets: int, shape: str, seed: int = 1) -> dict[str, Any]:
    dense_mb = accounts * markets * 16 / 1e6
    rec: dict[str, Any] = {"accounts": accounts, "markets": markets, "shape": shape}
    if dense_mb > MEMORY_CAP_MB:
        return {**rec, "skipped": f"dense arrays alone {dense_mb:,.0f} MB"}
    cfg = CrashConfig(accounts=accounts, markets=markets, seed=seed)
    if shape == "one":
        cfg = CrashConfig(
            accounts=accounts, markets=markets, seed=seed, positions_tail=0.0, market_zipf=0.0
        )
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        ex = crash_exchange(cfg, get_policy("hyperliquid"), np.random.default_rng(seed))
        build = time.perf_counter() - t0
        positions = ex.acc.positions.count()
        t0 = time.perf_counter()
        rep = ex.step(ex.marks * 0.7)
        step = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        **rec,
        "positions": positions,
        "build_seconds": build,
        "step_seconds": step,
        "peak_mb": peak / 1e6,
        "liquidated": int(rep.liquidated),
        "adl_raised": float(rep.adl_raised),
    }


def bench_scaling(quick: bool = False, progress: Any = None) -> list[dict[str, Any]]:
    """One record per grid point: accounts, markets, shape, open positions, build and step
    seconds, peak traced MB (or ``skipped`` with the reason)."""
    grid = QUICK_SCALING_GRID if quick else SCALING_GRID
    out = []
    for shape in grid["shapes"]:
        for k in grid["markets"]:
            for n in grid["accounts"]:
                rec = _one_point(n, k, shape)
                out.append(rec)
                if progress is not None:
                    what = rec.get("skipped") or (
                        f"step {rec['step_seconds']:.3f} s, peak {rec['peak_mb']:,.0f} MB, "
                        f"{rec['positions']:,} positions"
                    )
                    progress(f"scaling: {n:,} accounts x {k} markets ({shape}): {what}")
    return out


def scaling_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Log-log slopes of step time on accounts (per shape and market count) and the markets
    overhead ``t(K) / t(1)`` at the largest account count with one position each."""
    done = [r for r in records if "step_seconds" in r]
    slopes = []
    for shape in sorted({r["shape"] for r in done}):
        for k in sorted({r["markets"] for r in done if r["shape"] == shape}):
            pts = [r for r in done if r["shape"] == shape and r["markets"] == k]
            if len(pts) >= 2:
                x = np.log([r["accounts"] for r in pts])
                y = np.log([r["step_seconds"] for r in pts])
                slopes.append(
                    {"shape": shape, "markets": k, "slope": float(np.polyfit(x, y, 1)[0])}
                )
    one = [r for r in done if r["shape"] == "one"]
    overhead = []
    if one:
        n = max(r["accounts"] for r in one)
        base = [r for r in one if r["accounts"] == n and r["markets"] == 1]
        for r in sorted((r for r in one if r["accounts"] == n), key=lambda r: r["markets"]):
            if base:
                overhead.append(
                    {
                        "accounts": n,
                        "markets": r["markets"],
                        "ratio": r["step_seconds"] / base[0]["step_seconds"],
                        "peak_mb": r["peak_mb"],
                    }
                )
    return {
        "slopes": slopes,
        "markets_overhead": overhead,
        "skipped": [
            f"{r['accounts']:,} x {r['markets']} ({r['shape']}): {r['skipped']}"
            for r in records
            if "skipped" in r
        ],
    }
