"""Orders over rows, shared by every rule that ranks: ties broken deterministically, the
head of an order found without sorting the rest, and the queue walk that takes whole
capacities in that order.

:func:`rank_rows` sorts rows by a key; :func:`order_prefix` gives a rule's order as a function
``k -> first k rows`` so that lot execution sorts only the head it needs; :func:`queue_allocate`
is the plain queue on a score (whole capacities down the order, the marginal row partly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from market.errors import require

__all__ = [
    "checked_budget",
    "order_prefix",
    "queue_allocate",
    "queue_cut",
    "rank_rows",
    "walk_queue",
]


def checked_budget(budget: Any) -> float:
    """``budget`` as a float, or InputError naming ``budget`` unless finite and >= 0."""
    try:
        b = float(budget)
    except (TypeError, ValueError):
        b = float("nan")
    require(bool(np.isfinite(b)) and b >= 0, "budget", "a finite number >= 0", budget)
    return b


#: Below this many rows a queue sorts every row: cutting it first would cost more.
_SMALL_N = 2048


def rank_rows(
    rows: np.ndarray, score: np.ndarray, tie_order: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``rows`` sorted by ``score`` descending; rows tied on the score go by ``tie_order``.

    ``tie_order(tied)`` returns the argsort of the tied rows ``tied`` by score descending and
    then the tie-break key (for example ``np.lexsort((tied, account[tied], -score[tied]))``).
    One unstable O(m log m) sort of the scores, then the tie-break fixes the runs of equal
    scores, which sit in contiguous blocks: far cheaper than a lexsort on every key when ties
    are few, and the same order.  ``score`` must be free of NaN.
    """
    s = score[rows]
    o = np.argsort(-s)
    out = rows[o]
    if out.size > 1:
        s_sorted = s[o]
        eq = s_sorted[1:] == s_sorted[:-1]
        if eq.any():
            tied = np.zeros(out.size, dtype=bool)
            tied[1:] = eq
            tied[:-1] |= eq
            pos = np.flatnonzero(tied)
            sub = out[pos]
            out[pos] = sub[tie_order(sub)]
    return out


def _top_set(score: np.ndarray, m: int) -> np.ndarray:
    """Rows scoring at least the ``m``-th highest score (whole score classes), by row index.

    An O(n) partition of the scores; every row when ``m >= n``.
    """
    n = score.shape[0]
    if m >= n:
        return np.arange(n)
    threshold = np.partition(score, n - m)[n - m]
    return np.flatnonzero(score >= threshold)


def queue_cut(
    score: np.ndarray,
    capacity: np.ndarray,
    budget: float,
    tie_order: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray] | None:
    """Where the budget runs out along the queue, sorting only the rows around that point.

    Returns ``(full, full_cap, band, cum)``: ``full`` are rows that give their whole
    capacity whatever their order (every row scoring above a threshold ``t_hi``, together
    holding ``full_cap < budget``), ``band`` the next rows (scores in ``[t_lo, t_hi]``) in
    queue order, and ``cum = full_cap + cumsum(capacity[band])`` with ``cum[-1] > budget``;
    None when the budget takes every capacity.  Both cuts are whole score classes, found by
    one O(n) partition of the scores at about 0.9 and 1.1 times the rows the budget needs
    (moved and retried when they miss), so only the band is sorted.  Small snapshots are
    sorted whole (``full`` empty).
    """
    n = capacity.shape[0]
    total = float(capacity.sum())
    if n == 0 or budget >= total:
        return None
    none = np.zeros(0, dtype=np.int64)
    if n <= _SMALL_N:
        order = rank_rows(np.arange(n), score, tie_order)
        cum = np.cumsum(capacity[order])
        return (none, 0.0, order, cum) if budget < cum[-1] else None
    est = n * (budget / total)
    m_hi, m_lo = int(est * 0.9), min(n, int(est * 1.1) + 64)
    while True:
        sure = 0 < m_hi < m_lo
        part = np.partition(score, n - m_lo)  # (one k at a time: numpy is slow with several)
        in_band = score >= part[n - m_lo]
        full, full_cap = none, 0.0
        if sure:
            top = part[n - m_lo :]
            above = score > np.partition(top, m_lo - m_hi)[m_lo - m_hi]
            full = np.flatnonzero(above)
            full_cap = float(capacity[full].sum())
            if full_cap >= budget:  # the sure part already holds the budget: trust fewer rows
                m_hi //= 2
                continue
            in_band &= ~above
        band = np.flatnonzero(in_band)
        held = full_cap + float(capacity[band].sum())
        if held <= budget and full.size + band.size < n:
            grow = budget / held * 1.25 if held > 0 else 2.0
            m_lo = min(n, max(2 * m_lo, int(m_lo * grow) + 1))
            continue
        order = rank_rows(band, score, tie_order)
        cum = full_cap + np.cumsum(capacity[order])
        if budget < cum[-1]:
            return full, full_cap, order, cum
        if full.size + band.size >= n:
            return None
        m_lo = min(n, 2 * m_lo)


def order_prefix(
    score: np.ndarray,
    tie_order: Callable[[np.ndarray], np.ndarray],
    head: np.ndarray | None = None,
) -> Callable[[int], np.ndarray]:
    """The order "score descending, ties by ``tie_order``" as ``k -> its first (>= k) rows``.

    For the ``order`` argument of :func:`market.adl.base.execute`, which asks for as many rows
    as the lot rounding can reach: a prefix of ``k`` rows costs an O(n) partition of the
    scores plus a sort of those rows (whole score classes are taken, so it is always a true
    prefix of the full order), never a sort of every row unless ``k`` asks for it.  ``head``
    is an already sorted prefix to start from.  The function lives for one call: nothing is
    kept on the policy.
    """
    if head is None:
        head = np.zeros(0, dtype=np.int64)
    known = [head]

    def first(k: int) -> np.ndarray:
        if k > known[0].size and known[0].size < score.shape[0]:
            known[0] = rank_rows(_top_set(score, int(k)), score, tie_order)
        return known[0]

    return first


def walk_queue(
    capacity: np.ndarray, cut: tuple[np.ndarray, float, np.ndarray, np.ndarray], budget: float
) -> tuple[np.ndarray, int]:
    """Whole capacities up to ``budget`` along a :func:`queue_cut`; the marginal row gives
    the rest.  Returns the haircuts and the marginal row's position in the cut's band."""
    full, full_cap, order, cum = cut
    h = np.zeros(capacity.shape[0], dtype=np.float64)
    h[full] = capacity[full]
    k = int(np.searchsorted(cum, budget, side="left"))  # k < len(order) since budget < cum[-1]
    h[order[:k]] = capacity[order[:k]]
    before = float(cum[k - 1]) if k > 0 else full_cap
    h[order[k]] = min(max(budget - before, 0.0), float(capacity[order[k]]))
    return h, k


def queue_allocate(capacity: Any, score: Any, budget: float) -> np.ndarray:
    """Take whole capacities in descending score order until ``budget`` is met.

    Rows are sorted by ``score`` descending; equal scores keep row index order (lower index
    first).  With ``cum`` the running sum of sorted capacities and ``k`` the first sorted
    position where ``cum >= budget``: rows before ``k`` give their whole capacity, row ``k``
    gives ``budget - cum[k-1]`` and later rows give 0.  When ``budget >= sum(capacity)`` the
    capacity itself is returned.  Vectorised: an O(n) partition of the scores finds the rows
    that surely give everything and a band of rows around the marginal one; only the band is
    sorted (cumsum + searchsorted along it).  :func:`market.adl.reference.reference_queue` is
    the plain-loop definition.

    Args:
        capacity: ``c_i >= 0``, finite, 1-d.
        score: same shape; ``+inf`` ranks first, ``-inf`` last; NaN is refused.
        budget: ``B >= 0``, finite.

    Returns:
        ``h`` (float64) with ``0 <= h <= capacity`` and ``sum(h) == min(B, sum(capacity))``.

    Raises:
        InputError: on a bad shape, a negative or non-finite capacity, a NaN score or a bad
            budget.
    """
    c = np.asarray(capacity, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    require(c.ndim == 1, "capacity", "a 1-d array", c.shape)
    require(s.shape == c.shape, "score", f"an array of shape {c.shape}", s.shape)
    require(bool(np.all(np.isfinite(c))), "capacity", "finite", "non-finite")
    require(bool(np.all(c >= 0)), "capacity", ">= 0 everywhere", float(c.min(initial=0)))
    require(not bool(np.isnan(s).any()), "score", "free of NaN (use +-inf to rank first/last)")
    b = checked_budget(budget)
    cut = queue_cut(s, c, b, lambda rows: np.lexsort((rows, -s[rows])))
    if cut is None:
        return c.copy()
    return walk_queue(c, cut, b)[0]
