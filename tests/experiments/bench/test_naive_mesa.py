"""The naive plain-Mesa reference of the game: same numbers as the fast game, real margin checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents import Flipper, SybilOwner, Whale
from experiments.bench.naive_mesa import NaiveADLGame, account_margin, bench_game
from experiments.game.model import TRADER_TYPES, ADLGame
from experiments.game.scenario import load_scenario
from experiments.runs.results import HEADLINE_METRICS, RunResult, json_safe, run_frames
from market.accounts import BOOK, VAULT
from market.errors import InputError
from market.events import TRADE_KINDS


def small(**over):
    base = {
        "run.traders": 500,
        "run.crises": 2,
        "run.calm_steps": 6,
        "run.crisis_steps": 6,
        "mix.flipper": 0.1,
        "mix.sybil": 0.05,
        "mix.whale": 0.05,
    }
    base.update(over)
    return load_scenario().replace(**base)


def pair(sc, seed, policy=None, two_pass=False):
    fast = ADLGame(sc, seed=seed, policy=policy, two_pass=two_pass)
    naive = NaiveADLGame(sc, seed=seed, policy=policy, two_pass=two_pass)
    fast.run()
    naive.run()
    return fast, naive


@pytest.mark.parametrize(
    ("over", "seed", "policy", "two_pass"),
    [
        ({}, 5, "hyperliquid", True),
        ({"market.markets": 2, "crisis.correlation": 0.5}, 2, "pro_rata", False),
    ],
)
def test_naive_and_fast_games_give_identical_numbers(over, seed, policy, two_pass):
    fast, naive = pair(small(**over), seed, policy, two_pass)
    s_fast = json_safe(RunResult.from_game(fast).summary())
    s_naive = json_safe(RunResult.from_game(naive).summary())
    # everything happened: ADL, churn, entry, imitation, flips, whales, Sybils
    assert s_fast["adl_raised"] > 0 and s_fast["accounts_touched"] > 0
    assert s_fast["traders_churned"] > 0
    assert sum(c.entrants for c in fast.crises) > 0
    assert sum(c.switched for c in fast.crises) > 0
    assert sum(a.flips for a in naive.members(Flipper).agents) > 0
    whales = naive.members(Whale).agents
    assert whales and any(not np.allclose(w.weights, w.weights[0]) for w in whales)
    assert len(naive.members(SybilOwner)) > 0
    # identical headline numbers, exactly (json_safe makes NaN comparable)
    for key in (*HEADLINE_METRICS, "conservation_error", "crises", "overshoot_by_horizon"):
        assert s_fast[key] == s_naive[key], key
    assert s_fast == s_naive
    # identical step series and every other table, exactly
    frames_fast, frames_naive = run_frames(fast), run_frames(naive)
    for name, frame in frames_fast.items():
        pd.testing.assert_frame_equal(frame, frames_naive[name], check_exact=True, obj=name)
    assert len(frames_fast["timeseries"]) == fast.total_steps + 1
    # identical exchange state and agent state
    a, b = fast.exchange.acc, naive.exchange.acc
    for field in ("cash", "pos", "entry", "gains", "flags"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    for x, y in zip(fast.traders(), naive.traders(), strict=True):
        assert (type(x), x.uid, x.side, x.leverage) == (type(y), y.uid, y.side, y.leverage)
        assert getattr(x, "flips", 0) == getattr(y, "flips", 0)
        assert getattr(x, "cost_paid", 0.0) == getattr(y, "cost_paid", 0.0)
        if isinstance(x, Whale):
            assert np.array_equal(x.weights, y.weights)


def test_the_naive_game_never_calls_the_vectorised_behaviour(monkeypatch):
    game = NaiveADLGame(small(**{"run.traders": 300}), seed=3, two_pass=False)

    def refuse(*args, **kw):
        raise AssertionError("vectorised behaviour called")

    for cls in TRADER_TYPES:
        monkeypatch.setattr(cls, "act", classmethod(refuse))
        monkeypatch.setattr(cls, "after_crisis", classmethod(refuse))
    monkeypatch.setattr(SybilOwner, "arrange_all", classmethod(refuse), raising=False)
    monkeypatch.setattr("agents.base.target_orders", refuse)
    monkeypatch.setattr("experiments.game.model.target_orders", refuse, raising=False)
    game.run()
    assert len(game.crises) == 2 and game.t == game.total_steps


def test_account_margin_by_hand_and_against_the_exchange_arrays():
    game = NaiveADLGame(small(**{"run.traders": 200}), seed=1, two_pass=False)
    ex = game.exchange
    acc = int(ex.open_accounts(1, 100.0)[0])
    ex.trade_genesis(acc, 0, 10, 100.0)  # 10 lots of 0.1 long at 100
    ex.marks = np.array([90.0])
    eq, mm, im, has = account_margin(game, acc)
    # 100 + 10 * 0.1 * (90 - 100) = 90; notional 10 * 0.1 * 90 = 90 -> 1 % and 2 %
    assert has and eq == pytest.approx(90.0) and mm == pytest.approx(0.9)
    assert im == pytest.approx(1.8)
    for _ in range(9):
        game.step()
    e, m, i = ex.equity(), ex.maintenance(), ex.initial_margin()
    for a in range(1, ex.n_accounts):
        assert account_margin(game, a) == (e[a], m[a], i[a], bool((ex.acc.pos[a] != 0).any()))


def test_agents_margin_flags_equal_the_exchanges_liquidation_scan():
    sc = small(**{"run.traders": 600})
    game = NaiveADLGame(sc, seed=5, two_pass=False)
    first_crisis = sc.run.calm_steps + 1
    while game.t < first_crisis:  # one step into the crash
        game.step()
    ex = game.exchange
    # the coming step's marks, before its waterfall: who is under maintenance?
    ex.prev_marks, ex.marks = ex.marks, game.marks_path[game.t + 1].copy()
    flagged = game.margin_scan()
    trader = (ex.acc.flags & (BOOK | VAULT)) == 0
    has_pos = (ex.acc.pos != 0).any(axis=1)
    scan = np.flatnonzero(trader & has_pos & (ex.equity() < ex.maintenance()))
    assert flagged.size > 10
    assert np.array_equal(flagged, scan)
    # and the waterfall liquidates exactly those accounts
    rows_before = len(ex.log.trades)
    rep = ex.run_waterfall()
    trades = ex.log.trades.to_array()[rows_before:]
    liquidated = np.unique(trades["account"][trades["kind"] == TRADE_KINDS.index("liquidation")])
    assert rep.liquidated == flagged.size
    assert np.array_equal(liquidated, flagged)
    # per-agent records agree with the flags
    owners = {a for agent in game.traders() for a in agent.margin_calls}
    assert owners == set(flagged.tolist())


def test_bench_game_at_a_tiny_size_returns_every_figure():
    out = bench_game(traders=300, crises=2, naive_crises=1, seed=2)
    keys = {
        "traders",
        "crises",
        "steps",
        "window_steps",
        "game_agent_steps_per_s",
        "naive_mesa_agent_steps_per_s",
        "game_speedup_vs_naive",
        "game_seconds",
        "naive_seconds",
        "game_full_run_seconds",
        "game_full_run_agent_steps_per_s",
        "headline_equal",
        "definition",
    }
    assert keys <= set(out)
    assert (out["traders"], out["crises"]) == (300, 2)
    assert out["steps"] == 2 * (20 + 10) + 20 and out["window_steps"] == 30
    assert out["headline_equal"] is True
    assert out["window_agent_steps"] >= 300 * 30 * 0.5
    for key in ("game_seconds", "naive_seconds", "game_full_run_seconds", "naive_cpu_seconds"):
        assert out[key] > 0
    assert out["game_full_run_seconds"] >= out["game_seconds"]
    assert out["game_full_run_agent_steps"] > out["window_agent_steps"]
    assert out["game_agent_steps_per_s"] == pytest.approx(
        out["window_agent_steps"] / out["game_seconds"]
    )
    assert out["game_speedup_vs_naive"] == pytest.approx(
        out["game_agent_steps_per_s"] / out["naive_mesa_agent_steps_per_s"]
    )
    assert "agent-steps/s" in out["definition"]


def test_bench_game_refuses_a_window_longer_than_the_run():
    with pytest.raises(InputError, match="naive_crises"):
        bench_game(traders=10, crises=1, naive_crises=2)


def test_the_naive_game_runs_the_games_own_step_order():
    # the reference overrides the agent hooks only, so it cannot drift from ADLGame.step
    own = vars(NaiveADLGame)
    assert "step" not in own and "_end_crisis" not in own
    assert "_agents_act" in own and "_agents_after_crisis" in own


def test_bench_game_window_is_the_whole_run_by_default():
    out = bench_game(traders=200, crises=1, seed=2)
    assert out["steps"] == out["window_steps"] == 20 + 10 + 20
    assert out["first_cycle_steps"] == 30
    assert out["headline_equal"] is True
    assert out["game_full_run_seconds"] == pytest.approx(out["game_seconds"])
    assert out["game_full_run_agent_steps"] == out["window_agent_steps"]
    assert out["first_cycle_speedup_vs_naive"] > 0
