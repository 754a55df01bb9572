"""The exchange core: order API, margin, liquidation waterfall, backstops, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market import margin as mg
from market.accounts import ADLED, BANKRUPT, LIQUIDATED
from market.adl import POLICIES, get_policy
from market.adl.eligibility import CAP_RULES
from market.errors import InputError
from market.exchange import BackstopConfig, Exchange
from market.invariants import check_invariants
from market.liquidity import average_impact
from market.spec import MarketSpec


def flat_spec(**kw) -> MarketSpec:
    """A market with (nearly) no impact, so hand computations stay simple."""
    base = {
        "name": "T",
        "lot_size": 1.0,
        "initial_margin": 0.1,
        "maintenance_margin": 0.05,
        "taker_fee": 0.0,
        "maker_fee": 0.0,
        "liquidation_fee": 0.0,
        "depth": 1e15,
        "impact": 1e-9,
    }
    base.update(kw)
    return MarketSpec(**base)


def state(ex: Exchange) -> tuple:
    a = ex.acc
    return (
        a.cash.copy(),
        a.pos.copy(),
        a.entry.copy(),
        a.gains.copy(),
        a.flags.copy(),
        ex.fund,
        ex.fee_revenue,
        ex.bad_debt,
        ex.external,
    )


def same_state(s1: tuple, s2: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(s1, s2, strict=True))


# ----------------------------------------------------------------------------- order API
def test_open_increase_reduce_flip_hand_numbers():
    ex = Exchange([flat_spec()], 100.0)
    (a,) = ex.open_accounts(1, 1_000.0)
    assert ex.trade([a], 0, [4], price=100.0).all()
    assert ex.trade([a], 0, [6], price=110.0).all()  # entry (4*100 + 6*110)/10 = 106
    assert ex.acc.pos[a, 0] == 10
    assert ex.acc.entry[a, 0] == pytest.approx(106.0)
    assert ex.trade([a], 0, [-3], price=116.0).all()  # realise 3 * (116 - 106) = 30
    assert ex.acc.cash[a] == pytest.approx(1_030.0)
    assert ex.acc.gains[a, 0] == pytest.approx(30.0)
    assert ex.acc.entry[a, 0] == pytest.approx(106.0)
    assert ex.trade([a], 0, [-9], price=96.0).all()  # close 7 at a loss of 70, open 2 short
    assert ex.acc.pos[a, 0] == -2
    assert ex.acc.entry[a, 0] == pytest.approx(96.0)
    assert ex.acc.cash[a] == pytest.approx(960.0)
    assert ex.acc.gains[a].sum() == pytest.approx(0.0)  # the loss drained the ledger
    assert check_invariants(ex).ok


def test_close_and_reopen_leaves_total_gains_unchanged():
    ex = Exchange([flat_spec()], 100.0)
    (a,) = ex.open_accounts(1, 1_000.0)
    ex.trade([a], 0, [5], price=100.0)
    ex.step(120.0)
    before = ex.acc.gains[a].sum() + ex.upnl()[a].sum()
    ex.trade([a], 0, [-5], price=120.0)
    ex.trade([a], 0, [5], price=120.0)
    after = ex.acc.gains[a].sum() + ex.upnl()[a].sum()
    assert before == pytest.approx(after)
    assert ex.acc.entry[a, 0] == pytest.approx(120.0)  # the entry-based score was reset


def test_refused_order_changes_nothing():
    ex = Exchange([flat_spec()], 100.0)
    (a,) = ex.open_accounts(1, 100.0)  # initial margin 10%: at most 10 lots at 100
    s = state(ex)
    assert not ex.trade([a], 0, [11]).any()
    assert same_state(s, state(ex))
    assert ex.trade([a], 0, [9]).all()


def test_batch_accepts_some_refuses_others():
    ex = Exchange([flat_spec()], 100.0)
    idx = ex.open_accounts(3, [1_000.0, 10.0, 1_000.0])
    ok = ex.trade(idx, 0, [5, 5, -5])
    assert ok.tolist() == [True, False, True]
    assert ex.acc.pos[idx, 0].tolist() == [5, 0, -5]
    assert check_invariants(ex).ok


def test_fees_go_to_revenue_and_fund_share():
    spec = flat_spec(taker_fee=0.001, maker_fee=0.0002)
    ex = Exchange([spec], 100.0, backstop=BackstopConfig(kind="fund", capital=0.0, fee_share=0.25))
    (a,) = ex.open_accounts(1, 1_000.0)
    ex.trade([a], 0, [5], price=100.0)
    taker, maker = 500 * 0.001, 500 * 0.0002
    assert ex.acc.fees_paid[a] == pytest.approx(taker)
    assert ex.fund == pytest.approx(0.25 * (taker + maker))
    assert ex.fee_revenue == pytest.approx(0.75 * (taker + maker))
    assert check_invariants(ex).ok


def test_withdraw_refused_when_it_breaks_margin_and_transfer():
    ex = Exchange([flat_spec()], 100.0)
    a, b = ex.open_accounts(2, 1_000.0)
    ex.trade([a], 0, [50], price=100.0)  # initial margin 500
    s = state(ex)
    assert not ex.withdraw([a], [600.0]).any()
    assert same_state(s, state(ex))
    assert ex.withdraw([a], [400.0]).all()
    assert ex.acc.cash[a] == pytest.approx(600.0)
    assert not ex.transfer(a, b, 200.0)
    assert ex.transfer(b, a, 200.0)
    assert ex.acc.cash[a] == pytest.approx(800.0)
    assert check_invariants(ex).ok


def test_funding_is_zero_sum_and_signed():
    ex = Exchange([flat_spec()], 100.0)
    a, b = ex.open_accounts(2, 1_000.0)
    ex.trade([a, b], 0, [3, -2], price=100.0)
    pay = ex.apply_funding(0.001)
    assert pay[a] == pytest.approx(-0.3)
    assert pay[b] == pytest.approx(0.2)
    assert pay.sum() == pytest.approx(0.0, abs=1e-12)
    assert check_invariants(ex).ok


def test_funding_over_stored_entries_equals_the_open_positions_sum():
    """Closed entries awaiting compaction add exact zeros: each account's payment is its open
    positions' terms summed in market order, bit for bit."""
    rng = np.random.default_rng(7)
    ex = Exchange([flat_spec(name=f"M{k}") for k in range(3)], [100.0, 50.0, 7.0])
    rows = ex.open_accounts(12, 1e6)
    for k in range(3):
        ex.trade(rows, k, rng.integers(1, 9, rows.size) * rng.choice([-1, 1], rows.size))
    ex.trade(rows[:2], 1, -ex.acc.positions.lots_of(rows[:2], 1))  # closed, kept as zeros
    assert ex.acc.positions.stored()[2].size > ex.acc.positions.count()
    rates = np.array([1e-3, -2e-4, 5e-5])
    i, k, q, _ = ex.acc.positions.entries()
    want = np.bincount(i, weights=-(q * (ex.lot * ex.marks * rates)[k]), minlength=ex.n_accounts)
    assert ex.apply_funding(rates).tobytes() == want.tobytes()
    assert check_invariants(ex).ok


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ex, a: ex.trade([a], 0, [0]), "lots"),
        (lambda ex, a: ex.trade([a], 0, [1.5]), "lots"),
        (lambda ex, a: ex.trade([a], 3, [1]), "market"),
        (lambda ex, a: ex.trade([99], 0, [1]), "account"),
        (lambda ex, a: ex.trade([a], 0, [1], price=float("nan")), "price"),
        (lambda ex, a: ex.trade([a], 0, [1], price=-1.0), "price"),
        (lambda ex, a: ex.deposit([a], [-5.0]), "deposit.amount"),
        (lambda ex, a: ex.deposit([a], [float("inf")]), "deposit.amount"),
        (lambda ex, a: ex.withdraw([a], [0.0]), "withdraw.amount"),
        (lambda ex, a: ex.step(float("nan")), "marks"),
        (lambda ex, a: ex.step(0.0), "marks"),
        (lambda ex, a: ex.trade([ex.book], 0, [1]), "account"),
        (lambda ex, a: ex.apply_funding(float("nan")), "funding.rates"),
    ],
)
def test_bad_input_names_field_and_changes_nothing(call, field):
    ex = Exchange([flat_spec()], 100.0)
    (a,) = ex.open_accounts(1, 1_000.0)
    ex.trade([a], 0, [2], price=100.0)
    s = state(ex)
    step = ex.step_no
    with pytest.raises(InputError) as err:
        call(ex, a)
    assert str(err.value).startswith(field + ":")
    assert "\n" not in str(err.value)
    assert same_state(s, state(ex))
    assert ex.step_no == step


def test_bad_market_spec_names_field():
    with pytest.raises(InputError, match=r"^market\[X\]\.lot_size:"):
        MarketSpec(name="X", lot_size=0.0)
    with pytest.raises(InputError, match=r"^market\[X\]\.initial_margin:"):
        MarketSpec(name="X", initial_margin=0.001, maintenance_margin=0.01)
    with pytest.raises(InputError, match=r"^backstop\.kind: must be one of fund, vault, none"):
        BackstopConfig(kind="bank")


# ----------------------------------------------------------------------------- margin
def test_margin_prices_hand_numbers():
    spec = flat_spec(maintenance_margin=0.05)
    pos = np.array([[10]])
    marks = np.array([100.0])
    lot = np.array([1.0])
    eq = np.array([200.0])  # 10 lots long at mark 100 with 200 equity
    pbk = mg.bankruptcy_price(pos, marks, lot, eq)
    assert pbk[0, 0] == pytest.approx(80.0)  # 200 / 10 = 20 below the mark
    mm = mg.maintenance(pos, marks, (spec,))
    assert mm[0] == pytest.approx(50.0)
    pliq = mg.liquidation_price(pos, marks, (spec,), eq, mm)
    # E + q(p - m) = |q| p r  ->  200 + 10(p - 100) = 0.5 p  ->  p = 800 / 9.5
    assert pliq[0, 0] == pytest.approx(800.0 / 9.5)


def test_tiered_maintenance():
    spec = flat_spec(maintenance_margin=0.01, tiers=((1_000.0, 0.02), (10_000.0, 0.05)))
    nt = np.array([500.0, 5_000.0, 20_000.0])
    req = mg.tiered_requirement(nt, spec)
    assert req[0] == pytest.approx(5.0)
    assert req[1] == pytest.approx(5_000 * 0.02 - 1_000 * 0.01)
    ded2 = 1_000 * 0.01 + 10_000 * 0.03
    assert req[2] == pytest.approx(20_000 * 0.05 - ded2)
    # continuous at the tier floors
    at = mg.tiered_requirement(np.array([1_000.0, 10_000.0]), spec)
    assert at.tolist() == pytest.approx([10.0, 10_000 * 0.02 - 10.0])


# ----------------------------------------------------------------------------- liquidity
def test_average_impact_matches_quadrature_and_grows():
    d, imp, e, cap = 1e6, 0.01, 0.5, 0.9
    start, size = 2e5, 3e5
    s = np.linspace(start, start + size, 200_001)
    marginal = np.minimum(imp * (s / d) ** e, cap)
    numeric = np.trapezoid(marginal, s) / size
    assert average_impact(np.array([start]), np.array([size]), d, imp, e, cap)[0] == pytest.approx(
        numeric, rel=1e-6
    )
    sizes = np.array([1e3, 1e5, 1e7])
    avg = average_impact(np.zeros(3), sizes, d, imp, e, cap)
    assert np.all(np.diff(avg) > 0)
    assert avg[-1] <= cap


def test_stress_thins_the_book():
    spec = MarketSpec(depth=1e6, stress_thinning=0.8, stress_ref=0.05)
    calm = Exchange([spec], 100.0)
    stressed = Exchange([spec], 100.0)
    stressed.stress[:] = 1.0
    q = np.array([-5_000])
    assert stressed.quote(0, q)[0] < calm.quote(0, q)[0] < 100.0


# ----------------------------------------------------------------------------- waterfall
def one_whale(
    backstop: BackstopConfig, policy=None, impact: float = 0.05
) -> tuple[Exchange, int, int]:
    spec = MarketSpec(
        name="W",
        lot_size=1.0,
        initial_margin=0.1,
        maintenance_margin=0.05,
        taker_fee=0.0,
        maker_fee=0.0,
        liquidation_fee=0.0,
        depth=1_000.0,
        impact=impact,
        impact_exponent=1.0,
        stress_thinning=0.0,
        chunk_threshold=1e12,
    )
    ex = Exchange([spec], 100.0, backstop=backstop, policy=policy)
    whale, winner = ex.open_accounts(2, [1_000.0, 5_000.0])
    ex.trade_genesis([whale, winner], 0, [100, -100], [100.0, 100.0])
    return ex, whale, winner


def test_liquidation_deficit_matches_hand_computation():
    ex, whale, _ = one_whale(BackstopConfig(kind="fund", capital=0.0))
    rep = ex.step(95.0)  # equity 500 < maintenance 475? no: 500 >= 475 -> safe
    assert rep.liquidated == 0
    rep = ex.step(94.0)  # equity 400 < 470: liquidated into the book
    assert rep.liquidated == 1
    size = 100 * 94.0
    avg = average_impact(np.array([0.0]), np.array([size]), 1_000.0, 0.05, 1.0, 0.9)[0]
    fill = 94.0 * (1 - avg)
    expected_cash = 1_000.0 + 100 * (fill - 100.0)
    assert expected_cash < 0
    assert rep.deficit == pytest.approx(-expected_cash)
    assert rep.backstop_used == 0.0
    assert rep.residual == pytest.approx(-expected_cash)
    assert ex.acc.flags[whale] & LIQUIDATED
    assert ex.acc.cash[whale] == pytest.approx(0.0)
    assert ex.bad_debt == pytest.approx(-expected_cash)
    assert check_invariants(ex).ok


def test_fund_absorbs_what_it_can():
    ex, _, _ = one_whale(BackstopConfig(kind="fund", capital=100.0))
    rep = ex.step(94.0)
    assert rep.deficit > 100.0
    assert rep.backstop_used == pytest.approx(100.0)
    assert ex.fund == 0.0
    assert rep.residual == pytest.approx(rep.deficit - 100.0)
    assert check_invariants(ex).ok


def test_vault_takes_over_far_below_maintenance():
    ex, whale, _ = one_whale(
        BackstopConfig(kind="vault", capital=10_000.0, vault_trigger=0.9, vault_unwind=0.5)
    )
    rep = ex.step(93.5)  # equity 350 < 0.9 * 467.5: take-over at the mark
    assert rep.takeovers == 1
    assert ex.acc.pos[whale, 0] == 0
    assert ex.acc.pos[ex.vault, 0] == 100
    assert ex.acc.cash[whale] == 0.0
    ex.step(93.0)  # the vault unwinds half into the book
    assert ex.acc.pos[ex.vault, 0] == 50
    assert check_invariants(ex).ok


def test_chunked_liquidation_of_large_solvent_position():
    spec = MarketSpec(
        name="C",
        lot_size=1.0,
        initial_margin=0.1,
        maintenance_margin=0.05,
        taker_fee=0.0,
        maker_fee=0.0,
        liquidation_fee=0.0,
        depth=1e12,
        chunk_threshold=1_000.0,
        chunk_fraction=0.2,
    )
    ex = Exchange([spec], 100.0)
    (a,) = ex.open_accounts(1, 1_000.0)
    ex.trade_genesis([a], 0, [100], [100.0])
    ex.step(95.5)  # equity 550 < 477.5? no
    ex.step(95.2)  # equity 520 < 476 ? no
    rep = ex.step(94.9)  # equity 490 >= 474.5 -> still safe
    assert rep.liquidated == 0
    rep = ex.step(94.6)  # equity 460 < 473: chunk of 20 lots
    assert rep.liquidated == 1
    assert ex.acc.pos[a, 0] == 80


def test_invariant_report_detects_a_leak():
    ex, _, _ = one_whale(BackstopConfig(kind="fund", capital=0.0))
    assert check_invariants(ex).ok
    ex.acc.cash[2] += 1.0  # money from nowhere
    rep = check_invariants(ex)
    assert not rep.ok
    assert rep.conservation_error > 1e-9
    ex.acc.cash[2] -= 1.0
    q, e = ex.acc.positions.get(0, np.array([2]))
    ex.acc.positions.set(0, np.array([2]), q + 1, e)  # a long with no short
    assert check_invariants(ex).oi_imbalance.tolist() == [1]


# ----------------------------------------------------------------------------- properties
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"),
            st.integers(0, 5),
            st.integers(0, 1),
            st.integers(-40, 40).filter(bool),
        ),
        st.tuples(st.just("deposit"), st.integers(0, 5), st.floats(1.0, 1e4)),
        st.tuples(st.just("withdraw"), st.integers(0, 5), st.floats(1.0, 1e4)),
        st.tuples(st.just("move"), st.floats(-0.25, 0.25), st.floats(-0.25, 0.25)),
        st.tuples(st.just("funding"), st.floats(-0.01, 0.01)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=ops, kind=st.sampled_from(["fund", "vault", "none"]), capital=st.floats(0, 5e3))
def test_random_order_sequences_and_crashes_hold_every_invariant(seq, kind, capital):
    specs = (
        MarketSpec(
            name="A", lot_size=0.5, initial_margin=0.05, maintenance_margin=0.025, depth=2e4
        ),
        MarketSpec(
            name="B",
            lot_size=2.0,
            initial_margin=0.1,
            maintenance_margin=0.05,
            depth=5e4,
            tiers=((5e3, 0.08),),
        ),
    )
    ex = Exchange(
        specs, [100.0, 50.0], backstop=BackstopConfig(kind=kind, capital=capital, fee_share=0.5)
    )
    idx = ex.open_accounts(6, 2_000.0)
    for op in seq:
        if op[0] == "trade":
            _, a, k, q = op
            ex.trade([idx[a]], k, [q])
        elif op[0] == "deposit":
            ex.deposit([idx[op[1]]], [op[2]])
        elif op[0] == "withdraw":
            ex.withdraw([idx[op[1]]], [op[2]])
        elif op[0] == "move":
            ex.step(ex.marks * np.exp([op[1], op[2]]))
        else:
            ex.apply_funding([op[1], -op[1]])
        rep = check_invariants(ex)
        assert rep.conservation_error < 1e-9
        assert not rep.oi_imbalance.any()
        assert rep.whole_lots
        assert not rep.negative_fund
        assert np.all(ex.acc.gains >= -1e-9)


# ----------------------------------------------------------------------------- scale
def test_mark_to_market_and_scan_are_vectorised_over_many_accounts():
    ex = Exchange(4, [100.0, 50.0, 20.0, 10.0], capacity=200_010)
    rng = np.random.default_rng(0)
    idx = ex.open_accounts(200_000, 1e4)
    for k in range(4):
        q = rng.integers(-50, 50, size=idx.size)
        q[q == 0] = 1
        ex.trade_genesis(idx, k, q, ex.marks[k])
    eq = ex.equity()
    mm = ex.maintenance()
    assert eq.shape == (ex.n_accounts,)
    assert mm.shape == (ex.n_accounts,)
    assert check_invariants(ex).ok


def test_flags_set_by_the_waterfall():
    ex, whale, winner = one_whale(BackstopConfig(kind="fund", capital=0.0))
    ex.step(94.0)
    assert ex.acc.flags[whale] & BANKRUPT
    assert not ex.acc.flags[winner] & ADLED  # no policy configured


@pytest.mark.parametrize("name", list(POLICIES))
def test_exchange_applies_the_cap_each_policy_declares(name):
    """No fallback: the exchange's eligibility cap is the rule's own declaration."""
    pol = get_policy(name)
    assert pol.default_cap in CAP_RULES
    assert Exchange(1, 100.0, policy=pol).eligibility.cap == pol.default_cap
    assert get_policy("seniority").default_cap == "gains"


def test_genesis_with_no_accounts_is_a_no_op_and_bad_prices_name_the_field():
    # an empty batch validated its prices with min() of an empty array and crashed
    ex = Exchange(2, np.array([100.0, 50.0]))
    acc = ex.open_accounts(2, np.array([1_000.0, 1_000.0]))
    ex.trade_genesis(np.zeros(0, dtype=np.int64), 0, np.zeros(0, dtype=np.int64), np.zeros(0))
    assert np.all(ex.acc.pos[acc] == 0)
    with pytest.raises(InputError) as err:
        ex.trade_genesis(acc[:1], 0, np.array([1]), np.array([-1.0]))
    assert err.value.field == "price"


def test_transfer_many_reads_each_source_once_and_refuses_overdrafts():
    from market.exchange import Exchange
    from market.invariants import check_invariants

    ex = Exchange(1, [100.0])
    a = ex.open_accounts(4, cash=[100.0, 50.0, 10.0, 0.0])
    before = ex.acc.cash.copy()
    ok = ex.transfer_many([a[0], a[0], a[1], a[2]], [a[3], a[1], a[3], a[0]], [30.0, 60.0, 20.0, 5])
    # a[0] sends 90 <= 100; a[1] sends 20 (its 50, not the 60 arriving in the same call)
    assert ok.tolist() == [True, True, True, True]
    np.testing.assert_allclose(ex.acc.cash[a] - before[a], [-85.0, 40.0, -5.0, 50.0])
    ok = ex.transfer_many([a[2], a[2]], [a[0], a[1]], [4.0, 2.0])  # 6 > 5 left: both refused
    assert ok.tolist() == [False, False]
    assert check_invariants(ex).ok
    with pytest.raises(InputError, match=r"^dst: must be accounts different from their sources"):
        ex.transfer_many([a[0]], [a[0]], [1.0])
