"""Checkpoints (atomic, verified, no pickle for weights) and the trainer (exact resume, clear errors)."""

from __future__ import annotations

import pytest
import torch

import vim_world  # noqa: F401
from vim_world.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    load_model,
    load_weights,
    save_checkpoint,
)
from vim_world.data import collect
from vim_world.model.config import tiny_state
from vim_world.model.vim import VIM
from vim_world.train import TrainConfig, TrainingDiverged, learning_rate, make_optimizer, train


def _model(**kw) -> VIM:
    torch.manual_seed(0)
    return VIM(tiny_state(state_dim=13, num_slots=4, hidden=16, **kw))


def test_roundtrip_and_retention(tmp_path):
    m = _model()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, m, "vim", m.config.to_dict(), {"optimizer": {}, "rng": {}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003", "step_00000004"]
    assert not list(tmp_path.glob(".tmp_*"))
    ck = load_checkpoint(tmp_path)  # a run directory resolves to its latest checkpoint
    assert ck.step == 4 and ck.model_name == "vim"
    other = _model()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_weights(other, ck)
    for a, b in zip(m.state_dict().values(), other.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_corruption_and_mismatch_are_named(tmp_path):
    m = _model()
    path = save_checkpoint(tmp_path, 1, m, "vim", m.config.to_dict(), {"optimizer": {}, "rng": {}})
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(_model(latent_dim=4), load_checkpoint(path))
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return collect("VimWorld/Passive-v0", tmp_path_factory.mktemp("d") / "p", episodes=16, episode_len=8, seed=0,
                   num_envs=8, env_kwargs={"obs_size": 32})  # fmt: skip


def _cfg(data, out, steps, **kw) -> TrainConfig:
    opts = dict(
        data=str(data),
        out=str(out),
        steps=steps,
        batch_size=4,
        seq_len=4,
        checkpoint_every=3,
        progress=False,
        device="cpu",
        holdout=0.0,
        overrides={"hidden": 16},
    )
    return TrainConfig(**{**opts, **kw})


@pytest.fixture(scope="module")
def steer(tmp_path_factory):
    return collect("VimWorld/Steer-v0", tmp_path_factory.mktemp("d") / "s", episodes=16, episode_len=8, seed=0,
                   num_envs=8, env_kwargs={"obs_size": 32})  # fmt: skip


@pytest.mark.parametrize(
    "source, schedule",
    [
        ("data", {}),
        ("data", {"revive_every": 2}),
        ("data", {"warmup_steps": 5}),
        ("data", {"lr_half_life": 2}),
        ("steer", {"head_weight_decay": 0.5}),
    ],
    ids=["plain", "revival", "warmup", "lr-decay", "task-heads"],
)
def test_killed_run_resumes_to_the_same_parameters(request, source, tmp_path, schedule):
    """Also with task heads (Steer data): AdamW's two parameter groups are saved and restored."""
    data = request.getfixturevalue(source)
    straight = train(_cfg(data, tmp_path / "a", steps=6, **schedule))
    first = train(_cfg(data, tmp_path / "b", steps=3, **schedule))
    assert first.checkpoint.name == "step_00000003"
    resumed = train(_cfg(data, tmp_path / "b", steps=6, **schedule))
    assert resumed.resumed_from == 3
    a, _ = load_model(straight.out, "cpu")
    b, _ = load_model(resumed.out, "cpu")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)


def test_warmup_ramps_the_learning_rate_linearly():
    cfg = TrainConfig(data=".", out=".", lr=1e-3, warmup_steps=4)
    assert [learning_rate(cfg, s) for s in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert learning_rate(TrainConfig(data=".", out=".", lr=1e-3), 0) == 1e-3


def test_lr_half_life_decays_exponentially_after_the_warmup():
    cfg = TrainConfig(data=".", out=".", lr=1e-3, warmup_steps=2, lr_half_life=2)
    assert [learning_rate(cfg, s) for s in range(5)] == pytest.approx(
        [5e-4, 1e-3 * 0.5**0.5, 5e-4, 1e-3 * 0.5**1.5, 2.5e-4]
    )
    assert learning_rate(TrainConfig(data=".", out=".", lr=1e-3, lr_half_life=100), 100) == pytest.approx(5e-4)


def test_warmup_changes_the_first_updates(data, tmp_path):
    a, _ = load_model(train(_cfg(data, tmp_path / "a", steps=2)).out, "cpu")
    b, _ = load_model(train(_cfg(data, tmp_path / "b", steps=2, warmup_steps=10)).out, "cpu")
    assert any(not torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))


def test_run_directory_refuses_other_options(data, tmp_path):
    train(_cfg(data, tmp_path / "r", steps=3))
    with pytest.raises(ValueError, match="other options"):
        train(_cfg(data, tmp_path / "r", steps=3, lr=1e-2))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    cfg = _cfg(data, tmp_path / "n", steps=6)
    train(_cfg(data, tmp_path / "n", steps=3))
    real_loss = VIM.loss

    def diverging(self, batch, step):  # fault injection: the loss blows up at step 4
        loss, metrics = real_loss(self, batch, step)
        return (loss * float("nan") if step == 4 else loss), metrics

    monkeypatch.setattr(VIM, "loss", diverging)
    with pytest.raises(TrainingDiverged, match="non-finite loss nan at step 4.*step_00000003"):
        train(cfg)
    assert load_checkpoint(tmp_path / "n").step == 3


@pytest.mark.parametrize(
    "bad",
    [
        dict(model="gpt"),
        dict(steps=0),
        dict(lr=-1.0),
        dict(mode="depth"),
        dict(holdout=1.0),
        dict(revive_every=-1),
        dict(warmup_steps=-1),
        dict(lr_half_life=-1),
        dict(head_weight_decay=-1.0),
    ],
)
def test_bad_train_options_name_the_value(bad, tmp_path):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainConfig(**{"data": str(tmp_path), "out": str(tmp_path), **bad})


def test_task_heads_get_their_own_group_with_weight_decay():
    """A model with task heads: AdamW with two groups, the heads' parameters with the decay and the
    rest without (clipped apart in training); a model without heads: plain Adam over everything."""
    heads = _model(reward_head=True, action_dim=5)
    params = list(heads.parameters())
    opt = make_optimizer(heads, TrainConfig(data=".", out=".", head_weight_decay=0.5))
    assert isinstance(opt, torch.optim.AdamW) and [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.5]
    assert {id(p) for p in opt.param_groups[1]["params"]} == {id(p) for p in heads.task_heads.parameters()}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(params)
    no_heads = _model()
    plain = make_optimizer(no_heads, TrainConfig(data=".", out="."))
    assert type(plain) is torch.optim.Adam and len(plain.param_groups) == 1
