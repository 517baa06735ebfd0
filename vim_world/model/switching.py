"""Module selection: the learnt switching prior and the selection posterior."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .distributions import gaussian_log_prob
from .layers import mlp


class SwitchingPrior(nn.Module):
    """``p(c_t^k | z_{t-1}^k, c_{t-1}^k, a_{t-1})``: a module keeps driving an object or hands over.

    ``c_prev`` is a one-hot ``(N, K, M)`` (all zeros before the first transition). Reads only the
    first ``latent_dim`` (dynamic) dims of a latent, never its static attributes.
    """

    def __init__(self, latent_dim: int, num_modules: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(latent_dim + num_modules + action_dim, hidden, num_modules, layers=1)

    def forward(self, z_prev: Tensor, c_prev: Tensor, action: Tensor | None) -> Tensor:
        """``z_prev (N, K, D [+ static])``, ``c_prev (N, K, M)``, ``action (N, A) | None`` -> logits ``(N, K, M)``."""
        parts = [z_prev[..., : self.latent_dim], c_prev]
        if action is not None:
            parts.append(action[:, None, :].expand(-1, z_prev.shape[1], -1))
        return self.net(torch.cat(parts, dim=-1))


class SelectionPosterior(nn.Module):
    """``q(c_t^k | z_{t-1}^k, z_t^k)`` from how well each module explains the object's transition.

    Each module is scored by the same small network from its own evidence only: the squared
    standardised error of its prediction per latent dimension (log1p-compressed), its log-std, and the exact
    Gaussian log-likelihood of ``z_t`` under it. The score is therefore equivariant to
    permuting the modules, and a module wins an object-step only by predicting it better,
    which is what drives modules to specialise.
    """

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.score = mlp(2 * latent_dim + 1, hidden, 1, layers=1)

    def forward(self, z_next: Tensor, means: Tensor, log_std: Tensor) -> Tensor:
        """Posterior logits ``(N, K, M)``.

        Args:
            z_next: ``(N, K, D [+ static])`` the object latents after the transition.
            means: ``(N, K, M, D [+ static])`` every module's prediction of them.
            log_std: ``(M, D)`` every module's transition log-std.
        """
        d = self.latent_dim
        z, means = z_next[..., :d].unsqueeze(-2), means[..., :d]
        log_lik = gaussian_log_prob(z, means, log_std).mean(-1, keepdim=True)
        sq_error = torch.log1p(((z - means) * torch.exp(-log_std)) ** 2)
        features = torch.cat([sq_error, log_std.expand_as(means), log_lik], dim=-1)
        return self.score(features).squeeze(-1) + log_lik.squeeze(-1) * d
