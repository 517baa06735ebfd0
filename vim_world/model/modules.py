"""The bank of M transition modules, each applied to every object in one batched call."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .distributions import soft_clamp_log_std
from .layers import StackedLinear


class ContextAttention(nn.Module):
    """Each slot reads the *other* slots through single-head attention (a contextual bottleneck).

    A learnt null key/value is always attendable, so a slot with no other slots (K = 1) reads it.
    Maps ``z (N, K, D)`` to ``context (N, K, hidden)``.
    """

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(latent_dim, hidden)
        self.key_value = nn.Linear(latent_dim, 2 * hidden)
        self.null_key_value = nn.Parameter(torch.zeros(2 * hidden))
        self.scale = 1.0 / math.sqrt(hidden)

    def forward(self, z: Tensor) -> Tensor:
        n, k, _ = z.shape
        keys, values = self.key_value(z).chunk(2, dim=-1)
        null_key, null_value = self.null_key_value.expand(n, 1, -1).chunk(2, dim=-1)
        keys = torch.cat([keys, null_key], dim=1)
        values = torch.cat([values, null_value], dim=1)
        scores = torch.einsum("nqh,nkh->nqk", self.query(z), keys) * self.scale
        self_mask = F.pad(torch.eye(k, dtype=torch.bool, device=z.device), (0, 1))
        scores = scores.masked_fill(self_mask, float("-inf"))
        return torch.einsum("nqk,nkh->nqh", scores.softmax(-1), values)


class ModuleBank(nn.Module):
    """M residual transition modules ``z' = z + f_m(z, a, ctx)`` with stacked ``(M, in, out)`` weights.

    Every module runs on every object at once (one einsum per layer), so the caller can weigh,
    select or marginalise over modules freely. Each module also owns a per-dimension
    transition log-std.
    """

    def __init__(self, latent_dim: int, action_dim: int, hidden: int, num_modules: int,
                 nary: bool, min_log_std: float) -> None:
        super().__init__()
        self.context = ContextAttention(latent_dim, hidden) if nary else None
        in_dim = latent_dim + action_dim + (hidden if nary else 0)
        self.layer1 = StackedLinear(num_modules, in_dim, hidden)
        self.layer2 = StackedLinear(num_modules, hidden, hidden)
        self.layer3 = StackedLinear(num_modules, hidden, latent_dim)
        self.raw_log_std = nn.Parameter(torch.zeros(num_modules, latent_dim))
        self.min_log_std = min_log_std

    def forward(self, z: Tensor, action: Tensor | None) -> tuple[Tensor, Tensor]:
        """Predict the next latent of every object under every module.

        Args:
            z: ``(N, K, D)`` current object latents.
            action: ``(N, A)`` action, broadcast to every object, or None.

        Returns:
            means ``(N, K, M, D)`` and log-stds ``(M, D)``.
        """
        parts = [z]
        if action is not None:
            parts.append(action[:, None, :].expand(-1, z.shape[1], -1))
        if self.context is not None:
            parts.append(self.context(z))
        x = torch.cat(parts, dim=-1)
        h = F.relu(self.layer1(x, shared_input=True))
        h = F.relu(self.layer2(h, shared_input=False))
        means = z.unsqueeze(-2) + self.layer3(h, shared_input=False)
        return means, soft_clamp_log_std(self.raw_log_std, self.min_log_std)

    @torch.no_grad()
    def copy_module(self, source: int, targets: list[int], noise: float, generator: torch.Generator) -> None:
        """Overwrite modules ``targets`` with module ``source``, weights perturbed by ``noise``
        times their std (so the copies can drift apart), transition log-std copied as is."""
        for layer in (self.layer1, self.layer2, self.layer3):
            for t in targets:
                jitter = torch.randn(layer.weight[source].shape, generator=generator).to(layer.weight)
                layer.weight[t] = layer.weight[source] + noise * layer.weight[source].std() * jitter
                layer.bias[t] = layer.bias[source]
        self.raw_log_std[targets] = self.raw_log_std[source].clone()
