"""The data set format and its checks: ``meta.json`` keys, shard paths, and the shape and dtype
of every array (see ``docs/data.md``).

Hashes prove that files are the ones written; these checks prove that what was written is a data
set this package can train on, so that a malformed one is named here instead of failing deep in
numpy or torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from vim_world.envs import STATE_FEATURES

FORMAT_VERSION = 1
ARRAYS = ("pixels", "states", "mechanism", "actions", "rewards", "valid", "masks")
REQUIRED_ARRAYS = ("states", "mechanism", "actions", "rewards", "valid")
DTYPES = {"pixels": np.uint8, "states": np.float32, "mechanism": np.int64, "actions": np.float32,
          "rewards": np.float32, "valid": np.bool_, "masks": np.bool_}  # fmt: skip
"""The dtype of each array."""


class DatasetError(ValueError):
    """A data set is missing, truncated, corrupted or does not match what was asked for."""


def read_meta(path: Path) -> dict[str, Any]:
    """``path/meta.json``, checked (:func:`check_meta`); DatasetError names what is wrong."""
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
    check_meta(meta, path)
    return meta


def is_dataset(path: Path) -> bool:
    """Whether ``path`` holds a ``meta.json`` written by this package (the marker that allows
    ``overwrite`` to replace it)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and "format_version" in meta and "shards" in meta


def dataset_identity(path: Path) -> str:
    """SHA-256 of ``meta.json``: it records every file's SHA-256, the env, its options and the
    seed, so equal identities mean equal data whatever the path's spelling."""
    return hashlib.sha256((path / "meta.json").read_bytes()).hexdigest()


_META_KEYS = {"env_id": str, "policy": str, "episode_len": int, "action_dim": int, "shards": list}
_SHARD_KEYS = {"name": str, "episodes": int, "sha256": dict}


def check_meta(meta: dict[str, Any], root: Path) -> None:
    """Every ``meta.json`` key the loader reads is present and of the right type, and every
    shard is a plain sub-directory name of ``root`` (no path may leave the data set)."""
    where = root / "meta.json"
    for key, kind in _META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            raise DatasetError(f"{where} is corrupted: {key!r} should be a {kind.__name__}, got {meta.get(key)!r}")
    if not meta["shards"]:
        raise DatasetError(f"{where} lists no shard")
    for i, shard in enumerate(meta["shards"]):
        for key, kind in _SHARD_KEYS.items():
            if not isinstance(shard, dict) or not isinstance(shard.get(key), kind):
                raise DatasetError(f"{where} is corrupted: shards[{i}] lacks a {kind.__name__} {key!r}")
        name = shard["name"]
        if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
            raise DatasetError(
                f"{where}: shards[{i}] name {name!r} must be a sub-directory of the data set, not a path leaving it"
            )
        unknown = set(shard["sha256"]) - set(ARRAYS)
        if unknown or not set(REQUIRED_ARRAYS) <= set(shard["sha256"]):
            raise DatasetError(
                f"{where} is corrupted: shards[{i}] lists files {sorted(shard['sha256'])}, "
                f"expected {list(REQUIRED_ARRAYS)} and optionally pixels, masks"
            )


def check_arrays(meta: dict[str, Any], arrays: list[dict[str, np.ndarray]], root: Path) -> None:
    """Shapes and dtypes of every shard's arrays (headers only; ``arrays`` memory-mapped) agree
    with each other and with ``meta.json``: ``E`` episodes as listed, ``T = episode_len``, the
    same ``K`` objects and frame size everywhere, ``S = len(STATE_FEATURES)``, ``A = action_dim``.
    """
    t, a, s = meta["episode_len"], meta["action_dim"], len(STATE_FEATURES)
    k = hw = None
    for shard, arr in zip(meta["shards"], arrays):
        where = root / shard["name"]
        e = shard["episodes"]
        for name, x in arr.items():
            if x.dtype != DTYPES[name]:
                raise DatasetError(f"{where / (name + '.npy')}: dtype {x.dtype}, expected {np.dtype(DTYPES[name])}")
        k = arr["states"].shape[2] if k is None and arr["states"].ndim == 4 else k
        if "pixels" in arr and hw is None:
            hw = arr["pixels"].shape[2:4] if arr["pixels"].ndim == 5 else (-1, -1)
        expected = {"states": (e, t, k, s), "mechanism": (e, t, k), "actions": (e, t, a), "rewards": (e, t),
                    "valid": (e, t)}  # fmt: skip
        if hw is not None:
            expected.update(pixels=(e, t, *hw, 3), masks=(e, t, k, *hw))
        for name, shape in expected.items():
            if name in arr and arr[name].shape != shape:
                raise DatasetError(
                    f"{where / (name + '.npy')}: shape {arr[name].shape}, expected {shape} "
                    f"(episodes, episode_len={t}, objects={k}, ...)"
                )


def has_frames(meta: dict[str, Any]) -> bool:
    """Whether the data set stores frames (``pixels.npy``)."""
    return all("pixels" in shard["sha256"] for shard in meta["shards"])


def require_frames(meta: dict[str, Any], root: Path) -> None:
    """DatasetError unless the data set stores frames, naming how it was collected."""
    if not has_frames(meta):
        obs_mode = meta.get("env_kwargs", {}).get("obs_mode", "unknown")
        raise DatasetError(
            f"data set {str(root)!r} has no frames; collected with obs_mode={obs_mode!r}. "
            "Use --mode state, or collect again with frames (obs_mode 'both')"
        )
