"""Minari 0.5.4 both ways: vim_world.minari_io.to_minari / from_minari and their CLI."""

import argparse
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("minari", reason='needs the minari extra: pip install "vim-world[minari]"')

from vim_world.data import SequenceLoader, collect, open_dataset  # noqa: E402
from vim_world.files import sha256  # noqa: E402
from vim_world.minari_io import add_cli, from_minari, to_minari  # noqa: E402


@pytest.fixture
def minari_home(tmp_path, monkeypatch):
    """Minari datasets go to a temporary directory, never to ~/.minari."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


@pytest.fixture(scope="module")
def steer_data(tmp_path_factory):
    """6 Steer episodes of 40 frames over 2 shards, with masks: long enough for some to succeed."""
    path = tmp_path_factory.mktemp("data") / "steer"
    return collect("VimWorld/Steer-v0", path, episodes=6, episode_len=40, num_envs=4, seed=1, masks=True,
                   env_kwargs={"obs_size": 32})  # fmt: skip


def _all(dataset):
    shards = [dataset.load_shard(i) for i in range(len(dataset.shard_dirs))]
    return {name: np.concatenate([s[name] for s in shards]) for name in shards[0]}


def test_round_trip_gives_equal_arrays(steer_data, minari_home, tmp_path):
    import minari

    source = open_dataset(steer_data)
    md = to_minari(steer_data, "vim_world/steer-test-v0")
    assert md.total_episodes == 6 and md.storage.jpeg_encoding is False
    episode = next(md.iterate_episodes())
    assert episode.observations["pixels"].shape == (40, 32, 32, 3)
    assert episode.actions.shape == (39, 5)
    back = open_dataset(from_minari("vim_world/steer-test-v0", tmp_path / "back"))
    a, b = _all(source), _all(back)
    assert a.keys() == b.keys() == {"pixels", "states", "mechanism", "actions", "rewards", "valid", "masks"}
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert [s["episodes"] for s in back.meta["shards"]] == [4, 2]
    for key in ("env_id", "env_kwargs", "seed", "policy", "episode_len", "action_dim"):
        assert back.meta[key] == source.meta[key], key
    # training opens it: a batch of windows comes out
    batch = SequenceLoader(back, batch_size=3, seq_len=5, mode="pixels").batch_at(0)
    assert batch.obs.shape == (3, 5, 3, 32, 32)
    assert "vim_world/steer-test-v0" in minari.list_local_datasets()


def test_terminations_follow_valid(steer_data, minari_home, tmp_path):
    """An episode that ended at step 20 (valid False after it) terminates there in Minari."""
    data = tmp_path / "ended"
    shutil.copytree(steer_data, data)
    valid = np.load(data / "shard_00000" / "valid.npy")
    valid[1, 21:] = False
    np.save(data / "shard_00000" / "valid.npy", valid)
    meta = json.loads((data / "meta.json").read_text())
    meta["shards"][0]["sha256"]["valid"] = sha256(data / "shard_00000" / "valid.npy")
    (data / "meta.json").write_text(json.dumps(meta))
    source = _all(open_dataset(data))
    md = to_minari(data, "vim_world/steer-term-v0")
    episodes = list(md.iterate_episodes())
    assert np.flatnonzero(episodes[1].terminations).tolist() == [20] and not episodes[1].truncations.any()
    for e, episode in enumerate(episodes):
        valid = source["valid"][e]
        np.testing.assert_array_equal(episode.terminations, valid[:-1] & ~valid[1:])
        assert episode.truncations[-1] == valid[-1] and episode.truncations[:-1].sum() == 0
        np.testing.assert_array_equal(episode.rewards, source["rewards"][e][:-1])


def test_existing_targets_are_not_overwritten(steer_data, minari_home, tmp_path):
    to_minari(steer_data, "vim_world/steer-twice-v0")
    with pytest.raises(FileExistsError, match="steer-twice-v0"):
        to_minari(steer_data, "vim_world/steer-twice-v0")
    to_minari(steer_data, "vim_world/steer-twice-v0", overwrite=True)
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="out"):
        from_minari("vim_world/steer-twice-v0", tmp_path / "out")


def test_bad_inputs_are_named(tmp_path, minari_home):
    with pytest.raises(ValueError, match="dataset_id"):
        to_minari(tmp_path, "")
    with pytest.raises(ValueError, match="not a vim_world data set"):
        to_minari(tmp_path, "vim_world/none-v0")


def test_cli_subcommands(steer_data, minari_home, tmp_path):
    parser = argparse.ArgumentParser(prog="vim-world")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["to-minari", str(steer_data), "vim_world/steer-cli-v0"])
    args.fn(args)
    args = parser.parse_args(["from-minari", "vim_world/steer-cli-v0", "--out", str(tmp_path / "cli")])
    args.fn(args)
    np.testing.assert_array_equal(
        _all(open_dataset(tmp_path / "cli"))["states"], _all(open_dataset(steer_data))["states"]
    )
