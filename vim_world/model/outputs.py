"""Results returned by world models: inferred posteriors and sampled predictions."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Posterior:
    """What VIM infers from an observed sequence of length T.

    Selections index transitions: entry t is the module that drove each object from step t - 1
    to step t. Step 0 has no incoming transition: its ``selections`` are -1 and its ``probs``
    uniform, so scoring code should use ``[:, 1:]``.

    Attributes:
        z_mean: ``(B, T, K, D)`` posterior means of the object latents.
        z_log_std: ``(B, T, K, D)`` posterior log-stds.
        probs: ``(B, T, K, M)`` selection posterior ``q(c_t^k)``.
        selections: ``(B, T, K)`` int64 argmax of ``probs`` (-1 at t = 0).
        masks: ``(B, T, K, H, W)`` decoded slot alpha masks (pixel mode), else None.
        last_z: ``(B, K, D)`` latents at the last step, to continue with ``prior_step``.
        last_c: ``(B, K)`` int64 selections at the last step (-1 when T = 1).
        slots: ``(B, K, hidden)`` slot-attention state after the last frame (pixel mode), else None.
        recon: the observations decoded from ``z_mean``: frames ``(B, T, C, H, W)`` in pixel mode,
            states ``(B, T, K, S)`` in state mode.
    """

    z_mean: Tensor
    z_log_std: Tensor
    probs: Tensor
    selections: Tensor
    masks: Tensor | None
    last_z: Tensor
    last_c: Tensor
    slots: Tensor | None
    recon: Tensor


@dataclass(frozen=True)
class Prediction:
    """N sampled futures over a horizon, for each of B sequences.

    Attributes:
        obs: ``(B, N, horizon, C, H, W)`` frames or ``(B, N, horizon, K, S)`` states; compare to
            ``batch.obs[:, context:context + horizon]``.
        z: ``(B, N, horizon, K, D)`` object latents, or None for models without them.
        selections: ``(B, N, horizon, K)`` int64 sampled modules, or None.
        probs: ``(B, N, horizon, K, M)`` switching-prior probabilities, or None.
        rewards: ``(B, N, horizon)`` predicted rewards aligned with
            ``batch.rewards[:, context - 1:context - 1 + horizon]``, or None.
    """

    obs: Tensor
    z: Tensor | None = None
    selections: Tensor | None = None
    probs: Tensor | None = None
    rewards: Tensor | None = None
