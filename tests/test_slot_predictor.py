"""SAVi's predictor on carried slots (``VIMConfig.slot_predictor``): where it acts and that it
trains (a sequence continued from its last slots: ``test_slot_motion.py``)."""

from __future__ import annotations

import torch

from vim_world.batch import Batch
from vim_world.model import VIM
from vim_world.model.config import tiny_pixels

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)


def _pair() -> tuple[VIM, VIM]:
    """The same weights without and with the predictor."""
    torch.manual_seed(0)
    plain, predicted = VIM(tiny_pixels(**SIZES)), VIM(tiny_pixels(**SIZES, slot_predictor=True))
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
