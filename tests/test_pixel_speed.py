"""Contracts of what makes pixel training fast: the step-subsampled reconstruction term (an
unbiased estimate of the ELBO), its determinism under a seed, and the light decoder's shapes."""

from __future__ import annotations

import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM
from vim_world.model.config import default_pixels, tiny_pixels
from vim_world.model.elbo import reweighted_log_likelihood, subsample_steps


def test_subsampled_steps_are_distinct_sorted_in_range_and_seeded():
    steps = subsample_steps(64, 10, 3, generator=torch.Generator().manual_seed(1))
    assert steps.shape == (64, 3) and steps.dtype == torch.long
    assert bool((steps >= 0).all()) and bool((steps < 10).all())
    assert bool((steps[:, 1:] > steps[:, :-1]).all())  # sorted, hence distinct
    again = subsample_steps(64, 10, 3, generator=torch.Generator().manual_seed(1))
    other = subsample_steps(64, 10, 3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(steps, again) and not torch.equal(steps, other)
    counts = torch.bincount(
        subsample_steps(20_000, 10, 3, generator=torch.Generator().manual_seed(3)).flatten(), minlength=10
    ).double()
    expected = 20_000 * 3 / 10  # every step drawn with probability s / T
    assert bool(((counts - expected).abs() < 5 * expected**0.5).all())


def test_subsampling_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num=0"):
        subsample_steps(2, 5, 0)
    with pytest.raises(ValueError, match="num=6.*seq_len=5"):
        subsample_steps(2, 5, 6)
    with pytest.raises(ValueError, match="same"):
        reweighted_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.long), 5)


def test_reweighted_terms_sum_to_the_drawn_steps_times_t_over_s():
    values = torch.arange(12.0).reshape(2, 6)
    steps = torch.tensor([[0, 4], [1, 5]])
    full = reweighted_log_likelihood(values.gather(1, steps), steps, 6)
    assert full.shape == (2, 6)
    assert torch.equal(full.sum(1), torch.tensor([(0.0 + 4.0) * 3, (7.0 + 11.0) * 3]))


def _loss(model: VIM, batch: Batch, seed: int) -> float:
    torch.manual_seed(seed)
    loss, _ = model.loss(batch, step=10_000)
    return float(loss)


def test_subsampled_elbo_is_an_unbiased_estimate_of_the_full_elbo():
    """Same weights, same batch, same latent noise: the subsampled loss minus the full loss has
    mean zero over the step draws, within 4 standard errors, and is not identically zero."""
    torch.manual_seed(0)
    full_model = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=1, decode_steps=0)).eval()
    sub_model = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=1, decode_steps=2)).eval()
    sub_model.load_state_dict(full_model.state_dict())
    batch = Batch(obs=torch.rand(4, 6, 3, 32, 32))
    with torch.no_grad():
        diffs = torch.tensor(
            [_loss(sub_model, batch, i) - _loss(full_model, batch, i) for i in range(300)], dtype=torch.float64
        )
    stderr = diffs.std() / len(diffs) ** 0.5
    assert diffs.std() > 0
    assert abs(float(diffs.mean())) < 4 * float(stderr), (float(diffs.mean()), float(stderr))


def test_subsampled_loss_is_deterministic_under_a_seed_and_trains():
    torch.manual_seed(0)
    model = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=1, decode_steps=2, kl_warmup_steps=0))
    batch = Batch(obs=torch.rand(2, 5, 3, 32, 32))
    with torch.no_grad():
        assert _loss(model, batch, 7) == _loss(model, batch, 7)
        assert _loss(model, batch, 7) != _loss(model, batch, 8)
    torch.manual_seed(0)
    loss, _ = model.loss(batch, 0)
    loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


@pytest.mark.parametrize("make, size", [(tiny_pixels, 32), (default_pixels, 64)])
def test_light_decoder_renders_full_frames_with_masks_summing_to_one(make, size):
    torch.manual_seed(0)
    cfg = make(hidden=16, latent_dim=8, num_slots=3, decoder_hidden=8)
    decoded = VIM(cfg).decode(torch.randn(2, 3, 8))
    assert decoded.obs.shape == (2, 3, size, size)
    assert decoded.rgb.shape == (2, 3, 3, size, size) and decoded.masks.shape == (2, 3, size, size)
    assert torch.allclose(decoded.masks.sum(1), torch.ones(2, size, size), atol=1e-5)
    assert torch.allclose((decoded.rgb * decoded.masks[:, :, None]).sum(1), decoded.obs, atol=1e-6)


def test_decoder_hidden_sets_the_decoder_width():
    narrow = VIM(tiny_pixels(hidden=32, decoder_hidden=8)).decoder
    wide = VIM(tiny_pixels(hidden=32)).decoder
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in wide.parameters())
    with pytest.raises(ValueError, match="decoder_hidden=-1"):
        tiny_pixels(decoder_hidden=-1)
    with pytest.raises(ValueError, match="decode_steps=-2"):
        tiny_pixels(decode_steps=-2)


def test_decoder_layers_add_convolutions_on_the_broadcast_grid_only():
    one, three = VIM(tiny_pixels(num_slots=3)).decoder, VIM(tiny_pixels(num_slots=3, decoder_layers=3)).decoder
    convs = [m for m in three.net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and len([m for m in one.net if isinstance(m, torch.nn.Conv2d)]) == 1
    assert [n for n, _ in one.named_parameters()] == [
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
        "net.4.weight",
        "net.4.bias",
    ]  # the layout of earlier checkpoints
    out = three(torch.randn(2, 3, three.net[0].in_channels - 4))
    assert out.obs.shape == (2, 3, 32, 32) and torch.allclose(out.masks.sum(1), torch.ones(2, 32, 32))
    with pytest.raises(ValueError, match=r"decoder_layers=0 \(expected >= 1\)"):
        tiny_pixels(decoder_layers=0)


def test_frames_of_another_size_are_refused_naming_both():
    model = VIM(tiny_pixels(hidden=8, latent_dim=4, num_slots=2, slot_iters=1))
    with pytest.raises(ValueError, match=r"3, 32, 32\).*\(1, 2, 3, 64, 64\)"):
        model.loss(Batch(obs=torch.rand(1, 2, 3, 64, 64)), 0)


def test_carried_slot_iterations_change_only_the_frames_after_the_first():
    torch.manual_seed(0)
    full = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=3))
    short = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=3, carried_slot_iters=1))
    short.load_state_dict(full.state_dict())
    frames = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        a, b = full.encoder(frames)[0], short.encoder(frames)[0]
    assert torch.equal(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1:], b[:, 1:])


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_encoder_stride_sets_how_many_tokens_slot_attention_reads(stride):
    model = VIM(tiny_pixels(num_slots=3, encoder_stride=stride))
    assert model.encoder.grid.shape == ((32 // stride) ** 2, 4)
    mean, log_std, _ = model.encoder(torch.rand(2, 3, 3, 32, 32))
    assert mean.shape == log_std.shape == (2, 3, 3, model.config.latent_dim)
    with pytest.raises(ValueError, match=r"encoder_stride=3 \(expected 1, 2 or 4\)"):
        tiny_pixels(encoder_stride=3)


@pytest.mark.parametrize("broadcast", [1, 2, 4])
def test_decoder_broadcast_sets_the_grid_each_slot_is_drawn_from(broadcast):
    model = VIM(tiny_pixels(num_slots=3, decoder_broadcast=broadcast))
    assert model.decoder.grid.shape == (4, 32 // broadcast, 32 // broadcast)
    upsamplings = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.decoder.net)
    assert 2**upsamplings == broadcast
    decoded = model.decoder(torch.randn(2, 3, model.config.latent_dim))
    assert decoded.obs.shape == (2, 3, 32, 32) and decoded.masks.shape == (2, 3, 32, 32)
    torch.testing.assert_close(decoded.masks.sum(1), torch.ones(2, 32, 32))
    with pytest.raises(ValueError, match=r"decoder_broadcast=3 \(expected one of \(1, 2, 4\)\)"):
        tiny_pixels(decoder_broadcast=3)


def test_the_default_broadcast_keeps_the_decoders_layers_and_names():
    """Checkpoints saved before ``decoder_broadcast`` existed (broadcast 4) still load."""
    net = VIM(tiny_pixels(num_slots=3)).decoder.net
    assert [type(m).__name__ for m in net] == ["Conv2d", "ReLU", "ConvTranspose2d", "ReLU", "ConvTranspose2d"]
    names = sorted(name for name, _ in net.named_parameters())
    assert names == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
