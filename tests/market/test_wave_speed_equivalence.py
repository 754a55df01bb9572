"""The waterfall's fast paths give the numbers of the formulas they replace (up to
floating-point order where it is not fixed by construction)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market import margin as mg
from market.adl.base import SNAPSHOT_ARRAYS, Snapshot
from market.exchange import BackstopConfig, Exchange
from market.spec import MarketSpec


def _wild(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values over many magnitudes, both signs, with exact and negative zeros."""
    a = rng.standard_normal(shape) * 10.0 ** rng.integers(-9, 10, shape)
    a[rng.random(shape) < 0.15] = 0.0
    a[rng.random(shape) < 0.05] = -0.0
    return a


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 11), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_row_sum_equals_the_stacked_sum(k, n, seed):
    # equal up to floating-point order: within a few ulps of the row's absolute sum
    a = _wild(np.random.default_rng(seed), (n, k))
    got = mg.row_sum([a[:, j].copy() for j in range(k)])
    want = a.sum(axis=1)
    assert got.shape == want.shape
    scale = np.abs(a).sum(axis=1)
    assert np.all(np.abs(got - want) <= 4 * k * np.finfo(float).eps * scale)


def test_row_sum_of_a_hand_example():
    cols = [np.array([1e16, 3.0]), np.array([1.0, -1.0]), np.array([1.0, 0.5])]
    assert mg.row_sum(cols).tolist() == [1e16, 2.5]  # left to right: each 1 is lost on 1e16


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 80), st.integers(0, 2**32 - 1))
def test_weighted_row_sum_is_the_matrix_product(k, n, seed):
    rng = np.random.default_rng(seed)
    a = np.abs(_wild(rng, (n, k)))
    v = rng.random(k) * 0.2
    got = mg.weighted_row_sum(a, v)
    np.testing.assert_allclose(got, a @ v, rtol=1e-13, atol=0)


def test_weighted_row_sum_by_hand():
    a = np.array([[2.0, 4.0, 8.0]])
    assert mg.weighted_row_sum(a, np.array([0.5, 0.25, 0.125])).tolist() == [3.0]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(2, 120), st.booleans(), st.integers(0, 2**32 - 1))
def test_maintenance_from_notional_equals_maintenance(k, n, tiers, seed):
    rng = np.random.default_rng(seed)
    specs = tuple(
        MarketSpec(
            name=f"M{j}",
            lot_size=float(rng.choice([0.01, 0.1, 1.0])),
            maintenance_margin=float(rng.uniform(0.002, 0.05)),
            initial_margin=0.1,
            tiers=((1e3, 0.06), (1e5, 0.08)) if tiers else (),
        )
        for j in range(k)
    )
    pos = rng.integers(-50, 51, (n, k)) * (rng.random((n, k)) < 0.6)
    marks = rng.uniform(0.5, 500.0, k)
    lot = np.array([s.lot_size for s in specs])
    got = mg.maintenance_from_notional(mg.notional(pos, marks, lot), specs)
    assert np.array_equal(got, mg.maintenance(pos, marks, specs))


def _busy_exchange(seed: int, k: int, n: int, backstop: str = "fund") -> Exchange:
    rng = np.random.default_rng(seed)
    ex = Exchange(
        k,
        rng.uniform(20.0, 200.0, k),
        backstop=BackstopConfig(kind=backstop, capital=1e3),
        policy=None,
    )
    acc = ex.open_accounts(n, rng.uniform(10.0, 5_000.0, n))
    for j in range(k):
        lots = rng.integers(-30, 31, n)
        some = acc[lots != 0]
        ex.trade_genesis(some, j, lots[lots != 0], rng.uniform(0.5, 1.5, some.size) * ex.marks[j])
    ex.step(ex.marks * rng.uniform(0.8, 1.2, k))
    return ex


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_account_sums_equal_the_full_formulas(k, n, seed):
    ex = _busy_exchange(seed, k, n)
    usum, mm, ntsum, has = ex._account_sums()

    def close(a, b):  # equal up to floating-point order
        scale = max(1.0, float(np.abs(b).max(initial=0)))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9 * scale)

    close(usum, ex.upnl().sum(axis=1))
    close(ex.acc.cash + usum, ex.equity())
    close(mm, ex.maintenance())
    close(ntsum, ex.notional().sum(axis=1))
    assert np.array_equal(has, (ex.acc.pos != 0).any(axis=1))
    rows = np.flatnonzero(np.random.default_rng(seed).random(ex.n_accounts) < 0.5)
    sub = ex._account_sums(rows)
    close(sub[0], usum[rows])
    close(sub[1], mm[rows])
    close(sub[2], ntsum[rows])
    close(ex._account_sums(rows, upnl_only=True)[0], usum[rows])


def test_account_sums_by_hand():
    ex = Exchange(2, [100.0, 10.0])
    a = ex.open_accounts(1, 1_000.0)
    ex.trade_genesis(a, 0, np.array([3]), np.array([90.0]))
    ex.trade_genesis(a, 1, np.array([-2]), np.array([12.0]))
    usum, mm, ntsum, has = ex._account_sums(a)
    # lot 1: upnl 3 * (100 - 90) + -2 * (10 - 12) = 34; notional 300 + 20
    assert usum.tolist() == [34.0]
    assert ntsum.tolist() == [320.0]
    assert has.tolist() == [True]
    assert mm[0] == pytest.approx(320.0 * ex.specs[0].maintenance_margin)


def _same_snapshot(a: Snapshot, b: Snapshot) -> None:
    for name in SNAPSHOT_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=True), name
    for name in ("mark", "prev_mark", "bankruptcy_price", "lot_size", "market"):
        assert getattr(a, name) == getattr(b, name), name


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 7), st.integers(2, 60), st.integers(0, 2**32 - 1), st.sampled_from([-1, 1]))
def test_snapshot_from_the_step_sums_equals_the_direct_one(k, n, seed, side):
    ex = _busy_exchange(seed, k, n)
    usum, mm, ntsum, _ = ex._account_sums()
    for market in range(k):
        direct = ex._snapshot(market, side, 123.4, 7)[0]
        fast = ex._snapshot(market, side, 123.4, 7, sums=(usum, mm, ntsum))[0]
        _same_snapshot(direct, fast)


@pytest.mark.parametrize("backstop", ["fund", "vault", "none"])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_a_crash_step_with_and_without_the_step_sums_agrees(backstop, k):
    """The whole waterfall, with the snapshots fed by the scan's sums or built directly."""
    from market.adl.registry import get_policy

    runs = []
    for use_sums in (True, False):
        rng = np.random.default_rng(11)
        ex = Exchange(
            k,
            100.0,
            policy=get_policy("pro_rata"),
            backstop=BackstopConfig(kind=backstop, capital=50.0),
        )
        n = 400
        acc = ex.open_accounts(n, rng.uniform(50.0, 400.0, n))
        for j in range(k):
            lots = rng.integers(-20, 21, n)
            some = acc[lots != 0]
            ex.trade_genesis(some, j, lots[lots != 0], np.full(some.size, 100.0))
        if not use_sums:
            plain = Exchange._snapshot

            def direct(self, *args, sums=None, wave=0, _plain=plain):
                return _plain(self, *args, wave=wave)

            ex._snapshot = direct.__get__(ex)  # type: ignore[method-assign]
        reps = [ex.step(np.full(k, p)) for p in (92.0, 85.0, 88.0, 95.0)]
        runs.append((ex, reps))
    (a, ra), (b, rb) = runs
    assert sum(r.adl_raised for r in ra) > 0
    # the same waterfall to float tolerance (summation order differs between the paths)
    for x, y in zip(ra, rb, strict=True):
        for key, value in vars(x).items():
            assert vars(y)[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    for name in ("pos", "flags"):
        assert np.array_equal(getattr(a.acc, name), getattr(b.acc, name)), name
    for name in ("cash", "entry", "gains"):
        np.testing.assert_allclose(getattr(a.acc, name), getattr(b.acc, name), rtol=1e-9, atol=1e-9)
    for table in ("trades", "adl", "waves", "bankruptcies"):
        x = getattr(a.log, table).to_array()
        y = getattr(b.log, table).to_array()
        assert x.shape == y.shape, table
        for field in x.dtype.names:
            if x.dtype[field].kind == "f":
                np.testing.assert_allclose(x[field], y[field], rtol=1e-9, atol=1e-9, err_msg=field)
            else:
                assert np.array_equal(x[field], y[field]), (table, field)
