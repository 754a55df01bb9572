"""The learning environments: the standard checkers, determinism, and the money they move."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test

from experiments.envs import ADLParallelEnv, ADLTraderEnv, Learners
from experiments.envs.gym_env import game_for
from market import arrays
from market.invariants import check_invariants

SMALL = 300  # traders in the checkers' games


def test_gymnasium_env_passes_check_env():
    check_env(ADLTraderEnv(traders=SMALL), skip_render_check=True)


def test_pettingzoo_env_passes_parallel_api_test():
    parallel_api_test(ADLParallelEnv(3, traders=SMALL), num_cycles=200)


def test_registered_with_gymnasium():
    env = gym.make("adlgame/Trader-v0", traders=SMALL)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (13,)


def _episode(env: ADLTraderEnv, seed: int, actions: np.ndarray) -> tuple[list, list]:
    obs, _ = env.reset(seed=seed)
    seen, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        seen.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return seen, rewards


def test_same_seed_and_actions_give_the_same_episode():
    actions = np.random.default_rng(7).uniform(-1, 1, (60, 4)).astype(np.float32)
    a = _episode(ADLTraderEnv(traders=SMALL), 5, actions)
    b = _episode(ADLTraderEnv(traders=SMALL), 5, actions)
    np.testing.assert_array_equal(np.array(a[0]), np.array(b[0]))
    assert a[1] == b[1]
    c = _episode(ADLTraderEnv(traders=SMALL), 6, actions)
    assert not np.array_equal(np.array(a[0]), np.array(c[0]))


def test_an_idle_learner_leaves_the_game_as_it_was():
    """A learner doing nothing holds no position: the population plays the same game."""
    env = ADLTraderEnv(traders=SMALL)
    env.reset(seed=2)
    plain = game_for(None, SMALL, None, 2)
    total = 0.0
    while True:
        _, r, term, _, info = env.step(np.zeros(4, np.float32))
        plain.step()
        total += r
        if term:
            break
    assert total == 0.0 and info["wealth"] == pytest.approx(20_000.0)
    assert [c.adl_raised for c in env.game.crises] == [c.adl_raised for c in plain.crises]
    # the learner's accounts sit between the starting population and the entrants
    rows = env.learners.rows
    lo, hi = int(rows.min()), int(rows.max()) + 1
    cash, ref = env.game.exchange.acc.cash, plain.exchange.acc.cash
    np.testing.assert_array_equal(cash[:lo], ref[:lo])
    np.testing.assert_array_equal(
        cash[hi : env.game.exchange.n_accounts], ref[lo : plain.exchange.n_accounts]
    )


def test_learners_conserve_money_and_rewards_add_up_to_the_wealth_change():
    game = game_for(None, SMALL, "hyperliquid", 4)
    ex = game.exchange
    lr = Learners(game, 3, cash=5_000.0, wallet=5_000.0)
    w0 = lr.wealth().copy()
    rng = np.random.default_rng(1)
    total = np.zeros(3)
    for _ in range(80):
        lr.act(rng.uniform(-1, 1, (3, 4)))
        game.step()
        total += lr.after_step()
        check_invariants(ex)
        assert np.all(lr.wallet >= -1e-9)
    np.testing.assert_allclose(total * w0, lr.wealth() - w0, rtol=1e-9, atol=1e-6)


def test_the_moves_do_what_they_say():
    game = game_for(None, SMALL, None, 1)
    ex = game.exchange
    lr = Learners(game, 1, cash=10_000.0, wallet=10_000.0, max_split=4)
    lr.act(np.array([[1.0, 0.0, 0.0, 1.0]]))  # fully long over all four accounts
    lots = ex.acc.positions.lots_of(lr.rows[0], 0)
    assert (lots > 0).all() and lots.max() - lots.min() <= 1
    notional = lots.sum() * ex.lot[0] * ex.marks[0]
    assert notional == pytest.approx(lr.max_lev[0] * 10_000.0, rel=0.05)
    lr.act(np.array([[0.5, 0.0, 1.0, -1.0]]))  # half as long, one account, deposit the wallet
    lots = ex.acc.positions.lots_of(lr.rows[0], 0)
    assert lots[0] > 0 and (lots[1:] == 0).all()
    assert lr.wallet[0] == pytest.approx(0.0)
    e0 = ex.acc.positions.get_one(0, int(lr.rows[0, 0]))[1]
    game.step()
    lr.act(np.array([[0.5, 1.0, -1.0, -1.0]]))  # entry reset, withdraw the free collateral
    e1 = ex.acc.positions.get_one(0, int(lr.rows[0, 0]))[1]
    assert e1 != e0 and lr.wallet[0] > 0
    assert float(ex.free_collateral(lr.rows[0, :1])[0]) == pytest.approx(0.0, abs=1e-6)


def test_parallel_learners_are_terminated_at_the_end():
    env = ADLParallelEnv(2, traders=SMALL)
    env.reset(seed=1)
    steps = 0
    while env.agents:
        _, _, term, _, _ = env.step({a: np.zeros(4, np.float32) for a in env.agents})
        steps += 1
    assert steps == env.game.total_steps and all(term.values())


def test_training_example_evaluates_and_asks_for_its_extra(capsys, monkeypatch):
    import builtins

    from experiments.envs import train_ppo

    mean, se = train_ppo.evaluate(
        lambda: ADLTraderEnv(traders=SMALL), lambda o: np.zeros(4, np.float32), 2
    )
    assert mean == 0.0 and se == 0.0  # doing nothing earns nothing, in every game
    real_import = builtins.__import__

    def no_sb3(name, *args, **kwargs):
        if name.startswith("stable_baselines3"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sb3)
    assert train_ppo.main(["--steps", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ".[rl]" in err


def _special_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random actions with the edge values mixed in: NaN, infinities, -0.0, the thresholds
    and the exact halves of the split's rounding."""
    a = rng.uniform(-1.2, 1.2, shape)
    edges = np.array([np.nan, np.inf, -np.inf, -0.0, 0.5, -0.5, 1 / 6, 0.5 / 3, 1.0, -1.0])
    pick = rng.random(shape) < 0.15
    a[pick] = rng.choice(edges, int(pick.sum()))
    return a


def _observed(lr: Learners) -> bytes:
    """The learners' observation in float64, after checking that the scalar and the array
    computations of it agree byte for byte."""
    few = lr._observe_few()
    assert few.tobytes() == lr._observe_arrays().tobytes()
    return few.tobytes()


def _learners_run(n: int, markets: int, market: object, seed: int) -> tuple[str, bytes, bool]:
    """A game with ``n`` learners acting at random: the exchange's digest, every observation
    (float64, both computations compared), reward and wallet, as bytes, and whether a learner
    took an ADL haircut (so the observation's haircut field was read nonzero)."""
    from tests.market.test_fast_paths_same_numbers import _digest

    sc = game_for(None, SMALL, None, seed).scenario.replace(**{"market.markets": markets})
    game = game_for(sc, SMALL, None, seed)
    lr = Learners(game, n, market=market, cash=3_000.0, wallet=6_000.0)
    rng = np.random.default_rng(seed)
    seen = [_observed(lr)]
    haircut = False
    while game.running and game.t < game.total_steps:
        lr.act(_special_actions(rng, (n, 4)))
        seen.append(_observed(lr))  # between the moves and the step: nothing kept
        game.step()
        seen.append(lr.after_step().tobytes())
        haircut |= bool(np.any(lr.last_haircut > 0))
        seen.append(_observed(lr))
        seen.append(lr.wallet.tobytes() + lr.used.tobytes())
    return _digest(game.exchange), b"".join(seen), haircut


@pytest.mark.parametrize(
    ("n", "markets", "market", "seed"),
    [(1, 1, 0, 7), (2, 1, 0, 11), (2, 3, np.array([2, 0]), 11)],
)
def test_few_learners_on_scalars_move_and_see_as_the_array_path(
    monkeypatch, n, markets, market, seed
):
    """The scalar path of a few learners' accounts (moves, cash rebalancing, observations)
    gives the array path's exchange state, observations, rewards and wallets, byte for
    byte, in games where a learner takes an ADL haircut (seeds chosen for it)."""
    assert n * 4 <= arrays.FEW_ROWS  # the learners take the scalar path by default
    few = _learners_run(n, markets, market, seed)
    assert few[2], "no learner took a haircut: the haircut field would go untested"
    monkeypatch.setattr(arrays, "FEW_ROWS", 0)  # every call through the array paths
    assert _learners_run(n, markets, market, seed) == few


@given(total=st.integers(-(10**12), 10**12), used=st.integers(1, 6), extra=st.integers(0, 3))
def test_one_learners_spread_is_the_array_spread(total, used, extra):
    from experiments.envs.learners import _spread, _spread_one

    size = used + extra
    want = _spread(np.array([total]), np.array([used]), np.arange(size)[None, :])[0]
    assert _spread_one(total, used, size) == want.tolist()


@pytest.mark.parametrize("x", [0.0, -0.0, 2.7, -2.7, 1e18, -1e18, 2.0**63, np.inf, -np.inf, np.nan])
def test_one_learners_target_lots_cast_as_numpy(x):
    from experiments.envs.learners import _trunc_lots

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = int(np.trunc(np.array([x])).astype(np.int64)[0])
        assert _trunc_lots(x) == want
