"""``benchmarks/gpu_pixel.py``'s run names and its runs carried from one call to the next
(``GPU_PIXEL_SAVE_RUNS`` / ``GPU_PIXEL_CONTINUE``), on the CPU at tiny sizes."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_pixel  # noqa: E402

from vim_world.data import collect  # noqa: E402
from vim_world.train import TrainConfig, train  # noqa: E402


def test_run_names_pick_a_catalogue_entry_and_a_seed():
    assert gpu_pixel.run_options("vim_cues_seq4_decay") == gpu_pixel.CATALOGUE["vim_cues_seq4_decay"]
    assert gpu_pixel.run_options("oracle_vim_cues_seq4_decay@3") == {
        **gpu_pixel.CATALOGUE["vim_cues_seq4_decay"],
        "seed": 3,
    }
    with pytest.raises(SystemExit, match=r"unknown run 'vim_nope'; expected \[oracle_\]NAME\[@SEED\]"):
        gpu_pixel.run_options("vim_nope")
    for bad in ("x", "", "\u00b2"):
        with pytest.raises(SystemExit, match=rf"run 'vrnn@{bad}' has seed '{bad}'; expected a non-negative integer"):
            gpu_pixel.run_options(f"vrnn@{bad}")


def test_a_saved_run_is_restored_elsewhere_and_trains_on(tmp_path, monkeypatch):
    data = tmp_path / "data"
    collect("VimWorld/Passive-v1", data, episodes=4, episode_len=8, seed=0, env_kwargs={"obs_size": 32})
    first, name = tmp_path / "first", "vim@1"
    cfg = dict(data=str(data), mode="pixels", preset="tiny", batch_size=2, seq_len=4, seed=1, progress=False)
    train(TrainConfig(out=str(first / name), steps=2, checkpoint_every=1, **cfg))
    (first / f"{name}.log").write_text("trained 2 steps\n")
    out = tmp_path / "out"
    out.mkdir()
    gpu_pixel.save_run(name, first, out)
    assert sorted(p.name for p in out.iterdir()) == ["vim_at1.tgz"]  # names the device tool brings back

    monkeypatch.setenv("GPU_PIXEL_CONTINUE", str(out))
    second = tmp_path / "second"
    assert gpu_pixel.restore_run(name, second) == 2
    assert gpu_pixel.restore_run("vrnn", second) == 0  # no archive: the run starts afresh
    again = tmp_path / "collected_again"  # as on a fresh machine: the trainer compares the data by content
    collect("VimWorld/Passive-v1", again, episodes=4, episode_len=8, seed=0, env_kwargs={"obs_size": 32})
    resumed = train(TrainConfig(out=str(second / name), steps=4, checkpoint_every=1, **{**cfg, "data": str(again)}))
    assert resumed.resumed_from == 2

    monkeypatch.setenv("GPU_PIXEL_CONTINUE", str(tmp_path / "not_carried"))
    with pytest.raises(SystemExit, match=r"GPU_PIXEL_CONTINUE='.*not_carried' is not a folder"):
        gpu_pixel.restore_run(name, second)
    monkeypatch.setenv("GPU_PIXEL_CONTINUE", str(out))

    with tarfile.open(out / "vim_at1.tgz", "w:gz") as tar:  # an archive without a checkpoint
        tar.add(first / name / "train_config.json", arcname=f"{name}/train_config.json")
    with pytest.raises(SystemExit, match=r"vim_at1.tgz holds no checkpoint of run 'vim@1'"):
        gpu_pixel.restore_run(name, tmp_path / "third")
