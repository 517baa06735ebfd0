"""Action encoding, in one place: env actions -> the float vectors world models read.

Data sets store these vectors, models take them, planners turn candidate actions into them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor


def action_dim(space: spaces.Space) -> int:
    """Length A of the action vectors of ``space``."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.sum())
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"unsupported action space {space}")


def action_vectors(actions: Tensor | np.ndarray, space: spaces.Space) -> Tensor | np.ndarray:
    """Actions of ``space`` -> float32 vectors ``(..., A)``; numpy in, numpy out; torch in, torch
    out (on the actions' device).

    ``Discrete(n)``: int ``(...)`` -> one-hot ``(..., n)``; ``MultiDiscrete(nvec)``: int
    ``(..., P)`` -> concatenated one-hots ``(..., sum(nvec))``; ``Box``: ``(..., *shape)`` ->
    flattened ``(..., prod(shape))``.
    """
    if isinstance(actions, np.ndarray):
        return action_vectors(torch.from_numpy(actions), space).numpy()
    if isinstance(space, spaces.Discrete):
        return F.one_hot(actions.long() - int(space.start), int(space.n)).float()
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1:
            raise ValueError(f"only 1-D MultiDiscrete spaces are supported, got nvec {space.nvec.shape}")
        parts = [F.one_hot(actions[..., i].long(), int(n)) for i, n in enumerate(space.nvec)]
        return torch.cat(parts, -1).float()
    if isinstance(space, spaces.Box):
        return actions.float().flatten(actions.dim() - len(space.shape))
    raise TypeError(f"unsupported action space {space}")
