"""The VIM objective in one place: the ELBO, summed over time, per sequence.

    ELBO = sum_t  E_q[log p(x_t | z_t)]
                - KL(q(z_t) || p(z_t | z_{t-1}, c_t))
                - KL(q(c_t) || p(c_t | z_{t-1}, c_{t-1}))

At t = 0 the latent prior is N(0, I) and there is no selection. For t >= 1 the latent KL is
marginalised exactly over the selection, ``sum_m q(c_t = m) KL(q(z_t) || N(mu_m, sigma_m))``,
which is cheap because every module's prediction is computed anyway, and has lower variance
than plugging in a sampled selection. The KL terms get a linear warm-up weight, and the latent
KL per object and step is floored at ``free_bits`` nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .distributions import apply_free_bits, categorical_kl, gaussian_kl
from .hmm import forward_backward


@dataclass(frozen=True)
class ELBOTerms:
    """Per-sequence terms ``(B,)`` (summed over time and objects) and the loss to minimise.

    Attributes:
        log_likelihood: ``sum_t E_q[log p(x_t | z_t)]``.
        kl_z: latent KL, after free bits.
        kl_c: selection KL.
        loss: ``mean_B(-log_likelihood + kl_weight * (kl_z + kl_c))``, a scalar.
    """

    log_likelihood: Tensor
    kl_z: Tensor
    kl_c: Tensor
    loss: Tensor


def elbo_terms(
    *,
    log_likelihood: Tensor,
    post_mean: Tensor,
    post_log_std: Tensor,
    module_means: Tensor,
    module_log_std: Tensor,
    post_c_logits: Tensor,
    prior_c_logits: Tensor,
    kl_weight: float,
    free_bits: float,
) -> ELBOTerms:
    """Assemble the negative ELBO from the model's distributions.

    Args:
        log_likelihood: ``(B, T)`` ``log p(x_t | z_t)`` at a posterior sample.
        post_mean, post_log_std: ``(B, T, K, D)`` the latent posterior ``q(z_t^k)``.
        module_means: ``(B, T-1, K, M, D)`` each module's prediction of ``z_t`` (t >= 1) from
            a posterior sample of ``z_{t-1}``.
        module_log_std: ``(M, D)`` each module's transition log-std.
        post_c_logits: ``(B, T-1, K, M)`` the selection posterior ``q(c_t^k)``, t >= 1.
        prior_c_logits: ``(B, T-1, K, M)`` the switching prior ``p(c_t^k | z_{t-1}, c_{t-1})``.
        kl_weight: warm-up weight in [0, 1] on both KL terms.
        free_bits: nats per object and step of latent KL that are free.
    """
    first = gaussian_kl(
        post_mean[:, :1], post_log_std[:, :1], torch.zeros_like(post_mean[:, :1]), torch.zeros_like(post_log_std[:, :1])
    )
    per_module = gaussian_kl(
        post_mean[:, 1:].unsqueeze(-2), post_log_std[:, 1:].unsqueeze(-2), module_means, module_log_std
    ).sum(-1)  # (B, T-1, K, M)
    q_c = post_c_logits.softmax(-1)
    kl_z_steps = torch.cat([first.sum(-1), (q_c * per_module).sum(-1)], dim=1)  # (B, T, K)
    kl_z = apply_free_bits(kl_z_steps, free_bits).flatten(1).sum(-1)
    kl_c = categorical_kl(post_c_logits, prior_c_logits).flatten(1).sum(-1)
    log_lik = log_likelihood.sum(-1)
    loss = (-log_lik + kl_weight * (kl_z + kl_c)).mean()
    return ELBOTerms(log_likelihood=log_lik, kl_z=kl_z, kl_c=kl_c, loss=loss)


def collapsed_elbo_terms(
    *,
    log_likelihood: Tensor,
    post_mean: Tensor,
    post_log_std: Tensor,
    module_kl: Tensor,
    log_init: Tensor,
    log_trans: Tensor,
    kl_weight: float,
    temperature: float = 1.0,
) -> tuple[ELBOTerms, Tensor]:
    """The same ELBO with the selections marginalised exactly (``selection_inference="exact"``).

    For each object the chain ``c_1..c_{T-1}`` is summed out by forward-backward:

        KL terms for t >= 1  =  -log sum_c p(c) exp(-sum_t KL(q(z_t) || N(mu_{c_t}, sigma_{c_t})))

    which equals ``sum_t E_q(c)[KL_z] + KL(q(c) || p(c))`` at the best possible ``q(c)`` (the
    exact smoothing posterior), so no selection network or Gumbel noise is needed.

    Args:
        log_likelihood: ``(B, T)``; post_mean, post_log_std: ``(B, T, K, D)``.
        module_kl: ``(B, T-1, K, M)`` ``KL(q(z_t^k) || N(mu_m, sigma_m))``, summed over D.
        log_init: ``(B, K, M)`` ``log p(c_1^k)``; log_trans: ``(B, T-1, K, M, M)``
            ``log p(c_t^k = j | c_{t-1}^k = i)`` at ``[:, t-1, :, i, j]`` (entry 0 unused).
        temperature: ``tau >= 1`` tempers the chain, ``-tau log sum_c (p(c) exp(-sum_t KL_t))^(1/tau)``
            (deterministic annealing): at ``tau > 1`` every module takes a share of every
            object-step, so none is starved before the modules have split; ``tau = 1`` is the ELBO.
    Returns: the terms (``kl_c`` holds the chain's part beyond the expected latent KL) and the
        posterior marginals ``q(c_t^k)`` ``(B, T-1, K, M)``.
    """
    b, steps, k, m = module_kl.shape
    chain = lambda x: x.transpose(1, 2).reshape(b * k, steps, *x.shape[3:])  # noqa: E731
    beta = 1.0 / temperature
    log_marginal, marginals = forward_backward(
        beta * log_init.reshape(b * k, m), beta * chain(log_trans), -beta * chain(module_kl)
    )
    log_marginal = log_marginal / beta
    marginals = marginals.reshape(b, k, steps, m).transpose(1, 2)
    first = gaussian_kl(
        post_mean[:, :1], post_log_std[:, :1], torch.zeros_like(post_mean[:, :1]), torch.zeros_like(post_log_std[:, :1])
    )
    chain_kl = -log_marginal.reshape(b, k).sum(-1)
    expected_kl_z = (marginals.detach() * module_kl.detach()).flatten(1).sum(-1)
    kl_z = first.flatten(1).sum(-1) + expected_kl_z
    kl_c = chain_kl - expected_kl_z  # KL(q(c) || p(c)) at the exact posterior
    log_lik = log_likelihood.sum(-1)
    loss = (-log_lik + kl_weight * (first.flatten(1).sum(-1) + chain_kl)).mean()
    return ELBOTerms(log_likelihood=log_lik, kl_z=kl_z, kl_c=kl_c, loss=loss), marginals


def subsample_steps(
    batch_size: int,
    seq_len: int,
    num: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """For each sequence, ``num`` distinct time steps drawn uniformly from ``range(seq_len)``.

    Returns ``(B, num)`` int64, sorted within each row. Deterministic under ``generator`` (or the
    global torch seed when None).
    """
    if not 1 <= num <= seq_len:
        raise ValueError(f"num={num} steps must be in [1, seq_len={seq_len}]")
    keys = torch.rand(batch_size, seq_len, generator=generator, device=device)
    return keys.argsort(-1)[:, :num].sort(-1).values


def reweighted_log_likelihood(log_likelihood: Tensor, steps: Tensor, seq_len: int) -> Tensor:
    """Scatter ``log_likelihood (B, s)`` of the subsampled ``steps (B, s)`` back to ``(B, T)``,
    scaled by ``T / s`` (zeros at the steps not drawn).

    Summed over time this is an unbiased estimate of ``sum_t log p(x_t | z_t)``: each step is
    drawn with probability ``s / T``.
    """
    if log_likelihood.shape != steps.shape:
        raise ValueError(
            f"log_likelihood {tuple(log_likelihood.shape)} and steps {tuple(steps.shape)} "
            "must have the same (B, s) shape"
        )
    scale = seq_len / steps.shape[1]
    out = log_likelihood.new_zeros(steps.shape[0], seq_len)
    return out.scatter(1, steps, log_likelihood * scale)
