"""What a trained VIM's latents hold about the task: a reward probe and an object-state read-out.

    python benchmarks/latent_probe.py RUN TRAIN_DATA HELDOUT_DATA [--steps 3000] [--features x,y,vx,vy]
        [--neighbours 10]

On the posterior means of the first 10 steps of every episode (``SequenceLoader``, one window per
episode) of ``TRAIN_DATA`` and ``HELDOUT_DATA``:

- **reward probe** (data sets with rewards, e.g. Steer's): a fresh
  :class:`~vim_world.model.heads.RelationHead` (the task heads' architecture, seed 0) trained
  ``--steps`` Adam steps (lr 1e-3, batches of 256 object-sets) on the training latents, its reward
  MSE on the training and held-out latents, beside the held-out rewards' variance (the MSE of
  predicting their mean);
- **state read-out** (state models, and pixel models with ``slot_cues``, whose slot k + 1 is
  object k): least squares from each object's latent to each state feature of ``--features``
  (names from ``vim_world.envs.STATE_FEATURES``; default x, y), R^2 per feature on the held-out
  object-steps. Pixel models without cues have no fixed slot per object: not scored. With
  ``vx, vy`` it tells whether a latent holds where an object is going, which one frame does not show.
  With ``--neighbours N``, also the R^2 of averaging the feature over the N nearest training latents
  (scikit-learn's ``KNeighborsRegressor``), which finds what a latent holds in a form that no linear
  map reads (a hue on a curve, say).

It tells apart latents that do not hold the objects' positions from heads that cannot read the
reward from them (docs/planning.md, "Planning from frames").
"""

from __future__ import annotations

import argparse

import torch
from sklearn.neighbors import KNeighborsRegressor
from vim_world.envs import STATE_FEATURES

from vim_world.data import SequenceLoader, open_dataset, uses_actions
from vim_world.imagination import Imagination
from vim_world.model.heads import RelationHead
from vim_world.sizing import prepare


def posterior_means(im: Imagination, data: str) -> dict[str, torch.Tensor]:
    """``z (N, K, D)``, the objects' ``states (N, K_obj, S)`` and, where the data has them,
    ``actions (N, A)`` and ``rewards (N,)`` over the first 10 steps of every episode."""
    dataset = open_dataset(data)
    loader = SequenceLoader(dataset, batch_size=64, seq_len=10, mode=im.config.input_mode, device="cpu")
    parts: dict[str, list[torch.Tensor]] = {"z": [], "actions": [], "rewards": [], "states": []}
    with torch.inference_mode():
        for batch in (prepare(b, uses_actions(dataset)) for b in loader):  # passive data: no actions
            parts["z"].append(im.model.observe(batch).z_mean.flatten(0, 1))
            states = batch.states if batch.states is not None else batch.obs  # state models: obs are states
            parts["states"].append(states.flatten(0, 1))
            for name in ("actions", "rewards"):
                if getattr(batch, name) is not None:
                    parts[name].append(getattr(batch, name).flatten(0, 1))
    return {name: torch.cat(values) for name, values in parts.items() if values}


def reward_probe(train: dict, heldout: dict, steps: int) -> dict[str, float]:
    """Train MSE, held-out MSE and held-out variance of a fresh relation head on the rewards."""
    torch.manual_seed(0)
    head = RelationHead(train["z"].shape[-1], train["actions"].shape[-1], 64)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(steps):
        i = torch.randint(0, len(train["z"]), (256,))
        loss = ((head(train["z"][i], train["actions"][i])[:, 0] - train["rewards"][i]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        mse = {name: float(((head(d["z"], d["actions"])[:, 0] - d["rewards"]) ** 2).mean())
               for name, d in (("train", train), ("heldout", heldout))}  # fmt: skip
    return {
        "train_mse": mse["train"],
        "heldout_mse": mse["heldout"],
        "heldout_variance": float(heldout["rewards"].var()),
    }


def state_r2(train: dict, heldout: dict, first_slot: int, columns: list[int], neighbours: int = 0) -> list[float]:
    """R^2 of the state features ``columns`` on held-out object-steps, read from object k's latent
    (slot ``first_slot + k``): by least squares, or with ``neighbours > 0`` as the mean over that
    many nearest training latents."""

    def design(d: dict) -> tuple[torch.Tensor, torch.Tensor]:
        k = d["states"].shape[1]
        z = d["z"][:, first_slot : first_slot + k].flatten(0, 1)
        return z, d["states"][..., columns].flatten(0, 1)

    (a, x), (a_test, x_test) = design(train), design(heldout)
    if neighbours:
        fitted = KNeighborsRegressor(neighbours).fit(a.numpy(), x.numpy())
        pred = torch.from_numpy(fitted.predict(a_test.numpy())).to(x_test.dtype)
    else:
        ones = torch.ones(len(a), 1), torch.ones(len(a_test), 1)
        pred = torch.cat([a_test, ones[1]], 1) @ torch.linalg.lstsq(torch.cat([a, ones[0]], 1), x).solution
    r2 = 1 - ((pred - x_test) ** 2).sum(0) / ((x_test - x_test.mean(0)) ** 2).sum(0)
    return [float(v) for v in r2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("train_data")
    parser.add_argument("heldout_data")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps of the reward probe")
    parser.add_argument("--features", default="x,y", help=f"comma-separated state features, from {STATE_FEATURES}")
    parser.add_argument("--neighbours", type=int, default=0, help="also a read-out by N nearest neighbours (0: off)")
    args = parser.parse_args(argv)
    features = args.features.split(",")
    unknown = [f for f in features if f not in STATE_FEATURES]
    if unknown:
        parser.error(f"--features: unknown {unknown} (expected names from {STATE_FEATURES})")
    if args.neighbours < 0:
        parser.error(f"--neighbours must be >= 0 (0: off), got {args.neighbours}")
    im = Imagination.from_checkpoint(args.run, device="cpu")
    train, heldout = posterior_means(im, args.train_data), posterior_means(im, args.heldout_data)
    cfg = im.config
    first_slot = 0 if cfg.input_mode == "state" else 1 if cfg.slot_cues else None
    print(f"# {args.run}: {cfg.input_mode} model, latents {tuple(train['z'].shape[1:])}, "
          f"{len(train['z'])} training and {len(heldout['z'])} held-out object-sets")  # fmt: skip
    if "rewards" in train and "rewards" in heldout:
        probe = reward_probe(train, heldout, args.steps)
        print("| reward probe: train MSE | held-out MSE | held-out variance |\n|---:|---:|---:|")
        print(f"| {probe['train_mse']:.4f} | {probe['heldout_mse']:.4f} | {probe['heldout_variance']:.4f} |")
    else:
        print("reward probe: not scored (the data sets have no rewards)")
    if first_slot is None:
        print("state read-out: not scored (no slot per object)")
        return
    columns = [STATE_FEATURES.index(f) for f in features]
    print("| state read-out R^2, held out | " + " | ".join(features) + " |")
    print("|---|" + "---:|" * len(features))
    rows = [("least squares from each object's latent", 0)]
    if args.neighbours:
        rows.append((f"mean of the {args.neighbours} nearest training latents", args.neighbours))
    for label, neighbours in rows:
        r2 = state_r2(train, heldout, first_slot, columns, neighbours)
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in r2) + " |")


if __name__ == "__main__":
    main()
