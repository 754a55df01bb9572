"""Smooth ADL rules: pro-rata family, RAP, leverage draining and the min-max ILP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import norm

from market.adl import prorata
from market.adl.base import Snapshot, execute, max_lots, water_fill
from market.adl.checker import check_adl_policy
from market.adl.minimax import MinimaxLeverage, post_leverage
from market.adl.minmax_ilp import MinMaxILP
from market.adl.prorata import (
    CappedProRata,
    ContractProRata,
    ProRata,
    RiskAwareProRata,
    capped_fill,
    log_psi,
    psi,
)
from market.adl.reference import reference_pro_rata
from market.adl.strategies import lot_grid_capacity
from market.errors import InputError

# ------------------------------------------------------------------------- capped fill


def reference_capped_fill(cap, budget, weights):
    """Plain-Python reference: bisection on eta for sum(min(c, eta * w)) = B (w > 0 rows)."""
    cap, weights = list(cap), list(weights)
    budget = min(budget, sum(cap))
    held = sum(c for c, w in zip(cap, weights) if w > 0)
    if held <= budget:
        rest = budget - held
        idle = sum(c for c, w in zip(cap, weights) if w <= 0)
        return np.array(
            [c if w > 0 else (c * rest / idle if idle > 0 else 0.0) for c, w in zip(cap, weights)]
        )
    lo, hi = 0.0, max(c / w for c, w in zip(cap, weights) if w > 0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        total = sum(min(c, mid * w) for c, w in zip(cap, weights) if w > 0)
        lo, hi = (lo, mid) if total >= budget else (mid, hi)
    return np.array([min(c, hi * w) if w > 0 else 0.0 for c, w in zip(cap, weights)])


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.0, 1e3), st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0, 1e-3])),
        min_size=1,
        max_size=20,
    ),
    frac=st.floats(0.0, 1.0),
)
def test_capped_fill_matches_reference(rows, frac):
    cap = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    budget = frac * float(cap.sum())
    h = capped_fill(cap, budget, w)
    want = reference_capped_fill(cap, budget, w)
    np.testing.assert_allclose(h, want, rtol=1e-9, atol=1e-9 * max(1.0, budget))
    with np.errstate(divide="ignore"):
        h_log = capped_fill(cap, budget, log_weights=np.log(w))
    np.testing.assert_allclose(h_log, want, rtol=1e-9, atol=1e-9 * max(1.0, budget))


def test_capped_fill_ties_and_budget_equal_to_capacity():
    # equal ratios c / w with a budget one ulp below the capacity: everyone gives ~everything
    cap = np.array([0.1, 0.2, 0.3, 0.7, 1.1])
    budget = float(np.nextafter(cap.sum(), 0.0))
    np.testing.assert_allclose(capped_fill(cap, budget, cap), cap, rtol=1e-12)
    # a subnormal capacity next to normal ones does not break the level search
    cap = np.array([1.0, 1.0, 1.0, 1.1e-308, 2.0])
    w = np.array([0.125, 1.0, 1.0, 1.1e-308, 2.0])
    np.testing.assert_allclose(capped_fill(cap, 4.375, w), [0.375, 1, 1, 1.1e-308, 2.0])


# ---------------------------------------------------------------------------- pro-rata


def test_pro_rata_hand_vector_and_lots():
    snap = Snapshot.build([1.0, 3.0, 6.0], lot_value=0.5)
    h = ProRata().allocate_wealth(snap, 5.0)
    np.testing.assert_allclose(h, [0.5, 1.5, 3.0], rtol=0, atol=1e-15)
    alloc = ProRata()(snap, 5.0)
    np.testing.assert_array_equal(alloc.lots, [1, 3, 6])
    assert alloc.raised == pytest.approx(5.0, abs=1e-12)
    assert alloc.overshoot == 0.0
    assert alloc.residual == 0.0


def test_pro_rata_budget_above_capacity_and_zero_capacity():
    snap = Snapshot.build([1.0, 3.0])
    np.testing.assert_array_equal(ProRata().allocate_wealth(snap, 10.0), [1.0, 3.0])
    assert ProRata()(snap, 10.0).residual == pytest.approx(6.0)
    zero = Snapshot.build([0.0, 0.0])
    np.testing.assert_array_equal(ProRata().allocate_wealth(zero, 3.0), [0.0, 0.0])
    np.testing.assert_array_equal(ProRata().allocate_wealth(snap, 0.0), [0.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    caps=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=40),
    frac=st.floats(0.0, 1.0),
)
def test_pro_rata_zero_overshoot_in_wealth_space(caps, frac):
    c = np.array(caps)
    budget = frac * float(c.sum())
    h = ProRata().allocate_wealth(Snapshot.build(c), budget)
    assert abs(float(h.sum()) - budget) <= 1e-12 * max(budget, 1.0)
    if c.sum() > 0 and budget > 0:
        np.testing.assert_allclose(h, c * (budget / c.sum()), rtol=1e-12, atol=0)


# ------------------------------------------------------------------- contract pro-rata


def test_contract_pro_rata_hand_vector():
    snap = Snapshot.build([5.0, 30.0, 30.0], lots=[10, 30, 60], lot_value=[1.0, 1.0, 0.5])
    pol = ContractProRata()
    # weights lots * lot_value = [10, 30, 30]; B = 14 -> eta = 0.2
    np.testing.assert_allclose(pol.allocate_wealth(snap, 14.0), [2.0, 6.0, 6.0], rtol=1e-12)
    # B = 40: row 0 capped at 5, the other 35 split 30:30
    np.testing.assert_allclose(pol.allocate_wealth(snap, 40.0), [5.0, 17.5, 17.5], rtol=1e-12)
    alloc = pol(snap, 40.0)
    np.testing.assert_array_equal(alloc.lots, [5, 18, 35])
    np.testing.assert_allclose(alloc.haircut, [5.0, 18.0, 17.5])
    assert alloc.overshoot == pytest.approx(0.5)


def test_contract_pro_rata_priority_and_zero_weight_fallback():
    snap = Snapshot.build([3.0, 5.0, 5.0], lots=[3, 5, 5], account=[7, 9, 2])
    np.testing.assert_array_equal(ContractProRata().priority(snap), [2, 1, 0])
    # row 0 holds no lots: it gives only what the lot holders cannot
    snap = Snapshot.build([3.0, 2.0], lots=[0, 2])
    np.testing.assert_allclose(ContractProRata().allocate_wealth(snap, 1.0), [0.0, 1.0])
    np.testing.assert_allclose(ContractProRata().allocate_wealth(snap, 4.0), [2.0, 2.0])
    alloc = ContractProRata()(snap, 4.0)
    assert alloc.residual == pytest.approx(2.0)  # no lots to close on row 0


# --------------------------------------------------------------------- capped pro-rata


def test_capped_pro_rata_fraction_cap_and_residual():
    c = [10.0, 20.0, 30.0, 40.0]
    snap = Snapshot.build(c)
    pol = CappedProRata(max_fraction=0.5)
    np.testing.assert_allclose(pol.allocate_wealth(snap, 40.0), [4.0, 8.0, 12.0, 16.0])
    np.testing.assert_allclose(pol.allocate_wealth(snap, 60.0), [5.0, 10.0, 15.0, 20.0])
    alloc = pol(snap, 60.0)
    assert alloc.raised == pytest.approx(50.0)
    assert alloc.residual == pytest.approx(10.0)
    assert np.all(alloc.haircut <= 0.5 * np.array(c) + 1e-12)


def test_capped_pro_rata_keep_maintenance():
    snap = Snapshot.build(
        [10.0, 20.0, 30.0, 40.0], equity=[100.0, 8.0, 100.0, 100.0], maintenance=[0, 5.0, 0, 0]
    )
    # row 1 may lose at most 8 - 5 = 3; the others share 47 at a common fraction 47/80
    h = CappedProRata(keep_maintenance=True).allocate_wealth(snap, 50.0)
    np.testing.assert_allclose(h, [5.875, 3.0, 17.625, 23.5], rtol=1e-12)
    np.testing.assert_allclose(CappedProRata().allocate_wealth(snap, 50.0), [5, 10, 15, 20])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.01, 1e4), st.floats(-10.0, 1e4).map(lambda x: round(x, 6))),
        min_size=1,
        max_size=30,
    ),
    frac=st.floats(0.0, 1.2),
    max_fraction=st.floats(0.05, 1.0),
)
def test_capped_pro_rata_equalises_uncapped_fractions(rows, frac, max_fraction):
    c = np.array([r[0] for r in rows])
    eq = np.array([r[1] for r in rows])
    snap = Snapshot.build(c, equity=eq)
    pol = CappedProRata(max_fraction=max_fraction, keep_maintenance=True)
    cap = pol.caps(snap)
    budget = frac * float(cap.sum())
    h = pol.allocate_wealth(snap, budget)
    assert np.all(h >= 0) and np.all(h <= cap * (1 + 1e-12))
    assert float(h.sum()) == pytest.approx(min(budget, float(cap.sum())), rel=1e-9, abs=1e-9)
    uncapped = h < cap * (1 - 1e-9)
    if uncapped.sum() >= 1 and budget < cap.sum():
        f = h[uncapped] / c[uncapped]
        np.testing.assert_allclose(f, f[0], rtol=1e-9, atol=1e-12)
        # capped rows were capped below the common fraction
        capped = ~uncapped & (c > 0)
        assert np.all(cap[capped] / c[capped] <= f[0] * (1 + 1e-9) + 1e-12)


# ------------------------------------------------------------------------------- RAP


def test_rap_linear_fractions_proportional_to_leverage():
    snap = Snapshot.build([10.0, 10.0, 20.0], leverage=[1.0, 2.0, 4.0])
    h = RiskAwareProRata(g="linear").allocate_wealth(snap, 6.0)
    # weights c * lambda = [10, 20, 80]: h = 6 * w / 110
    np.testing.assert_allclose(h, [6 / 11, 12 / 11, 48 / 11], rtol=1e-12)
    f = h / np.array([10.0, 10.0, 20.0])
    np.testing.assert_allclose(f / f[0], [1.0, 2.0, 4.0], rtol=1e-12)
    # inf / nan leverage counts as the largest finite one
    snap_inf = Snapshot.build([10.0, 10.0, 20.0], leverage=[1.0, np.inf, 4.0])
    snap_eq = Snapshot.build([10.0, 10.0, 20.0], leverage=[1.0, 4.0, 4.0])
    snap_nan = Snapshot.build([10.0, 10.0, 20.0], leverage=[1.0, np.nan, 4.0])
    want = RiskAwareProRata().allocate_wealth(snap_eq, 6.0)
    np.testing.assert_allclose(RiskAwareProRata().allocate_wealth(snap_inf, 6.0), want)
    np.testing.assert_allclose(RiskAwareProRata().allocate_wealth(snap_nan, 6.0), want)


def test_rap_power_cvar_cap_and_fallback():
    c = np.array([10.0, 10.0, 20.0])
    snap = Snapshot.build(c, leverage=[1.0, 2.0, 4.0])
    f = RiskAwareProRata(g="power", power=2.0).allocate_wealth(snap, 1.0) / c
    np.testing.assert_allclose(f / f[0], [1.0, 8.0, 64.0], rtol=1e-12)
    f = RiskAwareProRata(g="cvar", threshold=1.5).allocate_wealth(snap, 1.0) / c
    np.testing.assert_allclose(f / f[1], [0.0, 1.0, 10.0], rtol=1e-12, atol=1e-15)
    # fraction cap 0.2 binds on row 2 (4.36 > 4): the other 2 dollars split 10:20
    h = RiskAwareProRata(max_fraction=0.2).allocate_wealth(snap, 6.0)
    np.testing.assert_allclose(h, [2 / 3, 4 / 3, 4.0], rtol=1e-12)
    alloc = RiskAwareProRata(max_fraction=0.2)(snap, 9.0)
    assert alloc.residual == pytest.approx(1.0) and np.all(alloc.haircut <= 0.2 * c)
    # every weight zero: plain pro-rata
    h = RiskAwareProRata(g="cvar", threshold=10.0).allocate_wealth(snap, 4.0)
    np.testing.assert_allclose(h, [1.0, 1.0, 2.0], rtol=1e-12)


def test_rap_optimal_weights_and_tail_order():
    c = np.array([10.0, 10.0, 20.0])
    lam = np.array([1.0, 2.0, 4.0])
    s = 0.5
    snap = Snapshot.build(c, leverage=lam)
    h = RiskAwareProRata(g="optimal", sigma=s).allocate_wealth(snap, 3.0)
    u = 1.0 / lam
    rho = lam * (s * norm.pdf(u / s) - u * norm.cdf(-u / s))
    np.testing.assert_allclose(h, 3.0 * c * rho / (c * rho).sum(), rtol=1e-10)
    # sigma = 0.01: every weight underflows in linear space (exp(-312) and below), yet once
    # the riskiest row is full the rest goes to the next riskiest, not to everyone.
    snap = Snapshot.build([10.0, 10.0, 1.0], leverage=lam)
    h = RiskAwareProRata(g="optimal", sigma=0.01).allocate_wealth(snap, 5.0)
    np.testing.assert_allclose(h, [0.0, 4.0, 1.0], atol=1e-12)


def test_psi_closed_form_against_quadrature():
    s = 0.1
    for u in [-0.3, -0.05, 0.0, 0.03, 0.1, 0.25]:
        direct, _ = integrate.quad(
            lambda z, u=u: max(-(u + z), 0.0) * norm.pdf(z, scale=s), -np.inf, -u
        )
        assert psi(u, s) == pytest.approx(direct, rel=1e-7, abs=1e-14)
    # deep tail, in logs: psi = phi_s(u) * int_0^inf y exp(-(2uy + y^2) / (2 s^2)) dy
    for t in [3.0, 30.0, 49.0, 51.0, 200.0, 1e4]:
        u = t * s
        integral, _ = integrate.quad(
            lambda y, u=u: y * np.exp(-(2 * u * y + y * y) / (2 * s * s)),
            0.0,
            60 * s * s / u,
            epsabs=0,
            epsrel=1e-12,
            limit=200,
        )
        want = -0.5 * t * t - np.log(s * np.sqrt(2 * np.pi)) + np.log(integral)
        assert float(log_psi(u, s)) == pytest.approx(want, rel=1e-9)


def test_psi_monte_carlo():
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 0.2, size=400_000)
    for u in [0.0, 0.1, 0.3]:
        mc = float(np.maximum(-(u + z), 0.0).mean())
        assert psi(u, 0.2) == pytest.approx(mc, rel=0.03)


# ----------------------------------------------------------------------- minimax leverage
FORMS = ("fixed_equity", "equity_reduced")


def _drain_snap(equity, cap, lots=100, lot_value=0.1, account=None, leverage=None):
    """Mark 1, lot size 1: notional = lots; k = 1 / lot_value; leverage = lots / equity unless
    given (an account leverage above it: notional in other markets)."""
    n = len(equity)
    return Snapshot.build(
        np.asarray(cap, float),
        lots=np.broadcast_to(lots, (n,)),
        lot_value=lot_value,
        equity=np.asarray(equity, float),
        account=account,
        leverage=leverage,
    )


def test_minimax_leverage_drains_the_account_leverage_the_paper_example():
    # three accounts, the same position here (leverage 2 in this market), but account 0 holds
    # as much again elsewhere: account leverage 4, 2, 2.  k = 0.01 * 2000 / 0.02 = 1000.
    snap = Snapshot.build(
        [2.0] * 3,
        lots=[100] * 3,
        lot_value=0.02,
        equity=[1000.0] * 3,
        leverage=[4.0, 2.0, 2.0],
        mark=2000.0,
        lot_size=0.01,
    )
    pol = MinimaxLeverage()
    assert pol.form == "fixed_equity"
    # fixed equity: (4000 - 1000 h) / 1000 = 2.2 at h = 1.8; the others stay at 2
    np.testing.assert_allclose(pol.allocate_wealth(snap, 1.8), [1.8, 0.0, 0.0], atol=1e-12)
    assert pol.level(snap, 1.8) == pytest.approx(2.2, rel=1e-12)
    assert pol(snap, 1.8).lots.tolist() == [90, 0, 0]
    np.testing.assert_allclose(post_leverage(snap, np.array([1.8, 0, 0])), [2.2, 2.0, 2.0])
    # equity reduced: (4000 - 1000 h) / (1000 - h) = 2200 / 998.2 at h = 1.8
    red = MinimaxLeverage(form="equity_reduced")
    np.testing.assert_allclose(red.allocate_wealth(snap, 1.8), [1.8, 0.0, 0.0], atol=1e-12)
    assert red.level(snap, 1.8) == pytest.approx(2200.0 / 998.2, rel=1e-12)
    # past the others' leverage both share: fixed equity, level 2 - (3.6 - 2) / 3 ... by hand:
    # S(eta) = (4 - eta) + 2 (2 - eta) for eta < 2 (each dollar lowers leverage by 1)
    np.testing.assert_allclose(pol.allocate_wealth(snap, 2.6), [2.0, 0.3, 0.3], atol=1e-12)
    assert pol.level(snap, 2.6) == pytest.approx(1.7, rel=1e-12)


def test_minimax_leverage_fixed_equity_hand_vectors_with_flat_pieces():
    # lots 100 at mark 1 (N = 100), equity 20, 50, 100, account leverage 8, 2, 1 (A = 160,
    # 100, 100); $0.1 lots: k = 10, w = E / k = 2, 5, 10 dollars per unit of leverage.
    snap = _drain_snap([20.0, 50.0, 100.0], [10.0] * 3, leverage=[8.0, 2.0, 1.0])
    pol = MinimaxLeverage()
    # B = 6: h_0 = (8 - eta) * 2 -> eta = 5
    np.testing.assert_allclose(pol.allocate_wealth(snap, 6.0), [6.0, 0.0, 0.0], atol=1e-12)
    assert pol.level(snap, 6.0) == pytest.approx(5.0, rel=1e-12)
    # B = 10: row 0 reaches its cap 10 at eta = 3 and nothing changes down to eta = 2: the
    # level is the highest eta raising B, 3
    np.testing.assert_allclose(pol.allocate_wealth(snap, 10.0), [10.0, 0.0, 0.0], atol=1e-12)
    assert pol.level(snap, 10.0) == pytest.approx(3.0, rel=1e-12)
    # B = 14: 10 + (2 - eta) * 5 = 14 -> eta = 1.2; row 2 (leverage 1) untouched
    h = pol.allocate_wealth(snap, 14.0)
    np.testing.assert_allclose(h, [10.0, 4.0, 0.0], atol=1e-12)
    assert pol.level(snap, 14.0) == pytest.approx(1.2, rel=1e-12)
    np.testing.assert_allclose(post_leverage(snap, h), [3.0, 1.2, 1.0], rtol=1e-12)
    # B = 24: 10 + 5 (2 - eta) + 10 (1 - eta) = 24 -> eta = 0.4
    np.testing.assert_allclose(pol.allocate_wealth(snap, 24.0), [10.0, 8.0, 6.0], atol=1e-12)
    # the equity-reduced form on the same accounts: (160 - 10 h) / (20 - h) = 100 / 14 at 6
    red = MinimaxLeverage(form="equity_reduced")
    np.testing.assert_allclose(red.allocate_wealth(snap, 6.0), [6.0, 0.0, 0.0], atol=1e-12)
    assert red.level(snap, 6.0) == pytest.approx(100.0 / 14.0, rel=1e-12)
    np.testing.assert_allclose(
        post_leverage(snap, np.array([6.0, 0, 0]), form="equity_reduced")[0], 100.0 / 14.0
    )


def test_minimax_leverage_equity_reduced_never_reaches_accounts_above_k():
    # a realistic bankruptcy gap: the lot value is 2 % of the lot's notional, k = 50.
    # Accounts levered 80x and 60x, and 10x; capacity 1 each, B = 1.5.
    snap = _drain_snap([100 / 80, 100 / 60, 10.0], [1.0, 1.0, 1.0], lots=100, lot_value=0.02)
    np.testing.assert_allclose(snap.leverage, [80.0, 60.0, 10.0])
    # fixed equity: w = E / k = 1/40, 1/30, 1/5; the 80x account alone down to 60 (0.5),
    # then both: (80 - eta) / 40 + (60 - eta) / 30 = 1.5 at eta = 300 / 7
    pol = MinimaxLeverage()
    np.testing.assert_allclose(pol.allocate_wealth(snap, 0.5), [0.5, 0.0, 0.0], atol=1e-12)
    fixed = pol.allocate_wealth(snap, 1.5)
    np.testing.assert_allclose(fixed, [13 / 14, 4 / 7, 0.0], atol=1e-12)
    assert pol.level(snap, 1.5) == pytest.approx(300 / 7, rel=1e-12)
    # equity reduced: closing lots raises the leverage of the 80x and 60x accounts
    # ((100 - 50 h) / (100/80 - h) > 80 for h > 0), so only the 10x account drains: to
    # leverage 0 it gives min(1, 100/50) = 1; the last 0.5 is spread pro rata over what is
    # left of all capacities (1, 1, 0): 0.25 each
    red = MinimaxLeverage(form="equity_reduced")
    np.testing.assert_allclose(red.allocate_wealth(snap, 1.5), [0.25, 0.25, 1.0], atol=1e-12)
    assert red.level(snap, 1.5) == 0.0
    lev = post_leverage(snap, np.array([0.01, 0.0, 0.0]), form="equity_reduced")[0]
    assert lev > 80.0


def test_minimax_leverage_broke_rows_first_and_leftover():
    for form in FORMS:
        pol = MinimaxLeverage(form=form)
        # row 3 has equity -5: it gives first
        snap = _drain_snap([20.0, 50.0, 100.0, -5.0], [10.0, 10.0, 10.0, 3.0])
        np.testing.assert_allclose(pol.allocate_wealth(snap, 2.0), [0, 0, 0, 2.0], atol=1e-12)
        assert pol.level(snap, 2.0) == np.inf
        # a non-finite leverage counts as broke too
        snap = _drain_snap([20.0, 50.0], [10.0, 3.0], leverage=[5.0, np.nan])
        np.testing.assert_allclose(pol.allocate_wealth(snap, 2.0), [0, 2.0], atol=1e-12)
    # equity reduced, level 2: h_A = (100 - 2*20) / (10 - 2) = 7.5
    snap = _drain_snap([20.0, 50.0, 100.0, -5.0], [10.0, 10.0, 10.0, 3.0])
    red = MinimaxLeverage(form="equity_reduced")
    np.testing.assert_allclose(red.allocate_wealth(snap, 10.5), [7.5, 0, 0, 3.0], atol=1e-9)
    # fixed equity, w = E / k = 2, 5, 10: row 0 alone raises (5 - 2) * 2 = 6 < 7.5 by
    # eta = 2, so row 1 joins: 2 (5 - eta) + 5 (2 - eta) = 7.5 -> eta = 12.5 / 7
    fix = MinimaxLeverage()
    h = fix.allocate_wealth(snap, 10.5)
    eta = (10.0 + 10.0 - 7.5) / 7.0
    np.testing.assert_allclose(h, [2 * (5 - eta), 5 * (2 - eta), 0.0, 3.0], atol=1e-12)
    # row 2 has leverage 20 >= k = 10: the equity-reduced form cannot drain it.  Rows 0, 1
    # drain to leverage 0 at most (N/k = 10 = cap), then the last 2 dollars are spread
    # pro-rata over the spare capacity (only row 2 has any).
    snap = _drain_snap([20.0, 50.0, 5.0], [10.0, 10.0, 4.0])
    np.testing.assert_allclose(red.allocate_wealth(snap, 22.0), [10.0, 10.0, 2.0], atol=1e-9)
    assert red.level(snap, 22.0) == 0.0
    np.testing.assert_allclose(red.allocate_wealth(snap, 7.5), [7.5, 0.0, 0.0], atol=1e-9)
    # the fixed-equity form drains it first: (20 - eta) * 0.5 = 4 -> capped at 4 by eta = 12
    np.testing.assert_allclose(fix.allocate_wealth(snap, 4.0), [0.0, 0.0, 4.0], atol=1e-12)
    assert fix.level(snap, 4.0) == pytest.approx(12.0, rel=1e-12)


def test_minimax_leverage_tiny_budgets_scale():
    # one account the equity-reduced form cannot drain (leverage 80 >= k = 50): a budget far
    # below a dollar still goes to it through the leftover pass, at any currency scale
    for s in (1.0, 3.0):
        snap = _drain_snap([1.25 * s], [0.001 * s], lots=100, lot_value=0.02 * s)
        for form in FORMS:
            h = MinimaxLeverage(form=form).allocate_wealth(snap, 6e-10 * s)
            np.testing.assert_allclose(h, [6e-10 * s], rtol=1e-12)


def test_minimax_leverage_rejects_an_unknown_form():
    snap = _drain_snap([20.0], [1.0])
    for bad in ("paper", None, 1):
        with pytest.raises(InputError) as err:
            MinimaxLeverage(form=bad)(snap, 0.5)
        assert err.value.field == "minimax_leverage.form"
    with pytest.raises(InputError):
        post_leverage(snap, np.zeros(1), form="paper")


def _random_drainable(rng, n):
    """Accounts every form can drain: account leverage below k = 1 / lot_value (mark 1)."""
    lots = rng.integers(1, 200, size=n)
    k = rng.choice([5.0, 10.0, 20.0]) if rng.random() < 0.5 else rng.uniform(4, 25, size=n)
    lam = rng.uniform(0.2, 0.75, size=n) * k  # leverage in this market
    eq = lots / lam
    v = 1.0 / np.broadcast_to(k, (n,))
    cap = lots * v * rng.uniform(0.2, 1.0, size=n)
    extra = rng.choice([1.0, 1.0, 1.1, 1.3], size=n)  # notional in other markets
    snap = Snapshot.build(cap, lots=lots, lot_value=v, equity=eq, leverage=lam * extra)
    return snap, float(cap.sum()) * rng.uniform(0.01, 1.0)


@pytest.mark.parametrize("form", FORMS)
def test_minimax_leverage_minimises_the_largest_post_leverage(form):
    pol = MinimaxLeverage(form=form)
    rng = np.random.default_rng(11)
    for _ in range(150):
        snap, budget = _random_drainable(rng, int(rng.integers(1, 30)))
        h = pol.allocate_wealth(snap, budget)
        assert float(h.sum()) == pytest.approx(budget, rel=1e-9)
        mm = post_leverage(snap, h, form).max()
        rivals = [ProRata().allocate_wealth(snap, budget)]
        for _ in range(4):  # other feasible vectors with the same total
            rivals.append(water_fill(snap.capacity, budget, weights=rng.pareto(1.0, snap.n)))
        for alt in rivals:
            if float(alt.sum()) >= budget * (1 - 1e-12):
                assert mm <= post_leverage(snap, alt, form).max() * (1 + 1e-9)
        # rows at or below the level are untouched; touched uncapped rows sit on the level
        eta = pol.level(snap, budget)
        lev0 = post_leverage(snap, np.zeros(snap.n), form)
        below = lev0 < eta * (1 - 1e-9)
        assert np.all(h[below] == 0.0)
        free = (h > 0) & (h < snap.capacity * (1 - 1e-9))
        np.testing.assert_allclose(post_leverage(snap, h, form)[free], eta, rtol=1e-7)


@pytest.mark.parametrize("form", FORMS)
def test_minimax_leverage_sybil_split_and_scale(form):
    pol = MinimaxLeverage(form=form)
    snap = _drain_snap([20.0, 50.0, 100.0], [10.0, 10.0, 10.0], leverage=[8.0, 2.0, 1.0])
    whole = pol.allocate_wealth(snap, 12.0)
    # split row 0 into 30 + 70 lots with equity and capacity in the same proportion
    split = Snapshot.build(
        [3.0, 7.0, 10.0, 10.0],
        lots=[30, 70, 100, 100],
        lot_value=0.1,
        equity=[6.0, 14.0, 50.0, 100.0],
        leverage=[8.0, 8.0, 2.0, 1.0],
    )
    parts = pol.allocate_wealth(split, 12.0)
    assert parts[0] + parts[1] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_allclose(parts[2:], whole[1:], rtol=1e-12, atol=1e-12)
    # scale every dollar field, the mark and the budget by 3
    scaled = Snapshot.build(
        [30.0, 30.0, 30.0],
        lots=[100, 100, 100],
        lot_value=0.3,
        equity=[60.0, 150.0, 300.0],
        leverage=[8.0, 2.0, 1.0],
        mark=3.0,
    )
    np.testing.assert_allclose(pol.allocate_wealth(scaled, 36.0), 3 * whole, rtol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_minimax_leverage_passes_the_conformance_checker(form):
    report = check_adl_policy(MinimaxLeverage(form=form), raise_on_fail=False)
    assert report.passed, str(report)
    assert {"relabeling", "sybil", "scale"} <= {c.name for c in report.checks if c.status == "pass"}


def test_minimax_leverage_at_real_world_magnitudes():
    # 1e10-lot positions, $1e-5 to $1e3 lots, account leverage 0.1 to 1e4
    rng = np.random.default_rng(21)
    for v in (1e-5, 1.0, 1e3):
        n = 400
        lots = (10.0 ** rng.uniform(0, 10, n)).astype(np.int64) + 1
        lot_size, mark = 0.01, 2000.0
        lev = 10.0 ** rng.uniform(-1, 4, n)
        equity = lots * lot_size * mark / lev
        cap = np.minimum(equity, lots * v)
        snap = Snapshot.build(
            cap, lots=lots, lot_value=v, equity=equity, leverage=lev, lot_size=lot_size, mark=mark
        )
        for form in FORMS:
            pol = MinimaxLeverage(form=form)
            for frac in (1e-9, 0.01, 0.5, 0.999):
                budget = frac * float(cap.sum())
                h = pol.allocate_wealth(snap, budget)
                assert np.all(np.isfinite(h)) and np.all(h >= 0) and np.all(h <= cap)
                assert float(h.sum()) == pytest.approx(budget, rel=1e-9)
                a = pol(snap, budget)
                assert a.residual == 0.0 or a.residual <= 1e-9 * budget


# --------------------------------------------------------------------------- min-max ILP


def test_min_max_ilp_hand_vector():
    snap = Snapshot.build([1.0, 2.0, 3.0])
    alloc = MinMaxILP()(snap, 2.5)
    # [0, 1, 2] has largest fraction 2/3; every other cover of 2.5 has a row at 1
    np.testing.assert_array_equal(alloc.lots, [0, 1, 2])
    assert alloc.overshoot == pytest.approx(0.5)
    # infeasible: every row gives its whole lots, the rest is a residual
    snap = Snapshot.build([1.5, 2.0], lots=[1, 2])
    alloc = MinMaxILP()(snap, 10.0)
    np.testing.assert_array_equal(alloc.lots, [1, 2])
    assert alloc.residual == pytest.approx(7.0)
    np.testing.assert_array_equal(MinMaxILP()(snap, 0.0).lots, [0, 0])


def test_min_max_ilp_no_worse_than_contract_pro_rata():
    rng = np.random.default_rng(5)
    ilp, cpr = MinMaxILP(), ContractProRata()
    for _ in range(25):
        n = int(rng.integers(1, 12))
        v = rng.choice([0.5, 1.0, 2.0]) if rng.random() < 0.5 else rng.uniform(0.3, 3.0, n)
        v = np.broadcast_to(v, (n,)).astype(float)
        lots = rng.integers(1, 15, size=n)
        cap = lots * v * rng.uniform(0.3, 1.0, size=n)
        snap = Snapshot.build(cap, lots=lots, lot_value=v)
        budget = float(cap.sum()) * rng.uniform(0.05, 0.9)
        a, b = ilp(snap, budget), cpr(snap, budget)
        if b.residual > 0:
            continue
        assert a.residual == 0.0 and a.raised >= budget - 1e-9
        assert np.all(a.lots <= max_lots(snap))
        assert (a.haircut / cap).max() <= (b.haircut / cap).max() + 1e-6


def test_min_max_ilp_max_n_error():
    snap = Snapshot.build(np.ones(6))
    with pytest.raises(InputError, match=r"snapshot\.n: must be <= max_n = "):
        MinMaxILP(max_n=5)(snap, 1.0)
    with pytest.raises(InputError, match="max_n"):
        MinMaxILP(max_n=0)(snap, 1.0)
    assert MinMaxILP.exact_small_only is True


# --------------------------------------------------------------- params and feasibility


def test_bad_params_raise_input_error():
    snap = Snapshot.build([1.0, 2.0])
    bad = [
        RiskAwareProRata(g="square"),
        RiskAwareProRata(sigma=0.0),
        RiskAwareProRata(power=-1.0),
        RiskAwareProRata(threshold="high"),
        RiskAwareProRata(sigma=True),
        RiskAwareProRata(max_fraction=1.5),
        CappedProRata(max_fraction=-0.1),
        CappedProRata(keep_maintenance="yes"),
    ]
    for pol in bad:
        with pytest.raises(InputError):
            pol(snap, 1.0)
    pol = RiskAwareProRata(g="cvar", threshold=2.0)
    assert pol.clone().get_params() == pol.get_params()


WEALTH_POLICIES = [
    ProRata(),
    ContractProRata(),
    CappedProRata(),
    RiskAwareProRata(),
    RiskAwareProRata(g="power"),
    RiskAwareProRata(g="cvar"),
    RiskAwareProRata(g="optimal"),
    MinimaxLeverage(),
    MinimaxLeverage(form="equity_reduced"),
]


@st.composite
def _snapshots(draw):
    n = draw(st.integers(1, 25))
    cap = np.array(draw(st.lists(st.floats(0.0, 1e5), min_size=n, max_size=n)))
    lots = np.array(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)))
    eq = np.array(draw(st.lists(st.floats(-1e4, 1e5), min_size=n, max_size=n)))
    lv = draw(st.floats(0.01, 50.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lev = np.where(eq > 0, lots / np.where(eq > 0, eq, 1.0), np.inf)
    return Snapshot.build(cap, lots=lots, lot_value=lv, equity=eq, leverage=lev)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snap=_snapshots(), frac=st.floats(0.0, 1.5))
def test_wealth_feasibility(snap, frac):
    budget = frac * float(snap.capacity.sum())
    want = min(budget, float(snap.capacity.sum()))
    for pol in WEALTH_POLICIES:
        h = pol.allocate_wealth(snap, budget)
        assert np.all(h >= 0), pol
        assert np.all(h <= snap.capacity * (1 + 1e-12)), pol
        assert float(h.sum()) == pytest.approx(want, rel=1e-9, abs=1e-9), pol
        alloc = pol(snap, budget)
        assert np.all(
            alloc.haircut <= snap.capacity + 1e-9 * np.maximum(snap.capacity, max(1.0, budget))
        ), pol


@settings(max_examples=25, deadline=None)
@given(snap=_snapshots(), frac=st.floats(0.0, 1.2))
def test_min_max_ilp_feasibility(snap, frac):
    budget = frac * float(snap.capacity.sum())
    pol = MinMaxILP()
    alloc = pol(snap, budget)
    grid = float((max_lots(snap) * snap.lot_value).sum())
    assert np.all(alloc.lots >= 0) and np.all(alloc.lots <= snap.lots)
    assert np.all(
        alloc.haircut <= snap.capacity + 1e-9 * np.maximum(snap.capacity, max(1.0, budget))
    )
    tol = 1e-9 * max(budget, 1.0)
    if grid >= budget - tol:
        assert alloc.raised >= budget - tol
        assert alloc.residual == 0.0
    else:
        assert alloc.residual == pytest.approx(budget - grid, rel=1e-9, abs=tol)
        np.testing.assert_array_equal(alloc.lots, max_lots(snap))


# ------------------------------------------- speed paths: fill passes, band, level search
# (brief P1) capped_fill runs Newton passes (narrowed to a band of ratios on large inputs)
# and falls back to one exact sort; leverage draining runs a safeguarded Newton search.
# These tests pin every path to the reference definitions.


@settings(max_examples=80, deadline=None, database=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.0, 1e3), st.sampled_from([0.0, 1e-300, 0.5, 1.0, 7.0, 1e300])),
        min_size=1,
        max_size=25,
    ),
    frac=st.floats(0.0, 1.0),
    passes=st.sampled_from([0, 1, 2, 12]),
)
def test_capped_fill_every_path_matches_reference(rows, frac, passes):
    cap = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    budget = frac * float(cap.sum())
    held = float(cap[w > 0].sum())
    if budget < held:
        want = reference_pro_rata(cap, budget, weights=w)
    else:  # weighted rows full, the rest pro rata over the zero-weight rows
        want = np.where(w > 0, cap, cap * (budget - held) / max(float(cap[w == 0].sum()), 1e-300))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prorata, "FILL_PASSES", passes)
        mp.setattr(prorata, "_BAND_MIN_N", 0)  # the band path even on small inputs
        h = capped_fill(cap, budget, w)
        with np.errstate(divide="ignore"):
            h_log = capped_fill(cap, budget, log_weights=np.log(w))
    tol = 1e-9 * max(1.0, budget)
    np.testing.assert_allclose(h, want, rtol=1e-9, atol=tol)
    np.testing.assert_allclose(h_log, want, rtol=1e-9, atol=tol)


def test_capped_fill_large_band_matches_reference_pro_rata():
    rng = np.random.default_rng(4)
    n = 8000  # above the band size
    cap = rng.pareto(1.5, n) * (rng.random(n) < 0.95)
    for w in (cap * rng.uniform(0.1, 50.0, n), rng.pareto(1.0, n), np.ones(n)):
        for frac in (0.05, 0.3, 0.9):
            b = frac * float(cap.sum())
            want = reference_pro_rata(cap, b, weights=w)
            h = capped_fill(cap, b, w)
            np.testing.assert_allclose(h, want, rtol=1e-9, atol=1e-9 * b)
            assert float(h.sum()) == pytest.approx(b, rel=1e-12)


def test_capped_fill_weights_beyond_float_range_hand_example():
    # log weights 0 and -1000, -1200: the heavy row is capped at 5, then the budget goes to
    # the next heaviest (-1000), not to everyone equally, and not to the zero weight (-inf)
    c = np.array([5.0, 3.0, 0.0, 4.0, 2.0])
    lw = np.array([0.0, -1000.0, 0.0, -np.inf, -1200.0])
    h = capped_fill(c, 6.0, log_weights=lw)
    np.testing.assert_allclose(h[:4], [5.0, 1.0, 0.0, 0.0], rtol=1e-12)
    assert 0.0 < h[4] < 1e-80
    np.testing.assert_allclose(capped_fill(c, 9.9, log_weights=lw), [5.0, 3.0, 0.0, 0.0, 1.9])
    # the zero-weight row is used, pro rata to capacity, only once the others are full
    np.testing.assert_allclose(capped_fill(c, 12.0, log_weights=lw), [5.0, 3.0, 0.0, 2.0, 2.0])


def test_rap_linear_and_log_weights_agree():
    rng = np.random.default_rng(8)
    n = 300
    cap = rng.pareto(1.5, n) * 10
    snap = Snapshot.build(cap, leverage=rng.uniform(0.1, 50.0, n))
    for pol in (RiskAwareProRata(), RiskAwareProRata(g="power"), RiskAwareProRata(g="cvar")):
        w = pol._linear_weight(snap.capacity, snap.leverage)
        assert w is not None  # plain floats suffice here
        b = 0.4 * float(cap.sum())
        with np.errstate(divide="ignore"):
            lw = np.log(snap.capacity) + pol.log_risk_weight(snap.leverage)
        np.testing.assert_allclose(
            pol.allocate_wealth(snap, b), capped_fill(cap, b, log_weights=lw), rtol=1e-9
        )
        np.testing.assert_allclose(pol.risk_weights(snap), w, rtol=1e-9)
    # a capacity of 1e-200 cannot be a plain-float weight factor: the log path is used
    tiny = Snapshot.build([1e-200, 1.0], leverage=[2.0, 1.0])
    assert RiskAwareProRata()._linear_weight(tiny.capacity, tiny.leverage) is None
    np.testing.assert_allclose(RiskAwareProRata().allocate_wealth(tiny, 0.5), [1e-200, 0.5])


def _level_reference(snap, budget, form):
    """Plain bisection on eta: the highest eta whose drain raises >= budget (no leftover)."""
    lam = np.asarray(snap.leverage, dtype=float)
    k = snap.lot_size * snap.mark / snap.lot_value
    c, e = snap.capacity, snap.equity
    a = lam * e  # account notional

    def fill(eta):
        above = lam > eta
        if form == "fixed_equity":
            h = (a - eta * e) / k
        else:
            h = (a - eta * e) / np.where(above, k - eta, 1.0)
        return np.where(above, np.minimum(c, h), 0.0)

    lo, hi = 0.0, float(lam.max())
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        lo, hi = (mid, hi) if fill(mid).sum() >= budget else (lo, mid)
    return lo


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n", [40, 20_000])  # 20000: the search starts from a sample's level
def test_minimax_leverage_level_matches_bisection(n, form):
    rng = np.random.default_rng(n)
    snap, _ = _random_drainable(rng, n)
    pol = MinimaxLeverage(form=form)
    for frac in (1e-6, 0.05, 0.3, 0.6):
        budget = frac * float(snap.capacity.sum())
        h = pol.allocate_wealth(snap, budget)
        assert float(h.sum()) == pytest.approx(budget, rel=1e-12)
        eta = pol.level(snap, budget)
        assert eta == pytest.approx(_level_reference(snap, budget, form), rel=1e-9)
        free = (h > 0) & (h < snap.capacity * (1 - 1e-9))
        np.testing.assert_allclose(post_leverage(snap, h, form)[free], eta, rtol=1e-7)


def test_minimax_leverage_level_when_the_sample_misses_the_big_accounts():
    # 20000 rows; the rows the sample skips (odd rows) hold nearly all the capacity and the
    # highest leverage, so the sample's level is far off and the bracket must widen
    n = 20_000
    odd = np.arange(n) % 2 == 1
    lev = np.where(odd, 40.0, 2.0)
    equity = np.where(odd, 10.0, 1.0)
    lots = (lev * equity).astype(np.int64)  # mark 1, lot size 1
    cap = np.where(odd, 3.5, 0.01)
    snap = Snapshot.build(cap, lots=lots, lot_value=0.1, equity=equity, leverage=lev)
    pol = MinimaxLeverage()
    budget = 0.5 * float(cap.sum())
    h = pol.allocate_wealth(snap, budget)
    assert float(h.sum()) == pytest.approx(budget, rel=1e-12)
    # B = 17550 all from the 10000 odd rows (the even ones sit at leverage 2): 1.755 each;
    # k = 10, w = E / k = 1 on the odd rows: (40 - eta) * 1 = 1.755 -> eta = 38.245
    assert pol.level(snap, budget) == pytest.approx(38.245, rel=1e-12)
    np.testing.assert_allclose(h[odd], 1.755, rtol=1e-12)
    assert np.all(h[~odd] == 0.0)


def test_minimax_leverage_lots_follow_the_full_priority():
    rng = np.random.default_rng(2)
    snap, budget = _random_drainable(rng, 3000)
    pol = MinimaxLeverage()
    full = np.lexsort((np.arange(snap.n), snap.account, -post_leverage(snap, np.zeros(snap.n))))
    np.testing.assert_array_equal(pol.priority(snap), full)
    alloc = pol(snap, budget)
    ref = execute(snap, budget, pol.allocate_wealth(snap, budget), order=full)
    np.testing.assert_array_equal(alloc.lots, ref.lots)


@pytest.mark.parametrize("huge_ids", [False, True])
def test_contract_pro_rata_priority_and_lots(huge_ids):
    rng = np.random.default_rng(6)
    n = 3000
    lots = rng.integers(1, 40, n)  # many ties in lots
    acc = rng.integers(-(2**62), 2**62, n) if huge_ids else rng.integers(0, 500, n)
    v = 0.5
    cap = lots * v * rng.uniform(0.2, 1.0, n)
    snap = Snapshot.build(cap, lots=lots, lot_value=v, account=acc)
    pol = ContractProRata()
    full = np.lexsort((np.arange(n), acc, -lots))
    np.testing.assert_array_equal(pol.priority(snap), full)
    budget = 0.37 * float(cap.sum())
    ref = execute(snap, budget, pol.allocate_wealth(snap, budget), order=full)
    np.testing.assert_array_equal(pol(snap, budget).lots, ref.lots)


def test_capped_pro_rata_monotone_claim_is_per_instance():
    assert "monotone" in CappedProRata().properties
    assert "monotone" in CappedProRata(max_fraction=0.5).properties
    assert "monotone" not in CappedProRata(keep_maintenance=True).properties
    # read on the class: what every instance claims
    assert CappedProRata.properties == frozenset({"relabeling", "sybil", "scale"})
    pol = CappedProRata()
    pol.set_params(keep_maintenance=True)
    assert "monotone" not in pol.properties


def test_max_lots_is_shared_by_execute_the_ilp_and_the_lot_grid():
    # 0.3 holds three lots of 0.1 (relative slack); 0.99999 holds no lot of 1; no lot value
    snap = Snapshot.build([0.3, 0.99999, 2.5, 4.0], lots=[5, 1, 9, 2], lot_value=[0.1, 1, 1, 0])
    np.testing.assert_array_equal(max_lots(snap), [3, 0, 2, 0])
    np.testing.assert_array_equal(MinMaxILP().solve_lots(snap, 10.0), [3, 0, 2, 0])
    np.testing.assert_allclose(lot_grid_capacity(snap), [0.3, 0.0, 2.0, 0.0])
    # the MILP never picks a lot execute() would refuse: a budget of everything leaves the
    # 0.99999 row untouched and reports it as residual
    budget = float(snap.capacity.sum())
    alloc = MinMaxILP()(snap, budget)
    np.testing.assert_array_equal(alloc.lots, [3, 0, 2, 0])
    assert alloc.residual == pytest.approx(budget - 2.3)


def test_lot_rounding_of_smooth_rules_is_sybil_neutral_in_expectation():
    """Splitting an account does not lower what its owner pays on average over instances.

    Pro-rata on the lot grid: a row of capacity 9.0 (lots of 1 dollar) is split 3 + 3 + 3
    in otherwise identical snapshots; over many budgets the group's mean lots equal the
    unsplit row's mean lots (both are the wealth-space share in expectation).
    """
    from market.adl import get_policy
    from market.adl.base import Snapshot

    rng = np.random.default_rng(0)
    pol = get_policy("pro_rata")
    others = rng.uniform(1.0, 20.0, size=40).round(3)
    whole, split = [], []
    for budget in np.linspace(50.0, 250.0, 400):
        a = pol(Snapshot.build(np.concatenate([[9.0], others]), lot_value=1.0), budget)
        b = pol(Snapshot.build(np.concatenate([[3.0, 3.0, 3.0], others]), lot_value=1.0), budget)
        whole.append(a.haircut[0])
        split.append(b.haircut[:3].sum())
    wealth = [9.0 * b / (9.0 + others.sum()) for b in np.linspace(50.0, 250.0, 400)]
    assert np.mean(whole) == pytest.approx(np.mean(wealth), abs=0.08)
    assert np.mean(split) == pytest.approx(np.mean(wealth), abs=0.08)
