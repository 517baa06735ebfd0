"""SAVi's predictor on carried slots (``VIMConfig.slot_predictor``): where it acts, that it trains,
and that a sequence continued from its last slots reads as the whole sequence does."""

from __future__ import annotations

import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM
from vim_world.model.config import VIMConfig, tiny_pixels

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)


def _pair(**options: int) -> tuple[VIM, VIM]:
    """The same weights without and with the predictor."""
    torch.manual_seed(0)
    plain, predicted = VIM(tiny_pixels(**SIZES, **options)), VIM(tiny_pixels(**SIZES, **options, slot_predictor=True))
    missing, unexpected = predicted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(name.startswith("encoder.predictor.") for name in missing)
    return plain, predicted


def test_the_predictor_acts_on_carried_slots_only():
    plain, predicted = _pair()
    assert plain.encoder.predictor is None
    frames = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        a, b = plain.encoder(frames)[0], predicted.encoder(frames)[0]
    assert torch.equal(a[:, 0], b[:, 0])  # the first frame's slots start from the initial slots
    assert not torch.allclose(a[:, 1:], b[:, 1:], atol=1e-3)


def test_the_elbo_trains_the_predictor():
    _, model = _pair()
    model.loss(Batch(obs=torch.rand(2, 3, 3, 32, 32)), 0)[0].backward()
    grads = [p.grad for p in model.encoder.predictor.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("carried_slot_iters", [0, 1])
def test_a_continued_sequence_reads_as_the_whole_one(carried_slot_iters):
    _, model = _pair(carried_slot_iters=carried_slot_iters)
    frames = torch.rand(2, 5, 3, 32, 32)
    with torch.no_grad():
        whole = model.encoder(frames)[0]
        head, _, last = model.encoder(frames[:, :2])
        tail = model.encoder(frames[:, 2:], slots=last)[0]
    tol = 100 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(torch.cat([head, tail], dim=1), whole, atol=tol, rtol=tol)


def test_the_predictor_is_refused_outside_pixel_mode():
    with pytest.raises(ValueError, match=r"slot_predictor=True with input_mode='state' \(expected 'pixels'\)"):
        VIMConfig(input_mode="state", state_dim=4, slot_predictor=True)
