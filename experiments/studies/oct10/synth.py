"""Synthetic winners that match each wave's published aggregates exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from market.adl import Snapshot
from market.errors import require

# =========================================================================== synthesis
#: The winner population fitted by ``adlgame experiment calibrate`` (seed 1, default grid) to
#: the per-wallet fill counts; tests refit and compare.
FITTED_POPULATION = 29_628
FITTED_TAIL = 2.0684
#: Fitted to the published wealth pro-rata PTSR wave by wave with the law above (seeds 1-3).
FITTED_PNL_POWER = 2.2277


@dataclass(frozen=True)
class ReplayConfig:
    """How the per-account detail the files do not hold is drawn, and replay settings.

    Attributes:
        population: winners of the whole event (one population persisting across waves, see
            :mod:`.population`); 0 draws each wave's winners independently (the earlier
            replay).  The default is fitted by ``adlgame experiment calibrate`` (seed 1) to
            the per-wallet fill counts, not to any published replay output.
        pnl_tail: Pareto tail index of wallet sizes: fills land in proportion to size.
            Fitted with ``population`` to the fill counts.  (Independent mode: the tail of
            each wave's PnL draw.)
        pnl_power: a winner's PnL in a wave is in proportion to ``size ** pnl_power``, so
            PnL has Pareto tail ``pnl_tail / pnl_power`` (fills grow slower than positions:
            a large position is closed in few, large fills).  Fitted by ``adlgame experiment
            calibrate`` to the published wealth pro-rata PTSR (median over waves): a replay
            setting chosen to match a published output, named as such in the report.
        fills_total: ADL fills of the event, spread over the waves in proportion to their PnL
            (population mode; 0: the packaged two_time_report.md's 35,022).
        accounts_total: (independent mode) winners spread over the waves in proportion to
            their PnL (default from headlines.json n_users when 0).
        min_accounts / max_accounts: bounds on a wave's winner count (speed cap 20,000; in
            population mode a wave keeps its ``max_accounts`` largest winners).
        leverage_median / leverage_sigma: log-normal position notional / account equity.
            The median 0.20x is the Oct-10 ADL'd positions' median leverage reported by
            ConejoCapital/HyperMultiAssetedADL; the spread is an assumption.
        maintenance_rate: maintenance margin per dollar of notional (used by rules that
            keep maintenance; an assumption).
        coupling_iterations: bisection steps of the rank coupling between PnL and equity/PnL.
        ilp_rows: rows given to min_max_ilp (the largest capacities; its budget is scaled by
            their capacity share): with a lot value per row its least-overshoot stage is a
            subset sum whose proof grows quickly with rows.
    """

    population: int = FITTED_POPULATION
    pnl_tail: float = FITTED_TAIL
    pnl_power: float = FITTED_PNL_POWER
    fills_total: int = 0
    accounts_total: int = 0
    min_accounts: int = 50
    max_accounts: int = 20_000
    leverage_median: float = 0.20
    leverage_sigma: float = 1.0
    maintenance_rate: float = 0.01
    coupling_iterations: int = 40
    ilp_rows: int = 200


@dataclass(frozen=True)
class RatioFit:
    """Two-piece log-normal for winners' equity/PnL through the published p10, median, p90.

    ``log r = log(median) + z * (sigma_lo if z < 0 else sigma_hi)``, z standard normal, so the
    three published quantiles are met exactly; draws are floored at 1 (equity >= PnL, i.e.
    cash >= 0).
    """

    median: float
    sigma_lo: float
    sigma_hi: float

    @classmethod
    def from_quantiles(cls, median: float, p10: float, p90: float) -> RatioFit:
        """Fit through ``p10 < median < p90`` (z_0.9 = 1.2816)."""
        require(
            1.0 <= p10 < median < p90,
            "ratio quantiles",
            "1 <= p10 < median < p90",
            (p10, median, p90),
        )
        z90 = float(special.ndtri(0.9))
        return cls(median, np.log(median / p10) / z90, np.log(p90 / median) / z90)

    def quantile(self, u: Any) -> np.ndarray:
        """The fitted quantile function at ``u`` in (0, 1), floored at 1."""
        z = special.ndtri(np.asarray(u, dtype=np.float64))
        return np.maximum(
            self.median * np.exp(z * np.where(z < 0, self.sigma_lo, self.sigma_hi)), 1.0
        )

    def trimmed_mean(self, alpha: float = 0.03) -> float:
        """Mean of the fitted law between its alpha and 1-alpha quantiles (midpoint rule)."""
        u = alpha + (np.arange(20_000) + 0.5) / 20_000 * (1 - 2 * alpha)
        return float(self.quantile(u).mean())


def accounts_per_wave(waves: pd.DataFrame, cfg: ReplayConfig, total: int) -> np.ndarray:
    """Winners per wave: ``clip(round(total * pnl_w / sum pnl), min, max)`` (synthetic)."""
    pnl = waves["winners_pnl_start_usd"].to_numpy(dtype=np.float64)
    n = np.rint(total * pnl / pnl.sum())
    return np.clip(n, cfg.min_accounts, cfg.max_accounts).astype(np.int64)


def _normal_scores(x: np.ndarray) -> np.ndarray:
    """Blom-free normal scores of the ranks of ``x``: ``ndtri((rank + 0.5) / n)``."""
    rank = np.empty(x.size, dtype=np.int64)
    rank[np.argsort(x, kind="stable")] = np.arange(x.size)
    return special.ndtri((rank + 0.5) / x.size)


def couple_ratios(
    pnl: np.ndarray, ratios: np.ndarray, noise: np.ndarray, target: float, iterations: int = 40
) -> tuple[np.ndarray, float]:
    """Pair equity/PnL draws with PnL so that ``sum(pnl * r)`` is close to ``target``.

    A Gaussian rank coupling: account i gets the ratio whose rank equals the rank of
    ``rho * z_i + sqrt(1 - rho^2) * noise_i`` (z_i the normal score of its PnL rank).  rho = 1
    gives the largest winners the largest ratios, rho = -1 the smallest; rho is found by
    bisection (``sum(pnl * r)`` rises with rho).  The marginal law of the ratios is unchanged.
    Returns the assigned ratios and rho.
    """
    zp = _normal_scores(pnl)
    r_sorted = np.sort(ratios)
    rank = np.empty(pnl.size, dtype=np.int64)

    def assign(rho: float) -> np.ndarray:
        t = rho * zp + np.sqrt(max(1.0 - rho * rho, 0.0)) * noise
        rank[np.argsort(t, kind="stable")] = np.arange(pnl.size)
        return r_sorted[rank]

    lo, hi = -1.0, 1.0
    best, best_rho, best_gap = assign(0.0), 0.0, np.inf
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        r = assign(mid)
        total = float(pnl @ r)
        if abs(total - target) < best_gap:
            best, best_rho, best_gap = r, mid, abs(total - target)
        if total < target:
            lo = mid
        else:
            hi = mid
    for edge in (-1.0, 1.0):  # the target may lie beyond what any coupling reaches
        r = assign(edge)
        if abs(float(pnl @ r) - target) < best_gap:
            best, best_rho, best_gap = r, edge, abs(float(pnl @ r) - target)
    return best, best_rho


@dataclass(frozen=True)
class SyntheticWave:
    """One wave's synthetic eligible winners and the diagnostics of the draw."""

    snapshot: Snapshot
    rho: float
    ratio_median: float
    ratio_p10: float
    ratio_p90: float
    top_share: float


def synth_wave(
    wave: pd.Series | dict,
    seed: int,
    fit: RatioFit,
    n: int,
    cfg: ReplayConfig,
    sizes: np.ndarray | None = None,
) -> SyntheticWave:
    """Draw the eligible winners of one wave so that its aggregates hold exactly.

    Per account (all synthetic): PnL in proportion to ``sizes`` (the wave's members of the
    event's population) or, without them, to a fresh Pareto(``pnl_tail``) draw, scaled so that
    ``sum(PnL) = winners_pnl_start_usd``; equity/PnL ``r`` from ``fit``, paired with PnL by
    :func:`couple_ratios`, then cash ``PnL (r - 1)`` scaled so that
    ``sum(equity) = winners_equity_start_usd`` (r stays >= 1); notional = leverage x equity;
    winners are shorts (the crash liquidated longs).  In the snapshot (mark 1, one lot = one
    dollar of notional): ``lots = ceil(notional)``, ``entry = 1 + PnL / lots`` (closing one
    lot at its entry price hands over its PnL, so ``lot_value = PnL / lots`` and closing the
    whole position raises exactly the capacity), ``capacity = PnL`` (profits only).

    Randomness: ``SeedSequence(seed, spawn_key=(wave,))``, so a wave's draw does not depend on
    the other waves (the population's sizes are drawn once per seed, :func:`wave_sizes`).
    """
    wid = int(wave["wave"])
    pnl_total = float(wave["winners_pnl_start_usd"])
    eq_total = float(wave["winners_equity_start_usd"])
    require(n >= 1, "oct10 accounts", ">= 1", n)
    require(pnl_total > 0, f"oct10 wave {wid}: winners_pnl_start_usd", "> 0", pnl_total)
    require(
        eq_total > pnl_total,
        f"oct10 wave {wid}: winners_equity_start_usd",
        "> winners_pnl_start_usd",
        eq_total,
    )
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(wid,)))
    u_pnl, u_ratio, noise, z_lev = (
        rng.random(n),
        rng.random(n),
        rng.standard_normal(n),
        rng.standard_normal(n),
    )
    if sizes is not None:
        require(len(sizes) == n, "oct10 sizes", f"{n} sizes", len(sizes))
        raw = np.asarray(sizes, dtype=np.float64)
    else:
        raw = (1.0 - u_pnl) ** (-1.0 / cfg.pnl_tail)
    pnl = raw * (pnl_total / raw.sum())
    ratios, rho = couple_ratios(
        pnl,
        fit.quantile(np.clip(u_ratio, 1e-12, 1 - 1e-12)),
        noise,
        eq_total,
        cfg.coupling_iterations,
    )
    cash = pnl * (ratios - 1.0)
    cash *= (eq_total - pnl_total) / cash.sum()
    equity = pnl + cash
    lev = cfg.leverage_median * np.exp(cfg.leverage_sigma * z_lev)
    lots = np.maximum(np.ceil(lev * equity), 1.0)
    lot_value = pnl / lots
    snap = Snapshot.build(
        pnl,
        lots=lots.astype(np.int64),
        lot_value=lot_value,
        side=-1,
        entry=1.0 + lot_value,
        upnl=pnl,
        cash=cash,
        equity=equity,
        account_upnl=pnl,
        leverage=lots / equity,
        maintenance=cfg.maintenance_rate * lots,
        mark=1.0,
        prev_mark=1.0,
        bankruptcy_price=1.0,
        lot_size=1.0,
        market=wid,
    )
    r = equity / pnl
    return SyntheticWave(
        snapshot=snap,
        rho=rho,
        ratio_median=float(np.median(r)),
        ratio_p10=float(np.quantile(r, 0.1)),
        ratio_p90=float(np.quantile(r, 0.9)),
        top_share=float(pnl.max() / pnl_total),
    )


def wave_sizes(
    waves: pd.DataFrame, seed: int, cfg: ReplayConfig, fills_total: int
) -> list[np.ndarray]:
    """Per wave, the sizes of the members of the event's population that it fills.

    The population (``cfg.population`` Pareto(``cfg.pnl_tail``) sizes) is drawn once from
    ``SeedSequence(seed, spawn_key=(POPULATION_KEY,))``; wave ``w``'s fills (the event's fills
    in proportion to its PnL, at least ``cfg.min_accounts``: one wave's PnL share is a single
    fill) land on members in proportion to size, from ``SeedSequence(seed, spawn_key=(w, 1))``.
    A wave keeps at most ``cfg.max_accounts`` members, its largest.
    """
    from experiments.studies.oct10.population import draw_sizes, wave_fills, wave_members

    pop_rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(POPULATION_KEY,)))
    sizes = draw_sizes(pop_rng.random(int(cfg.population)), cfg.pnl_tail)
    fills = wave_fills(waves["winners_pnl_start_usd"].to_numpy(dtype=np.float64), fills_total)
    fills = np.maximum(fills, cfg.min_accounts)
    out = []
    for wid, f in zip(waves["wave"].astype(int), fills, strict=True):
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(wid, 1)))
        _, s = wave_members(sizes, int(f), rng)
        s = s**cfg.pnl_power
        if s.size > cfg.max_accounts:
            s = np.sort(s)[-cfg.max_accounts :]
        out.append(s)
    return out


#: Spawn key of the event population's stream (far from any wave id).
POPULATION_KEY = 1_000_000
