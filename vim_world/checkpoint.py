"""Checkpoints: safetensors weights, optimizer and RNG states beside them, written atomically and
verified on load.

A checkpoint is a directory ``step_00001000/`` holding ``model.safetensors`` (weights; never
pickle), ``state.pt`` (optimizer state, step and the RNG states of torch, CUDA, numpy and Python ``random``, loaded with
``torch.load(weights_only=True)``: loading never runs code from the file), ``manifest.json``
(model name and config, and the SHA-256 of both files) and ``manifest.sha256`` (the SHA-256 of
``manifest.json`` itself). It is written to a temporary directory ``.tmp_{pid}_*``, fsynced and
renamed into place, so a killed run leaves either the whole checkpoint or none (a half-written
temporary directory is never loaded, and the next save removes it once its PID is dead).
Checkpoints are ordered by their integer step. Only one process may write a checkpoint directory
(rank 0 under ``torchrun``; the trainer holds ``run_dir/.lock``).
"""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vim_world.devices import resolve_device
from vim_world.files import fsync, remove_stale_temporaries, sha256, staged_directory
from vim_world.model import VIMConfig, build_model

PREFIX = "step_"
_STEP_DIR = re.compile(rf"{PREFIX}(\d+)")
MANIFEST_HASH = "manifest.sha256"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or does not match the model it is loaded into."""


@dataclass
class Checkpoint:
    """What a checkpoint holds."""

    path: Path
    model_name: str
    model_config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]  # "step", "optimizer", "rng", and anything the trainer adds
    extra: dict[str, Any]  # JSON metadata (e.g. train config, data set path)

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(
    directory: str | Path,
    step: int,
    model: torch.nn.Module,
    model_name: str,
    model_config: dict[str, Any],
    state: dict[str, Any],
    extra: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write ``directory/step_{step:08d}`` atomically and keep the newest ``keep`` checkpoints."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    with staged_directory(final, ".tmp_") as tmp:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        torch.save({**state, "step": step}, tmp / "state.pt")
        manifest = {
            "model_name": model_name,
            "model_config": model_config,
            "step": step,
            "extra": extra or {},
            "sha256": {name: sha256(tmp / name) for name in ("model.safetensors", "state.pt")},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        (tmp / MANIFEST_HASH).write_text(sha256(tmp / "manifest.json") + "\n")
        for name in ("model.safetensors", "state.pt", "manifest.json", MANIFEST_HASH):
            fsync(tmp / name)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_temporaries(directory, ".tmp_")  # left by a save that was killed; never loaded
    return final


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (ordered by the integer step, so
    ``step_100000000`` comes after ``step_99999999``)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := _STEP_DIR.fullmatch(p.name)) and (p / "manifest.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and verify a checkpoint directory (or a run directory, or its ``checkpoints/``: the
    latest checkpoint there).

    Raises: :class:`CheckpointError` naming the missing or corrupted file.
    """
    path = Path(path)
    if not (path / "manifest.json").is_file():
        latest = latest_checkpoint(path) or latest_checkpoint(path / "checkpoints")
        if latest is None:
            raise CheckpointError(f"no checkpoint at {str(path)!r}: expected a {PREFIX}* directory with manifest.json")
        path = latest
    _check_manifest_hash(path)
    manifest = _read_manifest(path / "manifest.json")
    for name, digest in manifest["sha256"].items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint file {f} is missing")
        if sha256(f) != digest:
            raise CheckpointError(f"checkpoint file {f} is corrupted (SHA-256 mismatch)")
    try:
        weights = load_file(str(path / "model.safetensors"))
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except (
        SafetensorError,
        OSError,
        RuntimeError,
        pickle.UnpicklingError,
    ) as e:  # only reachable if the manifest was forged
        raise CheckpointError(f"checkpoint {path} cannot be read: {e}") from None
    return Checkpoint(path, manifest["model_name"], manifest["model_config"], weights, state, manifest["extra"])


def _check_manifest_hash(path: Path) -> None:
    """``manifest.json`` matches the SHA-256 recorded in ``manifest.sha256``."""
    recorded = path / MANIFEST_HASH
    if not recorded.is_file():
        raise CheckpointError(f"checkpoint file {recorded} is missing (it holds the SHA-256 of manifest.json)")
    if recorded.read_text().strip() != sha256(path / "manifest.json"):
        raise CheckpointError(
            f"checkpoint file {path / 'manifest.json'} is corrupted (SHA-256 mismatch with {MANIFEST_HASH})"
        )


_MANIFEST_KEYS = {"model_name": str, "model_config": dict, "step": int, "extra": dict, "sha256": dict}


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, with every key :func:`load_checkpoint` uses present and of the right type."""
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupted: {e}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path} is corrupted: expected a JSON object, got {type(manifest).__name__}")
    for key, kind in _MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise CheckpointError(
                f"{path} is corrupted: {key!r} should be a {kind.__name__}, got {manifest.get(key)!r}"
            )
    expected = {"model.safetensors", "state.pt"}
    if set(manifest["sha256"]) != expected:
        raise CheckpointError(
            f"{path} is corrupted: 'sha256' should list {sorted(expected)}, got {sorted(manifest['sha256'])}"
        )
    return manifest


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG state the trainer depends on, as tensors and plain values (``weights_only``-safe):
    torch (CPU), CUDA (when ``device`` is CUDA), numpy's global generator and Python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }  # fmt: skip
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state` (parts missing from older checkpoints are left alone)."""
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load_weights(model: torch.nn.Module, checkpoint: Checkpoint) -> None:
    """Load weights, with a clear error when the checkpoint comes from another configuration."""
    own = model.state_dict()
    missing = sorted(set(own) - set(checkpoint.weights))
    unexpected = sorted(set(checkpoint.weights) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in checkpoint.weights.items()
        if k in own and own[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint {checkpoint.path} does not fit this model (another configuration?): "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
        )
    model.load_state_dict(checkpoint.weights)


def load_model(path: str | Path, device: str = "auto") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained model from a checkpoint (or run) directory, in eval mode on ``device``, and its
    metadata (model name, step, and the checkpoint's extra JSON)."""
    torch_device = resolve_device(device)
    ck = load_checkpoint(path)
    model = build_model(ck.model_name, VIMConfig.from_dict(ck.model_config))
    load_weights(model, ck)
    return model.to(torch_device).eval(), {"model_name": ck.model_name, "step": ck.step, **ck.extra}
