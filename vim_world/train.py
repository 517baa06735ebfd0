"""Training loop: any world model with ``loss(batch, step) -> (loss, metrics)`` over a data set.

Device chosen automatically (CUDA when present), bf16 autocast on CUDA, optional
``torch.compile``, TensorBoard logs, a progress bar, atomic checkpoints every N steps, and exact
resume: batch ``i`` is a pure function of the seed and ``i`` and every RNG state is checkpointed,
so a run killed at any point and resumed gives the parameters of an uninterrupted run (on the CPU).

Under ``torchrun`` the same function trains data-parallel (see :mod:`vim_world.distributed`):
each rank takes its rows of every global batch, DDP averages gradients, metrics are averaged
across ranks, and only rank 0 writes the run directory.
"""

from __future__ import annotations

import json
import math
import os
import random
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vim_world import distributed
from vim_world.batch import Batch
from vim_world.checkpoint import (
    capture_rng_state, latest_checkpoint, load_checkpoint, load_weights, restore_rng_state, save_checkpoint,
)  # fmt: skip
from vim_world.data import Dataset, SequenceLoader, open_dataset, rank_rows, split_shards
from vim_world.envs import STATE_FEATURES
from vim_world.model import VIMConfig, build_model, preset

MODEL_NAMES = ("vim", "vim_m1", "vrnn", "copy_last")
RESUMABLE_CHANGES = frozenset({"steps", "progress", "log_every", "checkpoint_every", "device", "compile"})
"""Options a resumed run may change (e.g. train longer); any other change is refused."""
DATA_DERIVED = frozenset({"input_mode", "state_dim", "num_slots", "image_size", "action_dim", "reward_head",
                          "static_features"})
"""VIMConfig fields read off the data set; ``overrides`` may not set them."""
_TYPES: dict[str, tuple[type, ...]] = {
    "data": (str,), "out": (str,), "model": (str,), "preset": (str,), "mode": (str,), "device": (str,),
    "overrides": (dict,), "steps": (int,), "batch_size": (int,), "seq_len": (int,), "seed": (int,),
    "checkpoint_every": (int,), "log_every": (int,), "lr": (int, float), "grad_clip": (int, float),
    "holdout": (int, float), "amp": (bool,), "compile": (bool,), "progress": (bool,), "revive_every": (int,), "static_attributes": (bool,),
}  # fmt: skip
"""The accepted Python types of each ``TrainConfig`` field (bool is not accepted as a number)."""


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
        revive_every: VIM only: every this many steps, during the first 70% of training, turn
            modules that explain (almost) nothing into perturbed copies of the busiest one
            (:meth:`VIM.revive_unused_modules`); 0 turns it off.
        static_attributes: state mode, VIM: the state features that never change within any
            training episode (an object's kind) become ``VIMConfig.static_features``: observed
            attributes that the decoder reads and the modules and switching prior do not.
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
    revive_every: int = 0
    static_attributes: bool = False

    def __post_init__(self) -> None:
        for name, kinds in _TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
                expected = " or ".join(k.__name__ for k in kinds)
                raise TypeError(f"{name} must be of type {expected}, got {type(value).__name__} {value!r}")
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
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        for name in ("lr", "grad_clip"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout!r}")
        if self.static_attributes and self.mode != "state":
            raise ValueError(f"static_attributes applies to mode='state' (object state features), got mode={self.mode!r}")
        if self.revive_every < 0:
            raise ValueError(f"revive_every must be >= 0 (0: off), got {self.revive_every!r}")
        _check_overrides(self.overrides)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from a mapping of field names; unknown or missing names are a ValueError."""
        if not isinstance(values, dict):
            raise TypeError(f"training options must be a mapping of field names, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; expected a subset of {sorted(known)}")
        missing = sorted({"data", "out"} - set(values))
        if missing:
            raise ValueError(f"missing required training options {missing}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """A config from a JSON (``.json``) or TOML (``.toml``) file of field names, with
        ``overrides`` (e.g. command-line flags) taking precedence."""
        return cls.from_dict({**read_config_file(path), **overrides})


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The table in a ``.json`` or ``.toml`` file; errors name the file and what is wrong."""
    path = Path(path)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"config file {str(path)!r} must end in .json or .toml")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read config file {str(path)!r}: {e}") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a table of TrainConfig fields, got {type(values).__name__}")
    return values


def _check_overrides(overrides: dict[str, Any]) -> None:
    """``overrides`` names VIMConfig fields not read off the data, with values of their types."""
    defaults = {f.name: f.default for f in fields(VIMConfig)}
    for key, value in overrides.items():
        if key not in defaults:
            raise ValueError(f"overrides: unknown VIMConfig field {key!r}; expected one of {sorted(set(defaults) - DATA_DERIVED)}")
        if key in DATA_DERIVED:
            raise ValueError(f"overrides: {key!r} is read off the data set and cannot be overridden")
        kind = type(defaults[key])
        ok = isinstance(value, bool) if kind is bool else (
            not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else kind))
        if not ok:
            raise TypeError(f"overrides: {key} must be a {kind.__name__}, got {value!r}")


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


def fit_standardizer(model: torch.nn.Module, dataset: Dataset, shards: list[int], max_episodes: int = 2048) -> None:
    """Fit the model's state standardiser (if it has one) to the states of the first
    ``max_episodes`` training episodes: deterministic, and the same on every rank."""
    standardizer = getattr(model, "standardizer", None)
    if standardizer is None:
        return
    states, total = [], 0
    for i in shards:
        s = dataset.load_shard(i)["states"][: max_episodes - total]
        states.append(torch.from_numpy(np.array(s)))
        total += s.shape[0]
        if total >= max_episodes:
            break
    standardizer.fit(torch.cat(states))


def constant_features(states: np.ndarray) -> tuple[int, ...]:
    """Indices of the features of ``states (E, T, K, S)`` that never change within an episode."""
    changes = np.abs(np.diff(states, axis=1)).reshape(-1, states.shape[-1]).max(0)
    return tuple(int(i) for i in np.flatnonzero(changes == 0))


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
        if cfg.static_attributes:
            sizes["static_features"] = constant_features(np.asarray(first["states"]))
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
    """Seed Python's ``random``, numpy's global generator and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    out: Path
    steps: int
    final_metrics: dict[str, float]
    checkpoint: Path | None
    resumed_from: int


def _revive_now(cfg: TrainConfig, step: int) -> bool:
    return cfg.revive_every > 0 and (step + 1) % cfg.revive_every == 0 and step + 1 <= 0.7 * cfg.steps


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) the run in ``cfg.out``; returns where its last checkpoint is.

    Started by ``torchrun`` (``WORLD_SIZE > 1``), every rank calls this and they train together.
    """
    ctx = distributed.setup(resolve_device(cfg.device))
    try:
        return _train(cfg, ctx)
    finally:
        distributed.teardown(ctx)


def _write_json_atomically(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def _check_run_directory(cfg: TrainConfig, out: Path) -> None:
    """Refuse to resume a run in ``out`` that was started with other options."""
    config_path = out / "train_config.json"
    if not (config_path.exists() and latest_checkpoint(out / "checkpoints") is not None):
        return
    try:
        previous = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path} is corrupted ({e}); use another --out") from None
    current = json.loads(json.dumps(asdict(cfg)))
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and previous.get(k) != current[k])
    if changed:
        raise ValueError(f"{out} holds a run with other options ({changed}); use another --out or the same options")


def _train(cfg: TrainConfig, ctx: distributed.DistContext) -> TrainResult:
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    rows = rank_rows(cfg.batch_size, ctx.rank, ctx.world_size)
    _check_run_directory(cfg, out)
    distributed.barrier(ctx)  # every rank has read the old config before rank 0 replaces it
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json_atomically(out / "train_config.json", asdict(cfg))

    device = ctx.device
    seed_everything(cfg.seed)
    dataset = open_dataset(cfg.data)
    with_actions = uses_actions(dataset)
    mcfg = model_config(cfg, dataset)
    model = build_model(cfg.model, mcfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    train_shards, _ = split_shards(dataset, cfg.holdout)
    fit_standardizer(model, dataset, train_shards)  # a resumed run then loads the saved one
    loader = SequenceLoader(dataset, batch_size=cfg.batch_size, seq_len=cfg.seq_len, mode=cfg.mode, seed=cfg.seed, shard_indices=train_shards, device=device)
    optimizer = torch.optim.Adam(params, lr=cfg.lr) if params else None

    start = 0
    last = latest_checkpoint(ckpt_dir)
    if last is not None:
        ck = load_checkpoint(last)
        load_weights(model, ck)
        if optimizer is not None:
            optimizer.load_state_dict(ck.state["optimizer"])
        restore_rng_state(ck.state["rng"], device)
        start = ck.step
    resumed_from = start
    extra = {"train_config": asdict(cfg), "data_meta": {k: v for k, v in dataset.meta.items() if k != "shards"}}

    def checkpoint(step: int) -> Path:
        if not ctx.is_main:
            return ckpt_dir / f"step_{step:08d}"
        state = {"optimizer": optimizer.state_dict() if optimizer else {}, "rng": capture_rng_state(device)}
        return save_checkpoint(ckpt_dir, step, model, cfg.model, mcfg.to_dict(), state, extra)

    if optimizer is None or start >= cfg.steps:  # nothing to learn (copy-last) or already done
        path = latest_checkpoint(ckpt_dir) or checkpoint(start)
        distributed.barrier(ctx)
        return TrainResult(out, start, {}, path, resumed_from)

    if cfg.compile:  # the networks, not the loss: its noise is drawn per global sample outside the graphs
        for part in model.children():
            part.compile()
    step_fn = distributed.loss_function(model, ctx)
    logger = _Logger(out, cfg, start) if ctx.is_main else None
    metrics: dict[str, float] = {}
    model.train()
    path = last
    try:
        for step in range(start, cfg.steps):
            batch = prepare(loader.batch_at(step, ctx.rank, ctx.world_size), with_actions)
            noise = distributed.GlobalBatchNoise(cfg.seed, step, rows.start, rows.stop - rows.start, cfg.batch_size)
            with noise, torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
                loss, local = step_fn(batch, step)
            metrics = distributed.mean_across_ranks({**local, "loss": float(loss.detach())}, ctx)
            if not math.isfinite(metrics["loss"]):
                raise TrainingDiverged(
                    f"non-finite loss {metrics['loss']} at step {step}; last good checkpoint: {path}. "
                    "Lower --lr or raise --grad_clip, then resume."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            if logger is not None:
                logger.log(step, metrics)
            if _revive_now(cfg, step) and hasattr(model, "revive_unused_modules"):
                # Decided on the whole global batch with a (seed, step) generator: the same on every rank.
                generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
                model.revive_unused_modules(prepare(loader.batch_at(step), with_actions), generator)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
                path = checkpoint(step + 1)
    finally:
        if logger is not None:
            logger.close()
    distributed.barrier(ctx)  # the last checkpoint exists before any rank returns
    return TrainResult(out, cfg.steps, metrics, path, resumed_from)


class _Logger:
    """Rank 0's TensorBoard writer and progress bar."""

    def __init__(self, out: Path, cfg: TrainConfig, start: int) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.cfg = cfg
        self.writer = SummaryWriter(str(out / "tb"), purge_step=start)
        self.bar = tqdm(initial=start, total=cfg.steps, desc=f"train {cfg.model}", disable=not cfg.progress)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Advance the bar; every ``log_every`` steps (and at the end) write the metrics."""
        self.bar.update(1)
        if step % self.cfg.log_every == 0 or step == self.cfg.steps - 1:
            for k, v in metrics.items():
                self.writer.add_scalar(k, v, step)
            self.bar.set_postfix(loss=f"{metrics['loss']:.3f}")

    def close(self) -> None:
        self.writer.close()
        self.bar.close()


def load_model(path: str | Path, device: str = "auto") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained model from a checkpoint (or run) directory, in eval mode, and its metadata."""
    ck = load_checkpoint(path)
    model = build_model(ck.model_name, VIMConfig.from_dict(ck.model_config))
    load_weights(model, ck)
    return model.to(resolve_device(device)).eval(), {"model_name": ck.model_name, "step": ck.step, **ck.extra}
