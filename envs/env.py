"""The mechanism world as a Gymnasium env and as a native vector env, side by side.

Both drive a :class:`~vim_world.envs.simulator.Simulator`; the single env is its one-world case.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .config import STEER_ACTIONS, WorldConfig, check_options
from .simulator import Simulator
from .viewer import Viewer
from .world import state_bounds

RENDER_FPS = 15


def make_spaces(config: WorldConfig) -> tuple[spaces.Space, spaces.Space]:
    """Single-env observation and action spaces of ``config``."""
    pixels = spaces.Box(0, 255, (config.obs_size, config.obs_size, 3), np.uint8)
    low, high = state_bounds(config.total_objects)
    state = spaces.Box(low, high, dtype=np.float32)
    obs = {"pixels": pixels, "state": state, "both": spaces.Dict({"pixels": pixels, "state": state})}
    if config.task == "steer":
        action = spaces.Discrete(len(STEER_ACTIONS))
    else:  # (object, mechanism); object index K means "no intervention"
        action = spaces.MultiDiscrete([config.num_objects + 1, len(config.mechanisms)])
    return obs[config.obs_mode], action


def _check_actions(space: spaces.Space, actions: Any, batched: bool) -> np.ndarray:
    a = np.asarray(actions)
    if isinstance(space, spaces.Discrete):
        shape, high = (), np.array(space.n)
    else:
        shape, high = space.nvec.shape, space.nvec
    want = ((a.shape[0],) if batched and a.ndim else ()) + shape
    if a.shape != want or not np.issubdtype(a.dtype, np.integer) or np.any(a < 0) or np.any(a >= high):
        raise ValueError(f"invalid action {actions!r}: expected integers of shape {want} in [0, {high})")
    return a.astype(np.int64)


class MechanismWorldEnv(gym.Env):
    """2D objects driven by switchable mechanisms.

    Keyword arguments are those of :class:`~vim_world.envs.config.WorldConfig`, plus
    ``render_mode`` (``"rgb_array"`` or ``"human"``).

    Observation: see ``obs_mode``. Action: ``Discrete(5)`` for the steer task (sets the agent's
    mechanism to one of ``STEER_ACTIONS``), else ``MultiDiscrete([K + 1, M])``: set object ``i``'s
    mechanism to ``mechanisms[m]`` (``i = K``: no intervention). ``info`` carries the ground
    truth: ``mechanism`` ``(K,)``, ``kind`` ``(K,)``, ``state`` ``(K, S)``, ``masks``
    ``(K, H, W)`` when ``masks=True``, and ``distance``, ``success`` for the steer task.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": RENDER_FPS}

    def __init__(self, render_mode: str | None = None, **options: Any):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        check_options(options)
        self.config = WorldConfig(**options)
        self.render_mode = render_mode
        self.observation_space, self.action_space = make_spaces(self.config)
        self._sim: Simulator | None = None
        self._viewer: Viewer | None = None
        self._terminated = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self._sim is None or self._sim.generators[0] is not self.np_random:
            self._sim = Simulator(self.config, [self.np_random])
        self._sim.reset(np.ones(1, bool))
        self._terminated = False
        if self.render_mode == "human":
            self.render()
        return _first(self._sim.observation()), self._info()

    def step(self, action):
        if self._sim is None:
            raise RuntimeError("call reset() before step()")
        a = _check_actions(self.action_space, action, batched=False)
        if self._terminated:  # as Gymnasium's PassiveEnvChecker warns, also without the checker
            gym.logger.warn(
                "step() called after the episode terminated; call reset() first: "
                "the results of further steps are undefined"
            )
        reward, terminated = self._sim.step(a[None], np.ones(1, bool))
        self._terminated = bool(terminated[0])
        if self.render_mode == "human":
            self.render()
        return _first(self._sim.observation()), float(reward[0]), bool(terminated[0]), False, self._info()

    def _info(self) -> dict[str, Any]:
        info = {}
        for key, value in self._sim.info().items():
            v = value[0]
            info[key] = v.item() if v.ndim == 0 else v  # scalars as Python bool / float
        return info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._sim is None:
            raise RuntimeError("call reset() before render()")
        frame = self._sim.frames(self.config.render_size)[0]
        if self.render_mode == "rgb_array":
            return frame
        if self._viewer is None:
            self._viewer = Viewer(self.config.render_size, "vim_world")
        self._viewer.show(frame, self.metadata["render_fps"])
        return None

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    def get_keys_to_action(self) -> dict[tuple[int, ...], Any]:
        """Keyboard -> action for ``gymnasium.utils.play`` (pygame key codes, sorted tuples).

        Steer: the arrow keys pick ``drift_up/down/left/right`` and space ``still``. Other tasks:
        hold a digit ``1..K`` (object) and a letter ``a, b, ...`` (``mechanisms[0], [1], ...``) to
        set that object's mechanism; pass ``noop=np.array([K, 0])`` (no intervention) to ``play``.
        """
        import pygame  # already loaded by the viewer; imported here to keep this method self-contained

        if self.config.task == "steer":
            keys = {pygame.K_UP: "drift_up", pygame.K_DOWN: "drift_down", pygame.K_LEFT: "drift_left",
                    pygame.K_RIGHT: "drift_right", pygame.K_SPACE: "still"}  # fmt: skip
            return {(key,): STEER_ACTIONS.index(name) for key, name in keys.items()}
        return {
            tuple(sorted((ord(str(i + 1)), ord("a") + m))): np.array([i, m])
            for i in range(min(self.config.num_objects, 9))
            for m in range(min(len(self.config.mechanisms), 26))
        }


class MechanismWorldVectorEnv(VectorEnv):
    """N mechanism worlds stepped together with batched dynamics and batched rendering.

    Gives, for the same seeds, exactly the observations, rewards, terminations, truncations and
    infos of a ``SyncVectorEnv`` of N :class:`MechanismWorldEnv` (world ``i`` seeded ``seed + i``),
    with next-step autoreset. ``gymnasium.make_vec`` uses it by default.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self, num_envs: int = 1, max_episode_steps: int | None = None, render_mode: str | None = None, **options: Any
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None for the vector env, got {render_mode!r}")
        check_options(options, extra=("render_mode", "num_envs", "max_episode_steps"))
        self.config = WorldConfig(**options)
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.single_observation_space, self.single_action_space = make_spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._generators = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._sim: Simulator | None = None
        self._elapsed = np.zeros(self.num_envs, np.int64)
        self._autoreset = np.zeros(self.num_envs, bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset every world, or with ``options={"reset_mask": mask}`` (``(N,)`` bool; Gymnasium's
        partial reset, used by SB3 through :func:`vim_world.sb3.as_sb3_vec_env`) only the masked ones."""
        if options is not None and options.get("reset_mask") is not None and self._sim is not None:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != bool:
                raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},), got {mask!r}")
            self._sim.reset(mask)
            self._elapsed[mask] = 0
            self._autoreset[mask] = False
            return self._sim.observation(), self._infos()
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed list has {len(seeds)} entries; expected num_envs={self.num_envs}")
            for i, s in enumerate(seeds):
                if s is not None:
                    self._generators[i] = seeding.np_random(s)[0]
            self._sim = None
        if self._sim is None:
            self._sim = Simulator(self.config, self._generators)
        self._sim.reset(np.ones(self.num_envs, bool))
        self._elapsed[:] = 0
        self._autoreset[:] = False
        return self._sim.observation(), self._infos()

    def step(self, actions):
        if self._sim is None:
            raise RuntimeError("call reset() before step()")
        a = _check_actions(self.single_action_space, actions, batched=True)
        if a.ndim == 0 or a.shape[0] != self.num_envs:
            raise ValueError(f"invalid actions {actions!r}: expected a batch of {self.num_envs} actions")
        resetting = self._autoreset
        stepping = ~resetting
        if resetting.any():
            self._sim.reset(resetting)
        rewards, terminated = self._sim.step(a, stepping)
        self._elapsed = np.where(stepping, self._elapsed + 1, 0)
        truncated = np.zeros(self.num_envs, bool)
        if self.max_episode_steps is not None:
            truncated = stepping & (self._elapsed >= self.max_episode_steps)
        self._autoreset = terminated | truncated
        return self._sim.observation(), rewards, terminated, truncated, self._infos()

    def _infos(self) -> dict[str, np.ndarray]:
        infos: dict[str, np.ndarray] = {}
        for key, value in self._sim.info().items():
            infos[key] = value
            infos[f"_{key}"] = np.ones(self.num_envs, bool)
        return infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._sim is None:
            raise RuntimeError("call reset() before render()")
        return tuple(self._sim.frames(self.config.render_size))


def _first(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: v[0] for k, v in obs.items()}
    return obs[0]
