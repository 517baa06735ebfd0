"""The pixel path end to end on a tiny budget: collect with masks, train VIM on frames, evaluate
(prediction metrics, slot-to-object matching by mask overlap, discovery scores, report)."""

from __future__ import annotations

import json
import math

import pytest

import vim_world  # noqa: F401
from vim_world.data import collect
from vim_world.evaluate import EvalConfig, evaluate
from vim_world.train import TrainConfig, load_model, train


@pytest.mark.slow
def test_pixel_vim_collect_train_evaluate(tmp_path):
    data = collect("VimWorld/Passive-v0", tmp_path / "d", episodes=16, episode_len=8, seed=0, num_envs=8,
                   env_kwargs={"obs_size": 32, "num_objects": 2}, masks=True)  # fmt: skip
    runs = {}
    for name in ("vim", "copy_last"):
        cfg = TrainConfig(data=str(data), out=str(tmp_path / name), model=name, mode="pixels", steps=3,
                          batch_size=4, seq_len=4, progress=False, device="cpu", holdout=0.5,
                          overrides={"hidden": 16, "latent_dim": 8})  # fmt: skip
        runs[name] = str(train(cfg).out)
    result = evaluate(EvalConfig(runs=runs, splits={"in": str(data), "again": str(data)}, out=str(tmp_path / "eval"),
                                 context=2, horizon=3, n_samples=2, batch_size=4, max_batches=1, device="cpu"))  # fmt: skip
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    pred = metrics["splits"]["in"]["prediction"]
    for name in runs:
        assert len(pred[name]["mse_best"]) == 3 and len(pred[name]["ssim_mean"]) == 3
        assert all(b <= m * (1 + 1e-6) for b, m in zip(pred[name]["mse_best"], pred[name]["mse_mean"]))
        assert all(math.isfinite(v) for v in pred[name]["psnr_mean"])
    disc = metrics["splits"]["in"]["discovery"]["vim"]
    n = disc["object_steps"]
    assert n == 4 * (2 + 3 - 1) * 2  # B x (T-1) x objects
    # A one-to-one matching counts whole object-steps, and the best of the max(M, 6) disjoint
    # "diagonal" matchings of the confusion matrix gets at least n / max(M, 6) of them.
    hits = disc["accuracy"] * n
    assert hits == pytest.approx(round(hits), abs=1e-9)
    assert hits >= n / max(load_model(runs["vim"])[0].config.num_modules, 6) - 1e-9
    assert set(metrics["ratios"]["again"]) == set(runs)
    again = metrics["splits"]["again"]["discovery"]["vim"]["accuracy"]
    assert metrics["ratios"]["again"]["vim"]["accuracy"] == pytest.approx(again / disc["accuracy"])
    assert result.report.is_file() and "module selections" in result.report.read_text()


def test_cli_collect_train_imagine(tmp_path):
    from vim_world.cli import main

    data, run, png = tmp_path / "d", tmp_path / "r", tmp_path / "im.png"
    assert main(["collect", "VimWorld/Passive-v0", "--out", str(data), "--episodes", "8", "--episode-len", "16",
                 "--num-envs", "8", "--env-kwargs", '{"obs_size": 32}']) == 0  # fmt: skip
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "2", "--batch-size", "4",
                 "--seq-len", "4", "--device", "cpu", "--holdout", "0", "--no-progress"]) == 0  # fmt: skip
    assert main(["imagine", "--run", str(run), "--data", str(data), "--out", str(png), "--horizon", "4",
                 "--n-samples", "2", "--device", "cpu"]) == 0  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["imagine", "--run", str(tmp_path / "none"), "--data", str(data), "--out", str(png)]) == 2


@pytest.mark.slow
def test_pixel_models_on_more_objects_than_in_training(tmp_path):
    """A cued pixel VIM scores a split with one object more (one slot more, the same weights),
    the frame-level VRNN and copy-last too; a VIM with one learnt start per slot is skipped,
    with the reason in metrics.json."""
    kw = dict(episodes=8, episode_len=8, num_envs=4, masks=True)
    two = collect("VimWorld/Passive-v1", tmp_path / "two", seed=0, env_kwargs={"obs_size": 32, "num_objects": 2}, **kw)
    three = collect("VimWorld/Passive-v1", tmp_path / "three", seed=1, env_kwargs={"obs_size": 32, "num_objects": 3},
                    **kw)  # fmt: skip
    runs = {}
    for name, model, extra in (("cued", "vim", {"slot_cues": True}), ("learnt", "vim", {}), ("vrnn", "vrnn", {})):
        cfg = TrainConfig(data=str(two), out=str(tmp_path / name), model=model, mode="pixels", steps=2, batch_size=4,
                          seq_len=4, progress=False, device="cpu", holdout=0.5,
                          overrides={"hidden": 16, "latent_dim": 8, **extra})  # fmt: skip
        runs[name] = str(train(cfg).out)
    evaluate(EvalConfig(runs=runs, splits={"in": str(two), "more": str(three)}, out=str(tmp_path / "eval"), context=2,
                        horizon=2, n_samples=2, batch_size=4, max_batches=1, device="cpu", progress=False))  # fmt: skip
    more = json.loads((tmp_path / "eval" / "metrics.json").read_text())["splits"]["more"]
    assert more["num_objects"] == 3
    assert set(more["prediction"]) == {"cued", "vrnn"} and "cued" in more["discovery"]
    assert (
        "its 3 slots are fixed" in more["skipped"]["learnt"]
        and "3 objects, the reference 2" in more["skipped"]["learnt"]
    )
