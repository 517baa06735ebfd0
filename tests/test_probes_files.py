"""Probes, nothing is lost: overwrites only of what the package wrote, output files never
replaced silently, stale temporaries cleaned, one trainer per run directory, checkpoints ordered
by step, sizes bounded before the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import vim_world  # noqa: F401
from vim_world.checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint
from vim_world.cli import main
from vim_world.data import collect, open_dataset
from vim_world.demo import run_demo
from vim_world.files import RunLockedError, check_output_file, remove_stale_temporaries, run_lock, temp_prefix
from vim_world.model import VIM, VIMConfig

TINY = dict(episodes=4, episode_len=6, num_envs=4, env_kwargs={"obs_size": 32})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return collect("VimWorld/Passive-v0", tmp_path_factory.mktemp("probe") / "d", **TINY)


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_overwrite_refuses_cwd_parents_and_foreign_directories(tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    monkeypatch.chdir(foreign)
    for target in (".", "..", str(foreign)):
        with pytest.raises(ValueError, match="refusing to replace"):
            collect("VimWorld/Passive-v0", target, overwrite=True, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert main(["collect", "VimWorld/Passive-v0", "--out", ".", "--overwrite", "--episodes", "4"]) == 2
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_overwrite_replaces_a_data_set(tmp_path):
    path = collect("VimWorld/Passive-v0", tmp_path / "d", seed=0, **TINY)
    collect("VimWorld/Passive-v0", path, seed=1, overwrite=True, **TINY)
    assert open_dataset(path).meta["seed"] == 1


def test_demo_checks_every_option_before_deleting(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.json").write_text("{}")
    (out / "result").write_text("precious")
    with pytest.raises(ValueError, match="banana"):
        run_demo(out, device="banana", overwrite=True)
    with pytest.raises(ValueError, match="preset"):
        run_demo(out, preset="huge", overwrite=True)
    assert (out / "result").read_text() == "precious"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    with pytest.raises(ValueError, match="not a vim_world demo directory"):
        run_demo(foreign, device="cpu", overwrite=True)
    with pytest.raises(ValueError, match="did not write"):
        run_demo(foreign, device="cpu")
    assert (foreign / "x").read_text() == "x"
    assert main(["demo", "--out", str(out), "--overwrite", "--device", "banana"]) == 2
    assert (out / "result").exists()


def test_output_files_are_checked_before_the_work(tmp_path, capsys):
    existing = tmp_path / "a.png"
    existing.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_output_file(existing, overwrite=False)
    assert check_output_file(existing, overwrite=True) == existing
    with pytest.raises(ValueError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "x.png", overwrite=False)
    # The CLI refuses before loading anything: the run and data paths do not even exist.
    assert main(["imagine", "--run", "nowhere", "--data", "nowhere", "--out", str(existing)]) == 2
    assert "exists" in capsys.readouterr().err and existing.read_bytes() == b"old"
    assert main(["imagine", "--run", "nowhere", "--data", "nowhere", "--out", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    report = tmp_path / "eval"
    report.mkdir()
    (report / "report.html").write_text("demo report")
    assert main(["eval", "--run", "a=nowhere", "--split", "s=nowhere", "--out", str(report)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (report / "report.html").read_text() == "demo report"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / f".tmp_{_dead_pid()}_abc"
    alive = tmp_path / f".tmp_{os.getppid()}_abc"  # the test runner's parent: running
    reused = tmp_path / f".tmp_{os.getppid()}_old"  # a running PID, but untouched for days: PID reuse
    mine = tmp_path / f"{temp_prefix('.tmp_')}abc"
    foreign = tmp_path / ".tmp_notes"  # no PID: not ours, never touched
    for d in (dead, alive, reused, mine, foreign):
        d.mkdir()
    os.utime(reused, (0, 0))
    os.utime(foreign, (0, 0))
    removed = remove_stale_temporaries(tmp_path, ".tmp_")
    assert sorted(removed) == sorted([dead, reused])
    assert alive.exists() and mine.exists() and foreign.exists()


def test_killed_collection_leaves_nothing_after_the_next_one(tmp_path):
    stale = tmp_path / f".d.{_dead_pid()}_xyz"
    stale.mkdir()
    (stale / "big.npy").write_bytes(b"0" * 1000)
    collect("VimWorld/Passive-v0", tmp_path / "d", **TINY)
    assert not stale.exists()


def test_a_lock_stops_a_second_trainer(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    with run_lock(run):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            with run_lock(run):
                pass
        argv = ["train", "--data", str(dataset), "--out", str(run), "--steps", "1", "--batch-size", "2",
                "--seq-len", "3", "--device", "cpu", "--no-progress"]  # fmt: skip
        assert main(argv) == 2
        assert "in use by another process" in capsys.readouterr().err
    with run_lock(run):  # released
        pass


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path):
    run = tmp_path / "run"
    code = "import sys, time; from vim_world.files import run_lock\nwith run_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            with run_lock(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(run):  # a killed holder leaves no stale lock
        pass


def test_retention_and_latest_order_by_integer_step(tmp_path):
    model = VIM(VIMConfig(state_dim=4, num_slots=2, latent_dim=2, num_modules=2, hidden=4))
    for step in (99_999_999, 100_000_000, 100_000_001):
        save_checkpoint(tmp_path, step, model, "vim", model.config.to_dict(), {"optimizer": {}, "rng": {}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_100000000", "step_100000001"]
    assert latest_checkpoint(tmp_path).name == "step_100000001"


def test_collection_size_is_bounded_before_memory_runs_out(tmp_path):
    with pytest.raises(ValueError, match="GiB in memory.*--episode-len"):
        collect("VimWorld/Passive-v0", tmp_path / "huge", episodes=1, episode_len=10**7, num_envs=64)
    assert not (tmp_path / "huge").exists()
    assert not list(tmp_path.iterdir())


def test_manifest_is_covered_by_a_hash(tmp_path):
    from vim_world.checkpoint import CheckpointError, load_checkpoint

    model = VIM(VIMConfig(state_dim=4, num_slots=2, latent_dim=2, num_modules=2, hidden=4))
    path = save_checkpoint(tmp_path, 1, model, "vim", model.config.to_dict(), {"optimizer": {}, "rng": {}})
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model_config"]["hidden"] = 8  # a consistent-looking but forged manifest
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    with pytest.raises(CheckpointError, match="manifest.json is corrupted"):
        load_checkpoint(path)
