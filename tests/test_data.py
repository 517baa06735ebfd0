"""Rollout data sets: determinism, format, verification, streaming batches."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from vim_world.envs import STATE_FEATURES

import vim_world  # noqa: F401  (registers the envs)
from vim_world.data import DatasetError, SequenceLoader, collect, merge, open_dataset, split_shards


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return collect("VimWorld/Passive-v0", root / "a", episodes=10, episode_len=8, seed=3, num_envs=4,
                   env_kwargs={"obs_size": 32}, masks=True)  # fmt: skip


def test_layout_and_metadata(small):
    ds = open_dataset(small)
    meta = ds.meta
    assert meta["env_id"] == "VimWorld/Passive-v0" and meta["seed"] == 3 and meta["episodes"] == 10
    assert meta["vim_world_version"] == vim_world.__version__
    assert [s["episodes"] for s in meta["shards"]] == [4, 4, 2]
    a = ds.load_shard(0)
    assert a["pixels"].shape == (4, 8, 32, 32, 3) and a["pixels"].dtype == np.uint8
    assert a["states"].shape == (4, 8, 4, len(STATE_FEATURES))
    assert a["mechanism"].shape == (4, 8, 4) and a["masks"].shape == (4, 8, 4, 32, 32)
    assert a["valid"].all()  # passive episodes never terminate


def test_same_seed_same_data_and_different_seed_differs(small, tmp_path):
    again = collect("VimWorld/Passive-v0", tmp_path / "b", episodes=10, episode_len=8, seed=3, num_envs=4,
                    env_kwargs={"obs_size": 32}, masks=True)  # fmt: skip
    other = collect("VimWorld/Passive-v0", tmp_path / "c", episodes=10, episode_len=8, seed=4, num_envs=4,
                    env_kwargs={"obs_size": 32})  # fmt: skip
    a, b, c = (open_dataset(p).load_shard(1) for p in (small, again, other))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["states"], c["states"])


def test_never_overwritten_silently(small):
    with pytest.raises(FileExistsError, match="overwrite"):
        collect("VimWorld/Passive-v0", small, episodes=2, episode_len=4)


def test_corrupted_and_truncated_files_are_named(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    target = copy / "shard_00001" / "states.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="shard_00001/states.npy"):
        open_dataset(copy)
    target.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        open_dataset(copy)
    (copy / "shard_00002" / "rewards.npy").unlink()
    with pytest.raises(DatasetError, match="missing"):
        open_dataset(copy, verify=False)
    with pytest.raises(DatasetError, match="not a vim_world data set"):
        open_dataset(tmp_path)


def test_loader_batches(small):
    ds = open_dataset(small)
    loader = SequenceLoader(ds, batch_size=3, seq_len=5, mode="pixels", seed=1)
    b = loader.batch_at(7)
    assert b.obs.shape == (3, 5, 3, 32, 32) and b.obs.dtype == torch.float32
    assert 0.0 <= b.obs.min() and b.obs.max() <= 1.0
    assert b.mechanism.shape == (3, 5, 4) and b.mechanism.dtype == torch.int64
    assert b.masks.shape == (3, 5, 4, 32, 32)
    torch.testing.assert_close(loader.batch_at(7).obs, b.obs)  # a pure function of (seed, index)
    assert not torch.equal(loader.batch_at(8).obs, b.obs)
    state = SequenceLoader(ds, batch_size=2, seq_len=8, mode="state").batch_at(0)
    assert state.obs.shape == (2, 8, 4, len(STATE_FEATURES))
    # frames and states line up: the first state row's position matches the drawn pixel colour
    passes = list(SequenceLoader(ds, batch_size=4, seq_len=2, mode="state"))
    assert sum(p.batch_size for p in passes) == 10


def test_loader_rejects_bad_arguments(small):
    ds = open_dataset(small)
    with pytest.raises(ValueError, match="seq_len must be in \\[1, 8\\]"):
        SequenceLoader(ds, batch_size=2, seq_len=9)
    with pytest.raises(ValueError, match="mode must be"):
        SequenceLoader(ds, batch_size=2, seq_len=2, mode="depth")
    train, held = split_shards(ds, 0.34)
    assert split_shards(ds, 0.0) == ([0, 1, 2], [])  # holdout 0 trains on every shard
    assert split_shards(ds, 0.99) == ([0], [1, 2])  # at least one shard is left to train on
    assert held and not set(train) & set(held) and sorted(train + held) == [0, 1, 2]


def test_control_task_records_actions_and_rewards(tmp_path):
    p = collect("VimWorld/Steer-v0", tmp_path / "s", episodes=4, episode_len=70, seed=0, num_envs=4,
                env_kwargs={"obs_size": 32})  # fmt: skip
    ds = open_dataset(p)
    a = ds.load_shard(0)
    assert ds.meta["policy"] == "random" and ds.meta["action_dim"] == 5
    assert a["actions"].shape == (4, 70, 5) and np.all(a["actions"].sum(-1) == 1)
    assert np.any(a["rewards"] != 0)
    assert not a["valid"][:, -1].any()  # 70 > max_episode_steps: every episode has ended
    assert json.loads((p / "meta.json").read_text())["episode_len"] == 70


def test_parallel_collection_writes_the_same_bytes(tmp_path):
    """One shard per task: 1 or 2 worker processes give byte-identical data sets."""
    opts = dict(episodes=6, episode_len=5, seed=11, num_envs=2, env_kwargs={"obs_size": 32}, policy="random")
    one = collect("VimWorld/Steer-v0", tmp_path / "w1", workers=1, **opts)
    two = collect("VimWorld/Steer-v0", tmp_path / "w2", workers=2, **opts)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 1 + 3 * 6 and files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for f in files:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f
    assert not list(tmp_path.glob(".w*"))  # no temporary directory left behind


def test_collect_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive int, got 0"):
        collect("VimWorld/Passive-v0", tmp_path / "x", episodes=2, episode_len=2, workers=0)
    with pytest.raises(ValueError, match="env_id must be a vim_world env.*'CartPole-v1'"):
        collect("CartPole-v1", tmp_path / "x", episodes=2, episode_len=2)
    with pytest.raises(ValueError, match="unknown collection policy 'greedy'"):
        collect("VimWorld/Passive-v0", tmp_path / "x", episodes=2, episode_len=2, policy="greedy")
    assert not (tmp_path / "x").exists()


def test_malformed_meta_is_named(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    meta = json.loads((copy / "meta.json").read_text())
    del meta["shards"][1]["sha256"]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="shards\\[1\\] lacks a dict 'sha256'"):
        open_dataset(copy)
    (copy / "meta.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="format_version"):
        open_dataset(copy)


def test_training_windows_never_cross_an_episode_end(tmp_path):
    p = collect("VimWorld/Steer-v0", tmp_path / "s", episodes=16, episode_len=70, seed=1, num_envs=8,
                env_kwargs={"obs_size": 32})  # fmt: skip
    loader = SequenceLoader(open_dataset(p), batch_size=16, seq_len=20, mode="state", seed=0)
    for i in range(20):
        b = loader.batch_at(i)
        # inside one episode the agent moves at most one drift step (0.03) per step: no reset jumps
        agent = b.states[:, :, 1, :2]
        assert (agent[:, 1:] - agent[:, :-1]).norm(dim=-1).max() <= 0.031


class Always:
    """An agent policy: action ``a`` in every world."""

    def __init__(self, a: int) -> None:
        self.a, self.resets = a, 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, states: np.ndarray) -> np.ndarray:
        assert states.ndim == 3 and states.shape[-1] == len(STATE_FEATURES)  # (N, K, S) state observations
        return np.full(len(states), self.a)


def test_an_agent_collects_and_merge_keeps_every_episode(tmp_path):
    opts = dict(episode_len=5, env_kwargs={"obs_size": 32})
    random = collect("VimWorld/Steer-v0", tmp_path / "r", episodes=4, num_envs=4, seed=0, **opts)
    agent = Always(3)
    planned = collect("VimWorld/Steer-v0", tmp_path / "a", episodes=3, num_envs=2, seed=9, policy=agent, **opts)
    assert agent.resets == 2  # once per shard
    shard = open_dataset(planned).load_shard(0)
    assert open_dataset(planned).meta["policy"] == "Always" and np.all(shard["actions"].argmax(-1) == 3)

    merged = merge([random, planned], tmp_path / "m")
    ds = open_dataset(merged)  # verifies every file against its hash
    assert ds.meta["episodes"] == 7 and ds.meta["policy"] == "random+Always"
    assert [s["path"] for s in ds.meta["sources"]] == [str(random), str(planned)]
    sources = [open_dataset(random).load_shard(0)] + [open_dataset(planned).load_shard(i) for i in range(2)]
    for i, source in enumerate(sources):
        for name, array in source.items():
            np.testing.assert_array_equal(ds.load_shard(i)[name], array)
    with pytest.raises(FileExistsError, match="exists"):
        merge([random, planned], tmp_path / "m")


def test_merge_and_agent_collection_reject_what_does_not_fit(tmp_path, small):
    steer = collect(
        "VimWorld/Steer-v0", tmp_path / "s", episodes=2, episode_len=8, num_envs=2, env_kwargs={"obs_size": 32}
    )
    with pytest.raises(ValueError, match="env_id is 'VimWorld/Steer-v0', expected 'VimWorld/Passive-v0'"):
        merge([small, steer], tmp_path / "x")
    with pytest.raises(ValueError, match="non-empty list"):
        merge([], tmp_path / "x")
    with pytest.raises(ValueError, match="workers must be 1, got 2"):
        collect("VimWorld/Steer-v0", tmp_path / "x", episodes=2, episode_len=2, policy=Always(0), workers=2)
    with pytest.raises(TypeError, match="act\\(\\) and reset\\(\\)"):
        collect("VimWorld/Steer-v0", tmp_path / "x", episodes=2, episode_len=2, policy=42)
    assert not (tmp_path / "x").exists()


def test_collect_once_reuses_a_sound_data_set_and_recollects_a_corrupted_one(tmp_path):
    from vim_world.data import collect_once

    kw = dict(episodes=4, episode_len=5, num_envs=2, seed=3, env_kwargs={"obs_mode": "state"})
    path = collect_once("VimWorld/Passive-v1", tmp_path / "d", **kw)
    states = path / "shard_00001" / "states.npy"
    stamp = states.stat().st_mtime_ns
    assert collect_once("VimWorld/Passive-v1", path, **kw) == path and states.stat().st_mtime_ns == stamp
    original = states.read_bytes()
    states.write_bytes(original[: len(original) // 2])
    collect_once("VimWorld/Passive-v1", path, **kw)
    assert states.read_bytes() == original  # collected again, the same bytes under the same seed
    open_dataset(path)


def test_collect_once_recollects_a_data_set_of_other_options_and_names_them(tmp_path):
    from vim_world.data import collect_once

    kw = dict(episodes=2, episode_len=3, num_envs=2, seed=3, env_kwargs={"obs_mode": "state"})
    path = collect_once("VimWorld/Passive-v1", tmp_path / "d", **kw)
    for change, expected in (
        ({"episodes": 4}, "episodes: stored 2, asked 4"),
        ({"seed": 5}, "seed: stored 3, asked 5"),
        ({"env_kwargs": {"obs_mode": "state", "switch_prob": 0.0}}, "env_kwargs: stored"),
        ({"policy": "random"}, "policy: stored 'noop', asked 'random'"),
    ):
        with pytest.warns(UserWarning, match=expected):
            collect_once("VimWorld/Passive-v1", path, **{**kw, **change})
        meta = open_dataset(path).meta
        assert all(meta[k] == (v if k != "env_kwargs" else {**v, "masks": False}) for k, v in change.items())
    # Once the options match again, the data set is reused: no warning, no rewrite.
    collect_once("VimWorld/Passive-v1", path, **kw | {"policy": "random"})
    stamp = (path / "meta.json").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert collect_once("VimWorld/Passive-v1", path, **kw | {"policy": "random", "workers": 2}) == path
    assert (path / "meta.json").stat().st_mtime_ns == stamp
