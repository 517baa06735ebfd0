"""Watch or play an env in a pygame window.

Passive envs play themselves (no intervention, or random ones with ``random_actions=True``); the
steer task is driven from the keyboard with the env's ``get_keys_to_action()`` (the arrow keys pick
``drift_up/down/left/right``, space picks ``still``). The last choice holds until another key is
pressed. Esc or closing the window quits. Headless under ``SDL_VIDEODRIVER=dummy`` with ``max_steps``.

One set of flags (:func:`add_arguments`) for both command lines::

    python -m vim_world.envs.play VimWorld/Steer-v0 --seed 0
    vim-world play VimWorld/Steer-v0 --seed 0

Gymnasium's own player works too (keys from ``get_keys_to_action``)::

    from gymnasium.utils.play import play
    play(gym.make("VimWorld/Steer-v0", render_mode="rgb_array"), zoom=2)
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
from .registration import env_ids
from .viewer import Viewer

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
    key_actions = {keys[0]: a for keys, a in env.unwrapped.get_keys_to_action().items() if len(keys) == 1}
    env.action_space.seed(seed)
    viewer = Viewer(window_size, f"vim_world: {env_id}")
    steps = episodes = 0
    total = 0.0
    action = STEER_ACTIONS.index("still")
    try:
        env.reset(seed=seed)
        while max_steps is None or steps < max_steps:
            keys = viewer.pressed()
            if QUIT in keys or pygame.K_ESCAPE in keys:
                break
            for key in keys:
                action = key_actions.get(key, action)
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


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of ``play``, shared by ``python -m vim_world.envs.play`` and ``vim-world play``;
    pair with ``parser.set_defaults(fn=run)``."""
    parser.add_argument(
        "env_id",
        nargs="?",
        default="VimWorld/Steer-v0",
        choices=env_ids(),
        metavar="ENV_ID",
        help=f"registered env id, one of {', '.join(env_ids())}",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the first reset (None: random)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (None: until Esc)")
    parser.add_argument("--fps", type=int, default=RENDER_FPS, help="steps per second")
    parser.add_argument("--window-size", type=int, default=512, help="side of the window in pixels")
    parser.add_argument("--random-actions", action="store_true", help="passive envs take random interventions")
    return parser  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, float]:
    """Play with parsed :func:`add_arguments` flags and print the summary line."""
    result = play(args.env_id, seed=args.seed, max_steps=args.max_steps, fps=args.fps,
                  window_size=args.window_size, random_actions=args.random_actions)  # fmt: skip
    print(f"{result['steps']} steps, {result['episodes']} episodes, return {result['return']:.3f}")
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m vim_world.envs.play [ENV_ID] [--seed S] [--max-steps T] ...``."""
    import vim_world  # noqa: F401  (registers the ids)

    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=formatter))
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
