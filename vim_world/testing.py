"""Hypothesis strategies and invariant checks for mechanism worlds.

For users who add mechanisms, worlds or envs and want the same guarantees our own tests give.
Hypothesis is a dependency of ``vim-world`` (not only of its tests), so this module imports on
a plain install.

Strategies (all return ``hypothesis`` search strategies):

- :func:`world_configs`: valid :class:`~vim_world.envs.WorldConfig` s;
- :func:`object_states`: batched :class:`~vim_world.envs.Objects` inside the arena;
- :func:`mechanism_assignments`: mechanism ids that respect a config's allowed (kind, mechanism) pairs;
- :func:`world_states`: whole :class:`~vim_world.envs.world.WorldState` s for a config;
- :func:`noises`: per-step :class:`~vim_world.envs.Noise`;
- :func:`actions` / :func:`action_sequences`: valid actions of any Gymnasium space.

Invariant checks are plain functions that raise ``AssertionError`` with a message saying what broke
and where (usable inside or outside pytest and Hypothesis):

- :func:`check_objects_in_bounds` (raw states), :func:`check_observation_in_bounds` (one
  transition) and :func:`check_in_bounds` (an env over a rollout);
- :func:`check_deterministic`: the same seed and actions give the same trajectory;
- :func:`check_independence`: a non-interacting object ignores every other object;
- :func:`check_vector_matches_single`: a vector env equals N single envs step for step;
- :func:`check_fresh_arrays`: returned arrays are never reused or shared across steps.

Example::

    from hypothesis import given
    from vim_world import testing as vt

    @given(vt.world_configs(), vt.seeds())
    def test_my_world(config, seed):
        env = MechanismWorldEnv(**config.kwargs())  # or gym.make(...)
        vt.check_in_bounds(env, [env.action_space.sample() for _ in range(20)], seed=seed)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import SyncVectorEnv, VectorEnv
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vim_world.envs import world
from vim_world.envs.config import KINDS, OBJECT_KINDS, OBS_MODES, STEER_ACTIONS, SWITCH_EVENTS, TASKS, WorldConfig
from vim_world.envs.mechanisms import (
    MECHANISM_NAMES,
    MECHANISMS,
    SIZE_MAX,
    SIZE_MIN,
    SPEED_MAX,
    Noise,
    Objects,
    mechanism_id,
)
from vim_world.envs.world import STATE_FEATURES, WorldState

__all__ = [
    "action_sequences", "actions", "check_deterministic", "check_fresh_arrays", "check_in_bounds",
    "check_independence", "check_objects_in_bounds", "check_observation_in_bounds",
    "check_vector_matches_single", "config_kwargs", "returned_arrays",
    "mechanism_assignments", "noises", "object_states", "seeds", "world_configs", "world_states",
]  # fmt: skip

BOUNDS_TOL = 1e-6
"""Slack allowed on every bound (float32 features, float64 arithmetic)."""

_X, _Y, _SIZE = STATE_FEATURES.index("x"), STATE_FEATURES.index("y"), STATE_FEATURES.index("size")
_INTERACTING = np.array([m.interacts for m in MECHANISMS.values()])


# =========================================================================== strategies


def seeds() -> st.SearchStrategy[int]:
    """Seeds accepted by ``env.reset(seed=...)``."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def _subset(items: Sequence[str], min_size: int = 1, max_size: int | None = None) -> st.SearchStrategy[tuple[str, ...]]:
    """Non-repeating subsets of ``items``, in ``items`` order."""
    return st.lists(st.sampled_from(list(items)), min_size=min_size, max_size=max_size, unique=True).map(
        lambda chosen: tuple(x for x in items if x in chosen)
    )


@st.composite
def world_configs(
    draw: st.DrawFn,
    *,
    max_objects: int = 6,
    mechanisms: Sequence[str] = MECHANISM_NAMES,
    tasks: Sequence[str] = TASKS,
    obs_modes: Sequence[str] = OBS_MODES,
    obs_sizes: Sequence[int] = (32, 48, 64),
    masks: bool | None = None,
) -> WorldConfig:
    """Valid world configurations.

    Args:
        max_objects: most ordinary objects (1 to 16).
        mechanisms: the mechanisms a config may choose from.
        tasks, obs_modes, obs_sizes: the choices for those fields (small sizes keep tests fast).
        masks: force ``masks`` on or off; None draws it.
    """
    mechs = draw(_subset(mechanisms))
    kinds = draw(_subset(OBJECT_KINDS))
    restricted = draw(_subset(kinds, min_size=0))
    allowed = {kind: draw(_subset(mechs)) for kind in restricted} or None
    return WorldConfig(
        num_objects=draw(st.integers(1, max_objects)),
        mechanisms=mechs,
        kinds=kinds,
        allowed=allowed,
        switch_prob=draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0), st.just(1.0))),
        switch_on=draw(_subset(SWITCH_EVENTS, min_size=0)),
        obs_mode=draw(st.sampled_from(list(obs_modes))),
        obs_size=draw(st.sampled_from(list(obs_sizes))),
        render_size=draw(st.sampled_from(list(obs_sizes))),
        masks=draw(st.booleans()) if masks is None else masks,
        task=draw(st.sampled_from(list(tasks))),
    )


def config_kwargs(config: WorldConfig) -> dict[str, Any]:
    """The keyword arguments that rebuild ``config`` (for ``gym.make(id, **kwargs)`` or the env
    classes): every init field of the dataclass."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}


def _unit(shape: tuple[int, ...], *, exclude_max: bool = False) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0, exclude_max=exclude_max, allow_subnormal=False))


@st.composite
def object_states(
    draw: st.DrawFn,
    num_worlds: int = 1,
    num_objects: int = 4,
    *,
    min_size: float = SIZE_MIN,
    max_size: float = SIZE_MAX,
    max_speed: float = SPEED_MAX,
    solid: bool | None = True,
) -> Objects:
    """Batched object states ``(N, K, ...)`` that satisfy :func:`check_objects_in_bounds`.

    Args:
        num_worlds, num_objects: N and K.
        min_size, max_size: range of radii.
        max_speed: bound on each velocity component.
        solid: every object solid (True) or not (False), or drawn per object (None).
    """
    n, k = num_worlds, num_objects
    size = min_size + (max_size - min_size) * draw(_unit((n, k)))
    pos = size[..., None] + (1.0 - 2.0 * size[..., None]) * draw(_unit((n, k, 2)))
    vel = max_speed * (2.0 * draw(_unit((n, k, 2))) - 1.0)
    dsize = 0.01 * (2.0 * draw(_unit((n, k))) - 1.0)
    hue = draw(_unit((n, k), exclude_max=True))
    if solid is None:
        solid_arr = draw(hnp.arrays(np.bool_, (n, k)))
    else:
        solid_arr = np.full((n, k), solid)
    return Objects(pos, vel, size, dsize, hue, solid_arr)


@st.composite
def mechanism_assignments(draw: st.DrawFn, config: WorldConfig, kinds: np.ndarray) -> np.ndarray:
    """Mechanism ids ``(same shape as kinds)``, each allowed for its object's kind by ``config``.

    Args:
        config: gives the allowed (kind, mechanism) pairs (:attr:`WorldConfig.allowed_matrix`).
        kinds: int array of kind ids (indices into ``KINDS``) of kinds that ``config`` allows
            at least one mechanism for.
    """
    kinds = np.asarray(kinds)
    out = np.empty(kinds.shape, np.int64)
    for index, kind in np.ndenumerate(kinds):
        allowed = np.flatnonzero(config.allowed_matrix[kind])
        if allowed.size == 0:
            raise ValueError(f"config allows no mechanism for kind {KINDS[kind]!r}")
        out[index] = draw(st.sampled_from(allowed.tolist()))
    return out


@st.composite
def world_states(draw: st.DrawFn, config: WorldConfig, num_worlds: int = 1) -> WorldState:
    """Whole world states for ``config``: objects in bounds, kinds from ``config.kinds``,
    mechanisms on allowed pairs, and the steer task's goal zone (index 0, not solid) and agent
    (index 1, driven by a ``STEER_ACTIONS`` mechanism) where ``config.task == "steer"``."""
    n, k = num_worlds, config.total_objects
    objects = draw(object_states(n, k))
    kind = np.asarray(draw(hnp.arrays(np.int64, (n, k), elements=st.sampled_from(config.kind_ids.tolist()))))
    switchable = np.ones((n, k), bool)
    solid = objects.solid.copy()
    if config.task == "steer":
        kind[:, world.ZONE], kind[:, world.AGENT] = KINDS.index("zone"), KINDS.index("square")
        solid[:, world.ZONE] = False
        switchable[:, : world.AGENT + 1] = False
    mech = draw(mechanism_assignments(config, np.where(switchable, kind, config.kind_ids[0])))
    if config.task == "steer":
        steer = [mechanism_id(m) for m in STEER_ACTIONS]
        mech[:, world.ZONE] = mechanism_id("still")
        mech[:, world.AGENT] = draw(hnp.arrays(np.int64, (n,), elements=st.sampled_from(steer)))
    wall = draw(hnp.arrays(np.bool_, (n, k)))
    collision = draw(hnp.arrays(np.bool_, (n, k)))
    return WorldState(objects._replace(solid=solid), kind, mech, switchable, wall, collision)


@st.composite
def noises(draw: st.DrawFn, num_worlds: int = 1, num_objects: int = 4) -> Noise:
    """Per-step noise ``(N, K, 2)``: normals (bounded to ±4) and uniforms in [0, 1)."""
    shape = (num_worlds, num_objects, 2)
    normal = draw(hnp.arrays(np.float64, shape, elements=st.floats(-4.0, 4.0, allow_subnormal=False)))
    return Noise(normal, draw(_unit(shape, exclude_max=True)))


def actions(space: spaces.Space) -> st.SearchStrategy[Any]:
    """Valid actions of ``space``, in the space's own dtype.

    Discrete, MultiDiscrete, MultiBinary and bounded Box spaces are drawn element-wise (so
    Hypothesis can shrink them); any other space through ``space.sample()`` from a drawn seed.
    """
    if isinstance(space, spaces.Discrete):
        start, n = int(space.start), int(space.n)
        return st.integers(start, start + n - 1).map(lambda a: space.dtype.type(a))
    if isinstance(space, spaces.MultiDiscrete):
        nvec, start = space.nvec, space.start
        return st.tuples(*(st.integers(0, int(n) - 1) for n in nvec.reshape(-1))).map(
            lambda a: (np.asarray(a, space.dtype).reshape(nvec.shape) + start).astype(space.dtype)
        )
    if isinstance(space, spaces.MultiBinary):
        return hnp.arrays(space.dtype, space.shape, elements=st.integers(0, 1))
    if isinstance(space, spaces.Box) and space.is_bounded("both"):
        unit = hnp.arrays(np.float64, space.shape, elements=st.floats(0.0, 1.0, allow_subnormal=False))
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        if np.issubdtype(space.dtype, np.integer):
            return unit.map(lambda u: np.floor(low + u * (high - low + 1)).clip(low, high).astype(space.dtype))
        return unit.map(lambda u: np.clip((low + u * (high - low)).astype(space.dtype), space.low, space.high))

    def sample(seed: int) -> Any:
        sampler = copy.deepcopy(space)
        sampler.seed(seed)
        return sampler.sample()

    return seeds().map(sample)


def action_sequences(space: spaces.Space, min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[list[Any]]:
    """Lists of valid actions of ``space`` (a single env's or a vector env's batched space)."""
    return st.lists(actions(space), min_size=min_size, max_size=max_size)


# =========================================================================== checks


def check_objects_in_bounds(objects: Objects, tol: float = BOUNDS_TOL) -> None:
    """Assert that every object lies in the arena: centre in ``[size, 1 - size]``, radius in
    ``[SIZE_MIN, SIZE_MAX]``, velocity components within ``±SPEED_MAX``, hue in ``[0, 1]``, all
    finite."""
    for name, value in objects._asdict().items():
        if name != "solid" and not np.all(np.isfinite(value)):
            raise AssertionError(f"non-finite {name}: {value}")
    size = objects.size
    _assert_within("size", size, SIZE_MIN, SIZE_MAX, tol)
    _assert_within("pos", objects.pos, size[..., None], 1.0 - size[..., None], tol)
    _assert_within("vel", objects.vel, -SPEED_MAX, SPEED_MAX, tol)
    _assert_within("hue", objects.hue, 0.0, 1.0, tol)


def _assert_within(name: str, value: np.ndarray, low: Any, high: Any, tol: float) -> None:
    low_b, high_b = np.broadcast_arrays(value, low, high)[1:]
    bad = (value < low_b - tol) | (value > high_b + tol)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{name}{list(where)} = {float(value[where]):.6g} is outside "
            f"[{float(low_b[where]):.6g}, {float(high_b[where]):.6g}]"
        )


def check_observation_in_bounds(
    observation_space: spaces.Space, obs: Any, info: dict[str, Any], when: str = "observation"
) -> None:
    """Assert that ``obs`` is in ``observation_space`` and that every object of
    ``info["state"]`` (``(..., K, S)`` features, single or batched) lies in the arena."""
    if obs not in observation_space:
        raise AssertionError(f"{when}: observation is not in {observation_space}")
    state = np.asarray(info["state"], np.float64)
    size = state[..., _SIZE]
    try:
        _assert_within("size", size, SIZE_MIN, SIZE_MAX, BOUNDS_TOL)
        for col, axis in ((_X, "x"), (_Y, "y")):
            _assert_within(f"object {axis}", state[..., col], size, 1.0 - size, BOUNDS_TOL)
    except AssertionError as err:
        raise AssertionError(f"{when}: {err}") from None


def check_in_bounds(env: gym.Env, actions: Iterable[Any], *, seed: int | None = None) -> None:
    """Reset ``env`` with ``seed`` and step it through ``actions`` (resetting when an episode
    ends); after every reset and step, assert that the observation is in the observation space
    and that every object of ``info["state"]`` lies in the arena (centre in ``[size, 1 - size]``,
    radius in ``[SIZE_MIN, SIZE_MAX]``). Works for single envs only."""
    obs, info = env.reset(seed=seed)
    check_observation_in_bounds(env.observation_space, obs, info, "after reset")
    for t, action in enumerate(actions):
        obs, _, terminated, truncated, info = env.step(action)
        check_observation_in_bounds(env.observation_space, obs, info, f"after step {t}")
        if terminated or truncated:
            obs, info = env.reset()
            check_observation_in_bounds(env.observation_space, obs, info, f"after the reset at step {t}")


def _assert_equal(a: Any, b: Any, what: str) -> None:
    if not data_equivalence(a, b, exact=True):
        raise AssertionError(f"{what} differ:\n{a!r}\n!=\n{b!r}")


def _rollout(env: gym.Env | VectorEnv, actions: Sequence[Any], seed: int | None) -> list[tuple[Any, ...]]:
    """``[(obs, info), (obs, reward, terminated, truncated, info), ...]``, resetting a single
    env when an episode ends (vector envs reset themselves)."""
    out: list[tuple[Any, ...]] = [env.reset(seed=seed)]
    for action in actions:
        result = env.step(action)
        out.append(result)
        if not isinstance(env, VectorEnv) and (result[2] or result[3]):
            out.append(env.reset())
    return out


def check_deterministic(make_env: Callable[[], gym.Env | VectorEnv], actions: Sequence[Any], seed: int = 0) -> None:
    """Assert that the same seed and actions give the same trajectory: two envs from
    ``make_env`` run side by side, and the first one run again after ``reset(seed=seed)``,
    agree exactly on observations, rewards, terminations, truncations and infos."""
    first, second = make_env(), make_env()
    try:
        a = _rollout(first, actions, seed)
        b = _rollout(second, actions, seed)
        c = _rollout(first, actions, seed)
    finally:
        first.close()
        second.close()
    for label, other in (("a second env with the same seed", b), ("the same env reseeded", c)):
        if len(a) != len(other):
            raise AssertionError(f"{label} ran {len(other)} resets and steps, not {len(a)}")
        for t, (x, y) in enumerate(zip(a, other)):
            _assert_equal(x, y, f"transition {t} of {label}")


def check_independence(config: WorldConfig, state: WorldState, others: Objects, noise: Sequence[Noise] | Noise) -> None:
    """Assert that every object whose mechanism does not interact ignores all other objects.

    The check runs :func:`vim_world.envs.world.step` from ``state`` and from a copy in which every
    object except ``i`` is replaced by ``others`` (same shapes as ``state.objects``), with
    switching fixed (``switch_prob=0``, no events) and the same ``noise`` (one ``Noise`` per
    step), and asserts that object ``i`` follows the same trajectory in both, for every object
    ``i`` whose mechanism has ``interacts=False``.
    """
    steps = [noise] if isinstance(noise, Noise) else list(noise)
    fixed = dataclasses.replace(config, switch_prob=0.0, switch_on=())
    n, k = state.kind.shape
    for i in range(k):
        independent = ~_INTERACTING[state.mechanism[:, i]]  # (N,) worlds where i does not interact
        if not independent.any():
            continue
        keep = np.zeros((n, k), bool)
        keep[:, i] = True
        perturbed = Objects(
            *(np.where(keep[(...,) + (None,) * (a.ndim - 2)], a, b) for a, b in zip(state.objects, others))
        )
        a = dataclasses.replace(state)
        b = dataclasses.replace(state, objects=perturbed)
        for t, step_noise in enumerate(steps):
            a = world.step(fixed, a, step_noise)
            b = world.step(fixed, b, step_noise)
            for name, x, y in zip(Objects._fields, a.objects, b.objects):
                xi, yi = x[independent, i], y[independent, i]
                if not np.array_equal(xi, yi):
                    mech = [MECHANISM_NAMES[m] for m in state.mechanism[independent, i]]
                    raise AssertionError(
                        f"object {i} (mechanism {mech}) changed its {name} at step {t} when only "
                        f"the other objects changed: {xi!r} != {yi!r}"
                    )
            _assert_equal(a.mechanism[independent, i], b.mechanism[independent, i], f"object {i}'s mechanism")


def check_vector_matches_single(
    vector_env: VectorEnv, single_envs: Sequence[gym.Env], actions: Sequence[Any], seed: int = 0
) -> None:
    """Assert that ``vector_env`` (reset with ``seed``) equals Gymnasium's ``SyncVectorEnv``
    over ``single_envs`` (env ``i`` reset with ``seed + i``) step for step, autoresets included:
    observations, rewards, terminations, truncations and infos, compared with
    ``gymnasium.utils.env_checker.data_equivalence``. ``actions`` are batched actions. Closes
    neither env set."""
    if len(single_envs) != vector_env.num_envs:
        raise ValueError(f"got {len(single_envs)} single envs for a vector env of {vector_env.num_envs}")
    reference = SyncVectorEnv([(lambda e=e: e) for e in single_envs], copy=True)
    a = _rollout(vector_env, actions, seed)
    b = _rollout(reference, actions, seed)
    names = ("observations", "rewards", "terminations", "truncations", "infos")
    for t, (x, y) in enumerate(zip(a, b)):
        labels = names[:1] + names[-1:] if t == 0 else names
        for label, u, v in zip(labels, x, y):
            _assert_equal(u, v, f"{label} at {'reset' if t == 0 else f'step {t - 1}'}")


def returned_arrays(tree: Any) -> list[np.ndarray]:
    """Every numpy array in a nest of tuples, lists and dicts."""
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, dict):
        return [a for v in tree.values() for a in returned_arrays(v)]
    if isinstance(tree, (tuple, list)):
        return [a for v in tree for a in returned_arrays(v)]
    return []


def check_fresh_arrays(env: gym.Env | VectorEnv, actions: Iterable[Any], *, seed: int | None = None) -> None:
    """Assert that no array ``env`` returns (observations, rewards, flags, infos) is reused:
    no two arrays from different resets or steps share memory, and no array changes after it
    was returned."""
    returned: list[tuple[str, np.ndarray, np.ndarray]] = []

    def record(result: tuple[Any, ...], when: str) -> None:
        fresh = returned_arrays(result)
        for name, old, snapshot in returned:
            if not np.array_equal(old, snapshot, equal_nan=old.dtype.kind in "fc"):
                raise AssertionError(f"an array returned {name} changed when the env was {when}")
            for new in fresh:
                if new.size and old.size and np.shares_memory(old, new):
                    raise AssertionError(f"an array returned {when} shares memory with one returned {name}")
        returned.extend((when, a, a.copy()) for a in fresh)

    record(env.reset(seed=seed), "reset")
    for t, action in enumerate(actions):
        result = env.step(action)
        record(result, f"stepped ({t})")
        if not isinstance(env, VectorEnv) and (result[2] or result[3]):
            record(env.reset(), f"reset after step {t}")
