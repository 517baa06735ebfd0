"""Contracts of vim_world.imagination: shapes, seeds, interventions, counterfactuals, gradients."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from vim_world.imagination import HOLD, Imagination, Intervention, LatentState, action_vectors, intervention_plan
from vim_world.model import VIM, preset

B, TC, K, S, A, M, D = 2, 3, 4, 13, 5, 4, 8
ULPS = 64  # a few roundings per step, over a horizon of a few steps


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """Test inputs from a local generator: no test depends on the global RNG or on test order."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_close_across_batches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equality up to float rounding, for values computed in batches of another composition
    (rows grouped or placed differently give other BLAS blockings: measured 1.2e-7 apart on an
    AMD EPYC where an Intel CPU gave 0). Scaled from the dtype's epsilon."""
    eps = torch.finfo(expected.dtype).eps
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=ULPS * eps, atol=ULPS * eps * max(scale, 1.0))


def make(**overrides) -> Imagination:
    torch.manual_seed(0)
    cfg = preset(
        "tiny-state",
        hidden=16,
        num_slots=K,
        state_dim=S,
        latent_dim=D,
        num_modules=M,
        action_dim=A,
        reward_head=True,
        **overrides,
    )
    return Imagination(VIM(cfg).eval())


@pytest.fixture(scope="module")
def im() -> Imagination:
    return make()


@pytest.fixture(scope="module")
def context() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, TC, K, S, generator=g), torch.randn(B, TC - 1, A, generator=g)


def test_rollout_shapes_with_candidates(im, context):
    obs, ctx_actions = context
    actions = randn(B, 7, 6, A)
    r = im.rollout(obs, actions, n_samples=3, context_actions=ctx_actions, seed=0)
    lead = (B, 7, 3, 6)
    assert r.z.shape == (*lead, K, D)
    assert r.selections.shape == (*lead, K) and r.selections.dtype == torch.long
    assert r.probs.shape == (*lead, K, M)
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(lead + (K,)))
    assert r.rewards.shape == lead
    assert r.obs.shape == (*lead, K, S) and r.masks is None
    assert r.last_state.z.shape == (B * 7 * 3, K, D)


def test_rollout_shapes_one_sequence_per_context(im, context):
    r = im.rollout(context[0], randn(B, 5, A), n_samples=4, context_actions=context[1])
    assert r.z.shape == (B, 4, 5, K, D) and r.rewards.shape == (B, 4, 5)


def test_passive_model_needs_a_horizon():
    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-state", hidden=16, num_slots=K, state_dim=S)).eval())
    r = im.rollout(randn(B, 1, K, S), horizon=4, n_samples=2, decode=False)
    assert r.z.shape == (B, 2, 4, K, 8) and r.rewards is None and r.obs is None
    with pytest.raises(ValueError, match="horizon"):
        im.rollout(randn(B, 1, K, S))


def test_pixel_model_rollout_returns_frames_and_masks():
    torch.manual_seed(0)
    cfg = preset("tiny-pixels", hidden=8, latent_dim=8, num_slots=3, slot_iters=1)
    im = Imagination(VIM(cfg).eval())
    r = im.rollout(torch.rand(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), horizon=2, n_samples=2)
    assert r.obs.shape == (1, 2, 2, 3, 32, 32) and r.masks.shape == (1, 2, 2, 3, 32, 32)


def test_equal_seeds_give_identical_rollouts_and_other_seeds_differ(im, context):
    actions = randn(B, 6, A)
    runs = [im.rollout(context[0], actions, n_samples=5, context_actions=context[1], seed=s) for s in (3, 3, 4)]
    for name in ("z", "selections", "probs", "rewards", "obs"):
        torch.testing.assert_close(getattr(runs[0], name), getattr(runs[1], name), rtol=0, atol=0)
    assert not torch.equal(runs[0].z, runs[2].z)


def test_samples_are_batched_not_copies(im, context):
    r = im.rollout(context[0], randn(B, 6, A), n_samples=5, context_actions=context[1], seed=0)
    assert not torch.equal(r.z[:, 0], r.z[:, 1])


def test_intervention_forces_the_module_and_changes_only_that_object(im, context):
    state = im.encode(*context)
    actions = randn(B, 8, A)
    base = im.rollout(state, actions, n_samples=6, seed=7)
    forced = im.rollout(
        state, actions, n_samples=6, seed=7, interventions=[Intervention(obj=2, module=1, start=3, stop=6)]
    )
    assert (forced.selections[..., 3:6, 2] == 1).all()
    assert (base.selections[..., 3:6, 2] != 1).any()  # the intervention does change something
    # Before the intervention: the identical computation, bitwise. After it, the other objects'
    # rows are grouped with object 2's differently, so they agree up to rounding.
    torch.testing.assert_close(forced.z[..., :3, :, :], base.z[..., :3, :, :], rtol=0, atol=0)
    others = [k for k in range(K) if k != 2]
    assert_close_across_batches(forced.z[..., others, :], base.z[..., others, :])
    assert torch.equal(forced.selections[..., others], base.selections[..., others])
    assert not torch.allclose(forced.z[..., 3:, 2, :], base.z[..., 3:, 2, :])


def test_hold_keeps_the_current_module(im, context):
    state = LatentState(im.encode(*context).z, torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]]))
    r = im.rollout(state, randn(B, 6, A), n_samples=4, seed=0, interventions=[Intervention(1, HOLD)])
    expected = state.c[:, None, None, 1].expand(B, 4, 6)
    assert torch.equal(r.selections[..., 1], expected)


def test_counterfactual_is_one_call_with_shared_randomness(im, context):
    cf = im.counterfactual(
        context[0],
        obj=0,
        module=3,
        horizon=5,
        actions=randn(B, 5, A),
        n_samples=3,
        start=2,
        context_actions=context[1],
        seed=1,
    )
    assert (cf.intervened.selections[..., 2:, 0] == 3).all()
    assert (cf.factual.selections[..., 2:, 0] != 3).any()  # the two worlds do differ
    # Factual and intervened rows are batched side by side: equal up to rounding, not bitwise.
    assert_close_across_batches(cf.factual.z[..., 1:, :], cf.intervened.z[..., 1:, :])
    assert torch.equal(cf.factual.selections[..., 1:], cf.intervened.selections[..., 1:])


def test_nary_interventions_run(context):
    im = make(nary=True)
    r = im.rollout(context[0], randn(B, 4, A), context_actions=context[1], interventions=[Intervention(0, 2)], seed=0)
    assert (r.selections[..., 0] == 2).all()


def test_gradients_flow_to_actions_and_context_without_sampling_noise(im, context):
    obs = context[0].clone().requires_grad_(True)
    actions = randn(B, 5, A).requires_grad_(True)
    r = im.rollout(obs, actions, n_samples=2, context_actions=context[1], sample_z=False, seed=0)
    (r.rewards.sum() + r.obs.sum()).backward()
    for grad in (obs.grad, actions.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@st.composite
def valid_calls(draw: st.DrawFn) -> dict:
    """Arguments of a valid ``rollout``: any batch, context length, horizon, sample count and a
    few interventions inside the horizon (``module`` a module id or ``HOLD``)."""
    b, tc, h = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    starts = st.integers(0, h - 1)
    interventions = draw(st.lists(starts.flatmap(lambda t0: st.builds(
        Intervention, st.integers(0, K - 1), st.sampled_from([*range(M), HOLD]), st.just(t0),
        st.one_of(st.none(), st.integers(t0 + 1, h)))), max_size=3))  # fmt: skip
    return {"context": torch.randn(b, tc, K, S, generator=g), "actions": torch.randn(b, h, A, generator=g),
            "context_actions": torch.randn(b, tc - 1, A, generator=g) if tc > 1 else None,
            "n_samples": draw(st.integers(1, 3)), "interventions": interventions, "seed": draw(st.integers(0, 9))}  # fmt: skip


@settings(max_examples=30)
@given(call=valid_calls())
def test_valid_rollouts_never_raise(im, call):
    """The reverse of the fuzz tests: every valid call runs and keeps its contracts."""
    r = im.rollout(**call)
    b, h = call["actions"].shape[:2]
    lead = (b, call["n_samples"], h)
    assert r.z.shape == (*lead, K, D) and torch.isfinite(r.z).all() and r.rewards.shape == lead
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(*lead, K))
    for iv in call["interventions"][-1:]:  # the last one wins where they overlap
        if iv.module != HOLD:
            assert (r.selections[:, :, iv.start : iv.stop, iv.obj] == iv.module).all()


def test_invalid_arguments_are_named(im, context):
    state = im.encode(*context)
    with pytest.raises(ValueError, match="actions must be"):
        im.rollout(state, randn(B + 1, 4, A))
    with pytest.raises(ValueError, match="takes actions"):
        im.rollout(state, horizon=3)
    with pytest.raises(ValueError, match="horizon=3"):
        im.rollout(state, randn(B, 4, A), horizon=3)
    with pytest.raises(ValueError, match="needs the 2 actions"):
        im.encode(context[0])
    with pytest.raises(ValueError, match="module 9"):
        intervention_plan([Intervention(0, 9)], 4, K, M)
    with pytest.raises(ValueError, match="outside the horizon"):
        intervention_plan([Intervention(0, 1, start=2, stop=9)], 4, K, M)
    with pytest.raises(TypeError, match="needs a VIM"):
        Imagination(torch.nn.Linear(1, 1))


def test_intervention_plan_later_entries_win():
    plan = intervention_plan([Intervention(1, 2), Intervention(1, HOLD, start=1, stop=2)], 3, 2, 4)
    assert plan.tolist() == [[-1, 2], [-1, HOLD], [-1, 2]]


def test_action_vectors_match_the_data_format():
    assert action_vectors(torch.tensor([[0, 4]]), spaces.Discrete(5)).tolist() == [[[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]]
    multi = action_vectors(torch.tensor([[2, 1]]), spaces.MultiDiscrete([3, 2]))
    assert multi.tolist() == [[0, 0, 1, 0, 1]]
    box = action_vectors(torch.ones(2, 3, 2, 2), spaces.Box(-1, 1, (2, 2)))
    assert box.shape == (2, 3, 4) and box.dtype == torch.float32


def test_for_num_objects_shares_weights(im, context):
    first = context[0][:, :1]  # (B, 1, K, S)
    six = torch.cat([first, first[:, :, :2]], dim=2)  # the same K objects and two more
    bigger = im.for_num_objects(6)
    assert bigger.encode(six).z.shape == (B, 6, D)
    torch.testing.assert_close(bigger.encode(six).z[:, :K], im.encode(first).z)


def test_from_checkpoint_round_trip(tmp_path, im, context):
    from vim_world.checkpoint import save_checkpoint

    save_checkpoint(tmp_path, 1, im.model, "vim", im.config.to_dict(), {"optimizer": {}, "rng": {}})
    loaded = Imagination.from_checkpoint(tmp_path, device="cpu")
    a = randn(B, 3, A)
    torch.testing.assert_close(
        loaded.rollout(context[0], a, context_actions=context[1], seed=0).z,
        im.rollout(context[0], a, context_actions=context[1], seed=0).z,
    )


@pytest.mark.parametrize("nary", [False, True])
def test_step_matches_the_model_prior_step(nary, context):
    im = make(nary=nary)
    state = LatentState(im.encode(*context).z, torch.tensor([[0, -1, 2, 3], [1, 1, -1, 0]]))
    action = randn(B, A)
    forced = torch.tensor([[-1, 2, -1, -1], [-1, -1, -1, 0]])
    for sample_z in (False, True):
        mine, probs = im.step(state, action, forced, torch.Generator().manual_seed(3), sample_z)
        z, c, p = im.model.prior_step(state.z, state.c, action, forced, torch.Generator().manual_seed(3), sample_z)
        assert torch.equal(mine.c, c)
        torch.testing.assert_close(mine.z, z)
        torch.testing.assert_close(probs, p)


@pytest.mark.parametrize("static", [(), (0, 2)])
def test_selected_modules_equal_the_bank_gathered(context, static):
    im = make(nary=True, static_features=static)
    z = randn(6, K, D + len(static))
    action = randn(6, A, seed=1)
    selection = torch.randint(0, M, (6, K), generator=torch.Generator().manual_seed(2))
    means, log_std = im.model.transitions(z, action)
    mine, mine_log_std = im.model.transitions.selected(z, action, selection)
    torch.testing.assert_close(
        mine, means.gather(2, selection[..., None, None].expand(-1, -1, 1, D + len(static))).squeeze(2)
    )
    torch.testing.assert_close(mine_log_std, log_std[selection])
    torch.testing.assert_close(mine[..., D:], z[..., D:])  # static attributes pass through unchanged


def test_a_pixel_rollout_decoded_in_chunks_draws_the_frames_of_one_call(monkeypatch):
    """``Imagination.decode`` splits many scenes into chunks of a bounded activation size; per
    scene, so the frames and masks are those of one decoder call (to float rounding)."""
    import vim_world.imagination as imagination

    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-pixels", hidden=16)))
    z = torch.randn(2, 3, 4, im.config.num_slots, im.config.latent_dim)  # (B, N, H, K, D)
    whole = im.model.decode(z.reshape(-1, *z.shape[-2:]))
    per_scene = im.config.num_slots * (im.config.decoder_hidden or im.config.hidden) * im.config.image_size**2
    monkeypatch.setattr(imagination, "DECODE_FLOATS", 5 * per_scene)  # 24 scenes in chunks of 5
    obs, masks = im.decode(z)
    assert obs.shape == (2, 3, 4, 3, 32, 32) and masks.shape == (2, 3, 4, im.config.num_slots, 32, 32)
    assert_close_across_batches(obs.flatten(0, 2), whole.obs)
    assert_close_across_batches(masks.flatten(0, 2), whole.masks)
