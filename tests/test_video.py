"""Video: gymnasium.wrappers.RecordVideo on the envs (the ``video`` extra), and ImaginedEnv frames."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import vim_world  # noqa: F401  (registers the ids)
from vim_world.imagination import Imagination
from vim_world.imagined_env import ImaginedEnv, ImaginedVectorEnv, frames_from_states
from vim_world.model import VIM, preset


def _state_imagination() -> Imagination:
    torch.manual_seed(0)
    return Imagination(VIM(preset("tiny-state", num_slots=4, state_dim=13, action_dim=5, reward_head=True)).eval())


def _record(env: gym.Env, folder, steps: int) -> list:
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(env, str(folder), episode_trigger=lambda episode: episode == 0, disable_logger=True)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(steps):
        env.step(env.action_space.sample())
    env.close()
    return sorted(folder.glob("*.mp4"))


def test_record_video_of_the_real_env(tmp_path):
    pytest.importorskip("moviepy", reason='RecordVideo needs the video extra: pip install "vim-world[video]"')
    env = gym.make("VimWorld/Steer-v0", render_mode="rgb_array", render_size=64)
    videos = _record(env, tmp_path, steps=12)
    assert [v.name for v in videos] == ["rl-video-episode-0.mp4"] and videos[0].stat().st_size > 0


def test_record_video_of_the_imagined_env(tmp_path):
    pytest.importorskip("moviepy", reason='RecordVideo needs the video extra: pip install "vim-world[video]"')
    env = ImaginedEnv(_state_imagination(), "VimWorld/Steer-v0", start_states=8, render_mode="rgb_array")
    videos = _record(env, tmp_path, steps=12)
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_frames_from_states_draw_what_the_env_draws():
    """Decoded-state frames use the env's rasterizer: the env's own states give (almost exactly)
    the env's frames (float32 state features move a few edge pixels)."""
    env = gym.make("VimWorld/Passive-v0", obs_mode="state", render_mode="rgb_array", render_size=128)
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, *_ = env.step(env.unwrapped.get_keys_to_action()[(ord("1"), ord("a"))])
    drawn = frames_from_states(obs[None], 128)[0]
    real = env.render()
    assert drawn.shape == real.shape == (128, 128, 3) and drawn.dtype == np.uint8
    assert (drawn != real).any(-1).mean() < 0.01
    assert (real.sum(-1) > 0).mean() > 0.01  # something is drawn


def test_imagined_env_renders_decoded_states():
    im = _state_imagination()
    env = ImaginedEnv(im, "VimWorld/Steer-v0", start_states=8, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    first = env.render()
    np.testing.assert_array_equal(first, frames_from_states(obs[None], env._vec.render_size)[0])
    obs, *_ = env.step(0)
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, frames_from_states(obs[None], 256)[0])


def test_imagined_vector_env_renders_decoded_pixel_frames():
    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-pixels", action_dim=5, reward_head=True)).eval())
    venv = ImaginedVectorEnv(im, "VimWorld/Steer-v0", num_envs=3, start_states=4, render_mode="rgb_array")
    venv.reset(seed=0)
    obs, *_ = venv.step(np.zeros(3, np.int64))
    frames = venv.render()
    assert len(frames) == 3
    np.testing.assert_array_equal(np.stack(frames), obs)  # the decoded frames themselves


def test_render_mode_is_checked():
    with pytest.raises(ValueError, match="render_mode"):
        ImaginedEnv(_state_imagination(), "VimWorld/Steer-v0", start_states=4, render_mode="human")
    env = ImaginedEnv(_state_imagination(), "VimWorld/Steer-v0", start_states=4)
    env.reset(seed=0)
    assert env.render() is None
