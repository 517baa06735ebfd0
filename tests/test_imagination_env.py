"""The imagined env: Gymnasium checker, vector semantics, determinism, SB3 PPO inside it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from vim_world.envs import STATE_FEATURES
from vim_world.envs.simulator import goal_distance, steer_success
from vim_world.envs.world import AGENT, ZONE

from vim_world.imagination import Imagination
from vim_world.imagined_env import ImaginedEnv, ImaginedVectorEnv
from vim_world.model import VIM, preset

STEER = "VimWorld/Steer-v0"


@pytest.fixture(scope="module")
def im() -> Imagination:
    torch.manual_seed(0)
    cfg = preset("tiny-state", hidden=16, num_slots=4, state_dim=len(STATE_FEATURES), action_dim=5, reward_head=True)
    return Imagination(VIM(cfg).eval())


def test_single_imagined_env_passes_the_gymnasium_checker(im):
    env = ImaginedEnv(im, STEER, start_states=16)
    check_env(env, skip_render_check=True)


def test_vector_env_batches_worlds_and_truncates_then_autoresets(im):
    env = ImaginedVectorEnv(
        im, STEER, num_envs=6, max_episode_steps=3, success=lambda obs: np.zeros(len(obs), bool), start_states=16
    )
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for t in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and reward.shape == (6,) and reward.dtype == np.float64
        assert not terminated.any() and truncated.all() == (t == 2)
    obs, reward, _, truncated, _ = env.step(env.action_space.sample())  # the autoreset step
    assert (reward == 0).all() and not truncated.any()
    assert all(any(np.array_equal(o, s) for s in env._start_obs) for o in obs)


def test_reset_and_steps_are_deterministic_under_a_seed(im):
    env = ImaginedVectorEnv(im, STEER, num_envs=4, start_states=16)
    actions = np.array([0, 1, 2, 3])
    runs = []
    for seed in (5, 5, 6):
        obs, _ = env.reset(seed=seed)
        runs.append([obs] + [env.step(actions)[0] for _ in range(3)])
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_success_rule_terminates_episodes(im):
    env = ImaginedVectorEnv(im, STEER, num_envs=3, success=lambda obs: np.array([True, False, False]), start_states=8)
    env.reset(seed=0)
    _, _, terminated, _, _ = env.step(np.zeros(3, np.int64))
    assert terminated.tolist() == [True, False, False]


def test_termination_head_ends_episodes(im):
    """Without a success rule, terminations are draws from the termination head: a head whose
    logit is very large ends every episode, a very small one none."""
    env = ImaginedVectorEnv(im, STEER, num_envs=5, start_states=8)
    bias = im.model.task_heads.out[-1].bias  # outputs: reward, termination logit
    original = bias.detach().clone()
    try:
        for value, expected in ((50.0, True), (-50.0, False)):
            with torch.no_grad():
                bias[1] = value
            env.reset(seed=0)
            _, _, terminated, _, _ = env.step(np.zeros(5, np.int64))
            assert terminated.tolist() == [expected] * 5
    finally:
        with torch.no_grad():
            bias.copy_(original)


def greedy_steer(state: np.ndarray) -> int:
    """Drift along the larger offset to the goal zone (actions: still, up, down, left, right)."""
    dx, dy = state[ZONE, :2] - state[AGENT, :2]
    if abs(dx) > abs(dy):
        return 4 if dx > 0 else 3
    return 2 if dy > 0 else 1


def test_steer_success_rule_on_state_observations_matches_the_real_env():
    env = gym.make(STEER, obs_mode="state")
    obs, info = env.reset(seed=0)
    successes = 0
    for _ in range(150):
        obs, _, terminated, truncated, info = env.step(greedy_steer(obs))
        assert bool(steer_success(goal_distance(obs))) == info["success"]
        successes += info["success"]
        if terminated or truncated:
            obs, info = env.reset()
    env.close()
    assert successes >= 3


def test_invalid_actions_are_refused(im):
    env = ImaginedVectorEnv(im, STEER, num_envs=2, start_states=8)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid actions"):
        env.step(np.array([0, 7]))


def test_model_without_reward_head_is_refused():
    im = Imagination(VIM(preset("tiny-state", hidden=16, num_slots=4, state_dim=len(STATE_FEATURES))))
    with pytest.raises(ValueError, match="reward head"):
        ImaginedEnv(im, STEER)


def test_sb3_ppo_trains_inside_imagination(im):
    from vim_world.agents import train_ppo_imagined

    agent = train_ppo_imagined(im, STEER, steps=256, real_steps=0, n_envs=2, n_steps=128, batch_size=64, n_epochs=1)
    assert agent.model.num_timesteps == 256
    actions = agent.act(np.zeros((3, 4, len(STATE_FEATURES)), np.float32))
    assert actions.shape == (3,) and ((actions >= 0) & (actions < 5)).all()
