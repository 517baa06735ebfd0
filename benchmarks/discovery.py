"""Mechanism discovery of state VIM over mechanism sets and seeds, trained through ``vim_world.train.train``.

For each mechanism set, rollouts are collected once (640 training episodes x 24 steps, data seed 0;
128 evaluation episodes of fresh seeds, 5000), then one run per training seed goes through the same
``train(TrainConfig)`` as ``vim-world train`` with the discovery recipe :func:`vim_world.model.discovery_recipe` (tiny state
preset, M = number of mechanisms + ``--spare-modules`` (default 1: a module for the transitions at a
switch, which follow neither mechanism's law as learnt), observed latents, affine modules, deterministic annealing over
the first 60% of the steps, static attributes, split moves every 100 steps); ``--overrides``
changes any VIMConfig field on top of it (``'{"state_encoder": "mlp", "module_layers": 2}'`` is the
learnt-encoder model of earlier tables). Each run's inferred selections on every object-step of
the evaluation episodes are scored against the true mechanism ids after Hungarian matching.

Prints a table mechanism set x seed (accuracy / NMI) with the mean over seeds, the minimum and a
95% Student-t interval over seeds (mean +- t_{0.975, n-1} s / sqrt(n)); ``--json`` also writes every
figure, atomically. Sets: the world of ``--env`` (default ``VimWorld/Passive-v1``), ``--mechanisms``,
and/or ``--random-sets N``: N sets of 4 to 6 unary mechanisms drawn by ``np.random.default_rng(
--set-seed)`` from the registry, keeping only sets that pass the identifiability check
(``vim_world.envs.identifiability``) and that differ from the named world's set.

    OMP_NUM_THREADS=1 python benchmarks/discovery.py --seeds 0,1,2,3,4 --random-sets 3
    python benchmarks/discovery.py --env VimWorld/Passive-v0 --seeds 0 --steps 3000   # the old world
    python benchmarks/discovery.py --seeds 0,1,2 --hidden-features vx,vy,dsize          # from positions only
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from vim_world.envs import MECHANISM_NAMES, MECHANISMS, WorldConfig
from vim_world.envs.identifiability import identifiability_report

import vim_world  # noqa: F401  (registers the envs)
from vim_world.cli import json_object
from vim_world.data import collect, open_dataset
from vim_world.metrics import discovery_scores, t_interval
from vim_world.model import discovery_recipe
from vim_world.train import TrainConfig, load_model, train


def random_sets(count: int, seed: int, exclude: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``count`` identifiable sets of 4 to 6 unary mechanisms, drawn in order from ``seed``."""
    unary = [m.name for m in MECHANISMS.values() if not m.interacts]
    rng = np.random.default_rng(seed)
    found: list[tuple[str, ...]] = []
    for _ in range(200):
        if len(found) == count:
            return found
        size = int(rng.integers(4, 7))
        names = tuple(sorted((str(n) for n in rng.choice(unary, size, replace=False)), key=MECHANISM_NAMES.index))
        if names in found or set(names) == set(exclude):
            continue
        report = identifiability_report(WorldConfig(mechanisms=names, allowed=None, switch_prob=0.05), seed=seed)
        if report.identifiable():
            found.append(names)
    raise RuntimeError(f"found only {len(found)} identifiable sets of {count} in 200 draws")


def score_run(run: Path, eval_path: Path) -> dict[str, float]:
    """Accuracy, NMI, ARI of the run's inferred selections on every object-step t >= 1 of every episode."""
    model, _ = load_model(run, device="cpu")
    data = open_dataset(eval_path)
    preds, trues = [], []
    for i in range(len(data.shard_dirs)):
        shard = data.load_shard(i)
        states = torch.from_numpy(np.array(shard["states"]))
        with torch.no_grad():
            preds.append(model.observe(states).selections[:, 1:].numpy())
        trues.append(np.array(shard["mechanism"])[:, 1:])
    scores = discovery_scores(np.concatenate(preds), np.concatenate(trues))
    return {k: float(v) for k, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="VimWorld/Passive-v1", help="the named world ('' for none)")
    parser.add_argument("--mechanisms", action="append", default=[], help="a comma-separated set (repeatable)")
    parser.add_argument("--random-sets", type=int, default=0)
    parser.add_argument("--set-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--preset", default="tiny", choices=("tiny", "default"))
    parser.add_argument("--overrides", default="{}", type=json_object("--overrides"), help="VIMConfig fields as JSON")
    parser.add_argument("--no-static", action="store_true", help="the modules see the kind too")
    parser.add_argument(
        "--hidden-features",
        default="",
        help="state features the modules never read (TrainConfig.hidden_features), e.g. vx,vy,dsize: positions only",
    )
    parser.add_argument("--spare-modules", type=int, default=1, help="M = number of mechanisms + this")
    parser.add_argument("--revive", type=int, default=100, help="split moves for unused modules every N steps (0: off)")
    parser.add_argument("--episodes", type=int, default=640)
    parser.add_argument("--work", default=None, help="directory for data and runs (default: a temporary one)")
    parser.add_argument("--json", default=None, help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work or tempfile.mkdtemp(prefix="vim-discovery-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    worlds: list[tuple[str, str, dict]] = []  # (label, env id, env kwargs)
    named: tuple[str, ...] = ()
    if args.env:
        named = tuple(gym.spec(args.env).kwargs["mechanisms"])
        worlds.append((args.env.split("/")[1], args.env, {}))
    base = args.env or "VimWorld/Passive-v1"
    for names in [tuple(m.split(",")) for m in args.mechanisms] + random_sets(args.random_sets, args.set_seed, named):
        worlds.append(("+".join(names), base, {"mechanisms": list(names), "allowed": None, "switch_prob": 0.05}))

    results: dict[str, dict] = {}
    for label, env_id, kwargs in worlds:
        root = work / label.replace("/", "_")
        m = len(kwargs.get("mechanisms", named))
        paths = {}
        for split, episodes, seed in (("train", args.episodes, 0), ("eval", 128, 5000)):
            paths[split] = root / split
            if not (paths[split] / "meta.json").exists():
                collect(
                    env_id,
                    paths[split],
                    episodes=episodes,
                    episode_len=24,
                    seed=seed,
                    num_envs=64,
                    env_kwargs={"obs_size": 32, **kwargs},
                    overwrite=True,
                )
        runs = {}
        for seed in seeds:
            start = time.perf_counter()
            cfg = TrainConfig(
                data=str(paths["train"]),
                out=str(root / f"run_{seed}"),
                preset=args.preset,
                mode="state",
                overrides={
                    "num_modules": m + args.spare_modules,
                    **discovery_recipe(args.steps),
                    **args.overrides,
                },
                steps=args.steps,
                seed=seed,
                device="cpu",
                amp=False,
                holdout=0.0,
                progress=False,
                checkpoint_every=args.steps,
                revive_every=args.revive,
                static_attributes=not args.no_static,
                hidden_features=args.hidden_features,
            )
            train(cfg)
            runs[seed] = {
                **score_run(Path(cfg.out), paths["eval"]),
                "train_seconds": round(time.perf_counter() - start, 1),
            }
            print(
                f"{label} seed {seed}: accuracy {runs[seed]['accuracy']:.3f} NMI {runs[seed]['nmi']:.3f} "
                f"({runs[seed]['train_seconds']} s)",
                flush=True,
            )
        summary = {}
        for key in ("accuracy", "nmi"):
            values = [runs[s][key] for s in seeds]
            summary[key] = {"mean": float(np.mean(values)), "min": float(np.min(values)), "ci95_t": t_interval(values)}
        results[label] = {"runs": runs, "summary": summary}

    header = "| mechanism set | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | min | 95% t-interval |"
    print(header)
    print("|" + " --- |" * (len(seeds) + 4))
    for label, r in results.items():
        cells = [f"{r['runs'][s]['accuracy']:.2f} / {r['runs'][s]['nmi']:.2f}" for s in seeds]
        acc, nmi = r["summary"]["accuracy"], r["summary"]["nmi"]
        print(
            f"| {label} | " + " | ".join(cells) + f" | {acc['mean']:.3f} / {nmi['mean']:.3f} | "
            f"{acc['min']:.2f} / {nmi['min']:.2f} | [{acc['ci95_t'][0]:.2f}, {acc['ci95_t'][1]:.2f}] / "
            f"[{nmi['ci95_t'][0]:.2f}, {nmi['ci95_t'][1]:.2f}] |"
        )
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
