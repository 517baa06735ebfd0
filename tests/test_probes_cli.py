"""Probes, the command line and the house: help and defaults on every flag, one device default,
one-line errors, train flags and type checks derived from ``TrainConfig``, lists from one
source, moved helpers still importable, the declared Python floor honest, one-way layering."""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tomllib
import typing
from dataclasses import fields
from pathlib import Path

import pytest

import vim_world  # noqa: F401
from vim_world.cli import build_parser, main
from vim_world.model import MODELS, PRESETS
from vim_world.model.config import INPUT_MODES
from vim_world.train_config import MODEL_NAMES, PRESET_SIZES, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _options(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if not isinstance(a, argparse._HelpAction)]


def test_every_flag_has_help_and_its_default_is_shown():
    for name, sub in _subcommands().items():
        text = sub.format_help()
        for action in _options(sub):
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
            if action.option_strings and action.default not in (None, argparse.SUPPRESS, False) and name != "train":
                assert "(default:" in action.help % vars(action) or "(default:" in text, (name, action.dest)
        for f in fields(TrainConfig) if name == "train" else ():
            if f.name not in ("data", "out"):
                assert "(default:" in _flag_help(sub, f.name), f.name


def _flag_help(sub: argparse.ArgumentParser, dest: str) -> str:
    return next(a.help for a in sub._actions if a.dest == dest)


def test_one_device_default_everywhere():
    defaults = {name: a.default for name, sub in _subcommands().items() for a in sub._actions if a.dest == "device"}
    assert set(defaults) >= {"eval", "imagine", "plan", "demo", "train"}
    assert {v for k, v in defaults.items() if k != "train"} == {"auto"}
    assert TrainConfig.__dataclass_fields__["device"].default == "auto"  # train's default lives in TrainConfig


def test_train_flags_are_the_train_config_fields():
    train = _subcommands()["train"]
    dests = {a.dest for a in _options(train)} - {"config"}
    assert dests == {f.name for f in fields(TrainConfig)}
    choices = {a.dest: tuple(a.choices) for a in train._actions if a.choices}
    assert choices == {"model": MODEL_NAMES, "preset": PRESET_SIZES, "mode": INPUT_MODES}


@pytest.mark.parametrize("name", [f.name for f in fields(TrainConfig)])
def test_every_field_is_type_checked_from_its_annotation(name):
    hint = typing.get_type_hints(TrainConfig)[name]
    wrong = 1.5 if hint is str else 5 if typing.get_origin(hint) is tuple else "x"
    with pytest.raises(TypeError, match=f"^{name} must be of type"):
        TrainConfig(**{"data": "d", "out": "o", name: wrong})


def test_lists_come_from_one_source():
    assert MODEL_NAMES == tuple(MODELS)
    assert {f"{size}-{mode}" for size in PRESET_SIZES for mode in INPUT_MODES} == set(PRESETS)
    from vim_world import demo

    assert set(demo.PRESETS) == set(PRESET_SIZES)
    assert "MODELS = (" not in Path(demo.__file__).read_text()


def test_cli_errors_are_one_line(tmp_path, capsys):
    for argv in (
        ["train", "--steps", "x"],
        ["train", "--overrides", "{"],
        ["collect", "Nope-v0", "--out", "x"],
        ["fly"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err, err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a vim_world data set" in err
    argv = ["eval", "--run", "vim=r", "--split", "s=d", "--out", str(tmp_path / "e"), "--batch-size", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EvalConfig.batch_size must be a positive int, got 0" in err


def test_moved_helpers_stay_importable():
    from vim_world import checkpoint, devices, loading, sizing, train
    from vim_world.data import SequenceLoader, collect, open_dataset  # noqa: F401

    assert train.load_model is checkpoint.load_model and train.resolve_device is devices.resolve_device
    assert train.prepare is sizing.prepare and train.uses_actions is loading.uses_actions


def test_python_floor_is_declared_and_honoured():
    """``requires-python`` is the floor the code is written for: tomllib (3.11) is imported
    without a fallback, so the floor is 3.11, and every module parses as 3.11 syntax."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec == ">=3.11"
    floor = (3, 11)
    assert sys.version_info >= floor
    for folder in ("vim_world", "envs", "agents"):
        for path in (ROOT / folder).rglob("*.py"):
            ast.parse(path.read_text(), filename=str(path), feature_version=floor)


def test_envs_import_no_torch_and_core_imports_no_agents():
    """The one-way layering: ``envs`` (numpy + pygame) <- ``vim_world`` core (torch) <- ``agents``.
    (The command line and the demo reach the agents inside functions, at the top of the stack.)"""
    for folder, banned in (("envs", ("torch", "vim_world.")), ("vim_world", ("vim_world.agents",))):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            nodes = ast.walk(tree) if folder == "envs" else tree.body
            for node in nodes:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    for n in names:
                        ok = folder == "envs" and n.startswith("vim_world.envs")
                        assert ok or not any(
                            n == b or n.startswith(b if b.endswith(".") else b + ".") for b in banned
                        ), f"{path.name} imports {n}"


def test_collect_and_eval_take_no_progress_as_train_does(tmp_path, capsys):
    from vim_world.cli import build_parser

    base = ["collect", "VimWorld/Passive-v1", "--episodes", "2", "--episode-len", "3", "--num-envs", "2"]
    assert main([*base, "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert "collect VimWorld/Passive-v1" not in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "shown")]) == 0
    assert "collect VimWorld/Passive-v1" in capsys.readouterr().err
    argv = ["eval", "--run", "a=r", "--split", "s=d", "--out", "e"]
    assert build_parser().parse_args([*argv, "--no-progress"]).progress is False
    assert build_parser().parse_args(argv).progress is True


def test_identify_reports_a_world_and_names_what_fails(tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = ["identify", "--mechanisms", "still,drift_up", "--worlds", "16", "--steps", "50", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("still, drift_up: NOT identifiable") and "| drift_up | " in printed
    report = json.loads(out.read_text())
    assert report["identifiable"] is False and report["regimes"] == ["drift_up"]
    assert report["single_law"][0] == 1.0 and report["state_tells"][0][0] is None
    assert main(["identify", "VimWorld/Passive-v1", "--worlds", "8", "--steps", "20"]) == 0
    assert capsys.readouterr().out.startswith("VimWorld/Passive-v1: identifiable")
    assert main(["identify"]) == 2
    assert "give an env id or --mechanisms" in capsys.readouterr().err


def test_eval_passes_its_seed_and_the_world_reference_on(tmp_path, monkeypatch):
    import vim_world.evaluate

    seen = []
    monkeypatch.setattr(vim_world.evaluate, "evaluate", seen.append)
    argv = ["eval", "--run", "a=r", "--split", "s=d", "--out", str(tmp_path / "e"), "--device", "cpu"]
    assert main([*argv, "--seed", "3", "--world-reference"]) == 0
    assert main(argv) == 0
    assert (seen[0].seed, seen[0].world_reference) == (3, True)
    assert (seen[1].seed, seen[1].world_reference) == (0, False)
