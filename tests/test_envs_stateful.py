"""A stateful Hypothesis test of the envs: random valid actions and seeded resets, with invariants
checked after every rule (objects in bounds, a same-seed twin in lock-step, the native vector env
equal to a ``SyncVectorEnv`` of single envs, returned arrays never reused)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import SyncVectorEnv
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from vim_world.envs import env_ids

import vim_world  # noqa: F401
from vim_world import testing as vt

NUM_ENVS = 2
KEEP = 3
"""Transitions whose arrays are re-checked for reuse."""


class EnvMachine(RuleBasedStateMachine):
    """One env, its twin (same seeds, same actions), a native vector env and a sync reference."""

    def __init__(self) -> None:
        super().__init__()
        self.env: gym.Env | None = None
        self.results: dict[str, tuple[Any, ...]] = {}
        self.history: list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]] = []

    @initialize(env_id=st.sampled_from(env_ids()), obs_mode=st.sampled_from(["pixels", "state", "both"]),
                masks=st.booleans(), seed=vt.seeds())  # fmt: skip
    def build(self, env_id: str, obs_mode: str, masks: bool, seed: int) -> None:
        kwargs = dict(obs_mode=obs_mode, obs_size=32, masks=masks, max_episode_steps=7)
        self.env, self.twin = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
        self.vec = gym.make_vec(env_id, num_envs=NUM_ENVS, **kwargs)
        self.ref = SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(NUM_ENVS)])
        self.reset(seed)

    def _record(self, what: str, **results: tuple[Any, ...]) -> None:
        self.results = results
        fresh = [(a, a.copy()) for r in results.values() for a in vt.returned_arrays(r)]
        self.history = (self.history + [(what, fresh)])[-KEEP:]

    @precondition(lambda self: self.env is not None)
    @rule(seed=vt.seeds())
    def reset(self, seed: int) -> None:
        self._record(
            f"reset(seed={seed})",
            env=self.env.reset(seed=seed), twin=self.twin.reset(seed=seed),
            vec=self.vec.reset(seed=seed), ref=self.ref.reset(seed=seed),
        )  # fmt: skip

    @precondition(lambda self: self.env is not None)
    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        action = data.draw(vt.actions(self.env.action_space), label="action")
        actions = data.draw(vt.actions(self.vec.action_space), label="vector actions")
        env, twin = self.env.step(action), self.twin.step(action)
        if env[2] or env[3]:
            env, twin = self.env.reset(), self.twin.reset()
        self._record("step", env=env, twin=twin, vec=self.vec.step(actions), ref=self.ref.step(actions))

    @precondition(lambda self: self.env is not None)
    @invariant()
    def objects_in_bounds(self) -> None:
        env, vec = self.results["env"], self.results["vec"]
        vt.check_observation_in_bounds(self.env.observation_space, env[0], env[-1], "single env")
        vt.check_observation_in_bounds(self.vec.observation_space, vec[0], vec[-1], "vector env")

    @precondition(lambda self: self.env is not None)
    @invariant()
    def same_seed_same_trajectory(self) -> None:
        assert data_equivalence(self.results["env"], self.results["twin"], exact=True)

    @precondition(lambda self: self.env is not None)
    @invariant()
    def vector_equals_single_envs(self) -> None:
        assert data_equivalence(self.results["vec"], self.results["ref"], exact=True)

    @precondition(lambda self: self.env is not None)
    @invariant()
    def arrays_never_reused(self) -> None:
        *older, (_, latest) = self.history
        for what, arrays in older:
            for old, snapshot in arrays:
                assert np.array_equal(old, snapshot), f"an array returned by {what} changed later"
                assert not any(np.shares_memory(old, new) for new, _ in latest if new.size), (
                    f"an array returned by {what} shares memory with a later one"
                )

    def teardown(self) -> None:
        if self.env is not None:
            for env in (self.env, self.twin, self.vec, self.ref):
                env.close()


EnvMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
TestEnvMachine = EnvMachine.TestCase
