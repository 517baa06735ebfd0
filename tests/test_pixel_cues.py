"""SAVi-style conditioning of the first frame's slots on the objects' positions (``slot_cues``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM, preset


def _model() -> VIM:
    torch.manual_seed(0)
    return VIM(preset("tiny-pixels", num_slots=4, slot_cues=True))


def _batch(b: int = 2, t: int = 3, objects: int = 3) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(obs=torch.rand(b, t, 3, 32, 32, generator=g), states=torch.rand(b, t, objects, 13, generator=g))


def test_inference_without_the_first_frames_states_is_refused_with_the_shapes_named():
    model, batch = _model(), _batch()
    with pytest.raises(ValueError, match="slot_cues needs the objects' states"):
        model.observe(batch.obs)
    short = Batch(obs=batch.obs, states=batch.states[:, :, :2])
    with pytest.raises(ValueError, match=r"must be \(2, 3, 2\), got \(2, 2, 2\)"):
        model.observe(short)


def test_object_slots_follow_their_cues():
    """Slot attention is equivariant in its slots, so permuting the objects' cues permutes the
    object slots (slot 0, the background, stays): slot k + 1 is object k's from the first frame."""
    model, batch = _model(), _batch()
    order = torch.tensor([2, 0, 1])
    permuted = Batch(obs=batch.obs, states=batch.states[:, :, order])
    with torch.no_grad():
        z = model.observe(batch).z_mean
        z_perm = model.observe(permuted).z_mean
    torch.testing.assert_close(z_perm[:, :, 0], z[:, :, 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z_perm[:, :, 1:], z[:, :, 1:][:, :, order], atol=1e-5, rtol=1e-4)
    moved = batch.states.clone()
    moved[:, 0, 1, :2] += 0.3
    with torch.no_grad():
        z_moved = model.observe(Batch(obs=batch.obs, states=moved)).z_mean
    assert not torch.allclose(z_moved[:, 0, 2], z[:, 0, 2])  # object 1's cue moved its slot


def test_the_cue_network_is_trained_by_the_elbo():
    model, batch = _model(), _batch()
    loss, _ = model.loss(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.encoder.cue[0].weight.grad.abs().sum() > 0


def test_imagination_reads_the_context_states_of_a_cued_model():
    """Imagined futures from frames start from the same slots as ``observe`` when the context's
    states are passed; without them the cued model refuses, naming what it needs."""
    from vim_world.imagination import Imagination

    model, batch = _model().eval(), _batch()
    im = Imagination(model)
    with pytest.raises(ValueError, match="slot_cues needs the objects' states"):
        im.encode(batch.obs)
    with torch.no_grad():
        state = im.encode(batch.obs, states=batch.states)
        torch.testing.assert_close(state.z, model.observe(batch).last_z)
        futures = im.rollout(batch.obs, horizon=2, n_samples=3, context_states=batch.states, seed=0)
    assert futures.obs.shape == (2, 3, 2, 3, 32, 32)


def test_a_cued_model_takes_more_objects_with_the_same_weights():
    """No weight of a cued encoder depends on the slot count: ``for_num_objects(5)`` gives 6
    slots (five objects and the background) and imagines from five objects' cues."""
    from vim_world.imagination import Imagination

    model, batch = _model().eval(), _batch()
    im = Imagination(model)
    more = im.for_num_objects(5)
    assert more.config.num_slots == 6 and im.config.num_slots == 4  # the original is unchanged
    assert torch.equal(more.model.encoder.cue[0].weight, model.encoder.cue[0].weight)
    five = Batch(obs=batch.obs, states=torch.cat([batch.states, batch.states[:, :, :2] + 0.5], dim=2))
    with torch.no_grad():
        futures = more.rollout(five.obs, horizon=2, n_samples=2, context_states=five.states, seed=0)
    assert futures.z.shape[-2] == 6


def test_a_model_with_one_learnt_start_per_slot_refuses_another_slot_count_naming_why():
    from vim_world.imagination import Imagination

    torch.manual_seed(0)
    learned = Imagination(VIM(preset("tiny-pixels", num_slots=4)))
    with pytest.raises(ValueError, match=r"slot_init='learned' and no slot_cues .* its 4 slots are fixed.* take 6"):
        learned.for_num_objects(5)
    with pytest.raises(ValueError, match="num_objects must be a positive int, got 0"):
        learned.for_num_objects(0)
    gaussian = Imagination(VIM(preset("tiny-pixels", num_slots=4, slot_init="gaussian")))
    assert gaussian.for_num_objects(5).config.num_slots == 6
    assert gaussian.for_num_objects(np.int64(2)).config.num_slots == 3  # a count read off an array
