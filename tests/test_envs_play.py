"""``vim_world.envs.play`` headless under the SDL dummy driver, with scripted key presses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pygame
import pytest
from vim_world.envs import STEER_ACTIONS, MechanismWorldEnv
from vim_world.envs import play as play_module
from vim_world.envs.viewer import Viewer

import vim_world  # noqa: F401


@pytest.fixture
def actions_taken(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every action the env receives."""
    taken: list[Any] = []
    step = MechanismWorldEnv.step

    def spy(self: MechanismWorldEnv, action: Any) -> Any:
        taken.append(np.asarray(action).copy())
        return step(self, action)

    monkeypatch.setattr(MechanismWorldEnv, "step", spy)
    return taken


def script_keys(monkeypatch: pytest.MonkeyPatch, presses: list[list[int]]) -> None:
    """Make ``Viewer.pressed`` return ``presses[t]`` at call ``t`` (then nothing)."""
    it: Iterator[list[int]] = iter(presses)
    monkeypatch.setattr(Viewer, "pressed", lambda self: next(it, []))


@pytest.mark.parametrize("env_id", ["VimWorld/Passive-v0", "VimWorld/Interact-v0"])
def test_watch_passive_env(env_id: str, actions_taken: list[Any]) -> None:
    result = play_module.play(env_id, seed=0, max_steps=6, fps=1000, window_size=64)
    assert result["steps"] == 6 and result["return"] == 0.0
    assert all(np.array_equal(a, [4, 0]) for a in actions_taken)  # no intervention


def test_random_interventions(actions_taken: list[Any]) -> None:
    play_module.play("VimWorld/Passive-v0", seed=0, max_steps=20, fps=1000, window_size=64, random_actions=True)
    assert len({tuple(a) for a in actions_taken}) > 1


def test_steer_with_arrow_keys(monkeypatch: pytest.MonkeyPatch, actions_taken: list[Any]) -> None:
    script_keys(monkeypatch, [[], [pygame.K_RIGHT], [], [pygame.K_UP], [pygame.K_SPACE], [pygame.K_a]])
    result = play_module.play("VimWorld/Steer-v0", seed=0, max_steps=6, fps=1000, window_size=64)
    names = [STEER_ACTIONS[int(a)] for a in actions_taken]
    assert names == ["still", "drift_right", "drift_right", "drift_up", "still", "still"]
    assert result["steps"] == 6 and np.isfinite(result["return"])


@pytest.mark.parametrize("quit_key", [pygame.K_ESCAPE, play_module.QUIT])
def test_quit(monkeypatch: pytest.MonkeyPatch, quit_key: int) -> None:
    script_keys(monkeypatch, [[], [], [quit_key]])
    result = play_module.play("VimWorld/Steer-v0", seed=0, max_steps=100, fps=1000, window_size=64)
    assert result["steps"] == 2


def test_episodes_roll_over() -> None:
    result = play_module.play("VimWorld/Steer-v0", seed=0, max_steps=25, fps=1000, window_size=64, max_episode_steps=10)
    assert result["episodes"] == 2


def test_bad_max_steps() -> None:
    with pytest.raises(ValueError, match="-1"):
        play_module.play("VimWorld/Steer-v0", max_steps=-1)


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    play_module.main(["VimWorld/Passive-v0", "--max-steps", "3", "--fps", "1000", "--window-size", "64"])
    assert "3 steps" in capsys.readouterr().out


def test_one_set_of_flags_for_both_command_lines() -> None:
    """``vim-world play`` builds its sub-parser with ``add_arguments``: the same flags and defaults."""
    import argparse

    parser = play_module.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["VimWorld/Steer-v0", "--seed", "3", "--max-steps", "2", "--random-actions"])
    assert (args.env_id, args.seed, args.max_steps, args.random_actions) == ("VimWorld/Steer-v0", 3, 2, True)
    assert parser.parse_args([]).env_id == "VimWorld/Steer-v0"
    with pytest.raises(SystemExit):
        parser.parse_args(["VimWorld/Nope-v0"])


@pytest.mark.parametrize("env_id", ["VimWorld/Steer-v0", "VimWorld/Passive-v0"])
def test_keys_to_action_are_valid_actions(env_id: str) -> None:
    import gymnasium as gym

    env = gym.make(env_id)
    mapping = env.unwrapped.get_keys_to_action()
    assert mapping and all(keys == tuple(sorted(keys)) for keys in mapping)
    assert all(env.action_space.contains(a) for a in mapping.values())
    assert len({tuple(np.atleast_1d(a)) for a in mapping.values()}) == len(mapping)  # one action per key set


def test_gymnasium_play_drives_steer_with_its_keys(monkeypatch: pytest.MonkeyPatch, actions_taken: list[Any]) -> None:
    """``gymnasium.utils.play.play`` finds ``get_keys_to_action``; a held arrow key steers."""
    import gymnasium as gym
    from gymnasium.utils.play import PlayableGame, play

    original_init = PlayableGame.__init__

    def init(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.pressed_keys = [pygame.K_RIGHT]  # as if the right arrow were held

    monkeypatch.setattr(PlayableGame, "__init__", init)
    steps = []

    def callback(*transition: Any) -> None:
        steps.append(transition)
        if len(steps) == 3:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    play(gym.make("VimWorld/Steer-v0", render_mode="rgb_array", render_size=64), fps=1000, callback=callback, seed=0)
    assert len(steps) == 3
    assert [STEER_ACTIONS[int(a)] for a in actions_taken] == ["drift_right"] * 3
