"""Probes, a run's identity is its content: resume compares the data set's content (not the
path's spelling), allows ``lr``/``grad_clip`` changes only when asked, refuses fewer steps, and
the divergence advice names real flags."""

from __future__ import annotations

import pytest

import vim_world  # noqa: F401
from vim_world.cli import build_parser, main
from vim_world.data import collect
from vim_world.train import TrainConfig, TrainingDiverged, train

TINY = dict(episodes=4, episode_len=6, num_envs=4, env_kwargs={"obs_size": 32})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return collect("VimWorld/Passive-v0", root / "a", seed=0, **TINY), collect(
        "VimWorld/Passive-v0", root / "b", seed=1, **TINY
    )


def _cfg(data, out, steps=2, **kw) -> TrainConfig:
    opts = dict(data=str(data), out=str(out), steps=steps, batch_size=2, seq_len=3, checkpoint_every=1, progress=False,
                device="cpu", holdout=0.0, overrides={"hidden": 8})  # fmt: skip
    return TrainConfig(**{**opts, **kw})


def test_resume_on_other_content_at_the_same_path_is_refused(data, tmp_path):
    a, _ = data
    path = collect("VimWorld/Passive-v0", tmp_path / "d", seed=0, **TINY)
    train(_cfg(path, tmp_path / "r"))
    collect("VimWorld/Passive-v0", path, seed=5, overwrite=True, **TINY)  # other data, same path
    with pytest.raises(ValueError, match="other data"):
        train(_cfg(path, tmp_path / "r", steps=3))


def test_path_spelling_does_not_matter(data, tmp_path, monkeypatch):
    a, _ = data
    monkeypatch.chdir(tmp_path)
    train(_cfg(a, "r"))
    resumed = train(_cfg(str(a) + "/", "./r", steps=3))  # trailing slash, ./ prefix
    assert resumed.resumed_from == 2 and resumed.steps == 3


def test_a_copy_of_the_data_set_is_the_same_data(data, tmp_path):
    import shutil

    a, _ = data
    train(_cfg(a, tmp_path / "r"))
    copy = shutil.copytree(a, tmp_path / "copy")
    assert train(_cfg(copy, tmp_path / "r", steps=3)).resumed_from == 2


def test_changed_lr_needs_allow_changed_and_then_applies(data, tmp_path):
    a, _ = data
    train(_cfg(a, tmp_path / "r"))
    with pytest.raises(ValueError, match=r"--lr 0.001 -> 0.0001.*--allow-changed lr"):
        train(_cfg(a, tmp_path / "r", steps=3, lr=1e-4))
    with pytest.raises(ValueError, match="--grad-clip"):
        train(_cfg(a, tmp_path / "r", steps=3, grad_clip=1.0))
    with pytest.raises(ValueError, match="--seq-len"):  # not allowable at all
        train(_cfg(a, tmp_path / "r", steps=3, seq_len=4, allow_changed=("lr",)))
    result = train(_cfg(a, tmp_path / "r", steps=3, lr=1e-4, grad_clip=1.0, allow_changed=("lr", "grad_clip")))
    assert result.resumed_from == 2
    from vim_world.checkpoint import load_checkpoint

    ck = load_checkpoint(result.checkpoint)
    assert ck.state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--allow-changed", "lr,grad-clip"])
    assert TrainConfig.from_dict(
        {k: v for k, v in vars(args).items() if k not in ("command", "fn", "config")}
    ).allow_changed == ("lr", "grad_clip")
    with pytest.raises(ValueError, match="only"):
        _cfg(a, tmp_path / "x", allow_changed=("seq_len",))


def test_fewer_steps_than_the_run_has_is_an_error(data, tmp_path, capsys):
    a, _ = data
    train(_cfg(a, tmp_path / "r", steps=3))
    with pytest.raises(ValueError, match="already holds 3 steps"):
        train(_cfg(a, tmp_path / "r", steps=2))
    assert train(_cfg(a, tmp_path / "r", steps=3)).steps == 3  # equal: nothing to do, no error
    argv = ["train", "--data", str(a), "--out", str(tmp_path / "r"), "--steps", "1", "--batch-size", "2", "--seq-len", "3",
            "--device", "cpu", "--holdout", "0", "--checkpoint-every", "1", "--overrides", '{"hidden": 8}', "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds 3 steps" in err and err.count("\n") == 1


def test_divergence_message_names_real_flags(data, tmp_path):
    a, _ = data
    with pytest.raises(TrainingDiverged) as info:
        train(_cfg(a, tmp_path / "r", steps=3, lr=1e30))
    message = str(info.value)
    assert "--grad-clip" in message and "--allow-changed lr,grad_clip" in message and "--grad_clip" not in message
    flags = {
        o for a_ in build_parser()._subparsers._group_actions[0].choices["train"]._actions for o in a_.option_strings
    }
    assert {"--lr", "--grad-clip", "--allow-changed"} <= flags
