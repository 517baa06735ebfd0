"""Hyper-parameters of VIM and its baselines, with validation and named presets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

INPUT_MODES = ("pixels", "state")
SLOT_INITS = ("learned", "gaussian", "bo-qsa")  # see VIMConfig.slot_init
HEAD_POOLS = ("mean", "max", "gated")  # see VIMConfig.head_pool
RGB_READOUTS = ("sigmoid", "linear", "bounded")  # see VIMConfig.decoder_rgb
BROADCAST_STRIDES = (1, 2, 4)  # see VIMConfig.decoder_broadcast
SELECTION_INFERENCE = ("exact", "amortized")
STATE_ENCODERS = ("mlp", "identity")
NARY_SCORES = ("dot", "l2")  # see VIMConfig.nary_scores


@dataclass(frozen=True)
class VIMConfig:
    """Everything needed to build a world model; frozen, validated on construction.

    Shape letters used across ``vim_world.model``: B batch, T time, K object slots, D latent size,
    M modules, A action size, S per-object state features, C channels, H = W = image size.

    Attributes:
        input_mode: ``"pixels"`` (frames ``(B, T, C, H, W)``) or ``"state"`` (``(B, T, K, S)``).
        image_size: H = W, in [32, 256] and a multiple of 8 (pixel mode).
        channels: C, image channels.
        state_dim: S, features per object (state mode).
        num_slots: K, object slots (state mode: slot k is object k).
        latent_dim: D, size of each object latent.
        num_modules: M, transition modules; M = 1 is the single shared transition baseline.
        module_layers: hidden layers of each module's residual network; 0 makes every module
            an affine map of the latent (a strong push towards one module per mechanism).
        hidden: width of every hidden layer.
        nary: modules also read the other slots through an attention context.
        nary_scores: how that context scores another slot: ``"dot"``, the dot product of a query
            and a key (linear maps of the two latents); ``"l2"``, minus the squared distance
            between them times a learnt scale (L2 attention), which can pick the *nearest* other
            object (``-|q - k|^2`` holds ``-|k|^2``, which no dot product of linear maps can).
        action_dim: A; 0 for passive data.
        reward_head: train a reward predictor ``r_t = R(z_t, a_t)``.
        head_pool: how the task heads' relation network pools its object pairs: ``"mean"``;
            ``"max"`` (per feature), which a pair's feature does not shrink as objects are added;
            or ``"gated"``, a mean weighted by a learnt relevance of each object, so that objects
            the task ignores weigh little and one more of them moves the heads little.
        heads_shape_latents: the task heads' losses also train the encoder (their gradient
            reaches the posterior means they read); off, the heads are read-outs of the latents
            the ELBO learns.
        gumbel_tau: temperature of the straight-through Gumbel-softmax over selections.
        kl_warmup_steps: the KL weight grows linearly from 0 to 1 over this many steps.
        free_bits: nats per object and step below which the latent KL is not penalised
            (``selection_inference="amortized"`` only).
        pixel_sigma: std of the Gaussian pixel likelihood.
        state_sigma: std of the Gaussian state likelihood.
        slot_iters: slot-attention iterations per frame.
        carried_slot_iters: iterations on frames after the first, whose slots start from the
            previous frame's (SAVi uses 1); 0 means ``slot_iters``.
        slot_cues: pixel mode: the first frame's object slots start from the objects' positions in
            that frame (SAVi-style conditioning; the first two state features, x and y, of
            ``Batch.states``), slot 0 from a learnt background slot, instead of K learnt slot
            vectors. Inference then needs the first frame's states. Off by default: results with
            it are reported apart from the unconditioned model.
        slot_init: pixel mode, without ``slot_cues``: how the first frame's slots start.
            ``"learned"``: K learnt vectors, one per slot; ``"gaussian"``: K draws from one learnt
            Gaussian, as in Slot Attention, so that slots are exchangeable and must compete for
            objects rather than specialise on image regions (in eval mode the draw is seeded, so
            inference stays deterministic); ``"bo-qsa"``: learnt vectors trained as queries
            through BO-QSA's straight-through last iteration (Jia et al., 2023).
        slot_predictor: pixel mode: carried slots pass through SAVi's predictor (one transformer
            layer over a frame's slots) before slot attention reads the next frame; off, they are
            carried as they are.
        slot_motion: pixel mode: each slot's latent is read from the slot and its change since
            the previous frame, so that it can hold the object's velocity (one frame shows where
            an object is, not where it is going; without this, a module predicting from the latent
            alone cannot tell a still object from a moving one).
        slot_colour: pixel mode: each slot's latent head also reads the slot's mean colour (the
            frame's pixels weighted by the slot's attention, with no gradient into the attention).
            Off: on the CPU recipe it did not bring hue into the latents at every seed and lost
            the binding at one seed of two (docs/model.md, "Session 19").
        encoder_stride: pixel mode: the encoder's downsampling, so slot attention reads
            ``(H / s) * (W / s)`` tokens per frame: 4 (two stride-2 convolutions, the fastest), 2 or 1
            (every pixel a token: small objects cover whole tokens, at more compute).
        decoder_hidden: channels of the pixel decoder's upsampling stack; 0 means ``hidden``.
        decoder_rgb: pixel mode: ``"sigmoid"`` squashes each slot's colour into [0, 1];
            ``"linear"`` leaves it unbounded, as Slot Attention's decoder does (a sigmoid saturates on
            a black background, where colours are driven to 0, and then passes no gradient to the
            pixels of objects the decoder has not learnt to draw yet). The pixel presets use
            ``"linear"`` (decoded frames may then leave [0, 1]; the report and the imagined env
            clamp them); the default keeps earlier checkpoints' behaviour. ``"bounded"`` clamps
            the colour to [0, 1] with a gradient that passes wherever a step would bring it back
            into range: colours cannot exceed 1, so an object's pixel cannot be drawn by a bright
            colour under a partial alpha, and nothing saturates on a black background.
        background_slot: pixel mode: slot 0 draws one learnt colour over the whole frame (its mask
            still comes from its latent), so it can cover the background but cannot draw an object:
            the cued model's background slot, or the first of the learnt slots. Refused with
            ``slot_init="gaussian"``, whose exchangeable slots have no slot 0 to specialise.
        decoder_layers: 3x3 convolutions of the pixel decoder on the broadcast grid (at a quarter of
            the frame's resolution by default, so cheap) before upsampling; more lets a slot draw a
            shape at the position its latent holds.
        decoder_broadcast: pixel mode: the decoder tiles each slot over ``(H / b, W / b)`` (b = 4,
            2 or 1) and upsamples the rest of the way: a finer grid draws finer masks (small objects
            beside others) at more compute.
        decode_steps: pixel reconstruction term from ``decode_steps`` time steps per sequence,
            drawn uniformly without replacement and reweighted by ``T / decode_steps`` (an
            unbiased estimate of the ELBO, whose decoding cost falls by that factor); 0, or
            ``decode_steps >= T``, decodes every step (the exact ELBO).
        min_log_std: floor on every predicted log-std (prior, posterior, modules).
        static_features: state mode: indices of the object attributes that never change (an
            object's kind). They ride along in the latent, after its ``latent_dim`` dynamic
            dimensions, as observed values: the decoder and the reward head read them, the
            encoder of the dynamic part, the modules and the switching prior do not, so a module
            applies to an object whatever its kind (composition by construction). The trainer
            also puts ``TrainConfig.hidden_features`` here: features that do change but that no
            module may read; imagination carries them at their last observed values.
        anneal_temperature: deterministic annealing (``"exact"`` only): the selection chain is
            tempered by this temperature at step 0, decaying geometrically to 1 at
            ``anneal_steps``, so that modules share the data before they specialise.
        anneal_steps: length of that schedule; 0 turns annealing off.
        state_encoder: state mode: ``"mlp"`` learns an encoder and decoder of each object's
            state; ``"identity"`` makes the latent the standardised state itself (observed
            latents, ``latent_dim`` = the number of dynamic features), so that modules are laws of
            the state's own coordinates; with ``module_layers=0`` each module is an affine law and
            VIM becomes a switching linear dynamical system per object.
        selection_inference: ``"exact"``: the selection chain of each object is marginalised
            exactly by forward-backward under the switching prior (the optimal ``q(c)`` for the
            current ``q(z)``); ``"amortized"``: a per-step posterior network with Gumbel samples.
        transition_order: 1: a module predicts ``z_t`` from ``z_{t-1}``; 2: also from the
            change ``z_{t-1} - z_{t-2}`` (zero at the first transition), a second-order law. A
            frame shows where an object is, not where it is going, so latents read from single
            frames hold positions but not velocities; with order 2 a module can still learn a
            law of motion from them. The switching prior stays first-order. Measured: no better
            for prediction or discovery, from frames or positions (docs/model.md, "Session 18").
    """

    input_mode: str = "state"
    image_size: int = 64
    channels: int = 3
    state_dim: int = 4
    num_slots: int = 3
    latent_dim: int = 8
    num_modules: int = 4
    module_layers: int = 2
    hidden: int = 64
    nary: bool = False
    nary_scores: str = "dot"
    action_dim: int = 0
    reward_head: bool = False
    gumbel_tau: float = 0.5
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    pixel_sigma: float = 0.1
    state_sigma: float = 0.05
    slot_iters: int = 3
    carried_slot_iters: int = 0
    slot_cues: bool = False
    slot_init: str = "learned"
    encoder_stride: int = 4
    slot_predictor: bool = False
    slot_motion: bool = False
    slot_colour: bool = False
    decoder_hidden: int = 0
    decoder_layers: int = 1
    decoder_broadcast: int = 4
    decoder_rgb: str = "sigmoid"
    background_slot: bool = False
    decode_steps: int = 0
    min_log_std: float = -6.0
    selection_inference: str = "exact"
    state_encoder: str = "mlp"
    anneal_temperature: float = 1.0
    anneal_steps: int = 0
    static_features: tuple[int, ...] = ()
    head_pool: str = "mean"
    heads_shape_latents: bool = False
    transition_order: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "static_features", tuple(int(i) for i in self.static_features))
        problems = []
        for f in fields(self):  # types first, so that the range checks below compare numbers
            value, kind = getattr(self, f.name), type(f.default)
            if kind in (int, float):
                ok = not isinstance(value, bool) and hasattr(value, "__index__" if kind is int else "__float__")
                if not ok:
                    raise TypeError(
                        f"invalid VIMConfig: {f.name} must be a {kind.__name__}, got {type(value).__name__} {value!r}"
                    )
                if not -float("inf") < float(value) < float("inf"):
                    problems.append(f"{f.name}={value} (expected a finite number)")
        if self.input_mode not in INPUT_MODES:
            problems.append(f"input_mode={self.input_mode!r} (expected one of {INPUT_MODES})")
        if not (32 <= self.image_size <= 256 and self.image_size % 8 == 0):
            problems.append(f"image_size={self.image_size} (expected a multiple of 8 in [32, 256])")
        positive = ("channels", "state_dim", "num_slots", "latent_dim", "num_modules", "hidden", "slot_iters",
                    "decoder_layers")  # fmt: skip
        problems += [f"{n}={getattr(self, n)} (expected >= 1)" for n in positive if getattr(self, n) < 1]
        non_negative = (
            "action_dim",
            "kl_warmup_steps",
            "free_bits",
            "module_layers",
            "anneal_steps",
            "decoder_hidden",
            "decode_steps",
            "carried_slot_iters",
        )
        problems += [f"{n}={getattr(self, n)} (expected >= 0)" for n in non_negative if getattr(self, n) < 0]
        strictly_positive = ("gumbel_tau", "pixel_sigma", "state_sigma")
        problems += [f"{n}={getattr(self, n)} (expected > 0)" for n in strictly_positive if not getattr(self, n) > 0]
        if self.decoder_rgb not in RGB_READOUTS:
            problems.append(f"decoder_rgb={self.decoder_rgb!r} (expected one of {RGB_READOUTS})")
        if self.nary_scores not in NARY_SCORES:
            problems.append(f"nary_scores={self.nary_scores!r} (expected one of {NARY_SCORES})")
        elif self.nary_scores != "dot" and not self.nary:
            problems.append(
                f"nary_scores={self.nary_scores!r} with nary=False (expected nary=True: it scores the context)"
            )
        if self.head_pool not in HEAD_POOLS:
            problems.append(f"head_pool={self.head_pool!r} (expected one of {HEAD_POOLS})")
        if self.slot_init not in SLOT_INITS:
            problems.append(f"slot_init={self.slot_init!r} (expected one of {SLOT_INITS})")
        elif self.slot_init != "learned" and (self.input_mode != "pixels" or self.slot_cues):
            problems.append(
                f"slot_init={self.slot_init!r} with input_mode={self.input_mode!r}, slot_cues={self.slot_cues} "
                "(expected pixel mode without slot_cues; cued slots start from the cues)"
            )
        if self.background_slot and (self.input_mode != "pixels" or self.slot_init == "gaussian"):
            problems.append(
                f"background_slot=True with input_mode={self.input_mode!r}, slot_init={self.slot_init!r} "
                "(expected pixel mode with learnt or cued slots: Gaussian slots are exchangeable)"
            )
        if self.encoder_stride not in (1, 2, 4):
            problems.append(f"encoder_stride={self.encoder_stride} (expected 1, 2 or 4)")
        if self.decoder_broadcast not in BROADCAST_STRIDES:
            problems.append(f"decoder_broadcast={self.decoder_broadcast} (expected one of {BROADCAST_STRIDES})")
        if self.free_bits > 0 and self.selection_inference == "exact":
            problems.append(
                f"free_bits={self.free_bits} (free bits act on per-step KLs, which only "
                "selection_inference='amortized' has; use 0 with 'exact')"
            )
        static = self.static_features
        if static and (
            self.input_mode != "state"
            or len(set(static)) != len(static)
            or not all(0 <= i < self.state_dim for i in static)
            or len(static) >= self.state_dim
        ):
            problems.append(
                f"static_features={static} (expected distinct indices in [0, state_dim={self.state_dim}), "
                "fewer than state_dim, in state mode only)"
            )
        if not self.anneal_temperature >= 1.0:
            problems.append(f"anneal_temperature={self.anneal_temperature} (expected >= 1)")
        if self.anneal_steps > 0 and self.selection_inference != "exact":
            problems.append(
                f"anneal_steps={self.anneal_steps} (annealing tempers the exact selection chain; "
                "use selection_inference='exact' or anneal_steps=0)"
            )
        if self.slot_cues and self.input_mode != "pixels":
            problems.append(f"slot_cues=True with input_mode={self.input_mode!r} (expected 'pixels')")
        for name in ("slot_predictor", "slot_motion", "slot_colour"):
            if getattr(self, name) and self.input_mode != "pixels":
                problems.append(f"{name}=True with input_mode={self.input_mode!r} (expected 'pixels')")
        if self.state_encoder not in STATE_ENCODERS:
            problems.append(f"state_encoder={self.state_encoder!r} (expected one of {STATE_ENCODERS})")
        elif self.state_encoder == "identity" and (
            self.input_mode != "state" or self.latent_dim != self.state_dim - len(static)
        ):
            problems.append(
                f"state_encoder='identity' with input_mode={self.input_mode!r}, latent_dim={self.latent_dim} "
                f"(expected state mode and latent_dim = state_dim - static features = "
                f"{self.state_dim - len(static)})"
            )
        if self.transition_order not in (1, 2):
            problems.append(f"transition_order={self.transition_order} (expected 1 or 2)")
        if self.selection_inference not in SELECTION_INFERENCE:
            problems.append(f"selection_inference={self.selection_inference!r} (expected one of {SELECTION_INFERENCE})")
        if problems:
            raise ValueError("invalid VIMConfig: " + "; ".join(problems))

    @property
    def latent_size(self) -> int:
        """Size of each object's latent vector: ``latent_dim`` dynamic dims + the static features."""
        return self.latent_dim + len(self.static_features)

    @property
    def dynamic_features(self) -> tuple[int, ...]:
        """State features the encoder reads (all but the static ones)."""
        return tuple(i for i in range(self.state_dim) if i not in self.static_features)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict, for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VIMConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VIMConfig keys: {unknown}")
        return cls(**values)


def discovery_recipe(steps: int) -> dict[str, Any]:
    """VIMConfig overrides of the discovery recipe (docs/model.md, "Discovery that holds") for a run
    of ``steps`` steps: observed latents, affine modules, the selection chain annealed from
    temperature 30 over the first 60% of the steps. Train it with split moves
    (``TrainConfig.revive_every``, 100 in the measured runs) and static attributes."""
    return {
        "state_encoder": "identity",
        "module_layers": 0,
        "anneal_temperature": 30.0,
        "anneal_steps": int(0.6 * steps),
    }


def single_module_config(config: VIMConfig) -> VIMConfig:
    """The M = 1 baseline: same model, one transition network shared by every object."""
    return replace(config, num_modules=1)


def tiny_state(**overrides: Any) -> VIMConfig:
    """State input, trains on a CPU in a minute or two."""
    return VIMConfig(
        **{
            **dict(
                input_mode="state",
                num_slots=3,
                state_dim=4,
                latent_dim=8,
                num_modules=4,
                hidden=64,
                kl_warmup_steps=100,
            ),
            **overrides,
        }
    )


def tiny_pixels(**overrides: Any) -> VIMConfig:
    """32x32 frames, small enough for CPU runs; the reconstruction term decodes 2 random steps
    per sequence (an unbiased ELBO estimate; see ``decode_steps``)."""
    return VIMConfig(
        **{
            **dict(
                input_mode="pixels",
                image_size=32,
                num_slots=4,
                latent_dim=16,
                num_modules=4,
                hidden=32,
                kl_warmup_steps=500,
                decode_steps=2,
                decoder_hidden=28,
                decoder_rgb="linear",
            ),
            **overrides,
        }
    )


def default_state(**overrides: Any) -> VIMConfig:
    """State input, GPU-sized."""
    return VIMConfig(
        **{
            **dict(
                input_mode="state",
                num_slots=4,
                state_dim=4,
                latent_dim=16,
                num_modules=6,
                hidden=128,
                kl_warmup_steps=2000,
            ),
            **overrides,
        }
    )


def default_pixels(**overrides: Any) -> VIMConfig:
    """64x64 frames, GPU-sized; decodes 4 random steps per sequence (see ``decode_steps``)."""
    return VIMConfig(
        **{
            **dict(
                input_mode="pixels",
                image_size=64,
                num_slots=6,
                latent_dim=32,
                num_modules=6,
                hidden=64,
                kl_warmup_steps=5000,
                decode_steps=4,
                decoder_rgb="linear",
                decoder_hidden=56,
            ),
            **overrides,
        }
    )


PRESETS: dict[str, Callable[..., VIMConfig]] = {
    "tiny-state": tiny_state,
    "tiny-pixels": tiny_pixels,
    "default-state": default_state,
    "default-pixels": default_pixels,
}


def preset(name: str, **overrides: Any) -> VIMConfig:
    """``PRESETS[name](**overrides)``, with a ValueError naming the choices for unknown names."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name](**overrides)
