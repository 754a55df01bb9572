"""The two-pass counterfactual: hand-computed waves, horizons, isolation, the game recorder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.game.twopass import (
    TwoPassRecorder,
    light_clone,
    step_figures,
    two_pass_wave,
)
from market.adl import Eligibility, get_policy
from market.adl.prorata import ProRata
from market.errors import InputError
from market.exchange import BackstopConfig, Exchange
from market.spec import MarketSpec

# ----------------------------------------------------------------------------- hand exchange
# One market, lot size 1, no fees, linear impact: selling x dollars into the book fills on
# average impact * x / (2 * depth) below the mark.  Starting mark 100, fund capital 0.
DEPTH, IMPACT = 1_000.0, 0.02


def spec() -> MarketSpec:
    return MarketSpec(
        name="H",
        lot_size=1.0,
        initial_margin=0.1,
        maintenance_margin=0.05,
        taker_fee=0.0,
        maker_fee=0.0,
        liquidation_fee=0.0,
        depth=DEPTH,
        impact=IMPACT,
        impact_exponent=1.0,
        stress_thinning=0.0,
        chunk_threshold=1e12,
    )


def hand_exchange(policy="hyperliquid", second_loser: bool = False, execution="budget"):
    """loser: long 100 @ 100 with 1,000; winner: short 100 @ 100 with 20,000; bystander:
    short 10 @ 100 with 50,000 (low leverage, last in the queue); optional loser2: long 50 @
    100 with 600 (safe at 94, liquidated at 90).  Budget execution unless said otherwise
    (Hyperliquid's own is position execution)."""
    pol = get_policy(policy) if policy is not None else None
    ex = Exchange(
        [spec()],
        100.0,
        backstop=BackstopConfig(kind="fund", capital=0.0),
        policy=pol,
        execution=execution if pol is not None else None,
    )
    loser, winner, bystander = ex.open_accounts(3, [1_000.0, 20_000.0, 50_000.0])
    ex.trade_genesis([loser, winner, bystander], 0, [100, -100, -10], 100.0)
    acc = {"loser": int(loser), "winner": int(winner), "bystander": int(bystander)}
    if second_loser:
        (l2,) = ex.open_accounts(1, 600.0)
        ex.trade_genesis([l2], 0, [50], 100.0)
        acc["loser2"] = int(l2)
    return ex, acc


PATH = np.array([[100.0], [94.0], [90.0]])  # step 1: the crash; step 2: a further fall of 4

# Hand numbers for step 1 (mark 94):
#   loser equity 1,000 - 600 = 400 < maintenance 0.05 * 9,400 = 470: liquidated;
#   100 lots = 9,400 dollars sold: average impact 0.02 * 9,400 / 2,000 = 0.094,
#   fill 94 * 0.906 = 85.164, cash 1,000 + 100 * (85.164 - 100) = -483.6: D = B = 483.6.
#   Hyperliquid closes at the previous mark: 100 - 94 = 6 dollars per lot; the winner
#   (score (100/94) * 9,400/20,600) is ahead of the bystander (940/50,060), has 600 of
#   profit, and gives ceil(483.6 / 6) = 81 lots = 486 dollars.
DEFICIT = 483.6
LOTS = 81
HAIRCUT = LOTS * 6.0


def state(ex: Exchange) -> tuple:
    a = ex.acc
    return (
        a.cash.copy(),
        a.pos.copy(),
        a.entry.copy(),
        a.gains.copy(),
        a.flags.copy(),
        ex.marks.copy(),
        ex.prev_marks.copy(),
        ex.depth_scale.copy(),
        ex.step_no,
        ex.wave_no,
        ex.fund,
        ex.fee_revenue,
        ex.bad_debt,
        ex.external,
        len(ex.log.trades),
        len(ex.log.adl),
    )


def same_state(s1: tuple, s2: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(s1, s2, strict=True))


def test_hand_numbers_are_what_they_say():
    fill = 94.0 * (1 - IMPACT * 9_400.0 / (2 * DEPTH))
    assert fill == pytest.approx(85.164)
    assert -(1_000.0 + 100 * (fill - 100.0)) == pytest.approx(DEFICIT)
    ex, acc = hand_exchange()
    rep = ex.step(94.0)
    assert rep.deficit == pytest.approx(DEFICIT)
    assert rep.adl_budget == pytest.approx(DEFICIT)
    assert rep.adl_raised == pytest.approx(HAIRCUT)
    assert step_figures(ex, 1) == pytest.approx(
        {"deficit": rep.deficit, "adl_budget": rep.adl_budget, "adl_raised": rep.adl_raised}
    )
    assert ex.acc.pos[acc["winner"], 0] == -(100 - LOTS)
    assert ex.acc.pos[acc["bystander"], 0] == -10


def test_position_execution_over_deleverages_by_a_known_amount():
    # Hyperliquid's own execution: the liquidated position's 100 lots are matched against the
    # queue at the previous mark, 6 dollars a lot: the winner gives 600 against a need of
    # 483.6, an over-deleveraging of 116.4 that goes to the insurance fund.
    ex, acc = hand_exchange(execution="position")
    assert get_policy("hyperliquid").default_execution == "position"
    rep = ex.step(94.0)
    assert rep.adl_budget == pytest.approx(DEFICIT)  # what the deficit needed
    assert rep.adl_target == pytest.approx(600.0)  # 100 uncovered lots at 6 dollars
    assert rep.adl_raised == pytest.approx(600.0)
    assert rep.overshoot == pytest.approx(600.0 - DEFICIT)
    assert rep.undershoot == 0.0 and rep.residual == 0.0
    assert ex.fund == pytest.approx(600.0 - DEFICIT)
    assert ex.acc.pos[acc["winner"], 0] == 0
    w = ex.log.waves.to_array()
    assert w["execution"].tolist() == [1] and w["lots_target"].tolist() == [100]
    assert w["overshoot"][0] == pytest.approx(116.4) and w["undershoot"][0] == 0.0
    res = two_pass_wave(hand_exchange(execution="position")[0], PATH, 1, horizons=(0, 1))
    assert res["B_needed"] == pytest.approx(DEFICIT)
    assert res["over"][0] == pytest.approx(116.4) and res["under"][0] == 0.0
    assert res["H"][1] == pytest.approx(600.0 + 100 * 4.0)


def test_position_execution_at_the_bankruptcy_price_raises_the_need():
    # BitMEX closes at the liquidated order's bankruptcy price, 4.836 dollars a lot beyond
    # the mark: the 100 lots raise exactly the 483.6 the hole needs.
    ex, acc = hand_exchange("bitmex", execution="position")
    rep = ex.step(94.0)
    assert rep.adl_raised == pytest.approx(DEFICIT)
    assert rep.overshoot == 0.0 and rep.undershoot == 0.0
    assert ex.acc.pos[acc["winner"], 0] == 0


def test_wave_end_haircut_equals_what_adl_debited():
    ex, acc = hand_exchange()
    before = state(ex)
    res = two_pass_wave(ex, PATH, 1, horizons=(0, 1))
    assert same_state(before, state(ex))  # the input exchange is untouched
    assert res["winners"].tolist() == [acc["winner"]]
    assert res["lots_closed"].tolist() == [LOTS]
    assert res["haircut"] == pytest.approx([HAIRCUT])
    assert res["B_needed"] == pytest.approx(DEFICIT)
    assert res["raised"] == pytest.approx(HAIRCUT)
    assert res["deficit"] == pytest.approx(DEFICIT)
    assert res["bad_debt_B"] == pytest.approx(DEFICIT)  # without ADL the hole is written off
    # wave end: equity_B - equity_A = 20,600 - 20,114 = 486 = the haircut
    assert res["delta"] == pytest.approx([HAIRCUT])
    assert res["H"][0] == pytest.approx(486.0)
    assert res["overshoot"][0] == pytest.approx(486.0 - DEFICIT)  # rounding to whole lots
    assert 0 <= res["overshoot"][0] < 6.0
    assert res["bystander_delta"] == pytest.approx(0.0, abs=1e-9)
    # one step later the mark falls by 4 more: the 81 closed lots miss 81 * 1 * 4 = 324
    assert res["H"][1] == pytest.approx(486.0 + 81 * 4.0)  # = 810
    assert res["overshoot"][1] == pytest.approx(810.0 - DEFICIT)
    assert res["reached"] == {0: 0, 1: 1}


def test_horizon_against_the_winners_shrinks_and_clips_at_zero():
    # after the crash the mark rebounds: the closed lots would have lost, so H falls
    path = np.array([[100.0], [94.0], [97.0], [120.0]])
    ex, _ = hand_exchange()
    res = two_pass_wave(ex, path, 1, horizons=(0, 1, 2))
    assert res["H"][0] == pytest.approx(486.0)
    assert res["H"][1] == pytest.approx(486.0 - 81 * 3.0)  # 243
    assert res["H"][2] == 0.0  # 486 - 81 * 26 < 0, clipped per winner
    assert res["overshoot"][2] == pytest.approx(-DEFICIT)


def test_path_end_stops_the_replay_early():
    ex, _ = hand_exchange()
    res = two_pass_wave(ex, PATH, 1, horizons=(5, 0, 1, 1))
    assert res["horizons"] == (0, 1, 5)
    assert res["reached"] == {0: 0, 1: 1, 5: 1}
    assert res["H"][5] == pytest.approx(res["H"][1])


def test_consume_uses_the_given_copy_as_pass_a():
    ex, _ = hand_exchange()
    copy_ = light_clone(ex)
    res = two_pass_wave(copy_, PATH, 1, horizons=(0, 1), consume=True)
    assert res["H"][1] == pytest.approx(810.0)
    assert copy_.step_no == 2  # stepped forward as pass A
    assert ex.step_no == 0


def test_isolation_keeps_later_waves_out_of_the_curve():
    # loser2 is liquidated at step 2 (mark 90): 50 lots = 4,500 dollars, impact 0.045,
    # fill 85.95, cash 600 + 50 * (85.95 - 100) = -102.5.
    ex, acc = hand_exchange(second_loser=True)
    iso = two_pass_wave(ex, PATH, 1, horizons=(0, 1))
    assert iso["H"][0] == pytest.approx(486.0)
    assert iso["H"][1] == pytest.approx(810.0)  # step 2's hole is bad debt in both passes
    # without isolation pass A runs a second wave at step 2 (prev-mark gap 94 - 90 = 4):
    # the winner's 19 remaining lots give 76, the bystander the rest (not in W of step 1)
    both = two_pass_wave(ex, PATH, 1, horizons=(0, 1), isolate=False)
    assert both["H"][0] == pytest.approx(486.0)
    assert both["H"][1] == pytest.approx(810.0 + 19 * 4.0)
    assert both["winners"].tolist() == [acc["winner"]]
    b = ex.clone(policy=None)
    b.step(94.0)
    assert b.step(90.0).deficit == pytest.approx(102.5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"t": 2}, "t"),
        ({"t": 0}, "t"),
        ({"t": 1.0}, "t"),
        ({"marks_path": np.ones((3, 2))}, "marks_path"),
        ({"marks_path": np.array([[100.0], [-1.0]])}, "marks_path"),
        ({"horizons": (0, -1)}, "horizons"),
        ({"horizons": ()}, "horizons"),
        ({"horizons": (0.5,)}, "horizons"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(kwargs, field):
    ex, _ = hand_exchange()
    before = state(ex)
    args = {"exchange_before": ex, "marks_path": PATH, "t": 1, "horizons": (0, 1)}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        two_pass_wave(**args)
    assert err.value.field == field
    assert same_state(before, state(ex))


def test_no_policy_is_refused():
    ex, _ = hand_exchange(policy=None)
    with pytest.raises(InputError) as err:
        two_pass_wave(ex, PATH, 1)
    assert err.value.field == "exchange_before.policy"


def test_light_clone_is_independent_and_starts_an_empty_log():
    ex, _ = hand_exchange()
    ex.step(94.0)
    c = light_clone(ex, policy=None)
    assert c.policy is None and ex.policy is not None
    assert len(c.log.trades) == 0 and len(ex.log.trades) > 0
    c.acc.cash[:] = 0.0
    assert ex.acc.cash.sum() > 0


# ----------------------------------------------------------------------------- property
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(["hyperliquid", "pro_rata", "bitmex", "capped_pro_rata", "drift"]),
    n_win=st.integers(1, 5),
    win_lots=st.lists(st.integers(1, 60), min_size=5, max_size=5),
    crash=st.floats(0.05, 0.2),
    move=st.floats(-0.1, 0.1),
)
def test_curve_is_haircut_plus_missed_move(policy, n_win, win_lots, crash, move):
    """H(1) = sum over W of (haircut + lots closed * lot * favourable move)_+ on any wave.

    Profits-only caps and budget execution keep every winner solvent after the wave, so
    nothing but the marks moves between the passes (under equity caps a winner may be taken
    to zero equity and liquidated a step later, which the curve rightly counts too)."""
    ex = Exchange(
        [spec()],
        100.0,
        backstop=BackstopConfig(kind="fund", capital=0.0),
        policy=get_policy(policy),
        eligibility=Eligibility(cap="pnl"),
        execution="budget",
    )
    (loser,) = ex.open_accounts(1, 1_000.0)
    ex.trade_genesis([loser], 0, [100], 100.0)
    lots = np.array(win_lots[:n_win])
    wins = ex.open_accounts(n_win, lots * 200.0)  # leverage 0.5: never liquidated here
    ex.trade_genesis(wins, 0, -lots, 100.0)
    m1 = 100.0 * (1 - crash)
    m2 = m1 * (1 + move)
    res = two_pass_wave(ex, np.array([100.0, m1, m2]), 1, horizons=(0, 1))
    assert res["H"][0] == pytest.approx(res["raised"], rel=1e-9, abs=1e-9)
    assert res["haircut"].sum() == pytest.approx(res["raised"], rel=1e-9, abs=1e-9)
    assert res["delta"] == pytest.approx(res["haircut"], rel=1e-9, abs=1e-9)
    # overshoot(0) is the rounding overshoot (negative only when capacity ran out)
    assert res["overshoot"][0] == pytest.approx(res["raised"] - res["B_needed"], abs=1e-9)
    favour = m1 - m2  # winners are short
    expect = np.maximum(res["haircut"] + res["lots_closed"] * 1.0 * favour, 0.0).sum()
    assert res["H"][1] == pytest.approx(expect, rel=1e-9, abs=1e-6)


# ----------------------------------------------------------------------------- recorder
def small(**over):
    base = {
        "run.traders": 300,
        "run.crises": 2,
        "run.calm_steps": 6,
        "run.crisis_steps": 6,
        "backstop.capital": 1_000.0,  # small fund: the crises need ADL
    }
    base.update(over)
    return load_scenario().replace(**base)


def drive(game: ADLGame, rec: TwoPassRecorder | None, states: list | None = None) -> None:
    """Step the game to the end, calling the recorder around every step (the lead's wiring)."""
    while game.running:
        if rec is not None:
            rec.before(game)
        game.step()
        if rec is not None:
            rec.after(game)  # the report is read from the exchange's log
        if states is not None:
            states.append(state(game.exchange))


def test_recorder_rows_match_the_real_waves():
    game = ADLGame(small(), seed=5, policy="hyperliquid")
    rec = TwoPassRecorder(horizons=(0, 1, 3))
    drive(game, rec)
    df = rec.frame()
    assert list(df.columns) == rec.columns()
    waves = game.exchange.log.waves.to_array()
    adl_steps = sorted({int(s) for s in waves["step"][waves["raised"] > 0]})
    assert len(adl_steps) > 0
    assert df["step"].tolist() == adl_steps  # every ADL step (all fall in crises here)
    # the replayed pass A is the real step: same money raised
    assert df["replay_error"].max() == pytest.approx(0.0, abs=1e-9)
    fills = game.exchange.log.adl.to_array()
    for row in df.itertuples():
        real = fills[fills["step"] == row.step]
        assert row.raised == pytest.approx(float(real["haircut"].sum()), rel=1e-12)
        assert row.winners == np.unique(real["account"][real["haircut"] > 0]).size
        assert row.crisis == game.crisis_of_step(row.step)
    # wave end: H(0) is exactly what was debited; under position execution (Hyperliquid's
    # own) the liquidated lots at the previous mark raise more or less than the need
    np.testing.assert_allclose(df["H_0"], df["raised"], rtol=1e-9)
    np.testing.assert_allclose(df["overshoot_0"], df["raised"] - df["B_needed"], atol=1e-6)
    for h in (0, 1, 3):
        np.testing.assert_allclose(df[f"over_{h}"] - df[f"under_{h}"], df[f"overshoot_{h}"])
        assert (df[f"over_{h}"] >= 0).all() and (df[f"under_{h}"] >= 0).all()
    assert (df["over_0"] > 0).any() and (df["under_0"] > 0).any()
    assert df["max_reached"].max() == 3


def test_budget_execution_overshoot_is_lot_rounding_only():
    game = ADLGame(small(**{"adl.execution": "budget"}), seed=5, policy="hyperliquid")
    rec = TwoPassRecorder(horizons=(0,))
    drive(game, rec)
    df = rec.frame()
    assert len(df) > 0
    assert (df["overshoot_0"] >= -1e-6).all()
    waves = game.exchange.log.waves.to_array()
    assert (waves["overshoot"] <= waves["granularity"] + 1e-9).all()


def test_recorder_does_not_disturb_the_real_run():
    with_rec: list = []
    without: list = []
    a = ADLGame(small(), seed=7, policy="pro_rata")
    rec = TwoPassRecorder()
    drive(a, rec, with_rec)
    drive(ADLGame(small(), seed=7, policy="pro_rata"), None, without)
    assert len(rec.rows) > 0
    assert len(with_rec) == len(without)
    for s1, s2 in zip(with_rec, without, strict=True):
        assert same_state(s1, s2)


def test_recorder_without_policy_records_nothing():
    game = ADLGame(small(), seed=5, policy="hyperliquid")
    game.exchange.policy = None  # deficits become bad debt
    rec = TwoPassRecorder()
    drive(game, rec)
    assert game.exchange.debt > 0  # there were holes, nobody paid them by ADL: fund debt
    assert rec.rows == []
    df = rec.frame()
    assert df.empty and list(df.columns) == rec.columns()


def test_recorder_skips_calm_steps_and_after_without_before():
    game = ADLGame(small(), seed=5, policy="hyperliquid")
    rec = TwoPassRecorder()
    rec.before(game)  # the first step is calm: nothing kept
    assert rec._before is None
    game.step()
    assert rec.after(game) is None
    assert rec.after(game) is None  # no copy kept


def test_recorder_bad_horizons():
    with pytest.raises(InputError) as err:
        TwoPassRecorder(horizons=(-2,))
    assert err.value.field == "horizons"


def test_horizon_curve_tells_apart_allocations_that_close_different_positions():
    """Same price rule, same lots closed, same H(0); a thin winner that the queue drains and
    pro-rata only trims is liquidated on the rebound in pass B, so H(1) parts the two."""

    class ProRataAtPrevMark(ProRata):
        price_rule = "prev_mark"

    out = {}
    for pol in (get_policy("hyperliquid"), ProRataAtPrevMark()):
        ex = Exchange(
            [spec()],
            100.0,
            backstop=BackstopConfig(kind="fund", capital=0.0),
            policy=pol,
            eligibility=Eligibility(cap="pnl"),
            execution="budget",
        )
        # thin winner: short 100 @ 100 with 100 (leverage 13 at 94); thick one with 20,000
        loser, thin, thick = ex.open_accounts(3, [1_000.0, 100.0, 20_000.0])
        ex.trade_genesis([loser, thin, thick], 0, [100, -100, -100], 100.0)
        out[pol.name] = two_pass_wave(ex, np.array([[100.0], [94.0], [97.0]]), 1, (0, 1))
    hl, pr = out["hyperliquid"], out["pro_rata"]
    # both close 81 lots at 6 dollars: 486 against the need of 483.6
    assert hl["H"][0] == pytest.approx(486.0) and pr["H"][0] == pytest.approx(486.0)
    assert hl["lots_closed"].sum() == pr["lots_closed"].sum() == 81
    # at 97 the thin winner, holding all its lots in pass B, is liquidated into the book and
    # ends below its pass-A self: clipped to 0.  The queue took everything from it (H = 0);
    # pro-rata also took 40 lots from the thick winner, who keeps 40 * (6 - 3) = 120.
    assert hl["H"][1] == pytest.approx(0.0)
    assert pr["lots_closed"].tolist() == [41, 40]
    assert pr["H"][1] == pytest.approx(120.0)
