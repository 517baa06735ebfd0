"""Gymnasium vector envs as Stable-Baselines3 ``VecEnv`` s, without giving up batched stepping.

SB3 drives N envs through its own ``VecEnv`` interface, and ``DummyVecEnv`` steps N single envs
in a Python loop. :func:`as_sb3_vec_env` lets SB3 step a Gymnasium ``VectorEnv`` (the native
mechanism-world vector env from ``gymnasium.make_vec``, or an
:class:`~vim_world.imagined_env.ImaginedVectorEnv`) in one batched call per step.

Auto-reset: SB3 expects a finished env to be reset within the same step, its last observation in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` set on truncation.
Gymnasium 1.x vector envs reset in one of three ways (``metadata["autoreset_mode"]``), each
translated here:

- ``SAME_STEP``: the env already returns reset observations; the last ones come in
  ``info["final_obs"]``;
- ``NEXT_STEP`` (our envs) and ``DISABLED``: the wrapper resets only the finished envs right away
  with ``reset(options={"reset_mask": done})``, Gymnasium's partial-reset call, which the env must
  accept (a ``ValueError`` says so when it does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

__all__ = ["GymnasiumVecEnv", "as_sb3_vec_env"]


def _rows(obs: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of a batched observation (an array, or a dict of arrays)."""
    if isinstance(obs, dict):
        return {k: _rows(v, rows) for k, v in obs.items()}
    return obs[rows]


def _assign(dst: Any, rows: np.ndarray, src: Any) -> None:
    """``dst[rows] = src`` for an array or a dict of arrays (in place)."""
    if isinstance(dst, dict):
        for k in dst:
            _assign(dst[k], rows, src[k])
    else:
        dst[rows] = src


def _one(obs: Any, i: int) -> Any:
    """Env ``i``'s observation, a copy (SB3 keeps it beside the batch it will overwrite)."""
    if isinstance(obs, dict):
        return {k: _one(v, i) for k, v in obs.items()}
    return np.array(obs[i], copy=True)


def _copy(obs: Any) -> Any:
    """A copy of a batched observation (the vector env may reuse its arrays)."""
    if isinstance(obs, dict):
        return {k: _copy(v) for k, v in obs.items()}
    return np.array(obs, copy=True)


def _split_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's batched info dict (``key`` and its mask ``_key``) -> SB3's list of N dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}", np.ones(n, bool))
        per_env = _split_infos(value, n) if isinstance(value, dict) else value
        for i in np.flatnonzero(mask):
            out[i][key] = per_env[i]
    return out


class GymnasiumVecEnv(VecEnv):
    """A Gymnasium ``VectorEnv`` behind SB3's ``VecEnv`` interface (see :func:`as_sb3_vec_env`).

    Observations ``(N, *obs_shape)`` (or a dict of them), rewards ``(N,)`` float32, dones ``(N,)``
    bool, infos a list of N dicts, exactly what SB3's ``DummyVecEnv`` returns for the same envs.
    """

    def __init__(self, vector_env: gym.vector.VectorEnv) -> None:
        if not isinstance(vector_env, gym.vector.VectorEnv):
            raise TypeError(f"vector_env must be a gymnasium.vector.VectorEnv, got {type(vector_env).__name__}")
        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if isinstance(mode, str):
            mode = AutoresetMode(mode)
        self.venv = vector_env
        self.autoreset_mode = mode
        self._actions: np.ndarray | None = None
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
        self.metadata = {**vector_env.metadata, **self.metadata}

    # ---------------------------------------------------------------------------- stepping

    def reset(self) -> VecEnvObs:
        """Reset every env; seeds set with :meth:`seed` apply to this reset only (SB3 semantics)."""
        seeds = self._seeds[0] if self._seeds and self._seeds[0] is not None else None  # env i: seed + i
        options = self._options[0] if self._options and all(o == self._options[0] for o in self._options) else None
        obs, infos = self.venv.reset(seed=seeds, options=options or None)
        self.reset_infos = _split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        dones = terminated | truncated
        info_list = _split_infos(infos, self.num_envs)
        done_rows = np.flatnonzero(dones)
        if done_rows.size:
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                final = infos["final_obs"]
                last = {int(i): final[i] for i in done_rows}
            else:
                last = {int(i): _one(obs, int(i)) for i in done_rows}
                fresh, reset_infos = self._partial_reset(dones)
                obs = _copy(obs)
                _assign(obs, done_rows, _rows(fresh, done_rows))
                reset_list = _split_infos(reset_infos, self.num_envs)
                for i in done_rows:
                    self.reset_infos[i] = reset_list[i]
            for i in done_rows:
                info_list[i].pop("final_obs", None)
                info_list[i].pop("final_info", None)
                info_list[i]["terminal_observation"] = last[int(i)]
                info_list[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, np.float32), dones, info_list

    def _partial_reset(self, mask: np.ndarray) -> tuple[Any, dict[str, Any]]:
        try:
            return self.venv.reset(options={"reset_mask": mask})
        except TypeError as e:
            raise ValueError(
                f"{type(self.venv.unwrapped).__name__} resets on the next step and does not accept "
                "reset(options={'reset_mask': mask}); SB3 needs finished envs reset within the step"
            ) from e

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed the next :meth:`reset`: env ``i`` gets ``seed + i`` (SB3's and Gymnasium's convention;
        the vector env receives the int ``seed``)."""
        self._seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        return self._seeds

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    # ------------------------------------------------------------------- attributes / methods

    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per env index (all envs share one object)."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if indices is not None and list(self._indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"set_attr({attr_name!r}) on a subset {indices!r} of a batched env: it has one attribute for all"
            )
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the vector env's method once and return its result for each index."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always False: a batched env has no per-env Gymnasium wrappers."""
        return [False for _ in self._indices(indices)]


def as_sb3_vec_env(vector_env: gym.vector.VectorEnv) -> GymnasiumVecEnv:
    """Wrap a Gymnasium ``VectorEnv`` as an SB3 ``VecEnv`` that steps all N envs in one call.

    Example::

        venv = as_sb3_vec_env(gym.make_vec("VimWorld/Steer-v0", num_envs=16, obs_mode="state"))
        PPO("MlpPolicy", venv).learn(10_000)

    Raises: TypeError for anything but a ``gymnasium.vector.VectorEnv``.
    """
    return GymnasiumVecEnv(vector_env)
