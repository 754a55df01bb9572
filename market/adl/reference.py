"""Plain-Python reference implementations of the ADL allocation rules.

These are the readable definitions: explicit loops over rows, no numpy tricks.  They are
slow on purpose and are not used by the game; the tests compare the vectorised production
code (:func:`market.adl.queues.queue_allocate`, :func:`market.adl.base.water_fill`) against
them on random inputs.  Results are returned as float64 numpy arrays only so that the tests
can compare them directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["reference_pro_rata", "reference_queue"]


def reference_queue(capacity: Sequence[float], score: Sequence[float], budget: float) -> np.ndarray:
    """Reference queue: a plain loop over rows in descending score order.

    Rows are visited by score, highest first; equal scores are visited in row order.  Each
    row gives ``min(capacity, remaining)`` and the remaining budget falls by that much; the
    loop stops when nothing remains.  This is the definition that
    :func:`market.adl.queues.queue_allocate` must match.
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
