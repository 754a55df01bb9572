"""Simulated method of moments for the event's winner population (no game runs).

:func:`fit_law` finds the :class:`~experiments.studies.oct10.population.WalletLaw` whose
moments come closest to the real ones: the sum of squared relative deviations over
:data:`~experiments.studies.oct10.population.MOMENTS` (identity weighting), plus a penalty when
the model has fewer wallets with 5 or more fills than the real classification holds.  Common
uniforms make the objective a deterministic function of the parameters; a log-spaced grid finds
the basin and Nelder-Mead refines it.  :func:`bootstrap_laws` refits on wallets resampled with
replacement and fresh uniforms, so its spread carries both the data's and the simulation's
noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from experiments.studies.oct10.population import (
    MOMENTS,
    WalletLaw,
    WalletTargets,
    model_moments,
    observed_moments,
)

__all__ = ["Fit", "bootstrap_laws", "fit_law"]

#: Search box: the tail index and the population as a multiple of the ADL'd wallets.
TAIL_RANGE = (0.6, 5.0)
POPULATION_RANGE = (1.0, 30.0)


@dataclass(frozen=True)
class Fit:
    """A fitted law, its moments, the real ones and the objective's value."""

    law: WalletLaw
    fitted: dict[str, float]
    target: dict[str, float]
    loss: float


def _uniforms(seed: int, targets: WalletTargets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_max = int(np.ceil(POPULATION_RANGE[1] * targets.wallets))
    ss = np.random.SeedSequence(int(seed))
    a, b, c = (np.random.default_rng(s) for s in ss.spawn(3))
    return a.random(n_max), b.random(targets.fills), c.random(n_max)


def _objective(
    targets: WalletTargets, target: dict[str, float], seed: int
) -> Callable[[np.ndarray], tuple[float, dict[str, float]]]:
    u_size, u_fills, u_pick = _uniforms(seed, targets)
    classified = int(targets.counts.size)

    def loss(x: np.ndarray) -> tuple[float, dict[str, float]]:
        tail = float(np.clip(x[0], *TAIL_RANGE))
        mult = float(np.clip(np.exp(x[1]), *POPULATION_RANGE))
        law = WalletLaw(round(mult * targets.wallets), tail)
        m = model_moments(law, targets.fills, classified, u_size, u_fills, u_pick)
        dev = [(m[k] - target[k]) / target[k] for k in MOMENTS]
        short = max(0.0, 1.0 - m["n_5plus"] / classified)
        value = float(np.nansum(np.square(dev)) + 10.0 * short * short)
        return value, {**m, "population": law.population, "tail": law.tail}

    return loss


def _law(m: dict[str, float]) -> WalletLaw:
    return WalletLaw(int(m["population"]), float(m["tail"]))


def fit_law(
    targets: WalletTargets,
    *,
    seed: int = 1,
    grid: int = 25,
    start: WalletLaw | None = None,
    target: dict[str, float] | None = None,
) -> Fit:
    """The law closest to ``target`` (default: the real moments of ``targets``).

    With ``start`` the grid is skipped and Nelder-Mead starts there (bootstrap refits).
    """
    target = target or observed_moments(targets)
    loss = _objective(targets, target, seed)
    if start is None:
        best = (np.inf, np.zeros(2))
        for tail in np.geomspace(*TAIL_RANGE, grid):
            for mult in np.geomspace(*POPULATION_RANGE, grid):
                x = np.array([tail, np.log(mult)])
                v = loss(x)[0]
                if v < best[0]:
                    best = (v, x)
        x0 = best[1]
    else:
        x0 = np.array([start.tail, np.log(start.population / targets.wallets)])
    res = optimize.minimize(
        lambda x: loss(x)[0],
        x0,
        method="Nelder-Mead",
        options={"xatol": 1e-3, "fatol": 1e-7, "maxiter": 400, "initial_simplex": None},
    )
    x = res.x if res.fun <= loss(x0)[0] else x0
    value, m = loss(x)
    return Fit(
        law=_law(m), fitted={k: m[k] for k in (*MOMENTS, "n_5plus")}, target=target, loss=value
    )


def bootstrap_laws(
    targets: WalletTargets, point: Fit, replicates: int, *, seed: int = 1
) -> list[Fit]:
    """Refits on the classified wallets resampled with replacement, each with fresh uniforms."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    fits = []
    for b in range(int(replicates)):
        counts = rng.choice(targets.counts, size=targets.counts.size, replace=True)
        boot = WalletTargets(fills=targets.fills, wallets=targets.wallets, counts=counts)
        fits.append(fit_law(boot, seed=1000 + b, start=point.law))
    return fits
