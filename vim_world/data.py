"""Rollout data sets: collection through the native vector env, storage, and a streaming loader.

Format (documented in ``docs/data.md``): a directory with ``meta.json`` and one sub-directory per
shard holding plain ``.npy`` arrays (readable by numpy alone, memory-mapped when loading):

=============  ===================  =======  ==============================================
file           shape                dtype    content
=============  ===================  =======  ==============================================
pixels.npy     (E, T, H, W, 3)      uint8    frames
states.npy     (E, T, K, S)         float32  object state features (``STATE_FEATURES``)
mechanism.npy  (E, T, K)            int64    ground-truth mechanism id of each object
actions.npy    (E, T, A)            float32  action taken after frame t (one-hot if discrete)
rewards.npy    (E, T)               float32  reward received after action t
valid.npy      (E, T)               bool     False after the episode terminated
masks.npy      (E, T, K, H, W)      bool     visible object masks (if collected with masks)
=============  ===================  =======  ==============================================

``meta.json`` holds the env id and options, seed, package version, shapes, and the SHA-256 of
every file; :func:`open_dataset` verifies them and names any truncated or corrupted file.
A data set is written to a temporary directory and renamed into place; an existing one is never
overwritten unless asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

import vim_world
from vim_world.batch import Batch

FORMAT_VERSION = 1
ARRAYS = ("pixels", "states", "mechanism", "actions", "rewards", "valid", "masks")


class DatasetError(ValueError):
    """A data set is missing, truncated, corrupted or does not match what was asked for."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save_npy(path: Path, array: np.ndarray) -> str:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    return _sha256(path)


def _action_vectors(space: spaces.Space, actions: np.ndarray) -> np.ndarray:
    """``(N, ...)`` integer actions -> ``(N, A)`` float32 vectors (one-hot per discrete part)."""
    if isinstance(space, spaces.Discrete):
        return np.eye(space.n, dtype=np.float32)[actions]
    if isinstance(space, spaces.MultiDiscrete):
        return np.concatenate([np.eye(n, dtype=np.float32)[actions[:, i]] for i, n in enumerate(space.nvec)], -1)
    return np.asarray(actions, np.float32).reshape(actions.shape[0], -1)


def action_dim(space: spaces.Space) -> int:
    """Length A of the action vectors stored for ``space``."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return int(np.prod(space.shape))


def _policy_actions(space: spaces.Space, policy: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Actions for ``n`` envs: ``"noop"`` (no intervention; passive envs) or ``"random"``."""
    if policy == "random":
        if isinstance(space, spaces.Discrete):
            return rng.integers(0, space.n, n)
        return np.stack([rng.integers(0, m, n) for m in space.nvec], -1)
    if policy == "noop":
        if isinstance(space, spaces.Discrete):
            return np.zeros(n, np.int64)
        # passive task: object index K (= nvec[0] - 1) means "no intervention"
        return np.tile([space.nvec[0] - 1, 0], (n, 1))
    raise ValueError(f"unknown collection policy {policy!r}; expected 'noop' or 'random'")


def collect(
    env_id: str,
    path: str | Path,
    *,
    episodes: int,
    episode_len: int,
    seed: int = 0,
    num_envs: int = 64,
    policy: str | None = None,
    masks: bool = False,
    overwrite: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Roll out ``episodes`` episodes of ``episode_len`` frames of ``env_id`` and store them.

    Deterministic under ``seed``: shard ``j`` resets its ``num_envs`` worlds with seed
    ``seed + j * num_envs`` (world ``i`` gets ``+ i``), and random actions come from
    ``np.random.default_rng([seed, j])``. One shard holds ``num_envs`` episodes.

    Args:
        policy: ``"noop"`` (default for passive envs) or ``"random"`` (default for control tasks).
    Returns: the data set's path.
    """
    path = Path(path)
    for name, value in (("episodes", episodes), ("episode_len", episode_len), ("num_envs", num_envs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"data set {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    kwargs = dict(env_kwargs or {})
    kwargs.update(obs_mode="both", masks=masks)
    env = gym.make_vec(env_id, num_envs=num_envs, **kwargs)
    task = env.unwrapped.config.task if hasattr(env.unwrapped, "config") else "passive"
    policy = policy or ("random" if task == "steer" else "noop")
    space = env.single_action_space
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None))
    path.parent.mkdir(parents=True, exist_ok=True)
    shards = []
    n_shards = -(-episodes // num_envs)
    iterator = range(n_shards)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"collect {env_id}", unit="shard")
    try:
        for j in iterator:
            arrays = _rollout(env, space, policy, seed + j * num_envs, np.random.default_rng([seed, j]), episode_len, masks)
            keep = min(num_envs, episodes - j * num_envs)
            shard = tmp / f"shard_{j:05d}"
            shard.mkdir()
            files = {name: _save_npy(shard / f"{name}.npy", a[:keep]) for name, a in arrays.items()}
            shards.append({"name": shard.name, "episodes": keep, "sha256": files})
        meta = {
            "format_version": FORMAT_VERSION,
            "vim_world_version": vim_world.__version__,
            "env_id": env_id,
            "env_kwargs": {k: v for k, v in kwargs.items()},
            "seed": seed,
            "num_envs": num_envs,
            "policy": policy,
            "episodes": episodes,
            "episode_len": episode_len,
            "action_space": repr(space),
            "action_dim": action_dim(space),
            "shards": shards,
        }
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta, f, indent=1, default=list)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        env.close()
    return path


def _rollout(env, space, policy, seed, rng, length, masks) -> dict[str, np.ndarray]:
    obs, info = env.reset(seed=seed)
    keys = ["pixels", "states", "mechanism", "actions", "rewards", "valid"] + (["masks"] if masks else [])
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    alive = np.ones(env.num_envs, bool)
    for t in range(length):
        action = _policy_actions(space, policy, rng, env.num_envs)
        out["pixels"].append(obs["pixels"])
        out["states"].append(obs["state"])
        out["mechanism"].append(info["mechanism"])
        if masks:
            out["masks"].append(info["masks"])
        out["actions"].append(_action_vectors(space, action))
        out["valid"].append(alive.copy())
        obs, reward, terminated, truncated, info = env.step(action)
        out["rewards"].append(np.where(alive, reward, 0.0).astype(np.float32))
        alive &= ~(terminated | truncated)
    return {k: np.stack(v, 1) for k, v in out.items()}


@dataclass(frozen=True)
class Dataset:
    """An opened, verified data set."""

    path: Path
    meta: dict[str, Any]

    @property
    def shard_dirs(self) -> list[Path]:
        return [self.path / s["name"] for s in self.meta["shards"]]

    def load_shard(self, i: int) -> dict[str, np.ndarray]:
        """Arrays of shard ``i``, memory-mapped."""
        d = self.shard_dirs[i]
        return {name: np.load(d / f"{name}.npy", mmap_mode="r") for name in self.meta["shards"][i]["sha256"]}

    @property
    def num_episodes(self) -> int:
        return sum(s["episodes"] for s in self.meta["shards"])


def open_dataset(path: str | Path, verify: bool = True) -> Dataset:
    """Open a data set and, with ``verify``, check every file against its recorded SHA-256.

    Raises: :class:`DatasetError` naming the missing, truncated or corrupted file.
    """
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{str(path)!r} is not a vim_world data set: {meta_path} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{meta_path} is corrupted: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{meta_path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    for shard in meta["shards"]:
        for name, digest in shard["sha256"].items():
            f = path / shard["name"] / f"{name}.npy"
            if not f.is_file():
                raise DatasetError(f"data set file {f} is missing")
            if verify and _sha256(f) != digest:
                raise DatasetError(f"data set file {f} is truncated or corrupted (SHA-256 mismatch)")
    return Dataset(path, meta)


class SequenceLoader:
    """Batches of random windows from a data set, memory-mapped: nothing is held in memory
    beyond the batch.

    Batch ``i`` is a pure function of ``(seed, i)`` (:meth:`batch_at`), so a resumed training
    run sees exactly the batches it would have seen, whatever the number of restarts.

    Args:
        mode: ``"pixels"`` -> ``obs (B, T, 3, H, W)`` float32 in [0, 1]; ``"state"`` -> ``obs
            (B, T, K, S)``. Labels (mechanism, states, actions, rewards, masks) come along.
        shard_indices: restrict to these shards (e.g. one rank's share, or a held-out split).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        seq_len: int,
        mode: str = "pixels",
        seed: int = 0,
        shard_indices: list[int] | None = None,
        device: torch.device | str = "cpu",
    ):
        if mode not in ("pixels", "state"):
            raise ValueError(f"mode must be 'pixels' or 'state', got {mode!r}")
        ep_len = dataset.meta["episode_len"]
        if not 1 <= seq_len <= ep_len:
            raise ValueError(f"seq_len must be in [1, {ep_len}] (the episode length), got {seq_len}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.dataset = dataset
        self.batch_size, self.seq_len, self.mode, self.seed = batch_size, seq_len, mode, seed
        shards = list(range(len(dataset.shard_dirs))) if shard_indices is None else list(shard_indices)
        if not shards:
            raise ValueError("shard_indices selects no shard")
        self.arrays = [dataset.load_shard(i) for i in shards]
        counts = [a["valid"].shape[0] for a in self.arrays]
        self._shard_of = np.repeat(np.arange(len(shards)), counts)  # global episode -> shard
        self._local = np.concatenate([np.arange(c) for c in counts])  # -> episode in shard
        self.device = torch.device(device)

    @property
    def num_episodes(self) -> int:
        return self._shard_of.size

    def batch_at(self, index: int) -> Batch:
        """Batch number ``index``: episodes and window starts drawn from ``rng([seed, index])``."""
        rng = np.random.default_rng([self.seed, index])
        episodes = rng.integers(0, self.num_episodes, self.batch_size)
        starts = rng.integers(0, self.dataset.meta["episode_len"] - self.seq_len + 1, self.batch_size)
        return self._gather(episodes, starts)

    def __iter__(self) -> Iterator[Batch]:
        """One ordered pass over every episode (windows from the start), e.g. for evaluation."""
        for b in range(0, self.num_episodes, self.batch_size):
            episodes = np.arange(b, min(b + self.batch_size, self.num_episodes))
            yield self._gather(episodes, np.zeros_like(episodes))

    def _gather(self, episodes: np.ndarray, starts: np.ndarray) -> Batch:
        steps = starts[:, None] + np.arange(self.seq_len)
        shard, local = self._shard_of[episodes], self._local[episodes]

        def take(name: str) -> torch.Tensor:
            first = self.arrays[0][name]
            out = np.empty((episodes.size, self.seq_len, *first.shape[2:]), first.dtype)
            for s in np.unique(shard):  # a loop over the few shards touched, not over samples
                rows = shard == s
                out[rows] = self.arrays[s][name][local[rows][:, None], steps[rows]]
            return torch.from_numpy(out)

        states = take("states")
        obs = take("pixels").permute(0, 1, 4, 2, 3).float().div_(255.0) if self.mode == "pixels" else states
        batch = Batch(
            obs=obs, actions=take("actions"), rewards=take("rewards"), mechanism=take("mechanism"),
            states=states, masks=take("masks") if "masks" in self.arrays[0] else None,
        )  # fmt: skip
        return batch.to(self.device)


def split_shards(dataset: Dataset, holdout: float) -> tuple[list[int], list[int]]:
    """Train and held-out shard indices (the last ``ceil(holdout * n)`` shards are held out)."""
    n = len(dataset.shard_dirs)
    k = max(1, int(np.ceil(holdout * n))) if n > 1 else 0
    return list(range(n - k)), list(range(n - k, n))
