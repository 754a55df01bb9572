"""Venue details of the production ADL rules: dYdX's walk, Drift's socialised loss, BitMEX's
ranking of losing positions, all on snapshots whose capacity is the equity bound
``c_i = min(max(equity_i, 0), lots_i * lot_value_i)``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.adl.base import Snapshot, execute, max_lots
from market.adl.checker import check_adl_policy
from market.adl.queues import (
    DYDX_MAX_ITERATE,
    BitmexQueue,
    DriftSocialLoss,
    DydxQueue,
)
from market.adl.reference import reference_dydx
from market.errors import InputError

FAST = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def equity_caps(equity, lots, lot_value):
    """The equity bound the production venues use: ``min(max(equity, 0), lots * lot_value)``."""
    eq = np.asarray(equity, dtype=float)
    return np.minimum(np.maximum(eq, 0.0), np.asarray(lots) * np.asarray(lot_value, dtype=float))


# =========================================================================== dYdX
# Five subaccounts, $10 lots (mark 100, bankruptcy price 90, lot size 1), rows hold accounts
# [3, 5, 1, 4, 2].  By account id:
#   acc 1: 3 lots, equity  50 -> cap 30 (whole position fits: 3 lots)
#   acc 2: 5 lots, equity  25 -> cap 25 (pays at most 2 lots: offers of 3+ lots are skipped)
#   acc 3: 4 lots, equity 100 -> cap 40, a LOSING position (upnl -40): fits, pays like any other
#   acc 4: 2 lots, equity   0 -> cap  0 (every offer skipped)
#   acc 5: 6 lots, equity  45 -> cap 45 (pays at most 4 lots)
DYDX_ACC = [3, 5, 1, 4, 2]
DYDX_ROWS = {1: (3, 50.0, 20.0), 2: (5, 25.0, 30.0), 3: (4, 100.0, -40.0), 4: (2, 0.0, 10.0),
             5: (6, 45.0, 60.0)}  # fmt: skip


def dydx_snapshot(wave=0, **kw):
    lots = [DYDX_ROWS[a][0] for a in DYDX_ACC]
    eq = [DYDX_ROWS[a][1] for a in DYDX_ACC]
    up = [DYDX_ROWS[a][2] for a in DYDX_ACC]
    return Snapshot.build(
        equity_caps(eq, lots, 10.0),
        lots=lots,
        lot_value=10.0,
        equity=eq,
        upnl=up,
        account=DYDX_ACC,
        mark=100.0,
        bankruptcy_price=90.0,
        wave=wave,
        **kw,
    )


def test_dydx_start_is_fresh_every_wave_and_golden():
    snap = dydx_snapshot()
    starts = [DydxQueue(seed=0).start_index(dydx_snapshot(wave=w)) for w in range(8)]
    # default_rng(SeedSequence([seed, market, wave, m])).integers(m), m = 5 listed rows
    want = [
        int(np.random.default_rng(np.random.SeedSequence([0, 0, w, 5])).integers(5))
        for w in range(8)
    ]
    assert starts == want == [2, 2, 4, 4, 2, 2, 0, 1]
    assert DydxQueue(seed=5).start_index(snap) == 0
    assert DydxQueue(seed=6).start_index(dydx_snapshot(wave=1)) == 1
    # the market enters the seed too
    other = int(np.random.default_rng(np.random.SeedSequence([7, 3, 0, 5])).integers(5))
    assert DydxQueue(seed=7).start_index(dydx_snapshot(market=3)) == other
    # same seed, market, wave and list: same walk
    assert DydxQueue(seed=0).walk(snap).tolist() == DydxQueue(seed=0).walk(snap).tolist()


def test_dydx_walk_skips_where_bankruptcy_prices_do_not_overlap():
    q = DydxQueue(seed=5)  # wave 0: starts at account 1 (row 2)
    snap = dydx_snapshot()
    assert snap.capacity.tolist() == [40.0, 45.0, 30.0, 0.0, 25.0]
    assert q.walk(snap).tolist() == [2, 4, 0, 3, 1]  # accounts 1, 2, 3, 4, 5
    # B = 100: 10 lots.  acc 1 offered 3 -> takes 3 (7 left); acc 2 offered 5 > 2 -> skipped;
    # acc 3 (a loser) offered 4 -> takes 4 (3 left); acc 4 offered 2 > 0 -> skipped;
    # acc 5 offered 3 <= 4 -> takes 3, the walk ends
    assert q.allocate_wealth(snap, 100.0).tolist() == [40.0, 30.0, 30.0, 0.0, 0.0]
    # B = 120: 12 lots.  acc 1 takes 3, acc 2 skipped, acc 3 takes 4, acc 4 skipped, acc 5
    # offered 5 > 4 -> skipped whole (no partial fill); 5 lots = $50 are left over
    a = q(snap, 120.0)
    assert a.lots.tolist() == [4, 0, 3, 0, 0]
    assert a.haircut.tolist() == [40.0, 0.0, 30.0, 0.0, 0.0]
    assert a.residual == 50.0 and a.overshoot == 0.0
    assert q.wave_caps(snap, 120.0).tolist() == [40.0, 0.0, 30.0, 0.0, 0.0]
    # B = 15: ceil(1.5) = 2 lots from acc 1; the half lot is overshoot
    a = q(snap, 15.0)
    assert a.lots.tolist() == [0, 0, 2, 0, 0] and a.overshoot == 5.0
    # a fresh start (account 2): its 2 payable lots end a walk of 2 lots ...
    q2, snap2 = DydxQueue(seed=6), dydx_snapshot(wave=1)
    assert q2.walk(snap2).tolist() == [4, 0, 3, 1, 2]
    assert q2.allocate_wealth(snap2, 20.0).tolist() == [0.0, 0.0, 0.0, 0.0, 20.0]
    # ... but a 10-lot walk skips it, skips accounts 4 and 5, and ends short by 3 lots
    a = q2(snap2, 100.0)
    assert a.haircut.tolist() == [40.0, 0.0, 30.0, 0.0, 0.0] and a.residual == 30.0


def test_dydx_iteration_cap_leaves_a_residual():
    snap = dydx_snapshot()
    q = DydxQueue(seed=5, max_iterate=2)  # visits acc 1 (3 lots) and acc 2 (skipped), stops
    a = q(snap, 100.0)
    assert a.haircut.tolist() == [0.0, 0.0, 30.0, 0.0, 0.0]
    assert a.residual == 70.0
    assert q.wave_caps(snap, 100.0).tolist() == [0.0, 0.0, 30.0, 0.0, 0.0]
    assert DydxQueue(seed=5, max_iterate=None)(snap, 100.0).residual == 0.0
    assert DydxQueue().max_iterate == DYDX_MAX_ITERATE == 500


def test_dydx_execution_adds_no_lots_beyond_the_walk():
    # acc 5 could pay 4 lots, acc 2 two: execute() must not use them to cover the residual
    q = DydxQueue(seed=5)
    snap = dydx_snapshot()
    a = q(snap, 120.0)
    assert int(a.lots[1]) == 0 and int(a.lots[4]) == 0
    assert float((max_lots(snap) * snap.lot_value).sum()) == 130.0  # the grid could pay 120
    np.testing.assert_array_equal(a.lots, q.allocate_wealth(snap, 120.0) / 10.0)


def test_dydx_rows_without_lots_are_not_listed():
    snap = Snapshot.build([0.0, 5.0, 5.0], lots=[0, 5, 5], account=[1, 2, 3])
    q = DydxQueue()
    assert q.listed(snap).tolist() == [1, 2]
    assert sorted(q.walk(snap).tolist()) == [1, 2]
    assert q.priority(snap).tolist()[-1] == 0


def test_dydx_lot_value_per_row_tracks_dollars():
    # $2, $3 and $0 lots; order by account: rows 0, 1, 2; B = $10
    snap = Snapshot.build(
        [4.0, 30.0, 9.0], lots=[5, 10, 3], lot_value=[2.0, 3.0, 0.0], account=[1, 2, 3]
    )
    q = DydxQueue(seed=_seed_starting_at(snap, 0))
    # row 0 offered ceil(10/2) = 5 lots = $10 > cap 4 -> skipped; row 1 offered ceil(10/3) = 4
    # lots = $12 <= 30 -> takes them, the walk ends with $2 of overshoot
    a = q(snap, 10.0)
    assert a.lots.tolist() == [0, 4, 0] and a.overshoot == pytest.approx(2.0)
    q0 = DydxQueue(seed=_seed_starting_at(snap, 2))
    # from row 2: a $0 lot raises nothing; row 0 is skipped; row 1 takes 4 lots
    assert q0(snap, 10.0).lots.tolist() == [0, 4, 0]


def _seed_starting_at(snap, index):
    """The smallest seed whose walk starts at listed index ``index`` (deterministic)."""
    return next(s for s in range(1000) if DydxQueue(seed=s).start_index(snap) == index)


@st.composite
def dydx_cases(draw):
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = draw(st.sampled_from(["distinct", "few", "huge"]))
    if ids == "distinct":
        acc = rng.permutation(10 * n)[:n]
    elif ids == "few":
        acc = rng.integers(0, 4, n)  # repeated ids: equal ids go by row
    else:
        acc = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)  # too wide to shift
    magnitude = draw(st.sampled_from([1.0, 1e5, 1e10]))
    lots = (rng.integers(0, 20, n) * (magnitude / 10 if magnitude > 1 else 1)).astype(np.int64)
    lots[rng.random(n) < 0.1] = 0
    v = float(10.0 ** draw(st.floats(-5.0, 3.0)))
    equity = lots * v * rng.uniform(-0.3, 1.6, n)  # some cannot pay their whole position
    snap = Snapshot.build(
        equity_caps(equity, lots, v),
        lots=lots,
        lot_value=v,
        equity=equity,
        upnl=equity * rng.uniform(-1.0, 1.0, n),  # losers too
        account=acc,
        market=draw(st.integers(0, 3)),
        wave=draw(st.integers(0, 10**6)),
    )
    budget = draw(st.floats(0.0, 1.3)) * float(lots.sum()) * v
    cap_iter = draw(st.sampled_from([None, 1, 3, 10]))
    return snap, budget, DydxQueue(seed=draw(st.integers(0, 50)), max_iterate=cap_iter)


@FAST
@given(dydx_cases())
def test_dydx_matches_the_plain_loop_reference(case):
    snap, budget, pol = case
    listed = np.flatnonzero(snap.lots > 0)
    by_id = listed[np.argsort(snap.account[listed], kind="stable")]
    walk = np.roll(by_id, -pol.start_index(snap))
    np.testing.assert_array_equal(pol.walk(snap), walk)
    np.testing.assert_array_equal(pol.walk(snap, 3), walk[:3])
    want = reference_dydx(
        snap.capacity, snap.lots, float(snap.lot_value[0]), walk, budget, pol.max_iterate
    )
    h = pol.allocate_wealth(snap, budget)
    np.testing.assert_array_equal(h, want)
    a = pol(snap, budget)
    np.testing.assert_array_equal(a.haircut, want)
    short = max(budget - float(want.sum()), 0.0)
    assert a.residual == pytest.approx(short, abs=1e-9 * max(1.0, budget))
    caps = pol.wave_caps(snap, budget)
    assert np.all(h <= caps) and np.all(caps <= snap.capacity)


def test_dydx_at_real_world_magnitudes():
    # 1e10-lot positions with $1e-5 lots, and $1e3 lots: whole-lot arithmetic stays exact
    for v in (1e-5, 1e3):
        lots = np.array([10**10, 7 * 10**9, 3 * 10**9, 10**10], dtype=np.int64)
        equity = np.array([2e10, 0.5e10, 1e10, 4e10]) * v
        caps = equity_caps(equity, lots, v)
        snap = Snapshot.build(caps, lots=lots, lot_value=v, equity=equity, account=[0, 1, 2, 3])
        pol = DydxQueue(seed=_seed_starting_at(snap, 0))
        budget = (10**10 + 5 * 10**9 + 7) * v  # acc 1 (7e9 lots, pays 5e9) is skipped
        a = pol(snap, budget)
        assert a.lots.tolist() == [10**10, 0, 3 * 10**9, 2 * 10**9 + 7]
        assert a.residual == 0.0 and a.overshoot <= v


def test_dydx_passes_the_conformance_checker_in_both_iteration_modes():
    for pol in (DydxQueue(), DydxQueue(max_iterate=None)):
        report = check_adl_policy(pol, max_examples=100, large_n=20_000, raise_on_fail=False)
        assert report.passed, str(report)


@pytest.mark.parametrize(
    ("pol", "field"),
    [
        (DydxQueue(seed=-1), "dydx.seed"),
        (DydxQueue(seed=1.5), "dydx.seed"),
        (DydxQueue(max_iterate=0), "dydx.max_iterate"),
        (DydxQueue(max_iterate=2.5), "dydx.max_iterate"),
        (DydxQueue(max_iterate=True), "dydx.max_iterate"),
    ],
)
def test_dydx_rejects_bad_parameters(pol, field):
    with pytest.raises(InputError) as err:
        pol(dydx_snapshot(), 10.0)
    assert err.value.field == field


def test_dydx_rejects_a_negative_wave():
    with pytest.raises(InputError) as err:
        DydxQueue().allocate_wealth(dydx_snapshot(wave=-1), 10.0)
    assert err.value.field == "snapshot.wave"


# =========================================================================== Drift
def drift_market(equity, lots, side, upnl, lot_size=0.5, **kw):
    """Every open position; price rule "none": the equity cap is ``max(equity, 0)``."""
    eq = np.asarray(equity, dtype=float)
    return Snapshot.build(
        np.maximum(eq, 0.0),
        lots=lots,
        lot_value=0.0,
        side=side,
        upnl=upnl,
        equity=eq,
        lot_size=lot_size,
        **kw,
    )


def test_drift_every_position_pays_per_base_unit_losers_included():
    # base sizes 1, 3, 2, 4 (lot size 0.5): longs 4, shorts 6; rows 1 and 3 are losing
    snap = drift_market(
        equity=[100.0, 80.0, 60.0, 500.0],
        lots=[2, 6, 4, 8],
        side=[1, 1, -1, -1],
        upnl=[30.0, -20.0, 10.0, -45.0],
    )
    h = DriftSocialLoss().allocate_wealth(snap, 25.0)
    # delta = 25 / (4 + 6) = 2.5 per base unit: no cap binds
    assert h.tolist() == [2.5, 7.5, 5.0, 10.0]
    assert h[snap.upnl < 0].sum() == 17.5  # the losers pay 17.5 of 25
    a = DriftSocialLoss()(snap, 25.0)
    assert a.lots.tolist() == [0, 0, 0, 0] and a.residual == 0.0 and a.overshoot == 0.0


def test_drift_equity_bound_never_opens_a_new_hole():
    # row 1 holds 3 base units but only 4 of equity: Drift would charge it 7.5 (3.5 of new bad
    # debt); here it gives its 4 and the other 21 are spread over 1 + 2 + 4 = 7 base units
    snap = drift_market(
        equity=[100.0, 4.0, 60.0, 500.0],
        lots=[2, 6, 4, 8],
        side=[1, 1, -1, -1],
        upnl=[30.0, -20.0, 10.0, -45.0],
    )
    h = DriftSocialLoss().allocate_wealth(snap, 25.0)
    np.testing.assert_allclose(h, [3.0, 4.0, 6.0, 12.0], rtol=1e-12)
    # an underwater account (equity <= 0) has no capacity and pays nothing
    snap = drift_market(equity=[-5.0, 10.0], lots=[4, 4], side=[1, -1], upnl=[-9.0, 3.0])
    assert DriftSocialLoss().allocate_wealth(snap, 6.0).tolist() == [0.0, 6.0]


@st.composite
def drift_unbound(draw):
    n = draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lots = rng.integers(1, 10 ** draw(st.integers(1, 10)), n, dtype=np.int64)
    lot_size = float(10.0 ** draw(st.floats(-3.0, 1.0)))
    size = lots * lot_size
    budget = float(10.0 ** draw(st.floats(-5.0, 9.0)))
    share = size * (budget / float(size.sum()))
    equity = share * rng.uniform(1.0, 50.0, n)  # every cap holds the row's share
    side = rng.choice([-1, 1], n)
    upnl = equity * rng.uniform(-0.9, 0.9, n)  # winners and losers
    return drift_market(equity, lots, side, upnl, lot_size=lot_size), budget


@FAST
@given(drift_unbound())
def test_drift_unbound_caps_give_exactly_size_times_delta(case):
    snap, budget = case
    size = snap.lots * snap.lot_size
    h = DriftSocialLoss().allocate_wealth(snap, budget)
    np.testing.assert_allclose(h, size * (budget / float(size.sum())), rtol=1e-12)
    assert float(h.sum()) == pytest.approx(budget, rel=1e-12)


# =========================================================================== BitMEX
def test_bitmex_efflev_and_pnl_follow_the_venue_text_cross_margined():
    # mark 100, lot size 1.  Row 0: long 10 @ 80, equity 250; row 1: short 4 @ 90 (losing),
    # equity 120; row 2: long 5 @ 110 (losing), equity 100.
    mark = 100.0
    lots = np.array([10, 4, 5])
    side = np.array([1, -1, 1])
    entry = np.array([80.0, 90.0, 110.0])
    equity = np.array([250.0, 120.0, 100.0])
    upnl = side * (mark - entry) * lots
    snap = Snapshot.build(
        equity_caps(equity, lots, 5.0),
        lots=lots,
        lot_value=5.0,
        side=side,
        entry=entry,
        upnl=upnl,
        equity=equity,
        mark=mark,
    )
    # the venue's signed values; cross margin: the bankruptcy price is where the account's
    # equity is gone, p_b = mark - side * equity / size
    size = side * lots
    bankrupt = mark - side * equity / lots
    mark_value, bankrupt_value, entry_value = size * mark, size * bankrupt, size * entry
    eff_lev = np.abs(mark_value) / (mark_value - bankrupt_value)
    pnl = (mark_value - entry_value) / np.abs(entry_value)
    np.testing.assert_allclose(eff_lev, [4.0, 10.0 / 3.0, 5.0])
    np.testing.assert_allclose(pnl, [0.25, -1.0 / 9.0, -1.0 / 11.0])
    venue = np.where(pnl > 0, pnl * eff_lev, pnl / eff_lev)
    np.testing.assert_allclose(BitmexQueue().score(snap), venue, rtol=1e-12)
    np.testing.assert_allclose(venue, [1.0, -1.0 / 30.0, -1.0 / 55.0])


def test_bitmex_losers_are_reached_after_the_winners_under_the_equity_cap():
    # winners: rows 0 (score 1.0) and 3; losers: rows 1 (-1/30) and 2 (-1/55); $5 lots
    mark = 100.0
    lots = np.array([10, 4, 5, 2])
    side = np.array([1, -1, 1, 1])
    entry = np.array([80.0, 90.0, 110.0, 95.0])
    equity = np.array([250.0, 120.0, 100.0, 8.0])
    upnl = side * (mark - entry) * lots
    kw = {"lots": lots, "lot_value": 5.0, "side": side, "entry": entry, "mark": mark}
    snap = Snapshot.build(equity_caps(equity, lots, 5.0), upnl=upnl, equity=equity, **kw)
    q = BitmexQueue()
    # row 3: PNL% 5/95, EffLev 200/8 = 25 -> 1.3158 > row 0's 1.0
    assert q.priority(snap).tolist() == [3, 0, 2, 1]  # winners, then the more levered loser
    assert snap.capacity.tolist() == [50.0, 20.0, 25.0, 8.0]
    a = q(snap, 80.0)  # 58 from the winners (8 + 50), then 22 of row 2 -> 5 lots ($25)
    assert a.wealth.tolist() == [50.0, 0.0, 22.0, 8.0]
    assert a.lots.tolist() == [10, 0, 5, 1]  # row 3's 1.6 lots: 1 whole lot ($5) ...
    assert a.raised == 80.0  # ... and row 2's part lot rounds up first: 50 + 25 + 5
    # under the profits-only cap the losers have nothing to give: the rest is a residual
    pnl_caps = np.minimum(np.maximum(upnl, 0.0), lots * 5.0)
    a = q(Snapshot.build(pnl_caps, upnl=upnl, equity=equity, **kw), 80.0)
    assert a.lots[[1, 2]].tolist() == [0, 0] and a.residual == pytest.approx(80.0 - 60.0)


def test_bitmex_worked_example_closes_account_2_then_part_of_account_5():
    # BitMEX's ADL examples page: six longs with quantities 10, 10, 20, 30, 20, 10 and PNL
    # rankings 3, 6, 1, 4, 5, 2; a liquidated short of 20 contracts closes all of account 2
    # (10) and 10 of account 5's 20.  Same PNL% (0.2), EffLev 5 * ranking: equity = 120 q / r.
    q_ = np.array([10, 10, 20, 30, 20, 10])
    r = np.array([3, 6, 1, 4, 5, 2])
    equity = 120.0 * q_ / r
    snap = Snapshot.build(
        equity_caps(equity, q_, 10.0),
        lots=q_,
        lot_value=10.0,
        entry=500.0,
        mark=600.0,
        upnl=100.0 * q_,
        equity=equity,
        account=[1, 2, 3, 4, 5, 6],
    )
    np.testing.assert_allclose(BitmexQueue().score(snap), r, rtol=1e-12)
    a = BitmexQueue()(snap, 20 * 10.0)
    assert a.lots.tolist() == [0, 10, 0, 0, 10, 0]


def test_bitmex_passes_the_conformance_checker():
    assert check_adl_policy(BitmexQueue(), max_examples=100, large_n=20_000).passed
    assert check_adl_policy(DriftSocialLoss(), max_examples=100, large_n=20_000).passed


# ===================================================== whole lots at real-world magnitudes
def test_execute_closes_exactly_the_whole_lots_asked_for_at_1e10_lots():
    # h = n * v in floats need not divide back to n: 4e9 lots of sqrt(10) dollars gave
    # 3999999999.9999995, floored to one lot short (and the shortfall, under the budget's
    # 1e-9 tolerance, was not rounded back)
    rng = np.random.default_rng(3)
    for v in (1e-5, 10**0.5, 7.3e2):
        n = rng.integers(10**8, 10**10, 50)
        snap = Snapshot.build(n * v, lots=n, lot_value=v)
        h = n * v
        a = execute(snap, float(h.sum()), h, order=np.arange(50))
        np.testing.assert_array_equal(a.lots, n)
