"""The learning environments' throughput: environment steps per second on one core.

Each figure plays whole episodes (one game of the default scenario each, seeds in turn) with
uniform random actions drawn from a fixed seed, until at least :data:`MIN_SECONDS` of ``step``
have been timed, timing only ``step`` (``reset`` builds the population and is reported
apart).  The game alone at the same size (no learner, no per-step series) is timed
beside them: it is the floor an environment step cannot go below.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: Traders in the benchmark's games (the issue's size) and in ``quick=True``.
ENV_TRADERS = 2_000
QUICK_ENV_TRADERS = 300
#: Learners of the parallel environment's figure.
PARALLEL_LEARNERS = 8


#: Each figure plays whole episodes (seeds ``seed``, ``seed + 1``, ...) until this many
#: seconds of ``step`` have been timed (one short episode is too noisy on a shared machine).
MIN_SECONDS = 1.0
QUICK_MIN_SECONDS = 0.0


def _episode_rate(
    env: Any, seed: int, act: Any, min_seconds: float = 0.0
) -> tuple[float, int, float]:
    """(steps per second of ``step``, steps, seconds of the first ``reset``) over whole
    episodes, at least one and until ``min_seconds`` of stepping."""
    steps, spent, reset_s, episode = 0, 0.0, None, 0
    while episode == 0 or spent < min_seconds:
        t0 = time.perf_counter()
        env.reset(seed=seed + episode)
        if reset_s is None:
            reset_s = time.perf_counter() - t0
        episode += 1
        while True:
            a = act(env)
            t = time.perf_counter()
            out = env.step(a)
            spent += time.perf_counter() - t
            steps += 1
            done = (out[2] or out[3]) if isinstance(out[2], bool) else not env.agents
            if done:
                break
    return steps / spent, steps, float(reset_s)


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
    rate, steps, reset_s = _episode_rate(
        env, seed, lambda e: rng.uniform(-1, 1, 4).astype(np.float32), least
    )
    out.update(gym_steps_per_s=rate, gym_steps=steps, gym_reset_seconds=reset_s)
    idle = np.zeros(4, np.float32)
    out["gym_idle_steps_per_s"] = _episode_rate(env, seed, lambda e: idle, least)[0]
    penv = ADLParallelEnv(PARALLEL_LEARNERS, traders=traders)
    prate, _, _ = _episode_rate(
        penv,
        seed,
        lambda e: {a: rng.uniform(-1, 1, 4).astype(np.float32) for a in e.agents},
        least,
    )
    out["parallel_steps_per_s"] = prate
    out["parallel_learner_steps_per_s"] = prate * PARALLEL_LEARNERS
    steps, spent, episode = 0, 0.0, 0
    while episode == 0 or spent < least:
        game = game_for(None, traders, None, seed + episode)
        episode += 1
        t = time.perf_counter()
        while game.running and game.t < game.total_steps:
            game.step()
        spent += time.perf_counter() - t
        steps += game.total_steps
    out["game_steps_per_s"] = steps / spent
    return out


def envs_line(rec: dict[str, Any], target: float, ok: str) -> str:
    """The bench report's line for the environments."""
    return (
        f"envs {rec['traders']:,} traders, one core: Gymnasium {rec['gym_steps_per_s']:,.0f} "
        f"steps/s (random actions; idle learner {rec['gym_idle_steps_per_s']:,.0f}; the game "
        f"alone {rec['game_steps_per_s']:,.0f})  target >= {target:g}  {ok}; PettingZoo "
        f"{rec['learners_parallel']} learners {rec['parallel_steps_per_s']:,.0f} steps/s "
        f"({rec['parallel_learner_steps_per_s']:,.0f} learner-steps/s)"
    )
