"""Training loop: any world model with ``loss(batch, step) -> (loss, metrics)`` over a data set.

Device chosen automatically (CUDA when present), bf16 autocast on CUDA, optional
``torch.compile``, TensorBoard logs, a progress bar, atomic checkpoints every N steps, and exact
resume: batch ``i`` is a pure function of the seed and ``i`` and every RNG state is checkpointed,
so a run killed at any point and resumed gives the parameters of an uninterrupted run (on the CPU).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from vim_world.data import Dataset, SequenceLoader, open_dataset, split_shards
from vim_world.envs import STATE_FEATURES
from vim_world.model import VIMConfig, build_model, preset

MODEL_NAMES = ("vim", "vim_m1", "vrnn", "copy_last")
RESUMABLE_CHANGES = frozenset({"steps", "progress", "log_every", "checkpoint_every", "device", "compile"})
"""Options a resumed run may change (e.g. train longer); any other change is refused."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """One training run. Every field has a CLI flag of the same name (``vim-world train``).

    Attributes:
        data: data set directory (from ``vim-world collect``).
        out: run directory: ``checkpoints/``, ``tb/`` (TensorBoard), ``train_config.json``.
        model: one of ``MODEL_NAMES``.
        preset: model preset size, ``"tiny"`` or ``"default"``; the input mode comes from ``mode``.
        mode: ``"state"`` or ``"pixels"``.
        overrides: ``VIMConfig`` fields to override, e.g. ``{"num_modules": 6}``.
    """

    data: str
    out: str
    model: str = "vim"
    preset: str = "tiny"
    mode: str = "state"
    overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 32
    seq_len: int = 10
    lr: float = 1e-3
    grad_clip: float = 10.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    checkpoint_every: int = 500
    log_every: int = 50
    holdout: float = 0.1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {list(MODEL_NAMES)}, got {self.model!r}")
        if self.preset not in ("tiny", "default"):
            raise ValueError(f"preset must be 'tiny' or 'default', got {self.preset!r}")
        if self.mode not in ("state", "pixels"):
            raise ValueError(f"mode must be 'state' or 'pixels', got {self.mode!r}")
        for name in ("steps", "batch_size", "seq_len", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; expected a subset of {sorted(known)}")
        return cls(**values)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return device


def uses_actions(dataset: Dataset) -> bool:
    """Whether the data set's actions matter (control tasks) or are constant no-ops."""
    return dataset.meta["policy"] != "noop"


def model_config(cfg: TrainConfig, dataset: Dataset) -> VIMConfig:
    """The model configuration that fits ``dataset``: preset + sizes read off the data + overrides."""
    first = dataset.load_shard(0)
    sizes: dict[str, Any] = {
        "state_dim": len(STATE_FEATURES),
        "action_dim": dataset.meta["action_dim"] if uses_actions(dataset) else 0,
        "reward_head": uses_actions(dataset),
    }
    if cfg.mode == "state":
        sizes["num_slots"] = first["states"].shape[2]
    else:
        sizes["image_size"] = first["pixels"].shape[2]
        sizes["num_slots"] = first["states"].shape[2] + 1  # + background
    return preset(f"{cfg.preset}-{cfg.mode}", **{**sizes, **cfg.overrides})


def prepare(batch: Batch, with_actions: bool) -> Batch:
    """Drop the constant no-op actions of passive data."""
    if with_actions:
        return batch
    return Batch(obs=batch.obs, mechanism=batch.mechanism, states=batch.states, masks=batch.masks)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class TrainResult:
    out: Path
    steps: int
    final_metrics: dict[str, float]
    checkpoint: Path | None
    resumed_from: int


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) the run in ``cfg.out``; returns where its last checkpoint is."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    config_path = out / "train_config.json"
    if config_path.exists() and latest_checkpoint(ckpt_dir) is not None:
        previous = json.loads(config_path.read_text())
        current = json.loads(json.dumps(asdict(cfg)))
        changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and previous.get(k) != current[k])
        if changed:
            raise ValueError(f"{out} holds a run with other options ({changed}); use another --out or the same options")
    config_path.write_text(json.dumps(asdict(cfg), indent=1))

    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    dataset = open_dataset(cfg.data)
    with_actions = uses_actions(dataset)
    mcfg = model_config(cfg, dataset)
    model = build_model(cfg.model, mcfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    train_shards, _ = split_shards(dataset, cfg.holdout)
    loader = SequenceLoader(dataset, batch_size=cfg.batch_size, seq_len=cfg.seq_len, mode=cfg.mode, seed=cfg.seed, shard_indices=train_shards, device=device)
    optimizer = torch.optim.Adam(params, lr=cfg.lr) if params else None

    start = 0
    last = latest_checkpoint(ckpt_dir)
    if last is not None:
        ck = load_checkpoint(last)
        load_weights(model, ck)
        if optimizer is not None:
            optimizer.load_state_dict(ck.state["optimizer"])
        _set_rng_state(ck.state["rng"], device)
        start = ck.step
    resumed_from = start
    extra = {"train_config": asdict(cfg), "data_meta": {k: v for k, v in dataset.meta.items() if k != "shards"}}

    def checkpoint(step: int) -> Path:
        state = {"optimizer": optimizer.state_dict() if optimizer else {}, "rng": _rng_state(device)}
        return save_checkpoint(ckpt_dir, step, model, cfg.model, mcfg.to_dict(), state, extra)

    if optimizer is None or start >= cfg.steps:  # nothing to learn (copy-last) or already done
        path = latest_checkpoint(ckpt_dir) or checkpoint(start)
        return TrainResult(out, start, {}, path, resumed_from)

    step_fn = torch.compile(model.loss) if cfg.compile else model.loss
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    writer = SummaryWriter(str(out / "tb"), purge_step=start)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"train {cfg.model}", disable=not cfg.progress)
    metrics: dict[str, float] = {}
    model.train()
    path = last
    try:
        for step in bar:
            batch = prepare(loader.batch_at(step), with_actions)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
                loss, metrics = step_fn(batch, step)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"non-finite loss {loss.item()} at step {step}; last good checkpoint: {path}. "
                    "Lower --lr or raise --grad_clip, then resume."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                for k, v in metrics.items():
                    writer.add_scalar(k, v, step)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
                path = checkpoint(step + 1)
    finally:
        writer.close()
        bar.close()
    return TrainResult(out, cfg.steps, {k: float(v) for k, v in metrics.items()}, path, resumed_from)


def load_model(path: str | Path, device: str = "auto") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained model from a checkpoint (or run) directory, in eval mode, and its metadata."""
    ck = load_checkpoint(path)
    model = build_model(ck.model_name, VIMConfig.from_dict(ck.model_config))
    load_weights(model, ck)
    return model.to(resolve_device(device)).eval(), {"model_name": ck.model_name, "step": ck.step, **ck.extra}
