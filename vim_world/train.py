"""Training loop: any world model with ``loss(batch, step) -> (loss, metrics)`` over a data set.

Device chosen automatically (CUDA when present), bf16 autocast on CUDA, optional
``torch.compile``, TensorBoard logs, a progress bar, atomic checkpoints every N steps, and exact
resume: batch ``i`` is a pure function of the seed and ``i`` and every RNG state is checkpointed,
so a run killed at any point and resumed gives the parameters of an uninterrupted run (on the CPU).

A run directory is held with a lock (``run_dir/.lock``) while training, so a second trainer on
it fails at once. A resumed run must use the same data (compared by content,
:func:`~vim_world.data.dataset_identity`, not by the path's spelling) and the same options,
except those in ``RESUMABLE_CHANGES`` and, when asked for with ``allow_changed``, ``lr`` and
``grad_clip``.

Under ``torchrun`` the same function trains data-parallel (see :mod:`vim_world.distributed`):
each rank takes its rows of every global batch, DDP averages gradients, metrics are averaged
across ranks, and only rank 0 writes the run directory.

The job is split: options in :mod:`vim_world.train_config`, model sizing from the data in
:mod:`vim_world.sizing`, devices in :mod:`vim_world.devices`, :func:`load_model` in
:mod:`vim_world.checkpoint`; their names stay importable from here.
"""

from __future__ import annotations

import json
import math
import random
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vim_world import distributed
from vim_world.checkpoint import (
    Checkpoint,
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)  # fmt: skip
from vim_world.data import SequenceLoader, dataset_identity, open_dataset, rank_rows, split_shards, uses_actions
from vim_world.devices import resolve_device
from vim_world.files import run_lock, write_atomically
from vim_world.model import build_model
from vim_world.sizing import constant_features, fit_standardizer, model_config, prepare
from vim_world.train_config import (
    ALLOWABLE_CHANGES,
    DATA_DERIVED,
    MODEL_NAMES,
    RESUMABLE_CHANGES,
    TrainConfig,
    read_config_file,
)  # fmt: skip

__all__ = [
    "ALLOWABLE_CHANGES", "DATA_DERIVED", "MODEL_NAMES", "RESUMABLE_CHANGES", "TrainConfig", "TrainResult",
    "TrainingDiverged", "constant_features", "fit_standardizer", "learning_rate", "load_model", "model_config", "prepare",
    "read_config_file", "resolve_device", "seed_everything", "train", "uses_actions",
]  # fmt: skip


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | None:
    """Adam over the model's trainable parameters (None when there are none). A model with task
    heads gets two groups, each clipped on its own (``cfg.grad_clip``): the heads, with decoupled
    weight decay ``cfg.head_weight_decay`` (AdamW), and the rest, without.

    The heads are read-outs trained beside the ELBO, whose gradient norm is far larger: clipped
    together, the heads' steps shrank with it (held-out reward MSE, docs/planning.md "Session 6").
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None
    heads = getattr(model, "task_heads", None)
    if heads is None:
        return torch.optim.Adam(params, lr=cfg.lr)
    in_heads = {id(p) for p in heads.parameters()}
    groups = [
        {"params": [p for p in params if id(p) not in in_heads], "weight_decay": 0.0},
        {"params": [p for p in params if id(p) in in_heads], "weight_decay": cfg.head_weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based): ``lr`` after a linear warm-up
    over ``warmup_steps`` steps, times ``0.5 ** (step / lr_half_life)`` when the decay is on, as Slot
    Attention trains. A pure function of the step (not of the run's length), so a resumed run, even
    one extended with more ``steps``, continues the schedule exactly."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    decay = 0.5 ** (step / cfg.lr_half_life) if cfg.lr_half_life > 0 else 1.0
    return cfg.lr * warm * decay


def _revive_now(cfg: TrainConfig, step: int) -> bool:
    return cfg.revive_every > 0 and (step + 1) % cfg.revive_every == 0 and step + 1 <= 0.7 * cfg.steps


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) the run in ``cfg.out``; returns where its last checkpoint is. With
    ``cfg.restarts``, first choose the seed by held-out ELBO (:mod:`vim_world.restarts`).

    Started by ``torchrun`` (``WORLD_SIZE > 1``), every rank calls this and they train together;
    rank 0 holds the run directory's lock.

    Raises: ValueError (or :class:`~vim_world.files.RunLockedError`) naming a bad device, a run
    directory in use, a resume on other data or options, or fewer steps than the run has;
    :class:`TrainingDiverged` on a non-finite loss.
    """
    if cfg.restarts:
        from vim_world.restarts import train_with_restarts

        return train_with_restarts(cfg)
    ctx = distributed.setup(resolve_device(cfg.device))
    try:
        with run_lock(cfg.out) if ctx.is_main else nullcontext():
            return _train(cfg, ctx)
    finally:
        distributed.teardown(ctx)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_resume(cfg: TrainConfig, out: Path, ck: Checkpoint, identity: str) -> None:
    """Refuse to resume the run in ``out`` (its latest checkpoint ``ck``) on other data, with
    other options (except ``RESUMABLE_CHANGES`` and ``cfg.allow_changed``) or fewer steps."""
    recorded = ck.extra.get("data_identity")
    previous = ck.extra.get("train_config", {})
    if recorded is not None and recorded != identity:
        raise ValueError(
            f"{str(out)!r} holds a run trained on other data than --data {cfg.data!r} (meta.json SHA-256 "
            f"{identity[:12]}, the run's {recorded[:12]}); use another --out or the run's data set"
        )
    if recorded is None and Path(previous.get("data", cfg.data)).resolve() != Path(cfg.data).resolve():
        raise ValueError(f"{str(out)!r} holds a run on data set {previous['data']!r}, not --data {cfg.data!r}")
    current = json.loads(json.dumps(asdict(cfg)))
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and k in previous and previous[k] != current[k])
    refused = [k for k in changed if k not in cfg.allow_changed]
    if refused:
        diffs = ", ".join(f"{_flag(k)} {previous[k]!r} -> {current[k]!r}" for k in refused)
        hint = ""
        if set(refused) <= ALLOWABLE_CHANGES:
            hint = f" or pass --allow-changed {','.join(refused)}"
        raise ValueError(
            f"{str(out)!r} holds a run with other options ({diffs}); use another --out, the same options{hint}"
        )
    if ck.step > cfg.steps:
        raise ValueError(
            f"{str(out)!r} already holds {ck.step} steps, more than --steps {cfg.steps}; "
            f"pass --steps >= {ck.step} to resume, or use another --out"
        )


def _train(cfg: TrainConfig, ctx: distributed.DistContext) -> TrainResult:
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    rows = rank_rows(cfg.batch_size, ctx.rank, ctx.world_size)
    dataset = open_dataset(cfg.data)
    identity = dataset_identity(dataset.path)
    last = latest_checkpoint(ckpt_dir)
    ck = load_checkpoint(last) if last is not None else None
    if ck is not None:
        _check_resume(cfg, out, ck, identity)
    with_actions = uses_actions(dataset)
    mcfg = model_config(cfg, dataset)
    distributed.barrier(ctx)  # every rank has checked the run before rank 0 writes to it
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_atomically(out / "train_config.json", json.dumps(asdict(cfg), indent=1))

    device = ctx.device
    seed_everything(cfg.seed)
    model = build_model(cfg.model, mcfg).to(device)
    train_shards, _ = split_shards(dataset, cfg.holdout)
    fit_standardizer(model, dataset, train_shards)  # a resumed run then loads the saved one
    loader = SequenceLoader(
        dataset,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        mode=cfg.mode,
        seed=cfg.seed,
        shard_indices=train_shards,
        device=device,
    )
    optimizer = make_optimizer(model, cfg)

    start = 0
    if ck is not None:
        load_weights(model, ck)
        if optimizer is not None:
            optimizer.load_state_dict(ck.state["optimizer"])
        restore_rng_state(ck.state["rng"], device)
        start = ck.step
    resumed_from = start
    extra = {"train_config": asdict(cfg), "data_identity": identity,
             "data_meta": {k: v for k, v in dataset.meta.items() if k != "shards"}}  # fmt: skip

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
                    "Lower --lr or raise --grad-clip, then resume with --allow-changed lr,grad_clip."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:  # the task heads (if any) apart: see make_optimizer
                torch.nn.utils.clip_grad_norm_(group["params"], cfg.grad_clip)
            for group in optimizer.param_groups:  # the schedule; --lr may change on resume (allow_changed)
                group["lr"] = learning_rate(cfg, step)
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
