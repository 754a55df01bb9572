"""Production ADL queues (market/adl/queues.py) and the plain-loop references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.adl import ordering
from market.adl.base import Snapshot, execute, water_fill
from market.adl.ordering import order_prefix, queue_allocate, rank_rows
from market.adl.queues import (
    BinanceQueue,
    BitmexQueue,
    DriftSocialLoss,
    DydxQueue,
    HyperliquidQueue,
    quantile_indicator,
)
from market.adl.reference import reference_pro_rata, reference_queue
from market.adl.strategies import budgets, snapshots
from market.errors import InputError

FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],  # other jobs may share the machine
)

# ---------------------------------------------------------------------------------------------
# A hand-computed market: mark 110, lot size 1.
#   row 0: long  10 lots, entry 100, upnl 100, equity 200, cash 100, maint 11
#   row 1: long   5 lots, entry  88, upnl 110, equity 110, cash   0, maint 5.5
#   row 2: short  4 lots, entry 121, upnl  44, equity  44, cash   0, maint 4.4
#   row 3: long   2 lots, entry 120, upnl -20, equity  44, cash  64, maint 2.2
# notional = 1100, 550, 440, 220.


def hand_snapshot(**overrides):
    kw = {
        "lots": [10, 5, 4, 2],
        "side": [1, 1, -1, 1],
        "entry": [100.0, 88.0, 121.0, 120.0],
        "upnl": [100.0, 110.0, 44.0, -20.0],
        "equity": [200.0, 110.0, 44.0, 44.0],
        "cash": [100.0, 0.0, 0.0, 64.0],
        "maintenance": [11.0, 5.5, 4.4, 2.2],
        "lot_value": [10.0, 22.0, 11.0, 0.0],
        "mark": 110.0,
    }
    kw.update(overrides)
    capacity = kw.pop("capacity", [100.0, 110.0, 44.0, 0.0])
    return Snapshot.build(capacity, **kw)


# --------------------------------------------------------------------------- queue_allocate
def test_queue_allocate_hand_examples():
    c = [5.0, 3.0, 0.0, 4.0]
    s = [1.0, 3.0, 2.0, 3.0]  # order: row 1, row 3 (tie -> lower index first), row 2, row 0
    assert queue_allocate(c, s, 6.0).tolist() == [0.0, 3.0, 0.0, 3.0]
    assert queue_allocate(c, s, 8.0).tolist() == [1.0, 3.0, 0.0, 4.0]
    assert queue_allocate(c, s, 2.5).tolist() == [0.0, 2.5, 0.0, 0.0]
    assert queue_allocate(c, s, 0.0).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert queue_allocate(c, s, 12.0).tolist() == c  # exactly the total
    assert queue_allocate(c, s, 99.0).tolist() == c  # infeasible: capacity exhausted
    # +inf first, -inf last
    assert queue_allocate([2.0, 2.0, 2.0], [-np.inf, 0.0, np.inf], 3.0).tolist() == [0, 1, 2]
    assert queue_allocate([], [], 5.0).shape == (0,)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([1.0, -1.0], [0.0, 0.0], 1.0), "capacity"),
        (([1.0, np.inf], [0.0, 0.0], 1.0), "capacity"),
        (([1.0, 1.0], [0.0, np.nan], 1.0), "score"),
        (([1.0, 1.0], [0.0], 1.0), "score"),
        (([1.0, 1.0], [0.0, 0.0], -1.0), "budget"),
        (([1.0, 1.0], [0.0, 0.0], np.nan), "budget"),
        (([[1.0]], [[0.0]], 1.0), "capacity"),
    ],
)
def test_queue_allocate_rejects_bad_input(args, field):
    with pytest.raises(InputError) as err:
        queue_allocate(*args)
    assert err.value.field == field
    assert "\n" not in str(err.value)


tie_values = st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0, 1e-9, 1e6])
score_values = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 1.0, -2.0, np.inf, -np.inf]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@st.composite
def queue_cases(draw):
    n = draw(st.integers(0, 30))
    c = draw(st.lists(st.one_of(tie_values, st.floats(0, 1e6)), min_size=n, max_size=n))
    s = draw(st.lists(score_values, min_size=n, max_size=n))
    total = float(sum(c))
    b = draw(
        st.one_of(
            st.just(0.0),
            st.just(total),
            st.floats(0, 1.5 * total + 1.0),
            st.sampled_from([c[i] for i in range(n)] or [0.0]),
        )
    )
    return c, s, b


@FAST
@given(queue_cases())
def test_queue_allocate_matches_reference(case):
    c, s, b = case
    h = queue_allocate(c, s, b)
    ref = reference_queue(c, s, b)
    scale = max(1.0, b, float(sum(c)))
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-9 * scale)
    cap = np.asarray(c, dtype=float)
    assert np.all(h >= 0) and np.all(h <= cap)
    # budget met, or capacity exhausted
    assert h.sum() == pytest.approx(min(b, cap.sum()), rel=1e-9, abs=1e-9)
    # a queue touches at most one row partially
    partial = (h > 0) & (h < cap)
    assert partial.sum() <= 1


# --------------------------------------------------------------------------- scores by hand
def test_hyperliquid_scores_by_hand():
    s = HyperliquidQueue().score(hand_snapshot())
    # (110/100)*(1100/200), (110/88)*(550/110), (121/110)*(440/44), (110/120)*(220/44)
    np.testing.assert_allclose(s, [6.05, 6.25, 11.0, 55.0 / 12.0], rtol=1e-12)


def test_bitmex_scores_by_hand():
    s = BitmexQueue().score(hand_snapshot())
    # PNL% = upnl / entry value: 100/1000, 110/440, 44/484, -20/240
    # EffLev = notional / equity: 5.5, 5, 10, 5
    np.testing.assert_allclose(s, [0.55, 1.25, 10.0 / 11.0, -1.0 / 60.0], rtol=1e-12)


def test_binance_current_scores_by_hand():
    s = BinanceQueue().score(hand_snapshot())
    # PNL% = upnl / notional: 1/11, 0.2, 0.1, -1/11; EffLev 5.5, 5, 10, 5
    np.testing.assert_allclose(s, [0.5, 1.0, 1.0, -1.0 / 55.0], rtol=1e-12)


def test_binance_legacy_scores_by_hand():
    s = BinanceQueue(formula="legacy").score(hand_snapshot())
    # max(0,upnl)/max(1,cash) * maint/equity:
    # 100/100*11/200, 110/1*5.5/110, 44/1*4.4/44, 0
    np.testing.assert_allclose(s, [0.055, 5.5, 4.4, 0.0], rtol=1e-12)


def test_queue_orders_and_haircuts_by_hand():
    snap = hand_snapshot()
    # Binance current ties rows 1 and 2 at exactly 1.0: capacity 110 > 44 puts row 1 first.
    assert HyperliquidQueue().priority(snap).tolist() == [2, 1, 0, 3]
    assert BitmexQueue().priority(snap).tolist() == [1, 2, 0, 3]
    assert BinanceQueue().priority(snap).tolist() == [1, 2, 0, 3]
    assert BinanceQueue(formula="legacy").priority(snap).tolist() == [1, 2, 0, 3]
    assert HyperliquidQueue().allocate_wealth(snap, 150.0).tolist() == [0.0, 106.0, 44.0, 0.0]
    assert BitmexQueue().allocate_wealth(snap, 150.0).tolist() == [0.0, 110.0, 40.0, 0.0]
    assert BinanceQueue().allocate_wealth(snap, 150.0).tolist() == [0.0, 110.0, 40.0, 0.0]
    assert HyperliquidQueue().allocate_wealth(snap, 200.0).tolist() == [46.0, 110.0, 44.0, 0.0]
    assert HyperliquidQueue().allocate_wealth(snap, 1e9).tolist() == [100.0, 110.0, 44.0, 0.0]


def test_equal_capacity_tie_broken_by_account_id():
    # Binance current ties rows 1 and 2; give them equal capacity: account id decides.
    snap = hand_snapshot(capacity=[100.0, 44.0, 44.0, 0.0], account=[7, 9, 3, 1])
    assert BinanceQueue().priority(snap).tolist() == [2, 1, 0, 3]
    assert BinanceQueue().allocate_wealth(snap, 50.0).tolist() == [0.0, 6.0, 44.0, 0.0]


def test_rows_equal_on_the_whole_key_share_equally():
    snap = Snapshot.build([10.0, 10.0, 10.0], account=[5, 5, 6], entry=1.0, equity=20.0)
    # rows 0 and 1: same score, capacity and account id -> indistinguishable: split 15 evenly
    h = HyperliquidQueue().allocate_wealth(snap, 15.0)
    assert h.tolist() == [7.5, 7.5, 0.0]


def test_allocate_closes_lots_in_queue_order():
    snap = hand_snapshot()
    alloc = HyperliquidQueue()(snap, 155.0)
    # wealth [1, 110, 44, 0]: row 0 wants 0.1 lot of $10 -> one whole lot
    assert alloc.wealth.tolist() == [1.0, 110.0, 44.0, 0.0]
    assert alloc.lots.tolist() == [1, 5, 4, 0]
    assert alloc.haircut.tolist() == [10.0, 110.0, 44.0, 0.0]
    assert alloc.overshoot == pytest.approx(9.0)
    assert alloc.residual == 0.0
    # close prices: long closed below the mark, short above (mark +- lot_value / lot_size)
    np.testing.assert_allclose(alloc.price[:3], [100.0, 88.0, 121.0])


def test_rounding_lot_lands_on_next_row_in_queue_not_row_index():
    # four rows, $10 lots, capacity 25 each (2 whole lots), HL order 2, 0, 3, 1
    snap = Snapshot.build(
        [25.0] * 4, lots=3, lot_value=10.0, entry=1.0, equity=[2.0, 4.0, 1.0, 3.0]
    )
    q = HyperliquidQueue()
    assert q.priority(snap).tolist() == [2, 0, 3, 1]
    alloc = q(snap, 60.0)
    assert alloc.wealth.tolist() == [25.0, 0.0, 25.0, 10.0]
    # floors give 2+2+1 lots = $50; the missing $10 goes to row 3 (next in queue), not row 1
    assert alloc.lots.tolist() == [2, 0, 2, 2]
    assert alloc.raised == 60.0


def test_negative_equity_ranks_first_and_empty_rows_last():
    snap = Snapshot.build(
        [5.0, 5.0, 5.0], lots=[4, 0, 2], equity=[100.0, 1.0, -3.0], entry=1.0, upnl=5.0
    )
    for q in (HyperliquidQueue(), BitmexQueue(), BinanceQueue()):
        s = q.score(snap)
        assert s[1] == -np.inf  # no lots: nothing to close
        assert s[2] == np.inf  # equity <= 0 with a gain: first
        assert q.priority(snap).tolist() == [2, 0, 1]


def test_bitmex_losing_row_with_nonpositive_equity_scores_zero():
    snap = Snapshot.build([1.0], lots=2, upnl=-5.0, equity=-1.0, entry=2.0)
    assert BitmexQueue().score(snap).tolist() == [0.0]
    assert BinanceQueue(formula="legacy").score(snap).tolist() == [0.0]


# --------------------------------------------------------------------------- relabeling
@st.composite
def ranked_snapshots(draw):
    n = draw(st.integers(1, 25))
    pick = lambda vals: draw(st.lists(st.sampled_from(vals), min_size=n, max_size=n))  # noqa: E731
    snap = Snapshot.build(
        pick([0.0, 1.0, 1.0, 2.0, 5.0, 7.5]),
        lots=pick([0, 1, 2, 2, 3]),
        side=pick([1, -1]),
        entry=pick([90.0, 100.0, 110.0]),
        upnl=pick([-10.0, 0.0, 10.0, 20.0]),
        equity=pick([-5.0, 50.0, 100.0, 100.0]),
        cash=pick([0.0, 50.0]),
        maintenance=pick([1.0, 2.0]),
        account=pick([0, 1, 2, 3, 4, 5]),  # duplicates on purpose
        mark=100.0,
    )
    perm = np.asarray(draw(st.permutations(list(range(n)))), dtype=np.int64)
    budget = draw(st.floats(0, 1.2 * float(snap.capacity.sum()) + 1.0))
    return snap, perm, budget


@FAST
@given(ranked_snapshots())
@pytest.mark.parametrize(
    "policy", [HyperliquidQueue(), BitmexQueue(), BinanceQueue(), BinanceQueue("legacy")]
)
def test_ranked_queues_are_relabeling_invariant(policy, case):
    snap, perm, b = case
    assert "relabeling" in policy.properties
    h = policy.allocate_wealth(snap, b)
    h_perm = policy.allocate_wealth(snap.take(perm), b)
    np.testing.assert_allclose(h_perm, h[perm], rtol=1e-12, atol=1e-12 * max(1.0, b))
    assert np.all(h >= 0) and np.all(h <= snap.capacity)
    assert h.sum() == pytest.approx(min(b, snap.capacity.sum()), rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------- Sybil
def test_queue_is_not_sybil_resistant_stylised():
    # score = capacity (the stylised queue): the top account pays the whole budget ...
    assert queue_allocate([10.0, 8.0], [10.0, 8.0], 8.0).tolist() == [8.0, 0.0]
    # ... split it into two accounts of 5 and it drops behind the 8: the group pays nothing
    split = queue_allocate([5.0, 5.0, 8.0], [5.0, 5.0, 8.0], 8.0)
    assert split.tolist() == [0.0, 0.0, 8.0]


def test_hyperliquid_is_not_sybil_resistant():
    q = HyperliquidQueue()
    assert "sybil" not in q.properties
    # A: 10 lots, equity 100 -> score 10; B: 10 lots, equity 110 -> score 9.09. Both cap 50.
    merged = Snapshot.build([50.0, 50.0], lots=10, equity=[100.0, 110.0], entry=100.0, mark=100.0)
    h = q.allocate_wealth(merged, 50.0)
    assert h.tolist() == [50.0, 0.0]  # A pays everything
    # Same owner splits A: 8 lots with 99 of margin (score 8.08) + 2 lots with 1 (score 200)
    split = Snapshot.build(
        [40.0, 10.0, 50.0],
        lots=[8, 2, 10],
        equity=[99.0, 1.0, 110.0],
        group=[0, 0, 1],
        account=[0, 2, 1],
        entry=100.0,
        mark=100.0,
    )
    h2 = q.allocate_wealth(split, 50.0)
    assert h2.tolist() == [0.0, 10.0, 40.0]
    assert h2[split.group == 0].sum() == 10.0  # the group now pays 10 instead of 50


# --------------------------------------------------------------------------- lights
def test_quantile_indicator_known_cases():
    assert quantile_indicator(np.arange(1.0, 11.0)).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert quantile_indicator([3.0, 1.0, 2.0, 5.0, 4.0]).tolist() == [2, 0, 1, 4, 3]
    assert quantile_indicator([5.0, 5.0, 5.0]).tolist() == [4, 4, 4]  # ties share the top
    assert quantile_indicator([7.0]).tolist() == [4]
    assert quantile_indicator([1.0, 2.0, 3.0], n_lights=3).tolist() == [0, 1, 2]
    # ranked within side: longs [1, 4, 9], shorts [2, -inf]
    lights = quantile_indicator([1.0, 2.0, 4.0, -np.inf, 9.0], side=[1, -1, 1, -1, 1])
    assert lights.tolist() == [1, 4, 3, 2, 4]
    assert quantile_indicator([]).tolist() == []


def test_quantile_indicator_rejects_bad_input():
    with pytest.raises(InputError, match="n_lights"):
        quantile_indicator([1.0], n_lights=0)
    with pytest.raises(InputError, match="score"):
        quantile_indicator([np.nan])
    with pytest.raises(InputError, match="side"):
        quantile_indicator([1.0, 2.0], side=[1])


def test_queue_lights_use_score_by_side():
    # HL scores 6.05, 6.25, 11 (short, alone), 4.58 -> longs ranked among three
    assert HyperliquidQueue().lights(hand_snapshot()).tolist() == [3, 4, 4, 1]


@FAST
@given(st.lists(score_values, min_size=1, max_size=40), st.integers(1, 7))
def test_quantile_indicator_is_monotone_and_in_range(scores, n_lights):
    lights = quantile_indicator(scores, n_lights)
    s = np.asarray(scores)
    assert lights.min() >= 0 and lights.max() == n_lights - 1
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(lights[order]) >= 0)
    assert np.all(lights[s == s.max()] == n_lights - 1)


@FAST
@given(st.lists(st.sampled_from([-np.inf, -1.5, -0.0, 0.0, 0.25, 3.0, np.inf]), max_size=60))
def test_quantile_indicator_of_one_group_equals_the_grouped_ranking(scores):
    """Ties share a light whatever their order in the sort: the one-group lights (an
    unstable sort) equal the grouped ranking's (a lexsort) with every row in one group."""
    one = quantile_indicator(scores)
    grouped = quantile_indicator(scores, side=np.zeros(len(scores)))
    assert one.dtype == grouped.dtype and one.tolist() == grouped.tolist()


# --------------------------------------------------------------------------- Drift
def drift_snapshot(capacity, lots=(1, 3, 4), side=(1, 1, -1), **kw):
    return Snapshot.build(capacity, lots=list(lots), side=list(side), lot_size=2.0, **kw)


def test_drift_takes_from_both_sides_pro_rata_to_size():
    d = DriftSocialLoss()
    # base sizes 2, 6, 8 (lot size 2); total 16
    snap = drift_snapshot([100.0, 100.0, 100.0])
    h = d.allocate_wealth(snap, 16.0)
    np.testing.assert_allclose(h, [2.0, 6.0, 8.0], rtol=1e-12)
    alloc = d(snap, 16.0)
    assert alloc.lots.tolist() == [0, 0, 0]  # no force close
    np.testing.assert_allclose(alloc.haircut, h, rtol=1e-12)
    assert alloc.overshoot == 0.0 and alloc.residual == 0.0
    # long side pays 8 of 16, short side 8 of 16: in proportion to base size
    assert h[snap.side > 0].sum() == pytest.approx(8.0)


def test_drift_caps_bind_then_rest_is_shared_by_size():
    h = DriftSocialLoss().allocate_wealth(drift_snapshot([1.0, 100.0, 100.0]), 16.0)
    np.testing.assert_allclose(h, [1.0, 15.0 * 6 / 14, 15.0 * 8 / 14], rtol=1e-12)
    h_all = DriftSocialLoss().allocate_wealth(drift_snapshot([1.0, 2.0, 3.0]), 16.0)
    assert h_all.tolist() == [1.0, 2.0, 3.0]  # infeasible: everything taken


def test_drift_sybil_scale_relabel_by_hand():
    d = DriftSocialLoss()
    assert d.properties == {"relabeling", "sybil", "scale"}
    snap = drift_snapshot([1.0, 30.0, 100.0])
    h = d.allocate_wealth(snap, 16.0)
    # split row 1 (3 lots, cap 30) into 1 lot (cap 10) and 2 lots (cap 20)
    split = Snapshot.build(
        [1.0, 10.0, 20.0, 100.0],
        lots=[1, 1, 2, 4],
        side=[1, 1, 1, -1],
        group=[0, 1, 1, 2],
        lot_size=2.0,
    )
    h_split = d.allocate_wealth(split, 16.0)
    assert h_split[1] + h_split[2] == pytest.approx(h[1], rel=1e-12)
    np.testing.assert_allclose(d.allocate_wealth(drift_snapshot([3.0, 90.0, 300.0]), 48.0), 3 * h)
    perm = np.array([2, 0, 1])
    np.testing.assert_allclose(d.allocate_wealth(snap.take(perm), 16.0), h[perm], rtol=1e-12)


def test_drift_inconsistent_unsized_rows_still_meet_budget():
    # row 1 holds no lots but has capacity: sized rows give all they have, the rest comes from it
    snap = Snapshot.build([2.0, 10.0, 4.0], lots=[1, 0, 3], lot_size=1.0)
    h = DriftSocialLoss().allocate_wealth(snap, 9.0)
    np.testing.assert_allclose(h, [2.0, 3.0, 4.0])


@st.composite
def drift_cases(draw):
    n = draw(st.integers(1, 30))
    lots = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    raw = draw(st.lists(st.one_of(tie_values, st.floats(0, 1e5)), min_size=n, max_size=n))
    caps = [0.0 if lt == 0 else c for lt, c in zip(lots, raw)]  # no lots, nothing to take
    total = sum(caps)
    b = draw(st.one_of(st.just(total), st.floats(0, 1.3 * total + 1.0)))
    return caps, lots, b


@FAST
@given(drift_cases())
def test_drift_matches_reference_pro_rata_by_size(case):
    caps, lots, b = case
    snap = Snapshot.build(caps, lots=lots, lot_size=0.5, equity=1.0)
    h = DriftSocialLoss().allocate_wealth(snap, b)
    ref = reference_pro_rata(caps, b, weights=[lt * 0.5 for lt in lots])
    np.testing.assert_allclose(h, ref, rtol=1e-9, atol=1e-9 * max(1.0, b))
    assert h.sum() == pytest.approx(min(b, sum(caps)), rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------- reference_pro_rata
def test_reference_pro_rata_by_hand():
    assert reference_pro_rata([2.0, 6.0, 0.0], 4.0).tolist() == [1.0, 3.0, 0.0]
    assert reference_pro_rata([2.0, 6.0], 100.0).tolist() == [2.0, 6.0]
    # equal weights, caps bind: level 3.5 after row 0 is capped at 1
    assert reference_pro_rata([1.0, 5.0, 5.0], 8.0, weights=[1, 1, 1]).tolist() == [
        1.0,
        3.5,
        3.5,
    ]


@FAST
@given(
    st.lists(st.one_of(tie_values, st.floats(0, 1e6)), min_size=1, max_size=30),
    st.floats(0, 1.0),
)
def test_water_fill_matches_reference_pro_rata(caps, frac):
    b = frac * 1.2 * sum(caps)
    ones = [1.0] * len(caps)
    np.testing.assert_allclose(
        water_fill(np.array(caps), b),
        reference_pro_rata(caps, b, weights=ones),
        rtol=1e-9,
        atol=1e-9 * max(1.0, b),
    )
    plain = reference_pro_rata(caps, b)
    total = sum(caps)
    expected = caps if b >= total else [c * b / total for c in caps]
    np.testing.assert_allclose(plain, expected, rtol=1e-9, atol=1e-9 * max(1.0, b))


# --------------------------------------------------------------------------- class contract
def test_class_attributes_and_params():
    expected = {
        HyperliquidQueue: ("hyperliquid", "prev_mark", "opposite", {"relabeling"}),
        BitmexQueue: ("bitmex", "bankruptcy", "opposite", {"relabeling"}),
        BinanceQueue: ("binance", "bankruptcy", "opposite", {"relabeling"}),
        DydxQueue: ("dydx", "bankruptcy", "opposite", set()),
        DriftSocialLoss: ("drift", "none", "all", {"relabeling", "sybil", "scale"}),
    }
    for cls, (name, price_rule, sides, props) in expected.items():
        assert cls.name == name
        assert cls.price_rule == price_rule
        assert cls.sides == sides
        assert set(cls.properties) == props
        assert "sybil" not in props or cls is DriftSocialLoss
        assert cls.description and "\n" not in cls.description
        assert cls.source and cls.__doc__
    assert BinanceQueue(formula="legacy").get_params() == {"formula": "legacy"}
    assert DydxQueue(seed=3).clone().get_params() == {"seed": 3, "max_iterate": 500}
    assert HyperliquidQueue().get_params() == {}


def test_binance_rejects_unknown_formula():
    with pytest.raises(InputError, match=r"binance\.formula"):
        BinanceQueue(formula="v3").allocate_wealth(hand_snapshot(), 1.0)


# ------------------------------------------------- speed paths: queue cut, prefix orders
# (brief P1) The queues sort only the rows around the point where the budget runs out, and
# execute() takes the order as a prefix function; these tests pin both to the full-sort
# definitions.  `_SMALL_N = 0` forces the partition path on small hand-checkable inputs.


@pytest.fixture
def no_small_sort(monkeypatch):
    monkeypatch.setattr(ordering, "_SMALL_N", 0)


def test_queue_allocate_hand_examples_through_the_partition_path(no_small_sort):
    c = [5.0, 3.0, 0.0, 4.0]
    s = [1.0, 3.0, 2.0, 3.0]  # order: row 1, row 3 (tie -> lower index first), row 2, row 0
    assert queue_allocate(c, s, 6.0).tolist() == [0.0, 3.0, 0.0, 3.0]
    assert queue_allocate(c, s, 8.0).tolist() == [1.0, 3.0, 0.0, 4.0]
    assert queue_allocate(c, s, 2.5).tolist() == [0.0, 2.5, 0.0, 0.0]
    assert queue_allocate(c, s, 12.0).tolist() == c
    assert queue_allocate([2.0, 2.0, 2.0], [-np.inf, 0.0, np.inf], 3.0).tolist() == [0, 1, 2]


@FAST
@given(queue_cases())
def test_queue_allocate_partition_path_matches_reference(case):
    c, s, b = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ordering, "_SMALL_N", 0)
        h = queue_allocate(c, s, b)
    ref = reference_queue(c, s, b)
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-9 * max(1.0, b, float(sum(c))))


def test_queue_cut_on_a_large_queue_matches_the_reference():
    # 6000 rows (above the small-sort size), scores with many exact ties and +-inf
    rng = np.random.default_rng(3)
    n = 6000
    c = np.round(rng.pareto(1.5, n) * 10.0, 1) * (rng.random(n) < 0.9)
    s = np.where(
        rng.random(n) < 0.5, rng.choice([-np.inf, 0.5, 1.0, 2.0, np.inf], n), rng.random(n)
    )
    for frac in (0.0, 1e-4, 0.05, 0.3, 0.8, 0.999, 1.0, 1.5):
        b = frac * float(c.sum())
        ref = reference_queue(c, s, b)
        np.testing.assert_allclose(queue_allocate(c, s, b), ref, rtol=0, atol=1e-9 * c.sum())


def _full_queue_order(snap, score):
    """The definition: score desc, capacity desc, account asc (then row), one lexsort."""
    return np.lexsort((np.arange(snap.n), snap.account, -snap.capacity, -score))


def _big_queue_snapshot(n=5000, seed=5):
    rng = np.random.default_rng(seed)
    cap = np.round(rng.pareto(1.5, n), 2) * 100.0
    cap[rng.random(n) < 0.05] = 0.0
    lots = np.ceil(cap / 0.7).astype(np.int64) + rng.integers(0, 3, n)
    equity = rng.choice([50.0, 100.0, 200.0, 400.0], n)  # few values: many score ties
    return Snapshot.build(
        cap,
        lots=lots,
        lot_value=0.7,
        equity=equity,
        entry=rng.choice([90.0, 95.0], n),
        mark=100.0,
        upnl=cap,
        account=rng.permutation(n) + 10,
    )


@pytest.mark.parametrize("policy", [HyperliquidQueue(), BitmexQueue(), BinanceQueue()])
def test_ranked_queue_large_matches_full_sort_definition(policy):
    snap = _big_queue_snapshot()
    score = policy.score(snap)
    full = _full_queue_order(snap, score)
    np.testing.assert_array_equal(policy.priority(snap), full)
    for frac in (0.01, 0.3, 0.7):
        b = frac * float(snap.capacity.sum())
        # definition: whole capacities along the full order (no whole-key ties here)
        cum = np.cumsum(snap.capacity[full])
        k = int(np.searchsorted(cum, b))
        want = np.zeros(snap.n)
        want[full[:k]] = snap.capacity[full[:k]]
        want[full[k]] = b - (cum[k - 1] if k else 0.0)
        h = policy.allocate_wealth(snap, b)
        np.testing.assert_allclose(h, want, rtol=0, atol=1e-9 * b)
        # lots: the same as execute() with the full order in hand
        alloc = policy(snap, b)
        ref = execute(snap, b, h, price_rule=policy.price_rule, order=full)
        np.testing.assert_array_equal(alloc.lots, ref.lots)
        assert alloc.raised >= b - 1e-9 * b


@FAST
@given(snapshots(0, 60), st.data())
def test_execute_with_a_prefix_function_equals_the_full_order(snap, data):
    budget = data.draw(budgets(snap))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    c = snap.capacity
    h = c * rng.random(snap.n) * (rng.random(snap.n) < 0.6)
    h = h * min(1.0, budget / h.sum()) if h.sum() > 0 else h
    full = rng.permutation(snap.n)
    start = data.draw(st.integers(0, snap.n))
    asked = []

    def first(k):
        asked.append(k)
        return full[: max(k, start)]

    a = execute(snap, budget, h, order=full)
    b = execute(snap, budget, h, order=first)
    np.testing.assert_array_equal(a.lots, b.lots)
    np.testing.assert_array_equal(a.haircut, b.haircut)


def test_execute_rows_missing_from_a_prefix_order_come_after_it_by_row():
    # five rows, $1 lots, 3 spare lots each, nothing wanted: the $2.5 shortfall takes three
    # rows; the order names only row 3, so rows 0 and 1 (lowest row numbers) come next
    snap = Snapshot.build([3.0] * 5, lots=3)
    alloc = execute(snap, 2.5, np.zeros(5), order=np.array([3]))
    assert alloc.lots.tolist() == [1, 1, 0, 1, 0]
    # a function that runs out early is treated the same way
    alloc = execute(snap, 2.5, np.zeros(5), order=lambda k: np.array([4]))
    assert alloc.lots.tolist() == [1, 1, 0, 0, 1]


def test_rank_rows_and_order_prefix_match_lexsort():
    rng = np.random.default_rng(9)
    n = 3000
    score = rng.choice([-np.inf, 1.0, 2.0, 3.0, np.inf], n) + np.where(
        rng.random(n) < 0.5, 0.0, rng.random(n)
    )
    key = rng.integers(0, 20, n)

    def tie(rows):
        return np.lexsort((rows, key[rows], -score[rows]))

    full = np.lexsort((np.arange(n), key, -score))
    np.testing.assert_array_equal(rank_rows(np.arange(n), score, tie), full)
    first = order_prefix(score, tie)
    for k in (0, 1, 17, 500, 2999, 3000, 5000):
        got = first(k)
        assert got.size >= min(k, n)
        np.testing.assert_array_equal(got, full[: got.size])


@given(
    st.lists(
        st.one_of(st.sampled_from([0.0, -0.0, 1.0, np.inf, -np.inf]), st.floats(-5, 5)),
        min_size=0,
        max_size=60,
    ),
    st.integers(1, 9),
)
@settings(max_examples=300, deadline=None)
def test_quantile_indicator_one_group_equals_the_grouped_path(scores, n_lights):
    """Without sides, the stable sort gives the lights of the one-side grouped computation."""
    s = np.array(scores, dtype=float)
    got = quantile_indicator(s, n_lights)
    want = quantile_indicator(s, n_lights, side=np.ones(s.size))
    assert got.tolist() == want.tolist()
