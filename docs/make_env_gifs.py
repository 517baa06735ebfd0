"""Render a short GIF of every registered env into ``docs/images/`` (Pillow, 128 px, 40 frames).

    python docs/make_env_gifs.py

Passive envs run without interventions; the steer task is driven by a greedy controller that
picks the drift towards the goal zone along the larger axis of the offset, so the GIF shows the
task being solved.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym
import numpy as np
from PIL import Image
from vim_world.envs import STEER_ACTIONS, env_ids

import vim_world  # noqa: F401

OUT = Path(__file__).resolve().parent / "images"
FRAMES, SIZE, SEED = 40, 128, 0


def greedy_steer(info: dict) -> int:
    """Drift along the larger axis of the agent-to-goal offset (state rows: zone 0, agent 1)."""
    dx, dy = info["state"][0, :2] - info["state"][1, :2]
    if abs(dx) >= abs(dy):
        return STEER_ACTIONS.index("drift_right" if dx > 0 else "drift_left")
    return STEER_ACTIONS.index("drift_down" if dy > 0 else "drift_up")


def record(env_id: str) -> list[Image.Image]:
    env = gym.make(env_id, render_mode="rgb_array", render_size=SIZE)
    _, info = env.reset(seed=SEED)
    steer = isinstance(env.action_space, gym.spaces.Discrete)
    frames = [Image.fromarray(env.render())]
    while len(frames) < FRAMES:
        action = greedy_steer(info) if steer else np.array([env.unwrapped.config.num_objects, 0])
        _, _, terminated, truncated, info = env.step(action)
        frames.append(Image.fromarray(env.render()))
        if terminated or truncated:
            _, info = env.reset()
    env.close()
    return frames


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for env_id in env_ids():
        path = OUT / f"{env_id.split('/')[1]}.gif"
        frames = record(env_id)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000 // 15, loop=0, optimize=True)
        print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
