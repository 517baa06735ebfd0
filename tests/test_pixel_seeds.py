"""``benchmarks/pixel_seeds.py``: a pixel recipe trained and scored per seed, at several steps."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import pixel_seeds  # noqa: E402


def test_each_seed_is_trained_to_each_step_scored_and_a_rerun_reuses_the_scores(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--seeds", "0", "1", "--score-at", "4", "2", "--episodes", "8", "--batches", "1",
            "--overrides", '{"decoder_rgb": "bounded"}', "--train-overrides", '{"warmup_steps": 2}']  # fmt: skip
    summary = pixel_seeds.main(argv)
    per_step = summary["per_step"]
    assert list(per_step) == ["2", "4"]
    for step, row in per_step.items():
        for seed in (0, 1):
            scored = json.loads((tmp_path / f"seed{seed}" / f"binding_{int(step):08d}.json").read_text())
            assert row["fg_ari"][str(seed)] == scored["fg_ari"][0]
            assert row["binding_kept"][str(seed)] == scored["binding_kept"][0]
            assert row["nmi"][str(seed)] == scored["nmi"][0] and row["accuracy"][str(seed)] == scored["accuracy"][0]
        low, high = row["fg_ari_mean_ci"]
        assert low <= row["fg_ari_mean"] <= high
        assert row["bound"] == sum(v >= pixel_seeds.BOUND for v in row["fg_ari"].values())
    trained = json.loads((tmp_path / "seed1" / "train_config.json").read_text())
    assert trained["steps"] == 4 and trained["seed"] == 1 and trained["mode"] == "pixels"
    assert trained["overrides"] == {"decoder_rgb": "bounded"} and trained["warmup_steps"] == 2
    assert json.loads((tmp_path / "results.json").read_text())["per_step"] == per_step
    printed = capsys.readouterr().out
    assert "| 4 | " in printed and "discovery accuracy / NMI" in printed

    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("seed*/binding_*.json")}
    again = pixel_seeds.main(argv)
    assert again["per_step"] == per_step
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("seed*/binding_*.json")} == stamps
    with pytest.raises(ValueError, match=r"holds scores of another recipe .* use another --out"):
        pixel_seeds.main([*argv[:-4], "--overrides", '{"decoder_rgb": "linear"}', *argv[-2:]])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0", "0"], r"--seeds must be distinct"),
        (["--score-at", "0"], r"--score-at must be positive"),
        (["--train-overrides", '{"seed": 3}'], r"--train-overrides may not set \['seed'\]"),
        (["--overrides", "[1]"], r"--overrides"),
    ],
)
def test_bad_arguments_are_refused_naming_them(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        pixel_seeds.main(["--out", str(tmp_path), *argv])
    assert re.search(message, capsys.readouterr().err)


def test_scores_cached_before_discovery_leave_it_out_with_a_note(capsys):
    old = {"fg_ari": (0.8, 0.7, 0.9), "binding_kept": (0.5, 0.4, 0.6)}
    new = {**old, "accuracy": (0.3, 0.2, 0.4), "nmi": (0.1, 0.0, 0.2)}
    summary = pixel_seeds.summarise({0: {"10": old, "20": new}, 1: {"10": new, "20": new}})
    assert "nmi" not in summary["10"] and summary["10"]["fg_ari"] == {"0": 0.8, "1": 0.8}
    assert summary["20"]["nmi"] == {"0": 0.1, "1": 0.1} and summary["20"]["bound"] == 2
    assert "step 10: scores cached before discovery was scored" in capsys.readouterr().out
    assert "discovery accuracy / NMI" in pixel_seeds.table(summary)
