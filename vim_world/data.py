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

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

import vim_world
import vim_world.envs
from vim_world.actions import action_dim, action_vectors
from vim_world.batch import Batch
from vim_world.files import sha256, staged_directory

FORMAT_VERSION = 1
ARRAYS = ("pixels", "states", "mechanism", "actions", "rewards", "valid", "masks")


class DatasetError(ValueError):
    """A data set is missing, truncated, corrupted or does not match what was asked for."""


def _save_npy(path: Path, array: np.ndarray) -> str:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    return sha256(path)


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


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class _CollectJob:
    """What every shard of one collection shares (sent to the worker processes)."""

    env_id: str
    env_kwargs: dict[str, Any]
    num_envs: int
    policy: str | None
    seed: int
    episodes: int
    episode_len: int
    masks: bool
    root: str


class _ShardWriter:
    """Rolls out and writes shards of one job with its own native vector env."""

    def __init__(self, job: _CollectJob) -> None:
        self.job = job
        self.env = gym.make_vec(job.env_id, num_envs=job.num_envs, **job.env_kwargs)
        task = self.env.unwrapped.config.task if hasattr(self.env.unwrapped, "config") else "passive"
        self.policy = job.policy or ("random" if task == "steer" else "noop")
        self.space = self.env.single_action_space

    def write(self, j: int) -> dict[str, Any]:
        """Shard ``j``: reset seed ``seed + j * num_envs``, actions from ``rng([seed, j])``."""
        job = self.job
        rng = np.random.default_rng([job.seed, j])
        arrays = _rollout(self.env, self.space, self.policy, job.seed + j * job.num_envs, rng, job.episode_len, job.masks)
        keep = min(job.num_envs, job.episodes - j * job.num_envs)
        shard = Path(job.root) / f"shard_{j:05d}"
        shard.mkdir()
        files = {name: _save_npy(shard / f"{name}.npy", a[:keep]) for name, a in arrays.items()}
        return {"name": shard.name, "episodes": keep, "sha256": files}

    def close(self) -> None:
        self.env.close()


_WORKER: _ShardWriter | None = None
"""The shard writer of a worker process (set by :func:`_init_worker`)."""


def _init_worker(job: _CollectJob) -> None:
    global _WORKER
    _WORKER = _ShardWriter(job)


def _worker_write(j: int) -> dict[str, Any]:
    assert _WORKER is not None, "_init_worker did not run in this process"
    return _WORKER.write(j)


def _write_shards(writer: _ShardWriter, n_shards: int, workers: int) -> Iterator[dict[str, Any]]:
    """Shard metadata in shard order; shards are written by ``workers`` processes (spawned, so
    that nothing of the caller's state, threads or CUDA context is inherited)."""
    if workers == 1:
        yield from map(writer.write, range(n_shards))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(writer.job,)) as pool:
        yield from pool.map(_worker_write, range(n_shards))


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
    workers: int = 1,
) -> Path:
    """Roll out ``episodes`` episodes of ``episode_len`` frames of ``env_id`` and store them.

    Deterministic under ``seed``: shard ``j`` resets its ``num_envs`` worlds with seed
    ``seed + j * num_envs`` (world ``i`` gets ``+ i``), and random actions come from
    ``np.random.default_rng([seed, j])``. One shard holds ``num_envs`` episodes. Shards are
    independent, so ``workers`` processes write them in parallel and the data set's bytes do not
    depend on ``workers``.

    Args:
        policy: ``"noop"`` (default for passive envs) or ``"random"`` (default for control tasks).
        workers: processes that roll out shards (one shard per task).
    Returns: the data set's path.
    Raises: ValueError naming a bad argument; FileExistsError when ``path`` exists and
        ``overwrite`` is False.
    """
    path = Path(path)
    for name, value in (("episodes", episodes), ("episode_len", episode_len), ("num_envs", num_envs), ("workers", workers)):
        _check_positive_int(name, value)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if env_id not in vim_world.envs.env_ids():
        raise ValueError(f"env_id must be a vim_world env, one of {vim_world.envs.env_ids()}, got {env_id!r}")
    if policy not in (None, "noop", "random"):
        raise ValueError(f"unknown collection policy {policy!r}; expected 'noop' or 'random'")
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise TypeError(f"env_kwargs must be a dict of env options, got {env_kwargs!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"data set {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    kwargs = dict(env_kwargs or {})
    kwargs.update(obs_mode="both", masks=bool(masks))
    n_shards = -(-episodes // num_envs)
    writer = None
    try:
        with staged_directory(path, f".{path.name}.") as tmp:
            job = _CollectJob(env_id, kwargs, int(num_envs), policy, int(seed), int(episodes), int(episode_len), bool(masks), str(tmp))
            writer = _ShardWriter(job)
            shards = _write_shards(writer, n_shards, min(int(workers), n_shards))
            if progress:
                from tqdm import tqdm

                shards = tqdm(shards, total=n_shards, desc=f"collect {env_id}", unit="shard")
            meta = {
                "format_version": FORMAT_VERSION,
                "vim_world_version": vim_world.__version__,
                "env_id": env_id,
                "env_kwargs": kwargs,
                "seed": int(seed),
                "num_envs": int(num_envs),
                "policy": writer.policy,
                "episodes": int(episodes),
                "episode_len": int(episode_len),
                "action_space": repr(writer.space),
                "action_dim": action_dim(writer.space),
                "shards": list(shards),
            }
            with open(tmp / "meta.json", "w") as f:
                json.dump(meta, f, indent=1, default=list)
                f.flush()
                os.fsync(f.fileno())
    finally:
        if writer is not None:
            writer.close()
    return path


def _rollout(env: gym.vector.VectorEnv, space: spaces.Space, policy: str, seed: int, rng: np.random.Generator,
             length: int, masks: bool) -> dict[str, np.ndarray]:
    """``length`` steps of every world of ``env`` from ``reset(seed=seed)``: arrays ``(N, T, ...)``."""
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
        out["actions"].append(action_vectors(np.asarray(action), space))
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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{meta_path} is corrupted: {e}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else meta
        raise DatasetError(f"{meta_path}: format_version {version!r}, expected {FORMAT_VERSION}")
    _check_meta(meta, meta_path)
    for shard in meta["shards"]:
        for name, digest in shard["sha256"].items():
            f = path / shard["name"] / f"{name}.npy"
            if not f.is_file():
                raise DatasetError(f"data set file {f} is missing")
            if verify and sha256(f) != digest:
                raise DatasetError(f"data set file {f} is truncated or corrupted (SHA-256 mismatch)")
    return Dataset(path, meta)


_META_KEYS = {"env_id": str, "policy": str, "episode_len": int, "action_dim": int, "shards": list}
_SHARD_KEYS = {"name": str, "episodes": int, "sha256": dict}


def _check_meta(meta: dict[str, Any], where: Path) -> None:
    """Every ``meta.json`` key the loader reads is present and of the right type."""
    for key, kind in _META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise DatasetError(f"{where} is corrupted: {key!r} should be a {kind.__name__}, got {meta.get(key)!r}")
    if not meta["shards"]:
        raise DatasetError(f"{where} lists no shard")
    for i, shard in enumerate(meta["shards"]):
        for key, kind in _SHARD_KEYS.items():
            if not isinstance(shard, dict) or not isinstance(shard.get(key), kind):
                raise DatasetError(f"{where} is corrupted: shards[{i}] lacks a {kind.__name__} {key!r}")
        unknown = set(shard["sha256"]) - set(ARRAYS)
        if unknown or not {"states", "valid"} <= set(shard["sha256"]):
            raise DatasetError(f"{where} is corrupted: shards[{i}] lists files {sorted(shard['sha256'])}")


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
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a Dataset (from open_dataset), got {type(dataset).__name__}")
        if mode not in ("pixels", "state"):
            raise ValueError(f"mode must be 'pixels' or 'state', got {mode!r}")
        ep_len = dataset.meta["episode_len"]
        if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or not 1 <= seq_len <= ep_len:
            raise ValueError(f"seq_len must be in [1, {ep_len}] (the episode length), got {seq_len!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.dataset = dataset
        self.batch_size, self.seq_len, self.mode, self.seed = int(batch_size), int(seq_len), mode, int(seed)
        n = len(dataset.shard_dirs)
        shards = list(range(n)) if shard_indices is None else list(shard_indices)
        if not shards:
            raise ValueError("shard_indices selects no shard")
        bad = [i for i in shards if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n]
        if bad:
            raise ValueError(f"shard_indices {bad} are not shard indices in [0, {n})")
        if mode == "pixels" and "pixels" not in dataset.meta["shards"][0]["sha256"]:
            raise ValueError(f"mode 'pixels' needs pixels.npy, which {dataset.path} does not hold")
        self.arrays = [dataset.load_shard(i) for i in shards]
        counts = [a["valid"].shape[0] for a in self.arrays]
        self._shard_of = np.repeat(np.arange(len(shards)), counts)  # global episode -> shard
        self._local = np.concatenate([np.arange(c) for c in counts])  # -> episode in shard
        # Windows never cross the end of an episode (a control task's reset): each episode offers
        # the starts whose whole window is valid, and episodes shorter than a window none.
        self._valid_len = np.concatenate([np.asarray(a["valid"]).sum(1) for a in self.arrays])
        self._windowed = np.flatnonzero(self._valid_len >= self.seq_len)
        if self._windowed.size == 0:
            raise ValueError(f"no episode has {self.seq_len} valid steps for a window; use a smaller seq_len")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None

    @property
    def num_episodes(self) -> int:
        return self._shard_of.size

    def batch_at(self, index: int, rank: int = 0, world_size: int = 1) -> Batch:
        """Batch number ``index``: episodes and window starts drawn from ``rng([seed, index])``;
        every window lies within its episode's valid steps.

        With ``world_size > 1``, only rank ``rank``'s rows of that global batch:
        ``rank_rows(batch_size, rank, world_size)``. The global batch, and so the training
        step, is the same whatever the number of processes.
        """
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}")
        rows = rank_rows(self.batch_size, rank, world_size)
        rng = np.random.default_rng([self.seed, index])
        episodes = self._windowed[rng.integers(0, self._windowed.size, self.batch_size)]
        starts = (rng.random(self.batch_size) * (self._valid_len[episodes] - self.seq_len + 1)).astype(np.int64)
        return self._gather(episodes[rows], starts[rows])

    def __iter__(self) -> Iterator[Batch]:
        """One ordered pass over every episode (windows from the start), e.g. for evaluation."""
        for b in range(0, self.num_episodes, self.batch_size):
            episodes = np.arange(b, min(b + self.batch_size, self.num_episodes))
            yield self._gather(episodes, np.zeros_like(episodes))

    def _gather(self, episodes: np.ndarray, starts: np.ndarray) -> Batch:
        steps = starts[:, None] + np.arange(self.seq_len)
        shard, local = self._shard_of[episodes], self._local[episodes]

        def take(name: str, at: np.ndarray = steps) -> torch.Tensor:
            first = self.arrays[0][name]
            out = np.empty((episodes.size, self.seq_len, *first.shape[2:]), first.dtype)
            for s in np.unique(shard):  # a loop over the few shards touched, not over samples
                rows = shard == s
                out[rows] = self.arrays[s][name][local[rows][:, None], at[rows]]
            return torch.from_numpy(out)

        states = take("states")
        obs = take("pixels").permute(0, 1, 4, 2, 3).float().div_(255.0) if self.mode == "pixels" else states
        # Action t ended the episode where step t is valid and step t + 1 (within the episode) is not.
        ep_len = self.arrays[0]["valid"].shape[1]
        in_episode = torch.from_numpy(steps + 1 < ep_len)
        ended = take("valid") & in_episode & ~take("valid", np.minimum(steps + 1, ep_len - 1))
        batch = Batch(
            obs=obs, actions=take("actions"), rewards=take("rewards"), terminations=ended,
            mechanism=take("mechanism"),
            states=states, masks=take("masks") if "masks" in self.arrays[0] else None,
        )  # fmt: skip
        return batch.to(self.device)


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous rows of a global batch split evenly over ``world_size`` ranks.

    Raises: ValueError unless ``world_size`` divides ``batch_size`` (equal parts make the mean
    of the per-rank losses the global mean) and ``0 <= rank < world_size``.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
    if batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} is not divisible by the number of processes {world_size}")
    per = batch_size // world_size
    return slice(rank * per, (rank + 1) * per)


def split_shards(dataset: Dataset, holdout: float) -> tuple[list[int], list[int]]:
    """Train and held-out shard indices: the last ``ceil(holdout * n)`` shards are held out (none
    for ``holdout = 0``; always at least one shard is left for training)."""
    n = len(dataset.shard_dirs)
    k = min(int(np.ceil(holdout * n)), n - 1) if holdout > 0 else 0
    return list(range(n - k)), list(range(n - k, n))
