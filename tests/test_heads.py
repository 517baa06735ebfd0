"""Whole-scene heads: a reward that depends on a pair of objects jointly, slot order, and VIM wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vim_world.batch import Batch
from vim_world.model import VIM, preset
from vim_world.model.heads import RelationHead, SumHead, _pair_pool


def pair_scene(n: int, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes ``(n, k, 2 + k)``: a random position per object and a one-hot identity; the target
    ``(n,)`` is the distance between objects 0 and 1 (a function of a pair, as the steer reward)."""
    pos = torch.rand(n, k, 2, generator=generator)
    ident = torch.eye(k).expand(n, k, k)
    perm = torch.stack([torch.randperm(k, generator=generator) for _ in range(n)])  # slot order is random
    z = torch.cat([pos, ident], -1).gather(1, perm[..., None].expand(-1, -1, 2 + k))
    return z, (pos[:, 0] - pos[:, 1]).norm(dim=-1)


def fit(head: torch.nn.Module, z: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(head(z, None).squeeze(-1), y).backward()
        opt.step()


def test_the_relation_head_fits_a_pair_function_that_a_sum_of_objects_cannot():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    k = 4
    z, y = pair_scene(2048, k, gen)
    z_test, y_test = pair_scene(512, k, gen)
    errors = {}
    for name, cls in (("relation", RelationHead), ("sum", SumHead)):
        head = cls(2 + k, 0, 64)
        fit(head, z, y, steps=400)
        with torch.no_grad():
            errors[name] = float(((head(z_test, None).squeeze(-1) - y_test) ** 2).mean() / y_test.var())
    # Fraction of the target's variance left unexplained on held-out scenes.
    assert errors["relation"] < 0.1, errors
    assert errors["sum"] > 0.5, errors


def test_relation_head_ignores_slot_order_and_accepts_any_k():
    gen = torch.Generator().manual_seed(1)
    head = RelationHead(5, 3, 16)
    z, a = torch.randn(6, 4, 5, generator=gen), torch.randn(6, 3, generator=gen)
    perm = torch.tensor([2, 0, 3, 1])
    eps = torch.finfo(torch.float32).eps
    assert torch.allclose(head(z, a), head(z[:, perm], a), atol=100 * eps)
    assert head(torch.randn(6, 7, 5, generator=gen), a).shape == head(z[:, :1], a).shape == (6, 1)


def test_chunked_pair_pooling_equals_the_one_shot_expression(monkeypatch):
    """Without gradients the pairs are pooled a chunk of states at a time (cache-sized); the
    result equals the one-shot ``relu(left_i + right_j).mean`` up to float rounding, at chunk
    boundaries that do not divide N too, and the head's output with and without grad agrees."""
    import vim_world.model.heads as heads

    gen = torch.Generator().manual_seed(2)
    left, right = torch.randn(37, 5, 8, generator=gen), torch.randn(37, 5, 8, generator=gen)
    one_shot = (left[:, :, None] + right[:, None, :]).relu().mean((1, 2))
    monkeypatch.setattr(heads, "PAIR_CHUNK_BYTES", 5 * 5 * 8 * 4 * 6)  # 6 states per chunk
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(_pair_pool(left, right), one_shot, atol=100 * eps, rtol=100 * eps)
    torch.testing.assert_close(
        _pair_pool(left, right, "max"), (left[:, :, None] + right[:, None, :]).relu().amax((1, 2))
    )
    weights = torch.rand(37, 5, generator=gen) + 0.1
    pair_weights = (weights[:, :, None] * weights[:, None, :])[..., None]
    gated = ((left[:, :, None] + right[:, None, :]).relu() * pair_weights).sum((1, 2)) / pair_weights.sum((1, 2))
    torch.testing.assert_close(_pair_pool(left, right, "gated", weights), gated, atol=100 * eps, rtol=100 * eps)
    z, a = torch.randn(37, 5, 5, generator=gen), torch.randn(37, 3, generator=gen)
    for pool in ("mean", "max", "gated"):
        head = RelationHead(5, 3, 8, pool=pool)
        with torch.no_grad():
            fast = head(z, a)
        torch.testing.assert_close(fast, head(z, a), atol=100 * eps, rtol=100 * eps)


def test_max_pooled_head_keeps_a_pair_feature_when_objects_are_added():
    """With ``pool="max"`` a scene whose added objects copy an existing one gives the same output
    (the max over pairs is unchanged); the mean's is not, its pairs reweighted. A bad pool is refused."""
    gen = torch.Generator().manual_seed(3)
    z, a = torch.randn(4, 3, 5, generator=gen), torch.randn(4, 2, generator=gen)
    more = torch.cat([z, z[:, :1], z[:, :1]], 1)  # object 0 twice more
    with torch.no_grad():
        torch.manual_seed(0)
        head = RelationHead(5, 2, 8, pool="max")
        torch.testing.assert_close(head(more, a), head(z, a))
        torch.manual_seed(0)
        mean = RelationHead(5, 2, 8)
        assert not torch.allclose(mean(more, a), mean(z, a))
    with pytest.raises(ValueError, match=r"pool must be one of \('mean', 'max', 'gated'\), got 'sum'"):
        RelationHead(5, 2, 8, pool="sum")
    with pytest.raises(ValueError, match="head_pool='sum'"):
        preset("tiny-state", head_pool="sum")


def test_vim_trains_reward_and_termination_heads_from_the_batch():
    torch.manual_seed(0)
    cfg = preset("tiny-state", num_slots=3, state_dim=4, action_dim=2, reward_head=True)
    model = VIM(cfg)
    b, t = 4, 3
    terminations = torch.zeros(b, t, dtype=torch.bool)
    terminations[0, -1] = True
    batch = Batch(
        obs=torch.randn(b, t, 3, 4), actions=torch.randn(b, t, 2), rewards=torch.randn(b, t), terminations=terminations
    )
    loss, stats = model.loss(batch, step=0)
    assert {"reward_mse", "termination_bce"} <= stats.keys()
    loss.backward()
    assert model.task_heads.out[-1].weight.grad[1].abs().sum() > 0  # the termination output learns
    z, a = torch.randn(5, 3, cfg.latent_size), torch.randn(5, 2)
    assert model.reward(z, a).shape == model.termination_logit(z, a).shape == (5,)


@pytest.mark.parametrize("shape", [False, True])
def test_rewards_reach_the_encoder_only_when_the_heads_shape_the_latents(shape):
    """Detached heads (the default) are read-outs: the rewards in a batch change no gradient of
    the encoder; with ``heads_shape_latents`` they do."""
    cfg = preset("tiny-state", num_slots=3, state_dim=4, action_dim=2, reward_head=True, heads_shape_latents=shape)
    gen = torch.Generator().manual_seed(0)
    obs, actions = torch.randn(4, 3, 3, 4, generator=gen), torch.randn(4, 3, 2, generator=gen)

    def encoder_grads(rewards: torch.Tensor) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = VIM(cfg)
        loss, _ = model.loss(Batch(obs=obs, actions=actions, rewards=rewards), step=0)
        loss.backward()
        return [p.grad.clone() for p in model.encoder.parameters() if p.grad is not None]

    low, high = encoder_grads(torch.zeros(4, 3)), encoder_grads(torch.full((4, 3), 5.0))
    assert low and len(low) == len(high)
    assert all(torch.equal(a, b) for a, b in zip(low, high)) != shape


def test_batches_mark_the_action_that_ended_an_episode(tmp_path):
    from vim_world.data import SequenceLoader, collect, open_dataset

    path = collect(
        "VimWorld/Steer-v0",
        tmp_path / "d",
        episodes=128,
        episode_len=60,
        seed=3,
        num_envs=64,
        env_kwargs={"obs_size": 32},
    )
    dataset = open_dataset(path)
    valid = np.concatenate([dataset.load_shard(i)["valid"] for i in range(len(dataset.shard_dirs))])
    ended = valid[:, :-1] & ~valid[:, 1:]  # (E, T - 1): action t ended episode e
    assert ended.sum() >= 1
    batch = next(iter(SequenceLoader(dataset, batch_size=128, seq_len=60, mode="state")))
    np.testing.assert_array_equal(batch.terminations[:, :-1].numpy(), ended)
    assert not batch.terminations[:, -1].any()
    assert (batch.rewards[batch.terminations] > 0.5).all()  # the success bonus was paid


def test_gated_head_is_moved_little_by_an_added_object_at_the_floor():
    """``pool="gated"`` weighs pair (i, j) by ``w_i w_j``. With three objects at full relevance and
    an added one at the floor (0.1), the added pairs carry 0.61 / 9.61 of the weight, against
    7 / 16 for the plain mean: the same networks' output moves several times less."""
    from vim_world.model.heads import GATE_FLOOR

    gen = torch.Generator().manual_seed(4)
    z, a = torch.randn(6, 3, 5, generator=gen), torch.randn(6, 2, generator=gen)
    z[..., 0] = 5.0  # the largest feature of each object: relevance 1
    added = torch.cat([z, torch.tensor([-9.0, 1.0, 1.0, 1.0, 1.0]).expand(6, 1, 5)], 1)

    class FirstFeature(torch.nn.Module):  # relevance from the first normalised feature
        def forward(self, zn: torch.Tensor) -> torch.Tensor:
            return 100.0 * zn[..., :1] + 50.0

    with torch.no_grad():
        torch.manual_seed(0)
        gated = RelationHead(5, 2, 8, pool="gated")
        gated.relevance = FirstFeature()
        torch.manual_seed(0)
        mean = RelationHead(5, 2, 8)
        moved_gated = (gated(added, a) - gated(z, a)).abs().mean()
        moved_mean = (mean(added, a) - mean(z, a)).abs().mean()
    assert GATE_FLOOR == 0.1 and 0 < moved_gated < 0.3 * moved_mean
    assert preset("tiny-state", head_pool="gated").head_pool == "gated"
