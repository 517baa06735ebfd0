"""n-ary against unary modules on a world of interacting objects (issue 11, item 9), over training seeds.

Rollouts of ``--env`` (default ``VimWorld/Interact-v1``: still, random walk, ``attract`` towards the
nearest object, ``flee`` from it, colour cycling) are collected once: 640 training episodes x 24
steps (data seed 0), and two fresh evaluation collections of 256 episodes, one with the world's
switching (seed 30000) and one without (``switch_prob`` 0, seed 40000), where an object's own law
is all there is to predict. Every variant is trained at every seed through the same
``train(TrainConfig)`` as ``vim-world train`` with the interaction recipe (tiny state preset, 6
modules, observed latents, deterministic annealing over the first 60% of the steps, static
attributes, split moves every 100 steps), and scored by ``vim-world eval``'s ``evaluate`` (context
5, horizon 10, best-of-10, ``--windows`` windows per split).

Variants (``--variants``): ``unary`` (the paper's modules), ``dot`` (n-ary, dot-product context)
and ``l2`` (n-ary, context scored by L2 distance: ``VIMConfig.nary_scores``). Prints, per split,
each n-ary variant's per-object best-of-10 MSE on the interacting mechanisms divided by the unary
model's (paired, with the evaluation's 95% bootstrap interval) per seed, the mean over seeds with
its 95% Student-t interval, and each variant's discovery accuracy / NMI. Target (issue 11): the
ratio on ``attract`` <= 0.7. ``--json`` writes every figure. A rerun with the same ``--work``
reuses the data, the trained runs and their scores. With ``--restarts N`` each variant's run at
seed S is the one of least held-out loss among seeds S .. S + N - 1 (``vim-world train --restarts``;
label-free, so fair), and the chosen seeds are printed and kept in the JSON. ``--world-reference``
adds the row ``world``: the world's own simulator restarted from each window's true state and
mechanisms, against the same unary run (``vim_world.world_reference``): what the true process's
own samples score on a world that switches mechanisms at random (a reference, not a bound).

    OMP_NUM_THREADS=1 python benchmarks/interactions.py --seeds 0,1,2,3,4,5 --work out/interactions
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vim_world.envs import ENV_SPECS, NAMESPACE

import vim_world  # noqa: F401  (registers the envs)
from vim_world.collection import collect_once
from vim_world.evaluate import EvalConfig, evaluate
from vim_world.files import write_atomically
from vim_world.metrics import t_interval
from vim_world.model import discovery_recipe
from vim_world.train import TrainConfig, train
from vim_world.world_reference import NAME as WORLD

VARIANTS: dict[str, dict[str, Any]] = {
    "unary": {"nary": False},
    "dot": {"nary": True},
    "l2": {"nary": True, "nary_scores": "l2"},
}
"""VIMConfig overrides of each variant, on top of :func:`interaction_recipe`."""

INTERACTING = ("attract", "flee")
"""The mechanisms whose law reads another object."""


def interaction_recipe(steps: int) -> dict[str, Any]:
    """VIMConfig overrides of the interaction runs (docs/model.md, "Interactions"): the discovery
    recipe with 6 modules and the preset's two-layer modules instead of affine ones (an
    interaction's law is not affine in the latents)."""
    recipe = {k: v for k, v in discovery_recipe(steps).items() if k != "module_layers"}
    return {"num_modules": 6, **recipe}


def collect_splits(env: str, work: Path, episodes: int, eval_episodes: int) -> dict[str, Path]:
    """The training data and the two evaluation collections under ``work`` (reused when collected
    with the same options)."""
    plan = {
        "train": (episodes, 0, {}),
        "switching": (eval_episodes, 30000, {}),
        "fixed": (eval_episodes, 40000, {"switch_prob": 0.0}),
    }
    return {
        split: collect_once(
            env,
            work / "data" / split,
            episodes=count,
            episode_len=24,
            seed=seed,
            env_kwargs={"obs_mode": "state", **kwargs},
        )  # fmt: skip
        for split, (count, seed, kwargs) in plan.items()
    }


def train_variant(data: Path, out: Path, variant: str, seed: int, steps: int, restarts: int = 0) -> Path:
    """Train one variant at one seed, as ``vim-world train`` would: a finished run is kept, a killed
    one resumes, and a run of another recipe in ``out`` is refused by ``train``. With ``restarts``
    (``vim-world train --restarts N --select-at STEPS``) it trains seeds ``seed .. seed + N - 1`` and
    keeps the one of least held-out loss (``vim_world.restarts``). Returns ``out``."""
    cfg = TrainConfig(
        data=str(data),
        out=str(out),
        preset="tiny",
        mode="state",
        overrides={**interaction_recipe(steps), **VARIANTS[variant]},
        steps=steps,
        seed=seed,
        device="cpu",
        progress=False,
        revive_every=100,
        static_attributes=True,
        restarts=restarts,
        select_at=steps,
    )
    train(cfg)
    return out


def chosen_seed(run: Path) -> int:
    """The seed that ``vim_world.restarts`` chose for the run in ``run``."""
    return int(json.loads((run / "restarts" / "selection.json").read_text())["chosen_seed"])


def score_seed(runs: dict[str, Path], splits: dict[str, Path], out: Path, windows: int, key: dict) -> dict[str, Any]:
    """Each n-ary variant against the unary run of the same seed, on both evaluation splits; the
    evaluation in ``out`` is reused when it was made with the same ``key`` (the benchmark's options)."""
    metrics_file, key_file = out / "metrics.json", out / "benchmark_key.json"
    if not (metrics_file.exists() and key_file.exists() and json.loads(key_file.read_text()) == key):
        key_file.unlink(missing_ok=True)  # a run killed mid-evaluation leaves no key beside stale metrics
        evaluate(EvalConfig(runs={name: str(path) for name, path in runs.items()},
                            splits={s: str(splits[s]) for s in ("switching", "fixed")}, out=str(out),
                            max_windows=windows, device="cpu", progress=False,
                            world_reference=bool(key.get("world_reference"))))  # fmt: skip
        write_atomically(key_file, json.dumps(key))
    metrics = json.loads(metrics_file.read_text())
    scores: dict[str, Any] = {}
    for split in ("switching", "fixed"):
        per_split: dict[str, Any] = {}
        for name in [*runs, *([WORLD] if key.get("world_reference") else [])]:
            discovery = metrics["splits"][split]["discovery"].get(name)  # the world infers no modules
            entry: dict[str, Any] = {"accuracy": discovery["accuracy"], "nmi": discovery["nmi"]} if discovery else {}
            if name != "unary":
                ratio = metrics["ratios"][split][name]["mse_best_by_mechanism_vs"]["unary"]
                missing = [m for m in INTERACTING if m not in ratio["ratio"]]
                if missing:
                    raise ValueError(
                        f"split {split!r} of {str(splits[split])!r} has no scored object-steps of {missing}: "
                        "score more windows (--windows) or collect more episodes (--eval-episodes)"
                    )
                for mechanism in INTERACTING:
                    entry[mechanism] = ratio["ratio"][mechanism]
                    entry[f"{mechanism}_ci"] = ratio["ratio_ci"][mechanism]
            per_split[name] = entry
        scores[split] = per_split
    return scores


def summarise(per_seed: dict[int, dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    """Mean over seeds with its 95% t interval, per split, n-ary variant and interacting mechanism."""
    summary: dict[str, Any] = {}
    for split in ("switching", "fixed"):
        summary[split] = {}
        for name in variants:
            if name == "unary":
                continue
            summary[split][name] = {}
            for mechanism in INTERACTING:
                values = [per_seed[s][split][name][mechanism] for s in per_seed]
                summary[split][name][mechanism] = {"mean": float(np.mean(values)), "ci95_t": list(t_interval(values))}
    return summary


def print_table(per_seed: dict[int, dict[str, Any]], summary: dict[str, Any], variants: list[str]) -> None:
    """Markdown tables: per split, the n-ary / unary ratio on ``attract`` per seed, then the mean."""
    seeds = list(per_seed)
    for split in ("switching", "fixed"):
        print(f"\n{split}: n-ary / unary per-object best-of-10 on attract [95% CI]; flee; accuracy / NMI")
        print("| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean on attract [95% t] |")
        print("|" + " --- |" * (len(seeds) + 2))
        for name in variants:
            cells = []
            for s in seeds:
                e = per_seed[s][split][name]
                found = f"{e['accuracy']:.2f} / {e['nmi']:.2f}" if "accuracy" in e else "-"
                if name == "unary":
                    cells.append(found)
                else:
                    low, high = e["attract_ci"]
                    cells.append(f"{e['attract']:.2f} [{low:.2f}, {high:.2f}]; {e['flee']:.2f}; {found}")
            mean = "" if name == "unary" else summary[split][name]["attract"]
            total = f"{mean['mean']:.3f} [{mean['ci95_t'][0]:.3f}, {mean['ci95_t'][1]:.3f}]" if mean else "-"
            print(f"| {name} | " + " | ".join(cells) + f" | {total} |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="VimWorld/Interact-v1")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument(
        "--variants", default="unary,dot,l2", help=f"comma-separated, unary first, from {list(VARIANTS)}"
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--episodes", type=int, default=640)
    parser.add_argument("--eval-episodes", type=int, default=256)
    parser.add_argument("--windows", type=int, default=2000, help="evaluation windows per split")
    parser.add_argument(
        "--restarts",
        type=int,
        default=0,
        help="0: one run per seed; N >= 2: each seed S is the run of least held-out loss among seeds S .. S + N - 1 "
        "(seeds at least N apart)",
    )
    parser.add_argument("--work", required=True, help="directory for data, runs and scores (reused when rerun)")
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument(
        "--world-reference",
        action="store_true",
        help="also score the world itself, restarted from each window's true state and mechanisms (row 'world': "
        "what the true process's own samples score against unary; a reference, not a bound)",
    )
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown} (expected names from {list(VARIANTS)})")
    if variants[0] != "unary" or len(variants) < 2 or len(set(variants)) != len(variants):
        parser.error(
            f"--variants must start with unary and name at least one n-ary variant once, got {args.variants!r}"
        )
    mechanisms = ENV_SPECS.get(args.env.removeprefix(f"{NAMESPACE}/"), {}).get("kwargs", {}).get("mechanisms", ())
    if not set(INTERACTING) <= set(mechanisms):
        parser.error(f"--env {args.env!r} must be a VimWorld env with the mechanisms {list(INTERACTING)}, "
                     f"got mechanisms {list(mechanisms)}")  # fmt: skip
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        parser.error(f"--seeds must be at least two distinct seeds (the interval is over seeds), got {args.seeds!r}")
    for name in ("steps", "episodes", "eval_episodes", "windows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.restarts < 0 or args.restarts == 1:
        parser.error(f"--restarts must be 0 (off) or >= 2 seeds to choose among, got {args.restarts}")
    close = [(a, b) for a, b in zip(sorted(seeds), sorted(seeds)[1:]) if b - a < args.restarts]
    if args.restarts and close:
        parser.error(
            f"--seeds {close[0][0]} and {close[0][1]} share training seeds under --restarts {args.restarts}: "
            f"space the seeds at least {args.restarts} apart"
        )
    torch.set_num_threads(1)
    work = Path(args.work)
    splits = collect_splits(args.env, work, args.episodes, args.eval_episodes)
    per_seed = {}
    tag = f"_r{args.restarts}" if args.restarts else ""
    for seed in seeds:
        runs = {
            v: train_variant(splits["train"], work / "runs" / f"{v}_s{seed}{tag}", v, seed, args.steps, args.restarts)
            for v in variants
        }
        key = {k: getattr(args, k) for k in ("env", "steps", "episodes", "eval_episodes", "windows")}
        if args.world_reference:
            key["world_reference"] = True
        eval_dir = work / "eval" / f"s{seed}{tag}_{'_'.join(variants)}"
        per_seed[seed] = score_seed(runs, splits, eval_dir, args.windows, key)
        if args.restarts:
            per_seed[seed]["chosen_seed"] = {v: chosen_seed(path) for v, path in runs.items()}
            print(
                f"seed {seed}: chosen among {args.restarts} restarts by held-out loss: {per_seed[seed]['chosen_seed']}"
            )
        print(f"seed {seed} scored", flush=True)
    rows = [*variants, *([WORLD] if args.world_reference else [])]
    summary = summarise(per_seed, rows)
    print_table(per_seed, summary, rows)
    result = {"args": vars(args), "per_seed": {str(s): v for s, v in per_seed.items()}, "summary": summary}
    if args.json:
        write_atomically(Path(args.json), json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
