"""The public face: ``import vim_world`` exports, laziness, py.typed, numpy inputs to Imagination."""

import importlib.resources
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import vim_world
from vim_world.imagination import Imagination, observations_to_tensor
from vim_world.model import VIM, preset

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_keeps_the_layering():
    """``import vim_world`` loads neither torch nor the agents (they load on first use)."""
    code = "import sys, vim_world; print(sorted(m for m in ('torch', 'vim_world.agents', 'vim_world.model') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_exported_name_resolves():
    expected = {"VIM", "VIMConfig", "Imagination", "Intervention", "CEM", "MPPI", "RandomShooting", "MPCAgent",
                "collect", "open_dataset", "TrainConfig", "EvalConfig"}  # fmt: skip
    assert expected <= set(vim_world.__all__)
    for name in vim_world.__all__:
        assert getattr(vim_world, name) is not None, name
    from vim_world.agents import CEM

    from vim_world.imagination import Imagination as Im

    assert vim_world.CEM is CEM and vim_world.Imagination is Im
    assert set(vim_world.__all__) <= set(dir(vim_world))


def test_train_and_evaluate_stay_modules():
    """No package attribute shadows a submodule: ``vim_world.train`` is the module, whose ``train``
    is the function."""
    import vim_world.evaluate
    import vim_world.train
    from vim_world.train_config import TrainConfig

    assert callable(vim_world.train.train) and callable(vim_world.evaluate.evaluate)
    assert vim_world.TrainConfig is TrainConfig


def test_unknown_name_is_an_attribute_error():
    try:
        vim_world.Nope  # noqa: B018
    except AttributeError as e:
        assert "Nope" in str(e)
    else:
        raise AssertionError("vim_world.Nope resolved")


def test_py_typed_is_shipped():
    assert (importlib.resources.files("vim_world") / "py.typed").is_file()
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in setuptools["package-data"]["vim_world"]


def test_testing_module_imports_on_a_plain_install():
    """vim_world.testing needs Hypothesis, so Hypothesis is a runtime dependency, not a test extra."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "hypothesis" for d in deps)
    import vim_world.testing  # noqa: F401


def test_imagination_takes_numpy_state_observations():
    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-state", num_slots=4, state_dim=13, action_dim=5, reward_head=True)).eval())
    obs, _ = gym.make("VimWorld/Steer-v0", obs_mode="state").reset(seed=0)  # numpy (K, S)
    actions = np.eye(5, dtype=np.float32)[np.zeros((1, 6), np.int64)]  # (B, T, A) numpy
    with torch.no_grad():
        from_numpy = im.rollout(obs[None, None], actions, n_samples=2, seed=0)
        from_torch = im.rollout(torch.as_tensor(obs)[None, None], torch.as_tensor(actions), n_samples=2, seed=0)
    assert torch.equal(from_numpy.z, from_torch.z) and torch.equal(from_numpy.rewards, from_torch.rewards)


def test_imagination_takes_numpy_frames():
    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-pixels")).eval())
    frames = np.stack(
        [gym.make("VimWorld/Passive-v0", obs_size=32).reset(seed=s)[0] for s in range(2)]
    )  # (2, 32, 32, 3)
    with torch.no_grad():
        a = im.encode(frames[:, None])
        b = im.encode(observations_to_tensor(frames, im.config)[:, None])
    assert torch.equal(a.z, b.z) and torch.equal(a.c, b.c)
