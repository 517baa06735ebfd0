"""A real crash: ``vim-world train`` killed with SIGKILL at a random point, then resumed, ends
with the parameters of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

import vim_world  # noqa: F401
from vim_world.checkpoint import list_checkpoints, load_model
from vim_world.data import collect

STEPS = 200
FLAGS = ["--steps", str(STEPS), "--batch-size", "4", "--seq-len", "4", "--device", "cpu", "--holdout", "0",
         "--checkpoint-every", "5", "--overrides", '{"hidden": 16}', "--no-progress"]  # fmt: skip


def _train(data, out) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vim_world.cli", "train", "--data", str(data), "--out", str(out), *FLAGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    data = collect("VimWorld/Passive-v0", tmp_path / "data", episodes=16, episode_len=8, seed=0, num_envs=8,
                   env_kwargs={"obs_size": 32})  # fmt: skip
    straight = _train(data, tmp_path / "straight")
    victim = _train(data, tmp_path / "killed")
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 60
    while not list_checkpoints(ckpts) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    delay = random.Random().uniform(0.0, 0.3)  # a different point each run: mid-step or mid-checkpoint
    time.sleep(delay)
    assert victim.poll() is None, "the run finished before it could be killed; raise STEPS"
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    assert victim.returncode == -signal.SIGKILL
    killed_at = int(list_checkpoints(ckpts)[-1].name.split("_")[1])
    assert 0 < killed_at < STEPS, f"killed after {delay:.2f} s at step {killed_at}"

    resumed = _train(data, tmp_path / "killed")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err[-2000:]
    assert f"resumed from {killed_at}" in out
    assert straight.wait(120) == 0, straight.stderr.read()[-2000:]
    a, _ = load_model(tmp_path / "straight", "cpu")
    b, meta = load_model(tmp_path / "killed", "cpu")
    assert meta["step"] == STEPS
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)
    assert not list(ckpts.glob(".tmp_*"))  # a save cut by the kill is cleaned up by the next one
