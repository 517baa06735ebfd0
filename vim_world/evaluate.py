"""Evaluation: prediction quality of VIM and baselines over a horizon, mechanism discovery, and
composition out of distribution; writes ``metrics.json`` and figures.

Prediction: every model observes ``context`` frames and samples ``n_samples`` futures of
``horizon`` steps; per-step MSE (and PSNR, SSIM for pixels) is reported as the mean over samples
and the best of N. Discovery: VIM's inferred module per object-step against the true mechanism,
after Hungarian matching (slots matched to true objects by mask IoU in pixel mode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vim_world.data import SequenceLoader, open_dataset, split_shards
from vim_world.envs import MECHANISM_NAMES
from vim_world.figures import strip, timeline, to_frames
from vim_world.metrics import discovery_scores, hungarian_accuracy, match_slots, per_step_mse, psnr, ssim
from vim_world.report import curve_png, image, metrics_table, write_report
from vim_world.train import load_model, prepare, resolve_device, uses_actions


@dataclass
class EvalConfig:
    """Attributes: runs: model name -> checkpoint or run directory; splits: split name -> data
    set (the first split is the reference for ratios; its held-out shards are used)."""

    runs: dict[str, str]
    splits: dict[str, str]
    out: str
    context: int = 5
    horizon: int = 10
    n_samples: int = 10
    batch_size: int = 32
    max_batches: int = 4
    seed: int = 0
    device: str = "auto"


@dataclass
class Evaluation:
    """Attributes: metrics (also in ``metrics.json``), report sections (heading, HTML), report path."""

    metrics: dict[str, Any]
    sections: list[tuple[str, str]]
    report: Path


@torch.no_grad()
def evaluate(cfg: EvalConfig) -> Evaluation:
    """Evaluate every run on every split; write ``metrics.json`` and ``report.html`` in ``cfg.out``."""
    device = resolve_device(cfg.device)
    loaded = {name: load_model(path, cfg.device) for name, path in cfg.runs.items()}
    models = {name: model for name, (model, _) in loaded.items()}
    # The reference split is scored on the shards the (first) run held out of training.
    holdout = next(iter(loaded.values()))[1]["train_config"]["holdout"]
    mode = next(iter(models.values())).config.input_mode
    seq_len = cfg.context + cfg.horizon
    results: dict[str, Any] = {"config": vars(cfg).copy(), "splits": {}}
    figures: list[tuple[str, str]] = []
    reference = next(iter(cfg.splits))
    for split, path in cfg.splits.items():
        dataset = open_dataset(path)
        shards = split_shards(dataset, holdout)[1] if split == reference and holdout > 0 else None
        loader = SequenceLoader(dataset, batch_size=cfg.batch_size, seq_len=seq_len, mode=mode, seed=cfg.seed + 1, shard_indices=shards, device=device)
        with_actions = uses_actions(dataset)
        batches = [prepare(loader.batch_at(i), with_actions) for i in range(cfg.max_batches)]
        split_result: dict[str, Any] = {"data": str(path), "sequences": len(batches) * cfg.batch_size, "prediction": {}}
        figures.append((f"{split}: sequence 0, truth and sample 0 of each model", image(_prediction_strip(models, batches[0], cfg))))
        for name, model in models.items():
            split_result["prediction"][name] = _prediction(model, batches, cfg, device)
            if hasattr(model, "observe"):
                pred, true = _selections(model, batches)
                split_result.setdefault("discovery", {})[name] = discovery_scores(pred, true)
                if name == "vim":
                    figures.append((f"{split}: {name}'s sample 0 object by object (sequence 0)", image(_decomposition_strip(model, batches[0], cfg))))
                    _, mapping = hungarian_accuracy(pred, true)
                    figures.append((f"{split}: module selections of {name} (sequence 0)", image(timeline(pred[0], true[0], mapping, list(MECHANISM_NAMES)))))
        results["splits"][split] = split_result
    results["ratios"] = _ratios(results, reference)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=1))
    curves = "".join(image(curve_png(results, split, key)) for split in results["splits"] for key in ("mse_best", "mse_mean"))
    sections = [("Metrics", metrics_table(results)), ("Prediction error over the horizon", curves)]
    sections += [(title, body) for title, body in figures]
    sections.append(("Composition (ratio to the reference split)", f"<pre>{json.dumps(results['ratios'], indent=1)}</pre>"))
    report = write_report(out / "report.html", "vim_world evaluation", sections)
    return Evaluation(results, sections, report)


def _prediction_strip(models, batch, cfg: EvalConfig) -> bytes:
    """Truth over the horizon, then sample 0 of every model, for the first sequence."""
    one = batch.slice_batch(0, 1).slice_time(0, cfg.context + cfg.horizon)
    rows = {"truth": to_frames(one.obs[0, cfg.context : cfg.context + cfg.horizon])}
    for name, model in models.items():
        gen = torch.Generator(device=one.obs.device).manual_seed(cfg.seed)
        rows[name] = to_frames(model.predict(one, cfg.context, cfg.horizon, 1, generator=gen).obs[0, 0])
    return strip(rows)


def _decomposition_strip(model, batch, cfg: EvalConfig) -> bytes:
    """A VIM's first sampled future of the first sequence, composite then one row per object
    slot: each slot's alpha-masked rendering (pixels) or each object drawn alone (states)."""
    one = batch.slice_batch(0, 1).slice_time(0, cfg.context + cfg.horizon)
    gen = torch.Generator(device=one.obs.device).manual_seed(cfg.seed)
    z = model.predict(one, cfg.context, cfg.horizon, 1, generator=gen).z[0, 0]  # (T, K, D)
    decoded = model.decode(z)
    rows = {"composite": to_frames(decoded.obs)}
    for k in range(z.shape[1]):
        if decoded.masks is not None:
            rows[f"slot {k}"] = to_frames(decoded.rgb[:, k] * decoded.masks[:, k, None])
        else:
            rows[f"object {k}"] = to_frames(decoded.obs[:, k:k + 1])
    return strip(rows)


def _prediction(model, batches, cfg: EvalConfig, device) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    mse_all, ssim_all, object_mse, mechanisms = [], [], [], []
    for batch in batches:
        pred = model.predict(batch, cfg.context, cfg.horizon, cfg.n_samples, generator=gen).obs.float()
        target = batch.obs[:, cfg.context : cfg.context + cfg.horizon].float()
        mse_all.append(per_step_mse(pred, target).cpu())
        if batch.obs.dim() == 5:
            ssim_all.append(ssim(pred.clamp(0, 1), target[:, None].expand_as(pred)).cpu())
        elif batch.mechanism is not None:  # states: each object's error, by its mechanism at the end of the context
            object_mse.append((pred - target[:, None]).pow(2).mean((1, 2, 4)).cpu())  # (B, K)
            mechanisms.append(batch.mechanism[:, cfg.context - 1].cpu())
    mse = torch.cat(mse_all)  # (B, N, H)
    out = {
        "mse_mean": mse.mean((0, 1)).tolist(),
        "mse_best": mse.min(1).values.mean(0).tolist(),
        "psnr_mean": psnr(mse).mean((0, 1)).tolist(),
        "psnr_best": psnr(mse).max(1).values.mean(0).tolist(),
    }
    if ssim_all:
        s = torch.cat(ssim_all)
        out["ssim_mean"], out["ssim_best"] = s.mean((0, 1)).tolist(), s.max(1).values.mean(0).tolist()
    if object_mse:
        errors, ids = torch.cat(object_mse).flatten(), torch.cat(mechanisms).flatten()
        out["mse_mean_by_mechanism"] = {MECHANISM_NAMES[int(m)]: float(errors[ids == m].mean())
                                        for m in torch.unique(ids)}
    out["mse_mean_avg"] = float(np.mean(out["mse_mean"]))
    out["mse_best_avg"] = float(np.mean(out["mse_best"]))
    return out


def _selections(model, batches) -> tuple[np.ndarray, np.ndarray]:
    """Inferred modules and true mechanisms, ``(B, T - 1, K)`` each, slots matched to objects."""
    preds, trues = [], []
    for batch in batches:
        post = model.observe(batch)
        sel = post.selections[:, 1:]  # (B, T-1, Ks)
        true = batch.mechanism[:, 1:]  # (B, T-1, K)
        if post.masks is not None and batch.masks is not None:
            slot = match_slots(post.masks, batch.masks).to(sel.device)  # (B, K)
            sel = torch.gather(sel, 2, slot[:, None, :].expand(-1, sel.shape[1], -1))
        preds.append(sel.cpu().numpy())
        trues.append(true.cpu().numpy())
    return np.concatenate(preds), np.concatenate(trues)


def _ratios(results: dict[str, Any], reference: str) -> dict[str, Any]:
    """Each split's average MSE (best-of-N), mean MSE per mechanism (state mode) and discovery
    accuracy as ratios to the reference split."""
    ref = results["splits"][reference]
    ratios: dict[str, Any] = {}
    for split, res in results["splits"].items():
        if split == reference:
            continue
        ratios[split] = {
            name: {"mse_best": pred["mse_best_avg"] / max(ref["prediction"][name]["mse_best_avg"], 1e-12)}
            for name, pred in res["prediction"].items()
        }
        for name, pred in res["prediction"].items():
            ref_by = ref["prediction"][name].get("mse_mean_by_mechanism", {})
            by = {m: v / max(ref_by[m], 1e-12) for m, v in pred.get("mse_mean_by_mechanism", {}).items() if m in ref_by}
            if by:  # the same mechanisms, on other (kind, mechanism) pairs: composition without the mix
                ratios[split][name]["mse_mean_by_mechanism"] = by
        for name, disc in res.get("discovery", {}).items():
            ratios[split][name]["accuracy"] = disc["accuracy"] / max(ref["discovery"][name]["accuracy"], 1e-12)
    return ratios
