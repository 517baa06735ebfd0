"""End-to-end smoke: SB3 PPO trains on the control task (state observations, flattened)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import vim_world  # noqa: F401

pytest.importorskip("torch")


@pytest.mark.slow
def test_ppo_trains_on_steer() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.wrappers.FlattenObservation(gym.make("VimWorld/Steer-v0", obs_mode="state")))
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    logged = model.logger.name_to_value
    for key in ("train/loss", "train/value_loss", "train/policy_gradient_loss", "train/entropy_loss"):
        assert key in logged and np.isfinite(logged[key]), key
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    assert len(env.get_episode_rewards()) >= 1 and np.all(np.isfinite(env.get_episode_rewards()))
