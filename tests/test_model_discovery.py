"""End to end in state mode: VIM trained on our env's rollouts recovers mechanisms (slow).

The worlds run mechanisms that a single state cannot tell apart, so only the modules can explain
which one drives an object: the model sees what a frame shows (position, size, hue, kind: no
velocity or size change). Each test trains on a CPU for 1,500 steps (about 25 s on one thread)
with deterministic annealing of the selection chain and module revival, and scores the inferred
selections on held-out windows against the true mechanism ids after Hungarian matching.
Measured figures are in the docstrings; `benchmarks/discovery.py` runs the same worlds over seeds
(docs/model.md: 5 of 5 seeds recover all three mechanisms; without annealing 1 of 5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from vim_world.envs import MECHANISM_NAMES, STATE_FEATURES

import vim_world  # noqa: F401
from vim_world.batch import Batch
from vim_world.data import SequenceLoader, collect, open_dataset
from vim_world.metrics import discovery_scores, hungarian_accuracy
from vim_world.model import VIM, discovery_recipe, preset

VISIBLE = [i for i, name in enumerate(STATE_FEATURES) if name not in ("vx", "vy", "dsize")]
STEPS = 1500
ANNEALED = {"anneal_temperature": 30.0, "anneal_steps": 900}


@pytest.fixture
def one_thread():
    """One intra-op thread: the same arithmetic on every machine, and no oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_and_infer(
    root, mechanisms: list[str], steps: int = STEPS, revive_every: int = 100, **overrides: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Collect a world of ``mechanisms``, train state VIM (M = number of mechanisms) on the visible
    features, and return its inferred modules and the true mechanism ids on held-out windows,
    ``(B, T - 1, K)`` each."""
    torch.manual_seed(0)
    path = collect("VimWorld/Passive-v1", root / "d", episodes=640, episode_len=24, seed=0, num_envs=64,
                   env_kwargs={"obs_size": 32, "mechanisms": mechanisms, "allowed": None, "switch_prob": 0.05})  # fmt: skip
    data = open_dataset(path)
    visible = lambda b: Batch(obs=b.obs[..., VISIBLE], mechanism=b.mechanism)  # noqa: E731
    model = VIM(preset("tiny-state", state_dim=len(VISIBLE), num_slots=4, num_modules=len(mechanisms), **overrides))
    model.standardizer.fit(torch.from_numpy(np.array(data.load_shard(0)["states"]))[..., VISIBLE])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = SequenceLoader(data, batch_size=32, seq_len=10, mode="state", seed=0)
    for step in range(steps):
        batch = visible(loader.batch_at(step))
        loss, _ = model.loss(batch, step)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if revive_every and step % revive_every == 0 and 0 < step < 0.7 * steps:
            model.revive_unused_modules(batch, torch.Generator().manual_seed(step))
    batch = visible(SequenceLoader(data, batch_size=128, seq_len=15, mode="state", seed=99).batch_at(0))
    with torch.no_grad():
        selections = model.observe(batch).selections[:, 1:].numpy()
    return selections, batch.mechanism[:, 1:].numpy()


def _recall(selections: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Per mechanism: the share of its object-steps given to the module matched to it."""
    _, mapping = hungarian_accuracy(selections, true)
    return {MECHANISM_NAMES[t]: float(np.mean(selections[true == t] == m)) for m, t in mapping.items()}


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_vim_recovers_three_mechanisms_that_a_state_cannot_tell_apart(tmp_path):
    """Still, colour cycling, orbit. Measured here: accuracy 0.991, NMI 0.957; still 0.990, orbit
    0.980, colour cycling 1.000."""
    mechanisms = ["still", "color_cycle", "orbit"]
    selections, true = _train_and_infer(tmp_path, mechanisms, **ANNEALED)
    scores = discovery_scores(selections, true)
    recall = _recall(selections, true)
    assert scores["accuracy"] >= 0.9 and scores["nmi"] >= 0.8, (scores, recall)
    assert all(recall[name] >= 0.9 for name in mechanisms), (scores, recall)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_the_discovery_recipe_recovers_the_six_mechanisms_of_the_passive_world(tmp_path):
    """Full states of `Passive-v1` (velocities and size changes included), trained through the
    CLI's ``train()`` with ``discovery_recipe`` (observed latents, affine modules, annealing) and
    split moves, as in ``benchmarks/discovery.py`` and the main job, scored on every object-step
    of fresh-seed episodes.
    Measured: accuracy 0.953, NMI 0.906 (seed 0; 0.953 to 0.963 over seeds 0 to 3 in
    docs/model.md). Most of what is missed are the steps at a switch, where the new mechanism's
    module has never seen the old one's velocity."""
    from vim_world.train import TrainConfig, load_model, train

    paths = {}
    for split, episodes, seed in (("train", 640, 0), ("eval", 128, 5000)):
        paths[split] = collect("VimWorld/Passive-v1", tmp_path / split, episodes=episodes, episode_len=24, seed=seed,
                               num_envs=64, env_kwargs={"obs_size": 32})  # fmt: skip
    steps = 2000
    overrides = {"num_modules": 6, **discovery_recipe(steps)}
    cfg = TrainConfig(data=str(paths["train"]), out=str(tmp_path / "run"), preset="tiny", mode="state",
                      overrides=overrides, steps=steps, seed=0, device="cpu", amp=False, holdout=0.0,
                      progress=False, checkpoint_every=steps, revive_every=100, static_attributes=True)  # fmt: skip
    train(cfg)
    model, _ = load_model(cfg.out, device="cpu")
    data = open_dataset(paths["eval"])
    shards = [data.load_shard(i) for i in range(len(data.shard_dirs))]
    with torch.no_grad():
        selections = np.concatenate(
            [model.observe(torch.from_numpy(np.array(s["states"]))).selections[:, 1:].numpy() for s in shards]
        )
    true = np.concatenate([np.array(s["mechanism"])[:, 1:] for s in shards])
    scores = discovery_scores(selections, true)
    assert scores["accuracy"] >= 0.9 and scores["nmi"] >= 0.85, (scores, _recall(selections, true))
