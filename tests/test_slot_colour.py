"""Latents that also read each slot's mean colour (``VIMConfig.slot_colour``): what the latent head
reads, that the ELBO trains it, that older checkpoints load, and that it is refused outside pixels."""

from __future__ import annotations

import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM
from vim_world.model.config import tiny_pixels

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)


def _head_inputs(model: VIM, frames: torch.Tensor) -> torch.Tensor:
    """What the encoder's latent head reads for ``frames``, ``(B, T, K, in_features)``."""
    seen = []
    hook = model.encoder.head.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    with torch.no_grad():
        model.encoder(frames)
    hook.remove()
    return seen[0]


@pytest.mark.parametrize("stride", [4, 2, 1])
def test_on_a_frame_of_one_colour_every_slot_reads_that_colour(stride):
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, slot_colour=True, encoder_stride=stride))
    colour = torch.tensor([0.9, 0.2, 0.5])
    frames = colour[None, None, :, None, None].expand(2, 3, 3, 32, 32)
    inputs = _head_inputs(model, frames)
    assert inputs.shape == (2, 3, SIZES["num_slots"], SIZES["hidden"] + 3)
    tol = 100 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(inputs[..., -3:], colour.expand(2, 3, SIZES["num_slots"], 3), atol=tol, rtol=tol)


def _colours_and_weights(model: VIM, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour columns of the head's input for the first frame ``(K, C)`` and the slots'
    attention over the tokens, renormalised over the tokens ``(K, L)``."""
    attention = []
    hook = model.encoder.slot_attention.register_forward_hook(lambda _, __, out: attention.append(out[1]))
    colours = _head_inputs(model, frames)[0, 0, :, -frames.shape[2] :]
    hook.remove()
    return colours, attention[0][0] / attention[0][0].sum(-1, keepdim=True)


TOL = 1e-4  # the encoder's 1e-8 floor on the attention moves the shares by less than this


@pytest.mark.parametrize("stride", [4, 2, 1])
def test_a_slot_reads_the_colour_of_what_it_attends_to(stride):
    """Two halves of different colours: each slot's red is its attention's share of the left
    half's tokens (a (32 / stride)^2 grid, row by row), its blue the right half's share."""
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, slot_colour=True, encoder_stride=stride))
    frames = torch.zeros(1, 1, 3, 32, 32)
    frames[..., 0, :, :16] = 1.0  # red left half
    frames[..., 2, :, 16:] = 1.0  # blue right half
    colours, weights = _colours_and_weights(model, frames)
    side = 32 // stride
    left = (torch.arange(side * side) % side < side // 2).float()
    torch.testing.assert_close(colours[:, 0], weights @ left, atol=TOL, rtol=0)
    torch.testing.assert_close(colours[:, 2], weights @ (1 - left), atol=TOL, rtol=0)
    assert colours[:, 1].abs().max() == 0  # no green anywhere


@pytest.mark.parametrize("stride", [4, 2])
def test_each_token_stands_for_the_mean_of_its_patch(stride):
    """On random pixels: the attention-weighted mean of each token's stride x stride patch mean."""
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, slot_colour=True, encoder_stride=stride))
    frames = torch.rand(1, 1, 3, 32, 32)
    colours, weights = _colours_and_weights(model, frames)
    side = 32 // stride
    patches = frames[0, 0].reshape(3, side, stride, side, stride).mean((2, 4)).reshape(3, -1)  # (C, L)
    torch.testing.assert_close(colours, weights @ patches.T, atol=TOL, rtol=0)


def test_the_colour_passes_no_gradient_to_the_encoder():
    """The colour is read from where a slot attends and does not steer where it attends."""
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, slot_colour=True))
    seen = []
    model.encoder.head.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model.encoder(torch.rand(2, 3, 3, 32, 32))
    seen[0][..., -3:].sum().backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.encoder.parameters())


def test_the_elbo_trains_the_colour_columns_of_the_head():
    torch.manual_seed(0)
    model = VIM(tiny_pixels(**SIZES, slot_colour=True))
    model.loss(Batch(obs=torch.rand(2, 3, 3, 32, 32)), 0)[0].backward()
    grad = model.encoder.head.net[0].weight.grad[:, SIZES["hidden"] :]
    assert grad.shape[1] == 3 and torch.isfinite(grad).all() and grad.abs().sum() > 0
