"""Property tests of each mechanism in ``envs/mechanisms.py`` as a unit, and of switching.

Constants are the documented ones (docs/environments.md), written out, never read from
``MECHANISMS[...].params``; hand-computed single steps are in ``test_mechanism_constants.py``.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from vim_world.envs import KINDS, MECHANISM_NAMES, MECHANISMS, Noise, Objects, WorldConfig, mechanism_id, world
from vim_world.envs.mechanisms import SIZE_MAX, SIZE_MIN

import vim_world  # noqa: F401
from vim_world import testing as vt

N, K = 2, 4


def scene(n: int = N, k: int = K, **kwargs) -> st.SearchStrategy[tuple[Objects, Noise]]:
    return st.tuples(vt.object_states(n, k, **kwargs), vt.noises(n, k))


def run(name: str, objects: Objects, noise: Noise) -> Objects:
    out = MECHANISMS[name](objects, noise)
    for field, before, after in zip(Objects._fields, objects, out):
        assert after.shape == before.shape, f"{name} changed the shape of {field}"
    return out


def inner(objects: Objects, pos: np.ndarray) -> np.ndarray:
    """``(N, K)``: centres at least one radius from every wall (no wall contact)."""
    lo = objects.size[..., None]
    return np.all((pos >= lo) & (pos <= 1.0 - lo), -1)


# ----------------------------------------------------------------------------- registry


def test_registry() -> None:
    assert MECHANISM_NAMES == tuple(MECHANISMS)
    for name, mech in MECHANISMS.items():
        assert mech.name == name and mech.category in ("motion", "appearance", "interaction")
        assert mech.interacts == (mech.category == "interaction")
    assert [n for n, m in MECHANISMS.items() if m.stochastic] == ["random_walk"]
    with pytest.raises(ValueError, match="teleport"):
        mechanism_id("teleport")


@settings(max_examples=30)
@given(scene(), vt.noises(N, K))
def test_only_random_walk_uses_noise(sc: tuple[Objects, Noise], other: Noise) -> None:
    objects, noise = sc
    for name, mech in MECHANISMS.items():
        a, b = run(name, objects, noise), run(name, objects, other)
        same = all(np.array_equal(x, y) for x, y in zip(a, b))
        if mech.stochastic:
            assume(not np.array_equal(noise.normal, other.normal))
            assert not np.array_equal(a.vel, b.vel), f"{name} ignores its noise"
        else:
            assert same, f"{name} is not stochastic but depends on the noise"


@settings(max_examples=30)
@given(vt.world_configs(max_objects=5, tasks=("passive",)).flatmap(
    lambda c: st.tuples(st.just(c), vt.world_states(c, N), vt.object_states(N, c.total_objects),
                        st.lists(vt.noises(N, c.total_objects), min_size=1, max_size=4))
))  # fmt: skip
def test_non_interacting_mechanisms_are_independent(case: tuple) -> None:
    vt.check_independence(*case)


# ----------------------------------------------------------------------------- motion


@given(scene())
def test_still_keeps_everything(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    out = run("still", objects, noise)
    for field in ("pos", "size", "hue", "solid"):
        np.testing.assert_array_equal(getattr(out, field), getattr(objects, field))
    assert not out.vel.any() and not out.dsize.any()


@pytest.mark.parametrize(
    "name, step",
    [
        ("drift_right", (0.03, 0.0)),
        ("drift_left", (-0.03, 0.0)),
        ("drift_up", (0.0, -0.03)),
        ("drift_down", (0.0, 0.03)),
    ],
)  # y grows downwards: up is -y
@given(sc=scene())
def test_drift_moves_by_speed_times_direction(name: str, step: tuple[float, float], sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    step = np.asarray(step)
    out = run(name, objects, noise)
    np.testing.assert_allclose(out.pos, objects.pos + step)
    # In the world, an object against a wall stops there.
    config = WorldConfig(num_objects=K, mechanisms=(name,), switch_prob=0.0)
    state = world.WorldState(objects, np.zeros((N, K), np.int64), np.full((N, K), mechanism_id(name)),
                             np.ones((N, K), bool), np.zeros((N, K), bool), np.zeros((N, K), bool))  # fmt: skip
    moved = world.step(config, state, noise).objects
    free = inner(objects, objects.pos + step)
    np.testing.assert_allclose(moved.pos[free], (objects.pos + step)[free])
    lo = objects.size[..., None]
    np.testing.assert_allclose(moved.pos, np.clip(objects.pos + step, lo, 1.0 - lo))


@given(scene())
def test_bounce_preserves_speed_and_stays_inside(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    speed = 0.04
    out = run("bounce", objects, noise)
    np.testing.assert_allclose(np.linalg.norm(out.vel, axis=-1), speed)
    again = run("bounce", out, noise)  # speed stays the same over steps
    np.testing.assert_allclose(np.linalg.norm(again.vel, axis=-1), speed)
    vt.check_objects_in_bounds(out)
    norm = np.linalg.norm(objects.vel, axis=-1, keepdims=True)
    heading = np.where(norm > 1e-9, objects.vel / np.maximum(norm, 1e-9), np.sqrt(0.5))
    free = inner(objects, objects.pos + speed * heading)  # no wall ahead: a straight step
    np.testing.assert_allclose(out.pos[free], (objects.pos + speed * heading)[free])
    np.testing.assert_allclose(out.vel[free], (speed * heading)[free])


@given(scene())
def test_gravity_accelerates_downwards(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    g = 0.004  # downwards: +y
    out = run("gravity", objects, noise)
    vt.check_objects_in_bounds(out._replace(vel=np.clip(out.vel, -0.2, 0.2)))
    free = inner(objects, objects.pos + objects.vel + [0.0, g])
    np.testing.assert_allclose(out.vel[free], (objects.vel + [0.0, g])[free])
    floor = objects.pos[..., 1] + objects.vel[..., 1] + g > 1.0 - objects.size
    np.testing.assert_array_less(out.vel[..., 1][floor], 1e-12)  # bounced: now moving up


@given(scene())
def test_orbit_preserves_distance_to_centre(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    centre = np.array([0.5, 0.5])
    out = run("orbit", objects, noise)
    np.testing.assert_allclose(
        np.linalg.norm(out.pos - centre, axis=-1), np.linalg.norm(objects.pos - centre, axis=-1), atol=1e-12
    )
    moved = np.linalg.norm(objects.pos - centre, axis=-1) > 1e-6
    assert np.all(np.linalg.norm(out.vel, axis=-1)[moved] > 0)


@given(scene())
def test_random_walk_steps_by_sigma_noise(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    sigma = 0.02
    out = run("random_walk", objects, noise)
    free = inner(objects, objects.pos + sigma * noise.normal)
    np.testing.assert_allclose(out.pos[free], (objects.pos + sigma * noise.normal)[free])
    vt.check_objects_in_bounds(out)


# ----------------------------------------------------------------------------- appearance


@given(scene())
def test_color_cycle_only_changes_hue(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    rate = 0.06
    out = run("color_cycle", objects, noise)
    np.testing.assert_allclose(out.hue, np.mod(objects.hue + rate, 1.0))
    assert np.all((out.hue >= 0) & (out.hue < 1))
    for field in ("pos", "size", "solid"):
        np.testing.assert_array_equal(getattr(out, field), getattr(objects, field))


@given(scene(min_size=0.04, max_size=0.11))
def test_size_pulse_stays_in_range(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    p = {"rate": 0.006, "low": 0.04, "high": 0.11}
    out = objects
    for _ in range(12):
        prev = out
        out = run("size_pulse", out, noise)
        assert np.all((out.size >= p["low"]) & (out.size <= p["high"]))
        assert np.all(np.abs(out.size - prev.size) <= p["rate"] + 1e-12)
        np.testing.assert_allclose(out.dsize, out.size - prev.size)
        np.testing.assert_array_equal(out.pos, objects.pos)
    assert SIZE_MIN <= p["low"] < p["high"] <= SIZE_MAX


# ----------------------------------------------------------------------------- interaction


def _nearest(objects: Objects) -> np.ndarray:
    """``(N, K)`` index of each object's nearest other solid object (brute force)."""
    n, k = objects.size.shape
    out = np.empty((n, k), np.int64)
    for w in range(n):
        for i in range(k):
            d = [np.linalg.norm(objects.pos[w, j] - objects.pos[w, i]) if j != i and objects.solid[w, j] else np.inf
                 for j in range(k)]  # fmt: skip
            out[w, i] = int(np.argmin(d))
    return out


def _distance_to(pos: np.ndarray, objects: Objects, j: np.ndarray) -> np.ndarray:
    other = np.take_along_axis(objects.pos, j[..., None].repeat(2, -1), axis=1)
    return np.linalg.norm(pos - other, axis=-1)


@given(scene(k=3, max_size=0.08))
def test_follow_reduces_distance_to_nearest(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    speed = 0.025
    out = run("follow", objects, noise)
    j = _nearest(objects)
    before, after = _distance_to(objects.pos, objects, j), _distance_to(out.pos, objects, j)
    gap = before - objects.size - 1e-3
    assert np.all(after <= before + 1e-12)
    far = gap > 1e-9
    np.testing.assert_allclose((before - after)[far], np.minimum(speed, gap)[far], atol=1e-9)
    # It never closes in past its own radius (plus a margin) of its target's centre.
    assert np.all(after >= np.minimum(before, objects.size + 1e-3) - 1e-9)


@given(scene(k=3, max_size=0.08))
def test_flee_increases_distance_to_nearest(sc: tuple[Objects, Noise]) -> None:
    objects, noise = sc
    speed = 0.025
    out = run("flee", objects, noise)
    j = _nearest(objects)
    before, after = _distance_to(objects.pos, objects, j), _distance_to(out.pos, objects, j)
    apart = before > 1e-6
    np.testing.assert_allclose(after[apart], before[apart] + speed, rtol=1e-9)
    # In the world, away from the walls, the gain survives clipping.
    free = inner(objects, out.pos) & apart
    lo = objects.size[..., None]
    clipped = np.clip(out.pos, lo, 1.0 - lo)
    assert np.all(_distance_to(clipped, objects, j)[free] > before[free])


@given(scene(k=3, max_size=0.08))
def test_attract_pulls_towards_the_nearest_by_a_spring(sc: tuple[Objects, Noise]) -> None:
    """``v' = 0.99 v + 0.02 (x_nearest - x)``; away from the walls the object moves by ``v'``."""
    objects, noise = sc
    out = run("attract", objects, noise)
    j = _nearest(objects)
    nearest = np.take_along_axis(objects.pos, j[..., None].repeat(2, -1), axis=1)
    vel = 0.99 * objects.vel + 0.02 * (nearest - objects.pos)
    free = inner(objects, objects.pos + vel) & np.all(np.abs(vel) <= 0.2, -1)
    np.testing.assert_allclose(out.vel[free], vel[free], atol=1e-12)
    np.testing.assert_allclose(out.pos[free], (objects.pos + vel)[free], atol=1e-12)
    # The step depends on where the other objects are, not only on the object's own state.
    moved = objects._replace(pos=objects.pos.copy())
    moved.pos[:, 1:] = 1.0 - moved.pos[:, 1:]
    differs = np.abs(run("attract", moved, noise).vel[:, 0] - out.vel[:, 0]).max(-1) > 1e-9
    far = np.linalg.norm(nearest[:, 0] - objects.pos[:, 0], axis=-1) > 1e-3
    assert np.all(differs | ~far | np.isclose(moved.pos[:, 1:], objects.pos[:, 1:]).all((1, 2)))


def test_follow_and_flee_without_others_stay() -> None:
    objects = Objects(np.full((1, 2, 2), 0.5), np.zeros((1, 2, 2)), np.full((1, 2), 0.05), np.zeros((1, 2)),
                      np.zeros((1, 2)), np.array([[True, False]]))  # fmt: skip
    noise = Noise(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    for name in ("follow", "flee"):
        np.testing.assert_array_equal(run(name, objects, noise).pos[0, 0], [0.5, 0.5])


@settings(max_examples=40)
@given(
    st.floats(0.3, 0.7), st.floats(0.3, 0.7), st.floats(0.0, 2 * np.pi), st.floats(0.0, 0.07),
    st.floats(0.0, 2 * np.pi), st.floats(0.0, 2 * np.pi),
)  # fmt: skip
def test_swap_takes_the_others_heading(x: float, y: float, a: float, d: float, ha: float, hb: float) -> None:
    """Two touching objects (radius 0.05, centres ``d`` < 0.1 apart) swap headings."""
    speed = 0.04
    pos = np.array([[[x, y], [x + d * np.cos(a), y + d * np.sin(a)]]])
    vel = 0.03 * np.array([[[np.cos(ha), np.sin(ha)], [np.cos(hb), np.sin(hb)]]])
    objects = Objects(pos, vel, np.full((1, 2), 0.05), np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2), bool))
    out = run("swap_on_collision", objects, Noise(np.zeros((1, 2, 2)), np.zeros((1, 2, 2))))
    np.testing.assert_allclose(out.vel[0, 0], speed * vel[0, 1] / 0.03, atol=1e-12)
    np.testing.assert_allclose(out.vel[0, 1], speed * vel[0, 0] / 0.03, atol=1e-12)
    # Far apart: each keeps its own heading.
    apart = objects._replace(pos=np.array([[[0.2, 0.2], [0.8, 0.8]]]))
    out = run("swap_on_collision", apart, Noise(np.zeros((1, 2, 2)), np.zeros((1, 2, 2))))
    np.testing.assert_allclose(out.vel, speed * vel / 0.03, atol=1e-12)


# ----------------------------------------------------------------------------- switching


def configs_and_states(**kwargs) -> st.SearchStrategy[tuple[WorldConfig, world.WorldState, Noise]]:
    return vt.world_configs(max_objects=5, **kwargs).flatmap(
        lambda c: st.tuples(st.just(c), vt.world_states(c, N), vt.noises(N, c.total_objects))
    )


@given(configs_and_states())
def test_no_switching_when_switch_prob_is_zero(case: tuple) -> None:
    config, state, noise = case
    fixed = dataclasses.replace(config, switch_prob=0.0, switch_on=())
    np.testing.assert_array_equal(world.switch(fixed, state, noise.uniform, None), state.mechanism)


@given(configs_and_states())
def test_switching_respects_allowed_pairs(case: tuple) -> None:
    config, state, noise = case
    new = world.switch(config, state, noise.uniform, None)
    allowed = config.allowed_matrix[state.kind, new]
    assert np.all(allowed[state.switchable])
    np.testing.assert_array_equal(new[~state.switchable], state.mechanism[~state.switchable])
    if config.switch_prob == 1.0:  # every switchable object with an alternative moves off its mechanism
        alternatives = config.allowed_matrix[state.kind].sum(-1) > 1
        assert np.all((new != state.mechanism)[state.switchable & alternatives])


@given(configs_and_states(), st.data())
def test_interventions_override_allowed_pairs(case: tuple, data: st.DataObject) -> None:
    config, state, noise = case
    forced = data.draw(vt.noises(N, config.total_objects)).uniform[..., 0]
    forced = np.where(forced < 0.5, -1, (forced * 100).astype(np.int64) % len(MECHANISM_NAMES))
    new = world.switch(config, state, noise.uniform, forced)
    np.testing.assert_array_equal(new[forced >= 0], forced[forced >= 0])


@pytest.mark.parametrize("event", ["wall", "collision"])
@given(case=configs_and_states(tasks=("passive",)))
def test_event_switching(event: str, case: tuple) -> None:
    config, state, noise = case
    config = dataclasses.replace(config, switch_prob=0.0, switch_on=(event,))
    new = world.switch(config, state, noise.uniform, None)
    hit = getattr(state, event)
    alternatives = config.allowed_matrix[state.kind].sum(-1) > 1
    np.testing.assert_array_equal(new[~hit], state.mechanism[~hit])
    assert np.all((new != state.mechanism)[hit & alternatives])


def test_step_flags_walls_and_collisions() -> None:
    config = WorldConfig(num_objects=3, mechanisms=("drift_right",), switch_prob=0.0)
    pos = np.array([[[0.94, 0.5], [0.3, 0.3], [0.35, 0.3]]])
    objects = Objects(pos, np.zeros((1, 3, 2)), np.full((1, 3), 0.05), np.zeros((1, 3)), np.zeros((1, 3)),
                      np.ones((1, 3), bool))  # fmt: skip
    state = world.WorldState(objects, np.zeros((1, 3), np.int64), np.full((1, 3), mechanism_id("drift_right")),
                             np.ones((1, 3), bool), np.zeros((1, 3), bool), np.zeros((1, 3), bool))  # fmt: skip
    out = world.step(config, state, Noise(np.zeros((1, 3, 2)), np.zeros((1, 3, 2))))
    np.testing.assert_array_equal(out.wall, [[True, False, False]])
    np.testing.assert_array_equal(out.collision, [[False, True, True]])
    assert out.objects.pos[0, 0, 0] == pytest.approx(0.95)


@pytest.mark.parametrize("env_id", ["VimWorld/Passive-v0", "VimWorld/PassiveHeldout-v0", "VimWorld/Interact-v0"])
def test_env_mechanisms_stay_on_allowed_pairs(env_id: str) -> None:
    env = gym.make(env_id, obs_mode="state", switch_prob=0.3)
    config = env.unwrapped.config
    no_op = np.array([config.num_objects, 0])
    _, info = env.reset(seed=0)
    switches = 0
    for _ in range(150):
        assert np.all(config.allowed_matrix[info["kind"], info["mechanism"]])
        before = info["mechanism"]
        *_, info = env.step(no_op)
        switches += int(np.sum(info["mechanism"] != before))
    assert switches > 10  # switching did happen


def test_env_fixed_switching_and_interventions() -> None:
    env = gym.make("VimWorld/Passive-v0", obs_mode="state", switch_prob=0.0)
    _, info = env.reset(seed=3)
    first = info["mechanism"].copy()
    for _ in range(30):
        *_, info = env.step(np.array([4, 0]))
        np.testing.assert_array_equal(info["mechanism"], first)
    # Force a held-out pair: object 0 gets a mechanism its kind never has in training.
    config = env.unwrapped.config
    kind = info["kind"][0]
    banned = [m for m in config.mechanisms if not config.allowed_matrix[kind, mechanism_id(m)]]
    m = config.mechanisms.index(banned[0])
    *_, info = env.step(np.array([0, m]))
    assert MECHANISM_NAMES[info["mechanism"][0]] == banned[0] and KINDS[kind] in vim_world.envs.HELDOUT_PAIRS
