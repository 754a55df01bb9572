"""The learning environments' throughput: environment steps per second on one core.

Each figure plays whole episodes (one game of the default scenario each, seeds in turn) with
uniform random actions drawn from a fixed seed, until at least :data:`MIN_SECONDS` of ``step``
have been timed, timing only ``step`` (``reset`` builds the population and is reported
apart).  The Gymnasium figure is the steps over the seconds of all its episodes; each
episode's own rate is kept too (how many, the lowest, the highest), so a reader sees the
spread the pooled figure hides.  The game alone at the same size (no learner, no per-step
series) is timed beside them: it is the floor an environment step cannot go below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Traders in the benchmark's games (the issue's size) and in ``quick=True``.
ENV_TRADERS = 2_000
QUICK_ENV_TRADERS = 300
#: Learners of the parallel environment's figure.
PARALLEL_LEARNERS = 8


#: Each figure plays whole episodes (seeds ``seed``, ``seed + 1``, ...) until this many
#: seconds of ``step`` have been timed (one short episode is too noisy on a shared machine).
MIN_SECONDS = 2.0
QUICK_MIN_SECONDS = 0.0


def _until(
    min_seconds: float, episode: Callable[[int], tuple[int, float]]
) -> tuple[int, float, list[float]]:
    """Play ``episode(i)`` (returning its steps and timed seconds) for i = 0, 1, ... until at
    least ``min_seconds`` are timed (at least once); the total steps and seconds, and each
    episode's steps per second."""
    steps, spent, i = 0, 0.0, 0
    rates: list[float] = []
    while i == 0 or spent < min_seconds:
        n, sec = episode(i)
        steps, spent, i = steps + n, spent + sec, i + 1
        rates.append(n / sec if sec > 0 else float("inf"))
    return steps, spent, rates


def _episode_rate(
    env: Any, seed: int, act: Any, min_seconds: float = 0.0
) -> tuple[float, int, float, list[float]]:
    """(steps per second of ``step``, steps, seconds of the first ``reset``, each episode's
    steps per second) over whole episodes (seeds ``seed``, ``seed + 1``, ...), at least one
    and until ``min_seconds`` of stepping."""
    resets: list[float] = []

    def episode(i: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        env.reset(seed=seed + i)
        resets.append(time.perf_counter() - t0)
        steps, spent = 0, 0.0
        while True:
            a = act(env)
            t = time.perf_counter()
            out = env.step(a)
            spent += time.perf_counter() - t
            steps += 1
            if (out[2] or out[3]) if isinstance(out[2], bool) else not env.agents:
                return steps, spent

    steps, spent, rates = _until(min_seconds, episode)
    return steps / spent, steps, resets[0], rates


def bench_envs(quick: bool = False, seed: int = 1) -> dict[str, Any]:
    """Steps per second of the Gymnasium environment (random and idle learner), of the
    PettingZoo environment with :data:`PARALLEL_LEARNERS` learners, and of the game alone."""
    from experiments.envs import ADLParallelEnv, ADLTraderEnv
    from experiments.envs.gym_env import game_for

    traders = QUICK_ENV_TRADERS if quick else ENV_TRADERS
    least = QUICK_MIN_SECONDS if quick else MIN_SECONDS
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"traders": traders, "learners_parallel": PARALLEL_LEARNERS}
    env = ADLTraderEnv(traders=traders)
    rate, steps, reset_s, rates = _episode_rate(
        env, seed, lambda e: rng.uniform(-1, 1, 4).astype(np.float32), least
    )
    out.update(
        gym_steps_per_s=rate,
        gym_steps=steps,
        gym_reset_seconds=reset_s,
        # the spread the pooled figure hides: each episode's own rate
        gym_episodes=len(rates),
        gym_episode_steps_per_s_min=min(rates),
        gym_episode_steps_per_s_max=max(rates),
    )
    idle = np.zeros(4, np.float32)
    out["gym_idle_steps_per_s"] = _episode_rate(env, seed, lambda e: idle, least)[0]
    penv = ADLParallelEnv(PARALLEL_LEARNERS, traders=traders)
    prate, _, _, _ = _episode_rate(
        penv,
        seed,
        lambda e: {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in e.agents},
        least,
    )
    out["parallel_steps_per_s"] = prate
    out["parallel_learner_steps_per_s"] = prate * PARALLEL_LEARNERS

    def game_alone(i: int) -> tuple[int, float]:
        game = game_for(None, traders, None, seed + i)
        t = time.perf_counter()
        while game.running and game.t < game.total_steps:
            game.step()
        return game.total_steps, time.perf_counter() - t

    steps, spent, _ = _until(least, game_alone)
    out["game_steps_per_s"] = steps / spent
    return out


def envs_line(rec: dict[str, Any], target: float, ok: str) -> str:
    """The bench report's line for the environments."""
    return (
        f"envs {rec['traders']:,} traders, one core: Gymnasium {rec['gym_steps_per_s']:,.0f} "
        f"steps/s (random actions, {_spread(rec)}; idle learner "
        f"{rec['gym_idle_steps_per_s']:,.0f}; the game "
        f"alone {rec['game_steps_per_s']:,.0f})  target >= {target:g}  {ok}; PettingZoo "
        f"{rec['learners_parallel']} learners {rec['parallel_steps_per_s']:,.0f} steps/s "
        f"({rec['parallel_learner_steps_per_s']:,.0f} learner-steps/s)"
    )


def _spread(rec: dict[str, Any]) -> str:
    """The episodes behind the Gymnasium figure: how many, and their own rates' range."""
    n = rec.get("gym_episodes")
    if not n:  # (a record from before the spread was kept)
        return "episodes not recorded"
    lo, hi = rec["gym_episode_steps_per_s_min"], rec["gym_episode_steps_per_s_max"]
    return f"{n} episodes, each {lo:,.0f}-{hi:,.0f}"
