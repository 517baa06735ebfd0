"""How the first frame's slots start (``VIMConfig.slot_init``): learnt, Gaussian draws, BO-QSA."""

from __future__ import annotations

import pytest
import torch

from vim_world.model import VIM, VIMConfig, preset
from vim_world.model.encoders import SlotAttention


def _encoder(slot_init: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return VIM(preset("tiny-pixels", num_slots=4, slot_init=slot_init)).encoder


def test_gaussian_slots_are_fresh_draws_in_training_and_seeded_in_eval():
    encoder, frames = _encoder("gaussian"), torch.rand(2, 3, 3, 32, 32)
    assert encoder.initial_slots.shape == encoder.initial_log_std.shape == (1, 32)  # one law for every slot
    encoder.train()
    assert not torch.equal(encoder(frames)[0], encoder(frames)[0])
    encoder.eval()
    first = encoder(frames)[0]
    torch.randn(5)  # the global random state does not reach eval-mode inference
    assert torch.equal(encoder(frames)[0], first)
    assert not torch.allclose(first[:, :, 0], first[:, :, 1])  # the draws tell the slots apart


def test_bo_qsa_changes_the_gradient_of_the_initial_slots_not_the_slots():
    """BO-QSA's last iteration starts from the converged slots in value, and passes its gradient
    straight to the initial slots: their gradient is the one at the last iteration's input."""
    torch.manual_seed(0)
    attention = SlotAttention(8, 8, 16, iters=3)
    inputs, initial = torch.randn(2, 10, 8), torch.randn(2, 3, 8, requires_grad=True)
    weights = torch.randn(2, 3, 8)
    straight, _ = attention(inputs, initial, straight_through=True)
    plain, _ = attention(inputs, initial)
    torch.testing.assert_close(straight, plain)  # equal up to the rounding of s + a - a
    (grad_straight,) = torch.autograd.grad((straight * weights).sum(), initial)
    converged = attention(inputs, initial, iters=2)[0].detach().requires_grad_()
    (grad_last,) = torch.autograd.grad((attention(inputs, converged, iters=1)[0] * weights).sum(), converged)
    torch.testing.assert_close(grad_straight, grad_last)
    (grad_plain,) = torch.autograd.grad((plain * weights).sum(), initial)
    assert not torch.allclose(grad_plain, grad_straight)


def test_bo_qsa_encodes_like_learnt_slots_with_the_same_weights():
    learned, bo_qsa, frames = _encoder("learned"), _encoder("bo-qsa"), torch.rand(2, 3, 3, 32, 32)
    bo_qsa.load_state_dict(learned.state_dict())
    torch.testing.assert_close(bo_qsa(frames)[0], learned(frames)[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_mode="pixels", slot_init="random"), r"slot_init='random' \(expected one of"),
        (dict(input_mode="state", slot_init="gaussian"), r"slot_init='gaussian' with input_mode='state'"),
        (dict(input_mode="pixels", slot_cues=True, slot_init="bo-qsa"), r"slot_cues=True \(expected pixel mode"),
    ],
)
def test_slot_init_is_a_pixel_option_without_cues(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VIMConfig(**kwargs)
