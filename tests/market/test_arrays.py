"""The sorting helpers give what numpy's unique gives."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from market.arrays import has_repeats, unique_sorted

INTS = arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**40), 2**40))


@given(INTS)
def test_unique_sorted_is_numpy_unique(a):
    u = unique_sorted(a)
    np.testing.assert_array_equal(u, np.unique(a))
    assert u.dtype == a.dtype


@given(INTS)
def test_has_repeats_matches_unique(a):
    assert has_repeats(a) == (np.unique(a).size < a.size)


def test_has_repeats_on_ascending_and_unsorted_rows():
    assert not has_repeats(np.arange(5))
    assert has_repeats(np.array([3, 1, 3]))
    assert not has_repeats(np.array([7]))
    assert unique_sorted(np.array([[2, 1], [2, 5]])).tolist() == [1, 2, 5]
