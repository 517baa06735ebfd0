"""Does a pixel VIM recipe bind objects to slots at every training seed? Trains the recipe once
per seed and scores its slot masks against the env's masks at the steps asked for.

    python benchmarks/pixel_seeds.py --out out/pixel_seeds --seeds 0 1 2 --score-at 3000 6000 --workers 2 \\
        [--overrides '{"slot_cues": true}'] [--train-overrides '{"warmup_steps": 1000}']

Binding is an event a pixel run may miss: at the same recipe one seed's slots follow the objects
and another's stay spread over the whole frame (docs/model.md, "Binding over seeds"), so a lever
is read over seeds, never on one run. Per seed and scored step: FG-ARI, binding kept over 10
steps and discovery accuracy / NMI through the slot matching (``pixel_binding.binding_scores``,
512 held-out windows, 95% intervals over windows); then how many seeds bound (FG-ARI >= ``BOUND``)
and the means over seeds with their 95% t intervals.

Data (collected once under OUT/data): ``Passive-v1`` at 32x32 with 4 objects, 256 training
episodes of 12 steps (seed 0) and 128 held-out episodes of 20 steps (seed 9100) with masks.
Training: ``vim-world train --mode pixels --preset tiny --batch-size 16 --seq-len 4`` (one thread
per seed) with the overrides given; a run trains to each scored step in turn, resuming from the
last (a resumed run continues exactly), and a rerun reuses finished runs and scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_binding import binding_scores  # noqa: E402

from vim_world.cli import json_object  # noqa: E402
from vim_world.data import collect_once  # noqa: E402
from vim_world.files import write_atomically  # noqa: E402
from vim_world.metrics import t_interval  # noqa: E402
from vim_world.train import TrainConfig, load_model, train  # noqa: E402

BOUND = 0.5
"""FG-ARI at or above which a run counts as bound (collapsed runs score 0.17-0.31, bound ones 0.66-0.92)."""
WORLD = {"obs_size": 32, "num_objects": 4}
DATA = {
    # name: episodes, episode length, seed, vector envs
    "train": (256, 12, 0, 64),
    "heldout": (128, 20, 9100, 32),
}


def dataset(out: Path, name: str, episodes: int | None = None) -> Path:
    """The data set ``name`` of :data:`DATA` under ``out / "data"`` (``episodes`` may shrink it)."""
    count, length, seed, envs = DATA[name]
    return collect_once("VimWorld/Passive-v1", out / "data" / name, episodes=episodes or count, episode_len=length,
                        seed=seed, num_envs=min(envs, episodes or count), env_kwargs=WORLD, masks=True)  # fmt: skip


def one_seed(
    run: Path,
    seed: int,
    data: dict[str, Path],
    score_at: list[int],
    overrides: dict[str, Any],
    train_overrides: dict[str, Any],
    batches: int,
) -> dict[str, dict[str, Any]]:
    """Train the recipe at ``seed`` into ``run`` up to each step of ``score_at`` in turn (one
    thread) and score it there: ``{str(step): binding_scores(...)}``."""
    torch.set_num_threads(1)
    recipe = {"overrides": overrides, "train_overrides": train_overrides, "batches": batches}
    scores: dict[str, dict[str, Any]] = {}
    for step in sorted(score_at):
        cached = run / f"binding_{step:08d}.json"
        if cached.is_file():
            entry = json.loads(cached.read_text())
            if entry.get("recipe") != recipe:
                raise ValueError(
                    f"{str(run)!r} holds scores of another recipe ({entry.get('recipe')}, asked {recipe}); use another --out"
                )
            scores[str(step)] = entry
            continue
        cfg = TrainConfig(
            data=str(data["train"]), out=str(run), mode="pixels", preset="tiny", steps=step, batch_size=16,
            seq_len=4, seed=seed, device="cpu", overrides=overrides, progress=False,
            **{"checkpoint_every": min(score_at), **train_overrides},
        )  # fmt: skip
        train(cfg)
        model, _ = load_model(run, "cpu")
        entry = {
            **binding_scores(model, str(data["heldout"]), batches=batches, batch_size=32, window=10),
            "recipe": recipe,
        }
        write_atomically(cached, json.dumps(entry))
        scores[str(step)] = entry
    return scores


def summarise(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per scored step: each seed's FG-ARI, binding kept and discovery accuracy / NMI, the seeds
    that bound, and the means over seeds with their 95% t intervals. Scores cached before
    discovery was scored have none: discovery is then left out of that step, with a note."""
    steps = sorted({s for scores in per_seed.values() for s in scores}, key=int)
    out: dict[str, Any] = {}
    for step in steps:
        keys = ["fg_ari", "binding_kept", "accuracy", "nmi"]
        if not all("nmi" in per_seed[seed][step] for seed in per_seed):
            print(
                f"step {step}: scores cached before discovery was scored; discovery left out (rescore in another --out)"
            )
            keys = keys[:2]
        out[step] = {}
        for key in keys:
            values = {seed: per_seed[seed][step][key][0] for seed in sorted(per_seed)}
            out[step][key] = {str(s): v for s, v in values.items()}
            out[step][f"{key}_mean"] = float(np.mean(list(values.values())))
            out[step][f"{key}_mean_ci"] = list(t_interval(list(values.values())))
        out[step]["bound"] = sum(v >= BOUND for v in out[step]["fg_ari"].values())
    return out


def table(summary: dict[str, Any]) -> str:
    """The summary as markdown tables: a row per scored step, FG-ARI / binding kept per seed; then,
    where scored, discovery accuracy / NMI per seed."""
    first = next(iter(summary.values()))
    seeds = list(first["fg_ari"])
    lines = [
        "| step | " + " | ".join(f"seed {s}" for s in seeds) + " | bound | FG-ARI, mean [95% t] | binding kept, mean [95% t] |",
        "| ---: | " + " | ".join("---" for _ in seeds) + " | ---: | --- | --- |",
    ]  # fmt: skip
    for step, row in summary.items():
        cells = " | ".join(f"{row['fg_ari'][s]:.3f} / {row['binding_kept'][s]:.3f}" for s in seeds)
        fg_low, fg_high = row["fg_ari_mean_ci"]
        kept_low, kept_high = row["binding_kept_mean_ci"]
        lines.append(
            f"| {step} | {cells} | {row['bound']} of {len(seeds)} | {row['fg_ari_mean']:.3f} [{fg_low:.3f}, "
            f"{fg_high:.3f}] | {row['binding_kept_mean']:.3f} [{kept_low:.3f}, {kept_high:.3f}] |"
        )
    found = {step: row for step, row in summary.items() if "nmi" in row}
    if found:
        lines += ["", "| step | " + " | ".join(f"seed {s}" for s in seeds) + " | discovery accuracy / NMI, mean [95% t] |",
                  "| ---: | " + " | ".join("---" for _ in seeds) + " | --- |"]  # fmt: skip
        for step, row in found.items():
            cells = " | ".join(f"{row['accuracy'][s]:.2f} / {row['nmi'][s]:.2f}" for s in seeds)
            (acc_low, acc_high), (nmi_low, nmi_high) = row["accuracy_mean_ci"], row["nmi_mean_ci"]
            lines.append(
                f"| {step} | {cells} | {row['accuracy_mean']:.3f} [{acc_low:.3f}, {acc_high:.3f}] / "
                f"{row['nmi_mean']:.3f} [{nmi_low:.3f}, {nmi_high:.3f}] |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/pixel_seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--score-at", type=int, nargs="+", default=[3000], help="training steps to score at")
    parser.add_argument("--overrides", type=json_object("--overrides"), default={}, help="JSON VIMConfig overrides")
    parser.add_argument(
        "--train-overrides", type=json_object("--train-overrides"), default={}, help="JSON TrainConfig fields"
    )
    parser.add_argument("--workers", type=int, default=1, help="seeds trained at once (one thread each)")
    parser.add_argument("--batches", type=int, default=16, help="batches of 32 held-out windows scored")
    parser.add_argument("--episodes", type=int, default=None, help="fewer episodes per data set (smoke tests)")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f"--seeds must be distinct non-negative ints, got {args.seeds}")
    if min(args.score_at) < 1:
        parser.error(f"--score-at must be positive training steps, got {args.score_at}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    fixed = {"data", "out", "mode", "preset", "steps", "seed", "overrides", "device", "progress"}
    if fixed & set(args.train_overrides):
        parser.error(f"--train-overrides may not set {sorted(fixed & set(args.train_overrides))} (set by this script)")
    out = Path(args.out)
    data = {name: dataset(out, name, args.episodes) for name in DATA}
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = {
            seed: pool.submit(
                one_seed,
                out / f"seed{seed}",
                seed,
                data,
                args.score_at,
                args.overrides,
                args.train_overrides,
                args.batches,
            )
            for seed in args.seeds
        }
        per_seed = {seed: job.result() for seed, job in jobs.items()}
    summary = {"args": vars(args), "per_step": summarise(per_seed)}
    write_atomically(out / "results.json", json.dumps(summary, indent=1))
    print(table(summary["per_step"]))
    sys.stdout.flush()
    return summary


if __name__ == "__main__":
    main()
