"""``vim_world.envs.play`` headless under the SDL dummy driver, with scripted key presses."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pygame
import pytest

import vim_world  # noqa: F401
from vim_world.envs import STEER_ACTIONS, MechanismWorldEnv
from vim_world.envs import play as play_module
from vim_world.envs.viewer import Viewer


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
