"""Baselines on the same data and interface as VIM: copy-last-frame and a monolithic VRNN."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vim_world.batch import Batch

from .config import VIMConfig
from .distributions import gaussian_kl, gaussian_log_prob, kl_weight
from .layers import Standardizer, mlp
from .outputs import Prediction


class CopyLastFrame(nn.Module):
    """Predicts that nothing changes: every future step repeats the last observed one."""

    def __init__(self, config: VIMConfig) -> None:
        super().__init__()
        self.config = config

    def loss(self, batch: Batch, step: int) -> tuple[Tensor, dict[str, float]]:
        return batch.obs.new_zeros(()), {}

    @torch.no_grad()
    def predict(
        self, batch: Batch, context: int, horizon: int, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> Prediction:
        last = batch.obs[:, context - 1]
        obs = last[:, None, None].expand(-1, n_samples, horizon, *last.shape[1:])
        return Prediction(obs=obs.contiguous())


class _FrameCodec(nn.Module):
    """Whole-frame encoder ``(B, ...) -> (B, hidden)`` and decoder ``(B, in) -> (B, ...)``."""

    def __init__(self, config: VIMConfig, dec_in: int) -> None:
        super().__init__()
        h, self.config = config.hidden, config
        if config.input_mode == "state":
            flat = config.num_slots * config.state_dim
            self.enc = mlp(flat, h, h)
            self.dec = mlp(dec_in, h, flat)
        else:
            c, s = config.channels, config.image_size
            self.enc = nn.Sequential(
                nn.Conv2d(c, h, 4, 2, 1), nn.ReLU(), nn.Conv2d(h, h, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(h, h, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(h * (s // 8) ** 2, h),
            )  # fmt: skip
            self.dec = nn.Sequential(
                nn.Linear(dec_in, h * (s // 8) ** 2), nn.Unflatten(1, (h, s // 8, s // 8)), nn.ReLU(),
                nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(h, c, 4, 2, 1),
            )  # fmt: skip

    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x.flatten(1) if self.config.input_mode == "state" else x)

    def decode(self, features: Tensor, previous: Tensor) -> Tensor:
        """``previous (B, ...)`` frame plus the decoded residual ``(B, ...)``."""
        return previous + self.dec(features).view(previous.shape)


class MonolithicVRNN(nn.Module):
    """One latent per frame (VRNN / SVG-LP style): a GRU carries ``h_t``; prior
    ``p(z_t | h_{t-1})``, posterior ``q(z_t | h_{t-1}, x_t)``, decoder
    ``p(x_t | z_t, h_{t-1}, x_{t-1})``.

    The decoder predicts a residual over the previous frame (``x_{t-1}`` observed while
    filtering, the previous prediction when rolling out; zeros before the first frame), the
    standard fix that lets the model start from copy-last instead of learning the identity.
    The latent has ``num_slots * latent_dim`` dimensions, the same total as VIM's object latents.
    """

    def __init__(self, config: VIMConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.z_dim = config.num_slots * config.latent_dim
        a = config.action_dim
        self.codec = _FrameCodec(config, self.z_dim + h)
        self.prior = mlp(h, h, 2 * self.z_dim)
        self.posterior = mlp(2 * h, h, 2 * self.z_dim)
        self.rnn = nn.GRUCell(h + self.z_dim + a, h)
        self.sigma = config.state_sigma if config.input_mode == "state" else config.pixel_sigma
        self.standardizer = Standardizer(config.state_dim)  # state mode, as in VIM

    def _standardize(self, obs: Tensor) -> Tensor:
        return self.standardizer(obs) if self.config.input_mode == "state" else obs

    def _gauss(self, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = net(x).chunk(2, -1)
        return mean, log_std.clamp(self.config.min_log_std, 2.0)

    def _advance(self, h: Tensor, feat: Tensor, z: Tensor, action: Tensor | None) -> Tensor:
        parts = [feat, z] + ([] if action is None else [action])
        return self.rnn(torch.cat(parts, -1), h)

    def loss(self, batch: Batch, step: int) -> tuple[Tensor, dict[str, float]]:
        """Negative ELBO per sequence, summed over time (with the same KL warm-up as VIM)."""
        obs, actions = self._standardize(batch.obs), batch.actions
        b, t = obs.shape[:2]
        feats = self.codec.encode(obs.flatten(0, 1)).unflatten(0, (b, t))
        h = obs.new_zeros(b, self.config.hidden)
        nll, kl = obs.new_zeros(b), obs.new_zeros(b)
        log_sigma = torch.full((), self.sigma, device=obs.device).log()
        previous = torch.cat([torch.zeros_like(obs[:, :1]), obs[:, :-1]], 1)
        for i in range(t):
            pm, pl = self._gauss(self.prior, h)
            qm, ql = self._gauss(self.posterior, torch.cat([h, feats[:, i]], -1))
            z = qm + ql.exp() * torch.randn_like(qm)
            recon = self.codec.decode(torch.cat([z, h], -1), previous[:, i])
            nll = nll - gaussian_log_prob(obs[:, i], recon, log_sigma.expand_as(recon)).flatten(1).sum(-1)
            kl = kl + gaussian_kl(qm, ql, pm, pl).sum(-1)
            h = self._advance(h, feats[:, i], z, None if actions is None else actions[:, i])
        weight = kl_weight(step, self.config.kl_warmup_steps)
        loss = (nll + weight * kl).mean()
        return loss, {
            "nll": float(nll.detach().mean()),
            "kl_z": float(kl.detach().mean()),
            "kl_weight": weight,
            "loss": float(loss.detach()),
        }

    @torch.no_grad()
    def predict(
        self, batch: Batch, context: int, horizon: int, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> Prediction:
        """Filter ``context`` steps with the posterior, then roll the prior ``horizon`` steps."""
        obs, actions = self._standardize(batch.obs), batch.actions
        b = obs.shape[0]
        obs = obs.repeat_interleave(n_samples, 0)
        actions = None if actions is None else actions.repeat_interleave(n_samples, 0)
        h = obs.new_zeros(b * n_samples, self.config.hidden)
        noise = lambda like: torch.randn(like.shape, generator=generator, device=like.device)  # noqa: E731
        for i in range(context):
            feat = self.codec.encode(obs[:, i])
            qm, ql = self._gauss(self.posterior, torch.cat([h, feat], -1))
            z = qm + ql.exp() * noise(qm)
            h = self._advance(h, feat, z, None if actions is None else actions[:, i])
        frames, frame = [], obs[:, context - 1]
        for i in range(horizon):
            pm, pl = self._gauss(self.prior, h)
            z = pm + pl.exp() * noise(pm)
            frame = self.codec.decode(torch.cat([z, h], -1), frame)
            if self.config.input_mode == "pixels":
                frame = frame.clamp(0.0, 1.0)
            frames.append(frame)
            step = context + i
            action = None if actions is None or step >= actions.shape[1] else actions[:, step]
            h = self._advance(h, self.codec.encode(frame), z, action)
        out = torch.stack(frames, 1)
        if self.config.input_mode == "state":
            out = self.standardizer.inverse(out)
        return Prediction(obs=out.unflatten(0, (b, n_samples)))
