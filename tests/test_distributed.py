"""Data-parallel training: torchrun with 2 CPU processes (gloo) equals one process on the same
global batch; rank rows, rank-consistent noise and the torchrun environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import vim_world  # noqa: F401  (registers the envs)
from vim_world import distributed
from vim_world.checkpoint import load_checkpoint
from vim_world.data import SequenceLoader, collect, open_dataset, rank_rows
from vim_world.train import TrainConfig, load_model, train

TRAIN_FLAGS = ["--steps", "1", "--batch-size", "4", "--seq-len", "4", "--device", "cpu", "--holdout", "0",
               "--overrides", '{"hidden": 16, "kl_warmup_steps": 0}', "--no-progress", "--log-every", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return collect("VimWorld/Passive-v0", tmp_path_factory.mktemp("d") / "p", episodes=16, episode_len=8, seed=0,
                   num_envs=8, env_kwargs={"obs_size": 32})  # fmt: skip


def _scalars(run_dir, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


def test_torchrun_two_processes_equal_one_process(data, tmp_path):
    """Two gloo ranks, each on half of the global batch, give the single-process gradient and
    parameters after one step, and log the single-process (global-batch) loss.

    The gradient is read from Adam's first moment (``0.1 * grad`` after one step), because Adam's
    first update, ``lr * g / (|g| + eps)``, hides the gradient's scale (a sum instead of a mean
    would pass) and turns float rounding of near-zero components into differences up to ``lr``.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vim_world.cli", "train", "--data", str(data), "--out", str(tmp_path / "ddp"), *TRAIN_FLAGS]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 1 steps") == 1  # rank 0 speaks for the run
    single = train(TrainConfig(data=str(data), out=str(tmp_path / "one"), steps=1, batch_size=4, seq_len=4,
                               device="cpu", holdout=0.0, overrides={"hidden": 16, "kl_warmup_steps": 0},
                               progress=False, log_every=1))  # fmt: skip
    a, _ = load_model(tmp_path / "ddp", "cpu")
    b, _ = load_model(single.out, "cpu")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-4, msg=name)  # lr = 1e-3
    moments = [load_checkpoint(run).state["optimizer"]["state"] for run in (tmp_path / "ddp", single.out)]
    assert len(moments[0]) == len(list(a.parameters()))
    for i in moments[0]:
        torch.testing.assert_close(moments[0][i]["exp_avg"], moments[1][i]["exp_avg"], rtol=1e-4, atol=1e-8)
    # rank 0 logged the mean over both ranks, i.e. the loss of the whole batch, and only rank 0 logged
    assert _scalars(tmp_path / "ddp", "loss") == pytest.approx(_scalars(single.out, "loss"), rel=1e-5)
    assert len(list((tmp_path / "ddp" / "tb").glob("events.*"))) == 1


def test_rank_rows_split_the_global_batch(data):
    loader = SequenceLoader(open_dataset(data), batch_size=4, seq_len=4, mode="state", seed=2)
    whole = loader.batch_at(5)
    parts = [loader.batch_at(5, rank, 2) for rank in (0, 1)]
    torch.testing.assert_close(torch.cat([p.obs for p in parts]), whole.obs, rtol=0, atol=0)
    assert rank_rows(6, 2, 3) == slice(4, 6)
    with pytest.raises(ValueError, match="batch_size 4 is not divisible by the number of processes 3"):
        loader.batch_at(0, 0, 3)
    with pytest.raises(ValueError, match="rank must be an int in \\[0, 2\\), got 2"):
        rank_rows(4, 2, 2)


def _draws(offset: int, local: int) -> list[torch.Tensor]:
    with distributed.GlobalBatchNoise(seed=7, step=3, offset=offset, local_batch=local, global_batch=4):
        per_sample = torch.randn_like(torch.zeros(local, 3, 2))
        flattened = torch.rand((local * 5, 2))  # e.g. (B * T, ...)
        shared = torch.randn(3)  # no batch dimension: the same on every rank
    return [per_sample, flattened, shared]


def test_noise_of_a_sample_does_not_depend_on_the_number_of_ranks():
    one = _draws(0, 4)
    r0, r1 = _draws(0, 2), _draws(2, 2)
    for whole, a, b in zip(one[:2], r0[:2], r1[:2]):
        torch.testing.assert_close(torch.cat([a, b]), whole, rtol=0, atol=0)
    torch.testing.assert_close(r0[2], one[2], rtol=0, atol=0)
    torch.testing.assert_close(r1[2], one[2], rtol=0, atol=0)
    with distributed.GlobalBatchNoise(seed=7, step=4, offset=0, local_batch=4, global_batch=4):
        assert not torch.equal(torch.randn_like(torch.zeros(4, 3, 2)), one[0])  # and from step to step
    g = torch.Generator().manual_seed(0)
    with distributed.GlobalBatchNoise(seed=7, step=3, offset=0, local_batch=4, global_batch=4):
        explicit = torch.rand((4,), generator=g)  # an explicit generator is left alone
    torch.testing.assert_close(explicit, torch.rand((4,), generator=torch.Generator().manual_seed(0)))


def test_torchrun_environment_is_validated(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        distributed.setup(torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2 and WORLD_SIZE=2"):
        distributed.setup(torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    ctx = distributed.setup(torch.device("cpu"))
    assert not ctx.distributed and ctx.is_main and ctx.device == torch.device("cpu")
    assert distributed.mean_across_ranks({"loss": 2.0}, ctx) == {"loss": 2.0}
