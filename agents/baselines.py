"""Baseline agents: uniformly random actions, and SB3 PPO trained on the real or imagined env.

Every agent here (and :class:`~vim_world.agents.mpc.MPCAgent`) has ``act(observations (B, ...))
-> actions (B, ...)`` and ``reset()``, so one evaluation loop runs them all.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from vim_world.imagination import Imagination
from vim_world.imagined_env import ImaginedVectorEnv
from vim_world.sb3 import as_sb3_vec_env


class RandomAgent:
    """Uniformly random actions of ``action_space`` (Discrete, MultiDiscrete or Box)."""

    def __init__(self, action_space: spaces.Space, seed: int = 0) -> None:
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, observations: np.ndarray) -> np.ndarray:
        n, space = len(observations), self.action_space
        if isinstance(space, spaces.Discrete):
            return space.start + self.rng.integers(space.n, size=n)
        if isinstance(space, spaces.MultiDiscrete):
            return self.rng.integers(space.nvec, size=(n, *space.nvec.shape))
        if isinstance(space, spaces.Box):
            return self.rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)
        raise TypeError(f"unsupported action space {space}")


class PPOAgent:
    """A trained SB3 PPO policy acting deterministically.

    Attributes:
        model: the SB3 ``PPO`` object.
        real_steps: real environment steps its training used.
    """

    def __init__(self, model: PPO, real_steps: int) -> None:
        self.model, self.real_steps = model, real_steps

    def reset(self) -> None:
        """Nothing to forget (the policy is feed-forward)."""

    def act(self, observations: np.ndarray) -> np.ndarray:
        return self.model.predict(observations, deterministic=True)[0]


class _ProgressBar(BaseCallback):
    """A tqdm bar over PPO's environment steps (SB3's own ``progress_bar`` needs ``rich``)."""

    def __init__(self, total: int, desc: str) -> None:
        super().__init__()
        self.total, self.desc, self.bar = total, desc, None

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", leave=False)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def _train(venv: VecEnv, steps: int, seed: int, ppo_kwargs: dict[str, Any]) -> PPO:
    options = {"n_steps": 256, "batch_size": 256, "learning_rate": 3e-4, "verbose": 0, **ppo_kwargs}
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", **options)
    model.learn(total_timesteps=steps, callback=_ProgressBar(steps, "PPO"))
    venv.close()
    return model


def train_ppo_real(
    env_id: str,
    steps: int,
    *,
    n_envs: int = 8,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    **ppo_kwargs: Any,
) -> PPOAgent:
    """PPO on the real env (state observations) for about ``steps`` real steps."""
    kwargs = {"obs_mode": "state", **(env_kwargs or {})}
    model = _train(make_vec_env(lambda: gym.make(env_id, **kwargs), n_envs=n_envs, seed=seed), steps, seed, ppo_kwargs)
    return PPOAgent(model, real_steps=int(model.num_timesteps))


def train_ppo_imagined(
    imagination: Imagination,
    env_id: str,
    steps: int,
    *,
    real_steps: int,
    n_envs: int = 8,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    **ppo_kwargs: Any,
) -> PPOAgent:
    """PPO inside :class:`~vim_world.imagined_env.ImaginedVectorEnv` for ``steps`` imagined steps:
    the ``n_envs`` imagined episodes advance in one batched model call per step (SB3 drives them
    through :func:`~vim_world.sb3.as_sb3_vec_env`), episodes start from encoded real resets and
    end by the learned termination head or the real task's time limit.

    ``real_steps`` is what the model's training data cost (imagined steps cost none).
    """
    venv = as_sb3_vec_env(ImaginedVectorEnv(imagination, env_id, n_envs, env_kwargs=env_kwargs, seed=seed))
    model = _train(venv, steps, seed, ppo_kwargs)  # PPO seeds the env: reset(seed) on its first reset
    return PPOAgent(model, real_steps=real_steps)
