"""Second-order modules (``VIMConfig.transition_order = 2``): what a module reads, that it can
learn a law of motion from positions alone, and that every path that steps the model (the ELBO,
``VIM.predict``, ``Imagination.step`` and ``rollout``, the imagined env's resets) carries the
latents one step back."""

from __future__ import annotations

import pytest
import torch

from vim_world.batch import Batch
from vim_world.imagination import Imagination, Intervention, LatentState
from vim_world.model import VIM, VIMConfig, preset
from vim_world.model.modules import ModuleBank

K, S, D, M, A = 3, 6, 6, 3, 2
TOL = 100 * torch.finfo(torch.float32).eps


def make(order: int = 2, **overrides) -> VIM:
    torch.manual_seed(0)
    config = preset(
        "tiny-state", hidden=16, num_slots=K, state_dim=S, latent_dim=D, num_modules=M, transition_order=order
    )
    return VIM(VIMConfig.from_dict({**config.to_dict(), **overrides})).eval()


def states(b: int = 2, t: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, K, S, generator=torch.Generator().manual_seed(seed))


def test_a_second_order_module_reads_the_change_since_the_step_before():
    bank = make().transitions
    z = torch.randn(4, K, D)
    still = bank(z, None, z)[0]
    moving = bank(z, None, z - 0.5)[0]
    assert not torch.allclose(still, moving)
    first = make(order=1).transitions
    assert torch.equal(first(z, None, z)[0], first(z, None, z - 0.5)[0])  # a first-order bank ignores it
    with pytest.raises(ValueError, match=r"second-order module bank needs before \(4, 3, 6\) \(like z\), got None"):
        bank(z, None)


def test_a_second_order_affine_module_learns_constant_velocity_from_positions_and_a_first_order_one_cannot():
    g = torch.Generator().manual_seed(0)
    pos, vel = torch.rand(256, K, 2, generator=g), 0.1 * torch.randn(256, K, 2, generator=g)
    before, now, after = pos - vel, pos, pos + vel  # the law z' = z + (z - z_before)
    rows = torch.stack(torch.meshgrid(torch.arange(256), torch.arange(K), indexing="ij"), -1).reshape(-1, 2)
    target = after[rows[:, 0], rows[:, 1]], torch.full((rows.shape[0], 2), -4.0)
    kl = {}
    for history in (False, True):
        bank = ModuleBank(2, 0, 8, 1, nary=False, min_log_std=-6.0, layers=0, history=history)
        params = bank.module_params(0)
        _, kl[history] = bank.fit_module(params, now, None, rows, *target, steps=300, lr=0.05, before=before)
    # One law explains every object-step with history; without it the velocity is noise to the module.
    assert kl[True].mean() < 0.05 * kl[False].mean()


def test_the_elbo_trains_the_history_half_of_the_first_layer():
    model = make().train()
    model.loss(Batch(obs=states()), 10**6)[0].backward()  # past the KL warm-up
    weight = model.transitions.layers[0].weight.grad  # (M, in, out): in = z, then z - z_before
    assert torch.isfinite(weight).all() and weight[:, D : 2 * D].abs().sum() > 0


def test_inference_reads_a_zero_change_at_the_first_transition():
    """``_before`` of ``(B, T, K, D)`` latents is the latent one step back, the first step's own."""
    model = make()
    z = torch.randn(2, 4, K, D)
    before = model._before(z)
    assert before.shape == (2, 3, K, D)
    assert torch.equal(before[:, 0], z[:, 0]) and torch.equal(before[:, 1:], z[:, :2])
    assert make(order=1)._before(z) is None


def test_encode_keeps_the_latent_before_the_last_and_predict_matches_imagination():
    model = make()
    im = Imagination(model)
    obs = states()
    state = im.encode(obs)
    posterior = model.observe(obs)
    assert torch.equal(state.z, posterior.z_mean[:, -1]) and torch.equal(state.z_before, posterior.z_mean[:, -2])
    assert im.encode(obs[:, :1]).z_before is None  # one frame: no change yet
    assert Imagination(make(order=1)).encode(obs).z_before is None
    # VIM.predict (all modules, gathered) and Imagination.rollout (the selected module only): same draws.
    batch = Batch(obs=states(t=8))
    predicted = model.predict(batch, context=5, horizon=3, n_samples=2, generator=torch.Generator().manual_seed(4))
    rolled = im.rollout(
        batch.obs[:, :5], horizon=3, n_samples=2, generator=torch.Generator().manual_seed(4), decode=False
    )
    torch.testing.assert_close(predicted.probs, rolled.probs, atol=TOL, rtol=TOL)
    # Selections are drawn from those probabilities: float rounding could flip a rare draw, and then
    # the futures part. They agree here; a flip would still leave most draws equal.
    agree = (predicted.selections == rolled.selections).float().mean()
    assert agree >= 0.9
    if agree == 1:
        torch.testing.assert_close(predicted.z, rolled.z, atol=TOL, rtol=TOL)
    # prior_step reads no latent one step back as no change yet, as Imagination.step does.
    z, c = state.z, torch.zeros_like(state.c)
    generator = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    default = model.prior_step(z, c, generator=generator(), sample_z=False)[0]
    assert torch.equal(default, model.prior_step(z, c, generator=generator(), sample_z=False, before=z)[0])


@pytest.mark.parametrize("first", [1, 2])
def test_a_rollout_continued_from_its_last_state_equals_the_whole_rollout(first):
    """Without noise and with every module forced, two rollouts chained through ``last_state``
    give the rollout of the whole horizon; that needs the latent one step back carried over."""
    model = make()
    im = Imagination(model)
    state = im.encode(states())
    state = LatentState(state.z, torch.zeros_like(state.c), state.z_before)
    forced = [Intervention(k, k % M) for k in range(K)]
    common = dict(sample_z=False, decode=False, interventions=forced)
    whole = im.rollout(state, horizon=4, **common)
    head = im.rollout(state, horizon=first, **common)
    tail = im.rollout(head.last_state, horizon=4 - first, **common)
    torch.testing.assert_close(torch.cat([head.z[:, 0], tail.z[:, 0]], 1), whole.z[:, 0], atol=TOL, rtol=TOL)
    # Dropping the latent one step back (a zero change) gives another future.
    lost = im.rollout(LatentState(head.last_state.z, head.last_state.c), horizon=4 - first, **common)
    assert not torch.allclose(lost.z, tail.z, atol=1e-3)


def test_replacing_rows_keeps_each_rows_latent_before():
    z, c = torch.zeros(3, K, D), torch.zeros(3, K, dtype=torch.long)
    state = LatentState(z, c, z - 1.0)
    fresh = LatentState(torch.ones(1, K, D), torch.ones(1, K, dtype=torch.long))  # encoded from one frame
    out = state.with_rows(torch.tensor([False, True, False]), fresh)
    assert torch.equal(out.z[1], fresh.z[0]) and torch.equal(out.z_before[1], fresh.z[0])  # no change yet
    assert torch.equal(out.z_before[0], z[0] - 1.0) and torch.equal(out.c[1], fresh.c[0])
    assert state.with_rows(torch.tensor([True, False, False]), LatentState(fresh.z, fresh.c)).z_before is not None
    assert LatentState(z, c).with_rows(torch.tensor([True, False, False]), fresh).z_before is None


def test_bad_orders_are_refused_by_value():
    with pytest.raises(ValueError, match=r"transition_order=3 \(expected 1 or 2\)"):
        VIMConfig(transition_order=3)


def test_the_planner_refuses_a_second_order_model():
    """MPC encodes one observation per step, so a second-order model would plan every object at rest."""
    from gymnasium import spaces
    from vim_world.agents.imagination_model import ImaginationReturns

    model = VIM(VIMConfig.from_dict({**make().config.to_dict(), "action_dim": A, "reward_head": True}))
    with pytest.raises(ValueError, match=r"transition_order=2 reads the change .*expected transition_order=1"):
        ImaginationReturns(Imagination(model), spaces.Discrete(A))
