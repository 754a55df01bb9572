"""Order-book depth: the price at which a market order of a given size fills.

The book is described by its marginal impact curve: after ``s`` dollars of notional have been
taken from one side within a step, the next dollar fills ``impact * (s / depth_eff) **
exponent`` (as a fraction of the mark) away from the mark, capped at ``max_impact``.  Depth
thins with stress (``depth_eff = depth * scale * (1 - thinning * stress)``), and with the
``scale`` that market makers set (withdrawing in a crash).  Consumption accumulates within a
step and the book refills between steps.
"""

from __future__ import annotations

import numpy as np

from market import arrays


def average_impact(
    start: np.ndarray, size: np.ndarray, depth: float, impact: float, exponent: float, cap: float
) -> np.ndarray:
    """Average impact (fraction of mark) of filling ``size`` dollars after ``start`` dollars.

    Integrates the marginal curve ``m(s) = impact * (s / depth) ** exponent`` from ``start``
    to ``start + size`` and divides by ``size``; the marginal impact never exceeds ``cap``.
    Vectorised over orders.
    """
    start = np.asarray(start, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64)
    n = start.size
    s_cap = depth * (cap / impact) ** (1.0 / exponent)  # where the curve reaches the cap
    # the integral at both ends of every order in one pass: [start + size, start]
    s = np.concatenate([start + size, start])
    below = np.minimum(s, s_cap)
    area = impact * depth / (exponent + 1.0) * (below / depth) ** (exponent + 1.0)
    area += cap * np.maximum(s - s_cap, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = (area[:n] - area[n:]) / size
    if bool((size > 0).all()):
        return avg
    marginal0 = np.minimum(impact * (start / depth) ** exponent, cap)
    return np.where(size > 0, avg, marginal0)


def fill_prices(
    mark: float,
    sizes: np.ndarray,
    side: np.ndarray,
    consumed: np.ndarray,
    depth_eff: float,
    impact: float,
    exponent: float,
    cap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill prices of a batch of market orders walking the book in array order.

    Args:
        mark: the mark price.
        sizes: order sizes in dollars of notional (>= 0), in execution order.
        side: +1 for buys (walk the asks, fill above the mark), -1 for sells.
        consumed: dollars already taken this step from (bids, asks), shape (2,).
        depth_eff: effective depth after stress and market-maker scaling.
        impact, exponent, cap: the impact curve.

    Returns:
        (prices, new_consumed).
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    side = np.asarray(side)
    prices = np.empty_like(sizes)
    new = np.array(consumed, dtype=np.float64)
    if sizes.size == 0:
        return prices, new
    if sizes.size <= arrays.FEW_ROWS:
        sz, sd = sizes.tolist(), side.tolist()
        if all(x > 0 for x in sz) and all(x in (-1, 1) for x in sd):  # a few orders: scalars
            px = _fill_prices_few(mark, sizes, sz, sd, new, depth_eff, impact, exponent, cap)
            return px, new
    lo, hi = side.min(), side.max()
    for j, sgn in enumerate((-1, 1)):  # column 0: bids (sells), column 1: asks (buys)
        if lo == hi:  # one side only (a crash's liquidations): no selection
            if lo != sgn:
                continue
            m, x = None, sizes
        else:
            m = side == sgn
            if not m.any():
                continue
            x = sizes[m]
        start = np.empty(x.size)
        start[0] = 0.0
        np.cumsum(x[:-1], out=start[1:])
        start = new[j] + start
        avg = average_impact(start, x, depth_eff, impact, exponent, cap)
        px = mark * (1.0 + sgn * avg)
        if m is None:
            prices = px
        else:
            prices[m] = px
        new[j] += x.sum()
    return prices, new


def _fill_prices_few(
    mark: float,
    sizes: np.ndarray,
    sz: list[float],
    side: list[int],
    new: np.ndarray,
    depth_eff: float,
    impact: float,
    exponent: float,
    cap: float,
) -> np.ndarray:
    """:func:`fill_prices` for a few orders of size > 0 on sides -1 / +1, in scalars: the same
    operations in the same order, the power through the same array routine over the same
    array (one side's ends, then its starts); ``sz``: the sizes as a list.  Adds each side's
    orders to ``new``."""
    out = [0.0] * len(sz)
    s_cap = depth_eff * (cap / impact) ** (1.0 / exponent)
    coef = impact * depth_eff / (exponent + 1.0)
    for j, sgn in enumerate((-1, 1)):  # column 0: bids (sells), column 1: asks (buys)
        at = [i for i, x in enumerate(side) if x == sgn]
        if not at:
            continue
        c0, run, ends, starts = float(new[j]), 0.0, [], []
        for i in at:  # start: what the side had taken plus the earlier orders (a cumsum)
            start = c0 + run
            ends.append(start + sz[i])
            starts.append(start)
            run += sz[i]
        s = ends + starts
        powers = (np.array([min(v, s_cap) for v in s]) / depth_eff) ** (exponent + 1.0)
        area = [coef * a + cap * max(v - s_cap, 0.0) for a, v in zip(powers.tolist(), s)]
        m = len(at)
        for t, i in enumerate(at):
            out[i] = mark * (1.0 + sgn * ((area[t] - area[m + t]) / sz[i]))
        new[j] += sz[at[0]] if m == 1 else sizes[at].sum()  # (the sum of one order: itself)
    return np.array(out)
