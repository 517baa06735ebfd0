"""The v1 passive worlds: their mechanisms, their compositional split, and the v0 ids they supersede."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from vim_world.envs import MECHANISMS, Noise, Objects, mechanism_id
from vim_world.envs.registration import HELDOUT_PAIRS_V1, PASSIVE_MECHANISMS_V1, SUPERSEDED, TRAIN_PAIRS_V1

import vim_world  # noqa: F401


def _objects(size: np.ndarray, dsize: np.ndarray) -> Objects:
    n = size.shape[0]
    return Objects(
        np.full((n, 1, 2), 0.5),
        np.zeros((n, 1, 2)),
        size[:, None],
        dsize[:, None],
        np.zeros((n, 1)),
        np.ones((n, 1), bool),
    )


def test_size_oscillate_is_a_harmonic_oscillator_around_its_middle() -> None:
    law = MECHANISMS["size_oscillate"]
    omega, mid = law.params["omega"], law.params["mid"]
    o = _objects(np.array([mid + 0.02]), np.array([0.0]))
    noise = Noise(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)))
    sizes = []
    for _ in range(200):
        o = law(o, noise)
        sizes.append(o.size[0, 0])
    sizes = np.array(sizes)
    assert np.all(np.abs(sizes - mid) <= 0.02 / np.cos(omega / 2) + 1e-12)  # the amplitude is kept
    crossings = np.flatnonzero(np.diff(np.sign(sizes - mid)) != 0)
    period = 2 * np.mean(np.diff(crossings))
    assert period == pytest.approx(2 * np.pi / omega, rel=0.05)


def test_size_oscillate_records_its_change_and_leaves_position_and_hue() -> None:
    law = MECHANISMS["size_oscillate"]
    o = _objects(np.array([0.05, 0.09, 0.07]), np.array([0.0, 0.003, -0.004]))
    out = law(o, Noise(np.zeros((3, 1, 2)), np.zeros((3, 1, 2))))
    np.testing.assert_allclose(out.dsize, out.size - o.size)
    np.testing.assert_array_equal(out.pos, o.pos)
    np.testing.assert_array_equal(out.vel, 0.0)
    assert out.dsize[0, 0] > 0 and out.dsize[1, 0] < 0.003  # pulled towards the middle


def test_backward_colour_cycling_turns_the_hue_the_other_way() -> None:
    o = _objects(np.array([0.07]), np.array([0.0]))._replace(hue=np.array([[0.05]]))
    out = MECHANISMS["color_cycle_back"](o, Noise(np.zeros((1, 1, 2)), np.zeros((1, 1, 2))))
    assert out.hue[0, 0] == pytest.approx(0.95)


def test_v1_split_holds_out_two_pairs_per_kind_and_trains_every_mechanism_on_two_kinds() -> None:
    for kind, held in HELDOUT_PAIRS_V1.items():
        assert len(held) == 2 and not set(held) & set(TRAIN_PAIRS_V1[kind])
        assert set(held) | set(TRAIN_PAIRS_V1[kind]) == set(PASSIVE_MECHANISMS_V1)
    for m in PASSIVE_MECHANISMS_V1:
        assert sum(m in train for train in TRAIN_PAIRS_V1.values()) >= 2


@pytest.mark.parametrize("name", ["Passive-v1", "PassiveHeldout-v1", "PassiveMany-v1"])
def test_v1_ids_run_their_mechanisms(name: str) -> None:
    env = gym.make(f"VimWorld/{name}", obs_mode="state")
    allowed = {mechanism_id(m) for m in PASSIVE_MECHANISMS_V1}
    _, info = env.reset(seed=0)
    seen = set(info["mechanism"].tolist())
    for _ in range(200):
        _, _, _, _, info = env.step(env.action_space.sample())
        seen |= set(info["mechanism"].tolist())
    assert seen <= allowed and len(seen) >= 4


@pytest.mark.parametrize("old", sorted(SUPERSEDED))
def test_v0_ids_warn_that_v1_supersedes_them(old: str) -> None:
    with pytest.warns(DeprecationWarning, match="out of date.*v1"):
        gym.make(f"VimWorld/{old}").close()


# Checksums of 41 steps (reset seed 3, no interventions) measured on the code before the v1 worlds
# existed: the v0 dynamics are unchanged.
V0_CHECKSUMS = {
    "Passive-v0": (282.72429033202206, 1033),
    "PassiveHeldout-v0": (246.35804300161544, 1032),
    "PassiveMany-v0": (617.594172116289, 2413),
}


@pytest.mark.parametrize("name", sorted(V0_CHECKSUMS))
def test_v0_dynamics_are_unchanged(name: str) -> None:
    with pytest.warns(DeprecationWarning):
        env = gym.make(f"VimWorld/{name}", obs_mode="state").unwrapped
    obs, info = env.reset(seed=3)
    total, mechs = obs.astype(np.float64).sum(), int(info["mechanism"].sum())
    no_op = np.array([env.config.num_objects, 0])
    for _ in range(40):
        obs, _, _, _, info = env.step(no_op)
        total += obs.astype(np.float64).sum()
        mechs += int(info["mechanism"].sum())
    expected_total, expected_mechs = V0_CHECKSUMS[name]
    assert mechs == expected_mechs
    assert total == pytest.approx(expected_total, rel=1e-9)
