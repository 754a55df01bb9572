"""Plain-Python reference implementations of the ADL allocation rules.

These are the readable definitions: explicit loops over rows, no numpy tricks.  They are
slow on purpose and are not used by the game; the tests compare the vectorised production
code (:func:`market.adl.ordering.queue_allocate`, :func:`market.adl.base.water_fill`) against
them on random inputs.  Results are returned as float64 numpy arrays only so that the tests
can compare them directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["reference_dydx", "reference_pro_rata", "reference_queue"]


def reference_queue(capacity: Sequence[float], score: Sequence[float], budget: float) -> np.ndarray:
    """Reference queue: a plain loop over rows in descending score order.

    Rows are visited by score, highest first; equal scores are visited in row order.  Each
    row gives ``min(capacity, remaining)`` and the remaining budget falls by that much; the
    loop stops when nothing remains.  This is the definition that
    :func:`market.adl.ordering.queue_allocate` must match.
    """
    caps = [float(x) for x in capacity]
    scores = [float(x) for x in score]
    n = len(caps)
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    out = [0.0] * n
    remaining = float(budget)
    for i in order:
        if remaining <= 0.0:
            break
        take = min(caps[i], remaining)
        out[i] = take
        remaining -= take
    return np.array(out, dtype=np.float64)


def reference_pro_rata(
    capacity: Sequence[float],
    budget: float,
    *,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Reference capped pro-rata (water-filling), as a plain loop over rows.

    Finds ``h_i = min(c_i, eta * w_i)`` with ``sum(h) = budget`` by repeated passes: share the
    remaining budget over the uncapped rows in proportion to their weights; every row whose
    share reaches its cap is fixed at the cap and leaves; repeat until no row is capped.  If
    ``budget >= sum(capacity)`` every row gives its whole capacity.  Rows with zero weight
    or zero capacity give nothing.

    With ``weights=None`` the weights are the capacities themselves, which is plain pro-rata
    ``h_i = c_i * B / sum(c)`` (the caps never bind).  Pass ``weights=[1, 1, ...]`` for the
    common-level water-filling of :func:`market.adl.base.water_fill` with ``weights=None``.
    """
    caps = [float(x) for x in capacity]
    w = list(caps) if weights is None else [float(x) for x in weights]
    n = len(caps)
    total = 0.0
    for c in caps:
        total += c
    if budget >= total:
        return np.array(caps, dtype=np.float64)
    out = [0.0] * n
    active = [i for i in range(n) if caps[i] > 0.0 and w[i] > 0.0]
    remaining = float(budget)
    while active and remaining > 0.0:
        weight_sum = 0.0
        for i in active:
            weight_sum += w[i]
        level = remaining / weight_sum
        still_open = []
        capped_any = False
        for i in active:
            if level * w[i] >= caps[i]:
                out[i] = caps[i]
                remaining -= caps[i]
                capped_any = True
            else:
                still_open.append(i)
        if not capped_any:
            for i in active:
                out[i] = level * w[i]
            break
        active = still_open
    return np.array(out, dtype=np.float64)


def reference_dydx(
    capacity: Sequence[float],
    lots: Sequence[int],
    lot_value: float,
    order: Sequence[int],
    budget: float,
    max_iterate: int | None = None,
) -> np.ndarray:
    """Reference dYdX deleveraging walk, one lot value for every row, as a plain loop.

    The liquidated position to offset is ``ceil(B / lot_value)`` lots (forgiving float noise:
    ``ceil(x - 1e-9 - 1e-12 x)``, ``x = B / lot_value``).  Rows are visited in ``order`` (the
    walk: listed rows from the start index), at most ``max_iterate`` of them.  Each visited row
    is offered ``min(remaining, lots_i)`` lots; if the offer is more lots than its capacity
    pays for (``floor(c_i / v)`` with a relative slack of 1e-12, never more than ``lots_i``)
    the row is skipped and gives nothing, else it gives the offer and the remaining lots fall
    by it.  The loop stops when nothing remains.  Returns dollars per row (``lots *
    lot_value``).  This is the definition :class:`market.adl.queues.DydxQueue` must match.
    """
    caps = [float(x) for x in capacity]
    held = [int(x) for x in lots]
    out = [0.0] * len(caps)
    v = float(lot_value)
    tol = 1e-9 * max(1.0, abs(float(budget)))
    if v <= 0.0 or budget <= tol:
        return np.array(out, dtype=np.float64)
    x = float(budget) / v
    remaining = math.ceil(x - 1e-9 - 1e-12 * x)
    for visited, i in enumerate(order):
        if remaining <= 0 or (max_iterate is not None and visited >= max_iterate):
            break
        offer = min(remaining, held[i])
        fits = min(held[i], math.floor(caps[i] / v * (1.0 + 1e-12) + 1e-12))
        if offer > fits:
            continue  # the offset would take the row past its bankruptcy: skipped whole
        out[i] = offer * v
        remaining -= offer
    return np.array(out, dtype=np.float64)
