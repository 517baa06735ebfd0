"""TensorBoard: prediction images and evaluation metrics in a run's log directory.

A training run writes its scalars (loss, ELBO terms) to ``<run>/tb`` (:data:`LOG_DIR`); these
functions add to the same directory, so ``tensorboard --logdir runs`` shows everything of a run
together:

- :func:`log_predictions`: ground truth above prediction, one column per step, for a few sequences
  (frames of pixel models; states of state models drawn by the env's rasterizer);
- :func:`log_metrics`: evaluation figures (nested dicts flattened into ``eval/a/b`` tags).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

LOG_DIR = "tb"
"""Sub-directory of a run directory that holds its TensorBoard event files."""


@contextmanager
def run_writer(run_dir: str | Path) -> Iterator[Any]:
    """A ``SummaryWriter`` on ``<run_dir>/tb``, flushed and closed on exit."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(Path(run_dir) / LOG_DIR))
    try:
        yield writer
    finally:
        writer.close()


def _frames(x: torch.Tensor | np.ndarray, size: int) -> np.ndarray:
    """``(B, T, 3, H, W)`` frames in [0, 1] or ``(B, T, K, S)`` states -> ``(B, T, H, W, 3)`` uint8."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 5 and x.shape[2] == 3:
        return (np.clip(x, 0, 1) * 255).round().astype(np.uint8).transpose(0, 1, 3, 4, 2)
    if x.ndim == 4:
        from vim_world.imagined_env import frames_from_states

        b, t = x.shape[:2]
        return frames_from_states(x.reshape(b * t, *x.shape[2:]).astype(np.float32), size).reshape(b, t, size, size, 3)
    raise ValueError(f"expected frames (B, T, 3, H, W) or states (B, T, K, S), got shape {tuple(x.shape)}")


def prediction_grid(
    truth: torch.Tensor | np.ndarray, prediction: torch.Tensor | np.ndarray, *, max_sequences: int = 4, size: int = 64
) -> np.ndarray:
    """One image ``(H', W', 3)`` uint8: for each of the first ``max_sequences`` sequences, a row of
    ground truth above a row of prediction, one column per step, 2-pixel white gaps.

    Args:
        truth, prediction: ``(B, T, 3, H, W)`` frames in [0, 1] or ``(B, T, K, S)`` states, same shape.
        size: side of the drawn state frames (frames keep their own size).
    """
    if tuple(truth.shape) != tuple(prediction.shape):
        raise ValueError(f"truth {tuple(truth.shape)} and prediction {tuple(prediction.shape)} differ in shape")
    if isinstance(max_sequences, bool) or not isinstance(max_sequences, int) or max_sequences < 1:
        raise ValueError(f"max_sequences must be a positive int, got {max_sequences!r}")
    a, b = _frames(truth[:max_sequences], size), _frames(prediction[:max_sequences], size)
    rows = np.stack([a, b], 1).reshape(-1, *a.shape[1:])  # (2B, T, H, W, 3): truth, prediction, ...
    n, t, h, w, _ = rows.shape
    gap = 2
    grid = np.full((n * (h + gap) - gap, t * (w + gap) - gap, 3), 255, np.uint8)
    for i in range(n):
        for j in range(t):
            grid[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = rows[i, j]
    return grid


def log_predictions(
    run_dir: str | Path,
    step: int,
    truth: torch.Tensor | np.ndarray,
    prediction: torch.Tensor | np.ndarray,
    *,
    tag: str = "predictions",
    **grid: Any,
) -> np.ndarray:
    """Write :func:`prediction_grid` of ``truth`` and ``prediction`` as image ``tag`` at ``step``
    to the run's TensorBoard directory; returns the image ``(H', W', 3)``."""
    image = prediction_grid(truth, prediction, **grid)
    with run_writer(run_dir) as writer:
        writer.add_image(tag, image, step, dataformats="HWC")
    return image


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "eval") -> dict[str, float]:
    """``{"a": {"b": 1.0}, "c": 2}`` -> ``{"eval/a/b": 1.0, "eval/c": 2.0}``; non-numeric leaves
    (strings, lists) are left out, as TensorBoard scalars cannot hold them."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, name))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def log_metrics(
    run_dir: str | Path, step: int, metrics: Mapping[str, Any], *, prefix: str = "eval"
) -> dict[str, float]:
    """Write the numeric leaves of ``metrics`` (nested dicts allowed) as scalars at ``step``;
    returns what was written, tag -> value."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of names to numbers, got {type(metrics).__name__}")
    scalars = flatten_metrics(metrics, prefix)
    with run_writer(run_dir) as writer:
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
    return scalars
