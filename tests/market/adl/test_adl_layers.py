"""Seniority ledger, queue / pro-rata hybrids and the eligibility config."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import rankdata

from market.adl.base import ADLPolicy, PerInstance, Snapshot, execute
from market.adl.eligibility import Eligibility
from market.adl.layered import Hybrid, Seniority
from market.adl.ordering import queue_allocate
from market.adl.prorata import CappedProRata, ProRata
from market.adl.queues import HyperliquidQueue
from market.errors import InputError


class UpnlQueue(ADLPolicy):
    """Test queue: score = upnl (row-wise, so relabeling-safe), greedy by score."""

    name = "test_upnl_queue"
    properties = frozenset({"relabeling"})
    price_rule = "prev_mark"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        return np.asarray(snap.upnl, dtype=float)

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        return queue_allocate(snap.capacity, self.score(snap), budget)


# inner rules that honour the allocate_wealth contract: sum(h) == min(B, sum(c))
INNERS = [ProRata(), CappedProRata(), HyperliquidQueue(), UpnlQueue()]


def gains_available(cap: np.ndarray, gains: np.ndarray, upnl: np.ndarray) -> np.ndarray:
    """What the gains layers can give per row: min(capacity, ledger + max(upnl, 0))."""
    return np.minimum(cap, np.maximum(gains, 0).sum(axis=1) + np.maximum(upnl, 0))


@st.composite
def ledgers(draw, max_n: int = 8):
    n = draw(st.integers(1, max_n))
    money = st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)
    cap = draw(hnp.arrays(np.float64, n, elements=money))
    gains = draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(0.0, 40.0)))
    upnl = draw(hnp.arrays(np.float64, n, elements=st.floats(-30.0, 40.0)))
    frac = draw(st.floats(0.0, 1.2))
    return cap, gains, upnl, frac


def snap_of(cap, gains, upnl, **kw) -> Snapshot:
    return Snapshot.build(cap, gains=gains, upnl=upnl, **kw)


# -- seniority -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.sampled_from(range(len(INNERS))), st.booleans())
def test_seniority_never_touches_principal_when_gains_cover(data, k, ladder):
    cap, gains, upnl, frac = data
    avail = gains_available(cap, gains, upnl)
    budget = frac * float(avail.sum())
    assume(budget <= avail.sum())
    h = Seniority(inner=INNERS[k], ladder=ladder).allocate_wealth(snap_of(cap, gains, upnl), budget)
    tol = 1e-9 * max(1.0, budget)
    assert np.all(h <= avail + tol)
    assert np.all(h >= 0)
    assert h.sum() == pytest.approx(budget, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.sampled_from(range(len(INNERS))), st.booleans(), st.floats(0.0, 2.0))
def test_seniority_touches_principal_exactly_for_the_shortfall(data, k, ladder, extra):
    cap, gains, upnl, _ = data
    avail = gains_available(cap, gains, upnl)
    principal_room = float((cap - avail).sum())
    budget = float(avail.sum()) + extra * principal_room
    assume(principal_room > 1e-6 and extra > 1e-6)
    h = Seniority(inner=INNERS[k], ladder=ladder).allocate_wealth(snap_of(cap, gains, upnl), budget)
    tol = 1e-9 * max(1.0, budget)
    target = min(budget, float(cap.sum()))
    assert h.sum() == pytest.approx(target, rel=1e-9, abs=1e-9)
    assert np.all(h >= avail - tol)  # every gains layer exhausted
    assert np.all(h <= cap + tol)
    principal = np.maximum(h - avail, 0.0).sum()
    assert principal == pytest.approx(target - avail.sum(), rel=1e-9, abs=1e-7)


def test_seniority_ladder_order_hand_example():
    # A: recent 4 (as unrealised PnL) + settled 6; B: older 4.  Budget 6.
    cap = [10.0, 10.0]
    gains = [[0.0, 0.0, 6.0], [0.0, 4.0, 0.0]]
    snap = snap_of(cap, gains, [4.0, 0.0])
    h = Seniority(inner=ProRata(), ladder=True).allocate_wealth(snap, 6.0)
    # recent layer [4, 0] is used up first, then 2 of the older layer [0, 4]
    np.testing.assert_allclose(h, [4.0, 2.0])
    # without the ladder: one gains layer [10, 4], pro-rata 6 * [10, 4] / 14
    flat = Seniority(inner=ProRata(), ladder=False).allocate_wealth(snap, 6.0)
    np.testing.assert_allclose(flat, [60 / 14, 24 / 14])
    # budget 9: recent 4, older 4, then 1 of settled (A only)
    np.testing.assert_allclose(Seniority(inner=ProRata()).allocate_wealth(snap, 9.0), [5.0, 4.0])


def test_seniority_principal_hand_example_through_execute():
    # gains layers hold [3, 1]; budget 8 => principal 4, pro-rata over what is left [7, 9]
    snap = Snapshot.build(
        [10.0, 10.0], gains=[[3.0, 0, 0], [0, 1.0, 0]], upnl=[0.0, 0.0], lot_value=0.25
    )
    pol = Seniority(inner=ProRata(), close_lots=True)
    np.testing.assert_allclose(pol.allocate_wealth(snap, 8.0), [4.75, 3.25])
    alloc = pol(snap, 8.0)
    np.testing.assert_allclose(alloc.haircut, [4.75, 3.25])
    np.testing.assert_array_equal(alloc.lots, [19, 13])
    np.testing.assert_allclose(alloc.from_principal, [1.75, 2.25])
    np.testing.assert_allclose(alloc.from_gains, [3.0, 1.0])
    assert alloc.residual == 0.0 and alloc.overshoot == 0.0


def test_seniority_capacity_bounds_layers_and_reports_residual():
    # capacity below the ledger: layers are intersected with capacity; B > sum(c) => all of c
    snap = snap_of([2.0, 1.0], [[5.0, 0, 0], [0, 0, 5.0]], [0.0, 0.0])
    pol = Seniority(inner=ProRata())
    np.testing.assert_allclose(pol.allocate_wealth(snap, 10.0), [2.0, 1.0])
    np.testing.assert_allclose(pol.allocate_wealth(snap, 1.5), [1.5, 0.0])  # recent first
    assert pol(snap, 10.0).residual == pytest.approx(7.0)


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.booleans(), st.sampled_from([0, 1, 2]))  # inners that do not read upnl
def test_seniority_close_and_reopen_changes_nothing(data, ladder, k):
    cap, gains, upnl, frac = data
    upnl = np.abs(upnl)  # a winner closes and reopens: its profit becomes recent realised gain
    budget = frac * float(cap.sum())
    before = snap_of(cap, gains, upnl)
    moved = gains.copy()
    moved[:, 0] += upnl
    after = snap_of(cap, moved, np.zeros_like(upnl), entry=before.entry)
    pol = Seniority(inner=INNERS[k], ladder=ladder)
    np.testing.assert_allclose(
        pol.allocate_wealth(before, budget), pol.allocate_wealth(after, budget), atol=1e-9
    )


def test_seniority_capped_inner_leaves_residual_not_principal():
    # capped pro-rata at 50% holds half of each gains layer back: recent [3, 0] gives 1.5,
    # older [0, 1] gives 0.5; the gains layers are not exhausted, so principal stays untouched
    gains = [[3.0, 0, 0], [0, 1.0, 0]]
    snap = Snapshot.build([10.0, 10.0], gains=gains, upnl=[0.0, 0.0], lot_value=0.5)
    pol = Seniority(inner=CappedProRata(max_fraction=0.5), close_lots=True)
    np.testing.assert_allclose(pol.allocate_wealth(snap, 8.0), [1.5, 0.5])
    alloc = pol(snap, 8.0)
    np.testing.assert_array_equal(alloc.lots, [3, 1])
    assert alloc.residual == pytest.approx(6.0)
    np.testing.assert_allclose(alloc.from_principal, [0.0, 0.0])
    # with 1-dollar lots the part lots are rounded up (to [2, 1]), still inside the gains
    alloc = pol(Snapshot.build([10.0, 10.0], gains=gains, upnl=[0.0, 0.0]), 8.0)
    np.testing.assert_array_equal(alloc.lots, [2, 1])
    assert alloc.residual == pytest.approx(5.0)
    np.testing.assert_allclose(alloc.from_principal, [0.0, 0.0])


def test_seniority_rounding_lots_stay_in_gains_when_gains_cover():
    # gains [2.5, 2.5] cover B = 4; h = [2, 2] in wealth; lots of 1 place exactly [2, 2]
    snap = Snapshot.build([10.0, 10.0], gains=[[2.5, 0, 0], [0, 0, 2.5]], upnl=[0.0, 0.0])
    alloc = Seniority(inner=ProRata(), close_lots=True)(snap, 4.0)
    np.testing.assert_array_equal(alloc.lots, [2, 2])
    # B = 4.6: wealth [2.3, 2.3]; one rounding lot within the gains rounded up to [3, 3]
    alloc = Seniority(inner=ProRata(), close_lots=True)(snap, 4.6)
    assert alloc.lots.sum() == 5 and alloc.lots.max() == 3
    assert alloc.from_principal.sum() == pytest.approx(0.5)  # granularity, under one lot
    # lots of 2: gains [2.5, 2.5] round up to room [4, 4]; B = 5 needs 3 lots, not a 4th
    snap2 = Snapshot.build(
        [10.0, 10.0], gains=[[2.5, 0, 0], [0, 0, 2.5]], upnl=[0.0, 0.0], lot_value=2.0
    )
    alloc = Seniority(inner=ProRata(), close_lots=True)(snap2, 5.0)
    assert alloc.lots.sum() == 3 and alloc.raised == pytest.approx(6.0)
    assert alloc.residual == 0.0


@settings(max_examples=40, deadline=None)
@given(ledgers(), st.floats(0.05, 1.0), st.booleans())
def test_seniority_capped_inner_never_touches_principal(data, fraction, ladder):
    cap, gains, upnl, frac = data
    avail = gains_available(cap, gains, upnl)
    budget = frac * float(cap.sum())
    pol = Seniority(inner=CappedProRata(max_fraction=fraction), ladder=ladder)
    h = pol.allocate_wealth(snap_of(cap, gains, upnl), budget)
    tol = 1e-9 * max(1.0, budget)
    # gains below the tolerance count as exhausted; otherwise the cap holds some layer back
    if (1.0 - fraction) * avail.sum() / 3 > 2 * tol:
        assert np.all(h <= avail + tol)
    assert h.sum() <= min(budget, cap.sum()) + tol


def test_seniority_sybil_split_pays_the_same():
    cap = np.array([8.0, 6.0, 4.0])
    gains = np.array([[2.0, 1.0, 3.0], [1.0, 0.0, 0.0], [0.0, 2.0, 2.0]])
    upnl = np.array([1.0, 2.0, 0.0])
    whole = Seniority(inner=ProRata()).allocate_wealth(snap_of(cap, gains, upnl), 11.0)
    # split account 0 into parts 1/4 and 3/4 of everything
    parts = np.array([0.25, 0.75])
    cap2 = np.concatenate([cap[0] * parts, cap[1:]])
    gains2 = np.vstack([gains[0] * parts[:, None], gains[1:]])
    upnl2 = np.concatenate([upnl[0] * parts, upnl[1:]])
    split = Seniority(inner=ProRata()).allocate_wealth(
        snap_of(cap2, gains2, upnl2, group=[0, 0, 1, 2]), 11.0
    )
    np.testing.assert_allclose([split[:2].sum(), *split[2:]], whole)


def test_seniority_claims_follow_the_inner_rule():
    assert Seniority.properties == frozenset({"principal_protect"})
    assert Seniority(inner=ProRata()).properties == frozenset(
        {"principal_protect", "relabeling", "sybil", "scale"}
    )
    assert Seniority(inner=HyperliquidQueue()).properties == frozenset(
        {"principal_protect", "relabeling"}
    )
    # a cash claw-back of the ledger by default; the inner rule's price when closing lots
    assert Seniority(inner=HyperliquidQueue()).price_rule == "none"
    assert Seniority(inner=HyperliquidQueue(), close_lots=True).price_rule == "prev_mark"
    assert Seniority(inner=ProRata(), close_lots=True).price_rule == ProRata.price_rule
    alloc = Seniority()(Snapshot.build([4.0, 2.0], gains=[[3.0], [1.0]], upnl=[1.0, 1.0]), 3.0)
    np.testing.assert_array_equal(alloc.lots, [0, 0])  # nothing force-closed
    np.testing.assert_allclose(alloc.haircut, [2.0, 1.0])  # pro-rata in the recent layer
    params = Seniority(inner=CappedProRata(max_fraction=0.5), ladder=False).get_params()
    assert params["ladder"] is False and params["inner__max_fraction"] == 0.5


def test_seniority_rejects_bad_params():
    with pytest.raises(InputError, match=r"^seniority\.inner: must be a registry name"):
        Seniority(inner=3)
    with pytest.raises(InputError, match=r"^seniority\.ladder: must be True or False"):
        Seniority(inner=ProRata(), ladder="yes")


def test_seniority_and_hybrid_resolve_registry_names():
    snap = snap_of([10.0, 10.0], [[3.0, 0, 0], [0, 1.0, 0]], [0.0, 0.0])
    np.testing.assert_allclose(Seniority().allocate_wealth(snap, 8.0), [4.75, 3.25])
    assert "principal_protect" in Seniority().properties
    h = Hybrid().allocate_wealth(Snapshot.build([3.0, 2.0, 5.0]), 4.0)
    assert h.sum() == pytest.approx(4.0)


# -- hybrid ----------------------------------------------------------------------------------


@st.composite
def books(draw, max_n: int = 10):
    n = draw(st.integers(1, max_n))
    # dollars: zero or at least a micro-dollar (denormal capacities are not money)
    dollars = st.one_of(st.just(0.0), st.floats(1e-6, 100.0))
    cap = draw(hnp.arrays(np.float64, n, elements=dollars))
    upnl = draw(hnp.arrays(np.float64, n, elements=st.floats(-50.0, 50.0)))
    equity = draw(hnp.arrays(np.float64, n, elements=st.floats(1.0, 500.0)))
    frac = draw(st.floats(0.0, 1.2))
    return cap, upnl, equity, frac


@settings(max_examples=60, deadline=None)
@given(books(), st.floats(0.0, 1.0), st.booleans())
def test_hybrid_blend_is_the_convex_combination(data, weight, real_queue):
    cap, upnl, equity, frac = data
    snap = Snapshot.build(cap, upnl=upnl, equity=equity)
    budget = frac * float(cap.sum())
    queue = HyperliquidQueue() if real_queue else UpnlQueue()
    h = Hybrid(mode="blend", queue=queue, queue_weight=weight).allocate_wealth(snap, budget)
    target = min(budget, float(cap.sum()))
    h_q = queue.allocate_wealth(snap, target)
    h_p = ProRata().allocate_wealth(snap, target)
    np.testing.assert_allclose(h, weight * h_q + (1 - weight) * h_p, atol=1e-9)
    assert h.sum() == pytest.approx(target, rel=1e-9, abs=1e-9)
    assert np.all(h >= 0) and np.all(h <= cap + 1e-12)


def test_hybrid_blend_hand_example():
    # queue by upnl takes row 2 (cap 5) first: h_q = [0, 0, 4]; pro-rata: 0.4 * c
    snap = Snapshot.build([3.0, 2.0, 5.0], upnl=[1.0, 2.0, 3.0])
    h = Hybrid(mode="blend", queue=UpnlQueue(), queue_weight=0.25).allocate_wealth(snap, 4.0)
    np.testing.assert_allclose(h, [0.9, 0.6, 0.25 * 4 + 0.75 * 2])


def test_hybrid_bucketed_takes_the_top_bucket_first():
    # scores 1..10 in 5 buckets of 2: {9, 10} on top, then {7, 8}
    score = np.arange(1.0, 11.0)
    cap = np.ones(10)
    cap[6], cap[7] = 1.0, 3.0  # rows scored 7 and 8
    snap = Snapshot.build(cap, upnl=score)
    pol = Hybrid(mode="bucketed", queue=UpnlQueue(), n_buckets=5)
    np.testing.assert_array_equal(pol.buckets(snap), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    h = pol.allocate_wealth(snap, 3.0)
    expected = np.zeros(10)
    expected[8:] = 1.0  # top bucket in full
    expected[6], expected[7] = 0.25, 0.75  # 1 more, pro-rata 1:3 inside the next bucket
    np.testing.assert_allclose(h, expected)
    np.testing.assert_allclose(pol.allocate_wealth(snap, 1.0), [0] * 8 + [0.5, 0.5])


def test_hybrid_buckets_keep_ties_together_and_skip_empty_rows():
    snap = Snapshot.build([1.0, 1.0, 1.0, 0.0, 1.0], upnl=[5.0, 5.0, 5.0, 9.0, 1.0])
    b = Hybrid(queue=UpnlQueue(), n_buckets=2).buckets(snap)
    np.testing.assert_array_equal(b, [1, 1, 1, -1, 0])


@settings(max_examples=60, deadline=None)
@given(books(), st.integers(1, 6), st.booleans())
def test_hybrid_bucketed_exhausts_higher_buckets(data, nb, real_queue):
    cap, upnl, equity, frac = data
    snap = Snapshot.build(cap, upnl=upnl, equity=equity)
    budget = frac * float(cap.sum())
    queue = HyperliquidQueue() if real_queue else UpnlQueue()
    pol = Hybrid(mode="bucketed", queue=queue, n_buckets=nb)
    h = pol.allocate_wealth(snap, budget)
    b = pol.buckets(snap)
    target = min(budget, float(cap.sum()))
    assert h.sum() == pytest.approx(target, rel=1e-9, abs=1e-9)
    assert np.all(h >= 0) and np.all(h <= cap + 1e-12)
    touched = h > 0
    if touched.any():
        lowest = b[touched].min()
        above = b > lowest
        np.testing.assert_allclose(h[above], cap[above])


@settings(max_examples=40, deadline=None)
@given(books(), st.randoms(use_true_random=False))
def test_hybrid_bucketed_relabeling(data, rnd):
    cap, upnl, equity, frac = data
    snap = Snapshot.build(cap, upnl=upnl, equity=equity)
    perm = np.array(rnd.sample(range(snap.n), snap.n))
    pol = Hybrid(queue=UpnlQueue())
    budget = frac * float(cap.sum())
    np.testing.assert_allclose(
        pol.allocate_wealth(snap.take(perm), budget), pol.allocate_wealth(snap, budget)[perm]
    )


def test_hybrid_claims_and_validation():
    assert Hybrid.properties == frozenset()
    assert Hybrid(queue=HyperliquidQueue()).properties == frozenset({"relabeling"})
    assert Hybrid(queue=HyperliquidQueue()).price_rule == "prev_mark"
    with pytest.raises(InputError, match=r"^hybrid\.mode: must be one of bucketed, blend"):
        Hybrid(mode="mixed", queue=UpnlQueue())
    with pytest.raises(InputError, match=r"^hybrid\.n_buckets"):
        Hybrid(queue=UpnlQueue(), n_buckets=0)
    with pytest.raises(InputError, match=r"^hybrid\.queue_weight"):
        Hybrid(mode="blend", queue=UpnlQueue(), queue_weight=1.5)
    with pytest.raises(InputError, match=r"^hybrid\.queue: must be a queue policy"):
        Hybrid(queue=ProRata()).allocate_wealth(Snapshot.build([1.0]), 1.0)


def test_hybrid_through_execute_closes_whole_lots():
    snap = Snapshot.build([3.0, 2.0, 5.0], upnl=[1.0, 2.0, 3.0])
    alloc = Hybrid(queue=UpnlQueue(), n_buckets=3)(snap, 6.0)
    np.testing.assert_array_equal(alloc.lots, [0, 1, 5])
    assert alloc.raised == pytest.approx(6.0) and alloc.residual == 0.0


# -- eligibility -----------------------------------------------------------------------------

UPNL = [10.0, -5.0, 3.0]
GAINS = [2.0, 4.0, 0.0]
EQUITY = [50.0, 20.0, 3.0]
MAINT = [10.0, 5.0, 4.0]
LOTS = [5, 5, 1]
LOT_VALUE = [3.0, 1.0, 2.0]


def cap_of(e: Eligibility, closes: bool = True) -> np.ndarray:
    return e.capacity(UPNL, GAINS, EQUITY, MAINT, LOTS, LOT_VALUE, closes)


def test_eligibility_caps_hand_examples():
    np.testing.assert_allclose(cap_of(Eligibility("pnl"), closes=False), [10, 0, 3])
    np.testing.assert_allclose(cap_of(Eligibility("pnl")), [10, 0, 2])  # lots*lot_value [15,5,2]
    np.testing.assert_allclose(cap_of(Eligibility("gains"), closes=False), [12, 4, 3])
    np.testing.assert_allclose(cap_of(Eligibility("gains")), [12, 4, 2])
    np.testing.assert_allclose(cap_of(Eligibility("equity_buffer"), closes=False), [40, 15, 0])
    np.testing.assert_allclose(cap_of(Eligibility("equity_buffer", buffer=2.0)), [15, 5, 0])
    np.testing.assert_allclose(cap_of(Eligibility("equity"), closes=False), [50, 20, 3])
    np.testing.assert_allclose(
        cap_of(Eligibility("equity", account_fraction=0.5), closes=False), [25, 10, 1.5]
    )
    np.testing.assert_allclose(cap_of(Eligibility("equity", account_fraction=0.5)), [15, 5, 1.5])
    # a (n, 3) ledger is summed; a negative ledger cannot make the cap negative
    led = np.array([[1.0, 1.0, 0.0], [-9.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    np.testing.assert_allclose(
        Eligibility("gains").capacity(UPNL, led, closes_lots=False), [12, 0, 3.5]
    )


def test_eligibility_budget_and_fairness_cap():
    e = Eligibility("pnl")
    c = cap_of(e)  # [10, 0, 2]
    assert e.budget(5.0, c) == (5.0, 0.0)
    assert e.budget(20.0, c) == (12.0, 8.0)  # infeasible part is cut, reported as residual
    half = Eligibility("pnl", wave_fraction=0.5)
    assert half.budget(20.0, c) == (6.0, 14.0)
    base = half.base(UPNL)  # [10, 0, 3]
    assert half.budget(20.0, c, base) == (6.5, 13.5)
    # fairness cap alpha: infeasible when B > alpha * sum(base)
    fair = Eligibility("pnl", account_fraction=0.5)
    c_fair = fair.capacity(UPNL, closes_lots=False)
    np.testing.assert_allclose(c_fair, [5.0, 0.0, 1.5])
    assert fair.budget(10.0, c_fair) == (6.5, 3.5)
    assert fair.budget(6.0, c_fair) == (6.0, 0.0)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(*[hnp.arrays(np.float64, n, elements=st.floats(-100, 100))] * 4)
    ),
    st.sampled_from(["pnl", "gains", "equity_buffer", "equity"]),
    st.floats(0.0, 3.0),
    st.floats(0.0, 1.0),
)
def test_eligibility_matches_a_row_by_row_reference(arrays, rule, buffer, alpha):
    upnl, gains, equity, maint = arrays
    n = upnl.shape[0]
    lots = np.arange(n) % 4
    lot_value = np.linspace(-1.0, 5.0, n)
    e = Eligibility(rule, buffer=buffer, account_fraction=alpha)
    got = e.capacity(upnl, gains, equity, maint, lots, lot_value, True)
    want = []
    for i in range(n):
        if rule == "pnl":
            b = max(upnl[i], 0.0)
        elif rule == "gains":
            b = max(gains[i] + max(upnl[i], 0.0), 0.0)
        elif rule == "equity_buffer":
            b = max(equity[i] - buffer * maint[i], 0.0)
        else:
            b = max(equity[i], 0.0)
        want.append(min(alpha * b, max(lots[i] * lot_value[i], 0.0)))
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_eligibility_validation():
    with pytest.raises(InputError) as err:
        Eligibility(cap="foo")
    assert str(err.value) == (
        "eligibility.cap: must be one of pnl, gains, equity_buffer, equity (got 'foo')"
    )
    with pytest.raises(InputError, match=r"^eligibility\.account_fraction: must be a number in"):
        Eligibility(account_fraction=1.5)
    with pytest.raises(InputError, match=r"^eligibility\.wave_fraction"):
        Eligibility(wave_fraction=-0.1)
    with pytest.raises(InputError, match=r"^eligibility\.buffer"):
        Eligibility(buffer=float("nan"))
    e = Eligibility("pnl")
    with pytest.raises(InputError, match=r"^eligibility\.cap"):
        e.set_params(account_fraction=0.5, cap="bar")
    assert e.get_params() == {
        "cap": "pnl",
        "buffer": 1.0,
        "account_fraction": 1.0,
        "wave_fraction": 1.0,
    }  # nothing changed
    with pytest.raises(InputError, match=r"^eligibility\.equity: must be given"):
        Eligibility("equity").capacity(UPNL, closes_lots=False)
    with pytest.raises(InputError, match=r"^eligibility\.lots: must be given"):
        Eligibility("pnl").capacity(UPNL)
    with pytest.raises(InputError, match=r"^eligibility\.gains_total: must be an array of length"):
        Eligibility("gains").capacity(UPNL, [1.0, 2.0], closes_lots=False)
    with pytest.raises(InputError, match=r"^eligibility\.budget"):
        e.budget(-1.0, [1.0])
    assert e.set_params(cap="equity").cap == "equity"


# ------------------------------------------------- speed paths (brief P1) and base polish


@settings(max_examples=80, deadline=None, database=None)
@given(
    scores=hnp.arrays(
        np.float64,
        st.integers(1, 60),
        elements=st.one_of(
            st.sampled_from([-np.inf, np.inf, np.nan, 0.0, 1.0, 2.0]), st.floats(-5.0, 5.0)
        ),
    ),
    nb=st.integers(1, 8),
    zero_every=st.integers(2, 9),
)
def test_hybrid_buckets_match_the_rank_formula(scores, nb, zero_every):
    # definition: r = max-rank by score among rows with capacity, bucket = ceil(r nb / m) - 1
    n = scores.size
    cap = np.where(np.arange(n) % zero_every == 1, 0.0, 1.0)
    snap = Snapshot.build(cap, upnl=np.nan_to_num(scores, nan=0.0))
    pol = Hybrid(queue=UpnlQueue(), n_buckets=nb)
    s = np.where(np.isnan(scores), -np.inf, scores)
    want = np.full(n, -1)
    act = cap > 0
    m = int(act.sum())
    if m:
        rank = rankdata(s[act], method="max").astype(int)
        want[act] = np.clip((rank * nb + m - 1) // m - 1, 0, nb - 1)
    np.testing.assert_array_equal(pol._buckets(snap, s), want)


def test_hybrid_priority_and_lots_follow_the_score_order():
    rng = np.random.default_rng(12)
    n = 4000
    cap = np.round(rng.pareto(1.5, n), 1) * 10.0
    upnl = rng.choice([1.0, 2.0, 3.0], n) + np.where(rng.random(n) < 0.5, 0.0, rng.random(n))
    snap = Snapshot.build(cap, upnl=upnl, lots=np.ceil(cap / 0.3).astype(int) + 2, lot_value=0.3)
    for pol in (Hybrid(queue=UpnlQueue()), Hybrid(mode="blend", queue=UpnlQueue())):
        full = np.lexsort((np.arange(n), -upnl))  # score desc, ties by row
        np.testing.assert_array_equal(pol.priority(snap), full)
        budget = 0.42 * float(cap.sum())
        h = pol.allocate_wealth(snap, budget)
        alloc = pol(snap, budget)
        np.testing.assert_array_equal(alloc.wealth, h)
        ref = execute(snap, budget, h, price_rule=pol.price_rule, order=full)
        np.testing.assert_array_equal(alloc.lots, ref.lots)


def test_snapshot_build_gains_ledger_shapes():
    assert Snapshot.build([], gains=[]).gains.shape == (0, 3)
    assert Snapshot.build([], gains=np.zeros((0, 3))).gains.shape == (0, 3)
    assert Snapshot.build(np.zeros(0)).n == 0
    # one column: recent gains only; two columns: recent and older
    np.testing.assert_array_equal(
        Snapshot.build([1.0, 2.0], gains=[3.0, 4.0]).gains, [[3, 0, 0], [4, 0, 0]]
    )
    np.testing.assert_array_equal(
        Snapshot.build([1.0], gains=[[3.0, 4.0]]).gains_layer, [1.0 + 3.0 + 4.0]
    )
    for bad in ([1.0, 2.0, 3.0], np.ones((2, 4)), [1.0]):
        with pytest.raises(InputError, match=r"snapshot\.gains"):
            Snapshot.build([1.0, 2.0], gains=bad)
    with pytest.raises(InputError, match=r"snapshot\.gains"):
        Snapshot.build([], gains=[1.0])
    # an empty snapshot runs through every layered rule
    empty = Snapshot.build([], gains=[])
    assert Seniority()(empty, 1.0).residual == 1.0


def test_caps_hook_defaults_to_capacity_and_per_instance_lives_in_base():
    snap = Snapshot.build([1.0, 2.0])
    assert UpnlQueue().caps(snap) is snap.capacity
    np.testing.assert_array_equal(CappedProRata(max_fraction=0.5).caps(snap), [0.5, 1.0])
    assert isinstance(Seniority.__dict__["properties"], PerInstance)
    assert Seniority.properties == frozenset({"principal_protect"})
    assert Seniority(inner=ProRata()).properties >= {"principal_protect", "sybil"}
