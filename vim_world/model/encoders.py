"""Encoders: observations to per-object Gaussian posteriors ``q(z_t^k | x_t)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import SLOT_INITS
from .distributions import soft_clamp_log_std
from .layers import mlp, position_grid


class GaussianHead(nn.Module):
    """Features ``(..., F)`` -> Gaussian ``mean (..., D)`` and bounded ``log_std (..., D)``."""

    def __init__(self, in_dim: int, hidden: int, latent_dim: int, min_log_std: float) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden, 2 * latent_dim, layers=1)
        self.min_log_std = min_log_std

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = self.net(features).chunk(2, dim=-1)
        return mean, soft_clamp_log_std(raw, self.min_log_std)


class StateEncoder(nn.Module):
    """Object states ``(B, T, K, S)`` -> ``q(z)`` mean and log-std ``(B, T, K, D)``, object by object.

    Objects come in a fixed order, so slot k is object k at every step.
    """

    def __init__(self, state_dim: int, hidden: int, latent_dim: int, min_log_std: float) -> None:
        super().__init__()
        self.body = mlp(state_dim, hidden, hidden, layers=1)
        self.head = GaussianHead(hidden, hidden, latent_dim, min_log_std)

    def forward(self, states: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(F.relu(self.body(states)))


class IdentityStateEncoder(nn.Module):
    """Observed latents (``state_encoder="identity"``): ``q(z | x)`` is the standardised object
    state itself, ``(B, T, K, S)`` -> mean ``(B, T, K, S)``, with the floor std ``exp(min_log_std)``
    (a near point mass: the state is observed). No parameters.

    The modules then act on the state's own coordinates, so an affine module is an affine law of
    the state, and no learnt encoder can warp several laws into one.
    """

    def __init__(self, min_log_std: float) -> None:
        super().__init__()
        self.min_log_std = min_log_std

    def forward(self, states: Tensor) -> tuple[Tensor, Tensor]:
        return states, torch.full_like(states, self.min_log_std)


class SlotAttention(nn.Module):
    """Slot attention (Locatello et al., 2020): K slots compete for N input features.

    ``inputs (N, L, F)`` and initial ``slots (N, K, Ds)`` -> refined ``slots (N, K, Ds)`` and the
    last iteration's weights ``(N, K, L)``: the attention (softmax over slots) renormalised over
    the L inputs, with which each slot averaged the inputs' values.
    """

    def __init__(self, input_dim: int, slot_dim: int, hidden: int, iters: int) -> None:
        super().__init__()
        self.iters = iters
        self.scale = 1.0 / math.sqrt(slot_dim)
        self.norm_inputs = nn.LayerNorm(input_dim)
        self.norm_slots = nn.LayerNorm(slot_dim)
        self.norm_update = nn.LayerNorm(slot_dim)
        self.query = nn.Linear(slot_dim, slot_dim, bias=False)
        self.key_value = nn.Linear(input_dim, 2 * slot_dim, bias=False)
        self.gru = nn.GRUCell(slot_dim, slot_dim)
        self.refine = mlp(slot_dim, hidden, slot_dim, layers=1)

    def forward(
        self, inputs: Tensor, slots: Tensor, iters: int | None = None, straight_through: bool = False
    ) -> tuple[Tensor, Tensor]:
        """``iters`` overrides the number of iterations (e.g. fewer for slots carried from the last frame).

        ``straight_through`` (BO-QSA, Jia et al., 2023): the last iteration starts from the
        converged slots in value, but its gradient reaches the initial ``slots`` directly, as if
        the earlier iterations were the identity; learnt initial slots then train as queries."""
        keys, values = self.key_value(self.norm_inputs(inputs)).chunk(2, dim=-1)
        n, k, d = slots.shape
        weights = inputs.new_zeros(n, k, inputs.shape[1])
        initial = slots
        total = self.iters if iters is None else iters
        for i in range(total):
            if straight_through and i == total - 1:
                slots = slots.detach() + initial - initial.detach()
            queries = self.query(self.norm_slots(slots))
            attn = torch.einsum("nkd,nld->nkl", queries, keys).mul(self.scale).softmax(dim=1)
            weights = (attn + 1e-8) / (attn + 1e-8).sum(-1, keepdim=True)
            updates = torch.einsum("nkl,nld->nkd", weights, values)
            slots = self.gru(updates.reshape(-1, d), slots.reshape(-1, d)).reshape(n, k, d)
            slots = slots + self.refine(self.norm_update(slots))
        return slots, weights


class PixelEncoder(nn.Module):
    """Frames ``(B, T, C, H, W)`` -> ``q(z)`` mean and log-std ``(B, T, K, D)`` via slot attention.

    A small CNN (a 4x4 then a 3x3 convolution; with ``stride`` 4 both stride 2, none at full
    resolution: the encoder reads every frame; with 2 the second keeps the resolution; with 1 a
    5x5 and a 3x3 at full resolution) with an additive positional embedding yields
    ``(H/s)*(W/s)`` features per frame; slot attention groups them into K slots. Slots at step t start from the slots of
    step t - 1, so an object keeps its slot; the first frame starts from ``initial_slots`` (see
    ``VIMConfig.slot_init``), or from ``slots`` given by the caller, to continue a sequence. Carried slots are already
    close to their objects, so later frames may use fewer iterations (``carried_slot_iters``,
    as SAVi does; 0 means ``slot_iters``). With ``slot_predictor``, carried slots first pass
    through SAVi's predictor, one transformer layer over the slots of a frame, so that a slot can
    move with its object and slots can make way for each other before they meet the new frame.
    With ``slot_motion``, the latent of a slot at step t is read from the slot and its change
    since step t - 1, ``[s_t, s_t - s_{t-1}]`` (zero change at a sequence's first frame; a
    continued sequence's first change is from the caller's ``slots``), so that it can hold the
    object's velocity, which one frame does not show. With ``slot_colour``, the latent also reads
    the slot's mean colour: the frame's pixels (averaged over each token's ``s x s`` patch)
    weighted by the slot's last attention over the tokens (no gradient flows back into the
    attention), so that the colour is handed to the latent head rather than learnt by the CNN.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden: int,
        num_slots: int,
        latent_dim: int,
        slot_iters: int,
        min_log_std: float,
        carried_slot_iters: int = 0,
        slot_cues: bool = False,
        stride: int = 4,
        slot_init: str = "learned",
        slot_predictor: bool = False,
        slot_motion: bool = False,
        slot_colour: bool = False,
    ) -> None:
        super().__init__()
        if slot_init not in SLOT_INITS:
            raise ValueError(f"slot_init={slot_init!r} (expected one of {SLOT_INITS})")
        self.slot_init = slot_init
        self.carried_iters = carried_slot_iters or slot_iters
        self.num_slots = num_slots
        first = (4, 2, 1) if stride > 1 else (5, 1, 2)  # kernel, stride, padding
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, hidden, first[0], stride=first[1], padding=first[2]),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride=2 if stride == 4 else 1, padding=1),
            nn.ReLU(),
        )
        self.register_buffer("grid", position_grid(image_size // stride).reshape(-1, 4), persistent=False)
        self.position = nn.Linear(4, hidden)
        self.features = nn.Sequential(nn.LayerNorm(hidden), mlp(hidden, hidden, hidden, layers=1))
        shared = slot_cues or slot_init == "gaussian"
        self.initial_slots = nn.Parameter(torch.randn(1 if shared else num_slots, hidden) * hidden**-0.5)
        if slot_init == "gaussian":
            self.initial_log_std = nn.Parameter(torch.full((1, hidden), -0.5 * math.log(hidden)))
        self.cue = mlp(2, hidden, hidden, layers=1) if slot_cues else None
        self.slot_attention = SlotAttention(hidden, hidden, hidden, slot_iters)
        self.predictor = None
        if slot_predictor:
            heads = next(h for h in (4, 2, 1) if hidden % h == 0)
            self.predictor = nn.TransformerEncoderLayer(
                hidden, heads, 2 * hidden, dropout=0.0, batch_first=True, norm_first=True
            )
        self.motion = slot_motion
        self.stride = stride
        self.colour = slot_colour
        head_in = (2 if slot_motion else 1) * hidden + (channels if slot_colour else 0)
        self.head = GaussianHead(head_in, hidden, latent_dim, min_log_std)

    def forward(
        self, frames: Tensor, slots: Tensor | None = None, cues: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``mean, log_std (B, T, K, D)`` and the last step's slots ``(B, K, hidden)``.

        ``cues (B, K - 1, 2)``: the objects' (x, y) in the first frame, for an encoder built with
        ``slot_cues`` (slot 0, the background, starts from its learnt vector, slot k from
        ``cue(x, y)`` of object k - 1)."""
        b, t = frames.shape[:2]
        continued = slots is not None  # the caller's slots are the previous frame's
        if slots is None and self.cue is not None:
            expected = (b, self.num_slots - 1, 2)
            if cues is None or tuple(cues.shape) != expected:
                got = None if cues is None else tuple(cues.shape)
                raise ValueError(f"slot_cues: the first frame's object positions must be {expected}, got {got}")
            slots = torch.cat([self.initial_slots.expand(b, 1, -1), self.cue(cues)], dim=1)
        maps = self.cnn(frames.flatten(0, 1))  # (B*T, hidden, H/s, W/s)
        tokens = maps.flatten(2).transpose(1, 2) + self.position(self.grid)
        tokens = self.features(tokens).unflatten(0, (b, t))  # (B, T, L, hidden)
        straight_through = slots is None and self.slot_init == "bo-qsa"
        previous = slots if continued else None  # the slots of the frame before this sequence
        if slots is None:
            slots = self._initial_slots(b, frames.device)
        per_step, attention = [], []
        for step in range(t):
            if self.predictor is not None and (step > 0 or continued):
                slots = self.predictor(slots)
            iters = None if step == 0 and not continued else self.carried_iters
            slots, weights = self.slot_attention(tokens[:, step], slots, iters, straight_through and step == 0)
            per_step.append(slots)
            attention.append(weights)
        states = torch.stack(per_step, dim=1)  # (B, T, K, hidden)
        if self.motion:
            first = states[:, :1] if previous is None else previous[:, None]
            states = torch.cat([states, states - torch.cat([first, states[:, :-1]], dim=1)], dim=-1)
        if self.colour:
            states = torch.cat([states, self._slot_colours(frames, torch.stack(attention, dim=1))], dim=-1)
        mean, log_std = self.head(states)
        return mean, log_std, slots

    def _slot_colours(self, frames: Tensor, weights: Tensor) -> Tensor:
        """Each slot's mean colour ``(B, T, K, C)``: the frames ``(B, T, C, H, W)`` averaged over
        each token's patch, weighted by the slot's weights over the tokens ``(B, T, K, L)`` (as
        slot attention weights its values), without a gradient to the attention."""
        patches = frames.flatten(0, 1)
        if self.stride > 1:
            patches = F.avg_pool2d(patches, self.stride)
        patches = patches.flatten(2).transpose(1, 2).unflatten(0, frames.shape[:2])  # (B, T, L, C)
        # Detached: the colour is read from where a slot attends, and does not steer where it attends
        # (with the gradient, slots traded their cued objects for colours: docs/model.md, "Session 19").
        return torch.einsum("btkl,btlc->btkc", weights.detach(), patches)

    def _initial_slots(self, batch_size: int, device: torch.device) -> Tensor:
        """The first frame's slots ``(B, K, hidden)`` of an encoder without cues. Gaussian slots
        are drawn afresh in training; in eval mode from a generator seeded with 0 on every call,
        so that inference is a deterministic function of the frames."""
        if self.slot_init != "gaussian":
            return self.initial_slots.expand(batch_size, -1, -1)
        shape = (batch_size, self.num_slots, self.initial_slots.shape[-1])
        generator = None if self.training else torch.Generator(device=device).manual_seed(0)
        noise = torch.randn(shape, generator=generator, device=device)
        return self.initial_slots + self.initial_log_std.exp() * noise
