"""Planning with VIM: the Imagination adapter, the known steer reward, MPC in the real env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from vim_world.agents import CEM, ImaginationReturns, MPCAgent
from vim_world.agents.evaluation import run_episodes
from vim_world.agents.tasks import steer_reward
from vim_world.envs import STATE_FEATURES

from vim_world.imagination import Imagination
from vim_world.model import VIM, preset

SPACE = gym.spaces.Discrete(5)


@pytest.fixture(scope="module")
def im() -> Imagination:
    torch.manual_seed(0)
    cfg = preset("tiny-state", hidden=16, num_slots=4, state_dim=len(STATE_FEATURES), action_dim=5, reward_head=True)
    return Imagination(VIM(cfg).eval())


def observations(n: int, env_id: str = "VimWorld/Steer-v0") -> np.ndarray:
    env = gym.make_vec(env_id, num_envs=n, obs_mode="state")
    obs, _ = env.reset(seed=0)
    env.close()
    return obs


@pytest.mark.parametrize("use_task_reward", [False, True])
def test_adapter_returns_one_value_per_candidate_and_future(im, use_task_reward):
    model = ImaginationReturns(im, SPACE, n_samples=3, reward_fn=steer_reward if use_task_reward else None)
    states = model.encode(observations(2))
    actions = torch.randint(0, 5, (2, 6, 4))
    runs = [model.returns(states, actions, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert runs[0].shape == (2, 6, 3) and torch.isfinite(runs[0]).all()
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_adapter_sums_discounted_reward_head_outputs_while_the_episode_lasts(im):
    model = ImaginationReturns(im, SPACE, n_samples=2, discount=0.5, sample_z=False)
    states = model.encode(observations(1))
    actions = torch.randint(0, 5, (1, 1, 3))
    rollout = im.rollout(states, torch.nn.functional.one_hot(actions, 5).float(), n_samples=2, sample_z=False, seed=0)
    p = rollout.terminations
    alive = torch.stack([torch.ones_like(p[..., 0]), 1 - p[..., 0], (1 - p[..., 0]) * (1 - p[..., 1])], -1)
    expected = (rollout.rewards * alive * torch.tensor([1.0, 0.5, 0.25])).sum(-1)
    torch.testing.assert_close(model.returns(states, actions, torch.Generator().manual_seed(0)), expected)


def test_terminal_value_adds_the_discounted_value_of_the_last_state_while_alive(im):
    states = ImaginationReturns(im, SPACE).encode(observations(2))
    actions = torch.randint(0, 5, (2, 3, 4))

    def value(z: torch.Tensor) -> torch.Tensor:  # any function of the final latents (..., K, D)
        return z.sum((-1, -2))

    plain = ImaginationReturns(im, SPACE, n_samples=2, discount=0.5)
    valued = ImaginationReturns(im, SPACE, n_samples=2, discount=0.5, terminal_value=value)
    vectors = torch.nn.functional.one_hot(actions, 5).float()
    rollout = im.rollout(states, vectors, n_samples=2, seed=0)
    alive = torch.prod(1 - rollout.terminations, -1)
    expected = plain.returns(states, actions, torch.Generator().manual_seed(0)) + 0.5**4 * alive * value(
        rollout.z[..., -1, :, :]
    )
    torch.testing.assert_close(valued.returns(states, actions, torch.Generator().manual_seed(0)), expected)


def test_steer_reward_equals_the_env_reward_without_collisions():
    env = gym.make("VimWorld/Steer-v0", obs_mode="state")
    obs, _ = env.reset(seed=3)
    checked = 0
    for t in range(60):
        after, reward, terminated, truncated, _ = env.step(int(t % 5))
        bumped = env.unwrapped._sim.state.collision[0, 1]
        if not bumped:
            assert float(steer_reward(torch.as_tensor(obs), torch.as_tensor(after))) == pytest.approx(reward, abs=1e-4)
            checked += 1
        obs = after
        if terminated or truncated:
            break
    assert checked >= 5


@pytest.mark.parametrize("env_id", ["VimWorld/Steer-v0", "VimWorld/SteerHeldout-v0"])
def test_mpc_with_vim_acts_in_the_real_env(im, env_id):
    k = observations(1, env_id).shape[1]
    agent = MPCAgent(
        CEM(3, 8, iterations=1), ImaginationReturns(im.for_num_objects(k), SPACE, n_samples=2), replan_every=3
    )
    stats = run_episodes(agent, env_id, 2, seed=0)
    assert stats.returns.shape == (2,) and np.isfinite(stats.returns).all()


def test_adapter_refuses_a_model_without_actions():
    im = Imagination(VIM(preset("tiny-state", hidden=16, num_slots=4, state_dim=len(STATE_FEATURES))))
    with pytest.raises(ValueError, match="trained with actions"):
        ImaginationReturns(im, SPACE)
