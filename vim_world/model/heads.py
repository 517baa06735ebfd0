"""Heads that read the whole scene: reward and termination from every object latent and the action.

A task's reward often depends on objects jointly (the steer task's progress term is the change
of the agent-to-goal distance, a function of two objects), which a sum of per-object terms
``sum_k g(z^k, a)`` cannot represent. :class:`RelationHead` is a relation network (Santoro et al.
2017): every ordered pair of objects is scored by one shared network,
``h = f(mean_{i, j} g(z^i, z^j, a))`` (the pairs ``i = j`` are per-object terms), so the output
can be any smooth function of pairs, and it does not depend on the slot order or on K. :class:`SumHead` is the
per-object sum, kept as the baseline the relation head is measured against.

Shape letters: N states, K objects, D latent size (dynamic and static), A action-vector size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import HEAD_POOLS
from .layers import mlp

GATE_FLOOR = 0.1
"""Least relevance weight of an object under ``pool="gated"``. A plain sigmoid gate can close on
the object the task depends on early in training and never reopen (its gradient vanishes with
it): the agent's weight fell to 0.003 at 1 of 5 initialisations fitted on Steer latents, and to
0.0007 in a VIM run, with 2.5x the reward error. With the floor, 0 of 5 there; the floor keeps
the agent's pairs in the sum, but at the tiny planning budget its weight still sank to the floor
and the heads failed (which is why that budget keeps the mean; docs/planning.md)."""

MAX_PAIR_WIDTH = 64
"""Widest pair feature ``g``: its cost, ``K * K * width`` per state, dominates a planner's step
(one thread, 4000 states, K = 4: width 128 took 3.3x the time of width 64)."""


def _with_action(z: Tensor, action: Tensor | None) -> Tensor:
    """``z (N, K, D)`` and ``action (N, A)`` -> ``(N, K, D + A)`` (the action beside every object)."""
    if action is None:
        return z
    return torch.cat([z, action[:, None, :].expand(-1, z.shape[1], -1)], dim=-1)


class SumHead(nn.Module):
    """``out = sum_k g(z^k, a)``: a sum of per-object terms (cannot couple two objects).

    Args:
        latent_size: D.
        action_dim: A (0 for passive models).
        hidden: width of ``g``'s hidden layer.
        out_dim: size of each output.
    """

    def __init__(self, latent_size: int, action_dim: int, hidden: int, out_dim: int = 1) -> None:
        super().__init__()
        self.net = mlp(latent_size + action_dim, hidden, out_dim, layers=1)

    def forward(self, z: Tensor, action: Tensor | None) -> Tensor:
        """``z (N, K, D)``, ``action (N, A)`` or None -> ``(N, out_dim)``."""
        return self.net(_with_action(z, action)).sum(1)


class RelationHead(nn.Module):
    """``out = f(pool_{i, j} g(z^i, z^j, a))``: a function of the whole scene through object pairs.

    ``g(z^i, z^j, a) = relu(W [z^i, a] + V z^j + b)`` (one hidden layer, a universal
    approximator of pair functions as it widens) on layer-normalised latents is computed as one
    linear map per object and an addition per pair, so the pair cost is ``N * K * K * hidden``
    additions; ``f`` is an MLP on the pair features' mean. (Measured on the latents of a VIM
    trained on Steer data, held-out reward MSE after 600 Adam steps: 0.0137 with the layer norm
    and the mean, 0.0195 with the sum, 0.0508 with neither; the per-object sum head 0.0165;
    reward variance 0.0431.)

    Args:
        latent_size: D.
        action_dim: A (0 for passive models).
        hidden: width of ``f``'s hidden layer, and of ``g`` up to :data:`MAX_PAIR_WIDTH`.
        out_dim: size of each output.
        pool: ``"mean"`` over the K x K pairs; ``"max"`` per feature (a pair's feature then
            keeps its size when objects are added, where the mean divides it by K^2); or
            ``"gated"``, the mean weighted by ``w_i w_j`` with a learnt relevance per object,
            ``w_k = GATE_FLOOR + (1 - GATE_FLOOR) sigmoid(r(z^k))``: objects the task ignores
            sink to the floor, so one more of them moves the output little.
    """

    def __init__(self, latent_size: int, action_dim: int, hidden: int, out_dim: int = 1, pool: str = "mean") -> None:
        super().__init__()
        if pool not in HEAD_POOLS:
            raise ValueError(f"pool must be one of {HEAD_POOLS}, got {pool!r}")
        self.pool = pool
        width = min(hidden, MAX_PAIR_WIDTH)
        self.norm = nn.LayerNorm(latent_size)
        self.first = nn.Linear(latent_size + action_dim, width)
        self.second = nn.Linear(latent_size, width, bias=False)
        self.out = mlp(width, hidden, out_dim, layers=1)
        self.relevance = mlp(latent_size, width, 1, layers=1) if pool == "gated" else None

    def forward(self, z: Tensor, action: Tensor | None) -> Tensor:
        """``z (N, K, D)``, ``action (N, A)`` or None -> ``(N, out_dim)``."""
        z = self.norm(z)
        left, right = self.first(_with_action(z, action)), self.second(z)  # (N, K, H) each
        weights = None
        if self.relevance is not None:
            weights = GATE_FLOOR + (1.0 - GATE_FLOOR) * torch.sigmoid(self.relevance(z))[..., 0]  # (N, K)
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (left, right, weights)):
            pairs = (left[:, :, None] + right[:, None, :]).relu()
            if weights is not None:
                pair_weights = weights[:, :, None] * weights[:, None, :]
                pooled = (pairs * pair_weights[..., None]).sum((1, 2)) / pair_weights.sum((1, 2))[:, None]
            else:
                pooled = pairs.mean((1, 2)) if self.pool == "mean" else pairs.flatten(1, 2).amax(1)
        else:
            pooled = _pair_pool(left, right, self.pool, weights)
        return self.out(pooled)


PAIR_CHUNK_BYTES = 1 << 18
"""Bytes of pair features :func:`_pair_pool` holds at once (256 KiB, inside a core's L2 cache;
1 MiB planned as fast within this machine's noise: docs/planning.md, "Against the 250 ms target")."""


def _pair_pool(left: Tensor, right: Tensor, pool: str = "mean", weights: Tensor | None = None) -> Tensor:
    """``mean_{i, j} relu(left_i + right_j)`` (the max, ``pool="max"``; or with ``pool="gated"``
    the mean weighted by ``weights_i weights_j``, ``weights (N, K)`` positive) without gradients:
    ``(N, K, H)`` twice -> ``(N, H)``.

    The ``(N, K, K, H)`` pair features are built a chunk of states at a time and rectified in
    place, so they stay in cache and no large buffer is allocated; equal to the one-shot
    expression up to float rounding of the mean (tested). One CPU thread, N = 4000, K = 4, H = 64:
    5.6 ms against 37 ms (``benchmarks/planning_speed.py --threads 1``, the two "pair pooling" rows).
    """
    n, k, h = left.shape
    rows = max(1, PAIR_CHUNK_BYTES // (k * k * h * left.element_size()))
    out = left.new_empty(n, h)
    for start in range(0, n, rows):
        chunk = slice(start, start + rows)
        pairs = (left[chunk, :, None] + right[chunk, None, :]).relu_()
        if pool == "mean":
            torch.mean(pairs, (1, 2), out=out[chunk])
        elif pool == "max":
            torch.amax(pairs.flatten(1, 2), 1, out=out[chunk])
        else:
            pair_weights = weights[chunk, :, None] * weights[chunk, None, :]  # (rows, K, K)
            torch.sum(pairs.mul_(pair_weights[..., None]), (1, 2), out=out[chunk])
            out[chunk] /= pair_weights.sum((1, 2))[:, None]
    return out
