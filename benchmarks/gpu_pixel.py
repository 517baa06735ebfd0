"""The default 64x64 pixel preset on one GPU, end to end, in a fixed time budget.

    python benchmarks/gpu_pixel.py --out OUT_DIR          # on a CUDA machine (bf16 autocast)
    GPU_PIXEL_TINY=1 python benchmarks/gpu_pixel.py --out /tmp/x   # CPU rehearsal, tiny sizes

Steps: (1) collect the passive world's frames with masks (training seeds, and held-out seeds for
evaluation); (2) measure training samples/s of pixel VIM and the parameter-matched pixel VRNN on
the same card (``train_speed.measure``, synthetic batches); (3) train both with the trainer
(bf16 on CUDA), each for the number of steps its measured speed fits in its time budget;
(4) evaluate on held-out seeds: best-of-10 MSE over a 10-step horizon after 5 context frames
(VIM, VRNN, copy-last), FG-ARI of VIM's slot masks and the share of 10-step windows whose
slot-to-object binding never changes; every figure with a 95% bootstrap interval over windows.
Writes ``OUT_DIR/gpu_pixel.md`` (Markdown tables, the device named) and ``gpu_pixel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_binding import binding_scores, interval  # noqa: E402
from train_speed import measure  # noqa: E402

from vim_world.data import SequenceLoader, collect, open_dataset  # noqa: E402
from vim_world.metrics import per_step_mse  # noqa: E402
from vim_world.train import TrainConfig, load_model, model_config, prepare, train, uses_actions  # noqa: E402

CONTEXT, HORIZON, SAMPLES = 5, 10, 10
SIZES = {  # frame size, episodes, episode length, preset, batch size, seconds of training per model, max steps
    "full": dict(
        obs_size=64,
        episodes=2048,
        episode_len=32,
        preset="default",
        batch_size=32,
        budget_s=110.0,
        max_steps=20_000,
        eval_batches=16,
        speed_steps=20,
    ),
    "tiny": dict(
        obs_size=32,
        episodes=64,
        episode_len=16,
        preset="tiny",
        batch_size=8,
        budget_s=10.0,
        max_steps=20,
        eval_batches=2,
        speed_steps=2,
    ),
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@torch.no_grad()
def prediction_errors(model: torch.nn.Module, data: str, batches: int, device: torch.device) -> np.ndarray:
    """Best-of-``SAMPLES`` MSE per window ``(windows,)``: per step the best sample, averaged over the horizon."""
    loader = SequenceLoader(
        open_dataset(data), batch_size=32, seq_len=CONTEXT + HORIZON, mode="pixels", seed=7, device=device
    )
    generator = torch.Generator(device=device).manual_seed(0)
    with_actions = uses_actions(loader.dataset)
    errors = []
    for i in range(batches):
        batch = prepare(loader.batch_at(i), with_actions)
        pred = model.predict(batch, CONTEXT, HORIZON, SAMPLES, generator=generator).obs.float()
        target = batch.obs[:, CONTEXT : CONTEXT + HORIZON].float()
        errors.append(per_step_mse(pred, target).min(1).values.mean(-1).cpu().numpy())
    return np.concatenate(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_pixel_out"))
    parser.add_argument("--work", default=None, help="scratch directory for data and runs (default: a temp dir)")
    parser.add_argument("--reuse-data", action="store_true", help="keep data sets already in the work directory")
    args = parser.parse_args()
    size = SIZES["tiny" if os.environ.get("GPU_PIXEL_TINY") else "full"]
    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.gettempdir()) / "gpu_pixel_work"
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    log(f"device: {card}; torch {torch.__version__}; sizes: {size}")
    start = time.perf_counter()

    env_kwargs = {"obs_size": size["obs_size"]}
    data = {}
    for split, seed in (("train", 0), ("test", 1_000_000)):
        if args.reuse_data and (work / split / "meta.json").exists():
            data[split] = str(work / split)
            continue
        data[split] = str(
            collect(
                "VimWorld/Passive-v0",
                work / split,
                episodes=size["episodes"] if split == "train" else 256,
                episode_len=size["episode_len"],
                seed=seed,
                masks=True,
                overwrite=True,
                env_kwargs=env_kwargs,
                workers=min(8, os.cpu_count() or 1),
            )
        )
    log(f"collected in {time.perf_counter() - start:.0f} s")

    results: dict[str, Any] = {"device": card, "torch": torch.__version__, "sizes": size, "models": {}}
    probe = TrainConfig(data=data["train"], out=str(work / "probe"), mode="pixels", preset=size["preset"])
    config = model_config(probe, open_dataset(data["train"]))
    # GPU_PIXEL_BUDGET_S="vim=220,vrnn=40" gives a model another training budget than the equal default
    budgets = dict(item.split("=") for item in os.environ.get("GPU_PIXEL_BUDGET_S", "").split(",") if item)
    for name in ("vim", "vrnn"):
        speed = measure(name, config, size["batch_size"], 10, size["speed_steps"], device)
        budget_s = float(budgets.get(name, size["budget_s"]))
        steps = int(min(size["max_steps"], max(1, speed["steps_s"] * budget_s)))
        log(f"{name}: {speed['samples_s']:.0f} samples/s, {speed['params']:,} parameters; training {steps} steps")
        t0 = time.perf_counter()
        run = train(
            TrainConfig(
                data=data["train"],
                out=str(work / name),
                model=name,
                mode="pixels",
                preset=size["preset"],
                steps=steps,
                batch_size=size["batch_size"],
                seq_len=10,
                device=device.type,
                checkpoint_every=steps,
                progress=False,
            )
        )
        results["models"][name] = {
            **speed,
            "train_steps": steps,
            "train_s": time.perf_counter() - t0,
            "checkpoint": str(run.checkpoint),
        }
    train(
        TrainConfig(
            data=data["train"],
            out=str(work / "copy_last"),
            model="copy_last",
            mode="pixels",
            preset=size["preset"],
            steps=1,
            device=device.type,
            progress=False,
        )
    )

    for name in ("vim", "vrnn", "copy_last"):
        model, _ = load_model(work / name, device.type)
        errors = prediction_errors(model.eval(), data["test"], size["eval_batches"], device)
        results["models"].setdefault(name, {})["mse_best_of_10"] = interval(errors)
        if name == "vim":
            results["binding"] = binding_scores(model, data["test"], batches=size["eval_batches"], device=device)
    results["wall_s"] = time.perf_counter() - start
    atomic_write_text(out / "gpu_pixel.json", json.dumps(results, indent=1, default=str))
    atomic_write_text(out / "gpu_pixel.md", markdown(results))
    log(f"done in {results['wall_s']:.0f} s; wrote {out / 'gpu_pixel.md'}")
    print(markdown(results))


def markdown(r: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    ci = lambda v: f"{v[0]:.4g} [{v[1]:.4g}, {v[2]:.4g}]"  # noqa: E731
    m = r["models"]
    lines = [
        f"# Pixel VIM on {r['device']} (torch {r['torch']}, preset {r['sizes']['preset']}, "
        f"{r['sizes']['obs_size']}x{r['sizes']['obs_size']}, bf16 on CUDA)",
        "",
        "| model | parameters | samples/s | train steps | best-of-10 MSE, 95% CI |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("vim", "vrnn"):
        lines.append(
            f"| {name} | {m[name]['params']:,} | {m[name]['samples_s']:.0f} | {m[name]['train_steps']} | "
            f"{ci(m[name]['mse_best_of_10'])} |"
        )
    lines.append(f"| copy_last | 0 | - | - | {ci(m['copy_last']['mse_best_of_10'])} |")
    vim, vrnn, copy = (m[n]["mse_best_of_10"][0] for n in ("vim", "vrnn", "copy_last"))
    b = r["binding"]
    lines += [
        "",
        f"VIM/VRNN samples/s: {m['vim']['samples_s'] / m['vrnn']['samples_s']:.2f}; "
        f"MSE ratios: VIM/VRNN {vim / vrnn:.2f}, VIM/copy-last {vim / copy:.2f}.",
        "",
        "| slots vs objects (VIM, held-out seeds) | mean, 95% CI | over |",
        "|---|---|---|",
        f"| FG-ARI | {ci(b['fg_ari'])} | {b['windows']} windows, {b['frames']} frames |",
        f"| binding kept over 10 steps | {ci(b['binding_kept'])} | {b['windows']} windows |",
        "",
        f"Wall time of the whole script: {r['wall_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
