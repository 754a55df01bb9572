"""The sorting helpers give what numpy's unique gives; gather's one value gives the
arithmetic of the gathered array; any_true and all_true are any() and all()."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from market.arrays import all_true, any_true, gather, has_repeats, unique_sorted

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


@given(
    arrays(np.int64, st.integers(0, 50), elements=st.integers(-(10**6), 10**6)),
    arrays(np.float64, st.integers(0, 50), elements=st.floats(-1e6, 1e6)),
    st.floats(1e-3, 1e3),
    st.floats(1e-3, 1e3),
)
def test_gather_of_one_value_gives_the_gathered_arithmetic(q, e, lot, mark):
    n = min(q.size, e.size)
    q, e, index = q[:n], e[:n], np.zeros(n, dtype=np.int64)
    lots, marks = np.array([lot]), np.array([mark])
    want = q * lots[index] * (marks[index] - e)
    got = q * gather(lots, index) * (gather(marks, index) - e)
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    many = np.array([lot, mark])
    assert np.array_equal(gather(many, np.array([1, 0, 1])), many[[1, 0, 1]])


@given(arrays(np.bool_, st.integers(0, 40)))
def test_any_true_and_all_true_are_any_and_all(mask):
    assert any_true(mask) is bool(mask.any())
    assert all_true(mask) is bool(mask.all())
