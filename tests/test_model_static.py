"""Static attributes (``VIMConfig.static_features``): observed, decoded, never read by the modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM, preset
from vim_world.train import constant_features

K, S, D, M = 3, 6, 5, 4
STATIC = (4, 5)


def _model(static=STATIC, **overrides) -> VIM:
    torch.manual_seed(0)
    return VIM(
        preset(
            "tiny-state",
            hidden=16,
            num_slots=K,
            state_dim=S,
            latent_dim=D,
            num_modules=M,
            static_features=static,
            **overrides,
        )
    ).eval()


def _batches() -> tuple[Batch, Batch]:
    """Two batches whose objects move the same way but are of other kinds."""
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(2, 7, K, S, generator=g)
    obs[..., 4:] = torch.randn(2, 1, K, 2, generator=g)  # constant over time
    other = obs.clone()
    other[..., 4:] = torch.randn(2, 1, K, 2, generator=g)
    return Batch(obs=obs), Batch(obs=other)


def test_the_static_features_are_what_never_changes_within_an_episode():
    states = np.random.default_rng(0).normal(size=(4, 6, 3, 5))
    states[..., 1] = states[:, :1, :, 1]  # constant within each episode, differs across episodes
    states[..., 3] = 2.0
    assert constant_features(states) == (1, 3)


@pytest.mark.parametrize(
    "bad",
    [
        dict(static_features=(6,)),
        dict(static_features=(1, 1)),
        dict(static_features=tuple(range(S))),
        dict(static_features=(0,), input_mode="pixels"),
    ],
)
def test_bad_static_features_are_refused(bad):
    with pytest.raises(ValueError, match="static_features"):
        preset("tiny-state", state_dim=S, **bad)


def test_modules_and_switching_prior_never_read_static_attributes():
    model = _model(nary=True)
    a, b = _batches()
    with torch.no_grad():
        post_a, post_b = model.observe(a), model.observe(b)
        torch.testing.assert_close(post_a.probs, post_b.probs)  # same module posteriors whatever the kind
        torch.testing.assert_close(post_a.z_mean[..., :D], post_b.z_mean[..., :D])
        assert not torch.allclose(post_a.z_mean[..., D:], post_b.z_mean[..., D:])
        assert not torch.allclose(model.decode(post_a.z_mean[:, -1]).obs, model.decode(post_b.z_mean[:, -1]).obs)
        c = torch.zeros(2, K, dtype=torch.long)
        gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
        za, ca, pa = model.prior_step(post_a.last_z, c, generator=gen())
        zb, cb, pb = model.prior_step(post_b.last_z, c, generator=gen())
    torch.testing.assert_close(pa, pb)
    torch.testing.assert_close(za[..., :D], zb[..., :D])
    torch.testing.assert_close(za[..., D:], post_a.last_z[..., D:])  # carried exactly, no noise
    assert za.shape == (2, K, D + len(STATIC))


def test_a_model_with_static_attributes_trains():
    model = _model().train()
    a, _ = _batches()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for step in range(30):
        loss, stats = model.loss(a, step)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss) and loss.item() < first
    assert 0.0 < stats["kl_z"] < float("inf")  # a posterior that differs from its prior: the KL term is there


def test_static_attributes_are_a_state_mode_option():
    from vim_world.train import TrainConfig

    with pytest.raises(ValueError, match="static_attributes"):
        TrainConfig(data="d", out="o", mode="pixels", static_attributes=True)


def test_trainer_reads_the_static_attributes_off_the_data_and_evaluation_scores_by_mechanism(tmp_path):
    import json

    from vim_world.envs import STATE_FEATURES

    import vim_world  # noqa: F401
    from vim_world.data import collect
    from vim_world.evaluate import EvalConfig, evaluate
    from vim_world.train import TrainConfig, load_model, train

    data = collect("VimWorld/Passive-v0", tmp_path / "d", episodes=16, episode_len=8, seed=0, num_envs=8,
                   env_kwargs={"obs_size": 32})  # fmt: skip
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "vim"), steps=3, batch_size=4, seq_len=4, progress=False,
                      device="cpu", holdout=0.5, static_attributes=True, overrides={"hidden": 16})  # fmt: skip
    model, _ = load_model(train(cfg).out)
    kinds = {STATE_FEATURES.index(f"is_{k}") for k in ("circle", "square", "triangle", "diamond", "zone")}
    assert set(model.config.static_features) == kinds  # positions, velocities, sizes, hues all move
    evaluate(EvalConfig(runs={"vim": str(tmp_path / "vim")}, splits={"in": str(data), "again": str(data)},
                        out=str(tmp_path / "eval"), context=2, horizon=3, n_samples=2, batch_size=4, max_batches=1,
                        device="cpu"))  # fmt: skip
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    prediction = metrics["splits"]["in"]["prediction"]["vim"]
    by_mechanism = prediction["mse_mean_by_mechanism"]
    # The overall mean is the object-count-weighted mean of the per-mechanism means: it lies between them.
    assert len(by_mechanism) >= 2 and all(v > 0 for v in by_mechanism.values())
    assert (
        min(by_mechanism.values()) * (1 - 1e-6) <= prediction["mse_mean_avg"] <= max(by_mechanism.values()) * (1 + 1e-6)
    )
    again = metrics["splits"]["again"]["prediction"]["vim"]["mse_mean_by_mechanism"]  # all shards, not the held-out one
    ratios = metrics["ratios"]["again"]["vim"]["mse_mean_by_mechanism"]
    assert set(ratios) == set(by_mechanism) & set(again)
    assert ratios == pytest.approx({m: again[m] / by_mechanism[m] for m in ratios})


def test_hidden_features_join_the_static_attributes_and_bad_names_are_refused(tmp_path):
    """``TrainConfig.hidden_features``: named state features become observed attributes, so the
    modules read the rest (here positions, size and hue without their changes)."""
    from vim_world.envs import STATE_FEATURES

    import vim_world  # noqa: F401
    from vim_world.data import collect
    from vim_world.train import TrainConfig, load_model, train

    data = collect("VimWorld/Passive-v1", tmp_path / "d", episodes=8, episode_len=6, seed=0, num_envs=8,
                   env_kwargs={"obs_size": 32})  # fmt: skip
    common = dict(data=str(data), steps=2, batch_size=4, seq_len=4, progress=False, device="cpu", holdout=0.0,
                  overrides={"hidden": 16, "state_encoder": "identity"})  # fmt: skip
    hidden = ("vx", "vy", "dsize")
    for static in (False, True):
        out = tmp_path / f"run_{static}"
        model, _ = load_model(train(TrainConfig(out=str(out), static_attributes=static, hidden_features=hidden,
                                                **common)).out)  # fmt: skip
        kinds = {i for i, name in enumerate(STATE_FEATURES) if name.startswith("is_")} if static else set()
        assert set(model.config.static_features) == kinds | {STATE_FEATURES.index(n) for n in hidden}
        assert model.config.latent_dim == len(STATE_FEATURES) - len(model.config.static_features)
    with pytest.raises(ValueError, match=r"hidden_features names unknown features \['vz'\]; expected names from"):
        TrainConfig(data="d", out="o", hidden_features="vz, vx")
    with pytest.raises(ValueError, match=r"hidden_features applies to mode='state' .*got mode='pixels'"):
        TrainConfig(data="d", out="o", mode="pixels", hidden_features=["vx"])
    assert TrainConfig(data="d", out="o", hidden_features=["vx", "vy", "vx"]).hidden_features == ("vx", "vy")
