"""Bounded slot colours (``VIMConfig.decoder_rgb="bounded"``): [0, 1] without a dead gradient."""

from __future__ import annotations

import pytest
import torch

from vim_world.model import VIM, VIMConfig, preset
from vim_world.model.decoders import SpatialBroadcastDecoder, _ClampTowardsRange


def test_colours_are_clamped_and_the_gradient_passes_only_towards_the_range():
    x = torch.tensor([-1.0, -1.0, 0.5, 0.5, 2.0, 2.0], requires_grad=True)
    y = _ClampTowardsRange.apply(x)
    assert y.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    # A descent step moves x by -grad: below 0, only a negative gradient (x rises) passes;
    # above 1, only a positive one (x falls); inside, every gradient passes.
    y.backward(torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    assert x.grad.tolist() == [0.0, -1.0, 1.0, -1.0, 1.0, 0.0]


def test_the_decoder_draws_colours_in_range_whose_gradient_reaches_dark_pixels():
    torch.manual_seed(0)
    decoder = VIM(preset("tiny-pixels", num_slots=3, decoder_rgb="bounded")).decoder
    with torch.no_grad():  # push every colour far below 0, where a sigmoid would be saturated
        decoder.net[-1].bias[:-1].fill_(-20.0)
    decoded = decoder(torch.randn(2, 3, 16))
    rgb = decoded.rgb.detach()
    assert float(rgb.min()) == 0.0 and float(rgb.max()) <= 1.0
    target = torch.zeros(2, 3, 32, 32)
    target[:, :, 10:14, 10:14] = 1.0  # a white object on black
    loss = -decoder.log_likelihood(decoded, target).sum()
    (grad,) = torch.autograd.grad(loss, decoder.net[-1].bias)
    assert bool(grad[:-1].lt(0).all())  # every colour channel is pulled up, towards the object

    sigmoid = VIM(preset("tiny-pixels", num_slots=3, decoder_rgb="sigmoid")).decoder
    sigmoid.load_state_dict(decoder.state_dict())
    loss = -sigmoid.log_likelihood(sigmoid(torch.randn(2, 3, 16)), target).sum()
    (saturated,) = torch.autograd.grad(loss, sigmoid.net[-1].bias)
    assert float(saturated[:-1].abs().max()) < 1e-3 * float(grad[:-1].abs().min())


def test_a_bad_readout_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"decoder_rgb='clip' \(expected one of \('sigmoid', 'linear', 'bounded'\)\)"):
        VIMConfig(input_mode="pixels", decoder_rgb="clip")
    with pytest.raises(ValueError, match=r"rgb='clip' \(expected one of"):
        SpatialBroadcastDecoder(4, 8, 3, 8, sigma=0.1, rgb="clip")
