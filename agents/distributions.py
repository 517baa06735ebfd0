"""Search distributions over action sequences, batched over start states.

:class:`CategoricalSequence` covers ``Discrete`` and ``MultiDiscrete`` spaces (independent
categoricals per step and part), :class:`GaussianSequence` bounded ``Box`` spaces (independent
Gaussians, samples clipped to the bounds). Both draw ``(B, C, H, ...)`` candidates, refit to
weighted candidates (CEM: uniform weights on elites; MPPI: softmax of scores) and give their mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor


@dataclass(frozen=True)
class CategoricalSequence:
    """Independent categoricals over H steps and P action parts.

    Attributes:
        probs: ``(B, H, P, V)`` probabilities; part p uses its first ``nvec[p]`` entries, the
            rest are 0. V is ``max(nvec)``.
        discrete: True for ``Discrete`` (actions ``(..., H)``), False for ``MultiDiscrete``
            (actions ``(..., H, P)``).
    """

    probs: Tensor
    discrete: bool

    @classmethod
    def uniform(
        cls, space: spaces.Discrete | spaces.MultiDiscrete, batch: int, horizon: int, device: torch.device | str
    ) -> CategoricalSequence:
        discrete = isinstance(space, spaces.Discrete)
        nvec = torch.as_tensor(np.atleast_1d(space.n if discrete else space.nvec), device=device)
        valid = (torch.arange(int(nvec.max()), device=device) < nvec[:, None]).float()  # (P, V)
        probs = (valid / valid.sum(-1, keepdim=True)).expand(batch, horizon, -1, -1).contiguous()
        return cls(probs, discrete)

    def sample(self, num: int, generator: torch.Generator) -> Tensor:
        """``num`` candidates per start state: int64 ``(B, num, H)`` or ``(B, num, H, P)``."""
        b, h, p, v = self.probs.shape
        draws = torch.multinomial(self.probs.reshape(-1, v), num, replacement=True, generator=generator)
        actions = draws.reshape(b, h, p, num).permute(0, 3, 1, 2)
        return actions[..., 0] if self.discrete else actions

    def fit(self, actions: Tensor, weights: Tensor, keep: float = 0.0) -> CategoricalSequence:
        """Weighted frequencies of ``actions (B, E, H[, P])`` under ``weights (B, E)`` (summing to
        1), mixed with the current probabilities: ``keep * old + (1 - keep) * new``."""
        a = actions.unsqueeze(-1) if self.discrete else actions
        onehot = torch.nn.functional.one_hot(a, self.probs.shape[-1]).to(self.probs.dtype)
        new = torch.einsum("be,behpv->bhpv", weights, onehot)
        return CategoricalSequence(keep * self.probs + (1.0 - keep) * new, self.discrete)

    def shifted(self, steps: int, broad: CategoricalSequence, explore: float) -> CategoricalSequence:
        """Warm start for the next decision: drop the first ``steps`` steps, append the last ``steps``
        from ``broad``, and mix ``explore`` of ``broad`` into every step."""
        probs = torch.cat([self.probs[:, steps:], broad.probs[:, -steps:]], 1)
        return CategoricalSequence((1.0 - explore) * probs + explore * broad.probs, self.discrete)

    def mode(self) -> Tensor:
        """Most likely sequence ``(B, H)`` or ``(B, H, P)``."""
        best = self.probs.argmax(-1)
        return best[..., 0] if self.discrete else best


@dataclass(frozen=True)
class GaussianSequence:
    """Independent Gaussians over H steps, clipped to the box.

    Attributes:
        mean, std: ``(B, H, *shape)``.
        low, high: ``shape`` bounds of the box.
    """

    mean: Tensor
    std: Tensor
    low: Tensor
    high: Tensor

    @classmethod
    def uniform(cls, space: spaces.Box, batch: int, horizon: int, device: torch.device | str) -> GaussianSequence:
        """Centred on the box, std half its width (the box must be bounded)."""
        if not space.is_bounded("both"):
            raise ValueError(f"planning over a Box needs finite bounds, got {space}")
        low = torch.as_tensor(space.low, dtype=torch.float32, device=device)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=device)
        mean = ((low + high) / 2).expand(batch, horizon, *space.shape).contiguous()
        std = ((high - low) / 2).expand(batch, horizon, *space.shape).contiguous()
        return cls(mean, std, low, high)

    def sample(self, num: int, generator: torch.Generator) -> Tensor:
        """``num`` candidates per start state: float ``(B, num, H, *shape)``."""
        shape = (self.mean.shape[0], num, *self.mean.shape[1:])
        noise = torch.randn(shape, generator=generator, device=self.mean.device)
        return torch.clamp(self.mean.unsqueeze(1) + self.std.unsqueeze(1) * noise, self.low, self.high)

    def fit(self, actions: Tensor, weights: Tensor, keep: float = 0.0, fit_std: bool = True) -> GaussianSequence:
        """Weighted mean (and std) of ``actions (B, E, H, *shape)`` under ``weights (B, E)``
        (summing to 1), mixed with the current ones: ``keep * old + (1 - keep) * new``."""
        w = weights.reshape(*weights.shape, *[1] * (actions.dim() - 2))
        mean = (w * actions).sum(1)
        std = self.std
        if fit_std:
            std = keep * self.std + (1.0 - keep) * ((w * (actions - mean.unsqueeze(1)) ** 2).sum(1)).sqrt()
        return GaussianSequence(keep * self.mean + (1.0 - keep) * mean, std, self.low, self.high)

    def shifted(self, steps: int, broad: GaussianSequence, explore: float) -> GaussianSequence:
        """Warm start for the next decision (as PlaNet and mbrl-lib): the mean shifted by ``steps``
        with ``broad``'s mean appended, and ``broad``'s std (``explore`` is unused: the std is
        reset, which is already the broadest exploration)."""
        mean = torch.cat([self.mean[:, steps:], broad.mean[:, -steps:]], 1)
        return GaussianSequence(mean, broad.std, self.low, self.high)

    def mode(self) -> Tensor:
        """The mean sequence ``(B, H, *shape)``."""
        return self.mean


SequenceDistribution = CategoricalSequence | GaussianSequence


def initial_distribution(
    space: spaces.Space, batch: int, horizon: int, device: torch.device | str
) -> SequenceDistribution:
    """The broad starting distribution of a search over ``space``."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        if isinstance(space, spaces.Discrete) and int(space.start) != 0:
            raise ValueError(f"Discrete spaces must start at 0, got start={space.start}")
        if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim != 1:
            raise ValueError(f"only 1-D MultiDiscrete spaces are supported, got nvec {space.nvec.shape}")
        return CategoricalSequence.uniform(space, batch, horizon, device)
    if isinstance(space, spaces.Box):
        return GaussianSequence.uniform(space, batch, horizon, device)
    raise TypeError(f"unsupported action space {space}")
