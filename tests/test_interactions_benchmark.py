"""``benchmarks/interactions.py``: unary and n-ary variants trained per seed and scored against each other."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import interactions  # noqa: E402


def test_each_variant_is_trained_per_seed_scored_against_unary_and_a_rerun_reuses_everything(tmp_path, capsys):
    argv = ["--work", str(tmp_path), "--seeds", "0,1", "--steps", "4", "--episodes", "16", "--eval-episodes", "8",
            "--windows", "32", "--json", str(tmp_path / "result.json")]  # fmt: skip
    result = interactions.main(argv)
    for seed in (0, 1):
        trained = json.loads((tmp_path / "runs" / f"l2_s{seed}" / "train_config.json").read_text())
        assert trained["seed"] == seed and trained["steps"] == 4 and trained["static_attributes"]
        assert trained["overrides"] == {**interactions.interaction_recipe(4), "nary": True, "nary_scores": "l2"}
        metrics = json.loads((tmp_path / "eval" / f"s{seed}_unary_dot_l2" / "metrics.json").read_text())
        for split in ("switching", "fixed"):
            for name in ("dot", "l2"):
                ratio = metrics["ratios"][split][name]["mse_best_by_mechanism_vs"]["unary"]
                row = result["per_seed"][str(seed)][split][name]
                assert row["attract"] == ratio["ratio"]["attract"] and row["flee_ci"] == ratio["ratio_ci"]["flee"]
            assert (
                result["per_seed"][str(seed)][split]["unary"]["nmi"]
                == metrics["splits"][split]["discovery"]["unary"]["nmi"]
            )
    mean = result["summary"]["switching"]["l2"]["attract"]
    values = [result["per_seed"][str(s)]["switching"]["l2"]["attract"] for s in (0, 1)]
    assert mean["mean"] == pytest.approx(np.mean(values)) and mean["ci95_t"][0] <= mean["mean"] <= mean["ci95_t"][1]
    assert "unary" not in result["summary"]["switching"]
    assert json.loads((tmp_path / "result.json").read_text())["summary"] == result["summary"]
    assert "| l2 | " in capsys.readouterr().out

    stamps = {p: p.stat().st_mtime_ns for p in [*tmp_path.glob("runs/*/checkpoints/*"), *tmp_path.glob("eval/*/*")]}
    assert interactions.main(argv)["per_seed"] == result["per_seed"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # Other options score again, on the same runs.
    again = interactions.main([*argv[:-2], "--windows", "16"])
    assert again["args"]["windows"] == 16
    assert (tmp_path / "eval" / "s0_unary_dot_l2" / "metrics.json").stat().st_mtime_ns != stamps[
        tmp_path / "eval" / "s0_unary_dot_l2" / "metrics.json"
    ]


def test_restarts_keep_each_variant_s_run_of_least_heldout_loss_and_the_world_is_scored_beside(tmp_path):
    argv = ["--work", str(tmp_path), "--seeds", "0,5", "--variants", "unary,dot", "--steps", "3", "--episodes", "192",
            "--eval-episodes", "8", "--windows", "16", "--restarts", "2", "--world-reference"]  # fmt: skip
    result = interactions.main(argv)
    for split in ("switching", "fixed"):
        world = result["per_seed"]["0"][split]["world"]
        metrics = json.loads((tmp_path / "eval" / "s0_r2_unary_dot" / "metrics.json").read_text())
        assert (
            world["attract"]
            == metrics["ratios"][split]["world"]["mse_best_by_mechanism_vs"]["unary"]["ratio"]["attract"]
        )
        assert "accuracy" not in world and "world" in result["summary"][split]
    for seed in (0, 5):
        for variant in ("unary", "dot"):
            run = tmp_path / "runs" / f"{variant}_s{seed}_r2"
            selection = json.loads((run / "restarts" / "selection.json").read_text())
            losses = {int(s): v for s, v in selection["heldout_loss"].items()}
            assert sorted(losses) == [seed, seed + 1]
            chosen = min(losses, key=losses.get)
            assert result["per_seed"][str(seed)]["chosen_seed"][variant] == chosen
            assert json.loads((run / "train_config.json").read_text())["seed"] == chosen
        assert (tmp_path / "eval" / f"s{seed}_r2_unary_dot" / "metrics.json").is_file()
    assert not (tmp_path / "runs" / "unary_s0").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0,0"], r"--seeds must be at least two distinct seeds"),
        (["--seeds", "0,x"], r"--seeds must be comma-separated integers, got '0,x'"),
        (["--variants", "unary,cosine"], r"--variants: unknown \['cosine'\]"),
        (["--variants", "dot,unary"], r"--variants must start with unary"),
        (["--steps", "0"], r"--steps must be positive, got 0"),
        (["--restarts", "1"], r"--restarts must be 0 \(off\) or >= 2 seeds to choose among, got 1"),
        (["--restarts", "3", "--seeds", "0,5,2"], r"--seeds 0 and 2 share training seeds under --restarts 3"),
        (["--env", "VimWorld/Interact-v0"], r"--env 'VimWorld/Interact-v0' must be a VimWorld env with the mechanisms"),
    ],
)
def test_bad_arguments_are_refused_naming_them(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        interactions.main(["--work", str(tmp_path), *argv])
    assert re.search(message, capsys.readouterr().err)
