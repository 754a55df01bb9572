"""Static description of a market: lot size, margin rates and tiers, fees, book depth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from market.errors import require


@dataclass(frozen=True)
class MarketSpec:
    """One perpetual market.

    Attributes:
        name: ticker, for reports.
        lot_size: base units per lot; positions are whole lots.
        initial_margin: initial margin rate (1 / max leverage).
        maintenance_margin: maintenance margin rate of the first tier.
        tiers: optional ``((notional_floor, rate), ...)`` maintenance tiers above the first,
            Binance-style: ``MM = notional * rate_tier - cumulative_deduction``.
        taker_fee: fee rate on taker notional (paid by the trader).
        maker_fee: fee rate on maker notional (paid by the book; negative is a rebate).
        liquidation_fee: clearance fee rate on liquidated notional, paid to the insurance fund
            out of whatever equity the liquidated account has left.
        depth: book notional (dollars) at which the marginal price impact equals ``impact``.
        impact: marginal price impact (fraction of the mark) after ``depth`` dollars traded.
        impact_exponent: shape of the impact curve (0.5 is the square-root law).
        max_impact: cap on the marginal impact, so fills stay at positive prices.
        stress_thinning: how much depth thins at full stress (0: never, 0.9: to 10 %).
        stress_ref: absolute log return per step at which stress reaches 1.
        chunk_threshold: liquidations above this notional go to the book in chunks.
        chunk_fraction: share of the position sent per step when chunking.
    """

    name: str = "PERP"
    lot_size: float = 1.0
    initial_margin: float = 0.02
    maintenance_margin: float = 0.01
    tiers: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    taker_fee: float = 0.00045
    maker_fee: float = 0.00015
    liquidation_fee: float = 0.005
    depth: float = 5e6
    impact: float = 0.01
    impact_exponent: float = 0.5
    max_impact: float = 0.9
    stress_thinning: float = 0.8
    stress_ref: float = 0.05
    chunk_threshold: float = 1e5
    chunk_fraction: float = 0.2

    def __post_init__(self) -> None:
        p = f"market[{self.name}]"
        require(
            self.lot_size > 0 and np.isfinite(self.lot_size), f"{p}.lot_size", "> 0", self.lot_size
        )
        require(
            0 < self.maintenance_margin < 1,
            f"{p}.maintenance_margin",
            "in (0, 1)",
            self.maintenance_margin,
        )
        require(
            self.maintenance_margin <= self.initial_margin <= 1,
            f"{p}.initial_margin",
            "in [maintenance_margin, 1]",
            self.initial_margin,
        )
        for name in ("taker_fee", "maker_fee", "liquidation_fee"):
            v = getattr(self, name)
            require(-0.01 <= v < 0.1, f"{p}.{name}", "in [-0.01, 0.1)", v)
        require(self.depth > 0, f"{p}.depth", "> 0", self.depth)
        require(0 < self.impact < 1, f"{p}.impact", "in (0, 1)", self.impact)
        require(self.impact_exponent > 0, f"{p}.impact_exponent", "> 0", self.impact_exponent)
        require(0 < self.max_impact < 1, f"{p}.max_impact", "in (0, 1)", self.max_impact)
        require(
            0 <= self.stress_thinning < 1, f"{p}.stress_thinning", "in [0, 1)", self.stress_thinning
        )
        require(self.stress_ref > 0, f"{p}.stress_ref", "> 0", self.stress_ref)
        require(
            0 < self.chunk_fraction <= 1, f"{p}.chunk_fraction", "in (0, 1]", self.chunk_fraction
        )
        floors = [t[0] for t in self.tiers]
        require(floors == sorted(floors), f"{p}.tiers", "sorted by notional floor", floors)
        for _floor, rate in self.tiers:
            require(self.maintenance_margin <= rate < 1, f"{p}.tiers", "rates in [mmr, 1)", rate)

    def tier_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(floors, rates, cumulative deductions) including the first tier at floor 0."""
        floors = np.array([0.0] + [t[0] for t in self.tiers])
        rates = np.array([self.maintenance_margin] + [t[1] for t in self.tiers])
        ded = np.zeros_like(rates)
        for j in range(1, rates.size):
            ded[j] = ded[j - 1] + floors[j] * (rates[j] - rates[j - 1])
        return floors, rates, ded


def specs_arrays(specs: tuple[MarketSpec, ...], name: str) -> np.ndarray:
    """An attribute of every market as a (K,) float array."""
    return np.array([getattr(s, name) for s in specs], dtype=np.float64)
