"""Watch or play an env in a pygame window.

Passive envs play themselves (no intervention, or random ones with ``random_actions=True``); the
steer task is driven from the keyboard: the arrow keys pick ``drift_up/down/left/right`` (see
``STEER_ACTIONS``) and space picks ``still``. The last choice holds until another key is pressed.
Esc or closing the window quits. Headless under ``SDL_VIDEODRIVER=dummy`` with ``max_steps``.

Example::

    python -m vim_world.envs.play VimWorld/Steer-v0
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym
import numpy as np
import pygame

from .config import STEER_ACTIONS
from .env import RENDER_FPS
from .viewer import Viewer

KEY_ACTIONS: dict[int, int] = {
    pygame.K_UP: STEER_ACTIONS.index("drift_up"),
    pygame.K_DOWN: STEER_ACTIONS.index("drift_down"),
    pygame.K_LEFT: STEER_ACTIONS.index("drift_left"),
    pygame.K_RIGHT: STEER_ACTIONS.index("drift_right"),
    pygame.K_SPACE: STEER_ACTIONS.index("still"),
}
"""Keyboard -> steer action."""
QUIT = -1
"""What :meth:`Viewer.pressed` reports for a window close."""


def _passive_action(env: gym.Env, random_actions: bool) -> np.ndarray:
    if random_actions:
        return env.action_space.sample()
    return np.array([env.unwrapped.config.num_objects, 0])  # object index K: no intervention


def play(
    env_id: str,
    *,
    seed: int | None = None,
    max_steps: int | None = None,
    fps: int = RENDER_FPS,
    window_size: int = 512,
    random_actions: bool = False,
    **kwargs: Any,
) -> dict[str, float]:
    """Show ``env_id`` in a window until Esc, window close, or ``max_steps`` steps.

    Args:
        env_id: a registered id, e.g. ``"VimWorld/Steer-v0"``.
        seed: seed of the first reset (episodes after it continue the stream).
        max_steps: stop after this many steps (None: run until quit).
        fps: steps per second.
        window_size: side of the window in pixels.
        random_actions: passive envs take random interventions instead of none.
        **kwargs: env options (see ``WorldConfig``), passed to ``gymnasium.make``.
    Returns: ``{"steps", "episodes", "return"}``: steps taken, episodes finished, and the summed reward.
    """
    if max_steps is not None and max_steps < 0:
        raise ValueError(f"max_steps must be >= 0 or None, got {max_steps!r}")
    env = gym.make(env_id, render_mode="rgb_array", render_size=window_size, **kwargs)
    steer = isinstance(env.action_space, gym.spaces.Discrete)
    env.action_space.seed(seed)
    viewer = Viewer(window_size, f"vim_world: {env_id}")
    steps = episodes = 0
    total = 0.0
    action = KEY_ACTIONS[pygame.K_SPACE]
    try:
        env.reset(seed=seed)
        while max_steps is None or steps < max_steps:
            keys = viewer.pressed()
            if QUIT in keys or pygame.K_ESCAPE in keys:
                break
            for key in keys:
                action = KEY_ACTIONS.get(key, action)
            _, reward, terminated, truncated, _ = env.step(action if steer else _passive_action(env, random_actions))
            steps += 1
            total += reward
            viewer.show(env.render(), fps)
            if terminated or truncated:
                episodes += 1
                env.reset()
    finally:
        viewer.close()
        env.close()
    return {"steps": steps, "episodes": episodes, "return": total}


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m vim_world.envs.play ENV_ID [--seed S] [--max-steps T] ...``."""
    import vim_world  # noqa: F401  (registers the ids)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env_id", nargs="?", default="VimWorld/Steer-v0")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--fps", type=int, default=RENDER_FPS)
    parser.add_argument("--window-size", type=int, default=512)
    parser.add_argument("--random-actions", action="store_true", help="passive envs: random interventions")
    args = parser.parse_args(argv)
    result = play(args.env_id, seed=args.seed, max_steps=args.max_steps, fps=args.fps,
                  window_size=args.window_size, random_actions=args.random_actions)  # fmt: skip
    print(f"{result['steps']} steps, {result['episodes']} episodes, return {result['return']:.3f}")


if __name__ == "__main__":
    main()
