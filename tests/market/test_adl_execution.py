"""ADL execution in the exchange: budget- and position-sized waves, who carries a shortfall,
the book as an ADL counterparty, the vault's position under position execution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.adl import Eligibility, get_policy
from market.adl.severity import ExponentialBackoff
from market.errors import InputError
from market.exchange import SHORTFALL_BEARERS, BackstopConfig, Exchange
from market.invariants import check_invariants
from market.spec import MarketSpec


def spec(name: str = "H", **kw) -> MarketSpec:
    """Lot size 1, no fees, linear impact (selling x dollars fills impact * x / (2 depth)
    below the mark on average)."""
    base = {
        "name": name,
        "lot_size": 1.0,
        "initial_margin": 0.1,
        "maintenance_margin": 0.05,
        "taker_fee": 0.0,
        "maker_fee": 0.0,
        "liquidation_fee": 0.0,
        "depth": 1_000.0,
        "impact": 0.02,
        "impact_exponent": 1.0,
        "stress_thinning": 0.0,
        "chunk_threshold": 1e12,
    }
    base.update(kw)
    return MarketSpec(**base)


def crash_world(policy: str = "pro_rata", **kw) -> tuple[Exchange, dict[str, int]]:
    """The hand world of tests/test_twopass.py: a loser long 100 @ 100 with 1,000 whose
    liquidation at mark 94 leaves a hole of 483.6; a winner short 100 @ 100 with 20,000."""
    kw.setdefault("backstop", BackstopConfig(kind="fund", capital=0.0))
    ex = Exchange([spec()], 100.0, policy=get_policy(policy) if policy else None, **kw)
    loser, winner = ex.open_accounts(2, [1_000.0, 20_000.0])
    ex.trade_genesis([loser, winner], 0, [100, -100], 100.0)
    return ex, {"loser": int(loser), "winner": int(winner)}


DEFICIT = 483.6


# ----------------------------------------------------------------------------- shortfall
def test_bearers_are_validated():
    with pytest.raises(InputError) as err:
        Exchange(1, 100.0, shortfall="nobody")
    assert err.value.field == "shortfall"
    with pytest.raises(InputError) as err:
        Exchange(1, 100.0, policy=get_policy("pro_rata"), execution="all")
    assert err.value.field == "execution"


@pytest.mark.parametrize("bearer", SHORTFALL_BEARERS)
def test_an_uncovered_deficit_lands_with_its_bearer(bearer):
    # no ADL policy: the whole 483.6 is left after an empty fund
    ex, _ = crash_world(policy=None, shortfall=bearer)
    external = ex.external
    rep = ex.step(94.0)
    assert rep.deficit == pytest.approx(DEFICIT) and rep.residual == pytest.approx(DEFICIT)
    got = {
        "written_off": (rep.written_off, ex.bad_debt),
        "fund_debt": (rep.carried, ex.debt),
        "socialised": (rep.carried, ex.debt),
        "withdrawals": (rep.carried, ex.debt),
        "venue": (rep.venue_paid, ex.venue_paid),
    }[bearer]
    assert got == pytest.approx((DEFICIT, DEFICIT))
    others = rep.written_off + rep.carried + rep.venue_paid - got[0]
    assert others == 0.0
    assert ex.external == pytest.approx(external + (DEFICIT if bearer == "venue" else 0.0))
    assert check_invariants(ex).ok


def test_fund_debt_is_repaid_from_the_funds_later_income_first():
    ex, _ = crash_world(policy=None, shortfall="fund_debt")
    ex.step(94.0)
    assert ex.debt == pytest.approx(DEFICIT) and ex.fund == 0.0
    ex.fund_deposit(300.0)  # an LP top-up repays the debt before the fund grows
    assert ex.debt == pytest.approx(DEFICIT - 300.0) and ex.fund == 0.0
    ex.fund_deposit(500.0)
    assert ex.debt == 0.0 and ex.fund == pytest.approx(800.0 - DEFICIT)
    assert check_invariants(ex).ok


def test_socialised_shortfall_is_charged_to_winners_at_settlement():
    ex, acc = crash_world(policy=None, shortfall="socialised")
    (w2,) = ex.open_accounts(1, 20_000.0)
    ex.trade_genesis([w2], 0, [-300], 100.0)  # three times the first winner's profit
    ex.step(94.0)
    assert ex.debt == pytest.approx(DEFICIT)
    charged = ex.settle()
    assert charged == pytest.approx(DEFICIT) and ex.debt == pytest.approx(0.0)
    s = ex.log.socialised.to_array()
    got = dict(zip(s["account"].tolist(), s["haircut"].tolist(), strict=True))
    assert got[acc["winner"]] == pytest.approx(DEFICIT / 4)  # profit 600 of 2,400
    assert got[int(w2)] == pytest.approx(3 * DEFICIT / 4)
    assert check_invariants(ex).ok
    assert ex.settle() == 0.0  # nothing left to socialise


def test_paradex_cuts_withdrawals_by_the_socialised_loss_factor():
    # paradex raises nothing in the wave and names its bearer: the 483.6 is carried, then
    # every withdrawal is cut by debt / active traders' positive equity (the winner's 20,600)
    ex, acc = crash_world("paradex")
    assert ex.shortfall == "withdrawals"
    ex.step(94.0)
    assert ex.debt == pytest.approx(DEFICIT) and ex.log.adl.to_array()["haircut"].sum() == 0
    factor = DEFICIT / 20_600.0
    assert ex.withdrawal_factor() == pytest.approx(factor)
    external = ex.external
    assert ex.withdraw(acc["winner"], 1_000.0).all()
    kept = 1_000.0 * factor
    assert ex.withdrawal_cut == pytest.approx(kept) and ex.debt == pytest.approx(DEFICIT - kept)
    assert ex.external == pytest.approx(external - (1_000.0 - kept))  # less money left
    assert check_invariants(ex).ok
    # a leaver's payout is cut the same way, and never by more than is still owed
    external = ex.external
    paid = ex.deactivate([acc["winner"]])
    assert ex.debt == pytest.approx(0.0) and ex.withdrawal_cut == pytest.approx(DEFICIT)
    assert ex.external == pytest.approx(external - paid[0])  # what left is what was paid
    assert ex.acc.cash[acc["winner"]] == 0.0 and paid[0] > 0
    assert check_invariants(ex).ok
    assert ex.withdrawal_factor() == 0.0


def test_deribit_socialises_the_session_among_its_winners():
    ex, _ = crash_world("deribit")
    assert ex.shortfall == "socialised"
    ex.step(94.0)
    assert ex.settle() == pytest.approx(DEFICIT)
    assert check_invariants(ex).ok


def test_a_fund_drawdown_limit_starts_adl_before_the_fund_is_empty():
    # Bybit's / OKX's triggers: the fund pays down to 70 % of its reference, ADL the rest
    ex, _ = crash_world(
        "pro_rata", backstop=BackstopConfig(kind="fund", capital=1_000.0, max_drawdown=0.3)
    )
    rep = ex.step(94.0)
    assert rep.backstop_used == pytest.approx(300.0)
    assert ex.fund == pytest.approx(700.0, abs=1.0)  # plus the lot-rounding overshoot
    assert rep.adl_raised == pytest.approx(DEFICIT - 300.0, abs=1.0)  # lot rounding
    assert check_invariants(ex).ok
    # the reference moves with the game's crises; the default pays until empty
    ex.set_fund_reference()
    assert ex.fund_reference == pytest.approx(ex.fund)
    full, _ = crash_world("pro_rata", backstop=BackstopConfig(kind="fund", capital=1_000.0))
    assert full.step(94.0).backstop_used == pytest.approx(DEFICIT)
    with pytest.raises(InputError, match=r"backstop\.max_drawdown"):
        BackstopConfig(kind="fund", capital=1.0, max_drawdown=1.5)


def test_settle_does_nothing_under_other_bearers():
    ex, _ = crash_world(policy=None, shortfall="fund_debt")
    ex.step(94.0)
    assert ex.settle() == 0.0 and ex.debt == pytest.approx(DEFICIT)


# ----------------------------------------------------------------------------- execution
def test_position_execution_under_a_severity_below_one_closes_that_share_of_lots():
    ex, acc = crash_world(
        "hyperliquid",
        execution="position",
        severity=ExponentialBackoff(theta0=0.25),
        shortfall="fund_debt",
    )
    rep = ex.step(94.0)
    assert rep.theta == 0.25
    w = ex.log.waves.to_array()
    assert w["lots_target"].tolist() == [25]  # ceil(0.25 * 100)
    assert rep.adl_raised == pytest.approx(25 * 6.0)
    assert rep.undershoot == pytest.approx(DEFICIT - 150.0)
    assert rep.carried == pytest.approx(DEFICIT - 150.0)  # the un-raised part has a bearer
    assert ex.acc.pos[acc["winner"], 0] == -75
    assert check_invariants(ex).ok


def test_book_is_eligible_and_pays_without_closing_against_itself():
    # the winner's side is held by the book too: traders long 300, short 100, book short 200
    ex = Exchange(
        [spec()],
        100.0,
        policy=get_policy("pro_rata"),
        backstop=BackstopConfig(kind="fund", capital=0.0),
        execution="budget",
    )
    loser, winner = ex.open_accounts(2, [1_000.0, 20_000.0])
    (holder,) = ex.open_accounts(1, 50_000.0)
    ex.trade_genesis([loser, winner, holder], 0, [100, -100, 200], 100.0)
    assert ex.acc.pos[ex.book, 0] == -200
    book_pos = ex.acc.pos[ex.book, 0]
    rep = ex.step(94.0)
    assert rep.adl_raised >= rep.adl_budget > 0
    ev = ex.log.adl.to_array()
    paid = dict(zip(ev["account"].tolist(), ev["haircut"].tolist(), strict=True))
    assert ex.book in paid and int(winner) in paid
    # pro-rata on profits: after absorbing the loser's 100 lots the book is short 100 with
    # 600 of profit, like the winner, so they pay alike
    assert paid[ex.book] == pytest.approx(paid[int(winner)], rel=0.02)
    # the book's own lots are matched against the liquidated inventory it holds (no fill);
    # the winner's closed lots go to the book as usual
    closed = dict(zip(ev["account"].tolist(), ev["lots"].tolist(), strict=True))
    assert closed[ex.book] > 0
    assert ex.acc.pos[ex.book, 0] == book_pos + 100 - closed[int(winner)]
    assert check_invariants(ex).ok


def test_vault_position_goes_to_the_winners_under_position_execution():
    ex = Exchange(
        [spec()],
        100.0,
        policy=get_policy("hyperliquid"),
        backstop=BackstopConfig(kind="vault", capital=0.0, vault_trigger=1.0, vault_unwind=0.01),
        execution="position",
    )
    loser, winner = ex.open_accounts(2, [1_000.0, 20_000.0])
    ex.trade_genesis([loser, winner], 0, [100, -100], 100.0)
    ex.step(94.0)  # the vault takes the loser over at the mark
    assert ex.acc.pos[ex.vault, 0] == 100
    rep = ex.step(90.0)  # the vault's own equity turns negative: a hole with its lots
    assert rep.deficit > 0 and rep.adl_raised > 0
    handed = int(ex.log.waves.to_array()["lots_target"][-1])
    assert handed > 0
    assert ex.acc.pos[ex.vault, 0] < 99  # less what the unwind sent and what ADL took
    assert check_invariants(ex).ok


def test_price_fallback_is_logged_per_market():
    # two markets crash together; only market 0's mark moved this step, so market 1's
    # previous-mark gap is zero and it falls back to the bankruptcy price
    ex = Exchange(
        [spec("A"), spec("B")],
        [100.0, 100.0],
        policy=get_policy("hyperliquid"),
        backstop=BackstopConfig(kind="fund", capital=0.0),
    )
    loser, w = ex.open_accounts(2, [2_000.0, 50_000.0])
    ex.trade_genesis([loser, w], 0, [100, -100], 100.0)
    ex.trade_genesis([loser, w], 1, [100, -100], 100.0)
    ex.step([100.0, 100.0])
    ex.step([88.0, 100.0])
    waves = ex.log.waves.to_array()
    assert waves.size == 2
    assert dict(zip(waves["market"].tolist(), waves["price_fallback"].tolist(), strict=True)) == {
        0: False,
        1: True,
    }
    ev = ex.log.adl.to_array()
    assert set(ev["wave"].tolist()) == set(waves["wave"].tolist())
    for row in waves:
        assert set(ev["market"][ev["wave"] == row["wave"]].tolist()) <= {int(row["market"])}


# ----------------------------------------------------------------------------- properties
ops = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(0, 5), st.integers(-40, 40).filter(bool)),
        st.tuples(st.just("move"), st.floats(-0.2, 0.2)),
        st.tuples(st.just("settle")),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seq=ops,
    policy=st.sampled_from(["hyperliquid", "bitmex", "dydx", "pro_rata", "seniority", "drift"]),
    execution=st.sampled_from(["budget", "position"]),
    bearer=st.sampled_from(SHORTFALL_BEARERS),
    cap=st.sampled_from(["auto", "pnl", "equity"]),
    kind=st.sampled_from(["fund", "vault"]),
)
def test_every_execution_and_bearer_keeps_the_books(seq, policy, execution, bearer, cap, kind):
    pol = get_policy(policy)
    ex = Exchange(
        [spec(depth=3e3)],
        100.0,
        policy=pol,
        backstop=BackstopConfig(kind=kind, capital=200.0),
        execution=execution,
        shortfall=bearer,
        eligibility=Eligibility(cap=pol.default_cap if cap == "auto" else cap),
    )
    idx = ex.open_accounts(6, [300.0, 500.0, 800.0, 2_000.0, 5_000.0, 20_000.0])
    for op in seq:
        if op[0] == "trade":
            ex.trade([idx[op[1]]], 0, [op[2]])
        elif op[0] == "move":
            rep = ex.step(ex.marks * np.exp(op[1]))
            assert rep.residual == pytest.approx(
                rep.written_off + rep.carried + rep.venue_paid, abs=1e-9
            )
            assert rep.adl_raised - rep.adl_budget == pytest.approx(
                rep.overshoot - rep.undershoot, abs=1e-6 * max(rep.deficit, 1.0)
            )
        else:
            ex.settle()
        inv = check_invariants(ex)
        assert inv.conservation_error < 1e-9
        assert not inv.oi_imbalance.any()
        assert not inv.negative_fund
        assert ex.debt >= 0.0
    ev = ex.log.adl.to_array()
    # no haircut above what the policy may take
    assert np.all(ev["haircut"] <= ev["capacity"] * (1 + 1e-9) + 1e-9)
