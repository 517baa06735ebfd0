"""Exact inference over a chain of module selections (forward-backward in log space).

For one object, selections ``c_1..c_T`` form a Markov chain with initial log-probabilities
``log_init (N, M)`` and per-step transition log-probabilities ``log_trans (N, T, M, M)``
(``[t, i, j] = log p(c_t = j | c_{t-1} = i)``; entry t = 0 is unused); each step scores every
module with ``log_lik (N, T, M)``. This module returns ``log sum_c p(c) prod_t exp(log_lik_t(c_t))``
and the posterior marginals ``p(c_t = m | everything)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def forward_backward(log_init: Tensor, log_trans: Tensor, log_lik: Tensor) -> tuple[Tensor, Tensor]:
    """Log-marginal ``(N,)`` and posterior marginals ``(N, T, M)`` of a chain of selections.

    Differentiable; a loop over time only (T is a training window, not a batch dimension).
    """
    n, t, m = log_lik.shape
    alpha = [log_init + log_lik[:, 0]]
    for step in range(1, t):
        alpha.append(log_lik[:, step] + torch.logsumexp(alpha[-1].unsqueeze(-1) + log_trans[:, step], dim=-2))
    log_marginal = torch.logsumexp(alpha[-1], dim=-1)
    beta = [torch.zeros_like(log_init)]
    for step in range(t - 1, 0, -1):
        beta.append(torch.logsumexp(log_trans[:, step] + (log_lik[:, step] + beta[-1]).unsqueeze(-2), dim=-1))
    beta.reverse()
    log_post = torch.stack(alpha, 1) + torch.stack(beta, 1) - log_marginal[:, None, None]
    return log_marginal, log_post.exp()
