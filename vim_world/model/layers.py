"""Building blocks shared by encoders, decoders, modules and baselines."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden ReLU layers of width ``hidden``, then a linear output; acts on the last dim."""
    dims = [in_dim] + [hidden] * layers
    blocks: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        blocks += [nn.Linear(d_in, d_out), nn.ReLU()]
    blocks.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*blocks)


def position_grid(size: int, device: torch.device | None = None) -> Tensor:
    """``(size, size, 4)`` coordinates ``(x, y, 1 - x, 1 - y)`` in [0, 1] at pixel centres."""
    ticks = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([x, y, 1.0 - x, 1.0 - y], dim=-1)


class StackedLinear(nn.Module):
    """M independent linear maps held in one ``(M, in, out)`` weight and applied in one einsum."""

    def __init__(self, num: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, out_dim).uniform_(-bound, bound))

    def forward(self, x: Tensor, shared_input: bool) -> Tensor:
        """``(..., in)`` if ``shared_input`` else ``(..., M, in)`` -> ``(..., M, out)``."""
        pattern = "...i,mio->...mo" if shared_input else "...mi,mio->...mo"
        return torch.einsum(pattern, x, self.weight) + self.bias


class Standardizer(nn.Module):
    """Fixed per-feature standardisation ``(x - shift) / scale`` over the last dim, kept in buffers
    (so it travels with the weights). Object state features live on very different scales
    (positions ~1, velocities ~0.03, size changes ~0.006); a likelihood with one std sees only
    the large ones unless the features are standardised. Identity until :meth:`fit` is called.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: Tensor, min_scale: float = 1e-3) -> None:
        """Set shift and scale to the mean and std of samples ``x (..., dim)``."""
        flat = x.reshape(-1, x.shape[-1]).to(self.shift)
        self.shift.copy_(flat.mean(0))
        self.scale.copy_(flat.std(0).clamp_min(min_scale))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def inverse(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift
