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


def has_repeats(a: np.ndarray) -> bool:
    """Whether any value of ``a`` occurs more than once (``np.unique(a).size < a.size``)."""
    a = np.asarray(a).reshape(-1)
    if a.size < 2:
        return False
    if all_true(a[1:] > a[:-1]):  # ascending already: no sort needed
        return False
    s = np.sort(a)
    return any_true(s[1:] == s[:-1])


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
