"""The ELBO's pieces against hand-computed values, and VIM's behavioural guarantees."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Normal

from vim_world.batch import Batch
from vim_world.model.config import VIMConfig, tiny_pixels, tiny_state
from vim_world.model.distributions import (
    apply_free_bits,
    categorical_kl,
    gaussian_kl,
    gaussian_log_prob,
    gumbel_softmax_st,
    kl_weight,
    sample_categorical,
    selection_temperature,
)
from vim_world.model.vim import VIM


def test_gaussian_kl_matches_hand_computed_value():
    # KL(N(1, 0.5^2) || N(0, 1)) = log(1/0.5) + (0.25 + 1) / 2 - 1/2 = log 2 + 0.125
    kl = gaussian_kl(torch.tensor(1.0), torch.tensor(math.log(0.5)), torch.tensor(0.0), torch.tensor(0.0))
    assert kl.item() == pytest.approx(math.log(2.0) + 0.125, abs=1e-6)
    # KL(N(0, 1) || N(2, 2^2)) = log 2 + (1 + 4) / 8 - 1/2
    kl = gaussian_kl(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(2.0), torch.tensor(math.log(2.0)))
    assert kl.item() == pytest.approx(math.log(2.0) + 5 / 8 - 0.5, abs=1e-6)
    # Against torch.distributions (an independent implementation), broadcasting included.
    g = torch.Generator().manual_seed(0)
    mq, sq, mp, sp = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(4))
    expected = torch.distributions.kl_divergence(Normal(mq, sq.exp()), Normal(mp[:1], sp[:1].exp()))
    torch.testing.assert_close(gaussian_kl(mq, sq, mp[:1], sp[:1]), expected)


def test_categorical_kl_matches_hand_computed_value():
    q = torch.tensor([0.5, 0.25, 0.25])
    p = torch.tensor([0.25, 0.25, 0.5])
    expected = 0.5 * math.log(2.0) + 0.25 * math.log(0.5)
    assert categorical_kl(q.log(), p.log()).item() == pytest.approx(expected, abs=1e-6)
    assert categorical_kl(q.log(), q.log() + 3.0).item() == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    lq, lp = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    expected = torch.distributions.kl_divergence(Categorical(logits=lq), Categorical(logits=lp))
    torch.testing.assert_close(categorical_kl(lq, lp), expected)


def test_kl_warmup_is_linear_then_one():
    assert kl_weight(0, 100) == 0.0
    assert kl_weight(25, 100) == pytest.approx(0.25)
    assert kl_weight(100, 100) == 1.0
    assert kl_weight(10_000, 100) == 1.0
    assert kl_weight(0, 0) == 1.0


def test_free_bits_floor_the_kl_and_stop_its_gradient_below():
    kl = torch.tensor([0.1, 0.5, 2.0], requires_grad=True)
    floored = apply_free_bits(kl, 1.0)
    assert floored.tolist() == pytest.approx([1.0, 1.0, 2.0])
    floored.sum().backward()
    assert kl.grad.tolist() == [0.0, 0.0, 1.0]
    assert apply_free_bits(kl, 0.0) is kl


def test_free_bits_raise_the_loss_floor():
    torch.manual_seed(0)
    model = VIM(tiny_state(selection_inference="amortized"))
    batch = Batch(obs=torch.randn(2, 4, 3, 4))
    torch.manual_seed(1)
    _, plain = model.loss(batch, step=10_000)
    model.config = tiny_state(free_bits=1e4, selection_inference="amortized")
    torch.manual_seed(1)
    _, floored = model.loss(batch, step=10_000)
    assert floored["kl_z"] == pytest.approx(1e4 * 4 * 3)
    assert floored["loss"] > plain["loss"]


def _state_model(**overrides) -> VIM:
    torch.manual_seed(0)
    return VIM(tiny_state(**overrides)).eval()


def test_prior_step_is_deterministic_under_a_generator():
    model = _state_model()
    z = torch.randn(5, 3, 8)
    c = torch.tensor([[-1, 0, 1]] * 5)
    outs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(7)
        outs.append(model.prior_step(z, c, generator=gen, sample_z=True))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    other = model.prior_step(z, c, generator=torch.Generator().manual_seed(8), sample_z=True)
    assert not torch.equal(outs[0][0], other[0])


def test_forced_selections_are_respected():
    model = _state_model()
    z = torch.randn(64, 3, 8)
    forced = torch.full((64, 3), -1, dtype=torch.long)
    forced[:, 1] = 2
    forced[::2, 0] = 3
    _, c, _ = model.prior_step(
        z, torch.zeros(64, 3, dtype=torch.long), forced=forced, generator=torch.Generator().manual_seed(0)
    )
    assert torch.all(c[:, 1] == 2)
    assert torch.all(c[::2, 0] == 3)
    assert len(set(c[:, 2].tolist())) > 1  # unforced objects are still sampled
    # forcing a module is the same as applying that module's mean prediction
    means, _ = model.transitions(z, None)
    z_next, _, _ = model.prior_step(z, c, forced=forced, sample_z=False)
    assert torch.allclose(z_next[:, 1], means[:, 1, 2])


def test_unary_modules_keep_objects_independent():
    model = _state_model(nary=False)
    z = torch.randn(4, 3, 8)
    changed = z.clone()
    changed[:, 2] += 5.0
    before, _ = model.transitions(z, None)
    after, _ = model.transitions(changed, None)
    assert torch.equal(before[:, :2], after[:, :2])
    assert not torch.allclose(before[:, 2], after[:, 2])
    forced = torch.tensor([[0, 1, 2]] * 4)
    za, _, _ = model.prior_step(z, forced, forced=forced, sample_z=False)
    zb, _, _ = model.prior_step(changed, forced, forced=forced, sample_z=False)
    assert torch.equal(za[:, :2], zb[:, :2])


def test_nary_modules_read_other_objects():
    model = _state_model(nary=True)
    z = torch.randn(4, 3, 8)
    changed = z.clone()
    changed[:, 2] += 5.0
    before, _ = model.transitions(z, None)
    after, _ = model.transitions(changed, None)
    assert not torch.allclose(before[:, 0], after[:, 0])


def test_pixel_alpha_masks_sum_to_one_over_slots():
    torch.manual_seed(0)
    model = VIM(tiny_pixels(hidden=16))
    decoded = model.decode(torch.randn(2, 4, 16))
    assert decoded.masks.shape == (2, 4, 32, 32)
    assert torch.allclose(decoded.masks.sum(1), torch.ones(2, 32, 32), atol=1e-5)
    assert torch.allclose((decoded.rgb * decoded.masks[:, :, None]).sum(1), decoded.obs)


def test_pixel_mode_training_reduces_the_loss():
    torch.manual_seed(0)
    model = VIM(tiny_pixels(hidden=16, kl_warmup_steps=0))
    frames = torch.rand(2, 3, 3, 32, 32)
    batch = Batch(obs=frames)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(8):
        loss, _ = model.loss(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < sum(losses[:3])


def test_config_validation_names_the_bad_values():
    with pytest.raises(ValueError, match="image_size=30"):
        VIMConfig(image_size=30)
    with pytest.raises(ValueError, match="input_mode='video'.*num_modules=0"):
        VIMConfig(input_mode="video", num_modules=0)
    cfg = tiny_pixels(action_dim=3)
    assert VIMConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="bogus"):
        VIMConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_forward_backward_matches_brute_force_enumeration():
    import itertools

    from vim_world.model.hmm import forward_backward  # noqa: PLC0415

    torch.manual_seed(0)
    n, t, m = 2, 4, 3
    log_init = torch.randn(n, m).log_softmax(-1)
    log_trans = torch.randn(n, t, m, m).log_softmax(-1)
    log_lik = torch.randn(n, t, m)
    log_marginal, marginals = forward_backward(log_init, log_trans, log_lik)
    for i in range(n):
        paths = list(itertools.product(range(m), repeat=t))
        scores = torch.stack([
            log_init[i, c[0]] + log_lik[i, 0, c[0]]
            + sum(log_trans[i, s, c[s - 1], c[s]] + log_lik[i, s, c[s]] for s in range(1, t))
            for c in paths
        ])  # fmt: skip
        torch.testing.assert_close(log_marginal[i], torch.logsumexp(scores, 0))
        weights = (scores - torch.logsumexp(scores, 0)).exp()
        expected = torch.zeros(t, m)
        for w, c in zip(weights, paths):
            expected[torch.arange(t), torch.tensor(c)] += w
        torch.testing.assert_close(marginals[i], expected)


def test_exact_and_amortized_selection_inference_both_train():
    from vim_world.model import preset

    for mode in ("exact", "amortized"):
        torch.manual_seed(0)
        model = VIM(preset("tiny-state", hidden=16, selection_inference=mode))
        batch = Batch(obs=torch.randn(4, 5, 3, 4))
        post = model.observe(batch)
        torch.testing.assert_close(post.probs.sum(-1), torch.ones(4, 5, 3))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = None
        for step in range(20):
            loss, stats = model.loss(batch, step)
            first = first if first is not None else loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert loss.item() < first and torch.isfinite(loss), (mode, first, loss.item())


def test_free_bits_need_the_amortized_selection_posterior():
    with pytest.raises(ValueError, match="free_bits"):
        tiny_state(free_bits=1.0, selection_inference="exact")


def test_unused_modules_become_perturbed_copies_when_no_live_module_has_data_to_split():
    model = VIM(tiny_state(hidden=16))
    bank = model.transitions
    with torch.no_grad():  # make module 2 explain everything: the others predict far off
        for m in (0, 1, 3):
            bank.layers[-1].bias[m] += 50.0
    batch = Batch(obs=torch.randn(1, 2, 3, 4) * 0.01)  # 3 object-steps: too few to split (8)
    revived = model.revive_unused_modules(batch, torch.Generator().manual_seed(0))
    assert revived == [0, 1, 3]
    for m in revived:
        torch.testing.assert_close(bank.layers[-1].bias[m], bank.layers[-1].bias[2])
        torch.testing.assert_close(bank.raw_log_std[m], bank.raw_log_std[2])
        assert not torch.equal(bank.layers[0].weight[m], bank.layers[0].weight[2])  # perturbed copies
        torch.testing.assert_close(bank.layers[0].weight[m], bank.layers[0].weight[2], atol=0.05, rtol=0)


def test_selection_temperature_decays_geometrically_to_one():
    from vim_world.model.distributions import selection_temperature

    assert selection_temperature(0, 30.0, 100) == pytest.approx(30.0)
    assert selection_temperature(50, 30.0, 100) == pytest.approx(30.0**0.5)
    assert selection_temperature(100, 30.0, 100) == 1.0
    assert selection_temperature(0, 30.0, 0) == 1.0
    with pytest.raises(ValueError, match="anneal_temperature"):
        tiny_state(anneal_temperature=0.5)
    with pytest.raises(ValueError, match="anneal_steps"):
        tiny_state(anneal_steps=10, selection_inference="amortized")


def test_tempered_chain_matches_brute_force_and_flattens_the_posterior():
    """At temperature tau the chain term is -tau log sum_c exp((log p(c) - sum_t KL_t) / tau)."""
    import itertools

    from vim_world.model.elbo import collapsed_elbo_terms

    torch.manual_seed(0)
    b, t, k, m, d, tau = 1, 3, 1, 3, 2, 4.0
    module_kl = torch.rand(b, t, k, m) * 5
    log_init = torch.randn(b, k, m).log_softmax(-1)
    log_trans = torch.randn(b, t, k, m, m).log_softmax(-1)
    args = dict(
        log_likelihood=torch.zeros(b, t + 1),
        post_mean=torch.zeros(b, t + 1, k, d),
        post_log_std=torch.zeros(b, t + 1, k, d),
        module_kl=module_kl,
        log_init=log_init,
        log_trans=log_trans,
        kl_weight=1.0,
    )
    terms, tempered = collapsed_elbo_terms(**args, temperature=tau)
    _, exact = collapsed_elbo_terms(**args)
    scores = torch.stack([
        log_init[0, 0, c[0]] - module_kl[0, 0, 0, c[0]]
        + sum(log_trans[0, s, 0, c[s - 1], c[s]] - module_kl[0, s, 0, c[s]] for s in range(1, t))
        for c in itertools.product(range(m), repeat=t)
    ])  # fmt: skip
    torch.testing.assert_close(terms.loss, -tau * torch.logsumexp(scores / tau, 0))
    entropy = lambda p: -(p * p.log()).sum(-1).mean()  # noqa: E731
    assert entropy(tempered) > entropy(exact)


def test_gaussian_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, mean, log_std = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    expected = Normal(mean, log_std.exp()).log_prob(x)
    torch.testing.assert_close(gaussian_log_prob(x, mean, log_std), expected)
    # hand-computed: log N(1; 0, 1) = -1/2 - log(2 pi) / 2
    assert gaussian_log_prob(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(0.0)).item() == pytest.approx(
        -0.5 - 0.5 * math.log(2 * math.pi), abs=1e-6
    )


def test_selection_temperature_at_its_bounds():
    assert selection_temperature(5, 4.0, 10) == pytest.approx(2.0)  # 4 ** (1 - 1/2)
    assert selection_temperature(0, 8.0, 1) == 8.0  # a one-step anneal still starts at `start`
    assert selection_temperature(20, 8.0, 10) == 1.0 and selection_temperature(3, 8.0, 0) == 1.0


def test_gumbel_softmax_samples_follow_the_softmax():
    """Hard samples are one-hot with frequencies softmax(logits) (Gumbel-max trick); 20 000 draws
    give a binomial standard error below 0.004 per class."""
    logits = torch.tensor([0.0, math.log(3.0), math.log(6.0)]).expand(20_000, 3)
    hard = gumbel_softmax_st(logits, tau=0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(hard.sum(-1), torch.ones(20_000)) and set(hard.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(hard.mean(0), torch.tensor([0.1, 0.3, 0.6]), atol=0.015, rtol=0)


def test_categorical_samples_follow_the_probabilities_and_skip_zero_ones():
    """40 000 draws per row: frequencies within 5 binomial standard errors (< 0.0125) of the
    probabilities; zero-probability indices (first, middle, last) never drawn; weights need not sum to 1."""
    probs = torch.tensor([[0.0, 0.2, 0.0, 0.8], [0.5, 0.0, 0.5, 0.0], [1.0, 2.0, 3.0, 4.0]])
    draws = sample_categorical(probs.expand(40_000, 3, 4), torch.Generator().manual_seed(0))
    assert draws.shape == (40_000, 3) and draws.dtype == torch.int64
    freq = torch.nn.functional.one_hot(draws, 4).float().mean(0)
    torch.testing.assert_close(freq, probs / probs.sum(-1, keepdim=True), atol=0.0125, rtol=0)
    assert (freq[probs == 0] == 0).all()
    again = sample_categorical(probs.expand(40_000, 3, 4), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
