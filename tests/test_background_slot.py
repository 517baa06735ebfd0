"""A background slot that cannot draw objects (``VIMConfig.background_slot``)."""

from __future__ import annotations

import pytest
import torch

from vim_world.model import VIM, VIMConfig, preset


@pytest.mark.parametrize("slot_cues", [False, True], ids=["learnt-slots", "cued"])
def test_slot_zero_draws_one_learnt_colour_and_its_mask_follows_its_latent(slot_cues):
    torch.manual_seed(0)
    decoder = VIM(preset("tiny-pixels", num_slots=4, background_slot=True, slot_cues=slot_cues)).decoder
    with torch.no_grad():
        decoder.background.copy_(torch.tensor([0.1, 0.2, 0.3]))
    first, second = decoder(torch.randn(2, 4, 16)), decoder(torch.randn(2, 4, 16))
    colour = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(2, 3, 32, 32)
    torch.testing.assert_close(first.rgb[:, 0], colour)  # the tiny pixel preset's RGB is linear
    torch.testing.assert_close(second.rgb[:, 0], colour)
    assert not torch.allclose(first.rgb[:, 1], second.rgb[:, 1])  # the other slots draw from their latents
    assert not torch.allclose(first.masks[:, 0], second.masks[:, 0])


def test_the_background_colour_is_trained():
    torch.manual_seed(0)
    decoder = VIM(preset("tiny-pixels", num_slots=3, background_slot=True)).decoder
    decoded = decoder(torch.randn(2, 3, 16))
    loss = -decoder.log_likelihood(decoded, torch.rand(2, 3, 32, 32)).sum()
    (grad,) = torch.autograd.grad(loss, decoder.background)
    assert grad.shape == (3,) and bool(grad.abs().gt(0).all())


def test_without_the_option_slot_zero_draws_from_its_latent():
    decoder = VIM(preset("tiny-pixels", num_slots=3)).decoder
    assert decoder.background is None
    first, second = decoder(torch.randn(2, 3, 16)), decoder(torch.randn(2, 3, 16))
    assert not torch.allclose(first.rgb[:, 0], second.rgb[:, 0])


@pytest.mark.parametrize(
    "kwargs",
    [dict(input_mode="state"), dict(input_mode="pixels", slot_init="gaussian")],
    ids=["state", "gaussian-slots"],
)
def test_background_slot_is_refused_where_no_slot_zero_exists(kwargs):
    with pytest.raises(ValueError, match=r"background_slot=True with input_mode="):
        VIMConfig(background_slot=True, **kwargs)
