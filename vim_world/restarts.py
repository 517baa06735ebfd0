"""Restarts chosen by the ELBO: train one recipe at several seeds for a short phase, keep the seed
whose model has the best held-out ELBO, and train that one on.

Why: a pixel VIM's slots bind to the objects at some seeds and stay spread over the whole frame at
others (docs/model.md, "Binding over seeds"); the bound runs have by far the better ELBO, so the
ELBO tells them apart without a label. The choice reads no mechanism id or mask, only the model's
own objective on held-out data (from the model's own inputs: a cued model reads the first frame's
positions, as it always does), so figures of the chosen run stay fair (issue 11: choosing among
restarts by accuracy would not be).

``vim-world train ... --restarts 3 --select-at 3000`` (:class:`~vim_world.train_config.TrainConfig`
fields ``restarts`` and ``select_at``) trains seeds ``seed, seed + 1, seed + 2`` in
``OUT/restarts/seed{S}`` to ``select_at`` steps, writes each seed's held-out loss and the choice to
``OUT/restarts/selection.json``, copies the chosen run's checkpoints to ``OUT`` and trains it on to
``steps`` there (its recorded seed is the chosen one). A killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vim_world.checkpoint import latest_checkpoint, load_model
from vim_world.data import SequenceLoader, open_dataset, split_shards, uses_actions
from vim_world.files import write_atomically
from vim_world.sizing import prepare

if TYPE_CHECKING:
    from vim_world.train import TrainResult
    from vim_world.train_config import TrainConfig

FULL_WEIGHT_STEP = 2**62
"""A step past any KL warm-up and annealing: the loss at it is the plain negative ELBO."""


@torch.no_grad()
def heldout_loss(
    model: torch.nn.Module,
    data: str | Path,
    holdout: float,
    *,
    mode: str,
    seq_len: int,
    batches: int = 8,
    batch_size: int = 32,
    seed: int = 0,
) -> float:
    """The model's mean loss per sequence (its negative ELBO, at full KL weight; plus the task
    heads' losses where it has heads) over ``batches x batch_size`` windows of ``seq_len`` steps
    from the held-out shards of ``data`` (the last ``ceil(holdout * n)``, as training holds them
    out). Deterministic: windows and noise are drawn from ``seed``. Label-free: the batches carry
    no mechanism ids or masks."""
    dataset = open_dataset(data)
    _, held = split_shards(dataset, holdout)
    if not held:
        raise ValueError(
            f"holdout={holdout!r} holds no shard of {str(data)!r} out; restarts are chosen on held-out data"
        )
    device = next(model.parameters()).device
    loader = SequenceLoader(
        dataset, batch_size=batch_size, seq_len=seq_len, mode=mode, seed=seed, shard_indices=held, device=device
    )
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the caller's RNG is left as it was
        torch.manual_seed(seed)
        for i in range(batches):
            batch = replace(prepare(loader.batch_at(i), uses_actions(dataset)), mechanism=None, masks=None)
            loss, _ = model.loss(batch, FULL_WEIGHT_STEP)
            total += float(loss)
    model.train(was_training)
    return total / batches


def train_with_restarts(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg`` at seeds ``cfg.seed .. cfg.seed + cfg.restarts - 1`` to ``cfg.select_at``
    steps, keep the one of least :func:`heldout_loss` (on the same held-out windows for all,
    drawn from ``cfg.seed``) and train it on to ``cfg.steps`` in
    ``cfg.out`` (see the module docstring). Single process only."""
    from vim_world.train import train

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("restarts run in one process; train the chosen seed under torchrun without --restarts")
    dataset = open_dataset(cfg.data)
    if not split_shards(dataset, cfg.holdout)[1]:
        raise ValueError(
            f"holdout={cfg.holdout!r} holds no shard of {cfg.data!r} out (it has "
            f"{len(dataset.shard_dirs)}); restarts are chosen on held-out data: collect more shards"
        )
    out = Path(cfg.out)
    selection_file = out / "restarts" / "selection.json"
    if not selection_file.is_file():
        if latest_checkpoint(out / "checkpoints") is not None:
            raise ValueError(f"{str(out)!r} already holds a run trained without restarts; use another --out")
        losses = {}
        for seed in range(cfg.seed, cfg.seed + cfg.restarts):
            trial = replace(cfg, out=str(out / "restarts" / f"seed{seed}"), seed=seed, steps=cfg.select_at, restarts=0)
            model, _ = load_model(train(trial).out, cfg.device)
            # The same windows and noise (drawn from the first seed) for every restart.
            losses[seed] = heldout_loss(model, cfg.data, cfg.holdout, mode=cfg.mode, seq_len=cfg.seq_len, seed=cfg.seed)
        write_atomically(
            selection_file,
            json.dumps(
                {
                    "select_at": cfg.select_at,
                    "heldout_loss": {str(s): v for s, v in losses.items()},
                    "chosen_seed": min(losses, key=losses.get),
                },
                indent=1,
            ),
        )
    chosen = json.loads(selection_file.read_text())["chosen_seed"]
    if latest_checkpoint(out / "checkpoints") is None:
        _copy_checkpoints(out / "restarts" / f"seed{chosen}" / "checkpoints", out / "checkpoints")
    return train(replace(cfg, seed=chosen, restarts=0))


def _copy_checkpoints(source: Path, target: Path) -> None:
    """Copy the checkpoint directory ``source`` to ``target`` (which holds no complete checkpoint)
    in one rename."""
    shutil.rmtree(target, ignore_errors=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    partial.rename(target)
