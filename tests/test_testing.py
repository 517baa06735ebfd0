"""``vim_world.testing``: the strategies produce what they promise, and every check passes on the
real envs and fails on an env broken in the way it guards against."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vim_world.envs import Mechanism, MechanismWorldEnv, WorldConfig, world
from vim_world.envs.mechanisms import follow, mechanism_id

import vim_world  # noqa: F401
from vim_world import testing as vt

PASSIVE_ID, STEER_ID = "VimWorld/Passive-v0", "VimWorld/Steer-v0"


# ----------------------------------------------------------------------------- strategies


@settings(max_examples=15)
@given(vt.world_configs(max_objects=4), vt.seeds(), st.data())
def test_world_configs_build_working_envs(config: WorldConfig, seed: int, data: st.DataObject) -> None:
    env = MechanismWorldEnv(**vt.config_kwargs(config))
    assert env.config == config
    acts = data.draw(vt.action_sequences(env.action_space, max_size=6))
    vt.check_in_bounds(env, acts, seed=seed)


@given(vt.world_configs().flatmap(lambda c: st.tuples(st.just(c), vt.world_states(c, 3))))
def test_world_states_respect_config(case: tuple[WorldConfig, world.WorldState]) -> None:
    config, state = case
    vt.check_objects_in_bounds(state.objects)
    assert state.kind.shape == state.mechanism.shape == (3, config.total_objects)
    sw = state.switchable
    assert np.all(config.allowed_matrix[state.kind, state.mechanism][sw])
    assert np.all(np.isin(state.kind[sw], config.kind_ids))


@given(vt.object_states(2, 5, solid=None), vt.noises(2, 5))
def test_object_states_and_noises(objects: vim_world.envs.Objects, noise: vim_world.envs.Noise) -> None:
    vt.check_objects_in_bounds(objects)
    assert objects.pos.shape == (2, 5, 2) and objects.solid.dtype == bool
    assert noise.uniform.shape == (2, 5, 2) and np.all((noise.uniform >= 0) & (noise.uniform < 1))


SPACES = [
    gym.spaces.Discrete(5, start=-2),
    gym.spaces.MultiDiscrete([[3, 4], [2, 5]], start=[[1, 0], [0, -3]]),
    gym.spaces.MultiBinary(4),
    gym.spaces.Box(-1.0, 2.0, (3,), np.float32),
    gym.spaces.Box(0, 9, (2, 2), np.int64),
    gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),  # unbounded: drawn through sample()
    gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(0, 1, (2,))}),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
@settings(max_examples=20)
@given(data=st.data())
def test_actions_are_in_their_space(space: gym.spaces.Space, data: st.DataObject) -> None:
    for action in data.draw(vt.action_sequences(space, min_size=1, max_size=5)):
        assert action in space, action


# ----------------------------------------------------------------------------- checks pass


def test_checks_pass_on_real_envs() -> None:
    env = gym.make(STEER_ID, obs_mode="both", masks=True)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(70)]  # past max_episode_steps = 60
    vt.check_in_bounds(env, acts, seed=1)
    vt.check_fresh_arrays(env, acts, seed=1)
    vt.check_deterministic(lambda: gym.make(STEER_ID, obs_mode="both"), acts, seed=2)
    vec = gym.make_vec(STEER_ID, num_envs=3, max_episode_steps=9)
    batch = [vec.action_space.sample() for _ in range(20)]
    vt.check_fresh_arrays(vec, batch, seed=0)
    vt.check_vector_matches_single(vec, [gym.make(STEER_ID, max_episode_steps=9) for _ in range(3)], batch, seed=4)


# ----------------------------------------------------------------------------- checks fail


class SharedBuffer(gym.ObservationWrapper):
    """Returns the same array object every step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.buffer = np.zeros(env.observation_space.shape, env.observation_space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.buffer[...] = observation
        return self.buffer


class GlobalNoise(gym.ObservationWrapper):
    """Draws from numpy's global generator: not reproducible under ``reset(seed=...)``."""

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return (observation + np.random.uniform(0, 1e-3, observation.shape)).astype(np.float32)


class Escapes(gym.Wrapper):
    """Reports object 0 outside the arena after the third step."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, ...]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        if self.t > 3:
            info["state"] = info["state"].copy()
            info["state"][0, 0] = 1.2
        return obs, reward, terminated, truncated, info


class OffByOneSeed(gym.Wrapper):
    """Seeds itself with ``seed + 1``."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=None if seed is None else seed + 1, options=options)


def test_check_fresh_arrays_catches_a_shared_buffer() -> None:
    env = SharedBuffer(gym.make(PASSIVE_ID, obs_mode="state"))
    with pytest.raises(AssertionError, match="changed|shares memory"):
        vt.check_fresh_arrays(env, [np.array([4, 0])] * 3, seed=0)


def test_check_deterministic_catches_global_randomness() -> None:
    with pytest.raises(AssertionError, match="differ"):
        vt.check_deterministic(lambda: GlobalNoise(gym.make(PASSIVE_ID, obs_mode="state")), [np.array([4, 0])] * 3)


def test_check_in_bounds_catches_an_escaped_object() -> None:
    with pytest.raises(AssertionError, match=r"after step 3: object x\[0\] = 1.2"):
        vt.check_in_bounds(Escapes(gym.make(PASSIVE_ID, obs_mode="state")), [np.array([4, 0])] * 6, seed=0)
    with pytest.raises(AssertionError, match="pos"):
        objects = vim_world.envs.Objects(np.full((1, 1, 2), 0.99), np.zeros((1, 1, 2)), np.full((1, 1), 0.05),
                                         np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1), bool))  # fmt: skip
        vt.check_objects_in_bounds(objects)


def test_check_vector_matches_single_catches_a_seed_mismatch() -> None:
    vec = gym.make_vec(PASSIVE_ID, num_envs=2)
    singles = [gym.make(PASSIVE_ID), OffByOneSeed(gym.make(PASSIVE_ID))]
    with pytest.raises(AssertionError, match="observations at reset"):
        vt.check_vector_matches_single(vec, singles, [vec.action_space.sample()], seed=0)
    with pytest.raises(ValueError, match="3 single envs"):
        vt.check_vector_matches_single(vec, singles + singles[:1], [], seed=0)


def _objects(pos: list[list[float]]) -> vim_world.envs.Objects:
    k = len(pos)
    return vim_world.envs.Objects(np.array([pos]), np.zeros((1, k, 2)), np.full((1, k), 0.05), np.zeros((1, k)),
                                  np.zeros((1, k)), np.ones((1, k), bool))  # fmt: skip


def test_check_independence_catches_a_hidden_interaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mechanism that claims not to interact but follows its nearest neighbour is caught."""
    config = WorldConfig(num_objects=3, mechanisms=("still",), switch_prob=0.0)
    objects = _objects([[0.3, 0.5], [0.6, 0.5], [0.9, 0.9]])
    others = _objects([[0.3, 0.5], [0.3, 0.8], [0.1, 0.1]])  # object 0 kept; 1 and 2 moved
    state = world.WorldState(objects, np.zeros((1, 3), np.int64), np.full((1, 3), mechanism_id("still")),
                             np.ones((1, 3), bool), np.zeros((1, 3), bool), np.zeros((1, 3), bool))  # fmt: skip
    noise = vim_world.envs.Noise(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)))
    vt.check_independence(config, state, others, [noise] * 3)  # the real "still" passes
    sneaky = list(world._MECHANISM_LIST)
    sneaky[mechanism_id("still")] = Mechanism("still", follow, {"speed": 0.025})
    monkeypatch.setattr(world, "_MECHANISM_LIST", sneaky)
    with pytest.raises(AssertionError, match=r"object 0 \(mechanism \['still'\]\) changed its pos at step 0"):
        vt.check_independence(config, state, others, [noise] * 3)
