"""The n-ary modules' attention context: what its two scorings can attend to, and the option's contract."""

from __future__ import annotations

import math

import pytest
import torch

from vim_world.batch import Batch
from vim_world.model.config import VIMConfig, tiny_state
from vim_world.model.modules import ContextAttention
from vim_world.model.vim import VIM


def _context_reading_positions(scores: str) -> ContextAttention:
    """A context over 2-D points whose queries, keys and values are the points themselves, whose
    null slot is out of reach, and whose attention is sharp."""
    context = ContextAttention(2, 2, scores)
    with torch.no_grad():
        context.query.weight.copy_(torch.eye(2))
        context.query.bias.zero_()
        context.key_value.weight.copy_(torch.cat([torch.eye(2), torch.eye(2)]))
        context.key_value.bias.zero_()
        context.null_key_value.copy_(torch.tensor([1e3, 1e3, 0.0, 0.0]) * (1 if scores == "l2" else -1))
        context.scale = 200.0
        if context.log_scale is not None:
            context.log_scale.fill_(math.log(200.0))
    return context


def _nearest_other(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``points (N, K, 2)`` -> each point's nearest other point ``(N, K, 2)``, and whether it is
    nearer than the second nearest by a clear margin (0.05 in squared distance) ``(N, K)``."""
    squared = torch.cdist(points, points).square() + torch.eye(points.shape[1]) * 1e9
    two = squared.topk(2, dim=-1, largest=False)
    nearest = torch.gather(points, 1, two.indices[..., :1].expand(-1, -1, 2))
    return nearest, two.values[..., 1] - two.values[..., 0] > 0.05


def test_l2_scores_read_the_nearest_other_slot_where_dot_products_cannot():
    points = torch.rand(256, 4, 2, generator=torch.Generator().manual_seed(0))
    nearest, clear = _nearest_other(points)
    assert clear.float().mean() > 0.5
    with torch.no_grad():
        l2 = _context_reading_positions("l2")(points)
        dot = _context_reading_positions("dot")(points)
    torch.testing.assert_close(l2[clear], nearest[clear], atol=1e-3, rtol=0)
    # A dot product of the same maps attends to the point of largest projection, not the nearest.
    assert (dot - nearest)[clear].abs().amax(-1).gt(1e-2).float().mean() > 0.3


def test_l2_scores_never_attend_to_the_slot_itself():
    points = torch.tensor([[[0.0, 0.0], [0.5, 0.0], [0.0, 0.9]]])
    with torch.no_grad():
        context = _context_reading_positions("l2")(points)
    torch.testing.assert_close(context, torch.tensor([[[0.5, 0.0], [0.0, 0.0], [0.0, 0.0]]]), atol=1e-4, rtol=0)


def test_bad_nary_scores_are_refused_by_name():
    with pytest.raises(ValueError, match=r"nary_scores='cosine' \(expected one of \('dot', 'l2'\)\)"):
        VIMConfig(nary=True, nary_scores="cosine")
    with pytest.raises(ValueError, match=r"nary_scores='l2' with nary=False \(expected nary=True"):
        VIMConfig(nary_scores="l2")
    with pytest.raises(ValueError, match=r"scores='cosine' \(expected 'dot' or 'l2'\)"):
        ContextAttention(2, 2, "cosine")


def test_the_l2_context_adds_only_its_scale_to_the_dot_products_weights():
    weights = VIM(tiny_state(nary=True)).state_dict()
    assert "transitions.context.log_scale" not in weights
    l2 = VIM(tiny_state(nary=True, nary_scores="l2")).state_dict()
    assert set(l2) - set(weights) == {"transitions.context.log_scale"}


def test_the_elbo_trains_the_l2_scale():
    torch.manual_seed(0)
    config = tiny_state(nary=True, nary_scores="l2")
    model = VIM(config)
    states = torch.randn(2, 4, config.num_slots, config.state_dim)
    loss, _ = model.loss(Batch(obs=states), 10_000)
    loss.backward()
    grad = model.transitions.context.log_scale.grad
    assert grad is not None and grad.abs() > 0
