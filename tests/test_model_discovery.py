"""End to end in state mode: VIM trained on our env's rollouts recovers mechanisms (slow).

The world runs three mechanisms that a single state cannot tell apart (still, colour cycling,
size pulsing), so only the modules can explain which one drives an object. The model sees what a
frame shows (position, size, hue, kind: no velocity or size change), trains for 1,000 steps on a
CPU, and its inferred selections are scored against the true mechanism ids after Hungarian
matching. Measured: accuracy 0.79, NMI 0.71 (still and colour cycling recovered whole; size
pulsing half confused with still). The issue's target (>= 3 mechanisms at >= 0.9) is not met;
this test guards what is reached.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vim_world  # noqa: F401
from vim_world.batch import Batch
from vim_world.data import SequenceLoader, collect, open_dataset
from vim_world.envs import STATE_FEATURES, mechanism_id
from vim_world.metrics import discovery_scores, hungarian_accuracy
from vim_world.model import VIM, preset

MECHANISMS = ["still", "color_cycle", "size_pulse"]
VISIBLE = [i for i, name in enumerate(STATE_FEATURES) if name not in ("vx", "vy", "dsize")]


@pytest.fixture
def one_thread():
    """One intra-op thread: the same arithmetic on every machine, and no oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_and_infer(root, mechanisms: list[str], steps: int, revive_every: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Collect a world of ``mechanisms``, train state VIM on the visible features, and return its
    inferred modules and the true mechanism ids on held-out windows, ``(B, T - 1, K)`` each."""
    torch.manual_seed(0)
    path = collect("VimWorld/Passive-v0", root / "d", episodes=640, episode_len=24, seed=0, num_envs=64,
                   env_kwargs={"obs_size": 32, "mechanisms": mechanisms, "allowed": None, "switch_prob": 0.05})  # fmt: skip
    data = open_dataset(path)
    visible = lambda b: Batch(obs=b.obs[..., VISIBLE], mechanism=b.mechanism)  # noqa: E731
    model = VIM(preset("tiny-state", state_dim=len(VISIBLE), num_slots=4, num_modules=len(mechanisms)))
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


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_state_vim_recovers_mechanisms_it_must_tell_apart(tmp_path):
    selections, true = _train_and_infer(tmp_path, MECHANISMS, steps=1000)
    scores = discovery_scores(selections, true)
    assert scores["accuracy"] >= 0.7 and scores["nmi"] >= 0.5, scores
    _, mapping = hungarian_accuracy(selections, true)
    for name in ("still", "color_cycle"):  # each found whole by one module
        mid = mechanism_id(name)
        module = next(m for m, t in mapping.items() if t == mid)
        assert np.mean(selections[true == mid] == module) >= 0.9, (name, scores)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_module_revival_splits_motions_that_collapse_without_it(tmp_path):
    """Still, colour cycling and two drifts: without revival every motion shares one module
    (measured: accuracy 0.42, NMI 0.55); reviving unused modules from the busiest one splits
    them (measured: accuracy 0.87, NMI 0.78)."""
    selections, true = _train_and_infer(tmp_path, ["still", "color_cycle", "drift_right", "drift_up"], steps=1500,
                                        revive_every=150)  # fmt: skip
    scores = discovery_scores(selections, true)
    assert scores["accuracy"] >= 0.8 and scores["nmi"] >= 0.7, scores
