"""Gymnasium envs whose steps come from a VIM world model, so agents can train in imagination.

:class:`ImaginedVectorEnv` steps N imagined worlds in one batched model call; :class:`ImaginedEnv`
is its single-env case. Start states are real env resets encoded by the model (a pool drawn once
at construction: imagined training uses no real environment steps); each step samples the
switching prior and the selected modules, the reward comes from the reward head, an episode
terminates when a draw from the termination head says so (or a given success rule holds on the
decoded state), and is truncated after the
real task's ``max_episode_steps``. Observations are decoded and clipped into the real env's
observation space, so a policy trained here acts in the real env unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from vim_world.actions import action_vectors
from vim_world.envs import raster
from vim_world.envs.config import KINDS
from vim_world.envs.env import RENDER_FPS
from vim_world.envs.world import STATE_FEATURES
from vim_world.imagination import Imagination, LatentState, observations_to_tensor

SuccessRule = Callable[[np.ndarray], np.ndarray]
"""Decoded observations ``(N, ...)`` -> ``(N,)`` bool: the episode is won."""


def frames_from_states(states: np.ndarray, res: int) -> np.ndarray:
    """Draw decoded state observations ``(N, K, S)`` (columns ``STATE_FEATURES``) as the real env
    draws its worlds: ``(N, res, res, 3)`` uint8 frames (kind: the largest ``is_<kind>`` column)."""
    col = {name: i for i, name in enumerate(STATE_FEATURES)}
    kinds = [col[f"is_{k}"] for k in KINDS]
    hue = np.arctan2(states[..., col["hue_sin"]], states[..., col["hue_cos"]]) / (2 * np.pi) % 1.0
    pos = states[..., [col["x"], col["y"]]]
    return raster.render(pos, states[..., col["size"]], hue, states[..., kinds].argmax(-1), res)


def decoded_states(imagination: Imagination, z: torch.Tensor, space: spaces.Box) -> torch.Tensor:
    """What a policy sees in imagination: a state model's latents ``(N, K, D)`` decoded to state
    observations ``(N, K, S)`` and clipped into the real env's observation space ``space`` (whose
    shape is ``(K, S)``), on the latents' device. :class:`ImaginedVectorEnv` returns these, and
    :mod:`vim_world.agents.actor_critic` trains on them, so policies act in the real env unchanged."""
    decoded, _ = imagination.decode(z)
    low = torch.as_tensor(space.low, device=decoded.device, dtype=decoded.dtype)
    high = torch.as_tensor(space.high, device=decoded.device, dtype=decoded.dtype)
    return torch.clamp(decoded, low, high)


class ImaginedVectorEnv(VectorEnv):
    """N imagined copies of a real task, stepped together by the model (next-step autoreset).

    Episodes start from single encoded reset frames: a second-order model
    (``VIMConfig.transition_order=2``) starts them with no change yet (every object at rest).

    Args:
        imagination: the world model; it must take actions and have a reward head.
        env_id: the real task whose spaces, start states and episode length are used.
        num_envs: N.
        env_kwargs: options of the real env (``obs_mode`` is set from the model's input mode).
        max_episode_steps: truncation; defaults to the real task's.
        success: a known termination rule on decoded observations (e.g. the task's own); None
            (the default) draws terminations from the model's termination head.
        start_states: size of the pool of encoded real resets episodes start from.
        sample_z: sample module noise (False: each module's mean).
        seed: seeds the real resets of the pool.
        render_mode: ``"rgb_array"``: :meth:`render` returns the N current decoded frames
            (pixel models), or the decoded states drawn by the real env's rasterizer at its
            ``render_size`` (state models).
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        imagination: Imagination,
        env_id: str = "VimWorld/Steer-v0",
        num_envs: int = 1,
        *,
        env_kwargs: dict[str, Any] | None = None,
        max_episode_steps: int | None = None,
        success: SuccessRule | None = None,
        start_states: int = 256,
        sample_z: bool = True,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.render_mode = render_mode
        cfg = imagination.config
        if cfg.action_dim == 0 or not cfg.reward_head:
            raise ValueError("an imagined env needs a VIM trained with actions and a reward head")
        kwargs = {**(env_kwargs or {}), "obs_mode": cfg.input_mode if cfg.input_mode == "state" else "pixels"}
        if cfg.input_mode == "pixels":
            kwargs["obs_size"] = cfg.image_size
        real = gym.make_vec(env_id, num_envs=start_states, **kwargs)
        start_obs, _ = real.reset(seed=seed)
        self.single_observation_space = real.single_observation_space
        self.single_action_space = real.single_action_space
        self.render_size = real.unwrapped.config.render_size if hasattr(real.unwrapped, "config") else 256
        real.close()
        if cfg.input_mode == "state" and start_obs.shape[1] != cfg.num_slots:
            imagination = imagination.for_num_objects(start_obs.shape[1])
        self.imagination = imagination
        self.num_envs = num_envs
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps or gym.spec(env_id).max_episode_steps
        self.success, self.sample_z = success, sample_z
        device = imagination.device
        with torch.no_grad():
            self._start_obs = start_obs
            self._starts = imagination.encode(observations_to_tensor(start_obs, cfg, device)[:, None])
        self._state: LatentState | None = None
        self._obs: np.ndarray | None = None  # current observations (N, ...), for render()
        self._elapsed = np.zeros(num_envs, np.int64)
        self._autoreset = np.zeros(num_envs, bool)
        self._rng = np.random.default_rng()
        self._generator = torch.Generator(device=device).manual_seed(int(self._rng.integers(2**62)))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draw N start states from the pool; ``seed`` also reseeds the model's samples.

        ``options={"reset_mask": mask}`` (``(N,)`` bool; Gymnasium's partial reset, used by
        :func:`vim_world.sb3.as_sb3_vec_env`) redraws only the masked envs."""
        if options is not None and options.get("reset_mask") is not None and self._state is not None:
            return self._reset_rows(np.asarray(options["reset_mask"])), {}
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._generator.manual_seed(seed)
        rows = self._rng.integers(len(self._start_obs), size=self.num_envs)
        self._state = self._starts.index(torch.as_tensor(rows, device=self.imagination.device))
        self._elapsed[:] = 0
        self._autoreset[:] = False
        self._obs = self._start_obs[rows].copy()
        return self._obs.copy(), {}

    @torch.no_grad()
    def _reset_rows(self, mask: np.ndarray) -> np.ndarray:
        """Redraw the envs where ``mask`` (``(N,)`` bool) from the pool; all N observations."""
        if mask.shape != (self.num_envs,) or mask.dtype != bool:
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},), got {mask!r}")
        obs = self._observations(self._state.z)
        rows = self._rng.integers(len(self._start_obs), size=int(mask.sum()))
        fresh = self._starts.index(torch.as_tensor(rows, device=self.imagination.device))
        self._state = self._state.with_rows(torch.as_tensor(mask, device=self.imagination.device), fresh)
        obs[mask] = self._start_obs[rows]
        self._elapsed[mask] = 0
        self._autoreset[mask] = False
        self._obs = obs.copy()
        return obs

    @torch.no_grad()
    def step(self, actions):
        """One imagined step of every env; envs that ended at the last step reset instead."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,) or not all(self.single_action_space.contains(a) for a in actions):
            raise ValueError(f"invalid actions {actions!r} for {self.num_envs} envs of {self.single_action_space}")
        im, device = self.imagination, self.imagination.device
        a = action_vectors(torch.as_tensor(actions, device=device), self.single_action_space)
        reward, logit = im.model.task(self._state.z, a)
        rewards = reward.double().cpu().numpy()
        ends = torch.bernoulli(logit.sigmoid(), generator=self._generator)
        nxt, _ = im.step(self._state, a, generator=self._generator, sample_z=self.sample_z)
        obs = self._observations(nxt.z)
        terminated = self.success(obs) if self.success is not None else ends.bool().cpu().numpy()
        self._elapsed += 1
        truncated = ~terminated & (self._elapsed >= self.max_episode_steps)

        resetting = self._autoreset
        if resetting.any():
            rows = self._rng.integers(len(self._start_obs), size=int(resetting.sum()))
            fresh = self._starts.index(torch.as_tensor(rows, device=device))
            nxt = nxt.with_rows(torch.as_tensor(resetting, device=device), fresh)
            obs[resetting] = self._start_obs[rows]
            rewards[resetting], terminated[resetting], truncated[resetting] = 0.0, False, False
            self._elapsed[resetting] = 0
        self._state = nxt
        self._autoreset = terminated | truncated
        self._obs = obs.copy()
        return obs, rewards, terminated, truncated, {}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """The N current frames ``(H, W, 3)`` uint8 (see ``render_mode``), or None without one."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._obs is None:
            raise RuntimeError("call reset() before render()")
        if self.imagination.config.input_mode == "pixels":
            return tuple(self._obs.copy())
        return tuple(frames_from_states(self._obs, self.render_size))

    def _observations(self, z: torch.Tensor) -> np.ndarray:
        """Decoded observations ``(N, ...)`` clipped into the real observation space."""
        if self.imagination.config.input_mode == "pixels":  # (N, 3, H, W) in [0, 1] -> uint8 frames
            decoded, _ = self.imagination.decode(z)
            frames = (decoded.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
            return frames.cpu().numpy()
        space = self.single_observation_space
        return decoded_states(self.imagination, z, space).cpu().numpy().astype(space.dtype)


class ImaginedEnv(gym.Env):
    """A single imagined env: :class:`ImaginedVectorEnv` with N = 1 (same arguments, including
    ``render_mode="rgb_array"``: :meth:`render` returns the decoded frame ``(H, W, 3)`` uint8)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, imagination: Imagination, env_id: str = "VimWorld/Steer-v0", **kwargs: Any) -> None:
        self._vec = ImaginedVectorEnv(imagination, env_id, num_envs=1, **kwargs)
        self.render_mode = self._vec.render_mode
        self.observation_space: spaces.Space = self._vec.single_observation_space
        self.action_space: spaces.Space = self._vec.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self._vec.reset(seed=seed)
        return obs[0], info

    def step(self, action):
        obs, reward, terminated, truncated, info = self._vec.step(np.asarray(action)[None])
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self) -> np.ndarray | None:
        frames = self._vec.render()
        return None if frames is None else frames[0]
