"""Do objects bind to slots, and stay bound? Scores a trained pixel VIM against the env's masks.

    python benchmarks/pixel_binding.py RUN_DIR DATA_DIR [--batches 16]

DATA_DIR must be collected with ``--masks`` (``vim-world collect ... --masks``), at the model's
frame size. Over random 10-step windows of DATA_DIR (held-out seeds: collect it with another
``--seed`` than the training data), prints

- FG-ARI: the foreground adjusted Rand index of the posterior's slot masks per frame
  (:func:`vim_world.metrics.fg_ari`), averaged per window;
- video FG-ARI: the same over each window's pixels of all frames at once, SAVi's temporal
  figure (:func:`vim_world.metrics.video_fg_ari`);
- binding kept: the share of windows in which every object stays in one slot
  (:func:`vim_world.metrics.binding_unchanged`);
- discovery: Hungarian accuracy and NMI of the modules inferred for each object (read through the
  slot matched to it over the window, :func:`vim_world.evaluate.matched_selections`) against the
  true mechanisms, on every object-step after a window's first;
- object colour error: the squared error, per channel, between each object's mean colour in the
  frame and in the decoded posterior means (:func:`vim_world.metrics.object_colours`; objects of 3
  pixels or more), against drawing every object in the mean colour of all scored objects: do the
  slots draw objects in their colours, or as grey blobs?
- reconstruction error: the per-pixel squared error of the frames decoded from the posterior
  means (``Posterior.recon``), averaged over each window's frames: how well the model could predict
  if its dynamics were exact (set it beside ``vim-world eval``'s best-of-N MSE);

each with a 95% percentile-bootstrap interval over windows (frames of one window are correlated,
windows are not): by ``scipy.stats.bootstrap`` for the means, by
:func:`vim_world.metrics.discovery_intervals` (1000 resamples, the matching redone on each) for
discovery.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from scipy.stats import bootstrap

from vim_world.batch import Batch
from vim_world.data import SequenceLoader, open_dataset
from vim_world.evaluate import matched_selections
from vim_world.metrics import (
    binding_unchanged,
    discovery_intervals,
    discovery_scores,
    fg_ari,
    finite_row_means,
    object_colours,
    video_fg_ari,
)
from vim_world.train import load_model


def interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values (N,)`` and its 95% percentile-bootstrap interval (2000 resamples)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean()), float(values.mean())
    ci = bootstrap(
        (values,),
        np.mean,
        confidence_level=0.95,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(seed),
    ).confidence_interval
    return float(values.mean()), float(ci.low), float(ci.high)


@torch.no_grad()
def binding_scores(
    model: torch.nn.Module,
    data: str,
    *,
    batches: int = 16,
    batch_size: int = 32,
    window: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """FG-ARI and binding stability of ``model``'s posterior slot masks over ``batches x batch_size``
    random windows of ``window`` steps of the data set ``data``.

    Returns: ``fg_ari``, ``video_fg_ari``, ``binding_kept``, ``accuracy`` and ``nmi`` (discovery),
    ``colour_mse`` and ``mean_colour_mse`` (object colour error of the reconstruction, and of
    drawing every object in the mean colour) and ``recon_mse`` (per-pixel error of the decoded
    posterior means) as ``(mean, low, high)``, and the counts of windows
    (those with an FG-ARI; every window for discovery; those with an object of 3 pixels or more
    for the colour) and frames.
    """
    dataset = open_dataset(data)
    if "masks" not in dataset.meta["shards"][0]["sha256"]:
        raise ValueError(f"data set {data} has no masks; collect it with --masks")
    loader = SequenceLoader(dataset, batch_size=batch_size, seq_len=window, mode="pixels", seed=seed + 1, device=device)
    model.eval()
    window_ari, video_ari, kept, inferred, true, recon, frames = [], [], [], [], [], [], 0
    true_colours, drawn_colours = [], []  # (B, T * K, C) per batch
    for i in range(batches):
        batch = loader.batch_at(i)
        post = model.observe(Batch(obs=batch.obs, states=batch.states))
        masks = post.masks.float()  # (B, T, K, H, W)
        modules, mechanisms = matched_selections(model, batch, post)
        inferred.append(modules)
        true.append(mechanisms)
        scores = fg_ari(masks.flatten(0, 1), batch.masks.flatten(0, 1)).reshape(masks.shape[:2])
        frames += int(np.isfinite(scores).sum())
        window_ari.append(finite_row_means(scores))
        video_ari.append(video_fg_ari(masks, batch.masks))
        kept.append(binding_unchanged(masks, batch.masks))
        recon.append((post.recon - batch.obs).pow(2).mean((1, 2, 3, 4)).cpu().numpy())  # (B,)
        drawn = post.recon.flatten(0, 1)
        flat_masks = batch.masks.flatten(0, 1)
        true_colours.append(
            object_colours(batch.obs.flatten(0, 1), flat_masks).unflatten(0, masks.shape[:2]).flatten(1, 2)
        )
        drawn_colours.append(object_colours(drawn, flat_masks).unflatten(0, masks.shape[:2]).flatten(1, 2))
    window_ari = np.concatenate(window_ari)
    window_ari = window_ari[np.isfinite(window_ari)]
    video_ari = np.concatenate(video_ari)
    inferred, true = np.concatenate(inferred), np.concatenate(true)
    found, found_ci = discovery_scores(inferred, true), discovery_intervals(inferred, true, seed=seed)
    truth, drawn = (torch.cat(c).double().cpu().numpy() for c in (true_colours, drawn_colours))
    mean_colour = np.nanmean(truth.reshape(-1, truth.shape[-1]), axis=0)
    per_window = {  # mean over each window's object-steps and channels
        "colour_mse": finite_row_means(((truth - drawn) ** 2).mean(-1)),
        "mean_colour_mse": finite_row_means(((truth - mean_colour) ** 2).mean(-1)),
    }
    colour_windows = np.isfinite(per_window["colour_mse"])
    return {
        "fg_ari": interval(window_ari, seed),
        "video_fg_ari": interval(video_ari[np.isfinite(video_ari)], seed),
        "binding_kept": interval(np.concatenate(kept).astype(float), seed),
        **{k: (found[k], *found_ci[f"{k}_ci"]) for k in ("accuracy", "nmi")},
        **{k: interval(v[colour_windows], seed) for k, v in per_window.items()},
        "recon_mse": interval(np.concatenate(recon).astype(np.float64), seed),
        "windows": int(window_ari.size),
        "discovery_windows": int(inferred.shape[0]),
        "colour_windows": int(colour_windows.sum()),
        "frames": frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory or checkpoint of a pixel VIM")
    parser.add_argument("data", help="data set collected with --masks, at the model's frame size")
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window", type=int, default=10, help="steps per scored window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model, _ = load_model(args.run, args.device)
    r = binding_scores(
        model,
        args.data,
        batches=args.batches,
        batch_size=args.batch_size,
        window=args.window,
        seed=args.seed,
        device=args.device,
    )
    print("| metric | mean | 95% interval | over |")
    print("|---|---:|---|---|")
    print(
        f"| FG-ARI | {r['fg_ari'][0]:.3f} | [{r['fg_ari'][1]:.3f}, {r['fg_ari'][2]:.3f}] | "
        f"{r['windows']} windows ({r['frames']} frames) |"
    )
    print(
        f"| video FG-ARI over {args.window} steps | {r['video_fg_ari'][0]:.3f} | "
        f"[{r['video_fg_ari'][1]:.3f}, {r['video_fg_ari'][2]:.3f}] | {r['windows']} windows |"
    )
    print(
        f"| binding kept over {args.window} steps | {r['binding_kept'][0]:.3f} | "
        f"[{r['binding_kept'][1]:.3f}, {r['binding_kept'][2]:.3f}] | {r['windows']} windows |"
    )
    for key, name in (("accuracy", "discovery accuracy"), ("nmi", "discovery NMI")):
        print(f"| {name} | {r[key][0]:.3f} | [{r[key][1]:.3f}, {r[key][2]:.3f}] | {r['discovery_windows']} windows |")
    for key, name in (("colour_mse", "object colour error, decoded"), ("mean_colour_mse", "... in the mean colour")):
        print(f"| {name} | {r[key][0]:.4f} | [{r[key][1]:.4f}, {r[key][2]:.4f}] | {r['colour_windows']} windows |")
    low, high = r["recon_mse"][1:]
    print(
        f"| reconstruction error | {r['recon_mse'][0]:.4f} | [{low:.4f}, {high:.4f}] | {r['discovery_windows']} windows |"
    )


if __name__ == "__main__":
    main()
