"""The actor-critic trained in imagination: lambda-returns, termination, learning, seeds, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from vim_world.agents import ActorCriticAgent, lambda_returns, train_actor_critic_imagined
from vim_world.agents.actor_critic import start_states
from vim_world.envs import STATE_FEATURES

from vim_world.data import collect
from vim_world.imagination import Imagination
from vim_world.model import VIM, preset

STEER = "VimWorld/Steer-v0"
FAST = dict(steps=3, horizon=3, batch_size=16, hidden=16, reset_states=16)


def tiny(**overrides) -> Imagination:
    """A small untrained state VIM for Steer (as tests/test_imagination_env.py builds it)."""
    torch.manual_seed(0)
    options = {"hidden": 16, "num_slots": 4, "state_dim": len(STATE_FEATURES), "action_dim": 5, "reward_head": True}
    return Imagination(VIM(preset("tiny-state", **{**options, **overrides})).eval())


def scripted_heads(im: Imagination, payoff: dict[int, tuple[float, float]]) -> Imagination:
    """Set the task heads by hand: action ``a`` earns ``payoff[a][0]`` and ends the episode with
    logit ``payoff[a][1]``; every other action earns 0 and never ends it (logit -20). Hidden unit
    ``a`` of the relation head is the indicator of action ``a`` (the pair terms read only it)."""
    head = im.model.task_heads
    d = head.first.in_features - im.config.action_dim
    hidden, out = head.out[0], head.out[-1]
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        out.bias[1] = -20.0
        for a, (reward, logit) in payoff.items():
            head.first.weight[a, d + a] = 1.0
            hidden.weight[a, a] = 1.0
            out.weight[0, a] = reward
            out.weight[1, a] = logit + 20.0
    return im


def reset_obs(n: int, env_id: str = STEER) -> np.ndarray:
    env = gym.make_vec(env_id, num_envs=n, obs_mode="state")
    obs, _ = env.reset(seed=123)
    env.close()
    return obs


def test_lambda_returns_match_a_hand_computed_case():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    ones = torch.ones(1, 3)
    # R_2 = 3 + .5 (.5 * 40 + .5 * 40) = 23; R_1 = 2 + .5 (.5 * 30 + .5 * 23) = 15.25;
    # R_0 = 1 + .5 (.5 * 20 + .5 * 15.25) = 9.8125
    torch.testing.assert_close(lambda_returns(rewards, ones, values, 0.5, 0.5), torch.tensor([[9.8125, 15.25, 23.0]]))
    # lam = 0: one-step TD targets r_t + discount V_{t+1}
    torch.testing.assert_close(lambda_returns(rewards, ones, values, 0.5, 0.0), torch.tensor([[11.0, 17.0, 23.0]]))
    # lam = 1, no discount: the rewards to go plus the last value
    torch.testing.assert_close(lambda_returns(rewards, ones, values, 1.0, 1.0), torch.tensor([[46.0, 45.0, 43.0]]))


def test_a_zero_continuation_stops_bootstrapping():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    continues = torch.tensor([[1.0, 0.0, 1.0]])  # the episode ends after action 1
    low = lambda_returns(rewards, continues, torch.tensor([[0.0, 4.0, -100.0, -100.0]]), 0.9, 0.5)
    high = lambda_returns(rewards, continues, torch.tensor([[0.0, 4.0, 100.0, 100.0]]), 0.9, 0.5)
    assert low[0, 1] == high[0, 1] == 2.0  # the reward alone, whatever the states after the end
    torch.testing.assert_close(low[0, 0], torch.tensor(1.0 + 0.9 * (0.5 * 4.0 + 0.5 * 2.0)))
    assert low[0, 0] == high[0, 0] and low[0, 2] != high[0, 2]
    half = lambda_returns(rewards, torch.full((1, 3), 0.5), torch.zeros(1, 4), 1.0, 1.0)
    torch.testing.assert_close(half, torch.tensor([[1.0 + 0.5 * (2.0 + 0.5 * 3.0), 2.0 + 0.5 * 3.0, 3.0]]))


def test_lambda_returns_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="values"):
        lambda_returns(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3), 0.9, 0.9)


def test_the_actor_learns_the_rewarded_action():
    im = scripted_heads(tiny(), {2: (1.0, -20.0)})
    agent = train_actor_critic_imagined(
        im, STEER, steps=60, horizon=3, batch_size=64, hidden=32, actor_lr=3e-3, reset_states=32, seed=0
    )
    assert isinstance(agent, ActorCriticAgent)
    assert (agent.act(reset_obs(32)) == 2).all()
    first, last = agent.history["return"][0], agent.history["return"][-1]
    assert last > first + 0.5  # the imagined returns rose as the policy concentrated on action 2
    assert agent.history["entropy"][-1] < 0.5 * agent.history["entropy"][0]
    # as a proposer for MPC it imagines sequences of mostly that action, from any number of objects
    held_out = im.for_num_objects(5)
    states = held_out.encode(torch.as_tensor(reset_obs(4, "VimWorld/SteerHeldout-v0")[:, None]))
    proposals = agent.proposer(held_out, num=8)(states, 6, torch.Generator().manual_seed(0))
    assert proposals.shape == (4, 8, 6) and proposals.dtype == torch.int64
    assert (proposals == 2).float().mean() > 0.9


@pytest.mark.parametrize(("ends", "best"), [(True, 1), (False, 2)])
def test_the_termination_head_cuts_off_a_rewarding_action(ends, best):
    """Action 1 pays 0.3 at every step, forever; action 2 pays 1 and, with ``ends``, ends the
    episode. With the continuation from the termination head, action 1 is worth about
    0.3 / (1 - 0.9) = 3 against action 2's 1; without the ending, action 2 is worth 10."""
    im = scripted_heads(tiny(), {2: (1.0, 20.0 if ends else -20.0), 1: (0.3, -20.0)})
    agent = train_actor_critic_imagined(
        im, STEER, steps=100, horizon=5, batch_size=64, hidden=32, discount=0.9, actor_lr=1e-2, reset_states=32
    )
    assert (agent.act(reset_obs(32)) == best).all()


def test_the_same_seed_gives_the_same_agent():
    im = tiny()
    obs = reset_obs(16)
    agents = [train_actor_critic_imagined(im, STEER, seed=s, **FAST) for s in (7, 7, 8)]
    states = [a.actor.state_dict() for a in agents]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    assert agents[0].history == agents[1].history
    np.testing.assert_array_equal(agents[0].act(obs), agents[1].act(obs))


def test_start_states_are_the_resets_and_every_valid_data_state(tmp_path):
    data = collect(STEER, tmp_path / "d", episodes=2, episode_len=5, num_envs=2, env_kwargs={"obs_mode": "state"})
    _, pool, obs_space, space = start_states(tiny(), STEER, data=data, reset_states=3)
    assert pool.batch_size == 3 + 2 * 5 and pool.z.shape[1] == 4
    assert obs_space.shape == (4, len(STATE_FEATURES)) and space == gym.spaces.Discrete(5)
    _, pool, _, _ = start_states(tiny(), STEER, data=data, reset_states=0)
    assert pool.batch_size == 10
    with pytest.raises(ValueError, match="objects"):  # Steer data, SteerHeldout's 5 objects
        start_states(tiny(), "VimWorld/SteerHeldout-v0", data=data, reset_states=3)
    agent = train_actor_critic_imagined(tiny(), STEER, data=data, **FAST)
    assert agent.imagined_steps == 3 * 16 * 3


def test_the_agent_acts_on_real_observations_with_extra_objects():
    agent = train_actor_critic_imagined(tiny(), STEER, **FAST)
    held_out = reset_obs(6, "VimWorld/SteerHeldout-v0")  # 5 objects: it reads the first 4
    np.testing.assert_array_equal(agent.act(held_out), agent.act(held_out[:, :4]))
    assert agent.act(held_out).dtype == np.int64 and set(agent.act(held_out)) <= set(range(5))
    with pytest.raises(ValueError, match="observations"):
        agent.act(held_out[:, :3])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": 0}, "horizon"),
        ({"steps": 0}, "steps"),
        ({"batch_size": True}, "batch_size"),
        ({"discount": 1.5}, "discount"),
        ({"lam": -0.1}, "lam"),
        ({"entropy": -1.0}, "entropy"),
        ({"actor_lr": 0.0}, "actor_lr"),
        ({"target_decay": 1.0}, "target_decay"),
        ({"reset_states": 0}, "no start states"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_actor_critic_imagined(tiny(), STEER, **{**FAST, **kwargs})


def test_a_model_without_reward_head_or_actions_is_refused():
    with pytest.raises(ValueError, match="reward head"):
        train_actor_critic_imagined(tiny(reward_head=False), STEER, **FAST)
    with pytest.raises(ValueError, match="action_dim=0"):
        train_actor_critic_imagined(tiny(action_dim=0), STEER, **FAST)
    with pytest.raises(TypeError, match="Imagination"):
        train_actor_critic_imagined(tiny().model, STEER, **FAST)


def test_the_critic_values_real_states_and_imagined_latents_alike():
    im = tiny()
    agent = train_actor_critic_imagined(im, STEER, **FAST)
    held_out = reset_obs(6, "VimWorld/SteerHeldout-v0")  # 5 objects: the critic reads the first 4
    values = agent.value(held_out)
    assert values.shape == (6,)
    torch.testing.assert_close(values, agent.critic(torch.as_tensor(held_out[:, :4])).squeeze(-1))
    latents = im.encode(torch.as_tensor(held_out[:, None]))  # (6, 5, D), one step of context
    decoded, _ = im.decode(latents.z[None])  # leading dims (1, 6)
    torch.testing.assert_close(agent.latent_value(im)(latents.z[None]), agent.value(decoded))
    with pytest.raises(ValueError, match="observations"):
        agent.value(held_out[:, :3])
