"""Mechanism discovery of state VIM under one training variant: accuracy, NMI, and who took what.

Trains the tiny state preset (M = number of mechanisms) on rollouts of ``VimWorld/Passive-v0``
(640 episodes x 24 steps, seed 0), then scores the inferred selections of 128 windows of fresh
seeds (5000) and of ``PassiveHeldout-v0`` (seed 10000) after Hungarian matching, and prints the
confusion of true mechanisms against modules. One thread, deterministic under ``--seed``.

    python benchmarks/discovery.py                                  # plain VIM, all state features
    python benchmarks/discovery.py --static --revive 150            # what the main job trains
    python benchmarks/discovery.py --visible --mechanisms still,color_cycle,orbit --steps 1000 \\
        --anneal 30 --anneal-steps 600                              # the end-to-end test's world

``--visible`` hides what one frame does not show (velocities, size change); ``--mechanisms`` runs
only those mechanisms on every kind. On the passive world the script also prints the score of the
best any law-following assignment can do: one module for the mechanisms that share the inertia law
in the object state (still, bounce, size pulse; docs/model.md), one for each other mechanism.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.data import SequenceLoader, collect, open_dataset
from vim_world.envs import MECHANISM_NAMES, STATE_FEATURES, mechanism_id
from vim_world.metrics import discovery_scores
from vim_world.model import VIM, preset
from vim_world.train import constant_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mechanisms", default="", help="comma-separated; default: Passive-v0's pairs")
    parser.add_argument("--visible", action="store_true", help="hide vx, vy, dsize from the model")
    parser.add_argument("--static", action="store_true", help="static attributes (the kind) reach the decoder only")
    parser.add_argument("--revive", type=int, default=0, help="revive unused modules every N steps")
    parser.add_argument("--anneal", type=float, default=1.0, help="start temperature of deterministic annealing")
    parser.add_argument("--anneal-steps", type=int, default=0)
    parser.add_argument("--module-layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="cache directory for the rollouts (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    root = Path(args.data or tempfile.mkdtemp(prefix="vim-discovery-"))
    env_kwargs: dict = {"obs_size": 32}
    if args.mechanisms:
        env_kwargs.update(mechanisms=args.mechanisms.split(","), allowed=None, switch_prob=0.05)

    def rollouts(env_id: str, episodes: int, seed: int):
        path = root / f"{env_id.split('/')[1]}_{episodes}_{seed}_{args.mechanisms}"
        if not path.exists():
            collect(env_id, path, episodes=episodes, episode_len=24, seed=seed, num_envs=64, env_kwargs=env_kwargs)
        return open_dataset(path)

    train_data = rollouts("VimWorld/Passive-v0", 640, 0)
    hidden = ("vx", "vy", "dsize") if args.visible else ()
    features = [i for i, name in enumerate(STATE_FEATURES) if name not in hidden]
    view = lambda b: Batch(obs=b.obs[..., features], mechanism=b.mechanism)  # noqa: E731
    states = np.asarray(train_data.load_shard(0)["states"])[..., features]
    m = len(args.mechanisms.split(",")) if args.mechanisms else 6
    config = preset("tiny-state", state_dim=len(features), num_slots=4, num_modules=m,
                    module_layers=args.module_layers, anneal_temperature=args.anneal,
                    anneal_steps=args.anneal_steps,
                    static_features=constant_features(states) if args.static else ())
    model = VIM(config)
    model.standardizer.fit(torch.from_numpy(states))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = SequenceLoader(train_data, batch_size=32, seq_len=10, mode="state", seed=args.seed)
    start = time.perf_counter()
    for step in range(args.steps):
        batch = view(loader.batch_at(step))
        loss, _ = model.loss(batch, step)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if args.revive and step % args.revive == 0 and 0 < step < 0.7 * args.steps:
            model.revive_unused_modules(batch, torch.Generator().manual_seed(step))
    result = {"args": vars(args), "train_seconds": round(time.perf_counter() - start, 1)}
    splits = {"in_distribution": rollouts("VimWorld/Passive-v0", 128, 5000)}
    if not args.mechanisms:
        splits["heldout_pairs"] = rollouts("VimWorld/PassiveHeldout-v0", 128, 10000)
    for split, data in splits.items():
        batch = view(SequenceLoader(data, batch_size=128, seq_len=15, mode="state", seed=99).batch_at(0))
        with torch.no_grad():
            selections = model.observe(batch).selections[:, 1:].numpy().ravel()
        true = batch.mechanism[:, 1:].numpy().ravel()
        scores = discovery_scores(selections, true)
        result[split] = {k: round(float(v), 3) for k, v in scores.items() if k != "object_steps"}
        if not args.mechanisms and not args.visible:
            inertia = [mechanism_id(name) for name in ("still", "bounce", "size_pulse")]
            law = np.where(np.isin(true, inertia), -1, true)
            cap = discovery_scores(law, true)
            result[split]["law_following"] = {k: round(float(cap[k]), 3) for k in ("accuracy", "nmi")}
        print(f"{split}: object-steps of each true mechanism given to modules 0..{m - 1}")
        for t in np.unique(true):
            print(f"  {MECHANISM_NAMES[t]:>12}: {np.bincount(selections[true == t], minlength=m).tolist()}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
