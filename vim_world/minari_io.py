"""Minari 0.5.4 in and out: a collected data set as a Minari dataset, and back.

Needs the ``minari`` extra (``pip install "vim-world[minari]"``: Minari with its HDF5 storage);
no JAX: episodes are handed to ``minari.create_dataset_from_buffers`` as ``EpisodeBuffer`` s built
from our arrays. Frames are stored losslessly (``jpeg_encoding=False``). Datasets live where
Minari keeps them: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``.

Layout of one Minari episode (one row ``e`` of a shard; T frames; ``vim_world.data`` names):

=============================  ===========================  =====================================
Minari field                   shape                        from
=============================  ===========================  =====================================
observations["pixels"]         (T, H, W, 3) uint8           pixels[e]
observations["state"]          (T, K, S) float32            states[e]
actions                        (T - 1, A) float32           actions[e, :-1]
rewards                        (T - 1,) float32             rewards[e, :-1]
terminations                   (T - 1,) bool                valid[e, t] and not valid[e, t + 1]
truncations                    (T - 1,) bool                True at the last step if never ended
infos["mechanism"]             (T, K) int64                 mechanism[e]
infos["valid"]                 (T,) bool                    valid[e]
infos["action"] / ["reward"]   (T, A) / (T,)                actions[e] / rewards[e], all T
infos["masks"]                 (T, K, H, W) bool            masks[e] (when collected)
=============================  ===========================  =====================================

A Minari step is (observation t, action t, reward t, observation t + 1), so a T-frame episode
has T - 1 steps; the action taken after the last frame rides in ``infos["action"]``, so that
nothing is lost. Steps after a termination (``valid`` False: the native vector env's autoreset)
are kept as they were collected. The data set's ``meta.json`` (less its shard list) is kept in
the dataset's description and restored by :func:`from_minari`.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vim_world.data_format import ARRAYS, FORMAT_VERSION, DatasetError
from vim_world.files import fsync, sha256, staged_directory
from vim_world.loading import Dataset, open_dataset

__all__ = ["add_cli", "from_minari", "to_minari"]

META_MARKER = "vim_world meta.json: "
"""Prefix of the description line that carries the data set's ``meta.json``."""
OBS_KEYS = {"pixels": "pixels", "states": "state"}
"""Data set array -> key of the Minari observation dict."""
INFO_KEYS = ("mechanism", "valid", "masks")


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise ImportError('Minari is not installed: pip install "vim-world[minari]"') from None
    return minari


def _observation_space(env: gym.Env, first: dict[str, np.ndarray]) -> spaces.Dict:
    """The env's observation space (pixels and state) restricted to the stored arrays."""
    both = env.observation_space
    return spaces.Dict({key: both[key] for name, key in OBS_KEYS.items() if name in first})


def _episodes(dataset: Dataset) -> Iterator[Any]:
    """One ``EpisodeBuffer`` per stored episode, shard by shard (one shard in memory at a time)."""
    from minari.data_collector import EpisodeBuffer

    episode = 0
    for s in range(len(dataset.shard_dirs)):
        arrays = {name: np.asarray(a) for name, a in dataset.load_shard(s).items()}
        for e in range(arrays["valid"].shape[0]):
            valid = arrays["valid"][e]
            terminations = valid[:-1] & ~valid[1:]
            truncations = np.zeros_like(terminations)
            truncations[-1] = not terminations.any()
            infos = {name: arrays[name][e] for name in INFO_KEYS if name in arrays}
            infos.update(action=arrays["actions"][e], reward=arrays["rewards"][e])
            yield EpisodeBuffer(
                id=episode,
                observations={key: arrays[name][e] for name, key in OBS_KEYS.items() if name in arrays},
                actions=arrays["actions"][e][:-1], rewards=arrays["rewards"][e][:-1],
                terminations=terminations, truncations=truncations, infos=infos,
            )  # fmt: skip
            episode += 1


def to_minari(data_dir: str | Path, dataset_id: str, *, overwrite: bool = False, author: str = "vim_world") -> Any:
    """Write the data set at ``data_dir`` (from :func:`vim_world.data.collect`) as a Minari dataset.

    Args:
        data_dir: a data set directory; opened and verified with :func:`open_dataset`.
        dataset_id: Minari id, ``[namespace/]name-v<version>``, e.g. ``"vim_world/passive-v0"``.
        overwrite: replace a local Minari dataset of that id.
        author: recorded in the dataset's metadata.
    Returns: the ``minari.MinariDataset``.
    Raises: :class:`DatasetError` for a bad data set; FileExistsError when ``dataset_id`` exists
        locally and ``overwrite`` is False; ImportError without Minari.
    """
    minari = _minari()
    if not isinstance(dataset_id, str) or not dataset_id:
        raise ValueError(f"dataset_id must be a Minari id such as 'vim_world/passive-v0', got {dataset_id!r}")
    dataset = open_dataset(data_dir)
    if dataset_id in minari.list_local_datasets():
        if not overwrite:
            raise FileExistsError(
                f"Minari dataset {dataset_id!r} exists; pass overwrite=True (--overwrite) to replace it"
            )
        minari.delete_dataset(dataset_id)
    meta = {k: v for k, v in dataset.meta.items() if k != "shards"}
    env = gym.make(meta["env_id"], **{**meta.get("env_kwargs", {}), "obs_mode": "both"})  # its spec is recorded
    try:
        return minari.create_dataset_from_buffers(
            dataset_id, _episodes(dataset), env=env, observation_space=_observation_space(env, dataset.load_shard(0)),
            action_space=spaces.Box(-np.inf, np.inf, (int(meta["action_dim"]),), np.float32),
            algorithm_name=f"vim_world.data.collect (policy {meta['policy']!r})", author=author,
            description=f"vim_world rollouts of {meta['env_id']}.\n{META_MARKER}{json.dumps(meta)}",
            jpeg_encoding=False,
        )  # fmt: skip
    finally:
        env.close()


def _stored_meta(minari_dataset: Any) -> dict[str, Any]:
    description = minari_dataset.storage.metadata.get("description") or ""
    for line in description.splitlines():
        if line.startswith(META_MARKER):
            return json.loads(line[len(META_MARKER) :])
    return {}


def _save(path: Path, array: np.ndarray) -> str:
    np.save(path, array)
    fsync(path)
    return sha256(path)


def from_minari(
    dataset_id: str, out_dir: str | Path, *, overwrite: bool = False, shard_size: int | None = None
) -> Path:
    """Bring a Minari dataset back as a data set that :func:`open_dataset` and training read.

    Works on datasets written by :func:`to_minari` (arrays come back equal) and on any Minari
    dataset whose observations are a dict with ``"state"`` ``(K, S)`` (and optionally ``"pixels"``)
    and whose episodes all have the same length; then the last frame's action and reward are zero.

    Args:
        dataset_id: a local Minari dataset id.
        out_dir: where the data set is written (atomically: a temporary directory renamed into place).
        overwrite: replace an existing ``out_dir``.
        shard_size: episodes per shard; defaults to the original ``num_envs``, else 64.
    Returns: ``out_dir``.
    Raises: ValueError naming what does not fit the format; FileExistsError when ``out_dir``
        exists and ``overwrite`` is False.
    """
    minari = _minari()
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"data set {str(out)!r} exists; pass overwrite=True (--overwrite) to replace it")
    source = minari.load_dataset(dataset_id)
    if not isinstance(source.observation_space, spaces.Dict) or "state" not in source.observation_space.spaces:
        raise ValueError(
            f"Minari dataset {dataset_id!r} has observations {source.observation_space}; expected a Dict with 'state'"
        )
    meta = _stored_meta(source)
    size = int(shard_size or meta.get("num_envs") or 64)
    if size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
    episodes = [_arrays(ep) for ep in source.iterate_episodes()]
    lengths = sorted({a["valid"].shape[0] for a in episodes})
    if len(lengths) != 1:
        raise ValueError(
            f"Minari dataset {dataset_id!r} has episodes of lengths {lengths}; the data set format needs one length"
        )
    shards = []
    with staged_directory(out, f".{out.name}.") as tmp:
        for j, start in enumerate(range(0, len(episodes), size)):
            rows = episodes[start : start + size]
            shard = tmp / f"shard_{j:05d}"
            shard.mkdir()
            files = {
                name: _save(shard / f"{name}.npy", np.stack([r[name] for r in rows]))
                for name in ARRAYS
                if name in rows[0]
            }
            shards.append({"name": shard.name, "episodes": len(rows), "sha256": files})
        env_id = meta.get("env_id") or (source.spec.env_spec.id if source.spec.env_spec is not None else "unknown")
        meta = {**meta, "format_version": FORMAT_VERSION, "env_id": env_id, "policy": meta.get("policy", "unknown"),
                "episode_len": lengths[0], "action_dim": int(episodes[0]["actions"].shape[-1]),
                "minari_dataset_id": dataset_id, "shards": shards}  # fmt: skip
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
    try:
        open_dataset(out)
    except DatasetError as e:  # a bug here, not bad input: say so
        raise RuntimeError(f"from_minari wrote a data set that does not open: {e}") from e
    return out


def _arrays(episode: Any) -> dict[str, np.ndarray]:
    """One Minari ``EpisodeData`` -> the data set's arrays of one episode (T frames)."""
    obs, infos = episode.observations, episode.infos or {}
    t = obs["state"].shape[0]
    out = {"states": np.asarray(obs["state"], np.float32)}
    if "pixels" in obs:
        out["pixels"] = np.asarray(obs["pixels"], np.uint8)
    if "action" in infos and "reward" in infos:
        out["actions"] = np.asarray(infos["action"], np.float32)
        out["rewards"] = np.asarray(infos["reward"], np.float32)
    else:
        actions = np.asarray(episode.actions, np.float32).reshape(t - 1, -1)
        out["actions"] = np.concatenate([actions, np.zeros_like(actions[:1])])
        out["rewards"] = np.append(np.asarray(episode.rewards, np.float32), np.float32(0))
    if "valid" in infos:
        out["valid"] = np.asarray(infos["valid"], bool)
    else:
        ended = np.asarray(episode.terminations, bool)
        out["valid"] = np.concatenate([[True], ~np.cumsum(ended).astype(bool)])
    if "mechanism" in infos:
        out["mechanism"] = np.asarray(infos["mechanism"], np.int64)
    if "masks" in infos:
        out["masks"] = np.asarray(infos["masks"], bool)
    return out


# ------------------------------------------------------------------------------------ CLI


def _cmd_to_minari(args: argparse.Namespace) -> None:
    to_minari(args.data, args.dataset_id, overwrite=args.overwrite)
    print(f"Minari dataset {args.dataset_id} written from {args.data}")


def _cmd_from_minari(args: argparse.Namespace) -> None:
    path = from_minari(args.dataset_id, args.out, overwrite=args.overwrite)
    print(f"data set written to {path}")


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``to-minari`` and ``from-minari`` to the ``vim-world`` sub-commands (handlers in ``fn``)."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    t = subparsers.add_parser(
        "to-minari", help="write a data set as a Minari dataset (lossless frames)", formatter_class=fmt
    )
    t.add_argument("data", help="data set directory (from `vim-world collect`)")
    t.add_argument(
        "dataset_id", help="Minari dataset id, e.g. vim_world/passive-v0 (stored under $MINARI_DATASETS_PATH)"
    )
    t.add_argument("--overwrite", action="store_true", help="replace a local Minari dataset of that id")
    t.set_defaults(fn=_cmd_to_minari)
    f = subparsers.add_parser("from-minari", help="bring a Minari dataset back as a data set", formatter_class=fmt)
    f.add_argument("dataset_id", help="local Minari dataset id")
    f.add_argument("--out", required=True, help="data set directory to write")
    f.add_argument("--overwrite", action="store_true", help="replace an existing data set at --out")
    f.set_defaults(fn=_cmd_from_minari)
