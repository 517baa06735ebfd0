"""Composition gap over training seeds: each model of the main job trained S times without the
held-out (kind, mechanism) pairs and S times on every pair (its oracle, the same budget), the gap
of each seed on the same held-out windows, and the mean over seeds with a 95% t interval.

    python benchmarks/composition_seeds.py --out out/comp_seeds --seeds 0 1 2 3 4 --workers 2

One seed's gap (``vim-world eval --oracle-run``) carries only the windows' noise; two training
runs of one recipe differ by more than that (docs/model.md, "A second training seed"), so whether
VIM composes better than a baseline is read here, on the seeds' spread. Target (issue 11): VIM's
mean gap <= 1.2 and its interval below every baseline's, not overlapping. Models train with the
main job's recipe (:func:`vim_world.demo.state_model_config`, tiny preset); a rerun reuses
finished runs and evaluations (training resumes from its last checkpoint).
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

from vim_world.data import collect_once
from vim_world.demo import state_model_config
from vim_world.evaluate import EvalConfig, evaluate
from vim_world.files import write_atomically
from vim_world.metrics import t_interval
from vim_world.report import GAP_TARGET, below_every, verdict
from vim_world.train import train
from vim_world.train_config import MODEL_NAMES

SPLIT = "heldout_pairs"
DATA = {
    # name: env id, episodes, seed, extra env options (the main job's data sizes, state only)
    "train": ("VimWorld/Passive-v1", 640, 0, {}),
    "all_pairs": ("VimWorld/Passive-v1", 640, 0, {"allowed": None}),
    "in_distribution": ("VimWorld/Passive-v1", 256, 30_000, {}),
    SPLIT: ("VimWorld/PassiveHeldout-v1", 256, 10_000, {}),
}


def dataset(out: Path, name: str) -> Path:
    """The data set ``name`` of :data:`DATA` in ``out / "data"``, collected unless already there."""
    env_id, episodes, seed, extra = DATA[name]
    return collect_once(env_id, out / "data" / name, episodes=episodes, episode_len=24, seed=seed, num_envs=64,
                        env_kwargs={"obs_mode": "state", **extra})  # fmt: skip


def one_seed(
    out: Path, seed: int, models: list[str], data: dict[str, Path], max_windows: int, steps: int | None
) -> dict[str, Any]:
    """Train every model and its oracle at ``seed`` (one thread), evaluate them on the held-out
    pairs and return ``{model: composition-gap entry}`` (``vim_world.evaluate``'s)."""
    torch.set_num_threads(1)
    runs, oracles = {}, {}
    for name in models:
        for source, into, run in (("train", runs, name), ("all_pairs", oracles, f"oracle_{name}")):
            cfg = state_model_config(
                name, data[source], out / f"seed{seed}" / run, device="cpu", seed=seed, steps=steps
            )
            cfg.progress = False
            into[name] = str(train(cfg).out)
    metrics = out / f"seed{seed}" / "eval" / "metrics.json"
    if not metrics.is_file():
        evaluate(
            EvalConfig(
                runs=runs,
                oracle_runs=oracles,
                splits={"in_distribution": str(data["in_distribution"]), SPLIT: str(data[SPLIT])},
                out=str(metrics.parent),
                max_windows=max_windows,
                device="cpu",
                progress=False,
            )
        )
    return json.loads(metrics.read_text())["composition_gap"][SPLIT]


def summarise(gaps: dict[int, dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Per model: each seed's gap (with its window interval), the mean over seeds and its t
    interval; and the verdicts against the target."""
    out: dict[str, Any] = {"models": {}}
    for name in models:
        per_seed = {s: g[name] for s, g in sorted(gaps.items())}
        values = [e["gap"] for e in per_seed.values()]
        out["models"][name] = {
            "gap_per_seed": {str(s): e["gap"] for s, e in per_seed.items()},
            "gap_ci_per_seed": {str(s): e["gap_ci"] for s, e in per_seed.items()},
            "gap_by_mechanism_mean": {
                m: float(np.mean([e["gap_by_mechanism"][m] for e in per_seed.values()]))
                for m in next(iter(per_seed.values()))["gap_by_mechanism"]
            },
            "gap_mean": float(np.mean(values)),
            "gap_mean_ci": list(t_interval(values)),
        }
    if "vim" in out["models"]:
        ci = out["models"]["vim"]["gap_mean_ci"]
        others = [m["gap_mean_ci"] for n, m in out["models"].items() if n != "vim"]
        out["verdicts"] = {
            f"VIM mean gap <= {GAP_TARGET}": verdict(ci, GAP_TARGET),
            "VIM's interval below every baseline's": below_every(ci, others),
        }
    return out


def table(summary: dict[str, Any]) -> str:
    """The summary as a markdown table: model, each seed's gap, the mean [95% t interval]."""
    models = summary["models"]
    seeds = list(next(iter(models.values()))["gap_per_seed"])
    lines = [
        "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean over seeds [95% t] |",
        "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: |",
    ]
    for name, m in models.items():
        low, high = m["gap_mean_ci"]
        cells = " | ".join(f"{m['gap_per_seed'][s]:.3f}" for s in seeds)
        lines.append(f"| {name} | {cells} | {m['gap_mean']:.3f} [{low:.3f}, {high:.3f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/comp_seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--workers", type=int, default=1, help="seeds trained at once (one thread each)")
    parser.add_argument("--max-windows", type=int, default=2000, help="held-out windows scored per seed")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the main job's, 3000)")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        raise SystemExit(f"--seeds needs at least two distinct seeds for an interval over seeds, got {args.seeds}")
    if args.workers < 1:
        raise SystemExit(f"--workers must be >= 1, got {args.workers}")
    models = [m for m in args.models if m != "copy_last"]  # copy-last has no training to leave pairs out of
    out = Path(args.out)
    data = {name: dataset(out, name) for name in DATA}
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = {
            s: pool.submit(one_seed, out, s, models, data, args.max_windows, args.steps)
            for s in sorted(set(args.seeds))
        }
        gaps = {s: job.result() for s, job in jobs.items()}
    summary = {"args": vars(args), **summarise(gaps, models)}
    write_atomically(out / "results.json", json.dumps(summary, indent=1))
    print(table(summary))
    for what, said in summary.get("verdicts", {}).items():
        print(f"- {what}: {said}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
