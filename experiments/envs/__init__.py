"""Standard environments for learning traders in the market game.

:class:`~experiments.envs.gym_env.ADLTraderEnv` (Gymnasium; one learner) and
:class:`~experiments.envs.parallel_env.ADLParallelEnv` (PettingZoo; several learners at
once) wrap :class:`experiments.game.model.ADLGame`; :mod:`.learners` holds the learners'
accounts, moves, observations and rewards shared by both.  ``gymnasium.make("adlgame/Trader-v0")``
builds the single-learner one.  ``train_ppo.py`` trains a policy with Stable-Baselines3
(``pip install -e ".[rl]"``; not a dependency of the core).
"""

from __future__ import annotations

import gymnasium as gym

from experiments.envs.gym_env import ADLTraderEnv
from experiments.envs.learners import ACT_SIZE, OBS_FIELDS, OBS_SIZE, Learners
from experiments.envs.parallel_env import ADLParallelEnv

if "adlgame/Trader-v0" not in gym.registry:
    gym.register(id="adlgame/Trader-v0", entry_point="experiments.envs.gym_env:ADLTraderEnv")

__all__ = ["ACT_SIZE", "OBS_FIELDS", "OBS_SIZE", "ADLParallelEnv", "ADLTraderEnv", "Learners"]
