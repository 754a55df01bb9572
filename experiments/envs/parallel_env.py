"""A PettingZoo parallel environment: several learning traders in one game at once.

The same game and moves as :class:`experiments.envs.gym_env.ADLTraderEnv`, with ``n``
learners (agents ``"trader_0"`` ..) acting together before every game step: each has its
own observation, action and reward (:mod:`experiments.envs.learners`), so they compete for
the same book and share the same ADL waves.  A learner whose wealth is gone leaves (it is
terminated); every learner is terminated when the game's schedule ends.

Determinism: ``reset(seed=s)`` plays the game of root seed ``s``; without a seed the seed
is drawn from the environment's own generator (seeded by the first ``reset(seed=...)``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from experiments.envs.gym_env import game_for
from experiments.envs.learners import ACT_SIZE, OBS_SIZE, Learners
from experiments.game.model import ADLGame
from experiments.game.scenario import Scenario, load_scenario


class ADLParallelEnv(ParallelEnv):
    """``n`` learning traders in the market game (see the module docstring).

    Args:
        n: learners.
        scenario, traders, policy: the game (as for :class:`ADLTraderEnv`).
        cash, wallet, max_split, max_leverage: each learner
            (:class:`experiments.envs.learners.Learners`); learners trade market
            ``i % markets``.
    """

    metadata = {"name": "adlgame_parallel_v0", "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        n: int = 4,
        scenario: Scenario | str | None = None,
        *,
        traders: int | None = None,
        policy: str | None = None,
        cash: float = 10_000.0,
        wallet: float = 10_000.0,
        max_split: int = 4,
        max_leverage: float = 10.0,
    ) -> None:
        if not (isinstance(n, int) and n >= 1):
            from market.errors import InputError

            raise InputError("n", "an integer >= 1 (learners)", n)
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.traders = traders
        self.policy = policy
        self.n = n
        self.possible_agents = [f"trader_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._learner_args = {
            "cash": cash,
            "wallet": wallet,
            "max_split": max_split,
            "max_leverage": max_leverage,
        }
        self._rng = np.random.default_rng()
        self.game: ADLGame | None = None
        self.learners: Learners | None = None

    @functools.cache  # noqa: B019  (PettingZoo's documented pattern)
    def observation_space(self, agent: str) -> spaces.Box:
        """Every learner sees :data:`experiments.envs.learners.OBS_FIELDS`."""
        return spaces.Box(-1e6, 1e6, (OBS_SIZE,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Box:
        """Every learner's four moves in ``[-1, 1]``."""
        return spaces.Box(-1.0, 1.0, (ACT_SIZE,), np.float32)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """Start a new game; returns every learner's observation and info."""
        if seed is not None:
            self._rng = np.random.default_rng(int(seed))
        game_seed = int(seed) if seed is not None else int(self._rng.integers(2**31 - 1))
        self.game = game_for(self.scenario, self.traders, self.policy, game_seed)
        markets = self.game.exchange.K
        self.learners = Learners(
            self.game, self.n, market=np.arange(self.n) % markets, **self._learner_args
        )
        self.agents = list(self.possible_agents)
        obs = self.learners.observe()
        return (
            {a: obs[i] for i, a in enumerate(self.possible_agents)},
            {a: self._info(i) for i, a in enumerate(self.possible_agents)},
        )

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Every live learner acts, then one game step; the usual five dicts."""
        if self.game is None or self.learners is None:
            raise RuntimeError("call reset() before step()")
        live = list(self.agents)
        a = np.zeros((self.n, ACT_SIZE))
        for name, act in actions.items():
            if name in live:
                a[self.possible_agents.index(name)] = np.asarray(act, dtype=np.float64)
        self.learners.act(a)
        self.game.step()
        reward = self.learners.after_step()
        obs = self.learners.observe()
        over = (not self.game.running) or self.game.t >= self.game.total_steps
        alive = self.learners.alive()
        idx = {a: self.possible_agents.index(a) for a in live}
        observations = {a: obs[i] for a, i in idx.items()}
        rewards = {a: float(reward[i]) for a, i in idx.items()}
        terminations = {a: bool(over or not alive[i]) for a, i in idx.items()}
        truncations = dict.fromkeys(live, False)
        infos = {a: self._info(i) for a, i in idx.items()}
        self.agents = [a for a in live if not terminations[a]]
        return observations, rewards, terminations, truncations, infos

    def _info(self, i: int) -> dict[str, Any]:
        assert self.game is not None and self.learners is not None
        return {
            "step": self.game.t,
            "wealth": float(self.learners.wealth()[i]),
            "haircut": float(self.learners.last_haircut[i]),
        }


__all__ = ["ADLParallelEnv"]
