"""The exact min-max rule: least largest fraction, then least overshoot, at real magnitudes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.adl import POLICIES, Snapshot, get_policy
from market.adl.base import max_lots
from market.adl.minmax_ilp import MinMaxILP, NotProvenError
from market.adl.strategies import budgets, snapshots
from market.errors import InputError


def largest_fraction(h: np.ndarray, c: np.ndarray) -> float:
    """``max h_i / c_i`` over rows with positive capacity, as the allocation is measured."""
    pos = c > 0
    return float((h[pos] / c[pos]).max(initial=0.0))


def brute_force(snap: Snapshot, budget: float) -> tuple[float, float]:
    """(least largest fraction, least overshoot at it) by enumerating every lot vector."""
    m, v, c = max_lots(snap), snap.lot_value, snap.capacity
    tol = 1e-9 * max(1.0, budget)
    best = (np.inf, np.inf)
    for combo in itertools.product(*(range(int(k) + 1) for k in m)):
        n = np.asarray(combo, dtype=np.float64)
        h = n * v
        raised = float(h.sum())
        if raised < budget - tol:
            continue
        key = (largest_fraction(h, c), raised - budget)
        best = min(best, key)
    return best


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.lists(st.floats(0.05, 3.0), min_size=4, max_size=4),
    st.lists(st.floats(0.1, 1.0), min_size=4, max_size=4),
    st.floats(0.0, 1.0),
    st.booleans(),
)
def test_matches_brute_force_lexicographic_optimum(lots, values, fill, share, shared):
    n = len(lots)
    v = np.full(n, values[0]) if shared else np.asarray(values[:n])
    cap = np.asarray(lots) * v * np.asarray(fill[:n]) * 1.0001
    snap = Snapshot.build(cap, lots=lots, lot_value=v)
    budget = share * float((max_lots(snap) * v).sum())
    a = MinMaxILP()(snap, budget)
    z, over = brute_force(snap, budget)
    if not np.isfinite(z):
        return
    assert largest_fraction(a.haircut, cap) == pytest.approx(z, rel=1e-12, abs=1e-15)
    assert float(a.haircut.sum()) - budget == pytest.approx(over, abs=1e-9 * max(1, budget))
    assert a.residual == 0.0


#: Every other rule that closes whole lots (a cash claw-back, price rule "none", is off the grid).
_OTHERS = [
    name for name in POLICIES if name != "min_max_ilp" and get_policy(name).price_rule != "none"
]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_no_other_policy_has_a_smaller_largest_fraction(data):
    snap = data.draw(snapshots(1, 25))
    budget = data.draw(budgets(snap, infeasible=False))
    mine = MinMaxILP()(snap, budget)
    if mine.residual > 0:
        return
    z = largest_fraction(mine.haircut, snap.capacity)
    for name in _OTHERS:
        other = get_policy(name)(snap, budget)
        if other.residual > 0 or float(other.haircut.sum()) < budget - 1e-9 * max(1, budget):
            continue
        assert z <= largest_fraction(other.haircut, snap.capacity) * (1 + 1e-12) + 1e-15, name


def real_magnitudes(seed: int, n: int = 400) -> tuple[Snapshot, float]:
    """Rows with 1 to 1e10 lots and lot values from 1e-6 to 1e2 dollars (per row)."""
    rng = np.random.default_rng(seed)
    lots = np.floor(10.0 ** rng.uniform(0, 10, n)).astype(np.int64)
    v = 10.0 ** rng.uniform(-6, 2, n)
    cap = lots * v * rng.uniform(0.2, 1.0, n)
    snap = Snapshot.build(cap, lots=lots, lot_value=v, equity=2 * cap)
    return snap, 0.05 * float(cap.sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_real_magnitudes_give_the_optimum(seed):
    snap, budget = real_magnitudes(seed)
    a = MinMaxILP()(snap, budget)
    c, v = snap.capacity, snap.lot_value
    raised = float(a.haircut.sum())
    assert a.residual == 0.0 and raised >= budget * (1 - 1e-9)  # the budget tolerance
    z = largest_fraction(a.haircut, c)
    # pro-rata's largest fraction is about the budget share; the exact rule is no worse
    pr = get_policy("pro_rata")(snap, budget)
    assert z <= largest_fraction(pr.haircut, c) * (1 + 1e-12)
    assert z < 0.06
    # proof of the level: at the largest breakpoint below z no lot vector raises the budget
    m = max_lots(snap).astype(np.float64)
    below = np.nextafter(z, 0.0)
    k = np.minimum(np.floor(below * c / v), m)
    k = np.where((k * v) / c > below, k - 1, k)
    assert float((k * v).sum()) < budget
    # overshoot below the largest lot value touched
    assert raised - budget <= float(v[a.lots > 0].max())


def test_shared_lot_value_at_ten_billion_lots():
    # the exchange's case: one lot value per wave; counts near 1e10
    lots = np.array([10**10, 3 * 10**9, 7 * 10**8, 12345], dtype=np.int64)
    v = 1e-5
    cap = lots * v * np.array([0.9, 0.5, 1.0, 1.0])
    snap = Snapshot.build(cap, lots=lots, lot_value=v)
    budget = 0.25 * float(cap.sum())
    a = MinMaxILP()(snap, budget)
    fr = a.haircut / cap
    assert a.residual == 0.0
    assert float(a.haircut.sum()) - budget < v  # least overshoot: under one lot
    assert fr.max() == pytest.approx(0.25, rel=1e-6)  # every row near the budget share
    assert fr.max() <= largest_fraction(get_policy("pro_rata")(snap, budget).haircut, cap)


def test_issue_instance_no_longer_takes_whole_accounts():
    # lot counts 1e4..1e9, lot values 1e-5..1e2: the old solver returned fraction 1.0 and raised
    # 25-39x the budget; pro-rata's largest fraction was 0.018
    rng = np.random.default_rng(13)
    n = 300
    lots = np.floor(10.0 ** rng.uniform(4, 9, n)).astype(np.int64)
    v = 10.0 ** rng.uniform(-5, 2, n)
    cap = lots * v
    snap = Snapshot.build(cap, lots=lots, lot_value=v)
    budget = 0.018 * float(cap.sum())
    a = MinMaxILP()(snap, budget)
    z = largest_fraction(a.haircut, cap)
    assert z <= largest_fraction(get_policy("pro_rata")(snap, budget).haircut, cap) * (1 + 1e-12)
    assert float(a.haircut.sum()) <= budget + float(v.max())


def test_infeasible_budget_gives_every_lot_and_a_residual():
    snap = Snapshot.build([1.0, 2.0], lots=[1, 2], lot_value=1.0)
    a = MinMaxILP()(snap, 10.0)
    assert a.lots.tolist() == [1, 2] and a.residual == pytest.approx(7.0)


def test_too_many_rows_and_unprovable_instances_say_so():
    snap = Snapshot.build(np.ones(5))
    with pytest.raises(InputError, match=r"^snapshot\.n: must be <= max_n = 3"):
        MinMaxILP(max_n=3)(snap, 1.0)
    # thousands of distinct lot values that no greedy fill settles: refused, not guessed
    rng = np.random.default_rng(0)
    n = 3000
    v = rng.uniform(1.0, 1.001, n) + rng.uniform(0, 1e-6, n)
    snap = Snapshot.build(v * 1.0000001, lots=np.ones(n, dtype=np.int64), lot_value=v)
    budget = float(v.sum()) * 0.5 + 0.37
    with pytest.raises(NotProvenError, match=r"^min_max_ilp: "):
        MinMaxILP(time_limit=0.5)(snap, budget)
    with pytest.raises(InputError, match=r"^min_max_ilp\.time_limit: must be a number"):
        MinMaxILP(time_limit=0)(snap, budget)
