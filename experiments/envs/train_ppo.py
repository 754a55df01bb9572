"""Train a learning trader with Stable-Baselines3's PPO, then compare it on held-out games.

An example of the environments with a standard RL library; the library is an optional extra,
not a dependency of adlgame's core::

    .venv/bin/pip install -e ".[rl]"        # stable-baselines3 and PyTorch
    .venv/bin/python -m experiments.envs.train_ppo --steps 50000 --policy hyperliquid

It trains PPO on :class:`experiments.envs.ADLTraderEnv` (one learner among the default
scenario's 2,000 traders; ``--traders`` to change) on games of seeds drawn from ``--seed``,
then plays the trained policy, doing nothing, and uniform random moves on held-out games
(seeds 10,001 ..) and prints each one's mean episode return (the learner's wealth change as a
share of its starting wealth) with its standard error.  ``--policy`` picks the venue's ADL
rule, so the same training run against two rules shows whether the rule changes what pays.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

#: The first seed of the held-out games.
HELD_OUT = 10_001


def evaluate(
    make_env: Callable[[], object], act: Callable[[np.ndarray], np.ndarray], episodes: int
) -> tuple[float, float]:
    """Mean episode return of ``act`` (observation -> action) over held-out games, and its
    standard error."""
    returns = []
    for i in range(episodes):
        env = make_env()
        obs, _ = env.reset(seed=HELD_OUT + i)  # type: ignore[attr-defined]
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))  # type: ignore[attr-defined]
            total += float(r)
            done = term or trunc
        returns.append(total)
    arr = np.array(returns)
    se = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return float(arr.mean()), se


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate, print; returns the exit code (2 when the RL extra is missing)."""
    p = argparse.ArgumentParser(prog="python -m experiments.envs.train_ppo", description=__doc__)
    p.add_argument("--steps", type=int, default=50_000, help="PPO training steps")
    p.add_argument("--policy", default=None, help="the venue's ADL rule (default: scenario's)")
    p.add_argument("--traders", type=int, default=None, help="population size")
    p.add_argument("--episodes", type=int, default=5, help="held-out games per policy")
    p.add_argument("--seed", type=int, default=1, help="seed of training and of PPO")
    args = p.parse_args(argv)
    try:
        from stable_baselines3 import PPO
    except ImportError:
        print(
            'train_ppo: needs the RL extra: .venv/bin/pip install -e ".[rl]" '
            "(stable-baselines3 and PyTorch)",
            file=sys.stderr,
        )
        return 2
    from experiments.envs import ADLTraderEnv

    def make_env() -> ADLTraderEnv:
        return ADLTraderEnv(traders=args.traders, policy=args.policy)

    env = make_env()
    env.reset(seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, verbose=0)
    model.learn(total_timesteps=args.steps)
    rng = np.random.default_rng(args.seed)
    rows = {
        "trained PPO": lambda o: model.predict(o, deterministic=True)[0],
        "do nothing": lambda o: np.zeros(4, np.float32),
        "random moves": lambda o: rng.uniform(-1, 1, 4).astype(np.float32),
    }
    print(f"held-out games {HELD_OUT}..{HELD_OUT + args.episodes - 1}, policy {args.policy}")
    for name, act in rows.items():
        mean, se = evaluate(make_env, act, args.episodes)
        print(f"{name:<14} mean return {mean:+.4f} (se {se:.4f})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
