"""Decoders: object latents back to observations, and their likelihoods."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import BROADCAST_STRIDES, RGB_READOUTS
from .distributions import gaussian_log_prob
from .layers import mlp, position_grid


@dataclass(frozen=True)
class Decoded:
    """What a decoder renders from object latents ``z (N, K, D)``.

    Attributes:
        obs: composite frames ``(N, C, H, W)`` in pixel mode, object states ``(N, K, S)`` in
            state mode (the mean of the Gaussian likelihood).
        rgb: per-slot appearance ``(N, K, C, H, W)``; pixel mode only.
        masks: per-slot alpha masks ``(N, K, H, W)``, summing to 1 over slots; pixel mode only.
    """

    obs: Tensor
    rgb: Tensor | None = None
    masks: Tensor | None = None


class StateDecoder(nn.Module):
    """``z (N, K, D)`` -> object state means ``(N, K, S)``; Gaussian likelihood with fixed std."""

    def __init__(self, latent_dim: int, hidden: int, state_dim: int, sigma: float) -> None:
        super().__init__()
        self.net = mlp(latent_dim, hidden, state_dim, layers=2)
        self.log_sigma = math.log(sigma)

    def forward(self, z: Tensor) -> Decoded:
        return Decoded(obs=self.net(z))

    def log_likelihood(self, decoded: Decoded, states: Tensor) -> Tensor:
        """``log p(x | z)`` of states ``(N, K, S)``, summed per observation -> ``(N,)``."""
        log_std = torch.full_like(decoded.obs, self.log_sigma)
        return gaussian_log_prob(states, decoded.obs, log_std).flatten(1).sum(-1)


class IdentityStateDecoder(nn.Module):
    """Observed latents (``state_encoder="identity"``): the latent ``(N, K, D + static)`` *is* the
    standardised state, dynamic columns first; the decoder puts each column back in its place
    (``(N, K, S)``). Gaussian likelihood with fixed std, as :class:`StateDecoder`."""

    def __init__(self, dynamic: tuple[int, ...], static: tuple[int, ...], sigma: float) -> None:
        super().__init__()
        order = torch.tensor(list(dynamic) + list(static))
        self.register_buffer("columns", torch.argsort(order), persistent=False)  # state column -> latent dim
        self.log_sigma = math.log(sigma)

    def forward(self, z: Tensor) -> Decoded:
        return Decoded(obs=z[..., self.columns])

    log_likelihood = StateDecoder.log_likelihood


class _ClampTowardsRange(torch.autograd.Function):
    """``x.clamp(0, 1)`` whose gradient also passes where ``x`` lies outside [0, 1] and a descent
    step would move it back inside (a straight-through estimator that cannot push ``x`` further
    out). A plain clamp passes no gradient there, a sigmoid almost none once saturated."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001 (autograd's context)
        ctx.save_for_backward(x)
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        blocked = ((x < 0) & (grad > 0)) | ((x > 1) & (grad < 0))
        return grad.masked_fill(blocked, 0.0)


class SpatialBroadcastDecoder(nn.Module):
    """Spatial broadcast decoder (Watters et al., 2019) with alpha compositing over slots.

    Each slot latent is tiled over an ``(H/b, W/b)`` grid with coordinates (``broadcast`` b = 4 by
    default; 2 or 1 draw finer masks at more compute), mixed by ``layers`` 3x3 convolutions of
    width ``hidden``, and brought to ``(H, W)`` by two more layers, as many of them stride-2
    transposed convolutions as it takes (3x3 convolutions otherwise). The last one reads out RGB
    (through a sigmoid; linear with ``rgb="linear"``, then frames may leave [0, 1]: clamp them for
    display; or clamped to [0, 1] with ``rgb="bounded"``, whose gradient passes wherever a step
    would bring the colour into range, see :class:`_ClampTowardsRange`) plus an alpha logit
    directly, so that at b = 4 no hidden-width layer runs at full resolution, where K slots x T
    steps of images make it the bulk of a pixel model's cost. Alpha is normalised by a softmax
    over slots and the frame is the alpha-weighted sum. With ``background=True`` slot 0's RGB is
    one learnt colour over the whole frame (its alpha still comes from its latent): a background
    slot that cannot draw objects.
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: int,
        channels: int,
        image_size: int,
        sigma: float,
        layers: int = 1,
        rgb: str = "sigmoid",
        background: bool = False,
        broadcast: int = 4,
    ) -> None:
        super().__init__()
        if rgb not in RGB_READOUTS:
            raise ValueError(f"rgb={rgb!r} (expected one of {RGB_READOUTS})")
        if broadcast not in BROADCAST_STRIDES:
            raise ValueError(f"broadcast={broadcast!r} (expected one of {BROADCAST_STRIDES})")
        self.rgb_readout = rgb
        self.size = image_size // broadcast
        self.register_buffer("grid", position_grid(self.size).permute(2, 0, 1), persistent=False)
        mixing = [
            m
            for i in range(layers)
            for m in (nn.Conv2d(hidden if i else latent_dim + 4, hidden, 3, padding=1), nn.ReLU())
        ]
        upsamplings = int(math.log2(broadcast))  # 0, 1 or 2 of the two last layers
        last = [
            (
                nn.ConvTranspose2d(hidden, width, 4, stride=2, padding=1)
                if i < upsamplings
                else nn.Conv2d(hidden, width, 3, padding=1)
            )
            for i, width in enumerate((hidden, channels + 1))
        ]
        self.net = nn.Sequential(*mixing, last[0], nn.ReLU(), last[1])
        self.log_sigma = math.log(sigma)
        self.background = nn.Parameter(torch.zeros(channels)) if background else None

    def forward(self, z: Tensor) -> Decoded:
        n, k, d = z.shape
        tiled = z.reshape(n * k, d, 1, 1).expand(-1, -1, self.size, self.size)
        grid = self.grid.expand(n * k, -1, -1, -1)
        out = self.net(torch.cat([tiled, grid], dim=1)).unflatten(0, (n, k))
        rgb = out[:, :, :-1]
        if self.background is not None:  # slot 0: one colour everywhere
            colour = self.background.view(1, 1, -1, 1, 1).expand(n, 1, -1, *rgb.shape[-2:])
            rgb = torch.cat([colour.to(rgb.dtype), rgb[:, 1:]], dim=1)
        if self.rgb_readout == "sigmoid":
            rgb = torch.sigmoid(rgb)
        elif self.rgb_readout == "bounded":
            rgb = _ClampTowardsRange.apply(rgb)
        masks = out[:, :, -1].softmax(dim=1)
        return Decoded(obs=(rgb * masks.unsqueeze(2)).sum(1), rgb=rgb, masks=masks)

    def log_likelihood(self, decoded: Decoded, frames: Tensor) -> Tensor:
        """``log p(x | z)`` of frames ``(N, C, H, W)``, summed over pixels -> ``(N,)``."""
        log_std = torch.full_like(decoded.obs, self.log_sigma)
        return gaussian_log_prob(frames, decoded.obs, log_std).flatten(1).sum(-1)
