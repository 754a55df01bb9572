"""The one-shot crash experiment behind ``adlgame crash``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from market.adl.base import ADLPolicy
from market.arrays import unique_sorted
from market.exchange import BackstopConfig, Exchange
from market.invariants import check_invariants
from market.population import PopulationSpec, seed_population
from market.prices import crash_path
from market.spec import MarketSpec


@dataclass(frozen=True)
class CrashConfig:
    """Everything a crash run depends on (with the seed, it fixes the numbers)."""

    accounts: int = 100_000
    markets: int = 1
    drop: float = 0.3
    steps: int = 10
    seed: int = 1
    fund: float = 1e6
    backstop: str = "fund"
    correlation: float = 1.0
    mark: float = 100.0
    lot_size: float = 0.1
    depth: float = 5e6
    execution: str | None = None  # None: the policy's own
    shortfall: str | None = None  # None: the policy's own, else written off
    positions_tail: float = 1.5  # markets per account (market.population.PopulationSpec)
    market_zipf: float = 1.0  # market popularity (market.population.PopulationSpec)


def crash_exchange(
    cfg: CrashConfig, policy: ADLPolicy | None, rng: np.random.Generator
) -> Exchange:
    """The exchange of a crash before its first step: markets, backstop, the population."""
    specs = tuple(
        MarketSpec(name=f"M{k}", lot_size=cfg.lot_size, depth=cfg.depth) for k in range(cfg.markets)
    )
    ex = Exchange(
        specs,
        cfg.mark,
        policy=policy,
        backstop=BackstopConfig(kind=cfg.backstop, capital=cfg.fund),
        execution=cfg.execution,
        shortfall=cfg.shortfall,
        capacity=cfg.accounts + 8,
    )
    spec = PopulationSpec(
        accounts=cfg.accounts, positions_tail=cfg.positions_tail, market_zipf=cfg.market_zipf
    )
    seed_population(ex, spec, rng)
    return ex


def crash_streams(cfg: CrashConfig) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The crash's random streams, spawned from ``cfg.seed``: (population, prices)."""
    pop_ss, price_ss = np.random.SeedSequence(cfg.seed).spawn(2)
    return pop_ss, price_ss


def run_crash(cfg: CrashConfig, policy: ADLPolicy | None = None) -> dict:
    """Build a synthetic population, crash the marks, run the waterfall every step.

    Random streams: one :class:`numpy.random.SeedSequence` from ``cfg.seed`` spawns the
    population stream and the price stream, so the same seed gives the same numbers.
    Returns the headline figures as a plain dict: ``adl_budget`` is what the deficit needed
    after the backstop, ``adl_target`` what the policy was asked to close or raise,
    ``overshoot`` / ``undershoot`` what ADL took above / below the need, wave by wave.
    """
    pop_ss, price_ss = crash_streams(cfg)
    ex = crash_exchange(cfg, policy, np.random.default_rng(pop_ss))
    path = crash_path(
        np.full(cfg.markets, cfg.mark),
        cfg.steps,
        drop=cfg.drop,
        start=0,
        duration=cfg.steps,
        correlation=cfg.correlation,
        rng=np.random.default_rng(price_ss),
    )
    totals = {
        "liquidated": 0,
        "deficit": 0.0,
        "backstop_used": 0.0,
        "adl_raised": 0.0,
        "adl_budget": 0.0,
        "adl_target": 0.0,
        "overshoot": 0.0,
        "undershoot": 0.0,
        "residual": 0.0,
    }
    for marks in path[1:]:
        rep = ex.step(marks)
        totals["liquidated"] += rep.liquidated
        for key in (
            "deficit",
            "backstop_used",
            "adl_raised",
            "adl_budget",
            "adl_target",
            "overshoot",
            "undershoot",
            "residual",
        ):
            totals[key] += getattr(rep, key)
    adl = ex.log.adl.to_array()
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(adl["capacity"] > 0, adl["haircut"] / adl["capacity"], 0.0)
    inv = check_invariants(ex)
    out = {
        **{k: (int(v) if k == "liquidated" else float(v)) for k, v in totals.items()},
        "accounts_touched": int(unique_sorted(adl["account"]).size),
        "max_haircut_frac": float(frac.max(initial=0.0)),
        "fund_left": float(ex.fund),
        "execution": ex.execution,
        "shortfall": ex.shortfall,
        "carried_debt": float(ex.debt),
        "venue_paid": float(ex.venue_paid),
        "written_off": float(ex.bad_debt),
        "conservation_error": inv.conservation_error,
        "oi_balanced": bool(not inv.oi_imbalance.any()),
        "policy": policy.name if policy is not None else None,
        "config": asdict(cfg),
    }
    return out
