"""Observed latents (``state_encoder="identity"``) and the split moves that revive unused modules."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from vim_world.batch import Batch
from vim_world.model import VIM, VIMConfig
from vim_world.model.distributions import gaussian_kl


def _affine(num_modules: int, state_dim: int = 2, **overrides) -> VIM:
    """A VIM whose latent is the state and whose modules are affine laws of it."""
    return VIM(
        VIMConfig(
            state_dim=state_dim,
            latent_dim=state_dim - len(overrides.get("static_features", ())),
            num_slots=3,
            num_modules=num_modules,
            module_layers=0,
            hidden=8,
            state_encoder="identity",
            **overrides,
        )
    )


def _drifting(steps: list[tuple[float, float]], batch: int = 8, length: int = 6) -> Tensor:
    """States ``(B, T, K, 2)``: object k moves by ``steps[k]`` per step from a random start."""
    g = torch.Generator().manual_seed(0)
    start = torch.rand(batch, 1, len(steps), 2, generator=g)
    return start + torch.arange(length).float()[None, :, None, None] * torch.tensor(steps)[None, None]


def _set_law(model: VIM, m: int, delta: tuple[float, float]) -> None:
    """Module ``m`` becomes ``z' = z + delta`` (weights zero)."""
    with torch.no_grad():
        model.transitions.layers[0].weight[m].zero_()
        model.transitions.layers[0].bias[m] = torch.tensor(delta)


def test_observed_latents_are_the_standardised_state_with_static_columns_put_back():
    model = _affine(2, state_dim=4, static_features=(1,))
    with torch.no_grad():
        model.standardizer.shift.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        model.standardizer.scale.copy_(torch.tensor([2.0, 1.0, 0.5, 4.0]))
    states = torch.randn(2, 3, 3, 4)
    mean, log_std, _ = model._encode(states)
    torch.testing.assert_close(mean, model.standardizer(states)[..., [0, 2, 3, 1]])  # dynamic, then static
    assert torch.all(log_std == model.config.min_log_std)
    torch.testing.assert_close(model.decode(mean.flatten(0, 1)).obs, states.flatten(0, 1))
    assert sum(p.numel() for p in model.encoder.parameters()) == 0


def test_observed_latents_need_one_latent_per_dynamic_feature():
    with pytest.raises(ValueError, match=r"latent_dim=8 \(expected state mode and latent_dim = .* = 4\)"):
        VIMConfig(state_dim=4, latent_dim=8, state_encoder="identity")
    with pytest.raises(ValueError, match="state_encoder='conv'"):
        VIMConfig(state_encoder="conv")


def test_the_trainer_sizes_observed_latents_from_the_data(tmp_path):
    from vim_world.data import collect, open_dataset
    from vim_world.sizing import model_config
    from vim_world.train import TrainConfig

    path = collect("VimWorld/Passive-v1", tmp_path / "d", episodes=4, episode_len=6, seed=0, num_envs=2)
    cfg = TrainConfig(data=str(path), out=str(tmp_path / "r"), mode="state", overrides={"state_encoder": "identity"})
    config = model_config(cfg, open_dataset(path))
    assert config.latent_dim == config.state_dim - len(config.static_features) == len(config.dynamic_features)


def test_fit_module_scores_like_the_bank_and_fitting_lowers_the_kl():
    model = _affine(3)
    bank = model.transitions
    z = torch.randn(5, 3, 2)
    rows = torch.tensor([[0, 0], [1, 2], [4, 1], [3, 0]])
    target = z[rows[:, 0], rows[:, 1]] + torch.tensor([0.3, -0.2])
    target_log_std = torch.full_like(target, -3.0)
    params = bank.module_params(1)
    _, scored = bank.fit_module(params, z, None, rows, target, target_log_std, steps=0)
    means, log_std = bank(z, None)
    expected = gaussian_kl(target, target_log_std, means[rows[:, 0], rows[:, 1], 1], log_std[1]).sum(-1)
    torch.testing.assert_close(scored, expected)
    before = [p.clone() for p in bank.parameters()]
    fitted, after = bank.fit_module(params, z, None, rows, target, target_log_std, steps=200)
    assert after.mean() < 0.1 * scored.mean()
    assert all(torch.equal(a, b) for a, b in zip(before, bank.parameters()))  # fitting changes nothing
    bank.load_module(2, fitted)
    torch.testing.assert_close(
        bank.fit_module(bank.module_params(2), z, None, rows, target, target_log_std, 0)[1], after
    )
    assert all(torch.equal(a[:2], b[:2]) for a, b in zip(before, bank.parameters()))  # modules 0, 1 untouched


@pytest.mark.parametrize("order", [1, 2])
def test_a_dead_module_takes_over_one_of_two_laws_that_a_live_module_merged(order):
    """Objects 1 and 2 drift in opposite directions (at different speeds) and module 1 explains both
    as standing still;
    module 0 explains object 0 exactly. The split move of dead module 2 must divide module 1's
    data by law (one object each) and leave module 0 alone. Second-order modules (which also
    read the change since the step before) split the same way."""
    model = _affine(3, transition_order=order)
    states = _drifting([(0.0, 0.5), (0.5, 0.0), (-0.3, 0.0)])
    _set_law(model, 0, (0.0, 0.5))
    _set_law(model, 1, (0.0, 0.0))
    with torch.no_grad():
        model.transitions.layers[0].bias[2] += 50.0  # module 2 explains nothing
    batch = Batch(obs=states)
    before = model.observe(batch).selections[:, 1:]
    assert torch.all(before[..., 0] == 0) and torch.all(before[..., 1:] == 1)
    module_0 = model.transitions.module_params(0)
    assert model.revive_unused_modules(batch, torch.Generator().manual_seed(0)) == [2]
    after = model.observe(batch).selections[:, 1:]
    assert torch.all(after[..., 0] == 0)
    assert after[..., 1].unique().numel() == 1 and after[..., 2].unique().numel() == 1
    assert {int(after[0, 0, 1]), int(after[0, 0, 2])} == {1, 2}  # one law each
    assert all(torch.equal(a, b) for a, b in zip(module_0, model.transitions.module_params(0)))


def test_split_moves_of_a_second_order_model_fit_on_the_latents_one_step_back(monkeypatch):
    from vim_world.model.modules import ModuleBank

    model = _affine(3, transition_order=2)
    _set_law(model, 1, (0.0, 0.0))
    with torch.no_grad():
        model.transitions.layers[0].bias[2] += 50.0  # module 2 explains nothing
    batch = Batch(obs=_drifting([(0.0, 0.5), (0.5, 0.0), (-0.3, 0.0)]))
    seen, fit = [], ModuleBank.fit_module

    def spy(self, *args, **kwargs):
        seen.append(kwargs["before"])
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(ModuleBank, "fit_module", spy)
    assert model.revive_unused_modules(batch, torch.Generator().manual_seed(0)) == [2]
    mean = model.observe(batch).z_mean  # the same computation as the revival's own encoding
    expected = torch.cat([mean[:, :1], mean[:, :-2]], 1).flatten(0, 1)  # z_0 for the first transition
    assert seen and all(torch.equal(before, expected) for before in seen)


def test_split_moves_are_deterministic():
    states = _drifting([(0.0, 0.5), (0.5, 0.0), (-0.3, 0.0)])
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _affine(3)
        _set_law(model, 1, (0.0, 0.0))
        with torch.no_grad():
            model.transitions.layers[0].bias[0] += 50.0
            model.transitions.layers[0].bias[2] += 50.0
        model.revive_unused_modules(Batch(obs=states), torch.Generator().manual_seed(0))
        results.append([p.clone() for p in model.transitions.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))
