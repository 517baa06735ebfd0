"""The main job's pixel part: VIM and its baselines trained on frames, scored, and shown as video.

:func:`pixel_section` trains pixel VIM, the parameter-matched pixel VRNN and copy-last on the
main job's ``Passive-v1`` frames, evaluates them on held-out seeds collected with object masks
(prediction, mechanism discovery through the slot-to-object matching, slot decomposition and
module timeline, from :func:`vim_world.evaluate.evaluate`) and adds two GIFs: true frames against
each model's predicted frames, and VIM's per-slot decomposition (composite, each slot's
alpha-masked rendering, each slot's mask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vim_world.checkpoint import load_model
from vim_world.data import SequenceLoader, collect_once, open_dataset, uses_actions
from vim_world.evaluate import EvalConfig, evaluate
from vim_world.figures import decomposition_rows, to_frames
from vim_world.report import gif_bytes, image
from vim_world.sizing import prepare
from vim_world.train import train
from vim_world.train_config import TrainConfig

PIXEL_BUDGETS = {
    # training steps per model, batch size, held-out episodes (with masks), windows scored
    "tiny": dict(steps=500, batch_size=16, test_episodes=24, max_windows=240),
    "default": dict(steps=20_000, batch_size=32, test_episodes=256, max_windows=2000),
}
MODELS = ("vim", "vrnn", "copy_last")
CONTEXT, HORIZON = 5, 10
# Training sequence length per model. Pixel VIM binds objects to slots best on 4-step sequences
# (docs/model.md, "Slot initialisation, sequence length and cues": binding kept over 10 steps 0.20
# and 0.34 over two seeds, against 0.10 at 2 steps and 0.07 at 10; this job's FG-ARI 0.198 -> 0.341);
# the VRNN's recurrent state reads longer ones.
SEQ_LEN = {"vim": 4, "vrnn": 10, "copy_last": 10}


def pixel_section(
    out: Path, train_data: Path, preset: str, episode_len: int, obs_size: int, device: str
) -> list[tuple[str, str]]:
    """Train, evaluate and film the pixel models under ``out``; returns report sections
    ``(title, HTML)``. ``train_data`` must hold frames (the main job's ``Passive-v1`` data does)."""
    budget = PIXEL_BUDGETS[preset]
    test = out / "data" / "pixels_heldout_seeds"
    collect_once("VimWorld/Passive-v1", test, episodes=budget["test_episodes"], episode_len=episode_len, seed=40_000,
                 num_envs=budget["test_episodes"], masks=True, env_kwargs={"obs_size": obs_size})  # fmt: skip
    runs = {}
    for name in MODELS:
        cfg = TrainConfig(
            data=str(train_data),
            out=str(out / "runs" / f"pixels_{name}"),
            model=name,
            preset=preset,
            mode="pixels",
            steps=budget["steps"] if name != "copy_last" else 1,
            batch_size=budget["batch_size"],
            seq_len=SEQ_LEN[name],
            device=device,
        )
        runs[name] = str(train(cfg).out)
    evaluation = evaluate(
        EvalConfig(runs=runs, splits={"pixels_heldout_seeds": str(test)}, out=str(out / "eval_pixels"),
                   context=CONTEXT, horizon=HORIZON, max_windows=budget["max_windows"], batch_size=16, device=device)
    )  # fmt: skip
    videos = films(runs, test, device)
    note = (
        f"<p>Pixel models on {obs_size}×{obs_size} frames of the same <code>Passive-v1</code> episodes, "
        f"{budget['steps']} training steps each (batch {budget['batch_size']}, sequences of "
        f"{SEQ_LEN['vim']} steps for VIM and {SEQ_LEN['vrnn']} for the VRNN), scored on held-out seeds "
        "collected with object masks. At the tiny preset these models are far from trained: the slots have not "
        "bound to objects yet (docs/model.md, 'From pixels', gives the figures and what a GPU run shows); this "
        "part shows the path from frames to imagined video end to end.</p>"
    )
    return [(f"From pixels: {title}", body) for title, body in evaluation.sections] + [
        ("From pixels: video", note + videos)
    ]


def films(runs: dict[str, str], data: Path, device: str, scale: int = 3) -> str:
    """HTML with two GIFs for the first window of ``data``: the true frames beside each model's
    sample-0 prediction (context frames then the imagined horizon), and VIM's per-slot decomposition
    of its prediction (composite, each slot's alpha-masked rendering, each slot's mask)."""
    models = {name: load_model(path, device)[0].eval() for name, path in runs.items()}
    dev = next(iter(models["vim"].parameters())).device
    dataset = open_dataset(data)
    loader = SequenceLoader(dataset, batch_size=1, seq_len=CONTEXT + HORIZON, mode="pixels", seed=5)
    batch = prepare(loader.batch_at(0), uses_actions(dataset)).to(dev)
    panels = {"truth": to_frames(batch.obs[0])}
    with torch.no_grad():
        for name, model in models.items():
            gen = torch.Generator(device=dev).manual_seed(0)
            predicted = model.predict(batch, CONTEXT, HORIZON, 1, generator=gen)
            panels[name] = np.concatenate([panels["truth"][:CONTEXT], to_frames(predicted.obs[0, 0])])
            if name == "vim":  # (T, K, ...) over the horizon
                decomposition = decomposition_rows(model.decode(predicted.z[0, 0]), with_masks=True)
    order = ", ".join(panels)
    slot_order = ", ".join(decomposition)
    return (
        f"<figure>{image(gif_bytes(side_by_side(panels, scale), fps=4), 'image/gif')}<figcaption>left to right: "
        f"{order}; the first {CONTEXT} frames are the observed context (truth in every panel), then each model's "
        f"imagined {HORIZON} steps</figcaption></figure>"
        f"<figure>{image(gif_bytes(side_by_side(decomposition, scale), fps=4), 'image/gif')}<figcaption>VIM's "
        f"imagined horizon by slot, left to right: {slot_order}</figcaption></figure>"
    )


def side_by_side(panels: dict[str, np.ndarray], scale: int) -> list[np.ndarray]:
    """Panels of ``(T, H, W, 3)`` uint8 frames -> T frames with the panels in a row, 2-pixel white
    gaps, enlarged ``scale`` times (nearest neighbour)."""
    frames = list(panels.values())
    t, h, _, _ = frames[0].shape
    gap = np.full((t, h, 2, 3), 255, np.uint8)
    row = np.concatenate([x for f in frames for x in (f, gap)][:-1], axis=2)
    return list(row.repeat(scale, axis=1).repeat(scale, axis=2))
