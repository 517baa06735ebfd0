"""Each mechanism against the documented constants and directions (docs/environments.md), with
one-step results computed by hand.

Nothing here reads ``MECHANISMS[...].params``: the expected numbers are written out, so that a
wrong constant, a flipped direction or an interaction rule that forgets solidity fails a test
instead of agreeing with itself. Screen convention: ``x`` grows to the right, ``y`` downwards.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from vim_world.envs import MECHANISMS, Noise, Objects

# The table of docs/environments.md, "Mechanisms", written out by hand.
DOCUMENTED = {
    "still": {},
    "drift_right": {"direction": (1.0, 0.0), "speed": 0.03},
    "drift_left": {"direction": (-1.0, 0.0), "speed": 0.03},
    "drift_up": {"direction": (0.0, -1.0), "speed": 0.03},
    "drift_down": {"direction": (0.0, 1.0), "speed": 0.03},
    "bounce": {"speed": 0.04},
    "gravity": {"g": 0.004, "restitution": 0.85},
    "orbit": {"center": (0.5, 0.5), "angular_speed": 0.12},
    "random_walk": {"sigma": 0.02},
    "color_cycle": {"rate": 0.06},
    "size_pulse": {"rate": 0.006, "low": 0.04, "high": 0.11},
    "follow": {"speed": 0.025},
    "flee": {"speed": 0.025},
    "swap_on_collision": {"speed": 0.04},
    "size_oscillate": {"omega": 0.6, "mid": 0.07},
    "color_cycle_back": {"rate": -0.1},
    "attract": {"stiffness": 0.02, "damping": 0.99},
}
TOL = 1e-12  # float64 arithmetic on numbers of order 1: a few ulps


def objects(pos, vel=None, size=0.05, dsize=0.0, hue=0.0, solid=True) -> Objects:
    """One world of ``len(pos)`` objects; scalars broadcast to every object."""
    pos = np.asarray(pos, np.float64)[None]
    k = pos.shape[1]
    vel = np.zeros_like(pos) if vel is None else np.asarray(vel, np.float64)[None]
    full = lambda v, dtype=np.float64: np.broadcast_to(np.asarray(v, dtype), (1, k)).copy()  # noqa: E731
    return Objects(pos, vel, full(size), full(dsize), full(hue), full(solid, bool))


def step(name: str, obj: Objects, normal=None) -> Objects:
    k = obj.pos.shape[1]
    normal = np.zeros((1, k, 2)) if normal is None else np.asarray(normal, np.float64)[None]
    return MECHANISMS[name](obj, Noise(normal, np.zeros((1, k, 2))))


def test_registry_matches_the_documented_table() -> None:
    assert set(MECHANISMS) == set(DOCUMENTED)
    for name, params in DOCUMENTED.items():
        assert MECHANISMS[name].params == params, name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("drift_right", (0.53, 0.50)),
        ("drift_left", (0.47, 0.50)),
        ("drift_up", (0.50, 0.47)),  # up is -y on screen
        ("drift_down", (0.50, 0.53)),
        ("still", (0.50, 0.50)),
    ],
)
def test_drift_directions(name: str, expected: tuple[float, float]) -> None:
    out = step(name, objects([[0.5, 0.5]], vel=[[0.01, -0.02]]))
    np.testing.assert_allclose(out.pos[0, 0], expected, atol=TOL)
    np.testing.assert_allclose(out.vel[0, 0], np.subtract(expected, 0.5), atol=TOL)


def test_gravity_pulls_down_the_screen() -> None:
    out = step("gravity", objects([[0.5, 0.5], [0.3, 0.2]], vel=[[0.0, 0.0], [0.01, -0.01]]))
    np.testing.assert_allclose(out.vel[0], [[0.0, 0.004], [0.01, -0.006]], atol=TOL)
    np.testing.assert_allclose(out.pos[0], [[0.5, 0.504], [0.31, 0.194]], atol=TOL)


def test_gravity_floor_keeps_the_restitution_share_of_vertical_speed() -> None:
    # y: 0.94 + (0.01 + 0.004) = 0.954 lies past the floor at 1 - 0.05; reflected to 0.946,
    # vy = -0.014 * 0.85 = -0.0119; vx is untouched.
    out = step("gravity", objects([[0.5, 0.94]], vel=[[0.002, 0.01]]))
    np.testing.assert_allclose(out.pos[0, 0], [0.502, 0.946], atol=TOL)
    np.testing.assert_allclose(out.vel[0, 0], [0.002, -0.0119], atol=TOL)


def test_bounce_rescales_speed_and_reflects_off_walls() -> None:
    out = step("bounce", objects([[0.5, 0.5], [0.94, 0.5], [0.3, 0.3]], vel=[[0.03, 0.04], [0.01, 0.0], [0.0, 0.0]]))
    r = math.sqrt(0.5) * 0.04  # a zero velocity takes the diagonal
    np.testing.assert_allclose(out.vel[0], [[0.024, 0.032], [-0.04, 0.0], [r, r]], atol=TOL)
    np.testing.assert_allclose(out.pos[0], [[0.524, 0.532], [0.92, 0.5], [0.3 + r, 0.3 + r]], atol=TOL)


def test_orbit_turns_by_the_documented_angle_around_the_centre() -> None:
    out = step("orbit", objects([[0.7, 0.5], [0.5, 0.3]]))
    c, s = math.cos(0.12), math.sin(0.12)
    np.testing.assert_allclose(out.pos[0], [[0.5 + 0.2 * c, 0.5 + 0.2 * s], [0.5 + 0.2 * s, 0.5 - 0.2 * c]], atol=TOL)


def test_random_walk_steps_sigma_times_the_normal_draw() -> None:
    out = step("random_walk", objects([[0.5, 0.5], [0.06, 0.5]]), normal=[[1.0, -0.5], [-1.0, 0.0]])
    # the second object would end at x = 0.04 < 0.05: reflected to 0.06, its velocity reversed
    np.testing.assert_allclose(out.vel[0], [[0.02, -0.01], [0.02, 0.0]], atol=TOL)
    np.testing.assert_allclose(out.pos[0], [[0.52, 0.49], [0.06, 0.5]], atol=TOL)


def test_color_cycle_advances_hue_and_wraps() -> None:
    out = step("color_cycle", objects([[0.5, 0.5], [0.2, 0.2]], hue=[0.5, 0.97]))
    np.testing.assert_allclose(out.hue[0], [0.56, 0.03], atol=TOL)
    np.testing.assert_array_equal(out.pos[0], [[0.5, 0.5], [0.2, 0.2]])


def test_size_pulse_grows_shrinks_and_turns_at_the_bounds() -> None:
    obj = objects([[0.3, 0.3], [0.5, 0.5], [0.7, 0.7], [0.2, 0.8]], size=[0.05, 0.108, 0.042, 0.07],
                  dsize=[0.0, 0.006, -0.006, -0.006])  # fmt: skip
    out = step("size_pulse", obj)
    # 0.05 grows; 0.108 + 0.006 > 0.11 turns back; 0.042 - 0.006 < 0.04 turns up; 0.07 keeps shrinking
    np.testing.assert_allclose(out.size[0], [0.056, 0.102, 0.048, 0.064], atol=TOL)
    np.testing.assert_allclose(out.dsize[0], [0.006, -0.006, 0.006, -0.006], atol=TOL)


# Object 0 at (0.3, 0.5); a solid object far to its right (0.7, 0.5); a non-solid one nearer, to
# its left (0.2, 0.5). Interaction rules see solid objects only, so the one on the right counts.
SCENE = dict(pos=[[0.3, 0.5], [0.7, 0.5], [0.2, 0.5]], solid=[True, True, False])


def test_follow_heads_for_the_nearest_solid_object_only() -> None:
    out = step("follow", objects(**SCENE))
    np.testing.assert_allclose(out.pos[0, 0], [0.325, 0.5], atol=TOL)
    np.testing.assert_allclose(out.vel[0, 0], [0.025, 0.0], atol=TOL)


def test_flee_runs_from_the_nearest_solid_object_only() -> None:
    out = step("flee", objects(**SCENE))
    np.testing.assert_allclose(out.pos[0, 0], [0.275, 0.5], atol=TOL)


def test_follow_stops_short_of_its_target() -> None:
    # 0.06 apart, own radius 0.05 and a 0.001 margin: the step is 0.009, not the full 0.025
    out = step("follow", objects([[0.3, 0.5], [0.36, 0.5]]))
    np.testing.assert_allclose(out.pos[0, 0], [0.309, 0.5], atol=TOL)


def test_swap_on_collision_ignores_non_solid_objects() -> None:
    obj = objects([[0.5, 0.5], [0.55, 0.5]], vel=[[0.0, 0.03], [0.03, 0.0]], solid=[True, False])
    out = step("swap_on_collision", obj)
    np.testing.assert_allclose(out.vel[0, 0], [0.0, 0.04], atol=TOL)  # keeps its own heading
    np.testing.assert_allclose(out.vel[0, 1], [0.0, 0.04], atol=TOL)  # takes the solid one's


def test_follow_and_flee_stay_when_no_other_object_is_solid() -> None:
    # Object 1 is the only solid one: nothing to follow or flee, wherever the others are.
    obj = objects([[0.2, 0.2], [0.6, 0.7], [0.8, 0.3]], solid=[False, True, False])
    for name in ("follow", "flee"):
        np.testing.assert_array_equal(step(name, obj).pos[0, 1], [0.6, 0.7])


def test_bounce_reflects_only_an_object_that_crosses_the_wall():
    """Landing exactly on the wall (the centre at ``1 - radius``) is not a crossing: position and
    velocity are kept; one ulp further, the object is reflected (kills ``pos >= hi``)."""
    size, speed = 0.125, 0.04  # documented bounce speed
    hi = 1.0 - size
    x = hi - speed
    while x + speed < hi:  # the float whose step lands exactly on the wall
        x = np.nextafter(x, 1.0)
    while x + speed > hi:
        x = np.nextafter(x, 0.0)
    assert x + speed == hi
    out = step("bounce", objects([[x, 0.5]], vel=[[1.0, 0.0]], size=size))
    assert out.pos[0, 0, 0] == hi and out.vel[0, 0, 0] == speed
    crossed = step("bounce", objects([[np.nextafter(x, 1.0), 0.5]], vel=[[1.0, 0.0]], size=size))
    assert crossed.vel[0, 0, 0] == -speed and crossed.pos[0, 0, 0] < hi


def test_size_oscillate_one_step_by_hand():
    """docs/environments.md: ``dsize' = dsize - 4 sin^2(omega/2) (size - mid)``, ``size' = size + dsize'``
    with omega = 0.6, mid = 0.07; the object stays in place."""
    out = step("size_oscillate", objects([[0.5, 0.5]], size=0.09, dsize=0.001))
    dsize = 0.001 - 4 * math.sin(0.3) ** 2 * (0.09 - 0.07)  # = 0.001 - 0.0069854...
    assert abs(out.dsize[0, 0] - dsize) < TOL and abs(out.size[0, 0] - (0.09 + dsize)) < TOL
    assert np.array_equal(out.pos, [[[0.5, 0.5]]])


def test_attract_reads_the_other_object() -> None:
    """The same own state with the neighbour elsewhere gives another step: what a module that
    reads only its own object cannot know. ``v' = 0.99 v + 0.02 (x_other - x)``."""
    right = step("attract", objects([[0.5, 0.5], [0.7, 0.5]], vel=[[0.01, 0.0], [0.0, 0.0]]))
    above = step("attract", objects([[0.5, 0.5], [0.5, 0.3]], vel=[[0.01, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(right.vel[0, 0], [0.0139, 0.0], atol=TOL)
    np.testing.assert_allclose(right.pos[0, 0], [0.5139, 0.5], atol=TOL)
    np.testing.assert_allclose(above.vel[0, 0], [0.0099, -0.004], atol=TOL)
    np.testing.assert_allclose(above.pos[0, 0], [0.5099, 0.496], atol=TOL)
