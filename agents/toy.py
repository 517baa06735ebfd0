"""A tiny hand-written model with a known optimum, for testing planners and for examples.

A point on a line must reach a goal: state ``(x, g)``, each step moves ``x`` by ``speed * u``
(``u`` from the action, see :class:`PointGoal`), plus Gaussian noise in sampled futures (the same N noise draws for every candidate), and
earns ``-|x' - g|``. From ``x < g`` the best first action moves right at full speed; from
``x == g`` it stays.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor


class PointGoal:
    """The 1-D point-to-goal :class:`~vim_world.agents.interface.ReturnModel`.

    Actions -> displacement ``u``: ``Discrete(3)``: ``a - 1``; ``MultiDiscrete([3, 2])``:
    direction ``a0 - 1`` times speed ``1 + a1``; ``Box([-1], [1])``: ``a[0]``.

    Args:
        action_space: one of the three spaces above.
        n_samples: N sampled futures per candidate.
        noise: std of the per-step position noise in sampled futures.
    """

    def __init__(
        self, action_space: spaces.Space, n_samples: int = 4, noise: float = 0.0, device: torch.device | str = "cpu"
    ) -> None:
        self.action_space = action_space
        self.n_samples, self.noise = n_samples, noise
        self.device = torch.device(device)

    def encode(self, observations: np.ndarray) -> Tensor:
        """``(B, 2)`` observations ``(x, g)`` -> the same as a float tensor."""
        return torch.as_tensor(observations, dtype=torch.float32, device=self.device)

    def displacement(self, actions: Tensor) -> Tensor:
        """Per-step displacement ``(B, C, H)`` of actions in the space's format."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return actions.float() - 1.0
        if isinstance(space, spaces.MultiDiscrete):
            return (actions[..., 0].float() - 1.0) * (1.0 + actions[..., 1].float())
        return actions[..., 0]

    def returns(self, states: Tensor, actions: Tensor, generator: torch.Generator) -> Tensor:
        """Returns ``(B, C, N)`` of candidates ``(B, C, H, ...)`` from states ``(B, 2)``."""
        u = self.displacement(actions)
        b, c, h = u.shape
        noise = self.noise * torch.randn((b, 1, self.n_samples, h), generator=generator, device=self.device)
        x = states[:, 0, None, None, None] + torch.cumsum(u.unsqueeze(2) + noise, -1)
        return -(x - states[:, 1, None, None, None]).abs().sum(-1)
