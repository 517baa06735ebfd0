"""How much of each mechanism's motion a unary model could get from inertia alone: per mechanism,
the squared error of "repeat the last step" and of "stay" on a data set's object-steps.

    python benchmarks/inertia.py DATA

Object-steps count where the object kept its mechanism for two steps. A ratio (repeat / stay) near
0 means the mechanism's next step is its last one again, so an object's own velocity predicts it
(docs/model.md, "Interactions"); a random walk's is about 2.
"""

from __future__ import annotations

import argparse

import numpy as np
from vim_world.envs import MECHANISM_NAMES

from vim_world.data import open_dataset


def inertia_table(path: str) -> list[tuple[str, int, float, float]]:
    """``(mechanism, object-steps, repeat-last-step squared error, stay squared error)`` per mechanism."""
    dataset = open_dataset(path)
    shards = [dataset.load_shard(i) for i in range(len(dataset.shard_dirs))]
    pos = np.concatenate([np.asarray(s["states"])[..., :2] for s in shards])  # (E, T, K, 2)
    mech = np.concatenate([np.asarray(s["mechanism"]) for s in shards])  # (E, T, K)
    step = pos[:, 1:] - pos[:, :-1]  # displacement t -> t + 1
    prev, nxt = step[:, :-1], step[:, 1:]
    kept = mech[:, 1:-1] == mech[:, 2:]
    rows = []
    for m in np.unique(mech):
        hit = kept & (mech[:, 2:] == m)
        if hit.any():
            repeat = ((nxt - prev) ** 2).sum(-1)[hit].mean()
            stay = (nxt**2).sum(-1)[hit].mean()
            rows.append((MECHANISM_NAMES[int(m)], int(hit.sum()), float(repeat), float(stay)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a vim_world data set with states")
    args = parser.parse_args()
    print("| mechanism | object-steps | repeat last step | stay | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, n, repeat, stay in inertia_table(args.data):
        ratio = repeat / stay if stay > 0 else float("nan")
        print(f"| {name} | {n} | {repeat:.2e} | {stay:.2e} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
