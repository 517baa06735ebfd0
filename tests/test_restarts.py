"""Restarts chosen by the held-out ELBO (``TrainConfig.restarts``, :mod:`vim_world.restarts`)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vim_world.data import collect
from vim_world.restarts import heldout_loss
from vim_world.train import TrainConfig, load_model, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("restarts")
    return collect("VimWorld/Passive-v1", root / "data", episodes=16, episode_len=8, seed=0, num_envs=4,
                   env_kwargs={"obs_mode": "state"})  # fmt: skip


def _config(data, out, **kw):
    kw = {"steps": 5, **kw}
    return TrainConfig(data=str(data), out=str(out), batch_size=4, seq_len=4, checkpoint_every=5, device="cpu",
                       progress=False, **kw)  # fmt: skip


def _same_weights(a, b):
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)


def test_the_seed_of_least_heldout_loss_is_trained_on_as_if_straight_through(data, tmp_path):
    result = train(_config(data, tmp_path / "run", restarts=3, select_at=3, seed=10))
    selection = json.loads((tmp_path / "run" / "restarts" / "selection.json").read_text())
    losses = {int(s): v for s, v in selection["heldout_loss"].items()}
    assert sorted(losses) == [10, 11, 12] and selection["select_at"] == 3
    chosen = selection["chosen_seed"]
    assert losses[chosen] == min(losses.values())
    for seed, recorded in losses.items():  # each trial's loss, recomputed from its run on the same windows
        model, meta = load_model(tmp_path / "run" / "restarts" / f"seed{seed}", "cpu")
        assert meta["step"] == 3
        assert heldout_loss(model, data, 0.1, mode="state", seq_len=4, seed=10) == recorded
    assert result.steps == 5 and result.resumed_from == 3
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["seed"] == chosen

    straight = train(_config(data, tmp_path / "straight", seed=chosen))
    _same_weights(load_model(straight.out, "cpu")[0], load_model(result.out, "cpu")[0])


def test_a_rerun_reuses_the_choice_and_a_lost_copy_is_made_again(data, tmp_path):
    cfg = _config(data, tmp_path / "run", restarts=2, select_at=2)
    first = load_model(train(cfg).out, "cpu")[0]
    selection = tmp_path / "run" / "restarts" / "selection.json"
    stamp = selection.stat().st_mtime_ns
    assert train(cfg).resumed_from == 5  # nothing left to train
    shutil.rmtree(tmp_path / "run" / "checkpoints")  # killed after choosing, before the copy
    again = train(cfg)
    assert again.resumed_from == 2 and selection.stat().st_mtime_ns == stamp
    _same_weights(first, load_model(again.out, "cpu")[0])
    chosen = json.loads(selection.read_text())["chosen_seed"]
    longer = train(_config(data, tmp_path / "run", seed=chosen, steps=7))  # on, as a plain run of the chosen seed
    assert longer.resumed_from == 5 and longer.steps == 7


def test_heldout_loss_is_deterministic_reads_held_out_shards_only_and_keeps_the_callers_rng(data):
    model, _ = load_model(train(_config(data, data.parent / "plain")).out, "cpu")
    first = heldout_loss(model, data, 0.25, mode="state", seq_len=4, batches=2, batch_size=4)
    assert first == heldout_loss(model, data, 0.25, mode="state", seq_len=4, batches=2, batch_size=4)
    assert first != heldout_loss(model, data, 0.5, mode="state", seq_len=4, batches=2, batch_size=4)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    heldout_loss(model, data, 0.25, mode="state", seq_len=4, batches=2, batch_size=4)
    assert torch.equal(torch.rand(3), expected)  # the caller's random stream is left as it was
    with pytest.raises(ValueError, match=r"holdout=0 holds no shard of .* out"):
        heldout_loss(model, data, 0, mode="state", seq_len=4)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(restarts=1), r"restarts must be 0 \(off\) or >= 2 seeds to choose among, got 1"),
        (dict(restarts=-2), r"restarts must be 0 \(off\) or >= 2 .* got -2"),
        (dict(restarts=2, select_at=6), r"select_at must be in \[1, steps=5\] with restarts, got 6"),
        (dict(restarts=2, select_at=2, holdout=0.0), r"holdout must be > 0 with restarts"),
        (dict(restarts=2, select_at=2, model="copy_last"), r"model='copy_last' has nothing to train"),
    ],
)
def test_bad_restart_options_are_refused_naming_them(data, tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        _config(data, tmp_path / "run", **kw)


def test_a_run_trained_without_restarts_is_not_overwritten(data, tmp_path):
    train(_config(data, tmp_path / "run"))
    with pytest.raises(ValueError, match=r"already holds a run trained without restarts; use another --out"):
        train(_config(data, tmp_path / "run", restarts=2, select_at=2))
