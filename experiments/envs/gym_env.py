"""A Gymnasium environment: one learning trader among the game's population.

The environment plays one game (:class:`experiments.game.model.ADLGame`) per episode, with
its whole population of passive traders, whales, flippers, Sybil owners and entrants, the
makers and the backstop, under the scenario's ADL policy; one extra owner, the learner
(:class:`experiments.envs.learners.Learners`), acts before every game step.

* observation: ``Box(13,)`` float32, the fields of
  :data:`experiments.envs.learners.OBS_FIELDS` (its position, PnL, leverage, the venue's
  ADL lights on its accounts, the fund's level, the crisis state, ...);
* action: ``Box(4,)`` in ``[-1, 1]``: exposure, entry reset, margin in or out, accounts
  used (the searched audit's moves, per step);
* reward: the change of its wealth (wallet plus equity) over the step, as a share of its
  starting wealth; everything the moves cost is in it;
* the episode ends (``terminated``) when the game's schedule ends or the learner's wealth
  is gone.

Determinism: ``reset(seed=s)`` plays the game of root seed ``s`` (the same prices, crises,
population and draws as ``adlgame run --seed s``), so the same seed and actions give the
same observations and rewards.  Without a seed the game's seed is drawn from the
environment's ``np_random``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from experiments.envs.learners import ACT_SIZE, OBS_FIELDS, OBS_SIZE, Learners
from experiments.game.model import ADLGame
from experiments.game.scenario import Scenario, load_scenario


def game_for(
    scenario: Scenario | str | None, traders: int | None, policy: str | None, seed: int
) -> ADLGame:
    """The game an environment plays: the scenario (default: the built-in default), with
    ``traders`` and ``policy`` overriding it, without the two-pass replay or the series."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if traders is not None:
        sc = sc.replace(**{"run.traders": int(traders)})
    return ADLGame(sc, seed=int(seed), policy=policy, two_pass=False, record=False)


class ADLTraderEnv(gym.Env):
    """One learning trader in the market game (see the module docstring).

    Args:
        scenario: a :class:`Scenario`, a scenario file or name, or None (the default).
        traders: the population's size (overrides the scenario's ``run.traders``).
        policy: the ADL policy (overrides the scenario's).
        cash, wallet, max_split, max_leverage, market: the learner
            (:class:`experiments.envs.learners.Learners`).
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (Gymnasium's class attribute)

    def __init__(
        self,
        scenario: Scenario | str | None = None,
        *,
        traders: int | None = None,
        policy: str | None = None,
        cash: float = 10_000.0,
        wallet: float = 10_000.0,
        max_split: int = 4,
        max_leverage: float = 10.0,
        market: int = 0,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.traders = traders
        self.policy = policy
        self._learner_args = {
            "cash": cash,
            "wallet": wallet,
            "max_split": max_split,
            "max_leverage": max_leverage,
            "market": market,
        }
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (OBS_SIZE,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACT_SIZE,), np.float32)
        self.game: ADLGame | None = None
        self.learners: Learners | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new game (seed ``seed``, or one drawn from ``np_random``)."""
        super().reset(seed=seed)
        game_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.game = game_for(self.scenario, self.traders, self.policy, game_seed)
        self.learners = Learners(self.game, 1, **self._learner_args)
        return self.learners.observe()[0], self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Act, then play one game step; returns (obs, reward, terminated, truncated, info)."""
        if self.game is None or self.learners is None:
            raise RuntimeError("call reset() before step()")
        self.learners.act(np.asarray(action, dtype=np.float64).reshape(1, ACT_SIZE))
        self.game.step()
        reward = float(self.learners.after_step()[0])
        obs = self.learners.observe()[0]
        done = (not self.game.running) or self.game.t >= self.game.total_steps
        terminated = bool(done or not self.learners.alive()[0])
        return obs, reward, terminated, False, self._info()

    def _info(self) -> dict[str, Any]:
        assert self.game is not None and self.learners is not None
        return {
            "step": self.game.t,
            "phase": self.game.phase,
            "wealth": float(self.learners.wealth()[0]),
            "haircut": float(self.learners.last_haircut[0]),
        }


__all__ = ["OBS_FIELDS", "ADLTraderEnv", "game_for"]
