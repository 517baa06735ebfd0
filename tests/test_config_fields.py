"""Fields added to ``VIMConfig`` after checkpoints were saved, and options that only pixel models take."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vim_world.model.config import VIMConfig, preset, tiny_pixels, tiny_state
from vim_world.model.vim import VIM

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)
ADDED_FIELDS = {
    "slot_motion": lambda: tiny_pixels(**SIZES),
    "slot_colour": lambda: tiny_pixels(**SIZES),
    "nary_scores": lambda: tiny_state(nary=True),
    "transition_order": lambda: preset("tiny-state"),
}
"""Each added field, with a config that uses its default."""
DEFAULTS = {f.name: f.default for f in dataclasses.fields(VIMConfig)}


@pytest.mark.parametrize("field", sorted(ADDED_FIELDS))
def test_a_checkpoint_saved_before_a_field_existed_loads_as_its_default(field):
    config = ADDED_FIELDS[field]()
    assert getattr(config, field) == DEFAULTS[field]
    saved = {k: v for k, v in config.to_dict().items() if k != field}  # written before the field existed
    assert field in config.to_dict() and VIMConfig.from_dict(saved) == config
    torch.manual_seed(0)
    VIM(VIMConfig.from_dict(saved)).load_state_dict(VIM(config).state_dict(), strict=True)


@pytest.mark.parametrize("field", ["slot_cues", "slot_predictor", "slot_motion", "slot_colour"])
def test_pixel_only_options_are_refused_in_state_mode_by_name(field):
    with pytest.raises(ValueError, match=rf"{field}=True with input_mode='state' \(expected 'pixels'\)"):
        VIMConfig(input_mode="state", state_dim=4, **{field: True})
