"""Loading data sets: open and verify one (:func:`open_dataset`), and stream batches of windows
from it (:class:`SequenceLoader`), split over shards and ranks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.data_format import DatasetError, check_arrays, read_meta, require_frames
from vim_world.files import sha256
from vim_world.model.config import INPUT_MODES


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
        return _load_shard(self.path, self.meta["shards"][i])

    @property
    def num_episodes(self) -> int:
        return sum(s["episodes"] for s in self.meta["shards"])

    @property
    def uses_actions(self) -> bool:
        """Whether the actions matter (control tasks) or are constant no-ops."""
        return self.meta["policy"] != "noop"


def uses_actions(dataset: Dataset) -> bool:
    """Whether the data set's actions matter (control tasks) or are constant no-ops."""
    return dataset.uses_actions


def _load_shard(root: Path, shard: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name in shard["sha256"]:
        f = root / shard["name"] / f"{name}.npy"
        try:
            arrays[name] = np.load(f, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DatasetError(f"data set file {f} is not a readable .npy array: {e}") from None
    return arrays


def open_dataset(path: str | Path, verify: bool = True) -> Dataset:
    """Open a data set: check ``meta.json``, every file against its recorded SHA-256 (with
    ``verify``), and the shapes and dtypes of every array (always; headers only).

    Raises: :class:`DatasetError` naming the missing, truncated, corrupted or malformed file.
    """
    path = Path(path)
    meta = read_meta(path)
    for shard in meta["shards"]:
        for name, digest in shard["sha256"].items():
            f = path / shard["name"] / f"{name}.npy"
            if not f.is_file():
                raise DatasetError(f"data set file {f} is missing")
            if verify and sha256(f) != digest:
                raise DatasetError(f"data set file {f} is truncated or corrupted (SHA-256 mismatch)")
    check_arrays(meta, [_load_shard(path, s) for s in meta["shards"]], path)
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
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a Dataset (from open_dataset), got {type(dataset).__name__}")
        if mode not in INPUT_MODES:
            raise ValueError(f"mode must be one of {list(INPUT_MODES)}, got {mode!r}")
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
        if mode == "pixels":
            require_frames(dataset.meta, dataset.path)
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
