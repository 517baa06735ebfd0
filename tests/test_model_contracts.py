"""Shape and dtype contracts of VIM over arbitrary batch sizes, slots, modules and actions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vim_world.batch import Batch
from vim_world.model.config import tiny_pixels, tiny_state
from vim_world.model.vim import VIM

sizes = st.fixed_dictionaries({
    "b": st.integers(1, 3),
    "t": st.integers(2, 4),
    "k": st.integers(1, 4),
    "m": st.integers(1, 4),
    "a": st.sampled_from([0, 2]),
    "nary": st.booleans(),
})  # fmt: skip


def _model_and_batch(mode: str, s: dict) -> tuple[VIM, Batch]:
    torch.manual_seed(0)
    common = dict(
        num_slots=s["k"],
        num_modules=s["m"],
        action_dim=s["a"],
        nary=s["nary"],
        hidden=16,
        latent_dim=6,
        reward_head=s["a"] > 0,
    )
    if mode == "pixels":
        config = tiny_pixels(slot_iters=2, **common)
        obs = torch.rand(s["b"], s["t"], 3, 32, 32)
    else:
        config = tiny_state(**common)
        obs = torch.randn(s["b"], s["t"], s["k"], config.state_dim)
    actions = torch.randn(s["b"], s["t"], s["a"]) if s["a"] else None
    rewards = torch.randn(s["b"], s["t"]) if s["a"] else None
    return VIM(config), Batch(obs=obs, actions=actions, rewards=rewards)


def _check_contracts(mode: str, s: dict) -> None:
    model, batch = _model_and_batch(mode, s)
    b, t, k, m, d = s["b"], s["t"], s["k"], s["m"], 6

    loss, stats = model.loss(batch, step=3)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(isinstance(v, float) for v in stats.values())
    assert ("reward_mse" in stats) == (s["a"] > 0)

    with torch.no_grad():
        post = model.observe(batch)
    assert post.z_mean.shape == post.z_log_std.shape == (b, t, k, d)
    assert post.probs.shape == (b, t, k, m)
    assert torch.allclose(post.probs.sum(-1), torch.ones(b, t, k))
    assert post.selections.shape == (b, t, k) and post.selections.dtype == torch.int64
    assert torch.all(post.selections[:, 0] == -1)
    assert torch.all((post.selections[:, 1:] >= 0) & (post.selections[:, 1:] < m))
    assert post.last_z.shape == (b, k, d) and post.last_c.shape == (b, k)
    if mode == "pixels":
        assert post.masks.shape == (b, t, k, 32, 32) and post.slots.shape == (b, k, 16)
    else:
        assert post.masks is None and post.slots is None

    action = batch.actions[:, 0] if s["a"] else None
    z, c, probs = model.prior_step(post.last_z, post.last_c, action, generator=torch.Generator().manual_seed(0))
    assert z.shape == (b, k, d) and c.shape == (b, k) and c.dtype == torch.int64
    assert probs.shape == (b, k, m) and torch.allclose(probs.sum(-1), torch.ones(b, k))

    decoded = model.decode(z)
    if mode == "pixels":
        assert decoded.obs.shape == (b, 3, 32, 32)
        assert decoded.rgb.shape == (b, k, 3, 32, 32) and decoded.masks.shape == (b, k, 32, 32)
    else:
        assert decoded.obs.shape == (b, k, model.config.state_dim)
    if s["a"]:
        assert model.reward(z, action).shape == (b,)

    pred = model.predict(batch, context=1, horizon=t - 1, n_samples=2, generator=torch.Generator().manual_seed(0))
    assert pred.obs.shape == (b, 2, t - 1, *batch.obs.shape[2:])
    assert pred.z.shape == (b, 2, t - 1, k, d)
    assert pred.selections.shape == (b, 2, t - 1, k) and pred.probs.shape == (b, 2, t - 1, k, m)
    assert (pred.rewards is None) == (s["a"] == 0)


@settings(max_examples=10, deadline=None)
@given(sizes)
def test_state_mode_contracts(s):
    _check_contracts("state", s)


@settings(max_examples=10, deadline=None)
@given(sizes)
def test_pixel_mode_contracts(s):
    _check_contracts("pixels", s)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_prior_rollouts_are_reproducible(b, k, m):
    torch.manual_seed(0)
    model = VIM(tiny_state(num_slots=k, num_modules=m, hidden=16))
    batch = Batch(obs=torch.randn(b, 3, k, 4))
    first = model.predict(batch, 2, 3, 4, generator=torch.Generator().manual_seed(5))
    second = model.predict(batch, 2, 3, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first.obs, second.obs) and torch.equal(first.selections, second.selections)


@pytest.mark.parametrize("name", ["tiny-state", "tiny-pixels", "default-state"])
def test_baseline_vrnn_has_about_vims_parameter_count(name):
    from vim_world.model import build_model, count_parameters, preset

    config = preset(name, state_dim=13, num_slots=5)
    vim, vrnn = count_parameters(build_model("vim", config)), count_parameters(build_model("vrnn", config))
    assert abs(vrnn - vim) <= 0.1 * vim, (vim, vrnn)


def test_slice_batch_takes_the_same_rows_of_every_field():
    from vim_world.batch import Batch

    b = Batch(obs=torch.randn(4, 3, 2, 5), mechanism=torch.randint(0, 3, (4, 3, 2)))
    one = b.slice_batch(1, 3)
    assert one.actions is None and one.batch_size == 2
    assert torch.equal(one.obs, b.obs[1:3]) and torch.equal(one.mechanism, b.mechanism[1:3])
