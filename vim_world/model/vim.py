"""VIM: Variational Independent Modules (Assouel et al., CLeaR 2022)."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import Batch
from .config import VIMConfig
from .decoders import Decoded, IdentityStateDecoder, SpatialBroadcastDecoder, StateDecoder
from .distributions import gaussian_kl, gumbel_softmax_st, kl_weight, sample_categorical, selection_temperature
from .elbo import ELBOTerms, collapsed_elbo_terms, elbo_terms, reweighted_log_likelihood, subsample_steps
from .encoders import IdentityStateEncoder, PixelEncoder, StateEncoder
from .heads import RelationHead
from .layers import Standardizer
from .modules import ModuleBank
from .outputs import Posterior, Prediction
from .switching import SelectionPosterior, SwitchingPrior


class VIM(nn.Module):
    """K object latents, M shared transition modules, and a per-object, per-step module selection.

    Generative model: ``z_0^k ~ N(0, I)``; for t >= 1,
    ``c_t^k ~ p(c_t^k | z_{t-1}^k, c_{t-1}^k, a_{t-1})`` and
    ``z_t^k ~ N(f_{c_t^k}(z_{t-1}^k, a_{t-1}), sigma_{c_t^k}^2)``; ``x_t ~ p(x_t | z_t)``. With
    ``config.transition_order = 2`` the modules also read ``z_{t-1}^k - z_{t-2}^k``.
    Inference: ``q(z_t^k | x_t)`` from the encoder, ``q(c_t^k | z_{t-1}^k, z_t^k)`` from how well
    each module explains the transition. The objective is in :func:`vim_world.model.elbo.elbo_terms`.
    """

    def __init__(self, config: VIMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.input_mode == "pixels":
            self.encoder: nn.Module = PixelEncoder(
                c.channels,
                c.image_size,
                c.hidden,
                c.num_slots,
                c.latent_dim,
                c.slot_iters,
                c.min_log_std,
                c.carried_slot_iters,
                c.slot_cues,
                c.encoder_stride,
                c.slot_init,
                c.slot_predictor,
                c.slot_motion,
                c.slot_colour,
            )
            self.decoder: nn.Module = SpatialBroadcastDecoder(
                c.latent_dim,
                c.decoder_hidden or c.hidden,
                c.channels,
                c.image_size,
                c.pixel_sigma,
                c.decoder_layers,
                c.decoder_rgb,
                c.background_slot,
                c.decoder_broadcast,
            )
        elif c.state_encoder == "identity":
            self.encoder = IdentityStateEncoder(c.min_log_std)
            self.decoder = IdentityStateDecoder(c.dynamic_features, c.static_features, c.state_sigma)
        else:
            self.encoder = StateEncoder(len(c.dynamic_features), c.hidden, c.latent_dim, c.min_log_std)
            self.decoder = StateDecoder(c.latent_size, c.hidden, c.state_dim, c.state_sigma)
        self._dynamic, self._static = list(c.dynamic_features), list(c.static_features)  # state columns
        # State features are modelled standardised (identity in pixel mode and until fitted).
        self.standardizer = Standardizer(c.state_dim)
        self.transitions = ModuleBank(
            c.latent_dim,
            c.action_dim,
            c.hidden,
            c.num_modules,
            c.nary,
            c.min_log_std,
            c.module_layers,
            len(c.static_features),
            c.nary_scores,
            history=c.transition_order == 2,
        )
        self.switching_prior = SwitchingPrior(c.latent_dim, c.num_modules, c.action_dim, c.hidden)
        self.selection_posterior = (
            SelectionPosterior(c.latent_dim, c.hidden) if c.selection_inference == "amortized" else None
        )
        # Task heads over the whole scene, one relation network with two outputs: the reward
        # R(z_t, a_t) and the logit of "the episode terminates after a_t" (trained where the data
        # records terminations).
        self.task_heads = (
            RelationHead(c.latent_size, c.action_dim, c.hidden, out_dim=2, pool=c.head_pool) if c.reward_head else None
        )

    # ----------------------------------------------------------------------------------- inference

    def _check_inputs(self, obs: Tensor, actions: Tensor | None) -> None:
        c = self.config
        if c.input_mode == "pixels":
            expected = f"{c.channels}, {c.image_size}, {c.image_size}"
            ok = obs.dim() == 5 and tuple(obs.shape[2:]) == (c.channels, c.image_size, c.image_size)
        else:  # no weight depends on the number of objects: any K >= 1, whatever K it was trained on
            expected = f"K >= 1, {c.state_dim}"
            ok = obs.dim() == 4 and obs.shape[2] >= 1 and obs.shape[3] == c.state_dim
        if not ok or min(obs.shape[:2]) < 1:
            raise ValueError(f"obs must be (B >= 1, T >= 1, {expected}), got {tuple(obs.shape)}")
        param = next(self.parameters())
        for name, x in (("obs", obs), ("actions", actions)):
            if x is not None and (x.dtype != param.dtype or x.device != param.device):
                raise ValueError(
                    f"{name} must be {param.dtype} on {param.device} (like the model), got {x.dtype} on {x.device}"
                )
        if (actions is None) != (c.action_dim == 0):
            raise ValueError(
                f"config.action_dim={c.action_dim} but actions is {'None' if actions is None else tuple(actions.shape)}"
            )
        if actions is not None and tuple(actions.shape) != (*obs.shape[:2], c.action_dim):
            raise ValueError(f"actions must be (B, T, {c.action_dim}), got {tuple(actions.shape)}")

    def _encode(self, obs: Tensor, states: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``obs`` -> posterior ``mean, log_std (B, T, K, D + static)`` and the last slots (pixel mode).

        Static attributes (``config.static_features``) are appended to the latent as observed
        values (their log-std is the floor, and no noise is ever drawn for them). ``states
        (B, T, K - 1, S)``: the objects' true states, read (first frame, x and y) by a pixel
        encoder with ``config.slot_cues``.
        """
        if isinstance(self.encoder, PixelEncoder):
            if not self.config.slot_cues:
                return self.encoder(obs)
            if states is None:
                raise ValueError("config.slot_cues needs the objects' states: pass a Batch with states")
            return self.encoder(obs, cues=states[:, 0, :, :2].to(obs))
        x = self.standardizer(obs)
        if not self._static:
            mean, log_std = self.encoder(x)
            return mean, log_std, None
        mean, log_std = self.encoder(x[..., self._dynamic])
        values = x[..., self._static]
        return (
            torch.cat([mean, values], -1),
            torch.cat([log_std, torch.full_like(values, self.config.min_log_std)], -1),
            None,
        )

    def _before(self, z: Tensor) -> Tensor | None:
        """For ``z (B, T, K, D)`` the latents one step before each of its first ``T - 1`` steps,
        ``(B, T - 1, K, D)``, which a second-order model's modules read: the first transition reads
        ``z_0`` itself (a zero change). None for a first-order model."""
        if self.config.transition_order == 1:
            return None
        return torch.cat([z[:, :1], z[:, :-2]], dim=1)

    def _transitions(
        self, z_prev: Tensor, z_next: Tensor, actions: Tensor | None, before: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Every module's prediction and the selection posterior, for all steps at once.

        Args:
            z_prev: ``(B, T', K, D)`` latents before each transition.
            z_next: ``(B, T', K, D)`` latents after it.
            actions: ``(B, T', A)`` the action driving each transition, or None.
            before: ``(B, T', K, D)`` the latents one step before ``z_prev`` (second-order
                models, see :meth:`_before`), else None.

        Returns:
            module means ``(B, T', K, M, D)``, module log-stds ``(M, D)`` and posterior logits
            ``(B, T', K, M)``.
        """
        b, t = z_prev.shape[:2]
        flat_actions = None if actions is None else actions.flatten(0, 1)
        flat_before = None if before is None else before.flatten(0, 1)
        means, log_std = self.transitions(z_prev.flatten(0, 1), flat_actions, flat_before)
        logits = self.selection_posterior(z_next.flatten(0, 1), means, log_std)
        return means.unflatten(0, (b, t)), log_std, logits.unflatten(0, (b, t))

    def _chain(
        self, z: Tensor, post_mean: Tensor, post_log_std: Tensor, actions: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """What exact selection inference needs, for every object and transition at once.

        Args:
            z: ``(B, T, K, D)`` latents the modules and the switching prior read (t < T - 1).
            post_mean, post_log_std: ``(B, T, K, D)`` the latent posterior.
            actions: ``(B, T, A)`` or None.
        Returns:
            ``module_kl (B, T-1, K, M)``, ``log_init (B, K, M)`` and ``log_trans (B, T-1, K, M, M)``.
        """
        b, t, k, d = z.shape
        m, dyn = self.config.num_modules, self.config.latent_dim
        z_prev = z[:, :-1].flatten(0, 1)  # (B*(T-1), K, D)
        flat_actions = None if actions is None else actions[:, :-1].flatten(0, 1)
        before = self._before(z)
        means, log_std = self.transitions(z_prev, flat_actions, None if before is None else before.flatten(0, 1))
        module_kl = (
            gaussian_kl(
                post_mean[:, 1:, ..., :dyn].flatten(0, 1).unsqueeze(-2),
                post_log_std[:, 1:, ..., :dyn].flatten(0, 1).unsqueeze(-2),
                means[..., :dyn],
                log_std,
            )
            .sum(-1)
            .unflatten(0, (b, t - 1))
        )
        # The switching prior after every possible previous module, and with none (the first step).
        n = z_prev.shape[0]
        previous = torch.cat([torch.zeros(1, m), torch.eye(m)]).to(z)  # (M + 1, M)
        z_rep = z_prev.unsqueeze(2).expand(n, k, m + 1, d).reshape(n, k * (m + 1), d)
        c_rep = previous.expand(n, k, m + 1, m).reshape(n, k * (m + 1), m)
        logits = self.switching_prior(z_rep, c_rep, flat_actions).reshape(n, k, m + 1, m)
        log_p = logits.log_softmax(-1).unflatten(0, (b, t - 1))  # (B, T-1, K, M+1, M)
        return module_kl, log_p[:, 0, :, 0], log_p[..., 1:, :]

    def _amortized_terms(
        self, z: Tensor, mean: Tensor, log_std: Tensor, log_lik: Tensor, actions: Tensor | None, weight: float
    ) -> tuple[ELBOTerms, Tensor]:
        """The ELBO with a per-step selection posterior network and straight-through Gumbel samples."""
        b, t = z.shape[:2]
        prev_actions = None if actions is None else actions[:, :-1]
        module_means, module_log_std, post_logits = self._transitions(
            z[:, :-1], mean[:, 1:], prev_actions, self._before(z)
        )
        selection = gumbel_softmax_st(post_logits, self.config.gumbel_tau)
        c_prev = torch.cat([torch.zeros_like(selection[:, :1]), selection[:, :-1]], dim=1)
        flat_actions = None if prev_actions is None else prev_actions.flatten(0, 1)
        prior_logits = self.switching_prior(z[:, :-1].flatten(0, 1), c_prev.flatten(0, 1), flat_actions).unflatten(
            0, (b, t - 1)
        )
        dyn = self.config.latent_dim
        terms = elbo_terms(
            log_likelihood=log_lik,
            post_mean=mean[..., :dyn],
            post_log_std=log_std[..., :dyn],
            module_means=module_means[..., :dyn],
            module_log_std=module_log_std,
            post_c_logits=post_logits,
            prior_c_logits=prior_logits,
            kl_weight=weight,
            free_bits=self.config.free_bits,
        )
        return terms, post_logits.softmax(-1)

    def _reconstruction(self, z: Tensor, obs: Tensor) -> Tensor:
        """``log p(x_t | z_t)`` per sequence and step ``(B, T)`` from latents ``z (B, T, K, D)``.

        With ``config.decode_steps = s`` in ``[1, T)``, only s random steps per sequence are
        decoded and their terms reweighted by ``T / s`` (zeros elsewhere): an unbiased estimate
        of the sum over time, at ``s / T`` of the decoding cost.
        """
        b, t = obs.shape[:2]
        target = obs if self.config.input_mode == "pixels" else self.standardizer(obs)
        s = self.config.decode_steps
        steps = subsample_steps(b, t, s, obs.device) if 0 < s < t else None
        if steps is not None:
            rows = torch.arange(b, device=obs.device)[:, None]
            z, target = z[rows, steps], target[rows, steps]
        decoded = self.decoder(z.flatten(0, 1))
        log_lik = self.decoder.log_likelihood(decoded, target.flatten(0, 1)).unflatten(0, (b, -1))
        return log_lik if steps is None else reweighted_log_likelihood(log_lik, steps, t)

    def loss(self, batch: Batch, step: int) -> tuple[Tensor, dict[str, float]]:
        """Negative ELBO per sequence (summed over time), plus the reward loss when trained.

        Needs T >= 2. Returns the scalar loss and float statistics for logging.
        """
        obs, actions = batch.obs, batch.actions
        self._check_inputs(obs, actions)
        if obs.shape[1] < 2:
            raise ValueError(f"loss needs sequences of length >= 2, got T={obs.shape[1]}")
        mean, log_std, _ = self._encode(obs, batch.states)
        dyn = self.config.latent_dim  # static attributes (if any) follow and get no noise
        noise = torch.exp(log_std[..., :dyn]) * torch.randn_like(mean[..., :dyn])
        z = mean + F.pad(noise, (0, mean.shape[-1] - dyn))
        log_lik = self._reconstruction(z, obs)

        weight = kl_weight(step, self.config.kl_warmup_steps)
        if self.config.selection_inference == "exact":
            module_kl, log_init, log_trans = self._chain(z, mean, log_std, actions)
            terms, q_c = collapsed_elbo_terms(
                log_likelihood=log_lik,
                post_mean=mean[..., :dyn],
                post_log_std=log_std[..., :dyn],
                module_kl=module_kl,
                log_init=log_init,
                log_trans=log_trans,
                kl_weight=weight,
                temperature=selection_temperature(step, self.config.anneal_temperature, self.config.anneal_steps),
            )
        else:
            terms, q_c = self._amortized_terms(z, mean, log_std, log_lik, actions, weight)
        loss = terms.loss
        usage = q_c.detach().flatten(0, -2).mean(0)  # (M,) batch-level module usage
        stats = {
            "nll": float(-terms.log_likelihood.detach().mean()),
            "kl_z": float(terms.kl_z.detach().mean()),
            "kl_c": float(terms.kl_c.detach().mean()),
            "kl_weight": weight,
            "module_perplexity": float(torch.exp(-(usage * usage.clamp_min(1e-12).log()).sum())),
        }
        if self.task_heads is not None and batch.rewards is not None:
            # The heads read the inferred state (posterior means), detached unless
            # heads_shape_latents: read-outs of what the ELBO learns. (Steer data, small budget:
            # held-out reward MSE 0.0180 [0.0160, 0.0202] this way, 0.0292 [0.0267, 0.0320] when they
            # read posterior samples with gradients; reward variance 0.0431.)
            read = mean if self.config.heads_shape_latents else mean.detach()
            reward, logit = self.task(read.flatten(0, 1), None if actions is None else actions.flatten(0, 1))
            reward_mse = F.mse_loss(reward, batch.rewards.flatten(0, 1))
            loss = loss + reward_mse
            stats["reward_mse"] = float(reward_mse.detach())
            if batch.terminations is not None:
                termination_bce = F.binary_cross_entropy_with_logits(
                    logit, batch.terminations.flatten(0, 1).to(logit.dtype)
                )
                loss = loss + termination_bce
                stats["termination_bce"] = float(termination_bce.detach())
        stats["loss"] = float(loss.detach())
        return loss, stats

    @torch.no_grad()
    def revive_unused_modules(
        self,
        batch: Batch,
        generator: torch.Generator,
        min_share: float = 0.5,
        noise: float = 0.05,
        fit_steps: int = 100,
        rounds: int = 3,
    ) -> list[int]:
        """Split moves against collapse: every module that explains less than ``min_share / M`` of
        ``batch``'s object-steps takes over part of the data of a live module.

        A live module that two mechanisms share explains one of them worse. Its object-steps are
        divided between two modules by ``rounds`` of hard EM (as in split-and-merge EM, Ueda et
        al., 2000): the new module starts from a fit (:meth:`ModuleBank.fit_module`,
        ``fit_steps`` Adam steps) to the half it explains worst (KL above the median), then each
        step goes to the module that explains it better and both are refit on their own steps.
        Each dead module takes the split that lowers the KL the most (one per live module and
        call): a module with one broad law (a random walk) gains little from a split, two merged
        laws a lot. When no live module is left to split, the dead module becomes a copy of one,
        weights perturbed by ``noise`` times their std. Returns the revived modules.
        Deterministic under ``generator``."""
        m, dyn = self.config.num_modules, self.config.latent_dim
        mean, log_std, _ = self._encode(batch.obs, batch.states)
        module_kl, _, _ = self._chain(mean, mean, log_std, batch.actions)  # (B, T-1, K, M)
        probs = self.observe(batch).probs[:, 1:]
        usage = probs.flatten(0, -2).mean(0)
        dead = (usage < min_share / m).nonzero().flatten().tolist()
        live = [i for i in range(m) if i not in dead]
        if not (dead and live):
            return dead
        owner = probs.argmax(-1).flatten(0, 1)  # (B*(T-1), K)
        kl = module_kl.flatten(0, 1)
        z_prev, z_next = mean[:, :-1].flatten(0, 1), mean[:, 1:].flatten(0, 1)
        z_next_log_std = log_std[:, 1:].flatten(0, 1)
        actions = None if batch.actions is None else batch.actions[:, :-1].flatten(0, 1)
        z_before = self._before(mean)
        z_before = None if z_before is None else z_before.flatten(0, 1)

        def fit(params: list[Tensor], rows: Tensor, steps: int) -> tuple[list[Tensor], Tensor]:
            n, k = rows[:, 0], rows[:, 1]
            target = z_next[n, k, :dyn], z_next_log_std[n, k, :dyn]
            return self.transitions.fit_module(params, z_prev, actions, rows, *target, steps=steps, before=z_before)

        splits = []  # (gain, source, source's new parameters, new module's parameters)
        for source in live:
            rows = (owner == source).nonzero()  # (R, 2)
            if rows.shape[0] < 8:
                continue
            before = kl[rows[:, 0], rows[:, 1], source]
            kept = self.transitions.module_params(source)
            new, _ = fit(kept, rows[before > before.median()], fit_steps)
            for _ in range(rounds):
                to_new = fit(new, rows, 0)[1] < fit(kept, rows, 0)[1]
                if bool(to_new.all()) or not bool(to_new.any()):
                    break
                kept, new = fit(kept, rows[~to_new], fit_steps)[0], fit(new, rows[to_new], fit_steps)[0]
            gain = float((before - torch.minimum(fit(new, rows, 0)[1], fit(kept, rows, 0)[1])).sum())
            if gain > 0:  # a split that explains the data no better is not made
                splits.append((gain, source, kept, new))
        splits.sort(key=lambda split: -split[0])
        for n, target in enumerate(dead):
            if n < len(splits):
                _, source, kept, new = splits[n]
                self.transitions.load_module(source, kept)
                self.transitions.load_module(target, new)
            else:
                self.transitions.copy_module(live[n % len(live)], [target], noise, generator)
        return dead

    def observe(self, batch_or_obs: Batch | Tensor, actions: Tensor | None = None) -> Posterior:
        """Infer latents (posterior means) and module selections for every observed step.

        Args:
            batch_or_obs: a :class:`Batch`, or observations ``(B, T, ...)`` (then pass
                ``actions (B, T, A)`` when the model takes actions). A pixel model with
                ``config.slot_cues`` needs a Batch with ``states``.
        """
        states = None
        if isinstance(batch_or_obs, Batch):
            obs, actions, states = batch_or_obs.obs, batch_or_obs.actions, batch_or_obs.states
        else:
            obs = batch_or_obs
        self._check_inputs(obs, actions)
        b, t = obs.shape[:2]
        mean, log_std, slots = self._encode(obs, states)
        k, m = mean.shape[2], self.config.num_modules
        probs = mean.new_full((b, 1, k, m), 1.0 / m)
        selections = torch.full((b, 1, k), -1, dtype=torch.long, device=obs.device)
        if t > 1:
            if self.config.selection_inference == "exact":
                module_kl, log_init, log_trans = self._chain(mean, mean, log_std, actions)
                _, q_c = collapsed_elbo_terms(
                    log_likelihood=mean.new_zeros(b, t),
                    post_mean=mean,
                    post_log_std=log_std,
                    module_kl=module_kl,
                    log_init=log_init,
                    log_trans=log_trans,
                    kl_weight=1.0,
                )
            else:
                prev_actions = None if actions is None else actions[:, :-1]
                q_c = self._transitions(mean[:, :-1], mean[:, 1:], prev_actions, self._before(mean))[2].softmax(-1)
            probs = torch.cat([probs, q_c], dim=1)
            selections = torch.cat([selections, q_c.argmax(-1)], dim=1)
        decoded = self.decode(mean.flatten(0, 1))
        return Posterior(
            z_mean=mean,
            z_log_std=log_std,
            probs=probs,
            selections=selections,
            masks=None if decoded.masks is None else decoded.masks.unflatten(0, (b, t)),
            last_z=mean[:, -1],
            last_c=selections[:, -1],
            slots=slots,
            recon=decoded.obs.unflatten(0, (b, t)),
        )

    # -------------------------------------------------------------------------------- generation

    def prior_step(
        self,
        z_prev: Tensor,
        c_prev: Tensor,
        action: Tensor | None = None,
        forced: Tensor | None = None,
        generator: torch.Generator | None = None,
        sample_z: bool = True,
        before: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One imagined step: sample selections from the switching prior, apply the modules.

        Args:
            z_prev: ``(B, K, D)`` latents.
            c_prev: ``(B, K)`` int64 previous selections; -1 means "none yet".
            action: ``(B, A)`` the action taken at the previous step, or None.
            forced: ``(B, K)`` int64 modules to impose; -1 entries are sampled from the prior.
            generator: random source (on the model's device) for reproducible samples.
            sample_z: add the selected module's transition noise; else return its mean.
            before: ``(B, K, D)`` the latents one step before ``z_prev``, which a second-order
                model reads; None reads as ``z_prev`` itself (no change yet). First-order models
                ignore it.

        Returns:
            ``z (B, K, D)``, ``c (B, K)`` int64, and the prior probabilities ``(B, K, M)``.
        """
        m = self.config.num_modules
        if forced is not None:
            if tuple(forced.shape) != tuple(c_prev.shape) or forced.dtype != torch.long:
                raise ValueError(
                    f"forced must be int64 of shape {tuple(c_prev.shape)} (like c_prev), "
                    f"got {forced.dtype} {tuple(forced.shape)}"
                )
            if bool((forced >= m).any()) or bool((forced < -1).any()):
                raise ValueError(
                    f"forced selections must be in [0, num_modules={m}) or -1 (sample), "
                    f"got {sorted(set(forced.flatten().tolist()))}"
                )
        c_prev_onehot = F.one_hot(c_prev.clamp(min=0), m).to(z_prev.dtype)
        c_prev_onehot = c_prev_onehot * (c_prev >= 0).unsqueeze(-1).to(z_prev.dtype)
        probs = self.switching_prior(z_prev, c_prev_onehot, action).softmax(-1)
        c = sample_categorical(probs, generator)
        if forced is not None:
            c = torch.where(forced >= 0, forced, c)
        if self.config.transition_order == 2 and before is None:
            before = z_prev
        means, log_std = self.transitions(z_prev, action, before)
        index = c[..., None, None].expand(-1, -1, 1, means.shape[-1])
        z = means.gather(2, index).squeeze(2)
        if sample_z:
            z = self.transitions.add_noise(z, log_std[c], generator)
        return z, c, probs

    @property
    def slots_fixed(self) -> bool:
        """Whether a weight depends on the slot count: a pixel encoder with one learnt start per
        slot (``slot_init`` "learned" or "bo-qsa", without cues). State models, cued slots and
        Gaussian slots take any count."""
        c = self.config
        return c.input_mode == "pixels" and not c.slot_cues and c.slot_init != "gaussian"

    def resized(self, num_slots: int) -> VIM:
        """This model's weights (a copy) with ``num_slots`` slots, in the same mode and on the same device."""
        if self.slots_fixed:
            raise ValueError(
                f"a pixel VIM with slot_init={self.config.slot_init!r} and no slot_cues learns one start per "
                f"slot: its {self.config.num_slots} slots are fixed, so it cannot take {num_slots} "
                "(slot_cues or slot_init='gaussian' can)"
            )
        model = VIM(replace(self.config, num_slots=num_slots)).to(next(self.parameters()).device)
        model.load_state_dict(self.state_dict())
        return model.train(self.training)

    def decode(self, z: Tensor) -> Decoded:
        """``z (N, K, D)`` -> frames ``(N, C, H, W)`` (with per-slot rgb and masks) or states ``(N, K, S)``."""
        decoded = self.decoder(z)
        if self.config.input_mode == "pixels":
            return decoded
        return Decoded(obs=self.standardizer.inverse(decoded.obs))

    def task(self, z: Tensor, action: Tensor | None) -> tuple[Tensor, Tensor]:
        """Predicted reward ``(N,)`` and termination logit ``(N,)`` (the episode ends, the task
        succeeds) for taking ``action (N, A)`` in latent state ``z (N, K, D)``.

        One :class:`~vim_world.model.heads.RelationHead`: a function of every pair of objects
        and the action, independent of the slot order and of K.
        """
        if self.task_heads is None:
            raise RuntimeError("this VIM was built with reward_head=False")
        out = self.task_heads(z, action)
        return out[:, 0], out[:, 1]

    def reward(self, z: Tensor, action: Tensor | None) -> Tensor:
        """Predicted reward ``(N,)``: the first output of :meth:`task`."""
        return self.task(z, action)[0]

    def termination_logit(self, z: Tensor, action: Tensor | None) -> Tensor:
        """Termination logit ``(N,)``: the second output of :meth:`task`."""
        return self.task(z, action)[1]

    @torch.no_grad()
    def predict(
        self, batch: Batch, context: int, horizon: int, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> Prediction:
        """Observe ``context`` steps, then sample ``n_samples`` futures of ``horizon`` steps.

        Uses ``batch.actions`` (if any) for the imagined transitions, which needs
        ``context + horizon - 1 <= T``. For evaluation: runs without gradients.
        """
        t = batch.seq_len
        if not 1 <= context <= t:
            raise ValueError(f"context={context} must be in [1, T={t}]")
        if horizon < 1 or n_samples < 1:
            raise ValueError(f"horizon={horizon} and n_samples={n_samples} must be >= 1")
        if batch.actions is not None and context + horizon - 1 > t:
            raise ValueError(f"context + horizon - 1 = {context + horizon - 1} exceeds T={t}: not enough actions")
        posterior = self.observe(batch.slice_time(0, context))
        z = posterior.last_z.repeat_interleave(n_samples, 0)
        c = posterior.last_c.repeat_interleave(n_samples, 0)
        before = None  # the latents one step back, which a second-order model reads
        if self.config.transition_order == 2:
            before = posterior.z_mean[:, -2 if context > 1 else -1].repeat_interleave(n_samples, 0)
        future_actions = None
        if batch.actions is not None:
            future_actions = batch.actions[:, context - 1 : context - 1 + horizon]
            future_actions = future_actions.repeat_interleave(n_samples, 0)
        zs, cs, probs, rewards = [], [], [], []
        for step in range(horizon):
            action = None if future_actions is None else future_actions[:, step]
            if self.task_heads is not None:
                rewards.append(self.reward(z, action))
            z_next, c, p = self.prior_step(z, c, action, generator=generator, sample_z=True, before=before)
            if before is not None:  # second order: the latent one step back moves on
                before = z
            z = z_next
            zs.append(z)
            cs.append(c)
            probs.append(p)
        b = batch.batch_size
        z_all = torch.stack(zs, dim=1)  # (B*N, horizon, K, D)
        obs = self.decode(z_all.flatten(0, 1)).obs.unflatten(0, (b, n_samples, horizon))
        return Prediction(
            obs=obs,
            z=z_all.unflatten(0, (b, n_samples)),
            selections=torch.stack(cs, dim=1).unflatten(0, (b, n_samples)),
            probs=torch.stack(probs, dim=1).unflatten(0, (b, n_samples)),
            rewards=torch.stack(rewards, dim=1).unflatten(0, (b, n_samples)) if rewards else None,
        )
