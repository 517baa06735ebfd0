"""Probes, every bad input named: malformed data sets (even with matching hashes), state-only
data in pixel mode, non-finite imagination inputs and configs, bad interventions, bad devices,
unknown env options, a step after termination. Python raises ValueError/TypeError; the CLI exits
2 with one line on stderr."""

from __future__ import annotations

import json
import math
import shutil
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import vim_world  # noqa: F401
from vim_world.cli import main
from vim_world.data import DatasetError, SequenceLoader, collect, open_dataset
from vim_world.devices import resolve_device
from vim_world.files import sha256
from vim_world.imagination import HOLD, Imagination, Intervention
from vim_world.model import VIM, VIMConfig
from vim_world.train import TrainConfig, train

TINY = dict(episodes=4, episode_len=6, num_envs=4, env_kwargs={"obs_size": 32})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return collect("VimWorld/Passive-v0", tmp_path_factory.mktemp("inputs") / "d", **TINY)


def _one_line_error(capsys, argv: list[str], expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def _tamper(src, dst, name: str, array: np.ndarray):
    """A copy of data set ``src`` whose shard 0 ``name.npy`` is ``array``, with its hash updated."""
    shutil.copytree(src, dst)
    f = dst / "shard_00000" / f"{name}.npy"
    np.save(f, array)
    meta = json.loads((dst / "meta.json").read_text())
    meta["shards"][0]["sha256"][name] = sha256(f)
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


@pytest.mark.parametrize("name,change,match", [
    ("states", lambda a: a[:, :, :2], r"(states|mechanism).npy: shape .*objects"),  # half the objects
    ("mechanism", lambda a: a.astype(np.float32), r"mechanism.npy: dtype float32, expected int64"),  # float labels
    ("states", lambda a: a[:, :3], r"states.npy: shape"),  # fewer steps than episode_len
    ("actions", lambda a: a[..., :1], r"actions.npy: shape"),
    ("pixels", lambda a: a[..., 0], r"pixels.npy: shape"),
    ("valid", lambda a: a[:2], r"valid.npy: shape"),
])  # fmt: skip
def test_malformed_arrays_with_matching_hashes_are_named(dataset, tmp_path, name, change, match):
    bad = _tamper(dataset, tmp_path / "bad", name, change(np.load(dataset / "shard_00000" / f"{name}.npy")))
    with pytest.raises(DatasetError, match=match):
        open_dataset(bad)


def test_shard_paths_must_stay_inside_the_data_set(dataset, tmp_path):
    bad = shutil.copytree(dataset, tmp_path / "bad")
    meta = json.loads((bad / "meta.json").read_text())
    for name in ("../d", "/etc", "a/b", ".."):
        meta["shards"][0]["name"] = name
        (bad / "meta.json").write_text(json.dumps(meta))
        with pytest.raises(DatasetError, match="not a path leaving it"):
            open_dataset(bad)


def test_pixel_mode_on_a_state_only_data_set_is_named(tmp_path, capsys):
    data = collect("VimWorld/Passive-v0", tmp_path / "s", **{**TINY, "env_kwargs": {"obs_mode": "state"}})
    assert not (data / "shard_00000" / "pixels.npy").exists()
    with pytest.raises(DatasetError, match=r"has no frames; collected with obs_mode='state'"):
        SequenceLoader(open_dataset(data), batch_size=2, seq_len=3, mode="pixels")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "r"), mode="pixels", steps=1, batch_size=2, seq_len=3,
                      device="cpu", progress=False)  # fmt: skip
    with pytest.raises(DatasetError, match="has no frames"):
        train(cfg)
    _one_line_error(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--mode", "pixels", "--device", "cpu"],
                    "has no frames; collected with obs_mode='state'")  # fmt: skip


@pytest.fixture(scope="module")
def imagination():
    torch.manual_seed(0)
    cfg = VIMConfig(state_dim=4, num_slots=2, latent_dim=3, num_modules=2, hidden=8, static_features=(3,))
    return Imagination(VIM(cfg))


@pytest.mark.parametrize("where", ["first step", "last step", "static feature"])
def test_non_finite_contexts_are_named(imagination, where):
    obs = torch.zeros(1, 3, 2, 4)
    obs[0, {"first step": 0, "last step": -1, "static feature": 1}[where], 0, 3 if where == "static feature" else 0] = (
        math.nan
    )
    with pytest.raises(ValueError, match="context observations holds 1 non-finite"):
        imagination.rollout(obs, horizon=2)
    obs[obs.isnan()] = math.inf
    with pytest.raises(ValueError, match="non-finite"):
        imagination.rollout(obs, horizon=2)
    assert imagination.rollout(torch.zeros(1, 3, 2, 4), horizon=2, seed=0).obs.isfinite().all()  # a valid call works


def test_non_finite_actions_are_named():
    torch.manual_seed(0)
    im = Imagination(
        VIM(VIMConfig(state_dim=4, num_slots=2, latent_dim=3, num_modules=2, hidden=8, action_dim=2, reward_head=True))
    )
    actions = torch.zeros(1, 3, 2)
    actions[0, 1, 0] = math.nan
    with pytest.raises(ValueError, match="actions holds 1 non-finite"):
        im.rollout(torch.zeros(1, 1, 2, 4), actions)
    with pytest.raises(ValueError, match="context actions holds"):
        im.rollout(torch.zeros(1, 2, 2, 4), torch.zeros(1, 3, 2), context_actions=actions[:, 1:2])


@pytest.mark.parametrize(
    "field", ["gumbel_tau", "pixel_sigma", "state_sigma", "anneal_temperature", "min_log_std", "free_bits"]
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_config_fields_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field}={value} \\(expected a finite number\\)"):
        VIMConfig(**{field: value})


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(obj=True, module=0), TypeError, "obj must be an int, got bool"),
    (dict(obj=0, module=0.5), TypeError, "module must be an int, got float"),
    (dict(obj=0, module=np.float32(1)), TypeError, "module must be an int"),
    (dict(obj=-1, module=0), ValueError, "obj must be an object index"),
    (dict(obj=0, module=-3), ValueError, "HOLD"),
    (dict(obj=0, module=0, start=3, stop=1), ValueError, "start <= stop"),
    (dict(obj=0, module=0, stop="end"), TypeError, "stop must be an int"),
])  # fmt: skip
def test_bad_interventions_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        Intervention(**kwargs)


def test_valid_interventions_are_accepted(imagination):
    ivs = [Intervention(0, 1), Intervention(np.int64(1), HOLD, 0, 2)]
    out = imagination.rollout(torch.zeros(1, 2, 2, 4), horizon=2, interventions=ivs, seed=0)
    assert (out.selections[..., 0] == 1).all()
    with pytest.raises(TypeError, match="Intervention objects"):
        imagination.rollout(torch.zeros(1, 2, 2, 4), horizon=2, interventions=[(0, 1)])


@pytest.mark.parametrize("device", ["banana", "tpu", "cuda:x", "cuda:99", "", "gpu"])
def test_bad_devices_are_named_with_the_available_ones(device, dataset, tmp_path, capsys):
    with pytest.raises(ValueError, match="available") as info:
        resolve_device(device)
    assert repr(device) in str(info.value) and "'cpu'" in str(info.value)
    out = str(tmp_path / "o")
    for argv in (["train", "--data", str(dataset), "--out", out], ["imagine", "--run", out, "--data", str(dataset), "--out", str(tmp_path / "x.png")],
                 ["eval", "--run", f"a={out}", "--split", f"s={dataset}", "--out", out], ["plan", "--out", out], ["demo", "--out", out]):  # fmt: skip
        _one_line_error(capsys, [*argv, "--device", device], "available here")
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_unknown_env_options_are_listed_with_a_close_match(tmp_path, capsys):
    with pytest.raises(
        TypeError, match=r"'num_object' \(did you mean 'num_objects'\?\); valid options: \[.*'obs_size'"
    ):
        gym.make("VimWorld/Passive-v0", num_object=3)
    with pytest.raises(TypeError, match="'spam'; valid options"):
        gym.make_vec("VimWorld/Passive-v0", num_envs=2, spam=1)
    _one_line_error(capsys, ["collect", "VimWorld/Passive-v0", "--out", str(tmp_path / "d"), "--env-kwargs", '{"obs_sise": 32}'],
                    "did you mean 'obs_size'")  # fmt: skip
    assert not (tmp_path / "d").exists()


def test_stepping_a_terminated_env_warns():
    env = gym.make("VimWorld/Steer-v0", obs_mode="state", disable_env_checker=True).unwrapped
    env.reset(seed=3)
    for i in range(200):  # this seed and action sequence reach the goal (terminated) within 200 steps
        *_, terminated, _, _ = env.step(int(np.random.default_rng(3000 + i).integers(5)))
        if terminated:
            break
    assert terminated
    with pytest.warns(UserWarning, match="after the episode terminated"):
        env.step(0)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.step(0)  # after reset: no warning
