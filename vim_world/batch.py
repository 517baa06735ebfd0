"""The batch that flows from data sets into world models.

Time alignment: ``obs[:, t]`` is observed, then ``actions[:, t]`` is taken, then ``rewards[:, t]``
is received and ``obs[:, t + 1]`` observed. The transition ``z_{t-1} -> z_t`` is driven by
``actions[:, t - 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass(frozen=True)
class Batch:
    """A batch of B sequences of length T.

    Attributes:
        obs: ``(B, T, C, H, W)`` float32 pixels in [0, 1], or ``(B, T, K, S)`` float32 object
            state features (see ``vim_world.envs.STATE_FEATURES``).
        actions: ``(B, T, A)`` float32 (one-hot for discrete actions), or None for passive data.
        rewards: ``(B, T)`` float32, or None.
        terminations: ``(B, T)`` bool: the episode terminated after ``actions[:, t]``, or None.
        mechanism: ``(B, T, K)`` int64 ground-truth mechanism id of each object, or None.
        states: ``(B, T, K, S)`` float32 ground-truth object state features, or None.
        masks: ``(B, T, K, H, W)`` bool ground-truth object masks, or None.
    """

    obs: torch.Tensor
    actions: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    terminations: torch.Tensor | None = None
    mechanism: torch.Tensor | None = None
    states: torch.Tensor | None = None
    masks: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.obs.shape[0]

    @property
    def seq_len(self) -> int:
        return self.obs.shape[1]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor to ``device``."""
        moved = {
            f.name: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return Batch(**moved)

    def slice_batch(self, start: int, stop: int) -> Batch:
        """Sequences ``[start, stop)`` of the batch."""
        return replace(
            self,
            **{f.name: getattr(self, f.name)[start:stop] for f in fields(self) if getattr(self, f.name) is not None},
        )

    def slice_time(self, start: int, stop: int) -> Batch:
        """Sub-sequence ``[start, stop)`` along time."""
        return replace(
            self,
            **{f.name: getattr(self, f.name)[:, start:stop] for f in fields(self) if getattr(self, f.name) is not None},
        )
