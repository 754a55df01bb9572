"""How a game's traders and book depth spread over its markets (``market.popularity``).

``uniform``: every market alike (traders drawn uniformly, the same depth each).  ``zipf``:
market k's share is proportional to ``(k + 1) ** -zipf``, the way a venue's largest books dwarf
its long tail.  ``oct10``: the shares of the 10 October 2025 event's coins, each coin's largest
winners' capacity over its ADL clusters (published per-coin file, see
:func:`experiments.studies.oct10.data.coin_sizes`), the ``markets`` largest coins; coins whose
published capacity is zero get the smallest positive one, so every market has traders.

A market's book depth is ``depth * markets * share``: the venue's total depth is the same as
with equal markets, and each book is as deep as its market is large (an assumption).
"""

from __future__ import annotations

import numpy as np

from market.errors import require


def market_shares(popularity: str, markets: int, zipf: float = 1.0) -> np.ndarray | None:
    """Each market's share of traders and depth (summing to 1); None for ``uniform``."""
    if popularity == "uniform":
        return None
    if popularity == "zipf":
        w = (np.arange(markets) + 1.0) ** -float(zipf)
    elif popularity == "oct10":
        from experiments.studies.oct10.data import coin_sizes

        sizes = coin_sizes().to_numpy(dtype=np.float64)
        require(
            markets <= sizes.size,
            "market.markets",
            f"at most {sizes.size} with popularity = 'oct10' (the event's coins)",
            markets,
        )
        w = sizes[:markets]
        w = np.maximum(w, w[w > 0].min())
    else:
        raise ValueError(f"market.popularity: unknown {popularity!r}")
    return w / w.sum()


def coin_names(markets: int) -> list[str]:
    """The event's coins, largest first (the market names under ``popularity = 'oct10'``)."""
    from experiments.studies.oct10.data import coin_sizes

    return [str(c) for c in coin_sizes().index[:markets]]


def draw_markets(
    rng: np.random.Generator, markets: int, shares: np.ndarray | None, size: int
) -> np.ndarray:
    """``size`` market indices: uniform (``shares`` None: the historical draw) or by share."""
    if shares is None:
        return rng.integers(0, markets, size=size)
    cum = np.cumsum(shares)
    return np.minimum(np.searchsorted(cum, rng.random(size), side="right"), markets - 1)
