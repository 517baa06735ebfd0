"""The world's own dynamics as a reference predictor: the state behind observed features, and
futures sampled from it that match the world's where its laws are deterministic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from vim_world.envs.config import WorldConfig
from vim_world.envs.mechanisms import Noise, mechanism_id
from vim_world.envs.world import INIT_DRAWS, at_wall, initial_state, state_features, state_from_features, step

import vim_world  # noqa: F401  (registers the envs)
from vim_world.batch import Batch
from vim_world.collection import collect
from vim_world.data import open_dataset
from vim_world.loading import SequenceLoader
from vim_world.world_reference import WorldSampler

V1 = ("still", "gravity", "random_walk", "color_cycle", "size_oscillate", "color_cycle_back")
TOL = 1e-5  # float32 features (eps 1.2e-7) carried through a few steps of the laws


def _noise(rng: np.random.Generator, shape: tuple[int, int]) -> Noise:
    return Noise(rng.standard_normal((*shape, 2)), rng.random((*shape, 2)))


@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(0, 6))
def test_the_state_behind_the_features_steps_as_the_world_does(seed, steps):
    rng = np.random.default_rng(seed)
    config = WorldConfig(num_objects=4, mechanisms=V1, switch_prob=0.3)
    state = initial_state(config, rng.random((3, 4, INIT_DRAWS)))
    for _ in range(steps):
        state = step(config, state, _noise(rng, (3, 4)))
    rebuilt = state_from_features(state_features(state), state.mechanism)
    np.testing.assert_allclose(state_features(rebuilt), state_features(state), atol=TOL, rtol=0)
    np.testing.assert_array_equal(rebuilt.kind, state.kind)
    np.testing.assert_array_equal(rebuilt.wall, state.wall)
    noise = _noise(rng, (3, 4))
    ahead, rebuilt_ahead = step(config, state, noise), step(config, rebuilt, noise)
    np.testing.assert_array_equal(rebuilt_ahead.mechanism, ahead.mechanism)
    np.testing.assert_allclose(state_features(rebuilt_ahead), state_features(ahead), atol=TOL, rtol=0)


def test_an_object_against_the_far_wall_keeps_its_wall_contact_through_float32_features():
    config = WorldConfig(num_objects=1, mechanisms=("still", "gravity"), switch_prob=0.0, switch_on=("wall",))
    size = 0.06
    state = initial_state(config, np.random.default_rng(0).random((1, 1, INIT_DRAWS)))
    objects = state.objects._replace(pos=np.array([[[1.0 - size, 0.5]]]), size=np.array([[size]]))
    state = replace(state, objects=objects, mechanism=np.array([[mechanism_id("still")]]), wall=at_wall(objects))
    assert state.wall.all()
    rebuilt = state_from_features(state_features(state), state.mechanism)
    assert rebuilt.wall.all()
    noise = _noise(np.random.default_rng(1), (1, 1))
    switched = mechanism_id("gravity")  # the only other mechanism: the wall contact triggers the switch
    assert step(config, rebuilt, noise).mechanism == step(config, state, noise).mechanism == switched


def test_bad_shapes_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"features must be \(N, K, 13\), got \(2, 3, 5\)"):
        state_from_features(np.zeros((2, 3, 5)), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"mechanism must be \(N, K\) = \(2, 3\), got \(2, 4\)"):
        state_from_features(np.zeros((2, 3, 13)), np.zeros((2, 4), int))


@pytest.fixture(scope="module")
def fixed_world(tmp_path_factory):
    """Passive-v1 states without switching: every object keeps one mechanism."""
    path = collect("VimWorld/Passive-v1", tmp_path_factory.mktemp("wr") / "d", episodes=16, episode_len=12, seed=3,
                   num_envs=8, env_kwargs={"obs_mode": "state", "switch_prob": 0.0})  # fmt: skip
    dataset = open_dataset(path)
    loader = SequenceLoader(dataset, batch_size=16, seq_len=12, mode="state", seed=0)
    batch = loader.batch_at(0)
    return dataset, Batch(obs=batch.obs, mechanism=batch.mechanism)


def test_futures_match_the_data_wherever_the_law_is_deterministic(fixed_world):
    dataset, batch = fixed_world
    sampler = WorldSampler.for_dataset(dataset.meta)
    assert sampler.config.switch_prob == 0.0 and sampler.config.mechanisms == V1
    context, horizon = 4, 8
    futures = sampler.predict(batch, context, horizon, 3, generator=torch.Generator().manual_seed(0)).obs
    assert futures.shape == (16, 3, horizon, 4, 13) and futures.dtype == batch.obs.dtype
    truth = batch.obs[:, context : context + horizon, None].transpose(1, 2)  # (B, 1, H, K, S)
    random = batch.mechanism[:, context - 1] == mechanism_id("random_walk")
    assert 0 < int(random.sum()) < random.numel()
    error = (futures - truth).abs().amax((1, 2, 4))  # (B, K)
    assert float(error[~random].max()) <= TOL
    assert float(error[random].min()) > 1e-3  # the walk's own noise is drawn again
    # Samples differ only on the random walk. Two samples sit at other places in the arrays, where
    # numpy's vectorised cos / sin may round the last bit differently: a tolerance, not equality.
    spread = (futures[:, 0] - futures[:, 1]).abs().amax((1, 3))  # (B, K)
    assert float(spread[~random].max()) <= TOL and float(spread[random].min()) > 1e-3


def test_one_generator_seed_gives_the_same_futures(fixed_world):
    dataset, batch = fixed_world
    sampler = WorldSampler.for_dataset(dataset.meta)
    draw = lambda s: sampler.predict(batch, 3, 4, 2, generator=torch.Generator().manual_seed(s)).obs  # noqa: E731
    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))


def test_data_the_world_cannot_replay_is_refused_naming_why(fixed_world):
    dataset, batch = fixed_world
    with pytest.raises(ValueError, match=r"needs data of a VimWorld env, got env_id='CartPole-v1'"):
        WorldSampler.for_dataset({**dataset.meta, "env_id": "CartPole-v1"})
    with pytest.raises(ValueError, match=r"replays no actions: data collected with policy='random'"):
        WorldSampler.for_dataset({**dataset.meta, "policy": "random"})
    with pytest.raises(ValueError, match=r"passive worlds only, got task='steer'"):
        WorldSampler.for_dataset({**dataset.meta, "env_id": "VimWorld/Steer-v0"})
    with pytest.raises(ValueError, match=r"cannot find env_id='VimWorld/Nowhere-v0'"):
        WorldSampler.for_dataset({**dataset.meta, "env_id": "VimWorld/Nowhere-v0"})
    with pytest.raises(ValueError, match=r"cannot rebuild 'VimWorld/Passive-v1' from env_kwargs: .*'gravity_strength'"):
        WorldSampler.for_dataset({**dataset.meta, "env_kwargs": {"gravity_strength": 2.0}})
    sampler = WorldSampler.for_dataset(dataset.meta)
    with pytest.raises(ValueError, match=r"needs state windows \(B, T, K, S\) with mechanisms, got obs \(16, 12, 4, 13\) and mechanism None"):  # fmt: skip
        sampler.predict(Batch(obs=batch.obs), 3, 4)
    with pytest.raises(ValueError, match=r"replays no actions"):
        sampler.predict(Batch(obs=batch.obs, mechanism=batch.mechanism, actions=torch.zeros(16, 12, 10)), 3, 4)
    for context in (0, 13):
        with pytest.raises(ValueError, match=rf"context must be in \[1, 12\] \(the window's steps\), got {context}"):
            sampler.predict(batch, context, 4)
    with pytest.raises(ValueError, match=r"n_samples must be >= 1, got 0"):
        sampler.predict(batch, 3, 4, 0)
