"""Fields added to ``VIMConfig`` after checkpoints were saved, and options that only pixel models take."""

from __future__ import annotations

import pytest

from vim_world.model.config import VIMConfig, preset, tiny_pixels, tiny_state
from vim_world.model.vim import VIM

SIZES = dict(hidden=16, latent_dim=8, num_slots=3, slot_iters=2)
ADDED_FIELDS = {
    "slot_motion": (lambda: tiny_pixels(**SIZES), False),
    "slot_colour": (lambda: tiny_pixels(**SIZES), False),
    "nary_scores": (lambda: tiny_state(nary=True), "dot"),
    "transition_order": (lambda: preset("tiny-state"), 1),
}
"""Each added field: a config that leaves it at its default, and the behaviour before the field
existed, which that default must keep."""


@pytest.mark.parametrize("field", sorted(ADDED_FIELDS))
def test_a_checkpoint_saved_before_a_field_existed_loads_as_it_behaved_then(field):
    make, before = ADDED_FIELDS[field]
    config = make()
    saved = {k: v for k, v in config.to_dict().items() if k != field}  # written before the field existed
    assert field in config.to_dict()
    loaded = VIMConfig.from_dict(saved)
    assert getattr(loaded, field) == before and loaded == config
    VIM(loaded).load_state_dict(VIM(config).state_dict(), strict=True)


@pytest.mark.parametrize("field", ["slot_cues", "slot_predictor", "slot_motion", "slot_colour"])
def test_pixel_only_options_are_refused_in_state_mode_by_name(field):
    with pytest.raises(ValueError, match=rf"{field}=True with input_mode='state' \(expected 'pixels'\)"):
        VIMConfig(input_mode="state", state_dim=4, **{field: True})
