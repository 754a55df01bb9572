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
from market.arrays import group_runs, sum_list, unique_sorted


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
    s_cap = depth * (cap / impact) ** (1.0 / exponent)  # where the curve reaches the cap
    coef = impact * depth / (exponent + 1.0)
    return _average_impact(start, size, depth, impact, exponent, cap, s_cap, coef)


def _average_impact(
    start: np.ndarray,
    size: np.ndarray,
    depth: float | np.ndarray,
    impact: float | np.ndarray,
    exponent: float,
    cap: float | np.ndarray,
    s_cap: float | np.ndarray,
    coef: float | np.ndarray,
) -> np.ndarray:
    """:func:`average_impact` with the curve's cap point ``s_cap`` and area coefficient
    ``coef`` given; ``depth``, ``impact``, ``cap``, ``s_cap`` and ``coef`` are one number or
    one per order (one book's curve, or each order's own book); ``exponent`` is one number
    (the power is computed with a scalar exponent, as for one book)."""
    n = start.size
    both = (lambda v: v) if np.ndim(depth) == 0 else (lambda v: np.concatenate([v, v]))
    # the integral at both ends of every order in one pass: [start + size, start]
    s = np.concatenate([start + size, start])
    s_cap2 = both(s_cap)
    below = np.minimum(s, s_cap2)
    area = both(coef) * (below / both(depth)) ** (exponent + 1.0)
    area += both(cap) * np.maximum(s - s_cap2, 0.0)
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
            px = fill_prices_few(mark, sz, sd, new, depth_eff, impact, exponent, cap)
            return np.array(px), new
    lo, hi = side.min(), side.max()
    start = np.zeros(sizes.size)  # each order's start on its side, then one curve for all
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
        run = np.empty(x.size)
        run[0] = 0.0
        np.cumsum(x[:-1], out=run[1:])
        if m is None:
            start = new[j] + run
        else:
            start[m] = new[j] + run
        new[j] += x.sum()
    avg = average_impact(start, sizes, depth_eff, impact, exponent, cap)
    return mark * (1.0 + side * avg), new


def fill_prices_books(
    mark: np.ndarray,
    sizes: np.ndarray,
    side: np.ndarray,
    bounds: list[int],
    consumed: np.ndarray,
    depth_eff: list[float],
    impact: list[float],
    exponent: list[float],
    cap: list[float],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fill_prices` over several books at once: the orders ``bounds[b]`` to
    ``bounds[b + 1]`` walk book b, whose mark (one per order), consumption (row b of
    ``consumed``) and curve (``depth_eff``, ``impact``, ``exponent``, ``cap``: one per book)
    are its own.

    The same numbers as one :func:`fill_prices` call per book: each side's running starts
    and totals are summed book by book, and the curve is evaluated once over all the books
    sharing an exponent (per-order curve values, the power with a scalar exponent).
    Returns (prices, the books' new consumption)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    side = np.asarray(side)
    new = np.array(consumed, dtype=np.float64)
    n = sizes.size
    if n == 0:
        return np.empty(0), new
    edge = np.asarray(bounds, dtype=np.int64)
    count = np.diff(edge)
    # each order's start: what its side of its book had taken, plus the book's earlier
    # orders on that side (a running sum per book and side, as one book's call sums it).
    # The orders grouped by (book, side), in their order within a group: one run per group.
    book = np.repeat(np.arange(count.size, dtype=np.int64), count)
    group = 3 * book + side + 1
    order, group, lo_g, hi_g = group_runs(group)
    x = sizes if order is None else sizes[order]
    run = np.empty(n)
    base_g = []
    for g, lo, hi in zip(group[lo_g].tolist(), lo_g, hi_g, strict=True):
        b, j = divmod(g, 3)  # j: 0 sells (the bids), 1 no order, 2 buys (the asks)
        if j == 1:
            base_g.append(0.0)
            run[lo:hi] = 0.0
            continue
        j //= 2
        run[lo] = 0.0
        np.cumsum(x[lo : hi - 1], out=run[lo + 1 : hi])
        base_g.append(new[b, j])
        new[b, j] += x[lo:hi].sum()
    # (an order of no size: start 0, priced at the mark)
    start = np.repeat(np.array(base_g), np.subtract(hi_g, lo_g)) + run
    if order is not None:
        start[order] = start.copy()
    # each book's cap point and area coefficient as one book's call computes them, per order
    s_cap_b, coef_b = [], []
    for d, c, i, e in zip(depth_eff, cap, impact, exponent, strict=True):
        s_cap_b.append(d * (c / i) ** (1.0 / e))
        coef_b.append(i * d / (e + 1.0))
    depth, imp, cp, s_cap, coef, expo = (
        np.repeat(np.asarray(v, dtype=np.float64), count)
        for v in (depth_eff, impact, cap, s_cap_b, coef_b, exponent)
    )
    avg = np.empty(n)
    for e in unique_sorted(np.asarray(exponent, dtype=np.float64)).tolist():
        g = expo == e  # one evaluation per exponent, the power with a scalar exponent
        g = slice(None) if bool(g.all()) else g
        avg[g] = _average_impact(start[g], sizes[g], depth[g], imp[g], e, cp[g], s_cap[g], coef[g])
    prices = mark * (1.0 + side * avg)
    return prices, new


def fill_prices_few(
    mark: float,
    sz: list[float],
    side: list[int],
    new: np.ndarray,
    depth_eff: float,
    impact: float,
    exponent: float,
    cap: float,
) -> list[float]:
    """:func:`fill_prices` for a few orders of sizes ``sz`` > 0 on sides -1 / +1 (lists), in
    scalars: the same operations in the same order, the power through the same array routine
    over the same array (one side's ends, then its starts).  Adds each side's orders to
    ``new`` (the consumption, in place); returns the prices as a list."""
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
        new[j] += sum_list([sz[i] for i in at])
    return out
