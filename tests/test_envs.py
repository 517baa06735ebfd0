"""Every registered id against Gymnasium's and SB3's contracts (Minigrid ``tests/test_envs.py`` style):
checkers, rendering, vectorisation, wrappers, option and action validation."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from vim_world.envs import ENV_SPECS, KINDS, STATE_FEATURES, MechanismWorldEnv, env_ids

import vim_world  # noqa: F401  (registers the ids)

ENV_IDS = env_ids()
OBS_MODES = ("pixels", "state", "both")
PASSIVE_ID, STEER_ID = "VimWorld/Passive-v0", "VimWorld/Steer-v0"


def _max_steps(env_id: str) -> int:
    return ENV_SPECS[env_id.split("/", 1)[1]]["max_episode_steps"]


def test_registry_matches_specs() -> None:
    assert ENV_IDS == [f"VimWorld/{name}" for name in ENV_SPECS]
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == _max_steps(env_id)
        assert spec.vector_entry_point is not None
    vim_world.envs.register_envs()  # idempotent: a second call neither raises nor re-registers


# ----------------------------------------------------------------------------- checkers


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id: str, obs_mode: str) -> None:
    env = gym.make(env_id, obs_mode=obs_mode, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings: fail on them
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id: str, obs_mode: str) -> None:
    env = gym.make(env_id, obs_mode=obs_mode)
    with warnings.catch_warnings():
        # SB3 recommends flattening (K, S) states and a Dict obs; advice, not a failure.
        warnings.filterwarnings("ignore", message=".*unconventional shape.*")
        warnings.filterwarnings("ignore", message=".*Dict observation.*")
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_info(env_id: str) -> None:
    env = gym.make(env_id, obs_mode="both", masks=True, obs_size=48)
    obs, info = env.reset(seed=0)
    k = env.unwrapped.config.total_objects
    assert obs["pixels"].shape == (48, 48, 3) and obs["pixels"].dtype == np.uint8
    assert obs["state"].shape == (k, len(STATE_FEATURES)) and obs["state"].dtype == np.float32
    assert info["mechanism"].shape == (k,) and info["kind"].shape == (k,)
    assert info["masks"].shape == (k, 48, 48) and info["masks"].dtype == bool
    np.testing.assert_array_equal(info["state"], obs["state"])
    # A visible mask never overlaps another object's: each pixel shows at most one object.
    assert info["masks"].sum(0).max() <= 1
    steer = ENV_SPECS[env_id.split("/")[1]]["kwargs"].get("task") == "steer"
    assert isinstance(env.action_space, gym.spaces.Discrete if steer else gym.spaces.MultiDiscrete)
    if steer:
        assert isinstance(info["distance"], float) and isinstance(info["success"], bool)
        assert KINDS[info["kind"][0]] == "zone"
    _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
    if not steer:
        assert reward == 0.0 and not terminated


# ----------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_rgb_array(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array", render_size=80)
    env.reset(seed=1)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.shape == (80, 80, 3) and frame.dtype == np.uint8
    assert frame.any(), "a frame with objects cannot be all black"
    env.step(env.action_space.sample())
    assert env.render().shape == (80, 80, 3)
    env.close()


def test_render_without_mode_warns() -> None:
    env = gym.make(PASSIVE_ID).unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("env_id", [PASSIVE_ID, STEER_ID])
def test_render_human_headless(env_id: str) -> None:
    env = gym.make(env_id, render_mode="human", render_size=64)
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
        assert env.render() is None
    env.close()
    env.close()  # closing twice is harmless


def test_vector_render() -> None:
    envs = gym.make_vec(PASSIVE_ID, num_envs=3, render_mode="rgb_array", render_size=40)
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 3 and all(f.shape == (40, 40, 3) and f.dtype == np.uint8 for f in frames)
    single = gym.make(PASSIVE_ID, render_mode="rgb_array", render_size=40)
    single.reset(seed=1)
    np.testing.assert_array_equal(frames[1], single.render())


# ----------------------------------------------------------------------------- vectorisation


def _run_pair(a: gym.vector.VectorEnv, b: gym.vector.VectorEnv, steps: int, seed: int) -> int:
    """Step two vector envs with the same random actions; assert equal results; return the
    number of episodes that ended."""
    for x, y in zip(a.reset(seed=seed), b.reset(seed=seed)):
        assert data_equivalence(x, y, exact=True)
    a.action_space.seed(seed)
    ended = 0
    for t in range(steps):
        action = a.action_space.sample()
        ra, rb = a.step(action), b.step(action)
        for name, x, y in zip(("obs", "rewards", "terminations", "truncations", "infos"), ra, rb):
            assert data_equivalence(x, y, exact=True), f"{name} differ at step {t}"
        ended += int(np.sum(ra[2] | ra[3]))
    return ended


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_native_equals_sync(env_id: str) -> None:
    kwargs = dict(obs_mode="both", masks=True, obs_size=32)
    native = gym.make_vec(env_id, num_envs=3, **kwargs)
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", **kwargs)
    assert type(native.unwrapped).__name__ == "MechanismWorldVectorEnv"
    ended = _run_pair(native, sync, _max_steps(env_id) + 12, seed=7)
    assert ended >= 3, "the run must cross an autoreset in every env"
    native.close()
    sync.close()


@pytest.mark.parametrize("env_id", [PASSIVE_ID, STEER_ID])
def test_make_vec_async(env_id: str) -> None:
    asyn = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", obs_mode="state", max_episode_steps=5)
    native = gym.make_vec(env_id, num_envs=2, obs_mode="state", max_episode_steps=5)
    try:
        assert _run_pair(asyn, native, 12, seed=3) >= 2
    finally:
        asyn.close()
        native.close()


def test_vector_seed_list_and_errors() -> None:
    envs = gym.make_vec(PASSIVE_ID, num_envs=2, obs_mode="state")
    a, _ = envs.reset(seed=[5, None])
    b, _ = gym.make(PASSIVE_ID, obs_mode="state").reset(seed=5)
    np.testing.assert_array_equal(a[0], b)
    with pytest.raises(ValueError, match="3 entries"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="num_envs"):
        gym.make_vec(PASSIVE_ID, num_envs=0)


# ----------------------------------------------------------------------------- wrappers


def test_record_episode_statistics() -> None:
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(STEER_ID, obs_mode="state"))
    env.reset(seed=0)
    for _ in range(_max_steps(STEER_ID)):
        *_, terminated, truncated, info = env.step(0)  # "still": never reaches the goal by itself
        if terminated or truncated:
            break
    assert "episode" in info and info["episode"]["l"] >= 1
    assert np.isfinite(info["episode"]["r"])


def test_flatten_observation_state() -> None:
    env = gym.wrappers.FlattenObservation(gym.make(PASSIVE_ID, obs_mode="state"))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 * len(STATE_FEATURES),) and obs in env.observation_space
    obs, *_ = env.step(env.action_space.sample())
    assert obs in env.observation_space


def test_grayscale_and_resize_pixels() -> None:
    env = gym.wrappers.GrayscaleObservation(gym.make(PASSIVE_ID, obs_size=48), keep_dim=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (48, 48, 1) and obs.dtype == np.uint8 and obs in env.observation_space
    pytest.importorskip("cv2", reason="ResizeObservation needs opencv")
    env = gym.wrappers.ResizeObservation(gym.make(PASSIVE_ID, obs_size=48), (32, 32))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3)


def test_vector_wrappers() -> None:
    envs = gym.make_vec(STEER_ID, num_envs=4, obs_mode="state", max_episode_steps=6)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.wrappers.vector.FlattenObservation(envs))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 4 * len(STATE_FEATURES))
    episodes = 0
    for _ in range(8):
        obs, _, _, _, info = envs.step(envs.action_space.sample())
        assert obs in envs.observation_space
        if "episode" in info:
            episodes += int(info["_episode"].sum())
    assert episodes == 4
    gray = gym.wrappers.vector.GrayscaleObservation(gym.make_vec(PASSIVE_ID, num_envs=2, obs_size=32))
    obs, _ = gray.reset(seed=0)
    assert obs.shape == (2, 32, 32) and obs.dtype == np.uint8


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("size", [32, 33, 100, 256])
def test_obs_sizes_in_range(size: int) -> None:
    env = gym.make(PASSIVE_ID, obs_size=size)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (size, size, 3) and obs.dtype == np.uint8 and obs in env.observation_space


@pytest.mark.parametrize("size", [0, -64, 31, 257, 1024, 64.0, True])
def test_obs_sizes_out_of_range(size: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(size))):
        gym.make(PASSIVE_ID, obs_size=size)
    with pytest.raises(ValueError, match=re.escape(repr(size))):
        gym.make_vec(PASSIVE_ID, num_envs=2, obs_size=size)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (dict(mechanisms=("still", "teleport")), "teleport"),
        (dict(mechanisms=()), "()"),
        (dict(num_objects=0), "0"),
        (dict(num_objects=-3), "-3"),
        (dict(num_objects=17), "17"),
        (dict(kinds=("circle", "hexagon")), "hexagon"),
        (dict(kinds=("zone",)), "zone"),
        (dict(obs_mode="rgb"), "rgb"),
        (dict(switch_prob=-0.1), "-0.1"),
        (dict(switch_prob=1.5), "1.5"),
        (dict(switch_on=("teleport",)), "teleport"),
        (dict(task="fly"), "fly"),
        (dict(render_size=2000), "2000"),
        (dict(allowed={"circle": ("flee",)}), "flee"),
        (dict(allowed={"hexagon": ("still",)}), "hexagon"),
    ],
)
def test_bad_options_raise(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        MechanismWorldEnv(**options)
    with pytest.raises(ValueError, match=re.escape(named)):
        gym.make_vec(PASSIVE_ID, num_envs=2, **options)


def test_bad_num_objects_type() -> None:
    with pytest.raises(TypeError, match="2.5"):
        MechanismWorldEnv(num_objects=2.5)


def test_bad_render_mode() -> None:
    with pytest.raises(ValueError, match="ansi"):
        MechanismWorldEnv(render_mode="ansi")


@pytest.mark.parametrize("action", [5, -1, 2.0, np.array([1, 2]), "up"])
def test_steer_actions_outside_space(action: object) -> None:
    env = gym.make(STEER_ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(repr(action))):
        env.step(action)


@pytest.mark.parametrize("action", [np.array([5, 0]), np.array([0, 6]), np.array([-1, 0]), np.array([1, 2, 3]), 3])
def test_passive_actions_outside_space(action: object) -> None:
    env = gym.make(PASSIVE_ID)  # K = 4 objects (index 4 = no-op), 6 mechanisms
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(repr(action))):
        env.step(action)


def test_vector_actions_outside_space() -> None:
    envs = gym.make_vec(STEER_ID, num_envs=3)
    envs.reset(seed=0)
    for bad in (np.array([0, 1, 5]), np.array([0, 1]), np.array([[0], [1], [2]])):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            envs.step(bad)


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        MechanismWorldEnv().step(np.array([4, 0]))
