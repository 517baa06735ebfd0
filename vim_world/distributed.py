"""Data-parallel training with ``torch.distributed``: process group, DDP wrapper, metric
reduction and rank-consistent noise.

A run started by ``torchrun`` has ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in its
environment; :func:`setup` reads them and joins the process group (``nccl`` on CUDA, ``gloo``
on the CPU). Without them, training runs in one process and nothing here costs anything.

Every rank computes the loss on its own rows of the same global batch (see
``SequenceLoader.batch_at``) and DDP averages the gradients. The loss is a mean over the batch,
so the average of the per-rank means of equal-sized parts is the global mean: one step gives the
parameters of a single process on the global batch. :class:`GlobalBatchNoise` makes the random
draws inside the loss (latent samples, Gumbel noise) a function of ``(seed, step, global row)``
as well, so that this holds exactly, not only in distribution.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run.

    Attributes:
        rank: global rank, 0 to ``world_size - 1``.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        device: the device this rank computes on.
        owns_group: whether :func:`setup` created the process group (and :func:`teardown` ends it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None
    if value < 0:
        raise ValueError(f"environment variable {name}={raw!r} must be >= 0")
    return value


def setup(device: torch.device) -> DistContext:
    """Join the process group that ``torchrun`` (or the caller) prepared, if any.

    Args:
        device: the device asked for (``resolve_device`` of the config). On CUDA with several
            processes, each rank takes ``cuda:LOCAL_RANK``.

    Raises: ValueError when the environment variables are malformed or inconsistent.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        owns = False
    else:
        world = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        local = _env_int("LOCAL_RANK", rank)
        if world < 1 or rank >= world:
            raise ValueError(f"RANK={rank} and WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
        owns = world > 1
        if owns:
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    if device.type == "cuda" and world > 1:
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA devices are visible")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return DistContext(rank, world, local, device, owns)


def teardown(ctx: DistContext) -> None:
    """End the process group if :func:`setup` started it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in one process)."""
    if ctx.distributed:
        dist.barrier()


class LossModule(nn.Module):
    """``forward(batch, step) = model.loss(batch, step)``: DDP synchronises gradients of what
    runs inside ``forward``, and the world models expose their objective as ``loss``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch, step)


def loss_function(model: nn.Module, ctx: DistContext) -> Callable[..., tuple[torch.Tensor, dict[str, float]]]:
    """``model.loss`` in one process; a DDP-wrapped equivalent across several."""
    if not ctx.distributed:
        return model.loss
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(LossModule(model), device_ids=None)


def mean_across_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average each value over the ranks (``all_reduce``); every rank gets the same dict.

    Batch means of equal-sized parts average to the global batch mean; a non-linear statistic
    (e.g. a perplexity) becomes the mean of the per-rank values.
    """
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    backend_device = ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=backend_device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, (t / ctx.world_size).tolist())}


def _seed_of(*parts: int) -> int:
    """A 63-bit seed from integers (``SeedSequence`` mixes them well)."""
    return int(np.random.SeedSequence([int(p) & (2**63 - 1) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class GlobalBatchNoise(TorchFunctionMode):
    """Within this context, ``torch.randn``/``rand`` (without a generator) and
    ``torch.randn_like``/``rand_like`` return this rank's rows of a draw for the whole global
    batch, seeded by ``(seed, step, n)`` for the ``n``-th draw.

    A draw whose leading size is ``local_batch * n`` (e.g. ``(B, T, K, D)`` or a flattened
    ``(B * T, ...)``) is taken as ``n`` rows per sample: the global draw has leading size
    ``global_batch * n`` and this rank keeps rows ``[offset * n, (offset + local_batch) * n)``.
    Any other draw is shared by all samples and is drawn identically on every rank. Sample ``b``
    of the global batch therefore gets the same noise whatever the number of processes, so the
    data-parallel step equals the single-process step; the noise also depends on the step only,
    not on the RNG's history.

    Args:
        seed: the run's seed.
        step: the training step.
        offset: index of this rank's first row in the global batch.
        local_batch: rows on this rank.
        global_batch: rows over all ranks.
    """

    _LIKE = {torch.randn_like: torch.randn, torch.rand_like: torch.rand}
    _FACTORIES = (torch.randn, torch.rand)

    def __init__(self, seed: int, step: int, offset: int, local_batch: int, global_batch: int) -> None:
        super().__init__()
        if local_batch < 1 or offset < 0 or offset + local_batch > global_batch:
            raise ValueError(f"rows [{offset}, {offset + local_batch}) do not fit a global batch of {global_batch}")
        self.seed, self.step = seed, step
        self.offset, self.local_batch, self.global_batch = offset, local_batch, global_batch
        self._draws = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self._LIKE:
            like = args[0]
            draw = self._LIKE[func]
            shape = tuple(like.shape)
            dtype = kwargs.get("dtype") or like.dtype
            device = kwargs.get("device") or like.device
        elif func in self._FACTORIES and kwargs.get("generator") is None:
            draw = func
            shape = tuple(args[0]) if len(args) == 1 and not isinstance(args[0], int) else tuple(args)
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            device = torch.device(kwargs["device"]) if kwargs.get("device") is not None else torch.device("cpu")
        else:
            return func(*args, **kwargs)
        generator = torch.Generator(device=device).manual_seed(_seed_of(self.seed, self.step, self._draws))
        self._draws += 1
        if shape and shape[0] > 0 and shape[0] % self.local_batch == 0:
            per = shape[0] // self.local_batch
            full = draw((self.global_batch * per, *shape[1:]), generator=generator, dtype=dtype, device=device)
            return full[self.offset * per : (self.offset + self.local_batch) * per]
        return draw(shape, generator=generator, dtype=dtype, device=device)
