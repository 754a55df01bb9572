"""The whole oct10 experiment: replay, game, files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.studies.oct10.data import (
    Oct10Data,
    load_oct10,
)
from experiments.studies.oct10.game import (
    game_overshoot,
)
from experiments.studies.oct10.per_market import (
    per_market_totals,
    replay_per_market,
    spread_table,
)
from experiments.studies.oct10.report import (
    write_report,
)
from experiments.studies.oct10.synth import (
    ReplayConfig,
)
from experiments.studies.oct10.waves import (
    replay,
    run_totals,
    wave_table,
)
from market.errors import require


def run_experiment(
    out: str | Path,
    seeds: int = 5,
    *,
    cfg: ReplayConfig | None = None,
    data: Oct10Data | None = None,
    progress: Callable[[int, int], None] | None = None,
    figures: Callable[..., list] | None = None,
    context: dict[str, Any] | None = None,
    game_seeds: int = 2,
    game_traders: int | None = None,
    market_seeds: int = 3,
) -> dict[str, Any]:
    """Replay, then write ``report.md``, ``waves.csv`` and ``runs.csv`` into ``out``.

    ``market_seeds`` seeds (at most ``seeds``; 0: skipped) of the per-market replay
    (:mod:`.per_market`: each coin on its own lot grid) go to ``per_market.csv`` and the
    report's section 3c, with the spread table (``per_market_spread.csv``).

    ``game_seeds`` seeds of the oct10 scenario are played for :func:`game_overshoot` (0:
    skipped), with ``game_traders`` traders (None: the scenario's); their rows go to
    ``game.csv``.

    ``figures`` and ``context``: see :func:`write_report` (figures are drawn only with a
    writer).  Returns a small summary: paths written, wall time, total overshoot per policy
    (synthetic mean), the published production overshoot and the figure stems drawn.
    """
    require(
        isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1,
        "--seeds",
        "an integer >= 1",
        seeds,
    )
    t0 = time.perf_counter()
    cfg = cfg or ReplayConfig()
    data = data or load_oct10()
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    runs, draws = replay(data, seeds, cfg, progress=progress)
    table = wave_table(data, runs)
    table.to_csv(path / "waves.csv", index=False)
    runs.to_csv(path / "runs.csv", index=False)
    game = game_overshoot(game_seeds, game_traders) if game_seeds > 0 else None
    if game is not None:
        game.to_csv(path / "game.csv", index=False)
    per_market = None
    m_seeds = min(int(market_seeds), seeds)
    if m_seeds > 0:
        pm_runs = replay_per_market(data, m_seeds, cfg)
        pm_runs.to_csv(path / "per_market.csv", index=False)
        spreads = spread_table(data, m_seeds, cfg)
        spreads.to_csv(path / "per_market_spread.csv", index=False)
        per_market = (per_market_totals(pm_runs, data, runs), spreads)
    elapsed = time.perf_counter() - t0
    report = write_report(
        path,
        data,
        runs,
        draws,
        table,
        seeds=seeds,
        cfg=cfg,
        elapsed=elapsed,
        figures=figures,
        context=context,
        game=game,
        per_market=per_market,
    )
    totals = run_totals(runs).groupby("policy", sort=False)["overshoot"].mean()
    return {
        "report": str(report),
        "waves_csv": str(path / "waves.csv"),
        "seconds": time.perf_counter() - t0,
        "overshoot_total": {k: float(v) for k, v in totals.items()},
        "published_prod_overshoot": data.prod_overshoot,
        "game_ratio_h0_over_b": (
            {
                p: float(g["H0"].sum() / g["B_needed"].sum())
                for p, g in game.groupby("policy", sort=False)
                if g["B_needed"].sum() > 0
            }
            if game is not None
            else {}
        ),
        "figures": [p.stem for p in sorted(path.glob("*.svg"))] if figures is not None else [],
        "per_market_overshoot": (
            {r["policy"]: float(r["overshoot"]) for _, r in per_market[0].iterrows()}
            if per_market is not None
            else {}
        ),
    }
