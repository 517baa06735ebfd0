"""Latents read from a slot and its change since the previous frame (``VIMConfig.slot_motion``):
what the latent reads and that it trains; and, for it and SAVi's predictor, that a sequence
continued from its last slots reads as the whole sequence does."""

from __future__ import annotations

import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM
from vim_world.model.config import tiny_pixels

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)


def _model() -> VIM:
    torch.manual_seed(0)
    return VIM(tiny_pixels(**SIZES, slot_motion=True))


def test_the_latent_reads_the_slot_and_its_change_zero_at_the_first_frame():
    model = _model()
    frames = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        mean, _, _ = model.encoder(frames)
        slots = [model.encoder(frames[:, : t + 1])[2] for t in range(3)]  # the slots after each frame
        first = model.encoder.head(torch.cat([slots[0], torch.zeros_like(slots[0])], -1))[0]
        last = model.encoder.head(torch.cat([slots[2], slots[2] - slots[1]], -1))[0]
    tol = 100 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(mean[:, 0], first, atol=tol, rtol=tol)
    torch.testing.assert_close(mean[:, 2], last, atol=tol, rtol=tol)


def test_the_latent_head_reads_the_motion_only_with_the_option():
    assert VIM(tiny_pixels(**SIZES)).encoder.head.net[0].in_features == SIZES["hidden"]
    assert _model().encoder.head.net[0].in_features == 2 * SIZES["hidden"]


def test_the_elbo_trains_the_motion_half_of_the_head():
    model = _model()
    model.loss(Batch(obs=torch.rand(2, 3, 3, 32, 32)), 0)[0].backward()
    grad = model.encoder.head.net[0].weight.grad[:, SIZES["hidden"] :]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(
    "options",
    [
        dict(slot_predictor=True),
        dict(slot_predictor=True, carried_slot_iters=1),
        dict(slot_motion=True),
        dict(slot_motion=True, slot_predictor=True, carried_slot_iters=1),
        dict(slot_colour=True, slot_motion=True),
    ],
)
def test_a_continued_sequence_reads_as_the_whole_one(options):
    """With the predictor (carried slots) and with motion (the change from the caller's slots)."""
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, **options))
    frames = torch.rand(2, 5, 3, 32, 32)
    with torch.no_grad():
        whole = model.encoder(frames)[0]
        head, _, last = model.encoder(frames[:, :2])
        tail = model.encoder(frames[:, 2:], slots=last)[0]
    tol = 100 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(torch.cat([head, tail], dim=1), whole, atol=tol, rtol=tol)
