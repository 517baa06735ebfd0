"""Evaluation with intervals: every window, ``*_ci`` beside every figure, the composition gap
against an oracle, more objects than in training, and an explained, escaped report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import vim_world  # noqa: F401
from vim_world.data import collect
from vim_world.evaluate import EvalConfig, _Scores, evaluate
from vim_world.imagination import Imagination
from vim_world.train import TrainConfig, load_model, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    kw = dict(episode_len=8, num_envs=8, env_kwargs={"obs_size": 32})
    data = {
        "train": collect("VimWorld/Passive-v0", root / "train", episodes=16, seed=0, **kw),
        "all": collect(
            "VimWorld/Passive-v0",
            root / "all",
            episodes=16,
            seed=0,
            **{**kw, "env_kwargs": {"obs_size": 32, "allowed": None}},
        ),
        "held": collect("VimWorld/PassiveHeldout-v0", root / "held", episodes=8, seed=5, **kw),
        "many": collect("VimWorld/PassiveMany-v0", root / "many", episodes=8, seed=6, **kw),
    }
    runs, oracles = {}, {}
    for name in ("vim", "vrnn", "copy_last"):
        for source, into in (("train", runs), ("all", oracles)):
            cfg = TrainConfig(
                data=str(data[source]),
                out=str(root / source / name),
                model=name,
                steps=3,
                batch_size=4,
                seq_len=4,
                progress=False,
                device="cpu",
                holdout=0.5,
                overrides={"hidden": 16},
            )
            into[name] = str(train(cfg).out)
    return root, data, runs, oracles


def _evaluate(trained, out="eval", splits=("in <b>&", "held", "many"), **kw):
    root, data, runs, oracles = trained
    paths = {"in <b>&": str(data["train"]), "held": str(data["held"]), "many": str(data["many"])}
    cfg = EvalConfig(
        runs=runs,
        splits={s: paths[s] for s in splits},
        out=str(root / out),
        context=2,
        horizon=3,
        n_samples=2,
        batch_size=8,
        device="cpu",
        n_boot=200,
        oracle_runs={k: v for k, v in oracles.items() if k != "copy_last"},
        **kw,
    )
    return evaluate(cfg), json.loads((root / out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def evaluated(trained):
    return _evaluate(trained)


def _intervals(tree, path=""):
    """Check every ``key_ci`` beside a ``key`` (a figure, a list of per-step figures, or a dict
    of figures beside a dict of intervals) has ordered bounds; return how many were seen."""
    count = 0
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key.endswith("_ci") and key[:-3] in tree:
                figures = tree[key[:-3]]
                pairs = [value[k] for k in figures] if isinstance(figures, dict) else [value]
                for ci in pairs:
                    ci = np.asarray(ci, dtype=float)
                    assert ci.shape[-1] == 2 and np.all(ci[..., 0] <= ci[..., 1]), path + key
                    count += 1
            else:
                count += _intervals(value, f"{path}{key}.")
    return count


def test_every_figure_has_an_interval_and_every_window_is_scored(evaluated):
    evaluation, metrics = evaluated
    ref = metrics["splits"]["in <b>&"]
    assert ref["windows"] == 8 * 4  # the held-out half: 8 episodes x 4 window starts (T = 8, window 5)
    assert metrics["splits"]["held"]["windows"] == 8 * 4
    for name, pred in ref["prediction"].items():
        for key in ("mse_best_avg", "mse_mean_avg", "mse_best", "psnr_best"):
            assert f"{key}_ci" in pred, (name, key)
        low, high = pred["mse_best_avg_ci"]
        assert low <= pred["mse_best_avg"] <= high
    disc = ref["discovery"]["vim"]
    for key in ("accuracy", "nmi", "ari"):
        assert disc[f"{key}_ci"][0] <= disc[f"{key}_ci"][1]
    assert _intervals(metrics) > 50
    assert metrics["targets"] and all(
        {"what", "target", "value", "ci", "verdict"} <= set(t) for t in metrics["targets"]
    )


def test_per_mechanism_best_of_n_is_per_object_and_paired_between_models(evaluated):
    _, metrics = evaluated
    pred = metrics["splits"]["in <b>&"]["prediction"]
    for p in pred.values():
        assert set(p["mse_best_by_mechanism"]) == set(p["mse_mean_by_mechanism"])
        for mech, best in p["mse_best_by_mechanism"].items():
            assert best <= p["mse_mean_by_mechanism"][mech] * (1 + 1e-9)  # the best sample is no worse than the mean
    vs = metrics["ratios"]["in <b>&"]["vim"]["mse_best_by_mechanism_vs"]["copy_last"]
    for mech, ratio in vs["ratio"].items():  # the same object-steps on both sides
        expected = pred["vim"]["mse_best_by_mechanism"][mech] / pred["copy_last"]["mse_best_by_mechanism"][mech]
        assert ratio == pytest.approx(expected, rel=1e-9)
        assert vs["ratio_ci"][mech][0] <= vs["ratio_ci"][mech][1]


def test_composition_gap_is_a_paired_ratio_to_the_oracle(evaluated):
    _, metrics = evaluated
    gap = metrics["composition_gap"]["held"]
    assert set(gap) == {"vim", "vrnn"}
    for g in gap.values():
        assert g["gap"] == pytest.approx(g["model_mse_best"] / g["oracle_mse_best"], rel=1e-9)
        assert g["gap_ci"][0] <= g["gap"] <= g["gap_ci"][1]
    assert set(gap["vim"]["gap_by_mechanism"]) == set(gap["vim"]["gap_by_mechanism_ci"])
    assert "many" not in metrics["composition_gap"]  # another object count: not a question of pairs


def test_state_models_run_on_more_objects_and_the_monolithic_one_is_skipped_with_a_reason(evaluated):
    _, metrics = evaluated
    many = metrics["splits"]["many"]
    assert many["num_objects"] == 8
    assert {"vim", "copy_last"} <= set(many["prediction"]) and "vrnn" not in many["prediction"]
    assert "fixed 4 objects" in many["skipped"]["vrnn"]
    ratio = metrics["ratios"]["many"]["vim"]
    assert "mse_best_ci" in ratio and "mse_best_matched_ci" in ratio and ratio["matched_objects"] == 4
    target = next(t for t in metrics["targets"] if "8 objects" in t["what"])
    assert "groups of 4 objects" in target["what"] and target["value"] == ratio["mse_best_matched"]


def test_the_world_reference_is_scored_beside_the_runs_on_every_split(trained):
    _, metrics = _evaluate(trained, out="eval_world", world_reference=True)
    for split in ("in <b>&", "held", "many"):
        result = metrics["splits"][split]
        assert "world" not in result["skipped"] and "world" not in result.get("discovery", {})
        # the world restarted from the true state: far closer than a copy of the last step
        assert result["prediction"]["world"]["mse_best_avg"] < 0.5 * result["prediction"]["copy_last"]["mse_best_avg"]
    vs = metrics["ratios"]["held"]["world"]["mse_best_by_mechanism_vs"]["vim"]
    assert vs["ratio"] and all(low <= high for low, high in vs["ratio_ci"].values())
    assert "world" not in metrics["composition_gap"]["held"]


def test_a_split_the_world_cannot_replay_is_skipped_with_the_reason(trained, monkeypatch):
    from vim_world.world_reference import WorldSampler

    def refuse(meta):
        raise ValueError(f"no world for {meta['env_id']}")

    monkeypatch.setattr(WorldSampler, "for_dataset", staticmethod(refuse))
    _, metrics = _evaluate(trained, out="eval_no_world", splits=("in <b>&",), world_reference=True)
    split = metrics["splits"]["in <b>&"]
    assert split["skipped"]["world"] == "no world for VimWorld/Passive-v0" and "world" not in split["prediction"]


def _object_scores(rng, n: int, k: int, samples: int = 10, horizon: int = 3) -> _Scores:
    """Scores of a model that predicts every object equally well, each sample independently."""
    errors = rng.exponential(size=(n, samples, horizon, k))
    return _Scores(mse=errors.mean(-1), object_step_mse=errors)


def test_best_of_n_over_groups_of_all_objects_is_the_scene_best_of_n():
    s = _object_scores(np.random.default_rng(0), 50, 4)
    np.testing.assert_allclose(s.best_of_n_per_group(4), s.mse.min(1).mean(1), rtol=1e-12)
    with pytest.raises(ValueError, match="group size must be in \\[1, 4\\].*got 5"):
        s.best_of_n_per_group(5)


def test_matched_best_of_n_does_not_charge_a_scene_for_holding_more_objects():
    """Eight objects predicted exactly as well as four: the scene's best of N is worse (its best
    sample is closer to the average one), the best of N over groups of four is not."""
    rng = np.random.default_rng(0)
    four, eight = _object_scores(rng, 4000, 4), _object_scores(rng, 4000, 8)
    scene = eight.mse.min(1).mean() / four.mse.min(1).mean()
    matched = eight.best_of_n_per_group(4).mean() / four.best_of_n_per_group(4).mean()
    assert scene > 1.15
    assert matched == pytest.approx(1.0, abs=0.02)


def test_report_explains_with_html_tables_and_escapes_split_names(evaluated):
    evaluation, _ = evaluated
    page = evaluation.report.read_text()
    assert "in &lt;b&gt;&amp;" in page and "in <b>&" not in page
    assert "<pre>" not in page and page.count("<table>") >= 4
    for heading in ("Targets", "Prediction", "Mechanism discovery", "Composition gap", "Training curves"):
        assert f"<h2>{heading}" in page
    assert "Measured:" in page and "Interpretation:" in page


def test_window_cap_subsamples_deterministically(trained):
    _, a = _evaluate(trained, out="a", splits=("in <b>&", "held"), max_windows=10)
    _, b = _evaluate(trained, out="b", splits=("in <b>&", "held"), max_windows=10)
    assert a["splits"]["held"]["windows"] == 10
    assert a["splits"]["held"]["prediction"] == b["splits"]["held"]["prediction"]


def test_training_data_is_known_by_its_identity_wherever_it_moved(trained, monkeypatch, tmp_path):
    """A run trained on a relative path, evaluated from another directory: a copy of its data is
    scored on the held-out shards only, and another data set whole (the path no longer opens,
    but the checkpoint's data identity decides)."""
    import shutil

    _, data, _, _ = trained
    shutil.copytree(data["train"], tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data="d", out="run", model="vim", steps=2, batch_size=4, seq_len=4, progress=False,
                      device="cpu", holdout=0.5, overrides={"hidden": 16})  # fmt: skip
    train(cfg)
    (tmp_path / "elsewhere").mkdir()
    shutil.move("d", "elsewhere/copy")
    monkeypatch.chdir(tmp_path / "elsewhere")
    splits = {"own": "copy", "other": str(data["held"])}
    cfg = EvalConfig(runs={"vim": "../run"}, splits=splits, out="e", context=2, horizon=3, n_samples=2,
                     batch_size=8, device="cpu", n_boot=20)  # fmt: skip
    evaluate(cfg)
    windows = {k: v["windows"] for k, v in json.loads(Path("e/metrics.json").read_text())["splits"].items()}
    assert windows == {"own": 8 * 4, "other": 8 * 4}  # the held-out half of 16 episodes; all 8 others


def test_eval_config_rejects_bad_values():
    with pytest.raises(ValueError, match="max_windows"):
        EvalConfig(runs={"vim": "r"}, splits={"s": "d"}, out="o", max_windows=0)
    with pytest.raises(ValueError, match="oracle_runs"):
        EvalConfig(runs={"vim": "r"}, splits={"s": "d"}, out="o", oracle_runs={"vrnn": "x"})
    with pytest.raises(ValueError, match="a run is named 'world', the name of the world reference"):
        EvalConfig(runs={"world": "r"}, splits={"s": "d"}, out="o", world_reference=True)


def test_imagination_and_observe_take_more_objects_than_trained(trained):
    _, data, runs, _ = trained
    model, _ = load_model(runs["vim"], device="cpu")
    obs = torch.randn(2, 5, 8, model.config.state_dim)
    post = model.observe(obs)
    assert post.selections.shape == (2, 5, 8) and post.probs.shape[2] == 8
    out = Imagination(model).rollout(obs, horizon=3, n_samples=2, seed=0)
    assert out.obs.shape == (2, 2, 3, 8, model.config.state_dim) and out.selections.shape == (2, 2, 3, 8)
    with pytest.raises(ValueError, match=r"K >= 1, 13"):
        model.observe(torch.randn(2, 5, 8, 12))


def test_counterfactual_frames_mark_the_intervened_object():
    from vim_world.envs import STATE_FEATURES

    from vim_world.figures import HIGHLIGHT, to_frames

    states = torch.zeros(3, 2, len(STATE_FEATURES))
    states[..., STATE_FEATURES.index("x")] = torch.tensor([0.25, 0.75])
    states[..., STATE_FEATURES.index("y")] = 0.5
    states[..., STATE_FEATURES.index("size")] = 0.08
    states[..., STATE_FEATURES.index("hue_cos")] = 1.0
    states[..., STATE_FEATURES.index("is_circle")] = 1.0
    plain, marked = to_frames(states), to_frames(states, highlight=1)
    yellow = np.all(marked == HIGHLIGHT, -1)
    assert yellow.any() and not np.all(plain == HIGHLIGHT, -1).any()
    cols = np.flatnonzero(yellow.any((0, 1)))
    assert cols.min() > 32  # the box is around object 1 (right half), not object 0
    with pytest.raises(ValueError, match="highlight"):
        to_frames(states, highlight=2)


def test_evaluation_lands_in_each_runs_tensorboard(evaluated, trained):
    """Each run's ``tb/`` gets the evaluation's scalars and the reference split's first prediction
    as an image, at the checkpoint's step (beside its training curves)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, metrics = evaluated
    _, _, runs, _ = trained
    acc = EventAccumulator(str(Path(runs["vim"]) / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "eval/prediction (truth above model)" in tags["images"]
    mse = [t for t in tags["scalars"] if t.startswith("eval/held/prediction/") and "mse" in t]
    assert mse, tags["scalars"]
    assert any(t.startswith("eval/in <b>&/discovery/accuracy") for t in tags["scalars"])
    assert acc.Scalars(mse[0])[-1].step == 3  # the run's last checkpoint


def test_below_every_reads_the_intervals_as_the_targets_do():
    from vim_world.report import below_every, verdict

    assert below_every([0.90, 0.95], [[0.97, 1.0], [0.96, 1.1]]) == "met"
    assert below_every([0.90, 0.98], [[0.97, 1.0]]).startswith("undecided")
    assert below_every([0.90, 0.98], [[0.80, 0.85]]) == "not met"  # a baseline lies wholly below
    assert verdict([1.1, 1.25], 1.2).startswith("undecided") and verdict([1.0, 1.19], 1.2) == "met"
