"""The array helpers: the sorting helpers give what numpy's unique, stable argsort and
searchsorted give; gather's one value gives the arithmetic of the gathered array; any_true
and all_true are any() and all(); sum_list is np.sum of a list."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from market.arrays import (
    all_true,
    any_true,
    gather,
    group_runs,
    has_repeats,
    searchsorted_unit,
    stable_argsort,
    sum_list,
    unique_sorted,
)

INTS = arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**40), 2**40))


@given(INTS)
def test_unique_sorted_is_numpy_unique(a):
    u = unique_sorted(a)
    np.testing.assert_array_equal(u, np.unique(a))
    assert u.dtype == a.dtype


@given(INTS)
def test_has_repeats_matches_unique(a):
    assert has_repeats(a) == (np.unique(a).size < a.size)


@given(arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 50)))
def test_has_repeats_of_bounded_rows_matches_unique(a):
    """Row indices counted on a scratch array of the bound: the same answer as sorting."""
    assert has_repeats(a, bound=51) == (np.unique(a).size < a.size)


def test_has_repeats_on_ascending_and_unsorted_rows():
    assert not has_repeats(np.arange(5))
    assert has_repeats(np.array([3, 1, 3]))
    assert not has_repeats(np.array([7]))
    assert unique_sorted(np.array([[2, 1], [2, 5]])).tolist() == [1, 2, 5]


@given(
    st.one_of(
        arrays(np.int64, st.integers(0, 300), elements=st.integers(-5, 5)),  # 16-bit keys
        INTS,  # distinct keys with the position
        arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 2**62)),  # a stable sort
        arrays(np.uint8, st.integers(0, 300)),
        arrays(np.float64, st.integers(0, 300), elements=st.sampled_from([0.5, -1.0, 3.0])),
        arrays(np.float64, st.integers(0, 300)),  # NaN, infinities, -0.0 and ties included
    )
)
def test_stable_argsort_is_numpy_stable_argsort(a):
    np.testing.assert_array_equal(stable_argsort(a), np.argsort(a, kind="stable"))


@given(
    edges=arrays(np.float64, st.integers(1, 400), elements=st.floats(0, 1)),
    draws=st.integers(0, 2**32),
    on_edges=st.booleans(),
)
def test_searchsorted_unit_is_numpy_searchsorted(edges, draws, on_edges):
    """Many draws in [0, 1) (some exactly on an edge or a cell boundary) against a sorted
    distribution, including repeated edges and edges on cell boundaries."""
    edges = np.sort(edges)
    rng = np.random.default_rng(draws)
    u = rng.random(5000)
    if on_edges:
        pick = np.concatenate([edges, [0.0, 2.0**-16, 1 - 2.0**-16, 1 - 2.0**-53]])
        u[:2000] = rng.choice(pick, 2000) % 1.0
    got = searchsorted_unit(edges, u)
    np.testing.assert_array_equal(got, np.searchsorted(edges, u, side="right"))


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


@given(arrays(np.int64, st.integers(1, 300), elements=st.integers(-5, 40)))
def test_group_runs_are_the_stable_sort_cut_at_each_new_key(key):
    """Groups by key, ascending, each in its given order: numpy's stable sort cut where the
    key changes (no permutation when the keys are grouped already)."""
    order, srt, starts, ends = group_runs(key)
    want = np.argsort(key, kind="stable")
    got = np.arange(key.size) if order is None else order
    assert np.array_equal(got, want) and np.array_equal(srt, key[want])
    assert order is not None or bool((np.diff(key) >= 0).all())
    assert starts[0] == 0 and ends[-1] == key.size and starts[1:] == ends[:-1]
    for a, b in zip(starts, ends, strict=True):
        assert b > a and (srt[a:b] == srt[a]).all()
    assert len(starts) == np.unique(key).size


@settings(max_examples=300)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300])), max_size=20
    )
)
def test_sum_list_adds_as_numpy(values):
    """The scalar sum of a list is numpy's sum bit for bit (signed zeros, infinities, the
    pairwise sum from eight values on)."""
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.sum(np.array(values, dtype=np.float64))
        got = sum_list(values)
    assert np.float64(got).tobytes() == want.tobytes()
