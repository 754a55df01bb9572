"""How cost grows with accounts, markets and positions per account: waves, crashes, the game.

Every grid point runs in its own forked child, so its peak memory is its own (the child's peak
resident set: interpreter, imports, the world and the step), and no tracing slows it down.

* ``wave`` points build a crash world (:mod:`market.population`: ``one`` position per account,
  or ``venue``-shaped: a heavy-tailed count of markets per account over heavy-tailed market
  popularity) and time one waterfall step through a 30 % drop (liquidations, fund, ADL under
  the Hyperliquid queue), best of three (see :data:`REPEAT`).
* ``crash`` points run the whole ``adlgame crash`` computation (10 steps; the process's peak
  memory is the figure for the venue-shaped point, the time ratio is read at one position
  per account, the same open positions at 1 and at K markets).
* ``game`` points run the ``oct10_venue`` scenario (markets sized like the event's coins) for
  a number of traders and crises and time its steps.
* the ``command`` point runs ``adlgame crash --accounts N --markets K --json`` as a user
  does, a process each (startup included), alternating with ``--markets 1``, and keeps the
  medians: the default populations, so the K-market run holds more open positions (each
  account a heavy-tailed number of markets), which the record counts.

:func:`scaling_summary` fits log-log slopes of wave time on accounts, and reads off the targets
of issue 17: the markets overhead ``t(K) / t(1)`` for the same accounts holding one position
each (the same open positions), the doubling ratio ``t(2K) / t(K)`` at that size, the peak
memory of the crash at 437,723 accounts x 162 markets, the 5,000,000 x 400 wave, and the
oct10-scale game's wall time.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from experiments.bench.child import run_forked
from experiments.studies.crash import CrashConfig, crash_exchange, crash_streams, run_crash
from market.adl import get_policy

__all__ = [
    "QUICK_SCALING_GRID",
    "SCALING_GRID",
    "bench_scaling",
    "scaling_summary",
]

#: The event's size (accounts, markets).
OCT10 = (437_723, 162)

#: Grid points of the full section: (kind, accounts or traders, markets, shape or crises).
SCALING_GRID: list[tuple[str, int, int, Any]] = [
    # wave time against accounts, one position each, at 1 and 162 markets
    *[("wave", n, k, "one") for k in (1, 162) for n in (10_000, 100_000, 1_000_000, 10_000_000)],
    # wave time against markets for the same open positions (437,723 accounts, one each),
    # and at 5,000,000 accounts (where the fixed cost per market wave weighs less)
    *[("wave", OCT10[0], k, "one") for k in (1, 16, 81, 162, 324)],
    *[("wave", 5_000_000, k, "one") for k in (1, 162, 324)],
    # venue-shaped populations: positions per account heavy-tailed
    *[("wave", n, 162, "venue") for n in (10_000, 100_000, OCT10[0], 1_000_000)],
    ("wave", 5_000_000, 400, "venue"),
    # the whole adlgame crash at the event's size: venue-shaped (memory), and one position
    # per account at 162 markets and at 1 (the same open positions: time)
    ("crash", OCT10[0], OCT10[1], "venue"),
    ("crash", OCT10[0], OCT10[1], "one"),
    ("crash", OCT10[0], 1, "one"),
    # the adlgame crash command at the event's size against one market, 5 runs of each
    ("command", OCT10[0], OCT10[1], 5),
    # the game: one crisis at growing size, then the event's size over 10 crises
    *[("game", n, OCT10[1], 1) for n in (10_000, 100_000)],
    ("game", OCT10[0], OCT10[1], 10),
]
QUICK_SCALING_GRID: list[tuple[str, int, int, Any]] = [
    *[("wave", n, k, "one") for k in (1, 8) for n in (5_000, 20_000)],
    ("wave", 20_000, 16, "one"),
    ("wave", 5_000, 8, "venue"),
    ("crash", 5_000, 8, "venue"),
    ("crash", 5_000, 8, "one"),
    ("crash", 5_000, 1, "one"),
    ("command", 5_000, 8, 2),
    ("game", 600, 8, 1),
]


#: Wave steps are timed on ``REPEAT`` copies of the world and the world itself, best kept, up
#: to ``REPEAT_MAX_ACCOUNTS`` accounts (a copy of a larger world would double its memory).
REPEAT = 2
REPEAT_MAX_ACCOUNTS = 1_000_000


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _wave_point(accounts: int, markets: int, shape: str, seed: int = 1) -> dict[str, Any]:
    flat = {"positions_tail": 0.0, "market_zipf": 0.0} if shape == "one" else {}
    cfg = CrashConfig(accounts=accounts, markets=markets, seed=seed, **flat)
    t0 = time.perf_counter()
    ex = crash_exchange(cfg, get_policy("hyperliquid"), np.random.default_rng(seed))
    build = time.perf_counter() - t0
    positions = ex.acc.positions.count()
    times = []
    for _ in range(REPEAT if accounts <= REPEAT_MAX_ACCOUNTS else 0):  # on copies: best of
        copy = ex.clone(with_log=False)
        t0 = time.perf_counter()
        copy.step(copy.marks * 0.7)
        times.append(time.perf_counter() - t0)
        del copy
    t0 = time.perf_counter()
    rep = ex.step(ex.marks * 0.7)
    times.append(time.perf_counter() - t0)
    return {
        "positions": positions,
        "build_seconds": build,
        "step_seconds": min(times),
        "step_times": times,
        "liquidated": int(rep.liquidated),
        "waves": len(rep.waves),
        "adl_raised": float(rep.adl_raised),
    }


def _crash_point(accounts: int, markets: int, shape: str, seed: int = 1) -> dict[str, Any]:
    flat = {"positions_tail": 0.0, "market_zipf": 0.0} if shape == "one" else {}
    cfg = CrashConfig(accounts=accounts, markets=markets, seed=seed, **flat)
    t0 = time.perf_counter()
    out = run_crash(cfg)
    return {
        "seconds": time.perf_counter() - t0,
        "liquidated": int(out["liquidated"]),
        "deficit": float(out["deficit"]),
        "conservation_error": float(out["conservation_error"]),
    }


def _adlgame() -> list[str]:
    """The ``adlgame`` command of this interpreter's environment (``python -m viz.cli``
    where the entry point is not installed)."""
    script = Path(sys.executable).with_name("adlgame")
    return [str(script)] if script.exists() else [sys.executable, "-m", "viz.cli"]


def _command_point(accounts: int, markets: int, runs: int = 5) -> dict[str, Any]:
    walls: dict[int, list[float]] = {1: [], markets: []}
    for _ in range(runs):  # alternately, so a drift of the machine hits both alike
        for k in (1, markets):
            cmd = [*_adlgame(), "crash", "--accounts", str(accounts), "--markets", str(k)]
            t0 = time.perf_counter()
            subprocess.run([*cmd, "--json"], check=True, stdout=subprocess.DEVNULL)
            walls[k].append(time.perf_counter() - t0)
    positions = {}
    for k in (1, markets):  # the open positions each command's population holds
        cfg = CrashConfig(accounts=accounts, markets=k)
        ex = crash_exchange(cfg, None, np.random.default_rng(crash_streams(cfg)[0]))
        positions[k] = ex.acc.positions.count()
        del ex
    seconds, one = statistics.median(walls[markets]), statistics.median(walls[1])
    return {
        "seconds": seconds,
        "seconds_one": one,
        "ratio": seconds / one,
        "walls": walls[markets],
        "walls_one": walls[1],
        "positions": positions[markets],
        "positions_one": positions[1],
    }


def _game_point(traders: int, markets: int, crises: int, seed: int = 1) -> dict[str, Any]:
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario

    sc = load_scenario("oct10_venue").replace(
        **{"run.traders": traders, "run.crises": crises, "market.markets": markets}
    )
    t0 = time.perf_counter()
    game = ADLGame(sc, seed=seed)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    game.run()
    run = time.perf_counter() - t0
    return {
        "setup_seconds": setup,
        "run_seconds": run,
        "seconds": setup + run,
        "steps": int(game.t),
        "step_seconds": run / max(int(game.t), 1),
        "deficit": float(sum(c.deficit for c in game.crises)),
    }


_POINTS: dict[str, Callable[..., dict[str, Any]]] = {
    "wave": _wave_point,
    "crash": _crash_point,
    "game": _game_point,
    "command": _command_point,
}


def _measured(kind: str, args: tuple) -> dict[str, Any]:
    """One grid point's record with the process's peak RSS (run in a child)."""
    rec = _POINTS[kind](*args)
    rec["peak_mb"] = _maxrss_mb()
    return rec


def _run_child(kind: str, args: tuple) -> dict[str, Any]:
    return run_forked(_measured, kind, args)


def _describe(rec: dict[str, Any]) -> str:
    if "error" in rec:
        return f"error: {rec['error']}"
    if rec["kind"] == "wave":
        return (
            f"step {rec['step_seconds']:.3f} s, {rec['positions']:,} positions, "
            f"{rec['waves']} waves, peak {rec['peak_mb']:,.0f} MB"
        )
    if rec["kind"] == "crash":
        return f"whole crash {rec['seconds']:.2f} s, peak {rec['peak_mb']:,.0f} MB"
    if rec["kind"] == "command":
        return (
            f"adlgame crash {rec['seconds']:.2f} s ({rec['positions']:,} positions) against "
            f"{rec['seconds_one']:.2f} s at one market ({rec['positions_one']:,}): "
            f"{rec['ratio']:.2f}x, medians of {len(rec['walls'])}"
        )
    return (
        f"{rec['steps']} steps in {rec['seconds']:.1f} s ({rec['step_seconds']:.3f} s a step), "
        f"peak {rec['peak_mb']:,.0f} MB"
    )


def bench_scaling(
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    grid: list[tuple[str, int, int, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One record per grid point (:data:`SCALING_GRID`, or the quick one): its kind, accounts
    (traders for the game), markets, shape (crises for the game), the timings and the child
    process's peak resident memory ``peak_mb`` (or ``error``)."""
    points = grid if grid is not None else (QUICK_SCALING_GRID if quick else SCALING_GRID)
    out = []
    for kind, n, k, extra in points:
        rec = {"kind": kind, "accounts": n, "markets": k}
        rec[{"game": "crises", "command": "runs"}.get(kind, "shape")] = extra
        rec.update(_run_child(kind, (n, k, extra)))
        out.append(rec)
        if progress is not None:
            what = "traders" if kind == "game" else "accounts"
            progress(f"scaling {kind}: {n:,} {what} x {k} markets ({extra}): {_describe(rec)}")
    return out


def scaling_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Slopes and the issue-17 figures read off :func:`bench_scaling`'s records.

    ``slopes``: log-log slope of wave time on accounts per (shape, markets).
    ``markets_overhead``: at the largest account count timed with one position each and
    several market counts, ``t(K) / t(1)`` per K and what each market beyond the first adds
    (``ms_per_extra_market``: ``(t(K) - t(1)) / (K - 1)``, a cost that a faster one-market
    step does not inflate).  ``markets_doubling``: ``t(2K) / t(K)`` for
    the largest such pair.  ``markets_by_size``: the doubling and overhead ratios at every
    account count that has them.  ``crash``, ``big_wave``, ``game``: the crash processes, the
    largest venue-shaped wave and the largest game, as recorded.
    """
    ok = [r for r in records if "error" not in r]
    waves = [r for r in ok if r["kind"] == "wave"]
    slopes = []
    for shape in sorted({r["shape"] for r in waves}):
        for k in sorted({r["markets"] for r in waves if r["shape"] == shape}):
            pts = sorted(
                (r for r in waves if r["shape"] == shape and r["markets"] == k),
                key=lambda r: r["accounts"],
            )
            if len({r["accounts"] for r in pts}) >= 2:
                x = np.log([r["accounts"] for r in pts])
                y = np.log([r["step_seconds"] for r in pts])
                slopes.append(
                    {"shape": shape, "markets": k, "slope": float(np.polyfit(x, y, 1)[0])}
                )
    one = [r for r in waves if r["shape"] == "one"]
    by_n: dict[int, dict[int, dict[str, Any]]] = {}
    for r in one:
        by_n.setdefault(r["accounts"], {})[r["markets"]] = r
    multi = [n for n, ks in by_n.items() if 1 in ks and len(ks) >= 4] or [
        n for n, ks in by_n.items() if 1 in ks and len(ks) >= 2
    ]
    overhead, doubling = [], None
    by_size = []
    for n, ks in sorted(by_n.items()):
        pairs = [(k, 2 * k) for k in sorted(ks) if k > 1 and 2 * k in ks]
        if pairs and 1 in ks:
            k, k2 = pairs[-1]
            by_size.append(
                {
                    "accounts": n,
                    "markets": k,
                    "doubled": k2,
                    "ratio": ks[k2]["step_seconds"] / ks[k]["step_seconds"],
                    "overhead": ks[k]["step_seconds"] / ks[1]["step_seconds"],
                }
            )
    if multi:
        n = max(multi)  # the markets sweep: the most market counts at one size
        ks = by_n[n]
        base = ks[1]["step_seconds"]
        for k in sorted(ks):
            extra = ks[k]["step_seconds"] - base
            overhead.append(
                {
                    "accounts": n,
                    "markets": k,
                    "ratio": ks[k]["step_seconds"] / base,
                    "step_seconds": ks[k]["step_seconds"],
                    # what each market beyond the first adds to the step (the fixed cost of
                    # a market's wave, and its accounts' scatter over memory)
                    "ms_per_extra_market": 1e3 * extra / (k - 1) if k > 1 else None,
                    "peak_mb": ks[k]["peak_mb"],
                }
            )
        pairs = [(k, 2 * k) for k in sorted(ks) if k > 1 and 2 * k in ks]
        if pairs:
            k, k2 = pairs[-1]
            doubling = {
                "accounts": n,
                "markets": k,
                "doubled": k2,
                "ratio": ks[k2]["step_seconds"] / ks[k]["step_seconds"],
            }
    venue = [r for r in waves if r["shape"] == "venue"]
    big = max(venue, key=lambda r: (r["accounts"] * r["markets"], r["accounts"]), default=None)
    games = [r for r in ok if r["kind"] == "game"]
    game = max(games, key=lambda r: (r["accounts"], r["crises"]), default=None)
    return {
        "slopes": slopes,
        "markets_overhead": overhead,
        "markets_doubling": doubling,
        "markets_by_size": by_size,
        "crash": [r for r in ok if r["kind"] == "crash"],
        "command": next((r for r in ok if r["kind"] == "command"), None),
        "big_wave": big,
        "game": game,
        "errors": [
            f"{r['kind']} {r['accounts']:,} x {r['markets']}: {r['error']}"
            for r in records
            if "error" in r
        ],
    }
