"""Small array helpers used on hot paths, and the size below which rows go one by one.

numpy 2's ``np.unique`` without extra outputs hashes its input, which on integer arrays of a
million entries is tens of times slower than sorting them; these helpers sort instead and
return the same values.
"""

from __future__ import annotations

import numpy as np

#: Up to this many rows, orders, margin checks, transfers, equity reads and ledger entries run
#: row by row on scalars: the same operations in the same order as the array paths (so the
#: same numbers), without their fixed cost per call.  0 switches the scalar paths off (tests
#: compare the two).
FEW_ROWS = 8


def any_true(mask: np.ndarray) -> bool:
    """``bool(mask.any())`` for a boolean array, in one C call (``count_nonzero``) without the
    method's Python-level wrapper: for checks on small arrays in hot paths."""
    return bool(np.count_nonzero(mask))


def all_true(mask: np.ndarray) -> bool:
    """``bool(mask.all())`` for a boolean array (True when empty), as :func:`any_true`."""
    return bool(np.count_nonzero(mask) == np.size(mask))


def sum_list(values: list[float]) -> float:
    """``float(np.sum(values))`` for a list of floats, bit for bit: below eight values numpy
    adds them one after the other from +0.0, as done here without an array; from eight on,
    numpy's own (pairwise) sum."""
    if len(values) < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    return float(np.sum(np.asarray(values, dtype=np.float64)))


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """The distinct values of ``a`` (flattened), ascending: ``np.unique(a)`` for arrays
    without NaN, by a sort and one comparison."""
    s = np.sort(np.asarray(a).reshape(-1))
    if s.size < 2:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def has_repeats(a: np.ndarray, bound: int | None = None) -> bool:
    """Whether any value of ``a`` occurs more than once (``np.unique(a).size < a.size``).

    ``bound``: the values are integers in ``[0, bound)`` (row indices); when they are not
    ascending and are many against ``bound``, they are counted on a scratch array of that
    size instead of sorted."""
    a = np.asarray(a).reshape(-1)
    if a.size < 2:
        return False
    if all_true(a[1:] > a[:-1]):  # ascending already: no sort needed
        return False
    if bound is not None and 16 * a.size >= bound:  # (a scratch of bound costs ~a sort)
        seen = np.zeros(bound, dtype=np.bool_)
        seen[a] = True
        return int(np.count_nonzero(seen)) < a.size
    s = np.sort(a)
    return any_true(s[1:] == s[:-1])


def stable_argsort(a: np.ndarray) -> np.ndarray:
    """``np.argsort(a, kind="stable")`` of a 1-d array, computed faster; the same permutation.

    Integers in a range of under 65,536 are sorted as 16-bit keys (numpy's radix sort);
    other integers made of a few ascending runs by numpy's stable sort (which merges runs);
    the rest as the distinct keys ``(a - min) * size + position``; floats by numpy's default
    sort when their values are distinct (the sorting permutation is then unique), else
    stably.
    """
    a = np.asarray(a)
    if a.size < 2:
        return np.zeros(a.size, dtype=np.intp)
    if a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if hi - lo < 1 << 16:
            return (a - lo).astype(np.uint16).argsort(kind="stable")
        if np.count_nonzero(a[1:] < a[:-1]) < 16:  # a few ascending runs: merged
            return a.argsort(kind="stable")
        if hi < 1 << 62 and (hi - lo + 1) * a.size < 1 << 62:
            key = (a.astype(np.int64) - lo) * a.size + np.arange(a.size)
            return key.argsort()
        return a.argsort(kind="stable")
    order = a.argsort()
    s = a[order]
    if not bool((s[1:] > s[:-1]).all()):  # ties or NaN: sort stably
        order = a.argsort(kind="stable")
    return order


def group_runs(key: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, list[int], list[int]]:
    """The entries of a non-empty integer ``key`` grouped by value, ascending, each group in
    its given order: ``(order, sorted key, starts, ends)``, ``order`` the stable sorting
    permutation (None when the keys are grouped already) and each group the run
    ``starts[g]:ends[g]`` of the sorted keys."""
    order = None if all_true(key[1:] >= key[:-1]) else stable_argsort(key)
    srt = key if order is None else key[order]
    cut = (np.flatnonzero(srt[1:] != srt[:-1]) + 1).tolist()
    return order, srt, [0, *cut], [*cut, int(srt.size)]


def searchsorted_unit(edges: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, u, side="right")`` for many ``u`` in [0, 1) and a short
    ascending ``edges`` (a cumulative distribution), several times faster.

    [0, 1) is cut into 65,536 equal cells (so ``u * 65536`` is exact and its floor a 16-bit
    index).  On a cell with no edge strictly inside, every ``u`` gets the count at the cell's
    lower end, from a table; the ``u`` in the other cells are searched.  The same answers.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.size < 4096 or not (u.min() >= 0.0 and u.max() < 1.0):
        return np.searchsorted(edges, u, side="right")
    cells = 1 << 16
    grid = np.arange(cells + 1) / cells
    low = np.searchsorted(edges, grid[:-1], side="right")  # edges <= the cell's lower end
    below_top = np.searchsorted(edges, grid[1:], side="left")  # edges < the cell's upper end
    cell = (u * cells).astype(np.uint16)
    out = low[cell]
    search = (low != below_top)[cell]  # an edge inside the cell: search these
    if search.any():
        out[search] = np.searchsorted(edges, u[search], side="right")
    return out


def per_row(values: object, shape: tuple[int, ...], dtype: type | None = None) -> np.ndarray:
    """``values`` (a scalar or an array) as an array of ``shape`` (and ``dtype``, if given):
    itself when it already is one, else ``np.broadcast_to`` (a read-only view; the same error
    on a mismatch)."""
    a = np.asarray(values, dtype=dtype)
    if a.shape == shape:
        return a
    return np.broadcast_to(np.atleast_1d(a), shape)


def gather(values: np.ndarray, index: np.ndarray) -> np.ndarray | np.generic:
    """``values[index]``, or, when ``values`` holds one value (one market), that value: it
    broadcasts to the same elements in any arithmetic with the gathered shape's arrays (the
    same operations, bit for bit) without the gather's cost."""
    return values[index] if values.size != 1 else values[0]
