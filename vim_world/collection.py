"""Collecting data sets: roll out the native vector env shard by shard and write the arrays
(format: :mod:`vim_world.data_format`, ``docs/data.md``).

Sizes are bounded before anything runs: a shard is held in memory while it is rolled out, so
``workers x`` its size must stay under :data:`MAX_COLLECT_MEMORY`, and the whole data set must fit
the free disk space; otherwise a ValueError says how much is needed and what to lower.
"""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import vim_world
import vim_world.envs
from vim_world.actions import action_dim, action_vectors
from vim_world.data_format import FORMAT_VERSION, DatasetError, is_dataset
from vim_world.files import check_replaceable, sha256, staged_directory
from vim_world.loading import open_dataset

MAX_COLLECT_MEMORY = 4 << 30
"""Bytes of shards that collection may hold in memory at once (4 GiB): ``workers`` shards of
``num_envs x episode_len`` steps, counted twice (the per-step list and the stacked array)."""


def check_collection_size(
    env_id: str, env_kwargs: dict[str, Any], episodes: int, episode_len: int, num_envs: int, workers: int, where: Path
) -> None:
    """ValueError, before any work, when one collection would hold more than
    :data:`MAX_COLLECT_MEMORY` in memory or write more than the free disk space at ``where``.
    Also names unknown or bad ``env_kwargs`` (the env is built once here)."""
    env = gym.make(env_id, **env_kwargs)
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    spaces_ = obs_space.spaces if isinstance(obs_space, spaces.Dict) else {"state": obs_space}
    k, s = spaces_["state"].shape
    per_step = k * s * 4 + k * 8 + action_dim(act_space) * 4 + 4 + 1
    if "pixels" in spaces_:
        h, w, _ = spaces_["pixels"].shape
        per_step += h * w * 3 + (k * h * w if env_kwargs.get("masks") else 0)
    shard = num_envs * episode_len * per_step
    memory = 2 * shard * workers
    if memory > MAX_COLLECT_MEMORY:
        raise ValueError(
            f"collection would hold {memory / 2**30:.1f} GiB in memory ({workers} worker(s) x {num_envs} envs x "
            f"{episode_len} steps x {per_step} bytes, twice), above the cap of {MAX_COLLECT_MEMORY / 2**30:.0f} GiB; "
            "lower --num-envs, --episode-len or --workers"
        )
    total = episodes * episode_len * per_step
    free = shutil.disk_usage(where).free
    if total > free:
        raise ValueError(
            f"the data set would take {total / 2**30:.1f} GiB but {str(where)!r} has "
            f"{free / 2**30:.1f} GiB free; lower --episodes or --episode-len"
        )


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


class Agent(Protocol):
    """An agent as :func:`collect` and ``vim_world.agents.evaluation.run_episodes`` drive it: ``act``
    on a batch of observations ``(N, ...)``, ``reset`` before new episodes."""

    def reset(self) -> None: ...

    def act(self, observations: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _CollectJob:
    """What every shard of one collection shares (sent to the worker processes)."""

    env_id: str
    env_kwargs: dict[str, Any]
    num_envs: int
    policy: str | Agent | None
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
        arrays = _rollout(
            self.env, self.space, self.policy, job.seed + j * job.num_envs, rng, job.episode_len, job.masks
        )
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


def collect_once(env_id: str, path: str | Path, **kwargs: Any) -> Path:
    """``path`` if it holds a data set that verifies on load and was collected with these options,
    else :func:`collect` of ``env_id`` into it with ``kwargs``, replacing what was there (a broken
    vim_world data set, or one of other options, with a warning that names them): how the main job
    and the benchmarks reuse their data on a rerun.

    The options compared are those ``meta.json`` records: ``env_id``, ``env_kwargs`` (with
    ``masks``), ``seed``, ``num_envs``, ``episodes``, ``episode_len`` and, where ``kwargs`` names
    one, ``policy`` (an agent by its class name); ``workers`` and ``progress`` change no byte.
    """
    try:
        meta = open_dataset(path).meta
    except DatasetError:
        return collect(env_id, path, overwrite=True, **kwargs)
    wanted = _recorded_options(env_id, path, kwargs)
    if wanted["policy"] is None:  # the env's default, which meta.json records by name
        wanted.pop("policy")
    differ = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
    if not differ:
        return Path(path)
    detail = ", ".join(f"{k}: stored {old!r}, asked {new!r}" for k, (old, new) in differ.items())
    warnings.warn(
        f"data set {str(path)!r} was collected with other options ({detail}); collecting it again", stacklevel=2
    )
    return collect(env_id, path, overwrite=True, **kwargs)


def _recorded_options(env_id: str, path: str | Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options of ``collect(env_id, path, **kwargs)`` as its ``meta.json`` records them (JSON
    values), defaults filled in from :func:`collect`'s signature."""
    call = inspect.signature(collect).bind(env_id, path, **kwargs)
    call.apply_defaults()
    a = call.arguments
    policy = a["policy"]
    return {
        "env_id": env_id,
        "env_kwargs": json.loads(json.dumps(_env_options(a["env_kwargs"], a["masks"]), default=list)),
        "seed": int(a["seed"]),
        "num_envs": int(a["num_envs"]),
        "policy": policy if isinstance(policy, str) or policy is None else type(policy).__name__,
        "episodes": int(a["episodes"]),
        "episode_len": int(a["episode_len"]),
    }


def collect(
    env_id: str,
    path: str | Path,
    *,
    episodes: int,
    episode_len: int,
    seed: int = 0,
    num_envs: int = 64,
    policy: str | Agent | None = None,
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
        policy: ``"noop"`` (default for passive envs), ``"random"`` (default for control tasks),
            or an agent (``act(states (N, K, S)) -> actions (N, ...)`` and ``reset()``, e.g.
            :class:`~vim_world.agents.MPCAgent`): it acts in each shard's ``num_envs`` worlds at
            once, is reset before every shard, and is recorded in ``meta.json`` by class name.
            Agents run in this process (``workers=1``).
        workers: processes that roll out shards (one shard per task).
    Returns: the data set's path.
    Raises: ValueError naming a bad argument; FileExistsError when ``path`` exists and
        ``overwrite`` is False.
    """
    path = Path(path)
    for name, value in (
        ("episodes", episodes),
        ("episode_len", episode_len),
        ("num_envs", num_envs),
        ("workers", workers),
    ):
        _check_positive_int(name, value)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if env_id not in vim_world.envs.env_ids():
        raise ValueError(f"env_id must be a vim_world env, one of {vim_world.envs.env_ids()}, got {env_id!r}")
    if isinstance(policy, str) or policy is None:
        if policy not in (None, "noop", "random"):
            raise ValueError(f"unknown collection policy {policy!r}; expected 'noop', 'random' or an agent")
    elif not (callable(getattr(policy, "act", None)) and callable(getattr(policy, "reset", None))):
        raise TypeError(f"policy must be 'noop', 'random' or an agent with act() and reset(), got {policy!r}")
    elif workers != 1:
        raise ValueError(f"an agent policy acts in this process: workers must be 1, got {workers!r}")
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise TypeError(f"env_kwargs must be a dict of env options, got {env_kwargs!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"data set {str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    check_replaceable(path, is_dataset, "vim_world data set (no meta.json written by vim_world)")
    kwargs = _env_options(env_kwargs, masks)
    n_shards = -(-episodes // num_envs)
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    check_collection_size(
        env_id, kwargs, int(episodes), int(episode_len), int(num_envs), min(int(workers), n_shards), existing
    )
    writer = None
    try:
        with staged_directory(path, f".{path.name}.") as tmp:
            job = _CollectJob(
                env_id, kwargs, int(num_envs), policy, int(seed), int(episodes), int(episode_len), bool(masks), str(tmp)
            )
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
                "policy": writer.policy if isinstance(writer.policy, str) else type(writer.policy).__name__,
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


def _env_options(env_kwargs: dict[str, Any] | None, masks: bool) -> dict[str, Any]:
    """The env options a collection makes its envs with: states always, frames unless the caller
    asked for ``obs_mode="state"``, and ``masks``."""
    kwargs = dict(env_kwargs or {})
    kwargs.update(obs_mode="state" if kwargs.get("obs_mode") == "state" else "both", masks=bool(masks))
    return kwargs


def _rollout(
    env: gym.vector.VectorEnv,
    space: spaces.Space,
    policy: str | Agent,
    seed: int,
    rng: np.random.Generator,
    length: int,
    masks: bool,
) -> dict[str, np.ndarray]:
    """``length`` steps of every world of ``env`` from ``reset(seed=seed)``: arrays ``(N, T, ...)``."""
    obs, info = env.reset(seed=seed)
    keys = ["pixels", "states", "mechanism", "actions", "rewards", "valid"] + (["masks"] if masks else [])
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    alive = np.ones(env.num_envs, bool)
    if not isinstance(policy, str):
        policy.reset()
    for _ in range(length):
        if isinstance(policy, str):
            action = _policy_actions(space, policy, rng, env.num_envs)
        else:
            action = np.asarray(policy.act(obs["state"] if isinstance(obs, dict) else obs))
        if isinstance(obs, dict):
            out["pixels"].append(obs["pixels"])
        out["states"].append(obs["state"] if isinstance(obs, dict) else obs)
        out["mechanism"].append(info["mechanism"])
        if masks:
            out["masks"].append(info["masks"])
        out["actions"].append(action_vectors(np.asarray(action), space))
        out["valid"].append(alive.copy())
        obs, reward, terminated, truncated, info = env.step(action)
        out["rewards"].append(np.where(alive, reward, 0.0).astype(np.float32))
        alive &= ~(terminated | truncated)
    return {k: np.stack(v, 1) for k, v in out.items() if v}


MERGE_KEYS = ("env_id", "env_kwargs", "episode_len", "action_space", "action_dim")
"""``meta.json`` entries that data sets must share to be merged."""


def merge(sources: Sequence[str | Path], path: str | Path, *, overwrite: bool = False) -> Path:
    """One data set holding every episode of ``sources``, in order: e.g. random-policy data and
    the episodes a planner collected later with the model trained on it (data aggregation, as
    PETS and PlaNet iterate).

    Each source is opened (and verified) first; they must share :data:`MERGE_KEYS` and the same
    arrays (frames and masks in all or none). Shard files are copied and keep their recorded
    SHA-256; ``meta.json`` takes the first source's entries, the total ``episodes``, the distinct
    policies joined by ``+``, and a ``sources`` list (path, seed, policy, episodes of each).

    Raises: ValueError naming the first entry that differs, or a bad argument; FileExistsError
        when ``path`` exists and ``overwrite`` is False.
    """
    from vim_world.loading import open_dataset

    path = Path(path)
    if isinstance(sources, (str, Path)) or len(sources) < 1:
        raise ValueError(f"sources must be a non-empty list of data set paths, got {sources!r}")
    metas = [open_dataset(src).meta for src in sources]
    first = metas[0]
    for src, meta in zip(sources[1:], metas[1:]):
        for key in MERGE_KEYS:
            if meta.get(key) != first.get(key):
                raise ValueError(
                    f"cannot merge {str(src)!r} into {str(sources[0])!r}: {key} is {meta.get(key)!r}, "
                    f"expected {first.get(key)!r}"
                )
        if set(meta["shards"][0]["sha256"]) != set(first["shards"][0]["sha256"]):
            raise ValueError(
                f"cannot merge {str(src)!r} into {str(sources[0])!r}: arrays {sorted(meta['shards'][0]['sha256'])}, "
                f"expected {sorted(first['shards'][0]['sha256'])}"
            )
    if path.exists() and not overwrite:
        raise FileExistsError(f"data set {str(path)!r} exists; pass overwrite=True to replace it")
    check_replaceable(path, is_dataset, "vim_world data set (no meta.json written by vim_world)")
    with staged_directory(path, f".{path.name}.") as tmp:
        shards = []
        for src, meta in zip(sources, metas):
            for shard in meta["shards"]:
                name = f"shard_{len(shards):05d}"
                shutil.copytree(Path(src) / shard["name"], tmp / name)
                shards.append({**shard, "name": name})
        merged = {
            **first,
            "episodes": sum(int(m["episodes"]) for m in metas),
            "policy": "+".join(dict.fromkeys(m["policy"] for m in metas)),
            "sources": [
                {"path": str(src), "seed": m.get("seed"), "policy": m["policy"], "episodes": m["episodes"]}
                for src, m in zip(sources, metas)
            ],
            "shards": shards,
        }
        with open(tmp / "meta.json", "w") as f:
            json.dump(merged, f, indent=1, default=list)
            f.flush()
            os.fsync(f.fileno())
    return path
