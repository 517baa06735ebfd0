"""Scores of slot masks against the env's object masks: FG-ARI and binding stability over a window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vim_world.batch import Batch
from vim_world.evaluate import matched_selections
from vim_world.metrics import binding_unchanged, fg_ari, hard_masks, object_colours, video_fg_ari
from vim_world.model.config import tiny_pixels
from vim_world.model.vim import VIM


def test_fg_ari_is_one_for_a_perfect_segmentation_and_low_for_a_constant_one():
    true = torch.zeros(2, 2, 8, 8, dtype=torch.bool)
    true[:, 0, :4], true[:, 1, 4:] = True, True
    perfect = torch.stack([true[:, 1], true[:, 0], torch.zeros_like(true[:, 0])], 1).float()  # any slot order
    assert np.allclose(fg_ari(perfect, true), 1.0)
    constant = torch.zeros(2, 3, 8, 8)
    constant[:, 2] = 1.0
    assert np.allclose(fg_ari(constant, true), 0.0)
    assert np.isnan(fg_ari(constant, torch.zeros_like(true))).all()  # no foreground: undefined
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(2, 2, 4, 4\)"):
        fg_ari(constant, true[..., :4, :4])


def test_binding_unchanged_detects_a_swap_and_ignores_hidden_objects():
    true = torch.zeros(2, 3, 2, 4, 4, dtype=torch.bool)
    true[:, :, 0, :2], true[:, :, 1, 2:] = True, True
    slots = torch.cat([true.float(), torch.zeros(2, 3, 1, 4, 4)], 2)
    slots[1, 2] = slots[1, 2, [1, 0, 2]]  # window 1 swaps its two objects' slots at the last step
    true[0, 1, 1] = False  # object 1 hidden at one step of window 0: no verdict there
    assert binding_unchanged(slots, true).tolist() == [True, False]


def test_binding_reads_each_pixels_most_likely_slot():
    """Slot 0 owns the object (pixel 0) at both steps; its share of the background drops from 0.9
    to 0.1. IoU of the soft masks would move the object from slot 1 to slot 0."""
    slots = torch.zeros(1, 2, 2, 1, 8)
    slots[0, 0, 0, 0] = torch.tensor([0.6] + [0.9] * 7)
    slots[0, 1, 0, 0] = torch.tensor([0.6] + [0.1] * 7)
    slots[0, :, 1] = 1.0 - slots[0, :, 0]
    true = torch.zeros(1, 2, 1, 1, 8, dtype=torch.bool)
    true[..., 0] = True
    assert binding_unchanged(slots, true).tolist() == [True]


def test_video_fg_ari_counts_a_slot_that_changes_object_where_the_frames_do_not():
    true = torch.zeros(2, 3, 2, 4, 4, dtype=torch.bool)
    true[:, :, 0, :2], true[:, :, 1, 2:] = True, True
    slots = torch.cat([true.float(), torch.zeros(2, 3, 1, 4, 4)], 2)
    slots[1, 2] = slots[1, 2, [1, 0, 2]]  # window 1 swaps its two objects' slots at the last step
    per_frame = fg_ari(slots.flatten(0, 1), true.flatten(0, 1)).reshape(2, 3)
    assert np.allclose(per_frame, 1.0)  # every frame on its own is segmented perfectly
    video = video_fg_ari(slots, true)
    assert video[0] == pytest.approx(1.0) and video[1] < 0.5
    assert np.isnan(video_fg_ari(slots, torch.zeros_like(true))).all()  # no foreground: undefined
    with pytest.raises(ValueError, match=r"\(2, 3, 3, 4, 4\).*\(2, 2, 2, 4, 4\)"):
        video_fg_ari(slots, true[:, :2])


def test_discovery_from_frames_reads_each_object_through_the_slot_matched_to_it():
    """True masks drawn as the model's own hard slot masks in another order: each object must read
    the modules of the slot that draws it, not the slot of its own index."""
    torch.manual_seed(0)
    model = VIM(tiny_pixels(hidden=16)).eval()
    frames = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        post = model.observe(Batch(obs=frames))
    order = [2, 0, 3]  # object k is drawn by slot order[k]
    true_masks = hard_masks(post.masks)[:, :, order].bool()
    assert true_masks.flatten(3).any(-1).all(), "every slot must own pixels in every frame for the check"
    mechanism = torch.randint(0, 4, (2, 3, 3))
    batch = Batch(obs=frames, masks=true_masks, mechanism=mechanism)
    inferred, true = matched_selections(model, batch, post)
    assert np.array_equal(inferred, post.selections[:, 1:, order].numpy())
    assert not np.array_equal(inferred, post.selections[:, 1:, :3].numpy()), "the slots' modules must differ"
    assert np.array_equal(true, mechanism[:, 1:].numpy())
    again, _ = matched_selections(model, batch)  # the posterior computed inside gives the same
    assert np.array_equal(again, inferred)
    with pytest.raises(ValueError, match=r"needs batch.masks \(collect with --masks\)"):
        matched_selections(model, Batch(obs=frames, mechanism=mechanism))
    with pytest.raises(ValueError, match=r"needs batch.mechanism .* got None"):
        matched_selections(model, Batch(obs=frames, masks=true_masks))


def test_object_colours_average_each_objects_pixels_and_skip_tiny_ones():
    frames = torch.zeros(1, 3, 8, 8)
    frames[0, 0, :4, :4] = 1.0  # a red square, 16 pixels
    frames[0, :, 6, 6] = torch.tensor([0.2, 0.4, 0.6])  # one pixel of another colour
    masks = torch.zeros(1, 3, 8, 8, dtype=torch.bool)
    masks[0, 0, :4, :4] = True
    masks[0, 1, 5:7, 5:7] = True  # 4 pixels: the odd one and three black ones
    masks[0, 2, 6, 6] = True  # 1 pixel: under min_pixels
    colours = object_colours(frames, masks, min_pixels=3)
    torch.testing.assert_close(colours[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(colours[0, 1], torch.tensor([0.05, 0.1, 0.15]))
    assert torch.isnan(colours[0, 2]).all()
    at_the_bound = object_colours(frames, masks, min_pixels=4)  # exactly min_pixels: scored
    torch.testing.assert_close(at_the_bound[0, 1], torch.tensor([0.05, 0.1, 0.15]))
    assert torch.isnan(object_colours(frames, masks, min_pixels=5)[0, 1]).all()
    with pytest.raises(ValueError, match=r"must agree on N, H, W; got \(1, 3, 8, 8\) and \(1, 3, 4, 4\)"):
        object_colours(frames, masks[..., :4, :4])


def test_the_posterior_keeps_the_frames_decoded_from_its_means():
    torch.manual_seed(0)
    model = VIM(tiny_pixels(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)).eval()
    with torch.no_grad():
        post = model.observe(Batch(obs=torch.rand(2, 3, 3, 32, 32)))
        step_by_step = torch.stack([model.decode(post.z_mean[:, t]).obs for t in range(3)], dim=1)
    assert post.recon.shape == (2, 3, 3, 32, 32)
    tol = 100 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(post.recon, step_by_step, atol=tol, rtol=tol)
